/*
 * capture.c - see capture.h.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "tests/lib/capture.h"

#include <stdio.h>
#include <sys/wait.h>

int test_capture(const char *cmd, char *out, size_t cap)
{
    FILE *p = popen(cmd, "r");
    size_t n = 0;
    char sink[4096];
    assert_non_null(p);
    /* read to the end even past cap, so the child never blocks on a full pipe */
    for (;;) {
        size_t r =
            n + 1 < cap ? fread(out + n, 1, cap - 1 - n, p) : fread(sink, 1, sizeof(sink), p);
        if (r == 0)
            break;
        if (n + 1 < cap)
            n += r;
    }
    if (cap > 0)
        out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

unsigned test_lines(const char *s)
{
    unsigned n = 0;
    for (; *s != '\0'; s++)
        n += *s == '\n';
    return n;
}
