/*
 * cardgate-sim - a bank-switch simulator and load generator.
 *
 *   cardgate-sim scenario --addr HOST:PORT --dialect NAME [--framing F] [--cards FILE] [--json]
 *   cardgate-sim load --addr HOST:PORT --dialect NAME [--framing F] [--cards FILE | --synth N]
 *                     [--conns C] [--rate R] [--inflight K] [--duration S] [--timeout S]
 *                     [--mix SPEC] [--hot] [--amount MINOR] [--seed N] [--json]
 *   cardgate-sim cards --synth N [--accounts A]
 */
#include "common/log.h"
#include "tools/sim/sim.h"

#include <stdio.h>
#include <string.h>

static void usage(FILE *fp)
{
    fprintf(fp, "usage: cardgate-sim scenario|load|cards [options]   (cardgate-sim CMD --help)\n");
}

int main(int argc, char **argv)
{
    log_init("cardgate-sim", LOG_LVL_INFO);
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "scenario") == 0)
        return sim_scenario_main(argc - 1, argv + 1);
    if (strcmp(argv[1], "load") == 0)
        return sim_load_main(argc - 1, argv + 1);
    if (strcmp(argv[1], "cards") == 0)
        return sim_cards_main(argc - 1, argv + 1);
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        usage(stdout);
        return 0;
    }
    usage(stderr);
    return 2;
}
