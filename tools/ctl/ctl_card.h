/*
 * ctl_card.h - card issuing shared by `cardgatectl card issue` and
 * `cardgatectl demo seed`.
 */
#ifndef CARDGATE_TOOLS_CTL_CARD_H
#define CARDGATE_TOOLS_CTL_CARD_H

#include "crypto/keystore.h"
#include "crypto/pan.h"

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#define CTL_PAN_KEY_BYTES 32

/*
 * Load the PAN-hash key: 64 hex characters from path, or from
 * $CARDGATE_PAN_KEY_FILE when path is NULL.  This is the one place to swap
 * for the key store.  0, or -1 with the reason on stderr (never the key).
 */
int ctl_pan_key_load(const char *path, uint8_t key[CTL_PAN_KEY_BYTES])
    __attribute__((warn_unused_result));

/*
 * The issuer's CVK for CVV2 at issue: the key-store entry named by
 * $CARDGATE_CVK (type cvk, usage cvv) in $CARDGATE_KEYSTORE under
 * $CARDGATE_MASTER_KEY.  Returns 0 with the key in key/len (the caller wipes
 * it), 1 when $CARDGATE_CVK is not set (CVV2s are then random), -1 with the
 * reason on stderr (never the key).
 */
int ctl_cvk_load(uint8_t key[KS_KEY_MAX], size_t *len) __attribute__((warn_unused_result));

/* The PVK named by $CARDGATE_PVK (type pvk, usage pin-verify), as ctl_cvk_load. */
int ctl_pvk_load(uint8_t key[KS_KEY_MAX], size_t *len) __attribute__((warn_unused_result));

struct ctl_card_spec {
    const char *account, *cardholder; /* ids as text; cardholder may be NULL */
    const char *bin;                  /* 6..8 digits */
    const char *form;                 /* "virtual" or "physical" */
    const char *status;               /* "active" or "inactive" */
    int expiry_years;                 /* 1..10 */
    int64_t standin_limit;
    const uint8_t *cvk; /* CVV2 = CVV with service code 000 under it; NULL: random */
    size_t cvk_len;
    /* PIN reference: the PVV/offset of pin under pvk (pinchk_from_pin), or given */
    const char *pin;    /* NULL: none, or a random 4-digit one when pvk is set */
    const uint8_t *pvk; /* with pin */
    size_t pvk_len;
    unsigned pvki;                /* 0..9 */
    const char *dectab;           /* NULL: the default table */
    const char *pvv, *pin_offset; /* stored as given when pin is NULL (NULL: none) */
};

struct ctl_issued_card {
    long long card_id;
    char pan[PAN_MAX_LEN + 1];
    char expiry[5]; /* YYMM */
    char cvv2[4];
    char pin[13]; /* the PIN whose PVV/offset were stored ("" none) */
};

/*
 * Generate a Luhn-valid 16-digit PAN in spec->bin, an expiry and a CVV2
 * (computed under spec->cvk when given, else random),
 * and insert the card (keyed hash, BIN, last four, expiry) in c's current
 * transaction.  The caller shows the PAN and CVV2 once and wipes *out with
 * OPENSSL_cleanse.  0, or -1 with a message on stderr.
 */
int ctl_card_issue(PGconn *c, const uint8_t key[CTL_PAN_KEY_BYTES],
                   const struct ctl_card_spec *spec, struct ctl_issued_card *out)
    __attribute__((warn_unused_result));

#endif
