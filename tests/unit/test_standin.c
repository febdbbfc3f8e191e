/*
 * test_standin.c - the stand-in journal (append, sync, replay, DONE records,
 * compaction, a torn last record cut off, a failed write cut off,
 * corruption in the middle refused,
 * one process per journal, max_pending) and the per-card limit cache
 * (limit arithmetic, refresh recounting the journal, max_cards).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "daemon/standin.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[64], path[128];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/test_standin.XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(path, sizeof(path), "%s/journal", dir);
    return 0;
}

static int teardown(void **state)
{
    char p[160];
    (void)state;
    unlink(path);
    snprintf(p, sizeof(p), "%s.lock", path);
    unlink(p);
    snprintf(p, sizeof(p), "%s.tmp", path);
    unlink(p);
    return rmdir(dir);
}

/* A 64-hex PAN hash made of one repeated digit. */
static void hash_of(char out[PAN_HASH_HEX], char c)
{
    memset(out, c, PAN_HASH_HEX - 1);
    out[PAN_HASH_HEX - 1] = '\0';
}

static void rec_init(struct standin_rec *r, char card, unsigned stan, int64_t amount)
{
    memset(r, 0, sizeof(*r));
    r->amount = amount;
    r->txn_amount = amount;
    r->bill_amount = -1;
    r->deadline_wall_us = 1700000000000000LL + stan;
    snprintf(r->mti, sizeof(r->mti), "0100");
    snprintf(r->appr, sizeof(r->appr), "S%05u", stan);
    hash_of(r->pan_hash, card);
    snprintf(r->acquirer, sizeof(r->acquirer), "123456");
    snprintf(r->stan, sizeof(r->stan), "%06u", stan);
    snprintf(r->rrn, sizeof(r->rrn), "RRN%09u", stan);
    snprintf(r->xmit, sizeof(r->xmit), "1122%06u", stan);
    snprintf(r->local_at, sizeof(r->local_at), "1122101010");
    snprintf(r->terminal, sizeof(r->terminal), "TERM0001");
    snprintf(r->merchant, sizeof(r->merchant), "MERCHANT0000001");
    /* Latin-1 byte and a quote: stored as bytes */
    snprintf(r->merchant_name, sizeof(r->merchant_name), "Caf\xe9 \"Zur Post\"    Berlin    DE");
    snprintf(r->mcc, sizeof(r->mcc), "5411");
    snprintf(r->country, sizeof(r->country), "276");
    snprintf(r->txn_cur, sizeof(r->txn_cur), "978");
    snprintf(r->channel, sizeof(r->channel), "contactless");
}

static struct standin_journal *open_ok(size_t max_pending)
{
    struct standin_journal *j = NULL;
    char err[512];
    if (sj_open(path, max_pending, &j, err, sizeof(err)) != 0)
        fail_msg("sj_open: %s", err);
    return j;
}

static off_t file_size(void)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return st.st_size;
}

static void test_crc32(void **state)
{
    (void)state;
    assert_int_equal(standin_crc32("123456789", 9), 0xcbf43926u);
    assert_int_equal(standin_crc32("", 0), 0);
}

static void test_append_replay(void **state)
{
    (void)state;
    struct standin_journal *j = open_ok(16);
    struct standin_rec r[3];

    assert_int_equal(sj_npending(j), 0);
    for (unsigned i = 0; i < 3; i++) {
        rec_init(&r[i], 'a', 100 + i, 1000 + i);
        assert_int_equal(sj_append(j, &r[i]), 0);
        assert_int_equal(r[i].seq, i + 1);
    }
    assert_int_equal(sj_sync(j), 0);
    assert_int_equal(sj_sync(j), 0); /* nothing new: no-op */
    sj_close(j);

    j = open_ok(16);
    assert_int_equal(sj_npending(j), 3);
    assert_int_equal(sj_torn(j), 0);
    for (unsigned i = 0; i < 3; i++)
        assert_memory_equal(sj_pending(j, i), &r[i], sizeof(r[i]));
    assert_null(sj_pending(j, 3));
    /* seqs go on after a replay */
    struct standin_rec r4;
    rec_init(&r4, 'b', 200, 5);
    assert_int_equal(sj_append(j, &r4), 0);
    assert_int_equal(r4.seq, 4);
    assert_non_null(sj_find(j, 4));
    assert_null(sj_find(j, 99));
    sj_close(j);
}

static void test_done_and_compaction(void **state)
{
    (void)state;
    struct standin_journal *j = open_ok(16);
    struct standin_rec r;

    for (unsigned i = 0; i < 4; i++) {
        rec_init(&r, 'c', 300 + i, 10);
        assert_int_equal(sj_append(j, &r), 0);
    }
    assert_int_equal(sj_done(j, 2), 0);
    assert_int_equal(sj_done(j, 2), 1); /* not pending any more */
    assert_int_equal(sj_done(j, 4), 0);
    assert_int_equal(sj_nrecords(j), 6);
    assert_int_equal(sj_sync(j), 0);
    sj_close(j);

    j = open_ok(16);
    assert_int_equal(sj_npending(j), 2);
    assert_int_equal(sj_pending(j, 0)->seq, 1);
    assert_int_equal(sj_pending(j, 1)->seq, 3);
    off_t before = file_size();
    assert_int_equal(sj_compact(j), 0);
    assert_true(file_size() < before);
    assert_int_equal(sj_nrecords(j), 2);
    /* appends after a compaction go to the new file */
    rec_init(&r, 'c', 399, 7);
    assert_int_equal(sj_append(j, &r), 0);
    assert_int_equal(r.seq, 5);
    sj_close(j);

    j = open_ok(16);
    assert_int_equal(sj_npending(j), 3);
    assert_int_equal(sj_pending(j, 2)->seq, 5);
    assert_string_equal(sj_pending(j, 2)->stan, "000399");
    for (uint64_t s = 1; s <= 5; s++)
        assert_int_equal(sj_done(j, s), s == 2 || s == 4 ? 1 : 0);
    assert_int_equal(sj_npending(j), 0);
    assert_int_equal(sj_compact(j), 0);
    assert_int_equal(file_size(), 0);
    sj_close(j);
    j = open_ok(16);
    assert_int_equal(sj_npending(j), 0);
    sj_close(j);
}

/* A crash in the middle of an append: the torn record is cut off. */
static void test_torn_last_record(void **state)
{
    (void)state;
    struct standin_journal *j = open_ok(16);
    struct standin_rec r;

    rec_init(&r, 'd', 500, 42);
    assert_int_equal(sj_append(j, &r), 0);
    off_t one = file_size();
    rec_init(&r, 'd', 501, 43);
    assert_int_equal(sj_append(j, &r), 0);
    assert_int_equal(sj_sync(j), 0);
    sj_close(j);
    assert_int_equal(truncate(path, file_size() - 5), 0);

    j = open_ok(16);
    assert_int_equal(sj_torn(j), 1);
    assert_int_equal(sj_npending(j), 1);
    assert_string_equal(sj_pending(j, 0)->stan, "000500");
    assert_int_equal(file_size(), one);
    sj_close(j);

    /* a few stray bytes of a header, and a full-length record with a bad CRC */
    int fd = open(path, O_WRONLY | O_APPEND);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "CGS", 3), 3);
    close(fd);
    j = open_ok(16);
    assert_int_equal(sj_torn(j), 1);
    assert_int_equal(file_size(), one);
    rec_init(&r, 'd', 502, 44);
    assert_int_equal(sj_append(j, &r), 0);
    sj_close(j);
    fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    uint8_t b;
    assert_int_equal(pread(fd, &b, 1, file_size() - 1), 1);
    b ^= 0xff;
    assert_int_equal(pwrite(fd, &b, 1, file_size() - 1), 1);
    close(fd);
    j = open_ok(16);
    assert_int_equal(sj_torn(j), 1);
    assert_int_equal(sj_npending(j), 1);
    sj_close(j);
}

/*
 * A write that fails half way (the file size limit here; a full disk in
 * life) is cut off again: the next record follows the last whole one, and
 * the journal replays.
 */
static void test_failed_write_cut_off(void **state)
{
    (void)state;
    struct standin_journal *j = open_ok(16);
    struct standin_rec r;
    struct rlimit old, lim;

    rec_init(&r, 'g', 900, 10);
    assert_int_equal(sj_append(j, &r), 0);
    off_t one = file_size();
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    lim = old;
    lim.rlim_cur = (rlim_t)one + 100;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    rec_init(&r, 'g', 901, 10);
    int rc = sj_append(j, &r);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, prev);
    assert_int_equal(rc, -1);
    assert_int_equal(sj_npending(j), 1);
    assert_int_equal(file_size(), one);
    rec_init(&r, 'g', 902, 10);
    assert_int_equal(sj_append(j, &r), 0);
    sj_close(j);
    j = open_ok(16);
    assert_int_equal(sj_torn(j), 0);
    assert_int_equal(sj_npending(j), 2);
    assert_string_equal(sj_pending(j, 1)->stan, "000902");
    sj_close(j);
}

/* A bad record with valid ones after it is not a torn tail: refused. */
static void test_corrupt_middle_refused(void **state)
{
    (void)state;
    struct standin_journal *j = open_ok(16);
    struct standin_rec r;
    char err[512];

    for (unsigned i = 0; i < 3; i++) {
        rec_init(&r, 'e', 600 + i, 10);
        assert_int_equal(sj_append(j, &r), 0);
    }
    sj_close(j);
    int fd = open(path, O_RDWR);
    uint8_t b;
    assert_int_equal(pread(fd, &b, 1, 20), 1);
    b ^= 0x01;
    assert_int_equal(pwrite(fd, &b, 1, 20), 1);
    close(fd);
    off_t size = file_size();
    j = NULL;
    assert_int_equal(sj_open(path, 16, &j, err, sizeof(err)), -1);
    assert_null(j);
    assert_non_null(strstr(err, "corrupt record at offset 0"));
    assert_int_equal(file_size(), size); /* nothing cut */
}

/* One process per journal: a second open (another process) is refused. */
static void test_lock(void **state)
{
    (void)state;
    struct standin_journal *j = open_ok(16);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct standin_journal *j2 = NULL;
        char err[512];
        int rc = sj_open(path, 16, &j2, err, sizeof(err));
        _exit(rc == -1 && strstr(err, "in use by another process") != NULL ? 0 : 1);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    sj_close(j);
    j = open_ok(16); /* free again */
    sj_close(j);
}

static void test_max_pending(void **state)
{
    (void)state;
    struct standin_journal *j = open_ok(2);
    struct standin_rec r;
    char err[512];

    rec_init(&r, 'f', 700, 1);
    assert_int_equal(sj_append(j, &r), 0);
    assert_int_equal(sj_append(j, &r), 0);
    assert_int_equal(sj_append(j, &r), -1);
    r.amount = 0;
    assert_int_equal(sj_done(j, 1), 0);
    assert_int_equal(sj_append(j, &r), -1); /* no amount: nothing to journal */
    sj_close(j);
    j = open_ok(16);
    assert_int_equal(sj_npending(j), 1);
    sj_close(j);
    /* more pending than max_pending at replay: an error, not a silent loss */
    j = open_ok(16);
    rec_init(&r, 'f', 701, 1);
    assert_int_equal(sj_append(j, &r), 0);
    sj_close(j);
    j = NULL;
    assert_int_equal(sj_open(path, 1, &j, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "max_pending"));
}

static void test_limits(void **state)
{
    (void)state;
    struct standin_cache *c = standin_cache_new(3);
    char a[PAN_HASH_HEX], b[PAN_HASH_HEX], z[PAN_HASH_HEX], d[PAN_HASH_HEX];

    hash_of(a, 'a');
    hash_of(b, 'b');
    hash_of(z, '0');
    hash_of(d, 'd');
    assert_non_null(c);
    assert_false(standin_cache_loaded(c));
    assert_int_equal(standin_cache_take(c, a, 1), -1); /* nothing loaded: cold start */
    standin_cache_begin(c);
    assert_int_equal(standin_cache_add(c, b, 3000, "2611"), 0);
    assert_int_equal(standin_cache_add(c, a, 5000, "9912"), 0);
    assert_int_equal(standin_cache_add(c, "abc", 1, "9912"), -1);
    assert_int_equal(standin_cache_add(c, z, 1, "9913"), -1); /* month 13 */
    assert_int_equal(standin_cache_add(c, z, 1, ""), -1);
    assert_int_equal(standin_cache_add(c, z, -1, "9912"), -1);
    assert_int_equal(standin_cache_add(c, z, INT64_MAX, "9912"), 0);
    assert_int_equal(standin_cache_add(c, d, 10, "9912"), 1); /* max_cards */
    /* the old (empty) generation serves until the commit */
    assert_int_equal(standin_cache_take(c, a, 1), -1);
    standin_cache_commit(c, NULL);
    assert_true(standin_cache_loaded(c));
    assert_int_equal(standin_cache_size(c), 3);

    /* expiry as the database checks it: not before this month, field 14 the card's */
    assert_true(standin_cache_expiry_ok(c, b, "2611", "2611"));
    assert_true(standin_cache_expiry_ok(c, b, NULL, "2610"));
    assert_true(standin_cache_expiry_ok(c, b, "", "2611"));
    assert_false(standin_cache_expiry_ok(c, b, "2611", "2612")); /* expired */
    assert_false(standin_cache_expiry_ok(c, b, NULL, "2701"));
    assert_false(standin_cache_expiry_ok(c, b, "2612", "2611")); /* not the card's */
    assert_false(standin_cache_expiry_ok(c, d, NULL, "2611"));   /* not in the cache */

    assert_int_equal(standin_cache_remaining(c, a), 5000);
    assert_int_equal(standin_cache_take(c, a, 2000), 0);
    assert_int_equal(standin_cache_take(c, a, 3000), 0); /* exactly up to the limit */
    assert_int_equal(standin_cache_take(c, a, 1), -2);
    assert_int_equal(standin_cache_remaining(c, a), 0);
    assert_int_equal(standin_cache_take(c, b, 3001), -2);
    assert_int_equal(standin_cache_take(c, b, 0), -2);
    assert_int_equal(standin_cache_take(c, b, -5), -2);
    assert_int_equal(standin_cache_take(c, d, 1), -1);
    assert_int_equal(standin_cache_take(c, z, INT64_MAX - 1), 0);
    assert_int_equal(standin_cache_take(c, z, 2), -2); /* no overflow */
    assert_int_equal(standin_cache_take(c, z, 1), 0);
    standin_cache_give(c, a, 2000);
    assert_int_equal(standin_cache_remaining(c, a), 2000);
    standin_cache_give(c, a, 999999); /* never below zero used */
    assert_int_equal(standin_cache_remaining(c, a), 5000);
    assert_int_equal(standin_cache_remaining(c, d), -1);

    /* a refresh counts what the journal still holds unsettled */
    struct standin_journal *j = open_ok(16);
    struct standin_rec r;
    rec_init(&r, 'b', 800, 1200);
    assert_int_equal(sj_append(j, &r), 0);
    rec_init(&r, 'b', 801, 800);
    assert_int_equal(sj_append(j, &r), 0);
    rec_init(&r, 'd', 802, 5);
    assert_int_equal(sj_append(j, &r), 0);
    standin_cache_begin(c);
    assert_int_equal(standin_cache_add(c, b, 3000, "9912"), 0);
    assert_int_equal(standin_cache_add(c, d, 100, "9912"), 0);
    standin_cache_commit(c, j);
    assert_int_equal(standin_cache_size(c), 2);
    assert_int_equal(standin_cache_remaining(c, b), 1000);
    assert_int_equal(standin_cache_remaining(c, d), 95);
    assert_int_equal(standin_cache_remaining(c, a), -1); /* gone from the database's list */
    assert_int_equal(standin_cache_take(c, b, 1001), -2);
    assert_int_equal(standin_cache_take(c, b, 1000), 0);
    sj_close(j);
    standin_cache_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32),
        cmocka_unit_test_setup_teardown(test_append_replay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_done_and_compaction, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_last_record, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_write_cut_off, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_middle_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_max_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_limits, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
