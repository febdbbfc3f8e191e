/*
 * composite.c - fields with structure inside: BER-TLV (field 55), original
 * data elements (field 90), sub-bitmap private fields (field-127 style).
 * All of them work on a field's logical value and return views into it.
 */
#include "iso8583/internal.h"

#include <stdio.h>
#include <string.h>

int iso_orig_parse(const struct iso_view *v, struct iso_orig *o, struct iso_err *err)
{
    if (v == NULL || v->len != 42)
        return iso_fail(err, 90, 0, "field 90: length %u, want 42", v ? v->len : 0);
    for (size_t i = 0; i < 42; i++)
        if (v->p[i] < '0' || v->p[i] > '9')
            return iso_fail(err, 90, 0, "field 90: non-digit at position %zu", i);
    static const uint8_t part[] = {4, 6, 10, 11, 11};
    struct iso_view *dst[] = {&o->mti, &o->stan, &o->datetime, &o->acquirer, &o->forwarder};
    size_t off = 0;
    for (size_t i = 0; i < 5; i++) {
        dst[i]->p = v->p + off;
        dst[i]->len = part[i];
        off += part[i];
    }
    return 0;
}

/* iso_tlv_next for a buffer that starts at offset base of the whole field */
static int tlv_next_at(const uint8_t *buf, size_t len, size_t *pos, struct iso_tlv *t, size_t base,
                       struct iso_err *err)
{
    size_t p = *pos;
    while (p < len && (buf[p] == 0x00 || buf[p] == 0xFF))
        p++;
    if (p >= len) {
        *pos = p;
        return 0;
    }
    size_t start = p;
    uint32_t tag = buf[p++];
    bool constructed = (tag & 0x20) != 0;
    if ((tag & 0x1F) == 0x1F) {
        /* subsequent bytes while bit 8 is set, at most 4 tag bytes */
        int n = 1;
        do {
            if (p >= len)
                return iso_fail(err, 55, base + start, "TLV: truncated tag at offset %zu",
                                base + start);
            if (++n > 4)
                return iso_fail(err, 55, base + start, "TLV: tag longer than 4 bytes at offset %zu",
                                start);
            tag = tag << 8 | buf[p];
        } while (buf[p++] & 0x80);
    }
    if (p >= len)
        return iso_fail(err, 55, base + start, "TLV: tag %X without length at offset %zu", tag,
                        base + start);
    size_t vlen = buf[p++];
    if (vlen & 0x80) {
        size_t nl = vlen & 0x7F;
        if (nl == 0 || nl > 4)
            return iso_fail(err, 55, base + start, "TLV: tag %X: bad length form at offset %zu",
                            tag, base + start);
        if (len - p < nl)
            return iso_fail(err, 55, base + start, "TLV: tag %X: truncated length at offset %zu",
                            tag, base + start);
        vlen = 0;
        for (size_t i = 0; i < nl; i++)
            vlen = vlen << 8 | buf[p++];
    }
    if (vlen > len - p)
        return iso_fail(err, 55, base + start, "TLV: tag %X: length %zu past the end at offset %zu",
                        tag, vlen, base + start);
    t->tag = tag;
    t->constructed = constructed;
    t->v = buf + p;
    t->len = (uint32_t)vlen;
    t->offset = start;
    *pos = p + vlen;
    return 1;
}

int iso_tlv_next(const uint8_t *buf, size_t len, size_t *pos, struct iso_tlv *t,
                 struct iso_err *err)
{
    return tlv_next_at(buf, len, pos, t, 0, err);
}

static int tlv_walk(const uint8_t *buf, size_t len, uint32_t want, struct iso_tlv *found, int depth,
                    size_t base, struct iso_err *err)
{
    if (depth > 8)
        return iso_fail(err, 55, base, "TLV: nested deeper than 8 at offset %zu", base);
    size_t pos = 0;
    struct iso_tlv t;
    int r;
    while ((r = tlv_next_at(buf, len, &pos, &t, base, err)) == 1) {
        if (found != NULL && t.tag == want) {
            *found = t;
            return 1;
        }
        if (t.constructed) {
            r = tlv_walk(t.v, t.len, want, found, depth + 1, base + (size_t)(t.v - buf), err);
            if (r != 0)
                return r;
        }
    }
    return r;
}

int iso_tlv_validate(const uint8_t *buf, size_t len, struct iso_err *err)
{
    return tlv_walk(buf, len, 0, NULL, 0, 0, err) < 0 ? -1 : 0;
}

int iso_tlv_find(const uint8_t *buf, size_t len, uint32_t tag, struct iso_tlv *t,
                 struct iso_err *err)
{
    return tlv_walk(buf, len, tag, t, 0, 0, err);
}

long iso_tlv_put(uint32_t tag, const uint8_t *v, size_t vlen, uint8_t *out, size_t cap)
{
    uint8_t hdr[12];
    size_t h = 0;
    int tb = tag > 0xFFFFFF ? 4 : tag > 0xFFFF ? 3 : tag > 0xFF ? 2 : 1;
    for (int i = tb - 1; i >= 0; i--)
        hdr[h++] = (uint8_t)(tag >> (8 * i));
    if (vlen < 0x80) {
        hdr[h++] = (uint8_t)vlen;
    } else if (vlen <= 0xFF) {
        hdr[h++] = 0x81;
        hdr[h++] = (uint8_t)vlen;
    } else if (vlen <= 0xFFFF) {
        hdr[h++] = 0x82;
        hdr[h++] = (uint8_t)(vlen >> 8);
        hdr[h++] = (uint8_t)vlen;
    } else {
        return -1;
    }
    if (cap < h + vlen)
        return -1;
    memcpy(out, hdr, h);
    memcpy(out + h, v, vlen);
    return (long)(h + vlen);
}

/* ---- sub-bitmap fields --------------------------------------------------- */

static const int sub_digits[] = {0, 2, 3, 4, 6};

int iso_sub_parse(const struct iso_dialect *d, const struct iso_view *v, struct iso_sub *s,
                  struct iso_err *err)
{
    int fn = d->sub_field;
    if (fn == 0)
        return iso_fail(err, 0, 0, "dialect %s has no sub-bitmap field", d->name);
    const uint8_t *p = v->p;
    size_t len = v->len, off = 0;
    if (len < 8)
        return iso_fail(err, fn, 0, "field %d: sub-bitmap truncated", fn);
    s->bm = 0;
    for (int i = 0; i < 8; i++)
        s->bm = s->bm << 8 | p[i];
    off = 8;
    if (s->bm >> 63)
        return iso_fail(err, fn, 0, "field %d.1: a second sub-bitmap is not supported", fn);
    uint64_t word = s->bm;
    while (word) {
        int n = iso_bm_pop(&word);
        const struct iso_fdef *sf = &d->sub[n];
        if (!sf->defined)
            return iso_fail(err, fn, off, "field %d.%d: set but not defined", fn, n);
        size_t units = sf->max;
        if (sf->lenkind != ISO_L_FIXED) {
            size_t nd = (size_t)sub_digits[sf->lenkind];
            if (len - off < nd)
                return iso_fail(err, fn, off, "field %d.%d: length prefix truncated at %zu", fn, n,
                                off);
            units = 0;
            for (size_t i = 0; i < nd; i++) {
                if (p[off + i] < '0' || p[off + i] > '9')
                    return iso_fail(err, fn, off, "field %d.%d: bad length prefix at %zu", fn, n,
                                    off);
                units = units * 10 + (size_t)(p[off + i] - '0');
            }
            off += nd;
            if (units > sf->max)
                return iso_fail(err, fn, off, "field %d.%d: length %zu exceeds max %u", fn, n,
                                units, sf->max);
        }
        size_t wb = units + (sf->type == ISO_T_XN);
        if (len - off < wb)
            return iso_fail(err, fn, off, "field %d.%d: truncated at %zu", fn, n, off);
        if (sf->type == ISO_T_N) {
            for (size_t i = 0; i < wb; i++)
                if (p[off + i] < '0' || p[off + i] > '9')
                    return iso_fail(err, fn, off, "field %d.%d: non-digit at %zu", fn, n, off + i);
        }
        s->f[n].p = p + off;
        s->f[n].len = (uint32_t)wb;
        off += wb;
    }
    if (off != len)
        return iso_fail(err, fn, off, "field %d: %zu trailing bytes after subfields", fn,
                        len - off);
    return 0;
}

long iso_sub_build(const struct iso_dialect *d, const struct iso_sub *s, uint8_t *out, size_t cap,
                   struct iso_err *err)
{
    int fn = d->sub_field;
    if (fn == 0)
        return iso_fail(err, 0, 0, "dialect %s has no sub-bitmap field", d->name);
    if (cap < 8)
        return iso_fail(err, fn, 0, "field %d: output too small", fn);
    uint64_t bm = s->bm & ~(1ULL << 63);
    for (int i = 0; i < 8; i++)
        out[i] = (uint8_t)(bm >> (56 - 8 * i));
    size_t off = 8;
    uint64_t word = bm;
    while (word) {
        int n = iso_bm_pop(&word);
        const struct iso_fdef *sf = &d->sub[n];
        const struct iso_view *v = &s->f[n];
        if (!sf->defined)
            return iso_fail(err, fn, off, "field %d.%d: not defined", fn, n);
        if (sf->lenkind == ISO_L_FIXED ? v->len != sf->max : v->len > sf->max)
            return iso_fail(err, fn, off, "field %d.%d: length %u not allowed", fn, n, v->len);
        if (sf->lenkind != ISO_L_FIXED) {
            size_t nd = (size_t)sub_digits[sf->lenkind];
            if (cap - off < nd)
                return iso_fail(err, fn, off, "field %d.%d: output too small", fn, n);
            size_t u = v->len;
            for (size_t i = nd; i-- > 0; u /= 10)
                out[off + i] = (uint8_t)('0' + u % 10);
            off += nd;
        }
        if (cap - off < v->len)
            return iso_fail(err, fn, off, "field %d.%d: output too small", fn, n);
        memcpy(out + off, v->p, v->len);
        off += v->len;
    }
    return (long)off;
}
