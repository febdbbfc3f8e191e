/*
 * ctl_policy.c - `cardgatectl policy`:
 *
 *   policy set --level company|team|cardholder|card --id ID [--shadow] [--note TEXT]
 *              [--per-txn N] [--daily N] [--weekly N] [--monthly N] [--lifetime N]
 *              [--daily-count N] [--weekly-count N] [--monthly-count N] [--lifetime-count N]
 *              [--mcc-allow LIST] [--mcc-block LIST] [--country-allow LIST]
 *              [--country-block LIST] [--currencies LIST]
 *              [--atm on|off] [--ecom on|off] [--contactless on|off] [--fallback on|off]
 *              [--clear SETTING]...
 *   policy show --level LEVEL --id ID
 *   policy shadow-report [--version V] [--limit N]
 *   policy promote --version V
 *
 * Every `policy set` writes a new version (settings not given are kept from
 * the active version); with --shadow it is decided next to live traffic
 * without changing any answer until `policy promote`.
 */
#include "common/util.h"
#include "tools/ctl/ctl.h"
#include "tools/ctl/ctl_out.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool valid_level(const char *l)
{
    return l != NULL && (strcmp(l, "company") == 0 || strcmp(l, "team") == 0 ||
                         strcmp(l, "cardholder") == 0 || strcmp(l, "card") == 0);
}

/* An MCC list token: 4 digits or a group name (lower case, digits, '_'). */
static bool valid_list_token(const char *key, const char *t, size_t n)
{
    if (n == 0)
        return false;
    if (strncmp(key, "mcc_", 4) == 0) {
        if (n == 4 && strspn(t, "0123456789") >= 4)
            return true;
        if (!(t[0] >= 'a' && t[0] <= 'z'))
            return false;
        for (size_t i = 0; i < n; i++)
            if (!((t[i] >= 'a' && t[i] <= 'z') || (t[i] >= '0' && t[i] <= '9') || t[i] == '_'))
                return false;
        return true;
    }
    /* countries (alpha-2/3 or numeric) and currencies (alpha or numeric) */
    if (n < 2 || n > 3)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((t[i] >= 'A' && t[i] <= 'Z') || (t[i] >= '0' && t[i] <= '9')))
            return false;
    return true;
}

/*
 * The settings as a JSON object into buf; -1 with a message when a value is
 * bad (negative limit, bad MCC, on/off misspelt).
 */
static int settings_json(const struct ctl_args *a, char *buf, size_t cap)
{
    size_t used = 0;
#define APPEND(...)                                                                                \
    do {                                                                                           \
        int w_ = snprintf(buf + used, cap - used, __VA_ARGS__);                                    \
        if (w_ < 0 || (size_t)w_ >= cap - used) {                                                  \
            fprintf(stderr, "cardgatectl policy set: settings too long\n");                        \
            return -1;                                                                             \
        }                                                                                          \
        used += (size_t)w_;                                                                        \
    } while (0)

    APPEND("{");
    for (int i = 0; i < a->nsettings; i++) {
        const char *k = a->settings[i].key, *v = a->settings[i].value;
        APPEND("%s\"%s\":", i ? "," : "", k);
        if (v == NULL) {
            APPEND("null");
        } else if (a->settings[i].flag) {
            if (strcmp(v, "on") == 0 || strcmp(v, "yes") == 0 || strcmp(v, "true") == 0)
                APPEND("true");
            else if (strcmp(v, "off") == 0 || strcmp(v, "no") == 0 || strcmp(v, "false") == 0)
                APPEND("false");
            else {
                fprintf(stderr, "cardgatectl policy set: %s takes on or off, not '%s'\n", k, v);
                return -1;
            }
        } else if (a->settings[i].list) {
            APPEND("[");
            const char *p = v;
            int first = 1;
            while (*p) {
                size_t n = strcspn(p, ",");
                if (!valid_list_token(k, p, n)) {
                    fprintf(stderr, "cardgatectl policy set: bad %s entry '%.*s'%s\n", k, (int)n, p,
                            strncmp(k, "mcc_", 4) == 0
                                ? " (an MCC is 4 digits, or the name of an MCC group)"
                                : "");
                    return -1;
                }
                APPEND("%s\"%.*s\"", first ? "" : ",", (int)n, p);
                first = 0;
                p += n;
                if (*p == ',')
                    p++;
            }
            APPEND("]");
        } else {
            int64_t x;
            if (v[0] == '-') {
                fprintf(stderr, "cardgatectl policy set: a limit cannot be below zero (%s %s)\n", k,
                        v);
                return -1;
            }
            if (!ctl_parse_nonneg(v, &x)) {
                fprintf(stderr, "cardgatectl policy set: %s must be a whole number, not '%s'\n", k,
                        v);
                return -1;
            }
            APPEND("%lld", (long long)x);
        }
    }
    APPEND("}");
#undef APPEND
    return 0;
}

static int policy_set(const struct ctl_args *a)
{
    char json[4096];
    int64_t v;
    if (!valid_level(a->level) || a->id == NULL || !ctl_parse_nonneg(a->id, &v)) {
        fprintf(stderr, "cardgatectl policy set: --level company|team|cardholder|card and "
                        "--id ID are required\n");
        return 1;
    }
    if (settings_json(a, json, sizeof(json)) != 0)
        return 1;
    const char *p[5] = {a->level, a->id, json, a->shadow ? "t" : "f", a->note};
    return ctl_run_print(a, "policy set",
                         "SELECT policy_set($1, $2, $3::jsonb, $4, $5) AS version,"
                         " CASE WHEN $4 THEN 'shadow' ELSE 'active' END AS state",
                         5, p, true, NULL);
}

static int policy_show(const struct ctl_args *a)
{
    int64_t v;
    if (!valid_level(a->level) || a->id == NULL || !ctl_parse_nonneg(a->id, &v)) {
        fprintf(stderr, "cardgatectl policy show: --level company|team|cardholder|card and "
                        "--id ID are required\n");
        return 1;
    }
    const char *p[2] = {a->level, a->id};
    return ctl_run_print(
        a, "policy show",
        "SELECT id AS version, state, scope AS level, scope_id AS id, created_at, note,"
        " per_txn_max, daily_max, weekly_max, monthly_max, lifetime_max, daily_count,"
        " weekly_count, monthly_count, lifetime_count,"
        " array_to_string(mcc_allow_spec, ',') AS mcc_allow,"
        " array_to_string(mcc_block_spec, ',') AS mcc_block,"
        " array_to_string(country_allow, ',') AS country_allow,"
        " array_to_string(country_block, ',') AS country_block,"
        " array_to_string(currencies, ',') AS currencies,"
        " allow_atm, allow_ecom, allow_contactless, allow_fallback"
        " FROM policies WHERE scope = $1 AND scope_id = $2 AND state IN ('active', 'shadow')"
        " ORDER BY state, id",
        2, p, false, "policies");
}

static int policy_shadow_report(const struct ctl_args *a)
{
    int64_t lim = 20, v;
    if (a->limit != NULL && !ctl_parse_nonneg(a->limit, &lim)) {
        fprintf(stderr, "cardgatectl policy shadow-report: --limit must be a number\n");
        return 1;
    }
    if (a->version != NULL && !ctl_parse_nonneg(a->version, &v)) {
        fprintf(stderr, "cardgatectl policy shadow-report: --version must be a number\n");
        return 1;
    }
    char limbuf[24];
    snprintf(limbuf, sizeof(limbuf), "%lld", (long long)lim);
    PGconn *c = ctl_begin(a->db);
    if (c == NULL)
        return 1;
    const char *p[2] = {a->version, limbuf};
    PGresult *sum = ctl_exec(c, "policy shadow-report",
                             "SELECT shadow_version AS version, count(*) AS decisions,"
                             " count(*) FILTER (WHERE live_code <> shadow_code) AS differed"
                             " FROM shadow_decisions"
                             " WHERE $1::bigint IS NULL OR shadow_version = $1"
                             " GROUP BY shadow_version ORDER BY shadow_version",
                             1, p);
    PGresult *diff = sum == NULL
                         ? NULL
                         : ctl_exec(c, "policy shadow-report",
                                    "SELECT d.shadow_version AS version, d.auth_id,"
                                    " a.card_id, a.amount_requested, a.mcc,"
                                    " d.live_code, d.live_rule, d.shadow_code, d.shadow_rule"
                                    " FROM shadow_decisions d"
                                    " LEFT JOIN authorizations a ON a.id = d.auth_id"
                                    " WHERE ($1::bigint IS NULL OR d.shadow_version = $1)"
                                    "   AND d.live_code <> d.shadow_code"
                                    " ORDER BY d.auth_id DESC LIMIT $2",
                                    2, p);
    ctl_rollback_close(c);
    if (sum == NULL || diff == NULL) {
        PQclear(sum);
        return 1;
    }
    if (a->json) {
        printf("{\"versions\":[");
        for (int i = 0; i < PQntuples(sum); i++) {
            if (i)
                putchar(',');
            ctl_json_row(stdout, sum, i);
        }
        printf("],\"differences\":[");
        for (int i = 0; i < PQntuples(diff); i++) {
            if (i)
                putchar(',');
            ctl_json_row(stdout, diff, i);
        }
        printf("]}\n");
    } else {
        if (PQntuples(sum) == 0)
            printf("no shadow decisions recorded\n");
        for (int i = 0; i < PQntuples(sum); i++)
            printf("shadow version %s: %s decisions, %s would have differed\n",
                   PQgetvalue(sum, i, 0), PQgetvalue(sum, i, 1), PQgetvalue(sum, i, 2));
        for (int i = 0; i < PQntuples(diff); i++)
            printf("  auth %s card %s amount %s mcc %s: live %s (%s), shadow %s (%s)\n",
                   PQgetvalue(diff, i, 1), PQgetvalue(diff, i, 2), PQgetvalue(diff, i, 3),
                   PQgetisnull(diff, i, 4) ? "-" : PQgetvalue(diff, i, 4), PQgetvalue(diff, i, 5),
                   PQgetvalue(diff, i, 6), PQgetvalue(diff, i, 7), PQgetvalue(diff, i, 8));
    }
    PQclear(sum);
    PQclear(diff);
    return 0;
}

static int policy_promote(const struct ctl_args *a)
{
    int64_t v;
    if (a->version == NULL || !ctl_parse_nonneg(a->version, &v)) {
        fprintf(stderr, "cardgatectl policy promote: --version V is required\n");
        return 1;
    }
    const char *p[1] = {a->version};
    return ctl_run_print(a, "policy promote",
                         "SELECT $1::bigint AS version, 'active' AS state FROM policy_promote($1)",
                         1, p, true, NULL);
}

static void usage(FILE *out)
{
    fprintf(out, "usage: cardgatectl policy set --level company|team|cardholder|card --id ID\n"
                 "              [--shadow] [--note TEXT] [--per-txn N] [--daily N] [--weekly N]\n"
                 "              [--monthly N] [--lifetime N] [--daily-count N] [--weekly-count N]\n"
                 "              [--monthly-count N] [--lifetime-count N] [--mcc-allow LIST]\n"
                 "              [--mcc-block LIST] [--country-allow LIST] [--country-block LIST]\n"
                 "              [--currencies LIST] [--atm on|off] [--ecom on|off]\n"
                 "              [--contactless on|off] [--fallback on|off] [--clear SETTING]...\n"
                 "       cardgatectl policy show --level LEVEL --id ID\n"
                 "       cardgatectl policy shadow-report [--version V] [--limit N]\n"
                 "       cardgatectl policy promote --version V\n"
                 "  Amounts are minor units; LIST is comma-separated (MCCs or MCC group names).\n"
                 "  Common options: --db CONNINFO (else the PG* environment), --json.\n");
}

int ctl_policy_main(int argc, char **argv)
{
    static const char *const subs[] = {"set", "show", "shadow-report", "promote"};
    static ctl_sub_fn *const fns[] = {policy_set, policy_show, policy_shadow_report,
                                      policy_promote};
    return ctl_dispatch(argc, argv, subs, fns, UTIL_NELEM(subs), false, usage);
}
