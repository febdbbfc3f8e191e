/*
 * responder.h - a small ISO 8583 responder for tests, standing in for
 * cardgated: a thread with a poll() loop on 127.0.0.1 that answers
 * 0800 -> 0810 and 0100/0200/0220/0400 -> x10 with 39 from a callback
 * (default "00"), 38 on approvals, 54 on balance inquiries (processing
 * code 31xxxx).  Faults on demand: a fixed delay per answer, one stall,
 * dropped requests, answers with a wrong STAN or a wrong MTI, a closed link.
 */
#ifndef CARDGATE_TESTS_RESPONDER_H
#define CARDGATE_TESTS_RESPONDER_H

#include "tools/sim/msg.h"

#include <stdatomic.h>
#include <stdint.h>

struct responder_opts {
    const struct sim_link *link;
    int64_t delay_us;  /* sleep before every answer */
    unsigned stall_at; /* before answering request number stall_at (1-based), sleep stall_us */
    int64_t stall_us;
    unsigned drop_every;     /* never answer every Nth financial request (0: never) */
    unsigned bad_stan_every; /* answer every Nth financial request with another STAN */
    unsigned bad_mti_every;  /* answer every Nth financial request with a wrong MTI */
    unsigned close_at;       /* close the connection instead of answering request number close_at */
    /* field 39 for a financial request; NULL: "00".  Must return a 2-char string. */
    const char *(*decide)(const struct iso_msg *req, void *arg);
    void *decide_arg;
};

struct responder_stats {
    atomic_uint requests; /* frames received */
    atomic_uint answered;
    atomic_uint dropped;
    atomic_uint bad_stan;
    atomic_uint bad_mti;
    atomic_uint undecodable;
};

struct responder;

/* Start listening on 127.0.0.1:<ephemeral>; addr gets "127.0.0.1:PORT". NULL on failure. */
struct responder *responder_start(const struct responder_opts *o, char addr[64]);
/* Stop the thread, close every socket, free. */
void responder_stop(struct responder *r);
/* Live counters. */
const struct responder_stats *responder_stats(const struct responder *r);

#endif
