/*
 * pipeline.c - link -> checks -> authorize_batch -> answer -> audit
 * (see pipeline.h for the contract, the routing and the answer format).
 *
 * A request slot (struct pl_req) is taken when the link hands a request
 * over and given back when all three of these are over: the answer was
 * written (or dropped with its link), the pool delivered the outcome of
 * every call made for it, and any late release or recheck finished.
 *
 * Lists a slot can be on (one TAILQ entry each):
 *   timers  waiting for the database and not yet past the queue limit
 *           (deadline - budget/4), in that order
 *   timers2 sent to the database, waiting until the deadline itself
 *           (both lists share one timer event)
 *   sendq   answer encoded and recorded, waiting for the audit flush
 *   retry   a release_late() or a recheck that could not be submitted
 *   free    unused
 */
#include "daemon/pipeline.h"

#include "common/log.h"
#include "common/util.h"
#include "crypto/keystore.h"
#include "crypto/pan.h"
#include "daemon/audit.h"
#include "daemon/cardchk.h"
#include "daemon/dbpool.h"
#include "daemon/emvchk.h"
#include "daemon/keychg.h"
#include "daemon/link.h"
#include "daemon/linkmac.h"
#include "daemon/metrics.h"
#include "daemon/netmgmt.h"
#include "daemon/pinchk.h"
#include "daemon/standin.h"
#include "iso8583/iso8583.h"

#include <event2/event.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#define PL_OUT_MAX   512 /* one encoded answer */
#define PL_HDR_MAX   64  /* the listener's fixed header (header_length <= 64) */
#define PL_ECHO_MAX  200 /* the echoed fields' logical bytes */
#define PL_ROUTE_MAP 4096
#define PL_RETRY_US  (200 * 1000)

enum { STMT_AUTH = 0, STMT_RELEASE = 1, STMT_SETTLE = 2, STMT_CARDS = 3 };

#define PL_SETTLE_BATCH   64        /* stand-in approvals settled per call */
#define PL_SETTLE_AFTER   1000000LL /* settle only this long past the request's deadline */
#define PL_CARDS_PAGE     1000      /* cards per limit-cache query */
#define PL_CARDS_RETRY_US 1000000LL /* a failed limit-cache pass starts again after this */

/* The fields echoed in an answer, in this order. */
static const int echo_fields[] = {2, 3, 4, 7, 11, 12, 13, 32, 37, 41, 42, 49, 90};
#define NECHO (sizeof(echo_fields) / sizeof(echo_fields[0]))

enum pl_list { L_NONE = 0, L_TIMERS, L_TIMERS2, L_SENDQ, L_RETRY, L_FREE };

/*
 * A request still queued (not sent) when a quarter of its budget is left is
 * taken back and answered from stand-in: sent that late it would mostly
 * come back 91 from the database anyway, and under overload it would take
 * a batch slot from a request that can still make it.
 */
#define PL_QUEUE_GUARD_DIV 4
enum pl_retry { R_NONE = 0, R_RELEASE, R_RECHECK };

/* The crypto checks' results for auth_request (see pl_crypto_checks). */
struct pl_crypto {
    const char *pin, *cvv, *cvv2, *arqc; /* "ok", "wrong"/"bad", "absent"; pin: "verify" */
    int atc;                             /* -1: none */
    struct pinchk_cand pin_cand;         /* pin "verify": the entered PIN's PVV/offset */
};

struct pl_req {
    struct dbp_item item; /* the pool's; container_of via offsetof 0 */
    TAILQ_ENTRY(pl_req) q;
    uint8_t list; /* enum pl_list */
    struct pipeline *pl;
    struct link *link; /* holds a request reference until answered */
    bool in_db;        /* submitted, outcome not delivered yet */
    bool answered;     /* an answer was produced (sent or queued) */
    bool standin;      /* the answer came from stand-in */
    bool audit_lost;   /* its answer record could not be added to the audit batch */
    bool settle;       /* a settlement of a journaled stand-in approval, no link */
    uint64_t sj_seq;   /* its stand-in approval's journal record (0: none) */
    int64_t sj_amount; /* counted against the card's stand-in limit */
    uint8_t retry;     /* enum pl_retry: what to submit from the retry list */
    bool want_retry;   /* on the retry list, or going there once its answer is sent */
    unsigned tries;
    int64_t arrival_us, deadline_us, deadline_wall_us;
    int64_t timer_us; /* when the timer list looks at it next */
    uint8_t hdr[PL_HDR_MAX];
    uint8_t hdr_len;
    bool has_hdr;
    /* echoed fields (logical form) */
    uint8_t echo[PL_ECHO_MAX];
    uint8_t echo_off[NECHO], echo_len[NECHO];
    bool echo_has[NECHO];
    /* auth_request */
    const char *kind;
    char mti[5], proc[7];
    char pan[PAN_MAX_LEN + 1]; /* clear, for field 2 and masking; wiped on release */
    char pan_hash[PAN_HASH_HEX];
    char expiry[5], acquirer[12], stan[7], rrn[13], xmit[11], local_at[11];
    char terminal[9], merchant[16], merchant_name[41], mcc[5], country[4];
    char txn_cur[4], bill_cur[4], channel[12];
    int64_t txn_amount, bill_amount; /* -1 when absent */
    char orig_mti[5], orig_stan[7], orig_xmit[11], orig_acq[12];
    int64_t replacement; /* -1 when absent */
    char advice_code[3];
    struct pl_crypto cr;
    struct emvchk_req emv; /* a verified ARQC: the answer carries its ARPC (tag 91) */
    uint8_t f55[24];       /* the answer's field 55 */
    /* the decision */
    char rc[3], appr[7], rule[48], cur_num[4];
    int64_t policy_version, auth_id, approved, avail, balance;
    bool have_avail, have_balance, have_approved;
    /* the answer */
    uint8_t out[PL_OUT_MAX];
    size_t out_len;
};

TAILQ_HEAD(pl_list_head, pl_req);

struct pipeline {
    struct event_base *base;
    struct server *srv; /* for the configuration in force (reloads) */
    struct dbpool *pool;
    struct audit_writer *audit;
    uint8_t pan_key[KS_KEY_MAX];
    size_t pan_key_len;
    struct keyset_holder keys;  /* working keys ([keys] file); reloaded on SIGHUP */
    struct keyset *reload_keys; /* loaded by reload_check, swapped in when the reload is */
    struct pl_req *slots;
    unsigned nslots;
    struct pl_list_head free, timers, timers2, sendq, retry;
    struct event deadline_ev, flush_ev, tick_ev;
    bool deadline_armed;
    int64_t deadline_at;
    bool flush_pending;
    struct pipeline_stats st;
    /* [standin] mode = approve (see daemon/standin.h) */
    struct standin_journal *sj;
    struct standin_cache *sc;
    bool sj_broken;             /* a sync failed twice: no more stand-in approvals */
    struct dbp_item cards_item; /* the limit cache's page query */
    bool cards_busy, cards_in_pass;
    char cards_after[PAN_HASH_HEX]; /* the pass resumes after this hash */
    int64_t cards_next_us;          /* next pass */
    unsigned settling;              /* settlements in flight */
    uint32_t appr_ctr;              /* stand-in approval codes */
    uint64_t route_card[PL_ROUTE_MAP], route_acct[PL_ROUTE_MAP];
    struct iso_msg out_msg; /* answer scratch (single-threaded) */
};

static void pl_maybe_release(struct pl_req *r);
static bool submit(struct pipeline *pl, struct pl_req *r, unsigned stmt);
static void retry_later(struct pipeline *pl, struct pl_req *r, enum pl_retry what);
static bool kind_holds_money(const char *kind);
static bool standin_try_approve(struct pipeline *pl, struct pl_req *r, const char *why);
static void standin_void(struct pipeline *pl, struct pl_req *r, const char *why);

/* ---- small helpers -------------------------------------------------- */

/* Copy a view into a NUL-terminated string (truncated to cap - 1). */
static void vcopy(char *dst, size_t cap, const struct iso_view *v)
{
    size_t n = 0;
    if (v != NULL) {
        n = v->len < cap - 1 ? v->len : cap - 1;
        memcpy(dst, v->p, n);
    }
    dst[n] = '\0';
}

/* Digits to int64; -1 when empty, not all digits or more than 18 digits. */
static int64_t digits_i64(const uint8_t *p, size_t n)
{
    int64_t v = 0;
    if (n == 0 || n > 18)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        v = v * 10 + (p[i] - '0');
    }
    return v;
}

static bool rc_is_approval(const char *rc)
{
    return strcmp(rc, "00") == 0 || strcmp(rc, "10") == 0;
}

static void list_remove(struct pipeline *pl, struct pl_req *r)
{
    switch (r->list) {
    case L_TIMERS:
        TAILQ_REMOVE(&pl->timers, r, q);
        break;
    case L_TIMERS2:
        TAILQ_REMOVE(&pl->timers2, r, q);
        break;
    case L_SENDQ:
        TAILQ_REMOVE(&pl->sendq, r, q);
        break;
    case L_RETRY:
        TAILQ_REMOVE(&pl->retry, r, q);
        break;
    case L_FREE:
        TAILQ_REMOVE(&pl->free, r, q);
        break;
    default:
        break;
    }
    r->list = L_NONE;
}

/* ---- public pure helpers --------------------------------------------- */

const char *pipeline_kind(const char *mti, const char *proc, int has90)
{
    char p2[3] = "00";
    if (proc != NULL && strlen(proc) >= 2)
        memcpy(p2, proc, 2);
    if (memcmp(mti, "0100", 4) == 0 || memcmp(mti, "0200", 4) == 0) {
        bool auth = mti[1] == '1';
        if (strcmp(p2, "30") == 0 || strcmp(p2, "31") == 0)
            return "balance";
        if (strcmp(p2, "20") == 0)
            return "refund";
        if (strcmp(p2, "00") == 0 || strcmp(p2, "01") == 0 || strcmp(p2, "09") == 0) {
            if (!auth)
                return "financial";
            if (has90)
                return "incremental";
            return strcmp(p2, "01") == 0 ? "cash" : "auth";
        }
        return NULL;
    }
    if (memcmp(mti, "0120", 4) == 0 || memcmp(mti, "0121", 4) == 0)
        return "standin";
    if (memcmp(mti, "0220", 4) == 0 || memcmp(mti, "0221", 4) == 0)
        return "completion";
    if (memcmp(mti, "0400", 4) == 0 || memcmp(mti, "0401", 4) == 0 || memcmp(mti, "0420", 4) == 0 ||
        memcmp(mti, "0421", 4) == 0)
        return "reversal";
    return NULL;
}

const char *pipeline_channel(const char *f22, size_t len22, const char *f25, size_t len25)
{
    if (f25 != NULL && len25 == 2 && memcmp(f25, "59", 2) == 0)
        return "ecom";
    if (f25 != NULL && len25 == 2 && memcmp(f25, "08", 2) == 0)
        return "manual";
    if (f22 == NULL || len22 < 2)
        return "chip";
    static const struct {
        const char *code, *channel;
    } map[] = {{"01", "manual"},   {"02", "magstripe"},   {"90", "magstripe"},
               {"05", "chip"},     {"07", "contactless"}, {"91", "contactless"},
               {"80", "fallback"}, {"81", "ecom"},        {"10", "ecom"}};
    for (size_t i = 0; i < UTIL_NELEM(map); i++)
        if (memcmp(f22, map[i].code, 2) == 0)
            return map[i].channel;
    return "manual";
}

int pipeline_f54_entry(char out[21], const char *amount_type, const char *currency, int64_t amount)
{
    int64_t a = amount < 0 ? -amount : amount;
    if (strlen(amount_type) != 2 || strlen(currency) != 3 || a > 999999999999LL)
        return -1;
    snprintf(out, 21, "00%.2s%.3s%c%012lld", amount_type, currency, amount < 0 ? 'D' : 'C',
             (long long)a);
    return 0;
}

/*
 * ISO 4217 numeric code for the ledger's alpha code (the wallet currency of
 * the balances in field 54); "" when unknown (field 54 is then left out).
 * The same currencies as the ledger's currency_alpha().
 */
static const char *currency_numeric(const char *alpha)
{
    static const char *const map[][2] = {
        {"EUR", "978"}, {"USD", "840"}, {"GBP", "826"}, {"CHF", "756"},
        {"JPY", "392"}, {"SEK", "752"}, {"DKK", "208"}, {"NOK", "578"},
        {"PLN", "985"}, {"CZK", "203"}, {"CAD", "124"}, {"AUD", "036"},
        {"HUF", "348"}, {"RON", "946"}, {"TRY", "949"}, {"CNY", "156"}};
    if (alpha == NULL)
        return "";
    for (size_t i = 0; i < UTIL_NELEM(map); i++)
        if (strcmp(alpha, map[i][0]) == 0)
            return map[i][1];
    return "";
}

/* ---- routing hint ------------------------------------------------------ */

static uint64_t card_key(const char *pan_hash)
{
    uint64_t k = 0;
    for (int i = 0; i < 16 && pan_hash[i] != '\0'; i++) {
        char c = pan_hash[i];
        k = (k << 4) | (uint64_t)(c >= 'a' ? c - 'a' + 10 : c - '0');
    }
    return k;
}

static uint64_t route_key(struct pipeline *pl, const char *pan_hash)
{
    uint64_t k = card_key(pan_hash);
    unsigned i = (unsigned)(k % PL_ROUTE_MAP);
    if (pl->route_card[i] == k && k != 0)
        return pl->route_acct[i];
    return k;
}

static void route_learn(struct pipeline *pl, const char *pan_hash, uint64_t account)
{
    uint64_t k = card_key(pan_hash);
    unsigned i = (unsigned)(k % PL_ROUTE_MAP);
    pl->route_card[i] = k;
    pl->route_acct[i] = account;
}

/* ---- deadline timer ------------------------------------------------------ */

/* The earlier head of the two timer lists, or NULL. */
static struct pl_req *timer_first(struct pipeline *pl)
{
    struct pl_req *a = TAILQ_FIRST(&pl->timers), *b = TAILQ_FIRST(&pl->timers2);
    if (a == NULL || (b != NULL && b->timer_us < a->timer_us))
        return b;
    return a;
}

/* Arm the one timer event for the earliest entry (no-op when already so). */
static void arm_deadline(struct pipeline *pl)
{
    struct pl_req *h = timer_first(pl);
    if (h == NULL) {
        if (pl->deadline_armed)
            event_del(&pl->deadline_ev);
        pl->deadline_armed = false;
        return;
    }
    if (pl->deadline_armed && pl->deadline_at == h->timer_us)
        return;
    int64_t d = h->timer_us - util_now_us();
    if (d < 0)
        d = 0;
    struct timeval tv = {.tv_sec = d / 1000000, .tv_usec = d % 1000000};
    event_add(&pl->deadline_ev, &tv);
    pl->deadline_armed = true;
    pl->deadline_at = h->timer_us;
}

/*
 * Insert r by timer_us into timers (L_TIMERS) or timers2 (L_TIMERS2): from
 * the tail, since the times grow (one budget per listener).
 */
static void timer_insert(struct pipeline *pl, struct pl_req *r, enum pl_list which)
{
    struct pl_list_head *h = which == L_TIMERS ? &pl->timers : &pl->timers2;
    struct pl_req *t = TAILQ_LAST(h, pl_list_head);
    while (t != NULL && t->timer_us > r->timer_us)
        t = TAILQ_PREV(t, pl_list_head, q);
    if (t == NULL)
        TAILQ_INSERT_HEAD(h, r, q);
    else
        TAILQ_INSERT_AFTER(h, t, r, q);
    r->list = (uint8_t)which;
    if (timer_first(pl) == r)
        arm_deadline(pl);
}

/* ---- answers --------------------------------------------------------------- */

/* The audit record for r's answer (mti: the answer's). */
static void audit_record(struct pipeline *pl, struct pl_req *r, const char *mti)
{
    struct audit_tx tx;

    if (pl->audit == NULL)
        return;
    memset(&tx, 0, sizeof(tx));
    memcpy(tx.mti, mti, 4);
    if (r->pan[0] != '\0')
        audit_pan_mask(&tx.pan, r->pan, strlen(r->pan));
    snprintf(tx.stan, sizeof(tx.stan), "%s", r->stan);
    snprintf(tx.rrn, sizeof(tx.rrn), "%s", r->rrn);
    snprintf(tx.acquirer, sizeof(tx.acquirer), "%s", r->acquirer);
    snprintf(tx.terminal, sizeof(tx.terminal), "%s", r->terminal);
    snprintf(tx.merchant, sizeof(tx.merchant), "%s", r->merchant);
    snprintf(tx.mcc, sizeof(tx.mcc), "%s", r->mcc);
    tx.amount = r->txn_amount > 0 ? r->txn_amount : 0;
    snprintf(tx.currency, sizeof(tx.currency), "%s", r->txn_cur);
    memcpy(tx.response_code, r->rc, 3);
    snprintf(tx.approval_code, sizeof(tx.approval_code), "%s", r->appr);
    snprintf(tx.rule, sizeof(tx.rule), "%s", r->rule);
    tx.policy_version = r->policy_version;
    tx.latency_us = util_now_us() - r->arrival_us;
    if (r->link != NULL)
        snprintf(tx.link, sizeof(tx.link), "%.40s#%llu", r->link->lsn->conf.name,
                 (unsigned long long)r->link->id);
    tx.standin = r->standin;
    if (audit_answer(pl->audit, &tx) != 0) {
        log_warnx("audit: answer record for stan %s not written", r->stan);
        r->audit_lost = true;
    }
}

/* Set the answer fields on pl->out_msg; with full = false only the echo and 39. */
static int build_answer(struct pipeline *pl, struct pl_req *r, const char *mti, bool full,
                        char f4[13], char f54[61])
{
    struct iso_msg *m = &pl->out_msg;

    iso_msg_init(m);
    if (iso_set_mti(m, mti) != 0)
        return -1;
    for (size_t i = 0; i < NECHO; i++)
        if (r->echo_has[i] &&
            iso_set(m, echo_fields[i], r->echo + r->echo_off[i], r->echo_len[i]) != 0)
            return -1;
    if (iso_set(m, 39, r->rc, 2) != 0)
        return -1;
    if (!full)
        return 0;
    if (r->emv.verified) {
        struct keyset *ks = keyset_holder_get(&pl->keys);
        long n = emvchk_answer_f55(ks, server_config(pl->srv), &r->emv, r->pan, r->rc, r->f55,
                                   sizeof(r->f55));
        if (ks != NULL)
            keyset_unref(ks);
        if (n < 0)
            log_warnx("stan %s: ARPC not computed: answered without field 55", r->stan);
        else if (n > 0 && iso_set(m, 55, r->f55, (size_t)n) != 0)
            return -1;
    }
    if (r->appr[0] != '\0' && iso_set(m, 38, r->appr, strlen(r->appr)) != 0)
        return -1;
    if (strcmp(r->rc, "10") == 0 && r->have_approved && r->echo_has[2] /* field 4 */) {
        snprintf(f4, 13, "%012lld", (long long)r->approved);
        if (iso_set(m, 4, f4, 12) != 0)
            return -1;
    }
    bool balance = r->kind != NULL && strcmp(r->kind, "balance") == 0;
    if ((balance || rc_is_approval(r->rc)) && r->cur_num[0] != '\0') {
        size_t n = 0;
        if (r->have_balance && pipeline_f54_entry(f54 + n, "01", r->cur_num, r->balance) == 0)
            n += 20;
        if (r->have_avail && pipeline_f54_entry(f54 + n, "02", r->cur_num, r->avail) == 0)
            n += 20;
        if (strcmp(r->rc, "10") == 0 && r->txn_amount > 0 && n <= 40 &&
            pipeline_f54_entry(f54 + n, "57", r->cur_num, r->txn_amount) == 0)
            n += 20;
        if (n > 0 && iso_set(m, 54, f54, n) != 0)
            return -1;
    }
    return 0;
}

/*
 * Encode r's answer (mti: the answer's) into r->out; when a field does not
 * fit the dialect, with the echo and field 39 only; r->out_len = 0 when not
 * even that encodes (the request is then cancelled on its link).
 */
static void encode_answer(struct pipeline *pl, struct pl_req *r, const char *mti)
{
    char f4[13], f54[61];
    struct iso_err err;

    r->out_len = 0;
    if (build_answer(pl, r, mti, true, f4, f54) != 0 ||
        linkmac_link_encode(r->link, &pl->out_msg, r->out, sizeof(r->out), &r->out_len, &err) !=
            0) {
        /* a field the dialect cannot carry: answer with the echo and 39 only */
        cg_metrics.errors[MERR_ENCODE]++;
        log_warnx_p(r->link->prefix, "answer %s stan %s: %s; sent without 38/54", mti, r->stan,
                    err.msg);
        if (build_answer(pl, r, mti, false, f4, f54) != 0 ||
            linkmac_link_encode(r->link, &pl->out_msg, r->out, sizeof(r->out), &r->out_len, &err) !=
                0) {
            log_warnx_p(r->link->prefix, "cannot encode the answer to stan %s: %s", r->stan,
                        err.msg);
            r->out_len = 0;
        }
    }
}

/*
 * Answer r with r->rc (and the decision fields when set): encode, record
 * in the audit batch, count, queue for the flush event.  Exactly once per
 * request: a second call is a bug.
 */
static void answer(struct pipeline *pl, struct pl_req *r)
{
    char mti[5];
    int64_t now = util_now_us();

    if (r->answered)
        abort();
    r->answered = true;
    if (r->list == L_TIMERS || r->list == L_TIMERS2) {
        list_remove(pl, r);
        arm_deadline(pl);
    }
    netmgmt_response_mti(r->mti, mti);
    mti[4] = '\0';
    encode_answer(pl, r, mti);
    audit_record(pl, r, mti);
    metrics_request(r->mti, r->rc, now - r->arrival_us);
    pl->st.answered++;
    if (r->standin) {
        pl->st.standin++;
        cg_metrics.standin_answers++;
    }
    log_debug_p(r->link->prefix, "%s stan %s %s -> %s %s (%s) %lld us%s", r->mti, r->stan,
                r->kind != NULL ? r->kind : "-", mti, r->rc, r->rule[0] ? r->rule : "-",
                (long long)(now - r->arrival_us), r->standin ? " stand-in" : "");
    TAILQ_INSERT_TAIL(&pl->sendq, r, q);
    r->list = L_SENDQ;
    if (!pl->flush_pending) {
        pl->flush_pending = true;
        event_active(&pl->flush_ev, EV_WRITE, 0);
    }
}

/*
 * Answer from the stand-in policy (why: the audit rule): approved up to the
 * card's stand-in limit when [standin] mode = approve allows it, else the
 * stand-in code.
 */
static void answer_standin(struct pipeline *pl, struct pl_req *r, const char *why)
{
    if (standin_try_approve(pl, r, why))
        return;
    memcpy(r->rc, server_config(pl->srv)->standin_response, 3);
    r->appr[0] = '\0';
    snprintf(r->rule, sizeof(r->rule), "standin.%s", why);
    r->standin = true;
    r->have_avail = r->have_balance = r->have_approved = false;
    answer(pl, r);
}

/* Answer without the database (format errors, unsupported codes). */
static void answer_code(struct pipeline *pl, struct pl_req *r, const char *rc, const char *rule)
{
    memcpy(r->rc, rc, 3);
    snprintf(r->rule, sizeof(r->rule), "%s", rule);
    pl->st.format_errors++;
    answer(pl, r);
}

/*
 * The audit contract (daemon/audit.h): r's answer is in a batch whose
 * audit_flush() failed, or its record could not be added (audit_answer()
 * failed: a rotation or forced flush did).  An approval cannot be proven, so it is answered
 * with the stand-in decline instead (re-encoded, recorded again: the writer
 * retries the batch at the next flush).  Returns true when r approved a
 * request that moved money, whose hold the caller must release (as a late
 * approval, release_late_answered) once r is off the send queue.
 */
static bool unproven_to_standin(struct pipeline *pl, struct pl_req *r)
{
    char mti[5];

    if (r->standin || !rc_is_approval(r->rc) || r->link == NULL)
        return false;
    pl->st.audit_unproven++;
    log_warnx_p(r->link->prefix, "stan %s: approval not in the audit log: stand-in answer",
                r->stan);
    memcpy(r->rc, server_config(pl->srv)->standin_response, 3);
    r->appr[0] = '\0';
    snprintf(r->rule, sizeof(r->rule), "standin.audit");
    r->standin = true;
    r->have_avail = r->have_balance = r->have_approved = false;
    pl->st.standin++;
    cg_metrics.standin_answers++;
    netmgmt_response_mti(r->mti, mti);
    mti[4] = '\0';
    encode_answer(pl, r, mti);
    audit_record(pl, r, mti);
    return r->kind != NULL && kind_holds_money(r->kind) && r->auth_id > 0;
}

/* Audit flush, then write every queued answer to its link. */
static void flush_cb(evutil_socket_t fd, short ev, void *arg)
{
    struct pipeline *pl = arg;
    struct pl_req *r;

    (void)fd;
    (void)ev;
    pl->flush_pending = false;
    /* stand-in approvals are on disk before any answer goes out (group commit) */
    bool jfail = pl->sj != NULL && sj_sync(pl->sj) != 0;
    if (jfail && !pl->sj_broken) {
        /* after a failed fdatasync a later one may succeed with the data lost */
        pl->sj_broken = true;
        log_warnx("standin journal: cannot sync; no more stand-in approvals until restart");
    }
    bool unproven = pl->audit != NULL && audit_flush(pl->audit) != 0;
    if (unproven)
        log_warnx("audit flush failed: the approvals in this batch are answered from stand-in "
                  "and their holds released");
    if (pl->sj != NULL) {
        bool voided = false;
        for (r = TAILQ_FIRST(&pl->sendq); r != NULL; r = TAILQ_NEXT(r, q)) {
            /* an approval whose answer could not be encoded is never sent: void it too */
            if (r->sj_seq != 0 && (jfail || unproven || r->audit_lost || r->out_len == 0)) {
                standin_void(pl, r, jfail ? "journal" : r->out_len == 0 ? "encode" : "audit");
                voided = true;
            }
        }
        if (voided && sj_sync(pl->sj) != 0 && !pl->sj_broken) {
            pl->sj_broken = true;
            log_warnx("standin journal: cannot sync; no more stand-in approvals until restart");
        }
    }
    while ((r = TAILQ_FIRST(&pl->sendq)) != NULL) {
        list_remove(pl, r);
        bool release = (unproven || r->audit_lost) && unproven_to_standin(pl, r);
        struct link *l = r->link;
        r->link = NULL;
        if (r->out_len > 0)
            (void)link_send_answer(l, r->has_hdr ? r->hdr : NULL, r->out, r->out_len);
        else
            link_request_cancel(l);
        if (r->want_retry) {
            TAILQ_INSERT_TAIL(&pl->retry, r, q);
            r->list = L_RETRY;
        }
        if (release && !submit(pl, r, STMT_RELEASE))
            retry_later(pl, r, R_RELEASE);
        pl_maybe_release(r);
    }
}

/* ---- slots --------------------------------------------------------------- */

static struct pl_req *slot_get(struct pipeline *pl)
{
    struct pl_req *r = TAILQ_FIRST(&pl->free);
    if (r == NULL)
        return NULL;
    list_remove(pl, r);
    pl->st.slots_busy++;
    return r;
}

/* Give r back when nothing refers to it any more. */
static void pl_maybe_release(struct pl_req *r)
{
    struct pipeline *pl = r->pl;
    if (!r->answered || r->in_db || r->link != NULL || r->list != L_NONE || r->want_retry)
        return;
    OPENSSL_cleanse(r->pan, sizeof(r->pan));
    OPENSSL_cleanse(r->echo, sizeof(r->echo));
    OPENSSL_cleanse(&r->emv, sizeof(r->emv));
    OPENSSL_cleanse(&r->cr.pin_cand, sizeof(r->cr.pin_cand));
    r->answered = false;
    r->standin = false;
    r->audit_lost = false;
    r->settle = false;
    r->sj_seq = 0;
    r->retry = R_NONE;
    r->tries = 0;
    TAILQ_INSERT_HEAD(&pl->free, r, q);
    r->list = L_FREE;
    pl->st.slots_busy--;
}

/* ---- database ------------------------------------------------------------ */

/*
 * Append s as a JSON string, control and non-ASCII bytes \u-escaped.  Not
 * dbp_buf_json_string: that passes bytes >= 0x80 through as UTF-8, but ISO
 * 8583 text (field 43) is ISO-8859-1 here (the codec's logical form), and one
 * invalid UTF-8 byte would fail the whole batch's jsonb; each Latin-1 byte
 * is its own code point, so \u00XX is exact.
 */
static int json_str(struct dbp_params *p, const char *s)
{
    char buf[8];
    if (dbp_buf_append(p, "\"", 1) != 0)
        return -1;
    for (const unsigned char *c = (const unsigned char *)s; *c != '\0'; c++) {
        const unsigned char *run = c;
        while (*c >= 0x20 && *c < 0x7f && *c != '"' && *c != '\\')
            c++;
        if (c > run && dbp_buf_append(p, run, (size_t)(c - run)) != 0)
            return -1;
        if (*c == '\0')
            break;
        snprintf(buf, sizeof(buf), "\\u%04x", *c);
        if (dbp_buf_append(p, buf, 6) != 0)
            return -1;
    }
    return dbp_buf_append(p, "\"", 1);
}

/* ,"key":"value" when value is not empty */
static int json_kv(struct dbp_params *p, const char *key, const char *v)
{
    if (v == NULL || v[0] == '\0')
        return 0;
    if (dbp_buf_printf(p, ",\"%s\":", key) != 0)
        return -1;
    return json_str(p, v);
}

static int json_ki(struct dbp_params *p, const char *key, int64_t v)
{
    if (v < 0)
        return 0;
    return dbp_buf_printf(p, ",\"%s\":%lld", key, (long long)v);
}

/* One auth_request object for r. */
static int json_request(struct dbp_params *p, const struct pl_req *r)
{
    char dl[80];
    struct tm tm;
    time_t sec = (time_t)(r->deadline_wall_us / 1000000);

    gmtime_r(&sec, &tm);
    snprintf(dl, sizeof(dl), "%04d-%02d-%02dT%02d:%02d:%02d.%06lldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             (long long)(r->deadline_wall_us % 1000000));
    if (dbp_buf_printf(p, "{\"kind\":\"%s\",\"mti\":\"%s\"", r->kind, r->mti) != 0 ||
        json_kv(p, "pan_hash", r->pan_hash) != 0 || json_kv(p, "expiry", r->expiry) != 0 ||
        json_kv(p, "acquirer_id", r->acquirer) != 0 || json_kv(p, "stan", r->stan) != 0 ||
        json_kv(p, "rrn", r->rrn) != 0 || json_kv(p, "xmit_at", r->xmit) != 0 ||
        json_kv(p, "local_at", r->local_at) != 0 || json_kv(p, "terminal_id", r->terminal) != 0 ||
        json_kv(p, "merchant_id", r->merchant) != 0 ||
        json_kv(p, "merchant_name", r->merchant_name) != 0 || json_kv(p, "mcc", r->mcc) != 0 ||
        json_kv(p, "country", r->country) != 0 || json_kv(p, "txn_currency", r->txn_cur) != 0 ||
        json_ki(p, "txn_amount", r->txn_amount) != 0 ||
        json_kv(p, "bill_currency", r->bill_cur) != 0 ||
        json_ki(p, "bill_amount", r->bill_amount) != 0 || json_kv(p, "channel", r->channel) != 0 ||
        dbp_buf_printf(p, ",\"partial_ok\":false") != 0 ||
        json_kv(p, "pin_result", r->cr.pin) != 0 ||
        json_kv(p, "pin_pvv", r->cr.pin_cand.pvv) != 0 ||
        json_kv(p, "pin_offset", r->cr.pin_cand.offset) != 0 ||
        json_kv(p, "cvv_result", r->cr.cvv) != 0 || json_kv(p, "cvv2_result", r->cr.cvv2) != 0 ||
        json_kv(p, "arqc_result", r->cr.arqc) != 0 || json_ki(p, "atc", r->cr.atc) != 0 ||
        json_kv(p, "orig_mti", r->orig_mti) != 0 || json_kv(p, "orig_stan", r->orig_stan) != 0 ||
        json_kv(p, "orig_xmit_at", r->orig_xmit) != 0 ||
        json_kv(p, "orig_acquirer_id", r->orig_acq) != 0 ||
        json_ki(p, "replacement_amount", r->replacement) != 0 ||
        json_kv(p, "advice_code", r->advice_code) != 0 || json_kv(p, "deadline", dl) != 0 ||
        json_kv(p, "standin_approval_code", r->settle ? r->appr : NULL) != 0)
        return -1;
    return dbp_buf_append(p, "}", 1);
}

static int build_cb(void *ud, unsigned stmt, struct dbp_item *const *items, unsigned n,
                    struct dbp_params *p)
{
    struct pipeline *pl = ud;
    size_t start = dbp_buf_len(p);

    if (stmt == STMT_CARDS) {
        /* $1 the last PAN hash of the previous page, $2 the page size */
        if (dbp_buf_printf(p, "%s", pl->cards_after) != 0 || dbp_param_end(p, 0, start, 0) != 0)
            return -1;
        start = dbp_buf_len(p);
        if (dbp_buf_printf(p, "%d", PL_CARDS_PAGE) != 0 || dbp_param_end(p, 1, start, 0) != 0)
            return -1;
        return 0;
    }
    if (stmt == STMT_AUTH || stmt == STMT_SETTLE) {
        if (dbp_buf_append(p, "[", 1) != 0)
            return -1;
        for (unsigned i = 0; i < n; i++) {
            if (i > 0 && dbp_buf_append(p, ",", 1) != 0)
                return -1;
            if (json_request(p, (const struct pl_req *)items[i]) != 0)
                return -1;
        }
        if (dbp_buf_append(p, "]", 1) != 0 || dbp_param_end(p, 0, start, 0) != 0)
            return -1;
        return 0;
    }
    /* STMT_RELEASE: $1 bigint[] of auth ids, $2 the stand-in code, $3 rows to return */
    if (dbp_buf_append(p, "{", 1) != 0)
        return -1;
    for (unsigned i = 0; i < n; i++)
        if (dbp_buf_printf(p, "%s%lld", i > 0 ? "," : "",
                           (long long)((const struct pl_req *)items[i])->auth_id) != 0)
            return -1;
    if (dbp_buf_append(p, "}", 1) != 0 || dbp_param_end(p, 0, start, 0) != 0)
        return -1;
    start = dbp_buf_len(p);
    if (dbp_buf_append(p, server_config(pl->srv)->standin_response, 2) != 0 ||
        dbp_param_end(p, 1, start, 0) != 0)
        return -1;
    start = dbp_buf_len(p);
    if (dbp_buf_printf(p, "%u", n) != 0 || dbp_param_end(p, 2, start, 0) != 0)
        return -1;
    return 0;
}

static const struct dbp_stmt pl_stmts[] = {
    {"cg_authorize",
     "SELECT o.ord, o.response_code, o.approval_code, o.approved_amount, o.available_after,"
     " o.balance_after, o.currency, o.rule, o.policy_version, o.auth_id, o.account_id"
     " FROM authorize_batch_json($1::jsonb) o",
     1, NULL, 0, 0},
    {"cg_release_late",
     "WITH x AS MATERIALIZED (SELECT release_late_answered($1::bigint[], $2,"
     " 'late approval: the switch was answered from stand-in') AS n)"
     " SELECT g.i FROM x, generate_series(1, $3::int) g(i)",
     3, NULL, 0, 0},
    {"cg_standin_settle",
     "SELECT o.ord, o.response_code, o.approval_code, o.approved_amount, o.available_after,"
     " o.balance_after, o.currency, o.rule, o.policy_version, o.auth_id, o.account_id"
     " FROM standin_settle_json($1::jsonb) o",
     1, NULL, 0, 0},
    {"cg_standin_cards",
     "SELECT 1, count(*),"
     " coalesce(string_agg(s.pan_hash || ':' || s.standin_limit || ':' || s.expiry, ','), ''),"
     " coalesce(max(s.pan_hash), '')"
     " FROM (SELECT c.pan_hash, c.standin_limit, c.expiry FROM cards c"
     "  WHERE c.status = 'active' AND c.standin_limit > 0 AND c.pan_hash > $1"
     "  ORDER BY c.pan_hash LIMIT $2::int) s",
     2, NULL, 0, 0},
};

/* Submit r (stmt as set); false when the pool has no usable connection. */
static bool submit(struct pipeline *pl, struct pl_req *r, unsigned stmt)
{
    r->item.stmt = stmt;
    r->item.route_key = route_key(pl, r->pan_hash);
    if (dbp_submit(pl->pool, &r->item) != 0)
        return false;
    r->in_db = true;
    return true;
}

/* Queue r on the retry list (release or recheck later). */
static void retry_later(struct pipeline *pl, struct pl_req *r, enum pl_retry what)
{
    r->retry = (uint8_t)what;
    r->want_retry = true;
    if (r->list == L_NONE) { /* else flush_cb moves it there after sending */
        TAILQ_INSERT_TAIL(&pl->retry, r, q);
        r->list = L_RETRY;
    }
}

static bool kind_holds_money(const char *kind)
{
    return strcmp(kind, "auth") == 0 || strcmp(kind, "cash") == 0 ||
           strcmp(kind, "financial") == 0 || strcmp(kind, "refund") == 0 ||
           strcmp(kind, "incremental") == 0;
}

static const char *col(const PGresult *res, int row, int c)
{
    return PQgetisnull(res, row, c) ? NULL : PQgetvalue(res, row, c);
}

/* Read the outcome row into r. */
static void read_outcome(struct pipeline *pl, struct pl_req *r, const PGresult *res, int row)
{
    const char *v;

    snprintf(r->rc, sizeof(r->rc), "%s", (v = col(res, row, 1)) ? v : "96");
    snprintf(r->appr, sizeof(r->appr), "%s", (v = col(res, row, 2)) ? v : "");
    r->have_approved = (v = col(res, row, 3)) != NULL;
    r->approved = v ? strtoll(v, NULL, 10) : 0;
    r->have_avail = (v = col(res, row, 4)) != NULL;
    r->avail = v ? strtoll(v, NULL, 10) : 0;
    r->have_balance = (v = col(res, row, 5)) != NULL;
    r->balance = v ? strtoll(v, NULL, 10) : 0;
    snprintf(r->cur_num, sizeof(r->cur_num), "%s", currency_numeric(col(res, row, 6)));
    snprintf(r->rule, sizeof(r->rule), "%s", (v = col(res, row, 7)) ? v : "");
    if (strcmp(r->rule, "emv.atc_replay") == 0)
        cg_metrics.arqc[MARQC_REPLAY]++;
    r->policy_version = (v = col(res, row, 8)) ? strtoll(v, NULL, 10) : 0;
    r->auth_id = (v = col(res, row, 9)) ? strtoll(v, NULL, 10) : 0;
    if ((v = col(res, row, 10)) != NULL && r->pan_hash[0] != '\0')
        route_learn(pl, r->pan_hash, (uint64_t)strtoll(v, NULL, 10));
}

/* A late outcome (the switch already had a stand-in answer). */
static void late_outcome(struct pipeline *pl, struct pl_req *r, const struct dbp_outcome *o)
{
    if (o->status == DBP_OK) {
        char rc[3];
        snprintf(rc, sizeof(rc), "%s", col(o->res, o->row, 1) ? col(o->res, o->row, 1) : "");
        const char *aid = col(o->res, o->row, 9);
        if (rc_is_approval(rc) && aid != NULL && kind_holds_money(r->kind) && r->sj_seq != 0) {
            /* the switch was told 00 in stand-in: this is that approval's one hold */
            pl->st.late_approvals++;
            log_info("late approval (auth %s, stan %s) of a stand-in approval: kept as its hold",
                     aid, r->stan);
        } else if (rc_is_approval(rc) && aid != NULL && kind_holds_money(r->kind)) {
            pl->st.late_approvals++;
            r->auth_id = strtoll(aid, NULL, 10);
            log_warnx("late approval (auth %lld, stan %s) after a stand-in answer: releasing",
                      (long long)r->auth_id, r->stan);
            if (!submit(pl, r, STMT_RELEASE))
                retry_later(pl, r, R_RELEASE);
        } else {
            log_debug("late outcome %s for stan %s: nothing to release", rc, r->stan);
        }
        return;
    }
    if (o->status == DBP_ERR_CONN && (o->sent || r->retry == R_RECHECK) &&
        kind_holds_money(r->kind)) {
        /* unknown (or a recheck lost before it was sent): ask again, idempotent */
        pl->st.rechecks++;
        r->retry = R_RECHECK;
        if (!submit(pl, r, STMT_AUTH))
            retry_later(pl, r, R_RECHECK);
        return;
    }
    if ((o->status == DBP_ERR_SQL || o->status == DBP_ERR_NOROW) && r->retry == R_RECHECK) {
        /* the recheck's batch rolled back: the original's outcome is still unknown */
        log_warnx("recheck of stan %s failed (%s): retrying", r->stan,
                  o->message ? o->message : "no row");
        retry_later(pl, r, R_RECHECK);
        return;
    }
    if (o->status == DBP_ERR_SHUTDOWN && o->sent)
        log_warnx("shutdown with the outcome of stan %s unknown (auth holds expire by policy)",
                  r->stan);
}

/* ---- stand-in approvals ([standin] mode = approve) ---------------------- */

/* The request's text fields a journal record keeps (same names in both). */
#define REQ_REC_STRINGS(X)                                                                         \
    X(mti);                                                                                        \
    X(pan_hash);                                                                                   \
    X(acquirer);                                                                                   \
    X(stan);                                                                                       \
    X(rrn);                                                                                        \
    X(xmit);                                                                                       \
    X(local_at);                                                                                   \
    X(terminal);                                                                                   \
    X(merchant);                                                                                   \
    X(merchant_name);                                                                              \
    X(mcc);                                                                                        \
    X(country);                                                                                    \
    X(txn_cur);                                                                                    \
    X(bill_cur);                                                                                   \
    X(channel)

/*
 * The card checks made here, in the daemon, must not have failed: a wrong
 * CVV/CVV2/iCVV or a bad ARQC is never approved in stand-in.  A PIN needs
 * the card's PVV/offset and try counter, which only the database has: a
 * request with a PIN block is not approved in stand-in either.
 */
static bool standin_checks_allow(const struct pl_req *r)
{
    const char *const ok[] = {r->cr.cvv, r->cr.cvv2, r->cr.arqc};
    for (size_t i = 0; i < UTIL_NELEM(ok); i++)
        if (ok[i] != NULL && strcmp(ok[i], "ok") != 0 && strcmp(ok[i], "absent") != 0)
            return false;
    return r->cr.pin == NULL || strcmp(r->cr.pin, "absent") == 0;
}

/*
 * Approve r in stand-in when the configuration, the request and the card's
 * remaining stand-in amount allow it: a plain purchase authorization (0100,
 * processing code 00), its card checks not failed (standin_checks_allow),
 * the card in the limit cache.  The approval is
 * journaled (written now, synced in flush_cb before any answer goes out)
 * and answered 00 with an approval code S + 5 digits, rule
 * standin.approved.  False: answer with the stand-in code.
 */
static bool standin_try_approve(struct pipeline *pl, struct pl_req *r, const char *why)
{
    const struct cg_config *cfg = server_config(pl->srv);
    struct standin_rec rec;

    if (pl->sj == NULL || !cfg->standin_approve || pl->sj_broken || strcmp(why, "shutdown") == 0)
        return false;
    /* an authorization only: it is settled as a stand-in advice, a hold that a
     * completion captures; a 0200 (financial) has no completion to follow, so
     * its hold would expire and the purchase never be posted */
    if (r->kind == NULL || strcmp(r->kind, "auth") != 0 || strncmp(r->proc, "00", 2) != 0 ||
        memcmp(r->mti, "0100", 4) != 0 || r->pan_hash[0] == '\0')
        return false;
    if (!standin_checks_allow(r))
        return false;
    int64_t amount = r->bill_amount >= 0 ? r->bill_amount : r->txn_amount;
    /* the month 14 h from now (UTC): no time zone is ahead of that, so a card
     * in its last month is refused a little early rather than late */
    char yymm[16];
    time_t later = time(NULL) + 14 * 3600;
    struct tm tm;
    gmtime_r(&later, &tm);
    snprintf(yymm, sizeof(yymm), "%02d%02d", tm.tm_year % 100, tm.tm_mon + 1);
    if (!standin_cache_expiry_ok(pl->sc, r->pan_hash, r->expiry, yymm))
        return false;
    if (amount <= 0 || standin_cache_take(pl->sc, r->pan_hash, amount) != 0)
        return false;
    memset(&rec, 0, sizeof(rec));
    rec.amount = amount;
    rec.txn_amount = r->txn_amount;
    rec.bill_amount = r->bill_amount;
    rec.deadline_wall_us = r->deadline_wall_us;
    pl->appr_ctr++;
    snprintf(rec.appr, sizeof(rec.appr), "S%05u", (unsigned)(pl->appr_ctr % 100000));
#define CP(f) snprintf(rec.f, sizeof(rec.f), "%s", r->f)
    REQ_REC_STRINGS(CP);
#undef CP
    if (sj_append(pl->sj, &rec) != 0) {
        standin_cache_give(pl->sc, r->pan_hash, amount);
        log_warnx("stan %s: stand-in approval not journaled: stand-in code instead", r->stan);
        return false;
    }
    r->sj_seq = rec.seq;
    r->sj_amount = amount;
    memcpy(r->rc, "00", 3);
    memcpy(r->appr, rec.appr, sizeof(r->appr));
    snprintf(r->rule, sizeof(r->rule), "standin.approved");
    r->standin = true;
    r->have_avail = r->have_balance = r->have_approved = false;
    r->cur_num[0] = '\0';
    pl->st.standin_approved++;
    pl->st.standin_pending = sj_npending(pl->sj);
    cg_metrics.standin_approvals++;
    cg_metrics.standin_pending = pl->st.standin_pending;
    log_info("stan %s: approved in stand-in (%s, %lld, %s), journal seq %llu", r->stan, why,
             (long long)amount, rec.appr, (unsigned long long)rec.seq);
    answer(pl, r);
    return true;
}

/*
 * r's stand-in approval cannot go out (the journal did not sync, or the
 * audit log could not take it): answered with the stand-in code instead,
 * its journal record retired (void; the caller syncs before sending).
 */
static void standin_void(struct pipeline *pl, struct pl_req *r, const char *why)
{
    char mti[5];

    log_warnx("stan %s: stand-in approval not proven (%s): stand-in code instead", r->stan, why);
    if (sj_done(pl->sj, r->sj_seq) < 0 && !pl->sj_broken) {
        pl->sj_broken = true;
        log_warnx("standin journal: cannot write; no more stand-in approvals until restart");
    }
    standin_cache_give(pl->sc, r->pan_hash, r->sj_amount);
    r->sj_seq = 0;
    pl->st.standin_voided++;
    pl->st.standin_pending = sj_npending(pl->sj);
    cg_metrics.standin_pending = pl->st.standin_pending;
    memcpy(r->rc, server_config(pl->srv)->standin_response, 3);
    r->appr[0] = '\0';
    snprintf(r->rule, sizeof(r->rule), "standin.%s", why);
    if (r->link == NULL)
        return;
    netmgmt_response_mti(r->mti, mti);
    mti[4] = '\0';
    encode_answer(pl, r, mti);
    audit_record(pl, r, mti);
}

/* Start (or continue) a pass of the limit cache through the pool. */
static void cards_query(struct pipeline *pl)
{
    if (!pl->cards_in_pass) {
        standin_cache_begin(pl->sc);
        pl->cards_after[0] = '\0';
        pl->cards_in_pass = true;
    }
    pl->cards_item.stmt = STMT_CARDS;
    pl->cards_item.route_key = 0;
    if (dbp_submit(pl->pool, &pl->cards_item) == 0)
        pl->cards_busy = true;
}

/* One page of cards: "hash:limit,..." (column 2), the last hash (3). */
static void cards_done(struct pipeline *pl, const struct dbp_outcome *o)
{
    const struct cg_config *cfg = server_config(pl->srv);
    int64_t now = util_now_us();

    pl->cards_busy = false;
    if (o->status != DBP_OK) {
        if (o->status != DBP_ERR_SHUTDOWN)
            log_warnx("standin: card limits not loaded (%s): retried",
                      o->message ? o->message : "connection lost");
        pl->cards_in_pass = false;
        pl->cards_next_us = now + PL_CARDS_RETRY_US;
        return;
    }
    long n = strtol(PQgetvalue(o->res, o->row, 1), NULL, 10);
    const char *list = PQgetvalue(o->res, o->row, 2);
    bool full = false;
    while (*list != '\0') {
        char hash[PAN_HASH_HEX];
        const char *colon = strchr(list, ':');
        if (colon == NULL || colon - list != PAN_HASH_HEX - 1)
            break;
        memcpy(hash, list, PAN_HASH_HEX - 1);
        hash[PAN_HASH_HEX - 1] = '\0';
        char *end, expiry[5] = "";
        long long limit = strtoll(colon + 1, &end, 10);
        if (*end == ':' && strnlen(end + 1, 4) == 4) {
            memcpy(expiry, end + 1, 4);
            expiry[4] = '\0';
            end += 5;
        }
        int rc = standin_cache_add(pl->sc, hash, limit, expiry);
        if (rc != 0) {
            full = rc > 0;
            if (rc < 0)
                log_warnx("standin: card limit cache: out of memory or a bad row");
            break;
        }
        list = *end == ',' ? end + 1 : end;
    }
    if (n == PL_CARDS_PAGE && !full) {
        snprintf(pl->cards_after, sizeof(pl->cards_after), "%s", PQgetvalue(o->res, o->row, 3));
        cards_query(pl);
        if (!pl->cards_busy) { /* no connection now: the pass starts again later */
            pl->cards_in_pass = false;
            pl->cards_next_us = now + PL_CARDS_RETRY_US;
        }
        return;
    }
    if (full)
        log_warnx("standin: more cards with a stand-in limit than max_cards (%llu): the rest"
                  " get the stand-in code",
                  (unsigned long long)cfg->standin_max_cards);
    bool first = !standin_cache_loaded(pl->sc);
    standin_cache_commit(pl->sc, pl->sj);
    pl->cards_in_pass = false;
    pl->cards_next_us = now + cfg->standin_refresh_us;
    if (first)
        log_info("standin: stand-in limits of %zu cards loaded", standin_cache_size(pl->sc));
}

/*
 * Settle up to PL_SETTLE_BATCH journaled approvals past their deadline (one
 * request slot each, so that json_request builds them like any request).
 */
static void settle_some(struct pipeline *pl)
{
    int64_t wall = util_wall_us();

    /* at most a quarter of the request slots: requests keep theirs */
    unsigned cap = pl->nslots / 4 < PL_SETTLE_BATCH ? pl->nslots / 4 + 1 : PL_SETTLE_BATCH;

    for (size_t i = 0; i < sj_npending(pl->sj) && pl->settling < cap; i++) {
        const struct standin_rec *rec = sj_pending(pl->sj, i);
        if (rec->deadline_wall_us + PL_SETTLE_AFTER > wall)
            continue;
        struct pl_req *r = slot_get(pl);
        if (r == NULL)
            return;
        r->link = NULL;
        r->answered = true;
        r->settle = true;
        r->sj_seq = rec->seq;
        r->sj_amount = rec->amount;
        r->kind = "standin";
        r->proc[0] = r->expiry[0] = '\0';
#define CP(f) snprintf(r->f, sizeof(r->f), "%s", rec->f)
        REQ_REC_STRINGS(CP);
        CP(appr);
#undef CP
        r->pan[0] = '\0';
        r->txn_amount = rec->txn_amount;
        r->bill_amount = rec->bill_amount;
        r->replacement = -1;
        r->orig_mti[0] = r->orig_stan[0] = r->orig_xmit[0] = r->orig_acq[0] = '\0';
        memcpy(r->advice_code, "00", 3);
        r->cr.pin = r->cr.cvv = r->cr.cvv2 = r->cr.arqc = "absent";
        r->cr.atc = -1;
        r->arrival_us = util_now_us();
        r->deadline_wall_us = wall + 60 * 1000000LL;
        if (!submit(pl, r, STMT_SETTLE)) {
            pl_maybe_release(r);
            return;
        }
        pl->settling++;
    }
}

/* A settlement's outcome: retired from the journal, or retried later. */
static void settle_done(struct pipeline *pl, struct pl_req *r, const struct dbp_outcome *o)
{
    pl->settling--;
    if (o->status != DBP_OK) {
        if (o->status != DBP_ERR_SHUTDOWN) {
            pl->st.standin_settle_errors++;
            log_warnx("stand-in approval stan %s not settled (%s): retried", r->stan,
                      o->message ? o->message : "connection lost");
        }
        return;
    }
    const char *rc = col(o->res, o->row, 1), *rule = col(o->res, o->row, 7);
    const char *aid = col(o->res, o->row, 9);
    if (rc == NULL || strcmp(rc, "96") == 0) {
        /* a system error in this request, not a decision: the switch was told 00,
         * so the approval stays pending and is settled again */
        pl->st.standin_settle_errors++;
        log_warnx("stand-in approval stan %s not settled (the database answered %s, %s): retried",
                  r->stan, rc ? rc : "-", rule ? rule : "-");
        return;
    }
    if (!rc_is_approval(rc))
        log_warnx("stand-in approval stan %s: the database answered %s (%s): nothing held", r->stan,
                  rc, rule ? rule : "-");
    if (sj_done(pl->sj, r->sj_seq) == 0) {
        standin_cache_give(pl->sc, r->pan_hash, r->sj_amount);
        pl->st.standin_settled++;
        cg_metrics.standin_settled++;
    }
    pl->st.standin_pending = sj_npending(pl->sj);
    cg_metrics.standin_pending = pl->st.standin_pending;
    log_info("stand-in approval stan %s settled: auth %s, %s", r->stan, aid ? aid : "-",
             rule ? rule : "-");
    if (pl->audit != NULL) {
        char detail[160];
        snprintf(detail, sizeof(detail), "auth_id %s stan %s rrn %s rule %s code %s",
                 aid ? aid : "-", r->stan, r->rrn, rule ? rule : "-", rc ? rc : "-");
        if (audit_operator(pl->audit, "cardgated", "standin_settled", detail) != 0)
            log_warnx("audit: stand-in settlement record not written");
        if (!pl->flush_pending) {
            pl->flush_pending = true;
            event_active(&pl->flush_ev, EV_WRITE, 0);
        }
    }
}

/*
 * From the tick: with the database usable, refresh the limit cache when due
 * and settle what the journal holds; compact the journal when it is all
 * settled (or mostly stale).
 */
static void standin_tick(struct pipeline *pl)
{
    if (pl->sj == NULL || pl->pool == NULL)
        return;
    if (dbp_available(pl->pool)) {
        if (!pl->cards_busy && util_now_us() >= pl->cards_next_us)
            cards_query(pl);
        if (pl->settling == 0 && sj_npending(pl->sj) > 0)
            settle_some(pl);
    }
    size_t np = sj_npending(pl->sj), nr = sj_nrecords(pl->sj);
    if (pl->settling == 0 && nr > 0 && (np == 0 || nr > 2 * np + 1024) && sj_compact(pl->sj) != 0)
        log_warnx("standin journal: compaction failed (retried)");
}

static void done_cb(void *ud, struct dbp_item *item, const struct dbp_outcome *o)
{
    struct pipeline *pl = ud;
    struct pl_req *r = (struct pl_req *)item;
    unsigned stmt = item->stmt;

    if (item == &pl->cards_item) {
        cards_done(pl, o);
        return;
    }
    r->in_db = false;
    if (stmt == STMT_SETTLE) {
        settle_done(pl, r, o);
        pl_maybe_release(r);
        return;
    }
    if (stmt == STMT_RELEASE) {
        if (o->status == DBP_OK) {
            pl->st.late_released++;
            log_info("late approval auth %lld released", (long long)r->auth_id);
            if (pl->audit != NULL) {
                char detail[96];
                snprintf(detail, sizeof(detail), "auth_id %lld stan %s rrn %s",
                         (long long)r->auth_id, r->stan, r->rrn);
                if (audit_operator(pl->audit, "cardgated", "late_release", detail) != 0)
                    log_warnx("audit: late release record not written");
                if (!pl->flush_pending) {
                    pl->flush_pending = true;
                    event_active(&pl->flush_ev, EV_WRITE, 0);
                }
            }
        } else if (o->status != DBP_ERR_SHUTDOWN) {
            log_warnx("release of late approval auth %lld failed (%s): retrying",
                      (long long)r->auth_id, o->message ? o->message : "?");
            retry_later(pl, r, R_RELEASE);
        } else {
            log_warnx("shutdown: late approval auth %lld not released", (long long)r->auth_id);
        }
        pl_maybe_release(r);
        return;
    }
    if (r->answered) {
        late_outcome(pl, r, o);
        pl_maybe_release(r);
        return;
    }
    switch (o->status) {
    case DBP_OK:
        read_outcome(pl, r, o->res, o->row);
        answer(pl, r);
        break;
    case DBP_ERR_CONN:
        if (!o->sent && submit(pl, r, STMT_AUTH))
            break; /* never reached the server: another connection may take it */
        answer_standin(pl, r, "db_lost");
        if (o->sent)
            late_outcome(pl, r, o);
        break;
    case DBP_ERR_CANCEL:
        answer_standin(pl, r, "deadline");
        break;
    case DBP_ERR_SHUTDOWN:
        answer_standin(pl, r, "shutdown");
        break;
    default:
        log_warnx("stan %s: database error: %s", r->stan, o->message ? o->message : "?");
        memcpy(r->rc, "96", 3);
        snprintf(r->rule, sizeof(r->rule), "system.db_error");
        answer(pl, r);
        break;
    }
    pl_maybe_release(r);
}

/* ---- timers ------------------------------------------------------------- */

static void deadline_cb(evutil_socket_t fd, short ev, void *arg)
{
    struct pipeline *pl = arg;
    int64_t now = util_now_us();
    struct pl_req *r;

    (void)fd;
    (void)ev;
    pl->deadline_armed = false;
    while ((r = timer_first(pl)) != NULL && r->timer_us <= now) {
        bool queue_limit = r->list == L_TIMERS;
        list_remove(pl, r);
        if (queue_limit) {
            /* still queued: taken back (its done() answers it, CANCEL); else wait */
            if (r->in_db && dbp_cancel(pl->pool, &r->item)) {
                pl->st.deadline++;
            } else {
                r->timer_us = r->deadline_us;
                timer_insert(pl, r, L_TIMERS2);
            }
            continue;
        }
        /* the deadline itself: it was sent and is marked cancelled already */
        pl->st.deadline++;
        answer_standin(pl, r, "deadline");
        pl_maybe_release(r);
    }
    arm_deadline(pl);
}

/* Retries, metrics from the pool, the audit checkpoint timer. */
static void tick_cb(evutil_socket_t fd, short ev, void *arg)
{
    struct pipeline *pl = arg;
    struct pl_req *r, *next;
    struct dbp_stats ds;

    (void)fd;
    (void)ev;
    for (r = TAILQ_FIRST(&pl->retry); r != NULL; r = next) {
        next = TAILQ_NEXT(r, q);
        if (!dbp_available(pl->pool))
            break;
        list_remove(pl, r);
        if (!submit(pl, r, r->retry == R_RELEASE ? STMT_RELEASE : STMT_AUTH)) {
            TAILQ_INSERT_TAIL(&pl->retry, r, q);
            r->list = L_RETRY;
            break;
        }
        r->want_retry = false;
        r->tries++;
    }
    if (pl->pool != NULL) {
        dbp_get_stats(pl->pool, &ds);
        cg_metrics.db_connections_up = ds.conns_up;
        cg_metrics.db_connections_total = ds.conns_total;
        cg_metrics.db_batches = ds.batches;
        cg_metrics.db_batch_requests = ds.items_sent;
        cg_metrics.db_errors = ds.batch_errors + ds.conn_failures;
        cg_metrics.db_reconnects = ds.reconnects;
    }
    if (pl->audit != NULL && audit_tick(pl->audit) != 0)
        log_warnx("audit checkpoint failed");
    standin_tick(pl);
}

/* ---- dispatch ------------------------------------------------------------ */

/*
 * The crypto checks' seam: fill PIN/CVV/CVV2/ARQC results before the
 * database step, with the key set in force (one reference for the checks).
 * CVV2 and track-2 CVV/iCVV are checked (daemon/cardchk.c), the ARQC in
 * field 55 (daemon/emvchk.c); a PIN block (field 52) becomes candidates for
 * the database (daemon/pinchk.c) under the ZPK of the listener the link was
 * accepted on.  Returns the PIN result: PINCHK_MALFORMED and
 * PINCHK_UNAVAILABLE are answered here.
 */
static enum pinchk_result pl_crypto_checks(struct pipeline *pl, struct pl_req *r,
                                           const struct iso_msg *m, struct pl_crypto *out)
{
    struct keyset *ks = keyset_holder_get(&pl->keys);
    const struct cg_config *cfg = server_config(pl->srv);
    const struct pinchk_keys pk = {
        .zpk = r->link->lsn->conf.zpk,
        .pvk = cfg->keys_pvk,
        .pvki = cfg->pvki,
        .dectab = cfg->pin_dectab,
    };

    out->pin = out->cvv = out->cvv2 = out->arqc = "absent";
    out->atc = -1;
    /* advices and reversals report what happened (and repeat the original's
     * cryptogram and ATC): no new ARQC, and a PIN there is not asked about */
    bool asked = strcmp(r->kind, "standin") != 0 && strcmp(r->kind, "completion") != 0 &&
                 strcmp(r->kind, "reversal") != 0;
    if (asked)
        out->arqc = emvchk_arqc(ks, cfg, m, r->pan, &r->emv, &out->atc);
    enum pinchk_result pr =
        asked ? pinchk_candidates(ks, &pk, m, r->pan, &out->pin_cand) : PINCHK_ABSENT;
    if (pinchk_result_word(pr) != NULL) /* the others are answered by the caller */
        out->pin = pinchk_result_word(pr);
    if (ks == NULL)
        return pr;
    out->cvv2 = cardchk_cvv2(ks, cfg->keys_cvk, m, r->pan, r->expiry);
    out->cvv = cardchk_cvv_track2(ks, cfg->keys_cvk, cfg->cvv_position, m);
    keyset_unref(ks);
    return pr;
}

/* Copy the echoed fields of m into r; false when they do not fit. */
static bool copy_echo(struct pl_req *r, const struct iso_msg *m)
{
    size_t used = 0;
    for (size_t i = 0; i < NECHO; i++) {
        const struct iso_view *v = iso_get(m, echo_fields[i]);
        r->echo_has[i] = v != NULL;
        if (v == NULL)
            continue;
        if (v->len > 255 || used + v->len > sizeof(r->echo))
            return false;
        memcpy(r->echo + used, v->p, v->len);
        r->echo_off[i] = (uint8_t)used;
        r->echo_len[i] = (uint8_t)v->len;
        used += v->len;
    }
    return true;
}

/*
 * Fill r's auth_request from m.  Returns 0, or the field number that is
 * missing or malformed (answered 30), or -1 for an unsupported processing
 * code (answered 12).
 */
static int parse_request(struct pipeline *pl, struct pl_req *r, const struct iso_msg *m)
{
    const struct iso_view *v;
    char pan[PAN_MAX_LEN + 1];
    int missing = iso_required_missing(m);

    if (missing != 0)
        return missing;
    vcopy(r->proc, sizeof(r->proc), iso_get(m, 3));
    r->kind = pipeline_kind(r->mti, iso_has(m, 3) ? r->proc : NULL, iso_has(m, 90));
    if (r->kind == NULL)
        return -1;
    /* PAN: field 2, else track 2 up to the separator; expiry: 14, else track 2 */
    pan[0] = '\0';
    r->expiry[0] = '\0';
    if ((v = iso_get(m, 2)) != NULL) {
        if (!pan_is_wellformed((const char *)v->p, v->len))
            return 2;
        vcopy(pan, sizeof(pan), v);
    }
    if ((v = iso_get(m, 35)) != NULL) {
        const uint8_t *sep = memchr(v->p, '=', v->len);
        if (sep == NULL)
            return 35;
        size_t plen = (size_t)(sep - v->p);
        if (pan[0] == '\0') {
            if (!pan_is_wellformed((const char *)v->p, plen))
                return 35;
            memcpy(pan, v->p, plen);
            pan[plen] = '\0';
        }
        if ((size_t)(v->p + v->len - sep) > 4)
            memcpy(r->expiry, sep + 1, 4), r->expiry[4] = '\0';
    }
    if ((v = iso_get(m, 14)) != NULL)
        vcopy(r->expiry, sizeof(r->expiry), v);
    memcpy(r->pan, pan, sizeof(pan));
    r->pan_hash[0] = '\0';
    if (pan[0] != '\0' &&
        pan_hash_hex(pl->pan_key, pl->pan_key_len, pan, strlen(pan), r->pan_hash) != 0) {
        OPENSSL_cleanse(pan, sizeof(pan));
        return 2;
    }
    OPENSSL_cleanse(pan, sizeof(pan));

    vcopy(r->acquirer, sizeof(r->acquirer), iso_get(m, 32));
    vcopy(r->stan, sizeof(r->stan), iso_get(m, 11));
    vcopy(r->rrn, sizeof(r->rrn), iso_get(m, 37));
    vcopy(r->xmit, sizeof(r->xmit), iso_get(m, 7));
    r->local_at[0] = '\0';
    if (iso_has(m, 13) && iso_has(m, 12)) {
        vcopy(r->local_at, 5, iso_get(m, 13));
        vcopy(r->local_at + 4, 7, iso_get(m, 12));
    }
    vcopy(r->terminal, sizeof(r->terminal), iso_get(m, 41));
    vcopy(r->merchant, sizeof(r->merchant), iso_get(m, 42));
    vcopy(r->merchant_name, sizeof(r->merchant_name), iso_get(m, 43));
    vcopy(r->mcc, sizeof(r->mcc), iso_get(m, 18));
    vcopy(r->country, sizeof(r->country), iso_get(m, 19));
    if (r->country[0] == '\0' && (v = iso_get(m, 43)) != NULL && v->len == 40)
        memcpy(r->country, v->p + 38, 2), r->country[2] = '\0';
    vcopy(r->txn_cur, sizeof(r->txn_cur), iso_get(m, 49));
    vcopy(r->bill_cur, sizeof(r->bill_cur), iso_get(m, 51));
    r->txn_amount = r->bill_amount = r->replacement = -1;
    if ((v = iso_get(m, 4)) != NULL && (r->txn_amount = digits_i64(v->p, v->len)) < 0)
        return 4;
    if ((v = iso_get(m, 6)) != NULL && (r->bill_amount = digits_i64(v->p, v->len)) < 0)
        return 6;
    if (r->bill_amount >= 0 && r->bill_cur[0] == '\0')
        return 51;
    {
        const struct iso_view *e22 = iso_get(m, 22), *e25 = iso_get(m, 25);
        snprintf(r->channel, sizeof(r->channel), "%s",
                 pipeline_channel(e22 ? (const char *)e22->p : NULL, e22 ? e22->len : 0,
                                  e25 ? (const char *)e25->p : NULL, e25 ? e25->len : 0));
    }
    r->orig_mti[0] = r->orig_stan[0] = r->orig_xmit[0] = r->orig_acq[0] = '\0';
    if ((v = iso_get(m, 90)) != NULL) {
        struct iso_orig o;
        struct iso_err err;
        if (iso_orig_parse(v, &o, &err) != 0)
            return 90;
        vcopy(r->orig_mti, sizeof(r->orig_mti), &o.mti);
        vcopy(r->orig_stan, sizeof(r->orig_stan), &o.stan);
        vcopy(r->orig_xmit, sizeof(r->orig_xmit), &o.datetime);
        /* the acquirer part is 11 digits, zero-padded on the left */
        size_t k = 0;
        while (k + 1 < o.acquirer.len && o.acquirer.p[k] == '0')
            k++;
        struct iso_view acq = {o.acquirer.p + k, o.acquirer.len - (uint32_t)k};
        vcopy(r->orig_acq, sizeof(r->orig_acq), &acq);
    }
    if ((v = iso_get(m, 95)) != NULL) {
        if (v->len < 12 || (r->replacement = digits_i64(v->p, 12)) < 0)
            return 95;
    }
    vcopy(r->advice_code, sizeof(r->advice_code), iso_get(m, 39));
    if (strcmp(r->kind, "standin") != 0)
        r->advice_code[0] = '\0';
    return 0;
}

static int dispatch_cb(void *arg, struct link *l, const struct link_frame *f)
{
    struct pipeline *pl = arg;
    struct pl_req *r;
    int bad;

    if (f->hdr_len > PL_HDR_MAX || pl->pool == NULL)
        return -1; /* the link answers from stand-in */
    r = slot_get(pl);
    if (r == NULL) {
        pl->st.slots_exhausted++;
        return -1; /* the link answers from stand-in */
    }
    pl->st.requests++;
    r->link = l;
    r->arrival_us = f->arrival_us;
    r->deadline_us = f->deadline_us;
    r->deadline_wall_us = util_wall_us() + (f->deadline_us - util_now_us());
    r->has_hdr = f->hdr != NULL;
    r->hdr_len = (uint8_t)f->hdr_len;
    if (f->hdr != NULL)
        memcpy(r->hdr, f->hdr, f->hdr_len);
    memcpy(r->mti, f->iso->mti, 4);
    r->mti[4] = '\0';
    r->rc[0] = r->appr[0] = r->rule[0] = r->cur_num[0] = '\0';
    r->have_avail = r->have_balance = r->have_approved = false;
    r->auth_id = 0;
    r->policy_version = 0;
    r->stan[0] = r->rrn[0] = r->pan[0] = '\0';
    r->kind = NULL;
    r->emv.verified = false;
    if (!copy_echo(r, f->iso)) {
        vcopy(r->stan, sizeof(r->stan), iso_get(f->iso, 11));
        log_warnx_p(l->prefix, "%s stan %s: echoed fields too long: answered 30", r->mti, r->stan);
        answer_code(pl, r, "30", "format.echo");
        return 0;
    }
    bad = parse_request(pl, r, f->iso);
    if (bad != 0) {
        if (r->stan[0] == '\0')
            vcopy(r->stan, sizeof(r->stan), iso_get(f->iso, 11));
        if (bad < 0) {
            log_info_p(l->prefix, "%s stan %s: processing code %s not served: answered 12", r->mti,
                       r->stan, r->proc);
            answer_code(pl, r, "12", "format.processing_code");
        } else {
            log_warnx_p(l->prefix, "%s stan %s: field %d missing or malformed: answered 30", r->mti,
                        r->stan, bad);
            char rule[32];
            snprintf(rule, sizeof(rule), "format.field_%d", bad);
            answer_code(pl, r, "30", rule);
        }
        return 0;
    }
    enum pinchk_result pr = pl_crypto_checks(pl, r, f->iso, &r->cr);
    if (pr == PINCHK_MALFORMED || pr == PINCHK_UNAVAILABLE) {
        bool malformed = pr == PINCHK_MALFORMED;
        log_info_p(l->prefix, "%s stan %s: PIN %s: answered %s", r->mti, r->stan,
                   malformed ? "block malformed" : "not verifiable (no zpk or pvk)",
                   malformed ? "55" : "96");
        answer_code(pl, r, malformed ? "55" : "96",
                    malformed ? "pin.malformed" : "pin.unavailable");
        return 0;
    }
    if (!submit(pl, r, STMT_AUTH)) {
        answer_standin(pl, r, "no_db");
        return 0;
    }
    r->timer_us = r->deadline_us - (r->deadline_us - r->arrival_us) / PL_QUEUE_GUARD_DIV;
    timer_insert(pl, r, L_TIMERS);
    return 0;
}

/* ---- life cycle ---------------------------------------------------------- */

/*
 * The PAN-hash key: pan_key_file when given (also next to a key store),
 * else the key store's, else $CARDGATE_PAN_KEY_FILE.
 * Returns 0, -1 when a configured key cannot be loaded, 1 when none is
 * configured at all.
 */
static int load_pan_key(struct pipeline *pl, const struct cg_config *cfg)
{
    char err[256];
    const char *path = cfg->pan_key_file[0] ? cfg->pan_key_file : getenv("CARDGATE_PAN_KEY_FILE");

    if (cfg->keys_file[0] != '\0' && cfg->pan_key_file[0] == '\0') {
        char credpath[4400];
        const char *master = cardchk_master_path(cfg, credpath, sizeof(credpath));
        if (master == NULL)
            return -1;
        if (keystore_pan_hash_key(cfg->keys_file, master, pl->pan_key, &pl->pan_key_len, err,
                                  sizeof(err)) != 0) {
            log_warnx("PAN-hash key from the key store %s: %s", cfg->keys_file, err);
            return -1;
        }
        return 0;
    }
    if (path == NULL || path[0] == '\0') {
        return 1;
    }
    size_t len;
    char *text = util_read_file(path, 4096, &len);
    if (text == NULL) {
        log_warn("cannot read the PAN-hash key file %s", path);
        return -1;
    }
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r' || text[len - 1] == ' '))
        text[--len] = '\0';
    long n = len == 64 ? util_hex_decode(text, pl->pan_key, sizeof(pl->pan_key)) : -1;
    OPENSSL_cleanse(text, len);
    free(text);
    if (n != 32) {
        OPENSSL_cleanse(pl->pan_key, sizeof(pl->pan_key));
        log_warnx("%s must hold 64 hex characters (a 32-byte key)", path);
        return -1;
    }
    pl->pan_key_len = 32;
    return 0;
}

struct pipeline *pipeline_new(struct event_base *base, struct server *srv)
{
    struct pipeline *pl = calloc(1, sizeof(*pl));
    const struct cg_config *cfg = server_config(srv);
    struct dbp_config dc;

    if (pl == NULL)
        return NULL;
    pl->base = base;
    pl->srv = srv;
    TAILQ_INIT(&pl->free);
    TAILQ_INIT(&pl->timers);
    TAILQ_INIT(&pl->timers2);
    TAILQ_INIT(&pl->sendq);
    TAILQ_INIT(&pl->retry);
    keyset_holder_init(&pl->keys);
    int keyrc = load_pan_key(pl, cfg);
    if (keyrc < 0 || cardchk_keys_load(&pl->keys, cfg) < 0)
        goto fail;
    pl->nslots = cfg->max_requests;
    pl->slots = calloc(pl->nslots, sizeof(*pl->slots));
    if (pl->slots == NULL) {
        log_warnx("out of memory for %u request slots", pl->nslots);
        goto fail;
    }
    for (unsigned i = pl->nslots; i-- > 0;) {
        pl->slots[i].pl = pl;
        TAILQ_INSERT_HEAD(&pl->free, &pl->slots[i], q);
        pl->slots[i].list = L_FREE;
    }
    event_assign(&pl->deadline_ev, base, -1, 0, deadline_cb, pl);
    event_assign(&pl->flush_ev, base, -1, 0, flush_cb, pl);
    event_assign(&pl->tick_ev, base, -1, EV_PERSIST, tick_cb, pl);
    if (cfg->audit_configured) {
        struct audit_writer_conf ac = {
            .dir = cfg->audit_dir,
            .segment_size = cfg->audit_segment_size,
            .checkpoint_interval_us = cfg->audit_checkpoint_interval_us,
            .sync = (enum audit_sync)cfg->audit_fsync,
        };
        if (audit_writer_open(&ac, NULL, &pl->audit) != 0) {
            log_warnx("cannot open the audit log in %s (see above)", cfg->audit_dir);
            goto fail;
        }
        if (audit_daemon(pl->audit, AUDIT_DAEMON_START, "cardgated") != 0 ||
            audit_flush(pl->audit) != 0)
            log_warnx("audit: start record not written");
    } else {
        log_warnx("no [audit] section: no audit log is written");
    }
    if (cfg->standin_approve) {
        char err[4400];
        if (sj_open(cfg->standin_journal, cfg->standin_max_pending, &pl->sj, err, sizeof(err)) !=
            0) {
            log_warnx("[standin] journal: %s", err);
            goto fail;
        }
        pl->sc = standin_cache_new(cfg->standin_max_cards);
        if (pl->sc == NULL) {
            log_warnx("[standin]: out of memory");
            goto fail;
        }
        pl->appr_ctr = (uint32_t)(util_wall_us() / 1000000);
        pl->st.standin_pending = cg_metrics.standin_pending = sj_npending(pl->sj);
        log_info("standin: approving up to each card's stand-in limit; journal %s, %zu"
                 " approvals to settle",
                 cfg->standin_journal, sj_npending(pl->sj));
    }
    struct timeval tv = {.tv_sec = 0, .tv_usec = PL_RETRY_US};
    event_add(&pl->tick_ev, &tv);
    if (keyrc == 1) {
        /* cards cannot be found without the key: nothing is decided here */
        log_warnx("no PAN-hash key ([keys] file or pan_key_file): every financial request is"
                  " answered from stand-in");
        return pl;
    }
    dbp_config_from_cg(&dc, cfg);
    dc.stmts = pl_stmts;
    dc.nstmts = UTIL_NELEM(pl_stmts);
    dc.ops.build = build_cb;
    dc.ops.done = done_cb;
    dc.ud = pl;
    pl->pool = dbp_new(base, &dc);
    if (pl->pool == NULL)
        goto fail;
    log_info("pipeline: %u request slots, pool of %u, max batch %u", pl->nslots, dc.pool_size,
             dc.max_batch);
    return pl;
fail:
    sj_close(pl->sj);
    standin_cache_free(pl->sc);
    if (pl->audit != NULL)
        audit_writer_abandon(pl->audit);
    OPENSSL_cleanse(pl->pan_key, sizeof(pl->pan_key));
    keyset_holder_destroy(&pl->keys);
    free(pl->slots);
    free(pl);
    return NULL;
}

/*
 * A reload's configuration, before the server swaps it in: its key store is
 * loaded and every key name it uses checked (cardchk_keys_open); a store
 * that cannot be loaded or lacks a named key refuses the whole reload, so
 * the old configuration and keys keep serving together.  The loaded set
 * waits in reload_keys for the "reloaded" event.
 */
static int reload_check_cb(void *arg, const struct cg_config *nc)
{
    struct pipeline *pl = arg;
    char err[600];
    struct keyset *ks = NULL;

    keyset_unref(pl->reload_keys);
    pl->reload_keys = NULL;
    if (cardchk_keys_open(nc, &ks, err, sizeof(err)) < 0) {
        log_warnx("keys: %s", err);
        return -1;
    }
    pl->reload_keys = ks;
    return 0;
}

/*
 * Lifecycle events: after a configuration reload (SIGHUP) the key store
 * reload_check loaded is swapped in whole; a refused reload drops it.
 */
/*
 * The audit log's record of a lifecycle or link event (server_event):
 * reloads (accepted or refused, with the reason), links connected, signed
 * on/off and closed (with the reason), and messages refused for a bad MAC.
 * Flushed with the next batch of request records (this loop turn).
 */
static void audit_event(struct pipeline *pl, const char *who, const char *event, const char *detail)
{
    static const struct {
        const char *event;
        enum audit_link_event ev;
    } links[] = {
        {"accepted", AUDIT_LINK_CONNECT},
        {"signed-on", AUDIT_LINK_SIGNON},
        {"signed-off", AUDIT_LINK_SIGNOFF},
        {"closed", AUDIT_LINK_CLOSE},
    };
    int rc = 1;

    if (pl->audit == NULL)
        return;
    if (strcmp(who, "server") == 0) {
        if (strcmp(event, "reloaded") == 0 || strcmp(event, "reload-refused") == 0)
            rc = audit_reload(pl->audit, strcmp(event, "reloaded") == 0, detail);
    } else if (strncmp(who, "link ", 5) == 0) {
        /* who is the link's log prefix: "link NAME#N PEER" */
        char name[64];
        size_t n = strcspn(who + 5, " ");
        snprintf(name, sizeof(name), "%.*s", (int)(n < sizeof(name) ? n : sizeof(name) - 1),
                 who + 5);
        const char *peer = who[5 + n] == ' ' ? who + 6 + n : "";
        for (size_t i = 0; i < UTIL_NELEM(links); i++)
            if (strcmp(event, links[i].event) == 0)
                rc = audit_link(pl->audit, name, peer, links[i].ev,
                                links[i].ev == AUDIT_LINK_CLOSE ? detail : NULL);
        if (strcmp(event, "mac-failure") == 0)
            rc = audit_operator(pl->audit, who, "mac_failure", detail);
    }
    if (rc == 1)
        return; /* not an event the audit log records */
    if (rc != 0)
        log_warnx("audit: %s record of %s not written", event, who);
    if (!pl->flush_pending) {
        pl->flush_pending = true;
        event_active(&pl->flush_ev, EV_WRITE, 0);
    }
}

static void event_cb(void *arg, const char *who, const char *event, const char *detail)
{
    struct pipeline *pl = arg;
    audit_event(pl, who, event, detail);
    if (strcmp(who, "server") != 0)
        return;
    if (strcmp(event, "reloaded") == 0 && pl->reload_keys != NULL) {
        struct keyset *ks = pl->reload_keys;
        pl->reload_keys = NULL;
        log_info("keys: %zu key%s loaded from %s", ks->n, ks->n == 1 ? "" : "s",
                 server_config(pl->srv)->keys_file);
        keyset_holder_swap(&pl->keys, ks);
    } else if (strcmp(event, "reload-refused") == 0) {
        keyset_unref(pl->reload_keys);
        pl->reload_keys = NULL;
    }
    if (strcmp(event, "reloaded") != 0)
        return;
    const struct cg_config *cfg = server_config(pl->srv);
    if (cfg->standin_approve && pl->sj == NULL)
        log_warnx("[standin] mode = approve takes effect at the next start (no journal open):"
                  " stand-in answers stay %s",
                  cfg->standin_response);
    else if (cfg->standin_approve && strcmp(sj_path(pl->sj), cfg->standin_journal) != 0)
        log_warnx("[standin] journal: a new path takes effect at the next start; %s stays in use",
                  sj_path(pl->sj));
}

/*
 * 0800 key change on l (daemon/keychg.h): the new ZPK of the link's
 * listener, accepted only when it decrypts under the ZMK and its KCV
 * matches, is saved to the key store and swapped in (every link naming the
 * key uses it from the next request; requests in flight finish with the old
 * set, which is wiped with its last reference).  The change is audited with
 * the key's name and new KCV, a refusal with its response code.
 */
static const char *key_change_cb(void *arg, struct link *l, const struct link_frame *f)
{
    struct pipeline *pl = arg;
    const struct cg_listener_conf *lc = &l->lsn->conf;
    struct keyset *ks = keyset_holder_get(&pl->keys), *ns = NULL;
    char kcv[7], err[256];
    const char *rc = keychg_decide(ks, lc->zpk, lc->zmk, f->iso, &ns, kcv, err, sizeof(err));
    unsigned version = 0;

    keyset_unref(ks);
    if (strcmp(rc, "00") == 0) {
        version = keyset_find(ns, lc->zpk)->version;
        if (keychg_commit(&pl->keys, server_config(pl->srv), ns, err, sizeof(err)) != 0)
            rc = "96";
    }
    if (strcmp(rc, "00") == 0) {
        log_info_p(l->prefix, "key change: zpk %s is now version %u, KCV %s", lc->zpk, version,
                   kcv);
        if (pl->audit != NULL && audit_key_change(pl->audit, lc->zpk, kcv) != 0)
            log_warnx_p(l->prefix, "audit: key change record not written");
    } else {
        log_warnx_p(l->prefix, "key change of zpk %s refused: %s; answered %s, the old key stays",
                    lc->zpk[0] ? lc->zpk : "-", err, rc);
        char detail[160];
        snprintf(detail, sizeof(detail), "zpk %s refused %s", lc->zpk[0] ? lc->zpk : "-", rc);
        if (pl->audit != NULL && audit_operator(pl->audit, l->prefix, "key_change", detail) != 0)
            log_warnx_p(l->prefix, "audit: key change record not written");
    }
    if (pl->audit != NULL && audit_flush(pl->audit) != 0)
        log_warnx_p(l->prefix, "audit: key change record not flushed");
    return rc;
}

/* server_hooks.db_up: READY=1 waits for it (see server_start). */
static bool pipeline_db_up_cb(void *arg)
{
    return pipeline_db_up(arg);
}

/* server_hooks.keys: the working keys for the links (MACs). */
static struct keyset *pipeline_keys_cb(void *arg)
{
    struct pipeline *pl = arg;
    return keyset_holder_get(&pl->keys);
}

void pipeline_hooks(struct pipeline *pl, struct server_hooks *out)
{
    memset(out, 0, sizeof(*out));
    out->dispatch = dispatch_cb;
    out->event = event_cb;
    out->db_up = pipeline_db_up_cb;
    out->keys = pipeline_keys_cb;
    out->key_change = key_change_cb;
    out->reload_check = reload_check_cb;
    out->arg = pl;
}

void pipeline_free(struct pipeline *pl)
{
    if (pl == NULL)
        return;
    /* answers still queued go out first; then the pool fails what is left */
    if (pl->flush_pending)
        flush_cb(-1, 0, pl);
    dbp_free(pl->pool);
    if (pl->flush_pending)
        flush_cb(-1, 0, pl);
    event_del(&pl->deadline_ev);
    event_del(&pl->flush_ev);
    event_del(&pl->tick_ev);
    if (!TAILQ_EMPTY(&pl->retry))
        log_warnx("shutdown with late approvals not yet released (holds expire by policy)");
    if (pl->sj != NULL) {
        if (sj_sync(pl->sj) != 0)
            log_warnx("standin journal: final sync failed");
        if (sj_npending(pl->sj) > 0)
            log_warnx("standin: %zu stand-in approvals not settled yet: settled at the next start",
                      sj_npending(pl->sj));
        sj_close(pl->sj);
    }
    standin_cache_free(pl->sc);
    if (pl->audit != NULL) {
        if (audit_daemon(pl->audit, AUDIT_DAEMON_STOP, "cardgated") != 0 ||
            audit_writer_close(pl->audit) != 0)
            log_warnx("audit: final records not written");
    }
    OPENSSL_cleanse(pl->pan_key, sizeof(pl->pan_key));
    keyset_unref(pl->reload_keys);
    keyset_holder_destroy(&pl->keys);
    OPENSSL_cleanse(pl->slots, sizeof(*pl->slots) * pl->nslots);
    free(pl->slots);
    free(pl);
}

void pipeline_get_stats(const struct pipeline *pl, struct pipeline_stats *out)
{
    *out = pl->st;
}

bool pipeline_db_up(const struct pipeline *pl)
{
    return pl->pool != NULL && dbp_available(pl->pool);
}
