/*
 * dump.c - JSON and text dumps of a message, masked by sensitivity class
 * unless the caller asks for clear values.  Used by cardgatectl, the
 * simulator and the daemon's debug logs, so the masked form is the default
 * everywhere and a PAN, track or PIN block can only leak through an
 * explicit clear=true.
 */
#include "crypto/pan.h"
#include "iso8583/iso8583.h"

#include <stdio.h>
#include <string.h>

struct out {
    char *p;
    size_t cap, len;
    bool overflow;
};

static void put(struct out *o, const char *s, size_t n)
{
    if (o->overflow || o->cap - o->len <= n) {
        o->overflow = true;
        return;
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
    o->p[o->len] = '\0';
}

static void puts_(struct out *o, const char *s)
{
    put(o, s, strlen(s));
}

static void put_rep(struct out *o, char c, size_t n)
{
    for (size_t i = 0; i < n; i++)
        put(o, &c, 1);
}

/* a JSON string body (no quotes); bytes >= 0x80 are Latin-1 code points */
static void put_jstr(struct out *o, const uint8_t *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint8_t c = s[i];
        char b[8];
        if (c == '"' || c == '\\') {
            b[0] = '\\';
            b[1] = (char)c;
            put(o, b, 2);
        } else if (c < 0x20 || c >= 0x7F) {
            snprintf(b, sizeof(b), "\\u%04X", c);
            put(o, b, 6);
        } else {
            put(o, (const char *)&c, 1);
        }
    }
}

static void put_hex(struct out *o, const uint8_t *s, size_t n)
{
    static const char hx[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        char b[2] = {hx[s[i] >> 4], hx[s[i] & 0xF]};
        put(o, b, 2);
    }
}

/* PAN digits masked first six / last four */
static void put_pan_masked(struct out *o, const uint8_t *s, size_t n)
{
    char m[PAN_MASK_MAX];
    pan_mask((const char *)s, n, m);
    puts_(o, m);
}

/* EMV tags whose value is a PAN or track data */
static int emv_class(uint32_t tag)
{
    switch (tag) {
    case 0x5A:
        return ISO_C_PAN;
    case 0x57:
    case 0x56:
    case 0x9F1F:
    case 0x9F20:
    case 0x9F6B:
        return ISO_C_TRACK;
    default:
        return ISO_C_PUBLIC;
    }
}

static void put_tlv_obj(struct out *o, const uint8_t *buf, size_t len, bool clear, int depth)
{
    size_t pos = 0;
    struct iso_tlv t;
    struct iso_err e;
    bool first = true;
    puts_(o, "{");
    while (iso_tlv_next(buf, len, &pos, &t, &e) == 1) {
        char k[16];
        snprintf(k, sizeof(k), "%s\"%X\":", first ? "" : ",", t.tag);
        puts_(o, k);
        first = false;
        if (t.constructed && depth < 8) {
            put_tlv_obj(o, t.v, t.len, clear, depth + 1);
            continue;
        }
        puts_(o, "\"");
        /* a constructed tag too deep to show may hold a PAN: mask it whole */
        int cls = t.constructed ? ISO_C_SECRET : emv_class(t.tag);
        if (clear || cls == ISO_C_PUBLIC) {
            put_hex(o, t.v, t.len);
        } else if (cls == ISO_C_PAN) {
            /* 5A: BCD digits, possibly padded with F */
            char digits[2 * 10 + 1];
            size_t nd = 0;
            for (size_t i = 0; i < t.len && nd + 2 < sizeof(digits); i++) {
                digits[nd++] = "0123456789ABCDEF"[t.v[i] >> 4];
                digits[nd++] = "0123456789ABCDEF"[t.v[i] & 0xF];
            }
            while (nd > 0 && digits[nd - 1] == 'F')
                nd--;
            put_pan_masked(o, (const uint8_t *)digits, nd);
        } else {
            put_rep(o, '*', 2 * (size_t)t.len);
        }
        puts_(o, "\"");
    }
    puts_(o, "}");
}

/* the value of field n as JSON (string or nested object), masked unless clear */
static void put_value_json(const struct iso_dialect *d, int n, const struct iso_view *v, bool clear,
                           struct out *o)
{
    const struct iso_fdef *fd = &d->f[n];
    struct iso_err e;
    if (fd->comp == ISO_X_TLV && iso_tlv_validate(v->p, v->len, &e) == 0) {
        put_tlv_obj(o, v->p, v->len, clear, 0);
        return;
    }
    if (fd->comp == ISO_X_ORIG) {
        struct iso_orig org;
        if (iso_orig_parse(v, &org, &e) == 0) {
            const char *names[] = {"mti", "stan", "datetime", "acquirer", "forwarder"};
            const struct iso_view *parts[] = {&org.mti, &org.stan, &org.datetime, &org.acquirer,
                                              &org.forwarder};
            puts_(o, "{");
            for (size_t i = 0; i < 5; i++) {
                char k[24];
                snprintf(k, sizeof(k), "%s\"%s\":\"", i ? "," : "", names[i]);
                puts_(o, k);
                put_jstr(o, parts[i]->p, parts[i]->len);
                puts_(o, "\"");
            }
            puts_(o, "}");
            return;
        }
    }
    if (fd->comp == ISO_X_SUBBITMAP) {
        struct iso_sub s;
        if (iso_sub_parse(d, v, &s, &e) == 0) {
            puts_(o, "{");
            bool first = true;
            for (int k = 2; k <= ISO_MAX_SUB; k++) {
                if (!((s.bm >> (64 - k)) & 1))
                    continue;
                char key[16];
                snprintf(key, sizeof(key), "%s\"%d\":\"", first ? "" : ",", k);
                puts_(o, key);
                first = false;
                const struct iso_fdef *sf = &d->sub[k];
                if (!clear && sf->cls != ISO_C_PUBLIC)
                    put_rep(o, '*', sf->type == ISO_T_B ? 2 * (size_t)s.f[k].len : s.f[k].len);
                else if (sf->type == ISO_T_B)
                    put_hex(o, s.f[k].p, s.f[k].len);
                else
                    put_jstr(o, s.f[k].p, s.f[k].len);
                puts_(o, "\"");
            }
            puts_(o, "}");
            return;
        }
    }
    puts_(o, "\"");
    /*
     * A composite whose structure does not parse (only possible for a
     * message built with iso_set, decode refuses it) may carry a PAN or a
     * secret subfield where we cannot see it: masked whole.
     */
    if (!clear && fd->comp != ISO_X_NONE && fd->comp != ISO_X_ORIG)
        put_rep(o, '*', 2 * (size_t)v->len);
    else if (!clear && fd->cls == ISO_C_PAN && fd->type != ISO_T_B)
        put_pan_masked(o, v->p, v->len);
    else if (!clear && fd->cls != ISO_C_PUBLIC)
        put_rep(o, '*', fd->type == ISO_T_B ? 2 * (size_t)v->len : v->len);
    else if (fd->type == ISO_T_B)
        put_hex(o, v->p, v->len);
    else
        put_jstr(o, v->p, v->len);
    puts_(o, "\"");
}

/* true for the bits that are bitmaps, not data */
static bool is_bitmap_bit(const struct iso_dialect *d, int n)
{
    return n == 1 || (n == 65 && d->tertiary);
}

long iso_dump_json(const struct iso_dialect *d, const struct iso_msg *m, bool clear, char *out,
                   size_t cap)
{
    struct out o = {out, cap, 0, cap == 0};
    if (cap > 0)
        out[0] = '\0';
    puts_(&o, "{\"mti\":\"");
    put_jstr(&o, (const uint8_t *)m->mti, 4);
    puts_(&o, "\",\"fields\":{");
    bool first = true;
    for (int n = 2; n <= ISO_MAX_FIELD; n++) {
        if (!iso_has(m, n) || is_bitmap_bit(d, n) || !d->f[n].defined)
            continue;
        char k[16];
        snprintf(k, sizeof(k), "%s\"%d\":", first ? "" : ",", n);
        puts_(&o, k);
        first = false;
        put_value_json(d, n, &m->f[n], clear, &o);
    }
    puts_(&o, "}}");
    return o.overflow ? -1 : (long)o.len;
}

long iso_dump_text(const struct iso_dialect *d, const struct iso_msg *m, bool clear, char *out,
                   size_t cap)
{
    static const char *const cls_names[] = {"public", "pan", "track", "pin", "secret"};
    struct out o = {out, cap, 0, cap == 0};
    if (cap > 0)
        out[0] = '\0';
    puts_(&o, "MTI ");
    put(&o, m->mti, 4);
    puts_(&o, "\n");
    for (int n = 2; n <= ISO_MAX_FIELD; n++) {
        if (!iso_has(m, n) || is_bitmap_bit(d, n) || !d->f[n].defined)
            continue;
        char k[32];
        snprintf(k, sizeof(k), "%3d [%s] ", n, cls_names[d->f[n].cls]);
        puts_(&o, k);
        put_value_json(d, n, &m->f[n], clear, &o);
        puts_(&o, "\n");
    }
    return o.overflow ? -1 : (long)o.len;
}
