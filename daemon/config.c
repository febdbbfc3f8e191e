/*
 * config.c - cardgated.conf into struct cg_config (see config.h and
 * conf/cardgated.conf.example).  All validation happens here, so the daemon
 * only ever sees a complete, consistent configuration.
 */
#include "daemon/config.h"

#include "common/log.h"
#include "common/util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define US_MS  1000LL
#define US_S   1000000LL
#define US_MIN (60 * US_S)
#define US_H   (60 * US_MIN)

void cg_config_defaults(struct cg_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->log_level = LOG_LVL_INFO;
    cfg->ready_wait_us = 10 * US_S;
    cfg->db_pool_size = 4;
    cfg->db_max_batch = 256;
    cfg->db_connect_timeout_us = 5 * US_S;
    cfg->db_reconnect_min_us = 100 * US_MS;
    cfg->db_reconnect_max_us = 5 * US_S;
    memcpy(cfg->standin_response, "91", 3);
    cfg->standin_refresh_us = 60 * US_S;
    cfg->standin_max_cards = 1000000;
    cfg->standin_max_pending = 100000;
    cfg->cvv_position = -1;
    cfg->imk_ac_derivation = 1; /* EMV_MKD_A */
    cfg->pvki = 1;
    memcpy(cfg->pin_dectab, "0123456789012345", 17);
    snprintf(cfg->audit_dir, sizeof(cfg->audit_dir), "/var/lib/cardgate/audit");
    cfg->audit_segment_size = 64ULL << 20;
    cfg->audit_checkpoint_interval_us = 60 * US_S;
    cfg->audit_fsync = 1; /* approval */
    cfg->max_requests = 8192;
}

static void listener_defaults(struct cg_listener_conf *l)
{
    memset(l, 0, sizeof(*l));
    snprintf(l->dialect, sizeof(l->dialect), "ascii87");
    l->framing = CG_FRAMING_LEN2;
    l->budget_us = 250 * US_MS;
    l->max_frame = 8192;
    l->idle_timeout_us = 0;
    l->echo_interval_us = 0;
    l->max_outstanding = 1024;
    l->write_buffer_max = 1 << 20;
    l->require_signon = false;
    l->tls_verify = CG_TLS_VERIFY_NONE;
    l->mac = CG_MAC_NONE;
    l->mac_padding = 1;
    memcpy(l->mac_failure_code, "63", 3);
}

static int copy_str(const struct conf_file *f, struct conf_section *s, const char *key, char *dst,
                    size_t cap, struct conf_err *err);

/* The MAC keys of a listener: mac, mak, mac_padding, mac_failure_code. */
static int load_listener_mac(const struct conf_file *f, struct conf_section *s,
                             struct cg_listener_conf *l, struct conf_err *err)
{
    static const char *const macs[] = {"none", "x919", "alg1", "cmac", NULL};
    int mac = CG_MAC_NONE;
    int64_t pad = 1;
    char rc[8] = "";

    if (conf_get_enum(f, s, "mac", macs, &mac, err) != 0 ||
        copy_str(f, s, "mak", l->mak, sizeof(l->mak), err) != 0 ||
        conf_get_int(f, s, "mac_padding", 1, 2, &pad, err) != 0 ||
        copy_str(f, s, "mac_failure_code", rc, sizeof(rc), err) != 0)
        return -1;
    l->mac = (enum cg_mac)mac;
    l->mac_padding = (int)pad;
    if (rc[0] != '\0') {
        if (strlen(rc) != 2 || !((rc[0] >= '0' && rc[0] <= '9') || (rc[0] >= 'A' && rc[0] <= 'Z')))
            return conf_fail(f, conf_kv_get(s, "mac_failure_code")->line, err,
                             "key 'mac_failure_code': '%s' is not a two-character response code",
                             rc);
        memcpy(l->mac_failure_code, rc, 3);
    }
    if (l->mac != CG_MAC_NONE && l->mak[0] == '\0')
        return conf_fail(f, s->line, err, "mac = %s needs mak (the MAC key's name)", macs[mac]);
    if (l->mac == CG_MAC_NONE && l->mak[0] != '\0')
        return conf_fail(f, conf_kv_get(s, "mak")->line, err, "mak given but mac is none");
    return 0;
}

static int copy_str(const struct conf_file *f, struct conf_section *s, const char *key, char *dst,
                    size_t cap, struct conf_err *err)
{
    const char *v = NULL;
    if (conf_get_str(f, s, key, &v, err) != 0)
        return -1;
    if (v == NULL)
        return 0;
    if (strlen(v) >= cap) {
        struct conf_kv *kv = conf_kv_get(s, key);
        return conf_fail(f, kv->line, err, "key '%s': longer than %zu characters", key, cap - 1);
    }
    memcpy(dst, v, strlen(v) + 1);
    return 0;
}

/* A key-store name key: copied like copy_str, its line kept in *line. */
static int copy_key_name(const struct conf_file *f, struct conf_section *s, const char *key,
                         char *dst, size_t cap, unsigned *line, struct conf_err *err)
{
    struct conf_kv *kv = conf_kv_get(s, key);
    if (copy_str(f, s, key, dst, cap, err) != 0)
        return -1;
    if (kv == NULL)
        return 0;
    *line = kv->line;
    if (dst[0] == '\0' || strpbrk(dst, " \t") != NULL)
        return conf_fail(f, kv->line, err, "key '%s': '%s' is not a key-store name", key, dst);
    return 0;
}

/* "10.0.0.0/8", "127.0.0.1", "::1", "fd00::/8" */
static int parse_allow(const char *text, struct cg_allow *a)
{
    char buf[128];
    char *slash;
    size_t n = strlen(text);
    if (n == 0 || n >= sizeof(buf))
        return -1;
    memcpy(buf, text, n + 1);
    slash = strchr(buf, '/');
    if (slash != NULL)
        *slash = '\0';
    memset(a, 0, sizeof(*a));
    if (inet_pton(AF_INET, buf, a->addr) == 1) {
        a->family = AF_INET;
        a->prefix = 32;
    } else if (inet_pton(AF_INET6, buf, a->addr) == 1) {
        a->family = AF_INET6;
        a->prefix = 128;
    } else {
        return -1;
    }
    if (slash != NULL) {
        char *end;
        long p = strtol(slash + 1, &end, 10);
        if (*end != '\0' || slash[1] == '\0' || p < 0 || p > (long)a->prefix)
            return -1;
        a->prefix = (unsigned)p;
    }
    return 0;
}

bool cg_allow_match(const struct cg_listener_conf *l, int family, const uint8_t *addr)
{
    if (l->nallow == 0)
        return true;
    for (unsigned i = 0; i < l->nallow; i++) {
        const struct cg_allow *a = &l->allow[i];
        if (a->family != family)
            continue;
        unsigned full = a->prefix / 8, rest = a->prefix % 8;
        if (memcmp(a->addr, addr, full) != 0)
            continue;
        if (rest != 0) {
            uint8_t mask = (uint8_t)(0xFF << (8 - rest));
            if ((a->addr[full] & mask) != (addr[full] & mask))
                continue;
        }
        return true;
    }
    return false;
}

static int load_allow(const struct conf_file *f, struct conf_section *s, struct cg_listener_conf *l,
                      struct conf_err *err)
{
    struct conf_kv *kv = conf_kv_get(s, "allow");
    char buf[CONF_MAX_LINE + 1];
    char *save = NULL;
    if (kv == NULL)
        return 0;
    snprintf(buf, sizeof(buf), "%s", kv->val);
    for (char *tok = strtok_r(buf, ", \t", &save); tok; tok = strtok_r(NULL, ", \t", &save)) {
        if (l->nallow == CG_MAX_ALLOW)
            return conf_fail(f, kv->line, err, "key 'allow': more than %d entries", CG_MAX_ALLOW);
        if (parse_allow(tok, &l->allow[l->nallow]) != 0)
            return conf_fail(f, kv->line, err,
                             "key 'allow': '%s' is not an address or prefix (10.0.0.0/8, ::1)",
                             tok);
        l->nallow++;
    }
    if (l->nallow == 0)
        return conf_fail(f, kv->line, err, "key 'allow': empty list (omit the key to allow any)");
    return 0;
}

/* The per-kind budgets, in the order of cg_listener_conf.budget_kind_us. */
static const char *const budget_kinds[] = {"budget_authorization", "budget_financial",
                                           "budget_advice", "budget_reversal"};

static int load_kind_budgets(const struct conf_file *f, struct conf_section *s,
                             struct cg_listener_conf *l, struct conf_err *err)
{
    for (size_t i = 0; i < UTIL_NELEM(budget_kinds); i++)
        if (conf_get_duration_us(f, s, budget_kinds[i], 1 * US_MS, 60 * US_S, &l->budget_kind_us[i],
                                 err) != 0)
            return -1;
    return 0;
}

int64_t cg_listener_budget(const struct cg_listener_conf *l, const char *mti)
{
    int k = -1;
    if (mti[1] == '4')
        k = 3;
    else if (mti[2] == '2')
        k = 2;
    else if (mti[1] == '1')
        k = 0;
    else if (mti[1] == '2')
        k = 1;
    return k >= 0 && l->budget_kind_us[k] > 0 ? l->budget_kind_us[k] : l->budget_us;
}

int64_t cg_listener_budget_max(const struct cg_listener_conf *l)
{
    int64_t m = l->budget_us;
    for (size_t i = 0; i < UTIL_NELEM(budget_kinds); i++)
        if (l->budget_kind_us[i] > m)
            m = l->budget_kind_us[i];
    return m;
}

static int load_listener(const struct conf_file *f, struct conf_section *s,
                         struct cg_listener_conf *l, struct conf_err *err)
{
    static const char *const framings[] = {"len2", "len4ascii", "len2bcd", NULL};
    static const char *const headers[] = {"none", "tpdu", NULL};
    static const char *const verifies[] = {"none", "optional", "require", NULL};
    int framing = CG_FRAMING_LEN2, header = 0, verify = 0;
    int64_t header_len = -1;
    uint64_t max_out = 1024;

    listener_defaults(l);
    if (s->arg == NULL)
        return conf_fail(f, s->line, err, "a listener needs a name: [listener NAME]");
    if (strlen(s->arg) >= sizeof(l->name))
        return conf_fail(f, s->line, err, "listener name longer than %zu characters",
                         sizeof(l->name) - 1);
    memcpy(l->name, s->arg, strlen(s->arg) + 1);

    l->line = s->line;
    l->have_address = conf_kv_get(s, "address") != NULL;
    if (conf_get_addr(f, s, "address", &l->address, err) != 0 ||
        copy_str(f, s, "dialect", l->dialect, sizeof(l->dialect), err) != 0 ||
        copy_str(f, s, "dialect_file", l->dialect_file, sizeof(l->dialect_file), err) != 0 ||
        conf_get_enum(f, s, "framing", framings, &framing, err) != 0 ||
        conf_get_enum(f, s, "header", headers, &header, err) != 0 ||
        conf_get_int(f, s, "header_length", 0, 64, &header_len, err) != 0 ||
        conf_get_duration_us(f, s, "budget", 1 * US_MS, 60 * US_S, &l->budget_us, err) != 0 ||
        load_kind_budgets(f, s, l, err) != 0 ||
        conf_get_size(f, s, "max_frame", 64, 65535, &l->max_frame, err) != 0 ||
        conf_get_duration_us(f, s, "idle_timeout", 0, 24 * US_H, &l->idle_timeout_us, err) != 0 ||
        conf_get_duration_us(f, s, "echo_interval", 0, 24 * US_H, &l->echo_interval_us, err) != 0 ||
        conf_get_size(f, s, "max_outstanding", 1, 65536, &max_out, err) != 0 ||
        conf_get_size(f, s, "write_buffer_max", 4096, 1ULL << 30, &l->write_buffer_max, err) != 0 ||
        conf_get_bool(f, s, "require_signon", &l->require_signon, err) != 0 ||
        conf_get_bool(f, s, "tls", &l->tls, err) != 0 ||
        copy_str(f, s, "tls_cert", l->tls_cert, sizeof(l->tls_cert), err) != 0 ||
        copy_str(f, s, "tls_key", l->tls_key, sizeof(l->tls_key), err) != 0 ||
        copy_str(f, s, "tls_ca", l->tls_ca, sizeof(l->tls_ca), err) != 0 ||
        conf_get_enum(f, s, "tls_verify_client", verifies, &verify, err) != 0 ||
        copy_key_name(f, s, "zpk", l->zpk, sizeof(l->zpk), &l->zpk_line, err) != 0 ||
        copy_key_name(f, s, "zmk", l->zmk, sizeof(l->zmk), &l->zmk_line, err) != 0 ||
        load_allow(f, s, l, err) != 0 || load_listener_mac(f, s, l, err) != 0)
        return -1;

    l->framing = (enum cg_framing)framing;
    l->tls_verify = (enum cg_tls_verify)verify;
    l->max_outstanding = max_out;
    if (header == 1) {
        l->header_len = header_len >= 0 ? (unsigned)header_len : 5;
        l->header_swap_tpdu = true;
    } else {
        l->header_len = header_len >= 0 ? (unsigned)header_len : 0;
    }
    return 0;
}

/* Checks across keys, run after every key was read and none was unknown. */
static int check_listener(const struct conf_file *f, const struct cg_listener_conf *l,
                          struct conf_err *err)
{
    const unsigned line = l->line;
    if (!l->have_address)
        return conf_fail(f, line, err, "missing key 'address' in [listener %s]", l->name);
    if (l->max_frame > 9999 && l->framing != CG_FRAMING_LEN2)
        return conf_fail(f, line, err,
                         "max_frame %llu cannot be framed by a 4-digit length; use at most 9999",
                         (unsigned long long)l->max_frame);
    if (l->address.path[0] != '\0' && l->nallow > 0)
        return conf_fail(f, line, err, "an allow-list needs a TCP address, not a unix socket");
    if (l->tls && (l->tls_cert[0] == '\0' || l->tls_key[0] == '\0'))
        return conf_fail(f, line, err, "tls = yes needs tls_cert and tls_key");
    if (!l->tls &&
        (l->tls_cert[0] || l->tls_key[0] || l->tls_ca[0] || l->tls_verify != CG_TLS_VERIFY_NONE))
        return conf_fail(f, line, err, "tls_* keys given but tls is not enabled");
    if (l->tls_verify != CG_TLS_VERIFY_NONE && l->tls_ca[0] == '\0')
        return conf_fail(f, line, err, "tls_verify_client needs tls_ca");
    if (l->zmk[0] != '\0' && l->zpk[0] == '\0')
        return conf_fail(f, l->zmk_line, err, "zmk is for the key change of a zpk: set zpk too");
    return 0;
}

static int load_all(struct conf_file *f, struct cg_config *cfg, struct conf_err *err)
{
    struct conf_section *s;
    const char *lvl = NULL;

    /* [daemon] */
    s = conf_find(f, "daemon", NULL);
    if (s != NULL) {
        int64_t reqs = cfg->max_requests;
        if (conf_get_str(f, s, "log_level", &lvl, err) != 0 ||
            conf_get_int(f, s, "max_requests", 16, 1 << 20, &reqs, err) != 0 ||
            conf_get_duration_us(f, s, "ready_wait", 0, 5 * US_MIN, &cfg->ready_wait_us, err) != 0)
            return -1;
        cfg->max_requests = (unsigned)reqs;
        if (lvl != NULL) {
            int l = log_level_parse(lvl);
            if (l < 0)
                return conf_fail(f, conf_kv_get(s, "log_level")->line, err,
                                 "key 'log_level': '%s' is not one of: debug, info, notice, "
                                 "warning, error",
                                 lvl);
            cfg->log_level = l;
        }
    }

    /* [database] */
    s = conf_find(f, "database", NULL);
    if (s != NULL) {
        int64_t pool = cfg->db_pool_size, batch = cfg->db_max_batch;
        if (copy_str(f, s, "conninfo", cfg->db_conninfo, sizeof(cfg->db_conninfo), err) != 0 ||
            conf_get_int(f, s, "pool_size", 1, 64, &pool, err) != 0 ||
            conf_get_int(f, s, "max_batch", 1, 1024, &batch, err) != 0 ||
            conf_get_duration_us(f, s, "connect_timeout", 100 * US_MS, 5 * US_MIN,
                                 &cfg->db_connect_timeout_us, err) != 0 ||
            conf_get_duration_us(f, s, "reconnect_min", 1 * US_MS, 1 * US_MIN,
                                 &cfg->db_reconnect_min_us, err) != 0 ||
            conf_get_duration_us(f, s, "reconnect_max", 1 * US_MS, 10 * US_MIN,
                                 &cfg->db_reconnect_max_us, err) != 0)
            return -1;
        cfg->db_pool_size = (unsigned)pool;
        cfg->db_max_batch = (unsigned)batch;
        if (cfg->db_reconnect_max_us < cfg->db_reconnect_min_us)
            return conf_fail(f, s->line, err, "reconnect_max is below reconnect_min");
    }

    /* [listener NAME] ... */
    for (s = conf_next(f, NULL, "listener"); s != NULL; s = conf_next(f, s, "listener")) {
        if (cfg->nlisteners == CG_MAX_LISTENERS)
            return conf_fail(f, s->line, err, "more than %d listeners", CG_MAX_LISTENERS);
        if (load_listener(f, s, &cfg->listeners[cfg->nlisteners], err) != 0)
            return -1;
        cfg->nlisteners++;
    }

    /* [standin] */
    s = conf_find(f, "standin", NULL);
    if (s != NULL) {
        const char *rc = NULL;
        static const char *const modes[] = {"decline", "approve", NULL};
        int mode = 0;
        if (conf_get_str(f, s, "response_code", &rc, err) != 0 ||
            conf_get_enum(f, s, "mode", modes, &mode, err) != 0 ||
            copy_str(f, s, "journal", cfg->standin_journal, sizeof(cfg->standin_journal), err) !=
                0 ||
            conf_get_duration_us(f, s, "refresh", 1 * US_S, 24 * US_H, &cfg->standin_refresh_us,
                                 err) != 0 ||
            conf_get_size(f, s, "max_cards", 1, 100000000, &cfg->standin_max_cards, err) != 0 ||
            conf_get_size(f, s, "max_pending", 1, 10000000, &cfg->standin_max_pending, err) != 0)
            return -1;
        cfg->standin_approve = mode == 1;
        if (cfg->standin_approve && cfg->standin_journal[0] == '\0')
            return conf_fail(f, conf_kv_get(s, "mode")->line, err,
                             "[standin] mode = approve needs 'journal' (a file path)");
        if (rc != NULL) {
            if (strlen(rc) != 2 ||
                !((rc[0] >= '0' && rc[0] <= '9') || (rc[0] >= 'A' && rc[0] <= 'Z')))
                return conf_fail(f, conf_kv_get(s, "response_code")->line, err,
                                 "key 'response_code': '%s' is not a two-character response code",
                                 rc);
            memcpy(cfg->standin_response, rc, 3);
        }
    }

    /* [audit] */
    s = conf_find(f, "audit", NULL);
    if (s != NULL) {
        cfg->audit_configured = true;
        static const char *const syncs[] = {"none", "approval", "batch", NULL};
        if (conf_get_enum(f, s, "fsync", syncs, &cfg->audit_fsync, err) != 0 ||
            copy_str(f, s, "dir", cfg->audit_dir, sizeof(cfg->audit_dir), err) != 0 ||
            conf_get_size(f, s, "segment_size", 64 << 10, 1ULL << 34, &cfg->audit_segment_size,
                          err) != 0 ||
            conf_get_duration_us(f, s, "checkpoint_interval", 1 * US_S, 24 * US_H,
                                 &cfg->audit_checkpoint_interval_us, err) != 0)
            return -1;
    }

    /* [metrics] */
    s = conf_find(f, "metrics", NULL);
    if (s != NULL) {
        if (conf_require(f, s, "address", err) != 0 ||
            conf_get_addr(f, s, "address", &cfg->metrics_address, err) != 0)
            return -1;
        cfg->metrics_enabled = true;
    }

    /* [keys] */
    s = conf_find(f, "keys", NULL);
    int64_t cvvpos = -1, pvki = cfg->pvki;
    static const char *const mkds[] = {"A", "B", NULL};
    int mkd = 0;
    if (s != NULL) {
        const char *dectab = NULL;
        cfg->keys_line = s->line;
        if (copy_str(f, s, "file", cfg->keys_file, sizeof(cfg->keys_file), err) != 0 ||
            copy_str(f, s, "master_key_file", cfg->master_key_file, sizeof(cfg->master_key_file),
                     err) != 0 ||
            copy_str(f, s, "master_key_credential", cfg->master_key_credential,
                     sizeof(cfg->master_key_credential), err) != 0 ||
            copy_str(f, s, "pan_key_file", cfg->pan_key_file, sizeof(cfg->pan_key_file), err) !=
                0 ||
            copy_str(f, s, "cvk", cfg->keys_cvk, sizeof(cfg->keys_cvk), err) != 0 ||
            conf_get_int(f, s, "cvv_position", 0, 32, &cvvpos, err) != 0 ||
            copy_str(f, s, "imk_ac", cfg->keys_imk_ac, sizeof(cfg->keys_imk_ac), err) != 0 ||
            conf_get_enum(f, s, "imk_ac_derivation", mkds, &mkd, err) != 0 ||
            copy_key_name(f, s, "pvk", cfg->keys_pvk, sizeof(cfg->keys_pvk), &cfg->keys_pvk_line,
                          err) != 0 ||
            conf_get_int(f, s, "pvki", 0, 9, &pvki, err) != 0 ||
            conf_get_str(f, s, "pin_dectab", &dectab, err) != 0)
            return -1;
        cfg->imk_ac_derivation = mkd + 1;
        if (cfg->keys_imk_ac[0] != '\0' && cfg->keys_file[0] == '\0')
            return conf_fail(f, s->line, err, "[keys] imk_ac needs a key store ('file')");
        cfg->pvki = (unsigned)pvki;
        if (dectab != NULL) {
            size_t n = strlen(dectab);
            if (n != 16 || strspn(dectab, "0123456789") != 16)
                return conf_fail(f, conf_kv_get(s, "pin_dectab")->line, err,
                                 "key 'pin_dectab': expected 16 decimal digits");
            memcpy(cfg->pin_dectab, dectab, 17);
        }
        if ((conf_kv_get(s, "pvki") != NULL || dectab != NULL) && cfg->keys_pvk[0] == '\0')
            return conf_fail(f, conf_kv_get(s, dectab != NULL ? "pin_dectab" : "pvki")->line, err,
                             "[keys] pvki and pin_dectab need pvk");
        if (cfg->keys_pvk[0] != '\0' && cfg->keys_file[0] == '\0')
            return conf_fail(f, cfg->keys_pvk_line, err, "[keys] pvk needs a key store ('file')");
        if (conf_kv_get(s, "cvv_position") != NULL) {
            if (cfg->keys_cvk[0] == '\0')
                return conf_fail(f, conf_kv_get(s, "cvv_position")->line, err,
                                 "[keys] cvv_position needs cvk");
            cfg->cvv_position = (int)cvvpos;
        }
        bool pan_only = cfg->keys_file[0] == '\0' && cfg->pan_key_file[0] != '\0' &&
                        cfg->master_key_file[0] == '\0' && cfg->master_key_credential[0] == '\0';
        if (cfg->keys_cvk[0] != '\0' && cfg->keys_file[0] == '\0')
            return conf_fail(f, s->line, err, "[keys] cvk needs a key store ('file')");
        if (!pan_only && cfg->keys_file[0] == '\0')
            return conf_fail(f, s->line, err, "missing key 'file' in [keys]");
        if (!pan_only &&
            (cfg->master_key_file[0] != '\0') == (cfg->master_key_credential[0] != '\0'))
            return conf_fail(f, s->line, err,
                             "[keys] needs exactly one of master_key_file and "
                             "master_key_credential");
    }

    if (conf_check_unused(f, err) != 0)
        return -1;
    for (unsigned i = 0; i < cfg->nlisteners; i++) {
        const struct cg_listener_conf *l = &cfg->listeners[i];
        if (check_listener(f, l, err) != 0)
            return -1;
        if (l->mac != CG_MAC_NONE && cfg->keys_file[0] == '\0')
            return conf_fail(f, l->line, err, "[listener %s] mac needs a key store ([keys] file)",
                             l->name);
        if (l->zpk[0] != '\0' && cfg->keys_file[0] == '\0')
            return conf_fail(f, l->zpk_line, err, "zpk needs a key store ([keys] file)");
    }
    if (cfg->nlisteners == 0)
        return conf_fail(f, 1, err, "no [listener NAME] section: nothing to serve");
    return 0;
}

int cg_config_load(const char *path, struct cg_config *cfg, struct conf_err *err)
{
    struct conf_file *f = NULL;
    int rc;

    cg_config_defaults(cfg);
    if (strlen(path) >= sizeof(cfg->path)) {
        snprintf(err->msg, sizeof(err->msg), "%.100s...: path too long", path);
        return -1;
    }
    memcpy(cfg->path, path, strlen(path) + 1);
    if (conf_load(path, &f, err) != 0)
        return -1;
    rc = load_all(f, cfg, err);
    conf_free(f);
    return rc;
}
