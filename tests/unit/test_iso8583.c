/*
 * test_iso8583.c - the ISO 8583 codec.
 *
 * Table-driven from tests/data/iso8583/:
 *   golden.txt     every line is one test: the fields must encode to exactly
 *                  the wire bytes and the wire bytes decode to exactly the
 *                  fields (covers every type, length kind and encoding of the
 *                  built-in dialects and of alltypes.conf)
 *   malformed.txt  every line is one test: decoding must fail with exactly
 *                  the field-naming message
 * plus direct tests of framing, BER-TLV, field 90, sub-bitmaps, masking,
 * required fields, dialect-file errors and a seeded random round trip.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/util.h"
#include "iso8583/iso8583.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DATA      "tests/data/iso8583"
#define MAX_CASES 128

static struct iso_dialect *dialects[4];
static const char *const dialect_names[] = {"ascii87", "bcd87", "ebcdic87", "alltypes"};

static struct iso_dialect *dialect(const char *name)
{
    for (size_t i = 0; i < 4; i++)
        if (strcmp(name, dialect_names[i]) == 0)
            return dialects[i];
    fail_msg("unknown dialect %s", name);
    return NULL;
}

static int load_dialects(void **state)
{
    char err[700];
    for (size_t i = 0; i < 3; i++) {
        dialects[i] = iso_dialect_builtin(dialect_names[i], err, sizeof(err));
        if (dialects[i] == NULL) {
            fprintf(stderr, "%s\n", err);
            return -1;
        }
    }
    dialects[3] = iso_dialect_load(DATA "/alltypes.conf", err, sizeof(err));
    if (dialects[3] == NULL) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    return 0;
}

static int free_dialects(void **state)
{
    for (size_t i = 0; i < 4; i++)
        iso_dialect_free(dialects[i]);
    return 0;
}

/* hex with optional white space -> bytes; "-" is empty */
static size_t unhex(const char *txt, uint8_t *out, size_t cap)
{
    char compact[8192];
    size_t k = 0;
    for (const char *p = txt; *p && k + 1 < sizeof(compact); p++)
        if (!isspace((unsigned char)*p))
            compact[k++] = *p;
    compact[k] = '\0';
    if (strcmp(compact, "-") == 0)
        return 0;
    long n = util_hex_decode(compact, out, cap);
    assert_true(n >= 0);
    return (size_t)n;
}

/* ---- golden ------------------------------------------------------------ */

static char golden[MAX_CASES][2048];
static char golden_names[MAX_CASES][48];

struct gfield {
    int n;
    uint8_t v[512];
    size_t len;
};

static void test_golden(void **state)
{
    char line[2048];
    strcpy(line, *state);
    bool decode_only = strstr(line, " <: ") != NULL;
    char *sep = strstr(line, decode_only ? " <: " : " : ");
    assert_non_null(sep);
    *sep = '\0';
    const char *wirehex = sep + (decode_only ? 4 : 3);
    char *save = NULL;
    const char *dname = strtok_r(line, " ", &save);
    const char *mti = strtok_r(NULL, " ", &save);
    struct iso_dialect *d = dialect(dname);
    static struct gfield gf[64];
    size_t nf = 0;
    char *tok;
    while ((tok = strtok_r(NULL, " ", &save)) != NULL) {
        char *eq = strchr(tok, '=');
        assert_non_null(eq);
        *eq = '\0';
        struct gfield *g = &gf[nf++];
        g->n = atoi(tok);
        if (d->f[g->n].type == ISO_T_B) {
            g->len = unhex(eq + 1, g->v, sizeof(g->v));
        } else {
            g->len = 0;
            for (const char *p = eq + 1; *p; p++) {
                if (p[0] == '\\' && p[1] == 's') {
                    g->v[g->len++] = ' ';
                    p++;
                } else {
                    g->v[g->len++] = (uint8_t)*p;
                }
            }
        }
    }
    static uint8_t wire[8192], out[8192];
    size_t wlen = unhex(wirehex, wire, sizeof(wire)), olen = 0;
    static struct iso_msg m;
    struct iso_err err = {0};

    if (!decode_only) {
        iso_msg_init(&m);
        assert_int_equal(iso_set_mti(&m, mti), 0);
        for (size_t i = 0; i < nf; i++)
            assert_int_equal(iso_set(&m, gf[i].n, gf[i].v, gf[i].len), 0);
        if (iso_encode(d, &m, out, sizeof(out), &olen, &err) != 0)
            fail_msg("encode: %s", err.msg);
        char h1[16385], h2[16385];
        util_hex_encode(out, olen, h1);
        util_hex_encode(wire, wlen, h2);
        assert_string_equal(h1, h2);
    }
    if (iso_decode(d, wire, wlen, &m, &err) != 0)
        fail_msg("decode: %s", err.msg);
    assert_memory_equal(m.mti, mti, 4);
    size_t seen = 0;
    for (int n = 2; n <= ISO_MAX_FIELD; n++) {
        if (!iso_has(&m, n) || (n == 65 && d->tertiary))
            continue;
        seen++;
        size_t i;
        for (i = 0; i < nf && gf[i].n != n; i++)
            ;
        if (i == nf)
            fail_msg("decoded field %d not expected", n);
        const struct iso_view *v = iso_get(&m, n);
        assert_int_equal(v->len, gf[i].len);
        assert_memory_equal(v->p, gf[i].v, gf[i].len);
    }
    assert_int_equal(seen, nf);
}

/* ---- malformed ----------------------------------------------------------- */

static char bad_lines[MAX_CASES][2048];
static char bad_names[MAX_CASES][48];

static void test_malformed(void **state)
{
    char line[2048];
    strcpy(line, *state);
    char *bar = strchr(line, '|');
    assert_non_null(bar);
    *bar = '\0';
    const char *want = bar + 1;
    while (*want == ' ')
        want++;
    char *save = NULL;
    strtok_r(line, " ", &save);
    const char *dname = strtok_r(NULL, " ", &save);
    const char *hex = save;
    while (*hex == ' ')
        hex++;
    static uint8_t wire[4096];
    size_t len = unhex(hex, wire, sizeof(wire));
    /* the input at the exact end of a heap block, so ASan sees any over-read */
    uint8_t *exact = malloc(len ? len : 1);
    assert_non_null(exact);
    memcpy(exact, wire, len);
    static struct iso_msg m;
    struct iso_err err = {0};
    assert_int_equal(iso_decode(dialect(dname), exact, len, &m, &err), -1);
    free(exact);
    assert_string_equal(err.msg, want);
}

/* ---- direct tests --------------------------------------------------------- */

static void test_encode_errors(void **state)
{
    static struct iso_msg m;
    uint8_t out[512];
    size_t olen;
    struct iso_err err;
    struct iso_dialect *d = dialect("ascii87");

    iso_msg_init(&m);
    assert_int_equal(iso_set_mti(&m, "0100"), 0);
    assert_int_equal(iso_set(&m, 129, "1", 1), 0);
    assert_int_equal(iso_encode(d, &m, out, sizeof(out), &olen, &err), -1);
    assert_string_equal(err.msg, "bitmap: field 129 set without a tertiary bitmap");

    iso_msg_init(&m);
    assert_int_equal(iso_set_mti(&m, "0100"), 0);
    assert_int_equal(iso_set(&m, 4, "00000000100A", 12), 0);
    assert_int_equal(iso_encode(d, &m, out, sizeof(out), &olen, &err), -1);
    assert_string_equal(err.msg, "field 4: non-digit 'A'");

    iso_clear(&m, 4);
    assert_int_equal(iso_set(&m, 35, "12345678901234567890123456789012345678901", 41), 0);
    assert_int_equal(iso_encode(d, &m, out, sizeof(out), &olen, &err), -1);
    assert_string_equal(err.msg, "field 35: length 41 exceeds max 37");

    iso_clear(&m, 35);
    assert_int_equal(iso_set(&m, 3, "00000", 5), 0);
    assert_int_equal(iso_encode(d, &m, out, sizeof(out), &olen, &err), -1);
    assert_string_equal(err.msg, "field 3: length 5 differs from fixed 6");

    /* output too small is an error, not an overflow */
    iso_msg_init(&m);
    assert_int_equal(iso_set_mti(&m, "0100"), 0);
    assert_int_equal(iso_set(&m, 3, "000000", 6), 0);
    assert_int_equal(iso_encode(d, &m, out, 15, &olen, &err), -1);
    assert_int_equal(iso_encode(d, &m, out, 18, &olen, &err), 0);
    assert_int_equal(olen, 18);

    /* no MTI */
    iso_msg_init(&m);
    assert_int_equal(iso_encode(d, &m, out, sizeof(out), &olen, &err), -1);
    assert_int_equal(iso_set_mti(&m, "01x0"), -1);
    assert_int_equal(iso_set(&m, 1, "", 0), -1);
    assert_int_equal(iso_set(&m, 193, "", 0), -1);
}

/* the EMV data of the typical request: amount, PAN, track 2 equivalent, ARQC */
static const uint8_t emv55[] = {
    0x9F, 0x02, 0x06, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00,                               /* amount */
    0x5A, 0x08, 0x47, 0x61, 0x73, 0x90, 0x01, 0x01, 0x01, 0x19,                         /* PAN */
    0x57, 0x0C, 0x47, 0x61, 0x73, 0x90, 0x01, 0x01, 0x01, 0x19, 0xD2, 0x21, 0x22, 0x01, /* T2 */
    0x70, 0x0B, /* constructed, holding 9F26 */
    0x9F, 0x26, 0x08, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x9F, 0x10, 0x81,
    0x02, 0xAB, 0xCD, /* long-form length 0x81 */
};

static void test_tlv(void **state)
{
    struct iso_tlv t;
    struct iso_err err;
    assert_int_equal(iso_tlv_validate(emv55, sizeof(emv55), &err), 0);
    assert_int_equal(iso_tlv_find(emv55, sizeof(emv55), 0x9F26, &t, &err), 1);
    assert_int_equal(t.len, 8);
    assert_int_equal(t.v[0], 0x11);
    assert_int_equal(iso_tlv_find(emv55, sizeof(emv55), 0x9F10, &t, &err), 1);
    assert_int_equal(t.len, 2);
    assert_int_equal(t.v[1], 0xCD);
    assert_int_equal(iso_tlv_find(emv55, sizeof(emv55), 0x5F34, &t, &err), 0);
    size_t pos = 0;
    int count = 0;
    while (iso_tlv_next(emv55, sizeof(emv55), &pos, &t, &err) == 1)
        count++;
    assert_int_equal(count, 5);

    /* every truncation of a well-formed buffer either parses a prefix or fails cleanly */
    for (size_t cut = 0; cut < sizeof(emv55); cut++) {
        uint8_t *p = malloc(cut ? cut : 1);
        memcpy(p, emv55, cut);
        int r = iso_tlv_find(p, cut, 0x9F10, &t, &err);
        assert_true(r >= -1 && r <= 1);
        free(p);
    }
    static const struct {
        uint8_t b[8];
        size_t len;
        const char *want;
    } bad[] = {
        {{0x9F}, 1, "TLV: truncated tag at offset 0"},
        {{0x9F, 0x02}, 2, "TLV: tag 9F02 without length at offset 0"},
        {{0x9F, 0x82, 0x82, 0x82, 0x02, 0x00}, 6, "TLV: tag longer than 4 bytes at offset 0"},
        {{0x5A, 0x82, 0x01}, 3, "TLV: tag 5A: truncated length at offset 0"},
        {{0x5A, 0x80}, 2, "TLV: tag 5A: bad length form at offset 0"},
        {{0x5A, 0x03, 0x01}, 3, "TLV: tag 5A: length 3 past the end at offset 0"},
        {{0x70, 0x03, 0x5A, 0x05, 0x01}, 5, "TLV: tag 5A: length 5 past the end at offset 2"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(&err, 0, sizeof(err));
        assert_int_equal(iso_tlv_validate(bad[i].b, bad[i].len, &err), -1);
        assert_string_equal(err.msg, bad[i].want);
    }
    uint8_t out[300], big[200];
    memset(big, 0xEE, sizeof(big));
    assert_int_equal(iso_tlv_put(0x9F26, big, 200, out, sizeof(out)), 2 + 2 + 200);
    assert_int_equal(out[2], 0x81);
    assert_int_equal(iso_tlv_find(out, 204, 0x9F26, &t, &err), 1);
    assert_int_equal(t.len, 200);
    assert_int_equal(iso_tlv_put(0x9F26, big, 200, out, 100), -1);
}

static void test_orig_and_sub(void **state)
{
    struct iso_err err;
    struct iso_orig o;
    const char *f90 = "010012345609111314110000000000100000000002";
    struct iso_view v = {(const uint8_t *)f90, 42};
    assert_int_equal(iso_orig_parse(&v, &o, &err), 0);
    assert_memory_equal(o.mti.p, "0100", 4);
    assert_memory_equal(o.stan.p, "123456", 6);
    assert_memory_equal(o.datetime.p, "0911131411", 10);
    assert_memory_equal(o.acquirer.p, "00000000001", 11);
    assert_memory_equal(o.forwarder.p, "00000000002", 11);
    v.len = 41;
    assert_int_equal(iso_orig_parse(&v, &o, &err), -1);

    struct iso_dialect *d = dialect("alltypes");
    struct iso_sub s, s2;
    memset(&s, 0, sizeof(s));
    s.bm = 1ULL << 62 | 1ULL << 61 | 1ULL << 60; /* 2, 3, 4 */
    s.f[2] = (struct iso_view){(const uint8_t *)"POSTILION", 9};
    s.f[3] = (struct iso_view){(const uint8_t *)"1234", 4};
    s.f[4] = (struct iso_view){(const uint8_t *)"\x01\x02", 2};
    uint8_t buf[128];
    long n = iso_sub_build(d, &s, buf, sizeof(buf), &err);
    assert_int_equal(n, 8 + 2 + 9 + 4 + 2);
    struct iso_view whole = {buf, (uint32_t)n};
    assert_int_equal(iso_sub_parse(d, &whole, &s2, &err), 0);
    assert_true(s2.bm == s.bm);
    assert_memory_equal(s2.f[2].p, "POSTILION", 9);
    assert_memory_equal(s2.f[4].p, "\x01\x02", 2);
    whole.len = (uint32_t)n - 1;
    assert_int_equal(iso_sub_parse(d, &whole, &s2, &err), -1);
    assert_string_equal(err.msg, "field 127.4: truncated at 23");
    s.f[3].len = 3;
    assert_int_equal(iso_sub_build(d, &s, buf, sizeof(buf), &err), -1);
}

static void test_framing(void **state)
{
    static const struct {
        struct iso_framing fr;
        const char *hex;
        int want; /* 1 frame, 0 need more, -1 error */
        size_t off, len;
        const char *err;
    } cases[] = {
        {{ISO_FR_LEN2, 0, false, 100}, "0003414243", 1, 2, 3, NULL},
        {{ISO_FR_LEN2, 0, false, 100}, "000341", 0, 0, 0, NULL},
        {{ISO_FR_LEN2, 0, false, 100}, "00", 0, 0, 0, NULL},
        {{ISO_FR_LEN2, 0, false, 100},
         "FFFF",
         -1,
         0,
         0,
         "frame: length exceeds the configured maximum"},
        {{ISO_FR_LEN2, 0, false, 100},
         "0000",
         -1,
         0,
         0,
         "frame: length does not cover the header and a message"},
        {{ISO_FR_LEN4ASCII, 0, false, 100}, "30303033414243", 1, 4, 3, NULL},
        {{ISO_FR_LEN4ASCII, 0, false, 100},
         "30303A33414243",
         -1,
         0,
         0,
         "frame: bad ASCII length digits"},
        {{ISO_FR_LEN2BCD, 0, false, 100}, "0003414243", 1, 2, 3, NULL},
        {{ISO_FR_LEN2BCD, 0, false, 100}, "000A414243", -1, 0, 0, "frame: bad BCD length digits"},
        {{ISO_FR_LEN2BCD, 0, false, 100},
         "0101",
         -1,
         0,
         0,
         "frame: length exceeds the configured maximum"},
        {{ISO_FR_LEN2, 5, true, 100}, "00086000010002414243", 1, 7, 3, NULL},
        {{ISO_FR_LEN2, 5, true, 100},
         "0005600001000241",
         -1,
         0,
         0,
         "frame: length does not cover the header and a message"},
        {{ISO_FR_NONE, 0, false, 100}, "414243", 1, 0, 3, NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t buf[64];
        size_t n = unhex(cases[i].hex, buf, sizeof(buf)), off = 99, len = 99, flen = 99;
        struct iso_err err = {0};
        int r = iso_frame_parse(&cases[i].fr, buf, n, &off, &len, &flen, &err);
        assert_int_equal(r, cases[i].want);
        if (r == 1) {
            assert_int_equal(off, cases[i].off);
            assert_int_equal(len, cases[i].len);
            assert_int_equal(flen, off + len);
        }
        if (cases[i].err)
            assert_string_equal(err.msg, cases[i].err);
    }
    /* answer heads: TPDU 60 0001 0002 -> 60 0002 0001 */
    struct iso_framing tp = {ISO_FR_LEN2, 5, true, 100};
    uint8_t out[16], req[5] = {0x60, 0x00, 0x01, 0x00, 0x02};
    assert_int_equal(iso_frame_write_head(&tp, req, 3, out, sizeof(out)), 7);
    assert_memory_equal(out, "\x00\x08\x60\x00\x02\x00\x01", 7);
    struct iso_framing a4 = {ISO_FR_LEN4ASCII, 0, false, 9999};
    assert_int_equal(iso_frame_write_head(&a4, NULL, 1234, out, sizeof(out)), 4);
    assert_memory_equal(out, "1234", 4);
    struct iso_framing b2 = {ISO_FR_LEN2BCD, 0, false, 9999};
    assert_int_equal(iso_frame_write_head(&b2, NULL, 1234, out, sizeof(out)), 2);
    assert_memory_equal(out, "\x12\x34", 2);
    assert_int_equal(iso_frame_write_head(&b2, NULL, 10000, out, sizeof(out)), -1);
    assert_int_equal(iso_frame_write_head(&tp, req, 3, out, 6), -1);
}

static void test_masking(void **state)
{
    static struct iso_msg m;
    static char out[8192];
    struct iso_dialect *d = dialect("ascii87");
    iso_msg_init(&m);
    assert_int_equal(iso_set_mti(&m, "0100"), 0);
    assert_int_equal(iso_set(&m, 2, "4761739001010119", 16), 0);
    assert_int_equal(iso_set(&m, 35, "4761739001010119=22122011758928889", 34), 0);
    assert_int_equal(iso_set(&m, 52, "\x74\x34\xF6\x78\x13\xBA\xE5\x45", 8), 0);
    assert_int_equal(iso_set(&m, 55, emv55, sizeof(emv55)), 0);
    assert_int_equal(iso_set(&m, 90, "010012345609111314110000000000100000000002", 42), 0);
    assert_true(iso_dump_json(d, &m, false, out, sizeof(out)) > 0);
    assert_null(strstr(out, "739001010"));
    assert_null(strstr(out, "7434F6"));
    assert_non_null(strstr(out, "\"2\":\"476173******0119\""));
    assert_non_null(strstr(out, "\"5A\":\"476173******0119\""));
    assert_non_null(strstr(out, "\"57\":\"************************\""));
    assert_non_null(strstr(out, "\"52\":\"****************\""));
    assert_non_null(strstr(out, "\"70\":{\"9F26\":\"1122334455667788\"}"));
    assert_non_null(strstr(out, "\"90\":{\"mti\":\"0100\",\"stan\":\"123456\""));
    assert_true(iso_dump_text(d, &m, false, out, sizeof(out)) > 0);
    assert_null(strstr(out, "739001010"));
    assert_non_null(strstr(out, "  2 [pan] \"476173******0119\""));
    /* clear only on request */
    assert_true(iso_dump_json(d, &m, true, out, sizeof(out)) > 0);
    assert_non_null(strstr(out, "\"2\":\"4761739001010119\""));
    assert_non_null(strstr(out, "\"5A\":\"4761739001010119\""));
    /* too small is an error, never a truncated dump */
    assert_int_equal(iso_dump_json(d, &m, false, out, 20), -1);
}

static void test_echo(void **state)
{
    static struct iso_msg req, ans;
    static uint8_t wire[512];
    size_t wl;
    struct iso_err err;
    struct iso_dialect *d = dialect("bcd87");
    iso_msg_init(&req);
    assert_int_equal(iso_set_mti(&req, "0100"), 0);
    assert_int_equal(iso_set(&req, 2, "4761739001010119", 16), 0);
    assert_int_equal(iso_set(&req, 11, "000042", 6), 0);
    assert_int_equal(iso_set(&req, 41, "TERM0001", 8), 0);
    assert_int_equal(iso_encode(d, &req, wire, sizeof(wire), &wl, &err), 0);
    assert_int_equal(iso_decode(d, wire, wl, &req, &err), 0);
    /* the answer: echo 2 11 37 41 (37 absent), set 39 */
    iso_msg_init(&ans);
    assert_int_equal(iso_set_mti(&ans, "0110"), 0);
    static const uint8_t echo[] = {2, 11, 37, 41};
    assert_int_equal(iso_echo(&ans, &req, echo, sizeof(echo)), 3);
    assert_int_equal(iso_set(&ans, 39, "00", 2), 0);
    assert_false(iso_has(&ans, 37));
    static uint8_t out[512];
    assert_int_equal(iso_encode(d, &ans, out, sizeof(out), &wl, &err), 0);
    static struct iso_msg back;
    assert_int_equal(iso_decode(d, out, wl, &back, &err), 0);
    assert_memory_equal(back.mti, "0110", 4);
    assert_memory_equal(iso_get(&back, 11)->p, "000042", 6);
    assert_memory_equal(iso_get(&back, 39)->p, "00", 2);
    assert_int_equal(iso_get(&back, 2)->len, 16);
}

static void test_required(void **state)
{
    static const struct {
        const char *mti;
        int fields[16];
        int missing;
    } cases[] = {
        {"0100", {2, 3, 4, 7, 11, 12, 13, 22, 41, 49, 0}, 0},
        {"0100", {2, 3, 4, 7, 11, 12, 13, 22, 49, 0}, 41},
        {"0200", {3, 4, 0}, 2},
        {"0400", {2, 3, 4, 7, 11, 41, 49, 0}, 90},
        {"0800", {7, 11, 0}, 70},
        {"0800", {7, 11, 70, 0}, 0},
        {"0110", {0}, 0},
    };
    static struct iso_msg m;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        iso_msg_init(&m);
        assert_int_equal(iso_set_mti(&m, cases[i].mti), 0);
        for (const int *f = cases[i].fields; *f; f++)
            assert_int_equal(iso_set(&m, *f, "", 0), 0);
        assert_int_equal(iso_required_missing(&m), cases[i].missing);
    }
}

static void test_dialect_errors(void **state)
{
    static const struct {
        const char *text, *want;
    } cases[] = {
        {"[fields]\n2 = n LL 19\n", "t:1: missing [dialect] section"},
        {"[dialect]\nname = x\n", "t:1: missing [fields] section"},
        {"[dialect]\nname = x\n[fields]\n2 = q LL 19\n", "t:4: field 2: unknown type 'q'"},
        {"[dialect]\nname = x\n[fields]\n2 = n LX 19\n", "t:4: field 2: unknown length kind 'LX'"},
        {"[dialect]\nname = x\n[fields]\n2 = n LL 100\n", "t:4: field 2: bad max length '100'"},
        {"[dialect]\nname = x\n[fields]\n2 = n LL 19 purple\n",
         "t:4: field 2: unknown word 'purple'"},
        {"[dialect]\nname = x\n[fields]\n2 = an LL 19 enc=bcd\n", "t:4: field 2: an cannot be BCD"},
        {"[dialect]\nname = x\n[fields]\n200 = n LL 19\n", "t:4: field number '200' not in 2..192"},
        {"[dialect]\nname = x\n[fields]\n130 = n LL 19\n", "t:4: field 130 needs tertiary = yes"},
        {"[dialect]\nname = x\n[fields]\n55 = ans LLL 99 tlv\n", "t:4: field 55: tlv needs type b"},
        {"[dialect]\nname = x\nbitmap = octal\n[fields]\n2 = n LL 19\n", NULL},
        {"[dialect]\nname = x\ncolour = red\n[fields]\n2 = n LL 19\n", NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char err[700] = "";
        struct iso_dialect *d =
            iso_dialect_parse("t", cases[i].text, strlen(cases[i].text), err, sizeof(err));
        assert_null(d);
        if (cases[i].want)
            assert_string_equal(err, cases[i].want);
        else
            assert_true(strncmp(err, "t:3: ", 5) == 0);
    }
    char err[700];
    assert_null(iso_dialect_builtin("nosuch", err, sizeof(err)));
    assert_string_equal(err, "unknown dialect 'nosuch'");
    /* the embedded built-ins are the shipped files */
    for (size_t i = 0; i < 3; i++) {
        char path[128];
        snprintf(path, sizeof(path), "conf/dialects/%s.conf", dialect_names[i]);
        struct iso_dialect *f = iso_dialect_load(path, err, sizeof(err));
        assert_non_null(f);
        assert_memory_equal(f, dialects[i], sizeof(*f));
        iso_dialect_free(f);
    }
}

/* a random valid logical value for fd into buf */
static size_t random_value(const struct iso_fdef *fd, uint8_t *buf, unsigned *seed)
{
    size_t len = fd->lenkind == ISO_L_FIXED ? fd->max : (size_t)rand_r(seed) % (fd->max + 1);
    if (len > 300)
        len = (size_t)rand_r(seed) % 300;
    size_t i = 0;
    if (fd->type == ISO_T_XN)
        buf[i++] = rand_r(seed) & 1 ? 'C' : 'D';
    static const char an[] = "ABCXYZabcxyz0123456789 ";
    static const char z[] = "0123456789=";
    for (size_t k = 0; k < len; k++, i++) {
        int r = rand_r(seed);
        switch (fd->type) {
        case ISO_T_N:
        case ISO_T_XN:
            buf[i] = (uint8_t)('0' + r % 10);
            break;
        case ISO_T_AN:
            buf[i] = (uint8_t)an[r % (int)(sizeof(an) - 1)];
            break;
        case ISO_T_ANS:
            buf[i] = (uint8_t)(0x20 + r % 95);
            break;
        case ISO_T_Z:
            buf[i] = (uint8_t)z[r % 11];
            break;
        default:
            buf[i] = (uint8_t)r;
        }
    }
    return i;
}

static void test_roundtrip_random(void **state)
{
    static struct iso_msg m, back;
    static uint8_t vals[193][1100];
    static uint8_t wire[ISO_MAX_MSG];
    unsigned seed = 20261122;
    for (size_t di = 0; di < 4; di++) {
        const struct iso_dialect *d = dialects[di];
        for (int iter = 0; iter < 500; iter++) {
            iso_msg_init(&m);
            assert_int_equal(iso_set_mti(&m, "0200"), 0);
            size_t total = 0;
            for (int n = 2; n <= ISO_MAX_FIELD; n++) {
                const struct iso_fdef *fd = &d->f[n];
                if (!fd->defined || fd->comp != ISO_X_NONE || rand_r(&seed) % 8 != 0)
                    continue;
                size_t len = random_value(fd, vals[n], &seed);
                if (total + len > 3000)
                    continue;
                total += len;
                assert_int_equal(iso_set(&m, n, vals[n], len), 0);
            }
            size_t wl;
            struct iso_err err;
            if (iso_encode(d, &m, wire, sizeof(wire), &wl, &err) != 0)
                fail_msg("%s iter %d encode: %s", d->name, iter, err.msg);
            if (iso_decode(d, wire, wl, &back, &err) != 0)
                fail_msg("%s iter %d decode: %s", d->name, iter, err.msg);
            assert_memory_equal(back.mti, m.mti, 4);
            for (int n = 2; n <= ISO_MAX_FIELD; n++) {
                if (n == 65 && d->tertiary)
                    continue;
                assert_int_equal(iso_has(&back, n), iso_has(&m, n));
                if (!iso_has(&m, n))
                    continue;
                const struct iso_view *a = iso_get(&m, n), *b = iso_get(&back, n);
                assert_int_equal(a->len, b->len);
                /* z fields: BCD carries '=' as D, ASCII keeps what was sent */
                assert_memory_equal(a->p, b->p, a->len);
            }
        }
    }
}

/* every prefix of a valid message fails cleanly (no over-read under ASan) */
static void test_truncations(void **state)
{
    static struct iso_msg m, back;
    static uint8_t wire[ISO_MAX_MSG];
    for (size_t di = 0; di < 4; di++) {
        const struct iso_dialect *d = dialects[di];
        iso_msg_init(&m);
        assert_int_equal(iso_set_mti(&m, "0100"), 0);
        assert_int_equal(iso_set(&m, 2, "4761739001010119", 16), 0);
        assert_int_equal(iso_set(&m, 35, "4761739001010119=2212201", 24), 0);
        assert_int_equal(iso_set(&m, 55, emv55, sizeof(emv55)), 0);
        assert_int_equal(iso_set(&m, 3, "000000", 6), 0);
        size_t wl;
        struct iso_err err;
        if (iso_encode(d, &m, wire, sizeof(wire), &wl, &err) != 0)
            fail_msg("%s: %s", d->name, err.msg);
        assert_int_equal(iso_decode(d, wire, wl, &back, &err), 0);
        for (size_t cut = 0; cut < wl; cut++) {
            uint8_t *p = malloc(cut ? cut : 1);
            memcpy(p, wire, cut);
            assert_int_equal(iso_decode(d, p, cut, &back, &err), -1);
            free(p);
        }
    }
}

static int read_cases(const char *path, char (*lines)[2048], size_t linesz, char (*names)[48],
                      size_t max, bool name_is_first_word)
{
    FILE *fp = fopen(path, "r");
    if (fp == NULL)
        return -1;
    char buf[4096];
    int n = 0, lineno = 0;
    while (fgets(buf, sizeof(buf), fp) && (size_t)n < max) {
        lineno++;
        buf[strcspn(buf, "\n")] = '\0';
        if (buf[0] == '#' || buf[0] == '\0')
            continue;
        if (strlen(buf) >= linesz) {
            fclose(fp);
            return -1;
        }
        memcpy((char *)lines + (size_t)n * linesz, buf, strlen(buf) + 1);
        if (name_is_first_word)
            snprintf(names[n], 48, "malformed %.*s", (int)strcspn(buf, " "), buf);
        else
            snprintf(names[n], 48, "golden line %d (%.*s)", lineno, (int)strcspn(buf, " "), buf);
        n++;
    }
    fclose(fp);
    return n;
}

int main(void)
{
    static struct CMUnitTest tests[2 * MAX_CASES + 16];
    size_t nt = 0;
    int ng =
        read_cases(DATA "/golden.txt", golden, sizeof(golden[0]), golden_names, MAX_CASES, false);
    int nb = read_cases(DATA "/malformed.txt", bad_lines, sizeof(bad_lines[0]), bad_names,
                        MAX_CASES, true);
    if (ng <= 0 || nb <= 0) {
        fprintf(stderr, "cannot read %s test tables\n", DATA);
        return 1;
    }
    for (int i = 0; i < ng; i++)
        tests[nt++] = (struct CMUnitTest){golden_names[i], test_golden, NULL, NULL, golden[i]};
    for (int i = 0; i < nb; i++)
        tests[nt++] = (struct CMUnitTest){bad_names[i], test_malformed, NULL, NULL, bad_lines[i]};
    tests[nt++] = (struct CMUnitTest)cmocka_unit_test(test_encode_errors);
    tests[nt++] = (struct CMUnitTest)cmocka_unit_test(test_tlv);
    tests[nt++] = (struct CMUnitTest)cmocka_unit_test(test_orig_and_sub);
    tests[nt++] = (struct CMUnitTest)cmocka_unit_test(test_framing);
    tests[nt++] = (struct CMUnitTest)cmocka_unit_test(test_masking);
    tests[nt++] = (struct CMUnitTest)cmocka_unit_test(test_required);
    tests[nt++] = (struct CMUnitTest)cmocka_unit_test(test_echo);
    tests[nt++] = (struct CMUnitTest)cmocka_unit_test(test_dialect_errors);
    tests[nt++] = (struct CMUnitTest)cmocka_unit_test(test_roundtrip_random);
    tests[nt++] = (struct CMUnitTest)cmocka_unit_test(test_truncations);
    return _cmocka_run_group_tests("iso8583", tests, nt, load_dialects, free_dialects);
}
