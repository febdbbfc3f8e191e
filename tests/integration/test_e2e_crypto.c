/*
 * test_e2e_crypto.c - cardgated's card checks end to end: a key store made
 * with cardgatectl key (a PAN-hash key and a CVK imported from two
 * components), the demo data seeded through it, [keys] cvk configured, and
 * requests over the wire (ascii87, len2):
 *
 *   - a card-not-present purchase with the right CVV2 (field 48 "9203DDD") -> 00
 *   - the same with a wrong CVV2 -> N7 (rule cvv2.wrong), and no CVV2 -> 00
 *   - track 2 (field 35, cvv_position 1): CVV on a swipe, iCVV on a chip
 *     read -> 00; each other's value -> 82 (rule cvv.wrong)
 *   - SIGHUP: the key store is loaded again, the checks keep working
 *   - stand-in (mode = approve, database stopped): a wrong CVV2 is not
 *     approved, a right one is, and is settled once the database is back
 *   - afterwards the daemon log, the audit log (cardgatectl audit dump) and
 *     every table (pg_dump --data-only) hold none of the test PANs, the
 *     CVV2 subelements sent or the key material in clear.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/util.h"
#include "tests/lib/cgdtest.h"
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

/* The CVK and the two components it is imported from (test keys only). */
#define CVK_HEX "0123456789ABCDEFFEDCBA9876543210"
#define CVK_C1  "1032547698BADCFEEFCDAB8967452301"
#define CVK_C2  "11111111111111111111111111111111"

static struct pgtest pg;
static PGconn *conn;
static struct cgd d;
static struct sim_cards cards;
static char store[400], master[400], cardsfile[400];
static unsigned stan_seq = 500;
/* what was sent, for the clear-text search at the end */
static char sent48[8][16];
static unsigned nsent48;

/* The CVV2 of card c under the CVK (service code 000) into out[4]. */
static void cvv2_of(const struct sim_card *c, char out[4])
{
    char args[300], line[64];
    snprintf(args, sizeof(args),
             "crypto cvv --pan %s --expiry %s --service-code 000 --cvk " CVK_HEX, c->pan,
             c->expiry);
    assert_int_equal(e2e_ctl(args, line, sizeof(line)), 0);
    assert_int_equal(strlen(line), 3);
    memcpy(out, line, 4);
}

/*
 * An 0100 purchase with field 22 (pos) and fields 48 and 35 (NULL: none);
 * field 39 into rc.
 */
static void purchase_pos(int fd, const struct sim_card *c, const char *pos, const char *f48,
                         const char *f35, char rc[4])
{
    char f22[16], f35kv[64], f48kv[32], f49[8], stan[8];
    struct e2e_purchase m;
    uint8_t buf[1024];

    stan_seq++;
    e2e_purchase_init(&m, c->pan, c->expiry, stan_seq, "CRY");
    snprintf(f22, sizeof(f22), "22=%s", pos);
    e2e_kv_add(&m, f22);
    if (f35 != NULL) {
        snprintf(f35kv, sizeof(f35kv), "35=%s", f35);
        e2e_kv_add(&m, f35kv);
    }
    if (f48 != NULL) {
        snprintf(f48kv, sizeof(f48kv), "48=%s", f48);
        e2e_kv_add(&m, f48kv);
        if (nsent48 < 8)
            snprintf(sent48[nsent48++], sizeof(sent48[0]), "%s", f48);
    }
    snprintf(f49, sizeof(f49), "49=%s", c->currency[0] ? c->currency : "978");
    e2e_kv_add(&m, f49);
    long len = cgd_buildv(buf, sizeof(buf), "0100", m.kv);
    assert_true(len > 0);
    assert_int_equal(cgd_send_frame(fd, buf, (size_t)len), 0);
    len = cgd_recv_frame(fd, buf, sizeof(buf));
    if (len <= 0) {
        cgd_dump_log(&d);
        fail_msg("no answer");
    }
    assert_int_equal(cgd_field(buf, (size_t)len, 39, rc, 4), 0);
    assert_int_equal(cgd_field(buf, (size_t)len, 11, stan, sizeof(stan)), 0);
    assert_int_equal(strtoul(stan, NULL, 10), stan_seq);
}

/* A keyed card-not-present purchase (field 22 010) with field 48 (NULL: none). */
static void purchase(int fd, const struct sim_card *c, const char *f48, char rc[4])
{
    purchase_pos(fd, c, "010", f48, NULL, rc);
}

/* Track 2 of c with cvv (3 digits) at discretionary position 1 (cvv_position = 1). */
static void track2(const struct sim_card *c, const char *svc, const char *cvv, char *out,
                   size_t cap)
{
    snprintf(out, cap, "%s=%s%s1%s000", c->pan, c->expiry, svc, cvv);
}

/* CVV (magstripe 021, service code 201) and iCVV (chip 051, 999): 00, wrong: 82. */
static void test_track2_cvv(void **state)
{
    (void)state;
    const struct sim_card *c = e2e_card(&cards, "approved");
    char args[300], cvv[8], icvv[8], t2[64], rc[4];
    int fd = cgd_connect(d.port[0]);
    assert_true(fd >= 0);

    snprintf(args, sizeof(args),
             "crypto cvv --pan %s --expiry %s --service-code 201 --cvk " CVK_HEX, c->pan,
             c->expiry);
    assert_int_equal(e2e_ctl(args, cvv, sizeof(cvv)), 0);
    snprintf(args, sizeof(args),
             "crypto cvv --pan %s --expiry %s --service-code 999 --cvk " CVK_HEX, c->pan,
             c->expiry);
    assert_int_equal(e2e_ctl(args, icvv, sizeof(icvv)), 0);
    track2(c, "201", cvv, t2, sizeof(t2));
    purchase_pos(fd, c, "021", NULL, t2, rc);
    assert_string_equal(rc, "00");
    track2(c, "201", icvv, t2, sizeof(t2)); /* the chip's value on a swipe */
    purchase_pos(fd, c, "021", NULL, t2, rc);
    if (strcmp(cvv, icvv) != 0)
        assert_string_equal(rc, "82");
    track2(c, "201", icvv, t2, sizeof(t2));
    purchase_pos(fd, c, "051", NULL, t2, rc);
    assert_string_equal(rc, "00");
    track2(c, "201", cvv, t2, sizeof(t2)); /* a magstripe CVV copied onto a chip read */
    purchase_pos(fd, c, "051", NULL, t2, rc);
    if (strcmp(cvv, icvv) != 0)
        assert_string_equal(rc, "82");
    char *rule = pgtest_scalar(conn, "SELECT rule FROM authorizations ORDER BY id DESC LIMIT 1");
    assert_non_null(rule);
    if (strcmp(cvv, icvv) != 0)
        assert_string_equal(rule, "cvv.wrong");
    free(rule);
    close(fd);
}

static void test_cvv2(void **state)
{
    (void)state;
    const struct sim_card *c = e2e_card(&cards, "approved");
    char cvv2[4], f48[16], rc[4];
    int fd = cgd_connect(d.port[0]);
    assert_true(fd >= 0);

    cvv2_of(c, cvv2);
    assert_string_equal(c->cvv2, cvv2); /* demo seed computed it under the CVK */
    snprintf(f48, sizeof(f48), "9203%s", cvv2);
    purchase(fd, c, f48, rc);
    assert_string_equal(rc, "00");

    /* one digit off */
    snprintf(f48, sizeof(f48), "9203%c%c%c", cvv2[0], cvv2[1], cvv2[2] == '9' ? '0' : cvv2[2] + 1);
    purchase(fd, c, f48, rc);
    assert_string_equal(rc, "N7");
    char *rule = pgtest_scalar(conn, "SELECT rule FROM authorizations ORDER BY id DESC LIMIT 1");
    assert_non_null(rule);
    assert_string_equal(rule, "cvv2.wrong");
    free(rule);

    /* subelement 92 malformed (2 digits) -> wrong */
    purchase(fd, c, "920212", rc);
    assert_string_equal(rc, "N7");

    /* no CVV2 at all: not checked */
    purchase(fd, c, NULL, rc);
    assert_string_equal(rc, "00");
    close(fd);
}

/* cardgatectl card issue with $CARDGATE_CVK: the CVV2 it prints is the CVK's. */
static void test_card_issue_cvv2(void **state)
{
    (void)state;
    char args[300], line[512], cvv2[4];
    struct sim_card c;
    char *acct = pgtest_scalar(conn, "SELECT min(id) FROM accounts WHERE kind = 'wallet'");
    assert_non_null(acct);
    snprintf(args, sizeof(args), "card issue --account %s --json", acct);
    free(acct);
    assert_int_equal(e2e_ctl(args, line, sizeof(line)), 0);
    memset(&c, 0, sizeof(c));
    const char *p = strstr(line, "\"pan\":\""), *e = strstr(line, "\"expiry\":\""),
               *v = strstr(line, "\"cvv2\":\"");
    assert_true(p != NULL && e != NULL && v != NULL);
    snprintf(c.pan, sizeof(c.pan), "%.*s", (int)strcspn(p + 7, "\""), p + 7);
    snprintf(c.expiry, sizeof(c.expiry), "%.4s", e + 10);
    cvv2_of(&c, cvv2);
    assert_int_equal(strncmp(v + 8, cvv2, 3), 0);
    OPENSSL_cleanse(line, sizeof(line));
}

static void test_reload(void **state)
{
    (void)state;
    const struct sim_card *c = e2e_card(&cards, "approved");
    char cvv2[4], f48[16], rc[4];
    int before = cgd_log_count(&d, "keys: 2 keys loaded");

    assert_int_equal(kill(d.pid, SIGHUP), 0);
    for (int i = 0; i < 50 && cgd_log_count(&d, "keys: 2 keys loaded") == before; i++)
        usleep(100 * 1000);
    assert_int_equal(cgd_log_count(&d, "keys: 2 keys loaded"), before + 1);
    int fd = cgd_connect(d.port[0]);
    assert_true(fd >= 0);
    cvv2_of(c, cvv2);
    snprintf(f48, sizeof(f48), "9203%c%c%c", cvv2[0], cvv2[1], cvv2[2] == '0' ? '9' : cvv2[2] - 1);
    purchase(fd, c, f48, rc);
    assert_string_equal(rc, "N7");
    snprintf(f48, sizeof(f48), "9203%s", cvv2);
    purchase(fd, c, f48, rc);
    assert_string_equal(rc, "00");
    close(fd);
    /* the reload is in the audit log */
    const char *dump = e2e_audit_dump(&d);
    assert_non_null(strstr(dump, "\"type\":\"reload\""));
    assert_non_null(strstr(dump, "\"result\":\"ok\""));
}

/*
 * [standin] mode = approve never approves what the daemon's own card checks
 * declined: with the database stopped, a purchase with the right CVV2 is
 * approved in stand-in, the same with a wrong CVV2 gets the stand-in code
 * (91); once the database is back exactly the one approval is settled.
 */
static void test_standin_card_checks(void **state)
{
    (void)state;
    const struct sim_card *c = e2e_card(&cards, "approved");
    struct cgd d2;
    char cvv2[4], f48[16], rc[4];

    assert_int_equal(cgd_init(&d2), 0);
    assert_int_equal(
        cgd_write_conf(&d2,
                       "[daemon]\nmax_requests = 64\n"
                       "[database]\npool_size = 1\nreconnect_max = 500ms\n"
                       "[listener main]\naddress = 127.0.0.1:%u\nbudget = 3s\n"
                       "[standin]\nmode = approve\njournal = %s/standin.journal\nrefresh = 1s\n"
                       "[keys]\nfile = %s\nmaster_key_file = %s\ncvk = cvk1\ncvv_position = 1\n"
                       "[audit]\ndir = %s/audit\nfsync = none\n",
                       d2.port[0], d2.dir, store, master, d2.dir),
        0);
    assert_int_equal(cgd_start(&d2, NULL), 0);
    assert_true(cgd_log_wait(&d2, "stand-in limits of", 10000));
    int fd = cgd_connect(d2.port[0]);
    assert_true(fd >= 0);
    cvv2_of(c, cvv2);

    PQfinish(conn);
    conn = NULL;
    assert_int_equal(pgtest_ctl(&pg, "stop"), 0);
    snprintf(f48, sizeof(f48), "9203%c%c%c", cvv2[0], cvv2[1], cvv2[2] == '9' ? '0' : cvv2[2] + 1);
    purchase(fd, c, f48, rc);
    assert_string_equal(rc, "91"); /* wrong CVV2: not approved in stand-in */
    snprintf(f48, sizeof(f48), "9203%s", cvv2);
    purchase(fd, c, f48, rc);
    assert_string_equal(rc, "00"); /* within the card's stand-in limit */
    assert_int_equal(cgd_log_count(&d2, "approved in stand-in"), 1);

    assert_int_equal(pgtest_ctl(&pg, "start"), 0);
    conn = pgtest_connect(&pg);
    assert_non_null(conn);
    for (int i = 0; i < 200 && cgd_log_count(&d2, "settled: auth") < 1; i++)
        usleep(100 * 1000);
    assert_int_equal(cgd_log_count(&d2, "settled: auth"), 1);
    char *n = pgtest_scalar(conn, "SELECT count(*) FROM authorizations"
                                  " WHERE rule = 'standin.approved' AND kind = 'standin'");
    assert_non_null(n);
    assert_string_equal(n, "1");
    free(n);
    close(fd);
    assert_int_equal(cgd_finish(&d2), 0);
    /* the first daemon reconnects by itself */
    assert_true(cgd_log_wait(&d, "database connection ready", 10000));
}

static void test_no_clear_text(void **state)
{
    (void)state;
    struct e2e_secret sec[8 + 3] = {
        {CVK_HEX, "the CVK"}, {CVK_C1, "a CVK component"}, {CVK_C2, "a CVK component"}};
    size_t n = 3;

    assert_true(nsent48 >= 4);
    for (unsigned i = 0; i < nsent48; i++)
        sec[n++] = (struct e2e_secret){sent48[i], "a CVV2 subelement"};
    e2e_no_clear_text(&d, pg.conninfo, &cards, master, sec, n);
}

static int group_setup(void **state)
{
    (void)state;

    if (e2e_keystore_setup(&pg, &conn, &d, store, master, sizeof(store)) != 0 ||
        e2e_import_components("cvk1", "cvk", CVK_C1, CVK_C2) != 0)
        return -1;
    setenv("CARDGATE_CVK", "cvk1", 1); /* CVV2s under the CVK, not random */
    if (e2e_demo_seed(&d, cardsfile, sizeof(cardsfile), &cards) != 0)
        return -1;
    if (cgd_write_conf(&d,
                       "[daemon]\nmax_requests = 64\n"
                       "[database]\npool_size = 1\n"
                       "[listener main]\naddress = 127.0.0.1:%u\nbudget = 3s\n"
                       "[keys]\nfile = %s\nmaster_key_file = %s\ncvk = cvk1\ncvv_position = 1\n"
                       "[audit]\ndir = %s/audit\nfsync = none\n",
                       d.port[0], store, master, d.dir) != 0)
        return -1;
    return e2e_start(&d);
}

static int group_teardown(void **state)
{
    (void)state;
    sim_cards_free(&cards);
    return e2e_stop(&d, &conn, &pg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cvv2),
        cmocka_unit_test(test_card_issue_cvv2),
        cmocka_unit_test(test_track2_cvv),
        cmocka_unit_test(test_reload),
        cmocka_unit_test(test_standin_card_checks),
        cmocka_unit_test(test_no_clear_text),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
