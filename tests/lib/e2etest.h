/*
 * e2etest.h - helpers the end-to-end tests against a real cardgated and
 * PostgreSQL share (test_e2e_crypto, test_e2e_macemv):
 *
 *   e2e_ctl("key generate --name pan --type pan-hash", NULL, 0);
 *   c = e2e_card(&cards, "approved");
 *   e2e_no_clear_text(&d, pg.conninfo, secrets, nsecrets);
 */
#ifndef CARDGATE_TESTS_LIB_E2ETEST_H
#define CARDGATE_TESTS_LIB_E2ETEST_H

#include "tests/lib/cgdtest.h"
#include "tests/lib/pgtest.h"
#include "tools/sim/cards.h"

#include <stddef.h>

/* Run cardgatectl ARGS (shell words); its first output line into out (may be NULL). */
int e2e_ctl(const char *args, char *out, size_t cap);

/* The first card whose label contains want; fails the test when there is none. */
const struct sim_card *e2e_card(const struct sim_cards *cards, const char *want);

/* A text that must never appear in clear, and what to call it in a failure. */
struct e2e_secret {
    const char *text;
    const char *what; /* "a test PAN", "the CVK" ... (the text itself is never printed) */
};

/* Fail the test when any secret occurs in hay (where: "the daemon log" ...). */
void e2e_absent(const char *hay, const char *where, const struct e2e_secret *s, size_t n);

/*
 * Search d's log, its audit log (cardgatectl audit dump --json of d->dir/audit)
 * and every table (pg_dump --data-only of conninfo) for the secrets, the
 * cards' PANs and the master key file's hex (master: its path, or NULL).
 */
void e2e_no_clear_text(const struct cgd *d, const char *conninfo, const struct sim_cards *cards,
                       const char *master, const struct e2e_secret *s, size_t n);

/*
 * The start of a group setup with a key store: a throwaway PostgreSQL (pg,
 * *conn), d's directory, and in it a master key and a key store holding the
 * PAN-hash key "pan" (their paths into store and master, cap bytes each);
 * CARDGATE_KEYSTORE and CARDGATE_MASTER_KEY set for cardgatectl,
 * CARDGATE_PAN_KEY_FILE and CARDGATE_CVK unset.  0 or -1.
 */
int e2e_keystore_setup(struct pgtest *pg, PGconn **conn, struct cgd *d, char *store, char *master,
                       size_t cap);

/*
 * Import key NAME of TYPE into the key store from two clear components
 * (hex) with their KCVs, as a key ceremony would (test keys only).  0 or -1.
 */
int e2e_import_components(const char *name, const char *type, const char *c1, const char *c2);

/*
 * The fields of a test purchase (0100) over the wire: 2 pan, 3 000000, 4
 * 7.00, 7/11 from stan, 12/13, 14 expiry, 18 5411, 19 276, 32 123456, 37
 * rrn3 + 9 digits of stan, 41, 42.  Callers add what differs (22, 35, 48,
 * 49, 52 ...) with e2e_kv_add, then build with cgd_buildv(..., m.kv).
 */
struct e2e_purchase {
    char f2[32], f7[16], f11[16], f14[16], f37[20];
    const char *kv[32];
    size_t n;
};
void e2e_purchase_init(struct e2e_purchase *m, const char *pan, const char *expiry, unsigned stan,
                       const char *rrn3);
/* Add "N=value" (or "N#HEX"); kv stays NULL-terminated. */
void e2e_kv_add(struct e2e_purchase *m, const char *kv);

/*
 * cardgatectl demo seed into DIR/cards.json (its path into cardsfile, cap
 * bytes) and load it into cards.  0 or -1 (the reason printed).
 */
int e2e_demo_seed(const struct cgd *d, char *cardsfile, size_t cap, struct sim_cards *cards);

/* d's audit log as `cardgatectl audit dump --json` prints it (a static buffer). */
const char *e2e_audit_dump(const struct cgd *d);

/*
 * Start d (cgd_start) and wait up to 5 s for its first pool connection:
 * "ready:" comes with the listeners, requests need the database.  0 or -1.
 */
int e2e_start(struct cgd *d);

/*
 * A group teardown: SIGTERM d and wait (a sanitizer report or a bad exit
 * makes it -1), remove its directory, close *conn (may be NULL) and stop pg.
 */
int e2e_stop(struct cgd *d, PGconn **conn, struct pgtest *pg);

#endif
