/*
 * keychg.h - 0800 key change (field 70 = 101 or 161): a new ZPK for a link,
 * sent under the link's ZMK with its KCV.
 *
 * The new key travels in field 48 as subelements "TTLL<value>" (the layout
 * of the CVV2, daemon/cardchk.h):
 *
 *   11  the new ZPK under the ZMK: hex of the TDES-ECB (or variant)
 *       encrypted key, or a TR-31 key block (usage P0)
 *   12  its KCV, 4 or 6 hex digits (required unless TR-31, whose MAC binds
 *       the key; checked when given)
 *   13  optional scheme: E (TDES-ECB, the default), V (variant), T (TR-31)
 *
 * keyx_change() accepts the key only when it decrypts and its KCV matches;
 * keychg_commit() persists the new set (keyset_save) and swaps it in, so
 * the old key set is wiped with its last reference.  Nothing here logs key
 * material, and only the new key's KCV leaves this module.
 */
#ifndef CARDGATE_DAEMON_KEYCHG_H
#define CARDGATE_DAEMON_KEYCHG_H

#include "crypto/keystore.h"
#include "daemon/config.h"
#include "iso8583/iso8583.h"

#define KEYCHG_SE_KEY    "11"
#define KEYCHG_SE_KCV    "12"
#define KEYCHG_SE_SCHEME "13"

/*
 * Decide a key change of the ZPK zpk_name under zmk_name with the keys of
 * ks (NULL: none).  Returns the 0810 response code:
 *   "00"  *out is the new set (one reference), kcv_hex the new key's KCV
 *   "12"  no zpk on this link: key change not supported here
 *   "96"  no zmk configured, no key store, or the ZMK unusable
 *   "30"  subelement 11 or 12 missing or malformed, unknown scheme
 *   "63"  the key does not decrypt or fit, or its KCV does not match
 * err gets the reason for a refusal (no key material).
 */
const char *keychg_decide(const struct keyset *ks, const char *zpk_name, const char *zmk_name,
                          const struct iso_msg *m, struct keyset **out, char kcv_hex[7], char *err,
                          size_t errlen);

/*
 * Persist ns to cfg's key store (keyset_save under the master key) and swap
 * it into h (taking over the reference).  Returns 0, or -1 with the reason
 * in err (ns dropped, h untouched: the old keys keep serving).
 */
int keychg_commit(struct keyset_holder *h, const struct cg_config *cfg, struct keyset *ns,
                  char *err, size_t errlen) __attribute__((warn_unused_result));

#endif
