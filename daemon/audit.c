/*
 * audit.c - the audit log writer (see audit.h for the format and the
 * durability contract).
 *
 * One preallocated batch buffer; a record is packed straight into it behind
 * a 4-byte length slot with a msgpack_packer whose write callback appends to
 * the buffer, then the length is patched in and the payload hashed with a
 * reused EVP_MD_CTX.  audit_flush() hands the whole batch to write(2).
 */
#include "daemon/audit.h"

#include "common/log.h"
#include "common/util.h"
#include "crypto/keystore.h"
#include "iso8583/iso8583.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/crypto.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_BUFFER (256u << 10)

struct audit_writer {
    char dir[4096];
    uint64_t segment_size;
    int64_t checkpoint_interval_us;
    enum audit_sync sync;

    int fd;            /* current segment, O_APPEND */
    uint64_t seg_size; /* bytes of the current segment, written + buffered */
    uint64_t seq;      /* the next record's */
    uint8_t head[AUDIT_HASH_LEN];
    int64_t last_cp_us; /* monotonic time of the last checkpoint */
    bool since_cp;      /* records appended since the last checkpoint */
    bool need_sync;     /* the buffered batch holds an approval */
    int64_t rec_ts;     /* the timestamp of the record being packed */
    size_t map_pos;     /* of its fields map header in buf */
    unsigned nfields;

    uint8_t *buf;
    size_t len, cap;
    bool overflow;
    msgpack_packer pk;

    EVP_MD *sha256;
    EVP_MD_CTX *md;
    EVP_PKEY *key;
    uint8_t key_id[AUDIT_KEY_ID_LEN];

    struct audit_stats st;
};

/* msgpack_packer write callback: append to the batch buffer. */
static int buf_write(void *data, const char *p, size_t n)
{
    struct audit_writer *w = data;
    if (n > w->cap - w->len) {
        w->overflow = true;
        return -1;
    }
    memcpy(w->buf + w->len, p, n);
    w->len += n;
    return 0;
}

/* Segment size floor: room for a record, the closing checkpoint and more. */
static uint64_t seg_floor(uint64_t size)
{
    return size < 8 * (AUDIT_MAX_RECORD + 4) ? 8 * (AUDIT_MAX_RECORD + 4) : size;
}

/* ---- packing helpers: each packs a key and a value ---- */

static void pack_key(struct audit_writer *w, const char *k)
{
    size_t n = strlen(k);
    w->nfields++;
    msgpack_pack_str(&w->pk, n);
    msgpack_pack_str_body(&w->pk, k, n);
}

static void pack_kstr(struct audit_writer *w, const char *k, const char *v, size_t cap)
{
    size_t n = strnlen(v, cap);
    pack_key(w, k);
    msgpack_pack_str(&w->pk, n);
    msgpack_pack_str_body(&w->pk, v, n);
}

static void pack_ki64(struct audit_writer *w, const char *k, int64_t v)
{
    pack_key(w, k);
    msgpack_pack_int64(&w->pk, v);
}

static void pack_kbin(struct audit_writer *w, const char *k, const uint8_t *v, size_t n)
{
    pack_key(w, k);
    msgpack_pack_bin(&w->pk, n);
    msgpack_pack_bin_body(&w->pk, v, n);
}

/* A string field only when it is non-empty (NULL counts as empty). */
static void pack_kopt(struct audit_writer *w, const char *k, const char *v, size_t cap)
{
    if (v != NULL && v[0] != '\0')
        pack_kstr(w, k, v, cap);
}

/*
 * True when s is in masked shape: "****", or 12..19 characters with six
 * digits, '*'s, and four digits.  Anything else is replaced by "****" so no
 * caller can get a clear PAN into a record.
 */
static bool masked_shape(const char *s)
{
    size_t n = strnlen(s, PAN_MASK_MAX);
    if (strcmp(s, "****") == 0 || n == 0)
        return true;
    if (n < PAN_MIN_LEN || n > PAN_MAX_LEN)
        return false;
    for (size_t i = 0; i < n; i++) {
        bool digit = s[i] >= '0' && s[i] <= '9';
        if ((i < 6 || i >= n - 4) ? !digit : s[i] != '*')
            return false;
    }
    return true;
}

/* ---- segments ---- */

/* Write out the buffer; sync when forced or the policy asks. */
static int flush(struct audit_writer *w, bool force_sync)
{
    size_t done = 0;
    while (done < w->len) {
        ssize_t r = write(w->fd, w->buf + done, w->len - done);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            log_warn("audit: write of %zu bytes to %s failed", w->len - done, w->dir);
            /* keep what was not written, so a retry does not write anything twice */
            memmove(w->buf, w->buf + done, w->len - done);
            w->st.write_errors++;
            w->len -= done;
            w->st.bytes += done;
            return -1;
        }
        done += (size_t)r;
    }
    if (done > 0) {
        w->st.bytes += done;
        w->st.writes++;
        w->len = 0;
    }
    if (force_sync || w->sync == AUDIT_SYNC_BATCH ||
        (w->sync == AUDIT_SYNC_APPROVAL && w->need_sync)) {
        if (fdatasync(w->fd) != 0) {
            log_warn("audit: fdatasync in %s failed", w->dir);
            w->st.write_errors++;
            return -1;
        }
        w->st.syncs++;
        w->need_sync = false;
    }
    return 0;
}

static int append_record(struct audit_writer *w, int type);
static int end_record(struct audit_writer *w, size_t start);
static int write_header(struct audit_writer *w);

/* Create the segment whose first record is w->seq and write its header. */
static int new_segment(struct audit_writer *w)
{
    char name[AUDIT_SEG_NAME_LEN + 1], path[4096 + 64];
    audit_segment_name(w->seq, name);
    snprintf(path, sizeof(path), "%s/%s", w->dir, name);
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    if (fd < 0) {
        log_warn("audit: cannot create %s", path);
        return -1;
    }
    if (util_fsync_dir(w->dir) != 0)
        log_warn("audit: fsync of directory %s failed", w->dir);
    if (w->fd >= 0)
        close(w->fd);
    w->fd = fd;
    w->seg_size = 0;
    w->st.segments++;
    return write_header(w);
}

/* Close the current segment with a checkpoint and start the next one. */
static int rotate(struct audit_writer *w)
{
    if (audit_checkpoint(w, "segment") != 0 || flush(w, true) != 0)
        return -1;
    return new_segment(w);
}

/*
 * Start a record: make room (flush, rotate), then pack the length slot and
 * the envelope up to the fields map header.  Returns the record's start
 * offset in the buffer through end_record's contract, or -1.
 */
static int append_record(struct audit_writer *w, int type)
{
    if (type != AUDIT_SEGMENT && type != AUDIT_CHECKPOINT &&
        w->seg_size + 2 * (AUDIT_MAX_RECORD + 4) > w->segment_size && rotate(w) != 0)
        return -1;
    if (w->cap - w->len < AUDIT_MAX_RECORD + 4 && flush(w, false) != 0)
        return -1;
    size_t start = w->len;
    w->overflow = false;
    w->len += 4;
    msgpack_pack_array(&w->pk, 5);
    msgpack_pack_uint64(&w->pk, w->seq);
    w->rec_ts = util_wall_us();
    msgpack_pack_int64(&w->pk, w->rec_ts);
    msgpack_pack_uint8(&w->pk, (uint8_t)type);
    msgpack_pack_bin(&w->pk, AUDIT_HASH_LEN);
    msgpack_pack_bin_body(&w->pk, w->head, AUDIT_HASH_LEN);
    /* map16 with the count patched in by end_record() */
    w->map_pos = w->len;
    w->nfields = 0;
    static const char map16[3] = {(char)0xde, 0, 0};
    buf_write(w, map16, sizeof(map16));
    return (int)start;
}

/* Finish the record started at start: length, hash, counters. */
static int end_record(struct audit_writer *w, size_t start)
{
    size_t plen = w->len - start - 4;
    unsigned hl = 0;
    if (w->overflow || plen > AUDIT_MAX_RECORD) {
        w->len = start;
        log_warnx("audit: record %" PRIu64 " too large, not written", w->seq);
        return -1;
    }
    uint8_t *p = w->buf + start;
    w->buf[w->map_pos + 1] = (uint8_t)(w->nfields >> 8);
    w->buf[w->map_pos + 2] = (uint8_t)w->nfields;
    p[0] = (uint8_t)(plen >> 24);
    p[1] = (uint8_t)(plen >> 16);
    p[2] = (uint8_t)(plen >> 8);
    p[3] = (uint8_t)plen;
    if (EVP_DigestInit_ex2(w->md, w->sha256, NULL) != 1 ||
        EVP_DigestUpdate(w->md, p + 4, plen) != 1 || EVP_DigestFinal_ex(w->md, w->head, &hl) != 1) {
        w->len = start;
        log_warnx("audit: SHA-256 failed");
        return -1;
    }
    w->seq++;
    w->seg_size += 4 + plen;
    w->st.records++;
    return 0;
}

/* After an ordinary record: note it for the next checkpoint, checkpoint when due. */
static int after_record(struct audit_writer *w)
{
    w->since_cp = true;
    if (w->checkpoint_interval_us > 0 && util_now_us() - w->last_cp_us >= w->checkpoint_interval_us)
        return audit_checkpoint(w, "interval");
    return 0;
}

static int write_header(struct audit_writer *w)
{
    int s = append_record(w, AUDIT_SEGMENT);
    if (s < 0)
        return -1;
    pack_ki64(w, "v", AUDIT_FORMAT_VERSION);
    return end_record(w, (size_t)s);
}

/* See audit.h. */
int audit_checkpoint(struct audit_writer *w, const char *why)
{
    uint8_t msg[AUDIT_CP_MSG_MAX], sig[AUDIT_MAX_SIG];
    size_t whylen = strnlen(why, AUDIT_CP_WHY_MAX);
    size_t siglen = sizeof(sig);
    int64_t ts;
    int s;

    s = append_record(w, AUDIT_CHECKPOINT);
    if (s < 0)
        return -1;
    ts = w->rec_ts;
    pack_key(w, "upto");
    msgpack_pack_uint64(&w->pk, w->seq - 1);
    pack_kbin(w, "chain", w->head, AUDIT_HASH_LEN);
    pack_kstr(w, "why", why, AUDIT_CP_WHY_MAX);
    if (w->key != NULL) {
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        size_t mlen = audit_checkpoint_message(w->seq, ts, w->head, why, whylen, msg);
        if (ctx == NULL || EVP_DigestSignInit(ctx, NULL, NULL, NULL, w->key) != 1 ||
            EVP_DigestSign(ctx, sig, &siglen, msg, mlen) != 1) {
            EVP_MD_CTX_free(ctx);
            w->len = (size_t)s;
            log_warnx("audit: signing checkpoint %" PRIu64 " failed", w->seq);
            return -1;
        }
        EVP_MD_CTX_free(ctx);
        pack_kbin(w, "key", w->key_id, AUDIT_KEY_ID_LEN);
        pack_kbin(w, "sig", sig, siglen);
    }
    if (end_record(w, (size_t)s) != 0)
        return -1;
    w->last_cp_us = util_now_us();
    w->since_cp = false;
    w->st.checkpoints++;
    return 0;
}

/* ---- records ---- */

static int pack_tx(struct audit_writer *w, int type, const struct audit_tx *tx)
{
    int s = append_record(w, type);
    if (s < 0)
        return -1;
    pack_kopt(w, "mti", tx->mti, sizeof(tx->mti));
    if (masked_shape(tx->pan.masked)) {
        pack_kopt(w, "pan", tx->pan.masked, sizeof(tx->pan.masked));
    } else {
        pack_kstr(w, "pan", "****", 5);
        w->st.masked_fixups++;
        log_warnx("audit: record %" PRIu64 ": PAN field not in masked form, written as ****",
                  w->seq);
    }
    pack_kopt(w, "stan", tx->stan, sizeof(tx->stan));
    pack_kopt(w, "rrn", tx->rrn, sizeof(tx->rrn));
    pack_kopt(w, "acquirer", tx->acquirer, sizeof(tx->acquirer));
    pack_kopt(w, "terminal", tx->terminal, sizeof(tx->terminal));
    pack_kopt(w, "merchant", tx->merchant, sizeof(tx->merchant));
    pack_kopt(w, "mcc", tx->mcc, sizeof(tx->mcc));
    pack_ki64(w, "amount", tx->amount);
    pack_kopt(w, "currency", tx->currency, sizeof(tx->currency));
    if (type == AUDIT_ANSWER) {
        pack_kopt(w, "rc", tx->response_code, sizeof(tx->response_code));
        pack_kopt(w, "approval", tx->approval_code, sizeof(tx->approval_code));
        pack_kopt(w, "rule", tx->rule, sizeof(tx->rule));
        pack_ki64(w, "policy", tx->policy_version);
        pack_ki64(w, "latency_us", tx->latency_us);
    }
    pack_kopt(w, "link", tx->link, sizeof(tx->link));
    pack_key(w, "standin");
    if (tx->standin)
        msgpack_pack_true(&w->pk);
    else
        msgpack_pack_false(&w->pk);
    if (end_record(w, (size_t)s) != 0)
        return -1;
    if (type == AUDIT_ANSWER && audit_rc_is_approval(tx->response_code))
        w->need_sync = true;
    return after_record(w);
}

/* Copy field n of m as printable text into out[cap] (empty when absent). */
static void iso_text(const struct iso_msg *m, int n, char *out, size_t cap)
{
    const struct iso_view *v = iso_get(m, n);
    size_t len = 0;
    if (v != NULL) {
        len = v->len < cap - 1 ? v->len : cap - 1;
        for (size_t i = 0; i < len; i++)
            out[i] = v->p[i] >= 0x20 && v->p[i] < 0x7f ? (char)v->p[i] : '?';
        while (len > 0 && out[len - 1] == ' ')
            len--;
    }
    out[len] = '\0';
}

/* See audit.h. */
void audit_tx_from_iso(struct audit_tx *tx, const struct iso_msg *m, const char *link)
{
    const struct iso_view *v;
    memset(tx, 0, sizeof(*tx));
    for (size_t i = 0; i < 4; i++)
        tx->mti[i] = m->mti[i] >= '0' && m->mti[i] <= '9' ? m->mti[i] : '?';
    if ((v = iso_get(m, 2)) != NULL)
        audit_pan_mask(&tx->pan, (const char *)v->p, v->len);
    iso_text(m, 11, tx->stan, sizeof(tx->stan));
    iso_text(m, 37, tx->rrn, sizeof(tx->rrn));
    iso_text(m, 32, tx->acquirer, sizeof(tx->acquirer));
    iso_text(m, 41, tx->terminal, sizeof(tx->terminal));
    iso_text(m, 42, tx->merchant, sizeof(tx->merchant));
    iso_text(m, 18, tx->mcc, sizeof(tx->mcc));
    iso_text(m, 49, tx->currency, sizeof(tx->currency));
    iso_text(m, 39, tx->response_code, sizeof(tx->response_code));
    iso_text(m, 38, tx->approval_code, sizeof(tx->approval_code));
    if ((v = iso_get(m, 4)) != NULL && v->len > 0 && v->len <= 18) {
        int64_t a = 0;
        uint32_t i;
        for (i = 0; i < v->len && v->p[i] >= '0' && v->p[i] <= '9'; i++)
            a = a * 10 + (v->p[i] - '0');
        tx->amount = i == v->len ? a : 0;
    }
    if (link != NULL)
        snprintf(tx->link, sizeof(tx->link), "%s", link);
}

/* See audit.h. */
int audit_request(struct audit_writer *w, const struct audit_tx *tx)
{
    return pack_tx(w, AUDIT_REQUEST, tx);
}

/* See audit.h. */
int audit_answer(struct audit_writer *w, const struct audit_tx *tx)
{
    return pack_tx(w, AUDIT_ANSWER, tx);
}

/* See audit.h. */
int audit_link(struct audit_writer *w, const char *link, const char *peer, enum audit_link_event ev,
               const char *reason)
{
    static const char *const names[] = {"connect", "signon", "signoff", "close"};
    if ((unsigned)ev >= UTIL_NELEM(names))
        return -1;
    int s = append_record(w, AUDIT_LINK);
    if (s < 0)
        return -1;
    pack_kstr(w, "event", names[ev], 16);
    pack_kopt(w, "link", link, 64);
    pack_kopt(w, "peer", peer, 128);
    pack_kopt(w, "reason", reason, 256);
    if (end_record(w, (size_t)s) != 0)
        return -1;
    return after_record(w);
}

/* See audit.h. */
int audit_reload(struct audit_writer *w, bool ok, const char *reason)
{
    int s = append_record(w, AUDIT_RELOAD);
    if (s < 0)
        return -1;
    pack_kstr(w, "result", ok ? "ok" : "refused", 16);
    pack_kopt(w, "reason", reason, 512);
    if (end_record(w, (size_t)s) != 0)
        return -1;
    return after_record(w);
}

/* See audit.h. */
int audit_key_change(struct audit_writer *w, const char *key_name, const char *kcv)
{
    size_t n = kcv != NULL ? strlen(kcv) : 0;
    if (n < 4 || n > 8 || key_name == NULL || key_name[0] == '\0') {
        log_warnx("audit: key change record refused: KCV must be 4..8 hex digits");
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        if (!((kcv[i] >= '0' && kcv[i] <= '9') || (kcv[i] >= 'A' && kcv[i] <= 'F') ||
              (kcv[i] >= 'a' && kcv[i] <= 'f'))) {
            log_warnx("audit: key change record refused: KCV must be 4..8 hex digits");
            return -1;
        }
    int s = append_record(w, AUDIT_KEY_CHANGE);
    if (s < 0)
        return -1;
    pack_kstr(w, "key", key_name, 64);
    pack_kstr(w, "kcv", kcv, 8);
    if (end_record(w, (size_t)s) != 0)
        return -1;
    return after_record(w);
}

/* See audit.h. */
int audit_operator(struct audit_writer *w, const char *who, const char *action, const char *detail)
{
    int s = append_record(w, AUDIT_OPERATOR);
    if (s < 0)
        return -1;
    pack_kopt(w, "who", who, 64);
    pack_kopt(w, "action", action, 64);
    pack_kopt(w, "detail", detail, 512);
    if (end_record(w, (size_t)s) != 0)
        return -1;
    return after_record(w);
}

/* See audit.h. */
int audit_daemon(struct audit_writer *w, enum audit_daemon_event ev, const char *detail)
{
    static const char *const names[] = {"start", "stop", "recover"};
    if ((unsigned)ev >= UTIL_NELEM(names))
        return -1;
    int s = append_record(w, AUDIT_DAEMON);
    if (s < 0)
        return -1;
    pack_kstr(w, "event", names[ev], 16);
    pack_ki64(w, "pid", (int64_t)getpid());
    pack_kopt(w, "detail", detail, 512);
    if (end_record(w, (size_t)s) != 0)
        return -1;
    return after_record(w);
}

/* ---- open, recovery, flush, close ---- */

/*
 * Scan the last segment (path, first sequence first) from its header:
 * *valid_end, *next_seq and head describe the good prefix.  Returns 1 when
 * the file ends in a torn record, 0 when it ends cleanly, -1 when a complete
 * record is damaged (not a crash artefact: refused).
 */
static int scan_last(const char *path, const char *name, uint64_t first, size_t *valid_end,
                     uint64_t *next_seq, uint8_t head[AUDIT_HASH_LEN], unsigned *nrec, char *why,
                     size_t whylen)
{
    size_t len = 0, off = 0;
    uint8_t *buf = (uint8_t *)util_read_file(path, (size_t)1 << 35, &len);
    msgpack_unpacked u;
    int rc = 0;

    if (buf == NULL) {
        snprintf(why, whylen, "cannot read: %s", strerror(errno));
        return -1;
    }
    *nrec = 0;
    *next_seq = first;
    *valid_end = 0;
    msgpack_unpacked_init(&u);
    for (;;) {
        struct audit_rec r;
        size_t used = 0;
        enum audit_parse pr = audit_rec_parse(buf, len, off, &u, &r, &used, why, whylen);
        if (pr == AUDIT_PARSE_END)
            break;
        if (pr == AUDIT_PARSE_TORN) {
            rc = 1;
            break;
        }
        if (pr == AUDIT_PARSE_BAD) {
            rc = -1;
            break;
        }
        if (r.seq != *next_seq || (off == 0) != (r.type == AUDIT_SEGMENT) ||
            (off > 0 && memcmp(r.prev, head, AUDIT_HASH_LEN) != 0)) {
            snprintf(why, whylen, "record seq %" PRIu64 " does not continue the chain", r.seq);
            rc = -1;
            break;
        }
        memcpy(head, r.hash, AUDIT_HASH_LEN);
        *next_seq = r.seq + 1;
        off += used;
        *valid_end = off;
        (*nrec)++;
    }
    if (rc == -1)
        log_warnx("audit: %s offset %zu: %s", name, off, why);
    msgpack_unpacked_destroy(&u);
    free(buf);
    return rc;
}

/* Find the end of the log, repairing a torn tail; sets w->fd, seq, head. */
static int recover(struct audit_writer *w, char *detail, size_t detlen)
{
    detail[0] = '\0';
    for (;;) {
        uint64_t *segs = NULL;
        long n = audit_list_segments(w->dir, &segs);
        if (n < 0) {
            log_warn("audit: cannot list %s", w->dir);
            return -1;
        }
        if (n == 0) {
            w->seq = 1;
            memset(w->head, 0, sizeof(w->head));
            return new_segment(w);
        }
        uint64_t first = segs[n - 1];
        free(segs);
        char name[AUDIT_SEG_NAME_LEN + 1], path[4096 + 64], why[200];
        size_t end = 0;
        unsigned nrec = 0;
        audit_segment_name(first, name);
        snprintf(path, sizeof(path), "%s/%s", w->dir, name);
        int t = scan_last(path, name, first, &end, &w->seq, w->head, &nrec, why, sizeof(why));
        if (t < 0) {
            log_warnx("audit: %s/%s is damaged; refusing to append (move it aside after "
                      "inspection with 'cardgatectl audit verify')",
                      w->dir, name);
            return -1;
        }
        if (nrec == 0) {
            /* a crash right after creating the segment: nothing of it is provable */
            log_warnx("audit: %s holds no complete record (%s); removing it", name,
                      t == 1 ? why : "empty");
            if (unlink(path) != 0) {
                log_warn("audit: cannot remove %s", path);
                return -1;
            }
            snprintf(detail, detlen, "removed segment %s without a complete record", name);
            continue;
        }
        if (t == 1) {
            log_warnx("audit: %s: %s; truncating to %zu bytes and continuing at seq %" PRIu64, name,
                      why, end, w->seq);
            if (truncate(path, (off_t)end) != 0) {
                log_warn("audit: cannot truncate %s", path);
                return -1;
            }
            snprintf(detail, detlen, "truncated torn tail of %s at offset %zu", name, end);
        }
        w->fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
        if (w->fd < 0) {
            log_warn("audit: cannot open %s", path);
            return -1;
        }
        w->seg_size = end;
        return 0;
    }
}

/* Take a reference to signkey (may be NULL) as the signing key. */
static int use_key(struct audit_writer *w, EVP_PKEY *signkey)
{
    uint8_t id[AUDIT_KEY_ID_LEN] = {0};
    if (signkey != NULL && (audit_key_id(signkey, id) != 0 || EVP_PKEY_up_ref(signkey) != 1))
        return -1;
    EVP_PKEY_free(w->key);
    w->key = signkey;
    memcpy(w->key_id, id, sizeof(id));
    return 0;
}

/* See audit.h. */
int audit_writer_set_key(struct audit_writer *w, EVP_PKEY *signkey)
{
    if (w->since_cp && audit_checkpoint(w, "key change") != 0)
        return -1;
    return use_key(w, signkey);
}

/* See audit.h. */
int audit_writer_open(const struct audit_writer_conf *c, EVP_PKEY *signkey,
                      struct audit_writer **out)
{
    struct audit_writer *w = calloc(1, sizeof(*w));
    char detail[300];

    *out = NULL;
    if (w == NULL)
        return -1;
    w->fd = -1;
    snprintf(w->dir, sizeof(w->dir), "%s", c->dir);
    w->segment_size = c->segment_size;
    w->checkpoint_interval_us = c->checkpoint_interval_us;
    w->sync = c->sync;
    w->cap = c->buffer_size ? c->buffer_size : DEFAULT_BUFFER;
    if (w->cap < 4 * (AUDIT_MAX_RECORD + 4))
        w->cap = 4 * (AUDIT_MAX_RECORD + 4);
    w->segment_size = seg_floor(w->segment_size);
    w->buf = malloc(w->cap);
    w->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    w->md = EVP_MD_CTX_new();
    if (w->buf == NULL || w->sha256 == NULL || w->md == NULL)
        goto fail;
    msgpack_packer_init(&w->pk, w, buf_write);
    if (use_key(w, signkey) != 0) {
        log_warnx("audit: the signing key is not usable");
        goto fail;
    }
    if (signkey == NULL)
        log_warnx("audit: no signing key: checkpoints in %s are not signed", w->dir);
    if (mkdir(w->dir, 0750) != 0 && errno != EEXIST) {
        log_warn("audit: cannot create %s", w->dir);
        goto fail;
    }
    if (recover(w, detail, sizeof(detail)) != 0)
        goto fail;
    w->last_cp_us = util_now_us();
    if (detail[0] != '\0' &&
        (audit_daemon(w, AUDIT_DAEMON_RECOVER, detail) != 0 || flush(w, true) != 0))
        goto fail;
    *out = w;
    return 0;
fail:
    audit_writer_abandon(w);
    return -1;
}

/* See audit.h. */
int audit_writer_reconfigure(struct audit_writer *w, const struct audit_writer_conf *c)
{
    if (strcmp(c->dir, w->dir) != 0) {
        log_warnx("audit: the audit directory cannot change on reload (%s -> %s); keeping %s",
                  w->dir, c->dir, w->dir);
        return -1;
    }
    w->segment_size = seg_floor(c->segment_size);
    w->checkpoint_interval_us = c->checkpoint_interval_us;
    w->sync = c->sync;
    return 0;
}

/* See audit.h. */
int audit_flush(struct audit_writer *w)
{
    return flush(w, false);
}

/* See audit.h. */
size_t audit_pending(const struct audit_writer *w)
{
    return w->len;
}

/* See audit.h. */
int audit_tick(struct audit_writer *w)
{
    if (w->since_cp && w->checkpoint_interval_us > 0 &&
        util_now_us() - w->last_cp_us >= w->checkpoint_interval_us)
        return audit_checkpoint(w, "interval");
    return 0;
}

/* See audit.h. */
uint64_t audit_next_seq(const struct audit_writer *w)
{
    return w->seq;
}

/* See audit.h. */
void audit_head(const struct audit_writer *w, uint8_t hash[AUDIT_HASH_LEN])
{
    memcpy(hash, w->head, AUDIT_HASH_LEN);
}

/* See audit.h. */
void audit_get_stats(const struct audit_writer *w, struct audit_stats *st)
{
    *st = w->st;
}

/* See audit.h. */
size_t audit_stats_prometheus(const struct audit_stats *st, char *buf, size_t cap)
{
    static const struct {
        const char *name, *help;
        size_t off;
    } m[] = {
#define M(field, name, help) {name, help, offsetof(struct audit_stats, field)}
        M(records, "cardgate_audit_records_total", "Audit records appended."),
        M(bytes, "cardgate_audit_bytes_total", "Audit bytes written."),
        M(writes, "cardgate_audit_writes_total", "Audit batches written (one write(2) each)."),
        M(syncs, "cardgate_audit_syncs_total", "fdatasync(2) calls on audit segments."),
        M(checkpoints, "cardgate_audit_checkpoints_total", "Audit checkpoints appended."),
        M(segments, "cardgate_audit_segments_total", "Audit segments created."),
        M(masked_fixups, "cardgate_audit_pan_fixups_total",
          "PAN fields not in masked form, written as ****."),
        M(write_errors, "cardgate_audit_write_errors_total",
          "Failed audit write(2) or fdatasync(2) calls."),
#undef M
    };
    size_t len = 0;
    for (size_t i = 0; i < UTIL_NELEM(m); i++) {
        uint64_t v;
        memcpy(&v, (const char *)st + m[i].off, sizeof(v));
        int n = snprintf(len < cap ? buf + len : NULL, len < cap ? cap - len : 0,
                         "# HELP %s %s\n# TYPE %s counter\n%s %" PRIu64 "\n", m[i].name, m[i].help,
                         m[i].name, m[i].name, v);
        if (n > 0)
            len += (size_t)n;
    }
    if (cap > 0 && len >= cap)
        buf[cap - 1] = '\0';
    return len;
}

/* See audit.h. */
int audit_writer_close(struct audit_writer *w)
{
    int rc = 0;
    if (audit_checkpoint(w, "shutdown") != 0)
        rc = -1;
    if (flush(w, true) != 0) /* what is buffered goes out even without the checkpoint */
        rc = -1;
    if (close(w->fd) != 0)
        rc = -1;
    w->fd = -1;
    audit_writer_abandon(w);
    return rc;
}

/* See audit.h. */
void audit_writer_abandon(struct audit_writer *w)
{
    if (w == NULL)
        return;
    if (w->fd >= 0)
        close(w->fd);
    EVP_PKEY_free(w->key);
    EVP_MD_CTX_free(w->md);
    EVP_MD_free(w->sha256);
    free(w->buf);
    free(w);
}

/* See audit.h. */
EVP_PKEY *audit_key_from_seed(const uint8_t *seed, size_t len, char *err, size_t errlen)
{
    EVP_PKEY *k = NULL;
    if (len != 32)
        snprintf(err, errlen, "an audit signing key is 32 bytes, not %zu", len);
    else if ((k = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, len)) == NULL)
        snprintf(err, errlen, "cannot make an Ed25519 key");
    return k;
}

/* See audit.h. */
EVP_PKEY *audit_signing_key(const struct keyset *ks, char *err, size_t errlen)
{
    const struct ks_key *k = keyset_latest(ks, KS_AUDIT_SIGN);
    if (k == NULL) {
        snprintf(err, errlen, "the key store holds no audit-sign key");
        return NULL;
    }
    return audit_key_from_seed(k->key, k->len, err, errlen);
}
