/*
 * test_sim_hist.c - the simulator's latency histogram: percentiles against
 * known inputs (tests/data/sim/hist_cases.txt), the 3-significant-digit
 * bucket bound over the whole 1 us .. 60 s range, clamping and merging.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "tools/sim/hist.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct hist H, H2;

/* Record one sample spec item ("V", "VxN", "A..B"); -1 when malformed. */
static int record_item(struct hist *h, const char *item)
{
    long long a, b;
    char tail;
    if (sscanf(item, "%lld..%lld%c", &a, &b, &tail) == 2) {
        for (long long v = a; v <= b; v++)
            hist_record(h, v);
        return 0;
    }
    if (sscanf(item, "%lldx%lld%c", &a, &b, &tail) == 2) {
        for (long long i = 0; i < b; i++)
            hist_record(h, a);
        return 0;
    }
    if (sscanf(item, "%lld%c", &a, &tail) == 1) {
        hist_record(h, a);
        return 0;
    }
    return -1;
}

static void test_cases_file(void **state)
{
    (void)state;
    FILE *fp = fopen("tests/data/sim/hist_cases.txt", "r");
    assert_non_null(fp);
    char line[512];
    int cases = 0;
    while (fgets(line, sizeof(line), fp)) {
        if (line[0] == '#' || line[0] == '\n')
            continue;
        char *save = NULL;
        char *name = strtok_r(line, " \t\n", &save);
        char *samples = strtok_r(NULL, " \t\n", &save);
        assert_non_null(name);
        assert_non_null(samples);
        hist_reset(&H);
        char *s2 = NULL;
        for (char *it = strtok_r(samples, ",", &s2); it; it = strtok_r(NULL, ",", &s2))
            assert_int_equal(record_item(&H, it), 0);
        int checks = 0;
        for (char *pe = strtok_r(NULL, " \t\n", &save); pe; pe = strtok_r(NULL, " \t\n", &save)) {
            double p;
            long long want;
            assert_int_equal(sscanf(pe, "%lf=%lld", &p, &want), 2);
            int64_t got = hist_percentile(&H, p);
            if (got < want || got > want + want / 1024) {
                print_error("case %s: p%g = %lld, want %lld (+1/1024)\n", name, p, (long long)got,
                            want);
                fail();
            }
            checks++;
        }
        assert_true(checks > 0);
        cases++;
    }
    fclose(fp);
    assert_true(cases >= 8);
}

/* Every bucket is at most 1/1024 wide relative to its low end, and buckets tile the range. */
static void test_bucket_bounds(void **state)
{
    (void)state;
    unsigned last = hist_index(HIST_MAX_US);
    assert_true(last < HIST_NBUCKETS);
    for (unsigned i = 1; i <= last; i++) {
        int64_t lo = hist_bucket_low(i), hi = hist_bucket_high(i);
        assert_true(hi >= lo);
        assert_int_equal(lo, hist_bucket_high(i - 1) + 1);
        assert_true((hi - lo) * 1024 <= lo);
        assert_int_equal(hist_index(lo), i);
        assert_int_equal(hist_index(hi), i);
    }
}

static void test_empty_and_minmax(void **state)
{
    (void)state;
    hist_reset(&H);
    assert_int_equal(hist_percentile(&H, 50), 0);
    hist_record(&H, 123456);
    hist_record(&H, 7);
    assert_int_equal(H.min, 7);
    assert_int_equal(H.max, 123456);
    assert_int_equal(H.total, 2);
    /* the max is exact even though its bucket is wider than one */
    assert_int_equal(hist_percentile(&H, 100), 123456);
    hist_record(&H, -5);
    hist_record(&H, 61000000);
    assert_int_equal(H.clamped, 2);
    assert_int_equal(H.min, 1);
    assert_int_equal(H.max, HIST_MAX_US);
}

static void test_merge(void **state)
{
    (void)state;
    hist_reset(&H);
    hist_reset(&H2);
    for (int v = 1; v <= 500; v++)
        hist_record(&H, v);
    for (int v = 501; v <= 1000; v++)
        hist_record(&H2, v);
    hist_merge(&H, &H2);
    assert_int_equal(H.total, 1000);
    assert_int_equal(H.min, 1);
    assert_int_equal(H.max, 1000);
    assert_int_equal(hist_percentile(&H, 50), 500);
    assert_int_equal(hist_percentile(&H, 99), 990);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cases_file),
        cmocka_unit_test(test_bucket_bounds),
        cmocka_unit_test(test_empty_and_minmax),
        cmocka_unit_test(test_merge),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
