/*
 * keyx.h - key exchange on a link (0800 network management, key change
 * 101/161): a new working key (ZPK, or MAC key) arrives under the link's
 * ZMK with its KCV.  keyx_change() builds a new key set in which the named
 * key is replaced, but only when the received key decrypts and its KCV
 * matches; the current set is never touched.
 *
 * The daemon then swaps the result in (keyset_holder_swap), persists it
 * (keyset_save), answers 0810 approved and writes the audit record (the
 * key name, the old and new version and KCV: never key material).  On any
 * failure it answers 0810 with the network's key-change failure code and
 * keeps using the old key.
 */
#ifndef CARDGATE_CRYPTO_KEYX_H
#define CARDGATE_CRYPTO_KEYX_H

#include "crypto/keyblock.h"
#include "crypto/keystore.h"

/*
 * cur: the link's current set.  zmk_name: its ZMK (type zmk).  key_name: the
 * key to replace; it must exist and its type (zpk or mak) and algorithm are
 * kept.  scheme: how the key arrives: KEYBLOCK_ECB or KEYBLOCK_VARIANT (block
 * is hex of the encrypted key) or KEYBLOCK_TR31 (block is the key block; its
 * usage must be P0 for a ZPK, M* for a MAC key).  kcv/kcvlen: the KCV the
 * switch sent (2 or 3 bytes; NULL with 0 only for TR-31, whose MAC already
 * binds the key).
 * On success *out is a new set (one reference) with the key's version + 1.
 * Returns 0, or -1 with a message in err (no key material in it).
 */
int keyx_change(const struct keyset *cur, const char *zmk_name, const char *key_name,
                enum keyblock_scheme scheme, const char *block, const uint8_t *kcv, size_t kcvlen,
                struct keyset **out, char *err, size_t errlen) CRYPTO_MUST_CHECK;

#endif
