/*
 * json.c - bounded recursive-descent JSON reader (see json.h).
 */
#include "common/json.h"

#include "common/util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct jp {
    const char *s;
    size_t len;
    size_t pos;
    char *err;
    size_t errlen;
    bool failed;
};

__attribute__((format(printf, 2, 3))) static void jp_fail(struct jp *p, const char *fmt, ...)
{
    if (p->failed)
        return;
    p->failed = true;
    if (!p->err || p->errlen == 0)
        return;
    int n = snprintf(p->err, p->errlen, "offset %zu: ", p->pos);
    if (n < 0 || (size_t)n >= p->errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
    va_end(ap);
}

static void jp_ws(struct jp *p)
{
    while (p->pos < p->len) {
        char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        p->pos++;
    }
}

/* Free what a node owns (not the node itself). */
static void node_release(struct json *j)
{
    for (size_t i = 0; i < j->n; i++)
        node_release(&j->kids[i]);
    free(j->kids);
    free(j->key);
    free(j->text);
    memset(j, 0, sizeof(*j));
}

static int hex4(struct jp *p, unsigned *out)
{
    if (p->len - p->pos < 4) {
        jp_fail(p, "truncated \\u escape");
        return -1;
    }
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p->s[p->pos++];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else {
            jp_fail(p, "bad hex digit in \\u escape");
            return -1;
        }
    }
    *out = v;
    return 0;
}

static size_t put_utf8(unsigned cp, char *o)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Parse a string at p->pos (on the opening quote) into a heap copy. */
static char *jp_string(struct jp *p)
{
    p->pos++; /* opening quote */
    size_t start = p->pos;
    /* the decoded text is never longer than the raw text */
    size_t end = start;
    while (end < p->len && p->s[end] != '"') {
        if (p->s[end] == '\\')
            end++;
        end++;
    }
    if (end >= p->len) {
        jp_fail(p, "unterminated string");
        return NULL;
    }
    char *o = malloc(end - start + 1);
    if (!o) {
        jp_fail(p, "out of memory");
        return NULL;
    }
    size_t k = 0;
    while (p->pos < end) {
        unsigned char c = (unsigned char)p->s[p->pos];
        if (c < 0x20) {
            jp_fail(p, "control character in string");
            free(o);
            return NULL;
        }
        if (c != '\\') {
            o[k++] = (char)c;
            p->pos++;
            continue;
        }
        p->pos++;
        char e = p->s[p->pos++];
        switch (e) {
        case '"':
            o[k++] = '"';
            break;
        case '\\':
            o[k++] = '\\';
            break;
        case '/':
            o[k++] = '/';
            break;
        case 'b':
            o[k++] = '\b';
            break;
        case 'f':
            o[k++] = '\f';
            break;
        case 'n':
            o[k++] = '\n';
            break;
        case 'r':
            o[k++] = '\r';
            break;
        case 't':
            o[k++] = '\t';
            break;
        case 'u': {
            unsigned cp;
            if (hex4(p, &cp) != 0) {
                free(o);
                return NULL;
            }
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                unsigned lo;
                if (p->len - p->pos < 6 || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u') {
                    jp_fail(p, "lone high surrogate");
                    free(o);
                    return NULL;
                }
                p->pos += 2;
                if (hex4(p, &lo) != 0 || lo < 0xDC00 || lo > 0xDFFF) {
                    jp_fail(p, "bad low surrogate");
                    free(o);
                    return NULL;
                }
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                jp_fail(p, "lone low surrogate");
                free(o);
                return NULL;
            }
            /* \uXXXX is 6 raw bytes, at most 4 decoded: stays within bounds */
            k += put_utf8(cp, o + k);
            break;
        }
        default:
            jp_fail(p, "bad escape");
            free(o);
            return NULL;
        }
        if (p->pos > end) {
            jp_fail(p, "escape runs past the string");
            free(o);
            return NULL;
        }
    }
    o[k] = '\0';
    p->pos = end + 1;
    return o;
}

static int jp_value(struct jp *p, struct json *out, int depth);

static int add_kid(struct jp *p, struct json *parent, size_t *cap, struct json *kid)
{
    if (parent->n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 4;
        struct json *nk = realloc(parent->kids, ncap * sizeof(*nk));
        if (!nk) {
            jp_fail(p, "out of memory");
            return -1;
        }
        parent->kids = nk;
        *cap = ncap;
    }
    parent->kids[parent->n++] = *kid;
    return 0;
}

static int jp_container(struct jp *p, struct json *out, int depth, bool obj)
{
    char close = obj ? '}' : ']';
    size_t cap = 0;
    out->type = obj ? JSON_OBJECT : JSON_ARRAY;
    p->pos++;
    jp_ws(p);
    if (p->pos < p->len && p->s[p->pos] == close) {
        p->pos++;
        return 0;
    }
    for (;;) {
        struct json kid;
        memset(&kid, 0, sizeof(kid));
        char *key = NULL;
        jp_ws(p);
        if (obj) {
            if (p->pos >= p->len || p->s[p->pos] != '"') {
                jp_fail(p, "expected a member name");
                return -1;
            }
            key = jp_string(p);
            if (!key)
                return -1;
            jp_ws(p);
            if (p->pos >= p->len || p->s[p->pos] != ':') {
                free(key);
                jp_fail(p, "expected ':'");
                return -1;
            }
            p->pos++;
        }
        if (jp_value(p, &kid, depth + 1) != 0) {
            free(key);
            node_release(&kid);
            return -1;
        }
        kid.key = key;
        if (add_kid(p, out, &cap, &kid) != 0) {
            node_release(&kid);
            return -1;
        }
        jp_ws(p);
        if (p->pos >= p->len) {
            jp_fail(p, "unterminated %s", obj ? "object" : "array");
            return -1;
        }
        char c = p->s[p->pos++];
        if (c == close)
            return 0;
        if (c != ',') {
            p->pos--;
            jp_fail(p, "expected ',' or '%c'", close);
            return -1;
        }
    }
}

static int jp_number(struct jp *p, struct json *out)
{
    size_t st = p->pos;
    if (p->s[p->pos] == '-')
        p->pos++;
    size_t digits = 0;
    while (p->pos < p->len && ((p->s[p->pos] >= '0' && p->s[p->pos] <= '9') ||
                               p->s[p->pos] == '.' || p->s[p->pos] == 'e' || p->s[p->pos] == 'E' ||
                               p->s[p->pos] == '+' || p->s[p->pos] == '-')) {
        if (p->s[p->pos] >= '0' && p->s[p->pos] <= '9')
            digits++;
        p->pos++;
    }
    if (digits == 0) {
        jp_fail(p, "bad number");
        return -1;
    }
    size_t n = p->pos - st;
    out->text = malloc(n + 1);
    if (!out->text) {
        jp_fail(p, "out of memory");
        return -1;
    }
    memcpy(out->text, p->s + st, n);
    out->text[n] = '\0';
    char *end;
    errno = 0;
    out->num = strtod(out->text, &end);
    if (*end != '\0') {
        jp_fail(p, "bad number");
        return -1;
    }
    out->type = JSON_NUMBER;
    return 0;
}

static bool jp_word(struct jp *p, const char *w)
{
    size_t n = strlen(w);
    if (p->len - p->pos < n || memcmp(p->s + p->pos, w, n) != 0)
        return false;
    p->pos += n;
    return true;
}

/* Parse one value at p->pos into *out (zeroed by the caller). */
static int jp_value(struct jp *p, struct json *out, int depth)
{
    if (depth > JSON_MAX_DEPTH) {
        jp_fail(p, "nesting deeper than %d", JSON_MAX_DEPTH);
        return -1;
    }
    jp_ws(p);
    if (p->pos >= p->len) {
        jp_fail(p, "unexpected end of input");
        return -1;
    }
    char c = p->s[p->pos];
    if (c == '{' || c == '[')
        return jp_container(p, out, depth, c == '{');
    if (c == '"') {
        out->type = JSON_STRING;
        out->text = jp_string(p);
        return out->text ? 0 : -1;
    }
    if (c == '-' || (c >= '0' && c <= '9'))
        return jp_number(p, out);
    if (jp_word(p, "true")) {
        out->type = JSON_BOOL;
        out->boolean = true;
        return 0;
    }
    if (jp_word(p, "false")) {
        out->type = JSON_BOOL;
        return 0;
    }
    if (jp_word(p, "null")) {
        out->type = JSON_NULL;
        return 0;
    }
    jp_fail(p, "unexpected character");
    return -1;
}

struct json *json_parse(const char *text, size_t len, char *err, size_t errlen)
{
    struct jp p = {.s = text, .len = len, .err = err, .errlen = errlen};
    if (err && errlen)
        err[0] = '\0';
    if (len > JSON_MAX_INPUT) {
        jp_fail(&p, "input larger than %u bytes", JSON_MAX_INPUT);
        return NULL;
    }
    struct json *root = calloc(1, sizeof(*root));
    if (!root) {
        jp_fail(&p, "out of memory");
        return NULL;
    }
    if (jp_value(&p, root, 0) != 0) {
        json_free(root);
        return NULL;
    }
    jp_ws(&p);
    if (p.pos != len) {
        jp_fail(&p, "trailing characters after the document");
        json_free(root);
        return NULL;
    }
    return root;
}

struct json *json_parse_file(const char *path, char *err, size_t errlen)
{
    size_t len;
    char *text = util_read_file(path, JSON_MAX_INPUT, &len);
    if (!text) {
        snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
        return NULL;
    }
    char sub[200];
    struct json *j = json_parse(text, len, sub, sizeof(sub));
    free(text);
    if (!j)
        snprintf(err, errlen, "%s: %s", path, sub);
    return j;
}

void json_free(struct json *j)
{
    if (!j)
        return;
    node_release(j);
    free(j);
}

const struct json *json_get(const struct json *obj, const char *key)
{
    if (!obj || obj->type != JSON_OBJECT)
        return NULL;
    for (size_t i = 0; i < obj->n; i++)
        if (obj->kids[i].key && strcmp(obj->kids[i].key, key) == 0)
            return &obj->kids[i];
    return NULL;
}

const char *json_get_str(const struct json *obj, const char *key)
{
    const struct json *v = json_get(obj, key);
    return v && v->type == JSON_STRING ? v->text : NULL;
}

long json_get_long(const struct json *obj, const char *key, long def)
{
    const struct json *v = json_get(obj, key);
    if (!v || (v->type != JSON_NUMBER && v->type != JSON_STRING) || !v->text)
        return def;
    char *end;
    errno = 0;
    long r = strtol(v->text, &end, 10);
    if (errno != 0 || end == v->text || *end != '\0')
        return def;
    return r;
}
