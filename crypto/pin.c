/*
 * pin.c - see pin.h.  PIN blocks are handled as 16 nibbles in a small stack
 * array; every array that held a PIN digit is wiped before return.
 */
#include "crypto/pin.h"

#include "crypto/pan.h"

#include <openssl/crypto.h>
#include <string.h>

const char *pin_status_name(enum pin_status s)
{
    switch (s) {
    case PIN_OK:
        return "ok";
    case PIN_WRONG:
        return "wrong";
    case PIN_FORMAT_ERROR:
        return "format-error";
    case PIN_UNAVAILABLE:
        return "unavailable";
    }
    return "unknown";
}

static bool all_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

bool pin_is_wellformed(const char *pin)
{
    size_t n = pin ? strnlen(pin, PIN_MAX_LEN + 1) : 0;
    return n >= PIN_MIN_LEN && n <= PIN_MAX_LEN && all_digits(pin, n);
}

/* ISO 0/3 PAN field: 0000 + the 12 rightmost PAN digits before the check digit */
static int pan_field_iso0(const char *pan, size_t panlen, uint8_t out[8])
{
    char d[16];

    if (!pan_is_wellformed(pan, panlen))
        return -1;
    memset(d, '0', sizeof(d));
    size_t body = panlen - 1; /* without the check digit */
    size_t take = body < 12 ? body : 12;
    memcpy(d + 16 - take, pan + body - take, take);
    return crypto_pack_nibbles(d, 16, 0, out, 8);
}

static void nibbles_to_bytes(const uint8_t nib[16], uint8_t out[8])
{
    for (int i = 0; i < 8; i++)
        out[i] = (uint8_t)(nib[2 * i] << 4 | nib[2 * i + 1]);
}

static void bytes_to_nibbles(const uint8_t in[8], uint8_t nib[16])
{
    for (int i = 0; i < 8; i++) {
        nib[2 * i] = in[i] >> 4;
        nib[2 * i + 1] = in[i] & 15;
    }
}

/* The PIN field (first 8 bytes) of formats 0..4; fill as in pin.h. */
static int pin_field(enum pin_format f, const char *pin, const uint8_t *fill, uint8_t out[8])
{
    uint8_t nib[16], rnd[16];
    size_t n;

    if (!pin_is_wellformed(pin) || (unsigned)f > PIN_ISO4)
        return -1;
    n = strlen(pin);
    if (fill == NULL) {
        if (crypto_random(rnd, sizeof(rnd)) != 0)
            return -1;
        fill = rnd;
    }
    nib[0] = (uint8_t)f;
    nib[1] = (uint8_t)n;
    for (size_t i = 0; i < 14; i++) {
        uint8_t v;
        if (i < n)
            v = (uint8_t)(pin[i] - '0');
        else if (f == PIN_ISO0 || f == PIN_ISO2)
            v = 15;
        else if (f == PIN_ISO4)
            v = 10;
        else if (f == PIN_ISO3)
            v = (uint8_t)(10 + (fill[i - n] & 15) % 6);
        else
            v = fill[i - n] & 15;
        nib[2 + i] = v;
    }
    nibbles_to_bytes(nib, out);
    OPENSSL_cleanse(nib, sizeof(nib));
    OPENSSL_cleanse(rnd, sizeof(rnd));
    return 0;
}

/* Check and extract the PIN from a clear PIN field of format f. */
static int pin_field_decode(enum pin_format f, const uint8_t fld[8], char pin[PIN_BUF])
{
    uint8_t nib[16];
    int rc = -1;

    bytes_to_nibbles(fld, nib);
    size_t n = nib[1];
    if (nib[0] != (uint8_t)f || n < PIN_MIN_LEN || n > PIN_MAX_LEN)
        goto out;
    for (size_t i = 0; i < n; i++)
        if (nib[2 + i] > 9)
            goto out;
    for (size_t i = 2 + n; i < 16; i++) {
        if ((f == PIN_ISO0 || f == PIN_ISO2) && nib[i] != 15)
            goto out;
        if (f == PIN_ISO3 && nib[i] < 10)
            goto out;
        if (f == PIN_ISO4 && nib[i] != 10)
            goto out;
    }
    for (size_t i = 0; i < n; i++)
        pin[i] = (char)('0' + nib[2 + i]);
    pin[n] = '\0';
    rc = 0;
out:
    OPENSSL_cleanse(nib, sizeof(nib));
    return rc;
}

int pinblock_clear_encode(enum pin_format f, const char *pin, const char *pan, size_t panlen,
                          const uint8_t *fill, uint8_t out[8])
{
    uint8_t pf[8];

    if (f > PIN_ISO3 || pin_field(f, pin, fill, out) != 0)
        return -1;
    if (f == PIN_ISO0 || f == PIN_ISO3) {
        if (pan_field_iso0(pan, panlen, pf) != 0) {
            OPENSSL_cleanse(out, 8);
            return -1;
        }
        crypto_xor(out, out, pf, 8);
    }
    return 0;
}

int pinblock_clear_decode(enum pin_format f, const uint8_t blk[8], const char *pan, size_t panlen,
                          char pin[PIN_BUF])
{
    uint8_t fld[8];
    int rc;

    if (f > PIN_ISO3)
        return -1;
    memcpy(fld, blk, 8);
    if (f == PIN_ISO0 || f == PIN_ISO3) {
        uint8_t pf[8];
        if (pan_field_iso0(pan, panlen, pf) != 0)
            return -1;
        crypto_xor(fld, fld, pf, 8);
    }
    rc = pin_field_decode(f, fld, pin);
    OPENSSL_cleanse(fld, sizeof(fld));
    return rc;
}

int pinblock_iso4_pan_field(const char *pan, size_t panlen, uint8_t out[16])
{
    char d[32];

    if (pan == NULL || panlen < 1 || panlen > PAN_MAX_LEN || !all_digits(pan, panlen))
        return -1;
    memset(d, '0', sizeof(d));
    d[0] = (char)('0' + (panlen > 12 ? panlen - 12 : 0));
    if (panlen >= 12)
        memcpy(d + 1, pan, panlen);
    else
        memcpy(d + 1 + 12 - panlen, pan, panlen);
    return crypto_pack_nibbles(d, 32, 0, out, 16);
}

int pinblock_encrypt(enum pin_format f, const uint8_t *key, size_t keylen, const char *pin,
                     const char *pan, size_t panlen, const uint8_t *fill, uint8_t out[16],
                     size_t *outlen)
{
    uint8_t blk[16], pf[16];
    int rc = -1;

    if (f == PIN_ISO4) {
        if (pin_field(f, pin, NULL, blk) != 0)
            return -1;
        if (fill != NULL)
            memcpy(blk + 8, fill, 8);
        else if (crypto_random(blk + 8, 8) != 0)
            goto out;
        if (pinblock_iso4_pan_field(pan, panlen, pf) != 0 ||
            crypto_ecb(CRYPTO_AES, key, keylen, true, blk, 16, blk) != 0)
            goto out;
        crypto_xor(blk, blk, pf, 16);
        if (crypto_ecb(CRYPTO_AES, key, keylen, true, blk, 16, out) != 0)
            goto out;
        *outlen = 16;
        rc = 0;
    } else if (f == PIN_ISO0 || f == PIN_ISO1 || f == PIN_ISO3) {
        if (pinblock_clear_encode(f, pin, pan, panlen, fill, blk) != 0 ||
            crypto_ecb(CRYPTO_TDES, key, keylen, true, blk, 8, out) != 0)
            goto out;
        *outlen = 8;
        rc = 0;
    }
out:
    OPENSSL_cleanse(blk, sizeof(blk));
    return rc;
}

int pinblock_decrypt(enum pin_format f, const uint8_t *key, size_t keylen, const uint8_t *blk,
                     size_t blklen, const char *pan, size_t panlen, char pin[PIN_BUF])
{
    uint8_t clr[16], pf[16];
    int rc = -1;

    if (f == PIN_ISO4) {
        if (blklen != 16 || pinblock_iso4_pan_field(pan, panlen, pf) != 0 ||
            crypto_ecb(CRYPTO_AES, key, keylen, false, blk, 16, clr) != 0)
            goto out;
        crypto_xor(clr, clr, pf, 16);
        if (crypto_ecb(CRYPTO_AES, key, keylen, false, clr, 16, clr) != 0)
            goto out;
        rc = pin_field_decode(f, clr, pin);
    } else if (f == PIN_ISO0 || f == PIN_ISO1 || f == PIN_ISO3) {
        if (blklen != 8 || crypto_ecb(CRYPTO_TDES, key, keylen, false, blk, 8, clr) != 0)
            goto out;
        rc = pinblock_clear_decode(f, clr, pan, panlen, pin);
    }
out:
    OPENSSL_cleanse(clr, sizeof(clr));
    return rc;
}

int pin_pvv(const uint8_t *pvk, size_t pvklen, const char *pan, size_t panlen, unsigned pvki,
            const char *pin, char out[5])
{
    char tsp[16];
    uint8_t blk[8];
    int rc = -1;

    if (!pan_is_wellformed(pan, panlen) || pvki > 9 || !pin_is_wellformed(pin) || pvklen == 8)
        return -1;
    memcpy(tsp, pan + panlen - 12, 11);
    tsp[11] = (char)('0' + pvki);
    memcpy(tsp + 12, pin, 4);
    if (crypto_pack_nibbles(tsp, 16, 0, blk, 8) == 0 &&
        crypto_ecb(CRYPTO_TDES, pvk, pvklen, true, blk, 8, blk) == 0 &&
        crypto_decimalize(blk, 8, out, 4) == 0)
        rc = 0;
    OPENSSL_cleanse(tsp, sizeof(tsp));
    OPENSSL_cleanse(blk, sizeof(blk));
    return rc;
}

/* IBM 3624 natural PIN digits for validation data, n digits into nat. */
static int ibm3624_natural(const uint8_t *pvk, size_t pvklen, const char *valdata,
                           const char *dectab, size_t n, uint8_t nat[PIN_MAX_LEN])
{
    uint8_t blk[8];
    size_t vlen = valdata ? strlen(valdata) : 0;

    if (dectab == NULL)
        dectab = PIN_DECTAB_DEFAULT;
    if (vlen < 1 || vlen > 16 || strlen(dectab) != 16 || !all_digits(dectab, 16) ||
        n > PIN_MAX_LEN || pvklen == 8)
        return -1;
    if (crypto_pack_nibbles(valdata, vlen, 0xF, blk, 8) != 0 ||
        crypto_ecb(CRYPTO_TDES, pvk, pvklen, true, blk, 8, blk) != 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned v = (i % 2 == 0) ? blk[i / 2] >> 4 : blk[i / 2] & 15;
        nat[i] = (uint8_t)(dectab[v] - '0');
    }
    OPENSSL_cleanse(blk, sizeof(blk));
    return 0;
}

int pin_ibm3624_offset(const uint8_t *pvk, size_t pvklen, const char *valdata, const char *dectab,
                       const char *pin, char out[PIN_BUF])
{
    uint8_t nat[PIN_MAX_LEN];
    size_t n;

    if (!pin_is_wellformed(pin))
        return -1;
    n = strlen(pin);
    if (ibm3624_natural(pvk, pvklen, valdata, dectab, n, nat) != 0)
        return -1;
    for (size_t i = 0; i < n; i++)
        out[i] = (char)('0' + ((pin[i] - '0') + 10 - nat[i]) % 10);
    out[n] = '\0';
    OPENSSL_cleanse(nat, sizeof(nat));
    return 0;
}

enum pin_status pin_verify(const struct pin_verify_req *r)
{
    char pin[PIN_BUF], calc[PIN_BUF];
    enum pin_status st = PIN_UNAVAILABLE;

    if (r == NULL || r->zpk == NULL || r->block == NULL || r->pan == NULL || r->pvk == NULL)
        return PIN_UNAVAILABLE;
    if (!pan_is_wellformed(r->pan, r->pan_len))
        return PIN_FORMAT_ERROR;
    if (r->format == PIN_ISO4 ? !crypto_key_len_ok(CRYPTO_AES, r->zpk_len)
                              : !crypto_key_len_ok(CRYPTO_TDES, r->zpk_len))
        return PIN_UNAVAILABLE;
    if (pinblock_decrypt(r->format, r->zpk, r->zpk_len, r->block, r->block_len, r->pan, r->pan_len,
                         pin) != 0) {
        st = PIN_FORMAT_ERROR;
        goto out;
    }
    if (r->method == PIN_METHOD_PVV) {
        if (r->pvv == NULL || strlen(r->pvv) != 4)
            goto out;
        if (pin_pvv(r->pvk, r->pvk_len, r->pan, r->pan_len, r->pvki, pin, calc) != 0)
            goto out;
        st = CRYPTO_memcmp(calc, r->pvv, 4) == 0 ? PIN_OK : PIN_WRONG;
    } else if (r->method == PIN_METHOD_IBM3624) {
        size_t n = strlen(pin);
        if (r->pin_offset == NULL || strlen(r->pin_offset) != n)
            goto out;
        if (pin_ibm3624_offset(r->pvk, r->pvk_len, r->valdata, r->dectab, pin, calc) != 0)
            goto out;
        st = CRYPTO_memcmp(calc, r->pin_offset, n) == 0 ? PIN_OK : PIN_WRONG;
    }
out:
    OPENSSL_cleanse(pin, sizeof(pin));
    OPENSSL_cleanse(calc, sizeof(calc));
    return st;
}
