/*
 * bench/audit.c - the audit writer's per-record cost and the verifier's
 * speed.  Prints a table of medians over RUNS runs; never passes or fails on
 * time.  The scratch log goes to $CARDGATE_BENCH_DIR or build/bench (a real
 * file system: fdatasync on tmpfs would measure nothing).
 *
 *   scenario        what one batch is
 *   pack+write      64 answers (2/3 approvals), one write(2), fsync = none
 *   approval-sync   64 answers with approvals, one write(2) + fdatasync
 *   batch-sync-1    1 answer, one write(2) + fdatasync (the worst case)
 *   verify          audit_walk over the pack+write log, with the public key
 */
#include "daemon/audit.h"
#include "common/util.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define RUNS 5

struct result {
    double rate;       /* records/s, wall clock */
    double cpu_us_rec; /* process CPU time (user + system) per record */
    double bytes_per_rec;
    double us_per_batch;
};

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    return v[n / 2];
}

static int64_t cpu_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void fill_tx(struct audit_tx *tx, unsigned i)
{
    memset(tx, 0, sizeof(*tx));
    memcpy(tx->mti, "0110", 5);
    audit_pan_mask(&tx->pan, "4111111111111111", 16);
    snprintf(tx->stan, sizeof(tx->stan), "%06u", i % 1000000);
    snprintf(tx->rrn, sizeof(tx->rrn), "6327%08u", i % 100000000);
    memcpy(tx->acquirer, "123456", 7);
    snprintf(tx->terminal, sizeof(tx->terminal), "T%07u", i % 1000);
    memcpy(tx->merchant, "MERCHANT0000042", 16);
    memcpy(tx->mcc, "5411", 5);
    tx->amount = 1000 + (int64_t)(i % 50000);
    memcpy(tx->currency, "978", 4);
    memcpy(tx->response_code, i % 3 ? "00" : "51", 3);
    if (i % 3)
        snprintf(tx->approval_code, sizeof(tx->approval_code), "A%05u", i % 100000);
    memcpy(tx->rule, "ok", 3);
    tx->policy_version = 12;
    tx->latency_us = 850 + i % 300;
    memcpy(tx->link, "visa#1", 7);
}

static void rm_rf(const char *dir)
{
    char cmd[4300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "bench-audit: %s failed\n", cmd);
}

/* One run: nbatch batches of per records; keep the log when keep is set. */
static int run(const char *dir, EVP_PKEY *key, enum audit_sync sync, unsigned nbatch, unsigned per,
               bool all_approved, struct result *r)
{
    struct audit_writer_conf c = {
        .dir = dir, .segment_size = 64u << 20, .checkpoint_interval_us = 1000000, .sync = sync};
    struct audit_writer *w = NULL;
    struct audit_tx tx;
    struct audit_stats st;

    rm_rf(dir);
    if (audit_writer_open(&c, key, &w) != 0)
        return -1;
    fill_tx(&tx, 1);
    int64_t t0 = util_now_us(), c0 = cpu_us();
    for (unsigned b = 0; b < nbatch; b++) {
        for (unsigned i = 0; i < per; i++) {
            unsigned n = b * per + i;
            /* the fields that change per transaction */
            snprintf(tx.stan, sizeof(tx.stan), "%06u", n % 1000000);
            snprintf(tx.rrn, sizeof(tx.rrn), "6327%08u", n % 100000000);
            tx.amount = 1000 + (int64_t)(n % 50000);
            memcpy(tx.response_code, all_approved || n % 3 ? "00" : "51", 3);
            if (audit_answer(w, &tx) != 0)
                return -1;
        }
        if (audit_flush(w) != 0)
            return -1;
    }
    int64_t t1 = util_now_us(), c1 = cpu_us();
    audit_get_stats(w, &st);
    if (audit_writer_close(w) != 0)
        return -1;
    double secs = (double)(t1 - t0) / 1e6;
    r->rate = (double)nbatch * per / secs;
    r->cpu_us_rec = (double)(c1 - c0) / ((double)nbatch * per);
    r->bytes_per_rec = (double)st.bytes / (double)st.records;
    r->us_per_batch = (double)(t1 - t0) / nbatch;
    return 0;
}

int main(void)
{
    static const struct {
        const char *name;
        enum audit_sync sync;
        unsigned nbatch, per;
        bool all_approved;
    } sc[] = {
        {"pack+write", AUDIT_SYNC_NONE, 4000, 64, false},
        {"approval-sync", AUDIT_SYNC_APPROVAL, 300, 64, true},
        {"batch-sync-1", AUDIT_SYNC_BATCH, 300, 1, false},
    };
    const char *base = getenv("CARDGATE_BENCH_DIR");
    char dir[4096];
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");

    if (key == NULL)
        return 1;
    snprintf(dir, sizeof(dir), "%s/audit-bench.%d", base != NULL ? base : "build/bench",
             (int)getpid());
    mkdir(base != NULL ? base : "build/bench", 0755);
    printf("audit writer: answers of ~20 fields, Ed25519 checkpoints every 1 s, %d runs, medians\n",
           RUNS);
    printf("%-14s %10s %6s %12s %12s %10s %12s\n", "scenario", "records", "batch", "records/s",
           "cpu us/rec", "bytes/rec", "us/batch");
    for (size_t s = 0; s < sizeof(sc) / sizeof(sc[0]); s++) {
        double rate[RUNS], cpu[RUNS], bpr[RUNS], upb[RUNS];
        for (int k = 0; k < RUNS; k++) {
            struct result r;
            if (run(dir, key, sc[s].sync, sc[s].nbatch, sc[s].per, sc[s].all_approved, &r) != 0) {
                fprintf(stderr, "bench-audit: %s failed\n", sc[s].name);
                return 1;
            }
            rate[k] = r.rate;
            cpu[k] = r.cpu_us_rec;
            bpr[k] = r.bytes_per_rec;
            upb[k] = r.us_per_batch;
        }
        printf("%-14s %10u %6u %12.0f %12.2f %10.1f %12.1f\n", sc[s].name, sc[s].nbatch * sc[s].per,
               sc[s].per, median(rate, RUNS), median(cpu, RUNS), median(bpr, RUNS),
               median(upb, RUNS));
    }

    /* the verifier over a fresh pack+write log */
    struct result r;
    double vr[RUNS];
    if (run(dir, key, AUDIT_SYNC_NONE, sc[0].nbatch, sc[0].per, false, &r) != 0)
        return 1;
    for (int k = 0; k < RUNS; k++) {
        struct audit_verify v;
        memset(&v, 0, sizeof(v));
        v.pubkey = key;
        int64_t t0 = util_now_us();
        if (audit_walk(dir, &v, NULL, NULL) != 0) {
            fprintf(stderr, "bench-audit: verify failed: %s\n", v.what);
            return 1;
        }
        vr[k] = (double)v.records / ((double)(util_now_us() - t0) / 1e6);
    }
    printf("%-14s %10u %6s %12.0f\n", "verify", sc[0].nbatch * sc[0].per, "-", median(vr, RUNS));
    rm_rf(dir);
    EVP_PKEY_free(key);
    return 0;
}
