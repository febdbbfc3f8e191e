/*
 * standin.c - the stand-in journal and the per-card limit cache (see
 * standin.h for the format and the contracts).
 */
#include "daemon/standin.h"

#include "common/log.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define SJ_MAGIC       "CGSJ"
#define SJ_HDR         8 /* magic + length */
#define SJ_TRAILER     4 /* CRC */
#define SJ_MAX_PAYLOAD 1024
#define SJ_APPROVE     1
#define SJ_DONE        2

struct standin_journal {
    char path[4096];
    int fd, lock_fd;
    bool dirty; /* written since the last sync */
    off_t end;  /* bytes of whole records in the file */
    uint64_t next_seq;
    struct standin_rec *pend;
    size_t npend, max_pending;
    size_t nrecords; /* in the file */
    size_t torn;
};

/* ---- CRC-32 ----------------------------------------------------------- */

uint32_t standin_crc32(const void *data, size_t len)
{
    const uint8_t *p = data;
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < len; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
    }
    return c ^ 0xffffffffu;
}

/* ---- record encoding ---------------------------------------------------- */

struct sj_buf {
    uint8_t b[SJ_HDR + SJ_MAX_PAYLOAD + SJ_TRAILER];
    size_t n;
};

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put_u64(struct sj_buf *w, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        w->b[w->n++] = (uint8_t)(v >> (8 * i));
}

static void put_str(struct sj_buf *w, const char *s, size_t cap)
{
    size_t n = strnlen(s, cap - 1);
    w->b[w->n++] = (uint8_t)n;
    memcpy(w->b + w->n, s, n);
    w->n += n;
}

/* The string fields of a record, in their order on disk. */
#define REC_STRINGS(X, r)                                                                          \
    X(r->mti, sizeof(r->mti))                                                                      \
    X(r->appr, sizeof(r->appr))                                                                    \
    X(r->pan_hash, sizeof(r->pan_hash))                                                            \
    X(r->acquirer, sizeof(r->acquirer))                                                            \
    X(r->stan, sizeof(r->stan))                                                                    \
    X(r->rrn, sizeof(r->rrn))                                                                      \
    X(r->xmit, sizeof(r->xmit))                                                                    \
    X(r->local_at, sizeof(r->local_at))                                                            \
    X(r->terminal, sizeof(r->terminal))                                                            \
    X(r->merchant, sizeof(r->merchant))                                                            \
    X(r->merchant_name, sizeof(r->merchant_name))                                                  \
    X(r->mcc, sizeof(r->mcc))                                                                      \
    X(r->country, sizeof(r->country))                                                              \
    X(r->txn_cur, sizeof(r->txn_cur))                                                              \
    X(r->bill_cur, sizeof(r->bill_cur))                                                            \
    X(r->channel, sizeof(r->channel))

/* Encode one record (rec NULL for DONE) into w. */
static void encode(struct sj_buf *w, uint8_t type, uint64_t seq, const struct standin_rec *r)
{
    w->n = SJ_HDR;
    w->b[w->n++] = type;
    put_u64(w, seq);
    if (r != NULL) {
        put_u64(w, (uint64_t)r->amount);
        put_u64(w, (uint64_t)r->txn_amount);
        put_u64(w, (uint64_t)r->bill_amount);
        put_u64(w, (uint64_t)r->deadline_wall_us);
#define PUT(f, cap) put_str(w, f, cap);
        REC_STRINGS(PUT, r)
#undef PUT
    }
    size_t len = w->n - SJ_HDR;
    memcpy(w->b, SJ_MAGIC, 4);
    put_u32(w->b + 4, (uint32_t)len);
    put_u32(w->b + w->n, standin_crc32(w->b + SJ_HDR, len));
    w->n += SJ_TRAILER;
}

struct sj_rd {
    const uint8_t *p;
    size_t n, off;
    bool bad;
};

static uint64_t rd_u64(struct sj_rd *r)
{
    uint64_t v = 0;
    if (r->off + 8 > r->n) {
        r->bad = true;
        return 0;
    }
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)r->p[r->off + i] << (8 * i);
    r->off += 8;
    return v;
}

static void rd_str(struct sj_rd *r, char *dst, size_t cap)
{
    dst[0] = '\0';
    if (r->off + 1 > r->n) {
        r->bad = true;
        return;
    }
    size_t len = r->p[r->off++];
    if (len > cap - 1 || r->off + len > r->n) {
        r->bad = true;
        return;
    }
    memcpy(dst, r->p + r->off, len);
    dst[len] = '\0';
    r->off += len;
}

/* Decode a payload (CRC checked already).  0, or -1 when malformed. */
static int decode(const uint8_t *p, size_t n, uint8_t *type, uint64_t *seq, struct standin_rec *r)
{
    struct sj_rd rd = {p, n, 1, false};
    if (n < 9)
        return -1;
    *type = p[0];
    *seq = rd_u64(&rd);
    if (*type == SJ_DONE)
        return rd.off == n ? 0 : -1;
    if (*type != SJ_APPROVE)
        return -1;
    memset(r, 0, sizeof(*r));
    r->seq = *seq;
    r->amount = (int64_t)rd_u64(&rd);
    r->txn_amount = (int64_t)rd_u64(&rd);
    r->bill_amount = (int64_t)rd_u64(&rd);
    r->deadline_wall_us = (int64_t)rd_u64(&rd);
#define GET(f, cap) rd_str(&rd, f, cap);
    REC_STRINGS(GET, r)
#undef GET
    return rd.bad || rd.off != n || r->amount <= 0 ? -1 : 0;
}

/*
 * Parse the record at buf[off..len): its total size, or 0 when it is not a
 * complete valid record there.
 */
static size_t parse_at(const uint8_t *buf, size_t len, size_t off, uint8_t *type, uint64_t *seq,
                       struct standin_rec *r)
{
    if (len - off < SJ_HDR + SJ_TRAILER || memcmp(buf + off, SJ_MAGIC, 4) != 0)
        return 0;
    size_t plen = get_u32(buf + off + 4);
    if (plen > SJ_MAX_PAYLOAD || len - off - SJ_HDR - SJ_TRAILER < plen)
        return 0;
    const uint8_t *pl = buf + off + SJ_HDR;
    if (standin_crc32(pl, plen) != get_u32(pl + plen))
        return 0;
    if (decode(pl, plen, type, seq, r) != 0)
        return 0;
    return SJ_HDR + plen + SJ_TRAILER;
}

/* ---- journal ------------------------------------------------------------ */

static int write_all(int fd, const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n > 0) {
        ssize_t w = write(fd, b, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

/*
 * Append one encoded record.  A failed or short write is cut off again, so
 * that no torn record is left before the next one (which would make the
 * file unreadable past it at the next replay).
 */
static int append_record(struct standin_journal *j, const struct sj_buf *w)
{
    if (write_all(j->fd, w->b, w->n) != 0) {
        log_warn("standin journal %s: write failed", j->path);
        if (ftruncate(j->fd, j->end) != 0)
            log_warn("standin journal %s: cannot cut off a failed write", j->path);
        return -1;
    }
    j->end += (off_t)w->n;
    j->dirty = true;
    j->nrecords++;
    return 0;
}

static ssize_t find_pending(const struct standin_journal *j, uint64_t seq)
{
    for (size_t i = 0; i < j->npend; i++)
        if (j->pend[i].seq == seq)
            return (ssize_t)i;
    return -1;
}

static void drop_pending(struct standin_journal *j, size_t i)
{
    memmove(&j->pend[i], &j->pend[i + 1], (j->npend - i - 1) * sizeof(j->pend[0]));
    j->npend--;
}

/* Replay buf[0..len): pending records, next seq; *good: bytes of valid records. */
static int replay(struct standin_journal *j, const uint8_t *buf, size_t len, size_t *good,
                  char *err, size_t errlen)
{
    size_t off = 0;
    struct standin_rec r;
    uint8_t type;
    uint64_t seq;

    while (off < len) {
        size_t n = parse_at(buf, len, off, &type, &seq, &r);
        if (n == 0) {
            /* torn tail, unless a valid record follows somewhere */
            for (size_t k = off + 1; k + SJ_HDR <= len; k++) {
                if (memcmp(buf + k, SJ_MAGIC, 4) == 0 && parse_at(buf, len, k, &type, &seq, &r)) {
                    snprintf(err, errlen,
                             "%s: corrupt record at offset %zu followed by valid ones"
                             " (at %zu): not replayed; move the file aside after checking it",
                             j->path, off, k);
                    return -1;
                }
            }
            break;
        }
        j->nrecords++;
        if (seq >= j->next_seq)
            j->next_seq = seq + 1;
        if (type == SJ_APPROVE) {
            if (j->npend == j->max_pending) {
                snprintf(err, errlen, "%s: more than max_pending (%zu) unsettled approvals",
                         j->path, j->max_pending);
                return -1;
            }
            j->pend[j->npend++] = r;
        } else {
            ssize_t i = find_pending(j, seq);
            if (i >= 0)
                drop_pending(j, (size_t)i);
        }
        off += n;
    }
    *good = off;
    return 0;
}

int sj_open(const char *path, size_t max_pending, struct standin_journal **out, char *err,
            size_t errlen)
{
    struct standin_journal *j = calloc(1, sizeof(*j));
    char lockpath[4200];
    uint8_t *buf = NULL;
    struct stat st;

    *out = NULL;
    if (j == NULL || max_pending == 0 || strlen(path) >= sizeof(j->path)) {
        snprintf(err, errlen, "%s: cannot open the journal (path or memory)", path);
        free(j);
        return -1;
    }
    snprintf(j->path, sizeof(j->path), "%s", path);
    j->fd = j->lock_fd = -1;
    j->next_seq = 1;
    j->max_pending = max_pending;
    j->pend = calloc(max_pending, sizeof(*j->pend));
    if (j->pend == NULL) {
        snprintf(err, errlen, "%s: out of memory for %zu pending records", path, max_pending);
        goto fail;
    }
    snprintf(lockpath, sizeof(lockpath), "%s.lock", path);
    j->lock_fd = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (j->lock_fd < 0) {
        snprintf(err, errlen, "%s: %s", lockpath, strerror(errno));
        goto fail;
    }
    if (flock(j->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        snprintf(err, errlen,
                 errno == EWOULDBLOCK ? "%s: the journal is in use by another process (lock %s)"
                                      : "%s: cannot lock %s",
                 path, lockpath);
        goto fail;
    }
    j->fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (j->fd < 0 || fstat(j->fd, &st) != 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        goto fail;
    }
    size_t len = (size_t)st.st_size, good = 0;
    if (len > 0) {
        buf = malloc(len);
        if (buf == NULL || pread(j->fd, buf, len, 0) != (ssize_t)len) {
            snprintf(err, errlen, "%s: cannot read %zu bytes", path, len);
            goto fail;
        }
        if (replay(j, buf, len, &good, err, errlen) != 0)
            goto fail;
        j->end = (off_t)good;
        if (good < len) {
            j->torn = 1;
            log_warnx("standin journal %s: torn last record (%zu bytes at offset %zu) cut off",
                      path, len - good, good);
            if (ftruncate(j->fd, (off_t)good) != 0 || fdatasync(j->fd) != 0) {
                snprintf(err, errlen, "%s: cannot cut off the torn record: %s", path,
                         strerror(errno));
                goto fail;
            }
        }
    }
    free(buf);
    *out = j;
    return 0;
fail:
    free(buf);
    sj_close(j);
    return -1;
}

void sj_close(struct standin_journal *j)
{
    if (j == NULL)
        return;
    if (j->fd >= 0)
        close(j->fd);
    if (j->lock_fd >= 0)
        close(j->lock_fd); /* releases the flock */
    free(j->pend);
    free(j);
}

int sj_append(struct standin_journal *j, struct standin_rec *rec)
{
    struct sj_buf w;

    if (j->npend == j->max_pending || rec->amount <= 0)
        return -1;
    rec->seq = j->next_seq;
    encode(&w, SJ_APPROVE, rec->seq, rec);
    if (append_record(j, &w) != 0)
        return -1;
    j->next_seq++;
    j->pend[j->npend++] = *rec;
    return 0;
}

int sj_sync(struct standin_journal *j)
{
    if (!j->dirty)
        return 0;
    if (fdatasync(j->fd) != 0) {
        log_warn("standin journal %s: fdatasync failed", j->path);
        return -1;
    }
    j->dirty = false;
    return 0;
}

int sj_done(struct standin_journal *j, uint64_t seq)
{
    struct sj_buf w;
    ssize_t i = find_pending(j, seq);

    if (i < 0)
        return 1;
    encode(&w, SJ_DONE, seq, NULL);
    if (append_record(j, &w) != 0)
        return -1;
    drop_pending(j, (size_t)i);
    return 0;
}

/* fsync the directory holding path (after a rename). */
int sj_compact(struct standin_journal *j)
{
    char tmp[4200];
    struct sj_buf w;
    int fd;

    if (j->npend == 0) {
        if (ftruncate(j->fd, 0) != 0) {
            log_warn("standin journal %s: truncate failed", j->path);
            return -1;
        }
        j->nrecords = 0;
        j->end = 0; /* the file is empty now, synced or not */
        if (fdatasync(j->fd) != 0) {
            log_warn("standin journal %s: truncate not synced", j->path);
            return -1;
        }
        j->dirty = false;
        return 0;
    }
    snprintf(tmp, sizeof(tmp), "%s.tmp", j->path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) {
        log_warn("standin journal: cannot create %s", tmp);
        return -1;
    }
    off_t end = 0;
    for (size_t i = 0; i < j->npend; i++) {
        encode(&w, SJ_APPROVE, j->pend[i].seq, &j->pend[i]);
        if (write_all(fd, w.b, w.n) != 0)
            goto fail;
        end += (off_t)w.n;
    }
    if (fdatasync(fd) != 0 || rename(tmp, j->path) != 0)
        goto fail;
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s", j->path);
    if (util_fsync_dir(dirname(dir)) != 0)
        log_warn("standin journal: cannot sync the directory of %s", j->path);
    close(j->fd);
    j->fd = fd;
    j->end = end;
    j->nrecords = j->npend;
    j->dirty = false;
    return 0;
fail:
    log_warn("standin journal: cannot write %s", tmp);
    close(fd);
    unlink(tmp);
    return -1;
}

size_t sj_npending(const struct standin_journal *j)
{
    return j->npend;
}

const struct standin_rec *sj_pending(const struct standin_journal *j, size_t i)
{
    return i < j->npend ? &j->pend[i] : NULL;
}

const struct standin_rec *sj_find(const struct standin_journal *j, uint64_t seq)
{
    ssize_t i = find_pending(j, seq);
    return i < 0 ? NULL : &j->pend[i];
}

const char *sj_path(const struct standin_journal *j)
{
    return j->path;
}

size_t sj_nrecords(const struct standin_journal *j)
{
    return j->nrecords;
}

size_t sj_torn(const struct standin_journal *j)
{
    return j->torn;
}

/* ---- limit cache -------------------------------------------------------- */

struct standin_card {
    char pan_hash[PAN_HASH_HEX];
    char expiry[5]; /* the card's YYMM */
    int64_t limit, used;
};

struct standin_cache {
    struct standin_card *cur, *next;
    size_t ncur, nnext, capnext, max_cards;
    bool loaded;
};

struct standin_cache *standin_cache_new(size_t max_cards)
{
    struct standin_cache *c = calloc(1, sizeof(*c));
    if (c != NULL)
        c->max_cards = max_cards;
    return c;
}

void standin_cache_free(struct standin_cache *c)
{
    if (c == NULL)
        return;
    free(c->cur);
    free(c->next);
    free(c);
}

void standin_cache_begin(struct standin_cache *c)
{
    c->nnext = 0;
}

/* Four digits, a month 01..12. */
static bool yymm_ok(const char *s)
{
    return strlen(s) == 4 && strspn(s, "0123456789") == 4 && memcmp(s + 2, "01", 2) >= 0 &&
           memcmp(s + 2, "12", 2) <= 0;
}

int standin_cache_add(struct standin_cache *c, const char *pan_hash, int64_t limit,
                      const char *expiry)
{
    if (strlen(pan_hash) != PAN_HASH_HEX - 1 || limit < 0 || !yymm_ok(expiry))
        return -1;
    if (c->nnext == c->max_cards)
        return 1;
    if (c->nnext == c->capnext) {
        size_t cap = c->capnext ? c->capnext * 2 : 256;
        if (cap > c->max_cards)
            cap = c->max_cards;
        struct standin_card *n = realloc(c->next, cap * sizeof(*n));
        if (n == NULL)
            return -1;
        c->next = n;
        c->capnext = cap;
    }
    struct standin_card *e = &c->next[c->nnext++];
    memcpy(e->pan_hash, pan_hash, PAN_HASH_HEX);
    memcpy(e->expiry, expiry, 5);
    e->limit = limit;
    e->used = 0;
    return 0;
}

static int card_cmp(const void *a, const void *b)
{
    return strcmp(((const struct standin_card *)a)->pan_hash,
                  ((const struct standin_card *)b)->pan_hash);
}

static struct standin_card *find_card(const struct standin_cache *c, const char *pan_hash)
{
    struct standin_card key = {.limit = 0};
    if (c->ncur == 0 || strlen(pan_hash) != PAN_HASH_HEX - 1)
        return NULL;
    memcpy(key.pan_hash, pan_hash, PAN_HASH_HEX);
    return bsearch(&key, c->cur, c->ncur, sizeof(*c->cur), card_cmp);
}

void standin_cache_commit(struct standin_cache *c, const struct standin_journal *j)
{
    struct standin_card *t = c->cur;
    size_t tc = c->ncur;

    if (c->nnext > 1)
        qsort(c->next, c->nnext, sizeof(*c->next), card_cmp);
    c->cur = c->next;
    c->ncur = c->nnext;
    c->next = t;
    c->capnext = tc; /* the old array is reused for the next pass (at least tc entries) */
    c->nnext = 0;
    c->loaded = true;
    for (size_t i = 0; j != NULL && i < sj_npending(j); i++) {
        const struct standin_rec *r = sj_pending(j, i);
        struct standin_card *e = find_card(c, r->pan_hash);
        if (e != NULL)
            e->used += r->amount;
    }
}

bool standin_cache_loaded(const struct standin_cache *c)
{
    return c->loaded;
}

size_t standin_cache_size(const struct standin_cache *c)
{
    return c->ncur;
}

bool standin_cache_expiry_ok(const struct standin_cache *c, const char *pan_hash,
                             const char *req_expiry, const char *now_yymm)
{
    const struct standin_card *e = find_card(c, pan_hash);
    if (e == NULL || strcmp(e->expiry, now_yymm) < 0)
        return false;
    return req_expiry == NULL || req_expiry[0] == '\0' || strcmp(req_expiry, e->expiry) == 0;
}

int standin_cache_take(struct standin_cache *c, const char *pan_hash, int64_t amount)
{
    struct standin_card *e = find_card(c, pan_hash);
    if (e == NULL)
        return -1;
    if (amount <= 0 || e->used > e->limit || amount > e->limit - e->used)
        return -2;
    e->used += amount;
    return 0;
}

void standin_cache_give(struct standin_cache *c, const char *pan_hash, int64_t amount)
{
    struct standin_card *e = find_card(c, pan_hash);
    if (e == NULL)
        return;
    e->used = amount >= e->used ? 0 : e->used - amount;
}

int64_t standin_cache_remaining(const struct standin_cache *c, const char *pan_hash)
{
    const struct standin_card *e = find_card(c, pan_hash);
    if (e == NULL)
        return -1;
    return e->used >= e->limit ? 0 : e->limit - e->used;
}
