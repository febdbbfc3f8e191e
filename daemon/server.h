/*
 * server.h - cardgated's process: one event base, listeners, links,
 * signals, reload, drain, systemd notify and watchdog, metrics.
 *
 *   struct server *s = server_new(base, cfg);   (cfg: heap, owned from now)
 *   server_set_hooks(s, &hooks);                (the request pipeline)
 *   if (server_start(s) != 0) ...               (bind; READY=1 once db_up or ready_wait)
 *   event_base_dispatch(base);                  (returns after SIGTERM drain)
 *   server_free(s);
 *
 * Signals are loop events: SIGHUP reloads (a new config is built whole and
 * validated, listeners are added, removed or changed without dropping open
 * links; on any error the old config keeps serving), SIGTERM/SIGINT drain
 * (stop accepting, let in-flight requests finish up to their deadlines,
 * close links, leave the loop).
 */
#ifndef CARDGATE_DAEMON_SERVER_H
#define CARDGATE_DAEMON_SERVER_H

#include "daemon/config.h"
#include "daemon/link.h"
#include "daemon/notify.h"
#include "iso8583/iso8583.h"

#include <event2/event_struct.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

struct event_base;
struct evconnlistener;
struct metrics_http;
struct keyset;

/* A configured listening socket and what its links need. */
struct listener {
    struct server *srv;
    struct cg_listener_conf conf;
    struct iso_dialect *dialect;
    struct iso_framing framing;
    SSL_CTX *ssl; /* NULL without TLS */
    struct evconnlistener *evl;
    unsigned refs; /* the server's configuration + one per link */
    uint64_t next_link_id;
};

/*
 * Called once when a drain starts: the pipeline should answer every
 * in-flight request by its deadline (from stand-in when the database has
 * not decided).  Links close as their last request is answered.
 */
typedef void (*server_drain_fn)(void *arg, struct server *s);

/*
 * Lifecycle events for the audit log: who ("link main#3 10.0.0.5:41234",
 * "listener main", "server"), what ("accepted", "closed", "signed-on",
 * "signed-off", "cutover", "refused", "reloaded", "reload-refused",
 * "draining") and a detail (the reason; may be empty).  Never carries
 * message contents.
 */
typedef void (*server_event_fn)(void *arg, const char *who, const char *event, const char *detail);

struct server_hooks {
    link_dispatch_fn dispatch; /* NULL: every financial request is answered from stand-in */
    server_drain_fn drain;     /* may be NULL */
    server_event_fn event;     /* may be NULL */
    bool (*db_up)(void *arg);  /* NULL: no database to wait for before READY=1 */
    /* a reference to the working keys (keyset_unref it), NULL when none (link MACs) */
    struct keyset *(*keys)(void *arg);
    /*
     * 0800 key change (field 70 101/161) on l: the 0810 response code.
     * NULL: answered 12 (not supported).
     */
    const char *(*key_change)(void *arg, struct link *l, const struct link_frame *f);
    /*
     * A reload's new configuration, before anything is swapped: return -1
     * (reason logged) to refuse it, e.g. a key name the key store lacks.
     * NULL: no check.
     */
    int (*reload_check)(void *arg, const struct cg_config *nc);
    void *arg;
};

#define SERVER_MAX_SD_FDS 64

struct server {
    struct event_base *base;
    struct cg_config *cfg;
    struct listener *listeners[CG_MAX_LISTENERS];
    unsigned nlisteners;
    struct server_hooks hooks;
    TAILQ_HEAD(link_list, link) links;
    TAILQ_HEAD(link_reap_list, link) reap;
    struct event reap_ev;
    struct event sig_hup, sig_term, sig_int;
    struct event watchdog_ev, status_ev, drain_ev, ready_ev;
    bool started, draining;
    bool ready_sent;           /* READY=1 after start (see server_start) */
    int64_t ready_deadline_us; /* READY=1 anyway from then on, database or not */
    struct notify notify;
    uint64_t watchdog_us;
    struct metrics_http *metrics;
    int sd_fds[SERVER_MAX_SD_FDS]; /* systemd sockets not (yet) matched to a listener */
    unsigned nsd_fds;
    uint64_t status_frames; /* frames_in at the last STATUS= */
    int64_t status_us;      /* when the last STATUS= went out */
    int log_level_override; /* -1, or the level -d asked for, kept across reloads */
    struct iso_msg rx;      /* decode scratch for the link being read (single-threaded) */
};

/* A new server for cfg (heap, owned by the server from now on); NULL on OOM. */
struct server *server_new(struct event_base *base, struct cg_config *cfg);

void server_set_hooks(struct server *s, const struct server_hooks *h);

/*
 * Set up listeners (systemd sockets first, bound otherwise), metrics,
 * signals, the watchdog; send READY=1.  Returns 0, or -1 with the reason
 * logged.
 */
int server_start(struct server *s) __attribute__((warn_unused_result));

/* SIGHUP: reload the configuration file.  0 swapped in, -1 refused (logged). */
int server_reload(struct server *s) __attribute__((warn_unused_result));

/* SIGTERM: stop accepting, drain links, leave the loop when all are closed. */
void server_drain(struct server *s);

/* Free everything (after the loop returned). */
void server_free(struct server *s);

/* The configuration in force (changes on reload). */
const struct cg_config *server_config(const struct server *s);

/* Report a lifecycle event to the hooks (printf-style detail). */
void server_event(struct server *s, const char *who, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* For links: queue l for freeing from the loop. */
void server_reap(struct server *s, struct link *l);

/* For links: l left the open list (closing), check whether a drain is done. */
void server_link_closed(struct server *s, struct link *l);

/* Drop a link's reference to its listener, freeing a retired one. */
void listener_unref(struct listener *lsn);

#endif
