/*
 * test_dbpool_offline.c - daemon/dbpool without a database: configuration checks,
 * the batch-size histogram and routing, a server that refuses connections
 * (submissions refused synchronously; attempts spaced by a doubling
 * back-off), and a server that accepts TCP but never speaks (connect
 * timeout).  Behaviour against a real PostgreSQL is in tests/integration.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/util.h"
#include "daemon/config.h"
#include "daemon/dbpool.h"
#include "tests/lib/dbptest.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Nothing listens on port 1; no GSS or SSL negotiation to muddy timing. */
#define REFUSED_CONNINFO "host=127.0.0.1 port=1 dbname=x user=x sslmode=disable gssencmode=disable"

static void test_bad_configs_refused(void **state)
{
    struct dbpt_ctx ctx = {0};
    struct dbp_config good;
    dbpt_config(&good, &ctx, REFUSED_CONNINFO, 1, 4);
    static const struct dbp_stmt bad_stmt[1] = {{.name = "x", .sql = NULL}};
    for (int i = 0; i < 9; i++) {
        struct dbp_config c = good;
        switch (i) {
        case 0:
            c.pool_size = 0;
            break;
        case 1:
            c.pool_size = DBP_MAX_CONNS + 1;
            break;
        case 2:
            c.max_batch = 0;
            break;
        case 3:
            c.nstmts = 0;
            break;
        case 4:
            c.ops.done = NULL;
            break;
        case 5:
            c.reconnect_min_us = 0;
            break;
        case 6:
            c.reconnect_max_us = c.reconnect_min_us - 1;
            break;
        case 7:
            c.connect_timeout_us = 0;
            break;
        case 8:
            c.stmts = bad_stmt;
            c.nstmts = 1;
            break;
        }
        assert_null(dbp_new(dbpt_base, &c));
    }
    struct dbpool *p = dbp_new(dbpt_base, &good);
    assert_non_null(p);
    dbp_free(p);
    assert_int_equal(ctx.ndone, 0);
}

static void test_hist_bounds_and_route(void **state)
{
    static const unsigned want[DBP_HIST_BUCKETS] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 0};
    for (unsigned i = 0; i < DBP_HIST_BUCKETS; i++)
        assert_int_equal(dbp_hist_bound(i), want[i]);

    struct dbpt_ctx ctx = {0};
    struct dbp_config cfg;
    dbpt_config(&cfg, &ctx, REFUSED_CONNINFO, 3, 4);
    struct dbpool *p = dbp_new(dbpt_base, &cfg);
    assert_non_null(p);
    assert_int_equal(dbp_route(p, 0), 0);
    assert_int_equal(dbp_route(p, 4), 1);
    assert_int_equal(dbp_route(p, UINT64_MAX), UINT64_MAX % 3);
    struct dbpt_req r;
    dbpt_req_init(&r, 1, "x", 0);
    assert_int_equal(dbp_item_conn(p, &r.item), -1);
    dbp_free(p);
}

/*
 * Nothing listens: every submission is refused at once (the item stays the
 * caller's, done() never runs), and attempts are spaced by a back-off that
 * doubles from 20 ms to 80 ms: about 1 + 600/80 attempts in 600 ms, far
 * fewer than the 30 a fixed 20 ms would make.
 */
static void test_refused_server_submit_fails_at_once(void **state)
{
    struct dbpt_ctx ctx = {0};
    struct dbp_config cfg;
    dbpt_config(&cfg, &ctx, REFUSED_CONNINFO, 2, 4);
    cfg.reconnect_min_us = 20000;
    cfg.reconnect_max_us = 80000;
    struct dbpool *p = dbp_new(dbpt_base, &cfg);
    assert_non_null(p);
    assert_false(dbp_available(p));
    struct dbpt_req r;
    dbpt_req_init(&r, 5, "x", 0);
    assert_int_equal(dbp_submit(p, &r.item), -1);
    r.item.stmt = 7; /* a bad statement index is refused too */
    assert_int_equal(dbp_submit(p, &r.item), -1);
    dbpt_run_for(dbpt_base, 600);
    assert_int_equal(r.ndone, 0);
    assert_int_equal(ctx.ndone, 0);
    struct dbp_stats st;
    dbp_get_stats(p, &st);
    assert_int_equal(st.refused, 2);
    assert_int_equal(st.conns_up, 0);
    assert_int_equal(st.conns_total, 2);
    /* per connection: attempts at ~0, 20, 60, 140, 220, ... ms */
    assert_true(st.conn_failures >= 2 * 4);
    assert_true(st.conn_failures <= 2 * 14);
    dbp_free(p);
}

/*
 * A listener that accepts (in the kernel backlog) but never answers the
 * startup packet: the attempt ends at connect_timeout, not never.
 */
static void test_connect_timeout(void **state)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(s >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(s, 8), 0);
    socklen_t len = sizeof(a);
    assert_int_equal(getsockname(s, (struct sockaddr *)&a, &len), 0);
    char ci[200];
    snprintf(ci, sizeof(ci),
             "host=127.0.0.1 port=%u dbname=x user=x sslmode=disable gssencmode=disable",
             ntohs(a.sin_port));

    struct dbpt_ctx ctx = {0};
    struct dbp_config cfg;
    dbpt_config(&cfg, &ctx, ci, 1, 4);
    cfg.connect_timeout_us = 150000;
    cfg.reconnect_min_us = 1000000; /* one attempt in the window */
    cfg.reconnect_max_us = 1000000;
    struct dbpool *p = dbp_new(dbpt_base, &cfg);
    assert_non_null(p);
    struct dbp_stats st;
    dbpt_run_for(dbpt_base, 80);
    dbp_get_stats(p, &st);
    assert_int_equal(st.conn_failures, 0); /* still waiting */
    dbpt_run_for(dbpt_base, 300);
    dbp_get_stats(p, &st);
    assert_int_equal(st.conn_failures, 1); /* timed out once, back-off running */
    assert_int_equal(st.conns_up, 0);
    dbp_free(p);
    close(s);
}

/* The [database] keys of a full config land in the pool's config. */
static void test_config_from_cg(void **state)
{
    struct cg_config *cg = calloc(1, sizeof(*cg));
    assert_non_null(cg);
    struct conf_err err;
    assert_int_equal(cg_config_load("tests/data/conf/good/full.conf", cg, &err), 0);
    struct dbp_config c;
    memset(&c, 0, sizeof(c));
    dbp_config_from_cg(&c, cg);
    assert_string_equal(c.conninfo, "host=db1,db2 dbname=cardgate target_session_attrs=read-write");
    assert_int_equal(c.pool_size, 8);
    assert_int_equal(c.max_batch, 128);
    assert_int_equal(c.connect_timeout_us, 2500000);
    assert_int_equal(c.reconnect_min_us, 50000);
    assert_int_equal(c.reconnect_max_us, 10000000);
    assert_null(c.stmts);
    free(cg);
}

/*
 * The Prometheus text for a fixed set of figures equals
 * tests/data/dbpool/stats.prom; a short buffer gets a truncated,
 * NUL-terminated prefix and the length it would need.
 */
static void test_stats_prometheus(void **state)
{
    struct dbp_stats st = {
        .conns_total = 4,
        .conns_up = 3,
        .batches = 10,
        .items_sent = 300,
        .batch_hist = {2, 0, 1, 0, 0, 3, 4, 0, 0, 0, 0},
        .in_flight = 64,
        .queued = 17,
        .reconnects = 2,
        .conn_failures = 5,
        .batch_errors = 1,
        .items_ok = 200,
        .items_failed = 36,
        .late = 3,
        .refused = 9,
    };
    size_t want_len;
    char *want = util_read_file("tests/data/dbpool/stats.prom", 1 << 16, &want_len);
    assert_non_null(want);
    char buf[8192];
    size_t n = dbp_stats_prometheus(&st, buf, sizeof(buf));
    assert_int_equal(n, strlen(buf));
    assert_string_equal(buf, want);
    char small[40];
    assert_int_equal(dbp_stats_prometheus(&st, small, sizeof(small)), n);
    assert_int_equal(strlen(small), sizeof(small) - 1);
    assert_memory_equal(small, want, sizeof(small) - 1);
    free(want);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_bad_configs_refused, dbpt_base_setup,
                                        dbpt_base_teardown),
        cmocka_unit_test_setup_teardown(test_hist_bounds_and_route, dbpt_base_setup,
                                        dbpt_base_teardown),
        cmocka_unit_test_setup_teardown(test_refused_server_submit_fails_at_once, dbpt_base_setup,
                                        dbpt_base_teardown),
        cmocka_unit_test_setup_teardown(test_connect_timeout, dbpt_base_setup, dbpt_base_teardown),
        cmocka_unit_test(test_config_from_cg),
        cmocka_unit_test(test_stats_prometheus),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
