/*
 * runcmd.h - run a shell command from a test and capture its output.
 */
#ifndef CARDGATE_TESTS_RUNCMD_H
#define CARDGATE_TESTS_RUNCMD_H

#include <stddef.h>

/*
 * Run cmd through popen, NUL-terminated stdout into out (truncated to cap -
 * 1 bytes; redirect stderr in cmd to see it).  Returns the exit status, or
 * -1 when the command did not exit normally.
 */
int runcmd_capture(const char *cmd, char *out, size_t cap);

/* Lines (newline characters) in s. */
unsigned runcmd_lines(const char *s);

#endif
