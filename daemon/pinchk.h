/*
 * pinchk.h - PIN verification input for the database (field 52).
 *
 * The daemon holds the keys, the database holds each card's reference
 * values (cards.pvv, cards.pin_offset) and its try counter.  So the daemon
 * decrypts the PIN block under the link's ZPK and computes the reference
 * values the entered PIN would have, its *candidates*:
 *
 *   pvv     Visa PVV of the entered PIN (PVK, PAN, PVKI)
 *   offset  IBM 3624 offset of the entered PIN (same PVK, validation data
 *           from the PAN, decimalization table)
 *
 * and sends them with pin_result "verify"; sql/0007_pin_candidates.sql
 * compares them to the card's stored values and turns the result into
 * ok/wrong before the try counter (55, 75 after pin_try_limit).  The clear
 * PIN exists only inside pinchk_candidates()/pinchk_from_pin() and is
 * wiped there.  Nothing here logs.
 *
 * PIN block formats: an 8-byte block is ISO 9564 format 0, 1 or 3 under a
 * TDES ZPK (told apart by the control nibble); a 16-byte block is format 4
 * under an AES ZPK (a dialect whose field 52 is 16 bytes).
 */
#ifndef CARDGATE_DAEMON_PINCHK_H
#define CARDGATE_DAEMON_PINCHK_H

#include "crypto/keystore.h"
#include "crypto/pin.h"
#include "iso8583/iso8583.h"

/* IBM 3624 validation data: at most this many PAN digits (see pinchk_valdata) */
#define PINCHK_VALDATA_DIGITS 12

struct pinchk_cand {
    char pvv[5];          /* 4 digits */
    char offset[PIN_BUF]; /* as many digits as the PIN */
};

enum pinchk_result {
    PINCHK_ABSENT = 0,  /* no field 52: pin_result "absent" */
    PINCHK_VERIFY,      /* candidates computed: pin_result "verify" */
    PINCHK_MALFORMED,   /* the block does not decode: 55 pin.malformed, no try counted */
    PINCHK_UNAVAILABLE, /* no ZPK or PVK configured or usable: 96 pin.unavailable */
};

/* What the check needs from the configuration (borrowed). */
struct pinchk_keys {
    const char *zpk; /* the link's ZPK name; NULL/"" none */
    const char *pvk; /* [keys] pvk; NULL/"" none */
    unsigned pvki;
    const char *dectab; /* 16 digits; NULL = the default table */
};

/*
 * The candidates for m's field 52 with the keys of ks (NULL: none).  pan:
 * the request's PAN digits (field 2 or track 2), "" when none (malformed).
 * out is filled only for PINCHK_VERIFY and is wiped otherwise.
 */
enum pinchk_result pinchk_candidates(const struct keyset *ks, const struct pinchk_keys *k,
                                     const struct iso_msg *m, const char *pan,
                                     struct pinchk_cand *out);

/*
 * The candidates of a clear PIN (cardgatectl card issue --pin): the same
 * computation as the daemon's, so what is stored is what it compares.
 * Returns 0, or -1 on a malformed PIN/PAN or an unusable key.
 */
int pinchk_from_pin(const uint8_t *pvk, size_t pvklen, unsigned pvki, const char *dectab,
                    const char *pan, const char *pin, struct pinchk_cand *out)
    __attribute__((warn_unused_result));

/*
 * IBM 3624 validation data of a PAN: its rightmost 12 digits before the
 * check digit (all of them before it when fewer), into out[17].  Returns 0
 * or -1 (not a PAN).
 */
int pinchk_valdata(const char *pan, char out[17]) __attribute__((warn_unused_result));

/* auth_request.pin_result for a result ("absent", "verify"; NULL for the others) */
const char *pinchk_result_word(enum pinchk_result r);

#endif
