/*
 * runprog.c - see runprog.h.
 */
#include "tests/lib/runprog.h"

#include "tests/lib/pgtest.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

/* Read a whole stream into buf[cap], NUL-terminated. */
static void slurp(FILE *fp, char *buf, size_t cap)
{
    size_t n = 0;
    int c;
    while ((c = fgetc(fp)) != EOF)
        if (n + 1 < cap)
            buf[n++] = (char)c;
    buf[n] = '\0';
}

int runprog(const char *prog, const char *args, char *out, size_t outcap, char *err, size_t errcap)
{
    char path[512], cmd[8192], errfile[] = "/tmp/cg-runprog-XXXXXX";
    int fd = mkstemp(errfile), st;
    FILE *p, *e;

    out[0] = err[0] = '\0';
    if (fd < 0)
        return -1;
    snprintf(cmd, sizeof(cmd), "%s %s 2>%s", pgtest_prog(prog, path, sizeof(path)), args, errfile);
    p = popen(cmd, "r");
    if (p == NULL) {
        close(fd);
        unlink(errfile);
        return -1;
    }
    slurp(p, out, outcap);
    st = pclose(p);
    e = fdopen(fd, "r");
    if (e != NULL) {
        slurp(e, err, errcap);
        fclose(e);
    } else {
        close(fd);
    }
    unlink(errfile);
    return (st != -1 && WIFEXITED(st)) ? WEXITSTATUS(st) : -1;
}
