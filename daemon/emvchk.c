/*
 * emvchk.c - ARQC verification and the answer's ARPC (see emvchk.h).
 */
#include "daemon/emvchk.h"

#include "common/log.h"
#include "daemon/metrics.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>

int emvchk_cvn(const uint8_t *iad, size_t len, const char *pan)
{
    bool visa;

    if (iad == NULL || len < 3)
        return -1;
    if (pan != NULL && pan[0] == '4')
        visa = true;
    else if (pan != NULL && (pan[0] == '5' || pan[0] == '2'))
        visa = false;
    else
        visa = iad[0] == len - 1;
    return visa ? iad[2] : iad[1];
}

/* The IMK-AC named in cfg, or NULL (err says why). */
static const struct ks_key *imk_get(const struct keyset *ks, const struct cg_config *cfg, char *err,
                                    size_t cap)
{
    if (ks == NULL || cfg->keys_imk_ac[0] == '\0') {
        snprintf(err, cap, "no [keys] imk_ac");
        return NULL;
    }
    const struct ks_key *k = keyset_get(ks, cfg->keys_imk_ac, KS_IMK_AC, KS_U_ARQC, err, cap);
    if (k != NULL && (k->alg != KS_ALG_TDES || k->len != 16)) {
        snprintf(err, cap, "imk_ac %s is not a double-length TDES key", cfg->keys_imk_ac);
        return NULL;
    }
    return k;
}

int emvchk_key_check(const struct keyset *ks, const struct cg_config *cfg, char *err, size_t cap)
{
    if (cfg->keys_imk_ac[0] == '\0')
        return 0;
    return imk_get(ks, cfg, err, cap) != NULL ? 0 : -1;
}

/* The PSN as 2 digits: 5F34 (1 byte BCD), else field 23 (3 digits), else "00". */
static int find_psn(const struct iso_msg *m, const uint8_t *p5f34, size_t len, char psn[3])
{
    if (p5f34 != NULL) {
        if (len != 1 || (p5f34[0] >> 4) > 9 || (p5f34[0] & 0xF) > 9)
            return -1;
        psn[0] = (char)('0' + (p5f34[0] >> 4));
        psn[1] = (char)('0' + (p5f34[0] & 0xF));
    } else {
        const struct iso_view *v = iso_get(m, 23);
        if (v != NULL && v->len == 3) {
            psn[0] = (char)v->p[1];
            psn[1] = (char)v->p[2];
        } else {
            psn[0] = psn[1] = '0';
        }
    }
    psn[2] = '\0';
    return 0;
}

/* What emv.h needs for one card: the CVN, the IMK-AC, PAN, PSN and tags. */
static struct emv_auth_req auth_req(int cvn, const struct ks_key *imk, const char *pan,
                                    const char *psn, const struct cg_config *cfg,
                                    const struct emv_tags *tags)
{
    return (struct emv_auth_req){
        .cvn = cvn,
        .imk = imk->key,
        .imk_len = imk->len,
        .pan = pan,
        .pan_len = strlen(pan),
        .psn = psn,
        .mkd = (enum emv_mkd)cfg->imk_ac_derivation,
        .tags = tags,
    };
}

static const char *counted(enum metrics_arqc what, const char *word)
{
    cg_metrics.arqc[what]++;
    return word;
}

const char *emvchk_arqc(const struct keyset *ks, const struct cg_config *cfg,
                        const struct iso_msg *m, const char *pan, struct emvchk_req *e, int *atc)
{
    const struct iso_view *f55 = iso_get(m, 55);
    struct emv_tags tags;
    struct iso_tlv t;
    struct iso_err ierr;
    const uint8_t *p5f34 = NULL;
    size_t len5f34 = 0, pos = 0;
    bool malformed = false;
    char err[160];
    int r;

    memset(e, 0, sizeof(*e));
    memset(&tags, 0, sizeof(tags));
    *atc = -1;
    if (f55 == NULL)
        return "absent";
    while ((r = iso_tlv_next(f55->p, f55->len, &pos, &t, &ierr)) == 1) {
        if (t.tag == 0x5F34) {
            p5f34 = t.v;
            len5f34 = t.len;
        } else if (emv_tags_set(&tags, t.tag, t.v, t.len) < 0) {
            malformed = true;
        }
    }
    if (r < 0)
        malformed = true;
    if (tags.arqc == NULL && !malformed)
        return "absent"; /* no cryptogram to check */
    if (malformed || tags.atc == NULL || tags.iad == NULL || pan[0] == '\0' ||
        find_psn(m, p5f34, len5f34, e->psn) != 0)
        return counted(MARQC_FORMAT, "bad");
    *atc = (tags.atc[0] << 8) | tags.atc[1];
    int cvn = emvchk_cvn(tags.iad, tags.iad_len, pan);
    if (!emv_cvn_supported(cvn)) {
        *atc = -1;
        log_debug("chip request with cryptogram version %d: not verified (unsupported)", cvn);
        return counted(MARQC_UNSUPPORTED, "absent");
    }
    const struct ks_key *imk = imk_get(ks, cfg, err, sizeof(err));
    if (imk == NULL) {
        *atc = -1;
        if (cfg->keys_imk_ac[0] != '\0')
            log_warnx("ARQC not verified: %s", err);
        return counted(MARQC_UNAVAILABLE, "absent");
    }
    struct emv_auth_req req = auth_req(cvn, imk, pan, e->psn, cfg, &tags);
    switch (emv_verify_arqc(&req)) {
    case EMV_OK:
        e->verified = true;
        e->cvn = cvn;
        memcpy(e->arqc, tags.arqc, 8);
        memcpy(e->atc, tags.atc, 2);
        if (tags.un != NULL)
            memcpy(e->un, tags.un, 4);
        return counted(MARQC_OK, "ok");
    case EMV_BAD_ARQC:
        return counted(MARQC_BAD, "bad");
    case EMV_UNAVAILABLE:
        *atc = -1;
        return counted(MARQC_UNAVAILABLE, "absent");
    default:
        return counted(MARQC_FORMAT, "bad");
    }
}

long emvchk_answer_f55(const struct keyset *ks, const struct cg_config *cfg,
                       const struct emvchk_req *e, const char *pan, const char *rc, uint8_t *out,
                       size_t cap)
{
    static const uint8_t csu_ok[4] = {0x00, 0x80, 0x00, 0x00}, csu_no[4] = {0, 0, 0, 0};
    uint8_t iad[16];
    size_t n = 0;
    char err[160];

    if (!e->verified)
        return 0;
    const struct ks_key *imk = imk_get(ks, cfg, err, sizeof(err));
    if (imk == NULL || strlen(rc) != 2)
        return -1;
    struct emv_tags tags = {.arqc = e->arqc, .atc = e->atc, .un = e->un};
    struct emv_auth_req req = auth_req(e->cvn, imk, pan, e->psn, cfg, &tags);
    bool approve = strcmp(rc, "00") == 0 || strcmp(rc, "10") == 0;
    if (emv_issuer_auth_data(&req, (const uint8_t *)rc, approve ? csu_ok : csu_no, NULL, 0, iad,
                             &n) != 0)
        return -1;
    return iso_tlv_put(0x91, iad, n, out, cap);
}
