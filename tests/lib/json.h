/*
 * json.h - a small, bounds-checked JSON reader for test data (the public
 * payment-crypto vectors).  Parses a whole document into a tree; strings
 * are decoded (\uXXXX beyond ASCII becomes UTF-8), numbers kept as double
 * and as their text.  Depth is limited to 64.  Not for untrusted input in
 * the daemon; tests only.
 */
#ifndef CARDGATE_TESTS_JSON_H
#define CARDGATE_TESTS_JSON_H

#include <stdbool.h>
#include <stddef.h>

enum json_type { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT };

struct json {
    enum json_type type;
    char *key;  /* member name when inside an object */
    char *text; /* string value, or the number's text */
    double num;
    bool boolean;
    size_t n; /* array / object element count */
    struct json *kids;
};

/* Parse text[0..len); NULL with a message in err ("offset N: ...") on error. */
struct json *json_parse(const char *text, size_t len, char *err, size_t errlen);
/* Parse a file; NULL and err on error. */
struct json *json_parse_file(const char *path, char *err, size_t errlen);
void json_free(struct json *j);

/* Member of an object by name, or NULL. */
const struct json *json_get(const struct json *obj, const char *key);
/* String member of an object, or NULL when absent or not a string. */
const char *json_get_str(const struct json *obj, const char *key);
/* Numeric member (a number, or a string of digits); def when absent. */
long json_get_long(const struct json *obj, const char *key, long def);

#endif
