/*
 * pan.c - see pan.h.  HMAC through OpenSSL 3's EVP_MAC.
 */
#include "crypto/pan.h"

#include "crypto/cipher.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <string.h>

bool pan_is_wellformed(const char *pan, size_t len)
{
    if (len < PAN_MIN_LEN || len > PAN_MAX_LEN)
        return false;
    for (size_t i = 0; i < len; i++)
        if (pan[i] < '0' || pan[i] > '9')
            return false;
    return true;
}

static unsigned luhn_sum(const char *d, size_t len, bool double_first_from_right)
{
    unsigned sum = 0;
    bool dbl = double_first_from_right;
    for (size_t i = len; i-- > 0;) {
        unsigned v = (unsigned)(d[i] - '0');
        if (dbl) {
            v *= 2;
            if (v > 9)
                v -= 9;
        }
        sum += v;
        dbl = !dbl;
    }
    return sum;
}

bool pan_luhn_ok(const char *pan, size_t len)
{
    if (len < 2)
        return false;
    for (size_t i = 0; i < len; i++)
        if (pan[i] < '0' || pan[i] > '9')
            return false;
    return luhn_sum(pan, len, false) % 10 == 0;
}

char pan_luhn_digit(const char *body, size_t len)
{
    unsigned s = luhn_sum(body, len, true);
    return (char)('0' + (10 - s % 10) % 10);
}

int pan_hash_hex(const uint8_t *key, size_t keylen, const char *pan, size_t len,
                 char out[PAN_HASH_HEX])
{
    static const char hx[] = "0123456789abcdef";
    unsigned char md[PAN_HASH_BYTES];
    int ok = 0;

    if (!pan_is_wellformed(pan, len) || keylen == 0)
        return -1;
    if (crypto_hmac_sha256(key, keylen, pan, len, md) == 0)
        ok = 1;
    if (!ok)
        return -1;
    for (size_t i = 0; i < PAN_HASH_BYTES; i++) {
        out[2 * i] = hx[md[i] >> 4];
        out[2 * i + 1] = hx[md[i] & 15];
    }
    out[2 * PAN_HASH_BYTES] = '\0';
    return 0;
}

void pan_mask(const char *pan, size_t len, char out[PAN_MASK_MAX])
{
    if (!pan_is_wellformed(pan, len)) {
        memcpy(out, "****", 5);
        return;
    }
    memcpy(out, pan, 6);
    memset(out + 6, '*', len - 10);
    memcpy(out + len - 4, pan + len - 4, 4);
    out[len] = '\0';
}
