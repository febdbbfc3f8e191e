/*
 * e2etest.c - shared end-to-end test helpers (see e2etest.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "tests/lib/e2etest.h"

#include "common/util.h"
#include "tests/lib/capture.h"
#include "tests/lib/runprog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int e2e_ctl(const char *args, char *out, size_t cap)
{
    static char o[1 << 16], e[4096];
    int rc = runprog("cardgatectl", args, o, sizeof(o), e, sizeof(e));
    if (rc != 0)
        fprintf(stderr, "cardgatectl %s: %s%s\n", args, o, e);
    if (out != NULL) {
        size_t n = strcspn(o, "\n");
        if (n >= cap)
            n = cap - 1;
        memcpy(out, o, n);
        out[n] = '\0';
    }
    return rc;
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
        if (s[i].text[0] != '\0' && strstr(hay, s[i].text) != NULL)
            fail_msg("%s found in clear in %s", s[i].what, where);
}

/* The secrets plus the cards' PANs and the master key's hex. */
static void search(const char *hay, const char *where, const struct sim_cards *cards,
                   const char *mk, const struct e2e_secret *s, size_t n)
{
    for (size_t i = 0; i < cards->n; i++)
        e2e_absent(hay, where, &(struct e2e_secret){cards->v[i].pan, "a test PAN"}, 1);
    if (mk[0] != '\0')
        e2e_absent(hay, where, &(struct e2e_secret){mk, "the master key"}, 1);
    e2e_absent(hay, where, s, n);
}

void e2e_no_clear_text(const struct cgd *d, const char *conninfo, const struct sim_cards *cards,
                       const char *master, const struct e2e_secret *s, size_t n)
{
    static char out[4 << 20], err[4096];
    char args[600], cmd[1200], mk[80] = "";
    size_t len;

    char *m = master != NULL ? util_read_file(master, 4096, &len) : NULL;
    if (m != NULL) {
        snprintf(mk, sizeof(mk), "%.64s", m);
        free(m);
    }
    char *log = util_read_file(d->log, 64 << 20, &len);
    assert_non_null(log);
    search(log, "the daemon log", cards, mk, s, n);
    free(log);
    snprintf(args, sizeof(args), "audit dump --dir %s/audit --json", d->dir);
    assert_int_equal(runprog("cardgatectl", args, out, sizeof(out), err, sizeof(err)), 0);
    assert_true(strlen(out) > 100);
    search(out, "the audit log", cards, mk, s, n);
    snprintf(cmd, sizeof(cmd), "/usr/lib/postgresql/15/bin/pg_dump --data-only -d '%s' 2>&1",
             conninfo);
    assert_int_equal(test_capture(cmd, out, sizeof(out)), 0);
    assert_non_null(strstr(out, "COPY "));
    search(out, "the database (pg_dump)", cards, mk, s, n);
}
