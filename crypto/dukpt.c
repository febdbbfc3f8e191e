/*
 * dukpt.c - see dukpt.h.
 */
#include "crypto/dukpt.h"

#include <openssl/crypto.h>
#include <string.h>

static const uint8_t c0mask[16] = {0xC0, 0xC0, 0xC0, 0xC0, 0, 0, 0, 0,
                                   0xC0, 0xC0, 0xC0, 0xC0, 0, 0, 0, 0};

int dukpt_ipek(const uint8_t bdk[16], const uint8_t ksn[DUKPT_KSN_LEN], uint8_t ipek[16])
{
    uint8_t k2[16], in[8];

    memcpy(in, ksn, 8);
    in[7] &= 0xE0;
    crypto_xor(k2, bdk, c0mask, 16);
    int rc = (crypto_ecb(CRYPTO_TDES, bdk, 16, true, in, 8, ipek) == 0 &&
              crypto_ecb(CRYPTO_TDES, k2, 16, true, in, 8, ipek + 8) == 0)
                 ? 0
                 : -1;
    OPENSSL_cleanse(k2, sizeof(k2));
    return rc;
}

/* One step of the non-reversible key generation process on key (16 bytes). */
static int nrkgp(uint8_t key[16], const uint8_t r8[8])
{
    uint8_t k2[16], a[8], b[8];
    int rc = -1;

    crypto_xor(a, r8, key + 8, 8);
    if (crypto_ecb(CRYPTO_TDES, key, 8, true, a, 8, a) != 0)
        goto out;
    crypto_xor(a, a, key + 8, 8);
    crypto_xor(k2, key, c0mask, 16);
    crypto_xor(b, r8, k2 + 8, 8);
    if (crypto_ecb(CRYPTO_TDES, k2, 8, true, b, 8, b) != 0)
        goto out;
    crypto_xor(b, b, k2 + 8, 8);
    memcpy(key, b, 8);
    memcpy(key + 8, a, 8);
    rc = 0;
out:
    OPENSSL_cleanse(k2, sizeof(k2));
    OPENSSL_cleanse(a, sizeof(a));
    OPENSSL_cleanse(b, sizeof(b));
    return rc;
}

int dukpt_key(const uint8_t ipek[16], const uint8_t ksn[DUKPT_KSN_LEN], enum dukpt_variant v,
              uint8_t key[16])
{
    uint8_t r8[8];
    uint32_t counter = ((uint32_t)(ksn[7] & 0x1F) << 16) | ((uint32_t)ksn[8] << 8) | ksn[9];

    if (__builtin_popcount(counter) > 10)
        return -1;
    memcpy(key, ipek, 16);
    memcpy(r8, ksn + 2, 8);
    r8[5] &= 0xE0;
    r8[6] = 0;
    r8[7] = 0;
    for (uint32_t bit = 0x100000; bit != 0; bit >>= 1) {
        if ((counter & bit) == 0)
            continue;
        r8[5] |= (uint8_t)(bit >> 16);
        r8[6] |= (uint8_t)(bit >> 8);
        r8[7] |= (uint8_t)bit;
        if (nrkgp(key, r8) != 0) {
            OPENSSL_cleanse(key, 16);
            return -1;
        }
    }
    switch (v) {
    case DUKPT_NONE:
        break;
    case DUKPT_PIN:
        key[7] ^= 0xFF, key[15] ^= 0xFF;
        break;
    case DUKPT_MAC_REQ:
        key[6] ^= 0xFF, key[14] ^= 0xFF;
        break;
    case DUKPT_MAC_RESP:
        key[4] ^= 0xFF, key[12] ^= 0xFF;
        break;
    }
    return 0;
}
