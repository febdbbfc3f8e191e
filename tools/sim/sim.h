/*
 * sim.h - cardgate-sim's subcommands (argv[0] is the subcommand name).
 * Return 0 when everything matched, 1 on errors or mismatches, 2 on usage.
 */
#ifndef CARDGATE_SIM_SIM_H
#define CARDGATE_SIM_SIM_H

int sim_load_main(int argc, char **argv);
int sim_scenario_main(int argc, char **argv);
int sim_cards_main(int argc, char **argv);

#endif
