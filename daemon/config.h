/*
 * config.h - cardgated's configuration, built whole from a file and
 * validated before anything uses it.  Reload builds a new struct cg_config
 * and swaps it in only when it is valid; the old one keeps serving otherwise.
 *
 * Every key is documented in conf/cardgated.conf.example.
 */
#ifndef CARDGATE_DAEMON_CONFIG_H
#define CARDGATE_DAEMON_CONFIG_H

#include "conf/conf.h"

#include <stdbool.h>
#include <stdint.h>

#define CG_MAX_LISTENERS 16
#define CG_MAX_ALLOW     32
#define KS_NAME_CFG      48 /* a key-store name (crypto/keystore.h KS_NAME_MAX) */

enum cg_framing {
    CG_FRAMING_LEN2 = 0,  /* 2-byte big-endian binary length */
    CG_FRAMING_LEN4ASCII, /* 4 ASCII decimal digits */
    CG_FRAMING_LEN2BCD,   /* 2 bytes packed BCD (0..9999) */
};

/* Message authentication on a link (daemon/linkmac.h): field 64 or 128. */
enum cg_mac {
    CG_MAC_NONE = 0,
    CG_MAC_X919, /* ISO 9797-1 alg 3 (ANSI X9.19 retail MAC), 16-byte TDES key */
    CG_MAC_ALG1, /* ISO 9797-1 alg 1 (CBC-MAC under the whole TDES key) */
    CG_MAC_CMAC, /* AES-CMAC, leftmost 8 bytes */
};

enum cg_tls_verify {
    CG_TLS_VERIFY_NONE = 0, /* server-side TLS only */
    CG_TLS_VERIFY_OPTIONAL,
    CG_TLS_VERIFY_REQUIRE, /* mutual TLS */
};

/* A network prefix for a listener's allow-list. */
struct cg_allow {
    int family; /* AF_INET or AF_INET6 */
    uint8_t addr[16];
    unsigned prefix;
};

struct cg_listener_conf {
    char name[64];
    unsigned line; /* of the [listener NAME] header, for messages */
    bool have_address;
    struct conf_addr address;
    char dialect[64];        /* built-in dialect name */
    char dialect_file[4096]; /* or a dialect file, when set */
    enum cg_framing framing;
    unsigned header_len;   /* fixed header after the length (e.g. 5 for a TPDU), 0 none */
    bool header_swap_tpdu; /* swap TPDU source/destination in answers */
    int64_t budget_us;     /* latency budget: deadline = arrival + budget */
    /* per message kind (budget_authorization ...); 0: budget_us */
    int64_t budget_kind_us[4];
    uint64_t max_frame;        /* largest frame accepted, bytes */
    int64_t idle_timeout_us;   /* close a link silent for this long; 0 never */
    int64_t echo_interval_us;  /* send our own 0800 echo when idle; 0 never */
    uint64_t max_outstanding;  /* requests in flight per link */
    uint64_t write_buffer_max; /* bytes queued to a peer that does not read */
    bool require_signon;
    bool tls;
    char tls_cert[4096];
    char tls_key[4096];
    char tls_ca[4096];
    enum cg_tls_verify tls_verify;
    struct cg_allow allow[CG_MAX_ALLOW];
    unsigned nallow;          /* 0: any address */
    enum cg_mac mac;          /* MAC required on every message of the link, and on answers */
    char mak[KS_NAME_CFG];    /* the key-store name of the link's MAC key */
    int mac_padding;          /* ISO 9797-1 padding method 1 (default) or 2 */
    char mac_failure_code[3]; /* field 39 for a missing or bad MAC, default "63" */
    /* PIN and key exchange: key-store names ("" none) and their lines, for messages */
    char zpk[KS_NAME_CFG]; /* the link's zone PIN key (field 52) */
    char zmk[KS_NAME_CFG]; /* its zone master key (0800 key change of the ZPK) */
    unsigned zpk_line, zmk_line;
};

struct cg_config {
    char path[4096];
    int log_level;
    int64_t ready_wait_us; /* [daemon] ready_wait: READY=1 waits this long for the database */

    /* [database] */
    char db_conninfo[4096];
    unsigned db_pool_size;
    unsigned db_max_batch;
    int64_t db_connect_timeout_us;
    int64_t db_reconnect_min_us;
    int64_t db_reconnect_max_us;

    /* [listener NAME] */
    struct cg_listener_conf listeners[CG_MAX_LISTENERS];
    unsigned nlisteners;

    /* [standin] */
    char standin_response[3];     /* default "91" */
    bool standin_approve;         /* mode = approve: approve up to the per-card stand-in limit */
    char standin_journal[4096];   /* journal of stand-in approvals (required for approve) */
    int64_t standin_refresh_us;   /* limit cache refresh interval */
    uint64_t standin_max_cards;   /* cards kept in the limit cache */
    uint64_t standin_max_pending; /* unsettled stand-in approvals at most */

    /* [audit] */
    char audit_dir[4096];
    int audit_fsync; /* enum audit_sync in daemon/audit.h: 0 none, 1 approval, 2 batch */
    uint64_t audit_segment_size;
    int64_t audit_checkpoint_interval_us;

    /* [metrics] */
    bool metrics_enabled;
    struct conf_addr metrics_address;

    /* [keys] */
    char keys_file[4096];
    char master_key_file[4096];
    char master_key_credential[256];
    char pan_key_file[4096];       /* PAN-hash key as 64 hex digits, when no key store */
    char keys_cvk[KS_NAME_CFG];    /* the issuer's CVK (CVV2 checks); "" none */
    int cvv_position;              /* CVV/iCVV offset in track-2 discretionary data; -1 none */
    char keys_imk_ac[KS_NAME_CFG]; /* EMV issuer master key (ARQC/ARPC); "" none */
    int imk_ac_derivation;         /* enum emv_mkd: 1 option A (default), 2 option B */
    char keys_pvk[KS_NAME_CFG];    /* PIN verification key (PVV, IBM 3624); "" none */
    unsigned keys_pvk_line;
    unsigned pvki;       /* PVV key index 0..9, default 1 */
    char pin_dectab[17]; /* IBM 3624 decimalization table, 16 digits */
    unsigned keys_line;  /* of the [keys] header (0: no section) */

    /* [daemon] requests: request slots preallocated by the pipeline */
    unsigned max_requests;
    bool audit_configured; /* an [audit] section is present (else no audit log) */
};

/*
 * Load and validate path into *cfg (zeroed and defaulted first).  Returns 0,
 * or -1 with err holding "FILE:LINE: message".
 */
int cg_config_load(const char *path, struct cg_config *cfg, struct conf_err *err)
    __attribute__((warn_unused_result));

/* Defaults for every key, as the example file documents them. */
void cg_config_defaults(struct cg_config *cfg);

/* Does addr (AF_INET/AF_INET6 bytes) fall inside the listener's allow-list? */
bool cg_allow_match(const struct cg_listener_conf *l, int family, const uint8_t *addr);

/*
 * The latency budget of a request with MTI mti (4 characters) on listener
 * l: budget_authorization (01x0), budget_financial (02x0), budget_advice
 * (xx2x: 0120/0121/0220/0221), budget_reversal (04xx) when set, else budget.
 */
int64_t cg_listener_budget(const struct cg_listener_conf *l, const char *mti);
/* The largest budget of l, over every kind. */
int64_t cg_listener_budget_max(const struct cg_listener_conf *l);

#endif
