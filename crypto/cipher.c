/*
 * cipher.c - see cipher.h.  The EVP_CIPHER objects are fetched once in
 * crypto_init() and only read afterwards, so they are shared by all threads.
 * Each operation makes and frees its own EVP_CIPHER_CTX: OpenSSL wipes the
 * key schedule on free, which matters more here than the small allocation.
 */
#include "crypto/cipher.h"

#include "common/util.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/provider.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

enum {
    C_DES_ECB,
    C_DES_CBC,
    C_TDES2_ECB,
    C_TDES2_CBC,
    C_TDES3_ECB,
    C_TDES3_CBC,
    C_AES128_ECB,
    C_AES128_CBC,
    C_AES192_ECB,
    C_AES192_CBC,
    C_AES256_ECB,
    C_AES256_CBC,
    C_COUNT
};

static const char *const cipher_names[C_COUNT] = {
    "DES-ECB",     "DES-CBC",     "DES-EDE-ECB", "DES-EDE-CBC", "DES-EDE3-ECB", "DES-EDE3-CBC",
    "AES-128-ECB", "AES-128-CBC", "AES-192-ECB", "AES-192-CBC", "AES-256-ECB",  "AES-256-CBC",
};

static EVP_CIPHER *ciphers[C_COUNT];
static EVP_MAC *cmac;
static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_status = -1;
static char init_err[160];

static void do_init(void)
{
    if (OSSL_PROVIDER_load(NULL, "default") == NULL) {
        snprintf(init_err, sizeof(init_err), "OpenSSL default provider not available");
        return;
    }
    if (OSSL_PROVIDER_load(NULL, "legacy") == NULL) {
        snprintf(init_err, sizeof(init_err),
                 "OpenSSL legacy provider not available (needed for single DES: "
                 "ossl-modules/legacy.so from libssl3)");
        return;
    }
    for (int i = 0; i < C_COUNT; i++) {
        ciphers[i] = EVP_CIPHER_fetch(NULL, cipher_names[i], NULL);
        if (ciphers[i] == NULL) {
            snprintf(init_err, sizeof(init_err), "OpenSSL cipher %s not available",
                     cipher_names[i]);
            return;
        }
    }
    cmac = EVP_MAC_fetch(NULL, "CMAC", NULL);
    if (cmac == NULL) {
        snprintf(init_err, sizeof(init_err), "OpenSSL CMAC not available");
        return;
    }
    init_status = 0;
}

int crypto_init(char *err, size_t errlen)
{
    pthread_once(&init_once, do_init);
    if (init_status != 0 && err != NULL && errlen > 0)
        snprintf(err, errlen, "%s", init_err);
    return init_status;
}

size_t crypto_block_size(enum crypto_alg alg)
{
    return alg == CRYPTO_AES ? 16 : 8;
}

bool crypto_key_len_ok(enum crypto_alg alg, size_t keylen)
{
    if (alg == CRYPTO_TDES)
        return keylen == 8 || keylen == 16 || keylen == 24;
    if (alg == CRYPTO_AES)
        return keylen == 16 || keylen == 24 || keylen == 32;
    return false;
}

/* The fetched cipher for alg/keylen/mode, or NULL. */
static const EVP_CIPHER *pick(enum crypto_alg alg, size_t keylen, bool cbc)
{
    int i;

    if (init_status != 0 || !crypto_key_len_ok(alg, keylen))
        return NULL;
    if (alg == CRYPTO_TDES)
        i = keylen == 8 ? C_DES_ECB : keylen == 16 ? C_TDES2_ECB : C_TDES3_ECB;
    else
        i = keylen == 16 ? C_AES128_ECB : keylen == 24 ? C_AES192_ECB : C_AES256_ECB;
    return ciphers[i + (cbc ? 1 : 0)];
}

/* Run one cipher operation with padding off; in may equal out. */
static int run(const EVP_CIPHER *c, const uint8_t *key, bool enc, const uint8_t *iv,
               const uint8_t *in, size_t len, uint8_t *out)
{
    int ok = -1, n = 0, m = 0;
    EVP_CIPHER_CTX *ctx;

    if (c == NULL || len % (size_t)EVP_CIPHER_get_block_size(c) != 0 || len > INT32_MAX)
        return -1;
    ctx = EVP_CIPHER_CTX_new();
    if (ctx == NULL)
        return -1;
    if (EVP_CipherInit_ex2(ctx, c, key, iv, enc ? 1 : 0, NULL) == 1 &&
        EVP_CIPHER_CTX_set_padding(ctx, 0) == 1 &&
        EVP_CipherUpdate(ctx, out, &n, in, (int)len) == 1 &&
        EVP_CipherFinal_ex(ctx, out + n, &m) == 1 && (size_t)(n + m) == len)
        ok = 0;
    EVP_CIPHER_CTX_free(ctx);
    return ok;
}

int crypto_ecb(enum crypto_alg alg, const uint8_t *key, size_t keylen, bool enc, const uint8_t *in,
               size_t len, uint8_t *out)
{
    return run(pick(alg, keylen, false), key, enc, NULL, in, len, out);
}

int crypto_cbc(enum crypto_alg alg, const uint8_t *key, size_t keylen, bool enc, const uint8_t *iv,
               const uint8_t *in, size_t len, uint8_t *out)
{
    static const uint8_t zero[CRYPTO_MAX_BLOCK];
    return run(pick(alg, keylen, true), key, enc, iv ? iv : zero, in, len, out);
}

int crypto_cbcmac_init(struct crypto_cbcmac *m, enum crypto_alg alg, const uint8_t *key,
                       size_t keylen)
{
    static const uint8_t zero[CRYPTO_MAX_BLOCK];
    const EVP_CIPHER *c = pick(alg, keylen, true);
    EVP_CIPHER_CTX *ctx;

    memset(m, 0, sizeof(*m));
    if (c == NULL || (ctx = EVP_CIPHER_CTX_new()) == NULL)
        return -1;
    m->ctx = ctx;
    m->bs = crypto_block_size(alg);
    if (EVP_CipherInit_ex2(ctx, c, key, zero, 1, NULL) != 1 ||
        EVP_CIPHER_CTX_set_padding(ctx, 0) != 1) {
        crypto_cbcmac_free(m);
        return -1;
    }
    return 0;
}

int crypto_cbcmac_update(struct crypto_cbcmac *m, const uint8_t *data, size_t len)
{
    uint8_t out[256];
    int n;

    if (m->ctx == NULL)
        return -1;
    while (len > 0) {
        /* complete a buffered partial block first */
        if (m->have > 0 || len < m->bs) {
            size_t take = m->bs - m->have;
            if (take > len)
                take = len;
            memcpy(m->part + m->have, data, take);
            m->have += take;
            data += take;
            len -= take;
            if (m->have < m->bs)
                break;
            if (EVP_CipherUpdate(m->ctx, out, &n, m->part, (int)m->bs) != 1 || (size_t)n != m->bs)
                return -1;
            memcpy(m->last, out, m->bs);
            m->have = 0;
            continue;
        }
        size_t chunk = len - len % m->bs;
        if (chunk > sizeof(out))
            chunk = sizeof(out);
        if (EVP_CipherUpdate(m->ctx, out, &n, data, (int)chunk) != 1 || (size_t)n != chunk)
            return -1;
        memcpy(m->last, out + chunk - m->bs, m->bs);
        data += chunk;
        len -= chunk;
    }
    OPENSSL_cleanse(out, sizeof(out));
    return 0;
}

int crypto_cbcmac_final(struct crypto_cbcmac *m, uint8_t *out)
{
    if (m->ctx == NULL || m->have != 0)
        return -1;
    memcpy(out, m->last, m->bs);
    return 0;
}

void crypto_cbcmac_free(struct crypto_cbcmac *m)
{
    EVP_CIPHER_CTX_free(m->ctx);
    OPENSSL_cleanse(m, sizeof(*m));
}

int crypto_cmac(enum crypto_alg alg, const uint8_t *key, size_t keylen, const uint8_t *data,
                size_t len, uint8_t *out)
{
    uint8_t k3[24];
    const uint8_t *k = key;
    size_t klen = keylen, outl = 0, bs = crypto_block_size(alg);
    const char *cname;
    int ok = -1;

    if (init_status != 0 || !crypto_key_len_ok(alg, keylen) || (alg == CRYPTO_TDES && keylen == 8))
        return -1;
    if (alg == CRYPTO_TDES) {
        /* 2TDEA CMAC as 3TDEA with K3 = K1: the CBC cipher OpenSSL's CMAC takes */
        if (keylen == 16) {
            memcpy(k3, key, 16);
            memcpy(k3 + 16, key, 8);
            k = k3;
            klen = 24;
        }
        cname = "DES-EDE3-CBC";
    } else {
        cname = keylen == 16 ? "AES-128-CBC" : keylen == 24 ? "AES-192-CBC" : "AES-256-CBC";
    }
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_CIPHER, (char *)cname, 0),
        OSSL_PARAM_construct_end(),
    };
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(cmac);
    if (ctx != NULL && EVP_MAC_init(ctx, k, klen, params) == 1 &&
        EVP_MAC_update(ctx, data, len) == 1 && EVP_MAC_final(ctx, out, &outl, bs) == 1 &&
        outl == bs)
        ok = 0;
    EVP_MAC_CTX_free(ctx);
    OPENSSL_cleanse(k3, sizeof(k3));
    return ok;
}

int crypto_kcv(enum crypto_alg alg, const uint8_t *key, size_t keylen, uint8_t *out, size_t outlen)
{
    static const uint8_t zero[CRYPTO_MAX_BLOCK];
    uint8_t blk[CRYPTO_MAX_BLOCK];
    size_t bs = crypto_block_size(alg);
    int rc;

    if (outlen == 0 || outlen > bs)
        return -1;
    if (alg == CRYPTO_AES)
        rc = crypto_cmac(alg, key, keylen, zero, bs, blk);
    else
        rc = crypto_ecb(alg, key, keylen, true, zero, bs, blk);
    if (rc == 0)
        memcpy(out, blk, outlen);
    OPENSSL_cleanse(blk, sizeof(blk));
    return rc;
}

int crypto_hmac_sha256(const uint8_t *key, size_t keylen, const void *data, size_t len,
                       uint8_t out[32])
{
    size_t mdlen = 0;
    int ok = -1;
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_end(),
    };

    if (ctx != NULL && EVP_MAC_init(ctx, key, keylen, params) == 1 &&
        EVP_MAC_update(ctx, data, len) == 1 && EVP_MAC_final(ctx, out, &mdlen, 32) == 1 &&
        mdlen == 32)
        ok = 0;
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
    return ok;
}

void crypto_des_parity(uint8_t *key, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        uint8_t b = key[i] & 0xFE;
        int ones = __builtin_popcount(b);
        key[i] = (uint8_t)(b | (ones % 2 == 0 ? 1 : 0));
    }
}

void crypto_xor(uint8_t *out, const uint8_t *a, const uint8_t *b, size_t len)
{
    for (size_t i = 0; i < len; i++)
        out[i] = a[i] ^ b[i];
}

int crypto_random(uint8_t *out, size_t len)
{
    return RAND_bytes(out, (int)len) == 1 ? 0 : -1;
}

int crypto_decimalize(const uint8_t *in, size_t n, char *out, size_t want)
{
    size_t k = 0;

    for (int pass = 0; pass < 2 && k < want; pass++)
        for (size_t i = 0; i < 2 * n && k < want; i++) {
            unsigned v = (i % 2 == 0) ? in[i / 2] >> 4 : in[i / 2] & 15;
            if (pass == 0 && v < 10)
                out[k++] = (char)('0' + v);
            else if (pass == 1 && v >= 10)
                out[k++] = (char)('0' + v - 10);
        }
    out[k] = '\0';
    return k == want ? 0 : -1;
}

int crypto_pack_nibbles(const char *digits, size_t count, uint8_t pad, uint8_t *out, size_t outlen)
{
    for (size_t i = 0; i < 2 * outlen; i++) {
        int v = i < count ? util_hex_digit((unsigned char)digits[i]) : (int)(pad & 15);
        if (v < 0)
            return -1;
        if (i % 2 == 0)
            out[i / 2] = (uint8_t)(v << 4);
        else
            out[i / 2] |= (uint8_t)v;
    }
    return 0;
}
