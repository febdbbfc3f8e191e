/*
 * ctl_card.c - `cardgatectl card`:
 *
 *   card issue --account ID [--cardholder ID] [--bin BIN] [--form virtual|physical]
 *              [--expiry-years N] [--standin-limit MINOR] [--inactive] [--pan-key-file F]
 *   card freeze|unfreeze|block|close|lost|stolen|activate --card ID
 *   card show --card ID
 *
 * `card issue` prints the PAN and CVV2 once; the database keeps only the
 * keyed hash of the PAN, its BIN and last four digits.
 */
#include "tools/ctl/ctl_card.h"

#include "common/util.h"
#include "crypto/cvv.h"
#include "crypto/keystore.h"
#include "daemon/pinchk.h"
#include "tools/ctl/ctl.h"
#include "tools/ctl/ctl_out.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEFAULT_BIN "999999"

int ctl_pan_key_load(const char *path, uint8_t key[CTL_PAN_KEY_BYTES])
{
    size_t len;
    char *text;
    long n;

    if (path == NULL)
        path = getenv("CARDGATE_PAN_KEY_FILE");
    if ((path == NULL || *path == '\0') && getenv("CARDGATE_KEYSTORE") != NULL) {
        /* the key store: its highest-version pan-hash key */
        char err[300];
        size_t klen = 0;
        uint8_t k[KS_KEY_MAX];
        int rc = keystore_pan_hash_key(getenv("CARDGATE_KEYSTORE"), getenv("CARDGATE_MASTER_KEY"),
                                       k, &klen, err, sizeof(err));
        if (rc == 0 && klen == CTL_PAN_KEY_BYTES)
            memcpy(key, k, CTL_PAN_KEY_BYTES);
        else if (rc == 0)
            snprintf(err, sizeof(err), "the key store's pan-hash key is not %d bytes",
                     CTL_PAN_KEY_BYTES);
        OPENSSL_cleanse(k, sizeof(k));
        if (rc != 0 || klen != CTL_PAN_KEY_BYTES) {
            fprintf(stderr, "cardgatectl: PAN-hash key: %s\n", err);
            return -1;
        }
        return 0;
    }
    if (path == NULL || *path == '\0') {
        fprintf(stderr, "cardgatectl: no PAN-hash key: give --pan-key-file FILE or set "
                        "CARDGATE_PAN_KEY_FILE or CARDGATE_KEYSTORE\n");
        return -1;
    }
    text = util_read_file(path, 4096, &len);
    if (text == NULL) {
        fprintf(stderr, "cardgatectl: cannot read the PAN-hash key file %s\n", path);
        return -1;
    }
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r' || text[len - 1] == ' '))
        text[--len] = '\0';
    n = len == 2 * CTL_PAN_KEY_BYTES ? util_hex_decode(text, key, CTL_PAN_KEY_BYTES) : -1;
    OPENSSL_cleanse(text, len);
    free(text);
    if (n != CTL_PAN_KEY_BYTES) {
        OPENSSL_cleanse(key, CTL_PAN_KEY_BYTES);
        fprintf(stderr, "cardgatectl: %s must hold %d hex characters (a %d-byte key)\n", path,
                2 * CTL_PAN_KEY_BYTES, CTL_PAN_KEY_BYTES);
        return -1;
    }
    return 0;
}

/*
 * The key-store entry named by $env (type, usage) from $CARDGATE_KEYSTORE
 * under $CARDGATE_MASTER_KEY; what: "CVK", "PVK" for messages.  As
 * ctl_cvk_load.
 */
static int named_key_load(const char *env, const char *what, enum ks_type type, enum ks_usage usage,
                          uint8_t key[KS_KEY_MAX], size_t *len)
{
    const char *name = getenv(env), *store = getenv("CARDGATE_KEYSTORE");
    uint8_t mk[KS_MASTER_LEN];
    char err[300];

    if (name == NULL || name[0] == '\0')
        return 1;
    if (store == NULL || store[0] == '\0') {
        fprintf(stderr, "cardgatectl: %s needs CARDGATE_KEYSTORE\n", env);
        return -1;
    }
    if (crypto_init(err, sizeof(err)) != 0 ||
        ks_master_load(getenv("CARDGATE_MASTER_KEY"), mk, err, sizeof(err)) != 0) {
        OPENSSL_cleanse(mk, sizeof(mk));
        fprintf(stderr, "cardgatectl: %s: %s\n", what, err);
        return -1;
    }
    struct keyset *ks = keyset_load(store, mk, err, sizeof(err));
    OPENSSL_cleanse(mk, sizeof(mk));
    const struct ks_key *k =
        ks != NULL ? keyset_get(ks, name, type, usage, err, sizeof(err)) : NULL;
    if (k == NULL) {
        fprintf(stderr, "cardgatectl: %s %s: %s\n", what, name, err);
        keyset_unref(ks);
        return -1;
    }
    memcpy(key, k->key, k->len);
    *len = k->len;
    keyset_unref(ks);
    return 0;
}

int ctl_cvk_load(uint8_t key[KS_KEY_MAX], size_t *len)
{
    return named_key_load("CARDGATE_CVK", "CVK", KS_CVK, KS_U_CVV, key, len);
}

int ctl_pvk_load(uint8_t key[KS_KEY_MAX], size_t *len)
{
    return named_key_load("CARDGATE_PVK", "PVK", KS_PVK, KS_U_PIN_VERIFY, key, len);
}

/* n uniformly random decimal digits into out (no terminator). */
static int random_digits(char *out, size_t n)
{
    size_t i = 0;
    unsigned char buf[32];
    while (i < n) {
        if (RAND_bytes(buf, sizeof(buf)) != 1)
            return -1;
        for (size_t k = 0; k < sizeof(buf) && i < n; k++)
            if (buf[k] < 250) /* 250 = 25 * 10: no modulo bias */
                out[i++] = (char)('0' + buf[k] % 10);
    }
    OPENSSL_cleanse(buf, sizeof(buf));
    return 0;
}

int ctl_card_issue(PGconn *c, const uint8_t key[CTL_PAN_KEY_BYTES],
                   const struct ctl_card_spec *spec, struct ctl_issued_card *out)
{
    const size_t panlen = 16;
    size_t binlen = strlen(spec->bin);
    char hash[PAN_HASH_HEX], last4[5], standin[24];
    time_t now = time(NULL);
    struct tm tm;

    if (binlen < 6 || binlen > 8 || strspn(spec->bin, "0123456789") != binlen) {
        fprintf(stderr, "cardgatectl card issue: --bin must be 6 to 8 digits, not '%s'\n",
                spec->bin);
        return -1;
    }
    if (spec->expiry_years < 1 || spec->expiry_years > 10) {
        fprintf(stderr, "cardgatectl card issue: --expiry-years must be 1..10\n");
        return -1;
    }
    gmtime_r(&now, &tm);
    snprintf(out->expiry, sizeof(out->expiry), "%02u%02u",
             (unsigned)(tm.tm_year + spec->expiry_years) % 100u, (unsigned)tm.tm_mon % 12u + 1u);
    snprintf(standin, sizeof(standin), "%lld", (long long)spec->standin_limit);

    /* a fresh PAN until its hash is new (collisions are astronomically rare) */
    for (int attempt = 0; attempt < 5; attempt++) {
        memset(out->pan, 0, sizeof(out->pan));
        memcpy(out->pan, spec->bin, binlen);
        if (random_digits(out->pan + binlen, panlen - 1 - binlen) != 0 ||
            random_digits(out->cvv2, 3) != 0) {
            fprintf(stderr, "cardgatectl card issue: no randomness\n");
            return -1;
        }
        out->cvv2[3] = '\0';
        out->pan[panlen - 1] = pan_luhn_digit(out->pan, panlen - 1);
        if (spec->cvk != NULL && cvv_compute(spec->cvk, spec->cvk_len, out->pan, panlen,
                                             out->expiry, "000", out->cvv2) != 0) {
            fprintf(stderr, "cardgatectl card issue: cannot compute the CVV2 under the CVK\n");
            return -1;
        }
        struct pinchk_cand pc;
        memset(&pc, 0, sizeof(pc));
        out->pin[0] = '\0';
        if (spec->pvk != NULL) {
            if (spec->pin != NULL) {
                snprintf(out->pin, sizeof(out->pin), "%s", spec->pin);
            } else if (random_digits(out->pin, 4) != 0) {
                fprintf(stderr, "cardgatectl card issue: no randomness\n");
                return -1;
            } else {
                out->pin[4] = '\0';
            }
        }
        if (out->pin[0] != '\0' && pinchk_from_pin(spec->pvk, spec->pvk_len, spec->pvki,
                                                   spec->dectab, out->pan, out->pin, &pc) != 0) {
            fprintf(stderr, "cardgatectl card issue: cannot compute the PVV and offset of --pin "
                            "(4..12 digits) under the PVK\n");
            return -1;
        }
        const char *pvv = out->pin[0] != '\0' ? pc.pvv : spec->pvv;
        const char *offset = out->pin[0] != '\0' ? pc.offset : spec->pin_offset;
        if (pan_hash_hex(key, CTL_PAN_KEY_BYTES, out->pan, panlen, hash) != 0) {
            fprintf(stderr, "cardgatectl card issue: cannot hash the PAN\n");
            return -1;
        }
        memcpy(last4, out->pan + panlen - 4, 4);
        last4[4] = '\0';
        const char *p[11] = {spec->account, spec->cardholder, hash,         spec->bin, last4,
                             out->expiry,   spec->form,       spec->status, standin,   pvv,
                             offset};
        PGresult *r = PQexecParams(
            c,
            "INSERT INTO cards (account_id, cardholder_id, pan_hash, bin, last4, expiry, form,"
            " status, standin_limit, pvv, pin_offset)"
            " SELECT a.id, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11 FROM accounts a"
            " WHERE a.id = $1 AND a.kind = 'wallet'"
            "   AND ($2::bigint IS NULL OR EXISTS (SELECT 1 FROM cardholders h"
            "        WHERE h.id = $2 AND h.company_id = a.company_id))"
            " ON CONFLICT (pan_hash) DO NOTHING RETURNING id",
            11, NULL, p, NULL, NULL, 0);
        OPENSSL_cleanse(&pc, sizeof(pc));
        if (PQresultStatus(r) != PGRES_TUPLES_OK) {
            const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
            fprintf(stderr, "cardgatectl card issue: %s\n", msg ? msg : PQerrorMessage(c));
            PQclear(r);
            return -1;
        }
        if (PQntuples(r) == 1) {
            out->card_id = atoll(PQgetvalue(r, 0, 0));
            PQclear(r);
            return 0;
        }
        PQclear(r);
        /* no row: unknown account/cardholder, or a hash collision */
        const char *q[2] = {spec->account, spec->cardholder};
        r = PQexecParams(
            c,
            "SELECT EXISTS (SELECT 1 FROM accounts WHERE id = $1 AND kind = 'wallet'),"
            " $2::bigint IS NULL OR EXISTS (SELECT 1 FROM cardholders h JOIN accounts a"
            "  ON a.company_id = h.company_id WHERE h.id = $2 AND a.id = $1)",
            2, NULL, q, NULL, NULL, 0);
        int acct_ok = PQresultStatus(r) == PGRES_TUPLES_OK && PQgetvalue(r, 0, 0)[0] == 't';
        int holder_ok = PQresultStatus(r) == PGRES_TUPLES_OK && PQgetvalue(r, 0, 1)[0] == 't';
        PQclear(r);
        if (!acct_ok) {
            fprintf(stderr, "cardgatectl card issue: unknown account %s\n", spec->account);
            return -1;
        }
        if (!holder_ok) {
            fprintf(stderr,
                    "cardgatectl card issue: unknown cardholder %s for this account's company\n",
                    spec->cardholder);
            return -1;
        }
    }
    fprintf(stderr, "cardgatectl card issue: could not find an unused PAN\n");
    return -1;
}

static int card_issue(const struct ctl_args *a)
{
    uint8_t key[CTL_PAN_KEY_BYTES];
    struct ctl_issued_card card;
    struct ctl_card_spec spec = {
        .account = a->account,
        .cardholder = a->cardholder,
        .bin = a->bin ? a->bin : DEFAULT_BIN,
        .form = a->form ? a->form : "virtual",
        .status = a->inactive ? "inactive" : "active",
        .expiry_years = 3,
        .pvki = 1,
    };
    int64_t v;

    if (a->account == NULL || !ctl_parse_nonneg(a->account, &v)) {
        fprintf(stderr, "cardgatectl card issue: --account ID is required\n");
        return 1;
    }
    if (a->cardholder != NULL && !ctl_parse_nonneg(a->cardholder, &v)) {
        fprintf(stderr, "cardgatectl card issue: --cardholder must be a number\n");
        return 1;
    }
    if (strcmp(spec.form, "virtual") != 0 && strcmp(spec.form, "physical") != 0) {
        fprintf(stderr, "cardgatectl card issue: --form is virtual or physical\n");
        return 1;
    }
    if (a->expiry_years != NULL) {
        if (!ctl_parse_nonneg(a->expiry_years, &v) || v < 1 || v > 10) {
            fprintf(stderr, "cardgatectl card issue: --expiry-years must be 1..10\n");
            return 1;
        }
        spec.expiry_years = (int)v;
    }
    if (a->standin_limit != NULL && !ctl_parse_nonneg(a->standin_limit, &spec.standin_limit)) {
        fprintf(stderr, "cardgatectl card issue: --standin-limit must be >= 0 minor units\n");
        return 1;
    }
    if (a->pvki != NULL) {
        if (!ctl_parse_nonneg(a->pvki, &v) || v > 9) {
            fprintf(stderr, "cardgatectl card issue: --pvki must be 0..9\n");
            return 1;
        }
        spec.pvki = (unsigned)v;
    }
    if (a->pvv != NULL && (strlen(a->pvv) != 4 || strspn(a->pvv, "0123456789") != 4)) {
        fprintf(stderr, "cardgatectl card issue: --pvv must be 4 digits\n");
        return 1;
    }
    size_t ol = a->pin_offset != NULL ? strlen(a->pin_offset) : 0;
    if (a->pin_offset != NULL && (ol < 4 || ol > 12 || strspn(a->pin_offset, "0123456789") != ol)) {
        fprintf(stderr, "cardgatectl card issue: --pin-offset must be 4..12 digits\n");
        return 1;
    }
    if (a->pin != NULL && (a->pvv != NULL || a->pin_offset != NULL)) {
        fprintf(stderr, "cardgatectl card issue: --pin computes --pvv and --pin-offset; give "
                        "one or the other\n");
        return 1;
    }
    spec.pvv = a->pvv;
    spec.pin_offset = a->pin_offset;
    spec.pin = a->pin;
    spec.dectab = getenv("CARDGATE_PIN_DECTAB");
    uint8_t pvk[KS_KEY_MAX];
    if (a->pin != NULL) {
        int pvkrc = ctl_pvk_load(pvk, &spec.pvk_len);
        if (pvkrc != 0) {
            if (pvkrc > 0)
                fprintf(stderr, "cardgatectl card issue: --pin needs the PVK: $CARDGATE_PVK "
                                "(with $CARDGATE_KEYSTORE, $CARDGATE_MASTER_KEY)\n");
            return 1;
        }
        spec.pvk = pvk;
    }
    if (ctl_pan_key_load(a->pan_key_file, key) != 0) {
        OPENSSL_cleanse(pvk, sizeof(pvk));
        return 1;
    }
    uint8_t cvk[KS_KEY_MAX];
    int cvkrc = ctl_cvk_load(cvk, &spec.cvk_len);
    if (cvkrc < 0) {
        OPENSSL_cleanse(key, sizeof(key));
        OPENSSL_cleanse(pvk, sizeof(pvk));
        return 1;
    }
    spec.cvk = cvkrc == 0 ? cvk : NULL;
    PGconn *c = ctl_begin(a->db);
    if (c == NULL) {
        OPENSSL_cleanse(key, sizeof(key));
        OPENSSL_cleanse(pvk, sizeof(pvk));
        OPENSSL_cleanse(cvk, sizeof(cvk));
        return 1;
    }
    int rc = ctl_card_issue(c, key, &spec, &card);
    OPENSSL_cleanse(key, sizeof(key));
    OPENSSL_cleanse(pvk, sizeof(pvk));
    OPENSSL_cleanse(cvk, sizeof(cvk));
    if (rc != 0) {
        ctl_rollback_close(c);
        OPENSSL_cleanse(&card, sizeof(card));
        return 1;
    }
    if (ctl_commit_close(c) != 0) {
        OPENSSL_cleanse(&card, sizeof(card));
        return 1;
    }
    if (a->json)
        printf("{\"card_id\":%lld,\"pan\":\"%s\",\"expiry\":\"%s\",\"cvv2\":\"%s\"}\n",
               card.card_id, card.pan, card.expiry, card.cvv2);
    else
        printf("card_id: %lld\npan: %s\nexpiry: %s\ncvv2: %s\n"
               "(the PAN and CVV2 are shown once; they are not stored)\n",
               card.card_id, card.pan, card.expiry, card.cvv2);
    fflush(stdout);
    OPENSSL_cleanse(&card, sizeof(card));
    return 0;
}

static int set_status(const struct ctl_args *a, const char *cmd, const char *status)
{
    int64_t v;
    if (a->card == NULL || !ctl_parse_nonneg(a->card, &v)) {
        fprintf(stderr, "cardgatectl %s: --card ID is required\n", cmd);
        return 1;
    }
    const char *p[2] = {a->card, status};
    return ctl_run_print(a, cmd,
                         "SELECT $1::bigint AS card_id, card_set_status($1, $2) AS was,"
                         " $2 AS status",
                         2, p, true, NULL);
}

static int card_freeze(const struct ctl_args *a)
{
    return set_status(a, "card freeze", "frozen");
}
static int card_unfreeze(const struct ctl_args *a)
{
    return set_status(a, "card unfreeze", "active");
}
static int card_activate(const struct ctl_args *a)
{
    return set_status(a, "card activate", "active");
}
static int card_block(const struct ctl_args *a)
{
    return set_status(a, "card block", "blocked");
}
static int card_close(const struct ctl_args *a)
{
    return set_status(a, "card close", "closed");
}
static int card_lost(const struct ctl_args *a)
{
    return set_status(a, "card lost", "lost");
}
static int card_stolen(const struct ctl_args *a)
{
    return set_status(a, "card stolen", "stolen");
}

static int card_show(const struct ctl_args *a)
{
    int64_t v;
    if (a->card == NULL || !ctl_parse_nonneg(a->card, &v)) {
        fprintf(stderr, "cardgatectl card show: --card ID is required\n");
        return 1;
    }
    const char *p[1] = {a->card};
    return ctl_run_print(a, "card show",
                         "SELECT c.id AS card_id, c.account_id, c.cardholder_id,"
                         " h.name AS cardholder, h.team_id, c.bin, c.last4, c.expiry, c.status,"
                         " c.form, c.pin_tries, c.pin_try_limit, c.last_atc, c.standin_limit,"
                         " c.created_at"
                         " FROM cards c LEFT JOIN cardholders h ON h.id = c.cardholder_id"
                         " WHERE c.id = $1",
                         1, p, true, NULL);
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: cardgatectl card issue --account ID [--cardholder ID] [--bin BIN]\n"
            "              [--form virtual|physical] [--expiry-years N] [--standin-limit MINOR]\n"
            "              [--inactive] [--pan-key-file FILE]\n"
            "              [--pin PIN [--pvki N] | [--pvv DDDD] [--pin-offset DIGITS]]\n"
            "       cardgatectl card freeze|unfreeze|activate|block|close|lost|stolen --card ID\n"
            "       cardgatectl card show --card ID\n"
            "  The PAN-hash key: --pan-key-file or $CARDGATE_PAN_KEY_FILE (64 hex characters).\n"
            "  CVV2: computed under the key store's CVK named by $CARDGATE_CVK (with\n"
            "  $CARDGATE_KEYSTORE, $CARDGATE_MASTER_KEY), else random.\n"
            "  PIN: --pin stores the PVV (--pvki, default 1) and IBM 3624 offset of PIN\n"
            "  under the PVK named by $CARDGATE_PVK (decimalization table\n"
            "  $CARDGATE_PIN_DECTAB, else the default), as cardgated computes them;\n"
            "  --pvv/--pin-offset store given values.  The PIN is never stored.\n"
            "  Common options: --db CONNINFO (else the PG* environment), --json.\n");
}

int ctl_card_main(int argc, char **argv)
{
    static const char *const subs[] = {"issue", "freeze", "unfreeze", "activate", "block",
                                       "close", "lost",   "stolen",   "show"};
    static ctl_sub_fn *const fns[] = {card_issue,    card_freeze, card_unfreeze,
                                      card_activate, card_block,  card_close,
                                      card_lost,     card_stolen, card_show};
    return ctl_dispatch(argc, argv, subs, fns, UTIL_NELEM(subs), false, usage);
}
