/*
 * keyblock.h - importing (and, for tests and exports, producing) a key
 * delivered under a key-encryption key (ZMK / KBPK):
 *   - plain TDES-ECB under the KEK;
 *   - the X9.17 variant scheme as Thales uses it (schemes U and T): each
 *     8-byte part of the key under the KEK with byte 8 XORed with a variant
 *     (double length: A6, 5A; triple length: 6A, DE, 2B);
 *   - ANSI X9.143 / TR-31 key blocks, versions B (TDES KBPK, CMAC-derived
 *     keys, 8-byte MAC) and D (AES KBPK, 16-byte MAC).  The MAC is verified
 *     before the key is returned; a block with a bad MAC yields no key.
 * Clear key components combine by XOR (keyblock_combine).
 *
 * Error strings name the problem only, never key bytes.
 */
#ifndef CARDGATE_CRYPTO_KEYBLOCK_H
#define CARDGATE_CRYPTO_KEYBLOCK_H

#include "crypto/cipher.h"

enum keyblock_scheme {
    KEYBLOCK_ECB = 1,
    KEYBLOCK_VARIANT = 2,
    KEYBLOCK_TR31 = 3,
};
/* "ecb", "variant", "tr31" -> scheme; -1 when unknown */
int keyblock_scheme_parse(const char *name);

/* TDES-ECB decrypt (unwrap) or encrypt (wrap) of a 8/16/24-byte key. */
int keyblock_ecb(const uint8_t *kek, size_t keklen, bool wrap, const uint8_t *in, size_t len,
                 uint8_t *out) CRYPTO_MUST_CHECK;

/* Variant scheme unwrap/wrap of a 16- or 24-byte key under a 16/24-byte KEK. */
int keyblock_variant(const uint8_t *kek, size_t keklen, bool wrap, const uint8_t *in, size_t len,
                     uint8_t *out) CRYPTO_MUST_CHECK;

/* The fixed part of a TR-31 header. */
struct tr31_header {
    char version;   /* 'B' or 'D' */
    char usage[3];  /* "P0", "K0", "M3", ... */
    char algorithm; /* 'T' TDES, 'A' AES, 'H' HMAC, ... */
    char mode;      /* 'E', 'D', 'B', 'N', 'G', 'V', ... */
    char kvn[3];    /* key version number */
    char exportability;
    unsigned n_opt; /* optional blocks */
};

#define TR31_MAX_KEY 32

/*
 * Unwrap an ASCII TR-31 key block (version B or D) under kbpk.  Checks the
 * length field, decodes the optional blocks, decrypts, verifies the MAC (in
 * constant time) and returns the key in key[TR31_MAX_KEY], *keylen bytes.
 * Returns 0, or -1 with a reason in err.
 */
int tr31_unwrap(const uint8_t *kbpk, size_t kbpklen, const char *block, struct tr31_header *hdr,
                uint8_t key[TR31_MAX_KEY], size_t *keylen, char *err,
                size_t errlen) CRYPTO_MUST_CHECK;

/*
 * Wrap key under kbpk with the given header text (16 characters plus any
 * optional blocks; its length digits are filled in).  out gets the
 * NUL-terminated key block (cap bytes).  Returns 0 or -1.
 */
int tr31_wrap(const uint8_t *kbpk, size_t kbpklen, const char *header, const uint8_t *key,
              size_t keylen, char *out, size_t cap) CRYPTO_MUST_CHECK;

/*
 * XOR of n (2..3) clear components of equal length into out; each must
 * match its KCV (kcvs[i], kcvlen bytes, NULL = not checked) under alg.
 * Returns 0, or -1 with the failing component number (1-based) in *bad.
 */
int keyblock_combine(enum crypto_alg alg, const uint8_t *const comps[], size_t n, size_t len,
                     const uint8_t *const kcvs[], size_t kcvlen, uint8_t *out,
                     int *bad) CRYPTO_MUST_CHECK;

#endif
