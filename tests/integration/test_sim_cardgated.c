/*
 * test_sim_cardgated.c - cardgate-sim against a real cardgated (no database
 * yet: financial requests get the configured stand-in code, 96 here).
 * Proves the simulator and the daemon agree on framing, sign-on, echo and
 * answer matching (STAN, RRN echoed, answer MTI) in every built-in dialect
 * and framing the listener offers; the decision pipeline's end-to-end runs
 * come with it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "tests/lib/cgdtest.h"
#include "tools/sim/load.h"
#include "tools/sim/scenario.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct cgd D;
static struct load_result *R;
static struct sim_cards Cards;

static int setup(void **state)
{
    (void)state;
    R = calloc(1, sizeof(*R));
    if (!R || sim_cards_synth(100, 10, &Cards) != 0 || cgd_init(&D) != 0)
        return -1;
    /* one listener per built-in dialect and framing pair used below */
    if (cgd_write_conf(&D,
                       "[listener a]\naddress = 127.0.0.1:%u\ndialect = ascii87\nframing = len2\n"
                       "[listener b]\naddress = 127.0.0.1:%u\ndialect = bcd87\nframing = len2bcd\n"
                       "[listener e]\naddress = 127.0.0.1:%u\ndialect = ebcdic87\n"
                       "framing = len4ascii\n"
                       "[standin]\nresponse_code = 96\n",
                       D.port[0], D.port[1], D.port[2]) != 0)
        return -1;
    return cgd_start(&D, NULL);
}

static int teardown(void **state)
{
    (void)state;
    cgd_cleanup(&D);
    sim_cards_free(&Cards);
    free(R);
    return 0;
}

static void test_load_every_listener(void **state)
{
    (void)state;
    static const struct {
        int port;
        const char *dialect, *framing;
    } links[] = {{0, "ascii87", "len2"}, {1, "bcd87", "len2bcd"}, {2, "ebcdic87", "len4ascii"}};
    for (size_t i = 0; i < sizeof(links) / sizeof(links[0]); i++) {
        struct sim_link l;
        char err[300], addr[64];
        assert_int_equal(sim_link_init(&l, links[i].dialect, links[i].framing, err, sizeof(err)),
                         0);
        snprintf(addr, sizeof(addr), "127.0.0.1:%u", D.port[links[i].port]);
        struct load_opts o;
        load_opts_default(&o);
        o.addr = addr;
        o.link = &l;
        o.cards = &Cards;
        o.conns = 2;
        o.rate = 500;
        o.duration_s = 0.4;
        int rc = load_run(&o, R, err, sizeof(err));
        if (rc != 0 || R->errors)
            print_error("%s/%s: %s, %llu errors\n", links[i].dialect, links[i].framing,
                        rc ? err : "ran", (unsigned long long)R->errors);
        if (rc != 0 || R->errors)
            cgd_dump_log(&D);
        sim_link_free(&l);
        assert_int_equal(rc, 0);
        assert_int_equal(R->errors, 0);
        assert_int_equal(R->sent, 200);
        assert_int_equal(R->answered, 200);
        assert_int_equal(R->by_code[9 * 36 + 6], 200); /* "96" */
    }
}

/* The scenario's sign-on and echo match; every financial step gets 96. */
static void test_scenario_standin(void **state)
{
    (void)state;
    struct sim_link l;
    char err[300], addr[64];
    assert_int_equal(sim_link_init(&l, "ascii87", "len2", err, sizeof(err)), 0);
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", D.port[0]);
    struct sim_cards cards;
    assert_int_equal(sim_cards_load("tests/data/sim/cards.json", &cards, err, sizeof(err)), 0);
    struct scen_opts o;
    memset(&o, 0, sizeof(o));
    o.addr = addr;
    o.link = &l;
    o.cards = &cards;
    o.timeout_ms = 3000;
    static const char *const steps[] = {"purchase",   "balance",    "unknown_card", "expired",
                                        "frozen",     "over_limit", "blocked_mcc",  "insufficient",
                                        "wrong_cvv2", "reversal"};
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        char spec[40];
        snprintf(spec, sizeof(spec), "%s=96", steps[i]);
        assert_int_equal(scen_add_override(&o, spec, err, sizeof(err)), 0);
    }
    char *buf = NULL;
    size_t len;
    FILE *fp = open_memstream(&buf, &len);
    int rc = scenario_run(&o, fp);
    fclose(fp);
    /* the balance step also wants field 54, which a stand-in answer lacks */
    if (!strstr(buf, "12 of 13 steps matched"))
        print_error("%s\n", buf);
    assert_non_null(strstr(buf, "12 of 13 steps matched"));
    assert_non_null(strstr(buf, "no field 54"));
    assert_int_equal(rc, 1);
    for (size_t i = 0; i < cards.n; i++)
        assert_null(strstr(buf, cards.v[i].pan));
    free(buf);
    sim_cards_free(&cards);
    sim_link_free(&l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_every_listener),
        cmocka_unit_test(test_scenario_standin),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
