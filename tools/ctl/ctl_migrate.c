/*
 * ctl_migrate.c - `cardgatectl migrate`: apply the numbered sql/ migrations.
 *
 * Each file NNNN_name.sql runs in its own transaction and is recorded in
 * schema_migrations with its SHA-256, so running migrate again is a no-op and
 * a file edited after it was applied is refused rather than silently skipped.
 * A session advisory lock serialises migrators (two daemons' start-up scripts,
 * a test and an operator).  A failing file rolls back whole, and the error
 * names the file and the line of the statement that failed.
 */
#include "common/db.h"
#include "common/util.h"
#include "tools/ctl/ctl.h"

#include <dirent.h>
#include <getopt.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIGRATE_LOCK_KEY 1667330660 /* "card" */
#define MAX_MIGRATIONS   1000

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* NNNN_name.sql: four or more digits, an underscore, a name */
static int is_migration_name(const char *n)
{
    size_t i = 0, len = strlen(n);
    while (n[i] >= '0' && n[i] <= '9')
        i++;
    return i >= 4 && n[i] == '_' && len > 4 && strcmp(n + len - 4, ".sql") == 0;
}

static void free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

static int list_migrations(const char *dir, char ***out, size_t *count)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char **names = NULL;
    size_t n = 0;

    if (d == NULL) {
        fprintf(stderr, "cardgatectl migrate: cannot open %s\n", dir);
        return -1;
    }
    while ((e = readdir(d)) != NULL) {
        if (!is_migration_name(e->d_name))
            continue;
        if (n == MAX_MIGRATIONS) {
            fprintf(stderr, "cardgatectl migrate: more than %d migrations in %s\n", MAX_MIGRATIONS,
                    dir);
            break;
        }
        char **nn = realloc(names, (n + 1) * sizeof(*nn));
        if (nn == NULL || (nn[n] = strdup(e->d_name)) == NULL) {
            fprintf(stderr, "cardgatectl migrate: out of memory\n");
            names = nn ? nn : names;
            closedir(d);
            free_names(names, n);
            return -1;
        }
        names = nn;
        n++;
    }
    closedir(d);
    if (n > 1)
        qsort(names, n, sizeof(*names), cmp_str);
    *out = names;
    *count = n;
    return 0;
}

/* 1-based line of a 1-based character position in text */
static int line_of(const char *text, long pos)
{
    int line = 1;
    for (long i = 0; i < pos - 1 && text[i]; i++)
        if (text[i] == '\n')
            line++;
    return line;
}

static int apply_one(PGconn *c, const char *dir, const char *name, int dry_run, int *applied)
{
    char path[4096];
    size_t len;
    char *text;
    char sum[65];
    const char *params[3];
    PGresult *r;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    text = util_read_file(path, 8u << 20, &len);
    if (text == NULL) {
        fprintf(stderr, "cardgatectl migrate: cannot read %s\n", path);
        return -1;
    }
    util_sha256_hex(text, len, sum);

    params[0] = name;
    r = PQexecParams(c, "SELECT checksum FROM schema_migrations WHERE filename = $1", 1, NULL,
                     params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        fprintf(stderr, "cardgatectl migrate: %s", PQerrorMessage(c));
        PQclear(r);
        free(text);
        return -1;
    }
    if (PQntuples(r) == 1) {
        int same = strcmp(PQgetvalue(r, 0, 0), sum) == 0;
        PQclear(r);
        free(text);
        if (!same) {
            fprintf(stderr,
                    "cardgatectl migrate: %s was changed after it was applied; "
                    "write a new migration instead\n",
                    path);
            return -1;
        }
        return 0;
    }
    PQclear(r);
    if (dry_run) {
        printf("pending  %s\n", name);
        free(text);
        return 0;
    }

    if (db_exec_ok(c, "BEGIN") != 0) {
        free(text);
        return -1;
    }
    r = PQexec(c, text);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) {
        const char *pos = PQresultErrorField(r, PG_DIAG_STATEMENT_POSITION);
        const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
        int line = pos ? line_of(text, atol(pos)) : 0;
        if (line > 0)
            fprintf(stderr, "%s:%d: migration failed: %s\n", path, line, msg ? msg : "?");
        else
            fprintf(stderr, "%s: migration failed: %s", path, PQresultErrorMessage(r));
        PQclear(r);
        free(text);
        db_exec_best_effort(c, "ROLLBACK");
        fprintf(stderr, "cardgatectl migrate: %s rolled back; the schema is as it was\n", name);
        return -1;
    }
    PQclear(r);
    free(text);
    params[0] = name;
    params[1] = sum;
    r = PQexecParams(c,
                     "INSERT INTO schema_migrations (filename, checksum, applied_at) "
                     "VALUES ($1, $2, now())",
                     2, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        fprintf(stderr, "cardgatectl migrate: %s", PQerrorMessage(c));
        PQclear(r);
        db_exec_best_effort(c, "ROLLBACK");
        return -1;
    }
    PQclear(r);
    if (db_exec_ok(c, "COMMIT") != 0)
        return -1;
    printf("applied  %s\n", name);
    (*applied)++;
    return 0;
}

static void usage(FILE *out)
{
    fprintf(out, "usage: cardgatectl migrate [--db CONNINFO] [--dir DIR] [--status]\n"
                 "  Applies DIR/NNNN_*.sql in order, each in one transaction (default DIR:\n"
                 "  $CARDGATE_SQL_DIR, ./sql, or the installed share/cardgate/sql).\n"
                 "  --status lists pending migrations without applying them.\n"
                 "  Connection settings: --db or the usual PG* environment variables.\n");
}

int ctl_migrate_main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"db", required_argument, NULL, 'd'},
        {"dir", required_argument, NULL, 'D'},
        {"status", no_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *conninfo = NULL, *dir = NULL;
    int status_only = 0, ch, rc = 0, applied = 0;
    char **names = NULL;
    size_t n = 0;

    optind = 1;
    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (ch) {
        case 'd':
            conninfo = optarg;
            break;
        case 'D':
            dir = optarg;
            break;
        case 's':
            status_only = 1;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }
    if (dir == NULL)
        dir = util_sql_dir();

    PGconn *c = db_connect_blocking(conninfo);
    if (c == NULL)
        return 1;
    if (db_exec_ok(c, "SET client_min_messages = warning") != 0 ||
        db_exec_ok(c, "SELECT pg_advisory_lock(" UTIL_STR(MIGRATE_LOCK_KEY) ")") != 0 ||
        db_exec_ok(c, "CREATE TABLE IF NOT EXISTS schema_migrations ("
                      " filename text PRIMARY KEY,"
                      " checksum text NOT NULL,"
                      " applied_at timestamptz NOT NULL)") != 0) {
        PQfinish(c);
        return 1;
    }
    if (list_migrations(dir, &names, &n) != 0) {
        PQfinish(c);
        return 1;
    }
    for (size_t i = 0; i < n; i++) {
        if (apply_one(c, dir, names[i], status_only, &applied) != 0) {
            rc = 1;
            break;
        }
    }
    if (rc == 0 && !status_only)
        printf("migrate: %d applied, %zu known, database is current\n", applied, n);
    free_names(names, n);
    db_exec_best_effort(c, "SELECT pg_advisory_unlock(" UTIL_STR(MIGRATE_LOCK_KEY) ")");
    PQfinish(c);
    return rc;
}
