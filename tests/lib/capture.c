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
    assert_non_null(p);
    while (n + 1 < cap) {
        size_t r = fread(out + n, 1, cap - 1 - n, p);
        if (r == 0)
            break;
        n += r;
    }
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}
