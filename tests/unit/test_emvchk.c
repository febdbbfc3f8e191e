/*
 * test_emvchk.c - daemon/emvchk.c: field 55 of a request -> arqc_result and
 * atc for the ledger, and tag 91 of the answer, with the public vectors of
 * /work/shared/vectors (category emv_cvn: Visa CVN 10/18, Mastercard CVN
 * 16/17/20/21, IMK 0123..3210, option A): each vector's data elements are
 * sent as field-55 TLVs with its IAD; the ARQC verifies ("ok", the ATC
 * passed on), the Visa answers carry the vector's ARPC (CVN 10: ARC "00" =
 * 3030; CVN 18: a decline's CSU 00000000); a forged ARQC is "bad"; a
 * malformed field 55, unknown CVNs and a missing key take their documented
 * results and counters.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/util.h"
#include "crypto/keystore.h"
#include "daemon/emvchk.h"
#include "daemon/metrics.h"
#include "iso8583/iso8583.h"
#include "tests/lib/vectors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IMK_HEX "0123456789ABCDEFFEDCBA9876543210"

static struct json *root;
static struct keyset *ks;
static struct cg_config cfg;
static struct iso_msg m;
static uint8_t f55[512];
static size_t f55_len;

static void put(uint32_t tag, const uint8_t *v, size_t n)
{
    long w = iso_tlv_put(tag, v, n, f55 + f55_len, sizeof(f55) - f55_len);
    assert_true(w > 0);
    f55_len += (size_t)w;
}

static void put_hex(uint32_t tag, const char *hex)
{
    uint8_t v[64];
    long n = util_hex_decode(hex, v, sizeof(v));
    assert_true(n >= 0);
    put(tag, v, (size_t)n);
}

/*
 * Field 55 from a vector's data_elements ("9F02=... CVR=... counters=...")
 * with its ARQC (arqc_hex; NULL: the vector's) into m.  The IAD: Visa
 * 06 01 CVN CVR (CVN 10) or the vector's 9F10; Mastercard 01 CVN CVR 00 00
 * counters (18 bytes).
 */
static int build(const struct json *v, const char *arqc_hex)
{
    const char *de = json_get_str(v, "data_elements"), *name = json_get_str(v, "cvn");
    char cvr[40] = "", counters[40] = "0000000000000000", iad[80] = "";
    int cvn = atoi(strstr(name, "CVN ") + 4);
    char buf[600];

    f55_len = 0;
    snprintf(buf, sizeof(buf), "%s", de);
    /* "9F10(full IAD incl. length byte)=..." -> "9F10=..." */
    char *paren = strstr(buf, "9F10(");
    if (paren != NULL) {
        char *close = strchr(paren, ')');
        assert_non_null(close);
        memmove(paren + 4, close + 1, strlen(close + 1) + 1);
    }
    for (char *save = NULL, *tok = strtok_r(buf, " ", &save); tok != NULL;
         tok = strtok_r(NULL, " ", &save)) {
        char *eq = strchr(tok, '=');
        assert_non_null(eq);
        *eq = '\0';
        if (strcmp(tok, "CVR") == 0)
            snprintf(cvr, sizeof(cvr), "%s", eq + 1);
        else if (strcmp(tok, "counters") == 0)
            snprintf(counters, sizeof(counters), "%s", eq + 1);
        else if (strncmp(tok, "9F10", 4) == 0)
            snprintf(iad, sizeof(iad), "%s", eq + 1);
        else
            put_hex((uint32_t)strtoul(tok, NULL, 16), eq + 1);
    }
    if (iad[0] == '\0') {
        if (strncmp(name, "Visa", 4) == 0)
            snprintf(iad, sizeof(iad), "0601%02X%s", cvn, cvr);
        else
            snprintf(iad, sizeof(iad), "01%02X%s0000%s", cvn, cvr, counters);
    }
    put_hex(0x9F10, iad);
    put_hex(0x9F27, "80");
    put_hex(0x5F34, "00");
    put_hex(0x9F26, arqc_hex != NULL ? arqc_hex : json_get_str(v, "expected_arqc"));
    iso_msg_init(&m);
    assert_int_equal(iso_set_mti(&m, "0100"), 0);
    assert_int_equal(iso_set(&m, 55, f55, f55_len), 0);
    return cvn;
}

static void test_vectors(void **state)
{
    (void)state;
    const struct json *cat = vectors_category(root, "emv_cvn");
    struct emvchk_req e;
    uint8_t out[64], want[32];
    int atc;
    size_t nvis = 0;

    assert_non_null(cat);
    assert_true(cat->n >= 6);
    for (size_t i = 0; i < cat->n; i++) {
        const struct json *v = &cat->kids[i];
        const char *pan = json_get_str(v, "pan"), *name = json_get_str(v, "cvn");
        int cvn = build(v, NULL);
        uint64_t ok0 = cg_metrics.arqc[MARQC_OK];
        assert_string_equal(emvchk_arqc(ks, &cfg, &m, pan, &e, &atc), "ok");
        assert_int_equal(cg_metrics.arqc[MARQC_OK], ok0 + 1);
        assert_true(e.verified);
        assert_int_equal(e.cvn, cvn);
        assert_int_equal(atc, 0x1C);
        if (strncmp(name, "Visa CVN 10", 11) == 0) {
            /* method 1, ARC = answer code "00" */
            long n = emvchk_answer_f55(ks, &cfg, &e, pan, "00", out, sizeof(out));
            size_t w = vec_hex(v, "expected_arpc", want, sizeof(want));
            assert_int_equal(n, 2 + 10);
            assert_int_equal(out[0], 0x91);
            assert_int_equal(out[1], 10);
            assert_memory_equal(out + 2, want, w);
            assert_memory_equal(out + 2 + 8, "00", 2);
            nvis++;
        } else if (strncmp(name, "Visa CVN 18", 11) == 0) {
            /* method 2, a decline's CSU 00000000 */
            long n = emvchk_answer_f55(ks, &cfg, &e, pan, "05", out, sizeof(out));
            size_t w = vec_hex(v, "expected_arpc", want, sizeof(want));
            assert_int_equal(n, 2 + 8);
            assert_int_equal(out[1], 8);
            assert_memory_equal(out + 2, want, w);
            static const uint8_t zero[4];
            assert_memory_equal(out + 6, zero, 4);
            /* an approval says so in the CSU, and so has another ARPC */
            uint8_t out2[64];
            assert_int_equal(emvchk_answer_f55(ks, &cfg, &e, pan, "00", out2, sizeof(out2)), 10);
            assert_int_equal(out2[7], 0x80);
            assert_memory_not_equal(out2 + 2, want, 4);
            nvis++;
        } else {
            /* Mastercard: method 1, ARPC || ARC with the answer code */
            long n = emvchk_answer_f55(ks, &cfg, &e, pan, "00", out, sizeof(out));
            assert_int_equal(n, 12);
            assert_memory_equal(out + 10, "00", 2);
        }
        /* one bit of the ARQC changed: bad, the ATC still goes to the ledger */
        char forged[17];
        snprintf(forged, sizeof(forged), "%s", json_get_str(v, "expected_arqc"));
        forged[15] = forged[15] == '0' ? '1' : '0';
        build(v, forged);
        uint64_t bad0 = cg_metrics.arqc[MARQC_BAD];
        assert_string_equal(emvchk_arqc(ks, &cfg, &m, pan, &e, &atc), "bad");
        assert_int_equal(cg_metrics.arqc[MARQC_BAD], bad0 + 1);
        assert_false(e.verified);
        assert_int_equal(atc, 0x1C);
        assert_int_equal(emvchk_answer_f55(ks, &cfg, &e, pan, "82", out, sizeof(out)), 0);
        /* another PAN derives another ICC key */
        build(v, NULL);
        assert_string_equal(emvchk_arqc(ks, &cfg, &m, "1234567890123457", &e, &atc), "bad");
        /* another PSN too */
        build(v, NULL);
        assert_int_equal(iso_set(&m, 55, f55, f55_len), 0);
        f55[f55_len - 8 - 3 - 1] = 0x01; /* 5F34 01 (just before 9F26 08 ...) */
        assert_string_equal(emvchk_arqc(ks, &cfg, &m, pan, &e, &atc), "bad");
    }
    assert_int_equal(nvis, 2);
}

static const struct json *visa18(void)
{
    const struct json *cat = vectors_category(root, "emv_cvn");
    for (size_t i = 0; i < cat->n; i++)
        if (strncmp(json_get_str(&cat->kids[i], "cvn"), "Visa CVN 18", 11) == 0)
            return &cat->kids[i];
    fail_msg("no Visa CVN 18 vector");
    return NULL;
}

static void test_absent_and_format(void **state)
{
    (void)state;
    struct emvchk_req e;
    int atc;
    const char *pan = "1234567890123456";

    /* no field 55 */
    iso_msg_init(&m);
    assert_string_equal(emvchk_arqc(ks, &cfg, &m, pan, &e, &atc), "absent");
    assert_int_equal(atc, -1);
    /* field 55 without a cryptogram */
    f55_len = 0;
    put_hex(0x9F36, "001C");
    assert_int_equal(iso_set(&m, 55, f55, f55_len), 0);
    assert_string_equal(emvchk_arqc(ks, &cfg, &m, pan, &e, &atc), "absent");

    uint64_t fmt0 = cg_metrics.arqc[MARQC_FORMAT];
    /* 9F36 of 3 bytes */
    build(visa18(), NULL);
    put_hex(0x9F36, "00001C");
    assert_int_equal(iso_set(&m, 55, f55, f55_len), 0);
    assert_string_equal(emvchk_arqc(ks, &cfg, &m, pan, &e, &atc), "bad");
    assert_false(e.verified);
    /* truncated TLV: the last length says more than there is */
    build(visa18(), NULL);
    assert_int_equal(iso_set(&m, 55, f55, f55_len - 1), 0);
    assert_string_equal(emvchk_arqc(ks, &cfg, &m, pan, &e, &atc), "bad");
    /* no 9F37 (a tag the ARQC covers) */
    build(visa18(), NULL);
    uint8_t *un = memmem(f55, f55_len, "\x9F\x37\x04", 3);
    assert_non_null(un);
    memmove(un, un + 7, f55_len - (size_t)(un + 7 - f55));
    f55_len -= 7;
    assert_int_equal(iso_set(&m, 55, f55, f55_len), 0);
    assert_string_equal(emvchk_arqc(ks, &cfg, &m, pan, &e, &atc), "bad");
    /* PSN not BCD */
    build(visa18(), NULL);
    f55[f55_len - 8 - 3 - 1] = 0x0A;
    assert_string_equal(emvchk_arqc(ks, &cfg, &m, pan, &e, &atc), "bad");
    assert_int_equal(cg_metrics.arqc[MARQC_FORMAT], fmt0 + 4);
    /* no PAN */
    build(visa18(), NULL);
    assert_string_equal(emvchk_arqc(ks, &cfg, &m, "", &e, &atc), "bad");
}

static void test_unsupported_and_no_key(void **state)
{
    (void)state;
    struct emvchk_req e;
    int atc;
    const char *pan = "1234567890123456";
    uint8_t out[32];

    /* CVN 0x05 in a Visa IAD */
    build(visa18(), NULL);
    uint8_t *iad = memmem(f55, f55_len, "\x9F\x10\x07\x06\x01\x12", 6);
    assert_non_null(iad);
    iad[5] = 0x05;
    uint64_t u0 = cg_metrics.arqc[MARQC_UNSUPPORTED];
    assert_string_equal(emvchk_arqc(ks, &cfg, &m, pan, &e, &atc), "absent");
    assert_int_equal(cg_metrics.arqc[MARQC_UNSUPPORTED], u0 + 1);
    assert_int_equal(atc, -1);
    assert_false(e.verified);

    /* no imk_ac configured, no key set, a key of another name */
    uint64_t n0 = cg_metrics.arqc[MARQC_UNAVAILABLE];
    build(visa18(), NULL);
    struct cg_config c2 = cfg;
    c2.keys_imk_ac[0] = '\0';
    assert_string_equal(emvchk_arqc(ks, &c2, &m, pan, &e, &atc), "absent");
    assert_string_equal(emvchk_arqc(NULL, &cfg, &m, pan, &e, &atc), "absent");
    snprintf(c2.keys_imk_ac, sizeof(c2.keys_imk_ac), "other");
    assert_string_equal(emvchk_arqc(ks, &c2, &m, pan, &e, &atc), "absent");
    assert_int_equal(cg_metrics.arqc[MARQC_UNAVAILABLE], n0 + 3);
    assert_int_equal(atc, -1);
    /* verified, then the key is gone at answer time: no field 55 rather than a wrong one */
    assert_string_equal(emvchk_arqc(ks, &cfg, &m, pan, &e, &atc), "ok");
    assert_int_equal(emvchk_answer_f55(ks, &c2, &e, pan, "00", out, sizeof(out)), -1);
    char err[160];
    assert_int_equal(emvchk_key_check(ks, &cfg, err, sizeof(err)), 0);
    assert_int_equal(emvchk_key_check(ks, &c2, err, sizeof(err)), -1);
}

static void test_cvn_layout(void **state)
{
    (void)state;
    static const uint8_t visa[] = {0x06, 0x01, 0x12, 0x03, 0xA0, 0xB8, 0x00};
    static const uint8_t mc[] = {0x01, 0x10, 0xA0, 0x00, 0x03, 0x22, 0x00, 0x00, 0x00,
                                 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0x22, 0xFF};
    assert_int_equal(emvchk_cvn(visa, sizeof(visa), "4761739001010010"), 18);
    assert_int_equal(emvchk_cvn(visa, sizeof(visa), "1234567890123456"), 18);
    assert_int_equal(emvchk_cvn(mc, sizeof(mc), "5412345678901234"), 16);
    assert_int_equal(emvchk_cvn(mc, sizeof(mc), "2221000000000009"), 16);
    assert_int_equal(emvchk_cvn(mc, sizeof(mc), "1234567890123456"), 16);
    assert_int_equal(emvchk_cvn(mc, 2, "5412345678901234"), -1);
}

static int setup(void **state)
{
    (void)state;
    char err[256];
    struct ks_key k;

    if (crypto_init(err, sizeof(err)) != 0)
        return -1;
    root = vectors_load();
    ks = keyset_new();
    memset(&k, 0, sizeof(k));
    snprintf(k.name, sizeof(k.name), "imk");
    k.type = KS_IMK_AC;
    k.usage = ks_default_usage(KS_IMK_AC);
    k.alg = KS_ALG_TDES;
    k.version = 1;
    k.len = (size_t)util_hex_decode(IMK_HEX, k.key, sizeof(k.key));
    if (ks == NULL || keyset_put(ks, &k, err, sizeof(err)) != 0)
        return -1;
    cg_config_defaults(&cfg);
    snprintf(cfg.keys_imk_ac, sizeof(cfg.keys_imk_ac), "imk");
    cfg.imk_ac_derivation = EMV_MKD_A;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    keyset_unref(ks);
    json_free(root);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors),
        cmocka_unit_test(test_absent_and_format),
        cmocka_unit_test(test_unsupported_and_no_key),
        cmocka_unit_test(test_cvn_layout),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
