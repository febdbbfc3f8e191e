/*
 * msg.c - building, framing and checking the simulator's messages.
 */
#include "tools/sim/msg.h"

#include "common/util.h"
#include "crypto/emv.h"
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

int sim_link_set_mac(struct sim_link *l, const char *alg, const char *hex, char *err, size_t errlen)
{
    static const char *const names[] = {"none", "x919", "alg1", "cmac"};
    size_t i;
    for (i = 1; i < 4; i++)
        if (strcmp(alg, names[i]) == 0)
            break;
    if (i == 4) {
        snprintf(err, errlen, "--mac: '%s' is not one of x919, alg1, cmac", alg);
        return -1;
    }
    if (crypto_init(err, errlen) != 0) /* single DES (legacy provider) for x919/alg1 */
        return -1;
    memset(&l->mak, 0, sizeof(l->mak));
    long n =
        strlen(hex) <= 2 * KS_KEY_MAX ? util_hex_decode(hex, l->mak.key, sizeof(l->mak.key)) : -1;
    bool aes = i == CG_MAC_CMAC;
    if (n < 0 || !(n == 16 || n == 24 || (aes && n == 32)) || (i == CG_MAC_X919 && n != 16)) {
        OPENSSL_cleanse(&l->mak, sizeof(l->mak));
        snprintf(err, errlen, "--mak: expected %s in hex", i == CG_MAC_X919 ? "16 bytes" : "a key");
        return -1;
    }
    snprintf(l->mak.name, sizeof(l->mak.name), "sim");
    l->mak.type = KS_MAK;
    l->mak.usage = KS_U_MAC;
    l->mak.alg = aes ? KS_ALG_AES : KS_ALG_TDES;
    l->mak.len = (size_t)n;
    l->mac = (enum cg_mac)i;
    return 0;
}

int sim_check_mac(const struct sim_link *l, const uint8_t *msg, size_t len, const struct iso_msg *m,
                  const char **why)
{
    *why = "";
    if (l->mac == CG_MAC_NONE)
        return 0;
    return linkmac_verify(l->mac, 1, l->d, &l->mak, msg, len, m, why) == MAC_OK ? 0 : -1;
}

/* 12 decimal digits of v as 6 bytes of BCD. */
static void bcd6(int64_t v, uint8_t out[6])
{
    for (int i = 5; i >= 0; i--) {
        out[i] = (uint8_t)(v % 10);
        v /= 10;
        out[i] |= (uint8_t)((v % 10) << 4);
        v /= 10;
    }
}

/* The tags the ARQC covers, for CVN 18, filled from the request. */
struct chip_data {
    uint8_t amount[6], other[6], country[2], tvr[5], currency[2], date[3], type[1], un[4], aip[2],
        atc[2];
};

static const uint8_t chip_iad[7] = {0x06, 0x01, 0x12, 0x03, 0xA0, 0xB8, 0x00}; /* Visa CVN 18 */

/* The card's session key for c's ATC (CVN 18: common session key). */
static int chip_session_key(const struct sim_chip *c, const char *pan, uint8_t sk[16])
{
    uint8_t mk[16], atc[2] = {(uint8_t)(c->atc >> 8), (uint8_t)c->atc};
    int rc = emv_derive_icc_mk(EMV_MKD_A, c->imk, pan, strlen(pan), "00", mk) != 0 ||
                     emv_ac_key(18, mk, atc, NULL, sk) != 0
                 ? -1
                 : 0;
    OPENSSL_cleanse(mk, sizeof(mk));
    return rc;
}

long sim_chip_f55(struct sim_chip *c, const char *pan, int64_t amount, const char *currency,
                  uint8_t *out, size_t cap)
{
    struct chip_data d;
    struct emv_tags t;
    uint8_t sk[16], data[128];
    time_t now = time(NULL);
    struct tm tm;

    if (strlen(currency) != 3 || amount < 0 || amount > 999999999999LL)
        return -1;
    memset(&d, 0, sizeof(d));
    bcd6(amount, d.amount);
    d.country[0] = 0x02;
    d.country[1] = 0x76;
    d.currency[0] = (uint8_t)(currency[0] - '0');
    d.currency[1] = (uint8_t)(((currency[1] - '0') << 4) | (currency[2] - '0'));
    gmtime_r(&now, &tm);
    d.date[0] = (uint8_t)(((tm.tm_year % 100) / 10) << 4 | (tm.tm_year % 10));
    d.date[1] = (uint8_t)(((tm.tm_mon + 1) / 10) << 4 | ((tm.tm_mon + 1) % 10));
    d.date[2] = (uint8_t)((tm.tm_mday / 10) << 4 | (tm.tm_mday % 10));
    uint32_t un = (uint32_t)now ^ ((uint32_t)c->atc << 16);
    for (int i = 0; i < 4; i++)
        d.un[i] = (uint8_t)(un >> (24 - 8 * i));
    d.aip[0] = 0x18;
    d.atc[0] = (uint8_t)(c->atc >> 8);
    d.atc[1] = (uint8_t)c->atc;
    t = (struct emv_tags){.amount = d.amount,
                          .other = d.other,
                          .country = d.country,
                          .tvr = d.tvr,
                          .currency = d.currency,
                          .date = d.date,
                          .type = d.type,
                          .un = d.un,
                          .aip = d.aip,
                          .atc = d.atc,
                          .iad = chip_iad,
                          .iad_len = sizeof(chip_iad)};
    long dl = emv_arqc_data(18, &t, data, sizeof(data));
    int rc = dl > 0 && chip_session_key(c, pan, sk) == 0
                 ? emv_arqc(18, sk, data, (size_t)dl, c->arqc)
                 : -1;
    OPENSSL_cleanse(sk, sizeof(sk));
    if (rc != 0)
        return -1;
    if (c->forge)
        c->arqc[7] ^= 0x01;
    const struct {
        uint32_t tag;
        const uint8_t *v;
        size_t n;
    } tl[] = {{0x9F26, c->arqc, 8},  {0x9F27, (const uint8_t *)"\x80", 1},
              {0x9F10, chip_iad, 7}, {0x9F37, d.un, 4},
              {0x9F36, d.atc, 2},    {0x95, d.tvr, 5},
              {0x9A, d.date, 3},     {0x9C, d.type, 1},
              {0x9F02, d.amount, 6}, {0x5F2A, d.currency, 2},
              {0x82, d.aip, 2},      {0x9F1A, d.country, 2},
              {0x9F03, d.other, 6},  {0x5F34, (const uint8_t *)"\x00", 1}};
    size_t n = 0;
    for (size_t i = 0; i < sizeof(tl) / sizeof(tl[0]); i++) {
        long w = iso_tlv_put(tl[i].tag, tl[i].v, tl[i].n, out + n, cap - n);
        if (w < 0)
            return -1;
        n += (size_t)w;
    }
    return (long)n;
}

int sim_chip_check_arpc(const struct sim_chip *c, const char *pan, const char *rc,
                        const uint8_t *f55, size_t len)
{
    static const uint8_t csu_ok[4] = {0x00, 0x80, 0x00, 0x00}, csu_no[4];
    const uint8_t *csu = strcmp(rc, "00") == 0 || strcmp(rc, "10") == 0 ? csu_ok : csu_no;
    struct iso_tlv t;
    struct iso_err e;
    uint8_t sk[16], want[4];

    if (f55 == NULL || iso_tlv_find(f55, len, 0x91, &t, &e) != 1 || t.len != 8 ||
        memcmp(t.v + 4, csu, 4) != 0)
        return -1;
    int r = chip_session_key(c, pan, sk) == 0 && emv_arpc2(sk, c->arqc, csu, NULL, 0, want) == 0 &&
                    CRYPTO_memcmp(want, t.v, 4) == 0
                ? 0
                : -1;
    OPENSSL_cleanse(sk, sizeof(sk));
    return r;
}

void sim_link_free(struct sim_link *l)
{
    OPENSSL_cleanse(&l->mak, sizeof(l->mak));
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
        if (r->chip != NULL && r->kind == SIM_K_PURCHASE) {
            uint8_t f55[255];
            const char *cur = r->currency ? r->currency : c->currency[0] ? c->currency : "978";
            long n = sim_chip_f55(r->chip, c->pan, r->amount, cur, f55, sizeof(f55));
            if (n < 0 || iso_set_copy(m, 55, f55, (size_t)n) != 0)
                bad = 55;
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
    if (l->mac != CG_MAC_NONE
            ? linkmac_encode(l->mac, 1, l->d, &l->mak, m, out + pre, cap - pre, &mlen, err) != 0
            : iso_encode(l->d, m, out + pre, cap - pre, &mlen, err) != 0)
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
