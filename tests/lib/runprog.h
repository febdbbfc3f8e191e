/*
 * runprog.h - run a built program (cardgatectl ...) from a test through the
 * shell and capture its exit status, stdout and stderr.
 */
#ifndef CARDGATE_TESTS_RUNPROG_H
#define CARDGATE_TESTS_RUNPROG_H

#include <stddef.h>

/*
 * Run "$CARDGATE_BUILD/<prog> <args>" (args are shell words, test-controlled)
 * through test_capture(), stdout into out[outcap] and stderr into
 * err[errcap], both NUL-terminated and truncated to fit.  Returns the exit
 * status, or -1 when the program did not exit normally.
 */
int runprog(const char *prog, const char *args, char *out, size_t outcap, char *err, size_t errcap);

/*
 * runprog with the first line of stdout into out[cap] (out may be NULL);
 * when the exit status is not 0 the command's output goes to stderr.
 * Returns the exit status.
 */
int runprog_line(const char *prog, const char *args, char *out, size_t cap);

#endif
