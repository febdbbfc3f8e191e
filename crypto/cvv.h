/*
 * cvv.h - card verification values: CVV (magstripe, the card's service
 * code), CVV2 (card not present, service code 000) and iCVV (chip track-2
 * equivalent, service code 999), all by the Visa CVV method under a
 * double-length CVK (KA|KB).
 */
#ifndef CARDGATE_CRYPTO_CVV_H
#define CARDGATE_CRYPTO_CVV_H

#include "crypto/cipher.h"

enum cvv_kind {
    CVV_MAGSTRIPE = 1, /* service code from the track */
    CVV_CVV2 = 2,      /* service code 000 */
    CVV_ICVV = 3,      /* service code 999 */
};

/* Verification outcome; stable values for the database. */
enum cvv_status {
    CVV_OK = 0,
    CVV_WRONG = 1,
    CVV_FORMAT_ERROR = 2, /* malformed PAN, expiry, service code or value */
    CVV_UNAVAILABLE = 3,  /* no usable CVK */
};
const char *cvv_status_name(enum cvv_status s);

/*
 * The 3-digit CVV for pan/expiry (YYMM)/service code (3 digits) under the
 * 16-byte CVK into out[4].  Returns 0 or -1.
 */
int cvv_compute(const uint8_t *cvk, size_t cvklen, const char *pan, size_t panlen,
                const char *expiry, const char *service_code, char out[4]) CRYPTO_MUST_CHECK;

/*
 * Verify value (3 digits) of the given kind; service_code is read only for
 * CVV_MAGSTRIPE.  Constant-time compare.
 */
enum cvv_status cvv_verify(enum cvv_kind kind, const uint8_t *cvk, size_t cvklen, const char *pan,
                           size_t panlen, const char *expiry, const char *service_code,
                           const char *value);

/* Track 2 (or the chip's track-2 equivalent, field 35) split into parts. */
struct track2 {
    char pan[20]; /* digits, NUL-terminated */
    size_t pan_len;
    char expiry[5];       /* YYMM */
    char service_code[4]; /* SSS */
    const char *disc;     /* discretionary data, points into the input */
    size_t disc_len;
};

/*
 * Split "PAN=YYMMSSS<discretionary>" (separator '=' or 'D', an optional
 * trailing 'F' pad nibble and end sentinel '?' ignored).  Returns 0 or -1.
 * The caller wipes the struct (it holds the PAN).
 */
int track2_parse(const char *t2, size_t len, struct track2 *out) CRYPTO_MUST_CHECK;

/*
 * Verify the CVV (kind CVV_MAGSTRIPE: track data, the track's service code)
 * or iCVV (CVV_ICVV: chip track-2 equivalent, service code 999) found at
 * cvv_pos in the discretionary data (its position is the issuer's choice,
 * configured per BIN).
 */
enum cvv_status cvv_verify_track2(enum cvv_kind kind, const uint8_t *cvk, size_t cvklen,
                                  const char *t2, size_t len, size_t cvv_pos);

#endif
