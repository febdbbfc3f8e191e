/*
 * runcmd.c - see runcmd.h.
 */
#include "tests/lib/runcmd.h"

#include <stdio.h>
#include <sys/wait.h>

/* See runcmd.h. */
int runcmd_capture(const char *cmd, char *out, size_t cap)
{
    FILE *p = popen(cmd, "r");
    size_t n = 0;
    char sink[4096];
    if (p == NULL)
        return -1;
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

/* See runcmd.h. */
unsigned runcmd_lines(const char *s)
{
    unsigned n = 0;
    for (; *s != '\0'; s++)
        n += *s == '\n';
    return n;
}
