/*
 * test_cardchk.c - daemon/cardchk.c: CVV2 from field 48 subelement 92 and
 * CVV/iCVV from track 2 (field 35, by field 22) and their results for
 * auth_request, table-driven from tests/data/cardchk/cvv2.txt and track2.txt
 * (one cmocka test per line, named by the line), with a key set built in
 * memory (a CVK and, to check the type guard, a PVK).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/util.h"
#include "crypto/keystore.h"
#include "daemon/cardchk.h"
#include "iso8583/iso8583.h"
#include "tests/lib/keytest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DATA    "tests/data/cardchk/cvv2.txt"
#define DATA_T2 "tests/data/cardchk/track2.txt"
#define MAXCASE 64

struct tcase {
    char name[128];
    char f48[64], pan[24], expiry[8], cvk[32], result[8];
    int find;
};

static struct tcase cases[MAXCASE];
static size_t ncases;

struct t2case {
    char name[128];
    char f35[64], f22[8], cvk[32], result[8];
    int pos;
};

static struct t2case t2cases[MAXCASE];
static size_t nt2;
static struct keyset *ks;

static void put_key(const char *name, enum ks_type t, const char *hex)
{
    keytest_put(ks, name, t, KS_ALG_TDES, hex);
}

static void run_case(void **state)
{
    const struct tcase *c = *state;
    struct iso_msg m;
    char v[4];

    iso_msg_init(&m);
    if (strcmp(c->f48, "-") != 0)
        assert_int_equal(iso_set(&m, 48, c->f48, strlen(c->f48)), 0);
    assert_int_equal(cardchk_find_cvv2(&m, v), c->find);
    if (c->find == 1)
        assert_int_equal(strlen(v), 3);
    const char *exp = strcmp(c->expiry, "-") == 0 ? "" : c->expiry;
    const char *cvk = strcmp(c->cvk, "-") == 0 ? "" : c->cvk;
    assert_string_equal(cardchk_cvv2(ks, cvk, &m, c->pan, exp), c->result);
    /* without a key set nothing is checked */
    assert_string_equal(cardchk_cvv2(NULL, cvk, &m, c->pan, exp), "absent");
}

/* The master key path: the file, or $CREDENTIALS_DIRECTORY/NAME for a credential. */
static void test_master_path(void **state)
{
    static struct cg_config cfg;
    char buf[64];
    (void)state;
    cg_config_defaults(&cfg);
    snprintf(cfg.master_key_file, sizeof(cfg.master_key_file), "/etc/cardgate/master.key");
    assert_string_equal(cardchk_master_path(&cfg, buf, sizeof(buf)), "/etc/cardgate/master.key");
    cfg.master_key_file[0] = '\0';
    snprintf(cfg.master_key_credential, sizeof(cfg.master_key_credential), "cardgate-master");
    setenv("CREDENTIALS_DIRECTORY", "/run/credentials/cardgated.service", 1);
    assert_string_equal(cardchk_master_path(&cfg, buf, sizeof(buf)),
                        "/run/credentials/cardgated.service/cardgate-master");
    assert_null(cardchk_master_path(&cfg, buf, 20)); /* does not fit */
    unsetenv("CREDENTIALS_DIRECTORY");
    assert_null(cardchk_master_path(&cfg, buf, sizeof(buf)));
}

static void run_t2(void **state)
{
    const struct t2case *c = *state;
    struct iso_msg m;

    iso_msg_init(&m);
    if (strcmp(c->f35, "-") != 0)
        assert_int_equal(iso_set(&m, 35, c->f35, strlen(c->f35)), 0);
    if (strcmp(c->f22, "-") != 0)
        assert_int_equal(iso_set(&m, 22, c->f22, strlen(c->f22)), 0);
    const char *cvk = strcmp(c->cvk, "-") == 0 ? "" : c->cvk;
    assert_string_equal(cardchk_cvv_track2(ks, cvk, c->pos, &m), c->result);
    assert_string_equal(cardchk_cvv_track2(NULL, cvk, c->pos, &m), "absent");
}

static void load_t2(void)
{
    FILE *f = fopen(DATA_T2, "r");
    char line[512];
    unsigned lineno = 0;
    if (f == NULL) {
        fprintf(stderr, "cannot open %s\n", DATA_T2);
        exit(1);
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        lineno++;
        if (line[0] == '#' || line[0] == '\n')
            continue;
        struct t2case *c = &t2cases[nt2];
        if (nt2 == MAXCASE || sscanf(line, "%63s | %7s | %d | %31s | %7s", c->f35, c->f22, &c->pos,
                                     c->cvk, c->result) != 5) {
            fprintf(stderr, "%s:%u: malformed line\n", DATA_T2, lineno);
            exit(1);
        }
        char res[8];
        memcpy(res, c->result, sizeof(res));
        snprintf(c->name, sizeof(c->name), "%s:%u %s", DATA_T2, lineno, res);
        nt2++;
    }
    fclose(f);
}

static int setup(void **state)
{
    char err[128];
    (void)state;
    if (crypto_init(err, sizeof(err)) != 0)
        return -1;
    ks = keyset_new();
    put_key("cvk1", KS_CVK, "0123456789ABCDEFFEDCBA9876543210");
    put_key("pvk1", KS_PVK, "0123456789ABCDEFFEDCBA9876543210");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    keyset_unref(ks);
    return 0;
}

static void load_cases(void)
{
    FILE *f = fopen(DATA, "r");
    char line[512];
    unsigned lineno = 0;
    if (f == NULL) {
        fprintf(stderr, "cannot open %s\n", DATA);
        exit(1);
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        lineno++;
        if (line[0] == '#' || line[0] == '\n')
            continue;
        struct tcase *c = &cases[ncases];
        if (ncases == MAXCASE || sscanf(line, "%63s | %23s | %7s | %31s | %d | %7s", c->f48, c->pan,
                                        c->expiry, c->cvk, &c->find, c->result) != 6) {
            fprintf(stderr, "%s:%u: malformed line\n", DATA, lineno);
            exit(1);
        }
        char res[8];
        memcpy(res, c->result, sizeof(res));
        snprintf(c->name, sizeof(c->name), "%s:%u %s", DATA, lineno, res);
        ncases++;
    }
    fclose(f);
}

int main(void)
{
    static struct CMUnitTest tests[2 * MAXCASE + 1];
    size_t n = 0;
    tests[n++] = (struct CMUnitTest){"master_path", test_master_path, NULL, NULL, NULL};
    load_cases();
    load_t2();
    for (size_t i = 0; i < ncases; i++)
        tests[n++] = (struct CMUnitTest){cases[i].name, run_case, NULL, NULL, &cases[i]};
    for (size_t i = 0; i < nt2; i++)
        tests[n++] = (struct CMUnitTest){t2cases[i].name, run_t2, NULL, NULL, &t2cases[i]};
    return _cmocka_run_group_tests("cardchk", tests, n, setup, teardown);
}
