/*
 * ctl.h - cardgatectl's command table.  Each module adds its commands in its
 * own file (ctl_iso.c, ctl_db.c, ctl_crypto.c, ...) and one line to the
 * table in main.c.  A command gets argv with argv[0] = its own name and
 * returns the process exit status: 0 ok, 1 bad input or operation failed,
 * 2 usage or configuration error.
 */
#ifndef CARDGATE_TOOLS_CTL_H
#define CARDGATE_TOOLS_CTL_H

struct ctl_command {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv);
};

int ctl_migrate_main(int argc, char **argv);
int ctl_iso_main(int argc, char **argv);
int ctl_crypto_main(int argc, char **argv);
int ctl_key_main(int argc, char **argv);
/* ledger (ctl_ledger.c, ctl_card.c, ctl_policy.c, ctl_demo.c) */
int ctl_account_main(int argc, char **argv);
int ctl_cardholder_main(int argc, char **argv);
int ctl_card_main(int argc, char **argv);
int ctl_policy_main(int argc, char **argv);
int ctl_auth_main(int argc, char **argv);
int ctl_check_ledger_main(int argc, char **argv);
int ctl_holds_main(int argc, char **argv);
int ctl_demo_main(int argc, char **argv);
int ctl_audit_main(int argc, char **argv);

#endif
