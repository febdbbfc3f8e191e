/*
 * cardgatectl - operators' and auditors' tool.  Dispatches to the command
 * modules listed below.
 */
#include "common/log.h"
#include "tools/ctl/ctl.h"

#include <stdio.h>
#include <string.h>

static const struct ctl_command commands[] = {
    {"migrate", "apply sql/ migrations to the database", ctl_migrate_main},
    {"iso", "ISO 8583: decode a message to masked JSON, encode JSON to bytes", ctl_iso_main},
    {"crypto", "payment-crypto utilities: kcv, pinblock, cvv, pvv, mac, emv, key", ctl_crypto_main},
    {"key", "key store: generate, import, list, kcv, rotate", ctl_key_main},
    {"account", "wallets: create, load, show", ctl_account_main},
    {"cardholder", "cardholders: add (to a team)", ctl_cardholder_main},
    {"card", "cards: issue, freeze, unfreeze, block, close, show", ctl_card_main},
    {"policy", "spending policies: set, show, shadow-report, promote", ctl_policy_main},
    {"auth", "authorizations: list by card, RRN or date", ctl_auth_main},
    {"check-ledger", "verify the ledger invariants (non-zero exit on a problem)",
     ctl_check_ledger_main},
    {"holds", "holds: expire the ones never completed", ctl_holds_main},
    {"demo", "demo data for make run: seed", ctl_demo_main},
    {"audit", "verify, dump and search the audit log", ctl_audit_main},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: cardgatectl COMMAND [ARGS...]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(out, "  %-12s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n'cardgatectl COMMAND --help' describes one command.\n");
}

int main(int argc, char **argv)
{
    log_init("cardgatectl", LOG_LVL_WARNING);
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "cardgatectl: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
