/*
 * keyx.c - see keyx.h.
 */
#include "crypto/keyx.h"

#include "common/util.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>

int keyx_change(const struct keyset *cur, const char *zmk_name, const char *key_name,
                enum keyblock_scheme scheme, const char *block, const uint8_t *kcv, size_t kcvlen,
                struct keyset **out, char *err, size_t errlen)
{
    const struct ks_key *zmk, *old;
    struct ks_key nk;
    uint8_t enc[32], calc[16];
    struct keyset *ns = NULL;
    int rc = -1;

    *out = NULL;
    memset(&nk, 0, sizeof(nk));
    zmk = keyset_get(cur, zmk_name, KS_ZMK, KS_U_KEY_ENCRYPT, err, errlen);
    if (zmk == NULL)
        return -1;
    old = keyset_find(cur, key_name);
    if (old == NULL || (old->type != KS_ZPK && old->type != KS_MAK)) {
        snprintf(err, errlen, "key %s is not a zpk or mak of this link", key_name);
        return -1;
    }
    if (block == NULL || (scheme != KEYBLOCK_TR31 && (kcv == NULL || kcvlen < 2 || kcvlen > 3))) {
        snprintf(err, errlen, "key change for %s: missing key or KCV", key_name);
        return -1;
    }
    nk = *old;
    nk.version = old->version + 1;
    if (scheme == KEYBLOCK_TR31) {
        struct tr31_header h;
        if (tr31_unwrap(zmk->key, zmk->len, block, &h, nk.key, &nk.len, err, errlen) != 0)
            goto out;
        if (old->type == KS_ZPK ? strcmp(h.usage, "P0") != 0 : h.usage[0] != 'M') {
            snprintf(err, errlen, "key change for %s: key block usage %s does not fit", key_name,
                     h.usage);
            goto out;
        }
        /* the block names its key's algorithm: it must be the one the key is used with */
        if (h.algorithm != (old->alg == KS_ALG_AES ? 'A' : 'T')) {
            snprintf(err, errlen, "key change for %s: key block algorithm '%c' does not fit %s",
                     key_name, h.algorithm, ks_alg_name(old->alg));
            goto out;
        }
    } else {
        long n = util_hex_decode(block, enc, sizeof(enc));
        if (n <= 0 || old->alg != KS_ALG_TDES ||
            (scheme == KEYBLOCK_ECB
                 ? keyblock_ecb(zmk->key, zmk->len, false, enc, (size_t)n, nk.key)
                 : keyblock_variant(zmk->key, zmk->len, false, enc, (size_t)n, nk.key)) != 0) {
            snprintf(err, errlen, "key change for %s: encrypted key malformed for the scheme",
                     key_name);
            goto out;
        }
        nk.len = (size_t)n;
    }
    if (!ks_len_ok(nk.alg, nk.len)) {
        snprintf(err, errlen, "key change for %s: new key length does not fit %s", key_name,
                 ks_alg_name(nk.alg));
        goto out;
    }
    if (kcv != NULL && kcvlen > 0) {
        enum crypto_alg ca = ks_crypto_alg(&nk);
        if (kcvlen > 3 || crypto_kcv(ca, nk.key, nk.len, calc, kcvlen) != 0 ||
            CRYPTO_memcmp(calc, kcv, kcvlen) != 0) {
            snprintf(err, errlen, "key change for %s: KCV does not match; keeping version %u",
                     key_name, old->version);
            goto out;
        }
    }
    ns = keyset_copy(cur);
    if (ns == NULL || keyset_put(ns, &nk, err, errlen) != 0) {
        if (ns == NULL)
            snprintf(err, errlen, "out of memory");
        keyset_unref(ns);
        ns = NULL;
        goto out;
    }
    *out = ns;
    rc = 0;
out:
    OPENSSL_cleanse(&nk, sizeof(nk));
    OPENSSL_cleanse(enc, sizeof(enc));
    OPENSSL_cleanse(calc, sizeof(calc));
    return rc;
}
