/*
 * test_sim_scenario.c - `cardgate-sim scenario` against the test responder
 * deciding by the cards file (tests/data/sim/cards.json): every step
 * matches, the output never holds a clear PAN or CVV2, a wrong answer makes
 * the run fail, --json parses; and the cards file reader.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/json.h"
#include "tests/lib/responder.h"
#include "tools/sim/scenario.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CARDS "tests/data/sim/cards.json"

static struct sim_cards Cards;

/* The issuer's decision for the test cards, keyed by the card's label. */
static const char *decide(const struct iso_msg *m, void *arg)
{
    const struct sim_cards *cards = arg;
    const struct iso_view *pan = iso_get(m, 2);
    if (memcmp(m->mti, "0400", 4) == 0)
        return "00";
    const struct sim_card *c = NULL;
    for (size_t i = 0; pan && i < cards->n; i++)
        if (strlen(cards->v[i].pan) == pan->len && memcmp(cards->v[i].pan, pan->p, pan->len) == 0)
            c = &cards->v[i];
    if (!c)
        return "14";
    const struct iso_view *v48 = iso_get(m, 48), *v18 = iso_get(m, 18), *v4 = iso_get(m, 4);
    if (strstr(c->label, "expired"))
        return "54";
    if (strstr(c->label, "frozen"))
        return "62";
    if (v48 && (v48->len != 7 || memcmp(v48->p + 4, c->cvv2, 3) != 0))
        return "N7";
    if (v18 && memcmp(v18->p, "7995", 4) == 0)
        return "57";
    long amount = 0;
    char a[13];
    if (v4) {
        memcpy(a, v4->p, 12);
        a[12] = '\0';
        amount = strtol(a, NULL, 10);
    }
    if (strstr(c->label, "over_limit") && amount > 100000)
        return "61";
    if (strstr(c->label, "insufficient") && amount > 1000)
        return "51";
    return "00";
}

/*
 * The issuer for the demo seed's cards (tests/data/sim/cards_seed.json, the
 * shape `cardgatectl demo seed --out` writes): every card answers its
 * "expect", a wrong CVV2 N7, an unknown PAN 14, a reversal 00.
 */
static const char *decide_seed(const struct iso_msg *m, void *arg)
{
    const struct sim_cards *cards = arg;
    const struct iso_view *pan = iso_get(m, 2), *v48 = iso_get(m, 48);
    if (memcmp(m->mti, "0400", 4) == 0)
        return "00";
    for (size_t i = 0; pan && i < cards->n; i++) {
        const struct sim_card *c = &cards->v[i];
        if (strlen(c->pan) != pan->len || memcmp(c->pan, pan->p, pan->len) != 0)
            continue;
        if (v48 && (v48->len != 7 || memcmp(v48->p + 4, c->cvv2, 3) != 0))
            return "N7";
        return c->expect;
    }
    return "14";
}

static const char *always_ok(const struct iso_msg *m, void *arg)
{
    (void)m;
    (void)arg;
    return "00";
}

static int setup(void **state)
{
    (void)state;
    char err[200];
    return sim_cards_load(CARDS, &Cards, err, sizeof(err));
}

static int teardown(void **state)
{
    (void)state;
    sim_cards_free(&Cards);
    return 0;
}

/* Run the scenario against a responder with the given decision; output in *buf. */
static int run_cards(const struct sim_cards *cards,
                     const char *(*dec)(const struct iso_msg *, void *), bool json, char **buf)
{
    struct sim_link link;
    char err[200];
    assert_int_equal(sim_link_init(&link, "ascii87", "len2", err, sizeof(err)), 0);
    struct responder_opts ro = {.link = &link, .decide = dec, .decide_arg = (void *)cards};
    char addr[64];
    struct responder *resp = responder_start(&ro, addr);
    assert_non_null(resp);
    struct scen_opts o;
    memset(&o, 0, sizeof(o));
    o.addr = addr;
    o.link = &link;
    o.cards = cards;
    o.json = json;
    o.timeout_ms = 2000;
    size_t len;
    FILE *fp = open_memstream(buf, &len);
    assert_non_null(fp);
    int rc = scenario_run(&o, fp);
    fclose(fp);
    responder_stop(resp);
    sim_link_free(&link);
    return rc;
}

static int run(const char *(*dec)(const struct iso_msg *, void *), bool json, char **buf)
{
    return run_cards(&Cards, dec, json, buf);
}

static void assert_no_secrets(const char *out)
{
    char pat[16];
    for (size_t i = 0; i < Cards.n; i++) {
        if (strstr(out, Cards.v[i].pan))
            print_error("clear PAN of card %zu in the output\n", i);
        assert_null(strstr(out, Cards.v[i].pan));
        snprintf(pat, sizeof(pat), "9203%s", Cards.v[i].cvv2);
        assert_null(strstr(out, pat));
    }
    /* the synthetic unknown card too: no 16-digit run starting 999999 */
    assert_null(strstr(out, "9999999999"));
}

static void test_all_steps_match_and_mask(void **state)
{
    (void)state;
    char *out = NULL;
    int rc = run(decide, false, &out);
    if (rc != 0)
        print_error("%s\n", out);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "13 of 13 steps matched"));
    assert_non_null(strstr(out, "476173******0010"));
    assert_non_null(strstr(out, "reversal"));
    assert_null(strstr(out, "MISMATCH"));
    assert_no_secrets(out);
    free(out);
}

static void test_wrong_answers_fail(void **state)
{
    (void)state;
    char *out = NULL;
    assert_int_equal(run(always_ok, false, &out), 1);
    assert_non_null(strstr(out, "MISMATCH"));
    assert_null(strstr(out, "all answers as expected"));
    assert_no_secrets(out);
    free(out);
}

static void test_json_output(void **state)
{
    (void)state;
    char *out = NULL;
    assert_int_equal(run(decide, true, &out), 0);
    char err[200];
    struct json *j = json_parse(out, strlen(out), err, sizeof(err));
    if (!j)
        print_error("%s\n%s\n", err, out);
    assert_non_null(j);
    assert_int_equal(json_get_long(j, "failed", -1), 0);
    assert_int_equal(json_get_long(j, "matched", -1), 13);
    const struct json *sum = json_get(j, "summary");
    assert_non_null(sum);
    assert_int_equal(sum->n, 13);
    assert_string_equal(json_get_str(&sum->kids[12], "step"), "reversal");
    assert_string_equal(json_get_str(&sum->kids[5], "got"), "14");
    assert_no_secrets(out);
    json_free(j);
    free(out);
}

/*
 * The demo seed's file: fixed steps find their cards by label or by
 * "expect" (the blocked-MCC step takes the card expecting 57), the step
 * with no card (insufficient funds: no 51 card) is skipped without failing
 * the run, and every other card gets a plain purchase answered per its
 * "expect" (lost 41, stolen 43, not activated 78, closed 05, ...).
 */
static void test_seed_file(void **state)
{
    (void)state;
    struct sim_cards seed;
    char err[300];
    assert_int_equal(sim_cards_load("tests/data/sim/cards_seed.json", &seed, err, sizeof(err)), 0);
    assert_int_equal(seed.n, 13);
    assert_string_equal(seed.v[0].account, "2001"); /* numeric account_id */
    for (size_t i = 0; i < seed.n; i++)
        assert_false(seed.v[i].hot); /* "hotels" in a label is not "hot" */
    char *out = NULL;
    int rc = run_cards(&seed, decide_seed, false, &out);
    if (rc != 0)
        print_error("%s\n", out);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "20 of 21 steps matched, 1 skipped"));
    static const char *const rows[] = {"lost ", "stolen ", "not activated ", "closed ",
                                       "bob: sales team"};
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
        assert_non_null(strstr(out, rows[i]));
    for (size_t i = 0; i < seed.n; i++)
        assert_null(strstr(out, seed.v[i].pan));
    free(out);
    /* the same with --json: one document, the skipped step marked */
    assert_int_equal(run_cards(&seed, decide_seed, true, &out), 0);
    struct json *j = json_parse(out, strlen(out), err, sizeof(err));
    assert_non_null(j);
    assert_int_equal(json_get_long(j, "matched", -1), 20);
    assert_int_equal(json_get_long(j, "skipped", -1), 1);
    assert_int_equal(json_get_long(j, "failed", -1), 0);
    json_free(j);
    free(out);
    sim_cards_free(&seed);
}

static void test_no_server(void **state)
{
    (void)state;
    struct sim_link link;
    char err[200];
    assert_int_equal(sim_link_init(&link, "ascii87", NULL, err, sizeof(err)), 0);
    struct scen_opts o;
    memset(&o, 0, sizeof(o));
    o.addr = "127.0.0.1:1";
    o.link = &link;
    o.cards = &Cards;
    o.timeout_ms = 500;
    char *buf = NULL;
    size_t len;
    FILE *fp = open_memstream(&buf, &len);
    assert_int_equal(scenario_run(&o, fp), 1);
    fclose(fp);
    free(buf);
    sim_link_free(&link);
}

static void test_cards_reader(void **state)
{
    (void)state;
    assert_int_equal(Cards.n, 7);
    const struct sim_card *c = sim_cards_find(&Cards, "nothing|frozen");
    assert_non_null(c);
    assert_string_equal(c->pan + 12, "0036");
    c = sim_cards_find(&Cards, "insufficient");
    assert_int_equal(c->amount, 400000);
    assert_string_equal(sim_cards_find(&Cards, "blocked_mcc")->mcc, "7995");
    assert_null(sim_cards_find(&Cards, "stolen"));
    static const char *const bad[] = {
        "tests/data/sim/cards_bad_expiry.json", "tests/data/sim/cards_no_pan.json",
        "tests/data/sim/cards_empty.json", "tests/data/sim/none.json"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct sim_cards x;
        char err[300] = "";
        assert_int_equal(sim_cards_load(bad[i], &x, err, sizeof(err)), -1);
        assert_non_null(strstr(err, bad[i]));
        assert_null(strstr(err, "4761739001010010"));
    }
    /* --hot keeps the card marked hot */
    struct sim_cards h;
    char err[200];
    assert_int_equal(sim_cards_load(CARDS, &h, err, sizeof(err)), 0);
    assert_int_equal(sim_cards_keep_hot(&h), 1);
    assert_string_equal(h.v[0].account, "w-hot");
    /* without a hot mark: the account with the most cards */
    for (size_t i = 0; i < Cards.n; i++)
        h.v[i] = Cards.v[i], h.v[i].hot = false;
    h.n = Cards.n;
    assert_int_equal(sim_cards_keep_hot(&h), 5);
    for (size_t i = 0; i < h.n; i++)
        assert_string_equal(h.v[i].account, "w-demo");
    sim_cards_free(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cards_reader),       cmocka_unit_test(test_all_steps_match_and_mask),
        cmocka_unit_test(test_wrong_answers_fail), cmocka_unit_test(test_json_output),
        cmocka_unit_test(test_seed_file),          cmocka_unit_test(test_no_server),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
