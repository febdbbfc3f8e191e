/*
 * cardchk.c - card checks with the key store's keys (see cardchk.h).
 */
#include "daemon/cardchk.h"

#include "common/log.h"
#include "crypto/cvv.h"
#include "daemon/emvchk.h"
#include "daemon/linkmac.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *cardchk_master_path(const struct cg_config *cfg, char *buf, size_t cap)
{
    if (cfg->master_key_file[0] != '\0')
        return cfg->master_key_file;
    /* a systemd credential: $CREDENTIALS_DIRECTORY/NAME */
    const char *dir = getenv("CREDENTIALS_DIRECTORY");
    if (dir == NULL || dir[0] == '\0') {
        log_warnx("keys: master_key_credential %s: $CREDENTIALS_DIRECTORY is not set",
                  cfg->master_key_credential);
        return NULL;
    }
    int n = snprintf(buf, cap, "%s/%s", dir, cfg->master_key_credential);
    if (n < 0 || (size_t)n >= cap) {
        log_warnx("keys: $CREDENTIALS_DIRECTORY/%s: path too long", cfg->master_key_credential);
        return NULL;
    }
    return buf;
}

/* A key cfg names at path:line must be in ks with this type and usage. */
static int name_check(const struct keyset *ks, const struct cg_config *cfg, unsigned line,
                      const char *what, const char *name, enum ks_type type, enum ks_usage usage,
                      char *err, size_t errlen)
{
    char kerr[160];
    const struct ks_key *k;

    if (name[0] == '\0')
        return 0;
    k = keyset_get(ks, name, type, usage, kerr, sizeof(kerr));
    if (k == NULL) {
        snprintf(err, errlen, "%s:%u: key '%s': %s (key store %s)", cfg->path, line, what, kerr,
                 cfg->keys_file);
        return -1;
    }
    if (type == KS_PVK && k->alg != KS_ALG_TDES) {
        snprintf(err, errlen, "%s:%u: key '%s': %s is not a TDES key", cfg->path, line, what, name);
        return -1;
    }
    return 0;
}

int cardchk_keys_open(const struct cg_config *cfg, struct keyset **out, char *err, size_t errlen)
{
    uint8_t mk[KS_MASTER_LEN];
    char e[256];
    struct keyset *ks;

    *out = NULL;
    if (cfg->keys_file[0] == '\0')
        return 1;
    char credpath[4400];
    const char *master = cardchk_master_path(cfg, credpath, sizeof(credpath));
    if (master == NULL) {
        snprintf(err, errlen, "no master key (see above)");
        return -1;
    }
    if (crypto_init(e, sizeof(e)) != 0) {
        snprintf(err, errlen, "%s", e);
        return -1;
    }
    if (ks_master_load(master, mk, e, sizeof(e)) != 0) {
        OPENSSL_cleanse(mk, sizeof(mk));
        snprintf(err, errlen, "master key: %s", e);
        return -1;
    }
    ks = keyset_load(cfg->keys_file, mk, e, sizeof(e));
    OPENSSL_cleanse(mk, sizeof(mk));
    if (ks == NULL) {
        snprintf(err, errlen, "%s: %s", cfg->keys_file, e);
        return -1;
    }
    if (cfg->keys_cvk[0] != '\0' &&
        keyset_get(ks, cfg->keys_cvk, KS_CVK, KS_U_CVV, e, sizeof(e)) == NULL) {
        snprintf(err, errlen, "%s: [keys] cvk: %s", cfg->keys_file, e);
        keyset_unref(ks);
        return -1;
    }
    int bad = name_check(ks, cfg, cfg->keys_pvk_line, "pvk", cfg->keys_pvk, KS_PVK, KS_U_PIN_VERIFY,
                         err, errlen);
    for (unsigned i = 0; bad == 0 && i < cfg->nlisteners; i++) {
        const struct cg_listener_conf *l = &cfg->listeners[i];
        bad =
            name_check(ks, cfg, l->zpk_line, "zpk", l->zpk, KS_ZPK, KS_U_PIN_ENCRYPT, err, errlen);
        if (bad == 0)
            bad = name_check(ks, cfg, l->zmk_line, "zmk", l->zmk, KS_ZMK, KS_U_KEY_ENCRYPT, err,
                             errlen);
    }
    for (unsigned i = 0; bad == 0 && i <= cfg->nlisteners; i++) {
        /* every listener's MAC key, then the IMK-AC: present, right type and algorithm */
        char me[256];
        int mbad = i < cfg->nlisteners ? linkmac_key_check(ks, &cfg->listeners[i], me, sizeof(me))
                                       : emvchk_key_check(ks, cfg, me, sizeof(me));
        if (mbad != 0) {
            snprintf(err, errlen, "%s: %s", cfg->keys_file, me);
            bad = -1;
        }
    }
    if (bad != 0) {
        keyset_unref(ks);
        return -1;
    }
    *out = ks;
    return 0;
}

int cardchk_keys_load(struct keyset_holder *h, const struct cg_config *cfg)
{
    char err[600];
    struct keyset *ks;
    int rc = cardchk_keys_open(cfg, &ks, err, sizeof(err));

    if (rc != 0) {
        if (rc < 0)
            log_warnx("keys: %s", err);
        return rc;
    }
    log_info("keys: %zu key%s loaded from %s", ks->n, ks->n == 1 ? "" : "s", cfg->keys_file);
    keyset_holder_swap(h, ks);
    return 0;
}

/* The CVK named cvk_name, or NULL (logged: the load checked it, so a miss is a bug). */
static const struct ks_key *cvk_get(const struct keyset *ks, const char *cvk_name)
{
    char err[128];
    const struct ks_key *cvk = keyset_get(ks, cvk_name, KS_CVK, KS_U_CVV, err, sizeof(err));
    if (cvk == NULL)
        log_warnx("card verification value not checked: %s", err);
    return cvk;
}

/* auth_request's word for a cvv_status. */
static const char *cvv_word(enum cvv_status st)
{
    switch (st) {
    case CVV_OK:
        return "ok";
    case CVV_UNAVAILABLE:
        return "absent";
    default:
        return "wrong";
    }
}

static bool all_digits(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
    }
    return true;
}

int cardchk_find_se(const struct iso_msg *m, const char *tag, const uint8_t **val, size_t *len)
{
    const struct iso_view *v = iso_get(m, 48);
    size_t off = 0;

    *val = NULL;
    *len = 0;
    if (v == NULL)
        return 0;
    while (off + 4 <= v->len) {
        const uint8_t *p = v->p + off;
        if (!all_digits(p, 4))
            return 0;
        size_t n = (size_t)(p[2] - '0') * 10 + (size_t)(p[3] - '0');
        if (off + 4 + n > v->len)
            return 0;
        if (p[0] == (uint8_t)tag[0] && p[1] == (uint8_t)tag[1]) {
            *val = p + 4;
            *len = n;
            return 1;
        }
        off += 4 + n;
    }
    return 0;
}

int cardchk_find_cvv2(const struct iso_msg *m, char out[4])
{
    const uint8_t *p;
    size_t len;

    out[0] = '\0';
    if (cardchk_find_se(m, "92", &p, &len) == 0)
        return 0;
    if (len != 3 || !all_digits(p, 3))
        return -1;
    memcpy(out, p, 3);
    out[3] = '\0';
    return 1;
}

const char *cardchk_cvv2(const struct keyset *ks, const char *cvk_name, const struct iso_msg *m,
                         const char *pan, const char *expiry)
{
    char value[4];
    const struct ks_key *cvk;

    if (ks == NULL || cvk_name == NULL || cvk_name[0] == '\0')
        return "absent";
    int found = cardchk_find_cvv2(m, value);
    if (found == 0)
        return "absent";
    if (found < 0 || pan[0] == '\0' || strlen(expiry) != 4)
        return "wrong";
    cvk = cvk_get(ks, cvk_name);
    if (cvk == NULL) {
        OPENSSL_cleanse(value, sizeof(value));
        return "absent";
    }
    enum cvv_status st =
        cvv_verify(CVV_CVV2, cvk->key, cvk->len, pan, strlen(pan), expiry, NULL, value);
    OPENSSL_cleanse(value, sizeof(value));
    return cvv_word(st);
}

const char *cardchk_cvv_track2(const struct keyset *ks, const char *cvk_name, int cvv_pos,
                               const struct iso_msg *m)
{
    const struct iso_view *t2 = iso_get(m, 35), *f22 = iso_get(m, 22);
    enum cvv_kind kind;

    if (ks == NULL || cvk_name == NULL || cvk_name[0] == '\0' || cvv_pos < 0 || t2 == NULL ||
        f22 == NULL || f22->len < 2)
        return "absent";
    if (memcmp(f22->p, "05", 2) == 0 || memcmp(f22->p, "07", 2) == 0)
        kind = CVV_ICVV;
    else if (memcmp(f22->p, "02", 2) == 0 || memcmp(f22->p, "90", 2) == 0 ||
             memcmp(f22->p, "80", 2) == 0)
        kind = CVV_MAGSTRIPE;
    else
        return "absent";
    const struct ks_key *cvk = cvk_get(ks, cvk_name);
    if (cvk == NULL)
        return "absent";
    return cvv_word(
        cvv_verify_track2(kind, cvk->key, cvk->len, (const char *)t2->p, t2->len, (size_t)cvv_pos));
}
