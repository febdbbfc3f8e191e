/*
 * json.h - a small, bounded JSON reader (RFC 8259) for data files: the
 * simulator's cards file, test vectors.  Parses a whole document into a tree
 * of heap nodes; strings are decoded (\uXXXX, surrogate pairs -> UTF-8),
 * numbers kept as their text and as a double.  Bounded: depth at most
 * JSON_MAX_DEPTH, input at most JSON_MAX_INPUT bytes.  Never reads outside
 * the input.  Not for the daemon's hot path (it allocates).
 */
#ifndef CARDGATE_COMMON_JSON_H
#define CARDGATE_COMMON_JSON_H

#include <stdbool.h>
#include <stddef.h>

#define JSON_MAX_DEPTH 64
#define JSON_MAX_INPUT (64u * 1024 * 1024)

enum json_type { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT };

struct json {
    enum json_type type;
    char *key;  /* member name when inside an object, else NULL */
    char *text; /* string value, or the number's text; NULL otherwise */
    double num;
    bool boolean;
    size_t n;          /* array / object element count */
    struct json *kids; /* n elements */
};

/* Parse text[0..len); NULL with a message in err ("offset N: ...") on error. */
struct json *json_parse(const char *text, size_t len, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* Parse a file; NULL and err on error. */
struct json *json_parse_file(const char *path, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* Free a tree from json_parse*; NULL is a no-op. */
void json_free(struct json *j);

/* Member of an object by name, or NULL (also when obj is not an object). */
const struct json *json_get(const struct json *obj, const char *key);
/* String member of an object, or NULL when absent or not a string. */
const char *json_get_str(const struct json *obj, const char *key);
/* Numeric member (a number, or a string of digits); def when absent or not numeric. */
long json_get_long(const struct json *obj, const char *key, long def);

#endif
