/*
 * ctl_ledger.c - cardgatectl's ledger commands:
 *
 *   account create --name NAME --currency CODE [--company NAME] [--timezone TZ]
 *   account load --account ID --amount MINOR [--note TEXT]
 *   account show --account ID
 *   cardholder add --company ID --name NAME [--team NAME]
 *   auth list (--card ID | --rrn RRN | --date YYYY-MM-DD) [--limit N]
 *   check-ledger
 *   holds expire
 *
 * Each runs in one transaction; --db CONNINFO or the PG* environment;
 * --json prints one JSON object.  Bad input is refused before anything is
 * written, with the reason on stderr and exit status 1.
 */
#include "common/util.h"
#include "tools/ctl/ctl.h"
#include "tools/ctl/ctl_out.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

static int need(const char *cmd, const char *what, const char *v)
{
    if (v == NULL || *v == '\0') {
        fprintf(stderr, "cardgatectl %s: %s is required\n", cmd, what);
        return -1;
    }
    return 0;
}

static int need_id(const char *cmd, const char *what, const char *v)
{
    int64_t x;
    if (need(cmd, what, v) != 0)
        return -1;
    if (!ctl_parse_nonneg(v, &x) || x == 0) {
        fprintf(stderr, "cardgatectl %s: %s must be a positive whole number, not '%s'\n", cmd, what,
                v);
        return -1;
    }
    return 0;
}

static int account_create(const struct ctl_args *a)
{
    const char *cmd = "account create";
    if (need(cmd, "--name", a->name) != 0 || need(cmd, "--currency", a->currency) != 0)
        return 1;
    if (strlen(a->currency) != 3 || strspn(a->currency, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != 3) {
        fprintf(stderr, "cardgatectl %s: --currency must be an ISO 4217 code like EUR, not '%s'\n",
                cmd, a->currency);
        return 1;
    }
    const char *p[4] = {a->name, a->currency, a->company ? a->company : a->name,
                        a->timezone ? a->timezone : "UTC"};
    return ctl_run_print(a, cmd,
                         "WITH co AS ("
                         "  INSERT INTO companies (name, timezone) VALUES ($3, $4)"
                         "  ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name RETURNING id)"
                         " INSERT INTO accounts (company_id, name, currency)"
                         " SELECT co.id, $1, $2 FROM co"
                         " RETURNING id AS account_id, company_id, currency",
                         4, p, true, NULL);
}

static int account_load(const struct ctl_args *a)
{
    const char *cmd = "account load";
    int64_t amt;
    if (need_id(cmd, "--account", a->account) != 0 || need(cmd, "--amount", a->amount) != 0)
        return 1;
    if (!ctl_parse_nonneg(a->amount, &amt) || amt == 0) {
        fprintf(stderr,
                "cardgatectl %s: --amount must be a positive number of minor units, not '%s'\n",
                cmd, a->amount);
        return 1;
    }
    const char *p[3] = {a->account, a->amount, a->note ? a->note : "load"};
    return ctl_run_print(a, cmd, "SELECT * FROM account_load($1, $2, $3)", 3, p, true, NULL);
}

static int account_show(const struct ctl_args *a)
{
    const char *cmd = "account show";
    if (need_id(cmd, "--account", a->account) != 0)
        return 1;
    const char *p[1] = {a->account};
    return ctl_run_print(a, cmd,
                         "SELECT a.id AS account_id, a.name, a.currency, a.balance, a.available,"
                         " a.balance - a.available AS held, a.company_id, co.name AS company,"
                         " (SELECT count(*) FROM cards c WHERE c.account_id = a.id) AS cards"
                         " FROM accounts a LEFT JOIN companies co ON co.id = a.company_id"
                         " WHERE a.id = $1 AND a.kind = 'wallet'",
                         1, p, true, NULL);
}

static int cardholder_add(const struct ctl_args *a)
{
    const char *cmd = "cardholder add";
    if (need_id(cmd, "--company", a->company) != 0 || need(cmd, "--name", a->name) != 0)
        return 1;
    const char *p[3] = {a->company, a->name, a->team};
    return ctl_run_print(
        a, cmd,
        "WITH t AS ("
        "  INSERT INTO teams (company_id, name) SELECT $1, $3::text WHERE $3::text IS NOT NULL"
        "  ON CONFLICT (company_id, name) DO UPDATE SET name = EXCLUDED.name"
        "  RETURNING id)"
        " INSERT INTO cardholders (company_id, team_id, name)"
        " VALUES ($1, (SELECT id FROM t), $2)"
        " RETURNING id AS cardholder_id, company_id, team_id",
        3, p, true, NULL);
}

static const char AUTH_COLS[] =
    "SELECT a.id AS auth_id, a.created_at, a.kind, a.card_id, a.account_id, a.acquirer_id,"
    " a.stan, a.rrn, a.terminal_id, a.merchant_id, a.mcc, a.country, a.channel,"
    " a.amount_requested, a.amount_approved, a.amount_reversed, a.amount_captured,"
    " a.hold_amount, a.currency, a.status, a.response_code, a.approval_code, a.rule,"
    " a.policy_version, a.original_id, a.overdrew FROM authorizations a ";

static int auth_list(const struct ctl_args *a)
{
    const char *cmd = "auth list";
    char sql[1024];
    int64_t lim = 100;
    const char *key;
    const char *where;

    if (a->limit != NULL && (!ctl_parse_nonneg(a->limit, &lim) || lim == 0)) {
        fprintf(stderr, "cardgatectl %s: --limit must be a positive number\n", cmd);
        return 1;
    }
    if (a->card != NULL) {
        if (need_id(cmd, "--card", a->card) != 0)
            return 1;
        key = a->card;
        where = "WHERE a.card_id = $1";
    } else if (a->rrn != NULL) {
        key = a->rrn;
        where = "WHERE a.rrn = $1";
    } else if (a->date != NULL) {
        key = a->date;
        where = "WHERE a.created_at >= $1::date AND a.created_at < $1::date + 1";
    } else {
        fprintf(stderr, "cardgatectl %s: one of --card, --rrn or --date is required\n", cmd);
        return 1;
    }
    snprintf(sql, sizeof(sql), "%s%s ORDER BY a.id DESC LIMIT %lld", AUTH_COLS, where,
             (long long)lim);
    const char *p[1] = {key};
    return ctl_run_print(a, cmd, sql, 1, p, false, "authorizations");
}

static int check_ledger(const struct ctl_args *a)
{
    PGconn *c = ctl_begin(a->db);
    if (c == NULL)
        return 1;
    /* a consistent snapshot of every table the check reads */
    PGresult *r = ctl_exec(c, "check-ledger",
                           "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY", 0, NULL);
    if (r != NULL) {
        PQclear(r);
        r = ctl_exec(c, "check-ledger", "SELECT * FROM check_ledger()", 0, NULL);
    }
    if (r == NULL) {
        ctl_rollback_close(c);
        return 1;
    }
    ctl_rollback_close(c);
    int bad = PQntuples(r);
    if (a->json) {
        printf("{\"ok\":%s,\"problems\":[", bad ? "false" : "true");
        for (int i = 0; i < bad; i++) {
            if (i > 0)
                putchar(',');
            ctl_json_row(stdout, r, i);
        }
        printf("]}\n");
    } else if (bad == 0) {
        printf("check-ledger: ok\n");
    } else {
        ctl_print_rows(stdout, r, false, false, NULL);
        printf("check-ledger: %d problem(s)\n", bad);
    }
    PQclear(r);
    return bad ? 1 : 0;
}

static int holds_expire(const struct ctl_args *a)
{
    return ctl_run_print(a, "holds expire", "SELECT expire_holds() AS released", 0, NULL, true,
                         NULL);
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: cardgatectl account create --name NAME --currency CODE [--company NAME]\n"
            "                                  [--timezone TZ]\n"
            "       cardgatectl account load --account ID --amount MINOR [--note TEXT]\n"
            "       cardgatectl account show --account ID\n"
            "       cardgatectl cardholder add --company ID --name NAME [--team NAME]\n"
            "       cardgatectl auth list (--card ID | --rrn RRN | --date YYYY-MM-DD) [--limit N]\n"
            "       cardgatectl check-ledger\n"
            "       cardgatectl holds expire\n"
            "  Common options: --db CONNINFO (else the PG* environment), --json.\n");
}

int ctl_account_main(int argc, char **argv)
{
    static const char *const subs[] = {"create", "load", "show"};
    static ctl_sub_fn *const fns[] = {account_create, account_load, account_show};
    return ctl_dispatch(argc, argv, subs, fns, UTIL_NELEM(subs), false, usage);
}

int ctl_cardholder_main(int argc, char **argv)
{
    static const char *const subs[] = {"add"};
    static ctl_sub_fn *const fns[] = {cardholder_add};
    return ctl_dispatch(argc, argv, subs, fns, UTIL_NELEM(subs), false, usage);
}

int ctl_auth_main(int argc, char **argv)
{
    static const char *const subs[] = {"list"};
    static ctl_sub_fn *const fns[] = {auth_list};
    return ctl_dispatch(argc, argv, subs, fns, UTIL_NELEM(subs), false, usage);
}

int ctl_check_ledger_main(int argc, char **argv)
{
    static const char *const subs[] = {""};
    static ctl_sub_fn *const fns[] = {check_ledger};
    return ctl_dispatch(argc, argv, subs, fns, UTIL_NELEM(subs), true, usage);
}

int ctl_holds_main(int argc, char **argv)
{
    static const char *const subs[] = {"expire"};
    static ctl_sub_fn *const fns[] = {holds_expire};
    return ctl_dispatch(argc, argv, subs, fns, UTIL_NELEM(subs), false, usage);
}
