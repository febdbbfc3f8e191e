/*
 * link.c - one switch connection: framing, dispatch, answers, backpressure,
 * timers, TLS, deferred free (see link.h).
 */
#include "daemon/link.h"

#include "common/log.h"
#include "common/util.h"
#include "daemon/linkmac.h"
#include "daemon/netmgmt.h"
#include "daemon/server.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <arpa/inet.h>
#include <assert.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#define HANDSHAKE_TIMEOUT_US (10 * 1000000LL)
#define ECHO_MAX_UNANSWERED  3

static const char *const state_names[] = {
    [LINK_HANDSHAKE] = "HANDSHAKE", [LINK_CONNECTED] = "CONNECTED",
    [LINK_SIGNED_ON] = "SIGNED_ON", [LINK_SIGNED_OFF] = "SIGNED_OFF",
    [LINK_DRAINING] = "DRAINING",   [LINK_CLOSED] = "CLOSED",
};

const char *link_state_name(enum link_state s)
{
    return (unsigned)s < UTIL_NELEM(state_names) ? state_names[s] : "?";
}

/* Is from -> to one of the transitions drawn in link.h? */
static bool legal(enum link_state from, enum link_state to)
{
    switch (to) {
    case LINK_CONNECTED:
        return from == LINK_HANDSHAKE;
    case LINK_SIGNED_ON:
        return from == LINK_CONNECTED || from == LINK_SIGNED_OFF;
    case LINK_SIGNED_OFF:
        return from == LINK_CONNECTED || from == LINK_SIGNED_ON;
    case LINK_DRAINING:
        return from != LINK_DRAINING && from != LINK_CLOSED;
    case LINK_CLOSED:
        return from != LINK_CLOSED;
    default:
        return false;
    }
}

void link_set_state(struct link *l, enum link_state to)
{
    assert(legal(l->state, to));
    if (!legal(l->state, to))
        abort();
    log_debug_p(l->prefix, "%s -> %s", link_state_name(l->state), link_state_name(to));
    l->state = to;
    if (to == LINK_SIGNED_ON || to == LINK_SIGNED_OFF)
        server_event(l->srv, l->prefix, to == LINK_SIGNED_ON ? "signed-on" : "signed-off", "%s",
                     "");
}

bool link_may_transact(const struct link *l)
{
    if (!l->lsn->conf.require_signon)
        return l->state != LINK_CLOSED;
    return l->state == LINK_SIGNED_ON || (l->state == LINK_DRAINING && l->was_signed_on);
}

bool link_is_open(const struct link *l)
{
    return l->state != LINK_CLOSED && l->state != LINK_DRAINING;
}

static void link_unref(struct link *l)
{
    assert(l->refs > 0);
    if (--l->refs == 0)
        server_reap(l->srv, l);
}

void link_free(struct link *l)
{
    assert(l->refs == 0 && l->state == LINK_CLOSED);
    if (l->timer_added)
        event_del(&l->timer);
    event_del(&l->resume);
    if (l->bev != NULL)
        bufferevent_free(l->bev);
    listener_unref(l->lsn);
    free(l);
}

void link_close(struct link *l, int kind, const char *fmt, ...)
{
    char reason[256];
    va_list ap;

    if (l->state == LINK_CLOSED)
        return;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    if (kind >= 0 && kind < MERR__COUNT) {
        cg_metrics.errors[kind]++;
        log_warnx_p(l->prefix, "closed: %s", reason);
    } else {
        log_info_p(l->prefix, "closed: %s", reason);
    }
    link_set_state(l, LINK_CLOSED);
    server_event(l->srv, l->prefix, "closed", "%s", reason);
    if (l->bev != NULL) {
        bufferevent_disable(l->bev, EV_READ | EV_WRITE);
        bufferevent_setcb(l->bev, NULL, NULL, NULL, NULL);
        /* the socket goes now; the struct waits for its references */
        bufferevent_free(l->bev);
        l->bev = NULL;
    }
    if (l->timer_added) {
        event_del(&l->timer);
        l->timer_added = false;
    }
    event_del(&l->resume);
    cg_metrics.links_open--;
    cg_metrics.links_closed++;
    server_link_closed(l->srv, l);
    link_unref(l);
}

/* Close once everything queued has reached the kernel. */
static void close_when_flushed(struct link *l, const char *why)
{
    if (l->state == LINK_CLOSED)
        return;
    l->close_after_flush = true;
    snprintf(l->close_reason, sizeof(l->close_reason), "%s", why);
    bufferevent_disable(l->bev, EV_READ);
    if (evbuffer_get_length(bufferevent_get_output(l->bev)) == 0)
        link_close(l, -1, "%s", why);
}

int link_write_frame(struct link *l, const uint8_t *req_hdr, const uint8_t *msg, size_t len)
{
    uint8_t head[4 + 255];
    long hl;
    struct evbuffer *out;

    if (l->state == LINK_CLOSED || l->bev == NULL)
        return -1;
    hl = iso_frame_write_head(&l->lsn->framing, req_hdr, len, head, sizeof(head));
    if (hl < 0) {
        cg_metrics.errors[MERR_ENCODE]++;
        log_warnx_p(l->prefix, "answer of %zu bytes does not fit the framing: dropped", len);
        return 0;
    }
    out = bufferevent_get_output(l->bev);
    if (evbuffer_add(out, head, (size_t)hl) != 0 || evbuffer_add(out, msg, len) != 0) {
        link_close(l, MERR_IO, "cannot queue %zu bytes: out of memory", len);
        return -1;
    }
    cg_metrics.frames_out++;
    cg_metrics.bytes_out += (uint64_t)hl + len;
    if (evbuffer_get_length(out) > l->lsn->conf.write_buffer_max) {
        link_close(l, MERR_WRITE_BUFFER,
                   "peer is not reading: %zu bytes queued, write_buffer_max is %llu",
                   evbuffer_get_length(out), (unsigned long long)l->lsn->conf.write_buffer_max);
        return -1;
    }
    return 0;
}

/* One request left the link's hands: resume reading, finish a drain. */
static void request_done(struct link *l)
{
    assert(l->outstanding > 0);
    l->outstanding--;
    /* from the loop, not from inside the pipeline's call: read on, or end a drain */
    if ((l->read_paused || l->state == LINK_DRAINING) && l->state != LINK_CLOSED &&
        l->outstanding < l->lsn->conf.max_outstanding)
        event_active(&l->resume, EV_READ, 0);
}

int link_send_answer(struct link *l, const uint8_t *req_hdr, const uint8_t *msg, size_t len)
{
    int rc = -1;

    if (l->state == LINK_CLOSED) {
        log_debug_p(l->prefix, "answer dropped: link closed");
    } else {
        rc = link_write_frame(l, req_hdr, msg, len);
    }
    if (l->state != LINK_CLOSED)
        request_done(l);
    else
        l->outstanding--;
    link_unref(l);
    return rc;
}

void link_request_cancel(struct link *l)
{
    if (l->state != LINK_CLOSED)
        request_done(l);
    else
        l->outstanding--;
    link_unref(l);
}

void link_drain(struct link *l)
{
    if (l->state == LINK_CLOSED || l->state == LINK_DRAINING)
        return;
    l->was_signed_on = l->state == LINK_SIGNED_ON;
    link_set_state(l, LINK_DRAINING);
    bufferevent_disable(l->bev, EV_READ);
    /* frames already received are still served; then the link closes */
    event_active(&l->resume, EV_READ, 0);
}

/* True for request MTIs the pipeline serves (financial, reversal, advice). */
static bool is_response_mti(const char *mti)
{
    return (mti[2] - '0') % 2 == 1;
}

/*
 * Route one decoded frame.  Returns -1 when the link was closed.
 */
static int handle_frame(struct link *l, const struct link_frame *f)
{
    const char *mti = f->iso->mti;

    l->echo_unanswered = 0;
    if (!linkmac_link_verify(l, f)) {
        if (is_response_mti(mti))
            return 0; /* an answer to our own echo: nothing to answer */
        return netmgmt_answer_code(l, f, l->lsn->conf.mac_failure_code);
    }
    if (memcmp(mti, "0800", 4) == 0)
        return netmgmt_handle(l, f);
    if (memcmp(mti, "0810", 4) == 0) {
        log_debug_p(l->prefix, "echo answered");
        return 0;
    }
    if (is_response_mti(mti)) {
        log_info_p(l->prefix, "unexpected response %.4s ignored", mti);
        return 0;
    }
    if (!link_may_transact(l)) {
        log_info_p(l->prefix, "%.4s on a link that is not signed on: answered 91", mti);
        return netmgmt_answer_code(l, f, "91");
    }
    if (l->srv->hooks.dispatch == NULL) {
        cg_metrics.standin_answers++;
        return netmgmt_answer_code(l, f, l->srv->cfg->standin_response);
    }
    l->outstanding++;
    l->refs++;
    if (l->srv->hooks.dispatch(l->srv->hooks.arg, l, f) != 0) {
        l->outstanding--;
        link_unref(l);
        cg_metrics.standin_answers++;
        return netmgmt_answer_code(l, f, l->srv->cfg->standin_response);
    }
    return l->state == LINK_CLOSED ? -1 : 0;
}

/*
 * Take every complete frame from the input buffer, within backpressure.  A
 * draining link reads nothing new but still serves the frames it holds, and
 * closes once they are all answered.
 */
static void process_input(struct link *l)
{
    const struct listener *lsn = l->lsn;
    struct evbuffer *in;
    int64_t now = util_now_us();

    while (l->state != LINK_CLOSED && !l->close_after_flush) {
        size_t have, want, off, mlen, flen;
        struct iso_err err;
        uint8_t *p;
        int r;

        in = bufferevent_get_input(l->bev);
        if (l->outstanding >= lsn->conf.max_outstanding) {
            if (!l->read_paused) {
                l->read_paused = true;
                bufferevent_disable(l->bev, EV_READ);
                log_debug_p(l->prefix, "%u requests in flight: reading paused", l->outstanding);
            }
            return;
        }
        have = evbuffer_get_length(in);
        if (have == 0)
            break;
        want = iso_frame_prefix_len(&lsn->framing) + lsn->framing.max_len;
        if (want > have)
            want = have;
        p = evbuffer_pullup(in, (ssize_t)want);
        if (p == NULL) {
            link_close(l, MERR_IO, "out of memory reading a frame");
            return;
        }
        r = iso_frame_parse(&lsn->framing, p, want, &off, &mlen, &flen, &err);
        if (r == 0)
            break;
        if (r < 0) {
            link_close(l, MERR_FRAME, "bad frame (%s)", err.msg);
            return;
        }
        cg_metrics.frames_in++;
        cg_metrics.bytes_in += flen;
        l->last_rx_us = now;
        struct link_frame f = {
            .hdr = lsn->framing.hdr_len > 0 ? p + off - lsn->framing.hdr_len : NULL,
            .hdr_len = lsn->framing.hdr_len,
            .msg = p + off,
            .len = mlen,
            .iso = &l->srv->rx,
            .dialect = lsn->dialect,
            .arrival_us = now,
        };
        if (iso_decode(lsn->dialect, f.msg, f.len, &l->srv->rx, &err) != 0) {
            link_close(l, MERR_DECODE, "undecodable %zu-byte message (%s)", mlen, err.msg);
            return;
        }
        f.deadline_us = now + cg_listener_budget(&lsn->conf, l->srv->rx.mti);
        if (handle_frame(l, &f) != 0 || l->state == LINK_CLOSED)
            return;
        if (evbuffer_drain(bufferevent_get_input(l->bev), flen) != 0) {
            link_close(l, MERR_IO, "cannot drain the input buffer");
            return;
        }
    }
    if (l->state == LINK_CLOSED || l->close_after_flush)
        return;
    if (l->state == LINK_DRAINING) {
        if (l->outstanding == 0) {
            size_t left = evbuffer_get_length(bufferevent_get_input(l->bev));
            if (left > 0)
                log_info_p(l->prefix, "drain: %zu bytes of an incomplete frame dropped", left);
            close_when_flushed(l, "drained");
        }
    } else if (l->read_paused) {
        l->read_paused = false;
        bufferevent_enable(l->bev, EV_READ);
    }
}

static void on_read(struct bufferevent *bev, void *arg)
{
    (void)bev;
    process_input(arg);
}

static void on_resume(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    process_input(arg);
}

static void on_write(struct bufferevent *bev, void *arg)
{
    struct link *l = arg;

    if (l->close_after_flush && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
        link_close(l, -1, "%s", l->close_reason);
}

static void tls_error_text(struct bufferevent *bev, char *buf, size_t len)
{
    unsigned long e = bufferevent_get_openssl_error(bev);
    buf[0] = '\0';
    if (e != 0)
        ERR_error_string_n(e, buf, len);
    else
        snprintf(buf, len, "connection lost during TLS");
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    struct link *l = arg;

    if (what & BEV_EVENT_CONNECTED) {
        if (l->state == LINK_HANDSHAKE) {
            SSL *ssl = bufferevent_openssl_get_ssl(bev);
            X509 *cert = ssl != NULL ? SSL_get_peer_certificate(ssl) : NULL;
            char subj[256] = "none";
            if (cert != NULL) {
                X509_NAME_oneline(X509_get_subject_name(cert), subj, sizeof(subj));
                X509_free(cert);
            }
            log_info_p(l->prefix, "TLS %s established, client certificate: %s",
                       ssl != NULL ? SSL_get_version(ssl) : "?", subj);
            link_set_state(l, LINK_CONNECTED);
        }
        return;
    }
    if (what & BEV_EVENT_EOF) {
        link_close(l, -1, "peer closed the connection (%u in flight)", l->outstanding);
        return;
    }
    if (what & BEV_EVENT_ERROR) {
        if (l->lsn->ssl != NULL) {
            char buf[200];
            tls_error_text(bev, buf, sizeof(buf));
            link_close(l, MERR_TLS, "TLS error: %s", buf);
        } else {
            link_close(l, MERR_IO, "connection error: %s",
                       evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
        }
    }
}

/* The period of the link's timer, or 0 when it needs none. */
static int64_t timer_period_us(const struct link *l)
{
    int64_t p = 0;
    const int64_t c[] = {l->lsn->conf.idle_timeout_us, l->lsn->conf.echo_interval_us,
                         l->state == LINK_HANDSHAKE ? HANDSHAKE_TIMEOUT_US : 0};
    for (size_t i = 0; i < UTIL_NELEM(c); i++)
        if (c[i] > 0 && (p == 0 || c[i] < p))
            p = c[i];
    p /= 4;
    if (p > 0 && p < 10000)
        p = 10000;
    return p;
}

static void arm_timer(struct link *l)
{
    int64_t p = timer_period_us(l);
    struct timeval tv = {(time_t)(p / 1000000), (suseconds_t)(p % 1000000)};

    if (p == 0) {
        if (l->timer_added)
            event_del(&l->timer);
        l->timer_added = false;
        return;
    }
    event_add(&l->timer, &tv);
    l->timer_added = true;
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct link *l = arg;
    const struct cg_listener_conf *c = &l->lsn->conf;
    int64_t now = util_now_us();

    (void)fd;
    (void)what;
    l->timer_added = false;
    if (l->state == LINK_CLOSED)
        return;
    if (l->state == LINK_HANDSHAKE && now - l->accepted_us >= HANDSHAKE_TIMEOUT_US) {
        link_close(l, MERR_TLS, "TLS handshake not finished in %lld s",
                   HANDSHAKE_TIMEOUT_US / 1000000);
        return;
    }
    if (c->idle_timeout_us > 0 && now - l->last_rx_us >= c->idle_timeout_us &&
        l->state != LINK_DRAINING) {
        link_close(l, MERR_IDLE, "idle for %lld ms", (long long)((now - l->last_rx_us) / 1000));
        return;
    }
    if (c->echo_interval_us > 0 && l->state != LINK_HANDSHAKE && l->state != LINK_DRAINING &&
        now - l->last_rx_us >= c->echo_interval_us &&
        now - l->last_echo_us >= c->echo_interval_us) {
        if (l->echo_unanswered >= ECHO_MAX_UNANSWERED) {
            link_close(l, MERR_ECHO, "%u echo requests unanswered", l->echo_unanswered);
            return;
        }
        l->echo_unanswered++;
        l->last_echo_us = now;
        if (netmgmt_send_echo(l) != 0)
            return;
    }
    arm_timer(l);
}

static void format_peer(const struct sockaddr *sa, char *buf, size_t len)
{
    char host[INET6_ADDRSTRLEN];

    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
        snprintf(buf, len, "%s:%u", host, (unsigned)ntohs(s4->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
        snprintf(buf, len, "[%s]:%u", host, (unsigned)ntohs(s6->sin6_port));
    } else {
        snprintf(buf, len, "unix");
    }
}

struct link *link_accept(struct server *srv, struct listener *lsn, int fd,
                         const struct sockaddr *sa, socklen_t salen)
{
    struct link *l;

    (void)salen;
    l = calloc(1, sizeof(*l));
    if (l == NULL) {
        log_warnx("listener %s: out of memory accepting a link", lsn->conf.name);
        close(fd);
        return NULL;
    }
    l->srv = srv;
    l->lsn = lsn;
    l->id = ++lsn->next_link_id;
    format_peer(sa, l->peer, sizeof(l->peer));
    snprintf(l->prefix, sizeof(l->prefix), "link %s#%llu %s", lsn->conf.name,
             (unsigned long long)l->id, l->peer);
    l->accepted_us = l->last_rx_us = util_now_us();
    l->last_echo_us = l->accepted_us;
    evutil_make_socket_nonblocking(fd);
    if (sa->sa_family == AF_INET || sa->sa_family == AF_INET6) {
        /* answers are small and must not wait for Nagle + delayed ACK (40 ms) */
        int one = 1;
        if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0)
            log_warn_p(l->prefix, "TCP_NODELAY");
    }
    if (lsn->ssl != NULL) {
        SSL *ssl = SSL_new(lsn->ssl);
        if (ssl != NULL)
            l->bev = bufferevent_openssl_socket_new(srv->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                                    BEV_OPT_CLOSE_ON_FREE);
        if (l->bev == NULL && ssl != NULL)
            SSL_free(ssl);
        l->state = LINK_HANDSHAKE;
    } else {
        l->bev = bufferevent_socket_new(srv->base, fd, BEV_OPT_CLOSE_ON_FREE);
        l->state = LINK_CONNECTED;
    }
    if (l->bev == NULL) {
        log_warnx_p(l->prefix, "cannot set up the connection");
        close(fd);
        free(l);
        return NULL;
    }
    lsn->refs++;
    l->refs = 1;
    event_assign(&l->timer, srv->base, -1, 0, on_timer, l);
    event_assign(&l->resume, srv->base, -1, 0, on_resume, l);
    bufferevent_setcb(l->bev, on_read, on_write, on_event, l);
    bufferevent_enable(l->bev, EV_READ | EV_WRITE);
    TAILQ_INSERT_TAIL(&srv->links, l, entry);
    cg_metrics.links_open++;
    cg_metrics.links_accepted++;
    log_info_p(l->prefix, "accepted%s", lsn->ssl != NULL ? " (TLS handshake)" : "");
    server_event(srv, l->prefix, "accepted", "%s", lsn->ssl != NULL ? "tls" : "plain");
    arm_timer(l);
    return l;
}
