/*
 * keychg.c - 0800 key change of a link's ZPK (see keychg.h).
 */
#include "daemon/keychg.h"

#include "common/util.h"
#include "crypto/keyblock.h"
#include "crypto/keyx.h"
#include "daemon/cardchk.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>

#define KEYCHG_BLOCK_MAX 99 /* a subelement's value: 2-digit length */

const char *keychg_decide(const struct keyset *ks, const char *zpk_name, const char *zmk_name,
                          const struct iso_msg *m, struct keyset **out, char kcv_hex[7], char *err,
                          size_t errlen)
{
    const uint8_t *kp, *cp, *sp;
    size_t klen, clen, slen;
    char block[KEYCHG_BLOCK_MAX + 1], kcvtext[8];
    uint8_t kcv[3];
    enum keyblock_scheme scheme = KEYBLOCK_ECB;
    const char *rc;

    *out = NULL;
    kcv_hex[0] = '\0';
    err[0] = '\0';
    if (zpk_name == NULL || zpk_name[0] == '\0') {
        snprintf(err, errlen, "no zpk on this link");
        return "12";
    }
    if (zmk_name == NULL || zmk_name[0] == '\0' || ks == NULL) {
        snprintf(err, errlen, "no zmk for zpk %s", zpk_name);
        return "96";
    }
    if (keyset_get(ks, zmk_name, KS_ZMK, KS_U_KEY_ENCRYPT, err, errlen) == NULL)
        return "96";
    if (cardchk_find_se(m, KEYCHG_SE_SCHEME, &sp, &slen) == 1) {
        if (slen != 1 || (sp[0] != 'E' && sp[0] != 'V' && sp[0] != 'T')) {
            snprintf(err, errlen, "field 48 subelement 13: scheme not E, V or T");
            return "30";
        }
        scheme = sp[0] == 'E' ? KEYBLOCK_ECB : sp[0] == 'V' ? KEYBLOCK_VARIANT : KEYBLOCK_TR31;
    }
    if (cardchk_find_se(m, KEYCHG_SE_KEY, &kp, &klen) != 1 || klen == 0) {
        snprintf(err, errlen, "field 48 subelement 11 (the new key) missing");
        return "30";
    }
    int have_kcv = cardchk_find_se(m, KEYCHG_SE_KCV, &cp, &clen);
    if (have_kcv != 1 && scheme != KEYBLOCK_TR31) {
        snprintf(err, errlen, "field 48 subelement 12 (the KCV) missing");
        return "30";
    }
    memcpy(block, kp, klen);
    block[klen] = '\0';
    if (scheme != KEYBLOCK_TR31 &&
        (klen % 16 != 0 || strspn(block, "0123456789ABCDEFabcdef") != klen)) {
        snprintf(err, errlen, "field 48 subelement 11: not 16, 32 or 48 hex digits");
        rc = "30";
        goto out;
    }
    if (have_kcv == 1) {
        memcpy(kcvtext, cp, clen < sizeof(kcvtext) ? clen : sizeof(kcvtext) - 1);
        kcvtext[clen < sizeof(kcvtext) ? clen : sizeof(kcvtext) - 1] = '\0';
        if ((clen != 4 && clen != 6) ||
            util_hex_decode(kcvtext, kcv, sizeof(kcv)) != (long)clen / 2) {
            snprintf(err, errlen, "field 48 subelement 12: KCV not 4 or 6 hex digits");
            rc = "30";
            goto out;
        }
    }
    if (keyx_change(ks, zmk_name, zpk_name, scheme, block, have_kcv == 1 ? kcv : NULL,
                    have_kcv == 1 ? clen / 2 : 0, out, err, errlen) != 0) {
        rc = "63";
        goto out;
    }
    const struct ks_key *nk = keyset_find(*out, zpk_name);
    snprintf(kcv_hex, 7, "%02X%02X%02X", nk->kcv[0], nk->kcv[1], nk->kcv[2]);
    rc = "00";
out:
    OPENSSL_cleanse(block, sizeof(block));
    return rc;
}

int keychg_commit(struct keyset_holder *h, const struct cg_config *cfg, struct keyset *ns,
                  char *err, size_t errlen)
{
    uint8_t mk[KS_MASTER_LEN];
    char credpath[4400], e[256];
    const char *master = cardchk_master_path(cfg, credpath, sizeof(credpath));
    int rc = -1;

    if (master == NULL) {
        snprintf(err, errlen, "no master key to save the key store with");
    } else if (ks_master_load(master, mk, e, sizeof(e)) != 0) {
        snprintf(err, errlen, "master key: %s", e);
    } else if (keyset_save(ns, cfg->keys_file, mk, e, sizeof(e)) != 0) {
        snprintf(err, errlen, "cannot save %s: %s", cfg->keys_file, e);
    } else {
        rc = 0;
    }
    OPENSSL_cleanse(mk, sizeof(mk));
    if (rc != 0) {
        keyset_unref(ns);
        return -1;
    }
    keyset_holder_swap(h, ns);
    return 0;
}
