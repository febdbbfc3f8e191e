/*
 * load.c - the open/closed-loop load generator (see load.h).
 */
#include "tools/sim/load.h"

#include "common/log.h"
#include "common/util.h"
#include "tools/sim/net.h"

#include <event2/event.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define LOAD_WBUF           (256 * 1024)
#define LOAD_FRAME_MAX      1024 /* room kept free in the write buffer per request */
#define LOAD_SWEEP_US       20000
#define LOAD_STAN_SPACE     999999u
#define LOAD_BACKOFF_MIN_MS 50
#define LOAD_BACKOFF_MAX_MS 1000

/* One in-flight request. */
struct slot {
    int64_t t0;     /* latency origin: scheduled time (open) or send time (closed) */
    int64_t t_sent; /* actual send, for the timeout */
    uint32_t stan;  /* 1..999999 while in use; after a timeout, kept to spot a late answer */
    uint32_t gen;
    int32_t next_free;
    bool used;
    bool timed_out;
    uint8_t kind;
    char rrn[12];
    char ans_mti[4];
};

struct loadgen;

struct lconn {
    struct loadgen *g;
    int idx;
    int fd;
    bool open;
    struct event *rev, *wev, *tev;
    struct event *cev; /* reconnect timer */
    int backoff_ms;
    struct sim_rx *rx;
    uint8_t *wbuf;
    size_t wlen;
    struct slot *slots;
    uint32_t nslots;
    uint32_t stan_mod; /* largest multiple of nslots <= 999999 */
    int32_t free_head;
    uint32_t inflight;
    uint64_t k_next; /* open loop: next schedule index of this connection */
    uint32_t rrn_seq;
    struct sim_orig last; /* last purchase sent, the original of the next reversal */
    bool have_last;
};

struct loadgen {
    const struct load_opts *o;
    struct load_result *r;
    struct event_base *base;
    struct lconn *c;
    int nconns;
    int64_t start, end, hard_end, last_event;
    bool stopping; /* the sending window is over */
    unsigned mix_total;
    uint8_t pinblock[8]; /* the "pin" kind's field 52 (copied by sim_build) */
    uint64_t rng;
    struct event *sweep;
    /* per-second time strings, reused */
    time_t tsec;
    struct sim_req req;
    struct iso_msg msg; /* encode and decode scratch, one for all */
};

void load_opts_default(struct load_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->conns = 1;
    o->rate = 0;
    o->inflight = 8;
    o->duration_s = 10;
    o->timeout_us = 5000000;
    o->mix[SIM_K_PURCHASE] = 85;
    o->mix[SIM_K_REVERSAL] = 5;
    o->mix[SIM_K_BALANCE] = 5;
    o->mix[SIM_K_REFUND] = 2;
    o->mix[SIM_K_ADVICE] = 3;
    o->amount = 100;
    o->seed = 0x5eed;
}

int load_parse_mix(struct load_opts *o, const char *spec, char *err, size_t errlen)
{
    char buf[256];
    unsigned mix[SIM_K_COUNT] = {0}, total = 0;
    snprintf(buf, sizeof(buf), "%s", spec);
    char *rest = buf;
    for (char *it = strsep(&rest, ","); it; it = strsep(&rest, ",")) {
        char *eq = strchr(it, '=');
        if (!eq) {
            snprintf(err, errlen, "mix item '%s': expected KIND=WEIGHT", it);
            return -1;
        }
        *eq = '\0';
        int k = sim_kind_parse(it);
        if (k < 0 || k == SIM_K_SIGNON || k == SIM_K_ECHO) {
            snprintf(err, errlen,
                     "mix: unknown kind '%s' (purchase, reversal, balance, refund, advice, pin)",
                     it);
            return -1;
        }
        char *end;
        long w = strtol(eq + 1, &end, 10);
        if (*end || end == eq + 1 || w < 0 || w > 1000000) {
            snprintf(err, errlen, "mix: bad weight for %s", it);
            return -1;
        }
        mix[k] = (unsigned)w;
        total += (unsigned)w;
    }
    if (total == 0) {
        snprintf(err, errlen, "mix: all weights are zero");
        return -1;
    }
    memcpy(o->mix, mix, sizeof(mix));
    return 0;
}

/* xorshift64*: cheap, good enough to pick cards and kinds */
static uint64_t rnd(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static int code_index(const uint8_t *p)
{
    int v = 0;
    for (int i = 0; i < 2; i++) {
        int c = p[i];
        int d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'A' && c <= 'Z')
            d = c - 'A' + 10;
        else if (c >= 'a' && c <= 'z')
            d = c - 'a' + 10;
        else
            return -1;
        v = v * 36 + d;
    }
    return v;
}

void load_code_name(unsigned i, char out[3])
{
    static const char digits[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    out[0] = digits[(i / 36) % 36];
    out[1] = digits[i % 36];
    out[2] = '\0';
}

static void conn_flush(struct lconn *c);
static void on_reconnect(evutil_socket_t fd, short what, void *arg);
static void conn_fill(struct lconn *c);

/* Arm the reconnect timer with the current back-off, then double it. */
static void conn_retry_later(struct lconn *c)
{
    if (c->backoff_ms < LOAD_BACKOFF_MIN_MS)
        c->backoff_ms = LOAD_BACKOFF_MIN_MS;
    struct timeval tv = {.tv_sec = c->backoff_ms / 1000, .tv_usec = (c->backoff_ms % 1000) * 1000};
    event_add(c->cev, &tv);
    c->backoff_ms =
        c->backoff_ms * 2 > LOAD_BACKOFF_MAX_MS ? LOAD_BACKOFF_MAX_MS : c->backoff_ms * 2;
}

/*
 * Close a connection: its in-flight requests are lost (errors).  During the
 * sending window it is reopened after a back-off (on_reconnect).
 */
static void conn_close(struct lconn *c, const char *why)
{
    if (!c->open)
        return;
    struct load_result *r = c->g->r;
    log_warnx("load: connection %d closed: %s (%u in flight lost)", c->idx, why, c->inflight);
    r->lost += c->inflight;
    r->errors += c->inflight;
    c->inflight = 0;
    c->open = false;
    event_del(c->rev);
    event_del(c->wev);
    event_del(c->tev);
    close(c->fd);
    c->fd = -1;
    /* come back while the window lasts; what was scheduled meanwhile waits and counts */
    if (!c->g->stopping && util_now_us() < c->g->end)
        conn_retry_later(c);
}

static void slot_free(struct lconn *c, uint32_t i)
{
    struct slot *s = &c->slots[i];
    s->used = false;
    s->next_free = c->free_head;
    c->free_head = (int32_t)i;
    c->inflight--;
}

/* Pick a request kind by the mix; a reversal needs an earlier purchase on this link. */
static enum sim_kind pick_kind(struct loadgen *g, struct lconn *c)
{
    unsigned x = (unsigned)(rnd(&g->rng) % g->mix_total);
    enum sim_kind k = SIM_K_PURCHASE;
    for (int i = 0; i < SIM_K_COUNT; i++) {
        if (x < g->o->mix[i]) {
            k = (enum sim_kind)i;
            break;
        }
        x -= g->o->mix[i];
    }
    if (k == SIM_K_REVERSAL && !c->have_last)
        k = SIM_K_PURCHASE;
    return k;
}

/*
 * Build one request into c's write buffer with latency origin t0.  Returns
 * 0, or -1 when the request could not be built (counted as an error).
 */
static int send_one(struct lconn *c, int64_t t0, int64_t now)
{
    struct loadgen *g = c->g;
    int32_t si = c->free_head;
    struct slot *s = &c->slots[si];
    struct sim_req *q = &g->req;
    time_t sec = time(NULL);
    if (sec != g->tsec) {
        g->tsec = sec;
        sim_req_times(q, sec);
    }
    q->kind = pick_kind(g, c);
    q->card = &g->o->cards->v[rnd(&g->rng) % g->o->cards->n];
    q->amount = q->kind == SIM_K_BALANCE ? 0 : g->o->amount;
    q->orig = NULL;
    q->pinblock = NULL;
    if (q->kind == SIM_K_PIN) {
        if (sim_pin_block(g->o->zpk, g->o->zpk_len, q->card,
                          q->card->pin[0] ? q->card->pin : "1234", g->pinblock) != 0) {
            log_warnx("load: cannot build a PIN block");
            g->r->errors++;
            return -1;
        }
        q->pinblock = g->pinblock;
        q->pinblock_len = 8;
    }
    if (q->kind == SIM_K_REVERSAL) {
        q->orig = &c->last;
        q->amount = c->last.amount;
        c->have_last = false; /* reverse each purchase at most once */
    }
    s->gen++;
    s->stan = (s->gen * c->nslots + (uint32_t)si) % c->stan_mod + 1;
    sim_stan(q->stan, s->stan);
    c->rrn_seq++;
    snprintf(q->rrn, sizeof(q->rrn), "%03u%09u", (unsigned)c->idx % 1000u,
             c->rrn_seq % 1000000000u);
    size_t flen;
    struct iso_err e;
    if (sim_build(g->o->link, q, &g->msg, c->wbuf + c->wlen, LOAD_WBUF - c->wlen, &flen, &e) != 0) {
        log_warnx("load: cannot build a %s: %s", sim_kind_name(q->kind), e.msg);
        g->r->errors++;
        return -1;
    }
    c->wlen += flen;
    c->free_head = s->next_free;
    c->inflight++;
    s->used = true;
    s->timed_out = false;
    s->kind = (uint8_t)q->kind;
    s->t0 = t0;
    s->t_sent = now;
    memcpy(s->rrn, q->rrn, 12);
    char am[5];
    sim_answer_mti(sim_kind_mti(q->kind), am);
    memcpy(s->ans_mti, am, 4);
    if (q->kind == SIM_K_PURCHASE) {
        memcpy(c->last.mti, "0200", 5);
        memcpy(c->last.stan, q->stan, 7);
        memcpy(c->last.xmit, q->xmit, 11);
        c->last.amount = q->amount;
        c->have_last = true;
    }
    g->r->sent++;
    g->r->by_kind[q->kind]++;
    return 0;
}

/* Scheduled time of request k on connection c (open loop). */
static int64_t sched_at(const struct lconn *c, uint64_t k)
{
    const struct loadgen *g = c->g;
    double idx = (double)k * g->nconns + c->idx;
    return g->start + (int64_t)(idx * 1e6 / g->o->rate);
}

/* Send what is due on c (open loop) or top it up to K (closed loop), then flush. */
static void conn_fill(struct lconn *c)
{
    struct loadgen *g = c->g;
    if (!c->open)
        return;
    int64_t now = util_now_us();
    if (g->o->rate > 0) {
        for (;;) {
            int64_t t = sched_at(c, c->k_next);
            if (t >= g->end)
                break; /* past the window: nothing more to schedule */
            if (t > now) {
                if (c->free_head >= 0) {
                    struct timeval tv = {.tv_sec = (t - now) / 1000000,
                                         .tv_usec = (t - now) % 1000000};
                    event_add(c->tev, &tv);
                }
                break;
            }
            if (c->free_head < 0 || LOAD_WBUF - c->wlen < LOAD_FRAME_MAX)
                break; /* wait for a slot: the request keeps its scheduled time */
            c->k_next++;
            (void)send_one(c, t, now);
        }
    } else if (!g->stopping) {
        while (c->free_head >= 0 && LOAD_WBUF - c->wlen >= LOAD_FRAME_MAX)
            if (send_one(c, now, now) != 0)
                break;
    }
    conn_flush(c);
}

static void conn_flush(struct lconn *c)
{
    if (!c->open || c->wlen == 0)
        return;
    ssize_t w;
    do
        w = send(c->fd, c->wbuf, c->wlen, MSG_NOSIGNAL);
    while (w < 0 && errno == EINTR);
    if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
        conn_close(c, strerror(errno));
        return;
    }
    if (w > 0) {
        memmove(c->wbuf, c->wbuf + w, c->wlen - (size_t)w);
        c->wlen -= (size_t)w;
    }
    if (c->wlen)
        event_add(c->wev, NULL);
}

/* One answer frame on c. */
static void on_answer(struct lconn *c, const uint8_t *p, size_t len, int64_t now)
{
    struct loadgen *g = c->g;
    struct load_result *r = g->r;
    struct iso_err e;
    g->last_event = now;
    if (iso_decode(g->o->link->d, p, len, &g->msg, &e) != 0) {
        log_warnx("load: connection %d: undecodable answer: %s", c->idx, e.msg);
        r->bad_frames++;
        r->errors++;
        return;
    }
    const struct iso_view *v11 = iso_get(&g->msg, 11);
    uint32_t stan = 0;
    if (v11 && v11->len == 6)
        for (int i = 0; i < 6; i++)
            stan = stan * 10 + (uint32_t)(v11->p[i] - '0');
    if (stan == 0 || stan > LOAD_STAN_SPACE) {
        r->mismatches++;
        r->errors++;
        return;
    }
    uint32_t si = (stan - 1) % c->nslots;
    struct slot *s = &c->slots[si];
    if (!s->used || s->stan != stan) {
        if (!s->used && s->timed_out && s->stan == stan) {
            r->late++; /* already counted as a timeout */
            s->timed_out = false;
            return;
        }
        r->mismatches++;
        r->errors++;
        return;
    }
    const struct iso_view *v37 = iso_get(&g->msg, 37);
    const struct iso_view *v39 = iso_get(&g->msg, 39);
    /* every financial answer must echo our RRN; one that does not is not this request's */
    if (s->kind != SIM_K_SIGNON && s->kind != SIM_K_ECHO &&
        (!v37 || v37->len != 12 || memcmp(v37->p, s->rrn, 12) != 0)) {
        r->mismatches++;
        r->errors++;
        return;
    }
    /* ours, but wrong: the request is over either way */
    slot_free(c, si);
    const char *why;
    if (sim_check_mac(g->o->link, p, len, &g->msg, &why) != 0) {
        if (r->bad_macs++ == 0)
            log_warnx("load: connection %d: answer MAC: %s", c->idx, why);
        r->mismatches++;
        r->errors++;
        return;
    }
    if (memcmp(g->msg.mti, s->ans_mti, 4) != 0 || !v39 || v39->len != 2) {
        r->mismatches++;
        r->errors++;
        return;
    }
    int ci = code_index(v39->p);
    if (ci < 0) {
        r->mismatches++;
        r->errors++;
        return;
    }
    r->answered++;
    r->by_code[ci]++;
    hist_record(&r->hist, now - s->t0);
}

static void check_done(struct loadgen *g)
{
    if (!g->stopping)
        return;
    for (int i = 0; i < g->nconns; i++) {
        struct lconn *c = &g->c[i];
        if (c->open && (c->inflight > 0 || (g->o->rate > 0 && sched_at(c, c->k_next) < g->end)))
            return;
    }
    event_base_loopbreak(g->base);
}

static void on_read(evutil_socket_t fd, short what, void *arg)
{
    struct lconn *c = arg;
    (void)fd;
    (void)what;
    for (;;) {
        long n = sim_rx_fill(c->fd, c->rx);
        if (n == 0) {
            conn_close(c, "closed by the peer");
            break;
        }
        if (n < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                conn_close(c, strerror(errno));
            break;
        }
        int64_t now = util_now_us();
        const uint8_t *msg;
        size_t len;
        char err[200];
        int r;
        while ((r = sim_rx_next(c->g->o->link, c->rx, &msg, &len, err, sizeof(err))) == 1)
            on_answer(c, msg, len, now);
        if (r < 0) {
            c->g->r->bad_frames++;
            c->g->r->errors++;
            conn_close(c, err);
            break;
        }
        if ((size_t)n < SIM_RX_CAP / 2)
            break; /* likely drained; the next readiness brings more */
    }
    conn_fill(c);
    check_done(c->g);
}

static void on_write(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    conn_fill(arg);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    conn_fill(arg);
}

/* Periodic: time out old requests; end the sending window; end the run. */
static void on_sweep(evutil_socket_t fd, short what, void *arg)
{
    struct loadgen *g = arg;
    (void)fd;
    (void)what;
    int64_t now = util_now_us();
    if (!g->stopping && now >= g->end)
        g->stopping = true;
    for (int i = 0; i < g->nconns; i++) {
        struct lconn *c = &g->c[i];
        if (!c->open || c->inflight == 0)
            continue;
        bool freed = false;
        for (uint32_t j = 0; j < c->nslots; j++) {
            struct slot *s = &c->slots[j];
            if (s->used && now - s->t_sent > g->o->timeout_us) {
                s->timed_out = true;
                slot_free(c, j);
                g->r->timeouts++;
                g->r->errors++;
                g->last_event = now;
                freed = true;
            }
        }
        if (freed)
            conn_fill(c);
    }
    if (now >= g->hard_end) {
        event_base_loopbreak(g->base);
        return;
    }
    check_done(g);
}

/* Connect and sign on (blocking), then switch the socket to non-blocking. */
static int conn_open(struct loadgen *g, struct lconn *c, int timeout_ms, char *err, size_t errlen)
{
    char sub[240];
    c->fd = sim_connect(g->o->addr, timeout_ms, sub, sizeof(sub));
    if (c->fd < 0) {
        snprintf(err, errlen, "connection %d: %s", c->idx, sub);
        return -1;
    }
    struct sim_req q;
    memset(&q, 0, sizeof(q));
    q.kind = SIM_K_SIGNON;
    sim_req_times(&q, time(NULL));
    sim_stan(q.stan, 999999);
    uint8_t frame[512];
    size_t flen;
    struct iso_err e;
    if (sim_build(g->o->link, &q, &g->msg, frame, sizeof(frame), &flen, &e) != 0) {
        snprintf(err, errlen, "sign-on: %s", e.msg);
        return -1;
    }
    if (sim_send_all(c->fd, frame, flen, timeout_ms) != 0) {
        snprintf(err, errlen, "connection %d: sign-on send: %s", c->idx, strerror(errno));
        return -1;
    }
    const uint8_t *msg;
    size_t mlen;
    int r = sim_recv_frame(c->fd, g->o->link, c->rx, timeout_ms, &msg, &mlen, sub, sizeof(sub));
    if (r <= 0) {
        snprintf(err, errlen, "connection %d: sign-on: %s", c->idx, r == 0 ? "no answer" : sub);
        return -1;
    }
    if (iso_decode(g->o->link->d, msg, mlen, &g->msg, &e) != 0) {
        snprintf(err, errlen, "connection %d: sign-on answer: %s", c->idx, e.msg);
        return -1;
    }
    const char *why;
    if (sim_check_mac(g->o->link, msg, mlen, &g->msg, &why) != 0) {
        snprintf(err, errlen, "connection %d: sign-on answer MAC: %s", c->idx, why);
        return -1;
    }
    const struct iso_view *v39 = iso_get(&g->msg, 39);
    if (memcmp(g->msg.mti, "0810", 4) != 0 || !v39 || v39->len != 2 || memcmp(v39->p, "00", 2)) {
        snprintf(err, errlen, "connection %d: sign-on refused (MTI %.4s, 39 %.*s)", c->idx,
                 g->msg.mti, v39 ? (int)v39->len : 1, v39 ? (const char *)v39->p : "-");
        return -1;
    }
    int fl = fcntl(c->fd, F_GETFL);
    if (fl < 0 || fcntl(c->fd, F_SETFL, fl | O_NONBLOCK) != 0) {
        snprintf(err, errlen, "fcntl: %s", strerror(errno));
        return -1;
    }
    c->open = true;
    return 0;
}

/*
 * Reopen a closed connection: connect and sign on (blocking, 1 s limits:
 * the loop waits meanwhile, and that wait shows in the other connections'
 * latencies, as it should), fresh slots and buffers, then resume the
 * schedule where it stood.
 */
static void on_reconnect(evutil_socket_t fd, short what, void *arg)
{
    struct lconn *c = arg;
    struct loadgen *g = c->g;
    (void)fd;
    (void)what;
    if (g->stopping || util_now_us() >= g->end)
        return;
    c->rx->have = c->rx->pending = 0;
    c->wlen = 0;
    c->free_head = -1;
    for (uint32_t j = c->nslots; j-- > 0;) {
        c->slots[j].used = false;
        c->slots[j].timed_out = false;
        c->slots[j].next_free = c->free_head;
        c->free_head = (int32_t)j;
    }
    c->inflight = 0;
    char err[300];
    struct event *rev = NULL, *wev = NULL;
    if (conn_open(g, c, 1000, err, sizeof(err)) == 0) {
        rev = event_new(g->base, c->fd, EV_READ | EV_PERSIST, on_read, c);
        wev = event_new(g->base, c->fd, EV_WRITE, on_write, c);
    }
    if (!rev || !wev || event_add(rev, NULL) != 0) {
        log_warnx("load: connection %d: reconnect failed: %s", c->idx, c->open ? "libevent" : err);
        if (rev)
            event_free(rev);
        if (wev)
            event_free(wev);
        if (c->fd >= 0)
            close(c->fd);
        c->fd = -1;
        c->open = false;
        conn_retry_later(c);
        return;
    }
    event_free(c->rev);
    event_free(c->wev);
    c->rev = rev;
    c->wev = wev;
    c->backoff_ms = 0;
    g->r->reconnects++;
    log_info("load: connection %d: reconnected and signed on", c->idx);
    conn_fill(c);
}

static void loadgen_free(struct loadgen *g)
{
    for (int i = 0; g->c && i < g->nconns; i++) {
        struct lconn *c = &g->c[i];
        if (c->rev)
            event_free(c->rev);
        if (c->wev)
            event_free(c->wev);
        if (c->tev)
            event_free(c->tev);
        if (c->cev)
            event_free(c->cev);
        if (c->fd >= 0)
            close(c->fd);
        free(c->rx);
        free(c->wbuf);
        free(c->slots);
    }
    free(g->c);
    if (g->sweep)
        event_free(g->sweep);
    if (g->base)
        event_base_free(g->base);
    free(g);
}

int load_run(const struct load_opts *o, struct load_result *r, char *err, size_t errlen)
{
    memset(r, 0, sizeof(*r));
    if (o->conns < 1 || o->inflight < 1 || o->inflight > 65536 || o->duration_s <= 0 ||
        o->rate < 0 || !o->cards || o->cards->n == 0) {
        snprintf(err, errlen, "bad load options");
        return -1;
    }
    struct loadgen *g = calloc(1, sizeof(*g));
    if (!g) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    g->o = o;
    g->r = r;
    g->rng = o->seed ? o->seed : 1;
    g->tsec = (time_t)-1;
    if (o->mix[SIM_K_PIN] > 0 && o->zpk == NULL) {
        snprintf(err, errlen, "mix: pin needs --zpk (the link's zone PIN key)");
        loadgen_free(g);
        return -1;
    }
    for (int i = 0; i < SIM_K_COUNT; i++)
        g->mix_total += o->mix[i];
    if (g->mix_total == 0) {
        snprintf(err, errlen, "empty message mix");
        loadgen_free(g);
        return -1;
    }
    struct event_config *cfg = event_config_new();
    if (cfg) {
        event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER);
        g->base = event_base_new_with_config(cfg);
        event_config_free(cfg);
    }
    g->c = calloc((size_t)o->conns, sizeof(*g->c));
    if (!g->base || !g->c) {
        snprintf(err, errlen, "out of memory");
        loadgen_free(g);
        return -1;
    }
    g->nconns = o->conns;
    for (int i = 0; i < o->conns; i++) {
        struct lconn *c = &g->c[i];
        c->g = g;
        c->idx = i;
        c->fd = -1;
        c->nslots = (uint32_t)o->inflight;
        c->stan_mod = LOAD_STAN_SPACE - LOAD_STAN_SPACE % c->nslots;
        c->rx = calloc(1, sizeof(*c->rx));
        c->wbuf = malloc(LOAD_WBUF);
        c->slots = calloc(c->nslots, sizeof(*c->slots));
        if (!c->rx || !c->wbuf || !c->slots) {
            snprintf(err, errlen, "out of memory");
            loadgen_free(g);
            return -1;
        }
        for (uint32_t j = 0; j < c->nslots; j++)
            c->slots[j].next_free = j + 1 < c->nslots ? (int32_t)(j + 1) : -1;
        c->free_head = 0;
        if (conn_open(g, c, 5000, err, errlen) != 0) {
            loadgen_free(g);
            return -1;
        }
        c->rev = event_new(g->base, c->fd, EV_READ | EV_PERSIST, on_read, c);
        c->wev = event_new(g->base, c->fd, EV_WRITE, on_write, c);
        c->tev = evtimer_new(g->base, on_timer, c);
        c->cev = evtimer_new(g->base, on_reconnect, c);
        if (!c->rev || !c->wev || !c->tev || !c->cev || event_add(c->rev, NULL) != 0) {
            snprintf(err, errlen, "libevent: cannot set up events");
            loadgen_free(g);
            return -1;
        }
    }
    g->sweep = event_new(g->base, -1, EV_PERSIST, on_sweep, g);
    struct timeval sw = {.tv_sec = 0, .tv_usec = LOAD_SWEEP_US};
    if (!g->sweep || event_add(g->sweep, &sw) != 0) {
        snprintf(err, errlen, "libevent: cannot set up the sweep timer");
        loadgen_free(g);
        return -1;
    }
    g->start = util_now_us();
    g->end = g->start + (int64_t)(o->duration_s * 1e6);
    g->hard_end = g->end + o->timeout_us + 2 * LOAD_SWEEP_US;
    g->last_event = g->start;
    for (int i = 0; i < g->nconns; i++)
        conn_fill(&g->c[i]);
    event_base_dispatch(g->base);

    /* scheduled in the window but never sent: the server never let us */
    if (o->rate > 0) {
        uint64_t unsent = 0;
        for (int i = 0; i < g->nconns; i++) {
            struct lconn *c = &g->c[i];
            for (uint64_t k = c->k_next; sched_at(c, k) < g->end; k++)
                unsent++;
        }
        r->unsent = unsent;
        r->errors += unsent;
    }
    /* still in flight at the hard end: timeouts */
    for (int i = 0; i < g->nconns; i++) {
        struct lconn *c = &g->c[i];
        if (c->open && c->inflight) {
            r->timeouts += c->inflight;
            r->errors += c->inflight;
        }
    }
    r->offered_rate = o->rate;
    r->duration_s = o->duration_s;
    int64_t last = g->last_event > g->end ? g->last_event : g->end;
    r->elapsed_s = (double)(last - g->start) / 1e6;
    r->throughput = r->elapsed_s > 0 ? (double)r->answered / r->elapsed_s : 0;
    loadgen_free(g);
    return 0;
}

void load_print_table(FILE *fp, const struct load_opts *o, const struct load_result *r)
{
    fprintf(fp, "cardgate-sim load: %s, %d connection(s), %s", o->addr, o->conns,
            o->rate > 0 ? "open loop" : "closed loop");
    if (o->rate > 0)
        fprintf(fp, " at %.0f/s (cap %d in flight per connection)\n", o->rate, o->inflight);
    else
        fprintf(fp, ", %d in flight per connection\n", o->inflight);
    fprintf(fp, "  %-14s %12.1f s (answers until %.1f s)\n", "duration", r->duration_s,
            r->elapsed_s);
    fprintf(fp, "  %-14s %12llu\n", "sent", (unsigned long long)r->sent);
    fprintf(fp, "  %-14s %12llu\n", "answered", (unsigned long long)r->answered);
    fprintf(fp, "  %-14s %12.0f /s\n", "throughput", r->throughput);
    fprintf(fp,
            "  %-14s %12llu  (timeouts %llu, mismatches %llu (bad MACs %llu), bad frames %llu, "
            "lost %llu, unsent %llu; late answers %llu; reconnects %llu)\n",
            "errors", (unsigned long long)r->errors, (unsigned long long)r->timeouts,
            (unsigned long long)r->mismatches, (unsigned long long)r->bad_macs,
            (unsigned long long)r->bad_frames, (unsigned long long)r->lost,
            (unsigned long long)r->unsent, (unsigned long long)r->late,
            (unsigned long long)r->reconnects);
    fprintf(fp, "  sent by kind:");
    for (int k = SIM_K_PURCHASE; k < SIM_K_COUNT; k++)
        fprintf(fp, " %s %llu", sim_kind_name((enum sim_kind)k), (unsigned long long)r->by_kind[k]);
    fprintf(fp, "\n  answers by code:");
    for (unsigned i = 0; i < LOAD_NCODES; i++)
        if (r->by_code[i]) {
            char cn[3];
            load_code_name(i, cn);
            fprintf(fp, " %s %llu", cn, (unsigned long long)r->by_code[i]);
        }
    fprintf(fp, "\n  latency (us, %s): p50 %lld  p90 %lld  p99 %lld  p99.9 %lld  max %lld\n",
            o->rate > 0 ? "from the scheduled send" : "from the send",
            (long long)hist_percentile(&r->hist, 50), (long long)hist_percentile(&r->hist, 90),
            (long long)hist_percentile(&r->hist, 99), (long long)hist_percentile(&r->hist, 99.9),
            (long long)r->hist.max);
}

void load_print_json(FILE *fp, const struct load_result *r)
{
    fprintf(fp,
            "{\"offered_rate\":%.0f,\"duration_s\":%.3f,\"sent\":%llu,\"answered\":%llu,"
            "\"errors\":%llu,\"timeouts\":%llu,\"throughput\":%.1f,\"by_code\":{",
            r->offered_rate, r->duration_s, (unsigned long long)r->sent,
            (unsigned long long)r->answered, (unsigned long long)r->errors,
            (unsigned long long)r->timeouts, r->throughput);
    bool first = true;
    for (unsigned i = 0; i < LOAD_NCODES; i++)
        if (r->by_code[i]) {
            char cn[3];
            load_code_name(i, cn);
            fprintf(fp, "%s\"%s\":%llu", first ? "" : ",", cn, (unsigned long long)r->by_code[i]);
            first = false;
        }
    fprintf(fp,
            "},\"latency_us\":{\"p50\":%lld,\"p90\":%lld,\"p99\":%lld,\"p999\":%lld,\"max\":%lld}}"
            "\n",
            (long long)hist_percentile(&r->hist, 50), (long long)hist_percentile(&r->hist, 90),
            (long long)hist_percentile(&r->hist, 99), (long long)hist_percentile(&r->hist, 99.9),
            (long long)r->hist.max);
}
