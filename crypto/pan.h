/*
 * pan.h - primary account number protection: the keyed hash the database
 * finds cards by, masking for logs and dumps, Luhn.
 *
 * A PAN is 12..19 ASCII digits.  Nothing here logs or keeps a PAN; callers
 * wipe their own copies (OPENSSL_cleanse) when done.
 */
#ifndef CARDGATE_CRYPTO_PAN_H
#define CARDGATE_CRYPTO_PAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PAN_MIN_LEN    12
#define PAN_MAX_LEN    19
#define PAN_HASH_BYTES 32
#define PAN_HASH_HEX   (2 * PAN_HASH_BYTES + 1)
/* masked form: first six, last four, '*' between; same length as the PAN */
#define PAN_MASK_MAX (PAN_MAX_LEN + 1)

/* true when pan[0..len) is 12..19 digits */
bool pan_is_wellformed(const char *pan, size_t len);
/* true when the digits pass the Luhn (mod 10) check */
bool pan_luhn_ok(const char *pan, size_t len);
/* the Luhn check digit for body[0..len) */
char pan_luhn_digit(const char *body, size_t len);

/*
 * HMAC-SHA-256(key, PAN digits) as lower-case hex into out[PAN_HASH_HEX].
 * Returns 0, or -1 when the PAN is malformed or the MAC failed.
 */
int pan_hash_hex(const uint8_t *key, size_t keylen, const char *pan, size_t len,
                 char out[PAN_HASH_HEX]) __attribute__((warn_unused_result));

/*
 * First six and last four digits, '*' between, NUL-terminated into
 * out[PAN_MASK_MAX].  Anything that is not a well-formed PAN becomes "****"
 * so a malformed field can never leak through a mask.
 */
void pan_mask(const char *pan, size_t len, char out[PAN_MASK_MAX]);

#endif
