/*
 * dbpool.c - the asynchronous PostgreSQL pool; the contract is in dbpool.h.
 *
 * Per connection, one state enum and one transition function:
 *
 *   DOWN --timer--> CONNECTING --PQconnectPoll OK--> PREPARING --sync--> READY
 *     ^                 |                                |                 |
 *     +-----------------+------ conn_lost() -------------+-----------------+
 *
 * At most one pipeline segment (one call + one sync) is in flight on a
 * connection at a time; its items sit in conn->batch in ordinal order.  The
 * PGresult of the call is held until PGRES_PIPELINE_SYNC, i.e. until the
 * implicit transaction of the segment has committed, and only then handed
 * out: an outcome is never delivered for work that could still roll back.
 */
#include "daemon/dbpool.h"

#include "common/log.h"
#include "common/util.h"
#include "daemon/config.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <event2/event_struct.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum conn_state {
    CS_DOWN = 0,   /* no libpq connection; the back-off timer may be armed */
    CS_CONNECTING, /* PQconnectPoll in progress */
    CS_PREPARING,  /* connected, pipeline mode, prepares + sync in flight */
    CS_READY,      /* usable: takes submissions */
};

static const char *const state_names[] = {"down", "connecting", "preparing", "ready"};

struct dbp_params {
    char *buf;
    size_t len, cap;
    bool oom;
    size_t off[DBP_MAX_PARAMS];
    int lens[DBP_MAX_PARAMS];
    int fmts[DBP_MAX_PARAMS];
    bool set[DBP_MAX_PARAMS];
};

struct dbp_conn {
    struct dbpool *pool;
    unsigned idx;
    enum conn_state state;
    char prefix[24];
    PGconn *pg;

    struct event io_ev;    /* the socket; re-armed when fd or interest changes */
    struct event timer_ev; /* reconnect back-off */
    struct event flush_ev; /* activated: send the queue at the end of this iteration */
    int io_fd;
    short io_what;
    bool io_armed;
    bool flush_pending;
    bool want_write; /* PQflush said 1: wait for write too */
    int64_t connect_deadline_us;
    int64_t backoff_us;
    unsigned fail_streak; /* failed attempts since the last loss; logs thin out */
    bool ever_up;

    /* queue (not sent) */
    struct dbp_item *qhead, *qtail;
    unsigned qlen;

    /* the segment in flight */
    bool busy;               /* a sync is outstanding */
    struct dbp_item **batch; /* max_batch slots; batch[i] has ordinal i+1 */
    bool *got;               /* max_batch: batch[i] has had its outcome */
    unsigned nbatch;
    unsigned batch_stmt;
    PGresult *res; /* the call's result, held until the sync */
    bool err;
    bool drop_after; /* the segment's error says: this server is no place to be */
    char errmsg[256];
    unsigned nulls;          /* consecutive NULL results: a guard against a pipeline out of step */
    int64_t err_logged_us;   /* when a failed batch was last logged */
    unsigned err_suppressed; /* failed batches not logged since */

    struct dbp_params params;
};

struct dbpool {
    struct event_base *base;
    struct dbp_config cfg; /* a copy; conninfo and stmts point at the copies below */
    char *conninfo;
    unsigned n;
    struct dbp_stmt stmts[DBP_MAX_STMTS];
    Oid types[DBP_MAX_STMTS][DBP_MAX_PARAMS];
    unsigned nstmts;
    bool closing;
    struct dbp_stats st;
    struct dbp_conn conns[];
};

static void conn_io_cb(evutil_socket_t fd, short what, void *arg);
static void conn_lost(struct dbp_conn *c, const char *reason);

/*
 * The one transition function: asserts the move is legal, keeps the "up"
 * gauge in step and logs old -> new.
 */
static void conn_set_state(struct dbp_conn *c, enum conn_state to)
{
    enum conn_state from = c->state;
    switch (to) {
    case CS_DOWN:
        break; /* from anywhere */
    case CS_CONNECTING:
        assert(from == CS_DOWN);
        break;
    case CS_PREPARING:
        assert(from == CS_CONNECTING);
        break;
    case CS_READY:
        assert(from == CS_PREPARING);
        break;
    }
    if (from == CS_READY && to != CS_READY)
        c->pool->st.conns_up--;
    if (to == CS_READY && from != CS_READY)
        c->pool->st.conns_up++;
    c->state = to;
    log_debug_p(c->prefix, "%s -> %s", state_names[from], state_names[to]);
}

/* The first line of a libpq message, without its newline, into out. */
static void one_line(const char *msg, char *out, size_t cap)
{
    if (msg == NULL || *msg == '\0')
        msg = "unknown error";
    size_t n = strcspn(msg, "\n");
    if (n >= cap)
        n = cap - 1;
    memcpy(out, msg, n);
    out[n] = '\0';
}

static unsigned hist_bucket(unsigned n)
{
    unsigned b = 0;
    while (b < DBP_HIST_BUCKETS - 1 && n > (1u << b))
        b++;
    return b;
}

unsigned dbp_hist_bound(unsigned i)
{
    return i < DBP_HIST_BUCKETS - 1 ? 1u << i : 0;
}

/*
 * Hand one item its outcome.  The item is detached first, so done() may
 * free, reuse or resubmit it; nothing touches it afterwards.
 */
static void deliver(struct dbpool *pool, struct dbp_item *item, enum dbp_status status,
                    const PGresult *res, int row, const char *msg, bool sent)
{
    struct dbp_outcome o = {
        .status = status,
        .res = res,
        .row = row,
        .message = msg,
        .sent = sent,
        .cancelled = item->cancelled,
    };
    if (sent)
        pool->st.in_flight--;
    if (status == DBP_OK)
        pool->st.items_ok++;
    else
        pool->st.items_failed++;
    if (o.cancelled && sent)
        pool->st.late++;
    item->state = DBP_ITEM_IDLE;
    item->conn = NULL;
    item->next = item->prev = NULL;
    pool->cfg.ops.done(pool->cfg.ud, item, &o);
}

static struct dbp_item *queue_pop(struct dbp_conn *c)
{
    struct dbp_item *it = c->qhead;
    if (it == NULL)
        return NULL;
    c->qhead = it->next;
    if (c->qhead != NULL)
        c->qhead->prev = NULL;
    else
        c->qtail = NULL;
    c->qlen--;
    c->pool->st.queued--;
    it->next = it->prev = NULL;
    return it;
}

static void queue_unlink(struct dbp_conn *c, struct dbp_item *it)
{
    if (it->prev != NULL)
        it->prev->next = it->next;
    else
        c->qhead = it->next;
    if (it->next != NULL)
        it->next->prev = it->prev;
    else
        c->qtail = it->prev;
    c->qlen--;
    c->pool->st.queued--;
    it->next = it->prev = NULL;
}

/*
 * Wait on the connection's socket for what (EV_READ/EV_WRITE), re-reading
 * PQsocket() first: libpq may have moved to another socket (multi-host,
 * SSL retry).  With timeout_us > 0 the wait is one-shot with a timeout
 * (connecting); otherwise persistent.  Re-arms only on a change, so the
 * steady state costs no epoll_ctl.  Returns 0, or -1 when there is no socket.
 */
static int conn_wait(struct dbp_conn *c, short what, int64_t timeout_us)
{
    int fd = PQsocket(c->pg);
    if (fd < 0)
        return -1;
    short flags = what | (timeout_us > 0 ? 0 : EV_PERSIST);
    if (c->io_armed && fd == c->io_fd && flags == c->io_what && timeout_us <= 0)
        return 0;
    if (c->io_armed)
        event_del(&c->io_ev);
    event_assign(&c->io_ev, c->pool->base, fd, flags, conn_io_cb, c);
    struct timeval tv = {.tv_sec = timeout_us / 1000000, .tv_usec = timeout_us % 1000000};
    if (event_add(&c->io_ev, timeout_us > 0 ? &tv : NULL) != 0)
        return -1;
    c->io_fd = fd;
    c->io_what = flags;
    c->io_armed = true;
    return 0;
}

static void conn_unwait(struct dbp_conn *c)
{
    if (c->io_armed)
        event_del(&c->io_ev);
    c->io_armed = false;
}

/* Arm the connection's timer: the back-off, or the prepare deadline. */
static void conn_schedule_reconnect(struct dbp_conn *c, int64_t delay_us)
{
    struct timeval tv = {.tv_sec = delay_us / 1000000, .tv_usec = delay_us % 1000000};
    evtimer_add(&c->timer_ev, &tv);
}

/* PQflush; keep waiting for write while libpq has output left.  0 or -1 (lost). */
static int conn_flush_out(struct dbp_conn *c)
{
    int r = PQflush(c->pg);
    if (r < 0) {
        conn_lost(c, PQerrorMessage(c->pg));
        return -1;
    }
    c->want_write = (r == 1);
    if (conn_wait(c, EV_READ | (c->want_write ? EV_WRITE : 0), 0) != 0) {
        conn_lost(c, "no socket");
        return -1;
    }
    return 0;
}

/*
 * The connection is gone (or never came up): fail every item in flight
 * (sent: outcome unknown) and queued (not sent), close it, and schedule the
 * next attempt with the back-off doubled.  Callbacks run after the state is
 * DOWN, so what they submit routes elsewhere.
 */
static void conn_lost(struct dbp_conn *c, const char *reason)
{
    struct dbpool *pool = c->pool;
    char why[256];
    one_line(reason, why, sizeof(why));

    bool was = c->state >= CS_PREPARING;
    conn_unwait(c);
    if (c->flush_pending) {
        event_del(&c->flush_ev);
        c->flush_pending = false;
    }
    conn_set_state(c, CS_DOWN);
    pool->st.conn_failures++;
    c->fail_streak = was ? 1 : c->fail_streak + 1;
    if (was)
        log_warnx_p(c->prefix, "database connection lost: %s; %u in flight and %u queued failed",
                    why, c->nbatch, c->qlen);
    else if ((c->fail_streak & (c->fail_streak - 1)) == 0) /* 1st, 2nd, 4th, 8th... */
        log_warnx_p(c->prefix, "database connection failed (%u in a row): %s; retry in %lld ms",
                    c->fail_streak, why, (long long)(c->backoff_us / 1000));
    else
        log_debug_p(c->prefix, "database connection failed (%u in a row): %s", c->fail_streak, why);
    if (c->res != NULL) {
        PQclear(c->res);
        c->res = NULL;
    }
    if (c->pg != NULL) {
        PQfinish(c->pg);
        c->pg = NULL;
    }
    c->err = false;
    c->drop_after = false;
    c->busy = false;
    c->want_write = false;
    c->nulls = 0;

    conn_schedule_reconnect(c, c->backoff_us);
    c->backoff_us *= 2;
    if (c->backoff_us > pool->cfg.reconnect_max_us)
        c->backoff_us = pool->cfg.reconnect_max_us;

    char msg[300];
    snprintf(msg, sizeof(msg), "database connection lost: %s", why);
    unsigned n = c->nbatch;
    c->nbatch = 0;
    for (unsigned i = 0; i < n; i++) {
        struct dbp_item *it = c->batch[i];
        c->batch[i] = NULL;
        deliver(pool, it, DBP_ERR_CONN, NULL, -1, msg, true);
    }
    struct dbp_item *it;
    while ((it = queue_pop(c)) != NULL)
        deliver(pool, it, DBP_ERR_CONN, NULL, -1, msg, false);
}

/* Start one connection attempt (DOWN -> CONNECTING). */
static void conn_start(struct dbp_conn *c)
{
    struct dbpool *pool = c->pool;
    /*
     * Entries before an expanded dbname are defaults the conninfo overrides
     * (libpq processes the arrays in order; the last value wins).  The TCP
     * settings notice a primary that vanished without closing its sockets
     * (power loss, partition) within seconds instead of the kernel's hours,
     * so the reconnect can follow the promoted one; Unix sockets ignore them.
     */
    const char *kw[] = {
        "fallback_application_name", "keepalives",       "keepalives_idle", "keepalives_interval",
        "keepalives_count",          "tcp_user_timeout", "dbname",          NULL};
    const char *val[] = {"cardgated", "1", "10", "3", "3", "10000", pool->conninfo, NULL};

    assert(c->state == CS_DOWN && c->pg == NULL);
    conn_set_state(c, CS_CONNECTING);
    c->pg = PQconnectStartParams(kw, val, 1);
    if (c->pg == NULL) {
        conn_lost(c, "out of memory");
        return;
    }
    if (PQstatus(c->pg) == CONNECTION_BAD) {
        conn_lost(c, PQerrorMessage(c->pg));
        return;
    }
    c->connect_deadline_us = util_now_us() + pool->cfg.connect_timeout_us;
    if (conn_wait(c, EV_WRITE, pool->cfg.connect_timeout_us) != 0)
        conn_lost(c, "no socket");
}

/*
 * The connection's timer: the back-off ended (DOWN: try again), or the
 * prepares did not finish within connect_timeout (PREPARING: a server that
 * accepted us but does not answer is as good as down).
 */
static void conn_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct dbp_conn *c = arg;
    if (c->state == CS_DOWN && !c->pool->closing)
        conn_start(c);
    else if (c->state == CS_PREPARING)
        conn_lost(c, "timeout preparing statements");
}

/*
 * Server notices (RAISE NOTICE, warnings) go to the debug log, first line
 * only, instead of libpq's default of printing them to stderr.
 */
static void conn_notice(void *arg, const char *message)
{
    struct dbp_conn *c = arg;
    char line[256];
    one_line(message, line, sizeof(line));
    log_debug_p(c->prefix, "server notice: %s", line);
}

/* Connected: non-blocking, pipeline mode, send the prepares and a sync. */
static void conn_connected(struct dbp_conn *c)
{
    struct dbpool *pool = c->pool;
    PQsetNoticeProcessor(c->pg, conn_notice, c);
    if (PQsetnonblocking(c->pg, 1) != 0 || PQenterPipelineMode(c->pg) != 1) {
        conn_lost(c, PQerrorMessage(c->pg));
        return;
    }
    conn_set_state(c, CS_PREPARING);
    for (unsigned i = 0; i < pool->nstmts; i++) {
        const struct dbp_stmt *s = &pool->stmts[i];
        if (!PQsendPrepare(c->pg, s->name, s->sql, s->nparams, s->types)) {
            conn_lost(c, PQerrorMessage(c->pg));
            return;
        }
    }
    if (!PQpipelineSync(c->pg)) {
        conn_lost(c, PQerrorMessage(c->pg));
        return;
    }
    c->busy = true;
    c->err = false;
    c->nbatch = 0;
    int64_t left = c->connect_deadline_us - util_now_us();
    conn_schedule_reconnect(c, left > 0 ? left : 1); /* here: the prepare deadline */
    (void)conn_flush_out(c);
}

static void conn_poll_connect(struct dbp_conn *c, short what)
{
    int64_t left = c->connect_deadline_us - util_now_us();
    if ((what & EV_TIMEOUT) || left <= 0) {
        conn_lost(c, "connect timeout");
        return;
    }
    c->io_armed = false; /* one-shot waits are no longer pending once fired */
    switch (PQconnectPoll(c->pg)) {
    case PGRES_POLLING_READING:
        if (conn_wait(c, EV_READ, left) != 0)
            conn_lost(c, "no socket");
        break;
    case PGRES_POLLING_WRITING:
        if (conn_wait(c, EV_WRITE, left) != 0)
            conn_lost(c, "no socket");
        break;
    case PGRES_POLLING_OK:
        conn_connected(c);
        break;
    default:
        conn_lost(c, PQerrorMessage(c->pg));
        break;
    }
}

/* The ordinal in row r of res (1-based), or 0 when missing or malformed. */
static unsigned row_ordinal(const PGresult *res, int r, int col, unsigned n)
{
    if (col < 0)
        return (unsigned)r + 1;
    if (col >= PQnfields(res) || PQgetisnull(res, r, col))
        return 0;
    const char *v = PQgetvalue(res, r, col);
    long long ord = 0;
    if (PQfformat(res, col) == 1) {
        int len = PQgetlength(res, r, col);
        if (len == 4) {
            uint32_t x;
            memcpy(&x, v, 4);
            ord = (int32_t)ntohl(x);
        } else if (len == 8) {
            uint32_t hi, lo;
            memcpy(&hi, v, 4);
            memcpy(&lo, v + 4, 4);
            ord = (long long)(((uint64_t)ntohl(hi) << 32) | ntohl(lo));
        } else {
            return 0;
        }
    } else {
        char *end;
        errno = 0;
        ord = strtoll(v, &end, 10);
        if (errno != 0 || end == v || *end != '\0')
            return 0;
    }
    return ord >= 1 && (unsigned long long)ord <= n ? (unsigned)ord : 0;
}

static void conn_send_batch(struct dbp_conn *c);

/*
 * Log a failed batch, at most once a second per connection (a broken
 * function fails every batch: thousands a second); the lines skipped are
 * counted in the next one.  The stats count every failure regardless.
 */
static void conn_log_batch_error(struct dbp_conn *c, unsigned n, const char *msg)
{
    int64_t now = util_now_us();
    if (c->err_logged_us != 0 && now - c->err_logged_us < 1000000) {
        c->err_suppressed++;
        return;
    }
    if (c->err_suppressed > 0)
        log_warnx_p(c->prefix, "batch of %u failed: %s (%u more failed batches not logged)", n, msg,
                    c->err_suppressed);
    else
        log_warnx_p(c->prefix, "batch of %u failed: %s", n, msg);
    c->err_logged_us = now;
    c->err_suppressed = 0;
}

/*
 * The segment in flight ended (PGRES_PIPELINE_SYNC): the prepares are done,
 * or the batch has committed (rows delivered) or failed (every item fails
 * with the server's message).  Then send what queued up meanwhile.
 */
static void conn_segment_done(struct dbp_conn *c)
{
    struct dbpool *pool = c->pool;
    c->busy = false;
    c->nulls = 0;
    if (c->state == CS_PREPARING) {
        if (c->err) {
            char msg[300];
            snprintf(msg, sizeof(msg), "prepare failed: %s", c->errmsg);
            c->err = false;
            conn_lost(c, msg);
            return;
        }
        if (c->ever_up)
            pool->st.reconnects++;
        c->ever_up = true;
        c->backoff_us = pool->cfg.reconnect_min_us;
        c->fail_streak = 0;
        evtimer_del(&c->timer_ev); /* the prepare deadline */
        conn_set_state(c, CS_READY);
        log_info_p(c->prefix, "database connection ready (server %d, backend pid %d)",
                   PQserverVersion(c->pg), PQbackendPID(c->pg));
        return;
    }

    unsigned n = c->nbatch;
    c->nbatch = 0;
    PGresult *res = c->res;
    c->res = NULL;
    bool err = c->err || res == NULL;
    c->err = false;
    if (err) {
        pool->st.batch_errors++;
        const char *msg = c->errmsg[0] ? c->errmsg : "no result";
        conn_log_batch_error(c, n, msg);
        for (unsigned i = 0; i < n; i++)
            deliver(pool, c->batch[i], DBP_ERR_SQL, NULL, -1, msg, true);
    } else {
        const struct dbp_stmt *s = &pool->stmts[c->batch_stmt];
        int rows = PQntuples(res);
        /* c->got, not the items: a delivered item may already be freed */
        memset(c->got, 0, n * sizeof(*c->got));
        for (int r = 0; r < rows; r++) {
            unsigned ord = row_ordinal(res, r, s->ord_col, n);
            if (ord == 0 || c->got[ord - 1])
                continue;
            c->got[ord - 1] = true;
            deliver(pool, c->batch[ord - 1], DBP_OK, res, r, NULL, true);
        }
        for (unsigned i = 0; i < n; i++)
            if (!c->got[i])
                deliver(pool, c->batch[i], DBP_ERR_NOROW, NULL, -1, "no row for this item", true);
    }
    if (res != NULL)
        PQclear(res);
    c->errmsg[0] = '\0';
    if (c->drop_after && c->state == CS_READY) {
        c->drop_after = false;
        conn_lost(c, "the server is read-only (demoted primary?)");
        return;
    }
    if (c->state == CS_READY && c->qhead != NULL)
        conn_send_batch(c);
}

/* Record the first error of the segment in flight. */
static void conn_note_error(struct dbp_conn *c, const PGresult *r)
{
    if (c->err)
        return;
    c->err = true;
    /*
     * 25006 read_only_sql_transaction: the server was demoted (or is a
     * standby reached without target_session_attrs).  Fail the batch, then
     * drop the connection, so the reconnect finds the new primary.
     */
    const char *code = r != NULL ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    if (code != NULL && strcmp(code, "25006") == 0)
        c->drop_after = true;
    const char *m = r != NULL ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    if (m == NULL)
        m = r != NULL ? PQresultErrorMessage(r) : NULL;
    one_line(m, c->errmsg, sizeof(c->errmsg));
}

/*
 * Take every complete result libpq has: FIFO per STYLE.md step 4.  Returns
 * when libpq needs more input or nothing is outstanding.
 */
static void conn_drain(struct dbp_conn *c)
{
    while (c->busy && c->state >= CS_PREPARING) {
        if (PQisBusy(c->pg))
            return;
        PGresult *r = PQgetResult(c->pg);
        if (r == NULL) {
            /* the end of one query's results; two in a row: out of step */
            if (PQstatus(c->pg) == CONNECTION_BAD) {
                conn_lost(c, PQerrorMessage(c->pg));
                return;
            }
            if (++c->nulls > 1) {
                conn_lost(c, "pipeline out of step");
                return;
            }
            continue;
        }
        c->nulls = 0;
        switch (PQresultStatus(r)) {
        case PGRES_PIPELINE_SYNC:
            PQclear(r);
            conn_segment_done(c);
            break;
        case PGRES_TUPLES_OK:
        case PGRES_COMMAND_OK:
            if (c->state == CS_READY && c->res == NULL)
                c->res = r;
            else
                PQclear(r);
            break;
        default: /* FATAL_ERROR, PIPELINE_ABORTED, anything unexpected */
            conn_note_error(c, r);
            PQclear(r);
            break;
        }
    }
}

static void conn_read(struct dbp_conn *c)
{
    if (!PQconsumeInput(c->pg)) {
        conn_lost(c, PQerrorMessage(c->pg));
        return;
    }
    conn_drain(c);
    if (c->state < CS_PREPARING)
        return;
    if (PQstatus(c->pg) == CONNECTION_BAD) {
        conn_lost(c, PQerrorMessage(c->pg));
        return;
    }
    if (c->want_write)
        (void)conn_flush_out(c);
}

static void conn_io_cb(evutil_socket_t fd, short what, void *arg)
{
    struct dbp_conn *c = arg;
    switch (c->state) {
    case CS_CONNECTING:
        conn_poll_connect(c, what);
        break;
    case CS_PREPARING:
    case CS_READY:
        if (what & EV_WRITE) {
            if (conn_flush_out(c) != 0)
                return;
        }
        if (what & EV_READ)
            conn_read(c);
        break;
    case CS_DOWN:
        break;
    }
}

/*
 * Send the head of the queue as one call (up to max_batch consecutive items
 * naming the same statement) plus one sync.  Precondition: READY, nothing in
 * flight.  A build failure fails those items and tries the next run.
 */
static void conn_send_batch(struct dbp_conn *c)
{
    struct dbpool *pool = c->pool;
    while (c->state == CS_READY && !c->busy && c->qhead != NULL) {
        unsigned stmt = c->qhead->stmt;
        unsigned n = 0;
        while (n < pool->cfg.max_batch && c->qhead != NULL && c->qhead->stmt == stmt) {
            struct dbp_item *it = queue_pop(c);
            it->state = DBP_ITEM_SENT;
            c->batch[n++] = it;
        }
        c->nbatch = n;
        c->batch_stmt = stmt;
        pool->st.in_flight += n;

        const struct dbp_stmt *s = &pool->stmts[stmt];
        struct dbp_params *p = &c->params;
        p->len = 0;
        p->oom = false;
        memset(p->set, 0, sizeof(p->set));
        int rc = pool->cfg.ops.build(pool->cfg.ud, stmt, c->batch, n, p);
        if (rc != 0 || p->oom) {
            c->nbatch = 0;
            log_warnx_p(c->prefix, "could not build the parameters of a batch of %u", n);
            for (unsigned i = 0; i < n; i++)
                deliver(pool, c->batch[i], DBP_ERR_SQL, NULL, -1, "build failed", true);
            continue;
        }
        const char *values[DBP_MAX_PARAMS];
        for (int i = 0; i < s->nparams; i++)
            values[i] = p->set[i] ? p->buf + p->off[i] : NULL;
        if (!PQsendQueryPrepared(c->pg, s->name, s->nparams, values, p->lens, p->fmts,
                                 s->result_format) ||
            !PQpipelineSync(c->pg)) {
            conn_lost(c, PQerrorMessage(c->pg));
            return;
        }
        c->busy = true;
        c->err = false;
        c->errmsg[0] = '\0';
        pool->st.batches++;
        pool->st.items_sent += n;
        pool->st.batch_hist[hist_bucket(n)]++;
        (void)conn_flush_out(c);
        return;
    }
}

static void conn_flush_cb(evutil_socket_t fd, short what, void *arg)
{
    struct dbp_conn *c = arg;
    c->flush_pending = false;
    if (c->state == CS_READY && !c->busy)
        conn_send_batch(c);
}

struct dbpool *dbp_new(struct event_base *base, const struct dbp_config *cfg)
{
    if (cfg->pool_size < 1 || cfg->pool_size > DBP_MAX_CONNS || cfg->max_batch < 1 ||
        cfg->nstmts < 1 || cfg->nstmts > DBP_MAX_STMTS || cfg->ops.build == NULL ||
        cfg->ops.done == NULL || cfg->reconnect_min_us <= 0 ||
        cfg->reconnect_max_us < cfg->reconnect_min_us || cfg->connect_timeout_us <= 0) {
        log_warnx("dbpool: bad configuration");
        return NULL;
    }
    for (unsigned i = 0; i < cfg->nstmts; i++) {
        const struct dbp_stmt *s = &cfg->stmts[i];
        if (s->name == NULL || s->sql == NULL || s->nparams < 0 || s->nparams > DBP_MAX_PARAMS) {
            log_warnx("dbpool: bad statement %u", i);
            return NULL;
        }
    }
    struct dbpool *pool = calloc(1, sizeof(*pool) + cfg->pool_size * sizeof(struct dbp_conn));
    if (pool == NULL)
        goto oom;
    pool->base = base;
    pool->cfg = *cfg;
    pool->cfg.stmts = pool->stmts;
    pool->n = cfg->pool_size;
    pool->nstmts = cfg->nstmts;
    pool->st.conns_total = pool->n;
    pool->conninfo = strdup(cfg->conninfo != NULL ? cfg->conninfo : "");
    if (pool->conninfo == NULL)
        goto oom;
    pool->cfg.conninfo = pool->conninfo;
    for (unsigned i = 0; i < cfg->nstmts; i++) {
        const struct dbp_stmt *s = &cfg->stmts[i];
        pool->stmts[i] = *s;
        pool->stmts[i].name = strdup(s->name);
        pool->stmts[i].sql = strdup(s->sql);
        if (pool->stmts[i].name == NULL || pool->stmts[i].sql == NULL)
            goto oom;
        if (s->types != NULL) {
            memcpy(pool->types[i], s->types, (size_t)s->nparams * sizeof(Oid));
            pool->stmts[i].types = pool->types[i];
        }
    }
    for (unsigned i = 0; i < pool->n; i++) {
        struct dbp_conn *c = &pool->conns[i];
        c->idx = i;
        c->state = CS_DOWN;
        c->backoff_us = pool->cfg.reconnect_min_us;
        snprintf(c->prefix, sizeof(c->prefix), "db#%u", i);
        evtimer_assign(&c->timer_ev, base, conn_timer_cb, c);
        event_assign(&c->flush_ev, base, -1, 0, conn_flush_cb, c);
        c->pool = pool; /* from here on dbp_free() cleans this one up */
        c->batch = calloc(pool->cfg.max_batch, sizeof(*c->batch));
        c->got = calloc(pool->cfg.max_batch, sizeof(*c->got));
        if (c->batch == NULL || c->got == NULL)
            goto oom;
    }
    for (unsigned i = 0; i < pool->n; i++)
        conn_start(&pool->conns[i]);
    return pool;
oom:
    log_warnx("dbpool: out of memory");
    if (pool != NULL) {
        pool->closing = true;
        dbp_free(pool);
    }
    return NULL;
}

void dbp_free(struct dbpool *pool)
{
    if (pool == NULL)
        return;
    pool->closing = true;
    for (unsigned i = 0; i < pool->n; i++) {
        struct dbp_conn *c = &pool->conns[i];
        if (c->pool == NULL)
            continue; /* dbp_new failed before this one */
        conn_unwait(c);
        event_del(&c->timer_ev);
        event_del(&c->flush_ev);
        c->flush_pending = false;
        if (c->state != CS_DOWN)
            conn_set_state(c, CS_DOWN);
        unsigned n = c->nbatch;
        c->nbatch = 0;
        for (unsigned k = 0; k < n; k++)
            deliver(pool, c->batch[k], DBP_ERR_SHUTDOWN, NULL, -1, "database pool shut down", true);
        struct dbp_item *it;
        while ((it = queue_pop(c)) != NULL)
            deliver(pool, it, DBP_ERR_SHUTDOWN, NULL, -1, "database pool shut down", false);
        if (c->res != NULL)
            PQclear(c->res);
        if (c->pg != NULL)
            PQfinish(c->pg);
        free(c->batch);
        free(c->got);
        free(c->params.buf);
    }
    for (unsigned i = 0; i < pool->nstmts; i++) {
        free((char *)pool->stmts[i].name);
        free((char *)pool->stmts[i].sql);
    }
    free(pool->conninfo);
    free(pool);
}

unsigned dbp_route(const struct dbpool *pool, uint64_t key)
{
    return (unsigned)(key % pool->n);
}

int dbp_submit(struct dbpool *pool, struct dbp_item *item)
{
    if (pool->closing || item->state != DBP_ITEM_IDLE || item->stmt >= pool->nstmts) {
        pool->st.refused++;
        return -1;
    }
    unsigned first = dbp_route(pool, item->route_key);
    struct dbp_conn *c = NULL;
    for (unsigned k = 0; k < pool->n; k++) {
        struct dbp_conn *cand = &pool->conns[(first + k) % pool->n];
        if (cand->state == CS_READY) {
            c = cand;
            break;
        }
    }
    if (c == NULL) {
        pool->st.refused++;
        return -1;
    }
    item->conn = c;
    item->state = DBP_ITEM_QUEUED;
    item->cancelled = false;
    item->next = NULL;
    item->prev = c->qtail;
    if (c->qtail != NULL)
        c->qtail->next = item;
    else
        c->qhead = item;
    c->qtail = item;
    c->qlen++;
    pool->st.queued++;
    if (!c->busy && !c->flush_pending) {
        c->flush_pending = true;
        event_active(&c->flush_ev, EV_TIMEOUT, 0);
    }
    return 0;
}

bool dbp_cancel(struct dbpool *pool, struct dbp_item *item)
{
    if (item->state == DBP_ITEM_QUEUED) {
        queue_unlink(item->conn, item);
        item->cancelled = true;
        deliver(pool, item, DBP_ERR_CANCEL, NULL, -1, "cancelled before it was sent", false);
        return true;
    }
    if (item->state == DBP_ITEM_SENT)
        item->cancelled = true;
    return false;
}

bool dbp_available(const struct dbpool *pool)
{
    return !pool->closing && pool->st.conns_up > 0;
}

void dbp_get_stats(const struct dbpool *pool, struct dbp_stats *out)
{
    *out = pool->st;
}

int dbp_item_conn(const struct dbpool *pool, const struct dbp_item *item)
{
    if (item->state == DBP_ITEM_IDLE || item->conn == NULL)
        return -1;
    return (int)item->conn->idx;
}

/* ---- parameter building ---- */

size_t dbp_buf_len(const struct dbp_params *p)
{
    return p->len;
}

/* Room for n more bytes; the buffer grows by doubling and is kept. */
static int buf_reserve(struct dbp_params *p, size_t n)
{
    if (p->oom)
        return -1;
    if (p->cap - p->len >= n)
        return 0;
    size_t cap = p->cap ? p->cap : 4096;
    while (cap - p->len < n) {
        if (cap > SIZE_MAX / 2) {
            p->oom = true;
            return -1;
        }
        cap *= 2;
    }
    char *b = realloc(p->buf, cap);
    if (b == NULL) {
        p->oom = true;
        return -1;
    }
    p->buf = b;
    p->cap = cap;
    return 0;
}

int dbp_buf_append(struct dbp_params *p, const void *data, size_t n)
{
    if (buf_reserve(p, n) != 0)
        return -1;
    if (n > 0)
        memcpy(p->buf + p->len, data, n);
    p->len += n;
    return 0;
}

int dbp_buf_printf(struct dbp_params *p, const char *fmt, ...)
{
    va_list ap;
    if (buf_reserve(p, 64) != 0)
        return -1;
    va_start(ap, fmt);
    int n = vsnprintf(p->buf + p->len, p->cap - p->len, fmt, ap);
    va_end(ap);
    if (n < 0) {
        p->oom = true;
        return -1;
    }
    if ((size_t)n >= p->cap - p->len) {
        if (buf_reserve(p, (size_t)n + 1) != 0)
            return -1;
        va_start(ap, fmt);
        vsnprintf(p->buf + p->len, p->cap - p->len, fmt, ap);
        va_end(ap);
    }
    p->len += (size_t)n;
    return 0;
}

int dbp_buf_array_text(struct dbp_params *p, const char *s, size_t n)
{
    /* worst case every byte escaped, plus the quotes */
    if (n > (SIZE_MAX - 2) / 2 || buf_reserve(p, 2 * n + 2) != 0)
        return -1;
    char *o = p->buf + p->len;
    *o++ = '"';
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"' || s[i] == '\\')
            *o++ = '\\';
        *o++ = s[i];
    }
    *o++ = '"';
    p->len = (size_t)(o - p->buf);
    return 0;
}

int dbp_buf_json_string(struct dbp_params *p, const char *s, size_t n)
{
    /* worst case every byte as \u00XX, plus the quotes */
    if (n > (SIZE_MAX - 2) / 6 || buf_reserve(p, 6 * n + 2) != 0)
        return -1;
    static const char hex[] = "0123456789abcdef";
    char *o = p->buf + p->len;
    *o++ = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\') {
            *o++ = '\\';
            *o++ = (char)ch;
        } else if (ch < 0x20 || ch == 0x7f) {
            *o++ = '\\';
            *o++ = 'u';
            *o++ = '0';
            *o++ = '0';
            *o++ = hex[ch >> 4];
            *o++ = hex[ch & 15];
        } else {
            *o++ = (char)ch;
        }
    }
    *o++ = '"';
    p->len = (size_t)(o - p->buf);
    return 0;
}

int dbp_param_end(struct dbp_params *p, unsigned idx, size_t start, int format)
{
    if (idx >= DBP_MAX_PARAMS || start > p->len || p->len - start > INT32_MAX) {
        p->oom = true;
        return -1;
    }
    int len = (int)(p->len - start);
    if (format == 0 && dbp_buf_append(p, "", 1) != 0)
        return -1;
    p->off[idx] = start;
    p->lens[idx] = len;
    p->fmts[idx] = format ? 1 : 0;
    p->set[idx] = true;
    return 0;
}

void dbp_param_null(struct dbp_params *p, unsigned idx)
{
    if (idx < DBP_MAX_PARAMS) {
        p->set[idx] = false;
        p->lens[idx] = 0;
        p->fmts[idx] = 0;
    }
}

/* ---- wiring helpers ---- */

void dbp_config_from_cg(struct dbp_config *out, const struct cg_config *cfg)
{
    out->conninfo = cfg->db_conninfo;
    out->pool_size = cfg->db_pool_size;
    out->max_batch = cfg->db_max_batch;
    out->connect_timeout_us = cfg->db_connect_timeout_us;
    out->reconnect_min_us = cfg->db_reconnect_min_us;
    out->reconnect_max_us = cfg->db_reconnect_max_us;
}

/* snprintf into buf at *len, keeping count of what would have been written. */
static void prom_printf(char *buf, size_t cap, size_t *len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void prom_printf(char *buf, size_t cap, size_t *len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(*len < cap ? buf + *len : NULL, *len < cap ? cap - *len : 0, fmt, ap);
    va_end(ap);
    if (n > 0)
        *len += (size_t)n;
}

size_t dbp_stats_prometheus(const struct dbp_stats *st, char *buf, size_t cap)
{
    static const struct {
        const char *name, *type, *help;
        size_t off;
    } m[] = {
#define M(field, name, type, help) {name, type, help, offsetof(struct dbp_stats, field)}
        M(batches, "cardgate_db_batches_total", "counter", "Calls sent to the database."),
        M(items_sent, "cardgate_db_items_sent_total", "counter", "Items sent in calls."),
        M(items_ok, "cardgate_db_items_ok_total", "counter", "Items that got their row."),
        M(items_failed, "cardgate_db_items_failed_total", "counter",
          "Items that got a failure (SQL, connection, cancel, shutdown, no row)."),
        M(in_flight, "cardgate_db_items_in_flight", "gauge", "Items sent, outcome not yet in."),
        M(queued, "cardgate_db_items_queued", "gauge", "Items waiting on connection queues."),
        M(reconnects, "cardgate_db_reconnects_total", "counter",
          "Connections re-established after a loss."),
        M(conn_failures, "cardgate_db_connection_failures_total", "counter",
          "Connection attempts failed and connections lost."),
        M(batch_errors, "cardgate_db_batch_errors_total", "counter",
          "Calls failed with an SQL error."),
        M(late, "cardgate_db_late_outcomes_total", "counter",
          "Outcomes delivered for items cancelled while in flight."),
        M(refused, "cardgate_db_refused_total", "counter",
          "Submissions refused: no usable connection."),
#undef M
    };
    size_t len = 0;
    prom_printf(buf, cap, &len,
                "# HELP cardgate_db_connections Database connections by state.\n"
                "# TYPE cardgate_db_connections gauge\n"
                "cardgate_db_connections{state=\"up\"} %u\n"
                "cardgate_db_connections{state=\"down\"} %u\n",
                st->conns_up, st->conns_total - st->conns_up);
    for (size_t i = 0; i < UTIL_NELEM(m); i++) {
        uint64_t v;
        memcpy(&v, (const char *)st + m[i].off, sizeof(v));
        prom_printf(buf, cap, &len, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", m[i].name, m[i].help,
                    m[i].name, m[i].type, m[i].name, (unsigned long long)v);
    }
    prom_printf(buf, cap, &len,
                "# HELP cardgate_db_batch_items Items per call.\n"
                "# TYPE cardgate_db_batch_items histogram\n");
    uint64_t cum = 0;
    for (unsigned i = 0; i < DBP_HIST_BUCKETS; i++) {
        cum += st->batch_hist[i];
        if (dbp_hist_bound(i) != 0)
            prom_printf(buf, cap, &len, "cardgate_db_batch_items_bucket{le=\"%u\"} %llu\n",
                        dbp_hist_bound(i), (unsigned long long)cum);
        else
            prom_printf(buf, cap, &len, "cardgate_db_batch_items_bucket{le=\"+Inf\"} %llu\n",
                        (unsigned long long)cum);
    }
    prom_printf(buf, cap, &len,
                "cardgate_db_batch_items_sum %llu\ncardgate_db_batch_items_count %llu\n",
                (unsigned long long)st->items_sent, (unsigned long long)st->batches);
    return len;
}
