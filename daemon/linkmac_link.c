/*
 * linkmac_link.c - link MACs on a link: the listener's settings, the
 * server's working keys, metrics and logs (see linkmac.h).  Apart from
 * linkmac.c so that programs without a server (cardgate-sim) can MAC
 * messages with linkmac.c alone.
 */
#include "daemon/linkmac.h"

#include "common/log.h"
#include "daemon/metrics.h"
#include "daemon/server.h"

#include <stdio.h>
#include <string.h>

/* The listener's MAC key from the server's working keys (*ks holds the reference). */
static const struct ks_key *link_mak(struct link *l, struct keyset **ks)
{
    char e[160];
    const struct server_hooks *h = &l->srv->hooks;

    *ks = h->keys != NULL ? h->keys(h->arg) : NULL;
    if (*ks == NULL)
        return NULL;
    const struct ks_key *k = keyset_get(*ks, l->lsn->conf.mak, KS_MAK, KS_U_MAC, e, sizeof(e));
    if (k == NULL)
        log_warnx_p(l->prefix, "MAC key: %s", e);
    return k;
}

bool linkmac_link_verify(struct link *l, const struct link_frame *f)
{
    const struct cg_listener_conf *c = &l->lsn->conf;
    struct keyset *ks;
    const char *why;
    char stan[8] = "-";

    if (c->mac == CG_MAC_NONE)
        return true;
    const struct ks_key *mak = link_mak(l, &ks);
    enum mac_status st =
        linkmac_verify(c->mac, c->mac_padding, l->lsn->dialect, mak, f->msg, f->len, f->iso, &why);
    if (ks != NULL)
        keyset_unref(ks);
    if (st == MAC_OK) {
        cg_metrics.mac_verified++;
        return true;
    }
    cg_metrics.mac_failures++;
    const struct iso_view *v = iso_get(f->iso, 11);
    if (v != NULL && v->len < sizeof(stan)) {
        memcpy(stan, v->p, v->len);
        stan[v->len] = '\0';
    }
    log_warnx_p(l->prefix, "%.4s stan %s: %s (%s MAC %s): refused with %s", f->iso->mti, stan,
                mac_status_name(st), linkmac_name(c->mac), why, c->mac_failure_code);
    server_event(l->srv, l->prefix, "mac-failure", "%.4s stan %s: %s", f->iso->mti, stan, why);
    return false;
}

int linkmac_link_encode(struct link *l, struct iso_msg *m, uint8_t *out, size_t cap, size_t *outlen,
                        struct iso_err *err)
{
    const struct cg_listener_conf *c = &l->lsn->conf;
    struct keyset *ks;

    if (c->mac == CG_MAC_NONE)
        return iso_encode(l->lsn->dialect, m, out, cap, outlen, err);
    const struct ks_key *mak = link_mak(l, &ks);
    int rc = linkmac_encode(c->mac, c->mac_padding, l->lsn->dialect, mak, m, out, cap, outlen, err);
    if (ks != NULL)
        keyset_unref(ks);
    if (rc == 0)
        cg_metrics.mac_generated++;
    else
        cg_metrics.mac_sign_errors++;
    return rc;
}
