/*
 * test_pgtmp.c - the throwaway PostgreSQL tool every database test, `make
 * run` and the benchmarks stand on: start, query through libpq, two
 * clusters side by side, refusing a second start, and a stop that leaves
 * nothing running and nothing behind.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "tests/lib/pgtest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

static int run(const char *cmd)
{
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int port_listening(const char *port)
{
    char cmd[200];
    snprintf(cmd, sizeof(cmd), "ss -Htln 'sport = :%s' | grep -q .", port);
    return run(cmd) == 0;
}

static void test_start_query_stop(void **state)
{
    (void)state;
    struct pgtest pg;
    struct stat st;

    assert_int_equal(pgtest_start(&pg, 0), 0);
    PGconn *c = pgtest_connect(&pg);
    assert_non_null(c);
    char *v = pgtest_scalar(c, "SELECT 40 + 2");
    assert_non_null(v);
    assert_string_equal(v, "42");
    free(v);
    v = pgtest_scalar(c, "SHOW server_version_num");
    assert_non_null(v);
    assert_true(atoi(v) >= 150000 && atoi(v) < 160000);
    free(v);
    /* migrations were applied: the bookkeeping table exists */
    v = pgtest_scalar(c, "SELECT count(*) >= 0 FROM schema_migrations");
    assert_non_null(v);
    assert_string_equal(v, "t");
    free(v);
    /* the unix socket lives inside the cluster's directory */
    assert_non_null(strstr(pg.host, "/sock"));
    /* loopback TCP too */
    char ci[200];
    snprintf(ci, sizeof(ci), "host=127.0.0.1 port=%s dbname=cardgate user=cardgate", pg.port);
    PGconn *tcp = PQconnectdb(ci);
    assert_int_equal(PQstatus(tcp), CONNECTION_OK);
    PQfinish(tcp);
    PQfinish(c);

    char port[16];
    snprintf(port, sizeof(port), "%s", pg.port);
    assert_true(port_listening(port));
    pgtest_stop(&pg);
    assert_false(port_listening(port));
    assert_int_equal(stat(pg.dir, &st), -1);
}

static void test_two_side_by_side(void **state)
{
    (void)state;
    struct pgtest a, b;
    assert_int_equal(pgtest_start(&a, 0), 0);
    assert_int_equal(pgtest_start(&b, PGTEST_DURABLE), 0);
    assert_string_not_equal(a.port, b.port);
    PGconn *ca = pgtest_connect(&a), *cb = pgtest_connect(&b);
    assert_non_null(ca);
    assert_non_null(cb);
    PQclear(PQexec(ca, "CREATE TABLE only_in_a (x int)"));
    char *v = pgtest_scalar(cb, "SELECT count(*) FROM pg_tables WHERE tablename = 'only_in_a'");
    assert_string_equal(v, "0");
    free(v);
    v = pgtest_scalar(cb, "SHOW fsync");
    assert_string_equal(v, "on");
    free(v);
    v = pgtest_scalar(ca, "SHOW fsync");
    assert_string_equal(v, "off");
    free(v);
    PQfinish(ca);
    PQfinish(cb);
    pgtest_stop(&a);
    pgtest_stop(&b);
}

static void test_misuse_is_clear(void **state)
{
    (void)state;
    struct pgtest pg;
    char cmd[700];

    assert_int_equal(pgtest_start(&pg, 0), 0);
    /* a second start in the same directory refuses, quickly and clearly */
    snprintf(cmd, sizeof(cmd),
             "tests/pgtmp start '%s' 2>&1 | grep -q 'already running' && "
             "! tests/pgtmp start '%s' >/dev/null 2>&1",
             pg.dir, pg.dir);
    assert_int_equal(run(cmd), 0);
    pgtest_stop(&pg);
    /* stopping what is gone says so and fails, without hanging */
    snprintf(cmd, sizeof(cmd), "tests/pgtmp stop '%s' 2>&1 | grep -q 'does not exist'", pg.dir);
    assert_int_equal(run(cmd), 0);
    snprintf(cmd, sizeof(cmd), "tests/pgtmp stop '%s' >/dev/null 2>&1", pg.dir);
    assert_int_equal(run(cmd), 1);
    /* a directory that is not a cluster is never removed */
    assert_int_equal(run("d=$(mktemp -d) && touch $d/keep && ! tests/pgtmp stop $d 2>/dev/null "
                         "&& test -f $d/keep && rm -rf $d"),
                     0);
    /* a stopped cluster is reported and then cleaned by stop */
    assert_int_equal(pgtest_start(&pg, 0), 0);
    char ctl[900];
    snprintf(ctl, sizeof(ctl),
             "h=$(cat '%s/.pgtmp-home' 2>/dev/null || echo '%s'); "
             "if [ $(id -u) = 0 ]; then runuser -u postgres -- "
             "$(ls -d /usr/lib/postgresql/15/bin)/pg_ctl -D $h/data -w stop >/dev/null; "
             "else /usr/lib/postgresql/15/bin/pg_ctl -D $h/data -w stop >/dev/null; fi",
             pg.dir, pg.dir);
    assert_int_equal(run(ctl), 0);
    snprintf(cmd, sizeof(cmd), "tests/pgtmp status '%s' >/dev/null", pg.dir);
    assert_int_equal(run(cmd), 1);
    snprintf(cmd, sizeof(cmd), "tests/pgtmp stop '%s' 2>&1 | grep -q 'was not running'", pg.dir);
    assert_int_equal(run(cmd), 0);
    pg.running = false;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_start_query_stop),
        cmocka_unit_test(test_two_side_by_side),
        cmocka_unit_test(test_misuse_is_clear),
    };
    return cmocka_run_group_tests_name("pgtmp", tests, NULL, NULL);
}
