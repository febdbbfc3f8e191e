/*
 * cmd_scenario.c - `cardgate-sim scenario`: options, cards, run.
 */
#include "tools/sim/scenario.h"

#include "common/util.h"
#include "crypto/cipher.h"
#include "tools/sim/sim.h"

#include <getopt.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void scen_usage(FILE *fp)
{
    fprintf(
        fp,
        "usage: cardgate-sim scenario --addr HOST:PORT --dialect NAME\n"
        "         [--framing len2|len4ascii|len2bcd] [--header none|tpdu] [--cards FILE] [--json]\n"
        "         [--timeout SECONDS] [--expect STEP=CODE]... [--mac x919|alg1|cmac --mak HEX]\n"
        "         [--imk HEX] [--zpk HEX]\n"
        "  steps: signon echo purchase duplicate balance unknown_card expired frozen\n"
        "         over_limit blocked_mcc insufficient wrong_cvv2 pin wrong_pin chip chip_forged\n"
        "         reversal\n"
        "  --mac/--mak: MAC every request (field 64/128) and check every answer's MAC\n"
        "  --imk: the IMK-AC (32 hex) for the chip steps' ARQC (left out without it)\n"
        "  --zpk: the link's TDES zone PIN key (test keys only): the pin steps send the\n"
        "         ok card's \"pin\" as a format 0 block (field 52)\n"
        "  exit 0 when every answer matched the expected code, 1 otherwise\n");
}

int sim_scenario_main(int argc, char **argv)
{
    static const struct option lo[] = {
        {"addr", required_argument, NULL, 'a'},    {"dialect", required_argument, NULL, 'd'},
        {"framing", required_argument, NULL, 'f'}, {"header", required_argument, NULL, 'T'},
        {"cards", required_argument, NULL, 'c'},   {"json", no_argument, NULL, 'j'},
        {"timeout", required_argument, NULL, 't'}, {"expect", required_argument, NULL, 'e'},
        {"mac", required_argument, NULL, 'M'},     {"mak", required_argument, NULL, 'K'},
        {"imk", required_argument, NULL, 'I'},     {"zpk", required_argument, NULL, 'z'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
    };
    struct scen_opts o;
    static uint8_t zpk[24];
    memset(&o, 0, sizeof(o));
    o.timeout_ms = 5000;
    const char *dialect = NULL, *framing = NULL, *header = NULL, *cards_path = NULL;
    const char *mac = NULL, *mak = NULL;
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
        case 'j':
            o.json = true;
            break;
        case 't': {
            char *end;
            double v = strtod(optarg, &end);
            if (end == optarg || *end || v < 0.001 || v > 600) {
                fprintf(stderr, "cardgate-sim scenario: --timeout: bad value '%s'\n", optarg);
                return 2;
            }
            o.timeout_ms = (int)(v * 1000);
            break;
        }
        case 'e':
            if (scen_add_override(&o, optarg, err, sizeof(err)) != 0) {
                fprintf(stderr, "cardgate-sim scenario: %s\n", err);
                return 2;
            }
            break;
        case 'M':
            mac = optarg;
            break;
        case 'K':
            mak = optarg;
            break;
        case 'I':
            if (strlen(optarg) != 32 || util_hex_decode(optarg, o.imk, sizeof(o.imk)) != 16) {
                fprintf(stderr, "cardgate-sim scenario: --imk: expected 32 hex digits\n");
                return 2;
            }
            o.have_imk = true;
            break;
        case 'z':
            if (sim_parse_zpk(optarg, zpk, &o.zpk_len, err, sizeof(err)) != 0) {
                fprintf(stderr, "cardgate-sim scenario: %s\n", err);
                return 2;
            }
            o.zpk = zpk;
            break;
        case 'h':
            scen_usage(stdout);
            return 0;
        default:
            scen_usage(stderr);
            return 2;
        }
    }
    if (optind != argc || !o.addr || !dialect || (mac == NULL) != (mak == NULL)) {
        scen_usage(stderr);
        return 2;
    }
    if ((mac != NULL || o.have_imk) && crypto_init(err, sizeof(err)) != 0) {
        fprintf(stderr, "cardgate-sim scenario: %s\n", err);
        return 1;
    }
    struct sim_link link;
    if (sim_link_init(&link, dialect, framing, err, sizeof(err)) != 0 ||
        (header && sim_link_set_header(&link, header, err, sizeof(err)) != 0) ||
        (mac && sim_link_set_mac(&link, mac, mak, err, sizeof(err)) != 0)) {
        fprintf(stderr, "cardgate-sim scenario: %s\n", err);
        sim_link_free(&link);
        return 2;
    }
    struct sim_cards cards = {0};
    if (cards_path && sim_cards_load(cards_path, &cards, err, sizeof(err)) != 0) {
        fprintf(stderr, "cardgate-sim scenario: %s\n", err);
        sim_link_free(&link);
        return 1;
    }
    o.link = &link;
    o.cards = &cards;
    int rc = scenario_run(&o, stdout);
    OPENSSL_cleanse(o.imk, sizeof(o.imk));
    OPENSSL_cleanse(zpk, sizeof(zpk));
    sim_cards_free(&cards);
    sim_link_free(&link);
    return rc;
}
