/*
 * keytest.c - see keytest.h.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "tests/lib/keytest.h"

#include "common/util.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>

void keytest_put(struct keyset *s, const char *name, enum ks_type t, enum ks_alg alg,
                 const char *hex)
{
    struct ks_key k;
    char err[128];
    memset(&k, 0, sizeof(k));
    snprintf(k.name, sizeof(k.name), "%s", name);
    k.type = t;
    k.usage = ks_default_usage(t);
    k.alg = alg;
    k.version = 1;
    k.len = (size_t)util_hex_decode(hex, k.key, sizeof(k.key));
    int rc = keyset_put(s, &k, err, sizeof(err));
    OPENSSL_cleanse(&k, sizeof(k));
    if (rc != 0)
        fail_msg("keyset_put %s: %s", name, err);
}
