/*
 * conf.h - the configuration file format every cardgate program reads
 * (cardgated.conf, dialect files, key-store manifests).
 *
 *     # comment            ; comment
 *     top_level = 1        (keys before any section live in the global section "")
 *     [listener main]      (a section with an optional argument; quotes allowed)
 *     address = 127.0.0.1:5000
 *     budget  = 250ms      # trailing comment after white space
 *     banner  = "a # is kept inside quotes"
 *
 * Parsing builds a tree of sections and key/value pairs, each with its line.
 * Consumers pull values with the typed getters below, which mark what they
 * read; conf_check_unused() then reports the first key or section nobody
 * read as "FILE:LINE: unknown key 'listne' in [listener main]".  So the
 * schema lives in the code that uses the values, and a typo can never be
 * silently ignored.
 *
 * Every error is a complete "FILE:LINE: message" in struct conf_err; callers
 * print it as it is and exit with status 2.
 */
#ifndef CARDGATE_CONF_CONF_H
#define CARDGATE_CONF_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONF_MUST_CHECK __attribute__((warn_unused_result))
#define CONF_MAX_LINE   4096

struct conf_err {
    char msg[600];
};

struct conf_kv {
    char *key;
    char *val;
    unsigned line;
    bool used;
};

struct conf_section {
    char *name; /* "" for the global section */
    char *arg;  /* NULL when the header had no argument */
    unsigned line;
    bool used;
    struct conf_kv *kv;
    size_t nkv;
};

struct conf_file {
    char *path;
    struct conf_section *sec; /* sec[0] is always the global section */
    size_t nsec;
};

/* Read and parse a whole file.  Returns 0, or -1 with err filled. */
int conf_load(const char *path, struct conf_file **out, struct conf_err *err) CONF_MUST_CHECK;
/* Parse text already in memory; name is what errors call the file. */
int conf_parse(const char *name, const char *text, size_t len, struct conf_file **out,
               struct conf_err *err) CONF_MUST_CHECK;
void conf_free(struct conf_file *f);

/* The global section (keys before the first header). */
struct conf_section *conf_global(struct conf_file *f);
/*
 * Iterate the sections called name, in file order: pass prev=NULL to start.
 * Each section returned is marked used.
 */
struct conf_section *conf_next(struct conf_file *f, struct conf_section *prev, const char *name);
/* Find the section name/arg (arg NULL matches a header without argument). */
struct conf_section *conf_find(struct conf_file *f, const char *name, const char *arg);

/* Format "FILE:LINE: message" into err; always returns -1. */
int conf_fail(const struct conf_file *f, unsigned line, struct conf_err *err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/*
 * Typed getters.  Each returns 0 when the key is absent (out untouched, so
 * preset it to the default) or valid (out set), -1 with err filled when the
 * value is malformed or out of range.  *found, where given, tells which.
 */
struct conf_kv *conf_kv_get(struct conf_section *s, const char *key);
int conf_get_str(const struct conf_file *f, struct conf_section *s, const char *key,
                 const char **out, struct conf_err *err) CONF_MUST_CHECK;
int conf_get_int(const struct conf_file *f, struct conf_section *s, const char *key, int64_t min,
                 int64_t max, int64_t *out, struct conf_err *err) CONF_MUST_CHECK;
/* "150ms", "2s", "1.5s", "5m", "1h", "100us", "0"; the result in microseconds */
int conf_get_duration_us(const struct conf_file *f, struct conf_section *s, const char *key,
                         int64_t min_us, int64_t max_us, int64_t *out,
                         struct conf_err *err) CONF_MUST_CHECK;
/* "512", "64k", "4M", "1G" (powers of 1024); the result in bytes */
int conf_get_size(const struct conf_file *f, struct conf_section *s, const char *key, uint64_t min,
                  uint64_t max, uint64_t *out, struct conf_err *err) CONF_MUST_CHECK;
/* yes/no, true/false, on/off, 1/0 */
int conf_get_bool(const struct conf_file *f, struct conf_section *s, const char *key, bool *out,
                  struct conf_err *err) CONF_MUST_CHECK;
/* one of names[] (NULL-terminated); *out is the index */
int conf_get_enum(const struct conf_file *f, struct conf_section *s, const char *key,
                  const char *const *names, int *out, struct conf_err *err) CONF_MUST_CHECK;

/* A listening or connecting address: "host:port", "[v6]:port", "unix:/path". */
struct conf_addr {
    char host[256]; /* empty for unix */
    char path[108]; /* unix socket path, empty otherwise */
    uint16_t port;
};
int conf_parse_addr(const char *text, struct conf_addr *out) CONF_MUST_CHECK;
int conf_get_addr(const struct conf_file *f, struct conf_section *s, const char *key,
                  struct conf_addr *out, struct conf_err *err) CONF_MUST_CHECK;

/* Parse helpers shared with command-line options; 0 ok, -1 malformed. */
int conf_parse_duration_us(const char *text, int64_t *out) CONF_MUST_CHECK;
int conf_parse_size(const char *text, uint64_t *out) CONF_MUST_CHECK;
int conf_parse_bool(const char *text, bool *out) CONF_MUST_CHECK;

/* A key that must be present: -1 with "missing key 'x' in [section]" otherwise. */
int conf_require(const struct conf_file *f, struct conf_section *s, const char *key,
                 struct conf_err *err) CONF_MUST_CHECK;
/* -1 with the first section or key no getter read, in file order. */
int conf_check_unused(const struct conf_file *f, struct conf_err *err) CONF_MUST_CHECK;
/* "[name arg]" for messages */
const char *conf_section_label(const struct conf_section *s, char *buf, size_t len);

#endif
