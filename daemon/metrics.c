/*
 * metrics.c - process counters and their evhttp endpoint (see metrics.h).
 */
#include "daemon/metrics.h"

#include "common/log.h"
#include "conf/conf.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cg_metrics cg_metrics;

const uint64_t metrics_lat_bounds_us[METRICS_NBUCKETS] = {
    250,   500,    1000,   2000,   5000,    10000,   20000,
    50000, 100000, 250000, 500000, 1000000, 5000000, UINT64_MAX};

static struct {
    metrics_source_fn fn;
    void *arg;
} sources[METRICS_MAX_SOURCES];
static unsigned nsources;

int metrics_add_source(metrics_source_fn fn, void *arg)
{
    if (nsources == METRICS_MAX_SOURCES)
        return -1;
    sources[nsources].fn = fn;
    sources[nsources].arg = arg;
    nsources++;
    return 0;
}

void metrics_clear_sources(void)
{
    nsources = 0;
}

static const char *const err_names[MERR__COUNT] = {
    [MERR_FRAME] = "frame",
    [MERR_DECODE] = "decode",
    [MERR_IDLE] = "idle_timeout",
    [MERR_ECHO] = "echo_timeout",
    [MERR_WRITE_BUFFER] = "write_buffer",
    [MERR_TLS] = "tls",
    [MERR_REFUSED] = "refused",
    [MERR_IO] = "io",
    [MERR_ENCODE] = "encode",
};

void metrics_request(const char *mti, const char *rc, int64_t latency_us)
{
    struct cg_metrics *m = &cg_metrics;
    unsigned i;

    for (i = 0; i < m->nreq; i++)
        if (memcmp(m->req[i].mti, mti, 4) == 0 && memcmp(m->req[i].rc, rc, 2) == 0)
            break;
    if (i == m->nreq && m->nreq < METRICS_MAX_REQ_KEYS) {
        memcpy(m->req[i].mti, mti, 4);
        memcpy(m->req[i].rc, rc, 2);
        m->nreq++;
    }
    if (i < m->nreq)
        m->req[i].n++;
    else
        m->req_other++;
    if (latency_us < 0)
        latency_us = 0;
    for (unsigned b = 0; b < METRICS_NBUCKETS; b++)
        if ((uint64_t)latency_us <= metrics_lat_bounds_us[b])
            m->lat_bucket[b]++;
    m->lat_count++;
    m->lat_sum_us += (uint64_t)latency_us;
}

struct out {
    char *buf;
    size_t cap, len;
    bool full;
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct out *o, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (o->full)
        return;
    va_start(ap, fmt);
    n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= o->cap - o->len) {
        o->full = true;
        return;
    }
    o->len += (size_t)n;
}

static void counter(struct out *o, const char *name, const char *help, const char *type, uint64_t v)
{
    put(o, "# HELP %s %s\n# TYPE %s %s\n%s %" PRIu64 "\n", name, help, name, type, name, v);
}

static bool printable_code(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'A' && s[i] <= 'Z')))
            return false;
    return true;
}

long metrics_render(char *buf, size_t cap)
{
    const struct cg_metrics *m = &cg_metrics;
    struct out o = {buf, cap, 0, false};

    if (cap == 0)
        return -1;
    counter(&o, "cardgate_links_open", "Links currently open.", "gauge", m->links_open);
    counter(&o, "cardgate_links_accepted_total", "Links accepted.", "counter", m->links_accepted);
    counter(&o, "cardgate_links_closed_total", "Links closed.", "counter", m->links_closed);
    counter(&o, "cardgate_frames_in_total", "Frames received.", "counter", m->frames_in);
    counter(&o, "cardgate_frames_out_total", "Frames sent.", "counter", m->frames_out);
    counter(&o, "cardgate_bytes_in_total", "Bytes received in frames.", "counter", m->bytes_in);
    counter(&o, "cardgate_bytes_out_total", "Bytes sent in frames.", "counter", m->bytes_out);
    put(&o, "# HELP cardgate_errors_total Link errors by kind.\n"
            "# TYPE cardgate_errors_total counter\n");
    for (unsigned i = 0; i < MERR__COUNT; i++)
        put(&o, "cardgate_errors_total{kind=\"%s\"} %" PRIu64 "\n", err_names[i], m->errors[i]);
    put(&o,
        "# HELP cardgate_reloads_total Configuration reloads by result.\n"
        "# TYPE cardgate_reloads_total counter\n"
        "cardgate_reloads_total{result=\"ok\"} %" PRIu64 "\n"
        "cardgate_reloads_total{result=\"refused\"} %" PRIu64 "\n",
        m->reloads_ok, m->reloads_failed);
    put(&o, "# HELP cardgate_requests_total Answered requests by MTI and response code.\n"
            "# TYPE cardgate_requests_total counter\n");
    for (unsigned i = 0; i < m->nreq; i++) {
        const struct metrics_req *r = &m->req[i];
        if (!printable_code(r->mti, 4) || !printable_code(r->rc, 2))
            continue;
        put(&o, "cardgate_requests_total{mti=\"%.4s\",rc=\"%.2s\"} %" PRIu64 "\n", r->mti, r->rc,
            r->n);
    }
    if (m->req_other > 0)
        put(&o, "cardgate_requests_total{mti=\"other\",rc=\"other\"} %" PRIu64 "\n", m->req_other);
    put(&o, "# HELP cardgate_request_duration_seconds Arrival to answer written.\n"
            "# TYPE cardgate_request_duration_seconds histogram\n");
    for (unsigned b = 0; b < METRICS_NBUCKETS; b++) {
        if (metrics_lat_bounds_us[b] == UINT64_MAX)
            put(&o, "cardgate_request_duration_seconds_bucket{le=\"+Inf\"} %" PRIu64 "\n",
                m->lat_bucket[b]);
        else
            put(&o,
                "cardgate_request_duration_seconds_bucket{le=\"%" PRIu64 ".%06" PRIu64
                "\"} %" PRIu64 "\n",
                metrics_lat_bounds_us[b] / 1000000, metrics_lat_bounds_us[b] % 1000000,
                m->lat_bucket[b]);
    }
    put(&o,
        "cardgate_request_duration_seconds_sum %" PRIu64 ".%06" PRIu64 "\n"
        "cardgate_request_duration_seconds_count %" PRIu64 "\n",
        m->lat_sum_us / 1000000, m->lat_sum_us % 1000000, m->lat_count);
    counter(&o, "cardgate_standin_answers_total", "Requests answered from stand-in.", "counter",
            m->standin_answers);
    counter(&o, "cardgate_standin_approvals_total",
            "Requests approved in stand-in up to the card's limit (journaled).", "counter",
            m->standin_approvals);
    counter(&o, "cardgate_standin_pending", "Stand-in approvals not settled in the ledger yet.",
            "gauge", m->standin_pending);
    counter(&o, "cardgate_standin_settled_total",
            "Stand-in approvals settled through the database.", "counter", m->standin_settled);
    static const char *const arqc_names[MARQC__COUNT] = {
        "ok", "bad", "replay", "format_error", "unsupported", "unavailable"};
    put(&o,
        "# HELP cardgate_mac_total Link MACs: incoming verified or refused (missing, bad, no "
        "key), outgoing generated or failed.\n"
        "# TYPE cardgate_mac_total counter\n"
        "cardgate_mac_total{dir=\"in\",result=\"ok\"} %" PRIu64 "\n"
        "cardgate_mac_total{dir=\"in\",result=\"failed\"} %" PRIu64 "\n"
        "cardgate_mac_total{dir=\"out\",result=\"ok\"} %" PRIu64 "\n"
        "cardgate_mac_total{dir=\"out\",result=\"failed\"} %" PRIu64 "\n",
        m->mac_verified, m->mac_failures, m->mac_generated, m->mac_sign_errors);
    counter(&o, "cardgate_mac_failures_total",
            "Incoming messages refused for a missing or bad MAC.", "counter", m->mac_failures);
    put(&o, "# HELP cardgate_arqc_total EMV ARQC checks by result.\n"
            "# TYPE cardgate_arqc_total counter\n");
    for (unsigned i = 0; i < MARQC__COUNT; i++)
        put(&o, "cardgate_arqc_total{result=\"%s\"} %" PRIu64 "\n", arqc_names[i], m->arqc[i]);
    if (nsources == 0) {
        counter(&o, "cardgate_db_connections_up", "Database connections ready.", "gauge",
                m->db_connections_up);
        counter(&o, "cardgate_db_connections", "Database connections configured.", "gauge",
                m->db_connections_total);
        counter(&o, "cardgate_db_batches_total", "authorize_batch calls.", "counter",
                m->db_batches);
        counter(&o, "cardgate_db_batch_requests_total", "Requests sent in batches.", "counter",
                m->db_batch_requests);
        counter(&o, "cardgate_db_errors_total", "Database errors.", "counter", m->db_errors);
        counter(&o, "cardgate_db_reconnects_total", "Database reconnections.", "counter",
                m->db_reconnects);
    }
    for (unsigned i = 0; i < nsources && !o.full; i++) {
        size_t room = o.cap - o.len;
        size_t need = sources[i].fn(sources[i].arg, o.buf + o.len, room);
        if (need >= room)
            o.full = true;
        else
            o.len += need;
    }
    if (o.full)
        buf[0] = '\0';
    return o.full ? -1 : (long)o.len;
}

struct metrics_http {
    struct evhttp *http;
    metrics_health_fn health;
    void *arg;
};

static void reply_text(struct evhttp_request *req, int code, const char *reason, const char *body,
                       size_t len, const char *ctype)
{
    struct evbuffer *b = evbuffer_new();
    if (b == NULL) {
        evhttp_send_error(req, 500, "out of memory");
        return;
    }
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", ctype);
    evbuffer_add(b, body, len);
    evhttp_send_reply(req, code, reason, b);
    evbuffer_free(b);
}

static void on_metrics(struct evhttp_request *req, void *arg)
{
    static char buf[64 * 1024];
    long n;

    (void)arg;
    if (evhttp_request_get_command(req) != EVHTTP_REQ_GET) {
        evhttp_send_error(req, 405, "only GET");
        return;
    }
    n = metrics_render(buf, sizeof(buf));
    if (n < 0) {
        evhttp_send_error(req, 500, "metrics too large");
        return;
    }
    reply_text(req, 200, "OK", buf, (size_t)n, "text/plain; version=0.0.4");
}

static void on_health(struct evhttp_request *req, void *arg)
{
    struct metrics_http *m = arg;

    if (m->health == NULL || m->health(m->arg))
        reply_text(req, 200, "OK", "ok\n", 3, "text/plain");
    else
        reply_text(req, 503, "Service Unavailable", "unavailable\n", 12, "text/plain");
}

struct metrics_http *metrics_start(struct event_base *base, const struct conf_addr *addr,
                                   metrics_health_fn health, void *arg)
{
    struct metrics_http *m = calloc(1, sizeof(*m));

    if (m == NULL)
        return NULL;
    if (addr->path[0] != '\0') {
        log_warnx("metrics: a unix socket address is not supported, use host:port");
        free(m);
        return NULL;
    }
    m->health = health;
    m->arg = arg;
    m->http = evhttp_new(base);
    if (m->http == NULL) {
        free(m);
        return NULL;
    }
    evhttp_set_allowed_methods(m->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
    evhttp_set_timeout(m->http, 10);
    if (evhttp_set_cb(m->http, "/metrics", on_metrics, m) != 0 ||
        evhttp_set_cb(m->http, "/health", on_health, m) != 0 ||
        evhttp_bind_socket(m->http, addr->host, addr->port) != 0) {
        log_warnx("metrics: cannot serve on %s:%u", addr->host, (unsigned)addr->port);
        evhttp_free(m->http);
        free(m);
        return NULL;
    }
    log_info("metrics: serving /metrics and /health on %s:%u", addr->host, (unsigned)addr->port);
    return m;
}

void metrics_stop(struct metrics_http *m)
{
    if (m == NULL)
        return;
    evhttp_free(m->http);
    free(m);
}
