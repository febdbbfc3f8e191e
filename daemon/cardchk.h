/*
 * cardchk.h - the card checks the pipeline runs before the database step,
 * with the working keys of the key store:
 *
 *   cardchk_keys_load(&holder, cfg)      start-up and every reload ([keys])
 *   ks = keyset_holder_get(&holder)      per request
 *   cardchk_cvv2(ks, cfg->keys_cvk, m, pan, expiry)   -> "ok"/"wrong"/"absent"
 *   keyset_unref(ks)
 *
 * CVV2 travels in field 48 as subelements "TTLL<value>" (2-digit tag,
 * 2-digit length; the simulator's layout, tools/sim/msg.c): tag 92.
 * Nothing here logs a PAN, a CVV2 or key material.
 */
#ifndef CARDGATE_DAEMON_CARDCHK_H
#define CARDGATE_DAEMON_CARDCHK_H

#include "crypto/keystore.h"
#include "daemon/config.h"
#include "iso8583/iso8583.h"

/*
 * The master key's path for cfg's [keys]: master_key_file, or for
 * master_key_credential NAME "$CREDENTIALS_DIRECTORY/NAME" built in buf.
 * NULL (logged) when a credential is configured but $CREDENTIALS_DIRECTORY
 * is not set or the path does not fit.
 */
const char *cardchk_master_path(const struct cg_config *cfg, char *buf, size_t cap);

/*
 * Load the key store of cfg's [keys] (master key file or credential) and
 * check that every key the configuration names is present with the right
 * type and usage: [keys] cvk, pvk (TDES), each listener's zpk and zmk.
 * Returns 0 with *out (one reference), 1 when no key store is configured,
 * -1 with the reason in err ("FILE:LINE: key 'zpk': ..." for a name).
 * `cardgated -t` and a reload run it before anything is swapped.
 */
int cardchk_keys_open(const struct cg_config *cfg, struct keyset **out, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/*
 * Load the key store of cfg's [keys] (master key file or credential), check
 * that every key the configuration names (cardchk_keys_open) is present with the right
 * type and usage, and swap it into h.  Returns 0 when swapped in, 1 when no
 * key store is configured (h untouched), -1 with the reason logged (h
 * untouched: the old keys keep serving).
 */
int cardchk_keys_load(struct keyset_holder *h, const struct cg_config *cfg)
    __attribute__((warn_unused_result));

/*
 * Find subelement tag (2 digits) of field 48 ("TTLL<value>" repeated) of m:
 * 1 with *val and *len pointing into m, 0 when there is none (no field 48, no
 * such subelement, or a field 48 not in the TTLL layout).
 */
int cardchk_find_se(const struct iso_msg *m, const char *tag, const uint8_t **val, size_t *len)
    __attribute__((warn_unused_result));

/*
 * Find the CVV2 in field 48 (subelement 92) of m into out[4].  Returns 1
 * when found and 3 digits, 0 when there is none (no field 48, no subelement
 * 92, or a field 48 not in the TTLL layout), -1 when subelement 92 is
 * present but not 3 digits.
 */
int cardchk_find_cvv2(const struct iso_msg *m, char out[4]) __attribute__((warn_unused_result));

/*
 * The CVV2 result for auth_request.cvv2_result: "absent" when m carries no
 * CVV2, or no key set / no cvk name is configured; otherwise "ok" or
 * "wrong" (a malformed CVV2, a missing expiry or PAN count as wrong).
 * pan: digits (NUL-terminated); expiry: YYMM or "".
 */
const char *cardchk_cvv2(const struct keyset *ks, const char *cvk_name, const struct iso_msg *m,
                         const char *pan, const char *expiry);

/*
 * The CVV (magstripe, field 22 "02"/"90"/"80": the track's service code) or
 * iCVV (chip "05" or contactless EMV "07": service code 999) in field 35's
 * discretionary data at cvv_pos, for auth_request.cvv_result.  "absent"
 * without field 35, key set, cvk name or position (cvv_pos < 0), and for
 * other entry modes (contactless magstripe "91" carries a dynamic CVV,
 * keyed entry no track); "ok" or "wrong" (a malformed track counts as
 * wrong).
 */
const char *cardchk_cvv_track2(const struct keyset *ks, const char *cvk_name, int cvv_pos,
                               const struct iso_msg *m);

#endif
