/*
 * msg.c - building, framing and checking the simulator's messages.
 */
#include "tools/sim/msg.h"

#include "common/util.h"
#include "crypto/pin.h"

#include <openssl/crypto.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *name;
    const char *mti;
    const char *proc;
} kinds[SIM_K_COUNT] = {
    [SIM_K_SIGNON] = {"signon", "0800", NULL},
    [SIM_K_ECHO] = {"echo", "0800", NULL},
    [SIM_K_PURCHASE] = {"purchase", "0200", "000000"},
    [SIM_K_BALANCE] = {"balance", "0200", "310000"},
    [SIM_K_REFUND] = {"refund", "0200", "200000"},
    [SIM_K_ADVICE] = {"advice", "0220", "000000"},
    [SIM_K_REVERSAL] = {"reversal", "0400", "000000"},
    [SIM_K_PIN] = {"pin", "0200", "000000"},
};

int sim_pin_block(const uint8_t *zpk, size_t zpk_len, const struct sim_card *c, const char *pin,
                  uint8_t out[8])
{
    uint8_t blk[16];
    size_t len;
    int rc = pinblock_encrypt(PIN_ISO0, zpk, zpk_len, pin, c->pan, strlen(c->pan), NULL, blk,
                              &len) == 0 &&
                     len == 8
                 ? 0
                 : -1;
    memcpy(out, blk, 8);
    OPENSSL_cleanse(blk, sizeof(blk));
    return rc;
}

int sim_parse_zpk(const char *hex, uint8_t key[24], size_t *len, char *err, size_t errlen)
{
    long n = strlen(hex) <= 48 ? util_hex_decode(hex, key, 24) : -1;
    if (n != 16 && n != 24) {
        snprintf(err, errlen, "--zpk: expected 32 or 48 hex digits");
        return -1;
    }
    if (crypto_init(err, errlen) != 0)
        return -1;
    *len = (size_t)n;
    return 0;
}

const char *sim_kind_name(enum sim_kind k)
{
    return (unsigned)k < SIM_K_COUNT ? kinds[k].name : NULL;
}

int sim_kind_parse(const char *name)
{
    for (int k = 0; k < SIM_K_COUNT; k++)
        if (strcmp(kinds[k].name, name) == 0)
            return k;
    return -1;
}

const char *sim_kind_mti(enum sim_kind k)
{
    return kinds[k].mti;
}

void sim_stan(char out[7], uint32_t n)
{
    snprintf(out, 7, "%06u", (unsigned)(n % 1000000));
}

void sim_req_times(struct sim_req *r, time_t now)
{
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(r->xmit, sizeof(r->xmit), "%m%d%H%M%S", &tm);
    strftime(r->ltime, sizeof(r->ltime), "%H%M%S", &tm);
    strftime(r->ldate, sizeof(r->ldate), "%m%d", &tm);
}

int sim_link_init(struct sim_link *l, const char *dialect, const char *framing, char *err,
                  size_t errlen)
{
    memset(l, 0, sizeof(*l));
    struct iso_dialect *d = strchr(dialect, '/') || strstr(dialect, ".conf")
                                ? iso_dialect_load(dialect, err, errlen)
                                : iso_dialect_builtin(dialect, err, errlen);
    if (!d)
        return -1;
    l->d = d;
    l->fr = d->framing;
    if (framing) {
        static const struct {
            const char *name;
            uint8_t kind;
        } fk[] = {
            {"len2", ISO_FR_LEN2}, {"len4ascii", ISO_FR_LEN4ASCII}, {"len2bcd", ISO_FR_LEN2BCD}};
        size_t i;
        for (i = 0; i < sizeof(fk) / sizeof(fk[0]); i++)
            if (strcmp(fk[i].name, framing) == 0)
                break;
        if (i == sizeof(fk) / sizeof(fk[0])) {
            snprintf(err, errlen, "unknown framing '%s' (len2, len4ascii, len2bcd)", framing);
            sim_link_free(l);
            return -1;
        }
        l->fr.kind = fk[i].kind;
        /* len4ascii and len2bcd cannot express more than 9999 */
        if (l->fr.kind != ISO_FR_LEN2 && l->fr.max_len > 9999)
            l->fr.max_len = 9999;
    }
    return 0;
}

int sim_link_set_header(struct sim_link *l, const char *header, char *err, size_t errlen)
{
    static const uint8_t tpdu[5] = {0x60, 0x00, 0x01, 0x00, 0x00};
    if (strcmp(header, "none") == 0) {
        l->fr.hdr_len = 0;
    } else if (strcmp(header, "tpdu") == 0) {
        l->fr.hdr_len = sizeof(tpdu);
        memcpy(l->hdr, tpdu, sizeof(tpdu));
    } else {
        snprintf(err, errlen, "unknown header '%s' (none, tpdu)", header);
        return -1;
    }
    /* we originate requests: our header goes out as it is */
    l->fr.tpdu_swap = false;
    return 0;
}

void sim_link_free(struct sim_link *l)
{
    iso_dialect_free((struct iso_dialect *)l->d);
    l->d = NULL;
}

/* iso_set_copy with a NUL-terminated string; accumulates failure in *bad. */
static void put(struct iso_msg *m, int n, const char *s, int *bad)
{
    if (iso_set_copy(m, n, s, strlen(s)) != 0)
        *bad = n;
}

int sim_build(const struct sim_link *l, const struct sim_req *r, struct iso_msg *m, uint8_t *out,
              size_t cap, size_t *outlen, struct iso_err *err)
{
    int bad = 0;
    char buf[64];
    iso_msg_init(m);
    memset(err, 0, sizeof(*err));
    if ((unsigned)r->kind >= SIM_K_COUNT || iso_set_mti(m, kinds[r->kind].mti) != 0) {
        snprintf(err->msg, sizeof(err->msg), "bad request kind %d", (int)r->kind);
        return -1;
    }
    put(m, 7, r->xmit, &bad);
    put(m, 11, r->stan, &bad);
    if (r->kind == SIM_K_SIGNON || r->kind == SIM_K_ECHO) {
        put(m, 70, r->kind == SIM_K_SIGNON ? "001" : "301", &bad);
    } else {
        const struct sim_card *c = r->card;
        if (!c) {
            snprintf(err->msg, sizeof(err->msg), "%s without a card", kinds[r->kind].name);
            return -1;
        }
        put(m, 2, c->pan, &bad);
        put(m, 3, kinds[r->kind].proc, &bad);
        snprintf(buf, sizeof(buf), "%012lld", (long long)r->amount);
        put(m, 4, buf, &bad);
        put(m, 12, r->ltime, &bad);
        put(m, 13, r->ldate, &bad);
        put(m, 14, c->expiry, &bad);
        put(m, 18, r->mcc ? r->mcc : c->mcc[0] ? c->mcc : "5411", &bad);
        put(m, 19, "276", &bad);
        put(m, 22, r->entry ? r->entry : "051", &bad);
        put(m, 32, "123456", &bad);
        put(m, 37, r->rrn, &bad);
        put(m, 41, "SIMTERM1", &bad);
        put(m, 42, "SIMMERCHANT0001", &bad);
        put(m, 43, "CARDGATE SIM SHOP      BERLIN         DE", &bad);
        put(m, 49, r->currency ? r->currency : c->currency[0] ? c->currency : "978", &bad);
        const char *cvv2 = r->cvv2 ? r->cvv2 : c->cvv2;
        if (cvv2[0] && r->kind != SIM_K_REVERSAL && r->kind != SIM_K_ADVICE) {
            snprintf(buf, sizeof(buf), "92%02zu%s", strlen(cvv2), cvv2);
            put(m, 48, buf, &bad);
        }
        if (r->pinblock != NULL && iso_set_copy(m, 52, r->pinblock, r->pinblock_len) != 0)
            bad = 52;
        if (r->kind == SIM_K_ADVICE) {
            put(m, 38, "SIM001", &bad);
            put(m, 39, "00", &bad);
        }
        if (r->kind == SIM_K_REVERSAL) {
            if (!r->orig) {
                snprintf(err->msg, sizeof(err->msg), "reversal without an original");
                return -1;
            }
            snprintf(buf, sizeof(buf), "%.4s%.6s%.10s%011d%011d", r->orig->mti, r->orig->stan,
                     r->orig->xmit, 123456, 0);
            put(m, 90, buf, &bad);
        }
    }
    if (bad) {
        err->field = bad;
        snprintf(err->msg, sizeof(err->msg), "field %d: no room in the message scratch", bad);
        return -1;
    }
    size_t pre = iso_frame_prefix_len(&l->fr) + l->fr.hdr_len;
    if (cap < pre)
        return -1;
    size_t mlen;
    if (iso_encode(l->d, m, out + pre, cap - pre, &mlen, err) != 0)
        return -1;
    long h = iso_frame_write_head(&l->fr, l->fr.hdr_len ? l->hdr : NULL, mlen, out, pre);
    if (h < 0 || (size_t)h != pre) {
        snprintf(err->msg, sizeof(err->msg), "message of %zu bytes does not fit the framing", mlen);
        return -1;
    }
    *outlen = pre + mlen;
    return 0;
}

void sim_answer_mti(const char req[4], char out[5])
{
    memcpy(out, req, 4);
    out[2] = (char)(out[2] + 1);
    out[4] = '\0';
}

long sim_dump(const struct sim_link *l, struct iso_msg *m, bool json, char *out, size_t cap)
{
    static const char stars[] = "****************************************";
    const struct iso_view *v48 = iso_get(m, 48);
    if (v48) {
        size_t n = v48->len < sizeof(stars) - 1 ? v48->len : sizeof(stars) - 1;
        if (iso_set(m, 48, stars, n ? n : 1) != 0)
            iso_clear(m, 48);
    }
    return json ? iso_dump_json(l->d, m, false, out, cap) : iso_dump_text(l->d, m, false, out, cap);
}
