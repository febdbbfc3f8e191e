/*
 * pgtest.c - see pgtest.h.
 */
#include "tests/lib/pgtest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct pgtest *registered;

static void stop_at_exit(void)
{
    if (registered != NULL)
        pgtest_stop(registered);
}

const char *pgtest_prog(const char *name, char *buf, unsigned len)
{
    const char *b = getenv("CARDGATE_BUILD");
    snprintf(buf, len, "%s/%s", b && *b ? b : "build", name);
    return buf;
}

int pgtest_start(struct pgtest *pg, int flags)
{
    char cmd[600], line[600];
    const char *tmp = getenv("TMPDIR");
    FILE *p;

    memset(pg, 0, sizeof(*pg));
    snprintf(pg->dir, sizeof(pg->dir), "%s/cardgate-test.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (mkdtemp(pg->dir) == NULL) {
        perror("pgtest: mkdtemp");
        return -1;
    }
    snprintf(cmd, sizeof(cmd), "tests/pgtmp start '%s'%s", pg->dir,
             (flags & PGTEST_DURABLE) ? " --durable" : "");
    p = popen(cmd, "r");
    if (p == NULL) {
        perror("pgtest: popen");
        return -1;
    }
    while (fgets(line, sizeof(line), p) != NULL) {
        line[strcspn(line, "\n")] = '\0';
        char *eq = strchr(line, '=');
        if (eq == NULL)
            continue;
        *eq = '\0';
        if (strncmp(line, "PG", 2) == 0)
            setenv(line, eq + 1, 1);
        if (strcmp(line, "PGHOST") == 0)
            snprintf(pg->host, sizeof(pg->host), "%s", eq + 1);
        else if (strcmp(line, "PGPORT") == 0)
            snprintf(pg->port, sizeof(pg->port), "%s", eq + 1);
    }
    int st = pclose(p);
    pg->running = true; /* the directory exists either way: stop removes it */
    registered = pg;
    static int hooked;
    if (!hooked) {
        atexit(stop_at_exit);
        hooked = 1;
    }
    if (st != 0 || pg->host[0] == '\0' || pg->port[0] == '\0') {
        fprintf(stderr, "pgtest: tests/pgtmp start failed (status %d)\n", st);
        pgtest_stop(pg);
        return -1;
    }
    snprintf(pg->conninfo, sizeof(pg->conninfo), "host=%s port=%s dbname=cardgate user=cardgate",
             pg->host, pg->port);
    return 0;
}

void pgtest_stop(struct pgtest *pg)
{
    char cmd[600];
    if (!pg->running)
        return;
    pg->running = false;
    if (registered == pg)
        registered = NULL;
    snprintf(cmd, sizeof(cmd), "tests/pgtmp stop '%s' >/dev/null 2>&1", pg->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "pgtest: could not stop the cluster in %s\n", pg->dir);
}

PGconn *pgtest_connect(const struct pgtest *pg)
{
    PGconn *c = PQconnectdb(pg->conninfo);
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "pgtest: connect: %s", PQerrorMessage(c));
        PQfinish(c);
        return NULL;
    }
    return c;
}

char *pgtest_scalar(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    char *out = NULL;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0 && !PQgetisnull(r, 0, 0))
        out = strdup(PQgetvalue(r, 0, 0));
    else if (PQresultStatus(r) != PGRES_TUPLES_OK)
        fprintf(stderr, "pgtest: %s: %s", sql, PQerrorMessage(c));
    PQclear(r);
    return out;
}

/*
 * pg_ctl start|stop on the test's cluster, in place (same data, same port):
 * tests/pgtmp has no restart, and stop there removes the cluster.
 */
int pgtest_ctl(const struct pgtest *pg, const char *action)
{
    char home[512], marker[600], cmd[2048];
    snprintf(home, sizeof(home), "%s", pg->dir);
    snprintf(marker, sizeof(marker), "%s/.pgtmp-home", pg->dir);
    FILE *fp = fopen(marker, "r");
    if (fp != NULL) {
        if (fgets(home, sizeof(home), fp) != NULL)
            home[strcspn(home, "\n")] = '\0';
        fclose(fp);
    }
    const char *bindir = getenv("PG_BINDIR");
    if (bindir == NULL || *bindir == '\0')
        bindir = "/usr/lib/postgresql/15/bin";
    snprintf(cmd, sizeof(cmd),
             "%s %s/pg_ctl -D '%s/data' -l '%s/postgresql.log' -m fast -w -t 30 %s >/dev/null",
             geteuid() == 0 ? "runuser -u postgres --" : "", bindir, home, home, action);
    return system(cmd) == 0 ? 0 : -1;
}
