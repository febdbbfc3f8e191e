/*
 * audittest.c - see audittest.h.
 */
#include "tests/lib/audittest.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "common/util.h"

#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* See audittest.h. */
void audittest_mkdtemp(char *out, size_t cap)
{
    const char *t = getenv("TMPDIR");
    snprintf(out, cap, "%s/cgaudit-XXXXXX", t != NULL && t[0] != '\0' ? t : "/tmp");
    if (mkdtemp(out) == NULL)
        fail_msg("mkdtemp %s failed", out);
}

/* See audittest.h. */
void audittest_rmdir(const char *dir)
{
    char cmd[4200];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fail_msg("%s failed", cmd);
}

/* See audittest.h. */
EVP_PKEY *audittest_keygen(void)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    assert_non_null(k);
    return k;
}

/* See audittest.h. */
void audittest_write_pubkey(EVP_PKEY *k, const char *path, bool hex)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    if (hex) {
        uint8_t raw[32];
        size_t n = sizeof(raw);
        assert_int_equal(EVP_PKEY_get_raw_public_key(k, raw, &n), 1);
        for (size_t i = 0; i < n; i++)
            fprintf(fp, "%02x", raw[i]);
        fputc('\n', fp);
    } else {
        assert_int_equal(PEM_write_PUBKEY(fp, k), 1);
    }
    fclose(fp);
}

/* See audittest.h. */
void audittest_tx(struct audit_tx *tx, unsigned i, const char *clear_pan)
{
    memset(tx, 0, sizeof(*tx));
    snprintf(tx->mti, sizeof(tx->mti), "0100");
    audit_pan_mask(&tx->pan, clear_pan, strlen(clear_pan));
    snprintf(tx->stan, sizeof(tx->stan), "%06u", i % 1000000);
    snprintf(tx->rrn, sizeof(tx->rrn), "6327%08u", i);
    snprintf(tx->acquirer, sizeof(tx->acquirer), "123456");
    snprintf(tx->terminal, sizeof(tx->terminal), "TERM%04u", i % 10000);
    snprintf(tx->merchant, sizeof(tx->merchant), "MERCHANT0000042");
    snprintf(tx->mcc, sizeof(tx->mcc), "5411");
    tx->amount = 1000 + i;
    snprintf(tx->currency, sizeof(tx->currency), "978");
    snprintf(tx->link, sizeof(tx->link), "visa#1");
}

/* See audittest.h. */
void audittest_write_log(const char *dir, unsigned n, uint64_t segment_size, EVP_PKEY *key)
{
    struct audit_writer_conf c = {.dir = dir,
                                  .segment_size = segment_size,
                                  .checkpoint_interval_us = 0,
                                  .sync = AUDIT_SYNC_NONE};
    struct audit_writer *w = NULL;
    struct audit_tx tx;

    assert_int_equal(audit_writer_open(&c, key, &w), 0);
    assert_int_equal(audit_daemon(w, AUDIT_DAEMON_START, "test"), 0);
    for (unsigned i = 0; i < n; i++) {
        audittest_tx(&tx, i, "4111111111111111");
        assert_int_equal(audit_request(w, &tx), 0);
        snprintf(tx.mti, sizeof(tx.mti), "0110");
        snprintf(tx.response_code, sizeof(tx.response_code), i % 3 ? "00" : "51");
        if (i % 3)
            snprintf(tx.approval_code, sizeof(tx.approval_code), "A%05u", i % 100000);
        snprintf(tx.rule, sizeof(tx.rule), "%s", i % 3 ? "ok" : "insufficient_funds");
        tx.policy_version = 7;
        tx.latency_us = 900 + i % 50;
        assert_int_equal(audit_answer(w, &tx), 0);
        if (i % 64 == 63)
            assert_int_equal(audit_flush(w), 0);
    }
    assert_int_equal(audit_daemon(w, AUDIT_DAEMON_STOP, "test"), 0);
    assert_int_equal(audit_writer_close(w), 0);
}

/* See audittest.h. */
void audittest_seg_path(const char *dir, uint64_t seq, char *out, size_t cap)
{
    char name[AUDIT_SEG_NAME_LEN + 1];
    audit_segment_name(seq, name);
    snprintf(out, cap, "%s/%s", dir, name);
}

/* See audittest.h. */
void audittest_nth_seg(const char *dir, unsigned i, char *out, size_t cap)
{
    uint64_t *segs = NULL;
    long n = audit_list_segments(dir, &segs);
    assert_true(n > (long)i);
    audittest_seg_path(dir, segs[i], out, cap);
    free(segs);
}

/* See audittest.h. */
uint8_t *audittest_read(const char *path, size_t *len)
{
    uint8_t *b = (uint8_t *)util_read_file(path, (size_t)1 << 30, len);
    if (b == NULL)
        fail_msg("cannot read %s", path);
    return b;
}

/* See audittest.h. */
void audittest_write(const char *path, const uint8_t *buf, size_t len)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(buf, 1, len, fp), len);
    assert_int_equal(fclose(fp), 0);
}

/* See audittest.h. */
void audittest_find_rec(const uint8_t *buf, size_t len, uint64_t seq, size_t *off, size_t *reclen)
{
    msgpack_unpacked u;
    size_t o = 0;
    char why[160];
    msgpack_unpacked_init(&u);
    for (;;) {
        struct audit_rec r;
        size_t used = 0;
        enum audit_parse p = audit_rec_parse(buf, len, o, &u, &r, &used, why, sizeof(why));
        if (p != AUDIT_PARSE_OK)
            fail_msg("record %llu not found (%s)", (unsigned long long)seq, why);
        if (r.seq == seq) {
            *off = o;
            *reclen = used;
            break;
        }
        o += used;
    }
    msgpack_unpacked_destroy(&u);
}

/* See audittest.h. */
void audittest_rechain(const char *dir)
{
    uint64_t *segs = NULL;
    long n = audit_list_segments(dir, &segs);
    uint8_t last[AUDIT_HASH_LEN] = {0};
    msgpack_unpacked u;
    char why[160];

    assert_true(n > 0);
    msgpack_unpacked_init(&u);
    for (long i = 0; i < n; i++) {
        char path[4200];
        size_t len = 0, off = 0;
        audittest_seg_path(dir, segs[i], path, sizeof(path));
        uint8_t *buf = audittest_read(path, &len);
        for (;;) {
            struct audit_rec r;
            size_t used = 0;
            enum audit_parse p = audit_rec_parse(buf, len, off, &u, &r, &used, why, sizeof(why));
            if (p == AUDIT_PARSE_END)
                break;
            assert_int_equal(p, AUDIT_PARSE_OK);
            /* bin values point into buf: overwrite them in place */
            const msgpack_object *prev = &u.data.via.array.ptr[3];
            memcpy((uint8_t *)prev->via.bin.ptr, last, AUDIT_HASH_LEN);
            const msgpack_object *chain = audit_rec_field(&r, "chain");
            if (chain != NULL)
                memcpy((uint8_t *)chain->via.bin.ptr, last, AUDIT_HASH_LEN);
            assert_int_equal(EVP_Digest(buf + off + 4, used - 4, last, NULL, EVP_sha256(), NULL),
                             1);
            off += used;
        }
        audittest_write(path, buf, len);
        free(buf);
    }
    msgpack_unpacked_destroy(&u);
    free(segs);
}
