/*
 * test_json.c - the bounded JSON reader (common/json.h): documents that must
 * parse and documents that must be refused (tests/data/json/cases.txt),
 * decoded values, the depth bound, and the typed getters.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void test_cases_file(void **state)
{
    (void)state;
    FILE *fp = fopen("tests/data/json/cases.txt", "r");
    assert_non_null(fp);
    char line[1024];
    int ok = 0, bad = 0;
    while (fgets(line, sizeof(line), fp)) {
        if (line[0] == '#')
            continue;
        size_t n = strlen(line);
        if (n && line[n - 1] == '\n')
            line[--n] = '\0';
        char *tab = strchr(line, '\t');
        assert_non_null(tab);
        *tab = '\0';
        const char *doc = tab + 1;
        char err[200] = "";
        struct json *j = json_parse(doc, strlen(doc), err, sizeof(err));
        if (strcmp(line, "ok") == 0) {
            if (!j)
                print_error("should parse: %s (%s)\n", doc, err);
            assert_non_null(j);
            ok++;
        } else {
            if (j)
                print_error("should be refused: %s\n", doc);
            assert_null(j);
            assert_true(strncmp(err, "offset ", 7) == 0);
            bad++;
        }
        json_free(j);
    }
    fclose(fp);
    assert_true(ok >= 4 && bad >= 10);
}

static void test_values(void **state)
{
    (void)state;
    const char *doc = "{\"pan\":\"4000001234567899\",\"n\":42,\"s\":\"17\",\"f\":1.5,"
                      "\"u\":\"\\u00e9\\ud83d\\ude00\",\"arr\":[1,2,3],\"t\":true}";
    char err[200];
    struct json *j = json_parse(doc, strlen(doc), err, sizeof(err));
    assert_non_null(j);
    assert_int_equal(j->type, JSON_OBJECT);
    assert_string_equal(json_get_str(j, "pan"), "4000001234567899");
    assert_int_equal(json_get_long(j, "n", -1), 42);
    assert_int_equal(json_get_long(j, "s", -1), 17);
    assert_int_equal(json_get_long(j, "f", -1), -1); /* not an integer */
    assert_int_equal(json_get_long(j, "missing", -7), -7);
    assert_null(json_get_str(j, "n"));
    assert_string_equal(json_get_str(j, "u"), "\xc3\xa9\xf0\x9f\x98\x80");
    const struct json *arr = json_get(j, "arr");
    assert_non_null(arr);
    assert_int_equal(arr->type, JSON_ARRAY);
    assert_int_equal(arr->n, 3);
    assert_true(arr->kids[2].num == 3.0);
    assert_true(json_get(j, "t")->boolean);
    json_free(j);
}

static void test_depth_bound(void **state)
{
    (void)state;
    char doc[2 * (JSON_MAX_DEPTH + 2) + 1];
    size_t k = 0;
    for (int i = 0; i < JSON_MAX_DEPTH + 2; i++)
        doc[k++] = '[';
    for (int i = 0; i < JSON_MAX_DEPTH + 2; i++)
        doc[k++] = ']';
    doc[k] = '\0';
    char err[200];
    assert_null(json_parse(doc, k, err, sizeof(err)));
    assert_non_null(strstr(err, "nesting"));
    /* a truncated input never reads past its length */
    assert_null(json_parse("[1,2]", 3, err, sizeof(err)));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cases_file),
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_depth_bound),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
