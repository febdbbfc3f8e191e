/*
 * e2etest.c - shared end-to-end test helpers (see e2etest.h).  The
 * clear-text search itself is tests/lib/cleartext.c's.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "tests/lib/e2etest.h"

#include "tests/lib/cleartext.h"
#include "tests/lib/runprog.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int e2e_ctl(const char *args, char *out, size_t cap)
{
    return runprog_line("cardgatectl", args, out, cap);
}

const struct sim_card *e2e_card(const struct sim_cards *cards, const char *want)
{
    const struct sim_card *c = sim_cards_find(cards, want);
    if (c == NULL)
        fail_msg("no demo card labelled %s", want);
    return c;
}

void e2e_absent(const char *hay, const char *where, const struct e2e_secret *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i].text[0] != '\0')
            cleartext_absent(hay, strlen(hay), s[i].text, where, s[i].what);
}

struct search_arg {
    const struct sim_cards *cards;
    const struct e2e_secret *s;
    size_t n;
};

/* The secrets plus the cards' PANs (cleartext_check adds the master key). */
static void search(const char *hay, size_t len, const char *where, void *arg)
{
    const struct search_arg *a = arg;
    for (size_t i = 0; i < a->cards->n; i++)
        cleartext_absent(hay, len, a->cards->v[i].pan, where, "a test PAN");
    for (size_t i = 0; i < a->n; i++)
        if (a->s[i].text[0] != '\0')
            cleartext_absent(hay, len, a->s[i].text, where, a->s[i].what);
}

void e2e_no_clear_text(const struct cgd *d, const char *conninfo, const struct sim_cards *cards,
                       const char *master, const struct e2e_secret *s, size_t n)
{
    char audit[600];
    struct search_arg a = {cards, s, n};

    snprintf(audit, sizeof(audit), "%s/audit", d->dir);
    cleartext_check(d->log, audit, conninfo, master, search, &a);
}

int e2e_keystore_setup(struct pgtest *pg, PGconn **conn, struct cgd *d, char *store, char *master,
                       size_t cap)
{
    if (pgtest_start(pg, 0) != 0)
        return -1;
    *conn = pgtest_connect(pg);
    if (*conn == NULL || cgd_init(d) != 0)
        return -1;
    snprintf(store, cap, "%s/keys", d->dir);
    snprintf(master, cap, "%s/master.key", d->dir);
    setenv("CARDGATE_KEYSTORE", store, 1);
    setenv("CARDGATE_MASTER_KEY", master, 1);
    unsetenv("CARDGATE_PAN_KEY_FILE");
    unsetenv("CARDGATE_CVK");
    if (e2e_ctl("key init-master --master $CARDGATE_MASTER_KEY", NULL, 0) != 0 ||
        e2e_ctl("key generate --name pan --type pan-hash", NULL, 0) != 0)
        return -1;
    return 0;
}

int e2e_import_components(const char *name, const char *type, const char *c1, const char *c2)
{
    char args[600], k1[16], k2[16];
    snprintf(args, sizeof(args), "crypto kcv --key %s", c1);
    if (e2e_ctl(args, k1, sizeof(k1)) != 0)
        return -1;
    snprintf(args, sizeof(args), "crypto kcv --key %s", c2);
    if (e2e_ctl(args, k2, sizeof(k2)) != 0)
        return -1;
    snprintf(args, sizeof(args),
             "key import --name %s --type %s --component %s --component-kcv %s --component %s "
             "--component-kcv %s",
             name, type, c1, k1, c2, k2);
    return e2e_ctl(args, NULL, 0);
}

void e2e_purchase_init(struct e2e_purchase *m, const char *pan, const char *expiry, unsigned stan,
                       const char *rrn3)
{
    m->n = 0;
    m->kv[0] = NULL;
    snprintf(m->f2, sizeof(m->f2), "2=%s", pan);
    e2e_kv_add(m, m->f2);
    e2e_kv_add(m, "3=000000");
    e2e_kv_add(m, "4=000000000700");
    snprintf(m->f7, sizeof(m->f7), "7=1122%06u", stan);
    e2e_kv_add(m, m->f7);
    snprintf(m->f11, sizeof(m->f11), "11=%06u", stan);
    e2e_kv_add(m, m->f11);
    e2e_kv_add(m, "12=101010");
    e2e_kv_add(m, "13=1122");
    snprintf(m->f14, sizeof(m->f14), "14=%s", expiry);
    e2e_kv_add(m, m->f14);
    e2e_kv_add(m, "18=5411");
    e2e_kv_add(m, "19=276");
    e2e_kv_add(m, "32=123456");
    snprintf(m->f37, sizeof(m->f37), "37=%.3s%09u", rrn3, stan);
    e2e_kv_add(m, m->f37);
    e2e_kv_add(m, "41=TERM0001");
    e2e_kv_add(m, "42=MERCHANT0000001");
}

void e2e_kv_add(struct e2e_purchase *m, const char *kv)
{
    assert_true(m->n + 1 < sizeof(m->kv) / sizeof(m->kv[0]));
    m->kv[m->n++] = kv;
    m->kv[m->n] = NULL;
}

int e2e_demo_seed(const struct cgd *d, char *cardsfile, size_t cap, struct sim_cards *cards)
{
    char args[600], e[256];
    snprintf(cardsfile, cap, "%s/cards.json", d->dir);
    snprintf(args, sizeof(args), "demo seed --out %s", cardsfile);
    if (e2e_ctl(args, NULL, 0) != 0)
        return -1;
    if (sim_cards_load(cardsfile, cards, e, sizeof(e)) != 0) {
        fprintf(stderr, "%s\n", e);
        return -1;
    }
    return 0;
}

const char *e2e_audit_dump(const struct cgd *d)
{
    static char out[4 << 20];
    char err[4096], args[600];
    snprintf(args, sizeof(args), "audit dump --dir %s/audit --json", d->dir);
    if (runprog("cardgatectl", args, out, sizeof(out), err, sizeof(err)) != 0)
        fail_msg("audit dump: %s", err);
    return out;
}

int e2e_start(struct cgd *d)
{
    if (cgd_start(d, NULL) != 0)
        return -1;
    return cgd_log_wait(d, "database connection ready", 5000) ? 0 : -1;
}

int e2e_stop(struct cgd *d, PGconn **conn, struct pgtest *pg)
{
    int rc = 0;
    if (d->pid > 0 && cgd_signal_wait(d, SIGTERM) != 0)
        rc = -1;
    cgd_cleanup(d);
    if (*conn != NULL)
        PQfinish(*conn);
    *conn = NULL;
    pgtest_stop(pg);
    return rc;
}
