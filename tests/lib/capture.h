/*
 * capture.h - run a shell command from a test and keep its output.
 */
#ifndef CARDGATE_TESTS_CAPTURE_H
#define CARDGATE_TESTS_CAPTURE_H

#include <stddef.h>

/*
 * Run cmd with popen (add "2>&1" to see stderr), store at most cap-1 bytes
 * of its stdout NUL-terminated in out, and return its exit status (-1 when
 * it did not exit normally or could not start).
 */
int test_capture(const char *cmd, char *out, size_t cap);

#endif
