/*
 * test_cardgated_cli.c - `cardgated -t -c FILE` checks a configuration the
 * way `nginx -t` does: exit 0 for a good file, exit 2 and "FILE:LINE:
 * message" on stderr for a bad one; usage errors exit 2.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "tests/lib/capture.h"
#include "tests/lib/pgtest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

static void test_check_good(void **state)
{
    (void)state;
    char prog[256], cmd[600], out[2048];
    pgtest_prog("cardgated", prog, sizeof(prog));
    snprintf(cmd, sizeof(cmd), "%s -t -c tests/data/conf/good/full.conf 2>&1", prog);
    assert_int_equal(test_capture(cmd, out, sizeof(out)), 0);
    assert_non_null(strstr(out, "configuration is valid (2 listeners)"));
    /* the shipped example is valid too */
    snprintf(cmd, sizeof(cmd), "%s -t -c conf/cardgated.conf.example 2>&1", prog);
    assert_int_equal(test_capture(cmd, out, sizeof(out)), 0);
}

static void test_check_typo(void **state)
{
    (void)state;
    char prog[256], cmd[600], out[2048];
    pgtest_prog("cardgated", prog, sizeof(prog));
    snprintf(cmd, sizeof(cmd), "%s -t -c tests/data/conf/bad/unknown_key.conf 2>&1", prog);
    assert_int_equal(test_capture(cmd, out, sizeof(out)), 2);
    assert_string_equal(out, "tests/data/conf/bad/unknown_key.conf:4: unknown key 'listne' in "
                             "[listener main]\n");
}

static void test_usage(void **state)
{
    (void)state;
    char prog[256], cmd[600], out[2048];
    pgtest_prog("cardgated", prog, sizeof(prog));
    snprintf(cmd, sizeof(cmd), "%s -t 2>&1", prog);
    assert_int_equal(test_capture(cmd, out, sizeof(out)), 2);
    assert_non_null(strstr(out, "usage: cardgated"));
    snprintf(cmd, sizeof(cmd), "%s -t -c /nonexistent/cardgated.conf 2>&1", prog);
    assert_int_equal(test_capture(cmd, out, sizeof(out)), 2);
    assert_non_null(strstr(out, "/nonexistent/cardgated.conf: cannot open"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check_good),
        cmocka_unit_test(test_check_typo),
        cmocka_unit_test(test_usage),
    };
    return cmocka_run_group_tests_name("cardgated_cli", tests, NULL, NULL);
}
