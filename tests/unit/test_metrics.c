/*
 * test_metrics.c - Prometheus text rendering of the daemon's counters:
 * requests by MTI and response code, cumulative latency buckets, error
 * kinds, a buffer too small, and the response MTI rule network management
 * uses (table-driven).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "daemon/metrics.h"
#include "daemon/netmgmt.h"

#include <stdio.h>
#include <string.h>

static char out[65536];

static void expect_line(const char *line)
{
    char want[256];
    snprintf(want, sizeof(want), "\n%s\n", line);
    if (strstr(out, want) == NULL)
        fail_msg("missing line: %s\n%s", line, out);
}

static void test_render(void **state)
{
    long n;

    (void)state;
    memset(&cg_metrics, 0, sizeof(cg_metrics));
    metrics_request("0100", "00", 300);     /* <= 500us */
    metrics_request("0100", "00", 1500);    /* <= 2ms */
    metrics_request("0100", "51", 100);     /* <= 250us */
    metrics_request("0200", "91", 9000000); /* only +Inf */
    cg_metrics.errors[MERR_DECODE] = 3;
    cg_metrics.links_open = 2;
    n = metrics_render(out, sizeof(out));
    assert_true(n > 0);
    assert_int_equal((size_t)n, strlen(out));
    expect_line("cardgate_links_open 2");
    expect_line("cardgate_requests_total{mti=\"0100\",rc=\"00\"} 2");
    expect_line("cardgate_requests_total{mti=\"0100\",rc=\"51\"} 1");
    expect_line("cardgate_requests_total{mti=\"0200\",rc=\"91\"} 1");
    expect_line("cardgate_errors_total{kind=\"decode\"} 3");
    expect_line("cardgate_errors_total{kind=\"write_buffer\"} 0");
    expect_line("cardgate_request_duration_seconds_bucket{le=\"0.000250\"} 1");
    expect_line("cardgate_request_duration_seconds_bucket{le=\"0.000500\"} 2");
    expect_line("cardgate_request_duration_seconds_bucket{le=\"0.002000\"} 3");
    expect_line("cardgate_request_duration_seconds_bucket{le=\"5.000000\"} 3");
    expect_line("cardgate_request_duration_seconds_bucket{le=\"+Inf\"} 4");
    expect_line("cardgate_request_duration_seconds_count 4");
    expect_line("cardgate_request_duration_seconds_sum 9.001900");
    expect_line("# TYPE cardgate_request_duration_seconds histogram");
}

static void test_too_small_and_overflowing_keys(void **state)
{
    char small[64];
    char mti[5], rc[3];

    (void)state;
    memset(&cg_metrics, 0, sizeof(cg_metrics));
    assert_int_equal(metrics_render(small, sizeof(small)), -1);
    /* more MTI/code pairs than slots: the rest is counted as "other" */
    for (int i = 0; i < METRICS_MAX_REQ_KEYS + 5; i++) {
        snprintf(mti, sizeof(mti), "0%03d", i);
        snprintf(rc, sizeof(rc), "00");
        metrics_request(mti, rc, 10);
    }
    assert_int_equal(cg_metrics.nreq, METRICS_MAX_REQ_KEYS);
    assert_int_equal(cg_metrics.req_other, 5);
    assert_true(metrics_render(out, sizeof(out)) > 0);
    expect_line("cardgate_requests_total{mti=\"other\",rc=\"other\"} 5");
}

static size_t fake_source(void *arg, char *buf, size_t cap)
{
    return (size_t)snprintf(buf, cap, "cardgate_db_connections %d\n", *(int *)arg);
}

static void test_sources_replace_placeholders(void **state)
{
    int conns = 3;
    static char small[sizeof(out)];

    (void)state;
    memset(&cg_metrics, 0, sizeof(cg_metrics));
    assert_true(metrics_render(out, sizeof(out)) > 0);
    expect_line("cardgate_db_connections 0");
    assert_int_equal(metrics_add_source(fake_source, &conns), 0);
    assert_true(metrics_render(out, sizeof(out)) > 0);
    expect_line("cardgate_db_connections 3");
    assert_null(strstr(out, "cardgate_db_connections 0")); /* no duplicate name */
    assert_null(strstr(out, "cardgate_db_connections_up"));
    /* a source that does not fit fails the whole render */
    long full = metrics_render(out, sizeof(out));
    assert_int_equal(metrics_render(small, (size_t)full), -1);
    assert_int_equal(metrics_render(small, (size_t)full + 1), full);
    metrics_clear_sources();
    for (int i = 0; i < METRICS_MAX_SOURCES; i++)
        assert_int_equal(metrics_add_source(fake_source, &conns), 0);
    assert_int_equal(metrics_add_source(fake_source, &conns), -1);
    metrics_clear_sources();
}

static void test_response_mti(void **state)
{
    static const char *const cases[][2] = {
        {"0100", "0110"}, {"0200", "0210"}, {"0120", "0130"}, {"0220", "0230"},
        {"0400", "0410"}, {"0420", "0430"}, {"0421", "0430"}, {"0800", "0810"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char got[5] = {0};
        netmgmt_response_mti(cases[i][0], got);
        assert_string_equal(got, cases[i][1]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_render),
        cmocka_unit_test(test_too_small_and_overflowing_keys),
        cmocka_unit_test(test_sources_replace_placeholders),
        cmocka_unit_test(test_response_mti),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
