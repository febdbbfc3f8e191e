/*
 * cardgate-sim - a bank-switch simulator and load generator.
 */
#include "common/log.h"

#include <stdio.h>

int main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    log_init("cardgate-sim", LOG_LVL_INFO);
    fprintf(stderr, "cardgate-sim: not built yet (see the 'cardgated core' issue)\n");
    return 1;
}
