/*
 * dbptest.h - a small user of daemon/dbpool for its tests and benchmark: a
 * request struct embedding struct dbp_item, the build/done callbacks for a
 * test-only SQL function, and an event-loop driver.
 *
 * The SQL function (dbpt_install) is the test's own, so the pool is tested
 * without the ledger's schema:
 *
 *   dbpt_echo(keys bigint[], vals text[], sleep_ms int)
 *     RETURNS TABLE(ord int, k bigint, v text, pid int, n int)
 *
 * echoes each (key, value) with its ordinal, the backend pid and the batch
 * size, in REVERSE order (so ordinal mapping is exercised); raises
 * "boom requested" when a value is "boom"; sleeps sleep_ms first; and
 * records each value in table dbpt_log (committed with the batch).
 * Statement 1 (dbpt_trivial) is the benchmark's: SELECT ord, key over
 * unnest(keys) WITH ORDINALITY, results in BINARY format.  Statement 2
 * (dbpt_json) is the shape of the ledger's authorize_batch_json: one jsonb
 * array of {"k":..,"v":..} objects, plus the batch size as a BINARY int8
 * parameter echoed in column n; same columns as dbpt_echo, in input order.
 */
#ifndef CARDGATE_TESTS_DBPTEST_H
#define CARDGATE_TESTS_DBPTEST_H

#include "daemon/dbpool.h"

#include <event2/event.h>
#include <libpq-fe.h>
#include <stdbool.h>

#define DBPT_STMT_ECHO    0
#define DBPT_STMT_TRIVIAL 1
#define DBPT_STMT_JSON    2

struct dbpt_req {
    struct dbp_item item; /* embedded: the pool's intrusive part */
    /* input */
    long long key;
    char val[64];
    int sleep_ms;
    bool free_on_done; /* heap request: free it in done (ASan proves no later touch) */
    /* outcome */
    bool done;
    int ndone; /* times done() ran for it: must end at exactly 1 */
    enum dbp_status status;
    bool sent, cancelled;
    int ord, pid, n;
    long long k;
    char v[64];
    char msg[256];
};

/* Counters of one test's done() calls. */
struct dbpt_ctx {
    unsigned ndone;
    unsigned nfreed;
    unsigned nstatus[DBP_ERR_SHUTDOWN + 1];
    /* when set, called at the end of done() for a request not freed there */
    void (*on_done)(struct dbpt_ctx *ctx, struct dbpt_req *r);
    void *user;
};

/* Statements for dbp_config.stmts. */
extern const struct dbp_stmt dbpt_stmts[3];

/* Create the test function and table; 0 or -1 (reason on stderr). */
int dbpt_install(PGconn *c);

struct pgtest;
/* pgtest_start(pg, flags) and dbpt_install on it; 0 or -1. */
int dbpt_start_cluster(struct pgtest *pg, int flags);

/* One throwaway cluster per test binary: cmocka group setup/teardown. */
extern struct pgtest dbpt_pg;
int dbpt_group_setup(void **state);
int dbpt_group_teardown(void **state);

/* A fresh event base per test: cmocka setup/teardown for dbpt_base. */
extern struct event_base *dbpt_base;
int dbpt_base_setup(void **state);
int dbpt_base_teardown(void **state);

/* A pool config with the test callbacks (ud = ctx) and small back-offs. */
void dbpt_config(struct dbp_config *cfg, struct dbpt_ctx *ctx, const char *conninfo,
                 unsigned pool_size, unsigned max_batch);

/* Prepare r for submission: key, value, statement. */
void dbpt_req_init(struct dbpt_req *r, long long key, const char *val, unsigned stmt);

/*
 * Run the loop until cond(arg) is true or timeout_ms passes; returns cond's
 * last value.
 */
bool dbpt_run_until(struct event_base *base, bool (*cond)(void *), void *arg, int timeout_ms);
/* Run the loop for ms milliseconds. */
void dbpt_run_for(struct event_base *base, int ms);

#endif
