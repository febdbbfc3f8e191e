/*
 * dbpool.h - the asynchronous PostgreSQL pool of cardgated.
 *
 * N libpq connections driven non-blocking inside one libevent loop
 * (STYLE.md: PQconnectStartParams/PQconnectPoll, PQsetnonblocking, pipeline
 * mode, prepared statements).  The pool is generic: it knows nothing of
 * authorizations.  Its user gives it, at creation, the statements to prepare
 * on every connection and two callbacks:
 *
 *   build(items[0..n-1])   writes the parameters of ONE call of a prepared
 *                          statement for n queued items (arrays, text or
 *                          binary) into the pool's per-connection buffer;
 *   done(item, outcome)    hands one item its outcome: its row of the
 *                          PGresult, or a failure.
 *
 * Adaptive batching.  Each connection has a queue.  Whenever a connection has
 * nothing in flight, everything queued on it (up to max_batch, and as long as
 * the items name the same statement) goes out as one call followed by one
 * pipeline sync: one item at low load, large batches under load.  There is no
 * timer: a submission to an idle connection is sent at the end of the current
 * loop iteration (an activated event), so the items submitted by one read
 * callback travel together.
 *
 * Fit with the ledger: authorize_batch_json($1::jsonb) (or
 * authorize_batch($1::auth_request[])) is one statement with one parameter
 * built from the n items (dbp_buf_json_string / dbp_buf_array_text help),
 * and auth_outcome's first column, ord, is the ordinal: ord_col = 0.
 *
 * Rows.  The statement returns one row per item; the column stmt.ord_col
 * holds the item's 1-based position in the batch (WITH ORDINALITY).  With
 * ord_col < 0 rows are matched by position.  An item without a row (or with
 * a bad ordinal) gets DBP_ERR_NOROW.  Outcomes are delivered only once the
 * batch's transaction has committed (at PGRES_PIPELINE_SYNC), never earlier.
 *
 * Routing.  item->route_key picks the connection: key % pool_size.  When
 * that connection is not ready, the next ready one in order ((key + i) %
 * pool_size) takes the item.  The ledger serialises by row locks, so
 * correctness never depends on routing, only throughput.
 *
 * Ownership (the one rule).  dbp_submit() returning 0 hands the item to the
 * pool; the pool calls done() for it EXACTLY ONCE - from the event loop, or
 * from inside dbp_cancel() or dbp_free(), never from inside dbp_submit() -
 * and never touches the item after done() returns (done may free or reuse
 * it).  Until then the caller must keep the item's memory alive, even when
 * it has given up on it: dbp_cancel() only marks an item in flight (and
 * takes a not-yet-sent one off its queue); the outcome still comes through
 * done(), with o->cancelled set, so a late approval can be compensated.
 * dbp_submit() returning -1 (no usable connection) keeps the item with the
 * caller and done() is NOT called: the caller answers from stand-in at once
 * (the failure is synchronous).
 *
 * Failures.  A lost connection (PQconsumeInput == 0, a flush error, a broken
 * pipeline) fails every item in flight (DBP_ERR_CONN, o->sent set: the
 * outcome is UNKNOWN, the transaction may have committed; the ledger's
 * idempotency key makes a re-ask safe) and every item queued on it
 * (DBP_ERR_CONN, o->sent clear: never reached the server); then PQfinish and
 * reconnect with back-off doubling from reconnect_min to reconnect_max,
 * re-prepare, resume.  connect_timeout bounds the connection AND the
 * prepares.  An SQL error in a batch fails only that batch (DBP_ERR_SQL
 * with the server's message: the batch's transaction rolled back); the
 * connection stays usable.  A batch failing with SQLSTATE 25006 (read-only
 * transaction: a demoted primary) also drops its connection, so that the
 * reconnect, through a multi-host conninfo with target_session_attrs=
 * read-write, finds the new primary.
 *
 * Reentrancy.  done() may call dbp_submit() and dbp_cancel(); it must not
 * call dbp_free().  Single-threaded: one event_base, no locks.
 *
 * Wiring sketch (the request pipeline):
 *
 *   struct request { ...; struct dbp_item db; };      // preallocated pool
 *   req->db.route_key = account_id ? account_id : card_hash64;
 *   req->db.stmt = 0;                                  // authorize_batch
 *   if (dbp_submit(pool, &req->db) != 0)
 *       answer_from_standin(req);                      // no database: now
 *   ...deadline timer: answer 91, then dbp_cancel(pool, &req->db); if it
 *      returned true, done() has already run; else keep req until it does
 *   done(ud, item, o): req = container_of(item, struct request, db);
 *       if (o->cancelled) compensate a late approval; else answer from the
 *       row (o->status == DBP_OK) or from stand-in; then recycle req.
 */
#ifndef CARDGATE_DAEMON_DBPOOL_H
#define CARDGATE_DAEMON_DBPOOL_H

#include <event2/event.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DBP_MAX_CONNS    64
#define DBP_MAX_STMTS    16
#define DBP_MAX_PARAMS   16
#define DBP_HIST_BUCKETS 11 /* items per batch: <=1,2,4,...,512, more */

struct dbpool;
struct dbp_conn;

/* Where an item is; kept by the pool. */
enum dbp_item_state {
    DBP_ITEM_IDLE = 0, /* the caller's */
    DBP_ITEM_QUEUED,   /* on a connection's queue, not sent */
    DBP_ITEM_SENT,     /* in a batch in flight */
};

/*
 * Embed one in each request; recover the request with container_of.  The
 * caller sets route_key and stmt before dbp_submit(); the rest is the pool's.
 */
struct dbp_item {
    uint64_t route_key; /* account id when known, else a hash of the card */
    unsigned stmt;      /* index into the pool's statements */
    /* pool-private */
    struct dbp_item *next, *prev;
    struct dbp_conn *conn;
    uint8_t state; /* enum dbp_item_state */
    bool cancelled;
};

enum dbp_status {
    DBP_OK = 0,      /* o->res row o->row is this item's */
    DBP_ERR_SQL,     /* the batch failed in the server (o->message) */
    DBP_ERR_NOROW,   /* the batch committed but returned no row for it */
    DBP_ERR_CONN,    /* the connection was lost (o->sent: outcome unknown) */
    DBP_ERR_CANCEL,  /* cancelled before it was sent: never reached the server */
    DBP_ERR_SHUTDOWN /* dbp_free() with the item still queued or in flight */
};

struct dbp_outcome {
    enum dbp_status status;
    const PGresult *res; /* DBP_OK: valid only during the callback */
    int row;             /* DBP_OK: the item's row in res; -1 otherwise */
    const char *message; /* failures: a short reason (server's message) */
    bool sent;           /* the item had been sent to the server */
    bool cancelled;      /* dbp_cancel() was called for it before this */
};

/*
 * The parameters of one call, built by the user's build callback into a
 * per-connection buffer that grows to its high-water mark and is reused
 * (no allocation per batch once warm).  Build a parameter by appending its
 * bytes, then dbp_param_end(p, i, start, format) with start =
 * dbp_buf_len(p) taken before the first append.
 */
struct dbp_params;

/* One statement prepared on every connection. */
struct dbp_stmt {
    const char *name;  /* prepared statement name */
    const char *sql;   /* $1..$n */
    int nparams;       /* <= DBP_MAX_PARAMS */
    const Oid *types;  /* NULL: let the server infer */
    int ord_col;       /* column with the 1-based ordinal; -1: by position */
    int result_format; /* 0 text, 1 binary */
};

struct dbp_ops {
    /*
     * Build the parameters of one call of statement stmt for items[0..n-1]
     * (all naming stmt, n >= 1, in queue order: ordinal i+1 is items[i]).
     * Return 0, or -1 to fail these items with DBP_ERR_SQL ("build failed").
     */
    int (*build)(void *ud, unsigned stmt, struct dbp_item *const *items, unsigned n,
                 struct dbp_params *p);
    /* Deliver one item's outcome (see the ownership rule above). */
    void (*done)(void *ud, struct dbp_item *item, const struct dbp_outcome *o);
};

struct dbp_config {
    /*
     * libpq string or URI, passed as is ("" = PG* env).  The pool adds
     * defaults it overrides: fallback_application_name=cardgated and TCP
     * keepalives (idle 10 s, interval 3 s, count 3), tcp_user_timeout 10 s.
     */
    const char *conninfo;
    unsigned pool_size; /* 1..DBP_MAX_CONNS */
    unsigned max_batch; /* items per call, >= 1 */
    int64_t connect_timeout_us;
    int64_t reconnect_min_us;
    int64_t reconnect_max_us;
    const struct dbp_stmt *stmts;
    unsigned nstmts; /* 1..DBP_MAX_STMTS */
    struct dbp_ops ops;
    void *ud; /* passed to the callbacks */
};

/* Counters and gauges for /metrics. */
struct dbp_stats {
    unsigned conns_total, conns_up; /* up = prepared and usable */
    uint64_t batches;               /* calls sent */
    uint64_t items_sent;
    uint64_t batch_hist[DBP_HIST_BUCKETS]; /* NOT cumulative; see dbp_hist_bound */
    uint64_t in_flight;                    /* gauge: items sent, outcome not yet delivered */
    uint64_t queued;                       /* gauge: items waiting on queues */
    uint64_t reconnects;                   /* connections established after a loss */
    uint64_t conn_failures;                /* connects failed + connections lost */
    uint64_t batch_errors;                 /* batches failed with an SQL error */
    uint64_t items_ok, items_failed;
    uint64_t late;    /* outcomes delivered for cancelled, already-sent items */
    uint64_t refused; /* dbp_submit() calls refused: no usable connection */
};

/*
 * Create the pool on base and start connecting every connection (returns
 * before any is up).  NULL with a reason logged on a bad config or no memory.
 * cfg->stmts and conninfo are copied.
 */
struct dbpool *dbp_new(struct event_base *base, const struct dbp_config *cfg)
    __attribute__((warn_unused_result));

/*
 * Fail every queued and in-flight item with DBP_ERR_SHUTDOWN (their done()
 * runs now), close the connections and free the pool.  NULL is a no-op.
 */
void dbp_free(struct dbpool *pool);

/*
 * Hand item to the pool (see the ownership rule).  0: accepted, done() will
 * run once.  -1: no usable connection (or item not idle, or a bad stmt
 * index): the item is still the caller's and done() will not run.
 */
int dbp_submit(struct dbpool *pool, struct dbp_item *item) __attribute__((warn_unused_result));

/*
 * Give up waiting for item (deadline passed).  Not yet sent: it leaves the
 * queue and its done() runs with DBP_ERR_CANCEL before dbp_cancel returns;
 * returns true.  Already sent: it is marked; its real outcome is delivered
 * later with o->cancelled set; returns false.  Item must be submitted and
 * not yet done.
 */
bool dbp_cancel(struct dbpool *pool, struct dbp_item *item);

/* Is at least one connection usable right now? */
bool dbp_available(const struct dbpool *pool);

/* A copy of the counters and gauges. */
void dbp_get_stats(const struct dbpool *pool, struct dbp_stats *out);

/* Upper bound (items) of histogram bucket i; 0 for the last, unbounded one. */
unsigned dbp_hist_bound(unsigned i);

/* The connection index a key routes to when every connection is up. */
unsigned dbp_route(const struct dbpool *pool, uint64_t key);

/* Index of the connection the item was queued or sent on; -1 when idle. */
int dbp_item_conn(const struct dbpool *pool, const struct dbp_item *item);

struct cg_config;
/*
 * Fill the [database] part of out (conninfo, pool_size, max_batch, the
 * timeouts) from the daemon's config; stmts, ops and ud stay the caller's.
 * out->conninfo points into cfg, which must outlive dbp_new() (it copies).
 */
void dbp_config_from_cg(struct dbp_config *out, const struct cg_config *cfg);

/*
 * Prometheus text exposition of st (cardgate_db_* names; the batch-size
 * histogram cumulative with le buckets 1..512,+Inf) into buf[0..cap-1],
 * NUL-terminated when it fits.  Returns the length it needs, like snprintf:
 * a result >= cap means buf was too small.
 */
size_t dbp_stats_prometheus(const struct dbp_stats *st, char *buf, size_t cap);

/* ---- parameter building (inside the build callback) ---- */

/* Bytes written so far in the call's buffer. */
size_t dbp_buf_len(const struct dbp_params *p);
/* Append n bytes; 0, or -1 when out of memory. */
int dbp_buf_append(struct dbp_params *p, const void *data, size_t n)
    __attribute__((warn_unused_result));
/* Append formatted text (no NUL); 0 or -1. */
int dbp_buf_printf(struct dbp_params *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), warn_unused_result));
/*
 * Append s[0..n-1] as one double-quoted element of a text-format array
 * literal ("..." with \ and " escaped); 0 or -1.
 */
int dbp_buf_array_text(struct dbp_params *p, const char *s, size_t n)
    __attribute__((warn_unused_result));
/*
 * Append s[0..n-1] as a JSON string ("..." with \ and " escaped, control
 * characters as \u00XX; bytes >= 0x80 pass through, so s must be UTF-8),
 * for a jsonb parameter such as authorize_batch_json's; 0 or -1.
 */
int dbp_buf_json_string(struct dbp_params *p, const char *s, size_t n)
    __attribute__((warn_unused_result));
/*
 * Parameter idx (0-based) is the bytes from start to the current end, in
 * format 0 (text: the pool NUL-terminates it) or 1 (binary).  0 or -1.
 */
int dbp_param_end(struct dbp_params *p, unsigned idx, size_t start, int format)
    __attribute__((warn_unused_result));
/* Parameter idx is SQL NULL. */
void dbp_param_null(struct dbp_params *p, unsigned idx);

#endif
