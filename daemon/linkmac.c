/*
 * linkmac.c - field 64/128 MACs on a link (see linkmac.h for which bytes).
 */
#include "daemon/linkmac.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>

#define LINKMAC_MAX 16 /* the longest MAC a dialect field may hold (CMAC) */

const char *linkmac_name(enum cg_mac m)
{
    switch (m) {
    case CG_MAC_X919:
        return "x919";
    case CG_MAC_ALG1:
        return "alg1";
    case CG_MAC_CMAC:
        return "cmac";
    default:
        return "none";
    }
}

static enum mac_alg alg_of(enum cg_mac m)
{
    switch (m) {
    case CG_MAC_ALG1:
        return MAC_ISO9797_1_ALG1;
    case CG_MAC_CMAC:
        return MAC_AES_CMAC;
    default:
        return MAC_ISO9797_1_ALG3;
    }
}

size_t linkmac_wire_len(const struct iso_dialect *d, int field)
{
    if (field < 2 || field > ISO_MAX_FIELD)
        return 0;
    const struct iso_fdef *fd = &d->f[field];
    if (!fd->defined || fd->type != ISO_T_B || fd->lenkind != ISO_L_FIXED || fd->max < 4 ||
        fd->max > LINKMAC_MAX)
        return 0;
    return fd->enc == ISO_E_BINARY ? fd->max : 2 * (size_t)fd->max;
}

int linkmac_dialect_check(const struct iso_dialect *d, char *err, size_t cap)
{
    static const int fields[] = {64, 128};
    for (size_t i = 0; i < 2; i++) {
        if (linkmac_wire_len(d, fields[i]) == 0) {
            snprintf(err, cap,
                     "dialect %s cannot carry a MAC: field %d must be fixed-length binary of "
                     "4..16 bytes",
                     d->name, fields[i]);
            return -1;
        }
    }
    return 0;
}

int linkmac_key_check(const struct keyset *ks, const struct cg_listener_conf *c, char *err,
                      size_t cap)
{
    char e[160];
    if (c->mac == CG_MAC_NONE)
        return 0;
    const struct ks_key *k = keyset_get(ks, c->mak, KS_MAK, KS_U_MAC, e, sizeof(e));
    if (k == NULL) {
        snprintf(err, cap, "[listener %s] mak: %s", c->name, e);
        return -1;
    }
    bool ok;
    switch (c->mac) {
    case CG_MAC_X919:
        ok = k->alg == KS_ALG_TDES && k->len == 16;
        break;
    case CG_MAC_ALG1:
        ok = k->alg == KS_ALG_TDES;
        break;
    default:
        ok = k->alg == KS_ALG_AES;
        break;
    }
    if (!ok) {
        snprintf(err, cap, "[listener %s] mak %s: a %s MAC needs %s", c->name, c->mak,
                 linkmac_name(c->mac),
                 c->mac == CG_MAC_X919   ? "a double-length (16-byte) TDES key"
                 : c->mac == CG_MAC_ALG1 ? "a TDES key"
                                         : "an AES key");
        return -1;
    }
    return 0;
}

int linkmac_field(const struct iso_msg *m)
{
    for (int n = 65; n < 128; n++)
        if (iso_has(m, n))
            return 128;
    return 64;
}

/* Does m carry any field numbered above n? */
static bool has_after(const struct iso_msg *m, int n)
{
    for (int k = n + 1; k <= ISO_MAX_FIELD; k++)
        if (iso_has(m, k))
            return true;
    return false;
}

enum mac_status linkmac_verify(enum cg_mac mac, int pad, const struct iso_dialect *d,
                               const struct ks_key *mak, const uint8_t *msg, size_t len,
                               const struct iso_msg *m, const char **why)
{
    int field = iso_has(m, 128) ? 128 : 64;
    const struct iso_view *v = iso_get(m, field);
    size_t wl = linkmac_wire_len(d, field);

    *why = "";
    if (mak == NULL) {
        *why = "no MAC key";
        return MAC_UNAVAILABLE;
    }
    if (v == NULL) {
        *why = "no MAC (field 64/128 absent)";
        return MAC_BAD;
    }
    if (field == 128 && iso_has(m, 64)) {
        *why = "both field 64 and field 128";
        return MAC_BAD;
    }
    if (field == 64 && linkmac_field(m) == 128) {
        *why = "MAC in field 64 of a message with a secondary bitmap (must be 128)";
        return MAC_BAD;
    }
    if (has_after(m, field)) {
        *why = "fields after the MAC field";
        return MAC_BAD;
    }
    if (wl == 0 || wl > len || v->len < 4) {
        *why = "MAC field not fixed binary in the dialect";
        return MAC_BAD;
    }
    enum mac_status st =
        mac_verify(alg_of(mac), mak->key, mak->len, pad, msg, len - wl, v->p, v->len);
    if (st == MAC_BAD)
        *why = "MAC does not verify";
    else if (st == MAC_UNAVAILABLE)
        *why = "MAC key unusable";
    return st;
}

int linkmac_encode(enum cg_mac mac, int pad, const struct iso_dialect *d, const struct ks_key *mak,
                   struct iso_msg *m, uint8_t *out, size_t cap, size_t *outlen, struct iso_err *err)
{
    static const uint8_t zeros[LINKMAC_MAX];
    uint8_t out_mac[16];
    size_t maclen = 0, len;

    iso_clear(m, 64);
    iso_clear(m, 128);
    int field = linkmac_field(m);
    size_t wl = linkmac_wire_len(d, field);
    memset(err, 0, sizeof(*err));
    if (wl == 0) {
        snprintf(err->msg, sizeof(err->msg), "field %d cannot carry a MAC in dialect %s", field,
                 d->name);
        return -1;
    }
    if (mak == NULL) {
        snprintf(err->msg, sizeof(err->msg), "no MAC key");
        return -1;
    }
    size_t flen = d->f[field].max;
    /* the MAC field's bit set and its bytes in place: everything before them is MAC'd */
    if (iso_set(m, field, zeros, flen) != 0 || iso_encode(d, m, out, cap, &len, err) != 0)
        return -1;
    if (mac_compute(alg_of(mac), mak->key, mak->len, pad, out, len - wl, out_mac, &maclen) != 0 ||
        maclen < flen) {
        snprintf(err->msg, sizeof(err->msg), "MAC computation failed (key %s)", mak->name);
        OPENSSL_cleanse(out_mac, sizeof(out_mac));
        return -1;
    }
    int rc = iso_set_copy(m, field, out_mac, flen);
    if (rc == 0 && d->f[field].enc == ISO_E_BINARY) {
        /* the field is the message's last wl bytes, as they are on the wire */
        memcpy(out + len - wl, out_mac, flen);
        *outlen = len;
    } else if (rc == 0) {
        rc = iso_encode(d, m, out, cap, outlen, err); /* hex or EBCDIC-coded MAC field */
        if (rc == 0 && *outlen != len) {
            snprintf(err->msg, sizeof(err->msg), "MAC field changed the message length");
            rc = -1;
        }
    }
    OPENSSL_cleanse(out_mac, sizeof(out_mac));
    return rc;
}
