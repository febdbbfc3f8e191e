/*
 * test_ctl_crypto.c - `cardgatectl crypto` from outside, table-driven from
 * tests/data/crypto/ctl_cases.txt: exit status, the one output line, and
 * that no secret argument value (key, KEK, PVK, CVK, IMK, MK, PIN, PAN,
 * block) appears on stderr.
 */
#include "tests/lib/runprog.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static const char *const secret_opts[] = {"--key", "--kek", "--pvk", "--cvk",  "--imk",
                                          "--mk",  "--pin", "--pan", "--block"};

static char *trim(char *s)
{
    while (*s == ' ')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\n'))
        s[--n] = '\0';
    return s;
}

/* Run cardgatectl; the first line of stdout into out, stderr into err. */
static int run(const char *args, char *out, size_t outcap, char *err, size_t errcap)
{
    int rc = runprog("cardgatectl", args, out, outcap, err, errcap);
    out[strcspn(out, "\n")] = '\0';
    return rc;
}

static void t_cases(void **state)
{
    char line[1024], out[512], err[8192];
    int failures = 0, cases = 0;
    FILE *fp = fopen("tests/data/crypto/ctl_cases.txt", "r");
    (void)state;

    assert_non_null(fp);
    while (fgets(line, sizeof(line), fp) != NULL) {
        char *f1, *f2, *args, *save = NULL;
        if (line[0] == '#' || line[0] == '\n')
            continue;
        f1 = strtok_r(line, "|", &save);
        f2 = strtok_r(NULL, "|", &save);
        args = strtok_r(NULL, "\n", &save);
        assert_non_null(args);
        int want = atoi(trim(f1));
        char *want_out = trim(f2);
        args = trim(args);
        cases++;
        int rc = run(args, out, sizeof(out), err, sizeof(err));
        char *got = trim(out);
        if (rc != want || (want == 0 && strcmp(got, want_out) != 0) ||
            (want != 0 && got[0] != '\0')) {
            fprintf(stderr, "  case %d: exit %d, output differs\n", cases, rc);
            failures++;
        }
        if (want != 0 && err[0] == '\0') {
            fprintf(stderr, "  case %d: failed without a message\n", cases);
            failures++;
        }
        /* no secret value on stderr */
        char copy[1024], *tok, *s2 = NULL;
        const char *prev = "";
        snprintf(copy, sizeof(copy), "%s", args);
        for (tok = strtok_r(copy, " ", &s2); tok != NULL; tok = strtok_r(NULL, " ", &s2)) {
            for (size_t i = 0; i < sizeof(secret_opts) / sizeof(secret_opts[0]); i++)
                if (strcmp(prev, secret_opts[i]) == 0 && strlen(tok) >= 4 &&
                    strcasestr(err, tok) != NULL) {
                    fprintf(stderr, "  case %d: value of %s appears on stderr\n", cases, prev);
                    failures++;
                }
            prev = tok;
        }
    }
    fclose(fp);
    assert_true(cases >= 30);
    assert_int_equal(failures, 0);
}

/* Without OpenSSL's legacy provider (single DES) the tool says so and exits 1. */
static void t_no_legacy_provider(void **state)
{
    char out[256], err[1024];
    (void)state;
    setenv("OPENSSL_MODULES", "/nonexistent", 1);
    int rc = run("crypto kcv --key 0123456789ABCDEFFEDCBA9876543210", out, sizeof(out), err,
                 sizeof(err));
    unsetenv("OPENSSL_MODULES");
    assert_int_equal(rc, 1);
    assert_string_equal(out, "");
    assert_non_null(strstr(err, "legacy provider not available"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_cases),
        cmocka_unit_test(t_no_legacy_provider),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
