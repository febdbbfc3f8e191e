/*
 * test_sim_cli.c - the cardgate-sim binary: usage errors exit 2, `load
 * --json` prints the object and exits 0 without errors, `scenario`
 * exits 0 only when every answer matched (--expect overrides), and neither
 * prints a clear PAN.  The server is the in-process test responder.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/json.h"
#include "tests/lib/capture.h"
#include "tests/lib/responder.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char Out[256 * 1024];
static char Addr[64];
static struct sim_link Link;
static struct responder *Resp;

static const char *bin(void)
{
    static char path[256];
    const char *b = getenv("CARDGATE_BUILD");
    snprintf(path, sizeof(path), "%s/cardgate-sim", b ? b : "build");
    return path;
}

static int setup(void **state)
{
    (void)state;
    char err[200];
    if (sim_link_init(&Link, "ascii87", NULL, err, sizeof(err)) != 0)
        return -1;
    struct responder_opts ro = {.link = &Link};
    Resp = responder_start(&ro, Addr);
    return Resp ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    responder_stop(Resp);
    sim_link_free(&Link);
    return 0;
}

static void test_usage(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "bogus",
        "load --dialect ascii87",
        "load --addr 127.0.0.1:1 --dialect ascii87 --mix bogus=1",
        "load --addr 127.0.0.1:1 --dialect ascii87 --rate -5",
        "load --addr 127.0.0.1:1 --dialect ascii87 --framing len9",
        "scenario --addr 127.0.0.1:1",
        "scenario --addr 127.0.0.1:1 --dialect ascii87 --expect nostep=00",
        "scenario --addr 127.0.0.1:1 --dialect ascii87 extra",
    };
    char cmd[512];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(cmd, sizeof(cmd), "%s %s 2>&1", bin(), bad[i]);
        int rc = test_capture(cmd, Out, sizeof(Out));
        if (rc != 2)
            print_error("'%s' exited %d:\n%s\n", bad[i], rc, Out);
        assert_int_equal(rc, 2);
    }
    snprintf(cmd, sizeof(cmd), "%s load --help", bin());
    assert_int_equal(test_capture(cmd, Out, sizeof(Out)), 0);
    assert_non_null(strstr(Out, "--rate"));
}

static void test_load_json(void **state)
{
    (void)state;
    char cmd[512];
    snprintf(cmd, sizeof(cmd),
             "%s load --addr %s --dialect ascii87 --synth 50 --conns 2 --rate 400 "
             "--duration 0.5 --json",
             bin(), Addr);
    int rc = test_capture(cmd, Out, sizeof(Out));
    if (rc != 0)
        print_error("%s\n", Out);
    assert_int_equal(rc, 0);
    char err[200];
    struct json *j = json_parse(Out, strlen(Out), err, sizeof(err));
    if (!j)
        print_error("%s: %s\n", err, Out);
    assert_non_null(j);
    assert_int_equal(json_get_long(j, "offered_rate", -1), 400);
    assert_int_equal(json_get_long(j, "sent", -1), 200);
    assert_int_equal(json_get_long(j, "answered", -1), 200);
    assert_int_equal(json_get_long(j, "errors", -1), 0);
    assert_int_equal(json_get_long(json_get(j, "by_code"), "00", -1), 200);
    assert_true(json_get_long(json_get(j, "latency_us"), "max", -1) > 0);
    json_free(j);
    assert_null(strstr(Out, "999999000"));
}

/* `cards` prints the synthetic set as a cards file the reader accepts. */
static void test_cards_export(void **state)
{
    (void)state;
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "%s cards --synth 30 --accounts 4 > build/sim-cards-test.json",
             bin());
    assert_int_equal(test_capture(cmd, Out, sizeof(Out)), 0);
    struct sim_cards c, s;
    char err[300];
    assert_int_equal(sim_cards_load("build/sim-cards-test.json", &c, err, sizeof(err)), 0);
    assert_int_equal(sim_cards_synth(30, 4, &s), 0);
    assert_int_equal(c.n, 30);
    for (size_t i = 0; i < c.n; i++) {
        assert_string_equal(c.v[i].pan, s.v[i].pan);
        assert_string_equal(c.v[i].account, s.v[i].account);
    }
    sim_cards_free(&c);
    sim_cards_free(&s);
    remove("build/sim-cards-test.json");
    snprintf(cmd, sizeof(cmd), "%s cards 2>&1", bin());
    assert_int_equal(test_capture(cmd, Out, sizeof(Out)), 2);
}

static void test_load_unreachable(void **state)
{
    (void)state;
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "%s load --addr 127.0.0.1:1 --dialect ascii87 --duration 0.1 2>&1",
             bin());
    assert_int_equal(test_capture(cmd, Out, sizeof(Out)), 1);
    assert_non_null(strstr(Out, "connect"));
}

/* This responder approves everything: the declines match only when overridden. */
static void test_scenario_expect(void **state)
{
    (void)state;
    char cmd[1024];
    snprintf(cmd, sizeof(cmd),
             "%s scenario --addr %s --dialect ascii87 --cards tests/data/sim/cards.json", bin(),
             Addr);
    assert_int_equal(test_capture(cmd, Out, sizeof(Out)), 1);
    assert_non_null(strstr(Out, "MISMATCH"));
    assert_null(strstr(Out, "4761739001010010"));
    size_t n = strlen(cmd);
    static const char *const steps[] = {"unknown_card", "expired",      "frozen",    "over_limit",
                                        "blocked_mcc",  "insufficient", "wrong_cvv2"};
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++)
        n += (size_t)snprintf(cmd + n, sizeof(cmd) - n, " --expect %s=00", steps[i]);
    int rc = test_capture(cmd, Out, sizeof(Out));
    if (rc != 0)
        print_error("%s\n", Out);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(Out, "13 of 13 steps matched"));
    assert_null(strstr(Out, "4761739001010010"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_usage),           cmocka_unit_test(test_load_json),
        cmocka_unit_test(test_cards_export),    cmocka_unit_test(test_load_unreachable),
        cmocka_unit_test(test_scenario_expect),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
