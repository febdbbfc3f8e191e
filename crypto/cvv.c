/*
 * cvv.c - see cvv.h.
 */
#include "crypto/cvv.h"

#include "crypto/pan.h"

#include <openssl/crypto.h>
#include <string.h>

const char *cvv_status_name(enum cvv_status s)
{
    switch (s) {
    case CVV_OK:
        return "ok";
    case CVV_WRONG:
        return "wrong";
    case CVV_FORMAT_ERROR:
        return "format-error";
    case CVV_UNAVAILABLE:
        return "unavailable";
    }
    return "unknown";
}

static bool digits_n(const char *s, size_t n)
{
    if (s == NULL || strnlen(s, n + 1) != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

int cvv_compute(const uint8_t *cvk, size_t cvklen, const char *pan, size_t panlen,
                const char *expiry, const char *service_code, char out[4])
{
    char d[32];
    uint8_t blk[16];
    int rc = -1;

    if (cvklen != 16 || !pan_is_wellformed(pan, panlen) || !digits_n(expiry, 4) ||
        !digits_n(service_code, 3))
        return -1;
    memset(d, '0', sizeof(d));
    memcpy(d, pan, panlen);
    memcpy(d + panlen, expiry, 4);
    memcpy(d + panlen + 4, service_code, 3);
    if (crypto_pack_nibbles(d, 32, 0, blk, 16) != 0)
        goto out;
    /* E_KA(block1), XOR block2, TDES_KA|KB */
    if (crypto_ecb(CRYPTO_TDES, cvk, 8, true, blk, 8, blk) != 0)
        goto out;
    crypto_xor(blk, blk, blk + 8, 8);
    if (crypto_ecb(CRYPTO_TDES, cvk, 16, true, blk, 8, blk) != 0)
        goto out;
    rc = crypto_decimalize(blk, 8, out, 3);
out:
    OPENSSL_cleanse(d, sizeof(d));
    OPENSSL_cleanse(blk, sizeof(blk));
    return rc;
}

enum cvv_status cvv_verify(enum cvv_kind kind, const uint8_t *cvk, size_t cvklen, const char *pan,
                           size_t panlen, const char *expiry, const char *service_code,
                           const char *value)
{
    char calc[4];
    const char *sc = kind == CVV_CVV2 ? "000" : kind == CVV_ICVV ? "999" : service_code;
    enum cvv_status st;

    if (cvk == NULL || cvklen != 16)
        return CVV_UNAVAILABLE;
    if (!digits_n(value, 3) || (kind != CVV_MAGSTRIPE && kind != CVV_CVV2 && kind != CVV_ICVV))
        return CVV_FORMAT_ERROR;
    if (cvv_compute(cvk, cvklen, pan, panlen, expiry, sc, calc) != 0)
        return CVV_FORMAT_ERROR;
    st = CRYPTO_memcmp(calc, value, 3) == 0 ? CVV_OK : CVV_WRONG;
    OPENSSL_cleanse(calc, sizeof(calc));
    return st;
}

int track2_parse(const char *t2, size_t len, struct track2 *out)
{
    size_t sep;

    memset(out, 0, sizeof(*out));
    if (t2 == NULL)
        return -1;
    while (len > 0 && (t2[len - 1] == 'F' || t2[len - 1] == 'f' || t2[len - 1] == '?'))
        len--;
    for (sep = 0; sep < len && t2[sep] != '=' && t2[sep] != 'D' && t2[sep] != 'd'; sep++)
        ;
    if (sep == len || !pan_is_wellformed(t2, sep) || len - sep - 1 < 7)
        return -1;
    memcpy(out->pan, t2, sep);
    out->pan_len = sep;
    memcpy(out->expiry, t2 + sep + 1, 4);
    memcpy(out->service_code, t2 + sep + 5, 3);
    if (!digits_n(out->expiry, 4) || !digits_n(out->service_code, 3)) {
        OPENSSL_cleanse(out, sizeof(*out));
        return -1;
    }
    out->disc = t2 + sep + 8;
    out->disc_len = len - sep - 8;
    return 0;
}

enum cvv_status cvv_verify_track2(enum cvv_kind kind, const uint8_t *cvk, size_t cvklen,
                                  const char *t2, size_t len, size_t cvv_pos)
{
    struct track2 t;
    char value[4];
    enum cvv_status st;

    if (kind != CVV_MAGSTRIPE && kind != CVV_ICVV)
        return CVV_FORMAT_ERROR;
    if (track2_parse(t2, len, &t) != 0 || cvv_pos + 3 > t.disc_len) {
        OPENSSL_cleanse(&t, sizeof(t));
        return CVV_FORMAT_ERROR;
    }
    memcpy(value, t.disc + cvv_pos, 3);
    value[3] = '\0';
    st = cvv_verify(kind, cvk, cvklen, t.pan, t.pan_len, t.expiry, t.service_code, value);
    OPENSSL_cleanse(&t, sizeof(t));
    OPENSSL_cleanse(value, sizeof(value));
    return st;
}
