/*
 * test_e2e_macemv.c - link MACs and EMV ARQC/ARPC end to end: a key store
 * made with cardgatectl key (PAN-hash key, a MAC key and an IMK-AC imported
 * from components), the demo data seeded through it, a real cardgated with
 * two listeners (ascii87, len2): "mac" (mac = x919, mak = mak1) and "main"
 * (no MAC), [keys] imk_ac = imk1, and requests over the wire:
 *
 *   - a MAC'd purchase -> 00, the answer's field 64 MAC verifies; the same
 *     with one byte changed after MACing, or without a MAC -> 63 (itself
 *     MAC'd); a MAC'd 0800 echo -> 0810 00 with a field-128 MAC
 *   - a chip purchase (field 55, Visa CVN 18, ATC 5) with a valid ARQC ->
 *     00 and field 55 tag 91 = ARPC || CSU that verifies with the card's
 *     session key; a forged ARQC (ATC 6) -> 82 (emv.arqc); ATC 5 again with
 *     a valid ARQC -> 82 (emv.atc_replay); ATC 7 -> 00
 *   - /metrics counts the MAC failures and the ARQC results
 *   - the daemon log, the audit log and pg_dump --data-only hold no test
 *     PAN and no key (or component, or the master key) in clear.
 *
 * The test computes MACs, ARQCs and ARPCs itself from crypto/ primitives
 * (whose vectors test_crypto_vectors checks), not through daemon code.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/util.h"
#include "crypto/emv.h"
#include "crypto/mac.h"
#include "iso8583/iso8583.h"
#include "tests/lib/capture.h"
#include "tests/lib/cgdtest.h"
#include "tests/lib/e2etest.h"
#include "tests/lib/pgtest.h"
#include "tests/lib/runprog.h"
#include "tools/sim/cards.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Test keys only: each imported as C1 XOR C2. */
#define IMK_HEX "0123456789ABCDEFFEDCBA9876543210"
#define IMK_C1  "32107654BA98FEDCCDEF89AB45670123"
#define IMK_C2  "33333333333333333333333333333333"
#define MAK_HEX "FEDCBA98765432100123456789ABCDEF"
#define MAK_C1  "AB89EFCD2301674554761032DCFE98BA"
#define MAK_C2  "55555555555555555555555555555555"

static struct pgtest pg;
static PGconn *conn;
static struct cgd d;
static struct sim_cards cards;
static struct iso_dialect *dia;
static char store[400], master[400], cardsfile[400];
static unsigned stan_seq = 700;
static uint8_t mak[16], imk[16];
static struct iso_msg req, ans;
static uint8_t abuf[4096];
static size_t alen;

/* X9.19 MAC (padding 1) of data under the MAK: the first 8 bytes. */
static void x919(const uint8_t *data, size_t len, uint8_t out[8])
{
    uint8_t full[16];
    size_t n = 0;
    assert_int_equal(mac_compute(MAC_ISO9797_1_ALG3, mak, 16, 1, data, len, full, &n), 0);
    memcpy(out, full, 8);
}

/*
 * Encode req, with a MAC in field (64 or 128; 0 none) over every byte before
 * it; tamper: change one byte of field 11 after MACing.  Send it on fd and
 * read the answer into abuf/ans.
 */
static void exchange(int fd, int field, bool tamper)
{
    uint8_t buf[2048];
    size_t len;
    struct iso_err err;
    static const uint8_t zeros[8];

    if (field != 0)
        assert_int_equal(iso_set(&req, field, zeros, 8), 0);
    assert_int_equal(iso_encode(dia, &req, buf, sizeof(buf), &len, &err), 0);
    if (field != 0)
        x919(buf, len - 8, buf + len - 8);
    if (tamper) {
        uint8_t *p = memmem(buf, len, iso_get(&req, 11)->p, 6);
        assert_non_null(p);
        p[5] = p[5] == '9' ? '0' : (uint8_t)(p[5] + 1);
    }
    assert_int_equal(cgd_send_frame(fd, buf, len), 0);
    long n = cgd_recv_frame(fd, abuf, sizeof(abuf));
    if (n <= 0) {
        cgd_dump_log(&d);
        fail_msg("no answer");
    }
    alen = (size_t)n;
    assert_int_equal(iso_decode(dia, abuf, alen, &ans, &err), 0);
}

static void expect_rc(const char *rc)
{
    const struct iso_view *v = iso_get(&ans, 39);
    assert_non_null(v);
    if (v->len != 2 || memcmp(v->p, rc, 2) != 0)
        fail_msg("field 39 %.*s, expected %s", (int)v->len, (const char *)v->p, rc);
}

/* The answer carries a valid MAC in field (64 or 128), as its last 8 bytes. */
static void expect_answer_mac(int field)
{
    uint8_t want[8];
    const struct iso_view *v = iso_get(&ans, field);
    assert_non_null(v);
    assert_int_equal(v->len, 8);
    assert_false(iso_has(&ans, field == 64 ? 128 : 64));
    x919(abuf, alen - 8, want);
    assert_memory_equal(abuf + alen - 8, want, 8);
    assert_memory_equal(v->p, want, 8);
}

static char f2[24], f4[16], f7[16], f11[8], f14[8], f37[16];

/* An 0100 purchase of amount (minor units) on card c, chip entry, in req. */
static void purchase(const struct sim_card *c, long amount)
{
    stan_seq++;
    iso_msg_init(&req);
    assert_int_equal(iso_set_mti(&req, "0100"), 0);
    snprintf(f2, sizeof(f2), "%s", c->pan);
    snprintf(f4, sizeof(f4), "%012ld", amount);
    snprintf(f7, sizeof(f7), "1206%06u", stan_seq);
    snprintf(f11, sizeof(f11), "%06u", stan_seq);
    snprintf(f14, sizeof(f14), "%s", c->expiry);
    snprintf(f37, sizeof(f37), "MAC%09u", stan_seq);
    const struct {
        int n;
        const char *v;
    } f[] = {{2, f2},        {3, "000000"},  {4, f4},   {7, f7},          {11, f11},
             {12, "101010"}, {13, "1206"},   {14, f14}, {18, "5411"},     {19, "276"},
             {22, "051"},    {32, "123456"}, {37, f37}, {41, "TERM0001"}, {42, "MERCHANT0000001"},
             {49, "978"}};
    for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
        assert_int_equal(iso_set(&req, f[i].n, f[i].v, strlen(f[i].v)), 0);
}

static void test_mac_purchase(void **state)
{
    (void)state;
    int fd = cgd_connect(d.port[0]);
    assert_true(fd >= 0);

    purchase(e2e_card(&cards, "approved"), 700);
    exchange(fd, 64, false);
    expect_rc("00");
    expect_answer_mac(64);
    assert_memory_equal(iso_get(&ans, 11)->p, f11, 6);

    /* one byte changed after MACing: refused, the refusal MAC'd too */
    purchase(e2e_card(&cards, "approved"), 700);
    exchange(fd, 64, true);
    expect_rc("63");
    expect_answer_mac(64);
    /* no MAC at all */
    purchase(e2e_card(&cards, "approved"), 700);
    exchange(fd, 0, false);
    expect_rc("63");
    expect_answer_mac(64);
    /* neither reached the ledger */
    char q[200];
    snprintf(q, sizeof(q), "SELECT count(*) FROM authorizations WHERE stan IN ('%06u', '%06u')",
             stan_seq - 1, stan_seq);
    char *n = pgtest_scalar(conn, q);
    assert_non_null(n);
    assert_string_equal(n, "0");
    free(n);
    assert_true(cgd_log_count(&d, "MAC does not verify") >= 1);
    assert_true(cgd_log_count(&d, "no MAC (field 64/128 absent)") >= 1);
    /* and the audit log records each refusal */
    const char *dump = e2e_audit_dump(&d);
    assert_non_null(strstr(dump, "\"action\":\"mac_failure\""));

    /* the plain listener still serves unMAC'd requests and sends no MAC */
    int fd2 = cgd_connect(d.port[1]);
    assert_true(fd2 >= 0);
    purchase(e2e_card(&cards, "approved"), 700);
    exchange(fd2, 0, false);
    expect_rc("00");
    assert_false(iso_has(&ans, 64));
    close(fd2);
    close(fd);
}

static void test_mac_echo(void **state)
{
    (void)state;
    int fd = cgd_connect(d.port[0]);
    assert_true(fd >= 0);

    stan_seq++;
    snprintf(f7, sizeof(f7), "1206%06u", stan_seq);
    snprintf(f11, sizeof(f11), "%06u", stan_seq);
    iso_msg_init(&req);
    assert_int_equal(iso_set_mti(&req, "0800"), 0);
    assert_int_equal(iso_set(&req, 7, f7, 10), 0);
    assert_int_equal(iso_set(&req, 11, f11, 6), 0);
    assert_int_equal(iso_set(&req, 70, "301", 3), 0);
    exchange(fd, 128, false);
    assert_memory_equal(ans.mti, "0810", 4);
    expect_rc("00");
    expect_answer_mac(128);
    /* one byte changed after MACing, and no MAC at all: refused */
    exchange(fd, 128, true);
    assert_memory_equal(ans.mti, "0810", 4);
    expect_rc("63");
    expect_answer_mac(128);
    iso_clear(&req, 128);
    exchange(fd, 0, false);
    assert_memory_equal(ans.mti, "0810", 4);
    expect_rc("63");
    expect_answer_mac(128);
    close(fd);
}

/* The Visa CVN 18 IAD: length 06, DKI 01, CVN 12, CVR 03A0B800. */
static const uint8_t iad18[7] = {0x06, 0x01, 0x12, 0x03, 0xA0, 0xB8, 0x00};

/*
 * A chip purchase of 7.00 on c with ATC atc: field 55 with the tags the
 * ARQC covers; the ARQC under the card's key (forge: one bit flipped).
 * arqc_out: the cryptogram sent; sk: the session key (for the ARPC).
 */
static uint8_t f55[256];

static void chip(const struct sim_card *c, unsigned atc, bool forge, uint8_t arqc_out[8],
                 uint8_t sk[16])
{
    uint8_t mk[16], data[128];
    struct emv_tags t;
    size_t n = 0;
    static uint8_t amount[6] = {0, 0, 0, 0, 0x07, 0x00}, other[6], country[2] = {0x02, 0x76},
                   tvr[5], cur[2] = {0x09, 0x78}, date[3] = {0x26, 0x12, 0x06}, type[1],
                   un[4] = {0x52, 0xBF, 0x45, 0x85}, aip[2] = {0x18, 0x00}, atcb[2];

    atcb[0] = (uint8_t)(atc >> 8);
    atcb[1] = (uint8_t)atc;
    memset(&t, 0, sizeof(t));
    t.amount = amount;
    t.other = other;
    t.country = country;
    t.tvr = tvr;
    t.currency = cur;
    t.date = date;
    t.type = type;
    t.un = un;
    t.aip = aip;
    t.atc = atcb;
    t.iad = iad18;
    t.iad_len = sizeof(iad18);
    assert_int_equal(emv_derive_icc_mk(EMV_MKD_A, imk, c->pan, strlen(c->pan), "00", mk), 0);
    assert_int_equal(emv_ac_key(18, mk, atcb, NULL, sk), 0);
    long dl = emv_arqc_data(18, &t, data, sizeof(data));
    assert_true(dl > 0);
    assert_int_equal(emv_arqc(18, sk, data, (size_t)dl, arqc_out), 0);
    if (forge)
        arqc_out[7] ^= 0x01;
    const struct {
        uint32_t tag;
        const uint8_t *v;
        size_t n;
    } tl[] = {{0x9F26, arqc_out, 8},
              {0x9F27, (const uint8_t *)"\x80", 1},
              {0x9F10, iad18, sizeof(iad18)},
              {0x9F37, un, 4},
              {0x9F36, atcb, 2},
              {0x95, tvr, 5},
              {0x9A, date, 3},
              {0x9C, type, 1},
              {0x9F02, amount, 6},
              {0x5F2A, cur, 2},
              {0x82, aip, 2},
              {0x9F1A, country, 2},
              {0x9F03, other, 6},
              {0x5F34, (const uint8_t *)"\x00", 1}};
    for (size_t i = 0; i < sizeof(tl) / sizeof(tl[0]); i++) {
        long w = iso_tlv_put(tl[i].tag, tl[i].v, tl[i].n, f55 + n, sizeof(f55) - n);
        assert_true(w > 0);
        n += (size_t)w;
    }
    purchase(c, 700);
    assert_int_equal(iso_set(&req, 55, f55, n), 0);
}

static char *last_rule(void)
{
    char *rule = pgtest_scalar(conn, "SELECT rule FROM authorizations ORDER BY id DESC LIMIT 1");
    assert_non_null(rule);
    return rule;
}

static void test_chip(void **state)
{
    (void)state;
    const struct sim_card *c = e2e_card(&cards, "approved");
    uint8_t arqc[8], sk[16], want[8];
    static const uint8_t csu_ok[4] = {0x00, 0x80, 0x00, 0x00};
    struct iso_tlv t;
    struct iso_err err;
    char *rule;
    int fd = cgd_connect(d.port[1]);
    assert_true(fd >= 0);

    /* valid ARQC, ATC 5: approved, tag 91 = ARPC (method 2) || CSU "approved" */
    chip(c, 5, false, arqc, sk);
    exchange(fd, 0, false);
    expect_rc("00");
    const struct iso_view *v = iso_get(&ans, 55);
    assert_non_null(v);
    assert_int_equal(iso_tlv_find(v->p, v->len, 0x91, &t, &err), 1);
    assert_int_equal(t.len, 8);
    assert_int_equal(emv_arpc2(sk, arqc, csu_ok, NULL, 0, want), 0);
    assert_memory_equal(t.v, want, 4);
    assert_memory_equal(t.v + 4, csu_ok, 4);
    char *atc = pgtest_scalar(conn, "SELECT last_atc FROM cards WHERE last_atc IS NOT NULL");
    assert_non_null(atc);
    assert_string_equal(atc, "5");
    free(atc);

    /* forged ARQC, ATC 6: 82, no tag 91 */
    chip(c, 6, true, arqc, sk);
    exchange(fd, 0, false);
    expect_rc("82");
    assert_false(iso_has(&ans, 55));
    rule = last_rule();
    assert_string_equal(rule, "emv.arqc");
    free(rule);

    /* a valid ARQC with ATC 5 again (a replayed cryptogram): 82 */
    chip(c, 5, false, arqc, sk);
    exchange(fd, 0, false);
    expect_rc("82");
    rule = last_rule();
    assert_string_equal(rule, "emv.atc_replay");
    free(rule);
    /* the ARQC itself was genuine: the decline carries its ARPC with a declining CSU */
    v = iso_get(&ans, 55);
    assert_non_null(v);
    assert_int_equal(iso_tlv_find(v->p, v->len, 0x91, &t, &err), 1);
    static const uint8_t csu_no[4];
    assert_int_equal(emv_arpc2(sk, arqc, csu_no, NULL, 0, want), 0);
    assert_memory_equal(t.v, want, 4);

    /* the next ATC: approved again */
    chip(c, 7, false, arqc, sk);
    exchange(fd, 0, false);
    expect_rc("00");
    close(fd);

    /* a chip purchase on the MAC link: both checks, MAC over the answer with field 55 */
    fd = cgd_connect(d.port[0]);
    assert_true(fd >= 0);
    chip(c, 8, false, arqc, sk);
    exchange(fd, 64, false);
    expect_rc("00");
    expect_answer_mac(64);
    assert_true(iso_has(&ans, 55));
    close(fd);
}

static void test_metrics(void **state)
{
    (void)state;
    static char body[1 << 16];
    assert_int_equal(cgd_http_get(d.port[2], "/metrics", body, sizeof(body)), 200);
    const char *p = strstr(body, "\ncardgate_mac_failures_total ");
    assert_non_null(p);
    assert_true(strtoul(p + 29, NULL, 10) >= 4);
    p = strstr(body, "cardgate_arqc_total{result=\"ok\"} ");
    assert_non_null(p);
    assert_true(strtoul(p + strlen("cardgate_arqc_total{result=\"ok\"} "), NULL, 10) >= 4);
    p = strstr(body, "cardgate_arqc_total{result=\"bad\"} ");
    assert_non_null(p);
    assert_int_equal(strtoul(p + strlen("cardgate_arqc_total{result=\"bad\"} "), NULL, 10), 1);
    p = strstr(body, "cardgate_arqc_total{result=\"replay\"} ");
    assert_non_null(p);
    assert_int_equal(strtoul(p + strlen("cardgate_arqc_total{result=\"replay\"} "), NULL, 10), 1);
}

/* Row of step in the scenario's --json summary is ok. */
static bool step_ok(const char *out, const char *step)
{
    char key[64];
    snprintf(key, sizeof(key), "{\"step\":\"%s\",\"mti\"", step);
    const char *p = strstr(out, key);
    if (p == NULL)
        return false;
    const char *end = strchr(p, '}');
    const char *ok = strstr(p, "\"ok\":true");
    return end != NULL && ok != NULL && ok < end;
}

/* cardgate-sim scenario on the MAC link with --mac/--mak and --imk. */
static void test_sim_scenario(void **state)
{
    (void)state;
    static char out[1 << 20], err[8192];
    char args[900];
    snprintf(args, sizeof(args),
             "scenario --addr 127.0.0.1:%u --dialect ascii87 --cards %s --json --timeout 5 "
             "--mac x919 --mak " MAK_HEX " --imk " IMK_HEX,
             d.port[0], cardsfile);
    (void)runprog("cardgate-sim", args, out, sizeof(out), err, sizeof(err));
    static const char *const want[] = {"signon", "echo",        "purchase",
                                       "chip",   "chip_forged", "reversal"};
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        if (!step_ok(out, want[i]))
            fail_msg("cardgate-sim step %s did not match:\n%s\n%s", want[i], out, err);
    /* with another MAC key every answer's MAC is wrong: no step matches */
    snprintf(args, sizeof(args),
             "scenario --addr 127.0.0.1:%u --dialect ascii87 --cards %s --json --timeout 5 "
             "--mac x919 --mak " IMK_HEX,
             d.port[0], cardsfile);
    assert_int_equal(runprog("cardgate-sim", args, out, sizeof(out), err, sizeof(err)), 1);
    assert_false(step_ok(out, "echo"));
    assert_non_null(strstr(out, "answer MAC"));
}

/* The "NAME":N member of a cardgate-sim load --json object, or -1. */
static long json_num(const char *out, const char *name)
{
    char key[64];
    snprintf(key, sizeof(key), "\"%s\":", name);
    const char *p = strstr(out, key);
    return p != NULL ? strtol(p + strlen(key), NULL, 10) : -1;
}

/*
 * cardgate-sim load on the MAC'd listener: with the link's MAK every
 * request is MAC'd and every answer's MAC checks (no errors); with another
 * key nothing is answered as asked (the sign-on already fails).
 */
static void test_sim_load_mac(void **state)
{
    (void)state;
    static char out[1 << 16], err[8192];
    char args[900];
    snprintf(args, sizeof(args),
             "load --addr 127.0.0.1:%u --dialect ascii87 --cards %s --json --conns 1 --rate 200 "
             "--duration 1 --timeout 5 --mix purchase=100 --amount 1 --mac x919 --mak " MAK_HEX,
             d.port[0], cardsfile);
    if (runprog("cardgate-sim", args, out, sizeof(out), err, sizeof(err)) != 0)
        fail_msg("cardgate-sim load: %s%s", out, err);
    assert_true(json_num(out, "answered") >= 150);
    assert_int_equal(json_num(out, "errors"), 0);
    snprintf(args, sizeof(args),
             "load --addr 127.0.0.1:%u --dialect ascii87 --cards %s --json --conns 1 --rate 100 "
             "--duration 0.5 --timeout 5 --mix purchase=100 --amount 1 --mac x919 --mak " IMK_HEX,
             d.port[0], cardsfile);
    /* the link refuses the sign-on's MAC (63), whose own MAC the generator refuses */
    out[0] = err[0] = '\0';
    assert_int_not_equal(runprog("cardgate-sim", args, out, sizeof(out), err, sizeof(err)), 0);
    assert_true(json_num(out, "answered") <= 0);
    if (strstr(err, "MAC") == NULL)
        fail_msg("no MAC complaint:\n%s\n%s", out, err);
}

static void test_no_clear_text(void **state)
{
    (void)state;
    static const struct e2e_secret sec[] = {
        {IMK_HEX, "the IMK-AC"},  {IMK_C1, "an IMK-AC component"}, {IMK_C2, "an IMK-AC component"},
        {MAK_HEX, "the MAC key"}, {MAK_C1, "a MAC key component"}, {MAK_C2, "a MAC key component"}};
    e2e_no_clear_text(&d, pg.conninfo, &cards, master, sec, sizeof(sec) / sizeof(sec[0]));
}

/* cardgatectl key import of C1 XOR C2 under name/type. */
static int group_setup(void **state)
{
    (void)state;
    char e[200];

    if (crypto_init(e, sizeof(e)) != 0)
        return -1;
    dia = iso_dialect_builtin("ascii87", e, sizeof(e));
    if (dia == NULL || util_hex_decode(MAK_HEX, mak, 16) != 16 ||
        util_hex_decode(IMK_HEX, imk, 16) != 16)
        return -1;
    if (e2e_keystore_setup(&pg, &conn, &d, store, master, sizeof(store)) != 0 ||
        e2e_import_components("mak1", "mak", MAK_C1, MAK_C2) != 0 ||
        e2e_import_components("imk1", "imk-ac", IMK_C1, IMK_C2) != 0)
        return -1;
    if (e2e_demo_seed(&d, cardsfile, sizeof(cardsfile), &cards) != 0)
        return -1;
    if (cgd_write_conf(&d,
                       "[daemon]\nmax_requests = 64\n"
                       "[database]\npool_size = 1\n"
                       "[listener mac]\naddress = 127.0.0.1:%u\nbudget = 3s\n"
                       "mac = x919\nmak = mak1\n"
                       "[listener main]\naddress = 127.0.0.1:%u\nbudget = 3s\n"
                       "[metrics]\naddress = 127.0.0.1:%u\n"
                       "[keys]\nfile = %s\nmaster_key_file = %s\nimk_ac = imk1\n"
                       "imk_ac_derivation = A\n"
                       "[audit]\ndir = %s/audit\nfsync = none\n",
                       d.port[0], d.port[1], d.port[2], store, master, d.dir) != 0)
        return -1;
    return e2e_start(&d);
}

static int group_teardown(void **state)
{
    (void)state;
    sim_cards_free(&cards);
    iso_dialect_free(dia);
    return e2e_stop(&d, &conn, &pg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mac_purchase),  cmocka_unit_test(test_mac_echo),
        cmocka_unit_test(test_chip),          cmocka_unit_test(test_metrics),
        cmocka_unit_test(test_sim_scenario),  cmocka_unit_test(test_sim_load_mac),
        cmocka_unit_test(test_no_clear_text),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
