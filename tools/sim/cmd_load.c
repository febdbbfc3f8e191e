/*
 * cmd_load.c - `cardgate-sim load`: options, cards, run, report.
 */
#include "common/log.h"
#include "tools/sim/load.h"
#include "tools/sim/sim.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void load_usage(FILE *fp)
{
    fprintf(fp,
            "usage: cardgate-sim load --addr HOST:PORT --dialect NAME [--framing len2|len4ascii|"
            "len2bcd]\n         [--header none|tpdu]\n"
            "         [--cards FILE | --synth N [--accounts A]] [--hot] [--conns C] [--rate R] "
            "[--inflight K]\n"
            "         [--duration SECONDS] [--timeout SECONDS] [--mix purchase=85,reversal=5,...]\n"
            "         [--amount MINOR] [--seed N] [--json] [--zpk HEX] [--mac x919|alg1|cmac --mak "
            "HEX]\n"
            "  --mac/--mak: MAC every request (field 64/128) and check every answer's MAC\n"
            "  (a missing or wrong one counts as a mismatch; test keys only).\n"
            "  --mix pin=N: purchases with the card's \"pin\" (else 1234) as a format 0\n"
            "  PIN block under --zpk (the link's TDES zone PIN key; test keys only).\n"
            "  --rate R > 0: open loop, R requests/s over all connections, latency from the\n"
            "  scheduled send time; --rate 0: closed loop with K in flight per connection.\n"
            "  --inflight K: closed loop K; open loop the cap of in-flight requests per\n"
            "  connection (a request over the cap waits and its wait counts).\n"
            "  --synth N: cards 999999 + 9-digit index + Luhn, card i in account i %% A.\n");
}

/* strtod with a range; -1 on junk */
static int parse_num(const char *s, double lo, double hi, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

int sim_load_main(int argc, char **argv)
{
    static const struct option lo[] = {
        {"addr", required_argument, NULL, 'a'},     {"dialect", required_argument, NULL, 'd'},
        {"framing", required_argument, NULL, 'f'},  {"header", required_argument, NULL, 'T'},
        {"cards", required_argument, NULL, 'c'},    {"synth", required_argument, NULL, 's'},
        {"accounts", required_argument, NULL, 'W'}, {"hot", no_argument, NULL, 'H'},
        {"conns", required_argument, NULL, 'C'},    {"rate", required_argument, NULL, 'r'},
        {"inflight", required_argument, NULL, 'k'}, {"duration", required_argument, NULL, 'D'},
        {"timeout", required_argument, NULL, 't'},  {"mix", required_argument, NULL, 'm'},
        {"amount", required_argument, NULL, 'A'},   {"seed", required_argument, NULL, 'S'},
        {"json", no_argument, NULL, 'j'},           {"zpk", required_argument, NULL, 'z'},
        {"mac", required_argument, NULL, 'M'},      {"mak", required_argument, NULL, 'K'},
        {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0},
    };
    struct load_opts o;
    static uint8_t zpk[24];
    load_opts_default(&o);
    const char *dialect = NULL, *framing = NULL, *header = NULL, *cards_path = NULL;
    const char *mac = NULL, *mak = NULL;
    double synth = 0, accounts = 0, v;
    bool hot = false, json = false, inflight_set = false;
    char err[300];
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (ch) {
        case 'a':
            o.addr = optarg;
            break;
        case 'd':
            dialect = optarg;
            break;
        case 'f':
            framing = optarg;
            break;
        case 'c':
            cards_path = optarg;
            break;
        case 'H':
            hot = true;
            break;
        case 'j':
            json = true;
            break;
        case 'M':
            mac = optarg;
            break;
        case 'K':
            mak = optarg;
            break;
        case 'z':
            if (sim_parse_zpk(optarg, zpk, &o.zpk_len, err, sizeof(err)) != 0) {
                fprintf(stderr, "cardgate-sim load: %s\n", err);
                return 2;
            }
            o.zpk = zpk;
            break;
        case 'm':
            if (load_parse_mix(&o, optarg, err, sizeof(err)) != 0) {
                fprintf(stderr, "cardgate-sim load: %s\n", err);
                return 2;
            }
            break;
        case 's':
        case 'W':
        case 'C':
        case 'r':
        case 'k':
        case 'D':
        case 't':
        case 'A':
        case 'S': {
            static const struct {
                int ch;
                double lo, hi;
                const char *name;
            } rng[] = {{'s', 1, 10000000, "--synth"}, {'W', 1, 10000000, "--accounts"},
                       {'C', 1, 10000, "--conns"},    {'r', 0, 10000000, "--rate"},
                       {'k', 1, 65536, "--inflight"}, {'D', 0.001, 86400, "--duration"},
                       {'t', 0.001, 60, "--timeout"}, {'A', 0, 999999999999.0, "--amount"},
                       {'S', 0, 1e18, "--seed"}};
            size_t i = 0;
            while (rng[i].ch != ch)
                i++;
            if (parse_num(optarg, rng[i].lo, rng[i].hi, &v) != 0) {
                fprintf(stderr, "cardgate-sim load: %s: '%s' is not a number in %g..%g\n",
                        rng[i].name, optarg, rng[i].lo, rng[i].hi);
                return 2;
            }
            if (ch == 's')
                synth = v;
            else if (ch == 'W')
                accounts = v;
            else if (ch == 'C')
                o.conns = (int)v;
            else if (ch == 'r')
                o.rate = v;
            else if (ch == 'k') {
                o.inflight = (int)v;
                inflight_set = true;
            } else if (ch == 'D')
                o.duration_s = v;
            else if (ch == 't')
                o.timeout_us = (int64_t)(v * 1e6);
            else if (ch == 'A')
                o.amount = (int64_t)v;
            else
                o.seed = (uint64_t)v;
            break;
        }
        case 'h':
            load_usage(stdout);
            return 0;
        default:
            load_usage(stderr);
            return 2;
        }
    }
    if (optind != argc || !o.addr || !dialect || (cards_path && synth > 0)) {
        load_usage(stderr);
        return 2;
    }
    if (o.rate > 0 && !inflight_set)
        o.inflight = 1024;
    struct sim_link link;
    if ((mac == NULL) != (mak == NULL)) {
        fprintf(stderr, "cardgate-sim load: --mac and --mak go together\n");
        return 2;
    }
    if (sim_link_init(&link, dialect, framing, err, sizeof(err)) != 0 ||
        (header && sim_link_set_header(&link, header, err, sizeof(err)) != 0) ||
        (mac && sim_link_set_mac(&link, mac, mak, err, sizeof(err)) != 0)) {
        fprintf(stderr, "cardgate-sim load: %s\n", err);
        sim_link_free(&link);
        return 2;
    }
    struct sim_cards cards;
    int rc = cards_path
                 ? sim_cards_load(cards_path, &cards, err, sizeof(err))
                 : sim_cards_synth(synth > 0 ? (size_t)synth : 10000, (size_t)accounts, &cards);
    if (rc != 0) {
        fprintf(stderr, "cardgate-sim load: %s\n", cards_path ? err : "cannot make cards");
        sim_link_free(&link);
        return 1;
    }
    if (hot && sim_cards_keep_hot(&cards) == 0)
        log_warnx("--hot: no card marked hot and no account with several cards; using all");
    o.link = &link;
    o.cards = &cards;
    struct load_result *r = calloc(1, sizeof(*r));
    if (!r) {
        sim_cards_free(&cards);
        sim_link_free(&link);
        return 1;
    }
    rc = load_run(&o, r, err, sizeof(err));
    if (rc != 0)
        fprintf(stderr, "cardgate-sim load: %s\n", err);
    else if (json)
        load_print_json(stdout, r);
    else
        load_print_table(stdout, &o, r);
    int status = rc != 0 ? 1 : r->errors ? 1 : 0;
    free(r);
    sim_cards_free(&cards);
    sim_link_free(&link);
    return status;
}
