/*
 * test_dbpool.c - daemon/dbpool against a real PostgreSQL, driving a real
 * libevent loop: batching that grows with load, results on the right items,
 * routing, an SQL error failing only its batch, awkward values round-tripping
 * through text arrays (tests/data/dbpool/values.txt), multi-host conninfo,
 * and a cancelled item whose late outcome is still delivered.  Connection
 * loss (terminate, server stop/start) is in test_dbpool_loss.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "daemon/dbpool.h"
#include "tests/lib/dbptest.h"
#include "tests/lib/pgtest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct fixture {
    struct dbpt_ctx ctx;
    struct dbpool *pool;
};

static bool pool_all_up(void *arg)
{
    struct fixture *f = arg;
    struct dbp_stats st;
    dbp_get_stats(f->pool, &st);
    return st.conns_up == st.conns_total;
}

/* A pool of n connections with max_batch mb, up before the test starts. */
static struct fixture *fixture_new(const char *conninfo, unsigned n, unsigned mb)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    struct dbp_config cfg;
    dbpt_config(&cfg, &f->ctx, conninfo, n, mb);
    f->pool = dbp_new(dbpt_base, &cfg);
    assert_non_null(f->pool);
    assert_true(dbpt_run_until(dbpt_base, pool_all_up, f, 10000));
    return f;
}

static void fixture_free(struct fixture *f)
{
    dbp_free(f->pool);
    free(f);
}

struct wait_n {
    struct dbpt_ctx *ctx;
    unsigned n;
};

static bool ndone_reached(void *arg)
{
    struct wait_n *w = arg;
    return w->ctx->ndone >= w->n;
}

static void run_until_done(struct fixture *f, unsigned n, int timeout_ms)
{
    struct wait_n w = {&f->ctx, n};
    assert_true(dbpt_run_until(dbpt_base, ndone_reached, &w, timeout_ms));
}

struct wait_batches {
    struct dbpool *pool;
    uint64_t n;
};

static bool batches_reached(void *arg)
{
    struct wait_batches *w = arg;
    struct dbp_stats st;
    dbp_get_stats(w->pool, &st);
    return st.batches >= w->n;
}

static void run_until_batches(struct fixture *f, uint64_t n)
{
    struct wait_batches w = {f->pool, n};
    assert_true(dbpt_run_until(dbpt_base, batches_reached, &w, 5000));
}

/* A one-value query on a connection of the test's own returns want. */
static void assert_scalar(const char *sql, const char *want)
{
    PGconn *c = pgtest_connect(&dbpt_pg);
    assert_non_null(c);
    char *v = pgtest_scalar(c, sql);
    assert_non_null(v);
    assert_string_equal(v, want);
    free(v);
    PQfinish(c);
}

/* Every request got exactly its own row back. */
static void assert_echoed(const struct dbpt_req *r)
{
    assert_int_equal(r->ndone, 1);
    assert_int_equal(r->status, DBP_OK);
    assert_int_equal(r->k, r->key);
    assert_string_equal(r->v, r->val);
    assert_true(r->sent);
    assert_false(r->cancelled);
}

/*
 * One request at low load is a batch of one; 500 submitted while the
 * connection is busy go out in max_batch-sized calls, each item getting its
 * own row although the function returns rows in reverse order.
 */
static void test_batching_grows_with_load(void **state)
{
    struct fixture *f = fixture_new("", 1, 64);
    struct dbpt_req one;
    dbpt_req_init(&one, 7, "single", DBPT_STMT_ECHO);
    assert_int_equal(dbp_submit(f->pool, &one.item), 0);
    assert_false(one.done); /* never delivered from inside dbp_submit */
    run_until_done(f, 1, 5000);
    assert_echoed(&one);
    assert_int_equal(one.n, 1);
    assert_int_equal(one.ord, 1);

    /* a slow call makes the connection busy; 500 more queue behind it */
    struct dbpt_req slow;
    dbpt_req_init(&slow, 1, "slow", DBPT_STMT_ECHO);
    slow.sleep_ms = 200;
    assert_int_equal(dbp_submit(f->pool, &slow.item), 0);
    run_until_batches(f, 2);
    enum { N = 500 };
    struct dbpt_req *r = calloc(N, sizeof(*r));
    assert_non_null(r);
    for (unsigned i = 0; i < N; i++) {
        char v[32];
        snprintf(v, sizeof(v), "v%u", i);
        dbpt_req_init(&r[i], 1000 + i, v, DBPT_STMT_ECHO);
        assert_int_equal(dbp_submit(f->pool, &r[i].item), 0);
    }
    struct dbp_stats st;
    dbp_get_stats(f->pool, &st);
    assert_int_equal(st.queued, N);
    assert_int_equal(st.in_flight, 1);
    run_until_done(f, 2 + N, 20000);
    assert_echoed(&slow);
    unsigned maxn = 0;
    for (unsigned i = 0; i < N; i++) {
        assert_echoed(&r[i]);
        if ((unsigned)r[i].n > maxn)
            maxn = (unsigned)r[i].n;
        /* queue order is batch order: ordinals count up within each call */
        assert_int_equal(r[i].ord, (int)(i % 64) + 1);
    }
    assert_int_equal(maxn, 64);
    dbp_get_stats(f->pool, &st);
    /* 1 + 1 + ceil(500 / 64) calls, not 502 */
    assert_int_equal(st.batches, 2 + 8);
    assert_int_equal(st.items_sent, 2 + N);
    assert_int_equal(st.items_ok, 2 + N);
    assert_int_equal(st.batch_hist[0], 2);     /* the two single ones */
    assert_int_equal(st.batch_hist[6], 7 + 1); /* seven of 64, one of 52 (33..64) */
    assert_int_equal(st.in_flight, 0);
    assert_int_equal(st.queued, 0);
    free(r);
    fixture_free(f);
}

/* Items of different statements never share a call; order is kept. */
static void test_statements_split_batches(void **state)
{
    struct fixture *f = fixture_new("", 1, 64);
    static const unsigned stmts[] = {0, 0, 1, 1, 1, 0};
    struct dbpt_req r[6];
    for (unsigned i = 0; i < 6; i++) {
        dbpt_req_init(&r[i], 10 + i, "s", stmts[i]);
        assert_int_equal(dbp_submit(f->pool, &r[i].item), 0);
    }
    run_until_done(f, 6, 5000);
    struct dbp_stats st;
    dbp_get_stats(f->pool, &st);
    assert_int_equal(st.batches, 3);
    static const int ords[] = {1, 2, 1, 2, 3, 1};
    for (unsigned i = 0; i < 6; i++) {
        assert_int_equal(r[i].status, DBP_OK);
        assert_int_equal(r[i].k, r[i].key);
        assert_int_equal(r[i].ord, ords[i]);
    }
    fixture_free(f);
}

/* Requests of one key always run on one backend; keys spread over all. */
static void test_routing_keeps_key_on_one_connection(void **state)
{
    enum { NC = 4, NK = 12, PER = 25 };
    struct fixture *f = fixture_new("", NC, 16);
    struct dbpt_req *r = calloc(NK * PER, sizeof(*r));
    assert_non_null(r);
    for (unsigned round = 0; round < PER; round++) {
        for (unsigned k = 0; k < NK; k++) {
            struct dbpt_req *q = &r[round * NK + k];
            dbpt_req_init(q, 5000 + k, "route", DBPT_STMT_ECHO);
            assert_int_equal(dbp_submit(f->pool, &q->item), 0);
            assert_int_equal(dbp_item_conn(f->pool, &q->item),
                             (int)dbp_route(f->pool, (uint64_t)q->key));
        }
        /* let some rounds go out on their own, so several calls are involved */
        if (round % 5 == 0)
            dbpt_run_for(dbpt_base, 5);
    }
    run_until_done(f, NK * PER, 10000);
    int pid_of_key[NK] = {0};
    int pid_of_conn[NC] = {0};
    for (unsigned i = 0; i < NK * PER; i++) {
        assert_int_equal(r[i].status, DBP_OK);
        unsigned k = (unsigned)(r[i].key - 5000);
        if (pid_of_key[k] == 0)
            pid_of_key[k] = r[i].pid;
        assert_int_equal(r[i].pid, pid_of_key[k]);
        unsigned c = dbp_route(f->pool, (uint64_t)r[i].key);
        if (pid_of_conn[c] == 0)
            pid_of_conn[c] = r[i].pid;
        assert_int_equal(r[i].pid, pid_of_conn[c]);
    }
    for (unsigned a = 0; a < NC; a++)
        for (unsigned b = a + 1; b < NC; b++)
            assert_int_not_equal(pid_of_conn[a], pid_of_conn[b]);
    free(r);
    fixture_free(f);
}

/*
 * A batch whose function raises fails only its own items, with the server's
 * message; the batch before and the one after succeed on the same backend,
 * and the failed batch left nothing behind (it rolled back).
 */
static void test_sql_error_fails_only_its_batch(void **state)
{
    struct fixture *f = fixture_new("", 1, 64);
    struct dbpt_req before, bad[3], after;
    dbpt_req_init(&before, 1, "before", DBPT_STMT_ECHO);
    before.sleep_ms = 100;
    assert_int_equal(dbp_submit(f->pool, &before.item), 0);
    run_until_batches(f, 1);
    dbpt_req_init(&bad[0], 2, "doomed-1", DBPT_STMT_ECHO);
    dbpt_req_init(&bad[1], 3, "boom", DBPT_STMT_ECHO);
    dbpt_req_init(&bad[2], 4, "doomed-2", DBPT_STMT_ECHO);
    for (unsigned i = 0; i < 3; i++)
        assert_int_equal(dbp_submit(f->pool, &bad[i].item), 0);
    run_until_done(f, 4, 5000);
    dbpt_req_init(&after, 5, "after", DBPT_STMT_ECHO);
    assert_int_equal(dbp_submit(f->pool, &after.item), 0);
    run_until_done(f, 5, 5000);

    assert_echoed(&before);
    assert_echoed(&after);
    assert_int_equal(after.pid, before.pid);
    for (unsigned i = 0; i < 3; i++) {
        assert_int_equal(bad[i].ndone, 1);
        assert_int_equal(bad[i].status, DBP_ERR_SQL);
        assert_true(bad[i].sent);
        assert_string_equal(bad[i].msg, "boom requested");
    }
    struct dbp_stats st;
    dbp_get_stats(f->pool, &st);
    assert_int_equal(st.batch_errors, 1);
    assert_int_equal(st.conn_failures, 0);
    assert_int_equal(st.conns_up, 1);
    assert_scalar("SELECT count(*) FROM dbpt_log WHERE v LIKE 'doomed%'", "0");
    assert_scalar("SELECT count(*) FROM dbpt_log WHERE v IN ('before', 'after')", "2");
    fixture_free(f);
}

/*
 * A function failing every batch logs at most once a second per connection;
 * the next line says how many were skipped.  stderr goes to a temporary
 * file for the test.
 */
static void test_batch_errors_logged_sparingly(void **state)
{
    struct fixture *f = fixture_new("", 1, 64);
    fflush(stderr);
    int saved = dup(2);
    FILE *tmp = tmpfile();
    assert_true(saved >= 0 && tmp != NULL);
    assert_true(dup2(fileno(tmp), 2) >= 0);

    struct dbpt_req r;
    for (unsigned i = 0; i < 6; i++) {
        if (i == 5)
            dbpt_run_for(dbpt_base, 1100);
        dbpt_req_init(&r, 1, "boom", DBPT_STMT_ECHO);
        assert_int_equal(dbp_submit(f->pool, &r.item), 0);
        run_until_done(f, i + 1, 5000);
        assert_int_equal(r.status, DBP_ERR_SQL);
    }
    fflush(stderr);
    assert_true(dup2(saved, 2) >= 0);
    close(saved);

    char log[4096];
    rewind(tmp);
    size_t n = fread(log, 1, sizeof(log) - 1, tmp);
    log[n] = '\0';
    fclose(tmp);
    unsigned lines = 0;
    for (const char *p = log; (p = strstr(p, "batch of 1 failed: boom requested")) != NULL; p++)
        lines++;
    assert_int_equal(lines, 2);
    assert_non_null(strstr(log, "boom requested (4 more failed batches not logged)"));
    struct dbp_stats st;
    dbp_get_stats(f->pool, &st);
    assert_int_equal(st.batch_errors, 6);
    fixture_free(f);
}

/*
 * Awkward values from a data file go through a text array (dbpt_echo) and
 * through JSON (dbpt_json, the shape of authorize_batch_json, with a binary
 * parameter) and come back equal, in one call each.
 */
static void test_values_round_trip(void **state)
{
    FILE *fp = fopen("tests/data/dbpool/values.txt", "r");
    assert_non_null(fp);
    char vals[64][128];
    unsigned n = 0;
    while (n < 64 && fgets(vals[n], sizeof(vals[n]), fp) != NULL) {
        vals[n][strcspn(vals[n], "\n")] = '\0';
        if (vals[n][0] == '#')
            continue;
        /* "<empty>" stands for the empty string */
        if (strcmp(vals[n], "<empty>") == 0)
            vals[n][0] = '\0';
        n++;
    }
    fclose(fp);
    assert_true(n >= 8);
    struct fixture *f = fixture_new("", 1, 256);
    static const unsigned stmts[] = {DBPT_STMT_ECHO, DBPT_STMT_JSON};
    for (unsigned s = 0; s < 2; s++) {
        struct dbpt_req r[64];
        unsigned before = f->ctx.ndone;
        for (unsigned i = 0; i < n; i++) {
            dbpt_req_init(&r[i], (long long)i - 3, vals[i], stmts[s]);
            assert_int_equal(dbp_submit(f->pool, &r[i].item), 0);
        }
        run_until_done(f, before + n, 5000);
        for (unsigned i = 0; i < n; i++) {
            assert_echoed(&r[i]);
            assert_int_equal(r[i].ord, (int)i + 1);
            assert_int_equal(r[i].n, (int)n); /* one call */
        }
    }
    fixture_free(f);
}

/*
 * A multi-host conninfo with target_session_attrs=read-write is passed to
 * libpq as is: the first host refuses, the second (the real one) serves.
 */
static void test_multi_host_conninfo(void **state)
{
    char ci[1024];
    snprintf(ci, sizeof(ci),
             "host=127.0.0.1,%s port=1,%s dbname=cardgate user=cardgate "
             "target_session_attrs=read-write",
             dbpt_pg.host, dbpt_pg.port);
    struct fixture *f = fixture_new(ci, 2, 16);
    struct dbpt_req r;
    dbpt_req_init(&r, 1, "multi", DBPT_STMT_ECHO);
    assert_int_equal(dbp_submit(f->pool, &r.item), 0);
    run_until_done(f, 1, 5000);
    assert_echoed(&r);
    fixture_free(f);
}

/*
 * The pipeline gives up on an item whose batch is in flight: the late
 * outcome still arrives (cancelled set) for compensation.  A queued item
 * cancelled before sending gets DBP_ERR_CANCEL at once.  Heap requests freed
 * in done() prove (under ASan) the pool never touches an item afterwards.
 */
static void test_cancel_late_outcome_delivered(void **state)
{
    struct fixture *f = fixture_new("", 1, 64);
    struct dbpt_req slow, queued;
    dbpt_req_init(&slow, 1, "slow", DBPT_STMT_ECHO);
    slow.sleep_ms = 300;
    assert_int_equal(dbp_submit(f->pool, &slow.item), 0);
    run_until_batches(f, 1);
    /* three heap requests ride in the next batch and are freed in done() */
    for (unsigned i = 0; i < 3; i++) {
        struct dbpt_req *h = malloc(sizeof(*h));
        assert_non_null(h);
        dbpt_req_init(h, 1, "heap", DBPT_STMT_ECHO);
        h->free_on_done = true;
        assert_int_equal(dbp_submit(f->pool, &h->item), 0);
    }
    dbpt_req_init(&queued, 1, "queued", DBPT_STMT_ECHO);
    assert_int_equal(dbp_submit(f->pool, &queued.item), 0);

    assert_false(dbp_cancel(f->pool, &slow.item)); /* in flight: only marked */
    assert_false(slow.done);
    assert_true(dbp_cancel(f->pool, &queued.item)); /* queued: out, done() now */
    assert_true(queued.done);
    assert_int_equal(queued.status, DBP_ERR_CANCEL);
    assert_false(queued.sent);
    assert_true(queued.cancelled);

    run_until_done(f, 5, 5000);
    assert_int_equal(slow.ndone, 1);
    assert_int_equal(slow.status, DBP_OK);
    assert_true(slow.cancelled);
    assert_string_equal(slow.v, "slow");
    assert_int_equal(f->ctx.nfreed, 3);
    struct dbp_stats st;
    dbp_get_stats(f->pool, &st);
    assert_int_equal(st.late, 1);
    assert_int_equal(st.in_flight, 0);
    /* the cancelled item never reached the database */
    assert_scalar("SELECT count(*) FROM dbpt_log WHERE v = 'queued'", "0");
    assert_int_equal(queued.ndone, 1);
    fixture_free(f);
}

/* dbp_free with work queued and in flight: every item gets DBP_ERR_SHUTDOWN. */
static void test_free_fails_everything(void **state)
{
    struct fixture *f = fixture_new("", 2, 8);
    struct dbpt_req r[20];
    for (unsigned i = 0; i < 20; i++) {
        dbpt_req_init(&r[i], i, "shut", DBPT_STMT_ECHO);
        r[i].sleep_ms = 500;
        assert_int_equal(dbp_submit(f->pool, &r[i].item), 0);
    }
    run_until_batches(f, 2);
    struct dbpt_ctx *ctx = &f->ctx;
    dbp_free(f->pool);
    assert_int_equal(ctx->ndone, 20);
    for (unsigned i = 0; i < 20; i++) {
        assert_int_equal(r[i].ndone, 1);
        assert_int_equal(r[i].status, DBP_ERR_SHUTDOWN);
    }
    free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_batching_grows_with_load, dbpt_base_setup,
                                        dbpt_base_teardown),
        cmocka_unit_test_setup_teardown(test_statements_split_batches, dbpt_base_setup,
                                        dbpt_base_teardown),
        cmocka_unit_test_setup_teardown(test_routing_keeps_key_on_one_connection, dbpt_base_setup,
                                        dbpt_base_teardown),
        cmocka_unit_test_setup_teardown(test_sql_error_fails_only_its_batch, dbpt_base_setup,
                                        dbpt_base_teardown),
        cmocka_unit_test_setup_teardown(test_batch_errors_logged_sparingly, dbpt_base_setup,
                                        dbpt_base_teardown),
        cmocka_unit_test_setup_teardown(test_values_round_trip, dbpt_base_setup,
                                        dbpt_base_teardown),
        cmocka_unit_test_setup_teardown(test_multi_host_conninfo, dbpt_base_setup,
                                        dbpt_base_teardown),
        cmocka_unit_test_setup_teardown(test_cancel_late_outcome_delivered, dbpt_base_setup,
                                        dbpt_base_teardown),
        cmocka_unit_test_setup_teardown(test_free_fails_everything, dbpt_base_setup,
                                        dbpt_base_teardown),
    };
    return cmocka_run_group_tests(tests, dbpt_group_setup, dbpt_group_teardown);
}
