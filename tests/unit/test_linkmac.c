/*
 * test_linkmac.c - daemon/linkmac.c: which bytes are MAC'd (the encoded
 * message up to, not including, the MAC field), field 64 without and 128
 * with a secondary bitmap, the MAC field's bit set, verification of good,
 * tampered, missing and misplaced MACs, wrong and missing keys, the three
 * algorithms and both paddings, and the key checks.  The expected MACs are
 * computed here from the raw bytes with crypto/mac.h (whose own vectors are
 * in test_crypto_vectors), never with linkmac itself.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/util.h"
#include "crypto/keystore.h"
#include "crypto/mac.h"
#include "daemon/linkmac.h"
#include "iso8583/iso8583.h"

#include <stdio.h>
#include <string.h>

#define MAK_HEX  "0123456789ABCDEFFEDCBA9876543210"
#define MAK2_HEX "1111111111111111FEDCBA9876543210"
#define AES_HEX  "2B7E151628AED2A6ABF7158809CF4F3C"

static struct iso_dialect *ascii, *bcd;
static struct ks_key mak, mak2, aes;
static struct iso_msg m, dec;
static uint8_t buf[2048];

static void mk_key(struct ks_key *k, const char *name, enum ks_alg alg, const char *hex)
{
    memset(k, 0, sizeof(*k));
    snprintf(k->name, sizeof(k->name), "%s", name);
    k->type = KS_MAK;
    k->usage = KS_U_MAC;
    k->alg = alg;
    k->version = 1;
    k->len = (size_t)util_hex_decode(hex, k->key, sizeof(k->key));
}

static struct cg_listener_conf conf(enum cg_mac mac, int pad)
{
    struct cg_listener_conf c;
    memset(&c, 0, sizeof(c));
    snprintf(c.name, sizeof(c.name), "t");
    snprintf(c.mak, sizeof(c.mak), "mak");
    c.mac = mac;
    c.mac_padding = pad;
    memcpy(c.mac_failure_code, "63", 3);
    return c;
}

/* A 0200 purchase (no field 65..128) into m. */
static void purchase(void)
{
    iso_msg_init(&m);
    assert_int_equal(iso_set_mti(&m, "0200"), 0);
    assert_int_equal(iso_set(&m, 2, "4761739001010010", 16), 0);
    assert_int_equal(iso_set(&m, 3, "000000", 6), 0);
    assert_int_equal(iso_set(&m, 4, "000000001250", 12), 0);
    assert_int_equal(iso_set(&m, 11, "000123", 6), 0);
    assert_int_equal(iso_set(&m, 41, "TERM0001", 8), 0);
}

/* An 0800 echo (field 70: secondary bitmap) into m. */
static void echo(void)
{
    iso_msg_init(&m);
    assert_int_equal(iso_set_mti(&m, "0800"), 0);
    assert_int_equal(iso_set(&m, 7, "1206043000", 10), 0);
    assert_int_equal(iso_set(&m, 11, "000124", 6), 0);
    assert_int_equal(iso_set(&m, 70, "301", 3), 0);
}

/* The MAC of data as the link must compute it, leftmost 8 bytes. */
static void expect_mac(enum mac_alg alg, const struct ks_key *k, int pad, const uint8_t *data,
                       size_t len, uint8_t out[8])
{
    uint8_t full[16];
    size_t n = 0;
    assert_int_equal(mac_compute(alg, k->key, k->len, pad, data, len, full, &n), 0);
    assert_true(n >= 8);
    memcpy(out, full, 8);
}

/* linkmac_encode m into buf (must succeed) and decode it into dec; the length. */
static size_t sign(enum cg_mac mac, int pad, const struct iso_dialect *d, const struct ks_key *k)
{
    struct iso_err err;
    size_t len = 0;
    assert_int_equal(linkmac_encode(mac, pad, d, k, &m, buf, sizeof(buf), &len, &err), 0);
    assert_int_equal(iso_decode(d, buf, len, &dec, &err), 0);
    return len;
}

/* Decode buf[0..len) (ascii87) and verify its MAC. */
static enum mac_status check(enum cg_mac mac, int pad, const struct ks_key *k, size_t len,
                             const char **why)
{
    struct iso_err err;
    assert_int_equal(iso_decode(ascii, buf, len, &dec, &err), 0);
    return linkmac_verify(mac, pad, ascii, k, buf, len, &dec, why);
}

/* Field 64: the last 8 bytes are the X9.19 MAC of everything before them. */
static void test_field64_bytes(void **state)
{
    (void)state;
    struct cg_listener_conf c = conf(CG_MAC_X919, 1);
    struct iso_err err;
    size_t len = 0, plain_len = 0;
    uint8_t plain[2048], want[8];

    purchase();
    assert_int_equal(iso_encode(ascii, &m, plain, sizeof(plain), &plain_len, &err), 0);
    purchase();
    assert_int_equal(
        linkmac_encode(c.mac, c.mac_padding, ascii, &mak, &m, buf, sizeof(buf), &len, &err), 0);
    assert_int_equal(linkmac_field(&m), 64);
    assert_int_equal(len, plain_len + 8);
    /* MTI, then the primary bitmap with bit 64 (the last bit) set, no secondary */
    assert_memory_equal(buf, "0200", 4);
    assert_int_equal(buf[4 + 7] & 0x01, 0x01);
    assert_int_equal(buf[4] & 0x80, 0x00);
    /* apart from bit 64 the bytes are the plain message's */
    assert_memory_equal(buf + 12, plain + 12, plain_len - 12);
    expect_mac(MAC_ISO9797_1_ALG3, &mak, 1, buf, len - 8, want);
    assert_memory_equal(buf + len - 8, want, 8);
    /* and the decoder sees it as field 64 */
    assert_int_equal(iso_decode(ascii, buf, len, &dec, &err), 0);
    assert_non_null(iso_get(&dec, 64));
    assert_memory_equal(iso_get(&dec, 64)->p, want, 8);
    assert_false(iso_has(&dec, 128));
}

/* Field 128 when the message has a secondary bitmap (0800 with field 70). */
static void test_field128_bytes(void **state)
{
    (void)state;
    struct cg_listener_conf c = conf(CG_MAC_X919, 1);
    struct iso_err err;
    size_t len = 0;
    uint8_t want[8];
    const char *why;

    echo();
    assert_int_equal(
        linkmac_encode(c.mac, c.mac_padding, ascii, &mak, &m, buf, sizeof(buf), &len, &err), 0);
    assert_int_equal(buf[4] & 0x80, 0x80);      /* secondary bitmap present */
    assert_int_equal(buf[4 + 15] & 0x01, 0x01); /* bit 128 */
    assert_int_equal(buf[4 + 7] & 0x01, 0x00);  /* not 64 */
    expect_mac(MAC_ISO9797_1_ALG3, &mak, 1, buf, len - 8, want);
    assert_memory_equal(buf + len - 8, want, 8);
    assert_int_equal(iso_decode(ascii, buf, len, &dec, &err), 0);
    assert_false(iso_has(&dec, 64));
    assert_non_null(iso_get(&dec, 128));
    assert_int_equal(linkmac_verify(c.mac, c.mac_padding, ascii, &mak, buf, len, &dec, &why),
                     MAC_OK);
}

/* A MAC placed in 64 of a message with a secondary bitmap is refused. */
static void test_field64_with_secondary(void **state)
{
    (void)state;
    struct cg_listener_conf c = conf(CG_MAC_X919, 1);
    struct iso_err err;
    size_t len = 0;
    const char *why;

    echo();
    static const uint8_t zeros[8];
    assert_int_equal(iso_set(&m, 64, zeros, 8), 0);
    assert_int_equal(iso_encode(ascii, &m, buf, sizeof(buf), &len, &err), 0);
    assert_int_equal(iso_decode(ascii, buf, len, &dec, &err), 0);
    assert_int_equal(linkmac_verify(c.mac, c.mac_padding, ascii, &mak, buf, len, &dec, &why),
                     MAC_BAD);
    assert_non_null(strstr(why, "secondary"));
}

static void test_verify_good_bad_missing(void **state)
{
    (void)state;
    struct iso_err err;
    const char *why;

    purchase();
    size_t len = sign(CG_MAC_X919, 1, ascii, &mak);
    assert_int_equal(check(CG_MAC_X919, 1, &mak, len, &why), MAC_OK);
    assert_int_equal(check(CG_MAC_X919, 1, &mak2, len, &why), MAC_BAD);        /* another key */
    assert_int_equal(check(CG_MAC_X919, 1, NULL, len, &why), MAC_UNAVAILABLE); /* no key */
    assert_int_equal(check(CG_MAC_X919, 2, &mak, len, &why), MAC_BAD);         /* padding 2 */
    assert_int_equal(check(CG_MAC_ALG1, 1, &mak, len, &why), MAC_BAD);         /* alg 1 */

    /* the amount changed by one digit after MACing */
    uint8_t *amt = memmem(buf, len, "000000001250", 12);
    assert_non_null(amt);
    amt[11] = '1';
    assert_int_equal(check(CG_MAC_X919, 1, &mak, len, &why), MAC_BAD);
    assert_non_null(strstr(why, "does not verify"));
    amt[11] = '0';
    /* the MAC itself changed */
    buf[len - 1] ^= 0x01;
    assert_int_equal(check(CG_MAC_X919, 1, &mak, len, &why), MAC_BAD);

    /* no MAC field */
    purchase();
    assert_int_equal(iso_encode(ascii, &m, buf, sizeof(buf), &len, &err), 0);
    assert_int_equal(check(CG_MAC_X919, 1, &mak, len, &why), MAC_BAD);
    assert_non_null(strstr(why, "no MAC"));
}

/* A field after the MAC field: refused even with a MAC over the bytes before it. */
static void test_field_after_mac(void **state)
{
    (void)state;
    struct cg_listener_conf c = conf(CG_MAC_X919, 1);
    struct iso_err err;
    size_t len = 0;
    const char *why;

    echo();
    assert_int_equal(
        linkmac_encode(c.mac, c.mac_padding, ascii, &mak, &m, buf, sizeof(buf), &len, &err), 0);
    assert_int_equal(iso_decode(ascii, buf, len, &dec, &err), 0);
    static const uint8_t zeros[8];
    assert_int_equal(iso_set(&dec, 64, zeros, 8), 0); /* both 64 and 128 */
    uint8_t b2[2048];
    size_t len2;
    assert_int_equal(iso_encode(ascii, &dec, b2, sizeof(b2), &len2, &err), 0);
    assert_int_equal(iso_decode(ascii, b2, len2, &dec, &err), 0);
    assert_int_equal(linkmac_verify(c.mac, c.mac_padding, ascii, &mak, b2, len2, &dec, &why),
                     MAC_BAD);
}

/* alg1 and AES-CMAC, padding 2; bcd87 too (the MAC'd bytes are the wire bytes). */
static void test_algorithms(void **state)
{
    (void)state;
    struct iso_err err;
    size_t len = 0;
    uint8_t want[8];
    const char *why;
    const struct {
        enum cg_mac mac;
        enum mac_alg alg;
        const struct ks_key *k;
        int pad;
        const struct iso_dialect **d;
    } t[] = {
        {CG_MAC_ALG1, MAC_ISO9797_1_ALG1, &mak, 1, (const struct iso_dialect **)&ascii},
        {CG_MAC_ALG1, MAC_ISO9797_1_ALG1, &mak, 2, (const struct iso_dialect **)&ascii},
        {CG_MAC_CMAC, MAC_AES_CMAC, &aes, 1, (const struct iso_dialect **)&ascii},
        {CG_MAC_X919, MAC_ISO9797_1_ALG3, &mak, 2, (const struct iso_dialect **)&bcd},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        struct cg_listener_conf c = conf(t[i].mac, t[i].pad);
        purchase();
        assert_int_equal(
            linkmac_encode(c.mac, c.mac_padding, *t[i].d, t[i].k, &m, buf, sizeof(buf), &len, &err),
            0);
        expect_mac(t[i].alg, t[i].k, t[i].pad, buf, len - 8, want);
        assert_memory_equal(buf + len - 8, want, 8);
        assert_int_equal(iso_decode(*t[i].d, buf, len, &dec, &err), 0);
        assert_int_equal(
            linkmac_verify(c.mac, c.mac_padding, *t[i].d, t[i].k, buf, len, &dec, &why), MAC_OK);
    }
}

/* No key: the answer is not encoded (never sent without its MAC). */
static void test_encode_without_key(void **state)
{
    (void)state;
    struct cg_listener_conf c = conf(CG_MAC_X919, 1);
    struct iso_err err;
    size_t len = 0;
    purchase();
    assert_int_equal(
        linkmac_encode(c.mac, c.mac_padding, ascii, NULL, &m, buf, sizeof(buf), &len, &err), -1);
    assert_non_null(strstr(err.msg, "no MAC key"));
    assert_null(strstr(err.msg, MAK_HEX));
}

static void test_key_check(void **state)
{
    (void)state;
    char err[200];
    struct keyset *ks = keyset_new();
    struct ks_key k;
    assert_non_null(ks);
    mk_key(&k, "mak", KS_ALG_TDES, MAK_HEX);
    assert_int_equal(keyset_put(ks, &k, err, sizeof(err)), 0);
    mk_key(&k, "aesmak", KS_ALG_AES, AES_HEX);
    assert_int_equal(keyset_put(ks, &k, err, sizeof(err)), 0);
    memset(&k, 0, sizeof(k));
    snprintf(k.name, sizeof(k.name), "cvk");
    k.type = KS_CVK;
    k.usage = ks_default_usage(KS_CVK);
    k.alg = KS_ALG_TDES;
    k.version = 1;
    k.len = (size_t)util_hex_decode(MAK2_HEX, k.key, sizeof(k.key));
    assert_int_equal(keyset_put(ks, &k, err, sizeof(err)), 0);

    struct cg_listener_conf c = conf(CG_MAC_X919, 1);
    assert_int_equal(linkmac_key_check(ks, &c, err, sizeof(err)), 0);
    c = conf(CG_MAC_CMAC, 1); /* a TDES key for CMAC */
    assert_int_equal(linkmac_key_check(ks, &c, err, sizeof(err)), -1);
    snprintf(c.mak, sizeof(c.mak), "aesmak");
    assert_int_equal(linkmac_key_check(ks, &c, err, sizeof(err)), 0);
    c = conf(CG_MAC_X919, 1);
    snprintf(c.mak, sizeof(c.mak), "aesmak");
    assert_int_equal(linkmac_key_check(ks, &c, err, sizeof(err)), -1);
    snprintf(c.mak, sizeof(c.mak), "cvk"); /* wrong type */
    assert_int_equal(linkmac_key_check(ks, &c, err, sizeof(err)), -1);
    assert_null(strstr(err, MAK2_HEX));
    snprintf(c.mak, sizeof(c.mak), "nokey");
    assert_int_equal(linkmac_key_check(ks, &c, err, sizeof(err)), -1);
    c = conf(CG_MAC_NONE, 1);
    assert_int_equal(linkmac_key_check(ks, &c, err, sizeof(err)), 0);
    keyset_unref(ks);
}

static void test_dialects(void **state)
{
    (void)state;
    char err[200];
    for (const char *const *n = iso_dialect_builtin_names(); *n != NULL; n++) {
        struct iso_dialect *d = iso_dialect_builtin(*n, err, sizeof(err));
        assert_non_null(d);
        assert_int_equal(linkmac_dialect_check(d, err, sizeof(err)), 0);
        iso_dialect_free(d);
    }
    assert_int_equal(linkmac_wire_len(ascii, 64), 8);
    assert_int_equal(linkmac_wire_len(ascii, 2), 0); /* not a fixed binary field */
    assert_int_equal(linkmac_wire_len(ascii, 0), 0);
    assert_int_equal(linkmac_wire_len(ascii, 500), 0);
}

static int setup(void **state)
{
    (void)state;
    char err[256];
    if (crypto_init(err, sizeof(err)) != 0)
        return -1;
    ascii = iso_dialect_builtin("ascii87", err, sizeof(err));
    bcd = iso_dialect_builtin("bcd87", err, sizeof(err));
    if (ascii == NULL || bcd == NULL)
        return -1;
    mk_key(&mak, "mak", KS_ALG_TDES, MAK_HEX);
    mk_key(&mak2, "mak2", KS_ALG_TDES, MAK2_HEX);
    mk_key(&aes, "aes", KS_ALG_AES, AES_HEX);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    iso_dialect_free(ascii);
    iso_dialect_free(bcd);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_field64_bytes),
        cmocka_unit_test(test_field128_bytes),
        cmocka_unit_test(test_field64_with_secondary),
        cmocka_unit_test(test_verify_good_bad_missing),
        cmocka_unit_test(test_field_after_mac),
        cmocka_unit_test(test_algorithms),
        cmocka_unit_test(test_encode_without_key),
        cmocka_unit_test(test_key_check),
        cmocka_unit_test(test_dialects),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
