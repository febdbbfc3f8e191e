/*
 * test_crypto_vectors.c - every entry of every implemented category of the
 * public payment-crypto vectors (../shared/vectors/payment-crypto.json or
 * $CARDGATE_VECTORS), table-driven; must-fail entries must be rejected.
 * Failures name the category, index and field only, never values.
 */
#include "common/util.h"
#include "crypto/cipher.h"
#include "crypto/cvv.h"
#include "crypto/dukpt.h"
#include "crypto/emv.h"
#include "crypto/mac.h"
#include "crypto/pin.h"
#include "tests/lib/vectors.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static struct json *root;
static int failures;

static void bad(const char *cat, size_t i, const char *what)
{
    fprintf(stderr, "  %s[%zu]: %s\n", cat, i, what);
    failures++;
}

#define EXPECT(cond, what)                                                                         \
    do {                                                                                           \
        if (!(cond))                                                                               \
            bad(cat, i, what);                                                                     \
    } while (0)

/* hex of the expected member compared with bytes */
static bool hex_eq(const struct json *v, const char *key, const uint8_t *b, size_t n)
{
    char hex[2 * 64 + 1];
    const char *exp = json_get_str(v, key);
    if (exp == NULL || n > 64)
        return false;
    util_hex_encode(b, n, hex);
    return strcasecmp(exp, hex) == 0;
}

static const struct json *category(const char *cat)
{
    const struct json *c = vectors_category(root, cat);
    assert_non_null(c);
    assert_true(c->n > 0);
    failures = 0;
    return c;
}

static int setup(void **state)
{
    char err[200];
    (void)state;
    if (crypto_init(err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    root = vectors_load();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    json_free(root);
    return 0;
}

static void t_kcv_tdes(void **state)
{
    const char *cat = "kcv_tdes";
    const struct json *c = category(cat);
    (void)state;
    for (size_t i = 0; i < c->n; i++) {
        const struct json *v = &c->kids[i];
        uint8_t key[24], kcv[8];
        size_t kl = vec_hex(v, "key", key, sizeof(key));
        size_t want = strlen(json_get_str(v, "expected_kcv")) / 2;
        EXPECT(crypto_kcv(CRYPTO_TDES, key, kl, kcv, want) == 0 &&
                   hex_eq(v, "expected_kcv", kcv, want),
               "kcv");
    }
    assert_int_equal(failures, 0);
}

static enum pin_format fmt_of(const struct json *v)
{
    const char *f = json_get_str(v, "format");
    assert_non_null(f);
    assert_true(strncmp(f, "ISO-", 4) == 0);
    return (enum pin_format)(f[4] - '0');
}

/* clear PIN blocks: formats 0, 2, 3 */
static void run_clear_pin(const char *cat)
{
    const struct json *c = category(cat);
    for (size_t i = 0; i < c->n; i++) {
        const struct json *v = &c->kids[i];
        const char *op = json_get_str(v, "op");
        const char *pan = json_get_str(v, "pan");
        size_t panlen = pan ? strlen(pan) : 0;
        enum pin_format f = fmt_of(v);
        uint8_t blk[8];
        char pin[PIN_BUF];

        if (op == NULL || strcmp(op, "encode") == 0) {
            EXPECT(pinblock_clear_encode(f, json_get_str(v, "pin"), pan, panlen, NULL, blk) == 0 &&
                       hex_eq(v, "expected_pin_block", blk, 8),
                   "encode");
            /* and it decodes back */
            EXPECT(pinblock_clear_decode(f, blk, pan, panlen, pin) == 0 &&
                       strcmp(pin, json_get_str(v, "pin")) == 0,
                   "round trip");
        } else if (strcmp(op, "decode") == 0) {
            vec_hex(v, "pin_block", blk, sizeof(blk));
            EXPECT(pinblock_clear_decode(f, blk, pan, panlen, pin) == 0 &&
                       strcmp(pin, json_get_str(v, "expected_pin")) == 0,
                   "decode");
        } else if (strcmp(op, "decode_must_fail") == 0) {
            vec_hex(v, "pin_block", blk, sizeof(blk));
            EXPECT(pinblock_clear_decode(f, blk, pan, panlen, pin) != 0, "must fail");
        } else {
            bad(cat, i, "unknown op");
        }
    }
    assert_int_equal(failures, 0);
}

static void t_pin_iso0(void **state)
{
    (void)state;
    run_clear_pin("pin_block_iso0_clear");
}

static void t_pin_iso2(void **state)
{
    (void)state;
    run_clear_pin("pin_block_iso2");
}

static void t_pin_iso3(void **state)
{
    (void)state;
    run_clear_pin("pin_block_iso3");
}

static void t_pin_iso4(void **state)
{
    const char *cat = "pin_block_iso4_aes";
    const struct json *c = category(cat);
    (void)state;
    for (size_t i = 0; i < c->n; i++) {
        const struct json *v = &c->kids[i];
        const char *op = json_get_str(v, "op");
        const char *pan = json_get_str(v, "pan");
        size_t panlen = strlen(pan), n = 0;
        uint8_t key[32], blk[16], fill[8];
        char pin[PIN_BUF];

        if (strcmp(op, "decipher") == 0) {
            size_t kl = vec_hex(v, "key_aes128", key, sizeof(key));
            vec_hex(v, "encrypted_pin_block", blk, sizeof(blk));
            EXPECT(pinblock_decrypt(PIN_ISO4, key, kl, blk, 16, pan, panlen, pin) == 0 &&
                       strcmp(pin, json_get_str(v, "expected_pin")) == 0,
                   "decipher");
            /* the same block under another PAN must not decode to the PIN */
            if (pinblock_decrypt(PIN_ISO4, key, kl, blk, 16, "9", 1, pin) == 0)
                EXPECT(strcmp(pin, json_get_str(v, "expected_pin")) != 0, "PAN binding");
        } else if (strcmp(op, "encipher") == 0) {
            size_t kl = vec_hex(v, "key_aes128", key, sizeof(key));
            vec_hex(v, "random_fill", fill, sizeof(fill));
            EXPECT(pinblock_encrypt(PIN_ISO4, key, kl, json_get_str(v, "pin"), pan, panlen, fill,
                                    blk, &n) == 0 &&
                       n == 16 && hex_eq(v, "expected_encrypted_pin_block", blk, 16),
                   "encipher");
        } else if (strcmp(op, "pan_field") == 0) {
            EXPECT(pinblock_iso4_pan_field(pan, panlen, blk) == 0 &&
                       hex_eq(v, "expected_pan_field", blk, 16),
                   "pan field");
        } else {
            bad(cat, i, "unknown op");
        }
    }
    assert_int_equal(failures, 0);
}

static void t_pvv(void **state)
{
    const char *cat = "visa_pvv";
    const struct json *c = category(cat);
    (void)state;
    for (size_t i = 0; i < c->n; i++) {
        const struct json *v = &c->kids[i];
        uint8_t pvk[24];
        char pvv[5];
        const char *pan = json_get_str(v, "pan");
        size_t kl = vec_hex(v, "pvk", pvk, sizeof(pvk));
        EXPECT(pin_pvv(pvk, kl, pan, strlen(pan), (unsigned)json_get_long(v, "pvki", -1),
                       json_get_str(v, "pin"), pvv) == 0 &&
                   strcmp(pvv, json_get_str(v, "expected_pvv")) == 0,
               "pvv");
    }
    assert_int_equal(failures, 0);
}

static void t_ibm3624(void **state)
{
    const char *cat = "ibm3624_offset";
    const struct json *c = category(cat);
    (void)state;
    for (size_t i = 0; i < c->n; i++) {
        const struct json *v = &c->kids[i];
        uint8_t pvk[24];
        char off[PIN_BUF], vd[17];
        size_t kl = vec_hex(v, "pvk", pvk, sizeof(pvk));
        const char *pan = json_get_str(v, "pan");
        long o = json_get_long(v, "pan_verify_offset", -1);
        long l = json_get_long(v, "pan_verify_length", -1);
        const char *pad = json_get_str(v, "pan_pad");

        EXPECT(pin_ibm3624_offset(pvk, kl, json_get_str(v, "validation_data"),
                                  json_get_str(v, "decimalization_table"), json_get_str(v, "pin"),
                                  off) == 0 &&
                   strcmp(off, json_get_str(v, "expected_offset")) == 0,
               "offset");
        /* the validation data is PAN[o:o+l] padded with pan_pad */
        assert_true(o >= 0 && l > 0 && l <= 16 && pad != NULL);
        memset(vd, pad[0], 16);
        memcpy(vd, pan + o, (size_t)l);
        vd[16] = '\0';
        EXPECT(strcasecmp(vd, json_get_str(v, "validation_data")) == 0, "validation data");
    }
    assert_int_equal(failures, 0);
}

static void t_cvv(void **state)
{
    const char *cat = "cvv";
    const struct json *c = category(cat);
    (void)state;
    for (size_t i = 0; i < c->n; i++) {
        const struct json *v = &c->kids[i];
        uint8_t cvk[16];
        char out[4];
        const char *pan = json_get_str(v, "pan");
        vec_hex(v, "cvk_a", cvk, 8);
        vec_hex(v, "cvk_b", cvk + 8, 8);
        EXPECT(cvv_compute(cvk, 16, pan, strlen(pan), json_get_str(v, "expiry_yymm"),
                           json_get_str(v, "service_code"), out) == 0 &&
                   strcmp(out, json_get_str(v, "expected_cvv")) == 0,
               "cvv");
        EXPECT(cvv_verify(CVV_MAGSTRIPE, cvk, 16, pan, strlen(pan), json_get_str(v, "expiry_yymm"),
                          json_get_str(v, "service_code"),
                          json_get_str(v, "expected_cvv")) == CVV_OK,
               "verify ok");
        char wrong[4];
        memcpy(wrong, json_get_str(v, "expected_cvv"), 4);
        wrong[0] = wrong[0] == '9' ? '0' : (char)(wrong[0] + 1);
        EXPECT(cvv_verify(CVV_MAGSTRIPE, cvk, 16, pan, strlen(pan), json_get_str(v, "expiry_yymm"),
                          json_get_str(v, "service_code"), wrong) == CVV_WRONG,
               "verify wrong");
    }
    assert_int_equal(failures, 0);
}

static void t_mac_padding(void **state)
{
    const char *cat = "mac_padding";
    const struct json *c = category(cat);
    (void)state;
    for (size_t i = 0; i < c->n; i++) {
        const struct json *v = &c->kids[i];
        uint8_t in[64], out[80];
        size_t n = vec_hex(v, "data_hex", in, sizeof(in));
        size_t m = mac_pad((int)json_get_long(v, "padding_method", 0),
                           (size_t)json_get_long(v, "block", 0), in, n, out, sizeof(out));
        EXPECT(m > 0 && hex_eq(v, "expected_padded", out, m), "padded");
    }
    assert_int_equal(failures, 0);
}

static int pad_of(const struct json *v)
{
    const char *p = json_get_str(v, "padding");
    assert_non_null(p);
    return strstr(p, "method 2") != NULL ? 2 : 1;
}

/* message bytes of a MAC vector: data_hex, msg or data_ascii */
static size_t msg_of(const struct json *v, uint8_t *buf, size_t cap)
{
    const char *a;
    if (json_get(v, "data_hex") != NULL)
        return vec_hex(v, "data_hex", buf, cap);
    if (json_get(v, "msg") != NULL)
        return vec_hex(v, "msg", buf, cap);
    a = json_get_str(v, "data_ascii");
    assert_non_null(a);
    assert_true(strlen(a) <= cap);
    memcpy(buf, a, strlen(a));
    return strlen(a);
}

static void run_mac(const char *cat, enum mac_alg alg)
{
    const struct json *c = category(cat);
    for (size_t i = 0; i < c->n; i++) {
        const struct json *v = &c->kids[i];
        uint8_t key[32], msg[128], mac[16];
        size_t kl, ml = msg_of(v, msg, sizeof(msg)), n = 0;
        int pad = alg == MAC_AES_CMAC ? 0 : pad_of(v);

        if (alg == MAC_ISO9797_1_ALG3) {
            vec_hex(v, "key_left_K", key, 8);
            vec_hex(v, "key_right_Kprime", key + 8, 8);
            kl = 16;
        } else {
            kl = vec_hex(v, alg == MAC_AES_CMAC ? "key" : "key_2tdes", key, sizeof(key));
        }
        EXPECT(mac_compute(alg, key, kl, pad, msg, ml, mac, &n) == 0 &&
                   hex_eq(v, "expected_mac", mac, n),
               "mac");
        EXPECT(mac_verify(alg, key, kl, pad, msg, ml, mac, n) == MAC_OK, "verify ok");
        if (ml > 0) {
            msg[ml - 1] ^= 1;
            EXPECT(mac_verify(alg, key, kl, pad, msg, ml, mac, n) == MAC_BAD, "tampered");
        }
    }
    assert_int_equal(failures, 0);
}

static void t_mac_alg1(void **state)
{
    (void)state;
    run_mac("mac_iso9797_alg1_tdes", MAC_ISO9797_1_ALG1);
}

static void t_mac_alg3(void **state)
{
    (void)state;
    run_mac("mac_iso9797_alg3_retail", MAC_ISO9797_1_ALG3);
}

static void t_mac_cmac(void **state)
{
    (void)state;
    run_mac("mac_aes_cmac", MAC_AES_CMAC);
}

static bool kcv_eq(const struct json *v, const char *key, const uint8_t k[16])
{
    uint8_t kcv[2];
    if (json_get(v, key) == NULL)
        return true; /* not given by this vector */
    return crypto_kcv(CRYPTO_TDES, k, 16, kcv, 2) == 0 && hex_eq(v, key, kcv, 2);
}

static enum emv_mkd mkd_of(const struct json *v)
{
    const char *m = json_get_str(v, "mk_derivation");
    assert_non_null(m);
    return strstr(m, "option B") ? EMV_MKD_B : EMV_MKD_A;
}

static void t_emv_mkd(void **state)
{
    const char *cat = "emv_mkd_csk_arqc_arpc";
    const struct json *c = category(cat);
    (void)state;
    for (size_t i = 0; i < c->n; i++) {
        const struct json *v = &c->kids[i];
        uint8_t imk[16], mk[16], sk[16], r[8], data[128], arqc[8], arpc[8], b[8];
        const char *pan = json_get_str(v, "pan");
        const char *skd = json_get_str(v, "skd");
        const char *rs = skd ? strstr(skd, "R=") : NULL;
        size_t dl;

        vec_hex(v, "issuer_mk_ac", imk, 16);
        assert_non_null(rs);
        {
            char rh[17];
            memcpy(rh, rs + 2, 16);
            rh[16] = '\0';
            assert_int_equal(util_hex_decode(rh, r, 8), 8);
        }
        dl = vec_hex(v, "arqc_data", data, sizeof(data));
        EXPECT(kcv_eq(v, "issuer_mk_kcv", imk), "issuer kcv");
        EXPECT(emv_derive_icc_mk(mkd_of(v), imk, pan, strlen(pan), json_get_str(v, "psn"), mk) ==
                       0 &&
                   hex_eq(v, "icc_mk_full_selfcomputed_odd_parity", mk, 16),
               "icc mk");
        EXPECT(kcv_eq(v, "expected_icc_mk_kcv", mk), "icc mk kcv");
        EXPECT(emv_session_key(mk, r, sk) == 0 && kcv_eq(v, "expected_session_key_kcv", sk),
               "session key");
        EXPECT(emv_arqc(18, sk, data, dl, arqc) == 0 && hex_eq(v, "expected_arqc", arqc, 8),
               "arqc");
        const char *ak = json_get_str(v, "arpc_key");
        const uint8_t *k = (ak && strcmp(ak, "icc_mk") == 0) ? mk : sk;
        if (json_get_long(v, "arpc_method", 0) == 1) {
            vec_hex(v, "arc", b, 2);
            EXPECT(emv_arpc1(k, arqc, b, arpc) == 0 && hex_eq(v, "expected_arpc", arpc, 8),
                   "arpc 1");
        } else {
            uint8_t prop[8];
            size_t pl = json_get(v, "prop_auth_data") ? vec_hex(v, "prop_auth_data", prop, 8) : 0;
            vec_hex(v, "csu", b, 4);
            EXPECT(emv_arpc2(k, arqc, b, prop, pl, arpc) == 0 &&
                       hex_eq(v, "expected_arpc", arpc, 4),
                   "arpc 2");
        }
    }
    assert_int_equal(failures, 0);
}

/* value of TAG=HEX in a data_elements string into out; length or -1 */
static long element(const char *de, const char *tag, uint8_t *out, size_t cap)
{
    char pat[64], hex[129];
    const char *p = de;
    size_t tl;

    snprintf(pat, sizeof(pat), "%s", tag);
    tl = strlen(pat);
    while ((p = strstr(p, pat)) != NULL) {
        if ((p == de || p[-1] == ' ') && (p[tl] == '=' || p[tl] == '(')) {
            const char *eq = strchr(p, '=');
            size_t n = strcspn(eq + 1, " ");
            if (n >= sizeof(hex))
                return -1;
            memcpy(hex, eq + 1, n);
            hex[n] = '\0';
            return util_hex_decode(hex, out, cap);
        }
        p += tl;
    }
    return -1;
}

static void t_emv_cvn(void **state)
{
    const char *cat = "emv_cvn";
    const struct json *c = category(cat);
    (void)state;
    for (size_t i = 0; i < c->n; i++) {
        const struct json *v = &c->kids[i];
        const char *de = json_get_str(v, "data_elements");
        const char *cs = json_get_str(v, "cvn");
        uint8_t imk[16], amount[6], other[6], country[2], tvr[5], cur[2], date[3], type[1], un[4],
            aip[2], atc[2], iad[32], cvr[8], ctr[8], arqc[8], data[128], arpc[8], b[8];
        int cvn = atoi(strstr(cs, "CVN ") + 4);
        long il, dl;
        size_t n = 0;

        vec_hex(v, "issuer_mk_ac", imk, 16);
        vec_hex(v, "expected_arqc", arqc, 8);
        assert_true(element(de, "9F02", amount, 6) == 6 && element(de, "9F03", other, 6) == 6 &&
                    element(de, "9F1A", country, 2) == 2 && element(de, "95", tvr, 5) == 5 &&
                    element(de, "5F2A", cur, 2) == 2 && element(de, "9A", date, 3) == 3 &&
                    element(de, "9C", type, 1) == 1 && element(de, "9F37", un, 4) == 4 &&
                    element(de, "82", aip, 2) == 2 && element(de, "9F36", atc, 2) == 2);
        /* rebuild the IAD the card would send */
        if ((il = element(de, "9F10", iad, sizeof(iad))) < 0) {
            long cl = element(de, "CVR", cvr, sizeof(cvr));
            memset(iad, 0, sizeof(iad));
            if (cvn == 10) {
                assert_int_equal(cl, 4);
                iad[0] = 6, iad[1] = 1, iad[2] = 10;
                memcpy(iad + 3, cvr, 4);
                il = 7;
            } else {
                assert_int_equal(cl, 6);
                iad[1] = (uint8_t)cvn;
                memcpy(iad + 2, cvr, 6);
                il = 10;
                if (element(de, "counters", ctr, sizeof(ctr)) == 8) {
                    memcpy(iad + 10, ctr, 8);
                    il = 18;
                }
            }
        }
        /* through emv_tags_set, as the daemon's field-55 loop will */
        struct emv_tags t;
        memset(&t, 0, sizeof(t));
        const struct {
            uint32_t tag;
            const uint8_t *v;
            size_t n;
        } tlv[] = {{0x9F02, amount, 6}, {0x9F03, other, 6},        {0x9F1A, country, 2},
                   {0x95, tvr, 5},      {0x5F2A, cur, 2},          {0x9A, date, 3},
                   {0x9C, type, 1},     {0x9F37, un, 4},           {0x82, aip, 2},
                   {0x9F36, atc, 2},    {0x9F10, iad, (size_t)il}, {0x9F26, arqc, 8}};
        for (size_t k = 0; k < sizeof(tlv) / sizeof(tlv[0]); k++) {
            if (tlv[k].tag != 0x9F10)
                EXPECT(emv_tags_set(&t, tlv[k].tag, tlv[k].v, tlv[k].n + 1) == -1, "tag length");
            EXPECT(emv_tags_set(&t, tlv[k].tag, tlv[k].v, tlv[k].n) == 1, "tag set");
        }
        EXPECT(emv_tags_set(&t, 0x9F33, un, 3) == 0, "unused tag");
        struct emv_auth_req r = {.cvn = cvn,
                                 .imk = imk,
                                 .imk_len = 16,
                                 .pan = json_get_str(v, "pan"),
                                 .pan_len = strlen(json_get_str(v, "pan")),
                                 .psn = json_get_str(v, "psn"),
                                 .mkd = mkd_of(v),
                                 .tags = &t};
        dl = emv_arqc_data(cvn, &t, data, sizeof(data));
        EXPECT(dl > 0, "arqc data");
        if (json_get(v, "arqc_data_hex") != NULL)
            EXPECT(dl > 0 && hex_eq(v, "arqc_data_hex", data, (size_t)dl), "arqc data bytes");
        EXPECT(emv_verify_arqc(&r) == EMV_OK, "arqc verifies");
        if (json_get(v, "expected_session_key_kcv") != NULL) {
            uint8_t mk[16], sk[16];
            EXPECT(emv_derive_icc_mk(r.mkd, imk, r.pan, r.pan_len, r.psn, mk) == 0 &&
                       kcv_eq(v, "icc_mk_ac_kcv", mk),
                   "icc mk kcv");
            EXPECT(emv_ac_key(cvn, mk, atc, un, sk) == 0 &&
                       kcv_eq(v, "expected_session_key_kcv", sk),
                   "session key kcv");
        }
        if (emv_cvn_arpc_method(cvn) == 1) {
            vec_hex(v, "arc", b, 2);
            EXPECT(emv_make_arpc(&r, b, NULL, NULL, 0, arpc, &n) == 0 && n == 8 &&
                       hex_eq(v, "expected_arpc", arpc, 8),
                   "arpc 1");
        } else {
            vec_hex(v, "csu", b, 4);
            EXPECT(emv_make_arpc(&r, NULL, b, NULL, 0, arpc, &n) == 0 && n == 4 &&
                       hex_eq(v, "expected_arpc", arpc, 4),
                   "arpc 2");
        }
        {
            uint8_t iad91[16];
            size_t l91 = 0;
            bool m1 = emv_cvn_arpc_method(cvn) == 1;
            EXPECT(emv_issuer_auth_data(&r, m1 ? b : NULL, m1 ? NULL : b, NULL, 0, iad91, &l91) ==
                           0 &&
                       l91 == (m1 ? 10u : 8u) && hex_eq(v, "expected_arpc", iad91, m1 ? 8 : 4) &&
                       memcmp(iad91 + (m1 ? 8 : 4), b, m1 ? 2 : 4) == 0,
                   "tag 91");
        }
        /* forged: one bit of the cryptogram, or of the amount */
        arqc[7] ^= 1;
        EXPECT(emv_verify_arqc(&r) == EMV_BAD_ARQC, "forged arqc");
        arqc[7] ^= 1;
        amount[5] ^= 1;
        EXPECT(emv_verify_arqc(&r) == EMV_BAD_ARQC, "tampered amount");
        amount[5] ^= 1;
    }
    assert_int_equal(failures, 0);
}

static void t_dukpt(void **state)
{
    const char *cat = "dukpt_tdes";
    const struct json *c = category(cat);
    (void)state;
    for (size_t i = 0; i < c->n; i++) {
        const struct json *v = &c->kids[i];
        uint8_t bdk[16], ksn[DUKPT_KSN_LEN], ipek[16], k[16], blk[16];
        size_t n = 0;
        vec_hex(v, "bdk", bdk, 16);
        assert_int_equal(vec_hex(v, "ksn", ksn, sizeof(ksn)), DUKPT_KSN_LEN);
        EXPECT(dukpt_ipek(bdk, ksn, ipek) == 0 &&
                   hex_eq(v, json_get(v, "ipek") ? "ipek" : "expected_ipek", ipek, 16),
               "ipek");
        if (json_get(v, "expected_base_key_no_variant") != NULL)
            EXPECT(dukpt_key(ipek, ksn, DUKPT_NONE, k) == 0 &&
                       hex_eq(v, "expected_base_key_no_variant", k, 16),
                   "base key");
        if (json_get(v, "expected_mac_request_key") != NULL)
            EXPECT(dukpt_key(ipek, ksn, DUKPT_MAC_REQ, k) == 0 &&
                       hex_eq(v, "expected_mac_request_key", k, 16),
                   "mac request key");
        if (json_get(v, "expected_pin_key") != NULL) {
            EXPECT(dukpt_key(ipek, ksn, DUKPT_PIN, k) == 0 && hex_eq(v, "expected_pin_key", k, 16),
                   "pin key");
            EXPECT(pinblock_encrypt(PIN_ISO0, k, 16, "1234", "4012345678909", 13, NULL, blk, &n) ==
                           0 &&
                       hex_eq(v, "expected_epb_iso0_pin1234_pan4012345678909", blk, 8),
                   "pin block");
        }
    }
    assert_int_equal(failures, 0);
}

/* tests/data/crypto/extra_vectors.json: other public sources */
static void t_extra_cmac(void **state)
{
    const char *cat = "mac_cmac";
    char err[200];
    struct json *x = json_parse_file("tests/data/crypto/extra_vectors.json", err, sizeof(err));
    const struct json *c;
    (void)state;
    assert_non_null(x);
    c = json_get(x, cat);
    assert_non_null(c);
    assert_true(c->n > 0);
    failures = 0;
    for (size_t i = 0; i < c->n; i++) {
        const struct json *v = &c->kids[i];
        uint8_t key[32], msg[64], mac[16];
        size_t kl = vec_hex(v, "key", key, sizeof(key));
        size_t ml = strlen(json_get_str(v, "msg")) ? vec_hex(v, "msg", msg, sizeof(msg)) : 0;
        enum crypto_alg alg = strcmp(json_get_str(v, "alg"), "aes") == 0 ? CRYPTO_AES : CRYPTO_TDES;
        EXPECT(crypto_cmac(alg, key, kl, msg, ml, mac) == 0 &&
                   hex_eq(v, "expected_mac", mac, crypto_block_size(alg)),
               "cmac");
    }
    json_free(x);
    assert_int_equal(failures, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_kcv_tdes),    cmocka_unit_test(t_pin_iso0),
        cmocka_unit_test(t_pin_iso2),    cmocka_unit_test(t_pin_iso3),
        cmocka_unit_test(t_pin_iso4),    cmocka_unit_test(t_pvv),
        cmocka_unit_test(t_ibm3624),     cmocka_unit_test(t_cvv),
        cmocka_unit_test(t_mac_padding), cmocka_unit_test(t_mac_alg1),
        cmocka_unit_test(t_mac_alg3),    cmocka_unit_test(t_mac_cmac),
        cmocka_unit_test(t_emv_mkd),     cmocka_unit_test(t_emv_cvn),
        cmocka_unit_test(t_dukpt),       cmocka_unit_test(t_extra_cmac),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
