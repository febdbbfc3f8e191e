/*
 * load.h - `cardgate-sim load`: a libevent load generator that talks to a
 * cardgated like a bank switch.
 *
 * Open loop (rate > 0): request k of connection c (of C) is scheduled at
 * start + (k*C + c) / rate, and its latency is measured from that scheduled
 * time, not from when it was actually written: if the server stalls and the
 * in-flight cap per connection is reached, requests wait in the schedule
 * and the wait counts (no coordinated omission).  Closed loop (rate 0):
 * K requests in flight per connection, latency from the actual send.
 *
 * Per request cost: a preallocated slot per in-flight request (its STAN
 * encodes the slot index), one encode into the connection's write buffer,
 * one decode of the answer into a shared iso_msg; no malloc per request.
 */
#ifndef CARDGATE_SIM_LOAD_H
#define CARDGATE_SIM_LOAD_H

#include "tools/sim/cards.h"
#include "tools/sim/hist.h"
#include "tools/sim/msg.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct load_opts {
    const char *addr;            /* HOST:PORT */
    const struct sim_link *link; /* dialect and framing */
    const struct sim_cards *cards;
    int conns;    /* C connections */
    double rate;  /* requests/s over all connections; 0 = closed loop */
    int inflight; /* per connection: K (closed loop) or the cap (open loop) */
    double duration_s;
    int64_t timeout_us;        /* an answer later than this is a timeout */
    unsigned mix[SIM_K_COUNT]; /* weights of purchase, balance, refund, advice, reversal */
    int64_t amount;            /* minor units per purchase/refund */
    const uint8_t *zpk;        /* --zpk: TDES key for the "pin" kind's blocks; NULL: none */
    size_t zpk_len;
    uint64_t seed;
};

/* Two-character response codes, counted by index (36 x 36 alphanumerics). */
#define LOAD_NCODES (36 * 36)

struct load_result {
    double offered_rate; /* 0 in closed loop */
    double duration_s;   /* the sending window */
    double elapsed_s;    /* start to the last answer or timeout */
    uint64_t sent;
    uint64_t answered; /* matched answers with field 39 */
    uint64_t errors;   /* mismatches + timeouts + bad frames + lost + unsent */
    uint64_t timeouts;
    uint64_t mismatches; /* unknown STAN/RRN, wrong MTI, no field 39 */
    uint64_t bad_frames; /* undecodable answers */
    uint64_t bad_macs;   /* answers whose MAC is missing or wrong (--mac) */
    uint64_t lost;       /* in flight on a connection that closed */
    uint64_t unsent;     /* scheduled in the window but never sent */
    uint64_t late;       /* answers after their timeout (not counted again) */
    uint64_t reconnects; /* connections reopened after the server closed them */
    uint64_t by_kind[SIM_K_COUNT];
    uint64_t by_code[LOAD_NCODES];
    double throughput; /* answered / elapsed_s */
    struct hist hist;  /* microseconds */
};

/* Defaults: 1 connection, closed loop, 8 in flight, 10 s, 5 s timeout, the mix. */
void load_opts_default(struct load_opts *o);
/*
 * Parse "purchase=85,reversal=5,balance=5,refund=2,advice=3" (and "pin=N":
 * a purchase with the card's "pin", else 1234, as field 52 under o->zpk) into o->mix;
 * -1 with err on an unknown kind or a bad weight, or all weights zero.
 */
int load_parse_mix(struct load_opts *o, const char *spec, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/*
 * Run one load test.  r is filled (it embeds the histogram: ~150 KB, do not
 * put it on a small stack).  Returns 0 when the run happened (errors are in
 * r), -1 with err when it could not start (connect or sign-on failed).
 */
int load_run(const struct load_opts *o, struct load_result *r, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* Response code counted at index i ("00"), into out[3]. */
void load_code_name(unsigned i, char out[3]);
/* The human table. */
void load_print_table(FILE *fp, const struct load_opts *o, const struct load_result *r);
/*
 * One JSON object: offered_rate, duration_s, sent, answered, errors,
 * timeouts, throughput, by_code, latency_us {p50 p90 p99 p999 max}.
 */
void load_print_json(FILE *fp, const struct load_result *r);

#endif
