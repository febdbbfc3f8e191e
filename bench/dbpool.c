/*
 * bench/dbpool.c - items per second through daemon/dbpool at batch limits
 * 1, 16, 64 and 256, against a throwaway DURABLE cluster (fsync and
 * synchronous_commit on; tests/pgtmp start DIR --durable).
 *
 * Closed loop: `outstanding` requests circulate; each one's done() submits
 * it again at once, so the queues are never empty and every free connection
 * sends up to the batch limit.  Two statements (tests/lib/dbptest.h):
 *   trivial  SELECT over unnest(keys) WITH ORDINALITY: read-only, no WAL flush
 *   echo     dbpt_echo(): inserts one row per item, so each batch is one
 *            durable commit (the shape of authorize_batch, minus its logic)
 * Each cell is the median of `runs` runs of `seconds` each (after a short
 * warm-up); "avg batch" is items per call over all runs of the cell;
 * "client us/item" is this process's CPU time (the pool, libpq, the loop:
 * what cardgated would spend) per item over the timed runs.
 *
 *   build/bench-dbpool [-c CONNS] [-o OUTSTANDING] [-d SECONDS] [-r RUNS]
 *
 * Prints a table; never passes or fails on speed.
 */
#include "daemon/dbpool.h"
#include "common/db.h"
#include "common/log.h"
#include "common/util.h"
#include "tests/lib/dbptest.h"
#include "tests/lib/pgtest.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

static void resubmit(struct dbpt_ctx *ctx, struct dbpt_req *r)
{
    struct dbpool *pool = ctx->user;
    if (r->status != DBP_OK) {
        fprintf(stderr, "bench-dbpool: item failed: %s\n", r->msg);
        exit(1);
    }
    if (dbp_submit(pool, &r->item) != 0) {
        fprintf(stderr, "bench-dbpool: resubmit refused\n");
        exit(1);
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static bool pool_up(void *arg)
{
    struct dbp_stats st;
    dbp_get_stats(arg, &st);
    return st.conns_up == st.conns_total;
}

struct cell {
    double median, min, max, avg_batch;
    double cpu_us_per_item; /* this process (pool + libpq): user + system */
};

/* CPU time (user + system) of this process so far, in microseconds. */
static double cpu_us(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

/*
 * One cell: a fresh pool with max_batch mb, `outstanding` requests of stmt
 * circulating, `runs` timed windows.
 */
static struct cell run_cell(unsigned conns, unsigned mb, unsigned stmt, unsigned outstanding,
                            double seconds, unsigned runs)
{
    struct event_base *base = event_base_new();
    struct dbpt_ctx ctx = {0};
    struct dbp_config cfg;
    dbpt_config(&cfg, &ctx, "", conns, mb);
    struct dbpool *pool = dbp_new(base, &cfg);
    if (base == NULL || pool == NULL || !dbpt_run_until(base, pool_up, pool, 10000)) {
        fprintf(stderr, "bench-dbpool: the pool did not come up\n");
        exit(1);
    }
    ctx.user = pool;
    ctx.on_done = resubmit;
    struct dbpt_req *reqs = calloc(outstanding, sizeof(*reqs));
    if (reqs == NULL)
        exit(1);
    for (unsigned i = 0; i < outstanding; i++) {
        dbpt_req_init(&reqs[i], (long long)i * 7919, "b", stmt);
        if (dbp_submit(pool, &reqs[i].item) != 0)
            exit(1);
    }
    dbpt_run_for(base, 300); /* warm-up */

    double rates[64] = {0};
    struct dbp_stats st0, st1;
    dbp_get_stats(pool, &st0);
    unsigned done0 = ctx.ndone;
    double cpu0 = cpu_us();
    for (unsigned r = 0; r < runs; r++) {
        unsigned n0 = ctx.ndone;
        int64_t t0 = util_now_us();
        dbpt_run_for(base, (int)(seconds * 1000));
        int64_t t1 = util_now_us();
        rates[r] = (double)(ctx.ndone - n0) * 1e6 / (double)(t1 - t0);
    }
    double cpu = cpu_us() - cpu0;
    unsigned items = ctx.ndone - done0;
    dbp_get_stats(pool, &st1);
    /* stop circulating, then let the pool fail what is left */
    ctx.on_done = NULL;
    dbp_free(pool);
    event_base_free(base);
    free(reqs);

    qsort(rates, runs, sizeof(rates[0]), cmp_double);
    struct cell c = {
        .median = runs % 2 ? rates[runs / 2] : (rates[runs / 2 - 1] + rates[runs / 2]) / 2,
        .min = rates[0],
        .max = rates[runs - 1],
        .avg_batch = st1.batches > st0.batches ? (double)(st1.items_sent - st0.items_sent) /
                                                     (double)(st1.batches - st0.batches)
                                               : 0,
        .cpu_us_per_item = items ? cpu / items : 0,
    };
    return c;
}

static void usage(void)
{
    fprintf(stderr, "usage: bench-dbpool [-c CONNS] [-o OUTSTANDING] [-d SECONDS] [-r RUNS]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    unsigned conns = 4, outstanding = 1024, runs = 5;
    double seconds = 1.0;
    int ch;
    while ((ch = getopt(argc, argv, "c:o:d:r:")) != -1) {
        switch (ch) {
        case 'c':
            conns = (unsigned)atoi(optarg);
            break;
        case 'o':
            outstanding = (unsigned)atoi(optarg);
            break;
        case 'd':
            seconds = atof(optarg);
            break;
        case 'r':
            runs = (unsigned)atoi(optarg);
            break;
        default:
            usage();
        }
    }
    if (conns < 1 || conns > DBP_MAX_CONNS || outstanding < 1 || runs < 1 || runs > 64 ||
        seconds <= 0)
        usage();
    log_init("bench-dbpool", LOG_LVL_WARNING);

    struct pgtest pg;
    if (dbpt_start_cluster(&pg, PGTEST_DURABLE) != 0) {
        fprintf(stderr, "bench-dbpool: could not start a durable cluster\n");
        return 1;
    }
    PGconn *admin = pgtest_connect(&pg);
    if (admin == NULL)
        return 1;

    printf("dbpool throughput: %u connections, %u outstanding, durable cluster, "
           "median of %u x %.1fs (min-max)\n",
           conns, outstanding, runs, seconds);
    printf("%-9s %-9s %12s %21s %10s %14s\n", "limit", "statement", "items/s", "min-max",
           "avg batch", "client us/item");
    static const unsigned limits[] = {1, 16, 64, 256};
    static const char *const names[] = {"echo", "trivial"};
    static const unsigned stmts[] = {DBPT_STMT_ECHO, DBPT_STMT_TRIVIAL};
    for (unsigned s = 0; s < 2; s++) {
        for (unsigned i = 0; i < UTIL_NELEM(limits); i++) {
            db_exec_best_effort(admin, "TRUNCATE dbpt_log");
            struct cell c = run_cell(conns, limits[i], stmts[s], outstanding, seconds, runs);
            char mm[32];
            snprintf(mm, sizeof(mm), "%.0f-%.0f", c.min, c.max);
            printf("%-9u %-9s %12.0f %21s %10.1f %14.2f\n", limits[i], names[s], c.median, mm,
                   c.avg_batch, c.cpu_us_per_item);
            fflush(stdout);
        }
    }
    PQfinish(admin);
    pgtest_stop(&pg);
    return 0;
}
