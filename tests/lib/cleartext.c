/*
 * cleartext.c - see cleartext.h.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "tests/lib/cleartext.h"

#include "common/util.h"
#include "tests/lib/capture.h"
#include "tests/lib/runprog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cleartext_absent_bytes(const char *hay, size_t len, const void *needle, size_t nlen,
                            const char *where, const char *what)
{
    if (nlen > 0 && memmem(hay, len, needle, nlen) != NULL)
        fail_msg("%s found in clear in %s", what, where);
}

void cleartext_absent(const char *hay, size_t len, const char *needle, const char *where,
                      const char *what)
{
    cleartext_absent_bytes(hay, len, needle, strlen(needle), where, what);
}

/* fn, then the master key check, on one text. */
static void check_one(const char *hay, size_t len, const char *where, const char *mk,
                      cleartext_fn fn, void *arg)
{
    fn(hay, len, where, arg);
    if (mk[0] != '\0')
        cleartext_absent(hay, len, mk, where, "the master key");
}

void cleartext_check(const char *log_path, const char *audit_dir, const char *conninfo,
                     const char *master_key_file, cleartext_fn fn, void *arg)
{
    static char out[4 << 20], err[4096];
    char args[600], cmd[1200], mk[80] = "";
    size_t len;

    char *m = master_key_file != NULL ? util_read_file(master_key_file, 4096, &len) : NULL;
    if (m != NULL) {
        snprintf(mk, sizeof(mk), "%.64s", m);
        free(m);
    }
    char *log = util_read_file(log_path, 64 << 20, &len);
    assert_non_null(log);
    check_one(log, len, "the daemon log", mk, fn, arg);
    free(log);
    snprintf(args, sizeof(args), "audit dump --dir %s --json", audit_dir);
    assert_int_equal(runprog("cardgatectl", args, out, sizeof(out), err, sizeof(err)), 0);
    assert_true(strlen(out) > 100);
    check_one(out, strlen(out), "the audit log", mk, fn, arg);
    snprintf(cmd, sizeof(cmd), "/usr/lib/postgresql/15/bin/pg_dump --data-only -d '%s' 2>&1",
             conninfo);
    assert_int_equal(test_capture(cmd, out, sizeof(out)), 0);
    assert_non_null(strstr(out, "COPY "));
    check_one(out, strlen(out), "the database (pg_dump)", mk, fn, arg);
}
