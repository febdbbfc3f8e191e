/*
 * standin.h - stand-in approvals up to a per-card limit ([standin] mode =
 * approve): the on-disk journal that makes them durable before the switch
 * hears of them, and the per-card limit cache that bounds them.
 *
 * Journal.  One file (one daemon: an flock on PATH.lock, refused with a
 * clear error when another process holds it).  Records are appended:
 *
 *   "CGSJ" | u32 length (LE) | payload | u32 CRC-32 of the payload (LE)
 *   payload: u8 type | u64 seq | type APPROVE: the request (see below)
 *
 * APPROVE holds what the settlement needs to rebuild the request as a
 * stand-in advice; DONE (settled, or void: the approval never went out)
 * retires a seq.  sj_append() writes (write(2)), sj_sync() makes every
 * record written since the last sync durable (fdatasync; the caller syncs
 * once per batch of answers, before writing them to the links).  A DONE
 * record need not be synced for a settlement: a lost one means the approval
 * is settled again, and the database answers that from its stored row.
 *
 * Replay at open: the records are read in order; what is APPROVEd and not
 * DONE is pending.  A torn last record (a crash mid-append: short, or a
 * bad CRC with no valid record after it) is cut off (ftruncate) and
 * logged; a bad record followed by valid ones is corruption and the open
 * fails (an operator must look: valid approvals follow it).
 *
 * Compaction (sj_compact): with nothing pending the file is truncated to
 * zero; otherwise the pending records are written to PATH.tmp, synced, and
 * renamed over PATH (the directory synced).
 *
 * Limit cache.  Per card (PAN hash, as the database stores it): the card's
 * stand-in limit (cards.standin_limit of active cards with a limit) and what
 * the daemon has approved in stand-in for it that is not settled yet (the
 * journal's pending records).  A card is approved in stand-in while
 * used + amount <= limit; settled (or void) approvals give their amount
 * back, since the database then holds them against the balance.  The cache
 * is rebuilt whole by the pipeline's refresh (pages of cards through the
 * pool) and swapped in at the end of a complete pass.
 */
#ifndef CARDGATE_DAEMON_STANDIN_H
#define CARDGATE_DAEMON_STANDIN_H

#include "crypto/pan.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One journaled stand-in approval: the request as the settlement rebuilds it. */
struct standin_rec {
    uint64_t seq;             /* the journal's; assigned by sj_append */
    int64_t amount;           /* counted against the limit: bill amount, else txn amount */
    int64_t txn_amount;       /* field 4; -1 absent */
    int64_t bill_amount;      /* field 6; -1 absent */
    int64_t deadline_wall_us; /* the request's deadline (wall clock): settled only after it */
    char mti[5], appr[7];
    char pan_hash[PAN_HASH_HEX];
    char acquirer[12], stan[7], rrn[13], xmit[11], local_at[11];
    char terminal[9], merchant[16], merchant_name[41], mcc[5], country[4];
    char txn_cur[4], bill_cur[4], channel[12];
};

struct standin_journal;

/*
 * Open (create) the journal at path, take its lock, replay it.  Returns 0,
 * or -1 with the reason in err (lock held by another process, unreadable,
 * corrupt).  max_pending bounds the pending records kept (more at replay is
 * an error: raise max_pending).
 */
int sj_open(const char *path, size_t max_pending, struct standin_journal **out, char *err,
            size_t errlen) __attribute__((warn_unused_result));

/* Close (no sync; sync first when it matters), release the lock, free. */
void sj_close(struct standin_journal *j);

/*
 * Append rec as an APPROVE record (rec->seq assigned) and keep it pending.
 * Returns 0; -1 when the pending list is full or the write failed (nothing
 * is pending then; the caller declines).
 */
int sj_append(struct standin_journal *j, struct standin_rec *rec)
    __attribute__((warn_unused_result));

/* fdatasync when something was written since the last sync.  0 or -1. */
int sj_sync(struct standin_journal *j) __attribute__((warn_unused_result));

/*
 * Retire seq (settled, or void when its approval never went out): a DONE
 * record, off the pending list.  Returns 0, 1 when seq is not pending,
 * -1 when the write failed (it stays pending).  Void needs sj_sync() before
 * the decline goes out.
 */
int sj_done(struct standin_journal *j, uint64_t seq) __attribute__((warn_unused_result));

/* Rewrite the file with the pending records only.  0 or -1 (file unchanged). */
int sj_compact(struct standin_journal *j) __attribute__((warn_unused_result));

size_t sj_npending(const struct standin_journal *j);
/* Pending record i (0 <= i < sj_npending), in journal order. */
const struct standin_rec *sj_pending(const struct standin_journal *j, size_t i);
/* The pending record with seq, or NULL. */
const struct standin_rec *sj_find(const struct standin_journal *j, uint64_t seq);
/* The journal's path. */
const char *sj_path(const struct standin_journal *j);
/* Records in the file (all types), for the compaction policy. */
size_t sj_nrecords(const struct standin_journal *j);
/* Records cut off at open (a torn tail); 0 normally. */
size_t sj_torn(const struct standin_journal *j);

/* ---- the limit cache ---- */

struct standin_cache;

struct standin_cache *standin_cache_new(size_t max_cards) __attribute__((warn_unused_result));
void standin_cache_free(struct standin_cache *c);

/* Start building a new generation (the current one keeps serving). */
void standin_cache_begin(struct standin_cache *c);
/*
 * Add one card (its expiry YYMM) to the generation being built.  0; 1 when
 * max_cards is reached (the card is left out); -1 out of memory or a bad
 * hash/limit/expiry.
 */
int standin_cache_add(struct standin_cache *c, const char *pan_hash, int64_t limit,
                      const char *expiry) __attribute__((warn_unused_result));
/*
 * Swap the built generation in; what is used is counted again from the
 * journal's pending records (j may be NULL).
 */
void standin_cache_commit(struct standin_cache *c, const struct standin_journal *j);
/* Has a generation ever been committed? */
bool standin_cache_loaded(const struct standin_cache *c);
size_t standin_cache_size(const struct standin_cache *c);

/*
 * The expiry checks the database would make (54 expired / mismatch): the
 * card is in the cache, its expiry is not before now_yymm, and req_expiry
 * (field 14; NULL or "": none) is the card's.
 */
bool standin_cache_expiry_ok(const struct standin_cache *c, const char *pan_hash,
                             const char *req_expiry, const char *now_yymm);
/*
 * Take amount from the card's remaining stand-in amount.  0 taken; -1 card
 * not in the cache; -2 over its remaining amount (or amount <= 0).
 */
int standin_cache_take(struct standin_cache *c, const char *pan_hash, int64_t amount)
    __attribute__((warn_unused_result));
/* Give amount back (settled or void). */
void standin_cache_give(struct standin_cache *c, const char *pan_hash, int64_t amount);
/* The card's remaining stand-in amount; -1 when not in the cache. */
int64_t standin_cache_remaining(const struct standin_cache *c, const char *pan_hash);

/* CRC-32 (IEEE 802.3), as the journal's records carry it. */
uint32_t standin_crc32(const void *data, size_t len);

#endif
