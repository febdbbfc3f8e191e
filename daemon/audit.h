/*
 * audit.h - the tamper-evident audit log: writer (daemon) and reader
 * (cardgatectl audit verify|dump|find).  No libevent here: the daemon calls
 * audit_flush() from its loop and audit_tick() from a timer.
 *
 * On disk.  A directory of segment files named by the sequence number of
 * their first record, zero-padded so they sort: 00000000000000000001.cgaudit.
 * A segment is a run of records, each
 *
 *     uint32 big-endian payload length (1..AUDIT_MAX_RECORD)
 *     payload: msgpack array [seq, ts_us, type, prev, fields]
 *         seq     uint, 1, 2, 3 ... continuous across segments
 *         ts_us   int, wall clock, microseconds since the Unix epoch
 *         type    uint, enum audit_type
 *         prev    bin 32, SHA-256 of the previous record's payload (all
 *                 zero for record 1): the hash chain, across segments
 *         fields  map, string keys (see audit_type_name and the writers)
 *
 * Every segment starts with an AUDIT_SEGMENT record (so a segment's first
 * record links to the previous segment's last hash).  AUDIT_CHECKPOINT
 * records carry {upto, chain, key, sig, why}: an EVP signature (Ed25519 is
 * the intended key) over "cgaudit-checkpoint-v1" || be64 seq || be64 ts_us
 * || chain, where chain is the hash of record upto = seq - 1.  Checkpoints
 * are written every checkpoint interval, before a segment is closed for
 * rotation and at clean shutdown, so an auditor holding the public key can
 * prove nothing up to the last checkpoint was changed, removed or reordered.
 * Records after the last checkpoint are chained but not yet signed.
 *
 * What is never written: a clear PAN (struct audit_pan can only be filled by
 * masking, and the writer re-checks the masked shape), track data, PIN
 * blocks, CVV, key material (key changes carry the name and KCV only).
 *
 * Durability.  Records are packed into one preallocated buffer (no malloc per
 * record) and written with one write(2) per audit_flush(); fdatasync(2)
 * follows according to enum audit_sync.  An approval is acknowledged to a
 * switch only after audit_flush() returned 0 for the batch holding its
 * answer record (the pipeline's ordering: record answers, flush, then write
 * the answers to the links).
 */
#ifndef CARDGATE_DAEMON_AUDIT_H
#define CARDGATE_DAEMON_AUDIT_H

#include "crypto/pan.h"

#include <msgpack.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AUDIT_MUST_CHECK     __attribute__((warn_unused_result))
#define AUDIT_HASH_LEN       32
#define AUDIT_MAX_RECORD     4096 /* largest payload accepted on read or write */
#define AUDIT_MAX_SIG        512
#define AUDIT_KEY_ID_LEN     8
#define AUDIT_SEG_SUFFIX     ".cgaudit"
#define AUDIT_SEG_NAME_LEN   (20 + 8) /* digits + suffix, without NUL */
#define AUDIT_SIGN_DOMAIN    "cgaudit-checkpoint-v1"
#define AUDIT_FORMAT_VERSION 1

enum audit_type {
    AUDIT_SEGMENT = 1,    /* first record of each segment */
    AUDIT_CHECKPOINT = 2, /* signed chain head */
    AUDIT_REQUEST = 3,    /* a financial request as received */
    AUDIT_ANSWER = 4,     /* the answer sent */
    AUDIT_LINK = 5,       /* connect, sign-on, sign-off, close */
    AUDIT_RELOAD = 6,     /* configuration reload accepted or refused */
    AUDIT_KEY_CHANGE = 7, /* key name + KCV */
    AUDIT_OPERATOR = 8,   /* an operator's action */
    AUDIT_DAEMON = 9,     /* start, stop, recovery of a torn tail */
};
#define AUDIT_TYPE_MAX 9

/* "segment", "checkpoint", "request", ...; "?" when unknown */
const char *audit_type_name(int type);
/* the enum value for a name, or -1 */
int audit_type_parse(const char *name);

enum audit_sync {
    AUDIT_SYNC_NONE = 0,     /* never fdatasync; the kernel writes back */
    AUDIT_SYNC_APPROVAL = 1, /* fdatasync a batch that holds an approved answer */
    AUDIT_SYNC_BATCH = 2,    /* fdatasync every batch */
};

/*
 * A masked PAN: first six, last four.  Only audit_pan_mask() fills it, from
 * the clear digits, so the record API cannot take a clear PAN by mistake.
 */
struct audit_pan {
    char masked[PAN_MASK_MAX];
};
void audit_pan_mask(struct audit_pan *out, const char *pan, size_t len);

/*
 * A request or its answer.  Strings are NUL-terminated and may be empty
 * (then omitted from the record).  Fill with memset 0 then set what is known.
 */
struct audit_tx {
    char mti[5];
    struct audit_pan pan;
    char stan[7];          /* field 11 */
    char rrn[13];          /* field 37 */
    char acquirer[12];     /* field 32 */
    char terminal[9];      /* field 41 */
    char merchant[16];     /* field 42 */
    char mcc[5];           /* field 18 */
    int64_t amount;        /* minor units, field 4 */
    char currency[4];      /* field 49 */
    char response_code[3]; /* field 39 (answers) */
    char approval_code[7]; /* field 38 (answers) */
    char rule[48];         /* deciding rule (answers) */
    int64_t policy_version;
    int64_t latency_us; /* arrival to answer written (answers) */
    char link[64];
    bool standin;
};

enum audit_link_event {
    AUDIT_LINK_CONNECT = 0,
    AUDIT_LINK_SIGNON,
    AUDIT_LINK_SIGNOFF,
    AUDIT_LINK_CLOSE,
};

enum audit_daemon_event {
    AUDIT_DAEMON_START = 0,
    AUDIT_DAEMON_STOP,
    AUDIT_DAEMON_RECOVER, /* written by the writer itself after a torn tail */
};

/* true for response codes that approve (00, 08, 10, 11, 85) */
bool audit_rc_is_approval(const char *rc);

/* ---- writer ---- */

struct audit_writer_conf {
    const char *dir;                /* created (0750) when missing */
    uint64_t segment_size;          /* rotate before a segment grows past this */
    int64_t checkpoint_interval_us; /* 0: only at rotation and shutdown */
    enum audit_sync sync;
    size_t buffer_size; /* batch buffer, 0: 256 KiB; at least 4 records */
};

struct audit_stats {
    uint64_t records;       /* appended since open */
    uint64_t bytes;         /* written since open */
    uint64_t writes;        /* write(2) batches */
    uint64_t syncs;         /* fdatasync(2) calls */
    uint64_t checkpoints;   /* written since open */
    uint64_t segments;      /* created since open */
    uint64_t masked_fixups; /* PAN fields that were not in masked shape */
};

struct audit_writer;

/*
 * Open the log in c->dir: find the last segment, verify it from its header,
 * truncate a torn final record (logged, and recorded as an AUDIT_DAEMON
 * "recover" record), and continue the chain; or start the chain at seq 1.
 * signkey (may be NULL: checkpoints unsigned, a warning is logged) is
 * referenced, not copied; the caller keeps its own reference.
 * Returns 0 and *out, or -1 with a logged reason (a damaged record that is
 * not a torn tail is refused: the operator must look at it).
 */
int audit_writer_open(const struct audit_writer_conf *c, EVP_PKEY *signkey,
                      struct audit_writer **out) AUDIT_MUST_CHECK;

/* Replace the signing key (key change, reload).  NULL: unsigned. */
int audit_writer_set_key(struct audit_writer *w, EVP_PKEY *signkey) AUDIT_MUST_CHECK;

/*
 * Append records to the batch buffer.  Each returns 0, or -1 when the record
 * could not be packed or a forced flush (full buffer, rotation) failed.
 * Nothing is on disk before audit_flush().
 */
int audit_request(struct audit_writer *w, const struct audit_tx *tx) AUDIT_MUST_CHECK;
int audit_answer(struct audit_writer *w, const struct audit_tx *tx) AUDIT_MUST_CHECK;
int audit_link(struct audit_writer *w, const char *link, const char *peer, enum audit_link_event ev,
               const char *reason) AUDIT_MUST_CHECK;
int audit_reload(struct audit_writer *w, bool ok, const char *reason) AUDIT_MUST_CHECK;
/* kcv: 4..8 hex digits (anything else is refused: it could be key material) */
int audit_key_change(struct audit_writer *w, const char *key_name,
                     const char *kcv) AUDIT_MUST_CHECK;
int audit_operator(struct audit_writer *w, const char *who, const char *action,
                   const char *detail) AUDIT_MUST_CHECK;
int audit_daemon(struct audit_writer *w, enum audit_daemon_event ev,
                 const char *detail) AUDIT_MUST_CHECK;

/* Append a checkpoint now (why: "interval", "segment", "shutdown", ...). */
int audit_checkpoint(struct audit_writer *w, const char *why) AUDIT_MUST_CHECK;

/*
 * Write the batch with one write(2) (retrying short writes), then fdatasync
 * per the sync policy.  On failure the batch stays buffered and the next
 * call retries it.  Returns 0 or -1 (errno logged).
 */
int audit_flush(struct audit_writer *w) AUDIT_MUST_CHECK;

/* Bytes waiting for audit_flush(). */
size_t audit_pending(const struct audit_writer *w);

/*
 * Timer hook: a checkpoint when the interval has passed and records were
 * written since the last one.  Does not flush.
 */
int audit_tick(struct audit_writer *w) AUDIT_MUST_CHECK;

/* Sequence number the next record gets, and the current chain head. */
uint64_t audit_next_seq(const struct audit_writer *w);
void audit_head(const struct audit_writer *w, uint8_t hash[AUDIT_HASH_LEN]);
void audit_get_stats(const struct audit_writer *w, struct audit_stats *st);

/*
 * Clean shutdown: a "shutdown" checkpoint, flush, fdatasync, close, free.
 * Returns 0, or -1 when the final write failed (the writer is freed anyway).
 */
int audit_writer_close(struct audit_writer *w) AUDIT_MUST_CHECK;

/* Free without a checkpoint or flush (crash simulation, fatal paths). */
void audit_writer_abandon(struct audit_writer *w);

/* ---- keys ---- */

/*
 * Load a public key for verification: a PEM "PUBLIC KEY" file, or a file
 * holding the 64 hex digits of a raw Ed25519 public key.  NULL on failure
 * (reason written to err).
 */
EVP_PKEY *audit_pubkey_load(const char *path, char *err, size_t errlen);

/* The bytes a checkpoint's signature covers (see the top of this file). */
#define AUDIT_CP_MSG_LEN (sizeof(AUDIT_SIGN_DOMAIN) - 1 + 8 + 8 + AUDIT_HASH_LEN)
void audit_checkpoint_message(uint64_t seq, int64_t ts_us, const uint8_t chain[AUDIT_HASH_LEN],
                              uint8_t out[AUDIT_CP_MSG_LEN]);

/* First AUDIT_KEY_ID_LEN bytes of SHA-256(DER SubjectPublicKeyInfo). */
int audit_key_id(EVP_PKEY *key, uint8_t id[AUDIT_KEY_ID_LEN]) AUDIT_MUST_CHECK;

/* ---- reader ---- */

/* One parsed record; pointers into the segment bytes and the unpacked zone. */
struct audit_rec {
    uint64_t seq;
    int64_t ts_us;
    int type;
    uint8_t prev[AUDIT_HASH_LEN];
    uint8_t hash[AUDIT_HASH_LEN]; /* SHA-256 of this payload */
    const char *segment;          /* file name */
    uint64_t offset;              /* of the length prefix in the segment */
    size_t len;                   /* payload bytes */
    const msgpack_object *fields; /* map */
};

enum audit_parse {
    AUDIT_PARSE_END = 0,   /* no bytes left */
    AUDIT_PARSE_OK = 1,    /* *r filled, *used = 4 + payload length */
    AUDIT_PARSE_TORN = -2, /* an incomplete record, or only zero bytes, up to the end */
    AUDIT_PARSE_BAD = -1,  /* a complete record that is malformed (why says how) */
};

/*
 * Parse the record at buf[off..len) into *r (u holds the unpacked fields
 * until its next use).  Checks the framing and the envelope's shape only:
 * continuity and the chain are the caller's (audit_walk, the writer's
 * recovery).
 */
enum audit_parse audit_rec_parse(const uint8_t *buf, size_t len, size_t off, msgpack_unpacked *u,
                                 struct audit_rec *r, size_t *used, char *why, size_t whylen);

/* Look a field up; NULL when absent. */
const msgpack_object *audit_rec_field(const struct audit_rec *r, const char *key);
/* A string field into out (NUL-terminated, truncated); false when absent. */
bool audit_rec_str(const struct audit_rec *r, const char *key, char *out, size_t cap);

/* Called for each record that passed every check; non-zero stops the walk. */
typedef int (*audit_walk_fn)(const struct audit_rec *r, void *arg);

struct audit_verify {
    /* in */
    EVP_PKEY *pubkey; /* NULL: checkpoint signatures are not checked */
    /* out: summary */
    unsigned segments;
    uint64_t records;
    uint64_t first_seq, last_seq;
    uint64_t checkpoints, signatures_ok;
    uint64_t last_checkpoint_seq; /* 0: none */
    uint8_t head[AUDIT_HASH_LEN];
    /* out: the first problem (when audit_walk returned 1) */
    char bad_segment[AUDIT_SEG_NAME_LEN + 1];
    uint64_t bad_offset;
    uint64_t bad_seq; /* 0 when not known */
    char what[256];
};

/*
 * Walk every segment in dir in order, checking lengths, sequence
 * continuity, segment headers, the hash chain and (with v->pubkey) every
 * checkpoint signature; call fn (may be NULL) for each good record.
 * Returns 0 when the whole log is good, 1 at the first bad record (v says
 * where and what), -1 when dir cannot be read (v->what says why), or fn's
 * non-zero value when fn stopped the walk.
 */
int audit_walk(const char *dir, struct audit_verify *v, audit_walk_fn fn, void *arg);

/* "00000000000000000001.cgaudit" for seq into out[AUDIT_SEG_NAME_LEN + 1] */
void audit_segment_name(uint64_t first_seq, char out[AUDIT_SEG_NAME_LEN + 1]);

/*
 * The segments in dir as their first sequence numbers, sorted ascending:
 * *first_seqs is a heap array (free it; NULL when the count is 0).  Other
 * file names are ignored.  Returns the count or -1 (errno set).
 */
long audit_list_segments(const char *dir, uint64_t **first_seqs) AUDIT_MUST_CHECK;

#endif
