/*
 * ctl_audit.c - `cardgatectl audit verify|dump|find`: the auditor's view of
 * the audit log (daemon/audit.h).  Every subcommand walks the whole chain
 * through audit_walk(), so dump and find also stop at the first bad record
 * and say so (exit 1).
 *
 *   verify --dir DIR [--pubkey FILE]
 *       one summary line and exit 0, or "audit BAD: segment S offset O seq N:
 *       what" and exit 1.
 *   dump --dir DIR [--from SEQ] [--to SEQ] [--json]
 *   find --dir DIR [--rrn X] [--stan X] [--pan-last4 NNNN] [--type T]
 *        [--since TIME] [--until TIME] [--json]
 *       one record per line: "seq=N ts=... type=T key=value ..." or one JSON
 *       object per line with --json; find prints "N records match" on stderr.
 *
 * TIME is "YYYY-MM-DD", "YYYY-MM-DDTHH:MM:SS[Z]" (UTC) or "@EPOCHSECONDS".
 */
#include "common/util.h"
#include "daemon/audit.h"
#include "tools/ctl/ctl.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- output ---- */

static void put_json_str(FILE *out, const char *p, size_t n)
{
    fputc('"', out);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == '"' || c == '\\')
            fprintf(out, "\\%c", c);
        else if (c < 0x20 || c >= 0x7f)
            fprintf(out, "\\u%04x", c);
        else
            fputc(c, out);
    }
    fputc('"', out);
}

static void put_hex(FILE *out, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        fprintf(out, "%02x", p[i]);
}

/* A msgpack value as JSON (binary as a hex string). */
static void put_json(FILE *out, const msgpack_object *o)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        fputs("null", out);
        break;
    case MSGPACK_OBJECT_BOOLEAN:
        fputs(o->via.boolean ? "true" : "false", out);
        break;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        fprintf(out, "%" PRIu64, o->via.u64);
        break;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        fprintf(out, "%" PRId64, o->via.i64);
        break;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        fprintf(out, "%.17g", o->via.f64);
        break;
    case MSGPACK_OBJECT_STR:
        put_json_str(out, o->via.str.ptr, o->via.str.size);
        break;
    case MSGPACK_OBJECT_BIN:
        fputc('"', out);
        put_hex(out, (const uint8_t *)o->via.bin.ptr, o->via.bin.size);
        fputc('"', out);
        break;
    case MSGPACK_OBJECT_ARRAY:
        fputc('[', out);
        for (uint32_t i = 0; i < o->via.array.size; i++) {
            if (i > 0)
                fputc(',', out);
            put_json(out, &o->via.array.ptr[i]);
        }
        fputc(']', out);
        break;
    case MSGPACK_OBJECT_MAP:
        fputc('{', out);
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            if (i > 0)
                fputc(',', out);
            put_json(out, &o->via.map.ptr[i].key);
            fputc(':', out);
            put_json(out, &o->via.map.ptr[i].val);
        }
        fputc('}', out);
        break;
    default:
        fputs("null", out);
        break;
    }
}

/* A value for the text form: strings bare unless they hold blanks or quotes. */
static void put_text(FILE *out, const msgpack_object *o)
{
    if (o->type == MSGPACK_OBJECT_STR) {
        bool plain = o->via.str.size > 0;
        for (uint32_t i = 0; i < o->via.str.size; i++) {
            unsigned char c = (unsigned char)o->via.str.ptr[i];
            if (c <= ' ' || c == '"' || c == '\\' || c == '=' || c >= 0x7f)
                plain = false;
        }
        if (plain)
            fwrite(o->via.str.ptr, 1, o->via.str.size, out);
        else
            put_json_str(out, o->via.str.ptr, o->via.str.size);
    } else if (o->type == MSGPACK_OBJECT_BIN) {
        /* hashes and signatures: the first 8 bytes are enough to read */
        size_t n = o->via.bin.size < 8 ? o->via.bin.size : 8;
        put_hex(out, (const uint8_t *)o->via.bin.ptr, n);
        if (n < o->via.bin.size)
            fputs("..", out);
    } else {
        put_json(out, o);
    }
}

static void fmt_ts(int64_t us, char out[40])
{
    time_t s = (time_t)(us / 1000000);
    struct tm tm;
    int64_t frac = us % 1000000;
    if (frac < 0) {
        frac += 1000000;
        s--;
    }
    gmtime_r(&s, &tm);
    size_t n = strftime(out, 40, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 40 - n, ".%06" PRId64 "Z", frac);
}

static void print_record(FILE *out, const struct audit_rec *r, bool json)
{
    char ts[40];
    const msgpack_object_map *m = &r->fields->via.map;
    fmt_ts(r->ts_us, ts);
    if (json) {
        fprintf(out, "{\"seq\":%" PRIu64 ",\"ts\":\"%s\",\"ts_us\":%" PRId64 ",\"type\":\"%s\"",
                r->seq, ts, r->ts_us, audit_type_name(r->type));
        fputs(",\"segment\":", out);
        put_json_str(out, r->segment, strlen(r->segment));
        fprintf(out, ",\"offset\":%" PRIu64 ",\"prev\":\"", r->offset);
        put_hex(out, r->prev, AUDIT_HASH_LEN);
        fputs("\",\"hash\":\"", out);
        put_hex(out, r->hash, AUDIT_HASH_LEN);
        fputc('"', out);
        for (uint32_t i = 0; i < m->size; i++) {
            fputc(',', out);
            put_json(out, &m->ptr[i].key);
            fputc(':', out);
            put_json(out, &m->ptr[i].val);
        }
        fputs("}\n", out);
        return;
    }
    fprintf(out, "seq=%" PRIu64 " ts=%s type=%s", r->seq, ts, audit_type_name(r->type));
    for (uint32_t i = 0; i < m->size; i++) {
        fputc(' ', out);
        fwrite(m->ptr[i].key.via.str.ptr, 1, m->ptr[i].key.via.str.size, out);
        fputc('=', out);
        put_text(out, &m->ptr[i].val);
    }
    fputc('\n', out);
}

static void print_bad(const struct audit_verify *v)
{
    printf("audit BAD: segment %s offset %" PRIu64 " seq %" PRIu64 ": %s\n", v->bad_segment,
           v->bad_offset, v->bad_seq, v->what);
}

/* audit_walk's status as an exit status, with the message for it. */
static int walk_status(int rc, const struct audit_verify *v)
{
    if (rc == -1) {
        fprintf(stderr, "cardgatectl audit: %s\n", v->what);
        return 1;
    }
    if (rc == 1) {
        fflush(stdout);
        print_bad(v);
        return 1;
    }
    return 0;
}

/* ---- argument parsing ---- */

static int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    if (s[0] < '0' || s[0] > '9')
        return -1;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0')
        return -1;
    *out = v;
    return 0;
}

/* TIME (see the top of this file) as microseconds since the epoch. */
static int parse_time(const char *s, int64_t *out)
{
    static const char *const fmts[] = {"%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S",
                                       "%Y-%m-%d %H:%M:%S", "%Y-%m-%d"};
    uint64_t secs;
    if (s[0] == '@') {
        if (parse_u64(s + 1, &secs) != 0 || secs > (uint64_t)INT64_MAX / 1000000)
            return -1;
        *out = (int64_t)secs * 1000000;
        return 0;
    }
    for (size_t i = 0; i < UTIL_NELEM(fmts); i++) {
        struct tm tm;
        memset(&tm, 0, sizeof(tm));
        const char *end = strptime(s, fmts[i], &tm);
        if (end != NULL && *end == '\0') {
            *out = (int64_t)timegm(&tm) * 1000000;
            return 0;
        }
    }
    return -1;
}

/* ---- subcommands ---- */

struct filter {
    bool json;
    uint64_t from, to;
    const char *rrn, *stan, *last4;
    int type; /* 0: any */
    bool have_since, have_until;
    int64_t since, until;
    uint64_t matched;
};

static bool str_field_is(const struct audit_rec *r, const char *key, const char *want)
{
    char v[128];
    return audit_rec_str(r, key, v, sizeof(v)) && strcmp(v, want) == 0;
}

static int on_record(const struct audit_rec *r, void *arg)
{
    struct filter *f = arg;
    if (r->seq < f->from || r->seq > f->to)
        return 0;
    if (f->type != 0 && r->type != f->type)
        return 0;
    if (f->have_since && r->ts_us < f->since)
        return 0;
    if (f->have_until && r->ts_us > f->until)
        return 0;
    if (f->rrn != NULL && !str_field_is(r, "rrn", f->rrn))
        return 0;
    if (f->stan != NULL && !str_field_is(r, "stan", f->stan))
        return 0;
    if (f->last4 != NULL) {
        char pan[PAN_MASK_MAX + 1];
        size_t n;
        if (!audit_rec_str(r, "pan", pan, sizeof(pan)) || (n = strlen(pan)) < 4 ||
            strcmp(pan + n - 4, f->last4) != 0)
            return 0;
    }
    f->matched++;
    print_record(stdout, r, f->json);
    return 0;
}

static int verify_main(int argc, char **argv)
{
    static const struct option opts[] = {{"dir", required_argument, NULL, 'd'},
                                         {"pubkey", required_argument, NULL, 'k'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *dir = NULL, *keyfile = NULL;
    struct audit_verify v;
    char err[300], head[2 * AUDIT_HASH_LEN + 1];
    int c;

    memset(&v, 0, sizeof(v));
    optind = 1;
    while ((c = getopt_long(argc, argv, "d:k:h", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            dir = optarg;
            break;
        case 'k':
            keyfile = optarg;
            break;
        case 'h':
            printf("usage: cardgatectl audit verify --dir DIR [--pubkey FILE]\n");
            return 0;
        default:
            return 2;
        }
    }
    if (dir == NULL || optind != argc) {
        fprintf(stderr, "usage: cardgatectl audit verify --dir DIR [--pubkey FILE]\n");
        return 2;
    }
    if (keyfile != NULL && (v.pubkey = audit_pubkey_load(keyfile, err, sizeof(err))) == NULL) {
        fprintf(stderr, "cardgatectl audit: %s\n", err);
        return 2;
    }
    int rc = walk_status(audit_walk(dir, &v, NULL, NULL), &v);
    if (rc == 0) {
        for (size_t i = 0; i < AUDIT_HASH_LEN; i++)
            snprintf(head + 2 * i, 3, "%02x", v.head[i]);
        printf("audit ok: %u segments, %" PRIu64 " records (seq %" PRIu64 "..%" PRIu64 "), %" PRIu64
               " checkpoints",
               v.segments, v.records, v.first_seq, v.last_seq, v.checkpoints);
        if (v.pubkey != NULL)
            printf(", %" PRIu64 " signatures verified", v.signatures_ok);
        else
            printf(", signatures not checked (no --pubkey)");
        if (v.last_checkpoint_seq == 0)
            printf(", no checkpoint yet");
        else if (v.last_checkpoint_seq < v.last_seq)
            printf(", %" PRIu64 " records after the last checkpoint (seq %" PRIu64
                   ") not yet signed",
                   v.last_seq - v.last_checkpoint_seq, v.last_checkpoint_seq);
        else
            printf(", ends with a checkpoint");
        printf(", head %s\n", head);
    }
    EVP_PKEY_free(v.pubkey);
    return rc;
}

static const char dump_usage[] =
    "usage: cardgatectl audit dump --dir DIR [--from SEQ] [--to SEQ] [--json]\n";
static const char find_usage[] =
    "usage: cardgatectl audit find --dir DIR [--rrn X] [--stan X] [--pan-last4 NNNN]\n"
    "                              [--type T] [--since TIME] [--until TIME] [--json]\n"
    "  T: segment checkpoint request answer link reload key operator daemon\n"
    "  TIME: YYYY-MM-DD, YYYY-MM-DDTHH:MM:SS[Z] (UTC) or @EPOCHSECONDS\n";

/* dump and find: the same walk with different filters. */
static int list_main(int argc, char **argv, bool find)
{
    static const struct option opts[] = {{"dir", required_argument, NULL, 'd'},
                                         {"from", required_argument, NULL, 'f'},
                                         {"to", required_argument, NULL, 't'},
                                         {"json", no_argument, NULL, 'j'},
                                         {"rrn", required_argument, NULL, 'r'},
                                         {"stan", required_argument, NULL, 's'},
                                         {"pan-last4", required_argument, NULL, 'p'},
                                         {"type", required_argument, NULL, 'y'},
                                         {"since", required_argument, NULL, 'S'},
                                         {"until", required_argument, NULL, 'U'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *usage = find ? find_usage : dump_usage;
    const char *dir = NULL;
    struct filter f;
    struct audit_verify v;
    int c;

    memset(&f, 0, sizeof(f));
    memset(&v, 0, sizeof(v));
    f.to = UINT64_MAX;
    optind = 1;
    while ((c = getopt_long(argc, argv, "d:h", opts, NULL)) != -1) {
        bool dump_only = c == 'f' || c == 't';
        bool find_only = c == 'r' || c == 's' || c == 'p' || c == 'y' || c == 'S' || c == 'U';
        if ((find && dump_only) || (!find && find_only)) {
            fputs(usage, stderr);
            return 2;
        }
        switch (c) {
        case 'd':
            dir = optarg;
            break;
        case 'j':
            f.json = true;
            break;
        case 'f':
        case 't':
            if (parse_u64(optarg, c == 'f' ? &f.from : &f.to) != 0) {
                fprintf(stderr, "cardgatectl audit: '%s' is not a sequence number\n", optarg);
                return 2;
            }
            break;
        case 'r':
            f.rrn = optarg;
            break;
        case 's':
            f.stan = optarg;
            break;
        case 'p':
            if (strlen(optarg) != 4 || strspn(optarg, "0123456789") != 4) {
                fprintf(stderr, "cardgatectl audit: --pan-last4 takes four digits\n");
                return 2;
            }
            f.last4 = optarg;
            break;
        case 'y':
            if ((f.type = audit_type_parse(optarg)) < 0) {
                fprintf(stderr, "cardgatectl audit: unknown record type '%s'\n", optarg);
                return 2;
            }
            break;
        case 'S':
        case 'U':
            if (parse_time(optarg, c == 'S' ? &f.since : &f.until) != 0) {
                fprintf(stderr, "cardgatectl audit: '%s' is not a time\n", optarg);
                return 2;
            }
            if (c == 'S')
                f.have_since = true;
            else
                f.have_until = true;
            break;
        case 'h':
            fputs(usage, stdout);
            return 0;
        default:
            fputs(usage, stderr);
            return 2;
        }
    }
    if (dir == NULL || optind != argc) {
        fputs(usage, stderr);
        return 2;
    }
    int rc = walk_status(audit_walk(dir, &v, on_record, &f), &v);
    fflush(stdout);
    if (find)
        fprintf(stderr, "%" PRIu64 " records match\n", f.matched);
    return rc;
}

/* See ctl.h. */
int ctl_audit_main(int argc, char **argv)
{
    static const char usage[] = "usage: cardgatectl audit verify|dump|find ... (--help for each)\n";
    if (argc < 2) {
        fputs(usage, stderr);
        return 2;
    }
    if (strcmp(argv[1], "verify") == 0)
        return verify_main(argc - 1, argv + 1);
    if (strcmp(argv[1], "dump") == 0)
        return list_main(argc - 1, argv + 1, false);
    if (strcmp(argv[1], "find") == 0)
        return list_main(argc - 1, argv + 1, true);
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        fputs(usage, stdout);
        return 0;
    }
    fputs(usage, stderr);
    return 2;
}
