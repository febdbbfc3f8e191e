/*
 * dialect.c - load a dialect from a conf-format file or an embedded built-in.
 *
 * Layout (see conf/dialects/ascii87.conf for a complete, commented example):
 *
 *   [dialect]
 *   name     = ascii87
 *   mti      = ascii | bcd | ebcdic
 *   bitmap   = binary | hex            (hex digits in the text encoding)
 *   text     = ascii | ebcdic          (an, ans, x+n sign; default for z)
 *   numeric  = ascii | bcd | ebcdic    (n, z, x+n digits)
 *   binary   = raw | hex               (b fields)
 *   prefix   = ascii | bcd | ebcdic | binary
 *   pad      = left | right            (BCD odd lengths)
 *   pad_nibble = 0 | F
 *   tertiary = no | yes                (field 65 is the tertiary bitmap)
 *   [framing]
 *   length = none | len2 | len4ascii | len2bcd
 *   header = 0..32     tpdu = no | yes     max = 8192
 *   [fields]
 *   N = TYPE LENGTH MAX [CLASS] [COMPOSITE] [enc=E] [prefix=E] [pad=left|right]
 *       TYPE n an ans b z x+n; LENGTH fixed LL LLL LLLL LLLLLL;
 *       CLASS public pan track pin secret; COMPOSITE tlv orig subbitmap
 *   [subfields N]      subfields of the subbitmap field N, same syntax
 *
 * Loading allocates one struct iso_dialect; nothing else is kept.
 */
#include "common/util.h"
#include "conf/conf.h"
#include "iso8583/iso8583.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const enc_names[] = {"ascii", "bcd", "ebcdic", "binary", NULL};
static const char *const type_tok[] = {"n", "an", "ans", "b", "z", "x+n", NULL};
static const char *const len_tok[] = {"fixed", "LL", "LLL", "LLLL", "LLLLLL", NULL};
static const char *const class_tok[] = {"public", "pan", "track", "pin", "secret", NULL};
static const char *const comp_tok[] = {"none", "tlv", "orig", "subbitmap", NULL};

static int lookup(const char *const *names, const char *w)
{
    for (int i = 0; names[i]; i++)
        if (strcmp(names[i], w) == 0)
            return i;
    return -1;
}

struct defaults {
    uint8_t text, numeric, prefix, pad_left, pad_nib;
    bool bin_hex;
};

/* parse "TYPE LENGTH MAX [tokens...]" into fd */
static int parse_fdef(const struct conf_file *cf, const struct conf_kv *kv,
                      const struct defaults *df, struct iso_fdef *fd, struct conf_err *err)
{
    char buf[256];
    if (strlen(kv->val) >= sizeof(buf))
        return conf_fail(cf, kv->line, err, "field %s: definition too long", kv->key);
    strcpy(buf, kv->val);
    char *save = NULL;
    char *w[3];
    for (int i = 0; i < 3; i++) {
        w[i] = strtok_r(i == 0 ? buf : NULL, " \t", &save);
        if (w[i] == NULL)
            return conf_fail(cf, kv->line, err, "field %s: want 'TYPE LENGTH MAX ...'", kv->key);
    }
    int t = lookup(type_tok, w[0]), l = lookup(len_tok, w[1]);
    if (t < 0)
        return conf_fail(cf, kv->line, err, "field %s: unknown type '%s'", kv->key, w[0]);
    if (l < 0)
        return conf_fail(cf, kv->line, err, "field %s: unknown length kind '%s'", kv->key, w[1]);
    char *end;
    long max = strtol(w[2], &end, 10);
    static const long lim[] = {999, 99, 999, 9999, 999999};
    if (*end != '\0' || max < 1 || max > lim[l] || max > ISO_MAX_MSG)
        return conf_fail(cf, kv->line, err, "field %s: bad max length '%s'", kv->key, w[2]);
    memset(fd, 0, sizeof(*fd));
    fd->defined = true;
    fd->type = (uint8_t)t;
    fd->lenkind = (uint8_t)l;
    fd->max = (uint32_t)max;
    fd->lenc = df->prefix;
    fd->pad_left = df->pad_left;
    fd->pad_nib = df->pad_nib;
    switch (t) {
    case ISO_T_N:
    case ISO_T_XN:
        fd->enc = df->numeric;
        break;
    case ISO_T_Z:
        /* track 2 convention: odd lengths padded on the right with F */
        fd->enc = df->numeric;
        fd->pad_left = 0;
        fd->pad_nib = 0xF;
        break;
    case ISO_T_B:
        fd->enc = df->bin_hex ? df->text : ISO_E_BINARY;
        break;
    default:
        fd->enc = df->text;
    }
    char *tok;
    while ((tok = strtok_r(NULL, " \t", &save)) != NULL) {
        int v;
        if ((v = lookup(class_tok, tok)) >= 0) {
            fd->cls = (uint8_t)v;
        } else if ((v = lookup(comp_tok, tok)) >= 0) {
            fd->comp = (uint8_t)v;
        } else if (strncmp(tok, "enc=", 4) == 0 && (v = lookup(enc_names, tok + 4)) >= 0) {
            fd->enc = (uint8_t)v;
        } else if (strcmp(tok, "enc=hex") == 0) {
            fd->enc = df->text;
        } else if (strncmp(tok, "prefix=", 7) == 0 && (v = lookup(enc_names, tok + 7)) >= 0) {
            fd->lenc = (uint8_t)v;
        } else if (strcmp(tok, "pad=left") == 0 || strcmp(tok, "pad=right") == 0) {
            fd->pad_left = tok[4] == 'l';
        } else {
            return conf_fail(cf, kv->line, err, "field %s: unknown word '%s'", kv->key, tok);
        }
    }
    /* combinations the codec does not define */
    if (fd->enc == ISO_E_BCD && (t == ISO_T_AN || t == ISO_T_ANS))
        return conf_fail(cf, kv->line, err, "field %s: %s cannot be BCD", kv->key, w[0]);
    if (fd->enc == ISO_E_BINARY && t != ISO_T_B)
        return conf_fail(cf, kv->line, err, "field %s: only b fields can be binary", kv->key);
    if (fd->enc == ISO_E_BCD && t == ISO_T_B)
        return conf_fail(cf, kv->line, err, "field %s: b cannot be BCD", kv->key);
    if (fd->comp == ISO_X_TLV && t != ISO_T_B)
        return conf_fail(cf, kv->line, err, "field %s: tlv needs type b", kv->key);
    if (fd->comp == ISO_X_ORIG && (t != ISO_T_N || l != ISO_L_FIXED || max != 42))
        return conf_fail(cf, kv->line, err, "field %s: orig needs 'n fixed 42'", kv->key);
    if (fd->comp == ISO_X_SUBBITMAP && t != ISO_T_B)
        return conf_fail(cf, kv->line, err, "field %s: subbitmap needs type b", kv->key);
    return 0;
}

static int field_number(const struct conf_file *cf, const struct conf_kv *kv, int lo, int hi,
                        int *out, struct conf_err *err)
{
    char *end;
    long n = strtol(kv->key, &end, 10);
    if (*end != '\0' || n < lo || n > hi)
        return conf_fail(cf, kv->line, err, "field number '%s' not in %d..%d", kv->key, lo, hi);
    *out = (int)n;
    return 0;
}

static int get_enc(const struct conf_file *cf, struct conf_section *s, const char *key,
                   const char *const *names, uint8_t *out, struct conf_err *err)
{
    int v = *out;
    if (conf_get_enum(cf, s, key, names, &v, err) < 0)
        return -1;
    *out = (uint8_t)v;
    return 0;
}

static int build(struct conf_file *cf, struct iso_dialect *d, struct conf_err *err)
{
    static const char *const mti_names[] = {"ascii", "bcd", "ebcdic", NULL};
    static const char *const text_names[] = {"ascii", "", "ebcdic", NULL};
    static const char *const num_names[] = {"ascii", "bcd", "ebcdic", NULL};
    static const char *const bm_names[] = {"binary", "hex", NULL};
    static const char *const bin_names[] = {"raw", "hex", NULL};
    static const char *const pad_names[] = {"right", "left", NULL};
    static const char *const frame_names[] = {"none", "len2", "len4ascii", "len2bcd", NULL};
    static const char *const nib_names[] = {"0", "F", NULL};

    struct conf_section *s = conf_find(cf, "dialect", NULL);
    if (s == NULL)
        return conf_fail(cf, 1, err, "missing [dialect] section");
    const char *name = NULL;
    if (conf_require(cf, s, "name", err) < 0 || conf_get_str(cf, s, "name", &name, err) < 0)
        return -1;
    if (strlen(name) >= sizeof(d->name))
        return conf_fail(cf, s->line, err, "dialect name too long");
    strcpy(d->name, name);
    struct defaults df = {ISO_E_ASCII, ISO_E_ASCII, ISO_E_ASCII, 1, 0, false};
    uint8_t bin = 0, nib = 0;
    d->mti_enc = ISO_E_ASCII;
    d->bm_enc = ISO_BM_BINARY;
    if (get_enc(cf, s, "mti", mti_names, &d->mti_enc, err) < 0 ||
        get_enc(cf, s, "bitmap", bm_names, &d->bm_enc, err) < 0 ||
        get_enc(cf, s, "text", text_names, &df.text, err) < 0 ||
        get_enc(cf, s, "numeric", num_names, &df.numeric, err) < 0 ||
        get_enc(cf, s, "binary", bin_names, &bin, err) < 0 ||
        get_enc(cf, s, "prefix", enc_names, &df.prefix, err) < 0 ||
        get_enc(cf, s, "pad", pad_names, &df.pad_left, err) < 0 ||
        get_enc(cf, s, "pad_nibble", nib_names, &nib, err) < 0 ||
        conf_get_bool(cf, s, "tertiary", &d->tertiary, err) < 0)
        return -1;
    df.bin_hex = bin == 1;
    df.pad_nib = nib ? 0xF : 0;
    d->text_enc = df.text;

    d->framing.kind = ISO_FR_NONE;
    d->framing.max_len = ISO_MAX_MSG;
    if ((s = conf_find(cf, "framing", NULL)) != NULL) {
        int64_t hdr = 0, max = ISO_MAX_MSG;
        if (get_enc(cf, s, "length", frame_names, &d->framing.kind, err) < 0 ||
            conf_get_int(cf, s, "header", 0, 32, &hdr, err) < 0 ||
            conf_get_bool(cf, s, "tpdu", &d->framing.tpdu_swap, err) < 0 ||
            conf_get_int(cf, s, "max", 16, ISO_MAX_MSG + 32, &max, err) < 0)
            return -1;
        d->framing.hdr_len = (uint8_t)hdr;
        d->framing.max_len = (uint32_t)max;
        if (d->framing.tpdu_swap && hdr != 5)
            return conf_fail(cf, s->line, err, "tpdu = yes needs header = 5");
    }

    if ((s = conf_find(cf, "fields", NULL)) == NULL)
        return conf_fail(cf, 1, err, "missing [fields] section");
    for (size_t i = 0; i < s->nkv; i++) {
        struct conf_kv *kv = &s->kv[i];
        int n;
        kv->used = true;
        if (field_number(cf, kv, 2, ISO_MAX_FIELD, &n, err) < 0)
            return -1;
        if (n == 65 && d->tertiary)
            return conf_fail(cf, kv->line, err, "field 65 is the tertiary bitmap here");
        if (n > 128 && !d->tertiary)
            return conf_fail(cf, kv->line, err, "field %d needs tertiary = yes", n);
        if (d->f[n].defined)
            return conf_fail(cf, kv->line, err, "field %d defined twice", n);
        if (parse_fdef(cf, kv, &df, &d->f[n], err) < 0)
            return -1;
        if (d->f[n].comp == ISO_X_SUBBITMAP) {
            if (d->sub_field != 0)
                return conf_fail(cf, kv->line, err, "only one subbitmap field per dialect");
            d->sub_field = n;
        }
    }
    s = NULL;
    while ((s = conf_next(cf, s, "subfields")) != NULL) {
        char want[8];
        snprintf(want, sizeof(want), "%d", d->sub_field);
        if (s->arg == NULL || d->sub_field == 0 || strcmp(s->arg, want) != 0)
            return conf_fail(cf, s->line, err, "[subfields %s] is not the subbitmap field",
                             s->arg ? s->arg : "");
        /* subfields are read from the logical value: ASCII text, raw binary */
        struct defaults sdf = {ISO_E_ASCII, ISO_E_ASCII, ISO_E_ASCII, 1, 0, false};
        for (size_t i = 0; i < s->nkv; i++) {
            struct conf_kv *kv = &s->kv[i];
            int n;
            kv->used = true;
            if (field_number(cf, kv, 2, ISO_MAX_SUB, &n, err) < 0)
                return -1;
            if (d->sub[n].defined)
                return conf_fail(cf, kv->line, err, "subfield %d defined twice", n);
            if (parse_fdef(cf, kv, &sdf, &d->sub[n], err) < 0)
                return -1;
            const struct iso_fdef *sf = &d->sub[n];
            if (sf->enc == ISO_E_BCD || sf->enc == ISO_E_EBCDIC ||
                (sf->type == ISO_T_B && sf->enc != ISO_E_BINARY) || sf->comp != ISO_X_NONE ||
                sf->lenc != ISO_E_ASCII)
                return conf_fail(cf, kv->line, err,
                                 "subfield %d: only ascii text and raw binary subfields", n);
        }
    }
    return conf_check_unused(cf, err);
}

struct iso_dialect *iso_dialect_parse(const char *name, const char *text, size_t len, char *errbuf,
                                      size_t errlen)
{
    struct conf_err err;
    struct conf_file *cf = NULL;
    if (conf_parse(name, text, len, &cf, &err) < 0) {
        snprintf(errbuf, errlen, "%s", err.msg);
        return NULL;
    }
    struct iso_dialect *d = calloc(1, sizeof(*d));
    if (d == NULL) {
        conf_free(cf);
        snprintf(errbuf, errlen, "%s: out of memory", name);
        return NULL;
    }
    if (build(cf, d, &err) < 0) {
        snprintf(errbuf, errlen, "%s", err.msg);
        free(d);
        d = NULL;
    }
    conf_free(cf);
    return d;
}

struct iso_dialect *iso_dialect_load(const char *path, char *errbuf, size_t errlen)
{
    size_t len;
    char *text = util_read_file(path, 1 << 20, &len);
    if (text == NULL) {
        snprintf(errbuf, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    struct iso_dialect *d = iso_dialect_parse(path, text, len, errbuf, errlen);
    free(text);
    return d;
}

struct iso_dialect *iso_dialect_builtin(const char *name, char *errbuf, size_t errlen)
{
    for (size_t i = 0; i < iso_builtin_count; i++)
        if (strcmp(iso_builtin_texts[i].name, name) == 0) {
            char label[64];
            snprintf(label, sizeof(label), "<builtin %s>", name);
            return iso_dialect_parse(label, iso_builtin_texts[i].text, iso_builtin_texts[i].len,
                                     errbuf, errlen);
        }
    snprintf(errbuf, errlen, "unknown dialect '%s'", name);
    return NULL;
}

const char *const *iso_dialect_builtin_names(void)
{
    return iso_builtin_names;
}

void iso_dialect_free(struct iso_dialect *d)
{
    free(d);
}
