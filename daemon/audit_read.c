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
size_t audit_checkpoint_message(uint64_t seq, int64_t ts_us, const uint8_t chain[AUDIT_HASH_LEN],
                                const char *why, size_t whylen, uint8_t out[AUDIT_CP_MSG_MAX])
{
    size_t o = sizeof(AUDIT_SIGN_DOMAIN) - 1;
    memcpy(out, AUDIT_SIGN_DOMAIN, o);
    for (int i = 7; i >= 0; i--)
        out[o++] = (uint8_t)(seq >> (8 * i));
    for (int i = 7; i >= 0; i--)
        out[o++] = (uint8_t)((uint64_t)ts_us >> (8 * i));
    memcpy(out + o, chain, AUDIT_HASH_LEN);
    o += AUDIT_HASH_LEN;
    if (whylen > AUDIT_CP_WHY_MAX)
        whylen = AUDIT_CP_WHY_MAX;
    out[o++] = (uint8_t)whylen;
    memcpy(out + o, why, whylen);
    return o + whylen;
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

/* Big-endian unsigned integer of w bytes. */
static uint64_t be(const uint8_t *p, unsigned w)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < w; i++)
        v = v << 8 | p[i];
    return v;
}

/*
 * True when p[0..n) is exactly one msgpack object whose every declared
 * length and element count fits in the bytes that are there.  msgpack-c
 * allocates for a container's declared count before it looks at the data,
 * so a damaged or hostile header ("map of 2^31 entries") must be stopped
 * here: after this check its allocation is bounded by n.
 */
static bool mp_sane(const uint8_t *p, size_t n)
{
    uint64_t items = 1; /* objects still to read */
    size_t pos = 0;

    while (items > 0) {
        if (pos >= n)
            return false;
        uint8_t b = p[pos++];
        unsigned w = 0;    /* bytes of length/count after the tag */
        uint64_t skip = 0; /* fixed payload bytes */
        int kind = 0;      /* 0 scalar, 1 array, 2 map, 3 str/bin, 4 ext (+1 type byte) */
        items--;
        if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3)
            continue;
        if (b >= 0x80 && b <= 0x8f) {
            kind = 2;
            skip = b & 0x0f;
        } else if (b >= 0x90 && b <= 0x9f) {
            kind = 1;
            skip = b & 0x0f;
        } else if (b >= 0xa0 && b <= 0xbf) {
            kind = 3;
            skip = b & 0x1f;
        } else {
            switch (b) {
            case 0xc4:
            case 0xd9:
                kind = 3;
                w = 1;
                break;
            case 0xc5:
            case 0xda:
                kind = 3;
                w = 2;
                break;
            case 0xc6:
            case 0xdb:
                kind = 3;
                w = 4;
                break;
            case 0xc7:
                kind = 4;
                w = 1;
                break;
            case 0xc8:
                kind = 4;
                w = 2;
                break;
            case 0xc9:
                kind = 4;
                w = 4;
                break;
            case 0xca:
            case 0xce:
            case 0xd2:
                skip = 4;
                break;
            case 0xcb:
            case 0xcf:
            case 0xd3:
                skip = 8;
                break;
            case 0xcc:
            case 0xd0:
                skip = 1;
                break;
            case 0xcd:
            case 0xd1:
                skip = 2;
                break;
            case 0xd4:
                skip = 2;
                break;
            case 0xd5:
                skip = 3;
                break;
            case 0xd6:
                skip = 5;
                break;
            case 0xd7:
                skip = 9;
                break;
            case 0xd8:
                skip = 17;
                break;
            case 0xdc:
                kind = 1;
                w = 2;
                break;
            case 0xdd:
                kind = 1;
                w = 4;
                break;
            case 0xde:
                kind = 2;
                w = 2;
                break;
            case 0xdf:
                kind = 2;
                w = 4;
                break;
            default:
                return false; /* 0xc1: never used */
            }
        }
        if (w > 0) {
            if (w > n - pos)
                return false;
            skip = be(p + pos, w);
            pos += w;
        }
        if (kind == 1 || kind == 2) {
            items += kind == 2 ? 2 * skip : skip;
            if (items > n - pos) /* every object takes at least one byte */
                return false;
            continue;
        }
        if (kind == 4)
            skip++; /* the ext type byte */
        if (skip > n - pos)
            return false;
        pos += (size_t)skip;
    }
    return pos == n;
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
    if (!mp_sane(p, plen) ||
        msgpack_unpack_next(u, (const char *)p, plen, &consumed) != MSGPACK_UNPACK_SUCCESS ||
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

/* The field names each record type may carry (NULL-terminated lists). */
static const char *const *const type_fields[AUDIT_TYPE_MAX + 1] = {
    [AUDIT_SEGMENT] = (const char *const[]){"v", NULL},
    [AUDIT_CHECKPOINT] = (const char *const[]){"upto", "chain", "why", "key", "sig", NULL},
    [AUDIT_REQUEST] =
        (const char *const[]){"mti", "pan", "stan", "rrn", "acquirer", "terminal", "merchant",
                              "mcc", "amount", "currency", "link", "standin", NULL},
    [AUDIT_ANSWER] =
        (const char *const[]){"mti", "pan", "stan", "rrn", "acquirer", "terminal", "merchant",
                              "mcc", "amount", "currency", "rc", "approval", "rule", "policy",
                              "latency_us", "link", "standin", NULL},
    [AUDIT_LINK] = (const char *const[]){"event", "link", "peer", "reason", NULL},
    [AUDIT_RELOAD] = (const char *const[]){"result", "reason", NULL},
    [AUDIT_KEY_CHANGE] = (const char *const[]){"key", "kcv", NULL},
    [AUDIT_OPERATOR] = (const char *const[]){"who", "action", "detail", NULL},
    [AUDIT_DAEMON] = (const char *const[]){"event", "pid", "detail", NULL},
};

/*
 * Every field name of r belongs to its type, none twice.  Returns NULL or a
 * static description of the first offence (the name is copied into name).
 */
static const char *check_fields(const struct audit_rec *r, char *name, size_t cap)
{
    const msgpack_object_map *m = &r->fields->via.map;
    for (uint32_t i = 0; i < m->size; i++) {
        const msgpack_object_str *k = &m->ptr[i].key.via.str;
        const char *const *f = type_fields[r->type];
        snprintf(name, cap, "%.*s", (int)(k->size < 40 ? k->size : 40), k->ptr);
        for (; *f != NULL; f++)
            if (strlen(*f) == k->size && memcmp(*f, k->ptr, k->size) == 0)
                break;
        if (*f == NULL)
            return "is not a field of this record type";
        for (uint32_t j = 0; j < i; j++)
            if (m->ptr[j].key.via.str.size == k->size &&
                memcmp(m->ptr[j].key.via.str.ptr, k->ptr, k->size) == 0)
                return "appears twice";
    }
    return NULL;
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
                            const uint8_t key_ids[][AUDIT_KEY_ID_LEN])
{
    const msgpack_object *upto = audit_rec_field(r, "upto");
    const msgpack_object *chain = audit_rec_field(r, "chain");
    const msgpack_object *key = audit_rec_field(r, "key");
    const msgpack_object *sig = audit_rec_field(r, "sig");
    const msgpack_object *why = audit_rec_field(r, "why");
    uint8_t msg[AUDIT_CP_MSG_MAX];

    if (upto == NULL || upto->type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
        upto->via.u64 != r->seq - 1)
        return bad(v, seg, r->offset, r->seq, "checkpoint 'upto' is not seq - 1");
    if (chain == NULL || chain->type != MSGPACK_OBJECT_BIN ||
        chain->via.bin.size != AUDIT_HASH_LEN ||
        memcmp(chain->via.bin.ptr, r->prev, AUDIT_HASH_LEN) != 0)
        return bad(v, seg, r->offset, r->seq, "checkpoint 'chain' is not the chain hash");
    if (why == NULL || why->type != MSGPACK_OBJECT_STR || why->via.str.size > AUDIT_CP_WHY_MAX)
        return bad(v, seg, r->offset, r->seq, "checkpoint 'why' is missing or malformed");
    v->checkpoints++;
    v->last_checkpoint_seq = r->seq;
    if (v->npubkeys == 0)
        return 0;
    if (sig == NULL || sig->type != MSGPACK_OBJECT_BIN || sig->via.bin.size == 0)
        return bad(v, seg, r->offset, r->seq, "checkpoint is not signed");
    unsigned k = v->npubkeys;
    if (key != NULL && key->type == MSGPACK_OBJECT_BIN && key->via.bin.size == AUDIT_KEY_ID_LEN)
        for (k = 0; k < v->npubkeys; k++)
            if (memcmp(key->via.bin.ptr, key_ids[k], AUDIT_KEY_ID_LEN) == 0)
                break;
    if (k == v->npubkeys)
        return bad(v, seg, r->offset, r->seq, "checkpoint is signed by another key");
    size_t mlen = audit_checkpoint_message(r->seq, r->ts_us, r->prev, why->via.str.ptr,
                                           why->via.str.size, msg);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx != NULL && EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, v->pubkeys[k]) == 1 &&
             EVP_DigestVerify(ctx, (const unsigned char *)sig->via.bin.ptr, sig->via.bin.size, msg,
                              mlen) == 1;
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
    uint8_t key_ids[AUDIT_MAX_PUBKEYS][AUDIT_KEY_ID_LEN];
    msgpack_unpacked u;
    int rc = 0;

    v->segments = 0;
    v->records = v->first_seq = v->last_seq = 0;
    v->checkpoints = v->signatures_ok = v->last_checkpoint_seq = 0;
    v->bad_segment[0] = v->what[0] = '\0';
    v->bad_offset = v->bad_seq = 0;
    memset(v->head, 0, sizeof(v->head));
    if (v->npubkeys > AUDIT_MAX_PUBKEYS) {
        snprintf(v->what, sizeof(v->what), "more than %d public keys", AUDIT_MAX_PUBKEYS);
        return -1;
    }
    for (unsigned k = 0; k < v->npubkeys; k++)
        if (audit_key_id(v->pubkeys[k], key_ids[k]) != 0) {
            snprintf(v->what, sizeof(v->what), "cannot compute the id of public key %u", k + 1);
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
            char fname[48];
            const char *ferr = check_fields(&r, fname, sizeof(fname));
            if (ferr != NULL) {
                rc = bad(v, name, off, r.seq, "%s record: field '%s' %s", audit_type_name(r.type),
                         fname, ferr);
                break;
            }
            if (r.type == AUDIT_CHECKPOINT && (rc = check_checkpoint(v, &r, name, key_ids)) != 0)
                break;
            if (v->records == 0)
                v->first_seq = r.seq;
            v->records++;
            v->last_seq = r.seq;
            memcpy(last, r.hash, AUDIT_HASH_LEN);
            memcpy(v->head, r.hash, AUDIT_HASH_LEN);
            expect = r.seq + 1;
            off += used;
            if (fn != NULL && fn(&r, arg) != 0) {
                rc = 2;
                break;
            }
        }
        munmap((void *)buf, len);
    }
    msgpack_unpacked_destroy(&u);
    free(segs);
    return rc;
}
