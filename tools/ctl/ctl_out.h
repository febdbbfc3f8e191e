/*
 * ctl_out.h - what the ledger commands of cardgatectl share: running one
 * parameterised statement with a clean error message, and printing result
 * rows either as JSON (stable, for scripts) or as "key: value" text.
 *
 * JSON types follow the column types: integers and numerics are numbers,
 * booleans true/false, SQL NULL null, everything else a string.
 */
#ifndef CARDGATE_TOOLS_CTL_OUT_H
#define CARDGATE_TOOLS_CTL_OUT_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/*
 * Run sql with text parameters (NULL entries are SQL NULL).  Returns the
 * result (PGRES_TUPLES_OK or COMMAND_OK), or NULL after printing
 * "cardgatectl CMD: <server's message>" to stderr.
 */
PGresult *ctl_exec(PGconn *c, const char *cmd, const char *sql, int n, const char *const *params)
    __attribute__((warn_unused_result));

/* Write s as a JSON string (quotes and escapes included). */
void ctl_json_string(FILE *out, const char *s);

/* Write row `row` of r as one JSON object (no newline). */
void ctl_json_row(FILE *out, const PGresult *r, int row);

/*
 * Print every row of r: with json, one object when single is true (the
 * first row, {} when there is none), else {"<list_key>":[...]}; without
 * json, "column: value" lines, rows separated by a blank line.
 */
void ctl_print_rows(FILE *out, const PGresult *r, bool json, bool single, const char *list_key);

/*
 * Parse a non-negative int64 amount or id ("12345"); false when it is not
 * all digits, empty, or out of range.
 */
bool ctl_parse_nonneg(const char *s, int64_t *out) __attribute__((warn_unused_result));

/* Connect (conninfo or PG* env) and BEGIN; NULL with a message on failure. */
PGconn *ctl_begin(const char *conninfo);
/* COMMIT (0) or report and return -1; always closes the connection. */
int ctl_commit_close(PGconn *c) __attribute__((warn_unused_result));
/* ROLLBACK and close. */
void ctl_rollback_close(PGconn *c);

/*
 * The options every ledger command understands, parsed once.  Policy
 * settings (--daily, --mcc-block, --atm ...) are kept in order as
 * (policy column, text value) pairs; "--clear KEY" records a NULL value.
 */
#define CTL_MAX_SETTINGS 32
struct ctl_args {
    const char *db, *name, *currency, *company, *timezone, *account, *amount, *team;
    const char *cardholder, *card, *bin, *form, *standin_limit, *level, *id, *version;
    const char *rrn, *date, *limit, *out, *pan_key_file, *note, *expiry_years;
    const char *pin, *pvv, *pin_offset, *pvki;
    bool json, shadow, inactive;
    int nsettings;
    struct {
        const char *key;   /* policies column */
        const char *value; /* NULL: clear */
        bool list, flag;   /* comma list -> JSON array; on/off -> JSON boolean */
    } settings[CTL_MAX_SETTINGS];
};

/*
 * Parse the options of argv (argv[0] = the command) into a; positional
 * words (the subcommand) are left at argv[optind..] for the caller.
 * Returns 0, 1 when --help was asked for, or 2 after printing the problem
 * (unknown option, missing value).
 */
int ctl_parse_args(int argc, char **argv, struct ctl_args *a) __attribute__((warn_unused_result));

/*
 * Run one statement in its own transaction (BEGIN, statement, COMMIT) and
 * print its rows (see ctl_print_rows).  With single, no row means "not
 * found".  Returns the exit status: 0, or 1 with the reason on stderr.
 */
int ctl_run_print(const struct ctl_args *a, const char *cmd, const char *sql, int n,
                  const char *const *params, bool single, const char *list_key);

typedef int ctl_sub_fn(const struct ctl_args *a);

/*
 * Parse the shared options, find the subcommand (argv[optind]) in subs and
 * run the matching fns entry; "" matches no subcommand when sub_optional.
 * Prints usage() and returns 2 on a usage error, 0 after --help.
 */
int ctl_dispatch(int argc, char **argv, const char *const subs[], ctl_sub_fn *const fns[],
                 size_t nsubs, bool sub_optional, void (*usage)(FILE *));

#endif
