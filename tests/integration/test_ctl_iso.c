/*
 * test_ctl_iso.c - `cardgatectl iso decode|encode` as operators use it:
 * masked JSON by default, clear only with --no-mask, exit 1 and the
 * field-naming error on stderr for malformed input, exit 2 for usage, and
 * encode | decode giving the same JSON back for every dialect (plain and
 * framed).  Last, the interop run against the npm iso_8583 package
 * (scripts/interop; skipped when node/npm are absent).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "tests/lib/capture.h"
#include "tests/lib/pgtest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *ctl(void)
{
    static char prog[256];
    return pgtest_prog("cardgatectl", prog, sizeof(prog));
}

/* decode cases: args, hex on stdin, exit status, exact combined output ("" = don't care) */
static const struct {
    const char *args, *hex;
    int status;
    const char *want, *must_have, *must_not;
} decode_cases[] = {
    {"--dialect ascii87",
     "303130307000000000000000313634373631373339303031303130313139303030303030303030303030"
     "303035303030",
     0,
     "{\"mti\":\"0100\",\"fields\":{\"2\":\"476173******0119\",\"3\":\"000000\",\"4\":"
     "\"000000005000\"}}\n",
     NULL, "4761739001010119"},
    {"--dialect ascii87 --no-mask",
     "303130307000000000000000313634373631373339303031303130313139303030303030303030303030"
     "303035303030",
     0, NULL, "\"2\":\"4761739001010119\"", NULL},
    {"--dialect ascii87 --text", "303130302000000000000000303030303030", 0,
     "MTI 0100\n  3 [public] \"000000\"\n", NULL, NULL},
    {"--dialect ascii87", "303130302000000000000000303041303030", 1,
     "cardgatectl iso: field 3: non-digit 'A' at offset 12\n", NULL, NULL},
    {"--dialect ascii87",
     "303130300000000020000000"
     "3431"
     "3132333435363738393031323334353637383930313233343536373839303132333435363738393031",
     1, "cardgatectl iso: field 35: length 41 exceeds max 37 at offset 12\n", NULL, NULL},
    {"--dialect ascii87 --framed", "0020303130302000000000000000303030303030", 1,
     "cardgatectl iso: frame: truncated (have 20 bytes)\n", NULL, NULL},
    {"--dialect ascii87 --framed", "0012303130302000000000000000303030303030", 0,
     "{\"mti\":\"0100\",\"fields\":{\"3\":\"000000\"}}\n", NULL, NULL},
    {"--dialect bcd87", "01002000000000000000000000", 0,
     "{\"mti\":\"0100\",\"fields\":{\"3\":\"000000\"}}\n", NULL, NULL},
    {"--dialect nosuch", "00", 2, "cardgatectl iso: unknown dialect 'nosuch'\n", NULL, NULL},
    {"--dialect-file /nonexistent.conf", "00", 2, NULL, "/nonexistent.conf: ", NULL},
    {"--dialect ascii87", "3031", 1, "cardgatectl iso: mti: truncated at offset 0\n", NULL, NULL},
};

static void test_decode(void **state)
{
    for (size_t i = 0; i < sizeof(decode_cases) / sizeof(decode_cases[0]); i++) {
        char cmd[2048], out[8192];
        snprintf(cmd, sizeof(cmd), "printf '%%s' '%s' | %s iso decode --hex %s 2>&1",
                 decode_cases[i].hex, ctl(), decode_cases[i].args);
        int st = test_capture(cmd, out, sizeof(out));
        if (st != decode_cases[i].status)
            fail_msg("case %zu: exit %d, want %d: %s", i, st, decode_cases[i].status, out);
        if (decode_cases[i].want)
            assert_string_equal(out, decode_cases[i].want);
        if (decode_cases[i].must_have)
            assert_non_null(strstr(out, decode_cases[i].must_have));
        if (decode_cases[i].must_not)
            assert_null(strstr(out, decode_cases[i].must_not));
    }
}

/* encode | decode --no-mask must give the same JSON back */
static const struct {
    const char *dialect, *json;
} roundtrip_cases[] = {
    {"--dialect ascii87",
     "{\"mti\":\"0100\",\"fields\":{\"2\":\"4761739001010119\",\"3\":\"000000\",\"4\":"
     "\"000000005000\",\"28\":\"C00000100\",\"35\":\"4761739001010119=22122011758928889\","
     "\"43\":\"ACME \\\"SHOP\\\"                            X\",\"52\":\"7434F67813BAE545\","
     "\"55\":{\"9F02\":\"000000001000\",\"5A\":\"4761739001010119\",\"70\":{\"9F26\":"
     "\"0102030405060708\"}},\"90\":{\"mti\":\"0100\",\"stan\":\"123456\",\"datetime\":"
     "\"0911131411\",\"acquirer\":\"00000000001\",\"forwarder\":\"00000000002\"},\"128\":"
     "\"0102030405060708\"}}"},
    {"--dialect bcd87",
     "{\"mti\":\"0210\",\"fields\":{\"2\":\"476173900101011\",\"4\":\"000000005000\",\"35\":"
     "\"4761739001010119=2212201\",\"39\":\"51\",\"55\":{\"9F36\":\"0001\"}}}"},
    {"--dialect ebcdic87",
     "{\"mti\":\"0800\",\"fields\":{\"7\":\"1122093015\",\"11\":\"000001\",\"43\":\"Caf\\u00E9 "
     "Zurich                           CH\",\"70\":\"301\"}}"},
    {"--dialect-file tests/data/iso8583/alltypes.conf",
     "{\"mti\":\"0200\",\"fields\":{\"3\":\"123456\",\"9\":\"a b\",\"11\":\"AB01\",\"16\":"
     "\"C12345\",\"127\":{\"2\":\"POSTILION\",\"3\":\"1234\",\"4\":\"0102\"},\"130\":\"hi\"}}"},
};

static void test_roundtrip(void **state)
{
    for (size_t i = 0; i < sizeof(roundtrip_cases) / sizeof(roundtrip_cases[0]); i++) {
        for (int framed = 0; framed < 2; framed++) {
            char cmd[4096], out[8192], want[4096];
            const char *fr = framed ? "--framed" : "";
            snprintf(cmd, sizeof(cmd),
                     "printf '%%s' '%s' | %s iso encode %s %s | %s iso decode --no-mask %s %s 2>&1",
                     roundtrip_cases[i].json, ctl(), roundtrip_cases[i].dialect, fr, ctl(),
                     roundtrip_cases[i].dialect, fr);
            assert_int_equal(test_capture(cmd, out, sizeof(out)), 0);
            snprintf(want, sizeof(want), "%s\n", roundtrip_cases[i].json);
            assert_string_equal(out, want);
        }
    }
}

static const struct {
    const char *json, *want;
} encode_errors[] = {
    {"{\"mti\":\"0100\",\"fields\":{\"4\":\"00000000100A\"}}",
     "cardgatectl iso: field 4: non-digit 'A'\n"},
    {"{\"mti\":\"0100\",\"fields\":{\"3\":\"00000\"}}",
     "cardgatectl iso: field 3: length 5 differs from fixed 6\n"},
    {"{\"mti\":\"0100\",\"fields\":{\"52\":\"7434F\"}}",
     "cardgatectl iso: field 52: not even-length hex\n"},
    {"{\"mti\":\"0100\",\"fields\":{\"200\":\"1\"}}",
     "cardgatectl iso: json: field key '200' not a field of dialect ascii87\n"},
    {"{\"mti\":\"0100\",\"fields\":{\"3\":\"000000\"}",
     "cardgatectl iso: json: expected ',' or '}' at byte 37\n"},
    {"{\"fields\":{}}", "cardgatectl iso: mti: missing\n"},
    {"{\"mti\":\"01000\"}", "cardgatectl iso: mti: want 4 digits\n"},
};

static void test_encode_errors(void **state)
{
    for (size_t i = 0; i < sizeof(encode_errors) / sizeof(encode_errors[0]); i++) {
        char cmd[2048], out[4096];
        snprintf(cmd, sizeof(cmd), "printf '%%s' '%s' | %s iso encode 2>&1 >/dev/null",
                 encode_errors[i].json, ctl());
        assert_int_equal(test_capture(cmd, out, sizeof(out)), 1);
        assert_string_equal(out, encode_errors[i].want);
    }
    char cmd[600], out[4096];
    snprintf(cmd, sizeof(cmd), "%s iso frobnicate </dev/null 2>&1", ctl());
    assert_int_equal(test_capture(cmd, out, sizeof(out)), 2);
    snprintf(cmd, sizeof(cmd), "%s iso encode --no-mask </dev/null 2>&1", ctl());
    assert_int_equal(test_capture(cmd, out, sizeof(out)), 2);
}

static void test_interop_npm(void **state)
{
    static char out[1 << 16];
    int st = test_capture("scripts/interop 2>&1", out, sizeof(out));
    printf("%s", out);
    if (strstr(out, "interop: SKIP") != NULL)
        skip();
    assert_int_equal(st, 0);
    assert_non_null(strstr(out, ", 0 failed"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode),
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_encode_errors),
        cmocka_unit_test(test_interop_npm),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
