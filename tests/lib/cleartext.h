/*
 * cleartext.h - the end-to-end search for secrets in clear: run a check
 * over everything a deployment keeps (the daemon's log, the audit log as
 * `cardgatectl audit dump --json` prints it, every table as `pg_dump
 * --data-only` prints it) and fail the cmocka test when a needle shows.
 *
 *   static void search(const char *hay, size_t len, const char *where, void *arg)
 *   {
 *       cleartext_absent(hay, len, card_pan, where, "a test PAN");
 *   }
 *   cleartext_check(d.log, audit_dir, pg.conninfo, master_key_file, search, NULL);
 */
#ifndef CARDGATE_TESTS_LIB_CLEARTEXT_H
#define CARDGATE_TESTS_LIB_CLEARTEXT_H

#include <stddef.h>

typedef void (*cleartext_fn)(const char *hay, size_t len, const char *where, void *arg);

/*
 * Call fn on the daemon log at log_path, the audit dump of audit_dir and
 * the data-only dump of the database at conninfo (each must be readable and
 * non-trivial, or the test fails); and check that none holds the master key
 * of the key store (master_key_file's 64 hex digits; NULL: none).
 */
void cleartext_check(const char *log_path, const char *audit_dir, const char *conninfo,
                     const char *master_key_file, cleartext_fn fn, void *arg);

/* Fail the test when needle occurs in hay (what names it; the needle is never printed). */
void cleartext_absent(const char *hay, size_t len, const char *needle, const char *where,
                      const char *what);

/* The same for len bytes of binary data. */
void cleartext_absent_bytes(const char *hay, size_t len, const void *needle, size_t nlen,
                            const char *where, const char *what);

#endif
