/*
 * fuzz_iso_decode - libFuzzer target: framing + decode of every shipped
 * dialect, then the decode -> encode -> decode round trip, the composite
 * helpers and the masked dump on whatever decoded.
 *
 * Input: byte 0 picks the dialect (low bits) and whether the dialect's
 * framing is applied (bit 4); the rest is the wire data.  The data is
 * copied into an exact-size heap block so ASan catches any over-read.
 */
#include "iso8583/iso8583.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static struct iso_dialect *dialects[8];
static size_t ndialects;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char err[700];
    for (const char *const *n = iso_dialect_builtin_names(); *n && ndialects < 8; n++) {
        dialects[ndialects] = iso_dialect_builtin(*n, err, sizeof(err));
        if (dialects[ndialects] == NULL) {
            fprintf(stderr, "%s\n", err);
            abort();
        }
        ndialects++;
    }
    /* the test dialect with every encoding, when run from the repository root */
    struct iso_dialect *all =
        iso_dialect_load("tests/data/iso8583/alltypes.conf", err, sizeof(err));
    if (all != NULL)
        dialects[ndialects++] = all;
    return 0;
}

static struct iso_msg m, back;
static uint8_t out[ISO_MAX_MSG];
static char dump[1 << 17];

static void check_roundtrip(const struct iso_dialect *d)
{
    struct iso_err err;
    size_t olen;
    if (iso_encode(d, &m, out, sizeof(out), &olen, &err) != 0) {
        fprintf(stderr, "%s: decoded message does not encode: %s\n", d->name, err.msg);
        abort();
    }
    if (iso_decode(d, out, olen, &back, &err) != 0) {
        fprintf(stderr, "%s: re-encoded message does not decode: %s\n", d->name, err.msg);
        abort();
    }
    if (memcmp(m.mti, back.mti, 4) != 0)
        abort();
    for (int n = 2; n <= ISO_MAX_FIELD; n++) {
        if (n == 65 && d->tertiary)
            continue;
        if (iso_has(&m, n) != iso_has(&back, n))
            abort();
        if (!iso_has(&m, n))
            continue;
        const struct iso_view *a = iso_get(&m, n), *b = iso_get(&back, n);
        if (a->len != b->len)
            abort();
        for (uint32_t i = 0; i < a->len; i++) {
            uint8_t x = a->p[i], y = b->p[i];
            /* an ASCII track separator 'D' comes back from BCD as '=' */
            if (x != y && !(d->f[n].type == ISO_T_Z && x == 'D' && y == '='))
                abort();
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || ndialects == 0)
        return 0;
    const struct iso_dialect *d = dialects[(data[0] & 0x0F) % ndialects];
    bool framed = (data[0] & 0x10) != 0;
    size = size - 1;
    uint8_t *buf = malloc(size ? size : 1);
    memcpy(buf, data + 1, size);
    const uint8_t *msg = buf;
    size_t len = size;
    struct iso_err err;
    if (framed) {
        size_t off, mlen, flen;
        if (iso_frame_parse(&d->framing, buf, size, &off, &mlen, &flen, &err) != 1) {
            free(buf);
            return 0;
        }
        if (off + mlen > size || flen > size)
            abort();
        msg = buf + off;
        len = mlen;
    }
    if (iso_decode(d, msg, len, &m, &err) == 0) {
        check_roundtrip(d);
        if (iso_dump_json(d, &m, false, dump, sizeof(dump)) < 0 ||
            iso_dump_text(d, &m, true, dump, sizeof(dump)) < 0)
            abort();
        struct iso_tlv t;
        for (int n = 2; n <= ISO_MAX_FIELD; n++) {
            if (!iso_has(&m, n))
                continue;
            const struct iso_view *v = iso_get(&m, n);
            if (d->f[n].comp == ISO_X_TLV && iso_tlv_find(v->p, v->len, 0x5A, &t, &err) < 0)
                abort(); /* decode validated it */
            if (d->f[n].comp == ISO_X_ORIG) {
                struct iso_orig o;
                if (iso_orig_parse(v, &o, &err) != 0)
                    abort();
            }
            if (d->f[n].comp == ISO_X_SUBBITMAP) {
                struct iso_sub s;
                (void)!iso_sub_parse(d, v, &s, &err);
            }
        }
        (void)iso_required_missing(&m);
    }
    free(buf);
    return 0;
}
