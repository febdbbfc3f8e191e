/*
 * db.h - blocking libpq helpers for the command-line tools and tests.  The
 * daemon never blocks on the database: it has its own non-blocking pool.
 */
#ifndef CARDGATE_COMMON_DB_H
#define CARDGATE_COMMON_DB_H

#include <libpq-fe.h>

/*
 * Connect with conninfo, or with the PG* environment when conninfo is NULL or
 * empty.  Prints libpq's reason to stderr and returns NULL on failure.
 */
PGconn *db_connect_blocking(const char *conninfo);
/* Run one command; 0 when it succeeded, -1 with the server's message on stderr. */
int db_exec_ok(PGconn *c, const char *sql) __attribute__((warn_unused_result));

/* Run a command whose failure changes nothing for the caller (ROLLBACK, unlock). */
void db_exec_best_effort(PGconn *c, const char *sql);

#endif
