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
#include "common/util.h"
#include "iso8583/iso8583.h"
#include "tools/ctl/ctl.h"

#include <ctype.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IN_MAX (4 * ISO_MAX_MSG + 64)

/* ---- a small JSON reader: objects and strings, nothing else ---------- */

struct jp {
    const char *s;
    size_t i, n;
    char err[256];
    uint8_t *arena; /* decoded strings live here for the process lifetime */
    size_t used, cap;
};

static void jws(struct jp *j)
{
    while (j->i < j->n && isspace((unsigned char)j->s[j->i]))
        j->i++;
}

static int jexpect(struct jp *j, char c)
{
    jws(j);
    if (j->i >= j->n || j->s[j->i] != c) {
        snprintf(j->err, sizeof(j->err), "json: expected '%c' at byte %zu", c, j->i);
        return -1;
    }
    j->i++;
    return 0;
}

static int jpeek(struct jp *j)
{
    jws(j);
    return j->i < j->n ? (unsigned char)j->s[j->i] : -1;
}

/* a string into the arena (Latin-1: \u escapes must be <= 0xFF) */
static int jstring(struct jp *j, const uint8_t **out, size_t *len)
{
    if (jexpect(j, '"') < 0)
        return -1;
    uint8_t *dst = j->arena + j->used;
    size_t k = 0;
    while (j->i < j->n && j->s[j->i] != '"') {
        if (j->used + k + 1 >= j->cap) {
            snprintf(j->err, sizeof(j->err), "json: input too large");
            return -1;
        }
        unsigned char c = (unsigned char)j->s[j->i++];
        if (c == '\\') {
            if (j->i >= j->n)
                break;
            c = (unsigned char)j->s[j->i++];
            switch (c) {
            case 'n':
                c = '\n';
                break;
            case 't':
                c = '\t';
                break;
            case 'r':
                c = '\r';
                break;
            case 'b':
                c = '\b';
                break;
            case 'f':
                c = '\f';
                break;
            case 'u': {
                unsigned v = 0;
                for (int q = 0; q < 4; q++) {
                    int h = j->i < j->n ? j->s[j->i++] : 0;
                    if (!isxdigit(h)) {
                        snprintf(j->err, sizeof(j->err), "json: bad \\u escape");
                        return -1;
                    }
                    v = v * 16 + (unsigned)(isdigit(h) ? h - '0' : (tolower(h) - 'a' + 10));
                }
                if (v > 0xFF) {
                    snprintf(j->err, sizeof(j->err), "json: character U+%04X not in Latin-1", v);
                    return -1;
                }
                c = (unsigned char)v;
                break;
            }
            default:
                break;
            }
        }
        dst[k++] = c;
    }
    if (j->i >= j->n) {
        snprintf(j->err, sizeof(j->err), "json: unterminated string");
        return -1;
    }
    j->i++;
    j->used += k;
    *out = dst;
    *len = k;
    return 0;
}

/* ---- encode: JSON values -> logical field values ---------------------- */

static uint8_t *arena_take(struct jp *j, size_t n)
{
    if (j->cap - j->used < n)
        return NULL;
    uint8_t *p = j->arena + j->used;
    j->used += n;
    return p;
}

static int hex_value(struct jp *j, const uint8_t *s, size_t n, const uint8_t **out, size_t *len,
                     const char *what)
{
    uint8_t *dst = arena_take(j, n / 2 + 1);
    char *tmp = malloc(n + 1);
    if (dst == NULL || tmp == NULL) {
        free(tmp);
        snprintf(j->err, sizeof(j->err), "%s: too large", what);
        return -1;
    }
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    long r = util_hex_decode(tmp, dst, n / 2 + 1);
    free(tmp);
    if (r < 0) {
        snprintf(j->err, sizeof(j->err), "%s: not even-length hex", what);
        return -1;
    }
    *out = dst;
    *len = (size_t)r;
    return 0;
}

/* TLV object {"9F26":"hex", "70":{...}} -> BER-TLV bytes */
static int tlv_object(struct jp *j, int field, const uint8_t **out, size_t *len, int depth)
{
    uint8_t buf[ISO_MAX_MSG];
    size_t used = 0;
    if (depth > 8 || jexpect(j, '{') < 0)
        return -1;
    if (jpeek(j) == '}') {
        j->i++;
        goto done;
    }
    for (;;) {
        const uint8_t *k, *v;
        size_t kl, vl;
        char what[48];
        if (jstring(j, &k, &kl) < 0 || jexpect(j, ':') < 0)
            return -1;
        char tagtxt[12];
        if (kl == 0 || kl > 8 || kl % 2) {
            snprintf(j->err, sizeof(j->err), "field %d: bad TLV tag key", field);
            return -1;
        }
        memcpy(tagtxt, k, kl);
        tagtxt[kl] = '\0';
        char *end;
        unsigned long tag = strtoul(tagtxt, &end, 16);
        if (*end != '\0') {
            snprintf(j->err, sizeof(j->err), "field %d: bad TLV tag '%s'", field, tagtxt);
            return -1;
        }
        snprintf(what, sizeof(what), "field %d tag %s", field, tagtxt);
        if (jpeek(j) == '{') {
            if (tlv_object(j, field, &v, &vl, depth + 1) < 0)
                return -1;
        } else {
            const uint8_t *s;
            size_t sl;
            if (jstring(j, &s, &sl) < 0 || hex_value(j, s, sl, &v, &vl, what) < 0)
                return -1;
        }
        long w = iso_tlv_put((uint32_t)tag, v, vl, buf + used, sizeof(buf) - used);
        if (w < 0) {
            snprintf(j->err, sizeof(j->err), "%s: too large", what);
            return -1;
        }
        used += (size_t)w;
        if (jpeek(j) == ',') {
            j->i++;
            continue;
        }
        if (jexpect(j, '}') < 0)
            return -1;
        break;
    }
done : {
    uint8_t *dst = arena_take(j, used);
    if (dst == NULL) {
        snprintf(j->err, sizeof(j->err), "field %d: too large", field);
        return -1;
    }
    memcpy(dst, buf, used);
    *out = dst;
    *len = used;
}
    return 0;
}

/* field 90 parts object -> 42 digits, in the fixed part order */
static int orig_object(struct jp *j, const uint8_t **out, size_t *len)
{
    static const char *const names[] = {"mti", "stan", "datetime", "acquirer", "forwarder"};
    static const size_t widths[] = {4, 6, 10, 11, 11};
    const uint8_t *part[5] = {0};
    size_t plen[5] = {0};
    if (jexpect(j, '{') < 0)
        return -1;
    while (jpeek(j) != '}') {
        const uint8_t *k, *v;
        size_t kl, vl;
        if (jstring(j, &k, &kl) < 0 || jexpect(j, ':') < 0 || jstring(j, &v, &vl) < 0)
            return -1;
        size_t q;
        for (q = 0; q < 5; q++)
            if (strlen(names[q]) == kl && memcmp(names[q], k, kl) == 0)
                break;
        if (q == 5) {
            snprintf(j->err, sizeof(j->err), "field 90: unknown part");
            return -1;
        }
        part[q] = v;
        plen[q] = vl;
        if (jpeek(j) == ',')
            j->i++;
    }
    j->i++;
    uint8_t *dst = arena_take(j, 42);
    if (dst == NULL)
        return -1;
    size_t off = 0;
    for (size_t q = 0; q < 5; q++) {
        if (plen[q] != widths[q]) {
            snprintf(j->err, sizeof(j->err), "field 90: part %s needs %zu digits", names[q],
                     widths[q]);
            return -1;
        }
        memcpy(dst + off, part[q], widths[q]);
        off += widths[q];
    }
    *out = dst;
    *len = 42;
    return 0;
}

/* sub-bitmap object {"2":"...", ...} -> bitmap + subfields */
static int sub_object(struct jp *j, const struct iso_dialect *d, int field, const uint8_t **out,
                      size_t *len)
{
    struct iso_sub s;
    memset(&s, 0, sizeof(s));
    if (jexpect(j, '{') < 0)
        return -1;
    while (jpeek(j) != '}') {
        const uint8_t *k, *v;
        size_t kl, vl;
        if (jstring(j, &k, &kl) < 0 || jexpect(j, ':') < 0 || jstring(j, &v, &vl) < 0)
            return -1;
        int n = 0;
        for (size_t q = 0; q < kl && q < 3; q++)
            n = isdigit(k[q]) ? n * 10 + (k[q] - '0') : -1000;
        if (n < 2 || n > ISO_MAX_SUB || kl > 2 || !d->sub[n].defined) {
            snprintf(j->err, sizeof(j->err), "field %d: unknown subfield", field);
            return -1;
        }
        if (d->sub[n].type == ISO_T_B) {
            char what[32];
            snprintf(what, sizeof(what), "field %d.%d", field, n);
            if (hex_value(j, v, vl, &v, &vl, what) < 0)
                return -1;
        }
        s.bm |= 1ULL << (64 - n);
        s.f[n].p = v;
        s.f[n].len = (uint32_t)vl;
        if (jpeek(j) == ',')
            j->i++;
    }
    j->i++;
    uint8_t *dst = j->arena + j->used;
    struct iso_err e;
    long r = iso_sub_build(d, &s, dst, j->cap - j->used, &e);
    if (r < 0) {
        snprintf(j->err, sizeof(j->err), "%s", e.msg);
        return -1;
    }
    j->used += (size_t)r;
    *out = dst;
    *len = (size_t)r;
    return 0;
}

static int parse_fields(struct jp *j, const struct iso_dialect *d, struct iso_msg *m)
{
    if (jexpect(j, '{') < 0)
        return -1;
    if (jpeek(j) == '}') {
        j->i++;
        return 0;
    }
    for (;;) {
        const uint8_t *k, *v;
        size_t kl, vl;
        if (jstring(j, &k, &kl) < 0 || jexpect(j, ':') < 0)
            return -1;
        int n = 0;
        for (size_t q = 0; q < kl; q++)
            n = q < 3 && isdigit(k[q]) ? n * 10 + (k[q] - '0') : -1000;
        if (n < 2 || n > ISO_MAX_FIELD || !d->f[n].defined || n == 1 || (n == 65 && d->tertiary)) {
            snprintf(j->err, sizeof(j->err), "json: field key '%.*s' not a field of dialect %s",
                     (int)(kl > 8 ? 8 : kl), (const char *)k, d->name);
            return -1;
        }
        const struct iso_fdef *fd = &d->f[n];
        if (jpeek(j) == '{') {
            int r = -1;
            if (fd->comp == ISO_X_TLV)
                r = tlv_object(j, n, &v, &vl, 0);
            else if (fd->comp == ISO_X_ORIG)
                r = orig_object(j, &v, &vl);
            else if (fd->comp == ISO_X_SUBBITMAP)
                r = sub_object(j, d, n, &v, &vl);
            else
                snprintf(j->err, sizeof(j->err), "field %d: not a composite field", n);
            if (r < 0)
                return -1;
        } else {
            if (jstring(j, &v, &vl) < 0)
                return -1;
            if (fd->type == ISO_T_B) {
                char what[16];
                snprintf(what, sizeof(what), "field %d", n);
                if (hex_value(j, v, vl, &v, &vl, what) < 0)
                    return -1;
            }
        }
        if (iso_set(m, n, v, vl) < 0) {
            snprintf(j->err, sizeof(j->err), "field %d: cannot set", n);
            return -1;
        }
        if (jpeek(j) == ',') {
            j->i++;
            continue;
        }
        return jexpect(j, '}');
    }
}

static int parse_message(struct jp *j, const struct iso_dialect *d, struct iso_msg *m)
{
    bool have_mti = false;
    if (jexpect(j, '{') < 0)
        return -1;
    while (jpeek(j) != '}') {
        const uint8_t *k, *v;
        size_t kl, vl;
        if (jstring(j, &k, &kl) < 0 || jexpect(j, ':') < 0)
            return -1;
        if (kl == 3 && memcmp(k, "mti", 3) == 0) {
            if (jstring(j, &v, &vl) < 0)
                return -1;
            char mti[5] = {0};
            if (vl != 4 || (memcpy(mti, v, 4), iso_set_mti(m, mti) < 0)) {
                snprintf(j->err, sizeof(j->err), "mti: want 4 digits");
                return -1;
            }
            have_mti = true;
        } else if (kl == 6 && memcmp(k, "fields", 6) == 0) {
            if (parse_fields(j, d, m) < 0)
                return -1;
        } else {
            snprintf(j->err, sizeof(j->err), "json: unknown key (want \"mti\", \"fields\")");
            return -1;
        }
        if (jpeek(j) == ',')
            j->i++;
        else if (jpeek(j) != '}') {
            snprintf(j->err, sizeof(j->err), "json: expected ',' or '}' at byte %zu", j->i);
            return -1;
        }
    }
    j->i++;
    if (jpeek(j) != -1) {
        snprintf(j->err, sizeof(j->err), "json: trailing data at byte %zu", j->i);
        return -1;
    }
    if (!have_mti) {
        snprintf(j->err, sizeof(j->err), "mti: missing");
        return -1;
    }
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
    struct jp j = {.s = in, .n = n, .arena = arena, .cap = sizeof(arena)};
    iso_msg_init(&m);
    if (parse_message(&j, d, &m) < 0) {
        fprintf(stderr, "cardgatectl iso: %s\n", j.err);
        return 1;
    }
    struct iso_err err;
    size_t hl = 0, len;
    if (framed) {
        hl = iso_frame_prefix_len(&d->framing) + d->framing.hdr_len;
    }
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
