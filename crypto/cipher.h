/*
 * cipher.h - the block-cipher primitives every payment-crypto module uses,
 * on OpenSSL 3's EVP interfaces only (no DES_* calls).
 *
 * Keys are raw bytes.  A TDES key is 8 (single DES, through the legacy
 * provider), 16 (double length, K1 K2 K1) or 24 bytes; an AES key is 16, 24
 * or 32 bytes.  Nothing here allocates caller-visible memory, logs, or puts
 * key bytes into an error; OpenSSL's contexts are freed (and so cleansed)
 * before every return.
 *
 * crypto_init() must have succeeded once before any other call (the tools
 * and the daemon call it at start-up; it is idempotent and thread-safe).
 */
#ifndef CARDGATE_CRYPTO_CIPHER_H
#define CARDGATE_CRYPTO_CIPHER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CRYPTO_MUST_CHECK __attribute__((warn_unused_result))

enum crypto_alg {
    CRYPTO_TDES = 1, /* DES / 2TDEA / 3TDEA by key length, 8-byte block */
    CRYPTO_AES = 2,  /* AES-128/192/256 by key length, 16-byte block */
};

#define CRYPTO_MAX_KEY   32
#define CRYPTO_MAX_BLOCK 16

/*
 * Load OpenSSL's "default" and "legacy" providers once.  Returns 0, or -1
 * with a message in err (the legacy provider is missing: install libssl3's
 * ossl-modules/legacy.so) when single DES is unavailable.
 */
int crypto_init(char *err, size_t errlen) CRYPTO_MUST_CHECK;

/* block size of alg (8 or 16) */
size_t crypto_block_size(enum crypto_alg alg);
/* true when keylen is a valid key length for alg */
bool crypto_key_len_ok(enum crypto_alg alg, size_t keylen);

/*
 * ECB encrypt (enc = true) or decrypt len bytes (a multiple of the block
 * size) from in to out (may be the same buffer).  Returns 0 or -1.
 */
int crypto_ecb(enum crypto_alg alg, const uint8_t *key, size_t keylen, bool enc, const uint8_t *in,
               size_t len, uint8_t *out) CRYPTO_MUST_CHECK;

/*
 * CBC encrypt or decrypt with the given IV (NULL = zeros), len a multiple of
 * the block size, in may equal out.  Returns 0 or -1.
 */
int crypto_cbc(enum crypto_alg alg, const uint8_t *key, size_t keylen, bool enc, const uint8_t *iv,
               const uint8_t *in, size_t len, uint8_t *out) CRYPTO_MUST_CHECK;

/*
 * CBC-MAC state for streaming: the chaining value after each full block.
 * crypto_cbcmac_* keep only one block of state on the caller's stack.
 */
struct crypto_cbcmac {
    void *ctx; /* EVP_CIPHER_CTX */
    size_t bs;
    size_t have; /* bytes buffered in part[] */
    uint8_t part[CRYPTO_MAX_BLOCK];
    uint8_t last[CRYPTO_MAX_BLOCK]; /* last ciphertext block */
};
int crypto_cbcmac_init(struct crypto_cbcmac *m, enum crypto_alg alg, const uint8_t *key,
                       size_t keylen) CRYPTO_MUST_CHECK;
int crypto_cbcmac_update(struct crypto_cbcmac *m, const uint8_t *data,
                         size_t len) CRYPTO_MUST_CHECK;
/* Requires the total fed to be a multiple of the block size; writes bs bytes. */
int crypto_cbcmac_final(struct crypto_cbcmac *m, uint8_t *out) CRYPTO_MUST_CHECK;
/* Frees the context and wipes the state; safe after final or on error. */
void crypto_cbcmac_free(struct crypto_cbcmac *m);

/*
 * CMAC (NIST SP 800-38B) with TDES (16/24-byte key) or AES; out gets the
 * full block (8 or 16 bytes).  Returns 0 or -1.
 */
int crypto_cmac(enum crypto_alg alg, const uint8_t *key, size_t keylen, const uint8_t *data,
                size_t len, uint8_t *out) CRYPTO_MUST_CHECK;

/*
 * Key check value: TDES = E_K(0^8), AES = CMAC_K(0^16) (X9.24-1:2017), the
 * leftmost outlen bytes (1..block size).  Returns 0 or -1.
 */
int crypto_kcv(enum crypto_alg alg, const uint8_t *key, size_t keylen, uint8_t *out,
               size_t outlen) CRYPTO_MUST_CHECK;

/*
 * HMAC-SHA-256 of data under key into out[32].  Works without crypto_init()
 * (HMAC is in the default provider).  Returns 0 or -1.
 */
int crypto_hmac_sha256(const uint8_t *key, size_t keylen, const void *data, size_t len,
                       uint8_t out[32]) CRYPTO_MUST_CHECK;

/* Set odd parity on every byte of a DES key. */
void crypto_des_parity(uint8_t *key, size_t len);

/* out[i] = a[i] ^ b[i] */
void crypto_xor(uint8_t *out, const uint8_t *a, const uint8_t *b, size_t len);

/*
 * Visa decimalization (PVV, CVV): every 0-9 nibble of in[0..n) in order,
 * then every A-F nibble minus 10, until want digits are written to out
 * (NUL-terminated, out holds want+1).  Returns 0, or -1 if too few nibbles.
 */
int crypto_decimalize(const uint8_t *in, size_t n, char *out, size_t want) CRYPTO_MUST_CHECK;

/*
 * Pack ASCII hex digits (count may be odd: then padded with pad nibble) into
 * bytes; returns 0 or -1 on a non-hex character.
 */
int crypto_pack_nibbles(const char *digits, size_t count, uint8_t pad, uint8_t *out,
                        size_t outlen) CRYPTO_MUST_CHECK;

/* Cryptographically random bytes; returns 0 or -1. */
int crypto_random(uint8_t *out, size_t len) CRYPTO_MUST_CHECK;

#endif
