/*
 * conf.c - parser and typed getters for the cardgate configuration format
 * (see conf.h for the syntax).  The parser is line based and bounded: a line
 * longer than CONF_MAX_LINE is an error, never a reallocation loop.
 */
#include "conf/conf.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONF_MAX_FILE (16u * 1024u * 1024u)

int conf_fail(const struct conf_file *f, unsigned line, struct conf_err *err, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (err == NULL)
        return -1;
    n = snprintf(err->msg, sizeof(err->msg), "%s:%u: ", f ? f->path : "?", line);
    if (n < 0 || (size_t)n >= sizeof(err->msg))
        return -1;
    va_start(ap, fmt);
    vsnprintf(err->msg + n, sizeof(err->msg) - (size_t)n, fmt, ap);
    va_end(ap);
    return -1;
}

const char *conf_section_label(const struct conf_section *s, char *buf, size_t len)
{
    if (s->name[0] == '\0')
        snprintf(buf, len, "the global section");
    else if (s->arg != NULL)
        snprintf(buf, len, "[%s %s]", s->name, s->arg);
    else
        snprintf(buf, len, "[%s]", s->name);
    return buf;
}

void conf_free(struct conf_file *f)
{
    if (f == NULL)
        return;
    for (size_t i = 0; i < f->nsec; i++) {
        struct conf_section *s = &f->sec[i];
        for (size_t j = 0; j < s->nkv; j++) {
            free(s->kv[j].key);
            free(s->kv[j].val);
        }
        free(s->kv);
        free(s->name);
        free(s->arg);
    }
    free(f->sec);
    free(f->path);
    free(f);
}

static struct conf_section *add_section(struct conf_file *f, const char *name, const char *arg,
                                        unsigned line)
{
    struct conf_section *ns = realloc(f->sec, (f->nsec + 1) * sizeof(*ns));
    if (ns == NULL)
        return NULL;
    f->sec = ns;
    struct conf_section *s = &f->sec[f->nsec];
    memset(s, 0, sizeof(*s));
    s->name = strdup(name);
    s->arg = arg ? strdup(arg) : NULL;
    s->line = line;
    if (s->name == NULL || (arg && s->arg == NULL)) {
        free(s->name);
        free(s->arg);
        return NULL;
    }
    f->nsec++;
    return s;
}

static int add_kv(struct conf_section *s, const char *key, const char *val, unsigned line)
{
    struct conf_kv *nk = realloc(s->kv, (s->nkv + 1) * sizeof(*nk));
    if (nk == NULL)
        return -1;
    s->kv = nk;
    struct conf_kv *kv = &s->kv[s->nkv];
    kv->key = strdup(key);
    kv->val = strdup(val);
    kv->line = line;
    kv->used = false;
    if (kv->key == NULL || kv->val == NULL) {
        free(kv->key);
        free(kv->val);
        return -1;
    }
    s->nkv++;
    return 0;
}

static bool is_name_char(int c)
{
    return isalnum(c) || c == '_' || c == '-' || c == '.';
}

static char *trim(char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    size_t n = strlen(p);
    while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t' || p[n - 1] == '\r'))
        p[--n] = '\0';
    return p;
}

/*
 * Unquote a value in place: "..." with \" \\ \n \t escapes, or a bare word
 * ending at a '#'/';' that follows white space.  Returns NULL with *why set.
 */
static char *parse_value(char *p, const char **why)
{
    p = trim(p);
    if (*p == '"') {
        char *w = p, *r = p + 1;
        for (;;) {
            if (*r == '\0') {
                *why = "unterminated quoted string";
                return NULL;
            }
            if (*r == '"')
                break;
            if (*r == '\\') {
                r++;
                switch (*r) {
                case '"':
                case '\\':
                    *w++ = *r++;
                    break;
                case 'n':
                    *w++ = '\n';
                    r++;
                    break;
                case 't':
                    *w++ = '\t';
                    r++;
                    break;
                default:
                    *why = "unknown escape in quoted string";
                    return NULL;
                }
                continue;
            }
            *w++ = *r++;
        }
        char *rest = trim(r + 1);
        if (*rest != '\0' && *rest != '#' && *rest != ';') {
            *why = "text after closing quote";
            return NULL;
        }
        *w = '\0';
        return p;
    }
    for (char *c = p; *c; c++) {
        if ((*c == '#' || *c == ';') && (c == p || c[-1] == ' ' || c[-1] == '\t')) {
            *c = '\0';
            break;
        }
    }
    return trim(p);
}

static int parse_header(struct conf_file *f, char *p, unsigned line, struct conf_section **cur,
                        struct conf_err *err)
{
    char *end = strchr(p, ']');
    if (end == NULL)
        return conf_fail(f, line, err, "unterminated section header");
    char *after = trim(end + 1);
    if (*after != '\0' && *after != '#' && *after != ';')
        return conf_fail(f, line, err, "text after section header");
    *end = '\0';
    char *name = trim(p + 1);
    char *arg = NULL;
    size_t i = 0;
    while (is_name_char((unsigned char)name[i]))
        i++;
    if (i == 0)
        return conf_fail(f, line, err, "empty section name");
    if (name[i] != '\0') {
        if (name[i] != ' ' && name[i] != '\t')
            return conf_fail(f, line, err, "invalid character '%c' in section name", name[i]);
        name[i] = '\0';
        const char *why = NULL;
        arg = parse_value(name + i + 1, &why);
        if (arg == NULL)
            return conf_fail(f, line, err, "%s", why);
        if (*arg == '\0')
            arg = NULL;
    }
    for (size_t k = 1; k < f->nsec; k++) {
        struct conf_section *o = &f->sec[k];
        if (strcmp(o->name, name) == 0 &&
            ((o->arg == NULL && arg == NULL) || (o->arg && arg && strcmp(o->arg, arg) == 0))) {
            char lbl[300];
            return conf_fail(f, line, err, "duplicate section %s (first at line %u)",
                             conf_section_label(o, lbl, sizeof(lbl)), o->line);
        }
    }
    *cur = add_section(f, name, arg, line);
    if (*cur == NULL)
        return conf_fail(f, line, err, "out of memory");
    return 0;
}

static int parse_line(struct conf_file *f, char *p, unsigned line, struct conf_section **cur,
                      struct conf_err *err)
{
    p = trim(p);
    if (*p == '\0' || *p == '#' || *p == ';')
        return 0;
    if (*p == '[')
        return parse_header(f, p, line, cur, err);

    char *key = p;
    size_t i = 0;
    while (is_name_char((unsigned char)key[i]))
        i++;
    if (i == 0)
        return conf_fail(f, line, err, "expected 'key = value' or '[section]'");
    char *q = key + i;
    while (*q == ' ' || *q == '\t')
        q++;
    if (*q != '=')
        return conf_fail(f, line, err, "expected '=' after key '%.*s'", (int)i, key);
    key[i] = '\0';
    const char *why = NULL;
    char *val = parse_value(q + 1, &why);
    if (val == NULL)
        return conf_fail(f, line, err, "key '%s': %s", key, why);
    for (size_t k = 0; k < (*cur)->nkv; k++)
        if (strcmp((*cur)->kv[k].key, key) == 0)
            return conf_fail(f, line, err, "duplicate key '%s' (first at line %u)", key,
                             (*cur)->kv[k].line);
    if (add_kv(*cur, key, val, line) != 0)
        return conf_fail(f, line, err, "out of memory");
    return 0;
}

int conf_parse(const char *name, const char *text, size_t len, struct conf_file **out,
               struct conf_err *err)
{
    struct conf_file *f = calloc(1, sizeof(*f));
    char buf[CONF_MAX_LINE + 1];
    unsigned line = 0;
    size_t pos = 0;

    *out = NULL;
    if (f == NULL || (f->path = strdup(name)) == NULL) {
        free(f);
        snprintf(err->msg, sizeof(err->msg), "%s: out of memory", name);
        return -1;
    }
    struct conf_section *cur = add_section(f, "", NULL, 0);
    if (cur == NULL) {
        conf_free(f);
        snprintf(err->msg, sizeof(err->msg), "%s: out of memory", name);
        return -1;
    }
    while (pos < len) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - (text + pos)) : len - pos;
        line++;
        if (n > CONF_MAX_LINE) {
            conf_fail(f, line, err, "line longer than %u characters", CONF_MAX_LINE);
            conf_free(f);
            return -1;
        }
        if (memchr(text + pos, '\0', n) != NULL) {
            conf_fail(f, line, err, "NUL byte in line");
            conf_free(f);
            return -1;
        }
        memcpy(buf, text + pos, n);
        buf[n] = '\0';
        pos += n + (nl ? 1 : 0);
        if (parse_line(f, buf, line, &cur, err) != 0) {
            conf_free(f);
            return -1;
        }
    }
    *out = f;
    return 0;
}

int conf_load(const char *path, struct conf_file **out, struct conf_err *err)
{
    FILE *fp = fopen(path, "rb");
    char *text = NULL;
    size_t len = 0, cap = 0;
    int rc;

    *out = NULL;
    if (fp == NULL) {
        snprintf(err->msg, sizeof(err->msg), "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    for (;;) {
        if (len == cap) {
            if (cap >= CONF_MAX_FILE) {
                snprintf(err->msg, sizeof(err->msg), "%s: larger than %u bytes", path,
                         CONF_MAX_FILE);
                free(text);
                fclose(fp);
                return -1;
            }
            cap = cap ? cap * 2 : 8192;
            char *nt = realloc(text, cap);
            if (nt == NULL) {
                free(text);
                fclose(fp);
                snprintf(err->msg, sizeof(err->msg), "%s: out of memory", path);
                return -1;
            }
            text = nt;
        }
        size_t r = fread(text + len, 1, cap - len, fp);
        len += r;
        if (r == 0)
            break;
    }
    if (ferror(fp)) {
        snprintf(err->msg, sizeof(err->msg), "%s: read error", path);
        free(text);
        fclose(fp);
        return -1;
    }
    fclose(fp);
    rc = conf_parse(path, text ? text : "", len, out, err);
    free(text);
    return rc;
}

struct conf_section *conf_global(struct conf_file *f)
{
    f->sec[0].used = true;
    return &f->sec[0];
}

struct conf_section *conf_next(struct conf_file *f, struct conf_section *prev, const char *name)
{
    size_t i = prev ? (size_t)(prev - f->sec) + 1 : 1;
    for (; i < f->nsec; i++) {
        if (strcmp(f->sec[i].name, name) == 0) {
            f->sec[i].used = true;
            return &f->sec[i];
        }
    }
    return NULL;
}

struct conf_section *conf_find(struct conf_file *f, const char *name, const char *arg)
{
    for (size_t i = 1; i < f->nsec; i++) {
        struct conf_section *s = &f->sec[i];
        if (strcmp(s->name, name) != 0)
            continue;
        if ((arg == NULL && s->arg == NULL) || (arg && s->arg && strcmp(arg, s->arg) == 0)) {
            s->used = true;
            return s;
        }
    }
    return NULL;
}

struct conf_kv *conf_kv_get(struct conf_section *s, const char *key)
{
    if (s == NULL)
        return NULL;
    for (size_t i = 0; i < s->nkv; i++) {
        if (strcmp(s->kv[i].key, key) == 0) {
            s->kv[i].used = true;
            return &s->kv[i];
        }
    }
    return NULL;
}

int conf_get_str(const struct conf_file *f, struct conf_section *s, const char *key,
                 const char **out, struct conf_err *err)
{
    struct conf_kv *kv = conf_kv_get(s, key);
    (void)f;
    (void)err;
    if (kv != NULL)
        *out = kv->val;
    return 0;
}

static int parse_i64(const char *t, int64_t *out)
{
    char *end;
    if (*t == '\0' || isspace((unsigned char)*t))
        return -1;
    errno = 0;
    long long v = strtoll(t, &end, 10);
    if (errno != 0 || *end != '\0')
        return -1;
    *out = (int64_t)v;
    return 0;
}

int conf_get_int(const struct conf_file *f, struct conf_section *s, const char *key, int64_t min,
                 int64_t max, int64_t *out, struct conf_err *err)
{
    struct conf_kv *kv = conf_kv_get(s, key);
    int64_t v;
    if (kv == NULL)
        return 0;
    if (parse_i64(kv->val, &v) != 0)
        return conf_fail(f, kv->line, err, "key '%s': '%s' is not an integer", key, kv->val);
    if (v < min || v > max)
        return conf_fail(f, kv->line, err,
                         "key '%s': %" PRId64 " is out of range %" PRId64 "..%" PRId64, key, v, min,
                         max);
    *out = v;
    return 0;
}

int conf_parse_duration_us(const char *t, int64_t *out)
{
    /* integer part, optional fraction, unit; computed in integers */
    int64_t ip = 0, frac = 0, fscale = 1;
    const char *p = t;
    if (strcmp(t, "0") == 0) { /* zero needs no unit */
        *out = 0;
        return 0;
    }
    if (!isdigit((unsigned char)*p))
        return -1;
    while (isdigit((unsigned char)*p)) {
        if (ip > INT64_MAX / 10 - 10)
            return -1;
        ip = ip * 10 + (*p++ - '0');
    }
    if (*p == '.') {
        p++;
        if (!isdigit((unsigned char)*p))
            return -1;
        while (isdigit((unsigned char)*p)) {
            if (fscale < 1000000000) {
                frac = frac * 10 + (*p - '0');
                fscale *= 10;
            }
            p++;
        }
    }
    int64_t mult;
    if (strcmp(p, "us") == 0)
        mult = 1;
    else if (strcmp(p, "ms") == 0)
        mult = 1000;
    else if (strcmp(p, "s") == 0)
        mult = 1000000;
    else if (strcmp(p, "m") == 0 || strcmp(p, "min") == 0)
        mult = 60000000;
    else if (strcmp(p, "h") == 0)
        mult = 3600000000LL;
    else if (strcmp(p, "d") == 0)
        mult = 86400000000LL;
    else
        return -1;
    if (ip > INT64_MAX / mult)
        return -1;
    *out = ip * mult + frac * mult / fscale;
    return 0;
}

int conf_get_duration_us(const struct conf_file *f, struct conf_section *s, const char *key,
                         int64_t min_us, int64_t max_us, int64_t *out, struct conf_err *err)
{
    struct conf_kv *kv = conf_kv_get(s, key);
    int64_t v;
    if (kv == NULL)
        return 0;
    if (conf_parse_duration_us(kv->val, &v) != 0)
        return conf_fail(f, kv->line, err,
                         "key '%s': '%s' is not a duration (a number with us, ms, s, m, h or d)",
                         key, kv->val);
    if (v < min_us || v > max_us)
        return conf_fail(f, kv->line, err,
                         "key '%s': %s is out of range %" PRId64 "us..%" PRId64 "us", key, kv->val,
                         min_us, max_us);
    *out = v;
    return 0;
}

int conf_parse_size(const char *t, uint64_t *out)
{
    char *end;
    if (!isdigit((unsigned char)*t))
        return -1;
    errno = 0;
    unsigned long long v = strtoull(t, &end, 10);
    if (errno != 0)
        return -1;
    uint64_t mult = 1;
    if (strcmp(end, "") == 0 || strcmp(end, "B") == 0)
        mult = 1;
    else if (strcmp(end, "k") == 0 || strcmp(end, "K") == 0 || strcmp(end, "KiB") == 0)
        mult = 1024;
    else if (strcmp(end, "M") == 0 || strcmp(end, "MiB") == 0)
        mult = 1024 * 1024;
    else if (strcmp(end, "G") == 0 || strcmp(end, "GiB") == 0)
        mult = 1024ULL * 1024 * 1024;
    else
        return -1;
    if (v > UINT64_MAX / mult)
        return -1;
    *out = (uint64_t)v * mult;
    return 0;
}

int conf_get_size(const struct conf_file *f, struct conf_section *s, const char *key, uint64_t min,
                  uint64_t max, uint64_t *out, struct conf_err *err)
{
    struct conf_kv *kv = conf_kv_get(s, key);
    uint64_t v;
    if (kv == NULL)
        return 0;
    if (conf_parse_size(kv->val, &v) != 0)
        return conf_fail(f, kv->line, err,
                         "key '%s': '%s' is not a size (bytes, or a number with k, M or G)", key,
                         kv->val);
    if (v < min || v > max)
        return conf_fail(f, kv->line, err,
                         "key '%s': %s is out of range %" PRIu64 "..%" PRIu64 " bytes", key,
                         kv->val, min, max);
    *out = v;
    return 0;
}

int conf_parse_bool(const char *t, bool *out)
{
    static const char *const yes[] = {"yes", "true", "on", "1"};
    static const char *const no[] = {"no", "false", "off", "0"};
    for (size_t i = 0; i < 4; i++) {
        if (strcmp(t, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcmp(t, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -1;
}

int conf_get_bool(const struct conf_file *f, struct conf_section *s, const char *key, bool *out,
                  struct conf_err *err)
{
    struct conf_kv *kv = conf_kv_get(s, key);
    if (kv == NULL)
        return 0;
    if (conf_parse_bool(kv->val, out) != 0)
        return conf_fail(f, kv->line, err, "key '%s': '%s' is not a boolean (yes or no)", key,
                         kv->val);
    return 0;
}

int conf_get_enum(const struct conf_file *f, struct conf_section *s, const char *key,
                  const char *const *names, int *out, struct conf_err *err)
{
    struct conf_kv *kv = conf_kv_get(s, key);
    char list[400];
    size_t n = 0;
    if (kv == NULL)
        return 0;
    for (int i = 0; names[i] != NULL; i++) {
        if (strcmp(kv->val, names[i]) == 0) {
            *out = i;
            return 0;
        }
    }
    list[0] = '\0';
    for (int i = 0; names[i] != NULL && n < sizeof(list); i++) {
        int r = snprintf(list + n, sizeof(list) - n, "%s%s", i ? ", " : "", names[i]);
        if (r < 0)
            break;
        n += (size_t)r;
    }
    return conf_fail(f, kv->line, err, "key '%s': '%s' is not one of: %s", key, kv->val, list);
}

int conf_parse_addr(const char *t, struct conf_addr *out)
{
    memset(out, 0, sizeof(*out));
    if (strncmp(t, "unix:", 5) == 0) {
        size_t n = strlen(t + 5);
        if (n == 0 || n >= sizeof(out->path) || t[5] != '/')
            return -1;
        memcpy(out->path, t + 5, n + 1);
        return 0;
    }
    const char *colon;
    const char *host = t;
    size_t hlen;
    if (*t == '[') {
        const char *rb = strchr(t, ']');
        if (rb == NULL || rb[1] != ':')
            return -1;
        host = t + 1;
        hlen = (size_t)(rb - host);
        colon = rb + 1;
    } else {
        colon = strrchr(t, ':');
        if (colon == NULL)
            return -1;
        hlen = (size_t)(colon - t);
        if (memchr(t, ':', hlen) != NULL)
            return -1; /* bare IPv6 needs brackets */
    }
    if (hlen == 0 || hlen >= sizeof(out->host))
        return -1;
    int64_t port;
    if (parse_i64(colon + 1, &port) != 0 || port < 0 || port > 65535)
        return -1;
    memcpy(out->host, host, hlen);
    out->host[hlen] = '\0';
    out->port = (uint16_t)port;
    return 0;
}

int conf_get_addr(const struct conf_file *f, struct conf_section *s, const char *key,
                  struct conf_addr *out, struct conf_err *err)
{
    struct conf_kv *kv = conf_kv_get(s, key);
    if (kv == NULL)
        return 0;
    if (conf_parse_addr(kv->val, out) != 0)
        return conf_fail(f, kv->line, err,
                         "key '%s': '%s' is not an address (host:port, [v6]:port or unix:/path)",
                         key, kv->val);
    return 0;
}

int conf_require(const struct conf_file *f, struct conf_section *s, const char *key,
                 struct conf_err *err)
{
    char lbl[300];
    for (size_t i = 0; i < s->nkv; i++)
        if (strcmp(s->kv[i].key, key) == 0)
            return 0;
    return conf_fail(f, s->line, err, "missing key '%s' in %s", key,
                     conf_section_label(s, lbl, sizeof(lbl)));
}

int conf_check_unused(const struct conf_file *f, struct conf_err *err)
{
    char lbl[300];
    for (size_t i = 0; i < f->nsec; i++) {
        const struct conf_section *s = &f->sec[i];
        if (i > 0 && !s->used)
            return conf_fail(f, s->line, err, "unknown section %s",
                             conf_section_label(s, lbl, sizeof(lbl)));
        for (size_t j = 0; j < s->nkv; j++)
            if (!s->kv[j].used)
                return conf_fail(f, s->kv[j].line, err, "unknown key '%s' in %s", s->kv[j].key,
                                 conf_section_label(s, lbl, sizeof(lbl)));
    }
    return 0;
}
