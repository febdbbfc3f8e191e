/*
 * vectors.h - where the public payment-crypto vectors are, for tests:
 * $CARDGATE_VECTORS (the JSON file, or the directory holding it), else
 * ../shared/vectors/payment-crypto.json from the repo root (CI layout),
 * else ../../shared/vectors/ (a worktree under wt/).
 */
#ifndef CARDGATE_TESTS_VECTORS_H
#define CARDGATE_TESTS_VECTORS_H

#include "common/json.h"

#include <stdint.h>

/* The parsed vector file; aborts the test program with a message if absent. */
struct json *vectors_load(void);
/* The array of one category, or NULL. */
const struct json *vectors_category(const struct json *root, const char *name);

/* Hex member of a vector into out; returns the byte count, aborts when malformed. */
size_t vec_hex(const struct json *v, const char *key, uint8_t *out, size_t cap);

#endif
