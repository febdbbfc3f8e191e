/*
 * test_audit_cli.c - `cardgatectl audit verify|dump|find` run as a program
 * against logs written through daemon/audit.h: output lines and exit
 * statuses (0 good, 1 bad log or failed operation, 2 usage).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "crypto/keystore.h"
#include "tests/lib/audittest.h"
#include "tests/lib/capture.h"
#include "tests/lib/pgtest.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NTX    120
#define OUTCAP (1 << 20)

struct fixture {
    char dir[4096];   /* scratch */
    char log[4200];   /* the log */
    char pem[4200];   /* its public key, PEM */
    char hex[4200];   /* the same, hex */
    char other[4200]; /* another key's PEM */
    char prog[256];
    char *out;
    EVP_PKEY *key;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    audittest_mkdtemp(f->dir, sizeof(f->dir));
    snprintf(f->log, sizeof(f->log), "%s/log", f->dir);
    snprintf(f->pem, sizeof(f->pem), "%s/audit.pub", f->dir);
    snprintf(f->hex, sizeof(f->hex), "%s/audit.hex", f->dir);
    snprintf(f->other, sizeof(f->other), "%s/other.pub", f->dir);
    pgtest_prog("cardgatectl", f->prog, sizeof(f->prog));
    f->out = malloc(OUTCAP);
    assert_non_null(f->out);
    f->key = audittest_keygen();
    audittest_write_pubkey(f->key, f->pem, false);
    audittest_write_pubkey(f->key, f->hex, true);
    EVP_PKEY *o = audittest_keygen();
    audittest_write_pubkey(o, f->other, false);
    EVP_PKEY_free(o);
    audittest_write_log(f->log, NTX, 64 << 10, f->key);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    audittest_rmdir(f->dir);
    EVP_PKEY_free(f->key);
    free(f->out);
    free(f);
    return 0;
}

/* Run "cardgatectl audit ARGS" (ARGS printf-style); output in f->out. */
static int ctl(struct fixture *f, const char *redirect, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int ctl(struct fixture *f, const char *redirect, const char *fmt, ...)
{
    char args[8192], cmd[9000];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof(args), fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof(cmd), "%s audit %s %s", f->prog, args, redirect);
    return test_capture(cmd, f->out, OUTCAP);
}

static void test_verify_ok(void **state)
{
    struct fixture *f = *state;
    struct audit_verify v;
    char want[512], head[65];

    memset(&v, 0, sizeof(v));
    v.pubkeys[v.npubkeys++] = f->key;
    assert_int_equal(audit_walk(f->log, &v, NULL, NULL), 0);
    for (int i = 0; i < AUDIT_HASH_LEN; i++)
        snprintf(head + 2 * i, 3, "%02x", v.head[i]);
    snprintf(want, sizeof(want),
             "audit ok: %u segments, %" PRIu64 " records (seq 1..%" PRIu64 "), %" PRIu64
             " checkpoints, %" PRIu64 " signatures verified, ends with a checkpoint, head %s\n",
             v.segments, v.records, v.last_seq, v.checkpoints, v.checkpoints, head);
    assert_true(v.segments >= 2);

    assert_int_equal(ctl(f, "2>&1", "verify --dir %s --pubkey %s", f->log, f->pem), 0);
    assert_string_equal(f->out, want);
    assert_int_equal(ctl(f, "2>&1", "verify --dir %s --pubkey %s", f->log, f->hex), 0);
    assert_string_equal(f->out, want);
    assert_int_equal(ctl(f, "2>&1", "verify --dir %s", f->log), 0);
    assert_non_null(strstr(f->out, "signatures not checked (no --pubkey)"));
    assert_int_equal(test_lines(f->out), 1);
}

static void test_verify_bad(void **state)
{
    struct fixture *f = *state;
    char p[4200], want[512];
    size_t len, off, rl;

    /* the right log with another key */
    assert_int_equal(ctl(f, "2>&1", "verify --dir %s --pubkey %s", f->log, f->other), 1);
    assert_non_null(strstr(f->out, "checkpoint is signed by another key\n"));
    assert_true(strncmp(f->out, "audit BAD: segment 00000000000000000001.cgaudit offset ", 55) ==
                0);

    /* a flipped byte in record 20 is named at record 21 */
    audittest_nth_seg(f->log, 0, p, sizeof(p));
    uint8_t *b = audittest_read(p, &len);
    audittest_find_rec(b, len, 21, &off, &rl);
    size_t off20, rl20;
    audittest_find_rec(b, len, 20, &off20, &rl20);
    b[off20 + rl20 - 1] ^= 1;
    audittest_write(p, b, len);
    snprintf(want, sizeof(want),
             "audit BAD: segment 00000000000000000001.cgaudit offset %zu seq 21: hash chain "
             "broken: prev does not match record 20 (altered or replaced)\n",
             off);
    assert_int_equal(ctl(f, "2>&1", "verify --dir %s --pubkey %s", f->log, f->pem), 1);
    assert_string_equal(f->out, want);

    /* dump prints the good records, then the same line, and fails */
    assert_int_equal(ctl(f, "2>/dev/null", "dump --dir %s", f->log), 1);
    assert_int_equal(test_lines(f->out), 21);
    assert_non_null(strstr(f->out, want));

    /* several keys may be given (rotation): any of them may have signed */
    assert_int_equal(
        ctl(f, "2>&1", "verify --dir %s --pubkey %s --pubkey %s", f->log, f->other, f->pem), 1);
    assert_string_equal(f->out, want);

    /* put it back: good again */
    b[off20 + rl20 - 1] ^= 1;
    audittest_write(p, b, len);
    free(b);
    assert_int_equal(ctl(f, "2>&1", "verify --dir %s --pubkey %s", f->log, f->pem), 0);
    assert_int_equal(
        ctl(f, "2>&1", "verify --dir %s --pubkey %s --pubkey %s", f->log, f->other, f->pem), 0);

    /* a key file that is not a key is a usage/configuration problem */
    assert_int_equal(ctl(f, "2>&1", "verify --dir %s --pubkey %s/log", f->log, f->dir), 2);
    /* a directory without segments is a failure */
    assert_int_equal(ctl(f, "2>&1", "verify --dir %s", f->dir), 1);
    assert_non_null(strstr(f->out, "no audit segments"));
}

static void test_dump(void **state)
{
    struct fixture *f = *state;
    struct audit_verify v;
    memset(&v, 0, sizeof(v));
    assert_int_equal(audit_walk(f->log, &v, NULL, NULL), 0);

    assert_int_equal(ctl(f, "2>&1", "dump --dir %s", f->log), 0);
    assert_int_equal(test_lines(f->out), v.records);
    assert_true(strncmp(f->out, "seq=1 ts=", 9) == 0);
    assert_non_null(strstr(f->out, " type=segment v=1\n"));

    /* transaction 0: request seq 3, answer seq 4 (declined: 51) */
    assert_int_equal(ctl(f, "2>&1", "dump --dir %s --from 3 --to 4", f->log), 0);
    assert_int_equal(test_lines(f->out), 2);
    char *l2 = strchr(f->out, '\n') + 1;
    assert_true(strncmp(f->out, "seq=3 ts=", 9) == 0);
    assert_non_null(strstr(f->out, " type=request mti=0100 pan=411111******1111 stan=000000 "
                                   "rrn=632700000000 acquirer=123456 terminal=TERM0000 "
                                   "merchant=MERCHANT0000042 mcc=5411 amount=1000 currency=978 "
                                   "link=visa#1 standin=false\n"));
    assert_true(strncmp(l2, "seq=4 ts=", 9) == 0);
    assert_non_null(strstr(l2, " rc=51 rule=insufficient_funds policy=7 latency_us=900 "));

    assert_int_equal(ctl(f, "2>&1", "dump --dir %s --from 4 --to 4 --json", f->log), 0);
    assert_int_equal(test_lines(f->out), 1);
    assert_true(strncmp(f->out, "{\"seq\":4,\"ts\":\"", 15) == 0);
    assert_non_null(strstr(f->out, "\"type\":\"answer\",\"segment\":\"00000000000000000001."
                                   "cgaudit\",\"offset\":"));
    assert_non_null(strstr(f->out, ",\"mti\":\"0110\",\"pan\":\"411111******1111\","));
    assert_non_null(strstr(f->out, ",\"rc\":\"51\",\"rule\":\"insufficient_funds\",\"policy\":7,"));
    assert_non_null(strstr(f->out, ",\"standin\":false}\n"));

    /* a checkpoint in JSON carries its full signature as hex */
    assert_int_equal(ctl(f, "2>&1", "dump --dir %s --json --from %" PRIu64, f->log, v.last_seq), 0);
    assert_non_null(strstr(f->out, "\"type\":\"checkpoint\""));
    assert_non_null(strstr(f->out, "\"why\":\"shutdown\""));
    char *sig = strstr(f->out, "\"sig\":\"");
    assert_non_null(sig);
    assert_int_equal(strspn(sig + 7, "0123456789abcdef"), 128); /* Ed25519: 64 bytes */

    assert_int_equal(ctl(f, "2>&1", "dump --dir %s --from x", f->log), 2);
    assert_int_equal(ctl(f, "2>&1", "dump --dir %s --rrn 1", f->log), 2);
    assert_int_equal(ctl(f, "2>&1", "dump"), 2);
    assert_int_equal(ctl(f, "2>&1", "dump --dir %s/nonexistent", f->dir), 1);
}

static void test_find(void **state)
{
    struct fixture *f = *state;
    char t[64];

    assert_int_equal(ctl(f, "2>&1", "find --dir %s --rrn 632700000005", f->log), 0);
    assert_int_equal(test_lines(f->out), 3);
    assert_non_null(strstr(f->out, "type=request mti=0100"));
    assert_non_null(strstr(f->out, "type=answer mti=0110"));
    assert_non_null(strstr(f->out, "\n2 records match\n"));

    assert_int_equal(ctl(f, "2>/dev/null", "find --dir %s --stan 000005 --type answer", f->log), 0);
    assert_int_equal(test_lines(f->out), 1);
    assert_non_null(strstr(f->out, " rc=00 approval=A00005 "));

    assert_int_equal(ctl(f, "2>/dev/null", "find --dir %s --pan-last4 1111", f->log), 0);
    assert_int_equal(test_lines(f->out), 2 * NTX);
    assert_int_equal(ctl(f, "2>&1", "find --dir %s --pan-last4 0004", f->log), 0);
    assert_string_equal(f->out, "0 records match\n");

    assert_int_equal(ctl(f, "2>/dev/null", "find --dir %s --type checkpoint --json", f->log), 0);
    assert_true(test_lines(f->out) >= 2);

    /* time windows */
    assert_int_equal(
        ctl(f, "2>/dev/null", "find --dir %s --since 2000-01-01 --type daemon", f->log), 0);
    assert_int_equal(test_lines(f->out), 2); /* start and stop */
    snprintf(t, sizeof(t), "@%lld", (long long)time(NULL) + 3600);
    assert_int_equal(ctl(f, "2>&1", "find --dir %s --since %s", f->log, t), 0);
    assert_string_equal(f->out, "0 records match\n");
    assert_int_equal(ctl(f, "2>&1", "find --dir %s --until 2000-01-01T00:00:00Z", f->log), 0);
    assert_string_equal(f->out, "0 records match\n");

    assert_int_equal(ctl(f, "2>&1", "find --dir %s --type bogus", f->log), 2);
    assert_int_equal(ctl(f, "2>&1", "find --dir %s --pan-last4 12345", f->log), 2);
    assert_int_equal(ctl(f, "2>&1", "find --dir %s --since yesterday", f->log), 2);
    assert_int_equal(ctl(f, "2>&1", "find --dir %s --from 1", f->log), 2);
}

static void test_usage(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(ctl(f, "2>&1", "%s", ""), 2);
    assert_non_null(strstr(f->out, "usage: cardgatectl audit verify|dump|find|pubkey"));
    assert_int_equal(ctl(f, "2>&1", "frobnicate"), 2);
    assert_int_equal(ctl(f, "2>&1", "verify"), 2);
    assert_int_equal(ctl(f, "2>&1", "verify --dir %s extra", f->log), 2);
    assert_int_equal(ctl(f, "2>&1", "verify --help"), 0);
    assert_non_null(strstr(f->out, "usage: cardgatectl audit verify --dir DIR [--pubkey FILE]..."));
}

/*
 * The key store's audit-sign key signs the log; `audit pubkey` exports the
 * public half an auditor verifies with.
 */
static void test_keystore_key(void **state)
{
    struct fixture *f = *state;
    char mkf[4200], store[4200], pub[4200], klog[4200], err[512];
    uint8_t mk[KS_MASTER_LEN];

    snprintf(mkf, sizeof(mkf), "%s/master", f->dir);
    snprintf(store, sizeof(store), "%s/keys", f->dir);
    snprintf(pub, sizeof(pub), "%s/ks.pub", f->dir);
    snprintf(klog, sizeof(klog), "%s/klog", f->dir);
    char cmd[9000];
    snprintf(cmd, sizeof(cmd), "%s key init-master --master %s 2>&1", f->prog, mkf);
    assert_int_equal(test_capture(cmd, f->out, OUTCAP), 0);
    snprintf(cmd, sizeof(cmd),
             "%s key generate --store %s --master %s --name ph --type pan-hash 2>&1", f->prog,
             store, mkf);
    assert_int_equal(test_capture(cmd, f->out, OUTCAP), 0);

    /* no audit-sign key yet */
    assert_int_equal(ctl(f, "2>&1", "pubkey --store %s --master %s", store, mkf), 1);
    assert_non_null(strstr(f->out, "no audit-sign key"));

    snprintf(cmd, sizeof(cmd),
             "%s key generate --store %s --master %s --name audit1 --type audit-sign 2>&1", f->prog,
             store, mkf);
    assert_int_equal(test_capture(cmd, f->out, OUTCAP), 0);
    assert_int_equal(ctl(f, "2>&1", "pubkey --store %s --master %s", store, mkf), 0);
    assert_true(strncmp(f->out, "-----BEGIN PUBLIC KEY-----\n", 27) == 0);
    FILE *fp = fopen(pub, "w");
    assert_non_null(fp);
    fputs(f->out, fp);
    fclose(fp);
    assert_int_equal(ctl(f, "2>&1", "pubkey --store %s --master %s --hex", store, mkf), 0);
    assert_int_equal(strlen(f->out), 65);
    assert_int_equal(strspn(f->out, "0123456789abcdef"), 64);

    /* the daemon's side: the key from the store signs a log */
    assert_int_equal(ks_master_load(mkf, mk, err, sizeof(err)), 0);
    struct keyset *ks = keyset_load(store, mk, err, sizeof(err));
    assert_non_null(ks);
    EVP_PKEY *k = audit_signing_key(ks, err, sizeof(err));
    assert_non_null(k);
    keyset_unref(ks);
    audittest_write_log(klog, 10, 64 << 10, k);
    EVP_PKEY_free(k);
    assert_int_equal(ctl(f, "2>&1", "verify --dir %s --pubkey %s", klog, pub), 0);
    assert_non_null(strstr(f->out, " 1 signatures verified"));
    assert_int_equal(ctl(f, "2>&1", "verify --dir %s --pubkey %s", klog, f->pem), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_verify_ok, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_bad, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dump, setup, teardown),
        cmocka_unit_test_setup_teardown(test_find, setup, teardown),
        cmocka_unit_test_setup_teardown(test_usage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keystore_key, setup, teardown),
    };
    return cmocka_run_group_tests_name("audit_cli", tests, NULL, NULL);
}
