/*
 * test_crypto_keyx.c - link key change: a new ZPK under the ZMK (ECB,
 * variant, TR-31) replaces the old one only when its KCV matches; the old
 * set is untouched; a PIN block under the new key verifies with the new set
 * only.
 */
#include "common/util.h"
#include "crypto/cipher.h"
#include "crypto/keyx.h"
#include "crypto/pin.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

static struct keyset *cur;
static uint8_t zmk[16], newzpk[16], kcv[3];
static char pvv[5];
static const char *pan = "4761739001010119";

static int setup(void **state)
{
    char err[200];
    struct ks_key k;
    (void)state;
    if (crypto_init(err, sizeof(err)) != 0)
        return -1;
    cur = keyset_new();
    memset(&k, 0, sizeof(k));
    if (crypto_random(zmk, 16) || crypto_random(newzpk, 16))
        return -1;
    crypto_des_parity(newzpk, 16);
    snprintf(k.name, sizeof(k.name), "link1-zmk");
    k.type = KS_ZMK, k.usage = KS_U_KEY_ENCRYPT, k.alg = KS_ALG_TDES, k.len = 16, k.version = 1;
    memcpy(k.key, zmk, 16);
    if (keyset_put(cur, &k, err, sizeof(err)))
        return -1;
    snprintf(k.name, sizeof(k.name), "link1-zpk");
    k.type = KS_ZPK, k.usage = KS_U_PIN_ENCRYPT;
    memset(k.key, 0x3D, 16);
    if (keyset_put(cur, &k, err, sizeof(err)))
        return -1;
    snprintf(k.name, sizeof(k.name), "pvk");
    k.type = KS_PVK, k.usage = KS_U_PIN_VERIFY;
    memset(k.key, 0x4E, 16);
    if (keyset_put(cur, &k, err, sizeof(err)))
        return -1;
    if (crypto_kcv(CRYPTO_TDES, newzpk, 16, kcv, 3) ||
        pin_pvv(k.key, 16, pan, strlen(pan), 1, "2468", pvv))
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    keyset_unref(cur);
    return 0;
}

static enum pin_status verify_with(const struct keyset *ks, const uint8_t *blk)
{
    const struct ks_key *z = keyset_find(ks, "link1-zpk"), *p = keyset_find(ks, "pvk");
    struct pin_verify_req r = {.format = PIN_ISO0,
                               .zpk = z->key,
                               .zpk_len = z->len,
                               .block = blk,
                               .block_len = 8,
                               .pan = pan,
                               .pan_len = strlen(pan),
                               .method = PIN_METHOD_PVV,
                               .pvk = p->key,
                               .pvk_len = p->len,
                               .pvki = 1,
                               .pvv = pvv};
    return pin_verify(&r);
}

static void check_changed(struct keyset *ns)
{
    uint8_t blk[16];
    size_t n;
    const struct ks_key *z = keyset_find(ns, "link1-zpk");
    assert_non_null(z);
    assert_int_equal(z->version, 2);
    assert_memory_equal(z->key, newzpk, 16);
    assert_int_equal(keyset_find(cur, "link1-zpk")->version, 1);
    /* a purchase with a PIN under the new key */
    assert_int_equal(
        pinblock_encrypt(PIN_ISO0, newzpk, 16, "2468", pan, strlen(pan), NULL, blk, &n), 0);
    assert_int_equal(verify_with(ns, blk), PIN_OK);
    assert_int_not_equal(verify_with(cur, blk), PIN_OK);
    assert_int_equal(
        pinblock_encrypt(PIN_ISO0, newzpk, 16, "2469", pan, strlen(pan), NULL, blk, &n), 0);
    assert_int_equal(verify_with(ns, blk), PIN_WRONG);
}

static void t_ecb_and_variant(void **state)
{
    uint8_t enc[16];
    char hex[33], err[200];
    struct keyset *ns = NULL;
    (void)state;

    for (int scheme = KEYBLOCK_ECB; scheme <= KEYBLOCK_VARIANT; scheme++) {
        assert_int_equal(scheme == KEYBLOCK_ECB ? keyblock_ecb(zmk, 16, true, newzpk, 16, enc)
                                                : keyblock_variant(zmk, 16, true, newzpk, 16, enc),
                         0);
        util_hex_encode(enc, 16, hex);
        assert_int_equal(keyx_change(cur, "link1-zmk", "link1-zpk", (enum keyblock_scheme)scheme,
                                     hex, kcv, 3, &ns, err, sizeof(err)),
                         0);
        check_changed(ns);
        keyset_unref(ns);
        /* 2-byte KCV as some switches send it */
        assert_int_equal(keyx_change(cur, "link1-zmk", "link1-zpk", (enum keyblock_scheme)scheme,
                                     hex, kcv, 2, &ns, err, sizeof(err)),
                         0);
        keyset_unref(ns);
    }
}

static void t_refused(void **state)
{
    uint8_t enc[16], bad[3];
    char hex[33], err[200];
    struct keyset *ns = (struct keyset *)1;
    (void)state;

    assert_int_equal(keyblock_ecb(zmk, 16, true, newzpk, 16, enc), 0);
    util_hex_encode(enc, 16, hex);
    memcpy(bad, kcv, 3);
    bad[2] ^= 1;
    assert_int_equal(keyx_change(cur, "link1-zmk", "link1-zpk", KEYBLOCK_ECB, hex, bad, 3, &ns, err,
                                 sizeof(err)),
                     -1);
    assert_null(ns);
    assert_non_null(strstr(err, "KCV does not match"));
    /* wrong scheme gives another key, so the KCV catches it */
    assert_int_equal(keyx_change(cur, "link1-zmk", "link1-zpk", KEYBLOCK_VARIANT, hex, kcv, 3, &ns,
                                 err, sizeof(err)),
                     -1);
    /* not a ZMK, not a ZPK, no KCV */
    assert_int_equal(keyx_change(cur, "link1-zpk", "link1-zpk", KEYBLOCK_ECB, hex, kcv, 3, &ns, err,
                                 sizeof(err)),
                     -1);
    assert_int_equal(
        keyx_change(cur, "link1-zmk", "pvk", KEYBLOCK_ECB, hex, kcv, 3, &ns, err, sizeof(err)), -1);
    assert_int_equal(keyx_change(cur, "link1-zmk", "link1-zpk", KEYBLOCK_ECB, hex, NULL, 0, &ns,
                                 err, sizeof(err)),
                     -1);
    assert_int_equal(keyset_find(cur, "link1-zpk")->version, 1);
}

static void t_tr31(void **state)
{
    char blk[256], err[200];
    struct keyset *ns = NULL;
    (void)state;

    assert_int_equal(tr31_wrap(zmk, 16, "B0000P0TE00N0000", newzpk, 16, blk, sizeof(blk)), 0);
    assert_int_equal(keyx_change(cur, "link1-zmk", "link1-zpk", KEYBLOCK_TR31, blk, NULL, 0, &ns,
                                 err, sizeof(err)),
                     0);
    check_changed(ns);
    keyset_unref(ns);
    /* a MAC key block is not accepted as a ZPK */
    assert_int_equal(tr31_wrap(zmk, 16, "B0000M3TC00N0000", newzpk, 16, blk, sizeof(blk)), 0);
    assert_int_equal(keyx_change(cur, "link1-zmk", "link1-zpk", KEYBLOCK_TR31, blk, NULL, 0, &ns,
                                 err, sizeof(err)),
                     -1);
    /* nor a block that says its key is AES where the ZPK is TDES */
    assert_int_equal(tr31_wrap(zmk, 16, "B0000P0AE00N0000", newzpk, 16, blk, sizeof(blk)), 0);
    assert_int_equal(keyx_change(cur, "link1-zmk", "link1-zpk", KEYBLOCK_TR31, blk, NULL, 0, &ns,
                                 err, sizeof(err)),
                     -1);
    assert_non_null(strstr(err, "algorithm"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_ecb_and_variant),
        cmocka_unit_test(t_refused),
        cmocka_unit_test(t_tr31),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
