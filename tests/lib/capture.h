/*
 * capture.h - run a shell command from a test and capture its output.
 */
#ifndef CARDGATE_TESTS_LIB_CAPTURE_H
#define CARDGATE_TESTS_LIB_CAPTURE_H

#include <stddef.h>

/*
 * Run cmd under sh (popen), read its stdout (stderr too when cmd says 2>&1)
 * into out[0..cap) NUL-terminated; return its exit status, -1 when it died
 * of a signal.  A command that cannot start fails the current cmocka test.
 */
int test_capture(const char *cmd, char *out, size_t cap);

/* Lines (newline characters) in s. */
unsigned test_lines(const char *s);

#endif
