/*
 * emv.c - see emv.h.
 */
#include "crypto/emv.h"

#include "crypto/mac.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stddef.h>
#include <string.h>

const char *emv_status_name(enum emv_status s)
{
    switch (s) {
    case EMV_OK:
        return "ok";
    case EMV_BAD_ARQC:
        return "bad-arqc";
    case EMV_REPLAY:
        return "replay";
    case EMV_FORMAT_ERROR:
        return "format-error";
    case EMV_UNAVAILABLE:
        return "unavailable";
    }
    return "unknown";
}

bool emv_cvn_supported(int cvn)
{
    return emv_cvn_arpc_method(cvn) != 0;
}

int emv_cvn_arpc_method(int cvn)
{
    switch (cvn) {
    case 10:
    case 16:
    case 17:
    case 20:
    case 21:
        return 1;
    case 18:
    case 22:
        return 2;
    }
    return 0;
}

/* MK = E_IMK(Y) || E_IMK(Y ^ FF..FF), parity-adjusted */
static int mk_from_y(const uint8_t imk[16], const uint8_t y[8], uint8_t mk[16])
{
    uint8_t ny[8];

    for (int i = 0; i < 8; i++)
        ny[i] = (uint8_t)~y[i];
    if (crypto_ecb(CRYPTO_TDES, imk, 16, true, y, 8, mk) != 0 ||
        crypto_ecb(CRYPTO_TDES, imk, 16, true, ny, 8, mk + 8) != 0)
        return -1;
    crypto_des_parity(mk, 16);
    return 0;
}

int emv_derive_icc_mk(enum emv_mkd opt, const uint8_t imk[16], const char *pan, size_t panlen,
                      const char *psn, uint8_t mk[16])
{
    char d[22], y16[17];
    uint8_t y[8], bcd[11], md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    size_t n;
    int rc = -1;

    if (psn == NULL)
        psn = "00";
    if (panlen < 1 || panlen > 19 || strlen(psn) != 2)
        return -1;
    memcpy(d, pan, panlen);
    memcpy(d + panlen, psn, 2);
    n = panlen + 2;
    for (size_t i = 0; i < n; i++)
        if (d[i] < '0' || d[i] > '9')
            return -1;
    /* EMV Book 2 A1.4: option B is defined for PANs longer than 16 digits;
     * a shorter PAN always derives by option A */
    if (opt == EMV_MKD_AUTO || panlen <= 16)
        opt = panlen <= 16 ? EMV_MKD_A : EMV_MKD_B;
    if (opt == EMV_MKD_A) {
        char r[16];
        memset(r, '0', sizeof(r));
        if (n >= 16)
            memcpy(r, d + n - 16, 16);
        else
            memcpy(r + 16 - n, d, n);
        if (crypto_pack_nibbles(r, 16, 0, y, 8) != 0)
            goto out;
    } else if (opt == EMV_MKD_B) {
        /* BCD of PAN||PSN, left-padded with 0 to an even count */
        char e[22];
        size_t en = n + (n % 2);
        e[0] = '0';
        memcpy(e + (n % 2), d, n);
        if (crypto_pack_nibbles(e, en, 0, bcd, en / 2) != 0 ||
            EVP_Digest(bcd, en / 2, md, &mdlen, EVP_sha1(), NULL) != 1 ||
            crypto_decimalize(md, mdlen, y16, 16) != 0 ||
            crypto_pack_nibbles(y16, 16, 0, y, 8) != 0)
            goto out;
    } else {
        goto out;
    }
    rc = mk_from_y(imk, y, mk);
out:
    OPENSSL_cleanse(y, sizeof(y));
    OPENSSL_cleanse(md, sizeof(md));
    return rc;
}

int emv_session_key(const uint8_t mk[16], const uint8_t r[8], uint8_t sk[16])
{
    uint8_t a[8], b[8];

    memcpy(a, r, 8);
    memcpy(b, r, 8);
    a[2] = 0xF0;
    b[2] = 0x0F;
    if (crypto_ecb(CRYPTO_TDES, mk, 16, true, a, 8, sk) != 0 ||
        crypto_ecb(CRYPTO_TDES, mk, 16, true, b, 8, sk + 8) != 0)
        return -1;
    return 0;
}

int emv_ac_key(int cvn, const uint8_t mk[16], const uint8_t atc[2], const uint8_t un[4],
               uint8_t key[16])
{
    uint8_t r[8] = {0};

    switch (cvn) {
    case 10:
        memcpy(key, mk, 16);
        return 0;
    case 18:
    case 22:
    case 20:
    case 21:
        memcpy(r, atc, 2);
        return emv_session_key(mk, r, key);
    case 16:
    case 17:
        if (un == NULL)
            return -1;
        memcpy(r, atc, 2);
        memcpy(r + 4, un, 4);
        return emv_session_key(mk, r, key);
    }
    return -1;
}

int emv_arqc(int cvn, const uint8_t key[16], const uint8_t *data, size_t len, uint8_t out[8])
{
    uint8_t mac[16];
    size_t n = 0;

    if (!emv_cvn_supported(cvn) ||
        mac_compute(MAC_ISO9797_1_ALG3, key, 16, cvn == 10 ? 1 : 2, data, len, mac, &n) != 0)
        return -1;
    memcpy(out, mac, 8);
    return 0;
}

int emv_arpc1(const uint8_t key[16], const uint8_t arqc[8], const uint8_t arc[2], uint8_t out[8])
{
    uint8_t b[8] = {0};

    memcpy(b, arc, 2);
    crypto_xor(b, b, arqc, 8);
    return crypto_ecb(CRYPTO_TDES, key, 16, true, b, 8, out);
}

int emv_arpc2(const uint8_t key[16], const uint8_t arqc[8], const uint8_t csu[4],
              const uint8_t *prop, size_t proplen, uint8_t out[4])
{
    uint8_t buf[8 + 4 + 8], mac[16];
    size_t n = 0;

    if (proplen > 8 || (proplen > 0 && prop == NULL))
        return -1;
    memcpy(buf, arqc, 8);
    memcpy(buf + 8, csu, 4);
    if (proplen > 0)
        memcpy(buf + 12, prop, proplen);
    if (mac_compute(MAC_ISO9797_1_ALG3, key, 16, 2, buf, 12 + proplen, mac, &n) != 0)
        return -1;
    memcpy(out, mac, 4);
    return 0;
}

int emv_tags_set(struct emv_tags *t, uint32_t tag, const uint8_t *value, size_t len)
{
    static const struct {
        uint32_t tag;
        size_t len; /* 0: variable (IAD, 1..32) */
        size_t off;
    } map[] = {
        {0x9F02, 6, offsetof(struct emv_tags, amount)},
        {0x9F03, 6, offsetof(struct emv_tags, other)},
        {0x9F1A, 2, offsetof(struct emv_tags, country)},
        {0x95, 5, offsetof(struct emv_tags, tvr)},
        {0x5F2A, 2, offsetof(struct emv_tags, currency)},
        {0x9A, 3, offsetof(struct emv_tags, date)},
        {0x9C, 1, offsetof(struct emv_tags, type)},
        {0x9F37, 4, offsetof(struct emv_tags, un)},
        {0x82, 2, offsetof(struct emv_tags, aip)},
        {0x9F36, 2, offsetof(struct emv_tags, atc)},
        {0x9F26, 8, offsetof(struct emv_tags, arqc)},
        {0x9F10, 0, offsetof(struct emv_tags, iad)},
    };

    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        if (map[i].tag != tag)
            continue;
        if (map[i].len == 0 ? (len < 1 || len > 32) : len != map[i].len)
            return -1;
        memcpy((char *)t + map[i].off, &value, sizeof(value));
        if (tag == 0x9F10)
            t->iad_len = len;
        return 1;
    }
    return 0;
}

long emv_arqc_data(int cvn, const struct emv_tags *t, uint8_t *out, size_t cap)
{
    const struct {
        const uint8_t *p;
        size_t n;
    } parts[] = {
        {t->amount, 6}, {t->other, 6}, {t->country, 2}, {t->tvr, 5}, {t->currency, 2},
        {t->date, 3},   {t->type, 1},  {t->un, 4},      {t->aip, 2}, {t->atc, 2},
    };
    size_t k = 0;
    const uint8_t *extra;
    size_t extra_len;

    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
        if (parts[i].p == NULL || k + parts[i].n > cap)
            return -1;
        memcpy(out + k, parts[i].p, parts[i].n);
        k += parts[i].n;
    }
    if (t->iad == NULL)
        return -1;
    switch (cvn) {
    case 10:
        if (t->iad_len < 7)
            return -1;
        extra = t->iad + 3, extra_len = 4;
        break;
    case 18:
    case 22:
        extra = t->iad, extra_len = t->iad_len;
        break;
    case 16:
    case 20:
        if (t->iad_len < 8)
            return -1;
        extra = t->iad + 2, extra_len = 6;
        break;
    case 17:
    case 21:
        if (t->iad_len < 18)
            return -1;
        if (k + 14 > cap)
            return -1;
        memcpy(out + k, t->iad + 2, 6);
        k += 6;
        extra = t->iad + 10, extra_len = 8;
        break;
    default:
        return -1;
    }
    if (k + extra_len > cap)
        return -1;
    memcpy(out + k, extra, extra_len);
    return (long)(k + extra_len);
}

/* The ICC MK and the AC key of a request; 0 or -1. */
static int req_keys(const struct emv_auth_req *r, uint8_t mk[16], uint8_t key[16])
{
    if (emv_derive_icc_mk(r->mkd, r->imk, r->pan, r->pan_len, r->psn, mk) != 0)
        return -1;
    return emv_ac_key(r->cvn, mk, r->tags->atc, r->tags->un, key);
}

enum emv_status emv_verify_arqc(const struct emv_auth_req *r)
{
    uint8_t mk[16], key[16], data[128], calc[8];
    enum emv_status st = EMV_FORMAT_ERROR;
    long n;

    if (r == NULL || r->imk == NULL || r->imk_len != 16)
        return EMV_UNAVAILABLE;
    if (r->tags == NULL || r->tags->arqc == NULL || !emv_cvn_supported(r->cvn))
        return EMV_FORMAT_ERROR;
    n = emv_arqc_data(r->cvn, r->tags, data, sizeof(data));
    if (n < 0)
        return EMV_FORMAT_ERROR;
    if (req_keys(r, mk, key) == 0 && emv_arqc(r->cvn, key, data, (size_t)n, calc) == 0)
        st = CRYPTO_memcmp(calc, r->tags->arqc, 8) == 0 ? EMV_OK : EMV_BAD_ARQC;
    OPENSSL_cleanse(mk, sizeof(mk));
    OPENSSL_cleanse(key, sizeof(key));
    return st;
}

int emv_make_arpc(const struct emv_auth_req *r, const uint8_t *arc, const uint8_t *csu,
                  const uint8_t *prop, size_t proplen, uint8_t out[8], size_t *outlen)
{
    uint8_t mk[16], key[16];
    int rc = -1, method = emv_cvn_arpc_method(r->cvn);

    if (r->imk == NULL || r->imk_len != 16 || r->tags == NULL || r->tags->arqc == NULL ||
        method == 0 || req_keys(r, mk, key) != 0)
        goto out;
    if (method == 1 && arc != NULL) {
        /* CVN 10, 16, 17: ARPC under the ICC MK; 20, 21: under the session key */
        const uint8_t *k = (r->cvn == 20 || r->cvn == 21) ? key : mk;
        rc = emv_arpc1(k, r->tags->arqc, arc, out);
        *outlen = 8;
    } else if (method == 2 && csu != NULL) {
        rc = emv_arpc2(key, r->tags->arqc, csu, prop, proplen, out);
        *outlen = 4;
    }
out:
    OPENSSL_cleanse(mk, sizeof(mk));
    OPENSSL_cleanse(key, sizeof(key));
    return rc;
}

int emv_issuer_auth_data(const struct emv_auth_req *r, const uint8_t *arc, const uint8_t *csu,
                         const uint8_t *prop, size_t proplen, uint8_t out[16], size_t *outlen)
{
    uint8_t arpc[8];
    size_t n = 0;

    if (emv_make_arpc(r, arc, csu, prop, proplen, arpc, &n) != 0)
        return -1;
    memcpy(out, arpc, n);
    if (n == 8) {
        memcpy(out + 8, arc, 2);
        *outlen = 10;
    } else {
        memcpy(out + 4, csu, 4);
        if (proplen > 0)
            memcpy(out + 8, prop, proplen);
        *outlen = 8 + proplen;
    }
    return 0;
}

enum emv_status emv_atc_check(uint16_t atc, bool have_last, uint16_t last)
{
    return (!have_last || atc > last) ? EMV_OK : EMV_REPLAY;
}
