/*
 * keytest.h - a test key into a key set:
 *
 *   keytest_put(ks, "zpk1", KS_ZPK, KS_ALG_TDES, "0123456789ABCDEF...");
 *
 * Usage is the type's default, version 1; a failure fails the cmocka test.
 */
#ifndef CARDGATE_TESTS_LIB_KEYTEST_H
#define CARDGATE_TESTS_LIB_KEYTEST_H

#include "crypto/keystore.h"

void keytest_put(struct keyset *s, const char *name, enum ks_type t, enum ks_alg alg,
                 const char *hex);

#endif
