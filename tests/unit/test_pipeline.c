/*
 * test_pipeline.c - the pipeline's pure parts, table-driven from
 * tests/data/pipeline/: MTI/processing code -> kind (routes.txt), field
 * 22/25 -> channel (channels.txt), field 54 entries (f54.txt).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/util.h"
#include "daemon/pipeline.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Call fn for every non-comment line of path split into up to 8 words. */
static int each_line(const char *path, void (*fn)(char **w, int n, const char *line))
{
    size_t len;
    char *text = util_read_file(path, 1 << 20, &len), *save = NULL;
    int lines = 0;

    assert_non_null(text);
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char copy[256], *w[8], *s2 = NULL;
        int n = 0;
        if (line[0] == '#' || line[0] == '\0')
            continue;
        snprintf(copy, sizeof(copy), "%s", line);
        for (char *t = strtok_r(copy, " ", &s2); t && n < 8; t = strtok_r(NULL, " ", &s2))
            w[n++] = t;
        fn(w, n, line);
        lines++;
    }
    free(text);
    return lines;
}

static void route_line(char **w, int n, const char *line)
{
    assert_int_equal(n, 4);
    const char *k = pipeline_kind(w[0], strcmp(w[1], "-") ? w[1] : NULL, atoi(w[2]));
    const char *want = strcmp(w[3], "-") ? w[3] : NULL;
    if (want == NULL ? k != NULL : (k == NULL || strcmp(k, want) != 0))
        fail_msg("%s: got %s", line, k ? k : "-");
}

static void test_routes(void **state)
{
    (void)state;
    assert_true(each_line("tests/data/pipeline/routes.txt", route_line) >= 20);
}

static void channel_line(char **w, int n, const char *line)
{
    assert_int_equal(n, 3);
    const char *a = strcmp(w[0], "-") ? w[0] : NULL, *b = strcmp(w[1], "-") ? w[1] : NULL;
    const char *c = pipeline_channel(a, a ? strlen(a) : 0, b, b ? strlen(b) : 0);
    if (strcmp(c, w[2]) != 0)
        fail_msg("%s: got %s", line, c);
}

static void test_channels(void **state)
{
    (void)state;
    assert_true(each_line("tests/data/pipeline/channels.txt", channel_line) >= 12);
}

static void f54_line(char **w, int n, const char *line)
{
    char out[21];
    assert_int_equal(n, 4);
    int rc = pipeline_f54_entry(out, w[0], w[1], strtoll(w[2], NULL, 10));
    if (strcmp(w[3], "-") == 0) {
        if (rc == 0)
            fail_msg("%s: accepted as %s", line, out);
        return;
    }
    if (rc != 0 || strcmp(out, w[3]) != 0)
        fail_msg("%s: got %s", line, rc == 0 ? out : "refused");
    assert_int_equal(strlen(out), 20);
}

static void test_f54(void **state)
{
    (void)state;
    assert_true(each_line("tests/data/pipeline/f54.txt", f54_line) >= 6);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_routes),
        cmocka_unit_test(test_channels),
        cmocka_unit_test(test_f54),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
