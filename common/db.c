/*
 * db.c - see db.h.
 */
#include "common/db.h"

#include <stdio.h>

PGconn *db_connect_blocking(const char *conninfo)
{
    PGconn *c = PQconnectdb(conninfo ? conninfo : "");
    if (c == NULL) {
        fprintf(stderr, "database: out of memory\n");
        return NULL;
    }
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "database: %s", PQerrorMessage(c));
        PQfinish(c);
        return NULL;
    }
    return c;
}

int db_exec_ok(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    int ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
    if (!ok)
        fprintf(stderr, "database: %s", PQerrorMessage(c));
    PQclear(r);
    return ok ? 0 : -1;
}

void db_exec_best_effort(PGconn *c, const char *sql)
{
    PQclear(PQexec(c, sql));
}
