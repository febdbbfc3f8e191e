/*
 * test_ledger.c - the ledger and decision engine against a real throwaway
 * PostgreSQL: every case of tests/data/ledger/decisions.txt (response codes,
 * message kinds, batches, replays, reversals, shadow policies), 16 sessions
 * hammering one wallet, the operators' commands, and the demo data.  After
 * every test the ledger invariants must hold, checked both by check_ledger()
 * and by `cardgatectl check-ledger`.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/util.h"
#include "crypto/pan.h"
#include "tests/lib/capture.h"
#include "tests/lib/pgtest.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define DECISIONS "tests/data/ledger/decisions.txt"
#define FIXTURE   "tests/data/ledger/fixture.sql"

static struct pgtest pg;
static PGconn *conn;
static char *decisions; /* the whole data file, split into lines in place */
static char **lines;
static size_t nlines;
static char keyfile[300];
static const char TEST_KEY_HEX[] =
    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

/* ---- helpers ------------------------------------------------------------ */

static void exec_ok(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        fail_msg("SQL failed: %s\n  %s", PQerrorMessage(c), sql);
    PQclear(r);
}

static char *scalar(const char *sql)
{
    char *v = pgtest_scalar(conn, sql);
    if (v == NULL)
        fail_msg("no value from: %s (%s)", sql, PQerrorMessage(conn));
    return v;
}

/* Empty every ledger table. */
static void truncate_all(void)
{
    exec_ok(conn, "TRUNCATE companies, accounts, teams, cardholders, cards, mcc_groups, policies,"
                  " card_spend, authorizations, shadow_decisions, ledger_entries"
                  " RESTART IDENTITY CASCADE");
    exec_ok(conn, "ALTER SEQUENCE journal_id_seq RESTART");
}

/* Reset the database to the fixture. */
static void reset_db(void)
{
    size_t len;
    truncate_all();
    char *fx = util_read_file(FIXTURE, 1 << 20, &len);
    assert_non_null(fx);
    exec_ok(conn, fx);
    free(fx);
}

static int ctl(char *out, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int ctl(char *out, size_t cap, const char *fmt, ...)
{
    char prog[256], args[1024], cmd[1400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof(args), fmt, ap);
    va_end(ap);
    pgtest_prog("cardgatectl", prog, sizeof(prog));
    snprintf(cmd, sizeof(cmd), "%s %s 2>&1", prog, args);
    return test_capture(cmd, out, cap);
}

/* The invariants, both ways; every test ends with this. */
static int check_after(void **state)
{
    (void)state;
    char out[4096];
    char *n = scalar("SELECT count(*) FROM check_ledger()");
    if (strcmp(n, "0") != 0) {
        char *what = scalar("SELECT string_agg(coalesce(account_id::text, '-') || ': ' || problem"
                            " || ' expected ' || expected || ' actual ' || actual, '; ')"
                            " FROM check_ledger()");
        fail_msg("check_ledger: %s", what);
    }
    free(n);
    int rc = ctl(out, sizeof(out), "check-ledger");
    if (rc != 0)
        fail_msg("cardgatectl check-ledger exit %d: %s", rc, out);
    assert_non_null(strstr(out, "check-ledger: ok"));
    return 0;
}

/* ---- the table-driven decision cases ------------------------------------ */

struct section {
    const char *name;
    size_t first, end; /* line indexes (after the "test" line, exclusive end) */
};

static const char BATCH_SQL[] =
    "WITH e AS (SELECT x, i, $2::int + i::int - 1 AS n FROM jsonb_array_elements($1::jsonb)"
    "           WITH ORDINALITY e(x, i)),"
    " m AS (SELECT i, jsonb_build_object('kind', 'auth', 'acquirer_id', 'ACQ1', 'stan', n::text,"
    "         'xmit_at', '1122334455', 'orig_xmit_at', '1122334455', 'txn_currency', '978',"
    "         'txn_amount', 1000, 'mcc', '5411', 'country', 'DE', 'channel', 'chip',"
    "         'deadline', (clock_timestamp() + interval '1 minute')::text) || x AS y FROM e),"
    " f AS (SELECT jsonb_agg(y || CASE WHEN y ? 'rrn' THEN '{}'::jsonb"
    "                              ELSE jsonb_build_object('rrn', 'R' || (y->>'stan')) END"
    "                           || CASE WHEN length(y->>'pan_hash') = 1"
    "                              THEN jsonb_build_object('pan_hash', repeat(y->>'pan_hash', 64))"
    "                              ELSE '{}'::jsonb END ORDER BY i) AS j FROM m)"
    " SELECT o.response_code, o.rule, o.approved_amount FROM f, authorize_batch_json(f.j) o"
    " ORDER BY o.ord";

struct pending {
    char json[16384];
    size_t used;
    int count;
    const char *expect[64][3];
    size_t lineno[64];
};

static void flush_requests(const char *name, struct pending *p, int *stan)
{
    char arr[16500], first[16];
    if (p->count == 0)
        return;
    snprintf(arr, sizeof(arr), "[%s]", p->json);
    snprintf(first, sizeof(first), "%d", *stan);
    const char *params[2] = {arr, first};
    PGresult *r = PQexecParams(conn, BATCH_SQL, 2, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("%s: %s:%zu: authorize_batch failed: %s", name, DECISIONS, p->lineno[0] + 1,
                 PQerrorMessage(conn));
    assert_int_equal(PQntuples(r), p->count);
    for (int i = 0; i < p->count; i++) {
        for (int f = 0; f < 3; f++) {
            const char *want = p->expect[i][f], *got = PQgetvalue(r, i, f);
            if (strcmp(want, "*") != 0 && strcmp(want, got) != 0)
                fail_msg("%s: %s:%zu: %s: want %s, got %s (code %s rule %s amount %s)", name,
                         DECISIONS, p->lineno[i] + 1,
                         f == 0   ? "code"
                         : f == 1 ? "rule"
                                  : "amount",
                         want, got, PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), PQgetvalue(r, i, 2));
        }
    }
    PQclear(r);
    *stan += p->count;
    p->used = 0;
    p->count = 0;
    p->json[0] = '\0';
}

/* "req CODE RULE AMOUNT JSON": split in place */
static void add_request(struct pending *p, char *rest, size_t lineno)
{
    char *save = NULL;
    char *code = strtok_r(rest, " ", &save);
    char *rule = strtok_r(NULL, " ", &save);
    char *amount = strtok_r(NULL, " ", &save);
    char *json = save;
    assert_non_null(code);
    assert_non_null(rule);
    assert_non_null(amount);
    assert_non_null(json);
    assert_true(p->count < 64);
    int w =
        snprintf(p->json + p->used, sizeof(p->json) - p->used, "%s%s", p->count ? "," : "", json);
    assert_true(w > 0 && (size_t)w < sizeof(p->json) - p->used);
    p->used += (size_t)w;
    p->expect[p->count][0] = code;
    p->expect[p->count][1] = rule;
    p->expect[p->count][2] = amount;
    p->lineno[p->count] = lineno;
    p->count++;
}

static void run_section(void **state)
{
    const struct section *s = *state;
    static struct pending p;
    int in_batch = 0, stan = 1;

    reset_db();
    memset(&p, 0, sizeof(p));
    for (size_t i = s->first; i < s->end; i++) {
        char buf[8192];
        snprintf(buf, sizeof(buf), "%s", lines[i]);
        if (buf[0] == '#' || buf[0] == '\0')
            continue;
        if (strncmp(buf, "sql ", 4) == 0) {
            exec_ok(conn, buf + 4);
        } else if (strncmp(buf, "expect ", 7) == 0) {
            char *eq = NULL;
            for (char *q = strstr(buf, " = "); q != NULL; q = strstr(q + 1, " = "))
                eq = q;
            assert_non_null(eq);
            *eq = '\0';
            char *got = pgtest_scalar(conn, buf + 7);
            if (got == NULL || strcmp(got, eq + 3) != 0)
                fail_msg("%s: %s:%zu: %s: want %s, got %s", s->name, DECISIONS, i + 1, buf + 7,
                         eq + 3, got ? got : "(error/no row)");
            free(got);
        } else if (strcmp(buf, "batch") == 0) {
            in_batch = 1;
        } else if (strcmp(buf, "end") == 0) {
            in_batch = 0;
            flush_requests(s->name, &p, &stan);
        } else if (strncmp(buf, "req ", 4) == 0) {
            /* keep the text alive: expectations point into lines[i] */
            add_request(&p, lines[i] + 4, i);
            if (!in_batch)
                flush_requests(s->name, &p, &stan);
        } else {
            fail_msg("%s:%zu: unknown directive: %s", DECISIONS, i + 1, buf);
        }
    }
    assert_false(in_batch);
}

/* ---- concurrency: 16 sessions, one wallet ------------------------------- */

#define HAMMER_THREADS 16
#define HAMMER_BATCHES 25
#define HAMMER_PER     8

struct hammer {
    int id;
    long long approved;
    int calls_ok;
};

static void *hammer_run(void *arg)
{
    struct hammer *h = arg;
    PGconn *c = pgtest_connect(&pg);
    if (c == NULL)
        return NULL;
    unsigned seed = (unsigned)h->id * 7919u + 1u;
    for (int b = 0; b < HAMMER_BATCHES; b++) {
        char json[4096];
        size_t used = 0;
        used += (size_t)snprintf(json + used, sizeof(json) - used, "[");
        for (int k = 0; k < HAMMER_PER; k++) {
            int amount = 1 + (int)(rand_r(&seed) % 900);
            used += (size_t)snprintf(
                json + used, sizeof(json) - used,
                "%s{\"kind\":\"auth\",\"pan_hash\":\"%s\",\"acquirer_id\":\"H\","
                "\"stan\":\"%d\",\"rrn\":\"H%d\",\"xmit_at\":\"1\","
                "\"txn_currency\":\"978\",\"txn_amount\":%d,"
                "\"partial_ok\":%s,\"deadline\":\"2999-01-01T00:00:00Z\"}",
                k ? "," : "",
                k % 2 ? "2222222222222222222222222222222222222222222222222222222222222222"
                      : "5555555555555555555555555555555555555555555555555555555555555555",
                h->id * 100000 + b * 100 + k, h->id * 100000 + b * 100 + k, amount,
                k % 3 == 0 ? "true" : "false");
        }
        snprintf(json + used, sizeof(json) - used, "]");
        const char *params[1] = {json};
        PGresult *r = PQexecParams(c, "SELECT approved_amount FROM authorize_batch_json($1)", 1,
                                   NULL, params, NULL, NULL, 0);
        if (PQresultStatus(r) == PGRES_TUPLES_OK) {
            h->calls_ok++;
            for (int i = 0; i < PQntuples(r); i++)
                h->approved += atoll(PQgetvalue(r, i, 0));
        }
        PQclear(r);
    }
    PQfinish(c);
    return NULL;
}

static void test_sixteen_sessions_one_wallet(void **state)
{
    (void)state;
    pthread_t t[HAMMER_THREADS];
    struct hammer h[HAMMER_THREADS];
    long long total = 0;

    reset_db();
    exec_ok(conn, "SELECT account_load(2, 199000)"); /* 2,000.00 in all */
    for (int i = 0; i < HAMMER_THREADS; i++) {
        h[i] = (struct hammer){.id = i + 1};
        assert_int_equal(pthread_create(&t[i], NULL, hammer_run, &h[i]), 0);
    }
    for (int i = 0; i < HAMMER_THREADS; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(h[i].calls_ok, HAMMER_BATCHES);
        total += h[i].approved;
    }
    /* far more was asked (16*25*8*~450) than the wallet holds: it is spent
     * exactly down to zero and never below */
    char *av = scalar("SELECT available FROM accounts WHERE id = 2");
    char *sum = scalar("SELECT sum(amount_approved) FROM authorizations WHERE account_id = 2");
    assert_true(atoll(av) >= 0);
    assert_int_equal(atoll(sum), total);
    assert_int_equal(total + atoll(av), 200000);
    assert_true(atoll(av) < 900); /* the next request would not have fit */
    free(av);
    free(sum);
}

/* ---- the operators' commands --------------------------------------------- */

static long long json_int(const char *json, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof(pat), "\"%s\":", key);
    const char *p = strstr(json, pat);
    if (p == NULL)
        fail_msg("no %s in %s", key, json);
    return atoll(p + strlen(pat));
}

static void json_str(const char *json, const char *key, char *out, size_t cap)
{
    char pat[64];
    snprintf(pat, sizeof(pat), "\"%s\":\"", key);
    const char *p = strstr(json, pat);
    if (p == NULL)
        fail_msg("no %s in %s", key, json);
    p += strlen(pat);
    size_t n = strcspn(p, "\"");
    assert_true(n < cap);
    memcpy(out, p, n);
    out[n] = '\0';
}

static void test_cli_commands(void **state)
{
    (void)state;
    char out[8192], pan[32], expiry[8], cvv2[8], sql[512];
    uint8_t key[32];

    reset_db();
    assert_int_equal(ctl(out, sizeof(out), "account create --name Zeta --currency EUR --json"), 0);
    long long acct = json_int(out, "account_id");
    assert_true(acct > 0);
    assert_int_equal(
        ctl(out, sizeof(out), "account load --account %lld --amount 12345 --json", acct), 0);
    assert_int_equal(json_int(out, "balance"), 12345);
    assert_int_equal(json_int(out, "available"), 12345);
    assert_int_equal(ctl(out, sizeof(out), "account show --account %lld --json", acct), 0);
    assert_int_equal(json_int(out, "balance"), 12345);
    assert_non_null(strstr(out, "\"currency\":\"EUR\""));

    assert_int_equal(ctl(out, sizeof(out), "card issue --account %lld --bin 40000012 --json", acct),
                     0);
    long long card = json_int(out, "card_id");
    json_str(out, "pan", pan, sizeof(pan));
    json_str(out, "expiry", expiry, sizeof(expiry));
    json_str(out, "cvv2", cvv2, sizeof(cvv2));
    assert_int_equal(strlen(pan), 16);
    assert_memory_equal(pan, "40000012", 8);
    assert_true(pan_luhn_ok(pan, strlen(pan)));
    assert_int_equal(strlen(expiry), 4);
    assert_int_equal(strlen(cvv2), 3);
    /* only the keyed hash is stored, and it is the HMAC of the PAN */
    char hash[PAN_HASH_HEX];
    assert_int_equal(util_hex_decode(TEST_KEY_HEX, key, sizeof(key)), 32);
    assert_int_equal(pan_hash_hex(key, sizeof(key), pan, strlen(pan), hash), 0);
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM cards WHERE id = %lld AND pan_hash = '%s'"
             " AND last4 = '%s' AND expiry = '%s'",
             card, hash, pan + 12, expiry);
    char *v = scalar(sql);
    assert_string_equal(v, "1");
    free(v);
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM cards c, LATERAL (SELECT row_to_json(c)::text AS t) j"
             " WHERE j.t LIKE '%%%s%%'",
             pan);
    v = scalar(sql);
    assert_string_equal(v, "0");
    free(v);

    /* status changes and refusals with a clear message */
    assert_int_equal(ctl(out, sizeof(out), "card freeze --card %lld --json", card), 0);
    assert_non_null(strstr(out, "\"status\":\"frozen\""));
    assert_int_equal(ctl(out, sizeof(out), "card unfreeze --card %lld", card), 0);
    assert_int_equal(ctl(out, sizeof(out), "card freeze --card 999999"), 1);
    assert_non_null(strstr(out, "unknown card 999999"));
    assert_int_equal(ctl(out, sizeof(out), "account load --account %lld --amount -5", acct), 1);
    assert_non_null(strstr(out, "positive number"));
    assert_int_equal(ctl(out, sizeof(out), "account load --account 999999 --amount 5"), 1);
    assert_non_null(strstr(out, "unknown account"));
    assert_int_equal(
        ctl(out, sizeof(out), "policy set --level card --id %lld --mcc-block 12x4", card), 1);
    assert_non_null(strstr(out, "MCC"));
    assert_int_equal(
        ctl(out, sizeof(out), "policy set --level card --id %lld --mcc-block nosuchgroup", card),
        1);
    assert_non_null(strstr(out, "unknown MCC group"));
    assert_int_equal(ctl(out, sizeof(out), "policy set --level card --id %lld --daily -1", card),
                     1);
    assert_non_null(strstr(out, "below zero"));
    assert_int_equal(
        ctl(out, sizeof(out),
            "policy set --level card --id %lld --daily 500 --mcc-block 7995 --ecom off --json",
            card),
        0);
    long long ver = json_int(out, "version");
    assert_int_equal(ctl(out, sizeof(out), "policy show --level card --id %lld --json", card), 0);
    assert_non_null(strstr(out, "\"daily_max\":500"));
    assert_non_null(strstr(out, "\"allow_ecom\":false"));
    assert_int_equal(ctl(out, sizeof(out),
                         "policy set --level card --id %lld --daily 100 --shadow --json", card),
                     0);
    long long shadow = json_int(out, "version");
    assert_true(shadow > ver);
    assert_int_equal(
        ctl(out, sizeof(out), "cardholder add --company 1 --name Quinn --team ops --json"), 0);
    assert_true(json_int(out, "cardholder_id") > 0);

    /* a decision through SQL with the card's real hash, then list it */
    snprintf(
        sql, sizeof(sql),
        "SELECT response_code FROM authorize_batch_json('[{\"kind\":\"auth\",\"pan_hash\":\"%s\","
        "\"acquirer_id\":\"A\",\"stan\":\"1\",\"rrn\":\"CLI1\",\"xmit_at\":\"1\","
        "\"txn_currency\":\"978\",\"txn_amount\":300,\"mcc\":\"5411\","
        "\"deadline\":\"2999-01-01T00:00:00Z\"}]')",
        hash);
    v = scalar(sql);
    assert_string_equal(v, "00");
    free(v);
    assert_int_equal(ctl(out, sizeof(out), "auth list --rrn CLI1 --json"), 0);
    assert_non_null(strstr(out, "\"response_code\":\"00\""));
    assert_int_equal(ctl(out, sizeof(out), "auth list --card %lld", card), 0);
    assert_non_null(strstr(out, "rrn: CLI1"));
    assert_int_equal(ctl(out, sizeof(out), "policy shadow-report --json"), 0);
    assert_non_null(strstr(out, "\"decisions\":1"));
    assert_non_null(strstr(out, "\"differed\":1"));
    assert_int_equal(ctl(out, sizeof(out), "policy promote --version %lld", shadow), 0);
    assert_int_equal(ctl(out, sizeof(out), "policy promote --version %lld", shadow), 1);

    /* check-ledger finds a tampered balance, with the row, and exits 1 */
    snprintf(sql, sizeof(sql), "UPDATE accounts SET balance = balance + 1 WHERE id = %lld", acct);
    exec_ok(conn, sql);
    assert_int_equal(ctl(out, sizeof(out), "check-ledger --json"), 1);
    assert_non_null(strstr(out, "\"ok\":false"));
    assert_non_null(strstr(out, "balance <> sum(entries)"));
    snprintf(sql, sizeof(sql), "UPDATE accounts SET balance = balance - 1 WHERE id = %lld", acct);
    exec_ok(conn, sql);
    memset(pan, 0, sizeof(pan));
}

/* ---- demo data: every demo card gets the answer it promises ------------- */

static void test_demo_seed(void **state)
{
    (void)state;
    char out[8192], path[340], sql[1024];
    uint8_t key[32];
    size_t len;

    truncate_all();
    snprintf(path, sizeof(path), "%s.cards.json", keyfile);
    assert_int_equal(ctl(out, sizeof(out), "demo seed --out %s", path), 0);
    assert_non_null(strstr(out, "card_id"));
    char *file = util_read_file(path, 1 << 20, &len);
    assert_non_null(file);
    unlink(path);
    assert_int_equal(util_hex_decode(TEST_KEY_HEX, key, sizeof(key)), 32);
    int n = 0;
    for (char *p = strstr(file, "{\"card_id\""); p != NULL; p = strstr(p + 1, "{\"card_id\"")) {
        char pan[32], expect[8], hash[PAN_HASH_HEX];
        char *eol = strchr(p, '\n');
        assert_non_null(eol);
        *eol = '\0';
        json_str(p, "pan", pan, sizeof(pan));
        json_str(p, "expect", expect, sizeof(expect));
        /* the simulator uses the card's amount when the file gives one */
        long long amount = strstr(p, "\"amount\":") ? json_int(p, "amount") : 1000;
        assert_int_equal(pan_hash_hex(key, sizeof(key), pan, strlen(pan), hash), 0);
        snprintf(sql, sizeof(sql),
                 "SELECT response_code FROM authorize_batch_json('[{\"kind\":\"auth\","
                 "\"pan_hash\":\"%s\",\"acquirer_id\":\"D\",\"stan\":\"%d\",\"rrn\":\"D%d\","
                 "\"xmit_at\":\"1\",\"txn_currency\":\"978\",\"txn_amount\":%lld,"
                 "\"mcc\":\"5411\",\"country\":\"DE\",\"channel\":\"chip\","
                 "\"deadline\":\"2999-01-01T00:00:00Z\"}]')",
                 hash, n, n, amount);
        char *code = scalar(sql);
        if (strcmp(code, expect) != 0)
            fail_msg("demo card %d: want %s, got %s", n, expect, code);
        free(code);
        *eol = '\n';
        p = eol;
        n++;
    }
    assert_true(n >= 10);
    free(file);
}

/* ---- setup -------------------------------------------------------------- */

static int group_setup(void **state)
{
    (void)state;
    if (pgtest_start(&pg, 0) != 0)
        return -1;
    conn = pgtest_connect(&pg);
    if (conn == NULL)
        return -1;
    snprintf(keyfile, sizeof(keyfile), "%s/pan.key", pg.dir);
    FILE *f = fopen(keyfile, "w");
    if (f == NULL)
        return -1;
    fprintf(f, "%s\n", TEST_KEY_HEX);
    fclose(f);
    setenv("CARDGATE_PAN_KEY_FILE", keyfile, 1);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    if (conn)
        PQfinish(conn);
    unlink(keyfile);
    pgtest_stop(&pg);
    return 0;
}

int main(void)
{
    size_t len, cap = 64, nsec = 0;
    struct section *secs = NULL;

    decisions = util_read_file(DECISIONS, 1 << 20, &len);
    if (decisions == NULL) {
        fprintf(stderr, "cannot read %s\n", DECISIONS);
        return 1;
    }
    lines = calloc(cap, sizeof(*lines));
    for (char *p = decisions; p && *p;) {
        char *nl = strchr(p, '\n');
        if (nl)
            *nl = '\0';
        if (nlines == cap) {
            cap *= 2;
            char **nl2 = realloc(lines, cap * sizeof(*lines));
            if (nl2 == NULL) {
                fprintf(stderr, "out of memory\n");
                free(lines);
                return 1;
            }
            lines = nl2;
        }
        lines[nlines++] = p;
        p = nl ? nl + 1 : NULL;
    }
    secs = calloc(nlines + 1, sizeof(*secs));
    for (size_t i = 0; i < nlines; i++) {
        if (strncmp(lines[i], "test ", 5) == 0) {
            if (nsec > 0)
                secs[nsec - 1].end = i;
            secs[nsec].name = lines[i] + 5;
            secs[nsec].first = i + 1;
            secs[nsec].end = nlines;
            nsec++;
        }
    }
    struct CMUnitTest *tests = calloc(nsec + 3, sizeof(*tests));
    for (size_t i = 0; i < nsec; i++)
        tests[i] = (struct CMUnitTest){secs[i].name, run_section, NULL, check_after, &secs[i]};
    tests[nsec] = (struct CMUnitTest){"sixteen_sessions_one_wallet",
                                      test_sixteen_sessions_one_wallet, NULL, check_after, NULL};
    tests[nsec + 1] =
        (struct CMUnitTest){"cli_commands", test_cli_commands, NULL, check_after, NULL};
    tests[nsec + 2] = (struct CMUnitTest){"demo_seed", test_demo_seed, NULL, check_after, NULL};
    int rc = _cmocka_run_group_tests("ledger", tests, nsec + 3, group_setup, group_teardown);
    free(tests);
    free(secs);
    free(lines);
    free(decisions);
    return rc;
}
