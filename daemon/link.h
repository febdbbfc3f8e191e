/*
 * link.h - one connection from a bank switch.
 *
 * A link owns a bufferevent (plain socket or TLS), splits incoming bytes
 * into frames with its listener's framing (iso8583/ iso_frame_parse),
 * decodes each frame, answers network management (0800) itself and hands
 * every other request to the pipeline's dispatch hook.  The pipeline
 * answers later, in any order, with link_send_answer(); each answer is
 * written as soon as it is given.
 *
 * States (one transition function asserts and logs old -> new):
 *
 *   HANDSHAKE -> CONNECTED -> SIGNED_ON <-> SIGNED_OFF
 *        \           \            \             \
 *         +-----------+------------+-------------+-> DRAINING -> CLOSED
 *   (any state may go straight to CLOSED on an error)
 *
 * Lifetime: a link is reference counted.  It holds one reference while open
 * and one per request handed to the pipeline; the memory goes only when
 * both are gone, and then only from the server's reap event, never inside
 * one of the link's own callbacks.  So the pipeline may call
 * link_send_answer() or link_request_cancel() on a link that closed in the
 * meantime: the answer is dropped (logged at debug) and the reference
 * released.
 *
 * Backpressure: with max_outstanding requests in flight the link stops
 * reading (the kernel's buffer then pushes back on the switch) and resumes
 * as answers go out.  A peer that does not read its answers is closed with
 * a logged reason once the write buffer passes write_buffer_max.
 */
#ifndef CARDGATE_DAEMON_LINK_H
#define CARDGATE_DAEMON_LINK_H

#include "daemon/metrics.h"

#include <event2/event_struct.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/socket.h>

struct server;
struct listener;
struct bufferevent;
struct iso_msg;
struct iso_dialect;
struct link;

enum link_state {
    LINK_HANDSHAKE = 0, /* TLS handshake in progress */
    LINK_CONNECTED,     /* open, not signed on yet */
    LINK_SIGNED_ON,
    LINK_SIGNED_OFF,
    LINK_DRAINING, /* no more reading; closes once in-flight requests are answered */
    LINK_CLOSED,
};

/* One complete request frame, as the dispatch hook sees it. */
struct link_frame {
    const uint8_t *hdr; /* the fixed header (TPDU), hdr_len bytes; NULL when none */
    size_t hdr_len;
    const uint8_t *msg; /* the ISO message without framing */
    size_t len;
    const struct iso_msg *iso; /* msg decoded with the listener's dialect */
    const struct iso_dialect *dialect;
    int64_t arrival_us;  /* util_now_us() when the frame was read */
    int64_t deadline_us; /* arrival + the listener's budget */
};

/*
 * The pipeline's hook.  Everything in *f is valid only during the call:
 * copy what the request needs.  Return 0 when the request was taken: the
 * pipeline then calls link_send_answer() or link_request_cancel() for it
 * exactly once, later or from inside the call.  Return -1 to refuse it (the
 * link then answers it from stand-in at once).
 */
typedef int (*link_dispatch_fn)(void *arg, struct link *l, const struct link_frame *f);

struct link {
    TAILQ_ENTRY(link) entry; /* server's open links, then its reap list */
    struct server *srv;
    struct listener *lsn; /* holds a reference: the listener's config outlives reloads */
    struct bufferevent *bev;
    enum link_state state;
    uint64_t id;
    char peer[64];    /* "10.1.2.3:41234" or "unix" */
    char prefix[200]; /* "link main#7 10.1.2.3:41234" for log lines */
    unsigned refs;
    uint32_t outstanding;     /* requests handed to the pipeline, not answered yet */
    bool read_paused;         /* by backpressure */
    bool close_after_flush;   /* close once the write buffer is empty */
    bool on_reap;             /* queued for freeing */
    int64_t accepted_us;      /* util_now_us() */
    int64_t last_rx_us;       /* last frame received */
    int64_t last_echo_us;     /* last own echo sent */
    unsigned echo_unanswered; /* own echoes sent since the last frame from the peer */
    uint32_t stan;            /* for our own 0800s */
    struct event timer;       /* idle / echo / handshake checks */
    struct event resume;      /* continue reading after backpressure, from the loop */
    bool timer_added;
    bool was_signed_on;    /* signed on when the drain began */
    char close_reason[64]; /* for close_after_flush */
};

/*
 * Take an accepted socket fd (ownership passes) on listener lsn.  Returns
 * the link or NULL (fd closed, reason logged).
 */
struct link *link_accept(struct server *srv, struct listener *lsn, int fd,
                         const struct sockaddr *sa, socklen_t salen);

/*
 * Answer one request taken by the dispatch hook: frame msg[0..len) with
 * the listener's framing (req_hdr is the request's fixed header, as given
 * in link_frame.hdr, or NULL) and queue it.  Releases the request's
 * reference.  Returns 0 when queued, -1 when the link is gone or closing
 * (answer dropped) or the write failed (the link is then closed).
 */
int link_send_answer(struct link *l, const uint8_t *req_hdr, const uint8_t *msg, size_t len);

/* Release a request taken by the dispatch hook without answering it. */
void link_request_cancel(struct link *l);

/* May a financial request be served on l (signed on, or sign-on not required)? */
bool link_may_transact(const struct link *l);

/* Is l open (not closed, not draining)? */
bool link_is_open(const struct link *l);

/* Move l to state to; asserts the transition is legal and logs old -> new. */
void link_set_state(struct link *l, enum link_state to);

const char *link_state_name(enum link_state s);

/*
 * Close l now: log "closed: REASON" (warning when kind is an error kind,
 * info when kind is -1), count it, drop pending output, release the open
 * reference.  Safe from inside l's callbacks; idempotent.
 */
void link_close(struct link *l, int kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Stop reading, answer what is in flight, then close (server drain). */
void link_drain(struct link *l);

/*
 * Write one frame that is not an answer to a dispatched request (network
 * management answers, our own echo).  Returns 0 or -1 (link closed).
 */
int link_write_frame(struct link *l, const uint8_t *req_hdr, const uint8_t *msg, size_t len);

/* Free a link whose references are all gone; the server's reaper calls it. */
void link_free(struct link *l);

#endif
