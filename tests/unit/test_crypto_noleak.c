/*
 * test_crypto_noleak.c - every crypto/ function once, success and failure
 * paths, with stderr captured (and logging at debug level): neither stderr
 * nor any error string the library returns may contain a test key, PIN,
 * PAN, CVV or PIN block, in upper or lower case hex.
 */
#include "common/log.h"
#include "common/util.h"
#include "crypto/cipher.h"
#include "crypto/cvv.h"
#include "crypto/dukpt.h"
#include "crypto/emv.h"
#include "crypto/keyblock.h"
#include "crypto/keystore.h"
#include "crypto/mac.h"
#include "crypto/pan.h"
#include "crypto/pin.h"

#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

/* distinctive test secrets */
#define PAN  "4761739001010119"
#define PIN  "739152"
#define CVV2 "845"
static const uint8_t K16[16] = {0x3C, 0x71, 0x9A, 0x2E, 0x5B, 0xD4, 0x07, 0xE8,
                                0x61, 0xF2, 0x8D, 0x4A, 0x13, 0xB7, 0xC6, 0x59};
static const uint8_t K32[32] = {0x9E, 0x37, 0x79, 0xB9, 0x7F, 0x4A, 0x7C, 0x15, 0xF3, 0x9C, 0xC0,
                                0x60, 0x5C, 0xED, 0xC8, 0x34, 0x10, 0x82, 0x27, 0x6B, 0xF3, 0xA2,
                                0x72, 0x04, 0xE4, 0x1A, 0x6D, 0x59, 0x8C, 0xE1, 0x3B, 0x6F};

static char errs[16384];
static size_t errs_len;

static void keep(const char *e)
{
    size_t n = strlen(e);
    if (errs_len + n + 2 < sizeof(errs)) {
        memcpy(errs + errs_len, e, n);
        errs_len += n;
        errs[errs_len++] = '\n';
        errs[errs_len] = '\0';
    }
}

static int exercise(void)
{
    char err[300], pin[PIN_BUF], out[64], dir[] = "/tmp/cg-noleak-XXXXXX", path[128];
    uint8_t blk[16], buf[64], mac[16], k[32], epb[16];
    size_t n = 0;
    int sink = 0;

    log_init("noleak", LOG_LVL_DEBUG);
    sink += crypto_init(err, sizeof(err));
    sink += crypto_kcv(CRYPTO_TDES, K16, 16, buf, 3);
    sink += crypto_kcv(CRYPTO_AES, K32, 32, buf, 5);
    sink += crypto_cmac(CRYPTO_AES, K16, 16, (const uint8_t *)PAN, 16, buf);

    /* PIN: every format, encrypt/decrypt, good and bad */
    for (int f = 0; f <= 4; f++) {
        const uint8_t *key = f == 4 ? K32 : K16;
        size_t kl = f == 4 ? 32 : 16;
        if (f != 2) {
            sink += pinblock_encrypt((enum pin_format)f, key, kl, PIN, PAN, 16, NULL, epb, &n);
            sink += pinblock_decrypt((enum pin_format)f, key, kl, epb, n, PAN, 16, pin);
            sink += pinblock_decrypt((enum pin_format)f, K32 + 1, kl, epb, n, PAN, 16, pin);
        } else {
            sink += pinblock_clear_encode(PIN_ISO2, PIN, NULL, 0, NULL, blk);
            sink += pinblock_clear_decode(PIN_ISO2, blk, NULL, 0, pin);
        }
    }
    char pvv[5], off[PIN_BUF];
    sink += pin_pvv(K16, 16, PAN, 16, 1, PIN, pvv);
    sink += pin_ibm3624_offset(K16, 16, "4761739001", NULL, PIN, off);
    sink += pinblock_encrypt(PIN_ISO0, K16, 16, PIN, PAN, 16, NULL, epb, &n);
    struct pin_verify_req r = {.format = PIN_ISO0,
                               .zpk = K16,
                               .zpk_len = 16,
                               .block = epb,
                               .block_len = 8,
                               .pan = PAN,
                               .pan_len = 16,
                               .method = PIN_METHOD_PVV,
                               .pvk = K16,
                               .pvk_len = 16,
                               .pvki = 1,
                               .pvv = pvv};
    sink += (int)pin_verify(&r);
    r.pvv = "0000";
    sink += (int)pin_verify(&r);
    r.method = PIN_METHOD_IBM3624;
    r.valdata = "4761739001";
    r.pin_offset = off;
    sink += (int)pin_verify(&r);
    epb[0] ^= 0x55;
    sink += (int)pin_verify(&r);

    /* CVV */
    char cvv[4];
    sink += cvv_compute(K16, 16, PAN, 16, "2812", "201", cvv);
    sink += (int)cvv_verify(CVV_CVV2, K16, 16, PAN, 16, "2812", NULL, CVV2);
    sink += (int)cvv_verify(CVV_ICVV, K16, 16, PAN, 16, "2812", NULL, "abc");
    sink += (int)cvv_verify(CVV_MAGSTRIPE, K16, 16, PAN, 16, "2812", "201", cvv);

    /* MAC */
    for (int alg = 0; alg < 3; alg++) {
        enum mac_alg a = alg == 0   ? MAC_ISO9797_1_ALG1
                         : alg == 1 ? MAC_ISO9797_1_ALG3
                                    : MAC_AES_CMAC;
        sink += mac_compute(a, K16, 16, 2, (const uint8_t *)PAN, 16, mac, &n);
        sink += (int)mac_verify(a, K16, 16, 2, (const uint8_t *)PAN, 16, mac, n);
        mac[0] ^= 1;
        sink += (int)mac_verify(a, K16, 16, 2, (const uint8_t *)PAN, 16, mac, n);
    }

    /* EMV */
    uint8_t mk[16], sk[16], arqc[8], atc[2] = {0, 9}, un[4] = {1, 2, 3, 4}, z[8] = {0};
    sink += emv_derive_icc_mk(EMV_MKD_AUTO, K16, PAN, 16, "01", mk);
    sink += emv_derive_icc_mk(EMV_MKD_B, K16, PAN "123", 19, "01", mk);
    for (int cvn = 10; cvn <= 22; cvn++) {
        uint8_t iad[18] = {0x06, 0x01, 0x0A, 0x03, 0xA0, 0, 0};
        struct emv_tags t = {z, z, z, z, z, z, z, un, z, atc, iad, sizeof(iad), arqc};
        struct emv_auth_req q = {.cvn = cvn,
                                 .imk = K16,
                                 .imk_len = 16,
                                 .pan = PAN,
                                 .pan_len = 16,
                                 .psn = "01",
                                 .tags = &t};
        memset(arqc, 0xAB, 8);
        sink += (int)emv_verify_arqc(&q);
        sink += emv_make_arpc(&q, z, z, NULL, 0, buf, &n);
        sink += emv_ac_key(cvn, mk, atc, un, sk);
    }
    sink += (int)emv_atc_check(5, true, 9);

    /* key blocks */
    char tb[256];
    struct tr31_header h;
    sink += tr31_wrap(K16, 16, "B0000P0TE00N0000", K16, 16, tb, sizeof(tb));
    sink += tr31_unwrap(K16, 16, tb, &h, k, &n, err, sizeof(err));
    tb[20] ^= 1;
    if (tr31_unwrap(K16, 16, tb, &h, k, &n, err, sizeof(err)) != 0)
        keep(err);
    if (tr31_unwrap(K16, 16, "D0016P0AE00N0000", &h, k, &n, err, sizeof(err)) != 0)
        keep(err);
    sink += keyblock_variant(K16, 16, true, K16, 16, buf);
    sink += keyblock_ecb(K16, 16, false, buf, 16, buf);
    sink += dukpt_ipek(K16, (const uint8_t *)"\xFF\xFF\x98\x76\x54\x32\x10\xE0\x00\x01", k);
    sink += dukpt_key(k, (const uint8_t *)"\xFF\xFF\x98\x76\x54\x32\x10\xE0\x00\x01", DUKPT_PIN,
                      k + 16);

    /* PAN protection */
    char hash[PAN_HASH_HEX], masked[PAN_MASK_MAX];
    sink += pan_hash_hex(K32, 32, PAN, 16, hash);
    pan_mask(PAN, 16, masked);
    log_info("card %s", masked);

    /* key store, with its error paths */
    if (mkdtemp(dir) != NULL) {
        struct keyset *ks = keyset_new();
        struct ks_key key;
        memset(&key, 0, sizeof(key));
        snprintf(key.name, sizeof(key.name), "zpk1");
        key.type = KS_ZPK;
        key.usage = KS_U_PIN_ENCRYPT;
        key.alg = KS_ALG_TDES;
        key.len = 16;
        memcpy(key.key, K16, 16);
        sink += keyset_put(ks, &key, err, sizeof(err));
        key.usage = KS_U_MAC;
        if (keyset_put(ks, &key, err, sizeof(err)) != 0)
            keep(err);
        snprintf(path, sizeof(path), "%s/keys", dir);
        sink += keyset_save(ks, path, K32, err, sizeof(err));
        struct keyset *back = keyset_load(path, K32, err, sizeof(err));
        keyset_unref(back);
        uint8_t wrong[32];
        memcpy(wrong, K32, 32);
        wrong[31] ^= 1;
        back = keyset_load(path, wrong, err, sizeof(err));
        if (back == NULL)
            keep(err);
        keyset_unref(back);
        if (keyset_get(ks, "zpk1", KS_MAK, KS_U_MAC, err, sizeof(err)) == NULL)
            keep(err);
        keyset_unref(ks);
        unlink(path);
        rmdir(dir);
    }
    (void)out;
    return sink;
}

static bool contains_hex(const char *hay, const uint8_t *b, size_t n)
{
    char hex[2 * 32 + 1];
    util_hex_encode(b, n, hex);
    return strcasestr(hay, hex) != NULL;
}

static void t_noleak(void **state)
{
    char tmpl[] = "/tmp/cg-noleak-err-XXXXXX";
    int fd = mkstemp(tmpl), saved = dup(2);
    (void)state;

    assert_true(fd >= 0 && saved >= 0);
    fflush(stderr);
    assert_int_equal(dup2(fd, 2), 2);
    int sink = exercise();
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    (void)sink;

    size_t len = 0;
    char *text = util_read_file(tmpl, 1 << 20, &len);
    unlink(tmpl);
    close(fd);
    assert_non_null(text);
    assert_non_null(strstr(text, "card 476173******0119")); /* logging did run */
    const char *hay[] = {text, errs};
    for (size_t i = 0; i < 2; i++) {
        assert_null(strstr(hay[i], PAN));
        assert_null(strstr(hay[i], PIN));
        assert_false(contains_hex(hay[i], K16, 16));
        assert_false(contains_hex(hay[i], K16, 8));
        assert_false(contains_hex(hay[i], K16 + 8, 8));
        assert_false(contains_hex(hay[i], K32, 32));
        assert_false(contains_hex(hay[i], K32, 16));
    }
    assert_true(errs_len > 0); /* the error paths were taken */
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_noleak),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
