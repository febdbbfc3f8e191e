/*
 * test_e2e_pin.c - PIN verification and the 0800 key change through a real
 * cardgated and a real PostgreSQL: a key store made with cardgatectl key (a
 * PAN-hash key; a PVK, a ZPK and a ZMK imported from known components),
 * cards issued with `cardgatectl card issue --pin` (the PVV and IBM 3624
 * offset computed under the PVK, the PIN not stored), listener "main" with
 * zpk/zmk, listener "nopin" without, and requests over the wire (ascii87):
 *
 *   - the right PIN in formats 0, 1 and 3 -> 00 (PVV); on a card with only
 *     an IBM 3624 offset -> 00, a wrong PIN -> 55
 *   - a wrong PIN -> 55 pin.wrong, again 55, the third 75
 *     pin.tries_exceeded, and then the right PIN -> 75 too; a right PIN
 *     after one wrong one resets the counter
 *   - a malformed block -> 55 pin.malformed, no try counted; a PIN on the
 *     link without a ZPK -> 96 pin.unavailable
 *   - 0800 key change (70=101, field 48 SE 11 key under the ZMK, SE 12
 *     KCV): a wrong KCV -> 63 and the old key keeps working; missing key ->
 *     30; on the link without a ZPK -> 12; the right KCV -> 00, a PIN under
 *     the new key -> 00, under the old one -> 55; the key store on disk has
 *     the new key (survives SIGHUP); the audit log has the change with the
 *     new KCV
 *   - afterwards the daemon log, the audit log and every table hold none of
 *     the test PANs, PINs, PIN blocks or keys in clear.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/util.h"
#include "crypto/cipher.h"
#include "crypto/keyblock.h"
#include "crypto/pin.h"
#include "tests/lib/cgdtest.h"
#include "tests/lib/cleartext.h"
#include "tests/lib/e2etest.h"
#include "tests/lib/pgtest.h"
#include "tests/lib/runprog.h"
#include "tools/sim/cards.h"

#include <openssl/crypto.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Test keys: each imported as C1 xor C2 (cardgatectl key import --component). */
#define PVK_C1  "0123456789ABCDEFFEDCBA9876543210"
#define PVK_C2  "1111111111111111EEEEEEEEEEEEEEEE"
#define ZPK_C1  "89ABCDEF0123456776543210FEDCBA98"
#define ZPK_C2  "2222222222222222DDDDDDDDDDDDDDDD"
#define ZMK_C1  "1111222233334444AAAABBBBCCCCDDDD"
#define ZMK_C2  "3333333333333333CCCCCCCCCCCCCCCC"
#define ZPK2HEX "4C4C4C4C4C4C4C4C7A7A7A7A7A7A7A7A"

/* 12-digit PINs: long enough to search the dumps for without chance hits */
#define PIN_OK    "739184265031"
#define PIN_WRONG "193784265032"
#define PIN_OTHER "581937264510"
/* what cardgate-sim's wrong_pin step sends for PIN_OK: its first digit + 1 */
#define PIN_SIM_WRONG "839184265031"

static struct pgtest pg;
static PGconn *conn;
static struct cgd d;
static char store[400], master[400];
static char pvk_hex[33], zpk_hex[33], zmk_hex[33];
static unsigned stan_seq = 700;

struct card {
    char pan[20], expiry[5], id[24];
};
static struct card c_ok, c_off, c_tries, c_reset, c_mal, c_kx, c_sim;

/* what was sent, for the clear-text search at the end */
static char sent_blocks[64][17];
static unsigned nblocks;

static void xor_hex(const char *a, const char *b, char out[33])
{
    uint8_t x[16], y[16];
    assert_int_equal(util_hex_decode(a, x, 16), 16);
    assert_int_equal(util_hex_decode(b, y, 16), 16);
    for (int i = 0; i < 16; i++)
        x[i] ^= y[i];
    crypto_des_parity(x, 16); /* as key import stores it */
    for (int i = 0; i < 16; i++)
        snprintf(out + 2 * i, 3, "%02X", x[i]);
}

/* Issue a card on the demo wallet with PIN pin; fills c. */
static int issue(struct card *c, const char *pin)
{
    char args[300], line[512];
    snprintf(args, sizeof(args), "card issue --account 2001 --cardholder 4001 --pin %s --json",
             pin);
    if (e2e_ctl(args, line, sizeof(line)) != 0)
        return -1;
    const char *p = strstr(line, "\"pan\":\""), *e = strstr(line, "\"expiry\":\""),
               *i = strstr(line, "\"card_id\":");
    if (p == NULL || e == NULL || i == NULL)
        return -1;
    snprintf(c->pan, sizeof(c->pan), "%.*s", (int)strcspn(p + 7, "\""), p + 7);
    snprintf(c->expiry, sizeof(c->expiry), "%.4s", e + 10);
    snprintf(c->id, sizeof(c->id), "%.*s", (int)strcspn(i + 10, ",}"), i + 10);
    OPENSSL_cleanse(line, sizeof(line));
    return 0;
}

/* The encrypted PIN block (hex) of pin for card c in format f under key hex. */
static void block_hex(enum pin_format f, const char *keyhex, const char *pin, const struct card *c,
                      char out[17])
{
    uint8_t key[32], blk[16];
    size_t len;
    long kl = util_hex_decode(keyhex, key, sizeof(key));
    assert_true(kl == 16);
    assert_int_equal(
        pinblock_encrypt(f, key, (size_t)kl, pin, c->pan, strlen(c->pan), NULL, blk, &len), 0);
    assert_int_equal(len, 8);
    for (size_t i = 0; i < 8; i++)
        snprintf(out + 2 * i, 3, "%02X", blk[i]);
    if (nblocks < 64)
        memcpy(sent_blocks[nblocks++], out, 17);
    OPENSSL_cleanse(key, sizeof(key));
}

/* mti with the "N=value" pairs kv to port on a new link; the answer into buf, its length. */
static long exchange(unsigned port, const char *mti, const char *const *kv, uint8_t *buf,
                     size_t cap)
{
    int fd = cgd_connect(port);
    assert_true(fd >= 0);
    long len = cgd_buildv(buf, cap, mti, kv);
    assert_true(len > 0);
    assert_int_equal(cgd_send_frame(fd, buf, (size_t)len), 0);
    len = cgd_recv_frame(fd, buf, cap);
    close(fd);
    if (len <= 0) {
        cgd_dump_log(&d);
        fail_msg("no answer to the %s", mti);
    }
    return len;
}

/* An 0100 purchase (chip) on port with PIN block hex (NULL: none); field 39 into rc. */
static void purchase_on(unsigned port, const struct card *c, const char *blkhex, char rc[4])
{
    char f52[24], stan[8];
    struct e2e_purchase m;
    uint8_t buf[1024];

    stan_seq++;
    e2e_purchase_init(&m, c->pan, c->expiry, stan_seq, "PIN");
    e2e_kv_add(&m, "22=051");
    e2e_kv_add(&m, "49=978");
    if (blkhex != NULL) {
        snprintf(f52, sizeof(f52), "52#%s", blkhex);
        e2e_kv_add(&m, f52);
    }
    long len = exchange(port, "0100", m.kv, buf, sizeof(buf));
    assert_int_equal(cgd_field(buf, (size_t)len, 39, rc, 4), 0);
    assert_int_equal(cgd_field(buf, (size_t)len, 11, stan, sizeof(stan)), 0);
    assert_int_equal(strtoul(stan, NULL, 10), stan_seq);
}

static void purchase(const struct card *c, const char *blkhex, char rc[4])
{
    purchase_on(d.port[0], c, blkhex, rc);
}

/* A purchase with pin in format f under keyhex; expects want. */
static void pin_purchase(const struct card *c, enum pin_format f, const char *keyhex,
                         const char *pin, const char *want)
{
    char blk[17], rc[4];
    block_hex(f, keyhex, pin, c, blk);
    purchase(c, blk, rc);
    if (strcmp(rc, want) != 0)
        fail_msg("PIN purchase (format %d): answered %s, expected %s", (int)f, rc, want);
}

static char *last_rule(void)
{
    return pgtest_scalar(conn, "SELECT rule FROM authorizations ORDER BY id DESC LIMIT 1");
}

static void assert_last_rule(const char *want)
{
    char *rule = last_rule();
    assert_non_null(rule);
    assert_string_equal(rule, want);
    free(rule);
}

static int pin_tries(const struct card *c)
{
    char q[200];
    snprintf(q, sizeof(q), "SELECT pin_tries FROM cards WHERE id = %s", c->id);
    char *v = pgtest_scalar(conn, q);
    assert_non_null(v);
    int n = atoi(v);
    free(v);
    return n;
}

/* 0800 on port with field 70 code and field 48 (NULL: none); field 39 into rc. */
static void netmgmt(unsigned port, const char *code, const char *f48, char rc[4])
{
    char f11[16], f70[16], f48kv[200], mti[8];
    const char *kv[8];
    size_t n = 0;
    uint8_t buf[1024];

    stan_seq++;
    kv[n++] = "7=1122101010";
    snprintf(f11, sizeof(f11), "11=%06u", stan_seq);
    kv[n++] = f11;
    snprintf(f70, sizeof(f70), "70=%s", code);
    kv[n++] = f70;
    if (f48 != NULL) {
        snprintf(f48kv, sizeof(f48kv), "48=%s", f48);
        kv[n++] = f48kv;
    }
    kv[n] = NULL;
    long len = exchange(port, "0800", kv, buf, sizeof(buf));
    assert_int_equal(cgd_field(buf, (size_t)len, 0, mti, sizeof(mti)), 0);
    assert_string_equal(mti, "0810");
    assert_int_equal(cgd_field(buf, (size_t)len, 39, rc, 4), 0);
}

/* Field 48 of a key change: newhex under the ZMK (TDES-ECB), KCV kcv (NULL: the right one). */
static void key_change_48(const char *newhex, const char *kcv, char out[120])
{
    uint8_t zmk[16], k[16], enc[16], cv[3];
    char enchex[33], kcvhex[7];
    assert_int_equal(util_hex_decode(zmk_hex, zmk, 16), 16);
    assert_int_equal(util_hex_decode(newhex, k, 16), 16);
    assert_int_equal(keyblock_ecb(zmk, 16, true, k, 16, enc), 0);
    for (int i = 0; i < 16; i++)
        snprintf(enchex + 2 * i, 3, "%02X", enc[i]);
    assert_int_equal(crypto_kcv(CRYPTO_TDES, k, 16, cv, 3), 0);
    snprintf(kcvhex, sizeof(kcvhex), "%02X%02X%02X", cv[0], cv[1], cv[2]);
    snprintf(out, 120, "1132%s1206%s", enchex, kcv != NULL ? kcv : kcvhex);
    OPENSSL_cleanse(zmk, sizeof(zmk));
    OPENSSL_cleanse(k, sizeof(k));
}

/*
 * The daemon's configuration into path with these key names for listener
 * main's zpk and [keys] pvk (the ZPK's line is 8, the PVK's 16).
 */
static int write_conf(const char *path, const char *zpk, const char *pvk)
{
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return -1;
    fprintf(f,
            "[daemon]\nmax_requests = 64\n"
            "[database]\npool_size = 1\n"
            "[listener main]\naddress = 127.0.0.1:%u\nbudget = 3s\n"
            "zpk = %s\nzmk = zmk1\n"
            "[listener nopin]\naddress = 127.0.0.1:%u\nbudget = 3s\n"
            "[keys]\nfile = %s\nmaster_key_file = %s\npvk = %s\n"
            "[audit]\ndir = %s/audit\nfsync = none\n",
            d.port[0], zpk, d.port[1], store, master, pvk, d.dir);
    return fclose(f) == 0 ? 0 : -1;
}

static void test_pin_ok(void **state)
{
    (void)state;
    pin_purchase(&c_ok, PIN_ISO0, zpk_hex, PIN_OK, "00");
    assert_last_rule("approved");
    pin_purchase(&c_ok, PIN_ISO1, zpk_hex, PIN_OK, "00");
    pin_purchase(&c_ok, PIN_ISO3, zpk_hex, PIN_OK, "00");
    /* no PIN at all: not asked, approved as before */
    char rc[4];
    purchase(&c_ok, NULL, rc);
    assert_string_equal(rc, "00");
    assert_int_equal(pin_tries(&c_ok), 0);
}

/* A card with only an IBM 3624 offset (its PVV removed). */
static void test_pin_offset(void **state)
{
    (void)state;
    char q[200];
    snprintf(q, sizeof(q), "UPDATE cards SET pvv = NULL WHERE id = %s RETURNING pin_offset",
             c_off.id);
    char *off = pgtest_scalar(conn, q);
    assert_non_null(off);
    assert_int_equal(strlen(off), strlen(PIN_OK)); /* as many digits as the PIN */
    free(off);
    pin_purchase(&c_off, PIN_ISO0, zpk_hex, PIN_OK, "00");
    pin_purchase(&c_off, PIN_ISO0, zpk_hex, PIN_WRONG, "55");
    assert_last_rule("pin.wrong");
    pin_purchase(&c_off, PIN_ISO3, zpk_hex, PIN_OK, "00"); /* resets */
    assert_int_equal(pin_tries(&c_off), 0);
}

static void test_pin_wrong_tries(void **state)
{
    (void)state;
    pin_purchase(&c_tries, PIN_ISO0, zpk_hex, PIN_WRONG, "55");
    assert_last_rule("pin.wrong");
    assert_int_equal(pin_tries(&c_tries), 1);
    pin_purchase(&c_tries, PIN_ISO0, zpk_hex, PIN_OTHER, "55");
    assert_int_equal(pin_tries(&c_tries), 2);
    pin_purchase(&c_tries, PIN_ISO1, zpk_hex, PIN_WRONG, "75"); /* pin_try_limit 3 */
    assert_last_rule("pin.tries_exceeded");
    pin_purchase(&c_tries, PIN_ISO0, zpk_hex, PIN_OK, "75");
    assert_last_rule("pin.tries_exceeded");

    /* one wrong, then right: the counter is reset */
    pin_purchase(&c_reset, PIN_ISO0, zpk_hex, PIN_WRONG, "55");
    assert_int_equal(pin_tries(&c_reset), 1);
    pin_purchase(&c_reset, PIN_ISO0, zpk_hex, PIN_OK, "00");
    assert_int_equal(pin_tries(&c_reset), 0);
}

static void test_pin_malformed(void **state)
{
    (void)state;
    char rc[4], blk[17];
    uint8_t key[16], clear[8], enc[8];
    int before = cgd_log_count(&d, "PIN block malformed");

    /* a format 0 block with PIN length 3 under the right key */
    assert_int_equal(util_hex_decode(zpk_hex, key, 16), 16);
    memcpy(clear, "\x03\x12\x3F\xFF\xFF\xFF\xFF\xFF", 8);
    assert_int_equal(crypto_ecb(CRYPTO_TDES, key, 16, true, clear, 8, enc), 0);
    for (int i = 0; i < 8; i++)
        snprintf(blk + 2 * i, 3, "%02X", enc[i]);
    purchase(&c_mal, blk, rc);
    assert_string_equal(rc, "55");
    /* control nibble 5: no ISO 9564 online format */
    memcpy(clear, "\x54\x12\x34\xFF\xFF\xFF\xFF\xFF", 8);
    assert_int_equal(crypto_ecb(CRYPTO_TDES, key, 16, true, clear, 8, enc), 0);
    for (int i = 0; i < 8; i++)
        snprintf(blk + 2 * i, 3, "%02X", enc[i]);
    purchase(&c_mal, blk, rc);
    assert_string_equal(rc, "55");
    assert_int_equal(pin_tries(&c_mal), 0); /* not counted */
    assert_int_equal(cgd_log_count(&d, "PIN block malformed"), before + 2);
    /* no ZPK on this link: 96 */
    block_hex(PIN_ISO0, zpk_hex, PIN_OK, &c_mal, blk);
    purchase_on(d.port[1], &c_mal, blk, rc);
    assert_string_equal(rc, "96");
    assert_true(cgd_log_wait(&d, "not verifiable (no zpk or pvk)", 2000));
    /* the card still works */
    pin_purchase(&c_mal, PIN_ISO0, zpk_hex, PIN_OK, "00");
    OPENSSL_cleanse(key, sizeof(key));
}

static void test_key_change(void **state)
{
    (void)state;
    char f48[120], rc[4], kcv[16], bad[7];

    /* a wrong KCV: 63, the old key keeps working */
    key_change_48(ZPK2HEX, "ABCDEF", f48);
    netmgmt(d.port[0], "101", f48, rc);
    assert_string_equal(rc, "63");
    assert_true(cgd_log_wait(&d, "KCV does not match", 2000));
    pin_purchase(&c_kx, PIN_ISO0, zpk_hex, PIN_OK, "00");
    /* the new key missing: 30; a link without zpk: 12 */
    netmgmt(d.port[0], "101", "1206ABCDEF", rc);
    assert_string_equal(rc, "30");
    key_change_48(ZPK2HEX, NULL, f48);
    netmgmt(d.port[1], "101", f48, rc);
    assert_string_equal(rc, "12");
    pin_purchase(&c_kx, PIN_ISO0, zpk_hex, PIN_OK, "00");

    /* the right KCV: 00, the new key in force, the old one refused */
    netmgmt(d.port[0], "161", f48, rc);
    assert_string_equal(rc, "00");
    pin_purchase(&c_kx, PIN_ISO0, ZPK2HEX, PIN_OK, "00");
    pin_purchase(&c_kx, PIN_ISO3, ZPK2HEX, PIN_OK, "00");
    pin_purchase(&c_kx, PIN_ISO0, zpk_hex, PIN_OK, "55");
    pin_purchase(&c_kx, PIN_ISO0, ZPK2HEX, PIN_OK, "00");

    /* saved to the key store: version 2 with the new KCV */
    assert_int_equal(e2e_ctl("key kcv --name zpk1", kcv, sizeof(kcv)), 0);
    snprintf(bad, sizeof(bad), "%.6s", f48 + 4 + 32 + 4);
    assert_non_null(strstr(kcv, bad));
    /* SIGHUP loads the store again: the new key stays */
    int before = cgd_log_count(&d, "keys: 4 keys loaded");
    assert_int_equal(kill(d.pid, SIGHUP), 0);
    for (int i = 0; i < 50 && cgd_log_count(&d, "keys: 4 keys loaded") == before; i++)
        usleep(100 * 1000);
    assert_int_equal(cgd_log_count(&d, "keys: 4 keys loaded"), before + 1);
    pin_purchase(&c_kx, PIN_ISO0, ZPK2HEX, PIN_OK, "00");

    /* the audit log: the change with the new KCV */
    static char out[1 << 20], err[4096];
    char args[600];
    snprintf(args, sizeof(args), "audit dump --dir %s/audit --json", d.dir);
    assert_int_equal(runprog("cardgatectl", args, out, sizeof(out), err, sizeof(err)), 0);
    assert_non_null(strstr(out, bad));
    assert_non_null(strstr(out, "zpk1"));
}

/* cardgate-sim scenario --zpk: its pin step is approved, wrong_pin declined 55. */
static void test_sim_pin_steps(void **state)
{
    (void)state;
    static char out[1 << 20], err[8192];
    char path[400], args[1200];

    snprintf(path, sizeof(path), "%s/simcards.json", d.dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "[{\"pan\":\"%s\",\"expiry\":\"%s\",\"label\":\"ok\",\"pin\":\"%s\"}]\n", c_sim.pan,
            c_sim.expiry, PIN_OK);
    assert_int_equal(fclose(f), 0);
    /* no CVK here: the wrong CVV2 is not checked */
    snprintf(args, sizeof(args),
             "scenario --addr 127.0.0.1:%u --dialect ascii87 --cards %s --zpk %s"
             " --expect wrong_cvv2=00",
             d.port[0], path, ZPK2HEX);
    int rc = runprog("cardgate-sim", args, out, sizeof(out), err, sizeof(err));
    if (rc != 0)
        fprintf(stderr, "%s%s\n", out, err);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "pin "));
    assert_non_null(strstr(out, "wrong_pin"));
    assert_int_equal(pin_tries(&c_sim), 1); /* the wrong one counted */
    assert_null(strstr(out, c_sim.pan));
    /* load --mix pin=1: every request a PIN purchase, all approved */
    snprintf(args, sizeof(args),
             "load --addr 127.0.0.1:%u --dialect ascii87 --cards %s --zpk %s --mix pin=1"
             " --conns 1 --inflight 2 --duration 0.3 --json",
             d.port[0], path, ZPK2HEX);
    rc = runprog("cardgate-sim", args, out, sizeof(out), err, sizeof(err));
    if (rc != 0)
        fprintf(stderr, "%s%s\n", out, err);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "\"errors\":0"));
    assert_non_null(strstr(out, "\"00\":"));
    assert_null(strstr(out, "\"55\":"));
    assert_int_equal(pin_tries(&c_sim), 0); /* reset by the right PIN */
    snprintf(args, sizeof(args),
             "load --addr 127.0.0.1:%u --dialect ascii87 --cards %s --mix pin=1 --duration 0.1",
             d.port[0], path);
    assert_int_equal(runprog("cardgate-sim", args, out, sizeof(out), err, sizeof(err)), 1);
    assert_non_null(strstr(err, "pin needs --zpk"));
    /* without --zpk there are no PIN steps */
    snprintf(args, sizeof(args),
             "scenario --addr 127.0.0.1:%u --dialect ascii87 --cards %s --expect wrong_cvv2=00",
             d.port[0], path);
    assert_int_equal(runprog("cardgate-sim", args, out, sizeof(out), err, sizeof(err)), 0);
    assert_null(strstr(out, "wrong_pin"));
    unlink(path);
}

/* card issue --pvv/--pin-offset store what they are given; bad values are refused. */
static void test_card_issue_options(void **state)
{
    (void)state;
    char line[512], q[200];

    assert_int_equal(e2e_ctl("card issue --account 2001 --pvv 4821 --pin-offset 90210 --json", line,
                             sizeof(line)),
                     0);
    const char *i = strstr(line, "\"card_id\":");
    assert_non_null(i);
    snprintf(q, sizeof(q), "SELECT pvv || '/' || pin_offset FROM cards WHERE id = %lld",
             atoll(i + 10));
    char *v = pgtest_scalar(conn, q);
    assert_non_null(v);
    assert_string_equal(v, "4821/90210");
    free(v);
    OPENSSL_cleanse(line, sizeof(line));
    assert_int_equal(e2e_ctl("card issue --account 2001 --pin 123", NULL, 0), 1);
    assert_int_equal(e2e_ctl("card issue --account 2001 --pvv 12345", NULL, 0), 1);
    assert_int_equal(e2e_ctl("card issue --account 2001 --pin-offset 12a4", NULL, 0), 1);
    assert_int_equal(e2e_ctl("card issue --account 2001 --pin 4321 --pvv 1234", NULL, 0), 1);
    assert_int_equal(e2e_ctl("card issue --account 2001 --pin 4321 --pvki 10", NULL, 0), 1);
}

/* demo seed under $CARDGATE_PVK: every card has a PIN in the cards file, and it verifies. */
static void test_demo_seed_pins(void **state)
{
    (void)state;
    struct sim_cards cards;
    char path[400], e[200];
    struct card c;

    snprintf(path, sizeof(path), "%s/cards.json", d.dir);
    assert_int_equal(sim_cards_load(path, &cards, e, sizeof(e)), 0);
    for (size_t i = 0; i < cards.n; i++)
        assert_int_equal(strlen(cards.v[i].pin), 4);
    const struct sim_card *ok = sim_cards_find(&cards, "ok");
    assert_non_null(ok);
    memset(&c, 0, sizeof(c));
    snprintf(c.pan, sizeof(c.pan), "%s", ok->pan);
    snprintf(c.expiry, sizeof(c.expiry), "%s", ok->expiry);
    /* (after test_key_change: ZPK2 is the link's key) */
    pin_purchase(&c, PIN_ISO0, ZPK2HEX, ok->pin, "00");
    char wrong[5];
    snprintf(wrong, sizeof(wrong), "%c%.3s", ok->pin[0] == '9' ? '0' : ok->pin[0] + 1, ok->pin + 1);
    pin_purchase(&c, PIN_ISO0, ZPK2HEX, wrong, "55");
    pin_purchase(&c, PIN_ISO0, ZPK2HEX, ok->pin, "00"); /* and reset again */
    OPENSSL_cleanse(&c, sizeof(c));
    sim_cards_free(&cards);
}

/* Key names the store lacks (or of the wrong type): refused by -t and on SIGHUP. */
static void test_key_names_checked(void **state)
{
    (void)state;
    static char out[8192], err[8192];
    char path[400], args[600];

    snprintf(path, sizeof(path), "%s/check.conf", d.dir);
    snprintf(args, sizeof(args), "-t -c %s", path);
    assert_int_equal(write_conf(path, "zpk1", "pvk1"), 0);
    assert_int_equal(runprog("cardgated", args, out, sizeof(out), err, sizeof(err)), 0);
    assert_int_equal(write_conf(path, "nosuchkey", "pvk1"), 0);
    assert_int_equal(runprog("cardgated", args, out, sizeof(out), err, sizeof(err)), 2);
    assert_non_null(strstr(err, "check.conf:8: key 'zpk': "));
    assert_int_equal(write_conf(path, "zpk1", "zmk1"), 0); /* a zmk is not a pvk */
    assert_int_equal(runprog("cardgated", args, out, sizeof(out), err, sizeof(err)), 2);
    assert_non_null(strstr(err, "check.conf:16: key 'pvk': "));

    /* SIGHUP with the unknown name: refused, the old configuration and keys serve */
    int before = cgd_log_count(&d, "reload refused");
    assert_int_equal(write_conf(d.conf, "nosuchkey", "pvk1"), 0);
    assert_int_equal(kill(d.pid, SIGHUP), 0);
    for (int i = 0; i < 50 && cgd_log_count(&d, "reload refused") == before; i++)
        usleep(100 * 1000);
    assert_true(cgd_log_count(&d, "reload refused") > before);
    assert_true(cgd_log_count(&d, "key 'zpk': ") > 0);
    pin_purchase(&c_kx, PIN_ISO0, ZPK2HEX, PIN_OK, "00");
    assert_int_equal(write_conf(d.conf, "zpk1", "pvk1"), 0);
}

static void search_all(const char *hay, size_t len, const char *where, void *arg)
{
    static const char *const keys[] = {PVK_C1, PVK_C2, ZPK_C1, ZPK_C2, ZMK_C1, ZMK_C2, ZPK2HEX};
    static const char *const pins[] = {PIN_OK, PIN_WRONG, PIN_OTHER, PIN_SIM_WRONG};
    const struct card *cards[] = {&c_ok, &c_off, &c_tries, &c_reset, &c_mal, &c_kx, &c_sim};
    (void)arg;
    for (size_t i = 0; i < UTIL_NELEM(cards); i++)
        cleartext_absent(hay, len, cards[i]->pan, where, "a test PAN");
    for (size_t i = 0; i < UTIL_NELEM(pins); i++)
        cleartext_absent(hay, len, pins[i], where, "a PIN");
    for (unsigned i = 0; i < nblocks; i++) {
        char lower[17];
        uint8_t raw[8];
        cleartext_absent(hay, len, sent_blocks[i], where, "a PIN block");
        for (int k = 0; k < 17; k++)
            lower[k] =
                (char)(sent_blocks[i][k] >= 'A' ? sent_blocks[i][k] + 32 : sent_blocks[i][k]);
        cleartext_absent(hay, len, lower, where, "a PIN block");
        assert_int_equal(util_hex_decode(sent_blocks[i], raw, 8), 8);
        cleartext_absent_bytes(hay, len, raw, 8, where, "a PIN block (binary)");
    }
    for (size_t i = 0; i < UTIL_NELEM(keys); i++)
        cleartext_absent(hay, len, keys[i], where, "a key or component");
    cleartext_absent(hay, len, pvk_hex, where, "the PVK");
    cleartext_absent(hay, len, zpk_hex, where, "the ZPK");
    cleartext_absent(hay, len, zmk_hex, where, "the ZMK");
}

static void test_no_clear_text(void **state)
{
    (void)state;
    char audit[400];

    assert_true(nblocks >= 10);
    snprintf(audit, sizeof(audit), "%s/audit", d.dir);
    cleartext_check(d.log, audit, pg.conninfo, master, search_all, NULL);
}

static int group_setup(void **state)
{
    (void)state;
    char args[600], e[256];

    if (crypto_init(e, sizeof(e)) != 0 ||
        e2e_keystore_setup(&pg, &conn, &d, store, master, sizeof(store)) != 0)
        return -1;
    unsetenv("CARDGATE_PIN_DECTAB");
    xor_hex(PVK_C1, PVK_C2, pvk_hex);
    xor_hex(ZPK_C1, ZPK_C2, zpk_hex);
    xor_hex(ZMK_C1, ZMK_C2, zmk_hex);
    if (e2e_import_components("pvk1", "pvk", PVK_C1, PVK_C2) != 0 ||
        e2e_import_components("zpk1", "zpk", ZPK_C1, ZPK_C2) != 0 ||
        e2e_import_components("zmk1", "zmk", ZMK_C1, ZMK_C2) != 0)
        return -1;
    setenv("CARDGATE_PVK", "pvk1", 1);
    snprintf(args, sizeof(args), "demo seed --out %s/cards.json", d.dir);
    if (e2e_ctl(args, NULL, 0) != 0)
        return -1;
    struct card *all[] = {&c_ok, &c_off, &c_tries, &c_reset, &c_mal, &c_kx, &c_sim};
    for (size_t i = 0; i < UTIL_NELEM(all); i++)
        if (issue(all[i], PIN_OK) != 0)
            return -1;
    if (write_conf(d.conf, "zpk1", "pvk1") != 0)
        return -1;
    return e2e_start(&d);
}

static int group_teardown(void **state)
{
    (void)state;
    return e2e_stop(&d, &conn, &pg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pin_ok),
        cmocka_unit_test(test_pin_offset),
        cmocka_unit_test(test_pin_wrong_tries),
        cmocka_unit_test(test_pin_malformed),
        cmocka_unit_test(test_key_change),
        cmocka_unit_test(test_sim_pin_steps),
        cmocka_unit_test(test_card_issue_options),
        cmocka_unit_test(test_demo_seed_pins),
        cmocka_unit_test(test_key_names_checked),
        cmocka_unit_test(test_no_clear_text),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
