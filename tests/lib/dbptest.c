/*
 * dbptest.c - see dbptest.h.
 */
#include "tests/lib/dbptest.h"

#include "common/util.h"
#include "tests/lib/pgtest.h"

#include <arpa/inet.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const struct dbp_stmt dbpt_stmts[3] = {
    {
        .name = "dbpt_echo",
        .sql = "SELECT ord, k, v, pid, n FROM dbpt_echo($1::bigint[], $2::text[], $3::int)",
        .nparams = 3,
        .ord_col = 0,
    },
    {
        .name = "dbpt_trivial",
        .sql = "SELECT t.o::int, t.k FROM unnest($1::bigint[]) WITH ORDINALITY AS t(k, o)",
        .nparams = 1,
        .ord_col = 0,
        .result_format = 1,
    },
    {
        .name = "dbpt_json",
        .sql = "SELECT t.o::int, (t.e->>'k')::bigint, t.e->>'v', pg_backend_pid(), $2::int8::int "
               "FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS t(e, o)",
        .nparams = 2,
        .ord_col = 0,
    },
};

int dbpt_install(PGconn *c)
{
    static const char sql[] =
        "CREATE TABLE IF NOT EXISTS dbpt_log (v text);\n"
        "CREATE OR REPLACE FUNCTION dbpt_echo(keys bigint[], vals text[], sleep_ms int)\n"
        "RETURNS TABLE(ord int, k bigint, v text, pid int, n int) LANGUAGE plpgsql AS $$\n"
        "BEGIN\n"
        "    IF 'boom' = ANY(vals) THEN RAISE EXCEPTION 'boom requested'; END IF;\n"
        "    IF sleep_ms > 0 THEN PERFORM pg_sleep(sleep_ms / 1000.0); END IF;\n"
        "    INSERT INTO dbpt_log SELECT unnest(vals);\n"
        "    RETURN QUERY SELECT t.o::int, t.k, t.v, pg_backend_pid(), cardinality(keys)\n"
        "        FROM unnest(keys, vals) WITH ORDINALITY AS t(k, v, o) ORDER BY t.o DESC;\n"
        "END $$;\n";
    PGresult *r = PQexec(c, sql);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok)
        fprintf(stderr, "dbpt_install: %s", PQerrorMessage(c));
    PQclear(r);
    return ok ? 0 : -1;
}

int dbpt_start_cluster(struct pgtest *pg, int flags)
{
    if (pgtest_start(pg, flags) != 0)
        return -1;
    PGconn *c = pgtest_connect(pg);
    if (c == NULL)
        return -1;
    int rc = dbpt_install(c);
    PQfinish(c);
    return rc;
}

struct pgtest dbpt_pg;

int dbpt_group_setup(void **state)
{
    (void)state;
    return dbpt_start_cluster(&dbpt_pg, 0);
}

int dbpt_group_teardown(void **state)
{
    (void)state;
    pgtest_stop(&dbpt_pg);
    return 0;
}

struct event_base *dbpt_base;

int dbpt_base_setup(void **state)
{
    (void)state;
    dbpt_base = event_base_new();
    return dbpt_base == NULL ? -1 : 0;
}

int dbpt_base_teardown(void **state)
{
    (void)state;
    event_base_free(dbpt_base);
    dbpt_base = NULL;
    return 0;
}

static struct dbpt_req *req_of(struct dbp_item *it)
{
    return (struct dbpt_req *)((char *)it - offsetof(struct dbpt_req, item));
}

/* $1 [{"k": key, "v": value}, ...] as jsonb text, $2 n as a binary int8. */
static int build_json(struct dbp_item *const *items, unsigned n, struct dbp_params *p)
{
    size_t start = dbp_buf_len(p);
    if (dbp_buf_append(p, "[", 1) != 0)
        return -1;
    for (unsigned i = 0; i < n; i++) {
        const struct dbpt_req *r = req_of(items[i]);
        if (dbp_buf_printf(p, "%s{\"k\":%lld,\"v\":", i ? "," : "", r->key) != 0 ||
            dbp_buf_json_string(p, r->val, strlen(r->val)) != 0 || dbp_buf_append(p, "}", 1) != 0)
            return -1;
    }
    if (dbp_buf_append(p, "]", 1) != 0 || dbp_param_end(p, 0, start, 0) != 0)
        return -1;
    uint32_t be[2] = {0, htonl(n)}; /* int8, network order */
    start = dbp_buf_len(p);
    if (dbp_buf_append(p, be, sizeof(be)) != 0 || dbp_param_end(p, 1, start, 1) != 0)
        return -1;
    return 0;
}

/* $1 keys, $2 values (text arrays), $3 the longest sleep asked for. */
static int build(void *ud, unsigned stmt, struct dbp_item *const *items, unsigned n,
                 struct dbp_params *p)
{
    (void)ud;
    if (stmt == DBPT_STMT_JSON)
        return build_json(items, n, p);
    size_t start = dbp_buf_len(p);
    if (dbp_buf_append(p, "{", 1) != 0)
        return -1;
    for (unsigned i = 0; i < n; i++)
        if (dbp_buf_printf(p, "%s%lld", i ? "," : "", req_of(items[i])->key) != 0)
            return -1;
    if (dbp_buf_append(p, "}", 1) != 0 || dbp_param_end(p, 0, start, 0) != 0)
        return -1;
    if (stmt == DBPT_STMT_TRIVIAL)
        return 0;

    int sleep_ms = 0;
    start = dbp_buf_len(p);
    if (dbp_buf_append(p, "{", 1) != 0)
        return -1;
    for (unsigned i = 0; i < n; i++) {
        const struct dbpt_req *r = req_of(items[i]);
        if ((i && dbp_buf_append(p, ",", 1) != 0) ||
            dbp_buf_array_text(p, r->val, strlen(r->val)) != 0)
            return -1;
        if (r->sleep_ms > sleep_ms)
            sleep_ms = r->sleep_ms;
    }
    if (dbp_buf_append(p, "}", 1) != 0 || dbp_param_end(p, 1, start, 0) != 0)
        return -1;
    start = dbp_buf_len(p);
    if (dbp_buf_printf(p, "%d", sleep_ms) != 0 || dbp_param_end(p, 2, start, 0) != 0)
        return -1;
    return 0;
}

static void take_row(struct dbpt_req *r, const struct dbp_outcome *o);

static void done(void *ud, struct dbp_item *it, const struct dbp_outcome *o)
{
    struct dbpt_ctx *ctx = ud;
    struct dbpt_req *r = req_of(it);
    ctx->ndone++;
    ctx->nstatus[o->status]++;
    if (r->free_on_done) {
        ctx->nfreed++;
        free(r);
        return;
    }
    r->done = true;
    r->ndone++;
    r->status = o->status;
    r->sent = o->sent;
    r->cancelled = o->cancelled;
    snprintf(r->msg, sizeof(r->msg), "%s", o->message ? o->message : "");
    if (o->status == DBP_OK)
        take_row(r, o);
    if (ctx->on_done != NULL)
        ctx->on_done(ctx, r);
}

/* Copy the item's row out of the result (valid only during done()). */
/* Column col of the row as an integer, text or binary (int4/int8). */
static long long int_col(const struct dbp_outcome *o, int col)
{
    const char *v = PQgetvalue(o->res, o->row, col);
    if (PQfformat(o->res, col) == 0)
        return atoll(v);
    uint32_t w[2];
    if (PQgetlength(o->res, o->row, col) == 4) {
        memcpy(w, v, 4);
        return (int32_t)ntohl(w[0]);
    }
    memcpy(w, v, 8);
    return (long long)(((uint64_t)ntohl(w[0]) << 32) | ntohl(w[1]));
}

static void take_row(struct dbpt_req *r, const struct dbp_outcome *o)
{
    r->ord = (int)int_col(o, 0);
    r->k = int_col(o, 1);
    if (PQnfields(o->res) >= 5) {
        snprintf(r->v, sizeof(r->v), "%s", PQgetvalue(o->res, o->row, 2));
        r->pid = atoi(PQgetvalue(o->res, o->row, 3));
        r->n = atoi(PQgetvalue(o->res, o->row, 4));
    }
}

void dbpt_config(struct dbp_config *cfg, struct dbpt_ctx *ctx, const char *conninfo,
                 unsigned pool_size, unsigned max_batch)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->conninfo = conninfo;
    cfg->pool_size = pool_size;
    cfg->max_batch = max_batch;
    cfg->connect_timeout_us = 2000000;
    cfg->reconnect_min_us = 50000;
    cfg->reconnect_max_us = 400000;
    cfg->stmts = dbpt_stmts;
    cfg->nstmts = 3;
    cfg->ops.build = build;
    cfg->ops.done = done;
    cfg->ud = ctx;
}

void dbpt_req_init(struct dbpt_req *r, long long key, const char *val, unsigned stmt)
{
    memset(r, 0, sizeof(*r));
    r->key = key;
    r->item.route_key = (uint64_t)key;
    r->item.stmt = stmt;
    snprintf(r->val, sizeof(r->val), "%s", val);
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

bool dbpt_run_until(struct event_base *base, bool (*cond)(void *), void *arg, int timeout_ms)
{
    int64_t end = util_now_us() + (int64_t)timeout_ms * 1000;
    struct timeval tick = {.tv_sec = 0, .tv_usec = 5000};
    /* a persistent tick bounds each iteration so the deadline is noticed */
    struct event *t = event_new(base, -1, EV_PERSIST, tick_cb, NULL);
    bool ok = true;
    if (t == NULL || event_add(t, &tick) != 0)
        abort();
    while (!cond(arg)) {
        if (util_now_us() >= end) {
            ok = false;
            break;
        }
        event_base_loop(base, EVLOOP_ONCE);
    }
    event_free(t);
    return ok;
}

static bool never(void *arg)
{
    (void)arg;
    return false;
}

void dbpt_run_for(struct event_base *base, int ms)
{
    (void)dbpt_run_until(base, never, NULL, ms);
}
