/*
 * test_ledger_plans.c - authorize_batch plans its statements once per
 * connection (sql/0009_ledger_generic_plans.sql): a connection that sends
 * one-request batches must not replan them on every call.
 *
 * auto_explain (loaded in the test's own session, nested statements on,
 * its LOG lines sent to the client as notices) shows the plan each
 * statement inside authorize_batch ran with.  A custom plan has the
 * call's values folded in as constants ("id = ANY ('{7}'::bigint[])"); the
 * generic plan keeps them as parameters ("id = ANY ($6)").  PL/pgSQL tries
 * five custom plans before it may switch, so the plans of the eighth call
 * of the session are the ones every later call uses.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/util.h"
#include "tests/lib/pgtest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FIXTURE "tests/data/ledger/fixture.sql"

static struct pgtest pg;
static PGconn *conn;

/* Notices of the session since the last reset (auto_explain's plans). */
static char notices[1 << 18];
static size_t notices_len;
static bool notices_truncated;

static void on_notice(void *arg, const char *msg)
{
    (void)arg;
    size_t n = strlen(msg);
    if (n >= sizeof(notices) - notices_len) {
        notices_truncated = true;
        return;
    }
    memcpy(notices + notices_len, msg, n + 1);
    notices_len += n;
}

static void exec_ok(const char *sql)
{
    PGresult *r = PQexec(conn, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        fail_msg("SQL failed: %s\n  %s", PQerrorMessage(conn), sql);
    PQclear(r);
}

/* One authorization of 1.00 EUR on card 1 (fixture), its own STAN; the answer. */
static char *authorize_one(int stan)
{
    char sql[1024];
    snprintf(sql, sizeof(sql),
             "SELECT response_code FROM authorize_batch(ARRAY[ROW('auth', '0100', repeat('a', 64),"
             " NULL, 'PLANS', '%06d', '%012d', '1206120000', NULL, 'TERM0001', 'MERCHANT0000001',"
             " 'Shop', '5411', 'DE', '978', 100, NULL, NULL, 'chip', false, 'absent', 'absent',"
             " 'absent', 'absent', NULL, NULL, NULL, NULL, NULL, NULL, NULL,"
             " clock_timestamp() + interval '10 seconds')::auth_request])",
             stan, stan);
    char *v = pgtest_scalar(conn, sql);
    if (v == NULL)
        fail_msg("authorize_batch failed: %s", PQerrorMessage(conn));
    return v;
}

/*
 * The plan auto_explain printed for the statement whose text contains
 * `stmt` (the text from its "Query Text:" line to the next notice), or NULL.
 */
static const char *plan_of(const char *stmt)
{
    const char *q = strstr(notices, stmt);
    if (q == NULL)
        return NULL;
    static char plan[1 << 16];
    const char *end = strstr(q, "duration:");
    size_t n = end ? (size_t)(end - q) : strlen(q);
    if (n >= sizeof(plan))
        n = sizeof(plan) - 1;
    memcpy(plan, q, n);
    plan[n] = '\0';
    return plan;
}

static void test_one_request_calls_use_the_generic_plan(void **state)
{
    (void)state;
    for (int i = 1; i <= 7; i++) {
        char *code = authorize_one(i);
        assert_string_equal(code, "00");
        free(code);
    }
    exec_ok("LOAD 'auto_explain'");
    exec_ok("SET auto_explain.log_min_duration = 0");
    exec_ok("SET auto_explain.log_nested_statements = on");
    exec_ok("SET client_min_messages = log");
    notices_len = 0;
    notices[0] = '\0';
    char *code = authorize_one(8);
    exec_ok("SET client_min_messages = notice");
    assert_string_equal(code, "00");
    free(code);
    assert_false(notices_truncated);

    /* the wallets of the batch, read after their locks: by the array parameter */
    const char *plan = plan_of("FROM accounts a WHERE a.id = ANY (a_id)");
    if (plan == NULL)
        fail_msg("no plan of the wallet read among the notices:\n%s", notices);
    if (strstr(plan, "ANY ($") == NULL || strstr(plan, "ANY ('{") != NULL)
        fail_msg("the wallet read was planned for this call's values:\n%s", plan);
    /* the resolve query: the card ids of the batch ("req_card[r.ordinality]"), a parameter too */
    plan = plan_of("SELECT g.i AS pos, q.*");
    if (plan == NULL)
        fail_msg("no plan of the resolve query among the notices:\n%s", notices);
    if (strstr(plan, ")[r.ordinality]") == NULL ||
        strstr(plan, "::bigint[])[r.ordinality]") != NULL)
        fail_msg("the resolve query was planned for this call's values:\n%s", plan);
}

/* The setting lives on the function; a CREATE OR REPLACE without it drops it. */
static void test_authorize_batch_carries_the_setting(void **state)
{
    (void)state;
    char *cfg = pgtest_scalar(conn, "SELECT array_to_string(proconfig, ',') FROM pg_proc"
                                    " WHERE oid = 'authorize_batch(auth_request[])'::regprocedure");
    assert_non_null(cfg);
    assert_string_equal(cfg, "plan_cache_mode=force_generic_plan");
    free(cfg);
    /* and it does not leak into the caller's session */
    char *mode = pgtest_scalar(conn, "SELECT current_setting('plan_cache_mode')");
    assert_non_null(mode);
    assert_string_equal(mode, "auto");
    free(mode);
}

static int group_setup(void **state)
{
    (void)state;
    size_t len;
    if (pgtest_start(&pg, 0) != 0)
        return -1;
    conn = pgtest_connect(&pg);
    if (conn == NULL)
        return -1;
    PQsetNoticeProcessor(conn, on_notice, NULL);
    char *fx = util_read_file(FIXTURE, 1 << 20, &len);
    if (fx == NULL)
        return -1;
    PGresult *r = PQexec(conn, fx);
    free(fx);
    bool ok = PQresultStatus(r) == PGRES_TUPLES_OK || PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok)
        fprintf(stderr, "fixture: %s\n", PQerrorMessage(conn));
    PQclear(r);
    return ok ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    if (conn)
        PQfinish(conn);
    pgtest_stop(&pg);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_request_calls_use_the_generic_plan),
        cmocka_unit_test(test_authorize_batch_carries_the_setting),
    };
    return cmocka_run_group_tests_name("ledger_plans", tests, group_setup, group_teardown);
}
