/*
 * iso8583.c - message views, decode, encode, value checks, required fields.
 *
 * Decode walks the bitmap with count-trailing-zeros, so the cost is per
 * present field.  Every read is preceded by a bounds check against the
 * remaining input; nothing trusts a length it has not compared with what is
 * left.  Errors never quote a field's content (only a single offending
 * character that by definition is not a digit of a PAN).
 */
#include "iso8583/internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* character classes of the logical form */
enum { CC_DIGIT = 1, CC_AN = 2, CC_ANS = 4, CC_Z = 8 };

static uint8_t cclass[256];

static bool cclass_ready;

/* built once before main() so concurrent decoders only ever read it */
__attribute__((constructor)) static void cclass_init(void)
{
    if (cclass_ready)
        return;
    for (int c = 0; c < 256; c++) {
        uint8_t k = 0;
        if (c >= '0' && c <= '9')
            k |= CC_DIGIT | CC_AN | CC_Z;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == ' ')
            k |= CC_AN;
        if ((c >= 0x20 && c <= 0x7E) || c >= 0xA0)
            k |= CC_ANS;
        if (c == '=' || c == 'D')
            k |= CC_Z;
        cclass[c] = k;
    }
    cclass_ready = true;
}

int iso_fail(struct iso_err *err, int field, size_t off, const char *fmt, ...)
{
    if (err == NULL)
        return -1;
    err->field = field;
    err->offset = off;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    return -1;
}

/* "'A'" for a printable byte, "0x07" otherwise */
static const char *show_char(uint8_t c, char buf[8])
{
    if (c >= 0x20 && c < 0x7F && c != '\'')
        snprintf(buf, 8, "'%c'", c);
    else
        snprintf(buf, 8, "0x%02X", c);
    return buf;
}

static inline void bm_set(uint64_t bm[3], int n)
{
    bm[(n - 1) / 64] |= 1ULL << (63 - (n - 1) % 64);
}

static inline void bm_clr(uint64_t bm[3], int n)
{
    bm[(n - 1) / 64] &= ~(1ULL << (63 - (n - 1) % 64));
}

static inline bool bm_test(const uint64_t bm[3], int n)
{
    return (bm[(n - 1) / 64] >> (63 - (n - 1) % 64)) & 1;
}

void iso_msg_init(struct iso_msg *m)
{
    memset(m->mti, 0, sizeof(m->mti));
    m->bm[0] = m->bm[1] = m->bm[2] = 0;
    m->scratch_used = 0;
}

int iso_set_mti(struct iso_msg *m, const char *mti)
{
    for (int i = 0; i < 4; i++)
        if (mti[i] < '0' || mti[i] > '9')
            return -1;
    memcpy(m->mti, mti, 4);
    return 0;
}

bool iso_has(const struct iso_msg *m, int n)
{
    return n >= 1 && n <= ISO_MAX_FIELD && bm_test(m->bm, n);
}

const struct iso_view *iso_get(const struct iso_msg *m, int n)
{
    return iso_has(m, n) ? &m->f[n] : NULL;
}

int iso_set(struct iso_msg *m, int n, const void *p, size_t len)
{
    if (n < 2 || n > ISO_MAX_FIELD || len > ISO_MAX_MSG)
        return -1;
    m->f[n].p = p;
    m->f[n].len = (uint32_t)len;
    bm_set(m->bm, n);
    return 0;
}

size_t iso_echo(struct iso_msg *ans, const struct iso_msg *req, const uint8_t *fields, size_t n)
{
    size_t copied = 0;
    for (size_t i = 0; i < n; i++) {
        const struct iso_view *v = iso_get(req, fields[i]);
        if (v != NULL && iso_set(ans, fields[i], v->p, v->len) == 0)
            copied++;
    }
    return copied;
}

int iso_set_copy(struct iso_msg *m, int n, const void *p, size_t len)
{
    if (len > sizeof(m->scratch) - m->scratch_used)
        return -1;
    uint8_t *dst = m->scratch + m->scratch_used;
    memcpy(dst, p, len);
    if (iso_set(m, n, dst, len) < 0)
        return -1;
    m->scratch_used += len;
    return 0;
}

void iso_clear(struct iso_msg *m, int n)
{
    if (n >= 1 && n <= ISO_MAX_FIELD)
        bm_clr(m->bm, n);
}

#define SWAR_ONES  0x0101010101010101ULL
#define SWAR_HIGHS 0x8080808080808080ULL

/* any byte of x below n (n <= 128) */
static inline uint64_t swar_has_less(uint64_t x, uint8_t n)
{
    return (x - SWAR_ONES * n) & ~x & SWAR_HIGHS;
}

/* eight ASCII digits */
static inline bool swar_digits(uint64_t x)
{
    uint64_t y = x ^ (SWAR_ONES * 0x30); /* digits become 0..9 */
    return ((y & (SWAR_ONES * 0xF0)) | ((y + SWAR_ONES * 0x06) & (SWAR_ONES * 0x10))) == 0;
}

/* eight printable ASCII bytes (0x20..0x7E) */
static inline bool swar_printable(uint64_t x)
{
    return ((x & SWAR_HIGHS) | swar_has_less(x, 0x20) | swar_has_less(x ^ (SWAR_ONES * 0x7F), 1)) ==
           0;
}

/*
 * true when every byte of p[0..len) is in class want.  Eight bytes at a
 * time for digits and printable text (the common fields), the class table
 * for the rest and for the tail.
 */
static bool scan_ok(const uint8_t *p, size_t len, uint8_t want)
{
    size_t i = 0;
    if (want == CC_DIGIT || want == CC_ANS) {
        for (; i + 8 <= len; i += 8) {
            uint64_t x;
            memcpy(&x, p + i, 8);
            if (!(want == CC_DIGIT ? swar_digits(x) : swar_printable(x)))
                break; /* ans may still be valid Latin-1: the table decides */
        }
    }
    uint8_t acc = 0xFF;
    for (; i < len; i++)
        acc &= cclass[p[i]];
    return (acc & want) != 0;
}

static const char *const type_names[] = {"n", "an", "ans", "b", "z", "x+n"};

int iso_check_value(const struct iso_dialect *d, int n, const uint8_t *p, size_t len,
                    struct iso_err *err)
{
    if (n < 2 || n > ISO_MAX_FIELD || !d->f[n].defined)
        return iso_fail(err, n, 0, "field %d: not defined in dialect %s", n, d->name);
    const struct iso_fdef *fd = &d->f[n];
    size_t units = len;
    char cb[8];
    if (fd->type == ISO_T_XN) {
        if (len < 1 || (p[0] != 'C' && p[0] != 'D'))
            return iso_fail(err, n, 0, "field %d: amount sign must be 'C' or 'D'", n);
        units = len - 1;
    }
    if (fd->lenkind == ISO_L_FIXED ? units != fd->max : units > fd->max)
        return iso_fail(err, n, 0, "field %d: length %zu %s %u", n, units,
                        fd->lenkind == ISO_L_FIXED ? "differs from fixed" : "exceeds max", fd->max);
    uint8_t want;
    switch (fd->type) {
    case ISO_T_N:
    case ISO_T_XN:
        want = CC_DIGIT;
        break;
    case ISO_T_AN:
        want = CC_AN;
        break;
    case ISO_T_ANS:
        want = CC_ANS;
        break;
    case ISO_T_Z:
        want = CC_Z;
        break;
    default:
        return 0;
    }
    /*
     * Branch-free scan first (the common case is valid data); only a bad
     * value is scanned again to name the character.
     */
    size_t i0 = fd->type == ISO_T_XN;
    if (scan_ok(p + i0, len - i0, want))
        return 0;
    for (size_t i = i0; i < len; i++)
        if (!(cclass[p[i]] & want)) {
            if (want == CC_DIGIT)
                return iso_fail(err, n, 0, "field %d: non-digit %s", n, show_char(p[i], cb));
            return iso_fail(err, n, 0, "field %d: character %s not allowed in %s", n,
                            show_char(p[i], cb), type_names[fd->type]);
        }
    return 0;
}

/* ---- wire helpers ----------------------------------------------------- */

static int prefix_digits(uint8_t lenkind)
{
    static const int nd[] = {0, 2, 3, 4, 6};
    return nd[lenkind];
}

/* bytes a length prefix takes on the wire */
static size_t prefix_bytes(uint8_t lenkind, uint8_t lenc)
{
    int nd = prefix_digits(lenkind);
    switch (lenc) {
    case ISO_E_BCD:
        return (size_t)(nd + 1) / 2;
    case ISO_E_BINARY:
        return nd == 2 ? 1 : nd == 6 ? 3 : 2;
    default:
        return (size_t)nd;
    }
}

/* wire bytes of the data for a logical length (units as counted by the prefix) */
static size_t data_bytes(const struct iso_fdef *fd, size_t len)
{
    switch (fd->type) {
    case ISO_T_B:
        return fd->enc == ISO_E_BINARY ? len : 2 * len;
    case ISO_T_N:
    case ISO_T_Z:
        return fd->enc == ISO_E_BCD ? (len + 1) / 2 : len;
    case ISO_T_XN:
        return fd->enc == ISO_E_BCD ? 1 + (len - 1 + 1) / 2 : len;
    default:
        return len;
    }
}

static const char hexdig[] = "0123456789ABCDEF";

static int hexval(uint8_t c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* read a bitmap of 64 bits at *off */
static int get_bitmap(const struct iso_dialect *d, const uint8_t *buf, size_t len, size_t *off,
                      uint64_t *out, const char *which, struct iso_err *err)
{
    size_t need = d->bm_enc == ISO_BM_BINARY ? 8 : 16;
    if (len - *off < need)
        return iso_fail(err, -1, *off, "bitmap: %s bitmap truncated at offset %zu", which, *off);
    uint64_t v = 0;
    const uint8_t *p = buf + *off;
    if (d->bm_enc == ISO_BM_BINARY) {
        for (int i = 0; i < 8; i++)
            v = v << 8 | p[i];
    } else {
        for (int i = 0; i < 16; i++) {
            uint8_t c = d->text_enc == ISO_E_EBCDIC ? iso_ebcdic_to_latin1[p[i]] : p[i];
            int h = hexval(c);
            if (h < 0)
                return iso_fail(err, -1, *off + i,
                                "bitmap: %s bitmap has non-hex byte at offset %zu", which,
                                *off + i);
            v = v << 4 | (uint64_t)h;
        }
    }
    *off += need;
    *out = v;
    return 0;
}

static int put_bitmap(const struct iso_dialect *d, uint64_t v, uint8_t *out, size_t cap,
                      size_t *off, struct iso_err *err)
{
    size_t need = d->bm_enc == ISO_BM_BINARY ? 8 : 16;
    if (cap - *off < need)
        return iso_fail(err, -1, *off, "bitmap: output buffer too small at offset %zu", *off);
    uint8_t *p = out + *off;
    if (d->bm_enc == ISO_BM_BINARY) {
        for (int i = 0; i < 8; i++)
            p[i] = (uint8_t)(v >> (56 - 8 * i));
    } else {
        for (int i = 0; i < 16; i++) {
            uint8_t c = (uint8_t)hexdig[(v >> (60 - 4 * i)) & 0xF];
            p[i] = d->text_enc == ISO_E_EBCDIC ? iso_latin1_to_ebcdic[c] : c;
        }
    }
    *off += need;
    return 0;
}

/* read field n's length prefix; *units gets the value */
static int get_prefix(const struct iso_fdef *fd, int n, const uint8_t *buf, size_t len, size_t *off,
                      size_t *units, struct iso_err *err)
{
    size_t pb = prefix_bytes(fd->lenkind, fd->lenc);
    if (len - *off < pb)
        return iso_fail(err, n, *off, "field %d: length prefix truncated at offset %zu", n, *off);
    const uint8_t *p = buf + *off;
    size_t v = 0;
    switch (fd->lenc) {
    case ISO_E_BINARY:
        for (size_t i = 0; i < pb; i++)
            v = v << 8 | p[i];
        break;
    case ISO_E_BCD: {
        int nd = prefix_digits(fd->lenkind);
        /* an odd digit count leaves a leading pad nibble that must be 0 */
        for (int i = (nd & 1) ? 1 : 0; i < (int)pb * 2; i++) {
            int nib = (p[i / 2] >> (i % 2 ? 0 : 4)) & 0xF;
            if (nib > 9)
                return iso_fail(err, n, *off, "field %d: bad length prefix at offset %zu", n, *off);
            v = v * 10 + (size_t)nib;
        }
        if ((nd & 1) && (p[0] >> 4) != 0)
            return iso_fail(err, n, *off, "field %d: bad length prefix at offset %zu", n, *off);
        break;
    }
    default:
        for (size_t i = 0; i < pb; i++) {
            uint8_t c = fd->lenc == ISO_E_EBCDIC ? iso_ebcdic_to_latin1[p[i]] : p[i];
            if (c < '0' || c > '9')
                return iso_fail(err, n, *off, "field %d: bad length prefix at offset %zu", n, *off);
            v = v * 10 + (size_t)(c - '0');
        }
    }
    *units = v;
    *off += pb;
    return 0;
}

static int put_prefix(const struct iso_fdef *fd, int n, size_t units, uint8_t *out, size_t cap,
                      size_t *off, struct iso_err *err)
{
    size_t pb = prefix_bytes(fd->lenkind, fd->lenc);
    if (cap - *off < pb)
        return iso_fail(err, n, *off, "field %d: output buffer too small at offset %zu", n, *off);
    uint8_t *p = out + *off;
    switch (fd->lenc) {
    case ISO_E_BINARY:
        for (size_t i = 0; i < pb; i++)
            p[pb - 1 - i] = (uint8_t)(units >> (8 * i));
        break;
    case ISO_E_BCD: {
        memset(p, 0, pb);
        size_t v = units;
        for (int i = (int)pb * 2 - 1; i >= 0; i--, v /= 10)
            p[i / 2] |= (uint8_t)((v % 10) << (i % 2 ? 0 : 4));
        break;
    }
    default: {
        size_t v = units;
        for (size_t i = pb; i-- > 0; v /= 10) {
            uint8_t c = (uint8_t)('0' + v % 10);
            p[i] = fd->lenc == ISO_E_EBCDIC ? iso_latin1_to_ebcdic[c] : c;
        }
    }
    }
    *off += pb;
    return 0;
}

/*
 * BCD nibbles -> logical digits.  '0' + 0xD is '=', so a track separator
 * needs no special case; the pad nibble of an odd length is not checked
 * (switches differ on 0 and F).  n allows nibbles 0-9, z also D.
 */
static int unpack_bcd(const struct iso_fdef *fd, int n, const uint8_t *p, size_t units,
                      uint8_t *dst, size_t off, struct iso_err *err)
{
    size_t skip = (units & 1) && fd->pad_left ? 1 : 0;
    size_t i = 0;
    unsigned bad = 0;
    const bool z = fd->type == ISO_T_Z;
    if (skip) {
        uint8_t nib = p[0] & 0xF;
        bad |= nib > 9 && !(z && nib == 0xD);
        dst[i++] = (uint8_t)('0' + nib);
    }
    const uint8_t *q = p + skip;
    for (; i + 2 <= units; i += 2, q++) {
        uint8_t hi = *q >> 4, lo = *q & 0xF;
        bad |= (hi > 9 && !(z && hi == 0xD)) | (lo > 9 && !(z && lo == 0xD));
        dst[i] = (uint8_t)('0' + hi);
        dst[i + 1] = (uint8_t)('0' + lo);
    }
    if (i < units) { /* odd length padded on the right */
        uint8_t hi = *q >> 4;
        bad |= hi > 9 && !(z && hi == 0xD);
        dst[i] = (uint8_t)('0' + hi);
    }
    if (!bad)
        return 0;
    for (size_t k = 0; k < units; k++) {
        size_t pos = k + skip;
        int nib = (p[pos / 2] >> (pos % 2 ? 0 : 4)) & 0xF;
        if (nib > 9 && !(z && nib == 0xD))
            return iso_fail(err, n, off + pos / 2, "field %d: bad BCD nibble 0x%X at offset %zu", n,
                            nib, off + pos / 2);
    }
    return 0;
}

/* logical digit -> nibble: '=' (0x3D) & 0xF is 0xD; 'D' is the other separator */
static inline uint8_t nibble_of(uint8_t c)
{
    return c == 'D' ? 0xD : c & 0xF;
}

static void pack_bcd(const struct iso_fdef *fd, const uint8_t *src, size_t units, uint8_t *p)
{
    size_t i = 0;
    if ((units & 1) && fd->pad_left) {
        *p++ = (uint8_t)(fd->pad_nib << 4 | nibble_of(src[0]));
        i = 1;
    }
    for (; i + 2 <= units; i += 2)
        *p++ = (uint8_t)(nibble_of(src[i]) << 4 | nibble_of(src[i + 1]));
    if (i < units)
        *p = (uint8_t)(nibble_of(src[i]) << 4 | fd->pad_nib);
}

/* decode field n at *off into m */
static int get_field(const struct iso_dialect *d, int n, const uint8_t *buf, size_t len,
                     size_t *off, struct iso_msg *m, struct iso_err *err)
{
    const struct iso_fdef *fd = &d->f[n];
    size_t start = *off, units = 0;
    if (fd->lenkind == ISO_L_FIXED) {
        units = fd->max + (fd->type == ISO_T_XN);
    } else {
        if (get_prefix(fd, n, buf, len, off, &units, err) < 0)
            return -1;
        size_t lim = fd->max + (fd->type == ISO_T_XN);
        if (units > lim)
            return iso_fail(err, n, start, "field %d: length %zu exceeds max %zu at offset %zu", n,
                            units, lim, start);
        if (fd->type == ISO_T_XN && units < 1)
            return iso_fail(err, n, start, "field %d: empty amount at offset %zu", n, start);
    }
    size_t wb = data_bytes(fd, units);
    if (len - *off < wb)
        return iso_fail(err, n, *off, "field %d: truncated: %zu bytes at offset %zu, %zu left", n,
                        wb, *off, len - *off);
    const uint8_t *p = buf + *off;
    const uint8_t *val = p;
    if (fd->enc == ISO_E_BCD || fd->enc == ISO_E_EBCDIC ||
        (fd->type == ISO_T_B && fd->enc != ISO_E_BINARY)) {
        if (sizeof(m->scratch) - m->scratch_used < units)
            return iso_fail(err, n, *off, "field %d: message too large at offset %zu", n, *off);
        uint8_t *dst = m->scratch + m->scratch_used;
        if (fd->type == ISO_T_B) {
            for (size_t i = 0; i < units; i++) {
                uint8_t hi = p[2 * i], lo = p[2 * i + 1];
                if (fd->enc == ISO_E_EBCDIC) {
                    hi = iso_ebcdic_to_latin1[hi];
                    lo = iso_ebcdic_to_latin1[lo];
                }
                int h = hexval(hi), l = hexval(lo);
                if (h < 0 || l < 0)
                    return iso_fail(err, n, *off + 2 * i, "field %d: non-hex byte at offset %zu", n,
                                    *off + 2 * i);
                dst[i] = (uint8_t)(h << 4 | l);
            }
        } else if (fd->enc == ISO_E_EBCDIC) {
            for (size_t i = 0; i < units; i++)
                dst[i] = iso_ebcdic_to_latin1[p[i]];
        } else if (fd->type == ISO_T_XN) {
            uint8_t s = d->text_enc == ISO_E_EBCDIC ? iso_ebcdic_to_latin1[p[0]] : p[0];
            dst[0] = s;
            if (unpack_bcd(fd, n, p + 1, units - 1, dst + 1, *off + 1, err) < 0)
                return -1;
        } else if (unpack_bcd(fd, n, p, units, dst, *off, err) < 0) {
            return -1;
        }
        val = dst;
        m->scratch_used += units;
    }
    if (iso_check_value(d, n, val, units, err) < 0) {
        err->offset = start;
        size_t l = strlen(err->msg);
        snprintf(err->msg + l, sizeof(err->msg) - l, " at offset %zu", start);
        return -1;
    }
    if (fd->comp == ISO_X_TLV && iso_tlv_validate(val, units, err) < 0) {
        char inner[sizeof(err->msg)];
        memcpy(inner, err->msg, sizeof(inner));
        return iso_fail(err, n, start, "field %d: %s (field at offset %zu)", n, inner, start);
    }
    m->f[n].p = val;
    m->f[n].len = (uint32_t)units;
    *off += wb;
    return 0;
}

static int put_field(const struct iso_dialect *d, int n, const struct iso_view *v, uint8_t *out,
                     size_t cap, size_t *off, struct iso_err *err)
{
    const struct iso_fdef *fd = &d->f[n];
    size_t start = *off;
    if (iso_check_value(d, n, v->p, v->len, err) < 0)
        return -1;
    if (fd->lenkind != ISO_L_FIXED && put_prefix(fd, n, v->len, out, cap, off, err) < 0)
        return -1;
    size_t wb = data_bytes(fd, v->len);
    if (cap - *off < wb)
        return iso_fail(err, n, start, "field %d: output buffer too small at offset %zu", n, start);
    uint8_t *p = out + *off;
    if (fd->type == ISO_T_B && fd->enc != ISO_E_BINARY) {
        for (size_t i = 0; i < v->len; i++) {
            uint8_t hi = (uint8_t)hexdig[v->p[i] >> 4], lo = (uint8_t)hexdig[v->p[i] & 0xF];
            if (fd->enc == ISO_E_EBCDIC) {
                hi = iso_latin1_to_ebcdic[hi];
                lo = iso_latin1_to_ebcdic[lo];
            }
            p[2 * i] = hi;
            p[2 * i + 1] = lo;
        }
    } else if (fd->enc == ISO_E_EBCDIC) {
        for (size_t i = 0; i < v->len; i++)
            p[i] = iso_latin1_to_ebcdic[v->p[i]];
    } else if (fd->enc == ISO_E_BCD && fd->type == ISO_T_XN) {
        p[0] = d->text_enc == ISO_E_EBCDIC ? iso_latin1_to_ebcdic[v->p[0]] : v->p[0];
        pack_bcd(fd, v->p + 1, v->len - 1, p + 1);
    } else if (fd->enc == ISO_E_BCD && fd->type != ISO_T_ANS && fd->type != ISO_T_AN) {
        pack_bcd(fd, v->p, v->len, p);
    } else {
        memcpy(p, v->p, v->len);
    }
    *off += wb;
    return 0;
}

int iso_decode(const struct iso_dialect *d, const uint8_t *buf, size_t len, struct iso_msg *m,
               struct iso_err *err)
{
    iso_msg_init(m);
    if (len > ISO_MAX_MSG)
        return iso_fail(err, 0, 0, "message: %zu bytes exceeds the maximum %d", len, ISO_MAX_MSG);
    size_t off = 0;
    /* MTI */
    if (d->mti_enc == ISO_E_BCD) {
        if (len < 2)
            return iso_fail(err, 0, 0, "mti: truncated at offset 0");
        for (int i = 0; i < 4; i++) {
            int nib = (buf[i / 2] >> (i % 2 ? 0 : 4)) & 0xF;
            if (nib > 9)
                return iso_fail(err, 0, 0, "mti: non-digit at offset 0");
            m->mti[i] = (char)('0' + nib);
        }
        off = 2;
    } else {
        if (len < 4)
            return iso_fail(err, 0, 0, "mti: truncated at offset 0");
        for (int i = 0; i < 4; i++) {
            uint8_t c = d->mti_enc == ISO_E_EBCDIC ? iso_ebcdic_to_latin1[buf[i]] : buf[i];
            if (c < '0' || c > '9')
                return iso_fail(err, 0, (size_t)i, "mti: non-digit at offset %d", i);
            m->mti[i] = (char)c;
        }
        off = 4;
    }
    uint64_t bm[3] = {0, 0, 0};
    if (get_bitmap(d, buf, len, &off, &bm[0], "primary", err) < 0)
        return -1;
    if (bm[0] >> 63 && get_bitmap(d, buf, len, &off, &bm[1], "secondary", err) < 0)
        return -1;
    m->bm[0] = bm[0];
    m->bm[1] = bm[1];
    /* ascending field order; field 65 (tertiary) is read in its place */
    for (int w = 0; w < 3; w++) {
        uint64_t word = w == 0 ? bm[0] & ~(1ULL << 63) : bm[w];
        while (word) {
            int n = 64 * w + iso_bm_pop(&word);
            if (n == 65 && d->tertiary) {
                if (get_bitmap(d, buf, len, &off, &bm[2], "tertiary", err) < 0)
                    return -1;
                m->bm[2] = bm[2];
                continue;
            }
            if (!d->f[n].defined)
                return iso_fail(err, n, off, "bitmap: field %d set but not defined in dialect %s",
                                n, d->name);
            if (get_field(d, n, buf, len, &off, m, err) < 0)
                return -1;
        }
    }
    if (off != len)
        return iso_fail(err, 0, off, "message: %zu trailing bytes at offset %zu", len - off, off);
    return 0;
}

int iso_encode(const struct iso_dialect *d, const struct iso_msg *m, uint8_t *out, size_t cap,
               size_t *outlen, struct iso_err *err)
{
    size_t off = 0;
    uint64_t bm[3] = {m->bm[0], m->bm[1], m->bm[2]};
    bm[0] &= ~(1ULL << 63);
    if (d->tertiary)
        bm[1] &= ~(1ULL << 63);
    if (bm[2] != 0) {
        if (!d->tertiary) {
            int n = 129 + __builtin_clzll(bm[2]);
            return iso_fail(err, -1, 0, "bitmap: field %d set without a tertiary bitmap", n);
        }
        bm[1] |= 1ULL << 63;
    }
    if (bm[1] != 0)
        bm[0] |= 1ULL << 63;
    for (int i = 0; i < 4; i++)
        if (m->mti[i] < '0' || m->mti[i] > '9')
            return iso_fail(err, 0, 0, "mti: not set or not 4 digits");
    if (cap < 4)
        return iso_fail(err, 0, 0, "mti: output buffer too small");
    if (d->mti_enc == ISO_E_BCD) {
        out[0] = (uint8_t)((m->mti[0] - '0') << 4 | (m->mti[1] - '0'));
        out[1] = (uint8_t)((m->mti[2] - '0') << 4 | (m->mti[3] - '0'));
        off = 2;
    } else {
        for (int i = 0; i < 4; i++)
            out[i] = d->mti_enc == ISO_E_EBCDIC ? iso_latin1_to_ebcdic[(uint8_t)m->mti[i]]
                                                : (uint8_t)m->mti[i];
        off = 4;
    }
    if (put_bitmap(d, bm[0], out, cap, &off, err) < 0)
        return -1;
    if ((bm[0] >> 63) && put_bitmap(d, bm[1], out, cap, &off, err) < 0)
        return -1;
    for (int w = 0; w < 3; w++) {
        uint64_t word = w == 0 ? bm[0] & ~(1ULL << 63) : bm[w];
        while (word) {
            int n = 64 * w + iso_bm_pop(&word);
            if (n == 65 && d->tertiary) {
                if (put_bitmap(d, bm[2], out, cap, &off, err) < 0)
                    return -1;
                continue;
            }
            if (!d->f[n].defined)
                return iso_fail(err, n, off, "field %d: not defined in dialect %s", n, d->name);
            if (put_field(d, n, &m->f[n], out, cap, &off, err) < 0)
                return -1;
        }
    }
    *outlen = off;
    return 0;
}

/*
 * Required fields per request MTI (ISO 8583:1987 usage on prepaid issuer
 * links).  The lists are the minimum the pipeline reads; a switch may send
 * more.
 */
struct req_rule {
    const char *mti;
    uint8_t fields[12];
};

static const struct req_rule req_rules[] = {
    {"0100", {2, 3, 4, 7, 11, 12, 13, 22, 41, 49, 0}},
    {"0200", {2, 3, 4, 7, 11, 12, 13, 22, 41, 49, 0}},
    {"0120", {2, 3, 4, 7, 11, 38, 39, 41, 49, 0}},
    {"0220", {2, 3, 4, 7, 11, 38, 39, 41, 49, 0}},
    {"0400", {2, 3, 4, 7, 11, 41, 49, 90, 0}},
    {"0420", {2, 3, 4, 7, 11, 41, 49, 90, 0}},
    {"0421", {2, 3, 4, 7, 11, 41, 49, 90, 0}},
    {"0800", {7, 11, 70, 0}},
};

int iso_required_missing(const struct iso_msg *m)
{
    for (size_t i = 0; i < sizeof(req_rules) / sizeof(req_rules[0]); i++) {
        if (memcmp(req_rules[i].mti, m->mti, 4) != 0)
            continue;
        for (const uint8_t *f = req_rules[i].fields; *f; f++)
            if (!iso_has(m, *f))
                return *f;
        return 0;
    }
    return 0;
}
