/*
 * cards.c - reading and generating the simulator's test cards.
 */
#include "tools/sim/cards.h"

#include "common/json.h"
#include "crypto/pan.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/*
 * Copy a string or integer member into out (NUL-terminated, cap bytes); ""
 * when absent.  Returns -1 (out "") when the value does not fit: a cut value
 * ("30125" as "3012") must not pass the checks made on what is left.
 */
static int member_text(const struct json *o, const char *key, char *out, size_t cap)
{
    const struct json *v = json_get(o, key);
    out[0] = '\0';
    if (!v || (v->type != JSON_STRING && v->type != JSON_NUMBER) || !v->text)
        return 0;
    if (strlen(v->text) >= cap)
        return -1;
    memcpy(out, v->text, strlen(v->text) + 1);
    return 0;
}

/* Like member_text for names (label, account): a long one is cut, not refused. */
static void member_name(const struct json *o, const char *key, char *out, size_t cap)
{
    const struct json *v = json_get(o, key);
    out[0] = '\0';
    if (v && (v->type == JSON_STRING || v->type == JSON_NUMBER) && v->text)
        snprintf(out, cap, "%s", v->text);
}

static bool all_digits(const char *s, size_t min, size_t max)
{
    size_t n = strlen(s);
    if (n < min || n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)s[i]))
            return false;
    return true;
}

/*
 * Replace an alphabetic ISO 4217 code in cur[4] by its numeric code; -1
 * when unknown.  Only the currencies a demo is likely to use.
 */
static int currency_numeric(char cur[4])
{
    static const char table[][2][4] = {
        {"EUR", "978"}, {"USD", "840"}, {"GBP", "826"}, {"CHF", "756"},
        {"JPY", "392"}, {"SEK", "752"}, {"NOK", "578"}, {"DKK", "208"},
        {"PLN", "985"}, {"CZK", "203"}, {"CAD", "124"}, {"AUD", "036"},
    };
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
        if (strcasecmp(cur, table[i][0]) == 0) {
            memcpy(cur, table[i][1], 4);
            return 0;
        }
    return -1;
}

/* Fill one card from a JSON object; -1 with err naming the index and member. */
static int card_from_json(const struct json *o, size_t idx, struct sim_card *c, char *err,
                          size_t errlen)
{
    memset(c, 0, sizeof(*c));
    if (o->type != JSON_OBJECT) {
        snprintf(err, errlen, "card %zu: not an object", idx);
        return -1;
    }
    if (member_text(o, "pan", c->pan, sizeof(c->pan)) != 0 ||
        !pan_is_wellformed(c->pan, strlen(c->pan))) {
        snprintf(err, errlen, "card %zu: missing or malformed \"pan\"", idx);
        return -1;
    }
    if (member_text(o, "expiry", c->expiry, sizeof(c->expiry)) != 0 ||
        !all_digits(c->expiry, 4, 4)) {
        snprintf(err, errlen, "card %zu: missing or malformed \"expiry\" (YYMM)", idx);
        return -1;
    }
    size_t pl;
    if (member_text(o, "pin", c->pin, sizeof(c->pin)) != 0 ||
        (c->pin[0] && ((pl = strlen(c->pin)) < 4 || !all_digits(c->pin, pl, pl)))) {
        snprintf(err, errlen, "card %zu: malformed \"pin\" (4..12 digits)", idx);
        return -1;
    }
    if (member_text(o, "cvv2", c->cvv2, sizeof(c->cvv2)) != 0 ||
        (c->cvv2[0] && !all_digits(c->cvv2, 3, 3))) {
        snprintf(err, errlen, "card %zu: malformed \"cvv2\" (3 digits)", idx);
        return -1;
    }
    /* label and account only name things: a long one is cut, not refused */
    member_name(o, "label", c->label, sizeof(c->label));
    if (!c->label[0])
        member_name(o, "kind", c->label, sizeof(c->label));
    static const char *const acct_keys[] = {"account", "wallet", "account_id", "wallet_id"};
    for (size_t i = 0; i < sizeof(acct_keys) / sizeof(acct_keys[0]) && !c->account[0]; i++)
        member_name(o, acct_keys[i], c->account, sizeof(c->account));
    if (member_text(o, "mcc", c->mcc, sizeof(c->mcc)) != 0 ||
        (c->mcc[0] && !all_digits(c->mcc, 4, 4))) {
        snprintf(err, errlen, "card %zu: malformed \"mcc\" (4 digits)", idx);
        return -1;
    }
    if (member_text(o, "currency", c->currency, sizeof(c->currency)) != 0 ||
        (c->currency[0] && !all_digits(c->currency, 3, 3) && currency_numeric(c->currency) != 0)) {
        snprintf(err, errlen, "card %zu: unknown \"currency\" (numeric, or EUR, USD, ...)", idx);
        return -1;
    }
    if (member_text(o, "expect", c->expect, sizeof(c->expect)) != 0 ||
        (c->expect[0] && (strlen(c->expect) != 2 || !isalnum((unsigned char)c->expect[0]) ||
                          !isalnum((unsigned char)c->expect[1])))) {
        snprintf(err, errlen, "card %zu: \"expect\" must be a 2-character response code", idx);
        return -1;
    }
    long amt = json_get_long(o, "amount", 0);
    if (amt < 0 || amt > 999999999999L) {
        snprintf(err, errlen, "card %zu: \"amount\" out of range", idx);
        return -1;
    }
    c->amount = amt;
    const struct json *hot = json_get(o, "hot");
    /* "hot": true, or a label whose first word is "hot" (not "hotels") */
    c->hot = (hot && hot->type == JSON_BOOL && hot->boolean) ||
             (strncasecmp(c->label, "hot", 3) == 0 && !isalnum((unsigned char)c->label[3]));
    return 0;
}

int sim_cards_load(const char *path, struct sim_cards *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    struct json *root = json_parse_file(path, err, errlen);
    if (!root)
        return -1;
    const struct json *arr = root;
    if (root->type == JSON_OBJECT)
        arr = json_get(root, "cards");
    if (!arr || arr->type != JSON_ARRAY || arr->n == 0) {
        snprintf(err, errlen, "%s: expected a non-empty array of cards (or {\"cards\": [...]})",
                 path);
        json_free(root);
        return -1;
    }
    out->v = calloc(arr->n, sizeof(*out->v));
    if (!out->v) {
        snprintf(err, errlen, "%s: out of memory", path);
        json_free(root);
        return -1;
    }
    for (size_t i = 0; i < arr->n; i++) {
        char sub[160];
        if (card_from_json(&arr->kids[i], i, &out->v[i], sub, sizeof(sub)) != 0) {
            snprintf(err, errlen, "%s: %s", path, sub);
            json_free(root);
            sim_cards_free(out);
            return -1;
        }
    }
    out->n = arr->n;
    json_free(root);
    return 0;
}

void sim_synth_pan(size_t i, char out[20])
{
    char body[16];
    snprintf(body, sizeof(body), "999999%09zu", i % 1000000000u);
    snprintf(out, 20, "%s%c", body, pan_luhn_digit(body, strlen(body)));
}

int sim_cards_synth(size_t n, size_t accounts, struct sim_cards *out)
{
    memset(out, 0, sizeof(*out));
    if (n == 0 || n > 10000000)
        return -1;
    out->v = calloc(n, sizeof(*out->v));
    if (!out->v)
        return -1;
    for (size_t i = 0; i < n; i++) {
        struct sim_card *c = &out->v[i];
        sim_synth_pan(i, c->pan);
        memcpy(c->expiry, "4912", 5);
        memcpy(c->cvv2, "123", 4);
        snprintf(c->label, sizeof(c->label), "synthetic");
        snprintf(c->account, sizeof(c->account), "%zu", accounts ? i % accounts : i);
    }
    out->n = n;
    return 0;
}

void sim_cards_free(struct sim_cards *c)
{
    free(c->v);
    c->v = NULL;
    c->n = 0;
}

const struct sim_card *sim_cards_find(const struct sim_cards *c, const char *want)
{
    char words[128];
    snprintf(words, sizeof(words), "%s", want);
    char *save = NULL;
    for (char *w = strtok_r(words, "|", &save); w; w = strtok_r(NULL, "|", &save))
        for (size_t i = 0; i < c->n; i++)
            if (strcasestr(c->v[i].label, w))
                return &c->v[i];
    return NULL;
}

static int by_account(const void *a, const void *b)
{
    return strcmp(((const struct sim_card *)a)->account, ((const struct sim_card *)b)->account);
}

const struct sim_card *sim_cards_find_expect(const struct sim_cards *c, const char *code)
{
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->v[i].expect, code) == 0)
            return &c->v[i];
    return NULL;
}

size_t sim_cards_keep_hot(struct sim_cards *c)
{
    size_t k = 0;
    for (size_t i = 0; i < c->n; i++)
        if (c->v[i].hot)
            c->v[k++] = c->v[i];
    if (k > 0) {
        c->n = k;
        return k;
    }
    /* no card marked hot: the account holding the most cards */
    qsort(c->v, c->n, sizeof(c->v[0]), by_account);
    size_t best = 0, best_n = 0;
    for (size_t i = 0; i < c->n;) {
        size_t j = i + 1;
        while (j < c->n && strcmp(c->v[i].account, c->v[j].account) == 0)
            j++;
        if (c->v[i].account[0] && j - i > best_n) {
            best_n = j - i;
            best = i;
        }
        i = j;
    }
    if (best_n < 2)
        return 0;
    memmove(c->v, c->v + best, best_n * sizeof(c->v[0]));
    k = best_n;
    c->n = k;
    return k;
}
