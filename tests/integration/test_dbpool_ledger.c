/*
 * test_dbpool_ledger.c - the pool's callback shape against the ledger's real
 * batch function (sql/, authorize_batch_json): one jsonb parameter built
 * from n queued items with dbp_buf_json_string, auth_outcome.ord as the
 * ordinal column.  The pool itself knows nothing of the ledger; this test
 * is the wiring example for the request pipeline and fails if the two
 * drift apart.  Requests are for cards the ledger does not know, so each
 * must come back 14 / card.unknown on its own item.
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

/* A stand-in for the daemon's request: the pool's item embedded. */
struct auth {
    struct dbp_item item;
    char pan_hash[65];
    char stan[7];
    int64_t amount; /* minor units */
    /* outcome */
    int ndone;
    enum dbp_status status;
    int ord;
    char code[3];
    char rule[32];
    long long auth_id;
};

struct ctx {
    unsigned ndone;
};

static const struct dbp_stmt ledger_stmts[1] = {{
    .name = "authorize_batch",
    .sql = "SELECT ord, response_code, rule, auth_id FROM authorize_batch_json($1::jsonb)",
    .nparams = 1,
    .ord_col = 0,
}};

static struct auth *auth_of(struct dbp_item *it)
{
    return (struct auth *)((char *)it - offsetof(struct auth, item));
}

/* One JSON string member "name":"value" (with a leading comma unless first). */
static int json_member(struct dbp_params *p, bool first, const char *name, const char *value)
{
    if (dbp_buf_printf(p, "%s\"%s\":", first ? "" : ",", name) != 0)
        return -1;
    return dbp_buf_json_string(p, value, strlen(value));
}

static int build(void *ud, unsigned stmt, struct dbp_item *const *items, unsigned n,
                 struct dbp_params *p)
{
    size_t start = dbp_buf_len(p);
    if (dbp_buf_append(p, "[", 1) != 0)
        return -1;
    for (unsigned i = 0; i < n; i++) {
        const struct auth *a = auth_of(items[i]);
        if (dbp_buf_append(p, i ? ",{" : "{", i ? 2 : 1) != 0 ||
            json_member(p, true, "kind", "auth") != 0 ||
            json_member(p, false, "mti", "0100") != 0 ||
            json_member(p, false, "pan_hash", a->pan_hash) != 0 ||
            json_member(p, false, "stan", a->stan) != 0 ||
            json_member(p, false, "acquirer_id", "123456") != 0 ||
            json_member(p, false, "xmit_at", "1122040000") != 0 ||
            json_member(p, false, "txn_currency", "978") != 0 ||
            dbp_buf_printf(p, ",\"txn_amount\":%lld}", (long long)a->amount) != 0)
            return -1;
    }
    if (dbp_buf_append(p, "]", 1) != 0 || dbp_param_end(p, 0, start, 0) != 0)
        return -1;
    return 0;
}

static void done(void *ud, struct dbp_item *it, const struct dbp_outcome *o)
{
    struct ctx *ctx = ud;
    struct auth *a = auth_of(it);
    ctx->ndone++;
    a->ndone++;
    a->status = o->status;
    if (o->status != DBP_OK)
        return;
    a->ord = atoi(PQgetvalue(o->res, o->row, 0));
    snprintf(a->code, sizeof(a->code), "%s", PQgetvalue(o->res, o->row, 1));
    snprintf(a->rule, sizeof(a->rule), "%s", PQgetvalue(o->res, o->row, 2));
    a->auth_id = atoll(PQgetvalue(o->res, o->row, 3));
}

struct wait {
    struct dbpool *pool;
    struct ctx *ctx;
    unsigned ndone;
};

static bool reached(void *arg)
{
    struct wait *w = arg;
    return dbp_available(w->pool) && w->ctx->ndone >= w->ndone;
}

static void test_authorize_batch_json_fits(void **state)
{
    struct ctx ctx = {0};
    struct dbp_config cfg = {
        .conninfo = "",
        .pool_size = 2,
        .max_batch = 16,
        .connect_timeout_us = 5000000,
        .reconnect_min_us = 50000,
        .reconnect_max_us = 400000,
        .stmts = ledger_stmts,
        .nstmts = 1,
        .ops = {.build = build, .done = done},
        .ud = &ctx,
    };
    struct dbpool *pool = dbp_new(dbpt_base, &cfg);
    assert_non_null(pool);
    struct wait w = {pool, &ctx, 0};
    assert_true(dbpt_run_until(dbpt_base, reached, &w, 10000));

    enum { N = 40 };
    struct auth a[N];
    memset(a, 0, sizeof(a));
    for (unsigned i = 0; i < N; i++) {
        /* a made-up hash, not of any PAN: 64 hex digits */
        for (unsigned k = 0; k < 64; k++)
            a[i].pan_hash[k] = "0123456789abcdef"[(i * 7 + k) % 16];
        snprintf(a[i].stan, sizeof(a[i].stan), "%06u", 100 + i);
        a[i].amount = 1000 + i;
        a[i].item.route_key = i % 3;
        assert_int_equal(dbp_submit(pool, &a[i].item), 0);
    }
    w.ndone = N;
    assert_true(dbpt_run_until(dbpt_base, reached, &w, 10000));
    struct dbp_stats st;
    dbp_get_stats(pool, &st);
    assert_true(st.batches < N); /* batched */
    for (unsigned i = 0; i < N; i++) {
        assert_int_equal(a[i].ndone, 1);
        assert_int_equal(a[i].status, DBP_OK);
        assert_true(a[i].ord >= 1 && a[i].ord <= 16);
        assert_string_equal(a[i].code, "14");
        assert_string_equal(a[i].rule, "card.unknown");
    }
    /* each item's outcome is its own: the recorded row has its STAN and amount */
    PGconn *c = pgtest_connect(&dbpt_pg);
    assert_non_null(c);
    for (unsigned i = 0; i < N; i++) {
        char sql[200], want[64];
        snprintf(sql, sizeof(sql),
                 "SELECT stan || '/' || txn_amount FROM authorizations WHERE id = %lld",
                 a[i].auth_id);
        snprintf(want, sizeof(want), "%s/%lld", a[i].stan, (long long)a[i].amount);
        char *v = pgtest_scalar(c, sql);
        assert_non_null(v);
        assert_string_equal(v, want);
        free(v);
    }
    PQfinish(c);
    dbp_free(pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_authorize_batch_json_fits, dbpt_base_setup,
                                        dbpt_base_teardown),
    };
    return cmocka_run_group_tests(tests, dbpt_group_setup, dbpt_group_teardown);
}
