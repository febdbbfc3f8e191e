/*
 * keystore.c - see keystore.h.
 */
#include "crypto/keystore.h"

#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAGIC     "cardgate-keystore 1"
#define NONCE_LEN 12
#define TAG_LEN   16

static const char *const type_names[] = {
    [KS_PVK] = "pvk", [KS_CVK] = "cvk", [KS_IMK_AC] = "imk-ac",     [KS_ZPK] = "zpk",
    [KS_ZMK] = "zmk", [KS_MAK] = "mak", [KS_PAN_HASH] = "pan-hash", [KS_AUDIT_SIGN] = "audit-sign",
};
static const char *const usage_names[] = {
    [KS_U_PIN_VERIFY] = "pin-verify",
    [KS_U_CVV] = "cvv",
    [KS_U_ARQC] = "arqc",
    [KS_U_PIN_ENCRYPT] = "pin-encrypt",
    [KS_U_KEY_ENCRYPT] = "key-encrypt",
    [KS_U_MAC] = "mac",
    [KS_U_HMAC] = "hmac",
    [KS_U_SIGN] = "sign",
};
static const char *const alg_names[] = {
    [KS_ALG_TDES] = "tdes",
    [KS_ALG_AES] = "aes",
    [KS_ALG_HMAC] = "hmac",
    [KS_ALG_ED25519] = "ed25519",
};

static int parse_name(const char *const *names, size_t n, const char *s)
{
    for (size_t i = 1; i < n; i++)
        if (names[i] != NULL && strcmp(names[i], s) == 0)
            return (int)i;
    return -1;
}

const char *ks_type_name(enum ks_type t)
{
    return (unsigned)t < UTIL_NELEM(type_names) && type_names[t] ? type_names[t] : "?";
}
int ks_type_parse(const char *s)
{
    return parse_name(type_names, UTIL_NELEM(type_names), s);
}
const char *ks_usage_name(enum ks_usage u)
{
    return (unsigned)u < UTIL_NELEM(usage_names) && usage_names[u] ? usage_names[u] : "?";
}
int ks_usage_parse(const char *s)
{
    return parse_name(usage_names, UTIL_NELEM(usage_names), s);
}
const char *ks_alg_name(enum ks_alg a)
{
    return (unsigned)a < UTIL_NELEM(alg_names) && alg_names[a] ? alg_names[a] : "?";
}
int ks_alg_parse(const char *s)
{
    return parse_name(alg_names, UTIL_NELEM(alg_names), s);
}

enum ks_usage ks_default_usage(enum ks_type t)
{
    switch (t) {
    case KS_PVK:
        return KS_U_PIN_VERIFY;
    case KS_CVK:
        return KS_U_CVV;
    case KS_IMK_AC:
        return KS_U_ARQC;
    case KS_ZPK:
        return KS_U_PIN_ENCRYPT;
    case KS_ZMK:
        return KS_U_KEY_ENCRYPT;
    case KS_MAK:
        return KS_U_MAC;
    case KS_PAN_HASH:
        return KS_U_HMAC;
    case KS_AUDIT_SIGN:
        return KS_U_SIGN;
    }
    return 0;
}

/* One usage per type: a key is never used for two purposes. */
bool ks_usage_ok(enum ks_type t, enum ks_usage u)
{
    return u != 0 && ks_default_usage(t) == u;
}

bool ks_len_ok(enum ks_alg a, size_t len)
{
    switch (a) {
    case KS_ALG_TDES:
        return len == 16 || len == 24;
    case KS_ALG_AES:
        return len == 16 || len == 24 || len == 32;
    case KS_ALG_HMAC:
    case KS_ALG_ED25519:
        return len == 32;
    }
    return false;
}

/* The algorithms a type may use. */
static bool type_alg_ok(enum ks_type t, enum ks_alg a)
{
    switch (t) {
    case KS_PVK:
    case KS_CVK:
    case KS_IMK_AC:
        return a == KS_ALG_TDES;
    case KS_ZPK:
    case KS_ZMK:
    case KS_MAK:
        return a == KS_ALG_TDES || a == KS_ALG_AES;
    case KS_PAN_HASH:
        return a == KS_ALG_HMAC;
    case KS_AUDIT_SIGN:
        return a == KS_ALG_ED25519 || a == KS_ALG_HMAC;
    }
    return false;
}

enum crypto_alg ks_crypto_alg(const struct ks_key *k)
{
    return k->alg == KS_ALG_AES ? CRYPTO_AES : k->alg == KS_ALG_TDES ? CRYPTO_TDES : 0;
}

int ks_kcv(enum ks_alg a, const uint8_t *key, size_t len, uint8_t out[KS_KCV_LEN])
{
    static const uint8_t zero[16];
    uint8_t md[32];
    int ok = -1;

    if (!ks_len_ok(a, len))
        return -1;
    if (a == KS_ALG_TDES)
        return crypto_kcv(CRYPTO_TDES, key, len, out, KS_KCV_LEN);
    if (a == KS_ALG_AES)
        return crypto_kcv(CRYPTO_AES, key, len, out, KS_KCV_LEN);
    if (a == KS_ALG_ED25519) {
        uint8_t pub[32];
        struct ks_key k = {.alg = KS_ALG_ED25519, .len = len};
        memcpy(k.key, key, len);
        if (ks_ed25519_public(&k, pub) == 0 && EVP_Digest(pub, 32, md, NULL, EVP_sha256(), NULL)) {
            memcpy(out, md, KS_KCV_LEN);
            ok = 0;
        }
        OPENSSL_cleanse(&k, sizeof(k));
        return ok;
    }
    if (crypto_hmac_sha256(key, len, zero, sizeof(zero), md) == 0) {
        memcpy(out, md, KS_KCV_LEN);
        ok = 0;
    }
    OPENSSL_cleanse(md, sizeof(md));
    return ok;
}

int ks_ed25519_public(const struct ks_key *k, uint8_t pub[32])
{
    size_t n = 32;
    int rc = -1;

    if (k->alg != KS_ALG_ED25519 || k->len != 32)
        return -1;
    EVP_PKEY *p = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, k->key, 32);
    if (p != NULL && EVP_PKEY_get_raw_public_key(p, pub, &n) == 1 && n == 32)
        rc = 0;
    EVP_PKEY_free(p);
    return rc;
}

EVP_PKEY *keyset_audit_sign_key(const struct keyset *ks, char *err, size_t errlen)
{
    const struct ks_key *k = keyset_latest(ks, KS_AUDIT_SIGN);
    EVP_PKEY *p;

    if (k == NULL || k->alg != KS_ALG_ED25519) {
        snprintf(err, errlen, "no ed25519 audit-sign key in the key store");
        return NULL;
    }
    p = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, k->key, k->len);
    if (p == NULL)
        snprintf(err, errlen, "key %s: not a usable Ed25519 key", k->name);
    return p;
}

int ks_master_load(const char *path, uint8_t mk[KS_MASTER_LEN], char *err, size_t errlen)
{
    char buf[160], cred[4096];
    struct stat st;
    ssize_t n;
    int fd, rc = -1;

    if (path == NULL || path[0] == '\0') {
        const char *dir = getenv("CREDENTIALS_DIRECTORY");
        if (dir == NULL || dir[0] == '\0') {
            snprintf(err, errlen, "no master key file given and $CREDENTIALS_DIRECTORY unset");
            return -1;
        }
        snprintf(cred, sizeof(cred), "%s/%s", dir, KS_CREDENTIAL);
        path = cred;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        snprintf(err, errlen, "master key %s: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "master key %s: not a regular file", path);
        goto out;
    }
    if (st.st_uid != geteuid() && st.st_uid != 0) {
        snprintf(err, errlen, "master key %s: owned by uid %u, not by this user or root", path,
                 (unsigned)st.st_uid);
        goto out;
    }
    if ((st.st_mode & 077) != 0) {
        snprintf(err, errlen, "master key %s: mode %03o lets group or others read it; chmod 600",
                 path, (unsigned)(st.st_mode & 0777));
        goto out;
    }
    n = read(fd, buf, sizeof(buf) - 1);
    if (n == KS_MASTER_LEN) {
        memcpy(mk, buf, KS_MASTER_LEN);
        rc = 0;
    } else if (n >= 2 * KS_MASTER_LEN) {
        buf[n] = '\0';
        while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
            buf[--n] = '\0';
        if (util_hex_decode(buf, mk, KS_MASTER_LEN) == KS_MASTER_LEN)
            rc = 0;
    }
    if (rc != 0)
        snprintf(err, errlen, "master key %s: expected 32 raw bytes or 64 hex digits", path);
out:
    OPENSSL_cleanse(buf, sizeof(buf));
    close(fd);
    return rc;
}

struct keyset *keyset_new(void)
{
    struct keyset *ks = calloc(1, sizeof(*ks));
    if (ks != NULL)
        atomic_init(&ks->refs, 1);
    return ks;
}

struct keyset *keyset_ref(struct keyset *ks)
{
    if (ks != NULL)
        atomic_fetch_add(&ks->refs, 1);
    return ks;
}

unsigned keyset_refcount(const struct keyset *ks)
{
    return ks ? atomic_load(&ks->refs) : 0;
}

void keyset_wipe(struct keyset *ks)
{
    if (ks->keys != NULL)
        OPENSSL_cleanse(ks->keys, ks->cap * sizeof(*ks->keys));
    ks->n = 0;
}

void keyset_unref(struct keyset *ks)
{
    if (ks == NULL || atomic_fetch_sub(&ks->refs, 1) != 1)
        return;
    keyset_wipe(ks);
    free(ks->keys);
    OPENSSL_cleanse(ks, sizeof(*ks));
    free(ks);
}

static bool name_ok(const char *s)
{
    size_t n = strnlen(s, KS_NAME_MAX);
    if (n == 0 || n >= KS_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9') || strchr("-_.", s[i]) != NULL))
            return false;
    return true;
}

/* Check a key's name, usage for its type, and algorithm and length. */
static int check_attrs(const struct ks_key *k, char *err, size_t errlen)
{
    if (!name_ok(k->name)) {
        snprintf(err, errlen, "key name must be 1-%d of [A-Za-z0-9._-]", KS_NAME_MAX - 1);
        return -1;
    }
    if (!ks_usage_ok(k->type, k->usage)) {
        snprintf(err, errlen, "key %s: usage %s not allowed for type %s (expected %s)", k->name,
                 ks_usage_name(k->usage), ks_type_name(k->type),
                 ks_usage_name(ks_default_usage(k->type)));
        return -1;
    }
    if (!type_alg_ok(k->type, k->alg) || !ks_len_ok(k->alg, k->len)) {
        snprintf(err, errlen, "key %s: %zu-byte %s key not allowed for type %s", k->name, k->len,
                 ks_alg_name(k->alg), ks_type_name(k->type));
        return -1;
    }
    return 0;
}

/* check_attrs, and (check_kcv) the stored KCV against the key material. */
static int check_key(const struct ks_key *k, bool check_kcv, char *err, size_t errlen)
{
    uint8_t kcv[KS_KCV_LEN];

    if (check_attrs(k, err, errlen) != 0)
        return -1;
    if (ks_kcv(k->alg, k->key, k->len, kcv) != 0) {
        snprintf(err, errlen, "key %s: cannot compute KCV", k->name);
        return -1;
    }
    if (check_kcv && CRYPTO_memcmp(kcv, k->kcv, KS_KCV_LEN) != 0) {
        snprintf(err, errlen, "key %s: KCV does not match the key (refusing to load)", k->name);
        return -1;
    }
    return 0;
}

static int put(struct keyset *ks, const struct ks_key *k)
{
    for (size_t i = 0; i < ks->n; i++)
        if (strcmp(ks->keys[i].name, k->name) == 0) {
            OPENSSL_cleanse(&ks->keys[i], sizeof(ks->keys[i]));
            ks->keys[i] = *k;
            return 0;
        }
    if (ks->n == ks->cap) {
        /* grow by copying so no stale key bytes stay in freed memory */
        size_t nc = ks->cap ? ks->cap * 2 : 8;
        struct ks_key *nk = calloc(nc, sizeof(*nk));
        if (nk == NULL)
            return -1;
        if (ks->keys != NULL) {
            memcpy(nk, ks->keys, ks->n * sizeof(*nk));
            OPENSSL_cleanse(ks->keys, ks->cap * sizeof(*nk));
            free(ks->keys);
        }
        ks->keys = nk;
        ks->cap = nc;
    }
    ks->keys[ks->n++] = *k;
    return 0;
}

int keyset_put(struct keyset *ks, const struct ks_key *k, char *err, size_t errlen)
{
    struct ks_key c = *k;
    int rc = -1;

    if (check_key(&c, false, err, errlen) == 0 && ks_kcv(c.alg, c.key, c.len, c.kcv) == 0) {
        rc = put(ks, &c);
        if (rc != 0)
            snprintf(err, errlen, "out of memory");
    }
    OPENSSL_cleanse(&c, sizeof(c));
    return rc;
}

struct keyset *keyset_copy(const struct keyset *ks)
{
    struct keyset *c = keyset_new();
    for (size_t i = 0; c != NULL && i < ks->n; i++)
        if (put(c, &ks->keys[i]) != 0) {
            keyset_unref(c);
            c = NULL;
        }
    return c;
}

const struct ks_key *keyset_find(const struct keyset *ks, const char *name)
{
    for (size_t i = 0; ks != NULL && i < ks->n; i++)
        if (strcmp(ks->keys[i].name, name) == 0)
            return &ks->keys[i];
    return NULL;
}

const struct ks_key *keyset_get(const struct keyset *ks, const char *name, enum ks_type type,
                                enum ks_usage usage, char *err, size_t errlen)
{
    const struct ks_key *k = keyset_find(ks, name);
    if (k == NULL) {
        snprintf(err, errlen, "key %s not in the key store", name);
        return NULL;
    }
    if (k->type != type || k->usage != usage) {
        snprintf(err, errlen, "key %s is %s/%s, not %s/%s", name, ks_type_name(k->type),
                 ks_usage_name(k->usage), ks_type_name(type), ks_usage_name(usage));
        return NULL;
    }
    return k;
}

const struct ks_key *keyset_latest(const struct keyset *ks, enum ks_type type)
{
    const struct ks_key *best = NULL;
    for (size_t i = 0; ks != NULL && i < ks->n; i++)
        if (ks->keys[i].type == type && (best == NULL || ks->keys[i].version > best->version))
            best = &ks->keys[i];
    return best;
}

/* "name|type|usage|alg|version|KCV", the GCM additional data */
static int aad_of(const struct ks_key *k, char *out, size_t cap)
{
    char kcv[2 * KS_KCV_LEN + 1];
    util_hex_encode(k->kcv, KS_KCV_LEN, kcv);
    int n = snprintf(out, cap, "%s|%s|%s|%s|%u|%s", k->name, ks_type_name(k->type),
                     ks_usage_name(k->usage), ks_alg_name(k->alg), k->version, kcv);
    return (n > 0 && (size_t)n < cap) ? n : -1;
}

/* AES-256-GCM seal (enc) or open of len bytes; 0 or -1 (open: tag mismatch). */
static int gcm(bool enc, const uint8_t mk[KS_MASTER_LEN], const uint8_t nonce[NONCE_LEN],
               const char *aad, size_t aadlen, const uint8_t *in, size_t len, uint8_t *out,
               uint8_t tag[TAG_LEN])
{
    EVP_CIPHER *c = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int n = 0, m = 0, ok = -1;

    if (c != NULL && ctx != NULL && EVP_CipherInit_ex2(ctx, c, mk, nonce, enc ? 1 : 0, NULL) == 1 &&
        EVP_CipherUpdate(ctx, NULL, &n, (const uint8_t *)aad, (int)aadlen) == 1 &&
        EVP_CipherUpdate(ctx, out, &n, in, (int)len) == 1 &&
        (enc || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, TAG_LEN, tag) == 1) &&
        EVP_CipherFinal_ex(ctx, out + n, &m) == 1 &&
        (!enc || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, TAG_LEN, tag) == 1))
        ok = 0;
    EVP_CIPHER_CTX_free(ctx);
    EVP_CIPHER_free(c);
    return ok;
}

/* Parse and open one "key ..." line into k. */
static int parse_line(char *line, const uint8_t mk[KS_MASTER_LEN], struct ks_key *k, char *err,
                      size_t errlen)
{
    char *tok[11], *save = NULL, aad[160];
    uint8_t nonce[NONCE_LEN], tag[TAG_LEN], ct[KS_KEY_MAX];
    long ctlen;
    int nt = 0, t, u, a;
    char *end;

    for (char *p = strtok_r(line, " \t", &save); p != NULL && nt < 11;
         p = strtok_r(NULL, " \t", &save))
        tok[nt++] = p;
    if (nt != 10 || strcmp(tok[0], "key") != 0) {
        snprintf(err, errlen, "malformed entry");
        return -1;
    }
    memset(k, 0, sizeof(*k));
    if (!name_ok(tok[1])) {
        snprintf(err, errlen, "bad key name");
        return -1;
    }
    snprintf(k->name, sizeof(k->name), "%s", tok[1]);
    if ((t = ks_type_parse(tok[2])) < 0 || (u = ks_usage_parse(tok[3])) < 0 ||
        (a = ks_alg_parse(tok[4])) < 0) {
        snprintf(err, errlen, "key %s: unknown type, usage or algorithm", k->name);
        return -1;
    }
    k->type = (enum ks_type)t;
    k->usage = (enum ks_usage)u;
    k->alg = (enum ks_alg)a;
    k->version = (unsigned)strtoul(tok[5], &end, 10);
    if (*end != '\0' || util_hex_decode(tok[6], k->kcv, KS_KCV_LEN) != KS_KCV_LEN ||
        util_hex_decode(tok[7], nonce, NONCE_LEN) != NONCE_LEN ||
        (ctlen = util_hex_decode(tok[8], ct, sizeof(ct))) <= 0 ||
        util_hex_decode(tok[9], tag, TAG_LEN) != TAG_LEN) {
        snprintf(err, errlen, "key %s: malformed version, KCV, nonce, key or tag", k->name);
        return -1;
    }
    /* attributes first, so a wrong usage is reported as such */
    k->len = (size_t)ctlen;
    if (check_attrs(k, err, errlen) != 0)
        return -1;
    if (aad_of(k, aad, sizeof(aad)) < 0 ||
        gcm(false, mk, nonce, aad, strlen(aad), ct, (size_t)ctlen, k->key, tag) != 0) {
        OPENSSL_cleanse(k->key, sizeof(k->key));
        snprintf(err, errlen, "key %s: does not decrypt (wrong master key or altered entry)",
                 k->name);
        return -1;
    }
    return check_key(k, true, err, errlen);
}

struct keyset *keyset_load(const char *path, const uint8_t mk[KS_MASTER_LEN], char *err,
                           size_t errlen)
{
    char line[512], msg[200];
    struct ks_key k;
    struct keyset *ks;
    unsigned lineno = 0;
    FILE *fp;

    /* KCVs need the fetched ciphers: make sure they are there */
    if (crypto_init(msg, sizeof(msg)) != 0) {
        snprintf(err, errlen, "%s", msg);
        return NULL;
    }
    fp = fopen(path, "re");
    if (fp == NULL) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    ks = keyset_new();
    while (ks != NULL && fgets(line, sizeof(line), fp) != NULL) {
        lineno++;
        line[strcspn(line, "\r\n")] = '\0';
        if (lineno == 1) {
            if (strcmp(line, MAGIC) != 0) {
                snprintf(err, errlen, "%s:1: not a cardgate key store", path);
                goto fail;
            }
            continue;
        }
        if (line[0] == '\0' || line[0] == '#')
            continue;
        if (parse_line(line, mk, &k, msg, sizeof(msg)) != 0) {
            snprintf(err, errlen, "%s:%u: %s", path, lineno, msg);
            goto fail;
        }
        if (keyset_find(ks, k.name) != NULL) {
            snprintf(err, errlen, "%s:%u: key %s appears twice", path, lineno, k.name);
            goto fail;
        }
        if (put(ks, &k) != 0) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
        OPENSSL_cleanse(&k, sizeof(k));
    }
    if (lineno == 0) {
        snprintf(err, errlen, "%s: empty file", path);
        goto fail;
    }
    OPENSSL_cleanse(line, sizeof(line));
    fclose(fp);
    return ks;
fail:
    OPENSSL_cleanse(&k, sizeof(k));
    OPENSSL_cleanse(line, sizeof(line));
    fclose(fp);
    keyset_unref(ks);
    return NULL;
}

int keyset_save(const struct keyset *ks, const char *path, const uint8_t mk[KS_MASTER_LEN],
                char *err, size_t errlen)
{
    char tmp[4096], aad[160], kcv[7], nonceh[2 * NONCE_LEN + 1], cth[2 * KS_KEY_MAX + 1],
        tagh[2 * TAG_LEN + 1];
    uint8_t nonce[NONCE_LEN], ct[KS_KEY_MAX], tag[TAG_LEN];
    int fd, rc = -1;
    FILE *fp;

    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >= sizeof(tmp)) {
        snprintf(err, errlen, "path too long");
        return -1;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 || (fp = fdopen(fd, "w")) == NULL) {
        snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    fprintf(fp, "%s\n", MAGIC);
    for (size_t i = 0; i < ks->n; i++) {
        const struct ks_key *k = &ks->keys[i];
        if (crypto_random(nonce, sizeof(nonce)) != 0 || aad_of(k, aad, sizeof(aad)) < 0 ||
            gcm(true, mk, nonce, aad, strlen(aad), k->key, k->len, ct, tag) != 0) {
            snprintf(err, errlen, "key %s: encryption failed", k->name);
            fclose(fp);
            goto out;
        }
        util_hex_encode(k->kcv, KS_KCV_LEN, kcv);
        util_hex_encode(nonce, NONCE_LEN, nonceh);
        util_hex_encode(ct, k->len, cth);
        util_hex_encode(tag, TAG_LEN, tagh);
        fprintf(fp, "key %s %s %s %s %u %s %s %s %s\n", k->name, ks_type_name(k->type),
                ks_usage_name(k->usage), ks_alg_name(k->alg), k->version, kcv, nonceh, cth, tagh);
    }
    if (fflush(fp) != 0 || fsync(fileno(fp)) != 0) {
        snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
        fclose(fp);
        goto out;
    }
    if (fclose(fp) != 0 || rename(tmp, path) != 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        goto out;
    }
    rc = 0;
out:
    if (rc != 0)
        unlink(tmp);
    OPENSSL_cleanse(ct, sizeof(ct));
    return rc;
}

void keyset_holder_init(struct keyset_holder *h)
{
    pthread_mutex_init(&h->mu, NULL);
    h->cur = NULL;
    h->generation = 0;
}

struct keyset *keyset_holder_get(struct keyset_holder *h)
{
    pthread_mutex_lock(&h->mu);
    struct keyset *ks = keyset_ref(h->cur);
    pthread_mutex_unlock(&h->mu);
    return ks;
}

void keyset_holder_swap(struct keyset_holder *h, struct keyset *ks)
{
    pthread_mutex_lock(&h->mu);
    struct keyset *old = h->cur;
    if (ks != NULL)
        ks->generation = ++h->generation;
    h->cur = ks;
    pthread_mutex_unlock(&h->mu);
    keyset_unref(old);
}

void keyset_holder_destroy(struct keyset_holder *h)
{
    keyset_holder_swap(h, NULL);
    pthread_mutex_destroy(&h->mu);
}

int keystore_pan_hash_key(const char *store_path, const char *master_path, uint8_t key[KS_KEY_MAX],
                          size_t *len, char *err, size_t errlen)
{
    uint8_t mk[KS_MASTER_LEN];
    struct keyset *ks;
    const struct ks_key *k;
    int rc = -1;

    if (ks_master_load(master_path, mk, err, errlen) != 0)
        return -1;
    ks = keyset_load(store_path, mk, err, errlen);
    OPENSSL_cleanse(mk, sizeof(mk));
    if (ks == NULL)
        return -1;
    k = keyset_latest(ks, KS_PAN_HASH);
    if (k == NULL) {
        snprintf(err, errlen, "%s: no pan-hash key", store_path);
    } else {
        memcpy(key, k->key, k->len);
        *len = k->len;
        rc = 0;
    }
    keyset_unref(ks);
    return rc;
}
