/*
 * pgtest.h - a throwaway PostgreSQL cluster for one integration test binary,
 * through tests/pgtmp (the same tool `make run` and the benchmarks use).
 *
 *   static struct pgtest pg;
 *   static int setup(void **s)    { return pgtest_start(&pg, 0); }
 *   static int teardown(void **s) { pgtest_stop(&pg); return 0; }
 *
 * pgtest_start sets PGHOST/PGPORT/PGDATABASE/PGUSER in the environment, so
 * libpq (and every program the test runs) reaches the cluster with an empty
 * conninfo.  Migrations from sql/ are applied.
 */
#ifndef CARDGATE_TESTS_PGTEST_H
#define CARDGATE_TESTS_PGTEST_H

#include <libpq-fe.h>
#include <stdbool.h>

struct pgtest {
    char dir[256];
    char host[512];
    char port[16];
    char conninfo[700];
    bool running;
};

#define PGTEST_DURABLE 1 /* fsync + synchronous_commit on */

/* Start a cluster in a new temporary directory; 0 or -1 (reason on stderr). */
int pgtest_start(struct pgtest *pg, int flags);
/* Stop it and remove its directory; safe to call twice. */
void pgtest_stop(struct pgtest *pg);
/* A new blocking connection, or NULL with the reason on stderr. */
PGconn *pgtest_connect(const struct pgtest *pg);
/*
 * Run sql and return the first column of the first row as a heap string
 * (NULL on error or no row); for short assertions in tests.
 */
char *pgtest_scalar(PGconn *c, const char *sql);

/*
 * pg_ctl start|stop on pg's cluster in place (same data, same port; a
 * stopped cluster is still removed by pgtest_stop).  0 or -1.
 */
int pgtest_ctl(const struct pgtest *pg, const char *action);

/* Path of a built program: "$CARDGATE_BUILD/name" (default build/). */
const char *pgtest_prog(const char *name, char *buf, unsigned len);

#endif
