/*
 * cmd_scenario.c - `cardgate-sim scenario` (placeholder until the scenario lands).
 */
#include "tools/sim/sim.h"

#include <stdio.h>

int sim_scenario_main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "cardgate-sim scenario: not built yet\n");
    return 1;
}
