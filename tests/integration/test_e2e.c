/*
 * test_e2e.c - cardgated end to end: a real PostgreSQL with the demo data
 * (cardgatectl demo seed), a real build/cardgated, requests over the wire
 * as a switch sends them (ascii87, len2).
 *
 * Decisions come from tests/data/e2e/decisions.txt; the other tests cover
 * reversal matching (partial and full), duplicate transmission, answers out
 * of order on one link, echo and sign-on, a malformed frame (that link
 * closed, another served), a missing field (39=30), the deadline (91 and no
 * hold left, also for a late approval), a daemon without a database
 * (stand-in at once), the audit contract (approvals the audit log could
 * not take answered 91, their holds released), and [standin] mode = approve
 * (approvals up to the card's stand-in limit with the database stopped,
 * settled once it is back, also after SIGKILL; one hold when the database's
 * own approval commits late).  check_ledger() must be empty after every test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/util.h"
#include "crypto/pan.h"
#include "tests/lib/audittest.h"
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
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DECISIONS "tests/data/e2e/decisions.txt"

static struct pgtest pg;
static PGconn *conn;
static struct cgd d;
static struct sim_cards cards;
static char keyfile[400], cardsfile[400];
static unsigned stan_seq = 100;

/* ---- helpers ------------------------------------------------------------ */

static char *scalar(const char *sql)
{
    char *v = pgtest_scalar(conn, sql);
    if (v == NULL)
        fail_msg("query failed: %s", sql);
    return v;
}

static long scalar_long(const char *sql)
{
    char *v = scalar(sql);
    long n = strtol(v, NULL, 10);
    free(v);
    return n;
}

static void exec_ok(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQerrorMessage(c));
    PQclear(r);
}

static const struct sim_card *card(const char *want)
{
    const struct sim_card *c = sim_cards_find(&cards, want);
    if (c == NULL)
        fail_msg("no demo card labelled %s", want);
    return c;
}

/* The parts of one request a test varies. */
struct req {
    const char *mti, *proc, *pan, *expiry, *currency, *mcc, *pos;
    long amount; /* < 0: no field 4 */
    char stan[7], rrn[13], xmit[11];
    const char *f90, *f95; /* reversal fields, or NULL */
};

static void req_init(struct req *r, const char *mti, const struct sim_card *c, long amount)
{
    memset(r, 0, sizeof(*r));
    r->mti = mti;
    r->proc = "000000";
    r->pan = c->pan;
    r->expiry = c->expiry;
    r->currency = c->currency[0] ? c->currency : "978";
    r->mcc = "5411";
    r->pos = "051";
    r->amount = amount;
    snprintf(r->stan, sizeof(r->stan), "%06u", ++stan_seq);
    snprintf(r->rrn, sizeof(r->rrn), "E2E%09u", stan_seq);
    snprintf(r->xmit, sizeof(r->xmit), "1122%06u", stan_seq % 1000000);
}

static long req_build(const struct req *r, uint8_t *out, size_t cap)
{
    char f2[32], f3[16], f4[32], f7[16], f11[16], f14[16], f18[16], f22[16], f37[20], f49[8];
    char f90[64], f95[64];
    const char *kv[24];
    size_t n = 0;

    snprintf(f2, sizeof(f2), "2=%s", r->pan);
    kv[n++] = f2;
    snprintf(f3, sizeof(f3), "3=%s", r->proc);
    kv[n++] = f3;
    if (r->amount >= 0) {
        snprintf(f4, sizeof(f4), "4=%012ld", r->amount);
        kv[n++] = f4;
    }
    snprintf(f7, sizeof(f7), "7=%s", r->xmit);
    kv[n++] = f7;
    snprintf(f11, sizeof(f11), "11=%s", r->stan);
    kv[n++] = f11;
    kv[n++] = "12=101010";
    kv[n++] = "13=1122";
    snprintf(f14, sizeof(f14), "14=%s", r->expiry);
    kv[n++] = f14;
    snprintf(f18, sizeof(f18), "18=%s", r->mcc);
    kv[n++] = f18;
    kv[n++] = "19=276";
    snprintf(f22, sizeof(f22), "22=%s", r->pos);
    kv[n++] = f22;
    kv[n++] = "32=123456";
    snprintf(f37, sizeof(f37), "37=%s", r->rrn);
    kv[n++] = f37;
    kv[n++] = "41=TERM0001";
    kv[n++] = "42=MERCHANT0000001";
    snprintf(f49, sizeof(f49), "49=%s", r->currency);
    kv[n++] = f49;
    if (r->f90 != NULL) {
        snprintf(f90, sizeof(f90), "90=%s", r->f90);
        kv[n++] = f90;
    }
    if (r->f95 != NULL) {
        snprintf(f95, sizeof(f95), "95=%s", r->f95);
        kv[n++] = f95;
    }
    kv[n] = NULL;
    return cgd_buildv(out, cap, r->mti, kv);
}

static void req_send(int fd, const struct req *r)
{
    uint8_t msg[1024];
    long len = req_build(r, msg, sizeof(msg));
    assert_true(len > 0);
    assert_int_equal(cgd_send_frame(fd, msg, (size_t)len), 0);
}

/* Receive one answer; its field 39 into rc and field 11 into stan. */
static void recv_answer(int fd, uint8_t *buf, size_t cap, long *len, char rc[4], char stan[8])
{
    *len = cgd_recv_frame(fd, buf, cap);
    if (*len <= 0) {
        cgd_dump_log(&d);
        fail_msg("no answer");
    }
    assert_int_equal(cgd_field(buf, (size_t)*len, 39, rc, 4), 0);
    assert_int_equal(cgd_field(buf, (size_t)*len, 11, stan, 8), 0);
}

/* Send r on fd and return its answer's field 39 (answer in buf/len). */
static void roundtrip(int fd, const struct req *r, uint8_t *buf, size_t cap, long *len, char rc[4])
{
    char stan[8], mti[8], want[5];
    req_send(fd, r);
    recv_answer(fd, buf, cap, len, rc, stan);
    assert_string_equal(stan, r->stan);
    assert_int_equal(cgd_field(buf, (size_t)*len, 0, mti, sizeof(mti)), 0);
    memcpy(want, r->mti, 5);
    want[2] = (char)(want[2] + 1);
    assert_string_equal(mti, want);
}

static int signed_on_link(unsigned port)
{
    uint8_t buf[512];
    long len = cgd_build(buf, sizeof(buf), "0800", "7=1122101010", "11=000001", "70=001", CGD_END);
    int fd = cgd_connect(port);
    char rc[4];
    assert_true(fd >= 0);
    assert_int_equal(cgd_send_frame(fd, buf, (size_t)len), 0);
    len = cgd_recv_frame(fd, buf, sizeof(buf));
    assert_true(len > 0);
    assert_int_equal(cgd_field(buf, (size_t)len, 39, rc, sizeof(rc)), 0);
    assert_string_equal(rc, "00");
    return fd;
}

static long available(const char *account)
{
    char sql[128];
    snprintf(sql, sizeof(sql), "SELECT available FROM accounts WHERE id = %s", account);
    return scalar_long(sql);
}

/* ---- tests ------------------------------------------------------------- */

/* Every line of decisions.txt through the wire. */
static void test_decisions(void **state)
{
    (void)state;
    char *text, *line, *save = NULL;
    size_t tlen;
    int fd = signed_on_link(d.port[0]), n = 0;
    static const struct sim_card unknown = {.pan = "9999990000000005", .expiry = "4912"};

    text = util_read_file(DECISIONS, 1 << 20, &tlen);
    assert_non_null(text);
    for (line = strtok_r(text, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
        char want[32], mti[8], proc[8], cur[8], mcc[8], pos[8], expect[4], extra[64] = "";
        long amount;
        if (line[0] == '#' || line[0] == '\0')
            continue;
        int k = sscanf(line, "%31s %7s %7s %ld %7s %7s %7s %3s %63[^\n]", want, mti, proc, &amount,
                       cur, mcc, pos, expect, extra);
        assert_true(k >= 8);
        for (char *sp = want; *sp; sp++)
            if (*sp == '+')
                *sp = ' ';
        const struct sim_card *c = strcmp(want, "unknown") == 0 ? &unknown : card(want);
        struct req r;
        uint8_t buf[1024];
        long len;
        char rc[4], v[128];
        req_init(&r, mti, c, amount);
        r.proc = proc;
        r.currency = cur;
        r.mcc = mcc;
        r.pos = pos;
        roundtrip(fd, &r, buf, sizeof(buf), &len, rc);
        if (strcmp(rc, expect) != 0)
            fail_msg("%s: want %s, got %s", line, expect, rc);
        /* echoed fields */
        assert_int_equal(cgd_field(buf, (size_t)len, 37, v, sizeof(v)), 0);
        assert_string_equal(v, r.rrn);
        assert_int_equal(cgd_field(buf, (size_t)len, 2, v, sizeof(v)), 0);
        assert_string_equal(v, c->pan);
        for (char *f = strtok(extra, " "); f != NULL; f = strtok(NULL, " "))
            if (cgd_field(buf, (size_t)len, atoi(f), v, sizeof(v)) != 0)
                fail_msg("%s: field %s missing in the answer", line, f);
        n++;
    }
    free(text);
    close(fd);
    assert_true(n >= 15);
    /* the balance inquiry's field 54: ledger and available, 20 characters each */
    assert_true(cgd_log_count(&d, "0200 stan") > 0);
}

/* Field 54 of a balance inquiry carries the wallet's available balance. */
static void test_balance_f54(void **state)
{
    (void)state;
    int fd = signed_on_link(d.port[0]);
    struct req r;
    uint8_t buf[1024];
    long len;
    char rc[4], f54[128], want[32];

    req_init(&r, "0200", card("approved"), 0);
    r.proc = "310000";
    roundtrip(fd, &r, buf, sizeof(buf), &len, rc);
    assert_string_equal(rc, "00");
    assert_int_equal(cgd_field(buf, (size_t)len, 54, f54, sizeof(f54)), 0);
    assert_int_equal(strlen(f54), 40);
    snprintf(want, sizeof(want), "0002978C%012ld", available("2001"));
    assert_string_equal(f54 + 20, want);
    close(fd);
}

/* An authorization, a partial reversal (field 95), then the rest reversed. */
static void test_reversal_partial_and_full(void **state)
{
    (void)state;
    int fd = signed_on_link(d.port[0]);
    struct req a, rev;
    uint8_t buf[1024];
    long len, before = available("2001");
    char rc[4], f90[64], f95[64];

    req_init(&a, "0100", card("approved"), 4000);
    roundtrip(fd, &a, buf, sizeof(buf), &len, rc);
    assert_string_equal(rc, "00");
    assert_int_equal(available("2001"), before - 4000);

    /* partial: the actual amount is 15.00, so 25.00 comes back */
    snprintf(f90, sizeof(f90), "0100%s%s%011d%011d", a.stan, a.xmit, 123456, 0);
    snprintf(f95, sizeof(f95), "%012d%012d%c%08d%c%08d", 1500, 0, 'C', 0, 'C', 0);
    req_init(&rev, "0400", card("approved"), 4000);
    rev.f90 = f90;
    rev.f95 = f95;
    roundtrip(fd, &rev, buf, sizeof(buf), &len, rc);
    assert_string_equal(rc, "00");
    assert_int_equal(cgd_field(buf, (size_t)len, 90, f95, sizeof(f95)), 0);
    assert_string_equal(f95, f90);
    assert_int_equal(available("2001"), before - 1500);

    /* full reversal of what is left (0420 advice, no field 95) */
    req_init(&rev, "0420", card("approved"), 4000);
    rev.f90 = f90;
    roundtrip(fd, &rev, buf, sizeof(buf), &len, rc);
    assert_string_equal(rc, "00");
    assert_int_equal(available("2001"), before);
    close(fd);
}

/* The same request twice: the second gets the first's 39 and 38, one hold. */
static void test_duplicate(void **state)
{
    (void)state;
    int fd = signed_on_link(d.port[0]);
    struct req r;
    uint8_t buf[1024];
    long len, before = available("2001");
    char rc1[4], rc2[4], a1[16], a2[16];

    req_init(&r, "0100", card("approved"), 700);
    roundtrip(fd, &r, buf, sizeof(buf), &len, rc1);
    assert_int_equal(cgd_field(buf, (size_t)len, 38, a1, sizeof(a1)), 0);
    roundtrip(fd, &r, buf, sizeof(buf), &len, rc2);
    assert_int_equal(cgd_field(buf, (size_t)len, 38, a2, sizeof(a2)), 0);
    assert_string_equal(rc1, "00");
    assert_string_equal(rc2, rc1);
    assert_string_equal(a2, a1);
    assert_int_equal(available("2001"), before - 700);
    close(fd);
}

/*
 * Two requests on one link: the first on a wallet locked by a test
 * transaction, the second on another wallet.  The second is answered first.
 */
static void test_out_of_order(void **state)
{
    (void)state;
    PGconn *lock = pgtest_connect(&pg);
    int fd = signed_on_link(d.port[0]);
    struct req slow, fast;
    uint8_t buf[1024];
    long len;
    char rc[4], stan[8];

    assert_non_null(lock);
    exec_ok(lock, "BEGIN");
    exec_ok(lock, "SELECT lock_wallets(ARRAY[2002]::bigint[])");
    /* dave's wallet (2002) and alice's (2001) route to different connections */
    req_init(&slow, "0200", card("dave"), 100);
    slow.mcc = "4511";
    req_init(&fast, "0200", card("approved"), 100);
    req_send(fd, &slow);
    usleep(50 * 1000);
    req_send(fd, &fast);
    recv_answer(fd, buf, sizeof(buf), &len, rc, stan);
    exec_ok(lock, "ROLLBACK");
    assert_string_equal(stan, fast.stan);
    assert_string_equal(rc, "00");
    recv_answer(fd, buf, sizeof(buf), &len, rc, stan);
    assert_string_equal(stan, slow.stan);
    assert_string_equal(rc, "00");
    PQfinish(lock);
    close(fd);
}

/* Echo and sign-off/sign-on on a link that requires sign-on. */
static void test_echo_signon(void **state)
{
    (void)state;
    uint8_t buf[512];
    char rc[4];
    int fd = cgd_connect(d.port[2]);
    struct req r;
    long len;

    assert_true(fd >= 0);
    len = cgd_build(buf, sizeof(buf), "0800", "7=1122101010", "11=000002", "70=301", CGD_END);
    assert_int_equal(cgd_send_frame(fd, buf, (size_t)len), 0);
    len = cgd_recv_frame(fd, buf, sizeof(buf));
    assert_int_equal(cgd_field(buf, (size_t)len, 39, rc, sizeof(rc)), 0);
    assert_string_equal(rc, "00");
    /* not signed on yet: 91 */
    req_init(&r, "0200", card("approved"), 100);
    roundtrip(fd, &r, buf, sizeof(buf), &len, rc);
    assert_string_equal(rc, "91");
    close(fd);
    fd = signed_on_link(d.port[2]);
    req_init(&r, "0200", card("approved"), 100);
    roundtrip(fd, &r, buf, sizeof(buf), &len, rc);
    assert_string_equal(rc, "00");
    close(fd);
}

/* An undecodable frame closes its link; another link keeps being served. */
static void test_malformed_frame(void **state)
{
    (void)state;
    int bad = signed_on_link(d.port[0]), good = signed_on_link(d.port[0]);
    struct req r;
    uint8_t buf[1024];
    long len;
    char rc[4];

    assert_int_equal(cgd_send_frame(bad, "01X0garbage", 11), 0);
    assert_true(cgd_wait_closed(bad, 3000));
    req_init(&r, "0200", card("approved"), 100);
    roundtrip(good, &r, buf, sizeof(buf), &len, rc);
    assert_string_equal(rc, "00");
    close(bad);
    close(good);
}

/* A financial request without field 4: 39=30 and the field named in the log. */
static void test_missing_field(void **state)
{
    (void)state;
    int fd = signed_on_link(d.port[0]);
    struct req r;
    uint8_t buf[1024];
    long len;
    char rc[4];

    req_init(&r, "0200", card("approved"), -1);
    roundtrip(fd, &r, buf, sizeof(buf), &len, rc);
    assert_string_equal(rc, "30");
    assert_true(cgd_log_wait(&d, "field 4 missing or malformed", 2000));
    close(fd);
}

/*
 * Deadline: the wallet locked past the 300 ms budget.  The switch gets 91 by
 * the deadline; once the lock goes, the database refuses it (deadline
 * passed) and no hold is left.
 */
static void test_deadline_locked(void **state)
{
    (void)state;
    PGconn *lock = pgtest_connect(&pg);
    int fd = signed_on_link(d.port[1]);
    struct req r;
    uint8_t buf[1024];
    long len, before = available("2001");
    char rc[4], sql[256];
    int64_t t0;

    exec_ok(lock, "BEGIN");
    exec_ok(lock, "SELECT lock_wallets(ARRAY[2001]::bigint[])");
    req_init(&r, "0100", card("approved"), 900);
    t0 = util_now_us();
    roundtrip(fd, &r, buf, sizeof(buf), &len, rc);
    assert_string_equal(rc, "91");
    assert_true(util_now_us() - t0 < 800 * 1000);
    usleep(200 * 1000);
    exec_ok(lock, "ROLLBACK");
    PQfinish(lock);
    /* the daemon hears the database's own answer for it: deadline passed */
    snprintf(sql, sizeof(sql), "late outcome 91 for stan %s", r.stan);
    assert_true(cgd_log_wait(&d, sql, 5000));
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM authorizations WHERE stan = '%s' AND hold_amount > 0", r.stan);
    assert_int_equal(scalar_long(sql), 0);
    assert_int_equal(available("2001"), before);
    close(fd);
}

/*
 * slow_commits(true): every statement inserting into authorizations sleeps
 * 0.6 s after its rows are written (a trigger), so a batch decided in time
 * commits after its deadline; slow_commits(false) removes the trigger.
 */
static void slow_commits(bool on)
{
    if (on)
        exec_ok(conn,
                "CREATE TABLE IF NOT EXISTS e2e_slow (on_ boolean);"
                "CREATE OR REPLACE FUNCTION e2e_slow() RETURNS trigger LANGUAGE plpgsql AS $$"
                " BEGIN IF EXISTS (SELECT 1 FROM e2e_slow) THEN PERFORM pg_sleep(0.6); END IF;"
                " RETURN NULL; END $$;"
                "CREATE TRIGGER e2e_slow AFTER INSERT ON authorizations"
                " FOR EACH STATEMENT EXECUTE FUNCTION e2e_slow();"
                "INSERT INTO e2e_slow VALUES (true)");
    else
        exec_ok(conn, "DELETE FROM e2e_slow; DROP TRIGGER e2e_slow ON authorizations");
}

/*
 * Budgets per message kind: the tight listener gives authorizations 300 ms
 * but reversals 3 s (budget_reversal).  With the wallet locked for 600 ms a
 * reversal is not answered from stand-in at 300 ms: it waits for the
 * database and is decided there (00, the hold released).
 */
static void test_budget_per_kind(void **state)
{
    (void)state;
    PGconn *lock = pgtest_connect(&pg);
    int fd = signed_on_link(d.port[1]);
    struct req a, rev;
    uint8_t buf[1024];
    long len, before = available("2001");
    char rc[4], stan[8], f90[64];

    req_init(&a, "0100", card("approved"), 1200);
    roundtrip(fd, &a, buf, sizeof(buf), &len, rc);
    assert_string_equal(rc, "00");
    snprintf(f90, sizeof(f90), "0100%s%s%011d%011d", a.stan, a.xmit, 123456, 0);
    req_init(&rev, "0400", card("approved"), 1200);
    rev.f90 = f90;

    exec_ok(lock, "BEGIN");
    exec_ok(lock, "SELECT lock_wallets(ARRAY[2001]::bigint[])");
    int64_t t0 = util_now_us();
    req_send(fd, &rev);
    usleep(600 * 1000);
    exec_ok(lock, "ROLLBACK");
    PQfinish(lock);
    recv_answer(fd, buf, sizeof(buf), &len, rc, stan);
    assert_string_equal(stan, rev.stan);
    assert_string_equal(rc, "00");
    assert_true(util_now_us() - t0 >= 600 * 1000);
    assert_int_equal(available("2001"), before);
    close(fd);
}

/*
 * A late approval: decided in time but committed after the deadline (a
 * trigger sleeps).  The switch got 91; the daemon releases the hold and a
 * retransmission is answered 91 too.
 */
static void test_late_approval_released(void **state)
{
    (void)state;
    int fd = signed_on_link(d.port[1]);
    struct req r;
    uint8_t buf[1024];
    long len, before = available("2001");
    char rc[4], sql[256];

    slow_commits(true);
    req_init(&r, "0100", card("approved"), 800);
    roundtrip(fd, &r, buf, sizeof(buf), &len, rc);
    assert_string_equal(rc, "91");
    assert_true(cgd_log_wait(&d, "released", 5000));
    slow_commits(false);
    snprintf(sql, sizeof(sql),
             "SELECT status || ' ' || response_code || ' ' || hold_amount FROM authorizations"
             " WHERE stan = '%s'",
             r.stan);
    char *v = scalar(sql);
    assert_string_equal(v, "late_released 91 0");
    free(v);
    assert_int_equal(available("2001"), before);
    /* the switch repeats it: the stored answer is what it was told */
    roundtrip(fd, &r, buf, sizeof(buf), &len, rc);
    assert_string_equal(rc, "91");
    assert_int_equal(available("2001"), before);
    close(fd);
}

/*
 * The pool's connections killed while a batch is in the database: the
 * switch gets stand-in at once, the daemon asks again (idempotent) once
 * reconnected, and the approval it then learns of is released.
 */
static void test_connection_lost_recheck(void **state)
{
    (void)state;
    int fd = signed_on_link(d.port[0]);
    struct req r;
    uint8_t buf[1024];
    long len, before = available("2001");
    char rc[4], sql[256];
    int released = cgd_log_count(&d, "released");

    slow_commits(true);
    req_init(&r, "0100", card("approved"), 600);
    req_send(fd, &r);
    usleep(300 * 1000);
    exec_ok(conn, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                  " WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'"
                  " AND datname = current_database()");
    char stan[8];
    recv_answer(fd, buf, sizeof(buf), &len, rc, stan);
    assert_string_equal(stan, r.stan);
    assert_string_equal(rc, "91");
    for (int i = 0; i < 100 && cgd_log_count(&d, "released") == released; i++)
        usleep(100 * 1000);
    slow_commits(false);
    if (cgd_log_count(&d, "released") == released)
        cgd_dump_log(&d);
    assert_true(cgd_log_count(&d, "released") > released);
    snprintf(sql, sizeof(sql),
             "SELECT status || ' ' || response_code || ' ' || hold_amount FROM authorizations"
             " WHERE stan = '%s'",
             r.stan);
    char *v = scalar(sql);
    assert_string_equal(v, "late_released 91 0");
    free(v);
    assert_int_equal(available("2001"), before);
    close(fd);
}

/* A daemon whose database is unreachable answers from stand-in at once. */
static void test_no_database(void **state)
{
    (void)state;
    struct cgd nodb;
    unsigned dead = cgd_free_port();
    uint8_t buf[1024];
    long len;
    char rc[4];
    struct req r;

    assert_int_equal(cgd_init(&nodb), 0);
    assert_int_equal(cgd_write_conf(&nodb,
                                    "[database]\nconninfo = \"host=127.0.0.1 port=%u\"\n"
                                    "[listener main]\naddress = 127.0.0.1:%u\nbudget = 2s\n"
                                    "[keys]\npan_key_file = %s\n",
                                    dead, nodb.port[0], keyfile),
                     0);
    assert_int_equal(cgd_start(&nodb, NULL), 0);
    int fd = cgd_connect(nodb.port[0]);
    assert_true(fd >= 0);
    req_init(&r, "0200", card("approved"), 100);
    int64_t t0 = util_now_us();
    req_send(fd, &r);
    len = cgd_recv_frame(fd, buf, sizeof(buf));
    assert_true(len > 0);
    assert_true(util_now_us() - t0 < 500 * 1000); /* not at the 2 s deadline */
    assert_int_equal(cgd_field(buf, (size_t)len, 39, rc, sizeof(rc)), 0);
    assert_string_equal(rc, "91");
    close(fd);
    assert_int_equal(cgd_signal_wait(&nodb, SIGTERM), 0);
    cgd_cleanup(&nodb);
}

/*
 * A switch built on an independent ISO 8583 implementation (npm iso_8583,
 * tests/interop/switch.js) gets the right answers over ascii87 + len2.
 * Skipped when node/npm are missing.
 */
static void test_interop_switch(void **state)
{
    (void)state;
    char cmd[1200], out[8192];

    snprintf(cmd, sizeof(cmd), "scripts/interop switch 127.0.0.1:%u %s 2>&1", d.port[0], cardsfile);
    int st = test_capture(cmd, out, sizeof(out));
    if (strstr(out, "interop: SKIP") != NULL) {
        fprintf(stderr, "%s", out);
        skip();
    }
    if (st != 0)
        fail_msg("interop switch failed (%d):\n%s", st, out);
    assert_non_null(strstr(out, "switch: 7 of 7 matched"));
}

/*
 * The audit log: the chain verifies, answers are there with the masked PAN,
 * the deciding rule and the late release; no clear PAN anywhere.
 */
static void test_audit_log(void **state)
{
    (void)state;
    static char out[1 << 20];
    char err[4096], args[600], masked[PAN_MASK_MAX];
    const struct sim_card *c = card("approved");

    snprintf(args, sizeof(args), "audit verify --dir %s/audit", d.dir);
    if (runprog("cardgatectl", args, out, sizeof(out), err, sizeof(err)) != 0)
        fail_msg("audit verify: %s%s", out, err);
    snprintf(args, sizeof(args), "audit dump --dir %s/audit --json", d.dir);
    assert_int_equal(runprog("cardgatectl", args, out, sizeof(out), err, sizeof(err)), 0);
    assert_null(strstr(out, c->pan));
    pan_mask(c->pan, strlen(c->pan), masked);
    assert_non_null(strstr(out, masked));
    assert_non_null(strstr(out, "late_release"));
    assert_non_null(strstr(out, "standin.deadline"));
    assert_non_null(strstr(out, "card.frozen"));
    /* the links' lives: connected, signed on, closed (with the reason) */
    assert_non_null(strstr(out, "\"type\":\"link\""));
    assert_non_null(strstr(out, "\"event\":\"connect\""));
    assert_non_null(strstr(out, "\"event\":\"signon\""));
    assert_non_null(strstr(out, "\"event\":\"close\""));
}

/*
 * The database stopped and started again under traffic, same daemon: while
 * it is down every purchase is answered from stand-in (91) at once; once it
 * is back (the pool reconnects by itself) purchases are approved again.
 */
static void test_database_restart(void **state)
{
    (void)state;
    int fd = signed_on_link(d.port[0]);
    struct req r;
    uint8_t buf[1024];
    long len;
    char rc[4];
    pid_t pid = d.pid;
    int ready = cgd_log_count(&d, "database connection ready");

    req_init(&r, "0200", card("approved"), 100);
    roundtrip(fd, &r, buf, sizeof(buf), &len, rc);
    assert_string_equal(rc, "00");
    PQfinish(conn);
    conn = NULL;
    assert_int_equal(pgtest_ctl(&pg, "stop"), 0);
    for (int i = 0; i < 10; i++) {
        int64_t t0 = util_now_us();
        req_init(&r, "0200", card("approved"), 100);
        roundtrip(fd, &r, buf, sizeof(buf), &len, rc);
        assert_string_equal(rc, "91");
        assert_true(util_now_us() - t0 < 3000000); /* before the 3 s budget */
    }
    assert_int_equal(pgtest_ctl(&pg, "start"), 0);
    conn = pgtest_connect(&pg);
    assert_non_null(conn);
    bool approved = false;
    for (int i = 0; i < 100 && !approved; i++) {
        req_init(&r, "0200", card("approved"), 100);
        roundtrip(fd, &r, buf, sizeof(buf), &len, rc);
        approved = strcmp(rc, "00") == 0;
        if (!approved) {
            assert_string_equal(rc, "91");
            usleep(100 * 1000);
        }
    }
    assert_true(approved);
    assert_true(cgd_log_count(&d, "database connection ready") > ready);
    assert_int_equal(d.pid, pid);
    assert_int_equal(kill(d.pid, 0), 0); /* no restart */
    close(fd);
}

/*
 * A second cardgated on the same database and PAN key (listener on
 * d2->port[0], audit log in d2->dir/audit with audit_extra keys), started
 * and connected.
 */
static void second_daemon(struct cgd *d2, const char *audit_extra)
{
    assert_int_equal(cgd_init(d2), 0);
    assert_int_equal(cgd_write_conf(d2,
                                    "[daemon]\nmax_requests = 64\n"
                                    "[database]\npool_size = 2\n"
                                    "[listener main]\naddress = 127.0.0.1:%u\nbudget = 3s\n"
                                    "[keys]\npan_key_file = %s\n"
                                    "[audit]\ndir = %s/audit\nfsync = none\n%s",
                                    d2->port[0], keyfile, d2->dir, audit_extra),
                     0);
    assert_int_equal(cgd_start(d2, NULL), 0);
    assert_true(cgd_log_wait(d2, "database connection ready", 5000));
}

/*
 * Two cardgated processes hammer one wallet, each with a burst of
 * purchases pipelined on one link that together ask for more than it
 * holds: the wallet loses exactly what was answered 00, never goes below
 * zero, and check_ledger() stays empty.
 */
static void test_two_daemons_one_wallet(void **state)
{
    (void)state;
    struct cgd d2;
    enum { PER_LINK = 40 };
    long before = available("2001"), amount, approved = 0, declined = 0;
    uint8_t buf[1024];
    long len;
    char rc[4], stan[8];

    assert_true(before > 0);
    amount = before / PER_LINK + 1; /* 2 * PER_LINK of them: about twice the wallet */
    if (amount > 99999999)
        amount = 99999999;
    second_daemon(&d2, "");
    int fds[2] = {signed_on_link(d.port[0]), signed_on_link(d2.port[0])};
    for (int i = 0; i < PER_LINK; i++)
        for (int k = 0; k < 2; k++) {
            struct req r;
            req_init(&r, "0200", card("approved"), amount);
            req_send(fds[k], &r);
        }
    for (int i = 0; i < PER_LINK; i++)
        for (int k = 0; k < 2; k++) {
            recv_answer(fds[k], buf, sizeof(buf), &len, rc, stan);
            if (strcmp(rc, "00") == 0)
                approved++;
            else
                declined++;
        }
    long after = available("2001");
    fprintf(stderr, "two daemons: %ld approved, %ld declined of %ld each; wallet %ld -> %ld\n",
            approved, declined, amount, before, after);
    assert_true(declined > 0);
    assert_true(after >= 0);
    assert_int_equal(before - after, approved * amount);
    for (int k = 0; k < 2; k++)
        close(fds[k]);
    assert_int_equal(cgd_finish(&d2), 0);
}

/*
 * SIGTERM with a burst of purchases on the link (sent as the first answer
 * arrives): the daemon answers every
 * request it took before it exits 0 (what it had not read yet it never
 * saw); every authorization in the database for the burst was answered,
 * and the approvals in the database are exactly the 00 answers.
 */
static void test_sigterm_under_traffic(void **state)
{
    (void)state;
    struct cgd d2;
    enum { BURST = 60 };
    uint8_t buf[1024];
    long len, answered = 0, approved = 0;
    char rc[4], stan[8], sql[320];
    unsigned first = stan_seq + 1;

    second_daemon(&d2, "");
    int fd = signed_on_link(d2.port[0]);
    for (int i = 0; i < BURST; i++) {
        struct req r;
        req_init(&r, "0200", card("approved"), 100);
        req_send(fd, &r);
    }
    /* the first answer: the daemon is reading the burst; stop it now */
    bool first_answer = true;
    while ((len = cgd_recv_frame(fd, buf, sizeof(buf))) > 0) {
        if (first_answer)
            kill(d2.pid, SIGTERM);
        first_answer = false;
        assert_int_equal(cgd_field(buf, (size_t)len, 39, rc, sizeof(rc)), 0);
        assert_int_equal(cgd_field(buf, (size_t)len, 11, stan, sizeof(stan)), 0);
        answered++;
        if (strcmp(rc, "00") == 0)
            approved++;
    }
    fprintf(stderr, "SIGTERM under traffic: %ld of %d answered (%ld approved)\n", answered, BURST,
            approved);
    assert_true(answered > 0);
    assert_int_equal(cgd_signal_wait(&d2, SIGTERM), 0);
    assert_true(cgd_log_wait(&d2, "stopped", 100));
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM authorizations WHERE rrn >= 'E2E%09u' AND rrn <= 'E2E%09u'",
             first, stan_seq);
    assert_true(scalar_long(sql) <= answered);
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM authorizations WHERE rrn >= 'E2E%09u' AND rrn <= 'E2E%09u'"
             " AND response_code IN ('00', '10')",
             first, stan_seq);
    assert_int_equal(scalar_long(sql), approved);
    close(fd);
    assert_int_equal(cgd_finish(&d2), 0);
}

/*
 * The audit contract when audit_flush() itself fails: the running daemon's
 * file size limit (RLIMIT_FSIZE, SIGXFSZ ignored) is lowered to the audit
 * segment's size, so the next write fails with EFBIG.  From then on every
 * approval is answered 91 and its hold released; the wallet keeps only
 * what was answered 00.  (The daemon's log is past the limit too: only the
 * answers and the database are checked.)
 */
static void test_audit_flush_failure(void **state)
{
    (void)state;
    struct cgd d2;
    char seg[600], sql[256], rc[4];
    uint8_t buf[1024];
    long len, before = available("2001"), approved = 0;
    struct stat sb;

    signal(SIGXFSZ, SIG_IGN); /* inherited by the daemon */
    second_daemon(&d2, "");
    int fd = signed_on_link(d2.port[0]);
    struct req r;
    req_init(&r, "0100", card("approved"), 1);
    roundtrip(fd, &r, buf, sizeof(buf), &len, rc);
    assert_string_equal(rc, "00");
    approved++;
    unsigned first = stan_seq + 1;
    char dir[400];
    snprintf(dir, sizeof(dir), "%s/audit", d2.dir);
    audittest_nth_seg(dir, 0, seg, sizeof(seg));
    assert_int_equal(stat(seg, &sb), 0);
    struct rlimit lim = {.rlim_cur = (rlim_t)sb.st_size, .rlim_max = RLIM_INFINITY};
    assert_int_equal(prlimit(d2.pid, RLIMIT_FSIZE, &lim, NULL), 0);
    for (int i = 0; i < 5; i++) {
        req_init(&r, "0100", card("approved"), 1);
        roundtrip(fd, &r, buf, sizeof(buf), &len, rc);
        assert_string_equal(rc, "91");
    }
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM authorizations WHERE rrn >= 'E2E%09u' AND rrn <= 'E2E%09u'"
             " AND status = 'late_released' AND response_code = '91' AND hold_amount = 0",
             first, stan_seq);
    for (int i = 0; i < 50 && scalar_long(sql) < 5; i++)
        usleep(100 * 1000);
    assert_int_equal(scalar_long(sql), 5);
    assert_int_equal(available("2001"), before - approved);
    close(fd);
    lim.rlim_cur = RLIM_INFINITY;
    assert_int_equal(prlimit(d2.pid, RLIMIT_FSIZE, &lim, NULL), 0);
    (void)cgd_finish(&d2);
    signal(SIGXFSZ, SIG_DFL);
}

/*
 * The audit contract: once the audit log cannot take an answer record (its
 * directory gone, so the next segment cannot be created), approvals are
 * answered from stand-in (91) and their holds released like a late
 * approval; the wallet keeps only what the switch was told was approved.
 * A second cardgated on the same database, with a small audit segment.
 */
static void test_audit_failure_standin(void **state)
{
    (void)state;
    struct cgd d2;
    char audit[400], moved[420], sql[256], rc[4];
    uint8_t buf[1024];
    long len, before = available("2001"), approved = 0, n91 = 0, tries = 0;
    const long amount = 1;
    long first_stan = stan_seq + 1;

    second_daemon(&d2, "segment_size = 64k\n");
    snprintf(audit, sizeof(audit), "%s/audit", d2.dir);
    snprintf(moved, sizeof(moved), "%s/audit.gone", d2.dir);
    int fd = signed_on_link(d2.port[0]);
    struct req r;
    req_init(&r, "0100", card("approved"), amount);
    roundtrip(fd, &r, buf, sizeof(buf), &len, rc);
    assert_string_equal(rc, "00");
    approved++;
    /* the writer keeps its open segment; the next one cannot be made */
    assert_int_equal(rename(audit, moved), 0);
    while (n91 < 5 && tries++ < 600) {
        req_init(&r, "0100", card("approved"), amount);
        roundtrip(fd, &r, buf, sizeof(buf), &len, rc);
        if (strcmp(rc, "00") == 0) {
            if (n91 > 0)
                fail_msg("stan %s approved after the audit log failed", r.stan);
            approved++;
        } else if (strcmp(rc, "91") == 0) {
            char v[16];
            assert_int_not_equal(cgd_field(buf, (size_t)len, 38, v, sizeof(v)), 0);
            n91++;
        } else {
            fail_msg("stan %s: unexpected %s", r.stan, rc);
        }
    }
    assert_int_equal(n91, 5);
    assert_true(cgd_log_wait(&d2, "approval not in the audit log", 1000));
    /* every stand-in answer's hold released (release_late_answered) */
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM authorizations WHERE rrn >= 'E2E%09ld' AND rrn <= 'E2E%09u'"
             " AND status = 'late_released' AND response_code = '91' AND hold_amount = 0",
             first_stan, stan_seq);
    for (int i = 0; i < 50 && scalar_long(sql) < n91; i++)
        usleep(100 * 1000);
    assert_int_equal(scalar_long(sql), n91);
    assert_int_equal(available("2001"), before - approved * amount);
    close(fd);
    assert_int_equal(rename(moved, audit), 0);
    assert_int_equal(cgd_finish(&d2), 0);
}

/* ---- stand-in approvals ([standin] mode = approve) ----------------------- */

/*
 * A cardgated in [standin] mode = approve on the same database and PAN key:
 * d2->port[0] with a 3 s budget, d2->port[1] with 300 ms, d2->port[2] 10 s; the journal in
 * d2->dir; started, connected, and the card limits loaded.
 */
static void standin_daemon(struct cgd *d2)
{
    assert_int_equal(cgd_init(d2), 0);
    assert_int_equal(cgd_write_conf(d2,
                                    "[daemon]\nmax_requests = 64\n"
                                    "[database]\npool_size = 2\nreconnect_max = 500ms\n"
                                    "[listener main]\naddress = 127.0.0.1:%u\nbudget = 3s\n"
                                    "[listener tight]\naddress = 127.0.0.1:%u\nbudget = 300ms\n"
                                    "[listener long]\naddress = 127.0.0.1:%u\nbudget = 10s\n"
                                    "[standin]\nmode = approve\njournal = %s/standin.journal\n"
                                    "refresh = 1s\n"
                                    "[keys]\npan_key_file = %s\n"
                                    "[audit]\ndir = %s/audit\nfsync = none\n",
                                    d2->port[0], d2->port[1], d2->port[2], d2->dir, keyfile,
                                    d2->dir),
                     0);
    assert_int_equal(cgd_start(d2, NULL), 0);
    assert_true(cgd_log_wait(d2, "stand-in limits of", 10000));
}

/* Send r on fd; its 39 into rc and 38 (or "") into appr. */
static void roundtrip_appr(int fd, const struct req *r, char rc[4], char appr[8])
{
    uint8_t buf[1024];
    long len;
    roundtrip(fd, r, buf, sizeof(buf), &len, rc);
    if (cgd_field(buf, (size_t)len, 38, appr, 8) != 0)
        appr[0] = '\0';
}

static void db_stop(void)
{
    PQfinish(conn);
    conn = NULL;
    assert_int_equal(pgtest_ctl(&pg, "stop"), 0);
}

static void db_start(void)
{
    assert_int_equal(pgtest_ctl(&pg, "start"), 0);
    conn = pgtest_connect(&pg);
    assert_non_null(conn);
}

/* Wait up to 20 s until needle is in d2's log n times. */
static void log_wait_count(struct cgd *d2, const char *needle, int n)
{
    for (int i = 0; i < 200 && cgd_log_count(d2, needle) < n; i++)
        usleep(100 * 1000);
    if (cgd_log_count(d2, needle) < n) {
        cgd_dump_log(d2);
        fail_msg("'%s' not %d times in the log", needle, n);
    }
}

/* "count sum-of-holds" of the stand-in rows of stan (rule standin.*). */
static char *standin_rows(const char *stan)
{
    char sql[400];
    snprintf(sql, sizeof(sql),
             "SELECT count(*) || ' ' || coalesce(sum(hold_amount), 0) FROM authorizations"
             " WHERE stan = '%s' AND acquirer_id = '123456' AND rule = 'standin.approved'"
             " AND kind = 'standin'",
             stan);
    return scalar(sql);
}

/*
 * The database stopped under traffic: plain purchases are approved in
 * stand-in (38 = S + 5 digits) up to the card's stand-in limit (50.00 in the
 * demo data), then answered 91; cash, balance inquiries and refunds 91 at
 * once; a daemon in mode = decline keeps answering 91.  Once the database
 * is back the approvals are settled: one hold each with rule
 * standin.approved, the wallet's available balance lowered by exactly them,
 * check_ledger() empty (teardown), the journal compacted to nothing.
 */
static void test_standin_db_down(void **state)
{
    (void)state;
    struct cgd d2;
    struct req r, ok[2];
    char rc[4], appr[8];
    long before = available("2001");

    standin_daemon(&d2);
    int fd = cgd_connect(d2.port[0]);
    int fd1 = cgd_connect(d.port[0]);
    assert_true(fd >= 0 && fd1 >= 0);
    db_stop();
    for (int i = 0; i < 2; i++) {
        req_init(&ok[i], "0100", card("approved"), 2000);
        roundtrip_appr(fd, &ok[i], rc, appr);
        assert_string_equal(rc, "00");
        assert_int_equal(strlen(appr), 6);
        assert_int_equal(appr[0], 'S');
        assert_int_equal(strspn(appr + 1, "0123456789"), 5);
    }
    /* 40.00 taken of 50.00: 20.00 more is over the limit, 10.00 is not */
    req_init(&r, "0100", card("approved"), 2000);
    roundtrip_appr(fd, &r, rc, appr);
    assert_string_equal(rc, "91");
    assert_string_equal(appr, "");
    /* a 0200 purchase: no completion would capture a stand-in hold */
    req_init(&r, "0200", card("approved"), 100);
    roundtrip_appr(fd, &r, rc, appr);
    assert_string_equal(rc, "91");
    /* not plain purchases: cash, cashback, balance, refund */
    static const char *const procs[] = {"010000", "090000", "300000", "200000"};
    for (size_t i = 0; i < 4; i++) {
        req_init(&r, "0100", card("approved"), 100);
        r.proc = procs[i];
        roundtrip_appr(fd, &r, rc, appr);
        assert_string_equal(rc, "91");
    }
    /* 10.00 left: 10.01 is over it, 10.00 is not */
    req_init(&r, "0100", card("approved"), 1001);
    roundtrip_appr(fd, &r, rc, appr);
    assert_string_equal(rc, "91");
    req_init(&r, "0100", card("approved"), 1000);
    roundtrip_appr(fd, &r, rc, appr);
    assert_string_equal(rc, "00");
    assert_int_equal(appr[0], 'S');
    struct req third = r;
    /* an expired card (its stand-in limit is there) is not approved in stand-in */
    req_init(&r, "0100", card("expired"), 100);
    roundtrip_appr(fd, &r, rc, appr);
    assert_string_equal(rc, "91");
    /* the default mode: 91 */
    req_init(&r, "0100", card("approved"), 100);
    roundtrip_appr(fd1, &r, rc, appr);
    assert_string_equal(rc, "91");
    assert_int_equal(cgd_log_count(&d2, "approved in stand-in"), 3);

    db_start();
    log_wait_count(&d2, "settled: auth", 3);
    for (int i = 0; i < 2; i++) {
        char *v = standin_rows(ok[i].stan);
        assert_string_equal(v, "1 2000");
        free(v);
    }
    char *v = standin_rows(third.stan);
    assert_string_equal(v, "1 1000");
    free(v);
    assert_int_equal(available("2001"), before - 5000);
    /* the approval code the switch got is the stored one */
    char sql[300];
    snprintf(sql, sizeof(sql),
             "SELECT approval_code FROM authorizations WHERE stan = '%s' AND kind = 'standin'",
             third.stan);
    v = scalar(sql);
    assert_int_equal(v[0], 'S');
    free(v);
    /* settled: the journal holds nothing, and the card's stand-in limit is whole again */
    char jpath[400];
    struct stat st;
    snprintf(jpath, sizeof(jpath), "%s/standin.journal", d2.dir);
    for (int i = 0; i < 50; i++) {
        assert_int_equal(stat(jpath, &st), 0);
        if (st.st_size == 0)
            break;
        usleep(100 * 1000);
    }
    assert_int_equal(st.st_size, 0);
    /* the audit log says stand-in */
    static char out[1 << 20];
    char err[4096], args[600];
    snprintf(args, sizeof(args), "audit dump --dir %s/audit --json", d2.dir);
    assert_int_equal(runprog("cardgatectl", args, out, sizeof(out), err, sizeof(err)), 0);
    assert_non_null(strstr(out, "standin.approved"));
    assert_non_null(strstr(out, "standin_settled"));
    close(fd);
    close(fd1);
    assert_int_equal(cgd_finish(&d2), 0);
}

/*
 * SIGKILL after stand-in approvals: the journal survives; the next start
 * replays it and settles each approval exactly once, also when it is
 * started once more.
 */
static void test_standin_sigkill_replay(void **state)
{
    (void)state;
    struct cgd d2;
    struct req r[2];
    char rc[4], appr[8];
    long before;

    standin_daemon(&d2);
    before = available("2001");
    int fd = cgd_connect(d2.port[0]);
    assert_true(fd >= 0);
    db_stop();
    for (int i = 0; i < 2; i++) {
        req_init(&r[i], "0100", card("approved"), 1500);
        roundtrip_appr(fd, &r[i], rc, appr);
        assert_string_equal(rc, "00");
    }
    close(fd);
    assert_int_equal(cgd_signal_wait(&d2, SIGKILL), -1);
    db_start();
    assert_int_equal(cgd_start(&d2, NULL), 0);
    log_wait_count(&d2, "2 approvals to settle", 1);
    log_wait_count(&d2, "settled: auth", 2);
    for (int i = 0; i < 2; i++) {
        char *v = standin_rows(r[i].stan);
        assert_string_equal(v, "1 1500");
        free(v);
    }
    assert_int_equal(available("2001"), before - 3000);
    /* started again: nothing left to settle, nothing moves */
    assert_int_equal(cgd_signal_wait(&d2, SIGTERM), 0);
    assert_int_equal(cgd_start(&d2, NULL), 0);
    log_wait_count(&d2, "0 approvals to settle", 1);
    assert_true(cgd_log_wait(&d2, "database connection ready", 5000));
    usleep(1500 * 1000);
    for (int i = 0; i < 2; i++) {
        char *v = standin_rows(r[i].stan);
        assert_string_equal(v, "1 1500");
        free(v);
    }
    assert_int_equal(available("2001"), before - 3000);
    assert_int_equal(cgd_finish(&d2), 0);
}

/*
 * The journal is one daemon's: a second one on the same journal does not
 * start, and says why.
 */
static void test_standin_journal_locked(void **state)
{
    (void)state;
    struct cgd d2, d3;

    standin_daemon(&d2);
    assert_int_equal(cgd_init(&d3), 0);
    assert_int_equal(cgd_write_conf(&d3,
                                    "[listener main]\naddress = 127.0.0.1:%u\n"
                                    "[standin]\nmode = approve\njournal = %s/standin.journal\n"
                                    "[keys]\npan_key_file = %s\n",
                                    d3.port[0], d2.dir, keyfile),
                     0);
    assert_int_equal(cgd_start(&d3, NULL), -1);
    assert_true(cgd_log_wait(&d3, "in use by another process", 100));
    cgd_cleanup(&d3);
    assert_int_equal(cgd_finish(&d2), 0);
}

/*
 * The switch reverses a stand-in approval before it is settled (the
 * database is back, the 10 s deadline not yet past): the reversal is
 * remembered unmatched, and the settlement then holds nothing
 * (sql/0008), so the wallet is where it was.
 */
static void test_standin_reversed_before_settlement(void **state)
{
    (void)state;
    struct cgd d2;
    struct req a, rev;
    char rc[4], appr[8], f90[64];
    long before = available("2001");

    standin_daemon(&d2);
    int fd = cgd_connect(d2.port[2]);
    assert_true(fd >= 0);
    int ready = cgd_log_count(&d2, "database connection ready");
    db_stop();
    req_init(&a, "0100", card("approved"), 1500);
    roundtrip_appr(fd, &a, rc, appr);
    assert_string_equal(rc, "00");
    assert_int_equal(appr[0], 'S');
    db_start();
    log_wait_count(&d2, "database connection ready", ready + 1);
    snprintf(f90, sizeof(f90), "0100%s%s%011d%011d", a.stan, a.xmit, 123456, 0);
    req_init(&rev, "0400", card("approved"), 1500);
    rev.f90 = f90;
    roundtrip_appr(fd, &rev, rc, appr);
    assert_string_equal(rc, "00");
    log_wait_count(&d2, "standin.reversed_before_settlement", 1);
    char *v = standin_rows(a.stan);
    assert_string_equal(v, "0 0");
    free(v);
    assert_int_equal(available("2001"), before);
    close(fd);
    assert_int_equal(cgd_finish(&d2), 0);
}

/*
 * A request approved in stand-in at its deadline whose database approval
 * commits late: the late approval is that request's one hold (not released,
 * no second hold from the settlement, which finds it by acquirer/STAN/
 * field 7/RRN); the wallet loses the amount once.
 */
static void test_standin_late_db_approval(void **state)
{
    (void)state;
    struct cgd d2;
    struct req r;
    char rc[4], appr[8], sql[400];

    standin_daemon(&d2);
    long before = available("2001");
    int fd = cgd_connect(d2.port[1]);
    assert_true(fd >= 0);
    slow_commits(true);
    req_init(&r, "0100", card("approved"), 700);
    roundtrip_appr(fd, &r, rc, appr);
    assert_string_equal(rc, "00");
    assert_int_equal(appr[0], 'S');
    log_wait_count(&d2, "kept as its hold", 1);
    log_wait_count(&d2, "settled: auth", 1);
    slow_commits(false);
    snprintf(sql, sizeof(sql),
             "SELECT count(*) || ' ' || sum(hold_amount) || ' ' || string_agg(kind, ',')"
             " FROM authorizations WHERE stan = '%s' AND acquirer_id = '123456'"
             " AND response_code = '00'",
             r.stan);
    char *v = scalar(sql);
    assert_string_equal(v, "1 700 auth");
    free(v);
    assert_true(cgd_log_wait(&d2, "standin.settled_by_authorization", 100));
    assert_int_equal(available("2001"), before - 700);
    close(fd);
    assert_int_equal(cgd_finish(&d2), 0);
}

/*
 * The audit log fails while the database is stopped: stand-in approvals it
 * cannot prove go out as 91 (rule standin.audit) and are voided in the
 * journal, so that once the database is back exactly the approvals the
 * switch was told of are settled, and nothing else.
 */
static void test_standin_audit_failure_void(void **state)
{
    (void)state;
    struct cgd d2;
    char audit[400], moved[420], rc[4], appr[8], sql[400];
    long before = available("2001"), approved = 0, n91 = 0, tries = 0;
    long first_stan = stan_seq + 1;
    struct req r;

    standin_daemon(&d2);
    assert_int_equal(cgd_signal_wait(&d2, SIGTERM), 0);
    FILE *f = fopen(d2.conf, "a");
    assert_non_null(f);
    fprintf(f, "segment_size = 64k\n"); /* [audit] is the last section */
    fclose(f);
    int started = cgd_log_count(&d2, "stand-in limits of");
    assert_int_equal(cgd_start(&d2, NULL), 0);
    log_wait_count(&d2, "stand-in limits of", started + 1);
    snprintf(audit, sizeof(audit), "%s/audit", d2.dir);
    snprintf(moved, sizeof(moved), "%s/audit.gone", d2.dir);
    int fd = cgd_connect(d2.port[0]);
    assert_true(fd >= 0);
    db_stop();
    req_init(&r, "0100", card("approved"), 1);
    roundtrip_appr(fd, &r, rc, appr);
    assert_string_equal(rc, "00");
    approved++;
    assert_int_equal(rename(audit, moved), 0);
    while (n91 < 3 && tries++ < 2000) {
        req_init(&r, "0100", card("approved"), 1);
        roundtrip_appr(fd, &r, rc, appr);
        if (strcmp(rc, "00") == 0) {
            if (n91 > 0)
                fail_msg("stan %s approved after the audit log failed", r.stan);
            approved++;
        } else {
            assert_string_equal(rc, "91");
            assert_string_equal(appr, "");
            n91++;
        }
    }
    assert_int_equal(n91, 3);
    assert_true(cgd_log_wait(&d2, "stand-in approval not proven (audit)", 1000));
    assert_int_equal(rename(moved, audit), 0);
    db_start();
    snprintf(sql, sizeof(sql),
             "SELECT count(*) || ' ' || coalesce(sum(hold_amount), 0) FROM authorizations"
             " WHERE rrn >= 'E2E%09ld' AND rrn <= 'E2E%09u' AND rule = 'standin.approved'",
             first_stan, stan_seq);
    char want[64];
    snprintf(want, sizeof(want), "%ld %ld", approved, approved);
    log_wait_count(&d2, "settled: auth", (int)approved);
    char *v = scalar(sql);
    assert_string_equal(v, want);
    free(v);
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM authorizations WHERE rrn >= 'E2E%09ld' AND rrn <= 'E2E%09u'",
             first_stan, stan_seq);
    assert_int_equal(scalar_long(sql), approved);
    assert_int_equal(available("2001"), before - approved);
    close(fd);
    assert_int_equal(cgd_finish(&d2), 0);
}

/* ---- fixtures ---------------------------------------------------------- */

static int ledger_ok(void **state)
{
    (void)state;
    char *v = pgtest_scalar(conn, "SELECT count(*) FROM check_ledger()");
    int ok = v != NULL && strcmp(v, "0") == 0;
    if (!ok)
        fprintf(stderr, "check_ledger() reports problems\n");
    free(v);
    return ok ? 0 : -1;
}

static int group_setup(void **state)
{
    (void)state;
    char out[8192], err[4096], args[1200], e[200];
    FILE *f;

    if (pgtest_start(&pg, 0) != 0)
        return -1;
    conn = pgtest_connect(&pg);
    if (conn == NULL || cgd_init(&d) != 0)
        return -1;
    snprintf(keyfile, sizeof(keyfile), "%s/pan.key", d.dir);
    snprintf(cardsfile, sizeof(cardsfile), "%s/cards.json", d.dir);
    f = fopen(keyfile, "w");
    if (f == NULL)
        return -1;
    srand((unsigned)time(NULL));
    for (int i = 0; i < 64; i++)
        fputc("0123456789abcdef"[rand() % 16], f);
    fclose(f);
    snprintf(args, sizeof(args), "demo seed --out %s --pan-key-file %s", cardsfile, keyfile);
    if (runprog("cardgatectl", args, out, sizeof(out), err, sizeof(err)) != 0) {
        fprintf(stderr, "demo seed: %s\n", err);
        return -1;
    }
    if (sim_cards_load(cardsfile, &cards, e, sizeof(e)) != 0) {
        fprintf(stderr, "%s\n", e);
        return -1;
    }
    if (cgd_write_conf(&d,
                       "[daemon]\nmax_requests = 256\n"
                       "[database]\npool_size = 2\n"
                       "[listener main]\naddress = 127.0.0.1:%u\nbudget = 3s\n"
                       "[listener tight]\naddress = 127.0.0.1:%u\nbudget = 300ms\n"
                       "budget_reversal = 3s\n"
                       "[listener signon]\naddress = 127.0.0.1:%u\nbudget = 3s\n"
                       "require_signon = yes\n"
                       "[keys]\npan_key_file = %s\n"
                       "[audit]\ndir = %s/audit\nfsync = none\n",
                       d.port[0], d.port[1], d.port[2], keyfile, d.dir) != 0)
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
        cmocka_unit_test_teardown(test_decisions, ledger_ok),
        cmocka_unit_test_teardown(test_balance_f54, ledger_ok),
        cmocka_unit_test_teardown(test_reversal_partial_and_full, ledger_ok),
        cmocka_unit_test_teardown(test_duplicate, ledger_ok),
        cmocka_unit_test_teardown(test_out_of_order, ledger_ok),
        cmocka_unit_test_teardown(test_echo_signon, ledger_ok),
        cmocka_unit_test_teardown(test_malformed_frame, ledger_ok),
        cmocka_unit_test_teardown(test_missing_field, ledger_ok),
        cmocka_unit_test_teardown(test_deadline_locked, ledger_ok),
        cmocka_unit_test_teardown(test_budget_per_kind, ledger_ok),
        cmocka_unit_test_teardown(test_late_approval_released, ledger_ok),
        cmocka_unit_test_teardown(test_connection_lost_recheck, ledger_ok),
        cmocka_unit_test_teardown(test_no_database, ledger_ok),
        cmocka_unit_test_teardown(test_interop_switch, ledger_ok),
        cmocka_unit_test(test_audit_log),
        cmocka_unit_test_teardown(test_audit_failure_standin, ledger_ok),
        cmocka_unit_test_teardown(test_audit_flush_failure, ledger_ok),
        cmocka_unit_test_teardown(test_two_daemons_one_wallet, ledger_ok),
        cmocka_unit_test_teardown(test_sigterm_under_traffic, ledger_ok),
        cmocka_unit_test_teardown(test_database_restart, ledger_ok),
        cmocka_unit_test_teardown(test_standin_db_down, ledger_ok),
        cmocka_unit_test_teardown(test_standin_sigkill_replay, ledger_ok),
        cmocka_unit_test_teardown(test_standin_journal_locked, ledger_ok),
        cmocka_unit_test_teardown(test_standin_reversed_before_settlement, ledger_ok),
        cmocka_unit_test_teardown(test_standin_late_db_approval, ledger_ok),
        cmocka_unit_test_teardown(test_standin_audit_failure_void, ledger_ok),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
