/*
 * util.h - small helpers every program shares: files, hex, hashing, paths,
 * monotonic time.  Nothing here allocates on a hot path except where the
 * name says so (util_read_file).
 */
#ifndef CARDGATE_COMMON_UTIL_H
#define CARDGATE_COMMON_UTIL_H

#include <stddef.h>
#include <stdint.h>

#define UTIL_STR_(x)    #x
#define UTIL_STR(x)     UTIL_STR_(x)
#define UTIL_NELEM(a)   (sizeof(a) / sizeof((a)[0]))
#define UTIL_MUST_CHECK __attribute__((warn_unused_result))

/* Read a whole file (at most max bytes) into a NUL-terminated heap buffer. */
char *util_read_file(const char *path, size_t max, size_t *len);

/* Lower-case hex SHA-256 of data into out[65]. */
void util_sha256_hex(const void *data, size_t len, char out[65]);

/* Upper-case hex of len bytes into out (2*len+1 bytes). */
void util_hex_encode(const uint8_t *in, size_t len, char *out);
/* Value 0..15 of one hex digit (either case), or -1. */
int util_hex_digit(int c);
/*
 * Decode hex text (either case, even length) into out; returns the number of
 * bytes, or -1 on odd length, a non-hex digit or more than cap bytes.
 */
long util_hex_decode(const char *hex, uint8_t *out, size_t cap) UTIL_MUST_CHECK;

/* Where the migrations are: $CARDGATE_SQL_DIR, ./sql, or the installed copy. */
const char *util_sql_dir(void);

/* Monotonic clock in microseconds. */
int64_t util_now_us(void);
/* Wall clock (CLOCK_REALTIME) in microseconds since the epoch. */
int64_t util_wall_us(void);

/* fsync the directory dir (after a create or rename in it); 0 or -1 (errno). */
int util_fsync_dir(const char *dir) UTIL_MUST_CHECK;

#endif
