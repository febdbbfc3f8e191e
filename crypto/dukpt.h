/*
 * dukpt.h - ANSI X9.24-1 (2009) TDES DUKPT on the receiving side: the
 * initial key from the BDK and KSN, the transaction key for a KSN, and its
 * PIN and MAC variants.  For links whose acquirers send DUKPT PIN blocks.
 */
#ifndef CARDGATE_CRYPTO_DUKPT_H
#define CARDGATE_CRYPTO_DUKPT_H

#include "crypto/cipher.h"

#define DUKPT_KSN_LEN 10

enum dukpt_variant {
    DUKPT_NONE = 0,     /* the transaction (base) key itself */
    DUKPT_PIN = 1,      /* XOR 00000000000000FF00000000000000FF */
    DUKPT_MAC_REQ = 2,  /* XOR 000000000000FF00000000000000FF00 */
    DUKPT_MAC_RESP = 3, /* XOR 00000000FF00000000000000FF000000 */
};

/* IPEK for bdk (16 bytes) and the KSN (counter bits ignored). */
int dukpt_ipek(const uint8_t bdk[16], const uint8_t ksn[DUKPT_KSN_LEN],
               uint8_t ipek[16]) CRYPTO_MUST_CHECK;

/*
 * The transaction key for ksn from the IPEK, with a variant applied.
 * Returns 0, or -1 (KSN counter with more than 10 bits set is refused, as
 * an originating device never uses one).
 */
int dukpt_key(const uint8_t ipek[16], const uint8_t ksn[DUKPT_KSN_LEN], enum dukpt_variant v,
              uint8_t key[16]) CRYPTO_MUST_CHECK;

#endif
