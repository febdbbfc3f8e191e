/*
 * test_sim_msg.c - the simulator's request builder: every kind in every
 * built-in dialect and framing encodes, frames and decodes back with the
 * fields a switch sends (and the codec's required fields); the masked dump
 * never shows the PAN or CVV2; --mix and HOST:PORT parsing
 * (tests/data/sim/mix_cases.txt, addr_cases.txt); synthetic cards.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "crypto/pan.h"
#include "tools/sim/load.h"
#include "tools/sim/net.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct iso_msg M, D;
static uint8_t Frame[ISO_MAX_MSG + 64];
static char Dump[32768];

static bool view_is(const struct iso_msg *m, int n, const char *want)
{
    const struct iso_view *v = iso_get(m, n);
    return v && v->len == strlen(want) && memcmp(v->p, want, v->len) == 0;
}

static void test_every_kind_dialect_framing(void **state)
{
    (void)state;
    static const char *const framings[] = {"len2", "len4ascii", "len2bcd", NULL};
    struct sim_card card = {.pan = "4761739001010010", .expiry = "3012", .cvv2 = "947"};
    struct sim_orig orig = {.mti = "0200", .stan = "000123", .xmit = "1122093015"};
    int checked = 0;
    for (const char *const *d = iso_dialect_builtin_names(); *d; d++)
        for (size_t f = 0; f < 4; f++) {
            struct sim_link l;
            char err[200];
            assert_int_equal(sim_link_init(&l, *d, framings[f], err, sizeof(err)), 0);
            for (int k = 0; k < SIM_K_COUNT; k++) {
                struct sim_req q;
                memset(&q, 0, sizeof(q));
                q.kind = (enum sim_kind)k;
                q.card = &card;
                q.amount = 12345;
                q.orig = &orig;
                sim_stan(q.stan, 4242);
                memcpy(q.rrn, "123456789012", 13);
                sim_req_times(&q, 1795000000);
                size_t flen;
                struct iso_err e;
                if (sim_build(&l, &q, &M, Frame, sizeof(Frame), &flen, &e) != 0)
                    print_error("%s/%s/%s: %s\n", *d, framings[f] ? framings[f] : "-",
                                sim_kind_name(q.kind), e.msg);
                assert_int_equal(sim_build(&l, &q, &M, Frame, sizeof(Frame), &flen, &e), 0);
                size_t off, mlen, total;
                assert_int_equal(iso_frame_parse(&l.fr, Frame, flen, &off, &mlen, &total, &e), 1);
                assert_int_equal(total, flen);
                assert_int_equal(iso_decode(l.d, Frame + off, mlen, &D, &e), 0);
                assert_memory_equal(D.mti, sim_kind_mti(q.kind), 4);
                assert_int_equal(iso_required_missing(&D), 0);
                assert_true(view_is(&D, 11, "004242"));
                assert_true(view_is(&D, 7, "1118110640"));
                if (k == SIM_K_SIGNON || k == SIM_K_ECHO) {
                    assert_true(view_is(&D, 70, k == SIM_K_SIGNON ? "001" : "301"));
                    assert_false(iso_has(&D, 2));
                } else {
                    assert_true(view_is(&D, 2, card.pan));
                    assert_true(view_is(&D, 37, "123456789012"));
                    assert_true(
                        view_is(&D, 4, k == SIM_K_BALANCE ? "000000000000" : "000000012345") ||
                        k == SIM_K_BALANCE);
                    assert_true(view_is(&D, 14, "3012"));
                    assert_true(view_is(&D, 3,
                                        k == SIM_K_BALANCE  ? "310000"
                                        : k == SIM_K_REFUND ? "200000"
                                                            : "000000"));
                    if (k == SIM_K_REVERSAL)
                        assert_true(view_is(&D, 90, "020000012311220930150000012345600000000000"));
                    else
                        assert_false(iso_has(&D, 90));
                    bool cvv = k != SIM_K_REVERSAL && k != SIM_K_ADVICE;
                    assert_int_equal(view_is(&D, 48, "9203947"), cvv);
                }
                long n = sim_dump(&l, &D, false, Dump, sizeof(Dump));
                assert_true(n > 0);
                assert_null(strstr(Dump, card.pan));
                assert_null(strstr(Dump, "9203947"));
                n = sim_dump(&l, &D, true, Dump, sizeof(Dump));
                assert_true(n > 0);
                assert_null(strstr(Dump, card.pan));
                assert_null(strstr(Dump, "947\""));
                char am[5];
                sim_answer_mti(sim_kind_mti(q.kind), am);
                assert_int_equal(am[2], sim_kind_mti(q.kind)[2] + 1);
                checked++;
            }
            sim_link_free(&l);
        }
    assert_true(checked >= 3 * 4 * SIM_K_COUNT);
}

/* --header tpdu: 60 0001 0000 right after the 2-byte length, counted in it. */
static void test_tpdu_header_bytes(void **state)
{
    (void)state;
    struct sim_link l;
    char err[200];
    assert_int_equal(sim_link_init(&l, "ascii87", "len2", err, sizeof(err)), 0);
    assert_int_equal(sim_link_set_header(&l, "tpdu", err, sizeof(err)), 0);
    struct sim_req q;
    memset(&q, 0, sizeof(q));
    q.kind = SIM_K_ECHO;
    sim_stan(q.stan, 7);
    sim_req_times(&q, 1795000000);
    size_t flen;
    struct iso_err e;
    assert_int_equal(sim_build(&l, &q, &M, Frame, sizeof(Frame), &flen, &e), 0);
    static const uint8_t tpdu[5] = {0x60, 0x00, 0x01, 0x00, 0x00};
    assert_memory_equal(Frame + 2, tpdu, 5);
    assert_int_equal((size_t)(Frame[0] << 8 | Frame[1]), flen - 2);
    assert_memory_equal(Frame + 7, "0800", 4);
    sim_link_free(&l);
}

static void test_bad_link(void **state)
{
    (void)state;
    struct sim_link l;
    char err[200];
    assert_int_equal(sim_link_init(&l, "nosuch", NULL, err, sizeof(err)), -1);
    assert_int_equal(sim_link_init(&l, "ascii87", "len3", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "len3"));
}

/*
 * Call fn with the tab-separated columns of every non-comment line of a
 * cases file (at most 4 columns, missing ones NULL); returns the line count.
 */
static int for_each_case(const char *path, void (*fn)(char **col))
{
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    char line[256];
    int n = 0;
    while (fgets(line, sizeof(line), fp)) {
        if (line[0] == '#')
            continue;
        line[strcspn(line, "\n")] = '\0';
        char *col[4] = {NULL, NULL, NULL, NULL};
        char *rest = line;
        for (int i = 0; i < 4 && rest; i++)
            col[i] = strsep(&rest, "\t");
        assert_non_null(col[1]);
        fn(col);
        n++;
    }
    fclose(fp);
    return n;
}

/* ok|bad, spec, expected weights */
static void mix_case(char **col)
{
    struct load_opts o;
    load_opts_default(&o);
    char err[200];
    int rc = load_parse_mix(&o, col[1], err, sizeof(err));
    if (strcmp(col[0], "ok") == 0) {
        assert_int_equal(rc, 0);
        unsigned w[5];
        assert_non_null(col[2]);
        assert_int_equal(sscanf(col[2], "%u,%u,%u,%u,%u", &w[0], &w[1], &w[2], &w[3], &w[4]), 5);
        assert_int_equal(o.mix[SIM_K_PURCHASE], w[0]);
        assert_int_equal(o.mix[SIM_K_BALANCE], w[1]);
        assert_int_equal(o.mix[SIM_K_REFUND], w[2]);
        assert_int_equal(o.mix[SIM_K_ADVICE], w[3]);
        assert_int_equal(o.mix[SIM_K_REVERSAL], w[4]);
    } else {
        if (rc == 0)
            print_error("mix '%s' should be refused\n", col[1]);
        assert_int_equal(rc, -1);
        assert_int_equal(o.mix[SIM_K_PURCHASE], 85); /* unchanged */
    }
}

static void test_mix_cases(void **state)
{
    (void)state;
    assert_true(for_each_case("tests/data/sim/mix_cases.txt", mix_case) >= 10);
}

/* input, host or "-", port */
static void addr_case(char **col)
{
    char h[64], p[16];
    int rc = sim_parse_addr(col[0], h, sizeof(h), p, sizeof(p));
    if (strcmp(col[1], "-") == 0) {
        if (rc == 0)
            print_error("'%s' should be refused\n", col[0]);
        assert_int_equal(rc, -1);
    } else {
        assert_int_equal(rc, 0);
        assert_non_null(col[2]);
        assert_string_equal(h, col[1]);
        assert_string_equal(p, col[2]);
    }
}

static void test_addr_cases(void **state)
{
    (void)state;
    assert_true(for_each_case("tests/data/sim/addr_cases.txt", addr_case) >= 8);
}

static void test_synth_cards(void **state)
{
    (void)state;
    struct sim_cards c;
    assert_int_equal(sim_cards_synth(1000, 10, &c), 0);
    assert_int_equal(c.n, 1000);
    for (size_t i = 0; i < c.n; i++) {
        assert_true(pan_luhn_ok(c.v[i].pan, strlen(c.v[i].pan)));
        assert_int_equal(strlen(c.v[i].pan), 16);
        assert_memory_equal(c.v[i].pan, "999999", 6);
    }
    assert_string_equal(c.v[0].pan, "9999990000000006");
    assert_string_equal(c.v[13].account, "3");
    assert_int_equal(sim_cards_keep_hot(&c), 100);
    for (size_t i = 0; i < c.n; i++)
        assert_string_equal(c.v[i].account, c.v[0].account);
    sim_cards_free(&c);
    assert_int_equal(sim_cards_synth(50, 0, &c), 0);
    assert_int_equal(sim_cards_keep_hot(&c), 0); /* one card per account: nothing to keep */
    assert_int_equal(c.n, 50);
    sim_cards_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_kind_dialect_framing),
        cmocka_unit_test(test_tpdu_header_bytes),
        cmocka_unit_test(test_bad_link),
        cmocka_unit_test(test_mix_cases),
        cmocka_unit_test(test_addr_cases),
        cmocka_unit_test(test_synth_cards),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
