/*
 * audit_read.c - the audit log's reading side (see audit.h): record
 * parsing, segment listing, keys, and audit_walk(), the verifier that
 * `cardgatectl audit verify|dump|find` and the tests use.  The reader maps
 * each segment read-only and may allocate freely: it is not on a hot path.
 */
#include "daemon/audit.h"

#include "common/util.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const type_names[AUDIT_TYPE_MAX + 1] = {
    [AUDIT_SEGMENT] = "segment", [AUDIT_CHECKPOINT] = "checkpoint",
    [AUDIT_REQUEST] = "request", [AUDIT_ANSWER] = "answer",
    [AUDIT_LINK] = "link",       [AUDIT_RELOAD] = "reload",
    [AUDIT_KEY_CHANGE] = "key",  [AUDIT_OPERATOR] = "operator",
    [AUDIT_DAEMON] = "daemon",
};

/* See audit.h. */
const char *audit_type_name(int type)
{
    if (type < 1 || type > AUDIT_TYPE_MAX)
        return "?";
    return type_names[type];
}

/* See audit.h. */
int audit_type_parse(const char *name)
{
    for (int t = 1; t <= AUDIT_TYPE_MAX; t++)
        if (strcmp(name, type_names[t]) == 0)
            return t;
    return -1;
}

/* See audit.h: masking is the only way into a struct audit_pan. */
void audit_pan_mask(struct audit_pan *out, const char *pan, size_t len)
{
    pan_mask(pan, len, out->masked);
}

/* See audit.h. */
bool audit_rc_is_approval(const char *rc)
{
    static const char *const ok[] = {"00", "08", "10", "11", "85"};
    for (size_t i = 0; i < UTIL_NELEM(ok); i++)
        if (strcmp(rc, ok[i]) == 0)
            return true;
    return false;
}

/* See audit.h. */
void audit_segment_name(uint64_t first_seq, char out[AUDIT_SEG_NAME_LEN + 1])
{
    snprintf(out, AUDIT_SEG_NAME_LEN + 1, "%020" PRIu64 AUDIT_SEG_SUFFIX, first_seq);
}

/* The first sequence number a segment file name stands for; 0 when the name is not one. */
static uint64_t segment_seq(const char *name)
{
    uint64_t v = 0;
    if (strlen(name) != AUDIT_SEG_NAME_LEN || strcmp(name + 20, AUDIT_SEG_SUFFIX) != 0)
        return 0;
    for (int i = 0; i < 20; i++) {
        if (!isdigit((unsigned char)name[i]) || v > (UINT64_MAX - 9) / 10)
            return 0;
        v = v * 10 + (uint64_t)(name[i] - '0');
    }
    return v;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* See audit.h. */
long audit_list_segments(const char *dir, uint64_t **first_seqs)
{
    DIR *d = opendir(dir);
    uint64_t *v = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;

    *first_seqs = NULL;
    if (d == NULL)
        return -1;
    while ((de = readdir(d)) != NULL) {
        uint64_t s = segment_seq(de->d_name);
        if (s == 0)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            uint64_t *nv = realloc(v, cap * sizeof(*v));
            if (nv == NULL) {
                free(v);
                closedir(d);
                errno = ENOMEM;
                return -1;
            }
            v = nv;
        }
        v[n++] = s;
    }
    closedir(d);
    if (n > 0)
        qsort(v, n, sizeof(*v), cmp_u64);
    *first_seqs = v;
    return (long)n;
}

/* See audit.h. */
void audit_checkpoint_message(uint64_t seq, int64_t ts_us, const uint8_t chain[AUDIT_HASH_LEN],
                              uint8_t out[AUDIT_CP_MSG_LEN])
{
    size_t o = sizeof(AUDIT_SIGN_DOMAIN) - 1;
    memcpy(out, AUDIT_SIGN_DOMAIN, o);
    for (int i = 7; i >= 0; i--)
        out[o++] = (uint8_t)(seq >> (8 * i));
    for (int i = 7; i >= 0; i--)
        out[o++] = (uint8_t)((uint64_t)ts_us >> (8 * i));
    memcpy(out + o, chain, AUDIT_HASH_LEN);
}

/* See audit.h. */
int audit_key_id(EVP_PKEY *key, uint8_t id[AUDIT_KEY_ID_LEN])
{
    unsigned char *der = NULL;
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    int n = i2d_PUBKEY(key, &der);
    if (n <= 0)
        return -1;
    int ok = EVP_Digest(der, (size_t)n, md, &mdlen, EVP_sha256(), NULL);
    OPENSSL_free(der);
    if (!ok)
        return -1;
    memcpy(id, md, AUDIT_KEY_ID_LEN);
    return 0;
}

/* See audit.h. */
EVP_PKEY *audit_pubkey_load(const char *path, char *err, size_t errlen)
{
    size_t len = 0;
    char *text = util_read_file(path, 1 << 16, &len);
    EVP_PKEY *k = NULL;

    if (text == NULL) {
        snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
        return NULL;
    }
    if (strstr(text, "-----BEGIN PUBLIC KEY-----") != NULL) {
        BIO *b = BIO_new_mem_buf(text, (int)len);
        if (b != NULL)
            k = PEM_read_bio_PUBKEY(b, NULL, NULL, NULL);
        BIO_free(b);
        if (k == NULL)
            snprintf(err, errlen, "%s: not a readable PEM public key", path);
    } else {
        uint8_t raw[32];
        size_t n = len;
        while (n > 0 && isspace((unsigned char)text[n - 1]))
            text[--n] = '\0';
        if (n == 64 && util_hex_decode(text, raw, sizeof(raw)) == 32)
            k = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, raw, sizeof(raw));
        if (k == NULL)
            snprintf(err, errlen,
                     "%s: neither a PEM public key nor 64 hex digits of an Ed25519 key", path);
    }
    free(text);
    return k;
}

/* True when buf[off..len) holds only zero bytes (a preallocated, never written tail). */
static bool all_zero(const uint8_t *buf, size_t len, size_t off)
{
    for (size_t i = off; i < len; i++)
        if (buf[i] != 0)
            return false;
    return true;
}

/* See audit.h. */
enum audit_parse audit_rec_parse(const uint8_t *buf, size_t len, size_t off, msgpack_unpacked *u,
                                 struct audit_rec *r, size_t *used, char *why, size_t whylen)
{
    size_t left = len - off, plen, consumed = 0;
    const msgpack_object *a;

    if (left == 0)
        return AUDIT_PARSE_END;
    if (left < 4) {
        snprintf(why, whylen, "torn record: %zu bytes, shorter than a length prefix", left);
        return AUDIT_PARSE_TORN;
    }
    plen = (size_t)buf[off] << 24 | (size_t)buf[off + 1] << 16 | (size_t)buf[off + 2] << 8 |
           buf[off + 3];
    if (plen == 0 || plen > AUDIT_MAX_RECORD) {
        snprintf(why, whylen, "record length %zu out of range 1..%d", plen, AUDIT_MAX_RECORD);
        return all_zero(buf, len, off) ? AUDIT_PARSE_TORN : AUDIT_PARSE_BAD;
    }
    if (plen > left - 4) {
        snprintf(why, whylen, "torn record: length %zu but only %zu bytes follow", plen, left - 4);
        return AUDIT_PARSE_TORN;
    }
    const uint8_t *p = buf + off + 4;
    if (msgpack_unpack_next(u, (const char *)p, plen, &consumed) != MSGPACK_UNPACK_SUCCESS ||
        consumed != plen) {
        snprintf(why, whylen, "payload is not one msgpack object of %zu bytes", plen);
        return AUDIT_PARSE_BAD;
    }
    a = &u->data;
    if (a->type != MSGPACK_OBJECT_ARRAY || a->via.array.size != 5 ||
        a->via.array.ptr[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
        (a->via.array.ptr[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER &&
         a->via.array.ptr[1].type != MSGPACK_OBJECT_NEGATIVE_INTEGER) ||
        a->via.array.ptr[2].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
        a->via.array.ptr[3].type != MSGPACK_OBJECT_BIN ||
        a->via.array.ptr[3].via.bin.size != AUDIT_HASH_LEN ||
        a->via.array.ptr[4].type != MSGPACK_OBJECT_MAP) {
        snprintf(why, whylen, "payload is not [seq, ts, type, prev, fields]");
        return AUDIT_PARSE_BAD;
    }
    const msgpack_object_map *m = &a->via.array.ptr[4].via.map;
    for (uint32_t i = 0; i < m->size; i++)
        if (m->ptr[i].key.type != MSGPACK_OBJECT_STR) {
            snprintf(why, whylen, "field %u has a key that is not a string", i);
            return AUDIT_PARSE_BAD;
        }
    uint64_t type = a->via.array.ptr[2].via.u64;
    if (type < 1 || type > AUDIT_TYPE_MAX) {
        snprintf(why, whylen, "unknown record type %" PRIu64, type);
        return AUDIT_PARSE_BAD;
    }
    r->seq = a->via.array.ptr[0].via.u64;
    r->ts_us = a->via.array.ptr[1].via.i64;
    r->type = (int)type;
    memcpy(r->prev, a->via.array.ptr[3].via.bin.ptr, AUDIT_HASH_LEN);
    if (!EVP_Digest(p, plen, r->hash, NULL, EVP_sha256(), NULL)) {
        snprintf(why, whylen, "SHA-256 failed");
        return AUDIT_PARSE_BAD;
    }
    r->offset = off;
    r->len = plen;
    r->fields = &a->via.array.ptr[4];
    *used = 4 + plen;
    return AUDIT_PARSE_OK;
}

/* See audit.h. */
const msgpack_object *audit_rec_field(const struct audit_rec *r, const char *key)
{
    const msgpack_object_map *m = &r->fields->via.map;
    size_t kl = strlen(key);
    for (uint32_t i = 0; i < m->size; i++) {
        const msgpack_object_str *k = &m->ptr[i].key.via.str;
        if (k->size == kl && memcmp(k->ptr, key, kl) == 0)
            return &m->ptr[i].val;
    }
    return NULL;
}

/* See audit.h. */
bool audit_rec_str(const struct audit_rec *r, const char *key, char *out, size_t cap)
{
    const msgpack_object *o = audit_rec_field(r, key);
    if (o == NULL || o->type != MSGPACK_OBJECT_STR || cap == 0)
        return false;
    size_t n = o->via.str.size < cap - 1 ? o->via.str.size : cap - 1;
    memcpy(out, o->via.str.ptr, n);
    out[n] = '\0';
    return true;
}

/* Record the first problem in v; returns 1 (audit_walk's "bad" status). */
static int bad(struct audit_verify *v, const char *seg, uint64_t off, uint64_t seq, const char *fmt,
               ...) __attribute__((format(printf, 5, 6)));
static int bad(struct audit_verify *v, const char *seg, uint64_t off, uint64_t seq, const char *fmt,
               ...)
{
    va_list ap;
    snprintf(v->bad_segment, sizeof(v->bad_segment), "%s", seg);
    v->bad_offset = off;
    v->bad_seq = seq;
    va_start(ap, fmt);
    vsnprintf(v->what, sizeof(v->what), fmt, ap);
    va_end(ap);
    return 1;
}

/* Check a checkpoint record against the chain and, with a key, its signature. */
static int check_checkpoint(struct audit_verify *v, const struct audit_rec *r, const char *seg,
                            const uint8_t key_id[AUDIT_KEY_ID_LEN])
{
    const msgpack_object *upto = audit_rec_field(r, "upto");
    const msgpack_object *chain = audit_rec_field(r, "chain");
    const msgpack_object *key = audit_rec_field(r, "key");
    const msgpack_object *sig = audit_rec_field(r, "sig");
    uint8_t msg[AUDIT_CP_MSG_LEN];

    if (upto == NULL || upto->type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
        upto->via.u64 != r->seq - 1)
        return bad(v, seg, r->offset, r->seq, "checkpoint 'upto' is not seq - 1");
    if (chain == NULL || chain->type != MSGPACK_OBJECT_BIN ||
        chain->via.bin.size != AUDIT_HASH_LEN ||
        memcmp(chain->via.bin.ptr, r->prev, AUDIT_HASH_LEN) != 0)
        return bad(v, seg, r->offset, r->seq, "checkpoint 'chain' is not the chain hash");
    v->checkpoints++;
    v->last_checkpoint_seq = r->seq;
    if (v->pubkey == NULL)
        return 0;
    if (sig == NULL || sig->type != MSGPACK_OBJECT_BIN || sig->via.bin.size == 0)
        return bad(v, seg, r->offset, r->seq, "checkpoint is not signed");
    if (key == NULL || key->type != MSGPACK_OBJECT_BIN || key->via.bin.size != AUDIT_KEY_ID_LEN ||
        memcmp(key->via.bin.ptr, key_id, AUDIT_KEY_ID_LEN) != 0)
        return bad(v, seg, r->offset, r->seq, "checkpoint is signed by another key");
    audit_checkpoint_message(r->seq, r->ts_us, r->prev, msg);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx != NULL && EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, v->pubkey) == 1 &&
             EVP_DigestVerify(ctx, (const unsigned char *)sig->via.bin.ptr, sig->via.bin.size, msg,
                              sizeof(msg)) == 1;
    EVP_MD_CTX_free(ctx);
    if (!ok)
        return bad(v, seg, r->offset, r->seq, "checkpoint signature does not verify");
    v->signatures_ok++;
    return 0;
}

/* Map a whole file read-only; *len 0 and NULL for an empty file. */
static const uint8_t *map_file(const char *path, size_t *len, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    void *p;

    *len = 0;
    if (fd < 0 || fstat(fd, &st) != 0) {
        snprintf(err, errlen, "cannot open: %s", strerror(errno));
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    if (st.st_size == 0) {
        close(fd);
        snprintf(err, errlen, "empty segment");
        return NULL;
    }
    p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED) {
        snprintf(err, errlen, "cannot map: %s", strerror(errno));
        return NULL;
    }
    *len = (size_t)st.st_size;
    return p;
}

/* See audit.h. */
int audit_walk(const char *dir, struct audit_verify *v, audit_walk_fn fn, void *arg)
{
    uint64_t *segs = NULL;
    uint64_t expect = 1;
    uint8_t last[AUDIT_HASH_LEN] = {0};
    uint8_t key_id[AUDIT_KEY_ID_LEN] = {0};
    msgpack_unpacked u;
    int rc = 0;

    v->segments = 0;
    v->records = v->first_seq = v->last_seq = 0;
    v->checkpoints = v->signatures_ok = v->last_checkpoint_seq = 0;
    v->bad_segment[0] = v->what[0] = '\0';
    v->bad_offset = v->bad_seq = 0;
    memset(v->head, 0, sizeof(v->head));
    if (v->pubkey != NULL && audit_key_id(v->pubkey, key_id) != 0) {
        snprintf(v->what, sizeof(v->what), "cannot compute the public key's id");
        return -1;
    }
    long n = audit_list_segments(dir, &segs);
    if (n < 0) {
        snprintf(v->what, sizeof(v->what), "%s: %s", dir, strerror(errno));
        return -1;
    }
    if (n == 0) {
        snprintf(v->what, sizeof(v->what), "%s: no audit segments", dir);
        return -1;
    }
    msgpack_unpacked_init(&u);
    for (long i = 0; i < n && rc == 0; i++) {
        char name[AUDIT_SEG_NAME_LEN + 1], path[4096 + 64], err[128];
        size_t len = 0, off = 0;
        audit_segment_name(segs[i], name);
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        if (segs[i] != expect) {
            rc = segs[i] > expect
                     ? bad(v, name, 0, expect,
                           "records %" PRIu64 "..%" PRIu64 " are missing (a segment was removed?)",
                           expect, segs[i] - 1)
                     : bad(v, name, 0, segs[i],
                           "segment overlaps the previous one (expected seq %" PRIu64 ")", expect);
            break;
        }
        const uint8_t *buf = map_file(path, &len, err, sizeof(err));
        if (buf == NULL) {
            rc = bad(v, name, 0, expect, "%s", err);
            break;
        }
        v->segments++;
        for (;;) {
            struct audit_rec r;
            size_t used = 0;
            char why[160];
            enum audit_parse pr = audit_rec_parse(buf, len, off, &u, &r, &used, why, sizeof(why));
            if (pr == AUDIT_PARSE_END)
                break;
            if (pr != AUDIT_PARSE_OK) {
                rc = bad(v, name, off, expect, "%s", why);
                break;
            }
            r.segment = name;
            if (r.seq != expect) {
                rc = bad(v, name, off, r.seq,
                         "sequence %" PRIu64 " where %" PRIu64
                         " was expected (record removed or reordered)",
                         r.seq, expect);
                break;
            }
            if (memcmp(r.prev, last, AUDIT_HASH_LEN) != 0) {
                rc = bad(v, name, off, r.seq,
                         "hash chain broken: prev does not match record %" PRIu64
                         " (altered or replaced)",
                         r.seq - 1);
                break;
            }
            if ((off == 0) != (r.type == AUDIT_SEGMENT)) {
                rc = bad(v, name, off, r.seq,
                         off == 0 ? "segment does not start with a segment header"
                                  : "segment header in the middle of a segment");
                break;
            }
            if (r.type == AUDIT_CHECKPOINT && (rc = check_checkpoint(v, &r, name, key_id)) != 0)
                break;
            if (v->records == 0)
                v->first_seq = r.seq;
            v->records++;
            v->last_seq = r.seq;
            memcpy(last, r.hash, AUDIT_HASH_LEN);
            memcpy(v->head, r.hash, AUDIT_HASH_LEN);
            expect = r.seq + 1;
            off += used;
            if (fn != NULL && (rc = fn(&r, arg)) != 0)
                break;
        }
        munmap((void *)buf, len);
    }
    msgpack_unpacked_destroy(&u);
    free(segs);
    return rc;
}
