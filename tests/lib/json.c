/*
 * json.c - see json.h.  Recursive descent over a bounded buffer.
 */
#include "tests/lib/json.h"

#include "common/util.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct parser {
    const char *s;
    size_t len, pos;
    int depth;
    char *err;
    size_t errlen;
};

static int fail(struct parser *p, const char *msg)
{
    if (p->err && p->err[0] == '\0')
        snprintf(p->err, p->errlen, "offset %zu: %s", p->pos, msg);
    return -1;
}

static void skip_ws(struct parser *p)
{
    while (p->pos < p->len && strchr(" \t\r\n", p->s[p->pos]) != NULL && p->s[p->pos] != '\0')
        p->pos++;
}

static bool lit(struct parser *p, const char *w)
{
    size_t n = strlen(w);
    if (p->len - p->pos >= n && memcmp(p->s + p->pos, w, n) == 0) {
        p->pos += n;
        return true;
    }
    return false;
}

static int hex4(struct parser *p, unsigned *out)
{
    unsigned v = 0;
    if (p->len - p->pos < 4)
        return fail(p, "short \\u escape");
    for (int i = 0; i < 4; i++) {
        char c = p->s[p->pos++];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return fail(p, "bad \\u escape");
    }
    *out = v;
    return 0;
}

/* The character a one-letter escape stands for, or 0. */
static char simple_escape(char e)
{
    switch (e) {
    case '"':
        return '"';
    case '\\':
        return '\\';
    case '/':
        return '/';
    case 'b':
        return '\b';
    case 'f':
        return '\f';
    case 'n':
        return '\n';
    case 'r':
        return '\r';
    case 't':
        return '\t';
    }
    return 0;
}

/* Parse a string at p->pos (the opening quote) into a new heap buffer. */
static int parse_string(struct parser *p, char **out)
{
    size_t start = ++p->pos, cap = 16, n = 0;
    char *buf = malloc(cap);
    (void)start;
    if (buf == NULL)
        return fail(p, "out of memory");
    for (;;) {
        if (p->pos >= p->len) {
            free(buf);
            return fail(p, "unterminated string");
        }
        unsigned char c = (unsigned char)p->s[p->pos++];
        char tmp[4];
        size_t tn = 1;
        if (c == '"')
            break;
        if (c < 0x20) {
            free(buf);
            return fail(p, "control character in string");
        }
        tmp[0] = (char)c;
        if (c == '\\') {
            if (p->pos >= p->len) {
                free(buf);
                return fail(p, "bad escape");
            }
            char e = p->s[p->pos++];
            unsigned u;
            if (e == 'u') {
                if (hex4(p, &u) != 0) {
                    free(buf);
                    return -1;
                }
                if (u < 0x80) {
                    tmp[0] = (char)u;
                } else if (u < 0x800) {
                    tmp[0] = (char)(0xC0 | u >> 6);
                    tmp[1] = (char)(0x80 | (u & 63));
                    tn = 2;
                } else {
                    tmp[0] = (char)(0xE0 | u >> 12);
                    tmp[1] = (char)(0x80 | ((u >> 6) & 63));
                    tmp[2] = (char)(0x80 | (u & 63));
                    tn = 3;
                }
            } else if (simple_escape(e) != 0) {
                tmp[0] = simple_escape(e);
            } else {
                free(buf);
                return fail(p, "bad escape");
            }
        }
        if (n + tn + 1 > cap) {
            cap *= 2;
            char *nb = realloc(buf, cap);
            if (nb == NULL) {
                free(buf);
                return fail(p, "out of memory");
            }
            buf = nb;
        }
        memcpy(buf + n, tmp, tn);
        n += tn;
    }
    buf[n] = '\0';
    *out = buf;
    return 0;
}

static int parse_value(struct parser *p, struct json *j);

static int add_kid(struct parser *p, struct json *j, size_t *cap, struct json **kid)
{
    if (j->n == *cap) {
        size_t nc = *cap ? *cap * 2 : 8;
        struct json *nk = realloc(j->kids, nc * sizeof(*nk));
        if (nk == NULL)
            return fail(p, "out of memory");
        j->kids = nk;
        *cap = nc;
    }
    *kid = &j->kids[j->n++];
    memset(*kid, 0, sizeof(**kid));
    return 0;
}

static int parse_container(struct parser *p, struct json *j, bool object)
{
    size_t cap = 0;
    char close = object ? '}' : ']';

    if (++p->depth > 64)
        return fail(p, "nesting too deep");
    j->type = object ? JSON_OBJECT : JSON_ARRAY;
    p->pos++;
    skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == close) {
        p->pos++;
        p->depth--;
        return 0;
    }
    for (;;) {
        struct json *kid = NULL;
        char *key = NULL;
        skip_ws(p);
        if (object) {
            if (p->pos >= p->len || p->s[p->pos] != '"')
                return fail(p, "expected member name");
            if (parse_string(p, &key) != 0)
                return -1;
            skip_ws(p);
            if (p->pos >= p->len || p->s[p->pos] != ':') {
                free(key);
                return fail(p, "expected ':'");
            }
            p->pos++;
        }
        if (add_kid(p, j, &cap, &kid) != 0) {
            free(key);
            return -1;
        }
        kid->key = key;
        if (parse_value(p, kid) != 0)
            return -1;
        skip_ws(p);
        if (p->pos < p->len && p->s[p->pos] == ',') {
            p->pos++;
            continue;
        }
        if (p->pos < p->len && p->s[p->pos] == close) {
            p->pos++;
            p->depth--;
            return 0;
        }
        return fail(p, object ? "expected ',' or '}'" : "expected ',' or ']'");
    }
}

static int parse_value(struct parser *p, struct json *j)
{
    skip_ws(p);
    if (p->pos >= p->len)
        return fail(p, "unexpected end");
    char c = p->s[p->pos];
    if (c == '{' || c == '[')
        return parse_container(p, j, c == '{');
    if (c == '"') {
        j->type = JSON_STRING;
        return parse_string(p, &j->text);
    }
    if (lit(p, "true") || lit(p, "false")) {
        j->type = JSON_BOOL;
        j->boolean = p->s[p->pos - 1] == 'e' && p->s[p->pos - 2] == 'u';
        return 0;
    }
    if (lit(p, "null")) {
        j->type = JSON_NULL;
        return 0;
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
        size_t st = p->pos;
        while (p->pos < p->len && strchr("+-0123456789.eE", p->s[p->pos]) != NULL &&
               p->s[p->pos] != '\0')
            p->pos++;
        size_t n = p->pos - st;
        j->type = JSON_NUMBER;
        j->text = malloc(n + 1);
        if (j->text == NULL)
            return fail(p, "out of memory");
        memcpy(j->text, p->s + st, n);
        j->text[n] = '\0';
        char *end;
        j->num = strtod(j->text, &end);
        if (*end != '\0')
            return fail(p, "bad number");
        return 0;
    }
    return fail(p, "unexpected character");
}

static void free_kids(struct json *j)
{
    for (size_t i = 0; i < j->n; i++) {
        free_kids(&j->kids[i]);
        free(j->kids[i].key);
        free(j->kids[i].text);
    }
    free(j->kids);
}

void json_free(struct json *j)
{
    if (j == NULL)
        return;
    free_kids(j);
    free(j->text);
    free(j);
}

struct json *json_parse(const char *text, size_t len, char *err, size_t errlen)
{
    struct parser p = {.s = text, .len = len, .err = err, .errlen = errlen};
    struct json *j = calloc(1, sizeof(*j));

    if (err && errlen)
        err[0] = '\0';
    if (j == NULL)
        return NULL;
    if (parse_value(&p, j) != 0) {
        json_free(j);
        return NULL;
    }
    skip_ws(&p);
    if (p.pos != p.len) {
        fail(&p, "trailing data");
        json_free(j);
        return NULL;
    }
    return j;
}

struct json *json_parse_file(const char *path, char *err, size_t errlen)
{
    size_t len = 0;
    char *buf = util_read_file(path, 64 << 20, &len);
    struct json *j;

    if (buf == NULL) {
        snprintf(err, errlen, "%s: cannot read", path);
        return NULL;
    }
    j = json_parse(buf, len, err, errlen);
    free(buf);
    return j;
}

const struct json *json_get(const struct json *obj, const char *key)
{
    if (obj == NULL || obj->type != JSON_OBJECT)
        return NULL;
    for (size_t i = 0; i < obj->n; i++)
        if (obj->kids[i].key != NULL && strcmp(obj->kids[i].key, key) == 0)
            return &obj->kids[i];
    return NULL;
}

const char *json_get_str(const struct json *obj, const char *key)
{
    const struct json *v = json_get(obj, key);
    return (v != NULL && v->type == JSON_STRING) ? v->text : NULL;
}

long json_get_long(const struct json *obj, const char *key, long def)
{
    const struct json *v = json_get(obj, key);
    char *end;
    long r;

    if (v == NULL || (v->type != JSON_NUMBER && v->type != JSON_STRING) || v->text == NULL)
        return def;
    r = strtol(v->text, &end, 10);
    return (*end == '\0' && end != v->text) ? r : def;
}
