/*
 * cmd_cards.c - `cardgate-sim cards --synth N [--accounts A]`: print the
 * synthetic card set that `load --synth N --accounts A` uses, as a cards
 * file (tools/sim/README.md), so a bench or demo seed can load exactly
 * those cards into the database.  Test PANs (BIN 999999) only.
 */
#include "tools/sim/cards.h"
#include "tools/sim/sim.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

static void cards_usage(FILE *fp)
{
    fprintf(fp,
            "usage: cardgate-sim cards --synth N [--accounts A]\n"
            "  prints [{\"pan\",\"expiry\",\"cvv2\",\"label\",\"account\"}...]: card i has PAN\n"
            "  999999 + i (9 digits) + Luhn digit and belongs to account i %% A\n");
}

int sim_cards_main(int argc, char **argv)
{
    static const struct option lo[] = {
        {"synth", required_argument, NULL, 's'},
        {"accounts", required_argument, NULL, 'a'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    long n = 0, accounts = 0;
    char *end;
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (ch) {
        case 's':
        case 'a': {
            long v = strtol(optarg, &end, 10);
            if (*end || end == optarg || v < 1 || v > 10000000) {
                fprintf(stderr, "cardgate-sim cards: bad number '%s'\n", optarg);
                return 2;
            }
            *(ch == 's' ? &n : &accounts) = v;
            break;
        }
        case 'h':
            cards_usage(stdout);
            return 0;
        default:
            cards_usage(stderr);
            return 2;
        }
    }
    if (optind != argc || n == 0) {
        cards_usage(stderr);
        return 2;
    }
    struct sim_cards c;
    if (sim_cards_synth((size_t)n, (size_t)accounts, &c) != 0) {
        fprintf(stderr, "cardgate-sim cards: out of memory\n");
        return 1;
    }
    fputs("[\n", stdout);
    for (size_t i = 0; i < c.n; i++)
        printf("  {\"pan\":\"%s\",\"expiry\":\"%s\",\"cvv2\":\"%s\",\"label\":\"%s\","
               "\"account\":\"%s\"}%s\n",
               c.v[i].pan, c.v[i].expiry, c.v[i].cvv2, c.v[i].label, c.v[i].account,
               i + 1 < c.n ? "," : "");
    fputs("]\n", stdout);
    sim_cards_free(&c);
    return fflush(stdout) == 0 ? 0 : 1;
}
