/*
 * runprog.c - see runprog.h.  test_capture() runs the command; stderr goes
 * through a temporary file so it can be checked on its own.
 */
#include "tests/lib/runprog.h"

#include "common/util.h"
#include "tests/lib/capture.h"
#include "tests/lib/pgtest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int runprog(const char *prog, const char *args, char *out, size_t outcap, char *err, size_t errcap)
{
    char path[512], cmd[8192], errfile[] = "/tmp/cg-runprog-XXXXXX";
    int fd = mkstemp(errfile), rc;
    size_t len = 0;
    char *text;

    out[0] = err[0] = '\0';
    if (fd < 0)
        return -1;
    close(fd);
    snprintf(cmd, sizeof(cmd), "%s %s 2>%s", pgtest_prog(prog, path, sizeof(path)), args, errfile);
    rc = test_capture(cmd, out, outcap);
    text = util_read_file(errfile, 1 << 20, &len);
    if (text != NULL) {
        snprintf(err, errcap, "%s", text);
        free(text);
    }
    unlink(errfile);
    return rc;
}

int runprog_line(const char *prog, const char *args, char *out, size_t cap)
{
    static char o[1 << 16], e[4096];
    int rc = runprog(prog, args, o, sizeof(o), e, sizeof(e));
    if (rc != 0)
        fprintf(stderr, "%s %s: %s%s\n", prog, args, o, e);
    if (out != NULL) {
        size_t n = strcspn(o, "\n");
        if (n >= cap)
            n = cap - 1;
        memcpy(out, o, n);
        out[n] = '\0';
    }
    return rc;
}
