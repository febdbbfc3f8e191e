/*
 * fuzz_json.c - libFuzzer target for common/json (the reader of the
 * simulator's cards file and of the test vectors): parse any bytes, then
 * walk the tree reading every node the way the callers do (json_get,
 * json_get_str, json_get_long) so a node with a bad shape is touched too.
 */
#include "common/json.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Touch every node; returns a value that depends on all of them. */
static size_t walk(const struct json *j)
{
    size_t acc = (size_t)j->type + (j->text ? strlen(j->text) : 0) + (j->key ? strlen(j->key) : 0);
    if (j->type == JSON_OBJECT) {
        for (size_t i = 0; i < j->n; i++)
            if (j->kids[i].key != NULL) {
                acc += json_get(j, j->kids[i].key) != NULL;
                acc += json_get_str(j, j->kids[i].key) != NULL;
                acc += (size_t)json_get_long(j, j->kids[i].key, 0);
            }
    }
    for (size_t i = 0; i < j->n; i++)
        acc += walk(&j->kids[i]);
    return acc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[200];
    struct json *j = json_parse((const char *)data, size, err, sizeof(err));
    if (j == NULL) {
        /* an error message is always a terminated string */
        if (strlen(err) >= sizeof(err))
            __builtin_trap();
        return 0;
    }
    volatile size_t sink = walk(j);
    (void)sink;
    json_free(j);
    return 0;
}
