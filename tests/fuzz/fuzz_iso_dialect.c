/*
 * fuzz_iso_dialect - libFuzzer target: the dialect-file loader (operators
 * write these files; a typo must be an error with FILE:LINE, never a crash).
 * A dialect that loads must encode and decode a small message without
 * tripping a sanitizer.
 */
#include "iso8583/iso8583.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[700];
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';
    struct iso_dialect *d = iso_dialect_parse("fuzz", text, size, err, sizeof(err));
    free(text);
    if (d == NULL) {
        if (memchr(err, '\0', sizeof(err)) == NULL)
            abort();
        return 0;
    }
    static struct iso_msg m;
    static uint8_t out[ISO_MAX_MSG];
    size_t ol;
    struct iso_err e;
    iso_msg_init(&m);
    if (iso_set_mti(&m, "0100") != 0)
        abort();
    for (int n = 2; n <= ISO_MAX_FIELD; n += 7)
        if (d->f[n].defined && iso_set(&m, n, "1234", 4) != 0)
            abort();
    if (iso_encode(d, &m, out, sizeof(out), &ol, &e) == 0 && iso_decode(d, out, ol, &m, &e) != 0)
        abort();
    iso_dialect_free(d);
    return 0;
}
