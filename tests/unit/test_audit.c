/*
 * test_audit.c - the audit log (daemon/audit.h): every record type written
 * and read back, the chain across segment rotation, the verifier against a
 * table of tampering cases, torn-tail recovery, the fsync policy, and that a
 * clear PAN never reaches a segment file.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "tests/lib/audittest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SEG_SMALL (64u << 10) /* a few hundred records per segment */

struct fixture {
    char dir[4096];
    EVP_PKEY *key;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    audittest_mkdtemp(f->dir, sizeof(f->dir));
    f->key = audittest_keygen();
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    audittest_rmdir(f->dir);
    EVP_PKEY_free(f->key);
    free(f);
    return 0;
}

static struct audit_writer *open_writer(const char *dir, EVP_PKEY *key, enum audit_sync sync)
{
    struct audit_writer_conf c = {.dir = dir, .segment_size = SEG_SMALL, .sync = sync};
    struct audit_writer *w = NULL;
    assert_int_equal(audit_writer_open(&c, key, &w), 0);
    assert_non_null(w);
    return w;
}

/* Collects what the walk saw. */
#define MAX_SEEN 4096
struct seen {
    unsigned n;
    int type[MAX_SEEN];
    uint64_t seq[MAX_SEEN];
    char text[MAX_SEEN][160]; /* a few fields as "k=v;" */
};

static int collect(const struct audit_rec *r, void *arg)
{
    struct seen *s = arg;
    static const char *const keys[] = {"mti",    "pan",    "stan", "rrn", "rc",     "rule", "event",
                                       "result", "reason", "key",  "kcv", "action", "why",  "link"};
    if (s->n >= MAX_SEEN)
        return 0;
    s->type[s->n] = r->type;
    s->seq[s->n] = r->seq;
    char *t = s->text[s->n];
    t[0] = '\0';
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        char v[64];
        if (audit_rec_str(r, keys[i], v, sizeof(v)))
            snprintf(t + strlen(t), 160 - strlen(t), "%s=%s;", keys[i], v);
    }
    const msgpack_object *o = audit_rec_field(r, "amount");
    if (o != NULL)
        snprintf(t + strlen(t), 160 - strlen(t), "amount=%lld;", (long long)o->via.i64);
    o = audit_rec_field(r, "standin");
    if (o != NULL && o->type == MSGPACK_OBJECT_BOOLEAN && o->via.boolean)
        snprintf(t + strlen(t), 160 - strlen(t), "standin;");
    s->n++;
    return 0;
}

static int walk(const char *dir, EVP_PKEY *pub, struct audit_verify *v, struct seen *s)
{
    memset(v, 0, sizeof(*v));
    v->pubkey = pub;
    return audit_walk(dir, v, s != NULL ? collect : NULL, s);
}

/* Every record type goes in and comes back with its fields. */
static void test_roundtrip_every_type(void **state)
{
    struct fixture *f = *state;
    struct audit_writer *w = open_writer(f->dir, f->key, AUDIT_SYNC_BATCH);
    struct audit_tx tx;
    struct audit_verify v;
    struct seen *s = calloc(1, sizeof(*s));

    assert_non_null(s);
    assert_int_equal(audit_daemon(w, AUDIT_DAEMON_START, "version 1"), 0);
    assert_int_equal(audit_link(w, "visa#1", "10.0.0.1:4000", AUDIT_LINK_CONNECT, NULL), 0);
    assert_int_equal(audit_link(w, "visa#1", NULL, AUDIT_LINK_SIGNON, NULL), 0);
    audittest_tx(&tx, 7, "4111111111111111");
    assert_int_equal(audit_request(w, &tx), 0);
    snprintf(tx.mti, sizeof(tx.mti), "0110");
    snprintf(tx.response_code, sizeof(tx.response_code), "00");
    snprintf(tx.approval_code, sizeof(tx.approval_code), "123456");
    snprintf(tx.rule, sizeof(tx.rule), "standin_limit");
    tx.standin = true;
    assert_int_equal(audit_answer(w, &tx), 0);
    assert_int_equal(audit_reload(w, true, NULL), 0);
    assert_int_equal(audit_reload(w, false, "cardgated.conf:4: unknown key"), 0);
    assert_int_equal(audit_key_change(w, "zpk.visa", "A1B2C3"), 0);
    assert_int_equal(audit_operator(w, "alice", "card block", "card 17"), 0);
    assert_int_equal(audit_link(w, "visa#1", NULL, AUDIT_LINK_SIGNOFF, NULL), 0);
    assert_int_equal(audit_link(w, "visa#1", NULL, AUDIT_LINK_CLOSE, "idle timeout"), 0);
    assert_int_equal(audit_checkpoint(w, "manual"), 0);
    assert_int_equal(audit_daemon(w, AUDIT_DAEMON_STOP, NULL), 0);
    assert_int_equal(audit_flush(w), 0);
    assert_int_equal(audit_next_seq(w), 15);
    assert_int_equal(audit_writer_close(w), 0);

    assert_int_equal(walk(f->dir, f->key, &v, s), 0);
    static const struct {
        int type;
        const char *text;
    } want[] = {
        {AUDIT_SEGMENT, ""},
        {AUDIT_DAEMON, "event=start;"},
        {AUDIT_LINK, "event=connect;link=visa#1;"},
        {AUDIT_LINK, "event=signon;link=visa#1;"},
        {AUDIT_REQUEST,
         "mti=0100;pan=411111******1111;stan=000007;rrn=632700000007;link=visa#1;amount=1007;"},
        {AUDIT_ANSWER, "mti=0110;pan=411111******1111;stan=000007;rrn=632700000007;rc=00;"
                       "rule=standin_limit;link=visa#1;amount=1007;standin;"},
        {AUDIT_RELOAD, "result=ok;"},
        {AUDIT_RELOAD, "result=refused;reason=cardgated.conf:4: unknown key;"},
        {AUDIT_KEY_CHANGE, "key=zpk.visa;kcv=A1B2C3;"},
        {AUDIT_OPERATOR, "action=card block;"},
        {AUDIT_LINK, "event=signoff;link=visa#1;"},
        {AUDIT_LINK, "event=close;reason=idle timeout;link=visa#1;"},
        {AUDIT_CHECKPOINT, "why=manual;"},
        {AUDIT_DAEMON, "event=stop;"},
        {AUDIT_CHECKPOINT, "why=shutdown;"},
    };
    assert_int_equal(s->n, sizeof(want) / sizeof(want[0]));
    for (unsigned i = 0; i < s->n; i++) {
        assert_int_equal(s->seq[i], i + 1);
        assert_int_equal(s->type[i], want[i].type);
        assert_string_equal(s->text[i], want[i].text);
    }
    assert_int_equal(v.checkpoints, 2);
    assert_int_equal(v.signatures_ok, 2);
    assert_int_equal(v.last_checkpoint_seq, 15);
    assert_int_equal(v.segments, 1);

    /* the record type names round trip too */
    for (int t = 1; t <= AUDIT_TYPE_MAX; t++)
        assert_int_equal(audit_type_parse(audit_type_name(t)), t);
    assert_int_equal(audit_type_parse("nonsense"), -1);
    free(s);
}

/* Rotation: several segments, each opened by a header, closed by a checkpoint; one chain. */
static void test_rotation_chain(void **state)
{
    struct fixture *f = *state;
    struct audit_verify v;
    struct seen *s = calloc(1, sizeof(*s));
    uint64_t *segs = NULL;

    assert_non_null(s);
    audittest_write_log(f->dir, 1000, SEG_SMALL, f->key);
    long n = audit_list_segments(f->dir, &segs);
    assert_true(n >= 3);
    assert_int_equal(walk(f->dir, f->key, &v, s), 0);
    assert_int_equal(v.segments, (unsigned)n);
    assert_int_equal(v.records, s->n);
    assert_int_equal(v.first_seq, 1);
    assert_int_equal(v.last_seq, s->n);
    assert_int_equal(v.signatures_ok, v.checkpoints);
    assert_int_equal(v.checkpoints, (uint64_t)n); /* one per rotation + shutdown */
    for (long i = 1; i < n; i++) {
        unsigned at = (unsigned)(segs[i] - 1); /* index of the header */
        assert_int_equal(s->type[at], AUDIT_SEGMENT);
        assert_int_equal(s->type[at - 1], AUDIT_CHECKPOINT);
        assert_string_equal(s->text[at - 1], "why=segment;");
    }
    /* every segment stays within its size */
    for (long i = 0; i < n; i++) {
        char p[4200];
        size_t len;
        audittest_seg_path(f->dir, segs[i], p, sizeof(p));
        free(audittest_read(p, &len));
        assert_true(len <= SEG_SMALL);
    }
    /* reopening continues the chain in the last segment */
    struct audit_writer *w = open_writer(f->dir, f->key, AUDIT_SYNC_NONE);
    assert_int_equal(audit_next_seq(w), v.last_seq + 1);
    assert_int_equal(audit_operator(w, "bob", "reopen", NULL), 0);
    assert_int_equal(audit_writer_close(w), 0);
    assert_int_equal(walk(f->dir, f->key, &v, NULL), 0);
    free(segs);
    free(s);
}

/* ---- tampering: a table of edits and what verify must say ---- */

enum edit {
    FLIP_BYTE,     /* flip a boolean inside record 20: still valid msgpack */
    FLIP_LENGTH,   /* the length prefix of record 20 */
    REMOVE_REC,    /* cut record 20 out */
    SWAP_RECS,     /* records 20 and 21 change places */
    TRUNC_SEG,     /* the first segment cut in the middle of a record */
    REMOVE_SEG,    /* the second segment deleted */
    REMOVE_FIRST,  /* the first segment deleted */
    FORGE_RECHAIN, /* record 20 altered and the whole chain recomputed */
    WRONG_KEY,     /* verified with another public key */
};

static const struct tamper_case {
    const char *name;
    enum edit edit;
    uint64_t bad_seq; /* 0: do not check */
    bool first_seg;   /* the first bad record is in the first segment */
    const char *what;
    bool ok_without_key; /* the chain alone does not see it */
} cases[] = {
    {"flipped byte", FLIP_BYTE, 21, true, "hash chain broken", false},
    {"flipped length", FLIP_LENGTH, 20, true, "payload", false},
    {"removed record", REMOVE_REC, 21, true, "sequence 21 where 20 was expected", false},
    {"reordered records", SWAP_RECS, 21, true, "sequence 21 where 20 was expected", false},
    {"truncated segment", TRUNC_SEG, 0, true, "torn record", false},
    {"removed segment", REMOVE_SEG, 0, false, "are missing (a segment was removed?)", false},
    {"removed first segment", REMOVE_FIRST, 1, false, "are missing", false},
    {"forged chain", FORGE_RECHAIN, 0, false, "checkpoint signature does not verify", true},
    {"wrong key", WRONG_KEY, 0, true, "signed by another key", true},
};

static void apply_edit(const char *dir, enum edit e)
{
    char p[4200];
    size_t len, off, rl, off2, rl2;
    uint8_t *b;

    audittest_nth_seg(dir, e == REMOVE_SEG ? 1 : 0, p, sizeof(p));
    if (e == REMOVE_SEG || e == REMOVE_FIRST) {
        assert_int_equal(unlink(p), 0);
        return;
    }
    if (e == WRONG_KEY)
        return;
    b = audittest_read(p, &len);
    audittest_find_rec(b, len, 20, &off, &rl);
    switch (e) {
    case FLIP_BYTE:
        /* the last field is "standin": false (0xc2) becomes true (0xc3) */
        assert_int_equal(b[off + rl - 1], 0xc2);
        b[off + rl - 1] ^= 1;
        break;
    case FLIP_LENGTH:
        b[off + 3] ^= 0x01;
        break;
    case REMOVE_REC:
        memmove(b + off, b + off + rl, len - off - rl);
        len -= rl;
        break;
    case SWAP_RECS: {
        audittest_find_rec(b, len, 21, &off2, &rl2);
        uint8_t *tmp = malloc(rl + rl2);
        assert_non_null(tmp);
        memcpy(tmp, b + off2, rl2);
        memcpy(tmp + rl2, b + off, rl);
        memcpy(b + off, tmp, rl + rl2);
        free(tmp);
        break;
    }
    case TRUNC_SEG:
        len = off + rl / 2;
        break;
    case FORGE_RECHAIN: {
        /* change the amount's last digit of request 20 ... */
        const uint8_t *k = memmem(b + off, rl, "amount", 6);
        assert_non_null(k);
        b[k - b + 7] ^= 1; /* a positive fixint / uint16 byte: still valid */
        break;
    }
    default:
        break;
    }
    audittest_write(p, b, len);
    free(b);
    if (e == FORGE_RECHAIN)
        audittest_rechain(dir); /* ... and make the chain whole again */
}

/* Run every case of the table on a fresh log. */
static void test_tamper_table(void **state)
{
    struct fixture *f = *state;
    EVP_PKEY *other = audittest_keygen();
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct tamper_case *tc = &cases[i];
        struct audit_verify v;
        char dir[4200], first[4200];

        snprintf(dir, sizeof(dir), "%s/case%zu", f->dir, i);
        audittest_write_log(dir, 300, SEG_SMALL, f->key);
        assert_int_equal(walk(dir, f->key, &v, NULL), 0);
        audittest_nth_seg(dir, 0, first, sizeof(first));
        apply_edit(dir, tc->edit);
        int rc = walk(dir, tc->edit == WRONG_KEY ? other : f->key, &v, NULL);
        if (rc != 1 || strstr(v.what, tc->what) == NULL)
            fail_msg("case '%s': walk returned %d, what '%s'", tc->name, rc, v.what);
        if (tc->bad_seq != 0 && v.bad_seq != tc->bad_seq)
            fail_msg("case '%s': bad seq %llu, want %llu", tc->name, (unsigned long long)v.bad_seq,
                     (unsigned long long)tc->bad_seq);
        if (tc->first_seg && strstr(first, v.bad_segment) == NULL)
            fail_msg("case '%s': bad segment %s, want %s", tc->name, v.bad_segment, first);
        assert_true(v.bad_segment[0] != '\0');
        /* without a key, only the chain speaks */
        rc = walk(dir, NULL, &v, NULL);
        assert_int_equal(rc, tc->ok_without_key ? 0 : 1);
    }
    EVP_PKEY_free(other);
}

/* A crash leaves a torn record; the writer truncates it, says so, and continues. */
static void test_torn_tail(void **state)
{
    struct fixture *f = *state;
    static const struct {
        const char *name;
        size_t keep;  /* bytes of a copied record appended; 0: zeros */
        size_t zeros; /* zero bytes appended */
    } tails[] = {
        {"length prefix only", 2, 0},
        {"half a record", 60, 0},
        {"zero-filled tail", 0, 512},
    };
    for (size_t i = 0; i < sizeof(tails) / sizeof(tails[0]); i++) {
        char dir[4200], p[4200];
        struct audit_verify v;
        struct seen *s = calloc(1, sizeof(*s));
        struct audit_tx tx;
        size_t len, off, rl;

        assert_non_null(s);
        snprintf(dir, sizeof(dir), "%s/torn%zu", f->dir, i);
        struct audit_writer *w = open_writer(dir, f->key, AUDIT_SYNC_NONE);
        for (unsigned k = 0; k < 40; k++) {
            audittest_tx(&tx, k, "5500000000000004");
            assert_int_equal(audit_request(w, &tx), 0);
        }
        assert_int_equal(audit_flush(w), 0);
        audit_writer_abandon(w); /* the crash: no shutdown checkpoint */

        audittest_nth_seg(dir, 0, p, sizeof(p));
        uint8_t *b = audittest_read(p, &len);
        size_t good = len;
        audittest_find_rec(b, len, 10, &off, &rl);
        uint8_t *nb = calloc(1, len + rl + tails[i].zeros);
        assert_non_null(nb);
        memcpy(nb, b, len);
        if (tails[i].keep > 0)
            memcpy(nb + len, b + off, tails[i].keep);
        audittest_write(p, nb, len + tails[i].keep + tails[i].zeros);
        free(nb);
        free(b);

        assert_int_equal(walk(dir, f->key, &v, NULL), 1);
        assert_int_equal(v.bad_offset, good);
        assert_int_equal(v.bad_seq, 42);

        w = open_writer(dir, f->key, AUDIT_SYNC_NONE);
        assert_int_equal(audit_next_seq(w), 43); /* 42 was the recovery record */
        assert_int_equal(audit_operator(w, "carol", "after crash", NULL), 0);
        assert_int_equal(audit_writer_close(w), 0);
        assert_int_equal(walk(dir, f->key, &v, s), 0);
        assert_int_equal(s->type[41], AUDIT_DAEMON);
        assert_non_null(strstr(s->text[41], "event=recover;"));
        assert_int_equal(s->type[42], AUDIT_OPERATOR);
        free(s);
    }
}

/* A segment holding only part of its header (crash right after rotation) is removed. */
static void test_torn_header(void **state)
{
    struct fixture *f = *state;
    struct audit_verify v;
    char p[4200];
    audittest_write_log(f->dir, 10, SEG_SMALL, f->key);
    assert_int_equal(walk(f->dir, f->key, &v, NULL), 0);
    uint64_t next = v.last_seq + 1;
    audittest_seg_path(f->dir, next, p, sizeof(p));
    static const uint8_t part[] = {0, 0, 0};
    audittest_write(p, part, sizeof(part));
    assert_int_equal(walk(f->dir, f->key, &v, NULL), 1);

    struct audit_writer *w = open_writer(f->dir, f->key, AUDIT_SYNC_NONE);
    assert_int_equal(audit_next_seq(w), next + 1); /* the recovery record took next */
    assert_int_equal(audit_writer_close(w), 0);
    assert_int_equal(access(p, F_OK), -1);
    assert_int_equal(walk(f->dir, f->key, &v, NULL), 0);
}

/* A damaged complete record in the last segment is not a crash: the writer refuses. */
static void test_damaged_refused(void **state)
{
    struct fixture *f = *state;
    struct audit_writer_conf c = {.dir = f->dir, .segment_size = SEG_SMALL};
    struct audit_writer *w = NULL;
    char p[4200];
    size_t len, off, rl;

    audittest_write_log(f->dir, 20, SEG_SMALL, f->key);
    audittest_nth_seg(f->dir, 0, p, sizeof(p));
    uint8_t *b = audittest_read(p, &len);
    audittest_find_rec(b, len, 5, &off, &rl);
    b[off + rl - 1] ^= 1;
    audittest_write(p, b, len);
    free(b);
    assert_int_equal(audit_writer_open(&c, f->key, &w), -1);
    assert_null(w);
}

/* Test PANs given in the clear to the API never reach the segment bytes. */
static void test_no_clear_pan(void **state)
{
    struct fixture *f = *state;
    static const char *const pans[] = {"4111111111111111", "5500000000000004", "340000000000009",
                                       "6011000000000004", "4000056655665556123"};
    struct audit_writer *w = open_writer(f->dir, f->key, AUDIT_SYNC_NONE);
    struct audit_tx tx;
    struct audit_stats st;

    for (size_t i = 0; i < sizeof(pans) / sizeof(pans[0]); i++) {
        audittest_tx(&tx, (unsigned)i, pans[i]);
        assert_int_equal(audit_request(w, &tx), 0);
        assert_int_equal(audit_answer(w, &tx), 0);
        /* a caller that writes the clear PAN into the mask by hand */
        snprintf(tx.pan.masked, sizeof(tx.pan.masked), "%s", pans[i]);
        assert_int_equal(audit_answer(w, &tx), 0);
    }
    audit_get_stats(w, &st);
    assert_int_equal(st.masked_fixups, sizeof(pans) / sizeof(pans[0]));
    assert_int_equal(audit_writer_close(w), 0);

    char p[4200];
    size_t len;
    audittest_nth_seg(f->dir, 0, p, sizeof(p));
    uint8_t *b = audittest_read(p, &len);
    for (size_t i = 0; i < sizeof(pans) / sizeof(pans[0]); i++) {
        size_t n = strlen(pans[i]);
        assert_null(memmem(b, len, pans[i], n));
        /* not even the hidden middle digits next to the first six */
        assert_null(memmem(b, len, pans[i], 7));
        char masked[PAN_MASK_MAX];
        pan_mask(pans[i], n, masked);
        assert_non_null(memmem(b, len, masked, n));
    }
    free(b);
}

/* Key changes carry a KCV, never anything that looks like key material. */
static void test_kcv_only(void **state)
{
    struct fixture *f = *state;
    struct audit_writer *w = open_writer(f->dir, NULL, AUDIT_SYNC_NONE);
    assert_int_equal(audit_key_change(w, "zpk", "0123456789ABCDEF0123456789ABCDEF"), -1);
    assert_int_equal(audit_key_change(w, "zpk", "12G4"), -1);
    assert_int_equal(audit_key_change(w, "zpk", NULL), -1);
    assert_int_equal(audit_key_change(w, "zpk", "08D7B4"), 0);
    assert_int_equal(audit_writer_close(w), 0);
}

/* fsync policy: approval syncs only batches with an approval, batch syncs every flush. */
static void test_sync_policy(void **state)
{
    struct fixture *f = *state;
    struct audit_tx tx;
    struct audit_stats st;
    char dir[4200];

    snprintf(dir, sizeof(dir), "%s/a", f->dir);
    struct audit_writer *w = open_writer(dir, NULL, AUDIT_SYNC_APPROVAL);
    audittest_tx(&tx, 1, "4111111111111111");
    snprintf(tx.response_code, sizeof(tx.response_code), "51");
    assert_int_equal(audit_answer(w, &tx), 0);
    assert_int_equal(audit_flush(w), 0);
    audit_get_stats(w, &st);
    assert_int_equal(st.syncs, 0);
    assert_int_equal(st.writes, 1); /* the segment header and this answer: one batch */
    snprintf(tx.response_code, sizeof(tx.response_code), "00");
    assert_int_equal(audit_answer(w, &tx), 0);
    assert_int_equal(audit_request(w, &tx), 0);
    assert_true(audit_pending(w) > 0);
    assert_int_equal(audit_flush(w), 0);
    assert_int_equal(audit_pending(w), 0);
    audit_get_stats(w, &st);
    assert_int_equal(st.syncs, 1);
    assert_int_equal(audit_flush(w), 0); /* nothing new: no sync */
    audit_get_stats(w, &st);
    assert_int_equal(st.syncs, 1);
    assert_int_equal(audit_writer_close(w), 0);

    snprintf(dir, sizeof(dir), "%s/b", f->dir);
    w = open_writer(dir, NULL, AUDIT_SYNC_BATCH);
    snprintf(tx.response_code, sizeof(tx.response_code), "51");
    assert_int_equal(audit_answer(w, &tx), 0);
    assert_int_equal(audit_flush(w), 0);
    audit_get_stats(w, &st);
    assert_int_equal(st.syncs, 1);
    assert_int_equal(audit_writer_close(w), 0);
}

/* Interval checkpoints: from the append path and from audit_tick. */
static void test_checkpoint_interval(void **state)
{
    struct fixture *f = *state;
    struct audit_writer_conf c = {
        .dir = f->dir, .segment_size = SEG_SMALL, .checkpoint_interval_us = 50000};
    struct audit_writer *w = NULL;
    struct audit_stats st;
    struct audit_verify v;

    assert_int_equal(audit_writer_open(&c, f->key, &w), 0);
    assert_int_equal(audit_tick(w), 0); /* nothing written yet: no checkpoint */
    audit_get_stats(w, &st);
    assert_int_equal(st.checkpoints, 0);
    assert_int_equal(audit_operator(w, "x", "a", NULL), 0);
    usleep(60000);
    assert_int_equal(audit_tick(w), 0);
    audit_get_stats(w, &st);
    assert_int_equal(st.checkpoints, 1);
    usleep(60000);
    assert_int_equal(audit_operator(w, "x", "b", NULL), 0); /* due: appended after it */
    audit_get_stats(w, &st);
    assert_int_equal(st.checkpoints, 2);
    assert_int_equal(audit_writer_close(w), 0);
    assert_int_equal(walk(f->dir, f->key, &v, NULL), 0);
    assert_int_equal(v.checkpoints, 3);
    assert_int_equal(v.signatures_ok, 3);
}

/* Unsigned checkpoints pass a chain-only walk and fail one with a key. */
static void test_unsigned(void **state)
{
    struct fixture *f = *state;
    struct audit_verify v;
    audittest_write_log(f->dir, 5, SEG_SMALL, NULL);
    assert_int_equal(walk(f->dir, NULL, &v, NULL), 0);
    assert_int_equal(v.checkpoints, 1);
    assert_int_equal(walk(f->dir, f->key, &v, NULL), 1);
    assert_non_null(strstr(v.what, "not signed"));
    /* an empty or missing directory is an error, not a good log */
    char empty[4200];
    snprintf(empty, sizeof(empty), "%s/none", f->dir);
    assert_int_equal(walk(empty, NULL, &v, NULL), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_roundtrip_every_type, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rotation_chain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tamper_table, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_tail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_header, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damaged_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_clear_pan, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kcv_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sync_policy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoint_interval, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unsigned, setup, teardown),
    };
    return cmocka_run_group_tests_name("audit", tests, NULL, NULL);
}
