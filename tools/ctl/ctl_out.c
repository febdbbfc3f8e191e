/*
 * ctl_out.c - see ctl_out.h.
 */
#include "tools/ctl/ctl_out.h"

#include "common/db.h"
#include "common/util.h"

#include <getopt.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* type OIDs from pg_type.h (stable across releases) */
#define OID_BOOL    16
#define OID_INT8    20
#define OID_INT2    21
#define OID_INT4    23
#define OID_NUMERIC 1700

PGresult *ctl_exec(PGconn *c, const char *cmd, const char *sql, int n, const char *const *params)
{
    PGresult *r = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
        return r;
    const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
    fprintf(stderr, "cardgatectl %s: %s\n", cmd, msg ? msg : PQerrorMessage(c));
    PQclear(r);
    return NULL;
}

void ctl_json_string(FILE *out, const char *s)
{
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"':
            fputs("\\\"", out);
            break;
        case '\\':
            fputs("\\\\", out);
            break;
        case '\n':
            fputs("\\n", out);
            break;
        case '\r':
            fputs("\\r", out);
            break;
        case '\t':
            fputs("\\t", out);
            break;
        default:
            if (*p < 0x20)
                fprintf(out, "\\u%04x", *p);
            else
                fputc(*p, out);
        }
    }
    fputc('"', out);
}

void ctl_json_row(FILE *out, const PGresult *r, int row)
{
    fputc('{', out);
    for (int f = 0; f < PQnfields(r); f++) {
        if (f > 0)
            fputc(',', out);
        ctl_json_string(out, PQfname(r, f));
        fputc(':', out);
        if (PQgetisnull(r, row, f)) {
            fputs("null", out);
            continue;
        }
        const char *v = PQgetvalue(r, row, f);
        switch (PQftype(r, f)) {
        case OID_INT2:
        case OID_INT4:
        case OID_INT8:
        case OID_NUMERIC:
            fputs(v, out);
            break;
        case OID_BOOL:
            fputs(v[0] == 't' ? "true" : "false", out);
            break;
        default:
            ctl_json_string(out, v);
        }
    }
    fputc('}', out);
}

void ctl_print_rows(FILE *out, const PGresult *r, bool json, bool single, const char *list_key)
{
    int rows = PQntuples(r);
    if (json) {
        if (single) {
            if (rows > 0)
                ctl_json_row(out, r, 0);
            else
                fputs("{}", out);
        } else {
            fputc('{', out);
            ctl_json_string(out, list_key);
            fputs(":[", out);
            for (int i = 0; i < rows; i++) {
                if (i > 0)
                    fputc(',', out);
                ctl_json_row(out, r, i);
            }
            fputs("]}", out);
        }
        fputc('\n', out);
        return;
    }
    for (int i = 0; i < (single && rows > 1 ? 1 : rows); i++) {
        if (i > 0)
            fputc('\n', out);
        for (int f = 0; f < PQnfields(r); f++)
            fprintf(out, "%s: %s\n", PQfname(r, f),
                    PQgetisnull(r, i, f) ? "-" : PQgetvalue(r, i, f));
    }
}

bool ctl_parse_nonneg(const char *s, int64_t *out)
{
    char *end;
    if (s == NULL || *s < '0' || *s > '9')
        return false;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < 0)
        return false;
    *out = v;
    return true;
}

PGconn *ctl_begin(const char *conninfo)
{
    PGconn *c = db_connect_blocking(conninfo);
    if (c == NULL)
        return NULL;
    if (db_exec_ok(c, "BEGIN") != 0) {
        PQfinish(c);
        return NULL;
    }
    return c;
}

int ctl_commit_close(PGconn *c)
{
    int rc = db_exec_ok(c, "COMMIT");
    PQfinish(c);
    return rc;
}

void ctl_rollback_close(PGconn *c)
{
    db_exec_best_effort(c, "ROLLBACK");
    PQfinish(c);
}

enum {
    O_DB = 256,
    O_JSON,
    O_NAME,
    O_CURRENCY,
    O_COMPANY,
    O_TZ,
    O_ACCOUNT,
    O_AMOUNT,
    O_TEAM,
    O_CARDHOLDER,
    O_CARD,
    O_BIN,
    O_FORM,
    O_STANDIN,
    O_LEVEL,
    O_ID,
    O_VERSION,
    O_RRN,
    O_DATE,
    O_LIMIT,
    O_OUT,
    O_PANKEY,
    O_NOTE,
    O_YEARS,
    O_SHADOW,
    O_INACTIVE,
    O_CLEAR,
    O_PIN,
    O_PVV,
    O_PINOFF,
    O_PVKI,
    O_SETTING
};

/* policy setting options: option name, policies column, kind (0 number, 1 list, 2 on/off) */
static const struct {
    const char *opt, *col;
    int kind;
} setting_opts[] = {
    {"per-txn", "per_txn_max", 0},
    {"daily", "daily_max", 0},
    {"weekly", "weekly_max", 0},
    {"monthly", "monthly_max", 0},
    {"lifetime", "lifetime_max", 0},
    {"daily-count", "daily_count", 0},
    {"weekly-count", "weekly_count", 0},
    {"monthly-count", "monthly_count", 0},
    {"lifetime-count", "lifetime_count", 0},
    {"mcc-allow", "mcc_allow", 1},
    {"mcc-block", "mcc_block", 1},
    {"country-allow", "country_allow", 1},
    {"country-block", "country_block", 1},
    {"currencies", "currencies", 1},
    {"atm", "allow_atm", 2},
    {"ecom", "allow_ecom", 2},
    {"contactless", "allow_contactless", 2},
    {"fallback", "allow_fallback", 2},
};

static int add_setting(struct ctl_args *a, int idx, const char *value)
{
    if (a->nsettings == CTL_MAX_SETTINGS) {
        fprintf(stderr, "cardgatectl: too many policy settings\n");
        return 2;
    }
    a->settings[a->nsettings].key = setting_opts[idx].col;
    a->settings[a->nsettings].value = value;
    a->settings[a->nsettings].list = setting_opts[idx].kind == 1;
    a->settings[a->nsettings].flag = setting_opts[idx].kind == 2;
    a->nsettings++;
    return 0;
}

int ctl_parse_args(int argc, char **argv, struct ctl_args *a)
{
    static const struct {
        const char *name;
        int val;
    } base[] = {
        {"db", O_DB},
        {"name", O_NAME},
        {"currency", O_CURRENCY},
        {"company", O_COMPANY},
        {"timezone", O_TZ},
        {"account", O_ACCOUNT},
        {"amount", O_AMOUNT},
        {"team", O_TEAM},
        {"cardholder", O_CARDHOLDER},
        {"card", O_CARD},
        {"bin", O_BIN},
        {"form", O_FORM},
        {"standin-limit", O_STANDIN},
        {"level", O_LEVEL},
        {"id", O_ID},
        {"version", O_VERSION},
        {"rrn", O_RRN},
        {"date", O_DATE},
        {"limit", O_LIMIT},
        {"out", O_OUT},
        {"pan-key-file", O_PANKEY},
        {"note", O_NOTE},
        {"expiry-years", O_YEARS},
        {"clear", O_CLEAR},
        {"pin", O_PIN},
        {"pvv", O_PVV},
        {"pin-offset", O_PINOFF},
        {"pvki", O_PVKI},
    };
    struct option opts[UTIL_NELEM(base) + UTIL_NELEM(setting_opts) + 5];
    size_t n = 0;
    int ch, idx;

    memset(a, 0, sizeof(*a));
    for (size_t i = 0; i < UTIL_NELEM(base); i++)
        opts[n++] = (struct option){base[i].name, required_argument, NULL, base[i].val};
    for (size_t i = 0; i < UTIL_NELEM(setting_opts); i++)
        opts[n++] =
            (struct option){setting_opts[i].opt, required_argument, NULL, O_SETTING + (int)i};
    opts[n++] = (struct option){"json", no_argument, NULL, O_JSON};
    opts[n++] = (struct option){"shadow", no_argument, NULL, O_SHADOW};
    opts[n++] = (struct option){"inactive", no_argument, NULL, O_INACTIVE};
    opts[n++] = (struct option){"help", no_argument, NULL, 'h'};
    opts[n] = (struct option){NULL, 0, NULL, 0};

    optind = 1;
    opterr = 1;
    /* argv[0] is the command; getopt starts at argv[1], the subcommand is
     * permuted to the end and checked by the caller */
    while ((ch = getopt_long(argc, argv, "h", opts, &idx)) != -1) {
        switch (ch) {
        case O_DB:
            a->db = optarg;
            break;
        case O_JSON:
            a->json = true;
            break;
        case O_NAME:
            a->name = optarg;
            break;
        case O_CURRENCY:
            a->currency = optarg;
            break;
        case O_COMPANY:
            a->company = optarg;
            break;
        case O_TZ:
            a->timezone = optarg;
            break;
        case O_ACCOUNT:
            a->account = optarg;
            break;
        case O_AMOUNT:
            a->amount = optarg;
            break;
        case O_TEAM:
            a->team = optarg;
            break;
        case O_CARDHOLDER:
            a->cardholder = optarg;
            break;
        case O_CARD:
            a->card = optarg;
            break;
        case O_BIN:
            a->bin = optarg;
            break;
        case O_FORM:
            a->form = optarg;
            break;
        case O_STANDIN:
            a->standin_limit = optarg;
            break;
        case O_LEVEL:
            a->level = optarg;
            break;
        case O_ID:
            a->id = optarg;
            break;
        case O_VERSION:
            a->version = optarg;
            break;
        case O_RRN:
            a->rrn = optarg;
            break;
        case O_DATE:
            a->date = optarg;
            break;
        case O_LIMIT:
            a->limit = optarg;
            break;
        case O_OUT:
            a->out = optarg;
            break;
        case O_PANKEY:
            a->pan_key_file = optarg;
            break;
        case O_NOTE:
            a->note = optarg;
            break;
        case O_YEARS:
            a->expiry_years = optarg;
            break;
        case O_SHADOW:
            a->shadow = true;
            break;
        case O_PIN:
            a->pin = optarg;
            break;
        case O_PVV:
            a->pvv = optarg;
            break;
        case O_PINOFF:
            a->pin_offset = optarg;
            break;
        case O_PVKI:
            a->pvki = optarg;
            break;
        case O_INACTIVE:
            a->inactive = true;
            break;
        case O_CLEAR: {
            size_t i;
            for (i = 0; i < UTIL_NELEM(setting_opts); i++)
                if (strcmp(optarg, setting_opts[i].opt) == 0)
                    break;
            if (i == UTIL_NELEM(setting_opts)) {
                fprintf(stderr, "cardgatectl: --clear: unknown policy setting '%s'\n", optarg);
                return 2;
            }
            if (add_setting(a, (int)i, NULL) != 0)
                return 2;
            break;
        }
        case 'h':
            return 1;
        default:
            if (ch >= O_SETTING && ch < O_SETTING + (int)UTIL_NELEM(setting_opts)) {
                if (add_setting(a, ch - O_SETTING, optarg) != 0)
                    return 2;
                break;
            }
            return 2;
        }
    }
    return 0;
}

/* Dispatch "COMMAND SUB" to fn(args) after parsing the shared options. */
int ctl_dispatch(int argc, char **argv, const char *const subs[], ctl_sub_fn *const fns[],
                 size_t nsubs, bool sub_optional, void (*usage)(FILE *))
{
    struct ctl_args a;
    int rc = ctl_parse_args(argc, argv, &a);
    if (rc == 1) {
        usage(stdout);
        return 0;
    }
    if (rc != 0) {
        usage(stderr);
        return 2;
    }
    if (optind + 1 < argc || (!sub_optional && optind >= argc)) {
        usage(stderr);
        return 2;
    }
    const char *sub = optind < argc ? argv[optind] : "";
    for (size_t i = 0; i < nsubs; i++)
        if (strcmp(sub, subs[i]) == 0)
            return fns[i](&a);
    fprintf(stderr, "cardgatectl %s: unknown subcommand '%s'\n", argv[0], sub);
    usage(stderr);
    return 2;
}

/*
 * Run one statement in its own transaction and print its rows.  Returns
 * the exit status: 0, or 1 when the statement failed (message printed).
 */
int ctl_run_print(const struct ctl_args *a, const char *cmd, const char *sql, int n,
                  const char *const *params, bool single, const char *list_key)
{
    PGconn *c = ctl_begin(a->db);
    if (c == NULL)
        return 1;
    PGresult *r = ctl_exec(c, cmd, sql, n, params);
    if (r == NULL) {
        ctl_rollback_close(c);
        return 1;
    }
    if (single && PQntuples(r) == 0) {
        fprintf(stderr, "cardgatectl %s: not found\n", cmd);
        PQclear(r);
        ctl_rollback_close(c);
        return 1;
    }
    if (ctl_commit_close(c) != 0) {
        PQclear(r);
        return 1;
    }
    ctl_print_rows(stdout, r, a->json, single, list_key);
    PQclear(r);
    return 0;
}
