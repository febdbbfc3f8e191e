/*
 * keyblock.c - see keyblock.h.
 */
#include "crypto/keyblock.h"

#include "common/util.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>

int keyblock_scheme_parse(const char *name)
{
    if (strcmp(name, "ecb") == 0)
        return KEYBLOCK_ECB;
    if (strcmp(name, "variant") == 0)
        return KEYBLOCK_VARIANT;
    if (strcmp(name, "tr31") == 0)
        return KEYBLOCK_TR31;
    return -1;
}

int keyblock_ecb(const uint8_t *kek, size_t keklen, bool wrap, const uint8_t *in, size_t len,
                 uint8_t *out)
{
    if (keklen == 8 || (len != 8 && len != 16 && len != 24))
        return -1;
    return crypto_ecb(CRYPTO_TDES, kek, keklen, wrap, in, len, out);
}

int keyblock_variant(const uint8_t *kek, size_t keklen, bool wrap, const uint8_t *in, size_t len,
                     uint8_t *out)
{
    static const uint8_t v2[] = {0xA6, 0x5A}, v3[] = {0x6A, 0xDE, 0x2B};
    const uint8_t *v = len == 16 ? v2 : v3;
    uint8_t k[24];
    int rc = 0;

    if ((keklen != 16 && keklen != 24) || (len != 16 && len != 24))
        return -1;
    for (size_t i = 0; i < len / 8 && rc == 0; i++) {
        memcpy(k, kek, keklen);
        k[8] ^= v[i];
        rc = crypto_ecb(CRYPTO_TDES, k, keklen, wrap, in + 8 * i, 8, out + 8 * i);
    }
    OPENSSL_cleanse(k, sizeof(k));
    return rc;
}

/* CMAC-based key derivation (TR-31 B / X9.143 D): usage 0 = encryption, 1 = MAC */
static int tr31_derive(char version, const uint8_t *kbpk, size_t len, int usage, uint8_t *out)
{
    enum crypto_alg alg = version == 'D' ? CRYPTO_AES : CRYPTO_TDES;
    size_t bs = crypto_block_size(alg);
    uint8_t dd[8], blk[16];
    unsigned algid, bits = (unsigned)len * 8;

    if (alg == CRYPTO_TDES)
        algid = len == 16 ? 0 : 1;
    else
        algid = len == 16 ? 2 : len == 24 ? 3 : 4;
    for (size_t i = 0, done = 0; done < len; i++) {
        dd[0] = (uint8_t)(i + 1);
        dd[1] = 0;
        dd[2] = (uint8_t)usage;
        dd[3] = 0;
        dd[4] = 0;
        dd[5] = (uint8_t)algid;
        dd[6] = (uint8_t)(bits >> 8);
        dd[7] = (uint8_t)bits;
        if (crypto_cmac(alg, kbpk, len, dd, sizeof(dd), blk) != 0)
            return -1;
        size_t take = len - done < bs ? len - done : bs;
        memcpy(out + done, blk, take);
        done += take;
    }
    OPENSSL_cleanse(blk, sizeof(blk));
    return 0;
}

static int digits_val(const char *s, size_t n, unsigned *out)
{
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    *out = v;
    return 0;
}

/* Header length including optional blocks, or 0 when malformed. */
static size_t tr31_header_len(const char *b, size_t blen, unsigned nopt)
{
    size_t pos = 16;
    for (unsigned i = 0; i < nopt; i++) {
        int hi, lo;
        if (pos + 4 > blen)
            return 0;
        hi = util_hex_digit((unsigned char)b[pos + 2]);
        lo = util_hex_digit((unsigned char)b[pos + 3]);
        if (hi < 0 || lo < 0 || (hi << 4 | lo) < 4) /* "00": extended length, unsupported */
            return 0;
        pos += (size_t)(hi << 4 | lo);
    }
    return pos <= blen ? pos : 0;
}

#define ERR(...)                                                                                   \
    do {                                                                                           \
        if (err != NULL)                                                                           \
            snprintf(err, errlen, __VA_ARGS__);                                                    \
        goto out;                                                                                  \
    } while (0)

int tr31_unwrap(const uint8_t *kbpk, size_t kbpklen, const char *block, struct tr31_header *hdr,
                uint8_t key[TR31_MAX_KEY], size_t *keylen, char *err, size_t errlen)
{
    uint8_t kbek[32], kbak[32], payload[80], mac[16], calc[16];
    size_t blen = block ? strlen(block) : 0, hlen, maclen, plen;
    unsigned total, bits;
    enum crypto_alg alg;
    int rc = -1;
    char hexbuf[2 * sizeof(payload) + 1];

    memset(hdr, 0, sizeof(*hdr));
    if (blen < 16)
        ERR("key block shorter than its header");
    if (block[0] != 'B' && block[0] != 'D')
        ERR("key block version '%c' not supported (B, D)", block[0]);
    alg = block[0] == 'D' ? CRYPTO_AES : CRYPTO_TDES;
    if (alg == CRYPTO_TDES ? (kbpklen != 16 && kbpklen != 24) : !crypto_key_len_ok(alg, kbpklen))
        ERR("KBPK length does not fit key block version %c", block[0]);
    if (digits_val(block + 1, 4, &total) != 0 || total != blen)
        ERR("key block length field does not match its length");
    if (digits_val(block + 12, 2, &hdr->n_opt) != 0)
        ERR("bad optional block count");
    hdr->version = block[0];
    memcpy(hdr->usage, block + 5, 2);
    hdr->algorithm = block[7];
    hdr->mode = block[8];
    memcpy(hdr->kvn, block + 9, 2);
    hdr->exportability = block[11];
    hlen = tr31_header_len(block, blen, hdr->n_opt);
    if (hlen == 0)
        ERR("malformed optional blocks");
    maclen = crypto_block_size(alg) == 16 ? 16 : 8;
    if (blen < hlen + 2 * maclen || (blen - hlen - 2 * maclen) % (2 * crypto_block_size(alg)) != 0)
        ERR("key block payload length is not a whole number of blocks");
    plen = (blen - hlen - 2 * maclen) / 2;
    if (plen == 0 || plen > sizeof(payload))
        ERR("key block payload size not supported");
    memcpy(hexbuf, block + hlen, 2 * plen);
    hexbuf[2 * plen] = '\0';
    if (util_hex_decode(hexbuf, payload, sizeof(payload)) != (long)plen ||
        util_hex_decode(block + hlen + 2 * plen, mac, sizeof(mac)) != (long)maclen)
        ERR("key block payload is not hex");
    if (tr31_derive(block[0], kbpk, kbpklen, 0, kbek) != 0 ||
        tr31_derive(block[0], kbpk, kbpklen, 1, kbak) != 0)
        ERR("key derivation failed");
    if (crypto_cbc(alg, kbek, kbpklen, false, mac, payload, plen, payload) != 0)
        ERR("key block decryption failed");
    /* MAC over the header text and the clear payload */
    {
        uint8_t macin[sizeof(payload) + 256];
        if (hlen > 256)
            ERR("header too long");
        memcpy(macin, block, hlen);
        memcpy(macin + hlen, payload, plen);
        int mrc = crypto_cmac(alg, kbak, kbpklen, macin, hlen + plen, calc);
        OPENSSL_cleanse(macin, sizeof(macin));
        if (mrc != 0)
            ERR("MAC computation failed");
    }
    if (CRYPTO_memcmp(calc, mac, maclen) != 0)
        ERR("key block MAC does not verify (wrong KBPK or altered block)");
    bits = (unsigned)payload[0] << 8 | payload[1];
    if (bits % 8 != 0 || bits / 8 == 0 || bits / 8 > TR31_MAX_KEY || bits / 8 + 2 > plen)
        ERR("key length field out of range");
    memcpy(key, payload + 2, bits / 8);
    *keylen = bits / 8;
    rc = 0;
out:
    OPENSSL_cleanse(kbek, sizeof(kbek));
    OPENSSL_cleanse(kbak, sizeof(kbak));
    OPENSSL_cleanse(payload, sizeof(payload));
    OPENSSL_cleanse(hexbuf, sizeof(hexbuf));
    return rc;
}

int tr31_wrap(const uint8_t *kbpk, size_t kbpklen, const char *header, const uint8_t *key,
              size_t keylen, char *out, size_t cap)
{
    uint8_t kbek[32], kbak[32], payload[80], mac[16], macin[80 + 256];
    size_t hlen = strlen(header), maclen, plen, total;
    unsigned nopt;
    enum crypto_alg alg;
    int rc = -1;

    if (hlen < 16 || hlen > 256 || (header[0] != 'B' && header[0] != 'D') || keylen == 0 ||
        keylen > TR31_MAX_KEY || digits_val(header + 12, 2, &nopt) != 0 ||
        tr31_header_len(header, hlen, nopt) != hlen)
        return -1;
    alg = header[0] == 'D' ? CRYPTO_AES : CRYPTO_TDES;
    if (alg == CRYPTO_TDES ? (kbpklen != 16 && kbpklen != 24) : !crypto_key_len_ok(alg, kbpklen))
        return -1;
    size_t bs = crypto_block_size(alg);
    maclen = bs == 16 ? 16 : 8;
    plen = (2 + keylen + bs - 1) / bs * bs;
    total = hlen + 2 * plen + 2 * maclen;
    if (total > 9999 || total + 1 > cap)
        return -1;
    payload[0] = (uint8_t)((keylen * 8) >> 8);
    payload[1] = (uint8_t)(keylen * 8);
    memcpy(payload + 2, key, keylen);
    if (crypto_random(payload + 2 + keylen, plen - 2 - keylen) != 0)
        goto out;
    memcpy(out, header, hlen);
    snprintf(out + 1, 5, "%04zu", total);
    out[5] = header[5];
    memcpy(macin, out, hlen);
    memcpy(macin + hlen, payload, plen);
    if (tr31_derive(header[0], kbpk, kbpklen, 0, kbek) != 0 ||
        tr31_derive(header[0], kbpk, kbpklen, 1, kbak) != 0 ||
        crypto_cmac(alg, kbak, kbpklen, macin, hlen + plen, mac) != 0 ||
        crypto_cbc(alg, kbek, kbpklen, true, mac, payload, plen, payload) != 0)
        goto out;
    util_hex_encode(payload, plen, out + hlen);
    util_hex_encode(mac, maclen, out + hlen + 2 * plen);
    rc = 0;
out:
    OPENSSL_cleanse(kbek, sizeof(kbek));
    OPENSSL_cleanse(kbak, sizeof(kbak));
    OPENSSL_cleanse(payload, sizeof(payload));
    OPENSSL_cleanse(macin, sizeof(macin));
    return rc;
}

int keyblock_combine(enum crypto_alg alg, const uint8_t *const comps[], size_t n, size_t len,
                     const uint8_t *const kcvs[], size_t kcvlen, uint8_t *out, int *bad)
{
    uint8_t kcv[16];

    *bad = 0;
    if (n < 2 || n > 3 || !crypto_key_len_ok(alg, len))
        return -1;
    memset(out, 0, len);
    for (size_t i = 0; i < n; i++) {
        if (kcvs != NULL && kcvs[i] != NULL &&
            (crypto_kcv(alg, comps[i], len, kcv, kcvlen) != 0 ||
             CRYPTO_memcmp(kcv, kcvs[i], kcvlen) != 0)) {
            *bad = (int)i + 1;
            OPENSSL_cleanse(out, len);
            return -1;
        }
        crypto_xor(out, out, comps[i], len);
    }
    if (alg == CRYPTO_TDES)
        crypto_des_parity(out, len);
    return 0;
}
