/*
 * scenario.c - the scripted switch scenario (see scenario.h).
 */
#include "tools/sim/scenario.h"

#include "common/util.h"
#include "crypto/pan.h"
#include "tools/sim/net.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum step_op {
    OP_PLAIN,
    OP_DUPLICATE,
    OP_UNKNOWN_CARD,
    OP_WRONG_CVV2,
    OP_PIN,
    OP_WRONG_PIN,
    OP_REVERSAL,
    OP_CARD,
    OP_CHIP,
    OP_CHIP_FORGED
};

struct step {
    const char *name;
    enum sim_kind kind;
    enum step_op op;
    const char *labels;  /* card labels to look for, else a card whose "expect" is this
                            step's code; NULL: no card or the purchase's */
    const char *expect;  /* default expected field 39 */
    int64_t def_amount;  /* minor units when the card has no "amount" */
    const char *def_mcc; /* NULL: the card's or the default */
    bool want54;
    bool remember; /* the original of duplicate and reversal */
};

#define OK_LABELS "ok|active|approve|normal|good|demo"

static const struct step steps[] = {
    {"signon", SIM_K_SIGNON, OP_PLAIN, NULL, "00", 0, NULL, false, false},
    {"echo", SIM_K_ECHO, OP_PLAIN, NULL, "00", 0, NULL, false, false},
    {"purchase", SIM_K_PURCHASE, OP_PLAIN, OK_LABELS, "00", 1250, NULL, false, true},
    {"duplicate", SIM_K_PURCHASE, OP_DUPLICATE, NULL, NULL, 0, NULL, false, false},
    {"balance", SIM_K_BALANCE, OP_PLAIN, OK_LABELS, "00", 0, NULL, true, false},
    {"unknown_card", SIM_K_PURCHASE, OP_UNKNOWN_CARD, NULL, "14", 1000, NULL, false, false},
    {"expired", SIM_K_PURCHASE, OP_PLAIN, "expired", "54", 1000, NULL, false, false},
    {"frozen", SIM_K_PURCHASE, OP_PLAIN, "frozen|blocked", "62", 1000, NULL, false, false},
    {"over_limit", SIM_K_PURCHASE, OP_PLAIN, "over_limit|limit", "61", 100000000, NULL, false,
     false},
    {"blocked_mcc", SIM_K_PURCHASE, OP_PLAIN, "blocked_mcc|mcc", "57", 1000, "7995", false, false},
    {"insufficient", SIM_K_PURCHASE, OP_PLAIN, "insufficient|nsf|low_balance|funds", "51", 90000000,
     NULL, false, false},
    {"wrong_cvv2", SIM_K_PURCHASE, OP_WRONG_CVV2, OK_LABELS, "N7", 1000, NULL, false, false},
    {"pin", SIM_K_PURCHASE, OP_PIN, OK_LABELS, "00", 1000, NULL, false, false},
    {"wrong_pin", SIM_K_PURCHASE, OP_WRONG_PIN, OK_LABELS, "55", 1000, NULL, false, false},
    {"chip", SIM_K_PURCHASE, OP_CHIP, OK_LABELS, "00", 1000, NULL, false, false},
    {"chip_forged", SIM_K_PURCHASE, OP_CHIP_FORGED, OK_LABELS, "82", 1000, NULL, false, false},
    {"reversal", SIM_K_REVERSAL, OP_REVERSAL, NULL, "00", 0, NULL, false, false},
};
#define NSTEPS (sizeof(steps) / sizeof(steps[0]))

/* After the fixed steps: a plain purchase on every other card with an "expect". */
static const struct step card_step = {"card", SIM_K_PURCHASE, OP_CARD, NULL, NULL,
                                      1000,   "5411",         false,   false};

int scen_add_override(struct scen_opts *o, const char *spec, char *err, size_t errlen)
{
    const char *eq = strchr(spec, '=');
    size_t n = eq ? (size_t)(eq - spec) : 0;
    size_t i;
    for (i = 0; eq && i < NSTEPS; i++)
        if (strlen(steps[i].name) == n && memcmp(steps[i].name, spec, n) == 0)
            break;
    if (!eq || i == NSTEPS) {
        snprintf(err, errlen, "--expect '%s': expected STEP=CODE with a known step", spec);
        return -1;
    }
    if (strlen(eq + 1) != 2 || o->noverrides == SCEN_MAX_OVERRIDES) {
        snprintf(err, errlen, "--expect '%s': the code must be 2 characters", spec);
        return -1;
    }
    memcpy(o->overrides[o->noverrides].step, spec, n);
    o->overrides[o->noverrides].step[n] = '\0';
    memcpy(o->overrides[o->noverrides].code, eq + 1, 3);
    o->noverrides++;
    return 0;
}

static const char *expected_code(const struct scen_opts *o, const struct step *s)
{
    for (int i = o->noverrides - 1; i >= 0; i--)
        if (strcmp(o->overrides[i].step, s->name) == 0)
            return o->overrides[i].code;
    return s->expect;
}

/* One row of the summary. */
struct row {
    char step[28];
    bool skipped; /* no card in the file for it: listed, not counted as a mismatch */
    char mti[5];
    char proc[7];
    int64_t amount;
    char card[PAN_MASK_MAX];
    char expect[8];
    char got[8];
    int64_t latency_us;
    bool ok;
    char note[80];
};

struct scen {
    const struct scen_opts *o;
    FILE *out;
    int fd;
    struct sim_rx *rx;
    struct iso_msg m;
    uint8_t frame[ISO_MAX_MSG + 64];
    size_t flen;
    char dump[32768];
    uint32_t stan;
    bool first_json;
    /* the remembered purchase */
    struct sim_req orig_req;
    struct sim_card orig_card;
    bool have_orig;
    char orig_code[3];
    char orig_38[7];
    const struct sim_card **used; /* cards the fixed steps took */
    size_t nused;
    struct sim_chip chip; /* the chip steps' card: IMK, next ATC, last ARQC */
    const char *mac_bad;  /* the last answer's MAC problem, NULL when good */
    uint8_t pinblock[16]; /* the pin steps' field 52 */
};

static bool card_used(const struct scen *sc, const struct sim_card *c)
{
    for (size_t i = 0; i < sc->nused; i++)
        if (sc->used[i] == c)
            return true;
    return false;
}

/* A label for people: printable ASCII only, no quotes or backslashes, bounded. */
static void safe_label(const char *in, char *out, size_t cap)
{
    size_t k = 0;
    for (; *in && k + 1 < cap; in++)
        out[k++] = (*in >= 0x20 && *in < 0x7f && *in != '"' && *in != '\\') ? *in : '?';
    out[k] = '\0';
}

static void print_msg(struct scen *sc, const char *what, int step_no, const char *step_name)
{
    long n = sim_dump(sc->o->link, &sc->m, sc->o->json, sc->dump, sizeof(sc->dump));
    if (n < 0) {
        snprintf(sc->dump, sizeof(sc->dump), sc->o->json ? "null" : "(too large to print)\n");
        n = (long)strlen(sc->dump);
    }
    if (sc->o->json) {
        fprintf(sc->out, "%s\n    {\"step\":\"%s\",\"n\":%d,\"dir\":\"%s\",\"msg\":%.*s}",
                sc->first_json ? "" : ",", step_name, step_no, what, (int)n, sc->dump);
        sc->first_json = false;
        return;
    }
    fprintf(sc->out, "  %s %.4s\n", what, sc->m.mti);
    for (char *line = sc->dump; *line;) {
        char *nl = strchr(line, '\n');
        int len = nl ? (int)(nl - line) : (int)strlen(line);
        fprintf(sc->out, "    %.*s\n", len, line);
        line += len + (nl ? 1 : 0);
    }
}

/* A PAN that no cards file holds: test BIN 999999, Luhn-valid, not in the file. */
static void unknown_pan(const struct sim_cards *cards, char out[20])
{
    for (size_t i = 999999990u;; i--) {
        sim_synth_pan(i, out);
        bool taken = false;
        for (size_t k = 0; k < cards->n && !taken; k++)
            taken = strcmp(cards->v[k].pan, out) == 0;
        if (!taken)
            return;
    }
}

/*
 * Send the current frame and wait for the answer with the same STAN and
 * the answer MTI (others are skipped).  1 answered (in sc->m), 0 no
 * answer in time, -1 connection error.
 */
static int exchange(struct scen *sc, const char *stan, const char *ans_mti, int64_t *lat, char *err,
                    size_t errlen)
{
    int64_t t0 = util_now_us();
    if (sim_send_all(sc->fd, sc->frame, sc->flen, sc->o->timeout_ms) != 0) {
        snprintf(err, errlen, "send failed");
        return -1;
    }
    int64_t deadline = t0 + (int64_t)sc->o->timeout_ms * 1000;
    for (;;) {
        int64_t left = deadline - util_now_us();
        if (left <= 0)
            return 0;
        const uint8_t *msg;
        size_t len;
        int r = sim_recv_frame(sc->fd, sc->o->link, sc->rx, (int)((left + 999) / 1000), &msg, &len,
                               err, errlen);
        if (r <= 0)
            return r;
        struct iso_err e;
        if (iso_decode(sc->o->link->d, msg, len, &sc->m, &e) != 0) {
            /* stderr: keeps --json output one document */
            fprintf(stderr, "cardgate-sim scenario: undecodable frame skipped: %s\n", e.msg);
            continue;
        }
        const struct iso_view *v11 = iso_get(&sc->m, 11);
        if (memcmp(sc->m.mti, ans_mti, 4) == 0 && v11 && v11->len == 6 &&
            memcmp(v11->p, stan, 6) == 0) {
            *lat = util_now_us() - t0;
            const char *why;
            sc->mac_bad = sim_check_mac(sc->o->link, msg, len, &sc->m, &why) != 0 ? why : NULL;
            return 1;
        }
    }
}

static void view_str(const struct iso_view *v, char *out, size_t cap)
{
    if (!v) {
        snprintf(out, cap, "-");
        return;
    }
    snprintf(out, cap, "%.*s", (int)v->len, (const char *)v->p);
}

/*
 * The format 0 PIN block of card c's "pin" (wrong: its first digit changed,
 * so the PVV differs too) under --zpk into sc->pinblock; -1 with the row
 * marked skipped when there is no key or PIN.
 */
static int pin_block(struct scen *sc, const struct sim_card *c, bool wrong, struct row *row)
{
    char pin[sizeof(c->pin)];

    if (c->pin[0] == '\0') {
        snprintf(row->note, sizeof(row->note), "skipped: the card has no \"pin\"");
        row->skipped = true;
        return -1;
    }
    memcpy(pin, c->pin, sizeof(pin));
    if (wrong)
        pin[0] = (char)('0' + (pin[0] - '0' + 1) % 10);
    int rc = sim_pin_block(sc->o->zpk, sc->o->zpk_len, c, pin, sc->pinblock);
    OPENSSL_cleanse(pin, sizeof(pin));
    if (rc != 0) {
        snprintf(row->note, sizeof(row->note), "cannot build the PIN block (a TDES --zpk?)");
        return -1;
    }
    return 0;
}

/* Run step i; fills row.  Returns -1 when the link is gone. */
static int run_step(struct scen *sc, const struct step *st, size_t i,
                    const struct sim_card *file_card, struct row *row)
{
    struct sim_req q;
    struct sim_card card;
    const struct sim_card *cp = NULL;
    char err[240];
    memset(&q, 0, sizeof(q));
    memset(row, 0, sizeof(*row));
    snprintf(row->step, sizeof(row->step), "%s", st->name);
    snprintf(row->card, sizeof(row->card), "-");
    const char *exp = file_card ? file_card->expect : expected_code(sc->o, st);
    if (file_card)
        safe_label(file_card->label, row->step, sizeof(row->step));
    snprintf(row->expect, sizeof(row->expect), "%s", exp ? exp : "");
    snprintf(row->got, sizeof(row->got), "-");

    if (st->op == OP_DUPLICATE || st->op == OP_REVERSAL) {
        if (!sc->have_orig) {
            snprintf(row->note, sizeof(row->note), "skipped: no purchase to repeat");
            row->skipped = true;
            return 0;
        }
        q = sc->orig_req;
        q.card = &sc->orig_card;
        if (st->op == OP_DUPLICATE) {
            snprintf(row->expect, sizeof(row->expect), "%s", exp ? exp : sc->orig_code);
        } else {
            static struct sim_orig orig;
            memcpy(orig.mti, "0200", 5);
            memcpy(orig.stan, sc->orig_req.stan, 7);
            memcpy(orig.xmit, sc->orig_req.xmit, 11);
            q.kind = SIM_K_REVERSAL;
            q.orig = &orig;
            sim_stan(q.stan, ++sc->stan);
            sim_req_times(&q, time(NULL));
        }
        cp = q.card;
    } else {
        q.kind = st->kind;
        sim_stan(q.stan, ++sc->stan);
        sim_req_times(&q, time(NULL));
        snprintf(q.rrn, sizeof(q.rrn), "%06u%06u", (unsigned)(time(NULL) % 1000000),
                 sc->stan % 1000000u);
        if (st->op == OP_UNKNOWN_CARD) {
            memset(&card, 0, sizeof(card));
            unknown_pan(sc->o->cards, card.pan);
            memcpy(card.expiry, "4912", 5);
            memcpy(card.cvv2, "123", 4);
            cp = &card;
        } else if (file_card) {
            cp = file_card;
            q.currency = "978"; /* the seed's "expect" is for a plain EUR purchase */
        } else if (st->labels) {
            cp = sim_cards_find(sc->o->cards, st->labels);
            if (!cp && st->expect)
                cp = sim_cards_find_expect(sc->o->cards, st->expect);
            if (!cp) {
                snprintf(row->note, sizeof(row->note), "skipped: no card labelled %.40s",
                         st->labels);
                row->skipped = true;
                return 0;
            }
            if (sc->nused < sc->o->cards->n)
                sc->used[sc->nused++] = cp;
        }
        q.card = cp;
        if (cp) {
            q.amount = st->kind == SIM_K_BALANCE ? 0 : cp->amount ? cp->amount : st->def_amount;
            if (st->def_mcc && (!cp->mcc[0] || file_card))
                q.mcc = st->def_mcc;
        }
        if (st->op == OP_WRONG_CVV2)
            q.entry = "010"; /* keyed, card not present: where a CVV2 is checked */
        if (st->op == OP_CHIP || st->op == OP_CHIP_FORGED) {
            sc->chip.atc++;
            sc->chip.forge = st->op == OP_CHIP_FORGED;
            q.chip = &sc->chip;
        }
        if (st->op == OP_WRONG_CVV2)
            q.cvv2 = cp->cvv2[0] == '0' && cp->cvv2[1] == '0' && cp->cvv2[2] == '0' ? "001" : "000";
        if (st->op == OP_PIN || st->op == OP_WRONG_PIN) {
            if (pin_block(sc, cp, st->op == OP_WRONG_PIN, row) != 0)
                return 0;
            q.pinblock = sc->pinblock;
            q.pinblock_len = 8;
        }
    }
    if (cp)
        pan_mask(cp->pan, strlen(cp->pan), row->card);
    struct iso_err e;
    if (sim_build(sc->o->link, &q, &sc->m, sc->frame, sizeof(sc->frame), &sc->flen, &e) != 0) {
        snprintf(row->note, sizeof(row->note), "cannot build: %.60s", e.msg);
        return 0;
    }
    memcpy(row->mti, sc->m.mti, 4);
    view_str(iso_get(&sc->m, 3), row->proc, sizeof(row->proc));
    row->amount = q.amount;
    if (!sc->o->json)
        fprintf(sc->out, "[%zu] %s\n", i + 1, st->name);
    print_msg(sc, "request", (int)i + 1, st->name);
    char ans_mti[5];
    sim_answer_mti(row->mti, ans_mti);
    int r = exchange(sc, q.stan, ans_mti, &row->latency_us, err, sizeof(err));
    if (r <= 0) {
        snprintf(row->note, sizeof(row->note), "%.70s", r == 0 ? "no answer in time" : err);
        if (!sc->o->json)
            fprintf(sc->out, "  no answer: %s\n", row->note);
        return r < 0 ? -1 : 0;
    }
    view_str(iso_get(&sc->m, 39), row->got, sizeof(row->got));
    char a38[7];
    view_str(iso_get(&sc->m, 38), a38, sizeof(a38));
    bool has54 = iso_has(&sc->m, 54);
    const struct iso_view *v37 = iso_get(&sc->m, 37);
    print_msg(sc, "answer", (int)i + 1, st->name);
    row->ok = strcmp(row->got, row->expect) == 0;
    if (row->ok && st->kind != SIM_K_SIGNON && st->kind != SIM_K_ECHO &&
        (!v37 || v37->len != 12 || memcmp(v37->p, q.rrn, 12) != 0)) {
        row->ok = false;
        snprintf(row->note, sizeof(row->note), "RRN not echoed");
    }
    if (sc->mac_bad != NULL && row->ok) {
        row->ok = false;
        snprintf(row->note, sizeof(row->note), "answer MAC: %.60s", sc->mac_bad);
    }
    if (row->ok && st->op == OP_CHIP) {
        const struct iso_view *v55 = iso_get(&sc->m, 55);
        if (sim_chip_check_arpc(&sc->chip, cp->pan, row->got, v55 ? v55->p : NULL,
                                v55 ? v55->len : 0) != 0) {
            row->ok = false;
            snprintf(row->note, sizeof(row->note), "no tag 91 or its ARPC does not verify");
        }
    }
    if (row->ok && st->want54 && !has54) {
        row->ok = false;
        snprintf(row->note, sizeof(row->note), "no field 54 (balances) in the answer");
    }
    if (st->op == OP_DUPLICATE && row->ok && strcmp(a38, sc->orig_38) != 0) {
        row->ok = false;
        snprintf(row->note, sizeof(row->note), "approval code %s differs from the original's", a38);
    }
    if (st->remember) {
        sc->orig_req = q;
        sc->orig_card = *cp;
        sc->have_orig = true;
        snprintf(sc->orig_code, sizeof(sc->orig_code), "%.2s", row->got);
        memcpy(sc->orig_38, a38, sizeof(a38));
    }
    return 0;
}

static void print_summary(struct scen *sc, const struct row *rows, size_t n, int failed,
                          int skipped)
{
    FILE *out = sc->out;
    size_t matched = n - (size_t)failed - (size_t)skipped;
    if (sc->o->json) {
        fprintf(out, "\n  ],\n  \"summary\": [");
        for (size_t i = 0; i < n; i++) {
            const struct row *r = &rows[i];
            char note[sizeof(r->note)];
            safe_label(r->note, note, sizeof(note));
            fprintf(out,
                    "%s\n    {\"step\":\"%s\",\"mti\":\"%s\",\"proc\":\"%s\",\"amount\":%lld,"
                    "\"card\":\"%s\",\"expected\":\"%s\",\"got\":\"%s\",\"latency_us\":%lld,"
                    "\"ok\":%s,\"skipped\":%s,\"note\":\"%s\"}",
                    i ? "," : "", r->step, r->mti, r->proc, (long long)r->amount, r->card,
                    r->expect, r->got, (long long)r->latency_us, r->ok ? "true" : "false",
                    r->skipped ? "true" : "false", note);
        }
        fprintf(out, "\n  ],\n  \"matched\": %zu,\n  \"failed\": %d,\n  \"skipped\": %d\n}\n",
                matched, failed, skipped);
        return;
    }
    fprintf(out, "\n%-3s %-24s %-4s %-6s %14s %-19s %-4s %-4s %10s  %s\n", "#", "step", "mti",
            "proc", "amount", "card", "exp", "got", "latency", "result");
    for (size_t i = 0; i < n; i++) {
        const struct row *r = &rows[i];
        char amt[32];
        snprintf(amt, sizeof(amt), "%lld.%02lld", (long long)(r->amount / 100),
                 (long long)(r->amount % 100));
        char lat[24];
        if (r->latency_us)
            snprintf(lat, sizeof(lat), "%.2f ms", (double)r->latency_us / 1000.0);
        else
            snprintf(lat, sizeof(lat), "-");
        fprintf(out, "%-3zu %-24.24s %-4s %-6s %14s %-19s %-4s %-4s %10s  %s%s%s\n", i + 1, r->step,
                r->mti[0] ? r->mti : "-", r->proc[0] ? r->proc : "-", r->mti[0] ? amt : "-",
                r->card, r->expect, r->got, lat,
                r->ok        ? "ok"
                : r->skipped ? "skipped"
                             : "MISMATCH",
                r->note[0] && !r->skipped ? ": " : "", r->skipped ? "" : r->note);
        if (r->skipped)
            fprintf(out, "    (%s)\n", r->note);
    }
    fprintf(out, "\n%zu of %zu steps matched", matched, n);
    if (skipped)
        fprintf(out, ", %d skipped (no card for them in the cards file)", skipped);
    fprintf(out, "%s\n", failed ? "" : ": all answers as expected");
}

/* A row for a step that could not run because the link is gone. */
static void row_not_run(struct row *r, const char *name, const char *expect)
{
    memset(r, 0, sizeof(*r));
    snprintf(r->step, sizeof(r->step), "%s", name);
    snprintf(r->card, sizeof(r->card), "-");
    snprintf(r->expect, sizeof(r->expect), "%s", expect ? expect : "");
    snprintf(r->got, sizeof(r->got), "-");
    snprintf(r->note, sizeof(r->note), "not run: connection lost");
}

int scenario_run(const struct scen_opts *o, FILE *out)
{
    struct scen *sc = calloc(1, sizeof(*sc));
    size_t cap = NSTEPS + o->cards->n;
    struct row *rows = calloc(cap, sizeof(*rows));
    if (!sc || !rows || !(sc->rx = calloc(1, sizeof(*sc->rx))) ||
        !(sc->used = calloc(o->cards->n + 1, sizeof(*sc->used)))) {
        if (sc) {
            free(sc->rx);
            free(sc->used);
        }
        free(sc);
        free(rows);
        fprintf(stderr, "cardgate-sim scenario: out of memory\n");
        return 1;
    }
    sc->o = o;
    sc->out = out;
    sc->first_json = true;
    /* STANs differ between runs so a rerun is not a duplicate transmission */
    sc->stan = (uint32_t)(time(NULL) % 900000) + 1000;
    /* the ATC rises between runs too (a repeated ATC is a replay to the issuer) */
    sc->chip.atc = (uint16_t)(time(NULL) % 60000 + 1000);
    memcpy(sc->chip.imk, o->imk, sizeof(sc->chip.imk));
    char err[240];
    sc->fd = sim_connect(o->addr, o->timeout_ms, err, sizeof(err));
    if (sc->fd < 0) {
        fprintf(stderr, "cardgate-sim scenario: %s\n", err);
        free(sc->rx);
        free(sc->used);
        free(sc);
        free(rows);
        return 1;
    }
    if (o->json)
        fprintf(out, "{\n  \"messages\": [");
    else
        fprintf(out, "cardgate-sim scenario: %s, dialect %s\n", o->addr, o->link->d->name);
    size_t n = 0;
    bool gone = false;
    for (size_t i = 0; i < NSTEPS; i++) {
        if (o->zpk == NULL && (steps[i].op == OP_PIN || steps[i].op == OP_WRONG_PIN))
            continue; /* PIN steps only with --zpk */
        if ((steps[i].op == OP_CHIP || steps[i].op == OP_CHIP_FORGED) && !o->have_imk)
            continue; /* the chip steps exist with an IMK only */
        if (gone)
            row_not_run(&rows[n], steps[i].name, expected_code(o, &steps[i]));
        else if (run_step(sc, &steps[i], n, NULL, &rows[n]) < 0)
            gone = true;
        n++;
    }
    /* then every other card of the file that says what a plain purchase gets */
    for (size_t k = 0; k < o->cards->n; k++) {
        const struct sim_card *c = &o->cards->v[k];
        if (!c->expect[0] || card_used(sc, c))
            continue;
        if (gone) {
            row_not_run(&rows[n], "card", c->expect);
            safe_label(c->label, rows[n].step, sizeof(rows[n].step));
        } else if (run_step(sc, &card_step, n, c, &rows[n]) < 0) {
            gone = true;
        }
        n++;
    }
    int failed = 0, skipped = 0;
    for (size_t i = 0; i < n; i++) {
        skipped += rows[i].skipped;
        failed += !rows[i].ok && !rows[i].skipped;
    }
    print_summary(sc, rows, n, failed, skipped);
    OPENSSL_cleanse(&sc->chip, sizeof(sc->chip));
    close(sc->fd);
    free(sc->rx);
    free(sc->used);
    free(sc);
    free(rows);
    return failed ? 1 : 0;
}
