/*
 * audittest.h - helpers for the audit log tests: scratch directories,
 * Ed25519 keys, a sample log, and the byte surgery the tamper tests apply
 * to segment files.  Failures abort the test (cmocka's fail()).
 */
#ifndef CARDGATE_TESTS_AUDITTEST_H
#define CARDGATE_TESTS_AUDITTEST_H

#include "daemon/audit.h"

#include <stddef.h>
#include <stdint.h>

/* mkdtemp under $TMPDIR (or /tmp) into out; rm -rf it with audittest_rmdir */
void audittest_mkdtemp(char *out, size_t cap);
void audittest_rmdir(const char *dir);

/* a fresh Ed25519 key pair */
EVP_PKEY *audittest_keygen(void);
/* its public half as PEM (hex = false) or 64 hex digits (hex = true) in path */
void audittest_write_pubkey(EVP_PKEY *k, const char *path, bool hex);

/* A request/answer pair's fields for transaction i (masked from a clear test PAN). */
void audittest_tx(struct audit_tx *tx, unsigned i, const char *clear_pan);

/*
 * Write a log of n transactions (request + answer each) into dir with the
 * given segment size, signed with key (may be NULL), closed cleanly.
 */
void audittest_write_log(const char *dir, unsigned n, uint64_t segment_size, EVP_PKEY *key);

/* the path of the segment whose first sequence number is seq */
void audittest_seg_path(const char *dir, uint64_t seq, char *out, size_t cap);
/* the i-th (0-based) segment file of dir */
void audittest_nth_seg(const char *dir, unsigned i, char *out, size_t cap);

/* Whole-file read and write (heap buffer, caller frees). */
uint8_t *audittest_read(const char *path, size_t *len);
void audittest_write(const char *path, const uint8_t *buf, size_t len);

/* offset and length (with prefix) of the record with sequence number seq in a segment buffer */
void audittest_find_rec(const uint8_t *buf, size_t len, uint64_t seq, size_t *off, size_t *reclen);

/*
 * Recompute every prev hash and checkpoint chain field after an edit, as a
 * forger without the signing key would: the chain is whole again, the old
 * signatures no longer match.
 */
void audittest_rechain(const char *dir);

#endif
