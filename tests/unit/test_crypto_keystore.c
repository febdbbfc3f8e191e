/*
 * test_crypto_keystore.c - the key store: save/load round trip, refusal of
 * a wrong master key, an altered entry, a wrong usage and a wrong KCV (each
 * with a message naming the key), master key file permissions and the
 * systemd credential, the PAN-hash key accessor, the holder's swap and
 * reference counting, and wiping.
 */
#include "common/util.h"
#include "crypto/cipher.h"
#include "crypto/keystore.h"
#include "crypto/pan.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

static char dir[64];
static char store[128], master[128];
static uint8_t mk[KS_MASTER_LEN];

static int setup(void **state)
{
    char err[200];
    (void)state;
    if (crypto_init(err, sizeof(err)) != 0)
        return -1;
    snprintf(dir, sizeof(dir), "/tmp/cg-ks-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(store, sizeof(store), "%s/keys", dir);
    snprintf(master, sizeof(master), "%s/master", dir);
    for (int i = 0; i < KS_MASTER_LEN; i++)
        mk[i] = (uint8_t)(i * 7 + 1);
    return 0;
}

static int teardown(void **state)
{
    char cmd[128];
    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static struct ks_key mkkey(const char *name, enum ks_type t, enum ks_alg a, size_t len,
                           uint8_t fill)
{
    struct ks_key k;
    memset(&k, 0, sizeof(k));
    snprintf(k.name, sizeof(k.name), "%s", name);
    k.type = t;
    k.usage = ks_default_usage(t);
    k.alg = a;
    k.version = 1;
    k.len = len;
    memset(k.key, fill, len);
    return k;
}

static struct keyset *sample(void)
{
    char err[200];
    struct keyset *ks = keyset_new();
    struct ks_key ks_[] = {
        mkkey("pvk", KS_PVK, KS_ALG_TDES, 16, 0x11),
        mkkey("cvk", KS_CVK, KS_ALG_TDES, 16, 0x22),
        mkkey("imk", KS_IMK_AC, KS_ALG_TDES, 16, 0x33),
        mkkey("zpk", KS_ZPK, KS_ALG_AES, 16, 0x44),
        mkkey("zmk", KS_ZMK, KS_ALG_TDES, 24, 0x55),
        mkkey("mak", KS_MAK, KS_ALG_AES, 32, 0x66),
        mkkey("pan", KS_PAN_HASH, KS_ALG_HMAC, 32, 0x77),
        mkkey("audit", KS_AUDIT_SIGN, KS_ALG_ED25519, 32, 0x88),
    };
    assert_non_null(ks);
    for (size_t i = 0; i < UTIL_NELEM(ks_); i++)
        assert_int_equal(keyset_put(ks, &ks_[i], err, sizeof(err)), 0);
    return ks;
}

static void t_roundtrip(void **state)
{
    char err[200];
    struct keyset *ks = sample(), *back;
    struct stat st;
    (void)state;

    assert_int_equal(keyset_save(ks, store, mk, err, sizeof(err)), 0);
    assert_int_equal(stat(store, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    back = keyset_load(store, mk, err, sizeof(err));
    assert_non_null(back);
    assert_int_equal(back->n, ks->n);
    for (size_t i = 0; i < ks->n; i++) {
        const struct ks_key *a = &ks->keys[i], *b = keyset_find(back, a->name);
        assert_non_null(b);
        assert_int_equal(a->len, b->len);
        assert_memory_equal(a->key, b->key, a->len);
        assert_memory_equal(a->kcv, b->kcv, KS_KCV_LEN);
        assert_int_equal(a->type, b->type);
    }
    /* no key material in the file */
    size_t len;
    char *text = util_read_file(store, 1 << 20, &len);
    char hex[65];
    assert_non_null(text);
    for (size_t i = 0; i < ks->n; i++) {
        util_hex_encode(ks->keys[i].key, ks->keys[i].len, hex);
        assert_null(strcasestr(text, hex));
    }
    free(text);
    /* typed lookup refuses the wrong purpose */
    assert_non_null(keyset_get(back, "cvk", KS_CVK, KS_U_CVV, err, sizeof(err)));
    assert_null(keyset_get(back, "cvk", KS_PVK, KS_U_PIN_VERIFY, err, sizeof(err)));
    assert_non_null(strstr(err, "cvk"));
    assert_null(keyset_get(back, "nope", KS_CVK, KS_U_CVV, err, sizeof(err)));
    keyset_unref(ks);
    keyset_unref(back);
}

static void t_wrong_master_and_tamper(void **state)
{
    char err[200];
    uint8_t other[KS_MASTER_LEN];
    struct keyset *ks = sample();
    (void)state;

    assert_int_equal(keyset_save(ks, store, mk, err, sizeof(err)), 0);
    keyset_unref(ks);
    memcpy(other, mk, sizeof(other));
    other[0] ^= 1;
    assert_null(keyset_load(store, other, err, sizeof(err)));
    assert_non_null(strstr(err, "does not decrypt"));

    /* wrong usage for the type: named, and refused before decryption */
    size_t len;
    char *text = util_read_file(store, 1 << 20, &len), *p;
    assert_non_null(text);
    p = strstr(text, " cvk cvv ");
    assert_non_null(p);
    memcpy(p, " cvk mac ", 9);
    FILE *fp = fopen(store, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
    assert_null(keyset_load(store, mk, err, sizeof(err)));
    assert_non_null(strstr(err, "key cvk: usage mac not allowed for type cvk"));
    free(text);
}

/* An entry that is validly encrypted but carries a wrong KCV. */
static void t_wrong_kcv(void **state)
{
    char err[200], aad[160], line[400], nh[25], ch[33], th[33];
    uint8_t nonce[12] = {1, 2, 3}, key[16], ct[16], tag[16];
    int n = 0, m = 0;
    (void)state;

    memset(key, 0x5A, sizeof(key));
    snprintf(aad, sizeof(aad), "badkcv|zpk|pin-encrypt|tdes|1|000000");
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    assert_int_equal(EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, mk, nonce), 1);
    assert_int_equal(EVP_EncryptUpdate(c, NULL, &n, (uint8_t *)aad, (int)strlen(aad)), 1);
    assert_int_equal(EVP_EncryptUpdate(c, ct, &n, key, 16), 1);
    assert_int_equal(EVP_EncryptFinal_ex(c, ct + n, &m), 1);
    assert_int_equal(EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, 16, tag), 1);
    EVP_CIPHER_CTX_free(c);
    util_hex_encode(nonce, 12, nh);
    util_hex_encode(ct, 16, ch);
    util_hex_encode(tag, 16, th);
    snprintf(line, sizeof(line),
             "cardgate-keystore 1\nkey badkcv zpk pin-encrypt tdes 1 000000 %s %s %s\n", nh, ch,
             th);
    FILE *fp = fopen(store, "w");
    assert_non_null(fp);
    fputs(line, fp);
    fclose(fp);
    assert_null(keyset_load(store, mk, err, sizeof(err)));
    assert_non_null(strstr(err, "key badkcv: KCV does not match"));
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
}

static void t_master(void **state)
{
    char err[200], hex[2 * KS_MASTER_LEN + 2], cred[128];
    uint8_t got[KS_MASTER_LEN], key[KS_KEY_MAX];
    size_t kl = 0;
    struct keyset *ks = sample();
    (void)state;

    util_hex_encode(mk, sizeof(mk), hex);
    strcat(hex, "\n");
    write_file(master, hex, 0644);
    assert_int_equal(ks_master_load(master, got, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "chmod 600"));
    write_file(master, hex, 0600);
    assert_int_equal(ks_master_load(master, got, err, sizeof(err)), 0);
    assert_memory_equal(got, mk, sizeof(mk));
    if (geteuid() == 0) { /* a file another (unprivileged) user owns is refused */
        assert_int_equal(chown(master, 65534, 65534), 0);
        assert_int_equal(ks_master_load(master, got, err, sizeof(err)), -1);
        assert_non_null(strstr(err, "owned by uid 65534"));
        assert_int_equal(chown(master, 0, 0), 0);
    }
    write_file(master, "abcd\n", 0600);
    assert_int_equal(ks_master_load(master, got, err, sizeof(err)), -1);

    /* systemd credential */
    snprintf(cred, sizeof(cred), "%s/%s", dir, KS_CREDENTIAL);
    write_file(cred, hex, 0400);
    setenv("CREDENTIALS_DIRECTORY", dir, 1);
    memset(got, 0, sizeof(got));
    assert_int_equal(ks_master_load(NULL, got, err, sizeof(err)), 0);
    assert_memory_equal(got, mk, sizeof(mk));

    /* the PAN-hash key through the credential */
    assert_int_equal(keyset_save(ks, store, mk, err, sizeof(err)), 0);
    assert_int_equal(keystore_pan_hash_key(store, NULL, key, &kl, err, sizeof(err)), 0);
    assert_int_equal(kl, 32);
    assert_memory_equal(key, keyset_latest(ks, KS_PAN_HASH)->key, 32);
    char h1[PAN_HASH_HEX];
    assert_int_equal(pan_hash_hex(key, kl, "4012345678909", 13, h1), 0);
    unsetenv("CREDENTIALS_DIRECTORY");
    assert_int_equal(ks_master_load(NULL, got, err, sizeof(err)), -1);
    keyset_unref(ks);
}

static void t_holder_and_wipe(void **state)
{
    char err[200];
    struct keyset_holder h;
    struct keyset *a = sample(), *b, *in_use, *now;
    struct ks_key z = mkkey("zpk", KS_ZPK, KS_ALG_AES, 16, 0x99);
    (void)state;

    keyset_holder_init(&h);
    assert_null(keyset_holder_get(&h));
    keyset_holder_swap(&h, a); /* holder owns a */
    in_use = keyset_holder_get(&h);
    assert_ptr_equal(in_use, a);
    assert_int_equal(keyset_refcount(a), 2);
    uint64_t gen = a->generation;

    /* key change: copy, replace the ZPK, swap in */
    b = keyset_copy(in_use);
    assert_non_null(b);
    assert_int_equal(keyset_put(b, &z, err, sizeof(err)), 0);
    keyset_holder_swap(&h, b);
    now = keyset_holder_get(&h);
    assert_ptr_equal(now, b);
    assert_true(b->generation > gen);
    assert_memory_equal(keyset_find(now, "zpk")->key, z.key, 16);
    /* the request that still holds the old set keeps its old ZPK */
    assert_int_equal(keyset_refcount(a), 1);
    assert_memory_not_equal(keyset_find(in_use, "zpk")->key, z.key, 16);

    /* wiping empties and zeroes every slot */
    struct ks_key *slots = in_use->keys;
    size_t cap = in_use->cap;
    keyset_wipe(in_use);
    assert_int_equal(in_use->n, 0);
    for (size_t i = 0; i < cap * sizeof(*slots); i++)
        assert_int_equal(((uint8_t *)slots)[i], 0);
    keyset_unref(in_use); /* last reference: freed */
    keyset_unref(now);
    keyset_holder_destroy(&h);
}

/* The audit signing key: Ed25519, KCV = SHA-256(public key), usable by the audit writer. */
static void t_audit_key(void **state)
{
    char err[200];
    struct keyset *ks = sample();
    const struct ks_key *k = keyset_find(ks, "audit");
    uint8_t pub[32], md[32], sig[64];
    size_t siglen = sizeof(sig);
    static const uint8_t msg[] = "cgaudit-checkpoint-v1";
    (void)state;

    assert_non_null(k);
    assert_int_equal(ks_ed25519_public(k, pub), 0);
    assert_int_equal(EVP_Digest(pub, 32, md, NULL, EVP_sha256(), NULL), 1);
    assert_memory_equal(md, k->kcv, KS_KCV_LEN);
    EVP_PKEY *p = keyset_audit_sign_key(ks, err, sizeof(err));
    assert_non_null(p);
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    assert_int_equal(EVP_DigestSignInit(c, NULL, NULL, NULL, p), 1);
    assert_int_equal(EVP_DigestSign(c, sig, &siglen, msg, sizeof(msg)), 1);
    EVP_MD_CTX_free(c);
    EVP_PKEY_free(p);
    EVP_PKEY *v = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, 32);
    c = EVP_MD_CTX_new();
    assert_int_equal(EVP_DigestVerifyInit(c, NULL, NULL, NULL, v), 1);
    assert_int_equal(EVP_DigestVerify(c, sig, siglen, msg, sizeof(msg)), 1);
    EVP_MD_CTX_free(c);
    EVP_PKEY_free(v);
    /* an HMAC pan-hash key is never handed out as the signing key */
    struct keyset *none = keyset_new();
    assert_null(keyset_audit_sign_key(none, err, sizeof(err)));
    keyset_unref(none);
    keyset_unref(ks);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_roundtrip),       cmocka_unit_test(t_wrong_master_and_tamper),
        cmocka_unit_test(t_wrong_kcv),       cmocka_unit_test(t_master),
        cmocka_unit_test(t_holder_and_wipe), cmocka_unit_test(t_audit_key),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
