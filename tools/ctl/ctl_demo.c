/*
 * ctl_demo.c - `cardgatectl demo seed [--out FILE]`: demo companies, teams,
 * cardholders, cards and policies for `make run`, chosen so that a plain
 * purchase on each card shows one kind of decision (approval, each status
 * decline, limits, controls, insufficient funds, partial approval).
 *
 * The cards (PAN, expiry, CVV2, label, amount, and the code the purchase gets)
 * are written to FILE as JSON for cardgate-sim, and a table goes to stdout.
 * Demo only: the PANs are in a test BIN (999999) and the file is mode 0600.
 */
#include "common/db.h"
#include "common/util.h"
#include "tools/ctl/ctl.h"
#include "tools/ctl/ctl_card.h"
#include "tools/ctl/ctl_out.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Companies, their wallets, load and company-level policy. */
static const char SEED_SQL[] =
    "INSERT INTO mcc_groups (name, mcc) VALUES"
    " ('gambling', '7995'), ('gambling', '7800'), ('gambling', '7801'), ('gambling', '7802'),"
    " ('airlines', '4511'), ('airlines', '3000'), ('airlines', '3001'), ('airlines', '3005'),"
    " ('groceries', '5411'), ('groceries', '5422'), ('fuel', '5541'), ('fuel', '5542')"
    " ON CONFLICT DO NOTHING;"
    "INSERT INTO companies (id, name, timezone) VALUES"
    " (1001, 'Acme Robotics', 'Europe/Berlin'), (1002, 'Globex Travel', 'UTC'),"
    " (1003, 'Initech', 'America/New_York');"
    "INSERT INTO accounts (id, company_id, name, currency) VALUES"
    " (2001, 1001, 'Acme main wallet', 'EUR'), (2002, 1002, 'Globex wallet', 'EUR'),"
    " (2003, 1003, 'Initech petty cash', 'EUR');"
    "INSERT INTO teams (id, company_id, name) VALUES"
    " (3001, 1001, 'engineering'), (3002, 1001, 'sales'), (3003, 1002, 'travel desk');"
    "INSERT INTO cardholders (id, company_id, team_id, name) VALUES"
    " (4001, 1001, 3001, 'Alice Engineer'), (4002, 1001, 3002, 'Bob Sales'),"
    " (4003, 1001, 3001, 'Carol Contractor'), (4004, 1002, 3003, 'Dave Traveller'),"
    " (4005, 1003, NULL, 'Erin Intern');"
    "SELECT account_load(2001, 5000000, 'demo funding');"
    "SELECT account_load(2002, 2000000, 'demo funding');"
    "SELECT account_load(2003, 2500, 'demo funding');"
    /* company: no gambling anywhere, 2,000.00 per transaction */
    "SELECT policy_set('company', 1001, '{\"per_txn_max\": 200000, \"mcc_block\": "
    "[\"gambling\"]}');"
    /* sales team: 50.00 a day, 3 purchases a day */
    "SELECT policy_set('team', 3002, '{\"daily_max\": 5000, \"daily_count\": 3}');"
    /* contractor: no e-commerce, no ATM, only EUR, not outside DE/FR */
    "SELECT policy_set('cardholder', 4003, '{\"allow_ecom\": false, \"allow_atm\": false,"
    "  \"currencies\": [\"EUR\"], \"country_allow\": [\"DE\", \"FR\", \"276\", \"250\"]}');"
    /* travel: airlines and hotels only, no contactless */
    "SELECT policy_set('company', 1002, '{\"mcc_allow\": [\"airlines\", \"7011\"],"
    "  \"allow_contactless\": false}');"
    /* a shadow version for the travel desk that would also allow fuel */
    "SELECT policy_set('company', 1002, '{\"mcc_allow\": [\"airlines\", \"7011\", \"fuel\"]}',"
    "  true, 'demo shadow: allow fuel');"
    "SELECT setval('companies_id_seq', 2000), setval('teams_id_seq', 4000),"
    " setval('cardholders_id_seq', 5000);";

/*
 * Labels start with the word cardgate-sim's scenario looks for (ok,
 * blocked_mcc, over_limit, frozen, expired, insufficient; see
 * tools/sim/README.md); amount is the amount its step should use.
 */
static const struct demo_card {
    const char *label;
    const char *account, *holder;
    const char *status; /* after issue */
    const char *expect; /* plain 10.00 EUR grocery purchase (MCC 5411, DE, chip) */
    const char *expiry; /* stored expiry when not the issued one, or NULL */
    long long amount;   /* the amount the simulator should use, 0: its default */
    const char *sql;    /* extra statement for this card ($1 = card id), or NULL */
} demo_cards[] = {
    {"ok: alice, approved", "2001", "4001", "active", "00", NULL, 0, NULL},
    {"sales bob: team limit 50.00 and 3 purchases a day", "2001", "4002", "active", "00", NULL, 0,
     NULL},
    {"blocked_mcc carol: company blocks gambling (7995); no ecom/ATM, EUR, DE/FR only", "2001",
     "4003", "active", "00", NULL, 0, NULL},
    {"over_limit: 5.00 per transaction", "2001", "4001", "active", "61", NULL, 1000,
     "SELECT policy_set('card', $1, '{\"per_txn_max\": 500}')"},
    {"frozen", "2001", "4001", "frozen", "62", NULL, 0, NULL},
    {"blocked card", "2001", "4002", "blocked", "62", NULL, 0, NULL},
    {"lost", "2001", "4002", "lost", "41", NULL, 0, NULL},
    {"stolen", "2001", "4001", "stolen", "43", NULL, 0, NULL},
    {"inactive: not activated yet", "2001", "4003", "inactive", "78", NULL, 0, NULL},
    {"closed", "2001", "4003", "closed", "05", NULL, 0, NULL},
    {"expired", "2001", "4001", "active", "54", "2401", 0,
     "UPDATE cards SET expiry = '2401' WHERE id = $1"},
    {"travel dave: airlines and hotels only, no contactless", "2002", "4004", "active", "57", NULL,
     0, NULL},
    {"insufficient erin: 25.00 wallet (10 with partial approval)", "2003", "4005", "active", "51",
     NULL, 90000, NULL},
};

static int write_cards(const char *path, const struct ctl_issued_card *cards, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (f == NULL) {
        if (fd >= 0)
            close(fd);
        fprintf(stderr, "cardgatectl demo seed: cannot write %s\n", path);
        return -1;
    }
    fprintf(f, "{\"cards\":[\n");
    for (size_t i = 0; i < n; i++) {
        fprintf(f, "  {\"card_id\":%lld,\"account_id\":%s,\"label\":", cards[i].card_id,
                demo_cards[i].account);
        ctl_json_string(f, demo_cards[i].label);
        fprintf(f,
                ",\"pan\":\"%s\",\"expiry\":\"%s\",\"cvv2\":\"%s\",\"status\":\"%s\","
                "\"expect\":\"%s\"",
                cards[i].pan, demo_cards[i].expiry ? demo_cards[i].expiry : cards[i].expiry,
                cards[i].cvv2, demo_cards[i].status, demo_cards[i].expect);
        if (demo_cards[i].amount > 0)
            fprintf(f, ",\"amount\":%lld", demo_cards[i].amount);
        if (cards[i].pin[0] != '\0')
            fprintf(f, ",\"pin\":\"%s\"", cards[i].pin);
        fprintf(f, "}%s\n", i + 1 < n ? "," : "");
    }
    fprintf(f, "]}\n");
    return fclose(f) == 0 ? 0 : -1;
}

static int demo_seed(const struct ctl_args *a)
{
    uint8_t key[CTL_PAN_KEY_BYTES];
    struct ctl_issued_card cards[UTIL_NELEM(demo_cards)];
    int rc = 1;

    uint8_t cvk[KS_KEY_MAX];
    size_t cvk_len = 0;
    memset(cards, 0, sizeof(cards));
    if (ctl_pan_key_load(a->pan_key_file, key) != 0)
        return 1;
    int cvkrc = ctl_cvk_load(cvk, &cvk_len); /* $CARDGATE_CVK: CVV2s under the CVK */
    if (cvkrc < 0) {
        OPENSSL_cleanse(key, sizeof(key));
        return 1;
    }
    uint8_t pvk[KS_KEY_MAX];
    size_t pvk_len = 0;
    int pvkrc = ctl_pvk_load(pvk, &pvk_len); /* $CARDGATE_PVK: a random PIN per card */
    if (pvkrc < 0) {
        OPENSSL_cleanse(key, sizeof(key));
        OPENSSL_cleanse(cvk, sizeof(cvk));
        return 1;
    }
    PGconn *c = ctl_begin(a->db);
    if (c == NULL)
        goto out;
    PGresult *r;
    if (db_exec_ok(c, SEED_SQL) != 0) {
        fprintf(stderr, "cardgatectl demo seed: failed (is the demo data already there?)\n");
        ctl_rollback_close(c);
        goto out;
    }
    for (size_t i = 0; i < UTIL_NELEM(demo_cards); i++) {
        const struct demo_card *d = &demo_cards[i];
        struct ctl_card_spec spec = {
            .account = d->account,
            .cardholder = d->holder,
            .bin = "999999",
            .form = i % 2 ? "physical" : "virtual",
            .status = "active",
            .expiry_years = 3,
            .standin_limit = 5000,
            .cvk = cvkrc == 0 ? cvk : NULL,
            .cvk_len = cvk_len,
            .pvk = pvkrc == 0 ? pvk : NULL,
            .pvk_len = pvk_len,
            .pvki = 1,
            .dectab = getenv("CARDGATE_PIN_DECTAB"),
        };
        char id[24];
        if (ctl_card_issue(c, key, &spec, &cards[i]) != 0) {
            ctl_rollback_close(c);
            goto out;
        }
        snprintf(id, sizeof(id), "%lld", cards[i].card_id);
        const char *p[2] = {id, d->status};
        r = ctl_exec(c, "demo seed", "UPDATE cards SET status = $2 WHERE id = $1", 2, p);
        if (r != NULL && d->sql != NULL) {
            PQclear(r);
            r = ctl_exec(c, "demo seed", d->sql, 1, p);
        }
        if (r == NULL) {
            ctl_rollback_close(c);
            goto out;
        }
        PQclear(r);
    }
    if (ctl_commit_close(c) != 0)
        goto out;
    if (a->out != NULL && write_cards(a->out, cards, UTIL_NELEM(demo_cards)) != 0)
        goto out;
    printf("%-8s %-19s %-6s %-4s %-6s %s\n", "card_id", "pan", "expiry", "cvv2", "expect",
           "what it shows");
    for (size_t i = 0; i < UTIL_NELEM(demo_cards); i++)
        printf("%-8lld %-19s %-6s %-4s %-6s %s\n", cards[i].card_id, cards[i].pan,
               demo_cards[i].expiry ? demo_cards[i].expiry : cards[i].expiry, cards[i].cvv2,
               demo_cards[i].expect, demo_cards[i].label);
    printf("(expect: the answer to an EUR grocery purchase, MCC 5411, in DE, by chip, of the\n"
           " card's amount or else 10.00)\n");
    if (a->out != NULL)
        printf("cards written to %s\n", a->out);
    rc = 0;
out:
    OPENSSL_cleanse(key, sizeof(key));
    OPENSSL_cleanse(cvk, sizeof(cvk));
    OPENSSL_cleanse(pvk, sizeof(pvk));
    OPENSSL_cleanse(cards, sizeof(cards));
    return rc;
}

static void usage(FILE *out)
{
    fprintf(out, "usage: cardgatectl demo seed [--out FILE] [--pan-key-file FILE] [--db CONNINFO]\n"
                 "  Loads demo companies, teams, cardholders, cards and policies and writes the\n"
                 "  demo cards (PAN, expiry, CVV2, expected answer) to FILE as JSON.\n");
}

int ctl_demo_main(int argc, char **argv)
{
    static const char *const subs[] = {"seed"};
    static ctl_sub_fn *const fns[] = {demo_seed};
    return ctl_dispatch(argc, argv, subs, fns, UTIL_NELEM(subs), false, usage);
}
