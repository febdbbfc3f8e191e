/*
 * pipeline.h - the request pipeline of cardgated: a decoded financial
 * request from a link -> checks -> one authorize_batch row through the
 * database pool -> the answer on the link -> one audit record -> metrics.
 *
 *   struct pipeline *pl = pipeline_new(base, srv);   (pool, audit, PAN key)
 *   pipeline_hooks(pl, &hooks); server_set_hooks(srv, &hooks);
 *   ... event_base_dispatch(base) ...
 *   pipeline_free(pl);                               (before server_free)
 *
 * Requests live in cfg->max_requests preallocated slots (no malloc per
 * request); a request arriving with every slot busy is refused and the link
 * answers it from stand-in at once.  Each slot embeds the pool's dbp_item.
 *
 * Routing by MTI (processing code = field 3 digits 1-2):
 *   0100  00 purchase -> auth, 01 -> cash, 09 cashback -> auth, 20 -> refund,
 *         30/31 -> balance; an 0100 carrying field 90 -> incremental
 *   0200  00/01/09 -> financial, 20 -> refund, 30/31 -> balance
 *   0120/0121 -> standin (advice: the network approved for us, 39 given)
 *   0220/0221 -> completion
 *   0400/0401/0420/0421 -> reversal (field 90 original, field 95 partial)
 * Other processing codes are answered 12 without a database call.  A
 * missing required field (iso_required_missing) or a malformed one (PAN,
 * field 90, field 95) is answered 30 and the field named in the log.
 *
 * Channel (auth_request.channel) from field 22 positions 1-2: 01 manual,
 * 02/90 magstripe, 05 chip, 07 contactless, 80 fallback, 81/10 ecom,
 * 91 contactless (magstripe mode); field 25 = 59 forces ecom, 08 manual.
 *
 * The answer is MTI + 10 echoing 2 (as received), 3, 4, 7, 11, 12, 13, 32,
 * 37, 41, 42, 49 and 90 when present, with 38 (approval code, when the
 * ledger gave one) and 39.  Field 54 (additional amounts) is sent for
 * balance inquiries and approvals: 20-character entries
 *   account type "00" | amount type ("01" ledger balance, "02" available,
 *   "57" original amount of a partial approval) | currency numeric (3) |
 *   'C' or 'D' | 12 digits minor units
 * A partial approval (39=10) carries the approved amount in field 4.  The
 * answer to a request whose ARQC verified carries field 55 with tag 91
 * (ARPC, daemon/emvchk.h); on a listener with a MAC every answer is MAC'd
 * (daemon/linkmac.h).
 *
 * Deadlines.  deadline = arrival + the listener's budget; it goes into
 * authorize_batch (a request whose deadline passed is never approved
 * there).  Requests waiting for the database sit on two time-ordered lists
 * sharing ONE timer (no event per request).  A request still queued in the
 * pool (not sent) when a quarter of its budget is left is taken back and
 * answered from stand-in then: sent that late it would mostly be refused by
 * the database anyway, and under overload it would take the place of one
 * that can still make it.  At the deadline a request already sent
 * is answered from [standin] (default 91) and cancelled in the pool; a late
 * approval for it is released at once with release_late_answered()
 * (sql/0005: release_late() plus the stored answer set to the stand-in code,
 * so a retransmission gets what the switch was told) and recorded in the
 * audit log.  A batch whose outcome is unknown (connection
 * lost after sending) is asked again (idempotent) to learn whether it
 * approved, and released the same way.  With no usable connection a request
 * is answered from stand-in at once.  Every request is answered exactly once.
 * With [standin] mode = approve a plain purchase within the card's stand-in
 * limit is approved instead (journaled first, settled later; see
 * daemon/standin.h and daemon/README.md), and a late database approval of
 * such a request is kept as its hold rather than released.
 *
 * Order per loop iteration: answers are recorded in the audit batch, the
 * batch is flushed (fdatasync per [audit] fsync), then the answers are
 * written to their links.
 */
#ifndef CARDGATE_DAEMON_PIPELINE_H
#define CARDGATE_DAEMON_PIPELINE_H

#include "daemon/config.h"
#include "daemon/server.h"

#include <stdint.h>

struct event_base;
struct pipeline;

/* Counters (also exported through cg_metrics where a name exists). */
struct pipeline_stats {
    uint64_t requests;              /* taken from links */
    uint64_t answered;              /* answers given (db, stand-in, format) */
    uint64_t standin;               /* answered from stand-in (deadline, no db, db error) */
    uint64_t deadline;              /* of which at the deadline */
    uint64_t format_errors;         /* answered 30/12 without the database */
    uint64_t late_approvals;        /* approvals that arrived after a stand-in answer */
    uint64_t late_released;         /* of which released by release_late() */
    uint64_t rechecks;              /* requests asked again after an unknown outcome */
    uint64_t audit_unproven;        /* approvals answered from stand-in: audit flush failed */
    uint64_t slots_exhausted;       /* refused: no free slot */
    uint64_t standin_approved;      /* approved in stand-in ([standin] mode = approve) */
    uint64_t standin_voided;        /* of which declined after all: journal or audit failed */
    uint64_t standin_settled;       /* journaled approvals settled through the database */
    uint64_t standin_settle_errors; /* settlement calls that failed (retried) */
    uint64_t standin_pending;       /* gauge: journaled, not settled yet */
    unsigned slots_busy;            /* gauge */
};

/*
 * Build the pipeline for srv's configuration (read again through
 * server_config() at every stand-in answer, so reloads apply): the PAN-hash key (key
 * store when [keys] file is set, else pan_key_file, else
 * $CARDGATE_PAN_KEY_FILE), the audit writer (when [audit] is present), the
 * database pool (starts connecting).  NULL with the reason logged.
 */
struct pipeline *pipeline_new(struct event_base *base, struct server *srv)
    __attribute__((warn_unused_result));

/* The hooks to give server_set_hooks(). */
void pipeline_hooks(struct pipeline *pl, struct server_hooks *out);

/* Close the pool (late outcomes are logged), close the audit log, free. */
void pipeline_free(struct pipeline *pl);

void pipeline_get_stats(const struct pipeline *pl, struct pipeline_stats *out);

/* Is the database usable (for /health)? */
bool pipeline_db_up(const struct pipeline *pl);

/*
 * Map a request to auth_request.kind.  mti: 4 digits; proc: field 3 (6
 * digits) or NULL; has90: field 90 present.  Returns the kind, or NULL when
 * the MTI/processing code is not served (answered 12).
 */
const char *pipeline_kind(const char *mti, const char *proc, int has90);

/* auth_request.channel from field 22 (may be NULL) and field 25 (may be NULL). */
const char *pipeline_channel(const char *f22, size_t len22, const char *f25, size_t len25);

/*
 * Format one field-54 entry (20 characters + NUL) into out[21]: account type
 * "00", amount type (2 digits), currency numeric (3), sign, 12 digits of
 * |amount|.  Returns 0, or -1 when the amount does not fit 12 digits or the
 * currency is not 3 digits.
 */
int pipeline_f54_entry(char out[21], const char *amount_type, const char *currency, int64_t amount)
    __attribute__((warn_unused_result));

#endif
