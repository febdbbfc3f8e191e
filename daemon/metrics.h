/*
 * metrics.h - counters the daemon keeps and serves as Prometheus text.
 *
 * One process-wide struct cg_metrics (single-threaded loop, so plain
 * integers).  Modules bump fields directly or through the helpers below;
 * metrics_start() serves GET /metrics and GET /health with evhttp on the
 * [metrics] address.  Nothing here allocates per request.
 */
#ifndef CARDGATE_DAEMON_METRICS_H
#define CARDGATE_DAEMON_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct conf_addr;

enum metrics_err {
    MERR_FRAME = 0,    /* malformed or oversize length */
    MERR_DECODE,       /* undecodable message */
    MERR_IDLE,         /* idle timeout */
    MERR_ECHO,         /* peer stopped answering our echo */
    MERR_WRITE_BUFFER, /* peer not reading, write buffer over its limit */
    MERR_TLS,          /* TLS handshake or record error */
    MERR_REFUSED,      /* not on the allow-list */
    MERR_IO,           /* read/write error, reset */
    MERR_ENCODE,       /* an answer could not be encoded */
    MERR__COUNT
};

/* EMV ARQC results, cardgate_arqc_total{result=...} (daemon/emvchk.c) */
enum metrics_arqc {
    MARQC_OK = 0,      /* the ARQC verified */
    MARQC_BAD,         /* it did not (declined 82 by the ledger) */
    MARQC_REPLAY,      /* verified, but the ledger saw the ATC before (82) */
    MARQC_FORMAT,      /* field 55 malformed or a required tag missing (bad, 82) */
    MARQC_UNSUPPORTED, /* a cryptogram version we do not verify (not checked) */
    MARQC_UNAVAILABLE, /* no IMK-AC configured or usable (not checked) */
    MARQC__COUNT
};

#define METRICS_MAX_REQ_KEYS 128
#define METRICS_NBUCKETS     14

struct metrics_req {
    char mti[5];
    char rc[3];
    uint64_t n;
};

struct cg_metrics {
    uint64_t links_open;
    uint64_t links_accepted;
    uint64_t links_closed;
    uint64_t frames_in;
    uint64_t frames_out;
    uint64_t bytes_in;
    uint64_t bytes_out;
    uint64_t errors[MERR__COUNT];
    uint64_t reloads_ok;
    uint64_t reloads_failed;
    /* requests by MTI and response code; extra keys fold into "other" */
    struct metrics_req req[METRICS_MAX_REQ_KEYS];
    unsigned nreq;
    uint64_t req_other;
    /* request latency, microseconds, cumulative buckets as Prometheus wants */
    uint64_t lat_bucket[METRICS_NBUCKETS];
    uint64_t lat_count;
    uint64_t lat_sum_us;
    /*
     * Database placeholders, rendered only while no source is registered
     * (the pool renders its own cardgate_db_* text through
     * metrics_add_source, dbp_stats_prometheus); db_connections_up/total
     * also feed systemd's STATUS=, so the pipeline keeps them current.
     */
    uint64_t db_connections_up;
    uint64_t db_connections_total;
    uint64_t db_batches;
    uint64_t db_batch_requests;
    uint64_t db_errors;
    uint64_t db_reconnects;
    uint64_t standin_answers;
    uint64_t standin_approvals; /* approved in stand-in, journaled ([standin] mode = approve) */
    uint64_t standin_pending;   /* gauge: stand-in approvals not settled yet */
    uint64_t standin_settled;   /* stand-in approvals settled through the database */
    /* link MACs (daemon/linkmac.c) */
    uint64_t mac_verified;    /* incoming messages whose MAC verified */
    uint64_t mac_failures;    /* incoming messages refused: MAC missing, bad or no key */
    uint64_t mac_generated;   /* outgoing messages MAC'd */
    uint64_t mac_sign_errors; /* outgoing messages that could not be MAC'd (not sent) */
    /* EMV ARQC results (daemon/emvchk.c) */
    uint64_t arqc[MARQC__COUNT];
};

extern struct cg_metrics cg_metrics;

/* Upper bounds of the latency buckets, microseconds (the last is +Inf). */
extern const uint64_t metrics_lat_bounds_us[METRICS_NBUCKETS];

/* Count one answered request: MTI and response code as sent, latency. */
void metrics_request(const char *mti, const char *rc, int64_t latency_us);

/*
 * Render every metric as Prometheus text into buf[0..cap), NUL-terminated.
 * Returns the length, or -1 when buf is too small.
 */
long metrics_render(char *buf, size_t cap) __attribute__((warn_unused_result));

/*
 * Another module's Prometheus text appended to /metrics: write into
 * buf[0..cap) and return the length needed, like snprintf (a result >= cap
 * means it did not fit).
 */
typedef size_t (*metrics_source_fn)(void *arg, char *buf, size_t cap);

#define METRICS_MAX_SOURCES 8

/* Register a source (rendered in order); 0, or -1 when all slots are taken. */
int metrics_add_source(metrics_source_fn fn, void *arg) __attribute__((warn_unused_result));

/* Forget every source (before the modules behind them go away). */
void metrics_clear_sources(void);

/* Is the service healthy (listeners up, not draining)? Set by the server. */
typedef bool (*metrics_health_fn)(void *arg);

struct metrics_http;

/*
 * Serve /metrics and /health on addr (TCP host:port).  Returns a handle or
 * NULL (logged) when the address cannot be bound.
 */
struct metrics_http *metrics_start(struct event_base *base, const struct conf_addr *addr,
                                   metrics_health_fn health, void *arg)
    __attribute__((warn_unused_result));
void metrics_stop(struct metrics_http *m);

#endif
