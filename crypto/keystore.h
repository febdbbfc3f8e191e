/*
 * keystore.h - the working keys of a cardgate instance and the file they
 * live in.
 *
 * File: text, one key per line, each key encrypted under a 256-bit master
 * key with AES-256-GCM (fresh 96-bit nonce per entry; the entry's name,
 * type, usage, algorithm, version and KCV are the GCM additional data, so
 * none can be changed without the entry failing to load):
 *
 *     cardgate-keystore 1
 *     key NAME TYPE USAGE ALG VERSION KCV NONCE CIPHERTEXT TAG
 *
 * The master key is 32 bytes (raw, or 64 hex digits) in a file that only
 * its owner may read (mode 0600 or 0400; anything looser is refused), or
 * the systemd credential "cardgate-master-key" in $CREDENTIALS_DIRECTORY
 * (so LoadCredentialEncrypted= works).
 *
 * On load every key is decrypted, its length checked against its algorithm,
 * its usage against its type, and its KCV recomputed; any failure refuses
 * the whole file with a message naming the key and the check.
 *
 * struct keyset is immutable once loaded and reference counted.  The daemon
 * keeps the current set in a struct keyset_holder; a request or link takes
 * a reference (keyset_holder_get) for as long as it uses keys, reload and
 * key change build a new set and keyset_holder_swap() it in; the old set is
 * wiped (OPENSSL_cleanse) and freed when its last reference goes.  The
 * holder's mutex makes get/swap safe from any thread.
 */
#ifndef CARDGATE_CRYPTO_KEYSTORE_H
#define CARDGATE_CRYPTO_KEYSTORE_H

#include "crypto/cipher.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>

#define KS_MASTER_LEN 32
#define KS_NAME_MAX   48
#define KS_KEY_MAX    32
#define KS_KCV_LEN    3
#define KS_CREDENTIAL "cardgate-master-key"

enum ks_type {
    KS_PVK = 1,   /* PIN verification key (PVV / IBM 3624) */
    KS_CVK,       /* card verification key */
    KS_IMK_AC,    /* EMV issuer master key for application cryptograms */
    KS_ZPK,       /* zone PIN key of a link */
    KS_ZMK,       /* zone master key of a link (key exchange) */
    KS_MAK,       /* MAC key of a link */
    KS_PAN_HASH,  /* HMAC-SHA-256 key of the PAN hash */
    KS_AUDIT_SIGN /* audit checkpoint signing key */
};

enum ks_usage {
    KS_U_PIN_VERIFY = 1,
    KS_U_CVV,
    KS_U_ARQC,
    KS_U_PIN_ENCRYPT,
    KS_U_KEY_ENCRYPT,
    KS_U_MAC,
    KS_U_HMAC,
    KS_U_SIGN,
};

enum ks_alg {
    KS_ALG_TDES = 1, /* 16 or 24 bytes */
    KS_ALG_AES,      /* 16, 24 or 32 bytes */
    KS_ALG_HMAC,     /* 32 bytes; KCV = HMAC-SHA-256(key, 0^16), leftmost 3 */
    KS_ALG_ED25519,  /* 32-byte private key; KCV = SHA-256(public key), leftmost 3 */
};

struct ks_key {
    char name[KS_NAME_MAX];
    enum ks_type type;
    enum ks_usage usage;
    enum ks_alg alg;
    unsigned version;
    uint8_t kcv[KS_KCV_LEN];
    size_t len;
    uint8_t key[KS_KEY_MAX];
};

struct keyset {
    atomic_uint refs;
    uint64_t generation; /* set by keyset_holder_swap */
    size_t n, cap;
    struct ks_key *keys;
};

/* names <-> enums; parse functions return -1 when unknown */
const char *ks_type_name(enum ks_type t);
int ks_type_parse(const char *s);
const char *ks_usage_name(enum ks_usage u);
int ks_usage_parse(const char *s);
const char *ks_alg_name(enum ks_alg a);
int ks_alg_parse(const char *s);
/* the usage a type implies by default */
enum ks_usage ks_default_usage(enum ks_type t);
/* true when usage u is allowed for type t and len for alg a */
bool ks_usage_ok(enum ks_type t, enum ks_usage u);
bool ks_len_ok(enum ks_alg a, size_t len);
/* crypto_alg for a TDES/AES key (HMAC: 0) */
enum crypto_alg ks_crypto_alg(const struct ks_key *k);

/* The KCV of key material for alg into out[KS_KCV_LEN]; 0 or -1. */
int ks_kcv(enum ks_alg a, const uint8_t *key, size_t len,
           uint8_t out[KS_KCV_LEN]) CRYPTO_MUST_CHECK;

/*
 * Read the master key from path, or when path is NULL or empty from
 * $CREDENTIALS_DIRECTORY/cardgate-master-key.  Refuses a file readable or
 * writable by group or others, or owned by another user than this one or
 * root.  Returns 0, or -1 with a message.
 */
int ks_master_load(const char *path, uint8_t mk[KS_MASTER_LEN], char *err,
                   size_t errlen) CRYPTO_MUST_CHECK;

/* An empty set with one reference. */
struct keyset *keyset_new(void);
/*
 * Load and check a key store file (a missing file is an error); calls
 * crypto_init() itself.  Returns a
 * set with one reference, or NULL with a message in err.
 */
struct keyset *keyset_load(const char *path, const uint8_t mk[KS_MASTER_LEN], char *err,
                           size_t errlen);
/*
 * Write the set to path atomically (temporary file, fsync, rename), mode
 * 0600.  Returns 0, or -1 with a message.
 */
int keyset_save(const struct keyset *ks, const char *path, const uint8_t mk[KS_MASTER_LEN],
                char *err, size_t errlen) CRYPTO_MUST_CHECK;

struct keyset *keyset_ref(struct keyset *ks);
/* Current reference count (tests, diagnostics). */
unsigned keyset_refcount(const struct keyset *ks);
/*
 * Wipe every key of a set (OPENSSL_cleanse) and empty it; the last
 * keyset_unref does this before freeing.  Exposed so tests can check it.
 */
void keyset_wipe(struct keyset *ks);
/* Drop a reference; the last one wipes every key and frees the set. */
void keyset_unref(struct keyset *ks);

/*
 * Add or replace (same name) a key in a set that is not shared yet (tools,
 * or a copy being built for a swap).  Checks type/usage/length and computes
 * the KCV.  Returns 0, or -1 with a message.
 */
int keyset_put(struct keyset *ks, const struct ks_key *k, char *err,
               size_t errlen) CRYPTO_MUST_CHECK;
/* A private copy of ks (one reference) to modify and swap in; NULL on OOM. */
struct keyset *keyset_copy(const struct keyset *ks);

/* Key by name; NULL when absent. */
const struct ks_key *keyset_find(const struct keyset *ks, const char *name);
/*
 * Key by name that must have this type and usage; NULL with a message in
 * err when absent or of another type/usage (a misconfigured key is refused
 * rather than used for the wrong purpose).
 */
const struct ks_key *keyset_get(const struct keyset *ks, const char *name, enum ks_type type,
                                enum ks_usage usage, char *err, size_t errlen);
/* The highest-version key of a type (e.g. the PAN-hash key); NULL if none. */
const struct ks_key *keyset_latest(const struct keyset *ks, enum ks_type type);

struct keyset_holder {
    pthread_mutex_t mu;
    struct keyset *cur;
    uint64_t generation;
};
void keyset_holder_init(struct keyset_holder *h);
/* A reference to the current set (NULL when none); keyset_unref when done. */
struct keyset *keyset_holder_get(struct keyset_holder *h);
/* Install ks (taking over the caller's reference); the old set is unreffed. */
void keyset_holder_swap(struct keyset_holder *h, struct keyset *ks);
/* Drop the current set and destroy the mutex. */
void keyset_holder_destroy(struct keyset_holder *h);

/*
 * The raw 32-byte public key of an Ed25519 key-store entry into pub (for
 * auditors: `cardgatectl key pubkey`).  Returns 0 or -1.
 */
int ks_ed25519_public(const struct ks_key *k, uint8_t pub[32]) CRYPTO_MUST_CHECK;

/*
 * The audit checkpoint signing key as an EVP_PKEY (for audit_writer_open /
 * audit_writer_set_key): the highest-version audit-sign key of the set,
 * which must be Ed25519.  NULL with a message in err.  EVP_PKEY_free it.
 */
EVP_PKEY *keyset_audit_sign_key(const struct keyset *ks, char *err, size_t errlen);

/*
 * The PAN-hash key for tools and the daemon: load the store with the master
 * key (path or credential, as ks_master_load) and copy out the
 * highest-version KS_PAN_HASH key.  Returns 0, or -1 with a message.  The
 * caller wipes key.
 */
int keystore_pan_hash_key(const char *store_path, const char *master_path, uint8_t key[KS_KEY_MAX],
                          size_t *len, char *err, size_t errlen) CRYPTO_MUST_CHECK;

#endif
