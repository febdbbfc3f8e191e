/*
 * server.c - the process around the links (see server.h): listeners with
 * systemd socket activation, TLS contexts, allow-lists, signals as loop
 * events, reload, drain, notify, watchdog, reaping, metrics.
 */
#include "daemon/server.h"

#include "common/log.h"
#include "common/util.h"
#include "daemon/linkmac.h"
#include "daemon/metrics.h"

#include <event2/event.h>
#include <event2/listener.h>
#include <openssl/err.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define STATUS_INTERVAL_US (5 * 1000000LL)
#define READY_POLL_US      (50 * 1000LL) /* how often READY=1 looks at the database */
#define DRAIN_GRACE_US     (1 * 1000000LL)

static void tv_from_us(struct timeval *tv, int64_t us)
{
    tv->tv_sec = (time_t)(us / 1000000);
    tv->tv_usec = (suseconds_t)(us % 1000000);
}

/*
 * Tell systemd.  The socket is non-blocking so a stuck receiver never
 * stalls the loop; a lost datagram is logged once per run of failures.
 */
static void notify(struct server *s, const char *text)
{
    static bool failing;

    if (notify_send(&s->notify, text) != 0) {
        if (!failing)
            log_warn("notify: cannot send to NOTIFY_SOCKET");
        failing = true;
    } else {
        failing = false;
    }
}

/* READY=1 is (being) sent: stop waiting for the database. */
static void ready_done(struct server *s)
{
    s->ready_sent = true;
    if (event_initialized(&s->ready_ev))
        event_del(&s->ready_ev);
}

/* Is the database up (true when there is none to wait for)? */
static bool db_up(struct server *s)
{
    return s->hooks.db_up == NULL || s->hooks.db_up(s->hooks.arg);
}

/* STATUS=: links, frames/s since the last STATUS, database connections. */
static void send_status(struct server *s, const char *what)
{
    char buf[320];
    int64_t now = util_now_us(), dt = now - s->status_us;
    uint64_t frames = cg_metrics.frames_in - s->status_frames;
    unsigned long long rate = dt > 0 ? (unsigned long long)(frames * 1000000 / (uint64_t)dt) : 0;

    snprintf(buf, sizeof(buf), "STATUS=%s; links %llu, %llu frames/s, db %llu/%llu up%s", what,
             (unsigned long long)cg_metrics.links_open, rate,
             (unsigned long long)cg_metrics.db_connections_up,
             (unsigned long long)cg_metrics.db_connections_total,
             db_up(s) ? "" : "; database down: answering from stand-in");
    s->status_frames = cg_metrics.frames_in;
    s->status_us = now;
    notify(s, buf);
}

void server_event(struct server *s, const char *who, const char *event, const char *fmt, ...)
{
    char detail[256];
    va_list ap;

    if (s->hooks.event == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    s->hooks.event(s->hooks.arg, who, event, detail);
}

/* ---- listeners ---------------------------------------------------------- */

static void addr_text(const struct conf_addr *a, char *buf, size_t len)
{
    if (a->path[0] != '\0')
        snprintf(buf, len, "unix:%s", a->path);
    else if (strchr(a->host, ':') != NULL)
        snprintf(buf, len, "[%s]:%u", a->host, (unsigned)a->port);
    else
        snprintf(buf, len, "%s:%u", a->host, (unsigned)a->port);
}

static bool same_addr(const struct conf_addr *a, const struct conf_addr *b)
{
    return strcmp(a->host, b->host) == 0 && strcmp(a->path, b->path) == 0 && a->port == b->port;
}

/* Does the bound socket fd listen on address a? */
static bool fd_matches(int fd, const struct conf_addr *a)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);

    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return false;
    if (a->path[0] != '\0') {
        const struct sockaddr_un *un = (const struct sockaddr_un *)&ss;
        return ss.ss_family == AF_UNIX && strncmp(un->sun_path, a->path, sizeof(un->sun_path)) == 0;
    }
    if (ss.ss_family != AF_INET && ss.ss_family != AF_INET6)
        return false;
    struct addrinfo hints = {.ai_family = ss.ss_family,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL, *r;
    char port[8];
    bool match = false;
    snprintf(port, sizeof(port), "%u", (unsigned)a->port);
    if (getaddrinfo(a->host[0] != '\0' ? a->host : NULL, port, &hints, &res) != 0)
        return false;
    for (r = res; r != NULL && !match; r = r->ai_next)
        match = r->ai_addrlen == len && memcmp(r->ai_addr, &ss, len) == 0;
    freeaddrinfo(res);
    return match;
}

/* Take the systemd socket for a, if one was passed; -1 otherwise. */
static int take_sd_fd(struct server *s, const struct conf_addr *a)
{
    for (unsigned i = 0; i < s->nsd_fds; i++) {
        if (fd_matches(s->sd_fds[i], a)) {
            int fd = s->sd_fds[i];
            s->sd_fds[i] = s->sd_fds[--s->nsd_fds];
            return fd;
        }
    }
    return -1;
}

/* Collect LISTEN_FDS sockets meant for this process (sd_listen_fds). */
static void collect_sd_fds(struct server *s)
{
    const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
    char *end;
    long n;

    if (pid == NULL || fds == NULL)
        return;
    if (strtol(pid, &end, 10) != (long)getpid() || *end != '\0')
        return;
    n = strtol(fds, &end, 10);
    if (*end != '\0' || n <= 0)
        return;
    for (long i = 0; i < n && s->nsd_fds < SERVER_MAX_SD_FDS; i++) {
        int fd = 3 + (int)i;
        int fl = fcntl(fd, F_GETFD);
        if (fl < 0)
            continue;
        (void)fcntl(fd, F_SETFD, fl | FD_CLOEXEC);
        s->sd_fds[s->nsd_fds++] = fd;
    }
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    log_info("systemd passed %u listening socket%s", s->nsd_fds, s->nsd_fds == 1 ? "" : "s");
}

/* Bind and listen on a; returns the fd or -1 (logged). */
static int bind_addr(const struct conf_addr *a, const char *name)
{
    char text[400];
    int fd = -1, one = 1;

    addr_text(a, text, sizeof(text));
    if (a->path[0] != '\0') {
        struct sockaddr_un un = {.sun_family = AF_UNIX};
        struct stat st;
        snprintf(un.sun_path, sizeof(un.sun_path), "%s", a->path);
        if (lstat(a->path, &st) == 0 && S_ISSOCK(st.st_mode))
            (void)unlink(a->path); /* a stale socket from an earlier run */
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0 || bind(fd, (struct sockaddr *)&un, sizeof(un)) != 0 || listen(fd, 511) != 0)
            goto fail;
        return fd;
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    char port[8];
    int gai;
    snprintf(port, sizeof(port), "%u", (unsigned)a->port);
    gai = getaddrinfo(a->host[0] != '\0' ? a->host : NULL, port, &hints, &res);
    if (gai != 0) {
        log_warnx("listener %s: %s: %s", name, text, gai_strerror(gai));
        return -1;
    }
    fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 511) != 0) {
        freeaddrinfo(res);
        goto fail;
    }
    freeaddrinfo(res);
    return fd;
fail:
    log_warn("listener %s: cannot listen on %s", name, text);
    if (fd >= 0)
        close(fd);
    return -1;
}

static int tls_context(struct listener *lsn)
{
    const struct cg_listener_conf *c = &lsn->conf;
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    unsigned long e;
    char buf[256];

    if (ctx == NULL)
        goto fail;
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
        SSL_CTX_use_certificate_chain_file(ctx, c->tls_cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, c->tls_key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1)
        goto fail;
    /*
     * A switch that drops TCP without close_notify has closed the link, not
     * attacked it: frames are length-delimited, so a truncated stream is
     * only an incomplete frame.  Without this OpenSSL 3 reports "unexpected
     * eof" and the close is logged as a TLS error.
     */
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
    if (c->tls_verify != CG_TLS_VERIFY_NONE) {
        if (SSL_CTX_load_verify_locations(ctx, c->tls_ca, NULL) != 1)
            goto fail;
        SSL_CTX_set_verify(
            ctx,
            SSL_VERIFY_PEER |
                (c->tls_verify == CG_TLS_VERIFY_REQUIRE ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0),
            NULL);
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(c->tls_ca);
        if (names != NULL)
            SSL_CTX_set_client_CA_list(ctx, names);
    }
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    lsn->ssl = ctx;
    return 0;
fail:
    e = ERR_get_error();
    ERR_error_string_n(e, buf, sizeof(buf));
    ERR_clear_error();
    log_warnx("listener %s: TLS setup failed: %s", c->name, buf);
    SSL_CTX_free(ctx);
    return -1;
}

static void listener_free(struct listener *lsn)
{
    if (lsn->evl != NULL)
        evconnlistener_free(lsn->evl);
    iso_dialect_free(lsn->dialect);
    SSL_CTX_free(lsn->ssl);
    free(lsn);
}

void listener_unref(struct listener *lsn)
{
    if (--lsn->refs == 0)
        listener_free(lsn);
}

/* Everything for a listener except its socket; NULL (logged) on error. */
static struct listener *listener_new(struct server *s, const struct cg_listener_conf *c)
{
    struct listener *lsn = calloc(1, sizeof(*lsn));
    char err[512];

    if (lsn == NULL)
        return NULL;
    lsn->srv = s;
    lsn->conf = *c;
    lsn->refs = 1;
    if (c->dialect_file[0] != '\0')
        lsn->dialect = iso_dialect_load(c->dialect_file, err, sizeof(err));
    else
        lsn->dialect = iso_dialect_builtin(c->dialect, err, sizeof(err));
    if (lsn->dialect == NULL) {
        log_warnx("listener %s: %s", c->name, err);
        free(lsn);
        return NULL;
    }
    if (c->mac != CG_MAC_NONE && linkmac_dialect_check(lsn->dialect, err, sizeof(err)) != 0) {
        log_warnx("listener %s: %s", c->name, err);
        listener_free(lsn);
        return NULL;
    }
    static const uint8_t kinds[] = {[CG_FRAMING_LEN2] = ISO_FR_LEN2,
                                    [CG_FRAMING_LEN4ASCII] = ISO_FR_LEN4ASCII,
                                    [CG_FRAMING_LEN2BCD] = ISO_FR_LEN2BCD};
    lsn->framing.kind = kinds[c->framing];
    lsn->framing.hdr_len = (uint8_t)c->header_len;
    lsn->framing.tpdu_swap = c->header_swap_tpdu;
    lsn->framing.max_len = (uint32_t)c->max_frame;
    if (c->tls && tls_context(lsn) != 0) {
        listener_free(lsn);
        return NULL;
    }
    return lsn;
}

/* Is the peer on the listener's allow-list? Unix sockets: always. */
static bool peer_allowed(const struct listener *lsn, const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return cg_allow_match(&lsn->conf, AF_INET,
                              (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr);
    if (sa->sa_family == AF_INET6) {
        const uint8_t *a = (const uint8_t *)&((const struct sockaddr_in6 *)sa)->sin6_addr;
        static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (memcmp(a, v4mapped, 12) == 0 && cg_allow_match(&lsn->conf, AF_INET, a + 12))
            return true;
        return cg_allow_match(&lsn->conf, AF_INET6, a);
    }
    return true;
}

static void on_accept(struct evconnlistener *evl, evutil_socket_t fd, struct sockaddr *sa,
                      int salen, void *arg)
{
    struct listener *lsn = arg;
    struct server *s = lsn->srv;

    (void)evl;
    if (s->draining) {
        close(fd);
        return;
    }
    if (!peer_allowed(lsn, sa)) {
        char peer[INET6_ADDRSTRLEN] = "?";
        if (sa->sa_family == AF_INET)
            inet_ntop(AF_INET, &((struct sockaddr_in *)sa)->sin_addr, peer, sizeof(peer));
        else if (sa->sa_family == AF_INET6)
            inet_ntop(AF_INET6, &((struct sockaddr_in6 *)sa)->sin6_addr, peer, sizeof(peer));
        cg_metrics.errors[MERR_REFUSED]++;
        log_warnx("listener %s: refused connection from %s: not on the allow-list", lsn->conf.name,
                  peer);
        close(fd);
        return;
    }
    (void)link_accept(s, lsn, fd, sa, (socklen_t)salen);
}

static void on_accept_error(struct evconnlistener *evl, void *arg)
{
    struct listener *lsn = arg;
    (void)evl;
    /* EMFILE and the like: the listener stays, the next accept may work */
    log_warn("listener %s: accept", lsn->conf.name);
}

/* Wrap fd into lsn's evconnlistener; -1 (fd closed) on error. */
static int listener_attach(struct listener *lsn, int fd)
{
    evutil_make_socket_nonblocking(fd); /* systemd's sockets may be blocking */
    lsn->evl = evconnlistener_new(lsn->srv->base, on_accept, lsn,
                                  LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1, fd);
    if (lsn->evl == NULL) {
        log_warnx("listener %s: cannot watch its socket", lsn->conf.name);
        close(fd);
        return -1;
    }
    evconnlistener_set_error_cb(lsn->evl, on_accept_error);
    return 0;
}

/* A socket for c: from systemd when passed, bound otherwise. */
static int open_socket(struct server *s, const struct cg_listener_conf *c, bool *from_sd)
{
    int fd = take_sd_fd(s, &c->address);
    *from_sd = fd >= 0;
    return fd >= 0 ? fd : bind_addr(&c->address, c->name);
}

static void log_listening(const struct listener *lsn, bool from_sd)
{
    char text[400];
    addr_text(&lsn->conf.address, text, sizeof(text));
    log_info("listener %s: listening on %s (%s, %s%s)%s", lsn->conf.name, text, lsn->dialect->name,
             lsn->conf.framing == CG_FRAMING_LEN2        ? "len2"
             : lsn->conf.framing == CG_FRAMING_LEN4ASCII ? "len4ascii"
                                                         : "len2bcd",
             lsn->ssl != NULL ? ", TLS" : "", from_sd ? " from systemd" : "");
}

/* ---- health, timers, signals ----------------------------------------------- */

static bool health(void *arg)
{
    const struct server *s = arg;
    if (s->draining || !s->started)
        return false;
    for (unsigned i = 0; i < s->nlisteners; i++)
        if (s->listeners[i]->evl == NULL)
            return false;
    return true;
}

static void on_watchdog(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    notify(arg, "WATCHDOG=1");
}

/*
 * READY=1 once the listeners (server_start) and the database are up, or
 * when [daemon] ready_wait has passed without the database (STATUS says it
 * is down; requests are answered from stand-in meanwhile).  Once only: a
 * reload's READY=1 counts too.
 */
static void on_ready_check(evutil_socket_t fd, short what, void *arg)
{
    struct server *s = arg;
    bool up = db_up(s);
    (void)fd;
    (void)what;
    if (s->ready_sent || (!up && util_now_us() < s->ready_deadline_us))
        return;
    ready_done(s);
    if (!up)
        log_warnx("ready without the database (ready_wait passed): answering from stand-in");
    notify(s, "READY=1");
    send_status(s, s->draining ? "draining" : "serving");
}

static void on_status(evutil_socket_t fd, short what, void *arg)
{
    struct server *s = arg;
    (void)fd;
    (void)what;
    send_status(s, s->draining ? "draining" : "serving");
}

static void on_reap(evutil_socket_t fd, short what, void *arg)
{
    struct server *s = arg;
    struct link *l;

    (void)fd;
    (void)what;
    while ((l = TAILQ_FIRST(&s->reap)) != NULL) {
        TAILQ_REMOVE(&s->reap, l, entry);
        link_free(l);
    }
}

void server_reap(struct server *s, struct link *l)
{
    l->on_reap = true;
    TAILQ_INSERT_TAIL(&s->reap, l, entry);
    event_active(&s->reap_ev, EV_TIMEOUT, 0);
}

void server_link_closed(struct server *s, struct link *l)
{
    TAILQ_REMOVE(&s->links, l, entry);
    if (s->draining && TAILQ_EMPTY(&s->links)) {
        log_info("drain: every link closed, exiting");
        event_base_loopexit(s->base, NULL);
    }
}

static void on_drain_deadline(evutil_socket_t fd, short what, void *arg)
{
    struct server *s = arg;
    struct link *l;

    (void)fd;
    (void)what;
    while ((l = TAILQ_FIRST(&s->links)) != NULL)
        link_close(l, -1, "drain deadline passed with %u requests in flight", l->outstanding);
    event_base_loopexit(s->base, NULL);
}

void server_drain(struct server *s)
{
    struct link *l, *next;
    int64_t wait = 0;
    struct timeval tv;

    if (s->draining)
        return;
    s->draining = true;
    notify(s, "STOPPING=1");
    server_event(s, "server", "draining", "%s", "");
    log_info("draining: no new links, answering what is in flight");
    for (unsigned i = 0; i < s->nlisteners; i++) {
        struct listener *lsn = s->listeners[i];
        if (lsn->evl != NULL) {
            evconnlistener_free(lsn->evl);
            lsn->evl = NULL;
        }
        if (cg_listener_budget_max(&lsn->conf) > wait)
            wait = cg_listener_budget_max(&lsn->conf);
    }
    if (s->hooks.drain != NULL)
        s->hooks.drain(s->hooks.arg, s);
    if (TAILQ_EMPTY(&s->links)) {
        event_base_loopexit(s->base, NULL);
        return;
    }
    for (l = TAILQ_FIRST(&s->links); l != NULL; l = next) {
        next = TAILQ_NEXT(l, entry);
        link_drain(l); /* may close l and take it off the list */
    }
    /* every request has a deadline no later than arrival + the largest budget */
    tv_from_us(&tv, wait + DRAIN_GRACE_US);
    evtimer_assign(&s->drain_ev, s->base, on_drain_deadline, s);
    evtimer_add(&s->drain_ev, &tv);
}

/* ---- reload --------------------------------------------------------------- */

static struct listener *find_old(struct server *s, const char *name)
{
    for (unsigned i = 0; i < s->nlisteners; i++)
        if (strcmp(s->listeners[i]->conf.name, name) == 0)
            return s->listeners[i];
    return NULL;
}

static struct listener *find_old_by_addr(struct server *s, const struct conf_addr *a)
{
    for (unsigned i = 0; i < s->nlisteners; i++)
        if (s->listeners[i]->evl != NULL && same_addr(&s->listeners[i]->conf.address, a))
            return s->listeners[i];
    return NULL;
}

/*
 * Apply a validated configuration: new listener objects for every
 * configured listener; a socket whose address is unchanged moves to the
 * new object (open links keep the old object, and with it the settings
 * they were accepted with, until they close).  All or nothing: any failure
 * before the swap leaves the old listeners serving.
 */
static int apply(struct server *s, struct cg_config *nc)
{
    struct listener *nl[CG_MAX_LISTENERS] = {0};
    int fds[CG_MAX_LISTENERS];
    bool from_sd[CG_MAX_LISTENERS] = {0};
    unsigned i;

    for (i = 0; i < nc->nlisteners; i++)
        fds[i] = -1;
    for (i = 0; i < nc->nlisteners; i++) {
        nl[i] = listener_new(s, &nc->listeners[i]);
        if (nl[i] == NULL)
            goto fail;
        if (find_old_by_addr(s, &nc->listeners[i].address) == NULL) {
            fds[i] = open_socket(s, &nc->listeners[i], &from_sd[i]);
            if (fds[i] < 0)
                goto fail;
        }
    }
    /* commit: nothing below fails in a way that needs the old state back */
    for (i = 0; i < nc->nlisteners; i++) {
        struct listener *old = find_old_by_addr(s, &nc->listeners[i].address);
        if (old != NULL) {
            nl[i]->evl = old->evl;
            old->evl = NULL;
            evconnlistener_set_cb(nl[i]->evl, on_accept, nl[i]);
            evconnlistener_set_error_cb(nl[i]->evl, on_accept_error);
            if (find_old(s, nc->listeners[i].name) != old || s->started)
                log_info("listener %s: kept its socket, new settings for new links",
                         nl[i]->conf.name);
        } else if (listener_attach(nl[i], fds[i]) == 0) {
            log_listening(nl[i], from_sd[i]);
        }
    }
    for (i = 0; i < s->nlisteners; i++) {
        struct listener *old = s->listeners[i];
        if (old->evl != NULL) {
            char text[400];
            addr_text(&old->conf.address, text, sizeof(text));
            log_info("listener %s: no longer configured, closed %s (open links stay)",
                     old->conf.name, text);
            evconnlistener_free(old->evl);
            old->evl = NULL;
        }
        listener_unref(old);
    }
    for (i = 0; i < nc->nlisteners; i++)
        s->listeners[i] = nl[i];
    s->nlisteners = nc->nlisteners;
    return 0;
fail:
    for (i = 0; i < nc->nlisteners; i++) {
        if (fds[i] >= 0) {
            if (from_sd[i] && s->nsd_fds < SERVER_MAX_SD_FDS)
                s->sd_fds[s->nsd_fds++] = fds[i];
            else
                close(fds[i]);
        }
        if (nl[i] != NULL)
            listener_unref(nl[i]);
    }
    return -1;
}

static void start_metrics(struct server *s, const struct cg_config *old)
{
    const struct cg_config *c = s->cfg;

    if (old != NULL && old->metrics_enabled == c->metrics_enabled &&
        (!c->metrics_enabled || same_addr(&old->metrics_address, &c->metrics_address)))
        return;
    metrics_stop(s->metrics);
    s->metrics = NULL;
    if (c->metrics_enabled) {
        s->metrics = metrics_start(s->base, &c->metrics_address, health, s);
        if (s->metrics == NULL)
            log_warnx("metrics: not served (see above); carrying on without them");
    }
}

int server_reload(struct server *s)
{
    struct cg_config *nc = malloc(sizeof(*nc)), *old;
    struct conf_err err;
    char buf[128], why[sizeof(((struct conf_err *)0)->msg)] = "see the log";

    snprintf(buf, sizeof(buf), "RELOADING=1\nMONOTONIC_USEC=%lld", (long long)util_now_us());
    notify(s, buf);
    log_info("reload: reading %s", s->cfg->path);
    if (nc == NULL) {
        log_warnx("reload refused: out of memory; the old configuration keeps serving");
        goto refused;
    }
    if (cg_config_load(s->cfg->path, nc, &err) != 0) {
        log_warnx("reload refused: %s; the old configuration keeps serving", err.msg);
        snprintf(why, sizeof(why), "%s", err.msg);
        goto refused;
    }
    if (s->hooks.reload_check != NULL && s->hooks.reload_check(s->hooks.arg, nc) != 0) {
        log_warnx("reload refused (see above); the old configuration keeps serving");
        snprintf(why, sizeof(why), "a key or key name the key store refuses (see the log)");
        goto refused;
    }
    if (apply(s, nc) != 0) {
        log_warnx("reload refused: listeners could not be set up (see above); the old "
                  "configuration keeps serving");
        snprintf(why, sizeof(why), "listeners could not be set up (see the log)");
        goto refused;
    }
    old = s->cfg;
    s->cfg = nc;
    if (s->log_level_override >= 0)
        nc->log_level = s->log_level_override;
    log_set_level((enum log_level)nc->log_level);
    start_metrics(s, old);
    free(old);
    cg_metrics.reloads_ok++;
    server_event(s, "server", "reloaded", "%u listeners", s->nlisteners);
    log_info("reload: done, %u listener%s", s->nlisteners, s->nlisteners == 1 ? "" : "s");
    ready_done(s);
    notify(s, "READY=1");
    send_status(s, "serving (reloaded)");
    return 0;
refused:
    free(nc);
    cg_metrics.reloads_failed++;
    server_event(s, "server", "reload-refused", "%s", why);
    ready_done(s);
    notify(s, "READY=1");
    send_status(s, "serving (reload refused, see the log)");
    return -1;
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct server *s = arg;

    (void)what;
    if (sig == SIGHUP) {
        if (s->draining)
            return;
        if (server_reload(s) != 0)
            log_debug("reload: refused, old configuration kept");
    } else {
        log_info("%s: draining", sig == SIGTERM ? "SIGTERM" : "SIGINT");
        server_drain(s);
    }
}

/* ---- lifecycle ------------------------------------------------------------- */

struct server *server_new(struct event_base *base, struct cg_config *cfg)
{
    struct server *s = calloc(1, sizeof(*s));

    if (s == NULL)
        return NULL;
    s->base = base;
    s->cfg = cfg;
    s->notify.fd = -1;
    s->log_level_override = -1;
    s->status_us = util_now_us();
    TAILQ_INIT(&s->links);
    TAILQ_INIT(&s->reap);
    event_assign(&s->reap_ev, base, -1, 0, on_reap, s);
    return s;
}

void server_set_hooks(struct server *s, const struct server_hooks *h)
{
    s->hooks = *h;
}

const struct cg_config *server_config(const struct server *s)
{
    return s->cfg;
}

int server_start(struct server *s)
{
    struct timeval tv;

    signal(SIGPIPE, SIG_IGN);
    if (notify_open(&s->notify) != 0)
        log_warnx("notify: disabled");
    collect_sd_fds(s);
    if (apply(s, s->cfg) != 0)
        return -1;
    for (unsigned i = 0; i < s->nsd_fds; i++)
        log_warnx("systemd socket fd %d matches no listener; kept for a reload", s->sd_fds[i]);
    start_metrics(s, NULL);
    evsignal_assign(&s->sig_hup, s->base, SIGHUP, on_signal, s);
    evsignal_assign(&s->sig_term, s->base, SIGTERM, on_signal, s);
    evsignal_assign(&s->sig_int, s->base, SIGINT, on_signal, s);
    if (evsignal_add(&s->sig_hup, NULL) != 0 || evsignal_add(&s->sig_term, NULL) != 0 ||
        evsignal_add(&s->sig_int, NULL) != 0) {
        log_warnx("cannot watch signals");
        return -1;
    }
    s->watchdog_us = notify_watchdog_usec();
    if (s->watchdog_us > 0) {
        event_assign(&s->watchdog_ev, s->base, -1, EV_PERSIST, on_watchdog, s);
        tv_from_us(&tv, (int64_t)(s->watchdog_us / 2));
        event_add(&s->watchdog_ev, &tv);
        log_info("watchdog: WATCHDOG=1 every %llu ms", (unsigned long long)(s->watchdog_us / 2000));
    }
    event_assign(&s->status_ev, s->base, -1, EV_PERSIST, on_status, s);
    tv_from_us(&tv, STATUS_INTERVAL_US);
    event_add(&s->status_ev, &tv);
    s->started = true;
    log_info("ready: %u listener%s", s->nlisteners, s->nlisteners == 1 ? "" : "s");
    s->ready_deadline_us = util_now_us() + s->cfg->ready_wait_us;
    event_assign(&s->ready_ev, s->base, -1, EV_PERSIST, on_ready_check, s);
    on_ready_check(-1, 0, s);
    if (!s->ready_sent) {
        tv_from_us(&tv, READY_POLL_US);
        event_add(&s->ready_ev, &tv);
        send_status(s, "starting: waiting for the database");
    }
    return 0;
}

void server_free(struct server *s)
{
    struct link *l;

    if (s == NULL)
        return;
    while ((l = TAILQ_FIRST(&s->links)) != NULL)
        link_close(l, -1, "shutting down");
    /* requests still held by a pipeline keep their links; nothing else runs now */
    on_reap(-1, 0, s);
    for (unsigned i = 0; i < s->nlisteners; i++)
        listener_unref(s->listeners[i]);
    for (unsigned i = 0; i < s->nsd_fds; i++)
        close(s->sd_fds[i]);
    metrics_stop(s->metrics);
    if (event_initialized(&s->sig_hup)) {
        event_del(&s->sig_hup);
        event_del(&s->sig_term);
        event_del(&s->sig_int);
    }
    if (event_initialized(&s->watchdog_ev))
        event_del(&s->watchdog_ev);
    if (event_initialized(&s->status_ev))
        event_del(&s->status_ev);
    if (event_initialized(&s->drain_ev))
        event_del(&s->drain_ev);
    if (event_initialized(&s->ready_ev))
        event_del(&s->ready_ev);
    event_del(&s->reap_ev);
    notify_close(&s->notify);
    free(s->cfg);
    free(s);
}
