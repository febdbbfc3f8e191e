/*
 * test_crypto_keyblock.c - key import: TR-31 B/D blocks from public sources
 * (tests/data/crypto/keyblocks.json, must-fail entries included), the
 * variant and ECB schemes (round trip, and that the variant differs from
 * ECB), wrap/unwrap round trips, and key components with KCVs.
 */
#include "common/json.h"
#include "common/util.h"
#include "crypto/cipher.h"
#include "crypto/keyblock.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

static int setup(void **state)
{
    char err[200];
    (void)state;
    return crypto_init(err, sizeof(err));
}

static void t_tr31_vectors(void **state)
{
    char err[256];
    struct json *root = json_parse_file("tests/data/crypto/keyblocks.json", err, sizeof(err));
    const struct json *arr;
    int failures = 0;
    (void)state;

    assert_non_null(root);
    arr = json_get(root, "tr31");
    assert_non_null(arr);
    assert_true(arr->n >= 10);
    for (size_t i = 0; i < arr->n; i++) {
        const struct json *v = &arr->kids[i];
        uint8_t kbpk[32], key[TR31_MAX_KEY], want[32], kcv[3], wkcv[3];
        size_t kl = 0;
        struct tr31_header h;
        long bl = util_hex_decode(json_get_str(v, "kbpk"), kbpk, sizeof(kbpk));
        int rc;

        assert_true(bl > 0);
        err[0] = '\0';
        rc =
            tr31_unwrap(kbpk, (size_t)bl, json_get_str(v, "block"), &h, key, &kl, err, sizeof(err));
        if (json_get(v, "must_fail") != NULL) {
            if (rc == 0 || err[0] == '\0') {
                fprintf(stderr, "  tr31[%zu]: accepted (%s)\n", i, json_get_str(v, "must_fail"));
                failures++;
            }
            continue;
        }
        long wl = util_hex_decode(json_get_str(v, "expected_key"), want, sizeof(want));
        enum crypto_alg alg = h.algorithm == 'A' ? CRYPTO_AES : CRYPTO_TDES;
        assert_int_equal(util_hex_decode(json_get_str(v, "expected_kcv"), wkcv, 3), 3);
        if (rc != 0 || (long)kl != wl || memcmp(key, want, kl) != 0 ||
            memcmp(h.usage, json_get_str(v, "usage"), 2) != 0 ||
            crypto_kcv(alg, key, kl, kcv, 3) != 0 || memcmp(kcv, wkcv, 3) != 0) {
            fprintf(stderr, "  tr31[%zu]: %s\n", i, rc ? err : "key, usage or KCV differs");
            failures++;
        }
    }
    json_free(root);
    assert_int_equal(failures, 0);
}

static void t_tr31_roundtrip(void **state)
{
    static const char *headers[] = {"B0000P0TE00N0000", "D0000P0AE00N0000",
                                    "B0000K0TB00E0100KS0C01020304", "D0000M3AC00N0000"};
    uint8_t kbpk[32], key[32], got[TR31_MAX_KEY];
    char blk[512], err[128];
    struct tr31_header h;
    size_t kl;
    (void)state;

    for (size_t i = 0; i < UTIL_NELEM(headers); i++) {
        size_t kbl = headers[i][0] == 'D' ? 32 : 16, keyl = headers[i][7] == 'A' ? 16 : 24;
        assert_int_equal(crypto_random(kbpk, kbl), 0);
        assert_int_equal(crypto_random(key, keyl), 0);
        assert_int_equal(tr31_wrap(kbpk, kbl, headers[i], key, keyl, blk, sizeof(blk)), 0);
        assert_int_equal(tr31_unwrap(kbpk, kbl, blk, &h, got, &kl, err, sizeof(err)), 0);
        assert_int_equal(kl, keyl);
        assert_memory_equal(got, key, keyl);
        /* any altered character is refused */
        for (size_t pos = 0; pos < strlen(blk); pos += 7) {
            char save = blk[pos];
            blk[pos] = save == '0' ? '1' : '0';
            assert_int_not_equal(tr31_unwrap(kbpk, kbl, blk, &h, got, &kl, err, sizeof(err)), 0);
            blk[pos] = save;
        }
    }
}

static void t_variant_ecb(void **state)
{
    uint8_t kek[16], key[24], enc[24], enc2[24], back[24];
    (void)state;
    assert_int_equal(util_hex_decode("0123456789ABCDEFFEDCBA9876543210", kek, 16), 16);
    assert_int_equal(util_hex_decode("F039121BEC83D26B169BDCD5B22AAF8F0123456789ABCDEF", key, 24),
                     24);
    for (size_t len = 16; len <= 24; len += 8) {
        assert_int_equal(keyblock_variant(kek, 16, true, key, len, enc), 0);
        assert_int_equal(keyblock_ecb(kek, 16, true, key, len, enc2), 0);
        assert_memory_not_equal(enc, enc2, len);
        assert_int_equal(keyblock_variant(kek, 16, false, enc, len, back), 0);
        assert_memory_equal(back, key, len);
        assert_int_equal(keyblock_ecb(kek, 16, false, enc2, len, back), 0);
        assert_memory_equal(back, key, len);
    }
    /* the variant of the left half is A6 on byte 8 of the KEK */
    uint8_t k2[16], e[8];
    memcpy(k2, kek, 16);
    k2[8] ^= 0xA6;
    assert_int_equal(crypto_ecb(CRYPTO_TDES, k2, 16, true, key, 8, e), 0);
    assert_int_equal(keyblock_variant(kek, 16, true, key, 16, enc), 0);
    assert_memory_equal(e, enc, 8);
    assert_int_equal(keyblock_ecb(kek, 16, true, key, 7, enc), -1);
}

static void t_components(void **state)
{
    uint8_t c1[16], c2[16], c3[16], k[16], kcv1[3], kcv2[3], kcv3[3], want[16];
    int bad = 0;
    (void)state;
    assert_int_equal(crypto_random(c1, 16), 0);
    assert_int_equal(crypto_random(c2, 16), 0);
    assert_int_equal(crypto_random(c3, 16), 0);
    assert_int_equal(crypto_kcv(CRYPTO_TDES, c1, 16, kcv1, 3), 0);
    assert_int_equal(crypto_kcv(CRYPTO_TDES, c2, 16, kcv2, 3), 0);
    assert_int_equal(crypto_kcv(CRYPTO_TDES, c3, 16, kcv3, 3), 0);
    const uint8_t *comps[] = {c1, c2, c3};
    const uint8_t *kcvs[] = {kcv1, kcv2, kcv3};
    assert_int_equal(keyblock_combine(CRYPTO_TDES, comps, 3, 16, kcvs, 3, k, &bad), 0);
    for (int i = 0; i < 16; i++)
        want[i] = c1[i] ^ c2[i] ^ c3[i];
    crypto_des_parity(want, 16);
    assert_memory_equal(k, want, 16);
    kcv2[0] ^= 1;
    assert_int_equal(keyblock_combine(CRYPTO_TDES, comps, 3, 16, kcvs, 3, k, &bad), -1);
    assert_int_equal(bad, 2);
    assert_int_equal(keyblock_combine(CRYPTO_TDES, comps, 1, 16, NULL, 3, k, &bad), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_tr31_vectors),
        cmocka_unit_test(t_tr31_roundtrip),
        cmocka_unit_test(t_variant_ecb),
        cmocka_unit_test(t_components),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
