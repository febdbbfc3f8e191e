/*
 * mac.c - see mac.h.
 */
#include "crypto/mac.h"

#include <openssl/crypto.h>
#include <string.h>

const char *mac_status_name(enum mac_status s)
{
    switch (s) {
    case MAC_OK:
        return "ok";
    case MAC_BAD:
        return "bad";
    case MAC_UNAVAILABLE:
        return "unavailable";
    }
    return "unknown";
}

int mac_alg_parse(const char *name)
{
    if (strcmp(name, "iso9797-1-1") == 0)
        return MAC_ISO9797_1_ALG1;
    if (strcmp(name, "iso9797-1-3") == 0)
        return MAC_ISO9797_1_ALG3;
    if (strcmp(name, "aes-cmac") == 0)
        return MAC_AES_CMAC;
    return -1;
}

/* Length of the padding tail for method 1/2 after len bytes; 0 on error. */
static size_t pad_len(int method, size_t block, size_t len)
{
    if (method == 1)
        return (len == 0) ? block : (block - len % block) % block;
    if (method == 2)
        return block - len % block;
    return (size_t)-1;
}

size_t mac_pad(int method, size_t block, const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
    if (block == 0)
        return 0;
    size_t p = pad_len(method, block, len);

    if (p == (size_t)-1 || len + p > cap)
        return 0;
    memmove(out, in, len);
    memset(out + len, 0, p);
    if (method == 2)
        out[len] = 0x80;
    return len + p;
}

/* CBC-MAC over data plus method-pad padding, last block into out. */
static int cbcmac_padded(enum crypto_alg alg, const uint8_t *key, size_t keylen, int pad,
                         const uint8_t *data, size_t len, uint8_t *out)
{
    struct crypto_cbcmac m;
    uint8_t tail[CRYPTO_MAX_BLOCK];
    size_t bs = crypto_block_size(alg), p = pad_len(pad, bs, len);
    int rc = -1;

    if (p == (size_t)-1)
        return -1;
    memset(tail, 0, sizeof(tail));
    if (pad == 2)
        tail[0] = 0x80;
    if (crypto_cbcmac_init(&m, alg, key, keylen) != 0)
        return -1;
    if (crypto_cbcmac_update(&m, data, len) == 0 && crypto_cbcmac_update(&m, tail, p) == 0 &&
        crypto_cbcmac_final(&m, out) == 0)
        rc = 0;
    crypto_cbcmac_free(&m);
    return rc;
}

int mac_compute(enum mac_alg alg, const uint8_t *key, size_t keylen, int pad, const uint8_t *data,
                size_t len, uint8_t out[16], size_t *outlen)
{
    uint8_t blk[8];
    int rc = -1;

    switch (alg) {
    case MAC_ISO9797_1_ALG1:
        if (!crypto_key_len_ok(CRYPTO_TDES, keylen))
            return -1;
        rc = cbcmac_padded(CRYPTO_TDES, key, keylen, pad, data, len, out);
        *outlen = 8;
        break;
    case MAC_ISO9797_1_ALG3:
        if (keylen != 16)
            return -1;
        if (cbcmac_padded(CRYPTO_TDES, key, 8, pad, data, len, blk) == 0 &&
            crypto_ecb(CRYPTO_TDES, key + 8, 8, false, blk, 8, blk) == 0 &&
            crypto_ecb(CRYPTO_TDES, key, 8, true, blk, 8, out) == 0)
            rc = 0;
        *outlen = 8;
        break;
    case MAC_AES_CMAC:
        rc = crypto_cmac(CRYPTO_AES, key, keylen, data, len, out);
        *outlen = 16;
        break;
    }
    OPENSSL_cleanse(blk, sizeof(blk));
    return rc;
}

enum mac_status mac_verify(enum mac_alg alg, const uint8_t *key, size_t keylen, int pad,
                           const uint8_t *data, size_t len, const uint8_t *mac, size_t maclen)
{
    uint8_t calc[16];
    size_t n = 0;
    enum mac_status st;

    if (key == NULL || mac_compute(alg, key, keylen, pad, data, len, calc, &n) != 0)
        return MAC_UNAVAILABLE;
    if (maclen < 4 || maclen > n)
        st = MAC_BAD;
    else
        st = CRYPTO_memcmp(calc, mac, maclen) == 0 ? MAC_OK : MAC_BAD;
    OPENSSL_cleanse(calc, sizeof(calc));
    return st;
}
