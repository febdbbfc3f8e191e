/*
 * ctl_iso.c - cardgatectl iso decode|encode.
 *
 *   cardgatectl iso decode [--dialect NAME | --dialect-file FILE] [--hex] [--framed]
 *                          [--no-mask] [--text]
 *       one message on stdin -> {"mti":"0100","fields":{"2":"476173******0119",...}}
 *   cardgatectl iso encode [--dialect NAME | --dialect-file FILE] [--hex] [--framed]
 *       that JSON on stdin (clear values) -> the message bytes on stdout
 *
 * Malformed input: exit 1 with the codec's field-naming error on stderr.
 */
#include "common/json.h"
#include "common/util.h"
#include "iso8583/iso8583.h"
#include "tools/ctl/ctl.h"

#include <ctype.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IN_MAX (4 * ISO_MAX_MSG + 64)

/* ---- encode: JSON (common/json tree) -> logical field values --------- */

/*
 * Where converted values live until the encode: one arena, filled front to
 * back, so the message's views stay valid.
 */
struct enc {
    uint8_t *arena;
    size_t used, cap;
    char err[256];
};

static uint8_t *arena_take(struct enc *e, size_t n)
{
    if (e->cap - e->used < n) {
        snprintf(e->err, sizeof(e->err), "json: input too large");
        return NULL;
    }
    uint8_t *p = e->arena + e->used;
    e->used += n;
    return p;
}

/* a JSON string (UTF-8) as Latin-1 bytes, which is what ISO 8583 text carries */
static int latin1_value(struct enc *e, const char *what, const char *s, const uint8_t **out,
                        size_t *len)
{
    size_t n = strlen(s), k = 0;
    uint8_t *dst = arena_take(e, n);
    if (dst == NULL)
        return -1;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = (uint8_t)s[i];
        if (c < 0x80) {
            dst[k++] = c;
        } else if ((c == 0xC2 || c == 0xC3) && i + 1 < n && ((uint8_t)s[i + 1] & 0xC0) == 0x80) {
            dst[k++] = (uint8_t)((c & 0x03) << 6 | ((uint8_t)s[++i] & 0x3F));
        } else {
            snprintf(e->err, sizeof(e->err), "%s: character outside Latin-1", what);
            return -1;
        }
    }
    *out = dst;
    *len = k;
    return 0;
}

static int hex_value(struct enc *e, const char *what, const char *s, const uint8_t **out,
                     size_t *len)
{
    size_t cap = strlen(s) / 2 + 1;
    uint8_t *dst = arena_take(e, cap);
    if (dst == NULL)
        return -1;
    long r = util_hex_decode(s, dst, cap);
    if (r < 0) {
        snprintf(e->err, sizeof(e->err), "%s: not even-length hex", what);
        return -1;
    }
    *out = dst;
    *len = (size_t)r;
    return 0;
}

/* "12" -> 12 when the key is 1..3 digits, else -1 */
static int key_number(const char *k)
{
    int n = 0;
    size_t i;
    for (i = 0; k[i] != '\0'; i++) {
        if (i >= 3 || k[i] < '0' || k[i] > '9')
            return -1;
        n = n * 10 + (k[i] - '0');
    }
    return i == 0 ? -1 : n;
}

/* TLV object {"9F26":"hex", "70":{...}} -> BER-TLV bytes, in member order */
static int tlv_object(struct enc *e, int field, const struct json *obj, const uint8_t **out,
                      size_t *len)
{
    uint8_t buf[ISO_MAX_MSG];
    size_t used = 0;
    for (size_t i = 0; i < obj->n; i++) {
        const struct json *kid = &obj->kids[i];
        char what[48];
        char *end;
        unsigned long tag = strtoul(kid->key, &end, 16);
        size_t kl = strlen(kid->key);
        snprintf(what, sizeof(what), "field %d tag %.8s", field, kid->key);
        if (*end != '\0' || kl == 0 || kl > 8 || kl % 2) {
            snprintf(e->err, sizeof(e->err), "%s: bad TLV tag", what);
            return -1;
        }
        const uint8_t *v;
        size_t vl;
        if (kid->type == JSON_OBJECT) {
            if (tlv_object(e, field, kid, &v, &vl) < 0)
                return -1;
        } else if (kid->type != JSON_STRING || hex_value(e, what, kid->text, &v, &vl) < 0) {
            if (kid->type != JSON_STRING)
                snprintf(e->err, sizeof(e->err), "%s: want a hex string or an object", what);
            return -1;
        }
        long w = iso_tlv_put((uint32_t)tag, v, vl, buf + used, sizeof(buf) - used);
        if (w < 0) {
            snprintf(e->err, sizeof(e->err), "%s: too large", what);
            return -1;
        }
        used += (size_t)w;
    }
    uint8_t *dst = arena_take(e, used);
    if (dst == NULL)
        return -1;
    memcpy(dst, buf, used);
    *out = dst;
    *len = used;
    return 0;
}

/* field 90 parts object -> 42 digits, in the fixed part order */
static int orig_object(struct enc *e, int field, const struct json *obj, const uint8_t **out,
                       size_t *len)
{
    static const char *const names[] = {"mti", "stan", "datetime", "acquirer", "forwarder"};
    static const size_t widths[] = {4, 6, 10, 11, 11};
    uint8_t *dst = arena_take(e, 42);
    if (dst == NULL)
        return -1;
    if (obj->n != 5) {
        snprintf(e->err, sizeof(e->err),
                 "field %d: want the parts mti, stan, datetime, acquirer, "
                 "forwarder",
                 field);
        return -1;
    }
    size_t off = 0;
    for (size_t q = 0; q < 5; q++) {
        const char *v = json_get_str(obj, names[q]);
        if (v == NULL || strlen(v) != widths[q]) {
            snprintf(e->err, sizeof(e->err), "field %d: part %s needs %zu digits", field, names[q],
                     widths[q]);
            return -1;
        }
        memcpy(dst + off, v, widths[q]);
        off += widths[q];
    }
    *out = dst;
    *len = 42;
    return 0;
}

/* sub-bitmap object {"2":"...", ...} -> bitmap + subfields */
static int sub_object(struct enc *e, const struct iso_dialect *d, int field, const struct json *obj,
                      const uint8_t **out, size_t *len)
{
    struct iso_sub s;
    memset(&s, 0, sizeof(s));
    for (size_t i = 0; i < obj->n; i++) {
        const struct json *kid = &obj->kids[i];
        int n = key_number(kid->key);
        char what[32];
        snprintf(what, sizeof(what), "field %d.%.3s", field, kid->key);
        if (n < 2 || n > ISO_MAX_SUB || !d->sub[n].defined || kid->type != JSON_STRING) {
            snprintf(e->err, sizeof(e->err), "%s: not a string subfield of the dialect", what);
            return -1;
        }
        const uint8_t *v;
        size_t vl;
        if ((d->sub[n].type == ISO_T_B ? hex_value(e, what, kid->text, &v, &vl)
                                       : latin1_value(e, what, kid->text, &v, &vl)) < 0)
            return -1;
        s.bm |= 1ULL << (64 - n);
        s.f[n].p = v;
        s.f[n].len = (uint32_t)vl;
    }
    struct iso_err err;
    long r = iso_sub_build(d, &s, e->arena + e->used, e->cap - e->used, &err);
    if (r < 0) {
        snprintf(e->err, sizeof(e->err), "%s", err.msg);
        return -1;
    }
    *out = e->arena + e->used;
    *len = (size_t)r;
    e->used += (size_t)r;
    return 0;
}

static int set_field(struct enc *e, const struct iso_dialect *d, struct iso_msg *m,
                     const struct json *kid)
{
    int n = key_number(kid->key);
    if (n < 2 || n > ISO_MAX_FIELD || !d->f[n].defined || (n == 65 && d->tertiary)) {
        snprintf(e->err, sizeof(e->err), "json: field key '%.8s' not a field of dialect %s",
                 kid->key, d->name);
        return -1;
    }
    const struct iso_fdef *fd = &d->f[n];
    const uint8_t *v = NULL;
    size_t vl = 0;
    char what[16];
    snprintf(what, sizeof(what), "field %d", n);
    int r;
    if (kid->type == JSON_OBJECT) {
        if (fd->comp == ISO_X_TLV)
            r = tlv_object(e, n, kid, &v, &vl);
        else if (fd->comp == ISO_X_ORIG)
            r = orig_object(e, n, kid, &v, &vl);
        else if (fd->comp == ISO_X_SUBBITMAP)
            r = sub_object(e, d, n, kid, &v, &vl);
        else
            r = -1, snprintf(e->err, sizeof(e->err), "%s: not a composite field", what);
    } else if (kid->type == JSON_STRING) {
        r = fd->type == ISO_T_B ? hex_value(e, what, kid->text, &v, &vl)
                                : latin1_value(e, what, kid->text, &v, &vl);
    } else {
        r = -1, snprintf(e->err, sizeof(e->err), "%s: want a string or an object", what);
    }
    if (r < 0)
        return -1;
    if (iso_set(m, n, v, vl) < 0) {
        snprintf(e->err, sizeof(e->err), "%s: value too large", what);
        return -1;
    }
    return 0;
}

/* {"mti":"0100","fields":{...}} -> m (views into e's arena) */
static int build_message(struct enc *e, const struct iso_dialect *d, const struct json *root,
                         struct iso_msg *m)
{
    if (root->type != JSON_OBJECT) {
        snprintf(e->err, sizeof(e->err), "json: want an object {\"mti\":...,\"fields\":{...}}");
        return -1;
    }
    for (size_t i = 0; i < root->n; i++)
        if (strcmp(root->kids[i].key, "mti") != 0 && strcmp(root->kids[i].key, "fields") != 0) {
            snprintf(e->err, sizeof(e->err), "json: unknown key '%.32s' (want mti, fields)",
                     root->kids[i].key);
            return -1;
        }
    const char *mti = json_get_str(root, "mti");
    if (mti == NULL) {
        snprintf(e->err, sizeof(e->err), "mti: missing");
        return -1;
    }
    if (strlen(mti) != 4 || iso_set_mti(m, mti) < 0) {
        snprintf(e->err, sizeof(e->err), "mti: want 4 digits");
        return -1;
    }
    const struct json *fields = json_get(root, "fields");
    if (fields == NULL)
        return 0;
    if (fields->type != JSON_OBJECT) {
        snprintf(e->err, sizeof(e->err), "json: \"fields\" must be an object");
        return -1;
    }
    for (size_t i = 0; i < fields->n; i++)
        if (set_field(e, d, m, &fields->kids[i]) < 0)
            return -1;
    return 0;
}

/* ---- the command --------------------------------------------------------- */

static void usage(FILE *out)
{
    fprintf(out, "usage: cardgatectl iso decode [--dialect NAME | --dialect-file FILE] [--hex]\n"
                 "                              [--framed] [--no-mask] [--text]\n"
                 "       cardgatectl iso encode [--dialect NAME | --dialect-file FILE] [--hex]\n"
                 "                              [--framed]\n"
                 "built-in dialects:");
    for (const char *const *n = iso_dialect_builtin_names(); *n; n++)
        fprintf(out, " %s", *n);
    fprintf(out, " (default ascii87)\n");
}

static size_t read_all(FILE *fp, uint8_t *buf, size_t cap, bool *toolong)
{
    size_t n = 0, r;
    while (n < cap && (r = fread(buf + n, 1, cap - n, fp)) > 0)
        n += r;
    *toolong = n == cap && fgetc(fp) != EOF;
    return n;
}

static int do_decode(const struct iso_dialect *d, bool hex, bool framed, bool clear, bool text)
{
    static uint8_t in[IN_MAX + 1];
    static uint8_t raw[IN_MAX];
    static struct iso_msg m;
    static char out[1 << 20];
    bool toolong;
    size_t n = read_all(stdin, in, IN_MAX, &toolong);
    if (toolong) {
        fprintf(stderr, "cardgatectl iso: input longer than %d bytes\n", IN_MAX);
        return 1;
    }
    const uint8_t *msg = in;
    size_t len = n;
    if (hex) {
        size_t k = 0;
        for (size_t i = 0; i < n; i++)
            if (!isspace(in[i]))
                in[k++] = in[i];
        in[k] = '\0';
        long r = util_hex_decode((const char *)in, raw, sizeof(raw));
        if (r < 0) {
            fprintf(stderr, "cardgatectl iso: --hex input is not even-length hex\n");
            return 1;
        }
        msg = raw;
        len = (size_t)r;
    }
    struct iso_err err;
    if (framed) {
        size_t off, mlen, flen;
        int r = iso_frame_parse(&d->framing, msg, len, &off, &mlen, &flen, &err);
        if (r == 0) {
            fprintf(stderr, "cardgatectl iso: frame: truncated (have %zu bytes)\n", len);
            return 1;
        }
        if (r < 0) {
            fprintf(stderr, "cardgatectl iso: %s\n", err.msg);
            return 1;
        }
        if (flen != len) {
            fprintf(stderr, "cardgatectl iso: frame: %zu bytes after the frame\n", len - flen);
            return 1;
        }
        msg += off;
        len = mlen;
    }
    if (iso_decode(d, msg, len, &m, &err) < 0) {
        fprintf(stderr, "cardgatectl iso: %s\n", err.msg);
        return 1;
    }
    long w = text ? iso_dump_text(d, &m, clear, out, sizeof(out))
                  : iso_dump_json(d, &m, clear, out, sizeof(out));
    if (w < 0) {
        fprintf(stderr, "cardgatectl iso: dump too large\n");
        return 1;
    }
    fputs(out, stdout);
    if (!text)
        fputc('\n', stdout);
    return 0;
}

static int do_encode(const struct iso_dialect *d, bool hex, bool framed)
{
    static char in[4 * IN_MAX + 1];
    static uint8_t arena[4 * IN_MAX];
    static struct iso_msg m;
    static uint8_t out[ISO_MAX_MSG + 64];
    bool toolong;
    size_t n = read_all(stdin, (uint8_t *)in, sizeof(in) - 1, &toolong);
    if (toolong) {
        fprintf(stderr, "cardgatectl iso: input too long\n");
        return 1;
    }
    char jerr[256];
    struct json *root = json_parse(in, n, jerr, sizeof(jerr));
    if (root == NULL) {
        fprintf(stderr, "cardgatectl iso: json: %s\n", jerr);
        return 1;
    }
    struct enc e = {.arena = arena, .cap = sizeof(arena)};
    iso_msg_init(&m);
    int rc = build_message(&e, d, root, &m);
    json_free(root);
    if (rc < 0) {
        fprintf(stderr, "cardgatectl iso: %s\n", e.err);
        return 1;
    }
    struct iso_err err;
    size_t hl = framed ? iso_frame_prefix_len(&d->framing) + d->framing.hdr_len : 0, len;
    if (iso_encode(d, &m, out + hl, sizeof(out) - hl, &len, &err) < 0) {
        fprintf(stderr, "cardgatectl iso: %s\n", err.msg);
        return 1;
    }
    if (framed && iso_frame_write_head(&d->framing, NULL, len, out, hl) != (long)hl) {
        fprintf(stderr, "cardgatectl iso: frame: message too long for the framing\n");
        return 1;
    }
    len += hl;
    if (hex) {
        static char hx[2 * sizeof(out) + 1];
        util_hex_encode(out, len, hx);
        printf("%s\n", hx);
    } else if (fwrite(out, 1, len, stdout) != len) {
        return 1;
    }
    return fflush(stdout) == 0 ? 0 : 1;
}

int ctl_iso_main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"dialect", required_argument, NULL, 'd'}, {"dialect-file", required_argument, NULL, 'f'},
        {"hex", no_argument, NULL, 'x'},           {"framed", no_argument, NULL, 'F'},
        {"no-mask", no_argument, NULL, 'c'},       {"text", no_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
    };
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *sub = argv[1];
    bool decode = strcmp(sub, "decode") == 0;
    if (!decode && strcmp(sub, "encode") != 0) {
        fprintf(stderr, "cardgatectl iso: unknown subcommand '%s'\n", sub);
        usage(stderr);
        return 2;
    }
    const char *dname = "ascii87", *dfile = NULL;
    bool hex = false, framed = false, clear = false, text = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc - 1, argv + 1, "d:f:xFcth", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            dname = optarg;
            break;
        case 'f':
            dfile = optarg;
            break;
        case 'x':
            hex = true;
            break;
        case 'F':
            framed = true;
            break;
        case 'c':
            clear = true;
            break;
        case 't':
            text = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc - 1 || (!decode && (clear || text))) {
        usage(stderr);
        return 2;
    }
    char ebuf[700];
    struct iso_dialect *d = dfile ? iso_dialect_load(dfile, ebuf, sizeof(ebuf))
                                  : iso_dialect_builtin(dname, ebuf, sizeof(ebuf));
    if (d == NULL) {
        fprintf(stderr, "cardgatectl iso: %s\n", ebuf);
        return 2;
    }
    int rc = decode ? do_decode(d, hex, framed, clear, text) : do_encode(d, hex, framed);
    iso_dialect_free(d);
    return rc;
}
