/*
 * pinchk.c - PIN candidates for the database (see pinchk.h).
 */
#include "daemon/pinchk.h"

#include "crypto/pan.h"

#include <openssl/crypto.h>
#include <string.h>

int pinchk_valdata(const char *pan, char out[17])
{
    size_t n = pan != NULL ? strlen(pan) : 0;

    out[0] = '\0';
    if (!pan_is_wellformed(pan, n))
        return -1;
    size_t body = n - 1; /* without the check digit */
    size_t take = body < PINCHK_VALDATA_DIGITS ? body : PINCHK_VALDATA_DIGITS;
    memcpy(out, pan + body - take, take);
    out[take] = '\0';
    return 0;
}

int pinchk_from_pin(const uint8_t *pvk, size_t pvklen, unsigned pvki, const char *dectab,
                    const char *pan, const char *pin, struct pinchk_cand *out)
{
    char vd[17];

    memset(out, 0, sizeof(*out));
    if (pan == NULL || pin == NULL || pvki > 9 || pinchk_valdata(pan, vd) != 0 ||
        pin_pvv(pvk, pvklen, pan, strlen(pan), pvki, pin, out->pvv) != 0 ||
        pin_ibm3624_offset(pvk, pvklen, vd, dectab, pin, out->offset) != 0) {
        OPENSSL_cleanse(out, sizeof(*out));
        return -1;
    }
    return 0;
}

/* Decrypt and decode blk under zpk into pin[PIN_BUF]; 0 or -1 (malformed). */
static int decode_block(const struct ks_key *zpk, const uint8_t *blk, size_t len, const char *pan,
                        char pin[PIN_BUF])
{
    enum crypto_alg alg = ks_crypto_alg(zpk);
    size_t panlen = strlen(pan);

    if (len == 16 && alg == CRYPTO_AES)
        return pinblock_decrypt(PIN_ISO4, zpk->key, zpk->len, blk, len, pan, panlen, pin);
    if (len != 8 || alg != CRYPTO_TDES)
        return -1;
    /* formats 0, 1 and 3 share the key and the size: the control nibble says which */
    uint8_t clear[8];
    int rc = -1;
    if (crypto_ecb(CRYPTO_TDES, zpk->key, zpk->len, false, blk, 8, clear) == 0) {
        unsigned f = clear[0] >> 4;
        if (f == PIN_ISO0 || f == PIN_ISO1 || f == PIN_ISO3)
            rc = pinblock_clear_decode((enum pin_format)f, clear, pan, panlen, pin);
    }
    OPENSSL_cleanse(clear, sizeof(clear));
    return rc;
}

enum pinchk_result pinchk_candidates(const struct keyset *ks, const struct pinchk_keys *k,
                                     const struct iso_msg *m, const char *pan,
                                     struct pinchk_cand *out)
{
    const struct iso_view *f52 = iso_get(m, 52);
    const struct ks_key *zpk, *pvk;
    char err[128], pin[PIN_BUF];
    enum pinchk_result res;

    memset(out, 0, sizeof(*out));
    if (f52 == NULL)
        return PINCHK_ABSENT;
    if (ks == NULL || k->zpk == NULL || k->zpk[0] == '\0' || k->pvk == NULL || k->pvk[0] == '\0')
        return PINCHK_UNAVAILABLE;
    zpk = keyset_get(ks, k->zpk, KS_ZPK, KS_U_PIN_ENCRYPT, err, sizeof(err));
    pvk = keyset_get(ks, k->pvk, KS_PVK, KS_U_PIN_VERIFY, err, sizeof(err));
    if (zpk == NULL || pvk == NULL)
        return PINCHK_UNAVAILABLE;
    if (pan == NULL || !pan_is_wellformed(pan, strlen(pan)))
        return PINCHK_MALFORMED;
    if (decode_block(zpk, f52->p, f52->len, pan, pin) != 0) {
        res = PINCHK_MALFORMED;
    } else if (pinchk_from_pin(pvk->key, pvk->len, k->pvki, k->dectab, pan, pin, out) != 0) {
        res = PINCHK_UNAVAILABLE;
    } else {
        res = PINCHK_VERIFY;
    }
    OPENSSL_cleanse(pin, sizeof(pin));
    if (res != PINCHK_VERIFY)
        OPENSSL_cleanse(out, sizeof(*out));
    return res;
}

const char *pinchk_result_word(enum pinchk_result r)
{
    switch (r) {
    case PINCHK_ABSENT:
        return "absent";
    case PINCHK_VERIFY:
        return "verify";
    default:
        return NULL;
    }
}
