/*
 * vectors.c - see vectors.h.
 */
#include "tests/lib/vectors.h"

#include "common/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct json *vectors_load(void)
{
    const char *env = getenv("CARDGATE_VECTORS");
    char path[4096], err[256];
    struct stat st;
    struct json *j;

    if (env != NULL && env[0] != '\0') {
        if (stat(env, &st) == 0 && S_ISDIR(st.st_mode))
            snprintf(path, sizeof(path), "%s/payment-crypto.json", env);
        else
            snprintf(path, sizeof(path), "%s", env);
    } else {
        /* CI: shared/ beside the clone; a worktree one level deeper: ../../shared */
        snprintf(path, sizeof(path), "../shared/vectors/payment-crypto.json");
        if (stat(path, &st) != 0)
            snprintf(path, sizeof(path), "../../shared/vectors/payment-crypto.json");
    }
    j = json_parse_file(path, err, sizeof(err));
    if (j == NULL) {
        fprintf(stderr, "vectors: %s (%s); set CARDGATE_VECTORS\n", path, err);
        abort();
    }
    return j;
}

const struct json *vectors_category(const struct json *root, const char *name)
{
    const struct json *c = json_get(root, name);
    return (c != NULL && c->type == JSON_ARRAY) ? c : NULL;
}

size_t vec_hex(const struct json *v, const char *key, uint8_t *out, size_t cap)
{
    const char *s = json_get_str(v, key);
    long n;

    if (s == NULL || (n = util_hex_decode(s, out, cap)) < 0) {
        fprintf(stderr, "vector member %s missing or not hex\n", key);
        abort();
    }
    return (size_t)n;
}
