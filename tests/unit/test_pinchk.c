/*
 * test_pinchk.c - daemon/pinchk.c (PIN candidates from field 52) and
 * daemon/keychg.c (0800 key change of a ZPK), with a key set built in
 * memory: a TDES ZPK, an AES ZPK, a PVK, a ZMK and a CVK (type guard).
 *
 * The candidates are checked against the crypto library's own verifier:
 * pin_verify() with the candidate PVV (or offset) as the card's reference
 * says PIN_OK for the block they came from, and the candidates of a wrong
 * PIN differ.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/util.h"
#include "crypto/cipher.h"
#include "crypto/keyblock.h"
#include "crypto/keystore.h"
#include "crypto/pin.h"
#include "daemon/config.h"
#include "daemon/keychg.h"
#include "daemon/pinchk.h"
#include "iso8583/iso8583.h"
#include "tests/lib/keytest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ZPK_HEX  "0123456789ABCDEFFEDCBA9876543210"
#define ZPK2_HEX "89ABCDEF0123456776543210FEDCBA98"
#define ZPKA_HEX "000102030405060708090A0B0C0D0E0F"
#define PVK_HEX  "5CA6BD23F13B8A9D0E76C4F9A3B2E1D8"
#define ZMK_HEX  "1111222233334444AAAABBBBCCCCDDDD"
#define PAN      "4000001234567899"

static struct keyset *ks;

static int setup(void **state)
{
    char err[128];
    (void)state;
    if (crypto_init(err, sizeof(err)) != 0)
        return -1;
    ks = keyset_new();
    keytest_put(ks, "zpk", KS_ZPK, KS_ALG_TDES, ZPK_HEX);
    keytest_put(ks, "zpk-aes", KS_ZPK, KS_ALG_AES, ZPKA_HEX);
    keytest_put(ks, "pvk", KS_PVK, KS_ALG_TDES, PVK_HEX);
    keytest_put(ks, "zmk", KS_ZMK, KS_ALG_TDES, ZMK_HEX);
    keytest_put(ks, "cvk", KS_CVK, KS_ALG_TDES, PVK_HEX);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    keyset_unref(ks);
    return 0;
}

static size_t hex_key(const char *hex, uint8_t *out)
{
    return (size_t)util_hex_decode(hex, out, 32);
}

/* The encrypted PIN block of pin in format f under the key hex (16 or 8 bytes). */
static size_t block_of(enum pin_format f, const char *keyhex, const char *pin, uint8_t out[16])
{
    uint8_t key[32], fill[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 0};
    size_t len;
    size_t kl = hex_key(keyhex, key);
    assert_int_equal(pinblock_encrypt(f, key, kl, pin, PAN, strlen(PAN), fill, out, &len), 0);
    return len;
}

static enum pinchk_result run(const struct keyset *s, const char *zpk, const char *pvk,
                              const uint8_t *blk, size_t len, const char *pan,
                              struct pinchk_cand *c)
{
    struct iso_msg m;
    struct pinchk_keys k = {.zpk = zpk, .pvk = pvk, .pvki = 1, .dectab = NULL};
    iso_msg_init(&m);
    if (blk != NULL)
        assert_int_equal(iso_set(&m, 52, blk, len), 0);
    return pinchk_candidates(s, &k, &m, pan, c);
}

/* pin_verify with the candidates as the card's reference: both methods. */
static void assert_verifies(enum pin_format f, const char *zpkhex, const uint8_t *blk, size_t len,
                            const struct pinchk_cand *c, enum pin_status want)
{
    uint8_t zpk[32], pvk[32];
    char vd[17];
    size_t zl = hex_key(zpkhex, zpk), pl = hex_key(PVK_HEX, pvk);
    assert_int_equal(pinchk_valdata(PAN, vd), 0);
    struct pin_verify_req r = {
        .format = f,
        .zpk = zpk,
        .zpk_len = zl,
        .block = blk,
        .block_len = len,
        .pan = PAN,
        .pan_len = strlen(PAN),
        .method = PIN_METHOD_PVV,
        .pvk = pvk,
        .pvk_len = pl,
        .pvki = 1,
        .pvv = c->pvv,
        .valdata = vd,
        .pin_offset = c->offset,
    };
    assert_int_equal(pin_verify(&r), want);
    r.method = PIN_METHOD_IBM3624;
    assert_int_equal(pin_verify(&r), want);
}

static void test_formats_tdes(void **state)
{
    (void)state;
    static const enum pin_format fmts[] = {PIN_ISO0, PIN_ISO1, PIN_ISO3};
    for (size_t i = 0; i < 3; i++) {
        uint8_t blk[16], other[16];
        struct pinchk_cand c, w;
        size_t len = block_of(fmts[i], ZPK_HEX, "1234", blk);
        assert_int_equal(len, 8);
        assert_int_equal(run(ks, "zpk", "pvk", blk, len, PAN, &c), PINCHK_VERIFY);
        assert_int_equal(strlen(c.pvv), 4);
        assert_int_equal(strlen(c.offset), 4);
        assert_verifies(fmts[i], ZPK_HEX, blk, len, &c, PIN_OK);
        /* a wrong PIN: other candidates, and the verifier agrees it is wrong */
        len = block_of(fmts[i], ZPK_HEX, "1243", other);
        assert_int_equal(run(ks, "zpk", "pvk", other, len, PAN, &w), PINCHK_VERIFY);
        assert_string_not_equal(c.offset, w.offset);
        assert_verifies(fmts[i], ZPK_HEX, other, len, &c, PIN_WRONG);
    }
}

static void test_format4_aes(void **state)
{
    (void)state;
    uint8_t blk[16];
    struct pinchk_cand c;
    size_t len = block_of(PIN_ISO4, ZPKA_HEX, "987654", blk);
    assert_int_equal(len, 16);
    assert_int_equal(run(ks, "zpk-aes", "pvk", blk, len, PAN, &c), PINCHK_VERIFY);
    assert_int_equal(strlen(c.offset), 6);
    assert_verifies(PIN_ISO4, ZPKA_HEX, blk, len, &c, PIN_OK);
    /* a 16-byte block on a TDES link cannot be decoded */
    assert_int_equal(run(ks, "zpk", "pvk", blk, len, PAN, &c), PINCHK_MALFORMED);
    assert_string_equal(c.pvv, "");
}

/* The same computation as cardgatectl card issue --pin: what is stored is what is compared. */
static void test_from_pin_matches(void **state)
{
    (void)state;
    uint8_t blk[16], pvk[32];
    struct pinchk_cand c, d;
    size_t len = block_of(PIN_ISO0, ZPK_HEX, "4321", blk);
    assert_int_equal(run(ks, "zpk", "pvk", blk, len, PAN, &c), PINCHK_VERIFY);
    assert_int_equal(pinchk_from_pin(pvk, hex_key(PVK_HEX, pvk), 1, NULL, PAN, "4321", &d), 0);
    assert_string_equal(c.pvv, d.pvv);
    assert_string_equal(c.offset, d.offset);
    /* the PVKI is part of the PVV */
    assert_int_equal(pinchk_from_pin(pvk, hex_key(PVK_HEX, pvk), 2, NULL, PAN, "4321", &d), 0);
    assert_string_not_equal(c.pvv, d.pvv);
    assert_int_equal(pinchk_from_pin(pvk, 16, 1, NULL, PAN, "12", &d), -1);
    assert_int_equal(pinchk_from_pin(pvk, 16, 10, NULL, PAN, "1234", &d), -1);
}

static void test_absent_unavailable(void **state)
{
    (void)state;
    uint8_t blk[16];
    struct pinchk_cand c;
    size_t len = block_of(PIN_ISO0, ZPK_HEX, "1234", blk);
    assert_int_equal(run(ks, "zpk", "pvk", NULL, 0, PAN, &c), PINCHK_ABSENT);
    assert_int_equal(run(NULL, "zpk", "pvk", blk, len, PAN, &c), PINCHK_UNAVAILABLE);
    assert_int_equal(run(ks, "", "pvk", blk, len, PAN, &c), PINCHK_UNAVAILABLE);
    assert_int_equal(run(ks, "zpk", NULL, blk, len, PAN, &c), PINCHK_UNAVAILABLE);
    assert_int_equal(run(ks, "nokey", "pvk", blk, len, PAN, &c), PINCHK_UNAVAILABLE);
    /* keys of the wrong type are refused, not used */
    assert_int_equal(run(ks, "pvk", "pvk", blk, len, PAN, &c), PINCHK_UNAVAILABLE);
    assert_int_equal(run(ks, "zpk", "cvk", blk, len, PAN, &c), PINCHK_UNAVAILABLE);
    assert_string_equal(pinchk_result_word(PINCHK_ABSENT), "absent");
    assert_string_equal(pinchk_result_word(PINCHK_VERIFY), "verify");
    assert_null(pinchk_result_word(PINCHK_MALFORMED));
}

static void test_malformed(void **state)
{
    (void)state;
    uint8_t blk[16], key[32], clear[8], enc[8];
    struct pinchk_cand c;
    size_t len = block_of(PIN_ISO0, ZPK_HEX, "1234", blk);

    assert_int_equal(run(ks, "zpk", "pvk", blk, 7, PAN, &c), PINCHK_MALFORMED);
    assert_int_equal(run(ks, "zpk", "pvk", blk, len, "", &c), PINCHK_MALFORMED);
    assert_int_equal(run(ks, "zpk", "pvk", blk, len, "12", &c), PINCHK_MALFORMED);
    /* format 2 (offline ICC) and control nibbles 5..F are not online blocks */
    static const uint8_t ctl[] = {0x24, 0x54, 0xF4};
    for (size_t i = 0; i < sizeof(ctl); i++) {
        memcpy(clear, "\x24\x12\x34\xFF\xFF\xFF\xFF\xFF", 8);
        clear[0] = ctl[i];
        assert_int_equal(crypto_ecb(CRYPTO_TDES, key, hex_key(ZPK_HEX, key), true, clear, 8, enc),
                         0);
        assert_int_equal(run(ks, "zpk", "pvk", enc, 8, PAN, &c), PINCHK_MALFORMED);
    }
    /* a format 0 block whose PIN length nibble is 3 */
    memcpy(clear, "\x03\x12\x3F\xFF\xFF\xFF\xFF\xFF", 8);
    assert_int_equal(crypto_ecb(CRYPTO_TDES, key, hex_key(ZPK_HEX, key), true, clear, 8, enc), 0);
    assert_int_equal(run(ks, "zpk", "pvk", enc, 8, PAN, &c), PINCHK_MALFORMED);
}

static void test_valdata(void **state)
{
    (void)state;
    char vd[17];
    assert_int_equal(pinchk_valdata(PAN, vd), 0);
    assert_string_equal(vd, "000123456789");
    assert_int_equal(pinchk_valdata("4000001234561", vd), 0);
    assert_string_equal(vd, "400000123456");
    assert_int_equal(pinchk_valdata("400000123456", vd), 0); /* 12 digits: 11 before the check */
    assert_string_equal(vd, "40000012345");
    assert_int_equal(pinchk_valdata("40000", vd), -1);
    assert_int_equal(pinchk_valdata("40000A123456789", vd), -1);
}

/* ---- key change ---- */

/* field 48 subelements into buf, onto m */
static void key_msg(struct iso_msg *m, char *buf, size_t cap, const char *key, const char *kcv,
                    const char *scheme)
{
    size_t n = 0;
    buf[0] = '\0';
    if (scheme != NULL)
        n += (size_t)snprintf(buf + n, cap - n, "13%02zu%s", strlen(scheme), scheme);
    if (key != NULL)
        n += (size_t)snprintf(buf + n, cap - n, "11%02zu%s", strlen(key), key);
    if (kcv != NULL)
        n += (size_t)snprintf(buf + n, cap - n, "12%02zu%s", strlen(kcv), kcv);
    iso_msg_init(m);
    assert_int_equal(iso_set(m, 70, "101", 3), 0);
    if (n > 0)
        assert_int_equal(iso_set(m, 48, buf, n), 0);
}

/* ZPK2 under the ZMK (TDES-ECB) as hex, and its 6-hex KCV. */
static void wrapped_zpk2(char hex[65], char kcv[7])
{
    uint8_t zmk[32], k[32], enc[32], cv[3];
    size_t zl = hex_key(ZMK_HEX, zmk), kl = hex_key(ZPK2_HEX, k);
    assert_int_equal(keyblock_ecb(zmk, zl, true, k, kl, enc), 0);
    for (size_t i = 0; i < kl; i++)
        snprintf(hex + 2 * i, 3, "%02X", enc[i]);
    assert_int_equal(crypto_kcv(CRYPTO_TDES, k, kl, cv, 3), 0);
    snprintf(kcv, 7, "%02X%02X%02X", cv[0], cv[1], cv[2]);
}

static const char *decide(const struct iso_msg *m, const char *zpk, const char *zmk,
                          struct keyset **out, char kcv[7])
{
    char err[256];
    const char *rc = keychg_decide(ks, zpk, zmk, m, out, kcv, err, sizeof(err));
    if (strcmp(rc, "00") != 0) {
        assert_null(*out);
        assert_true(err[0] != '\0');
        assert_null(strstr(err, ZPK2_HEX));
    }
    return rc;
}

static void test_keychg_good(void **state)
{
    (void)state;
    char hex[65], kcv[7], got[7], buf[200];
    struct iso_msg m;
    struct keyset *ns = NULL;
    uint8_t blk[16];
    struct pinchk_cand c;

    wrapped_zpk2(hex, kcv);
    key_msg(&m, buf, sizeof(buf), hex, kcv, NULL);
    assert_string_equal(decide(&m, "zpk", "zmk", &ns, got), "00");
    assert_non_null(ns);
    assert_string_equal(got, kcv);
    const struct ks_key *k = keyset_find(ns, "zpk");
    assert_int_equal(k->version, 2);
    assert_int_equal(k->type, KS_ZPK);
    /* the current set is untouched */
    assert_int_equal(keyset_find(ks, "zpk")->version, 1);
    /* a PIN under the new key verifies with the new set, not with the old */
    size_t len = block_of(PIN_ISO0, ZPK2_HEX, "1234", blk);
    assert_int_equal(run(ns, "zpk", "pvk", blk, len, PAN, &c), PINCHK_VERIFY);
    assert_verifies(PIN_ISO0, ZPK2_HEX, blk, len, &c, PIN_OK);
    struct pinchk_cand o;
    enum pinchk_result r = run(ks, "zpk", "pvk", blk, len, PAN, &o);
    assert_true(r == PINCHK_MALFORMED || strcmp(o.offset, c.offset) != 0);
    /* 4-digit KCV is accepted too; scheme E explicitly */
    keyset_unref(ns);
    ns = NULL;
    char kcv4[5];
    memcpy(kcv4, kcv, 4);
    kcv4[4] = '\0';
    key_msg(&m, buf, sizeof(buf), hex, kcv4, "E");
    assert_string_equal(decide(&m, "zpk", "zmk", &ns, got), "00");
    keyset_unref(ns);
}

static void test_keychg_refused(void **state)
{
    (void)state;
    char hex[65], kcv[7], got[7], buf[200], bad[7];
    struct iso_msg m;
    struct keyset *ns = NULL;

    wrapped_zpk2(hex, kcv);
    snprintf(bad, sizeof(bad), "%s", kcv);
    bad[5] = bad[5] == '0' ? '1' : '0';
    key_msg(&m, buf, sizeof(buf), hex, bad, NULL);
    assert_string_equal(decide(&m, "zpk", "zmk", &ns, got), "63");
    assert_string_equal(got, "");
    /* no zpk on the link: not supported; no zmk: 96 */
    key_msg(&m, buf, sizeof(buf), hex, kcv, NULL);
    assert_string_equal(decide(&m, "", "zmk", &ns, got), "12");
    assert_string_equal(decide(&m, "zpk", "", &ns, got), "96");
    assert_string_equal(decide(&m, "zpk", "nokey", &ns, got), "96");
    assert_string_equal(decide(&m, "zpk", "pvk", &ns, got), "96"); /* not a zmk */
    /* format */
    key_msg(&m, buf, sizeof(buf), NULL, kcv, NULL);
    assert_string_equal(decide(&m, "zpk", "zmk", &ns, got), "30");
    key_msg(&m, buf, sizeof(buf), hex, NULL, NULL);
    assert_string_equal(decide(&m, "zpk", "zmk", &ns, got), "30");
    key_msg(&m, buf, sizeof(buf), "0123456789ABCDEX0123456789ABCDEF", kcv, NULL);
    assert_string_equal(decide(&m, "zpk", "zmk", &ns, got), "30");
    key_msg(&m, buf, sizeof(buf), "0123456789ABCDEF012", kcv, NULL);
    assert_string_equal(decide(&m, "zpk", "zmk", &ns, got), "30");
    key_msg(&m, buf, sizeof(buf), hex, "12345", NULL);
    assert_string_equal(decide(&m, "zpk", "zmk", &ns, got), "30");
    key_msg(&m, buf, sizeof(buf), hex, "ZZZZZZ", NULL);
    assert_string_equal(decide(&m, "zpk", "zmk", &ns, got), "30");
    key_msg(&m, buf, sizeof(buf), hex, kcv, "X");
    assert_string_equal(decide(&m, "zpk", "zmk", &ns, got), "30");
    key_msg(&m, buf, sizeof(buf), NULL, NULL, NULL);
    assert_string_equal(decide(&m, "zpk", "zmk", &ns, got), "30");
    /* the key of another type cannot be replaced through a link */
    key_msg(&m, buf, sizeof(buf), hex, kcv, NULL);
    assert_string_equal(decide(&m, "pvk", "zmk", &ns, got), "63");
    /* an AES ZPK cannot come as a TDES-ECB block */
    assert_string_equal(decide(&m, "zpk-aes", "zmk", &ns, got), "63");
}

/* TR-31 (scheme T): the block's MAC binds the key, the KCV is optional. */
static void test_keychg_tr31(void **state)
{
    (void)state;
    uint8_t zmk[32], k[32];
    char blk[200], buf[260], got[7], kcv[7], hex[65];
    struct iso_msg m;
    struct keyset *ns = NULL;
    size_t zl = hex_key(ZMK_HEX, zmk), kl = hex_key(ZPK2_HEX, k);

    assert_int_equal(tr31_wrap(zmk, zl, "B0000P0TE00N0000", k, kl, blk, sizeof(blk)), 0);
    assert_true(strlen(blk) <= 99);
    key_msg(&m, buf, sizeof(buf), blk, NULL, "T");
    assert_string_equal(decide(&m, "zpk", "zmk", &ns, got), "00");
    wrapped_zpk2(hex, kcv);
    assert_string_equal(got, kcv);
    keyset_unref(ns);
    ns = NULL;
    /* a MAC key block cannot become a ZPK; a tampered block fails its MAC */
    assert_int_equal(tr31_wrap(zmk, zl, "B0000M3TC00N0000", k, kl, blk, sizeof(blk)), 0);
    key_msg(&m, buf, sizeof(buf), blk, NULL, "T");
    assert_string_equal(decide(&m, "zpk", "zmk", &ns, got), "63");
    assert_int_equal(tr31_wrap(zmk, zl, "B0000P0TE00N0000", k, kl, blk, sizeof(blk)), 0);
    blk[20] = blk[20] == '0' ? '1' : '0';
    key_msg(&m, buf, sizeof(buf), blk, NULL, "T");
    assert_string_equal(decide(&m, "zpk", "zmk", &ns, got), "63");
    /* ECB needs its KCV */
    key_msg(&m, buf, sizeof(buf), hex, NULL, "E");
    assert_string_equal(decide(&m, "zpk", "zmk", &ns, got), "30");
}

/* keychg_commit saves the set under the master key and swaps it in. */
static void test_keychg_commit(void **state)
{
    (void)state;
    char dir[] = "/tmp/test_pinchk.XXXXXX", hex[65], kcv[7], got[7], buf[200], err[256];
    struct cg_config *cfg = calloc(1, sizeof(*cfg));
    struct keyset_holder h;
    struct iso_msg m;
    struct keyset *ns = NULL;
    uint8_t mk[KS_MASTER_LEN];

    assert_non_null(cfg);
    assert_non_null(mkdtemp(dir));
    snprintf(cfg->keys_file, sizeof(cfg->keys_file), "%s/keys", dir);
    snprintf(cfg->master_key_file, sizeof(cfg->master_key_file), "%s/master", dir);
    FILE *f = fopen(cfg->master_key_file, "w");
    assert_non_null(f);
    fputs("00112233445566778899AABBCCDDEEFF00112233445566778899AABBCCDDEEFF\n", f);
    fclose(f);
    assert_int_equal(chmod(cfg->master_key_file, 0600), 0);
    keyset_holder_init(&h);
    keyset_holder_swap(&h, keyset_ref(ks));

    wrapped_zpk2(hex, kcv);
    key_msg(&m, buf, sizeof(buf), hex, kcv, NULL);
    assert_string_equal(decide(&m, "zpk", "zmk", &ns, got), "00");
    assert_int_equal(keychg_commit(&h, cfg, ns, err, sizeof(err)), 0);
    struct keyset *cur = keyset_holder_get(&h);
    assert_int_equal(keyset_find(cur, "zpk")->version, 2);
    keyset_unref(cur);
    /* on disk */
    assert_int_equal(ks_master_load(cfg->master_key_file, mk, err, sizeof(err)), 0);
    struct keyset *disk = keyset_load(cfg->keys_file, mk, err, sizeof(err));
    assert_non_null(disk);
    const struct ks_key *k = keyset_find(disk, "zpk");
    assert_int_equal(k->version, 2);
    uint8_t want[32];
    assert_memory_equal(k->key, want, hex_key(ZPK2_HEX, want));
    keyset_unref(disk);

    /* a store that cannot be written: refused, the old set stays */
    ns = NULL;
    assert_string_equal(decide(&m, "zpk", "zmk", &ns, got), "00");
    snprintf(cfg->keys_file, sizeof(cfg->keys_file), "%s/no/such/dir/keys", dir);
    assert_int_equal(keychg_commit(&h, cfg, ns, err, sizeof(err)), -1);
    cur = keyset_holder_get(&h);
    assert_int_equal(keyset_find(cur, "zpk")->version, 2);
    keyset_unref(cur);

    keyset_holder_destroy(&h);
    char path[600];
    snprintf(path, sizeof(path), "%s/keys", dir);
    unlink(path);
    unlink(cfg->master_key_file);
    rmdir(dir);
    free(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_formats_tdes),     cmocka_unit_test(test_format4_aes),
        cmocka_unit_test(test_from_pin_matches), cmocka_unit_test(test_absent_unavailable),
        cmocka_unit_test(test_malformed),        cmocka_unit_test(test_valdata),
        cmocka_unit_test(test_keychg_good),      cmocka_unit_test(test_keychg_refused),
        cmocka_unit_test(test_keychg_tr31),      cmocka_unit_test(test_keychg_commit),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
