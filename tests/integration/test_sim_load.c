/*
 * test_sim_load.c - `cardgate-sim load` against the test responder
 * (tests/lib/responder.h): open-loop accounting of a server stall (no
 * coordinated omission), answer matching with wrong STANs, wrong MTIs and
 * dropped requests counted as mismatches and timeouts, every built-in
 * dialect with every framing, and the --json object's keys.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/json.h"
#include "tests/lib/responder.h"
#include "tools/sim/load.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct load_result *R;
static struct sim_cards Cards;

static int setup(void **state)
{
    (void)state;
    R = calloc(1, sizeof(*R));
    return R && sim_cards_synth(100, 0, &Cards) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    free(R);
    sim_cards_free(&Cards);
    return 0;
}

/* Start a responder with ro over dialect/framing and run one load with o. */
static void run_load_hdr(const char *dialect, const char *framing, const char *header,
                         struct responder_opts *ro, struct load_opts *o,
                         struct responder_stats *st_out)
{
    struct sim_link link;
    char err[300];
    assert_int_equal(sim_link_init(&link, dialect, framing, err, sizeof(err)), 0);
    if (header)
        assert_int_equal(sim_link_set_header(&link, header, err, sizeof(err)), 0);
    ro->link = &link;
    char addr[64];
    struct responder *resp = responder_start(ro, addr);
    assert_non_null(resp);
    o->addr = addr;
    o->link = &link;
    o->cards = &Cards;
    int rc = load_run(o, R, err, sizeof(err));
    if (rc != 0)
        print_error("load_run: %s\n", err);
    const struct responder_stats *st = responder_stats(resp);
    if (st_out) {
        atomic_store(&st_out->answered, atomic_load(&st->answered));
        atomic_store(&st_out->dropped, atomic_load(&st->dropped));
        atomic_store(&st_out->bad_stan, atomic_load(&st->bad_stan));
        atomic_store(&st_out->bad_mti, atomic_load(&st->bad_mti));
        atomic_store(&st_out->requests, atomic_load(&st->requests));
    }
    responder_stop(resp);
    sim_link_free(&link);
    /* the options must not keep pointers to this frame's locals */
    ro->link = NULL;
    o->link = NULL;
    o->addr = NULL;
    assert_int_equal(rc, 0);
}

static void run_load(const char *dialect, const char *framing, struct responder_opts *ro,
                     struct load_opts *o, struct responder_stats *st_out)
{
    run_load_hdr(dialect, framing, NULL, ro, o, st_out);
}

/*
 * A server that stalls 200 ms once while the generator may hold only 4
 * requests in flight: almost nothing is sent during the stall, yet the
 * ~200 requests scheduled in it are late by up to 200 ms, and that must
 * show in p99 and max (latency from the schedule, not from the send).
 */
static void test_open_loop_stall(void **state)
{
    (void)state;
    struct responder_opts ro = {.stall_at = 300, .stall_us = 200000};
    struct load_opts o;
    load_opts_default(&o);
    o.rate = 1000;
    o.inflight = 4;
    o.duration_s = 1.0;
    o.timeout_us = 2000000;
    run_load("ascii87", NULL, &ro, &o, NULL);
    load_print_table(stderr, &o, R);
    assert_int_equal(R->errors, 0);
    assert_int_equal(R->sent, 1000);
    assert_int_equal(R->answered, 1000);
    int64_t p50 = hist_percentile(&R->hist, 50), p99 = hist_percentile(&R->hist, 99);
    assert_true(p50 < 20000);
    assert_true(p99 >= 100000);
    assert_true(R->hist.max >= 180000);
    /* about a fifth of the samples were held up by the stall */
    int64_t p85 = hist_percentile(&R->hist, 85);
    assert_true(p85 >= 10000);
}

/* Closed loop, no stall: every request answered, the code counted. */
static void test_closed_loop_clean(void **state)
{
    (void)state;
    struct responder_opts ro = {0};
    struct load_opts o;
    load_opts_default(&o);
    o.conns = 2;
    o.inflight = 8;
    o.duration_s = 0.3;
    run_load("ascii87", "len2", &ro, &o, NULL);
    assert_int_equal(R->errors, 0);
    assert_true(R->sent > 100);
    assert_int_equal(R->answered, R->sent);
    assert_int_equal(R->by_code[0], R->answered); /* "00" is index 0 */
    uint64_t kinds = 0;
    for (int k = 0; k < SIM_K_COUNT; k++)
        kinds += R->by_kind[k];
    assert_int_equal(kinds, R->sent);
    assert_true(R->by_kind[SIM_K_REVERSAL] > 0 && R->by_kind[SIM_K_BALANCE] > 0);
}

/* Answers with another STAN are mismatches, and their requests time out. */
static void test_bad_stan(void **state)
{
    (void)state;
    struct responder_opts ro = {.bad_stan_every = 10};
    struct responder_stats st;
    struct load_opts o;
    load_opts_default(&o);
    o.inflight = 4;
    o.duration_s = 0.3;
    o.timeout_us = 100000;
    run_load("ascii87", NULL, &ro, &o, &st);
    unsigned bad = atomic_load(&st.bad_stan);
    assert_true(bad > 0);
    assert_int_equal(R->mismatches, bad);
    assert_int_equal(R->timeouts, bad);
    assert_int_equal(R->errors, 2 * bad);
    assert_int_equal(R->answered + R->timeouts, R->sent);
}

/* Answers with the wrong MTI are mismatches (the request is over: no timeout). */
static void test_bad_mti(void **state)
{
    (void)state;
    struct responder_opts ro = {.bad_mti_every = 7};
    struct responder_stats st;
    struct load_opts o;
    load_opts_default(&o);
    o.inflight = 4;
    o.duration_s = 0.3;
    run_load("bcd87", NULL, &ro, &o, &st);
    unsigned bad = atomic_load(&st.bad_mti);
    assert_true(bad > 0);
    assert_int_equal(R->mismatches, bad);
    assert_int_equal(R->timeouts, 0);
    assert_int_equal(R->errors, bad);
    assert_int_equal(R->answered + bad, R->sent);
}

/* Unanswered requests are timeouts; open loop keeps sending meanwhile. */
static void test_drops_time_out(void **state)
{
    (void)state;
    struct responder_opts ro = {.drop_every = 5};
    struct responder_stats st;
    struct load_opts o;
    load_opts_default(&o);
    o.rate = 500;
    o.inflight = 64;
    o.duration_s = 0.4;
    o.timeout_us = 100000;
    run_load("ebcdic87", NULL, &ro, &o, &st);
    unsigned dropped = atomic_load(&st.dropped);
    assert_int_equal(R->sent, 200);
    assert_int_equal(dropped, 40);
    assert_int_equal(R->timeouts, dropped);
    assert_int_equal(R->answered, R->sent - dropped);
    assert_int_equal(R->errors, dropped);
}

/* Every built-in dialect with every framing. */
static void test_dialects_and_framings(void **state)
{
    (void)state;
    static const char *const framings[] = {"len2", "len4ascii", "len2bcd"};
    for (const char *const *d = iso_dialect_builtin_names(); *d; d++)
        for (size_t f = 0; f < 3; f++) {
            struct responder_opts ro = {0};
            struct load_opts o;
            load_opts_default(&o);
            o.duration_s = 0.1;
            run_load(*d, framings[f], &ro, &o, NULL);
            if (R->errors || R->answered == 0)
                print_error("%s/%s: %llu answered, %llu errors\n", *d, framings[f],
                            (unsigned long long)R->answered, (unsigned long long)R->errors);
            assert_int_equal(R->errors, 0);
            assert_true(R->answered > 10);
        }
}

/*
 * The server closes the link mid-run: the requests in flight on it are lost
 * (errors), the generator reconnects and signs on again after a back-off,
 * and the requests scheduled during the outage go out late with the outage
 * in their latency.
 */
static void test_reconnect(void **state)
{
    (void)state;
    struct responder_opts ro = {.close_at = 200};
    struct load_opts o;
    load_opts_default(&o);
    o.rate = 1000;
    o.inflight = 64;
    o.duration_s = 0.6;
    o.timeout_us = 1000000;
    run_load("ascii87", NULL, &ro, &o, NULL);
    load_print_table(stderr, &o, R);
    assert_int_equal(R->reconnects, 1);
    assert_true(R->lost >= 1 && R->lost <= 64);
    assert_int_equal(R->errors, R->lost);
    assert_int_equal(R->sent, 600);
    assert_int_equal(R->answered + R->lost, R->sent);
    assert_true(R->hist.max >= 40000); /* the 50 ms back-off */
}

/* A 5-byte TPDU header after the length, swapped back by the server. */
static void test_tpdu_header(void **state)
{
    (void)state;
    struct sim_link link;
    char err[300];
    assert_int_equal(sim_link_init(&link, "bcd87", "len2", err, sizeof(err)), 0);
    assert_int_equal(sim_link_set_header(&link, "tpdx", err, sizeof(err)), -1);
    sim_link_free(&link);
    struct responder_opts ro = {0};
    struct load_opts o;
    load_opts_default(&o);
    o.duration_s = 0.2;
    run_load_hdr("bcd87", "len2", "tpdu", &ro, &o, NULL);
    assert_int_equal(R->errors, 0);
    assert_true(R->answered > 10);
}

/* --json prints one object with exactly the keys. */
static void test_json_keys(void **state)
{
    (void)state;
    memset(R, 0, sizeof(*R));
    R->offered_rate = 1000;
    R->duration_s = 2;
    R->sent = R->answered = 3;
    R->by_code[0] = 2;
    R->by_code[5 * 36 + 1] = 1; /* "51" */
    hist_record(&R->hist, 100);
    hist_record(&R->hist, 200);
    hist_record(&R->hist, 300);
    char *buf = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&buf, &len);
    assert_non_null(fp);
    load_print_json(fp, R);
    fclose(fp);
    char err[200];
    struct json *j = json_parse(buf, len, err, sizeof(err));
    if (!j)
        print_error("%s\n%s\n", err, buf);
    assert_non_null(j);
    static const char *const keys[] = {"offered_rate", "duration_s", "sent",
                                       "answered",     "errors",     "timeouts",
                                       "throughput",   "by_code",    "latency_us"};
    assert_int_equal(j->n, sizeof(keys) / sizeof(keys[0]));
    for (size_t i = 0; i < j->n; i++)
        assert_string_equal(j->kids[i].key, keys[i]);
    const struct json *bc = json_get(j, "by_code");
    assert_int_equal(json_get_long(bc, "00", -1), 2);
    assert_int_equal(json_get_long(bc, "51", -1), 1);
    const struct json *lat = json_get(j, "latency_us");
    static const char *const lk[] = {"p50", "p90", "p99", "p999", "max"};
    assert_int_equal(lat->n, 5);
    for (size_t i = 0; i < 5; i++)
        assert_string_equal(lat->kids[i].key, lk[i]);
    assert_int_equal(json_get_long(lat, "p50", -1), 200);
    assert_int_equal(json_get_long(lat, "max", -1), 300);
    json_free(j);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_keys),
        cmocka_unit_test(test_open_loop_stall),
        cmocka_unit_test(test_closed_loop_clean),
        cmocka_unit_test(test_bad_stan),
        cmocka_unit_test(test_bad_mti),
        cmocka_unit_test(test_drops_time_out),
        cmocka_unit_test(test_dialects_and_framings),
        cmocka_unit_test(test_tpdu_header),
        cmocka_unit_test(test_reconnect),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
