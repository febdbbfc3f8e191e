/*
 * pin.h - ISO 9564 PIN blocks (formats 0, 1, 2, 3 and 4), Visa PVV and
 * IBM 3624 offset, and the one verification entry point the daemon calls.
 *
 * PINs are 4..12 ASCII digits.  A clear PIN exists only inside
 * pin_verify() (and in the explicit encode/decode helpers, whose callers
 * own and wipe the buffers); every internal copy is wiped with
 * OPENSSL_cleanse before return.  Nothing here logs.
 *
 * Formats 0-3 are 8-byte blocks encrypted under a TDES ZPK; format 4 is a
 * 16-byte block under an AES ZPK.  Format 2 (ICC offline) is encode/decode
 * only in clear.
 */
#ifndef CARDGATE_CRYPTO_PIN_H
#define CARDGATE_CRYPTO_PIN_H

#include "crypto/cipher.h"

#include <stddef.h>
#include <stdint.h>

#define PIN_MIN_LEN 4
#define PIN_MAX_LEN 12
/* a decoded PIN buffer: digits + NUL */
#define PIN_BUF (PIN_MAX_LEN + 1)

enum pin_format {
    PIN_ISO0 = 0,
    PIN_ISO1 = 1,
    PIN_ISO2 = 2,
    PIN_ISO3 = 3,
    PIN_ISO4 = 4,
};

/* Verification outcome; stable values, the daemon stores them as a code. */
enum pin_status {
    PIN_OK = 0,           /* PIN matches */
    PIN_WRONG = 1,        /* well-formed block, wrong PIN (answer 55) */
    PIN_FORMAT_ERROR = 2, /* block does not decode to a valid PIN */
    PIN_UNAVAILABLE = 3,  /* keys or reference data missing or unusable */
};
const char *pin_status_name(enum pin_status s);

/* true when pin is 4..12 digits */
bool pin_is_wellformed(const char *pin);

/*
 * Clear PIN block, formats 0..3, into out[8].  fill (NULL: random) supplies
 * the fill nibbles of formats 1 and 3 (one byte per nibble, low 4 bits; for
 * format 3 mapped to A..F).  Formats 0 and 3 need the PAN (12..19 digits).
 * Returns 0, or -1 on a malformed PIN/PAN or format.
 */
int pinblock_clear_encode(enum pin_format f, const char *pin, const char *pan, size_t panlen,
                          const uint8_t *fill, uint8_t out[8]) CRYPTO_MUST_CHECK;

/*
 * Decode a clear block of format 0..3 into pin[PIN_BUF].  Rejects a wrong
 * control nibble, a length outside 4..12, non-digit PIN nibbles and fill
 * that the format forbids (0, 2: F; 3: A..F).  Returns 0 or -1.
 */
int pinblock_clear_decode(enum pin_format f, const uint8_t blk[8], const char *pan, size_t panlen,
                          char pin[PIN_BUF]) CRYPTO_MUST_CHECK;

/* ISO 9564-1 format 4 PAN field (16 bytes) for a PAN of 1..19 digits. */
int pinblock_iso4_pan_field(const char *pan, size_t panlen, uint8_t out[16]) CRYPTO_MUST_CHECK;

/*
 * Encrypted PIN block: formats 0, 1, 3 under a TDES key (8 bytes out),
 * format 4 under an AES key (16 bytes out).  fill as above (format 4: the 8
 * random bytes).  *outlen gets 8 or 16.  Returns 0 or -1.
 */
int pinblock_encrypt(enum pin_format f, const uint8_t *key, size_t keylen, const char *pin,
                     const char *pan, size_t panlen, const uint8_t *fill, uint8_t out[16],
                     size_t *outlen) CRYPTO_MUST_CHECK;

/* Decrypt and decode; pin[PIN_BUF].  Returns 0, or -1 (bad key or block). */
int pinblock_decrypt(enum pin_format f, const uint8_t *key, size_t keylen, const uint8_t *blk,
                     size_t blklen, const char *pan, size_t panlen,
                     char pin[PIN_BUF]) CRYPTO_MUST_CHECK;

/*
 * Visa PVV: TSP = 11 rightmost PAN digits before the check digit, PVKI
 * (0..9), the first 4 PIN digits; TDES under the PVK, decimalized, first 4
 * into out[5].  Returns 0 or -1.
 */
int pin_pvv(const uint8_t *pvk, size_t pvklen, const char *pan, size_t panlen, unsigned pvki,
            const char *pin, char out[5]) CRYPTO_MUST_CHECK;

/* the IBM 3624 default decimalization table */
#define PIN_DECTAB_DEFAULT "0123456789012345"

/*
 * IBM 3624 offset of pin for validation data (1..16 hex digits, right-padded
 * with 'F' to 16), decimalization table (16 digits; NULL = default) into
 * out[PIN_BUF] (as many digits as the PIN).  Returns 0 or -1.
 */
int pin_ibm3624_offset(const uint8_t *pvk, size_t pvklen, const char *valdata, const char *dectab,
                       const char *pin, char out[PIN_BUF]) CRYPTO_MUST_CHECK;

enum pin_method {
    PIN_METHOD_PVV = 1,
    PIN_METHOD_IBM3624 = 2,
};

/* Everything pin_verify() needs; all pointers borrowed for the call. */
struct pin_verify_req {
    enum pin_format format;
    const uint8_t *zpk; /* TDES for formats 0/1/3, AES for 4 */
    size_t zpk_len;
    const uint8_t *block; /* encrypted PIN block from field 52 */
    size_t block_len;
    const char *pan; /* digits */
    size_t pan_len;
    enum pin_method method;
    const uint8_t *pvk; /* TDES */
    size_t pvk_len;
    unsigned pvki;          /* PVV: key index 0..9 */
    const char *pvv;        /* PVV: the card's reference PVV, 4 digits */
    const char *valdata;    /* IBM 3624: validation data (hex digits) */
    const char *dectab;     /* IBM 3624: NULL = default table */
    const char *pin_offset; /* IBM 3624: the card's offset */
};

/*
 * Decrypt the PIN block, decode it and verify it by the card's method.  The
 * clear PIN never leaves this function and is wiped.  Compares in constant
 * time.
 */
enum pin_status pin_verify(const struct pin_verify_req *r);

#endif
