/*
 * test_dbpool_loss.c - daemon/dbpool when the database goes away: backends
 * killed with pg_terminate_backend while batches are in flight and queued
 * (every item failed, none dropped; reconnect; later submissions succeed),
 * and the server stopped (submissions refused at once) then started again
 * (recovery without restarting the pool).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/util.h"
#include "daemon/dbpool.h"
#include "tests/lib/dbptest.h"
#include "tests/lib/pgtest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct want {
    struct dbpool *pool;
    struct dbpt_ctx *ctx;
    unsigned up, ndone;
    uint64_t batches, failures;
};

static bool reached(void *arg)
{
    const struct want *w = arg;
    struct dbp_stats st;
    dbp_get_stats(w->pool, &st);
    return st.conns_up == w->up && w->ctx->ndone >= w->ndone && st.batches >= w->batches &&
           st.conn_failures >= w->failures;
}

/* Submit n echo requests with keys key0.. and wait for them all to succeed. */
static void round_trip_ok(struct dbpool *pool, struct dbpt_ctx *ctx, unsigned n)
{
    struct dbpt_req r[16];
    assert_true(n <= 16);
    unsigned before = ctx->ndone;
    for (unsigned i = 0; i < n; i++) {
        dbpt_req_init(&r[i], i, "ok", DBPT_STMT_ECHO);
        assert_int_equal(dbp_submit(pool, &r[i].item), 0);
    }
    struct dbp_stats st;
    dbp_get_stats(pool, &st);
    struct want w = {pool, ctx, st.conns_up, before + n, 0, 0};
    assert_true(dbpt_run_until(dbpt_base, reached, &w, 5000));
    for (unsigned i = 0; i < n; i++) {
        assert_int_equal(r[i].ndone, 1);
        assert_int_equal(r[i].status, DBP_OK);
        assert_int_equal(r[i].k, r[i].key);
    }
}

/* A pool of n connections (max_batch 8, back-off up to max_us) once all are up. */
static struct dbpool *pool_up(struct dbpt_ctx *ctx, unsigned n, int64_t max_us, struct want *w)
{
    struct dbp_config cfg;
    dbpt_config(&cfg, ctx, "", n, 8);
    cfg.reconnect_max_us = max_us;
    struct dbpool *pool = dbp_new(dbpt_base, &cfg);
    assert_non_null(pool);
    *w = (struct want){pool, ctx, n, 0, 0, 0};
    assert_true(dbpt_run_until(dbpt_base, reached, w, 10000));
    return pool;
}

static void test_terminate_backend_fails_items_and_recovers(void **state)
{
    struct dbpt_ctx ctx = {0};
    struct want w;
    struct dbpool *pool = pool_up(&ctx, 2, 400000, &w);

    /* per connection: a batch of 8 in flight (sleeping) and 2 queued */
    enum { PER = 10 };
    struct dbpt_req r[2 * PER];
    for (unsigned i = 0; i < 2 * PER; i++) {
        dbpt_req_init(&r[i], i % 2, "doomed", DBPT_STMT_ECHO);
        r[i].sleep_ms = 5000;
        assert_int_equal(dbp_submit(pool, &r[i].item), 0);
    }
    w.batches = 2;
    assert_true(dbpt_run_until(dbpt_base, reached, &w, 5000));
    struct dbp_stats st;
    dbp_get_stats(pool, &st);
    assert_int_equal(st.in_flight, 16);
    assert_int_equal(st.queued, 4);

    PGconn *c = pgtest_connect(&dbpt_pg);
    assert_non_null(c);
    char *v = pgtest_scalar(c, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                               "WHERE application_name = 'cardgated'");
    assert_non_null(v);
    assert_string_equal(v, "2");
    free(v);
    PQfinish(c);

    /* every item answered, none dropped; fast: no waiting for the sleep */
    w.ndone = 2 * PER;
    w.failures = 2;
    w.up = 2; /* and back up after the back-off */
    assert_true(dbpt_run_until(dbpt_base, reached, &w, 4000));
    for (unsigned i = 0; i < 2 * PER; i++) {
        assert_int_equal(r[i].ndone, 1);
        assert_int_not_equal(r[i].status, DBP_OK);
        if (i / 2 < 8) { /* the first 8 of each key were in flight */
            assert_true(r[i].sent);
        } else {
            assert_false(r[i].sent);
            assert_int_equal(r[i].status, DBP_ERR_CONN);
        }
    }
    dbp_get_stats(pool, &st);
    assert_int_equal(st.reconnects, 2);
    assert_int_equal(st.in_flight, 0);
    assert_int_equal(st.queued, 0);
    round_trip_ok(pool, &ctx, 8);
    dbp_free(pool);
}

static void test_server_stop_refuses_then_recovers(void **state)
{
    struct dbpt_ctx ctx = {0};
    struct want w;
    struct dbpool *pool = pool_up(&ctx, 2, 200000, &w);
    round_trip_ok(pool, &ctx, 4);
    assert_true(dbp_available(pool));

    /* requests in flight when the server stops are failed, not dropped */
    struct dbpt_req r[4];
    for (unsigned i = 0; i < 4; i++) {
        dbpt_req_init(&r[i], i, "lost", DBPT_STMT_ECHO);
        r[i].sleep_ms = 5000;
        assert_int_equal(dbp_submit(pool, &r[i].item), 0);
    }
    w.batches = 2 + 2;
    assert_true(dbpt_run_until(dbpt_base, reached, &w, 5000));
    assert_int_equal(pgtest_ctl(&dbpt_pg, "stop"), 0);
    w.up = 0;
    w.ndone = ctx.ndone + 4;
    assert_true(dbpt_run_until(dbpt_base, reached, &w, 5000));
    for (unsigned i = 0; i < 4; i++) {
        assert_int_equal(r[i].ndone, 1);
        assert_int_not_equal(r[i].status, DBP_OK);
    }

    /* no usable connection: refused synchronously, done() never runs */
    assert_false(dbp_available(pool));
    struct dbpt_req refused;
    dbpt_req_init(&refused, 1, "refused", DBPT_STMT_ECHO);
    struct dbp_stats st;
    dbp_get_stats(pool, &st);
    uint64_t refused_before = st.refused, fail_before = st.conn_failures;
    assert_int_equal(dbp_submit(pool, &refused.item), -1);
    dbpt_run_for(dbpt_base, 600);
    assert_int_equal(refused.ndone, 0);
    dbp_get_stats(pool, &st);
    assert_int_equal(st.refused, refused_before + 1);
    /* it kept trying (with back-off) while the server was down */
    assert_true(st.conn_failures >= fail_before + 2);

    assert_int_equal(pgtest_ctl(&dbpt_pg, "start"), 0);
    w.up = 2;
    assert_true(dbpt_run_until(dbpt_base, reached, &w, 10000));
    assert_true(dbp_available(pool));
    /* the refused item is still the caller's: it can be submitted again */
    assert_int_equal(dbp_submit(pool, &refused.item), 0);
    w.ndone = ctx.ndone + 1;
    assert_true(dbpt_run_until(dbpt_base, reached, &w, 5000));
    assert_int_equal(refused.status, DBP_OK);
    round_trip_ok(pool, &ctx, 8);
    dbp_free(pool);
}

/* Run one command on a connection of the test's own. */
static void exec_ok(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQerrorMessage(c));
    PQclear(r);
}

/*
 * A demoted primary: new sessions are read-only.  The batch that hits it
 * fails with the server's message, and the pool drops that connection on
 * its own (so a multi-host conninfo would find the new primary); once the
 * database is writable again, traffic resumes without restarting the pool.
 */
static void test_read_only_server_drops_connection(void **state)
{
    struct dbpt_ctx ctx = {0};
    struct want w;
    struct dbpool *pool = pool_up(&ctx, 1, 400000, &w);
    round_trip_ok(pool, &ctx, 2);

    PGconn *admin = pgtest_connect(&dbpt_pg);
    assert_non_null(admin);
    exec_ok(admin, "ALTER DATABASE cardgate SET default_transaction_read_only = on");
    exec_ok(admin, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                   "WHERE application_name = 'cardgated'");
    /* the pool reconnects, to a read-only session */
    w.failures = 1;
    w.ndone = ctx.ndone;
    assert_true(dbpt_run_until(dbpt_base, reached, &w, 5000));
    struct dbp_stats st;
    dbp_get_stats(pool, &st);
    uint64_t failures = st.conn_failures;

    struct dbpt_req r;
    dbpt_req_init(&r, 1, "ro", DBPT_STMT_ECHO);
    assert_int_equal(dbp_submit(pool, &r.item), 0);
    w.ndone = ctx.ndone + 1;
    w.failures = failures + 1; /* the batch's failure dropped the connection */
    w.up = 0;
    assert_true(dbpt_run_until(dbpt_base, reached, &w, 5000));
    assert_int_equal(r.status, DBP_ERR_SQL);
    assert_non_null(strstr(r.msg, "read-only"));

    exec_ok(admin, "ALTER DATABASE cardgate RESET default_transaction_read_only");
    PQfinish(admin);
    w.up = 1;
    assert_true(dbpt_run_until(dbpt_base, reached, &w, 5000));
    round_trip_ok(pool, &ctx, 4);
    dbp_free(pool);
}

/*
 * A server that accepts the connection but never finishes the prepares (the
 * statement's table is locked): the attempt ends at connect_timeout, the
 * connection is retried, and comes up once the lock is gone.
 */
static void test_prepare_timeout(void **state)
{
    PGconn *admin = pgtest_connect(&dbpt_pg);
    assert_non_null(admin);
    exec_ok(admin, "BEGIN");
    exec_ok(admin, "LOCK TABLE dbpt_log IN ACCESS EXCLUSIVE MODE");

    static const struct dbp_stmt locked[1] = {{
        .name = "dbpt_locked",
        .sql = "SELECT 1::int, count(*) FROM dbpt_log WHERE $1::bigint[] IS NOT NULL",
        .nparams = 1,
        .ord_col = 0,
    }};
    struct dbpt_ctx ctx = {0};
    struct dbp_config cfg;
    dbpt_config(&cfg, &ctx, "", 1, 8);
    cfg.stmts = locked;
    cfg.nstmts = 1;
    cfg.connect_timeout_us = 300000;
    struct dbpool *pool = dbp_new(dbpt_base, &cfg);
    assert_non_null(pool);
    struct want w = {pool, &ctx, 0, 0, 0, 1};
    int64_t t0 = util_now_us();
    assert_true(dbpt_run_until(dbpt_base, reached, &w, 5000));
    int64_t waited = util_now_us() - t0;
    assert_true(waited >= 250000); /* not before the timeout */
    struct dbp_stats st;
    dbp_get_stats(pool, &st);
    assert_int_equal(st.conns_up, 0);

    exec_ok(admin, "ROLLBACK");
    PQfinish(admin);
    w.up = 1;
    assert_true(dbpt_run_until(dbpt_base, reached, &w, 5000));
    dbp_free(pool);
}

/* Submit one key-0 request, check it was put on connection conn, and wait for its success. */
static void key0_round_trip(struct want *w, struct dbpt_req *r, const char *val, int conn)
{
    dbpt_req_init(r, 0, val, DBPT_STMT_ECHO);
    assert_int_equal(dbp_submit(w->pool, &r->item), 0);
    assert_int_equal(dbp_item_conn(w->pool, &r->item), conn);
    w->ndone = w->ctx->ndone + 1;
    assert_true(dbpt_run_until(dbpt_base, reached, w, 5000));
    assert_int_equal(r->ndone, 1);
    assert_int_equal(r->status, DBP_OK);
}

/*
 * Routing fallback: while the connection a key routes to is down, its
 * requests go to the next ready one (and succeed); once it is back, the key
 * returns to it.
 */
static void test_routing_falls_back_while_down(void **state)
{
    struct dbpt_ctx ctx = {0};
    struct dbp_config cfg;
    dbpt_config(&cfg, &ctx, "", 2, 8);
    cfg.reconnect_min_us = 1500000; /* a window to submit in while conn 0 is down */
    cfg.reconnect_max_us = 1500000;
    struct dbpool *pool = dbp_new(dbpt_base, &cfg);
    assert_non_null(pool);
    struct want w = {pool, &ctx, 2, 0, 0, 0};
    assert_true(dbpt_run_until(dbpt_base, reached, &w, 10000));

    struct dbpt_req probe;
    dbpt_req_init(&probe, 0, "probe", DBPT_STMT_ECHO);
    assert_int_equal(dbp_route(pool, 0), 0);
    assert_int_equal(dbp_submit(pool, &probe.item), 0);
    w.ndone = 1;
    assert_true(dbpt_run_until(dbpt_base, reached, &w, 5000));
    assert_int_equal(probe.status, DBP_OK);

    PGconn *admin = pgtest_connect(&dbpt_pg);
    assert_non_null(admin);
    char sql[100];
    snprintf(sql, sizeof(sql), "SELECT pg_terminate_backend(%d)", probe.pid);
    exec_ok(admin, sql);
    PQfinish(admin);
    w.up = 1;
    w.failures = 1;
    assert_true(dbpt_run_until(dbpt_base, reached, &w, 5000));

    struct dbpt_req moved;
    key0_round_trip(&w, &moved, "moved", 1);
    assert_int_not_equal(moved.pid, probe.pid);

    w.up = 2;
    assert_true(dbpt_run_until(dbpt_base, reached, &w, 5000));
    struct dbpt_req back;
    key0_round_trip(&w, &back, "back", 0);
    assert_int_not_equal(back.pid, moved.pid);
    dbp_free(pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_terminate_backend_fails_items_and_recovers,
                                        dbpt_base_setup, dbpt_base_teardown),
        cmocka_unit_test_setup_teardown(test_read_only_server_drops_connection, dbpt_base_setup,
                                        dbpt_base_teardown),
        cmocka_unit_test_setup_teardown(test_routing_falls_back_while_down, dbpt_base_setup,
                                        dbpt_base_teardown),
        cmocka_unit_test_setup_teardown(test_prepare_timeout, dbpt_base_setup, dbpt_base_teardown),
        cmocka_unit_test_setup_teardown(test_server_stop_refuses_then_recovers, dbpt_base_setup,
                                        dbpt_base_teardown),
    };
    return cmocka_run_group_tests(tests, dbpt_group_setup, dbpt_group_teardown);
}
