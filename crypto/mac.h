/*
 * mac.h - message authentication codes for ISO 8583 fields 64/128 and EMV:
 * ISO 9797-1 algorithm 1 (CBC-MAC with the whole DES/TDES key), algorithm 3
 * (ANSI X9.19 retail MAC: single-DES CBC under K, then D_K' and E_K on the
 * last block) and AES-CMAC.  Padding methods 1 (zeros; an empty message is
 * one zero block) and 2 (0x80 then zeros).  Streaming: no allocation, no
 * copy of the message.
 */
#ifndef CARDGATE_CRYPTO_MAC_H
#define CARDGATE_CRYPTO_MAC_H

#include "crypto/cipher.h"

enum mac_alg {
    MAC_ISO9797_1_ALG1 = 1, /* TDES or DES key, 8 bytes */
    MAC_ISO9797_1_ALG3 = 3, /* 16-byte key K|K', 8 bytes */
    MAC_AES_CMAC = 10,      /* AES key, 16 bytes; padding ignored */
};

/* Verification outcome; stable values for the database. */
enum mac_status {
    MAC_OK = 0,
    MAC_BAD = 1,         /* answer with the network's MAC-failure code */
    MAC_UNAVAILABLE = 2, /* no usable key */
};
const char *mac_status_name(enum mac_status s);

/* "iso9797-1-1", "iso9797-1-3", "aes-cmac" -> alg; -1 when unknown */
int mac_alg_parse(const char *name);

/*
 * Pad in[0..len) by method 1 or 2 to a multiple of block into out (cap
 * bytes).  Returns the padded length, or 0 on a bad method or short cap.
 */
size_t mac_pad(int method, size_t block, const uint8_t *in, size_t len, uint8_t *out, size_t cap);

/*
 * MAC of data under key; out gets the full MAC (8 or 16 bytes), *outlen its
 * length.  Returns 0, or -1 on a bad key length, padding or alg.
 */
int mac_compute(enum mac_alg alg, const uint8_t *key, size_t keylen, int pad, const uint8_t *data,
                size_t len, uint8_t out[16], size_t *outlen) CRYPTO_MUST_CHECK;

/*
 * Compare the leftmost maclen bytes (4..full length) of the MAC of data with
 * mac, in constant time.
 */
enum mac_status mac_verify(enum mac_alg alg, const uint8_t *key, size_t keylen, int pad,
                           const uint8_t *data, size_t len, const uint8_t *mac, size_t maclen);

#endif
