/*
 * ctl_key.c - `cardgatectl key ...`: the key store (crypto/keystore.h).
 *
 *   key init-master --master FILE          new random master key, mode 0600
 *   key generate --name N --type T [--alg tdes|aes|hmac] [--length BYTES]
 *   key import --name N --type T [--alg A] --component HEX|- --component-kcv HEX (2-3 times)
 *   key import --name N --type T [--alg A] --under ZMK --scheme ecb|variant|tr31
 *              --block HEX|TR31 [--kcv HEX]   (--kcv required for ecb and variant)
 *   key list                               NAME TYPE USAGE ALG VERSION KCV, one line per key
 *   key kcv --name N                       the KCV
 *   key rotate --name N                    new random key material, version + 1
 *   key pubkey --name N                    the public key of an ed25519 entry (audit-sign),
 *                                          64 hex digits, for auditors' audit verify
 *
 * Common: --store FILE (default $CARDGATE_KEYSTORE, else /etc/cardgate/keys),
 * --master FILE (default $CARDGATE_MASTER_KEY, else the systemd credential).
 * generate/import/rotate print the new entry's list line.  Key material is
 * never printed; a component given as "-" is read from stdin.
 */
#include "common/util.h"
#include "crypto/cipher.h"
#include "crypto/keyblock.h"
#include "crypto/keystore.h"
#include "tools/ctl/ctl.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_STORE "/etc/cardgate/keys"

static const char usage_text[] =
    "usage: cardgatectl key COMMAND [--store FILE] [--master FILE] [OPTIONS]\n"
    "  init-master --master FILE\n"
    "  generate --name N --type T [--alg tdes|aes|hmac] [--length BYTES]\n"
    "  import --name N --type T [--alg A] --component HEX|- --component-kcv HEX (2 or 3x)\n"
    "  import --name N --type T [--alg A] --under ZMK --scheme ecb|variant|tr31 --block B "
    "[--kcv HEX]\n"
    "  list\n"
    "  kcv --name N\n"
    "  rotate --name N\n"
    "  pubkey --name N                 public key of an ed25519 (audit-sign) key\n"
    "types: pvk cvk imk-ac zpk zmk mak pan-hash audit-sign\n";

enum {
    O_STORE = 1,
    O_MASTER,
    O_NAME,
    O_TYPE,
    O_ALG,
    O_LENGTH,
    O_COMP,
    O_COMPKCV,
    O_UNDER,
    O_SCHEME,
    O_BLOCK,
    O_KCV
};

static const struct option longopts[] = {
    {"store", required_argument, NULL, O_STORE},
    {"master", required_argument, NULL, O_MASTER},
    {"name", required_argument, NULL, O_NAME},
    {"type", required_argument, NULL, O_TYPE},
    {"alg", required_argument, NULL, O_ALG},
    {"length", required_argument, NULL, O_LENGTH},
    {"component", required_argument, NULL, O_COMP},
    {"component-kcv", required_argument, NULL, O_COMPKCV},
    {"under", required_argument, NULL, O_UNDER},
    {"scheme", required_argument, NULL, O_SCHEME},
    {"block", required_argument, NULL, O_BLOCK},
    {"kcv", required_argument, NULL, O_KCV},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

struct kargs {
    const char *store, *master, *name, *type, *alg, *length, *under, *scheme, *block, *kcv;
    const char *comp[3], *compkcv[3];
    int ncomp, ncompkcv;
};

static int fail(const char *cmd, const char *msg)
{
    fprintf(stderr, "cardgatectl key %s: %s\n", cmd, msg);
    return 1;
}

static void print_entry(const struct ks_key *k)
{
    char kcv[2 * KS_KCV_LEN + 1];
    util_hex_encode(k->kcv, KS_KCV_LEN, kcv);
    printf("%s %s %s %s %u %s\n", k->name, ks_type_name(k->type), ks_usage_name(k->usage),
           ks_alg_name(k->alg), k->version, kcv);
}

/* Load the store; a missing file is an empty set when create is true. */
static struct keyset *open_store(const struct kargs *a, const uint8_t *mk, bool create, char *err,
                                 size_t errlen)
{
    if (create && access(a->store, F_OK) != 0 && errno == ENOENT)
        return keyset_new();
    return keyset_load(a->store, mk, err, errlen);
}

/* Read one hex line from stdin into buf (no echo handling: pipe it in). */
static const char *read_stdin_line(char *buf, size_t cap)
{
    if (fgets(buf, (int)cap, stdin) == NULL)
        return NULL;
    buf[strcspn(buf, "\r\n")] = '\0';
    return buf;
}

static int init_master(const struct kargs *a)
{
    uint8_t mk[KS_MASTER_LEN];
    char hex[2 * KS_MASTER_LEN + 2];
    int fd, rc = 1;

    if (a->master == NULL)
        return fail("init-master", "--master FILE is required");
    fd = open(a->master, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        fprintf(stderr, "cardgatectl key init-master: %s: %s\n", a->master, strerror(errno));
        return 1;
    }
    if (crypto_random(mk, sizeof(mk)) == 0) {
        util_hex_encode(mk, sizeof(mk), hex);
        strcat(hex, "\n");
        if (write(fd, hex, strlen(hex)) == (ssize_t)strlen(hex) && fsync(fd) == 0)
            rc = 0;
    }
    close(fd);
    OPENSSL_cleanse(mk, sizeof(mk));
    OPENSSL_cleanse(hex, sizeof(hex));
    if (rc != 0) {
        unlink(a->master);
        return fail("init-master", "cannot write the master key");
    }
    printf("%s\n", a->master);
    return 0;
}

/* Type, usage and algorithm of the key being added, from the options. */
static int key_attrs(const char *cmd, const struct kargs *a, struct ks_key *k)
{
    int t, al;
    if (a->name == NULL || a->type == NULL)
        return fail(cmd, "--name and --type are required");
    if (strlen(a->name) >= sizeof(k->name))
        return fail(cmd, "--name too long");
    snprintf(k->name, sizeof(k->name), "%s", a->name);
    if ((t = ks_type_parse(a->type)) < 0)
        return fail(cmd,
                    "--type: expected pvk, cvk, imk-ac, zpk, zmk, mak, pan-hash or audit-sign");
    k->type = (enum ks_type)t;
    k->usage = ks_default_usage(k->type);
    if (a->alg != NULL) {
        if ((al = ks_alg_parse(a->alg)) < 0)
            return fail(cmd, "--alg: expected tdes, aes or hmac");
        k->alg = (enum ks_alg)al;
    } else {
        k->alg = k->type == KS_PAN_HASH     ? KS_ALG_HMAC
                 : k->type == KS_AUDIT_SIGN ? KS_ALG_ED25519
                                            : KS_ALG_TDES;
    }
    return 0;
}

static int do_generate(const char *cmd, const struct kargs *a, struct keyset *ks, struct ks_key *k,
                       char *err, size_t errlen)
{
    if (a->length != NULL)
        k->len = (size_t)atoi(a->length);
    else
        k->len = k->alg == KS_ALG_TDES ? 16 : 32;
    if (!ks_len_ok(k->alg, k->len))
        return fail(cmd, "--length does not fit the algorithm");
    if (crypto_random(k->key, k->len) != 0)
        return fail(cmd, "no randomness");
    if (k->alg == KS_ALG_TDES)
        crypto_des_parity(k->key, k->len);
    if (keyset_put(ks, k, err, errlen) != 0)
        return fail(cmd, err);
    return 0;
}

/* TR-31 key usage codes a store type accepts (X9.143 table 6). */
static bool tr31_usage_fits(enum ks_type t, const char *u)
{
    switch (t) {
    case KS_ZPK:
        return strcmp(u, "P0") == 0;
    case KS_ZMK:
        return strcmp(u, "K0") == 0;
    case KS_CVK:
        return strcmp(u, "C0") == 0;
    case KS_PVK:
        return strcmp(u, "V1") == 0 || strcmp(u, "V2") == 0 || strcmp(u, "V0") == 0;
    case KS_MAK:
        return u[0] == 'M';
    case KS_IMK_AC:
        return strcmp(u, "E0") == 0;
    case KS_PAN_HASH:
    case KS_AUDIT_SIGN:
        return false;
    }
    return false;
}

static int do_import(const struct kargs *a, struct keyset *ks, struct ks_key *k, char *err,
                     size_t errlen)
{
    uint8_t comps[3][32], kcvs[3][8], in[32], kcv[KS_KCV_LEN];
    char line[200];
    int rc = 1;

    if (a->ncomp > 0) {
        const uint8_t *cp[3], *kp[3];
        long len = -1;
        int bad = 0;
        if (a->ncomp < 2 || a->under != NULL)
            return fail("import", "give 2 or 3 --component (and no --under)");
        if (a->ncompkcv != a->ncomp)
            return fail("import", "give one --component-kcv per --component (custodians' KCVs)");
        for (int i = 0; i < a->ncomp; i++) {
            const char *s = a->comp[i];
            if (strcmp(s, "-") == 0 && (s = read_stdin_line(line, sizeof(line))) == NULL)
                goto out;
            long n = util_hex_decode(s, comps[i], sizeof(comps[i]));
            OPENSSL_cleanse(line, sizeof(line));
            if (n <= 0 || (len >= 0 && n != len)) {
                fprintf(stderr, "cardgatectl key import: component %d: not hex or wrong length\n",
                        i + 1);
                goto out;
            }
            len = n;
            cp[i] = comps[i];
            kp[i] = NULL;
            {
                if (util_hex_decode(a->compkcv[i], kcvs[i], sizeof(kcvs[i])) != KS_KCV_LEN) {
                    fprintf(stderr, "cardgatectl key import: component %d: KCV must be 3 bytes\n",
                            i + 1);
                    goto out;
                }
                kp[i] = kcvs[i];
            }
        }
        if (k->alg == KS_ALG_HMAC || k->alg == KS_ALG_ED25519) {
            fail("import", "components are for TDES/AES keys");
            goto out;
        }
        if (keyblock_combine(ks_crypto_alg(k), cp, (size_t)a->ncomp, (size_t)len, kp, KS_KCV_LEN,
                             k->key, &bad) != 0) {
            if (bad > 0)
                fprintf(stderr, "cardgatectl key import: component %d does not match its KCV\n",
                        bad);
            else
                fail("import", "components have a wrong length for the algorithm");
            goto out;
        }
        k->len = (size_t)len;
    } else if (a->under != NULL) {
        const struct ks_key *zmk = keyset_get(ks, a->under, KS_ZMK, KS_U_KEY_ENCRYPT, err, errlen);
        int scheme = a->scheme ? keyblock_scheme_parse(a->scheme) : -1;
        if (zmk == NULL) {
            fail("import", err);
            goto out;
        }
        if (scheme < 0 || a->block == NULL) {
            fail("import", "--scheme ecb|variant|tr31 and --block are required with --under");
            goto out;
        }
        if (scheme == KEYBLOCK_TR31) {
            struct tr31_header h;
            if (tr31_unwrap(zmk->key, zmk->len, a->block, &h, k->key, &k->len, err, errlen) != 0) {
                fail("import", err);
                goto out;
            }
            if (!tr31_usage_fits(k->type, h.usage)) {
                fprintf(stderr, "cardgatectl key import: TR-31 key usage %s does not fit type %s\n",
                        h.usage, ks_type_name(k->type));
                goto out;
            }
        } else {
            long n = util_hex_decode(a->block, in, sizeof(in));
            if (a->kcv == NULL) {
                fail("import", "--kcv is required for ecb and variant imports");
                goto out;
            }
            if (n <= 0 ||
                (scheme == KEYBLOCK_ECB
                     ? keyblock_ecb(zmk->key, zmk->len, false, in, (size_t)n, k->key)
                     : keyblock_variant(zmk->key, zmk->len, false, in, (size_t)n, k->key)) != 0) {
                fail("import", "--block is not a 16/24-byte encrypted key for this scheme");
                goto out;
            }
            k->len = (size_t)n;
        }
    } else {
        return fail("import", "give --component (2-3x) or --under ZMK");
    }
    if (a->kcv != NULL) {
        uint8_t want[KS_KCV_LEN];
        if (util_hex_decode(a->kcv, want, sizeof(want)) != KS_KCV_LEN) {
            fail("import", "--kcv must be 3 bytes of hex");
            goto out;
        }
        if (ks_kcv(k->alg, k->key, k->len, kcv) != 0 || CRYPTO_memcmp(kcv, want, KS_KCV_LEN)) {
            fail("import", "the imported key does not match --kcv (wrong ZMK, scheme or block)");
            goto out;
        }
    }
    if (keyset_put(ks, k, err, errlen) != 0) {
        fail("import", err);
        goto out;
    }
    rc = 0;
out:
    OPENSSL_cleanse(comps, sizeof(comps));
    OPENSSL_cleanse(in, sizeof(in));
    return rc;
}

int ctl_key_main(int argc, char **argv)
{
    struct kargs a;
    uint8_t mk[KS_MASTER_LEN];
    char err[300];
    struct ks_key k;
    struct keyset *ks = NULL;
    const char *cmd;
    int c, rc = 1;
    bool changed = false;

    memset(&a, 0, sizeof(a));
    memset(&k, 0, sizeof(k));
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(usage_text, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    cmd = argv[1];
    optind = 1;
    while ((c = getopt_long(argc - 1, argv + 1, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'h':
            fputs(usage_text, stdout);
            return 0;
        case O_STORE:
            a.store = optarg;
            break;
        case O_MASTER:
            a.master = optarg;
            break;
        case O_NAME:
            a.name = optarg;
            break;
        case O_TYPE:
            a.type = optarg;
            break;
        case O_ALG:
            a.alg = optarg;
            break;
        case O_LENGTH:
            a.length = optarg;
            break;
        case O_COMP:
            if (a.ncomp == 3)
                return fail(cmd, "at most 3 components");
            a.comp[a.ncomp++] = optarg;
            break;
        case O_COMPKCV:
            if (a.ncompkcv == 3)
                return fail(cmd, "at most 3 component KCVs");
            a.compkcv[a.ncompkcv++] = optarg;
            break;
        case O_UNDER:
            a.under = optarg;
            break;
        case O_SCHEME:
            a.scheme = optarg;
            break;
        case O_BLOCK:
            a.block = optarg;
            break;
        case O_KCV:
            a.kcv = optarg;
            break;
        default:
            fputs(usage_text, stderr);
            return 2;
        }
    }
    if (optind != argc - 1) {
        fputs(usage_text, stderr);
        return 2;
    }
    if (crypto_init(err, sizeof(err)) != 0)
        return fail(cmd, err);
    if (strcmp(cmd, "init-master") == 0)
        return init_master(&a);
    if (a.store == NULL)
        a.store = getenv("CARDGATE_KEYSTORE") ? getenv("CARDGATE_KEYSTORE") : DEFAULT_STORE;
    if (a.master == NULL)
        a.master = getenv("CARDGATE_MASTER_KEY");
    if (strcmp(cmd, "generate") != 0 && strcmp(cmd, "import") != 0 && strcmp(cmd, "list") != 0 &&
        strcmp(cmd, "kcv") != 0 && strcmp(cmd, "rotate") != 0 && strcmp(cmd, "pubkey") != 0) {
        fprintf(stderr, "cardgatectl key: unknown command '%s'\n", cmd);
        fputs(usage_text, stderr);
        return 2;
    }
    if (ks_master_load(a.master, mk, err, sizeof(err)) != 0)
        return fail(cmd, err);
    bool create = strcmp(cmd, "generate") == 0 || strcmp(cmd, "import") == 0;
    if ((ks = open_store(&a, mk, create, err, sizeof(err))) == NULL) {
        fail(cmd, err);
        goto out;
    }
    if (strcmp(cmd, "list") == 0) {
        for (size_t i = 0; i < ks->n; i++)
            print_entry(&ks->keys[i]);
        rc = 0;
    } else if (strcmp(cmd, "kcv") == 0 || strcmp(cmd, "rotate") == 0 ||
               strcmp(cmd, "pubkey") == 0) {
        const struct ks_key *old;
        char kcv[2 * KS_KCV_LEN + 1];
        if (a.name == NULL) {
            fail(cmd, "--name is required");
            goto out;
        }
        if ((old = keyset_find(ks, a.name)) == NULL) {
            fprintf(stderr, "cardgatectl key %s: no key named %s\n", cmd, a.name);
            goto out;
        }
        if (strcmp(cmd, "kcv") == 0) {
            util_hex_encode(old->kcv, KS_KCV_LEN, kcv);
            puts(kcv);
            rc = 0;
        } else if (strcmp(cmd, "pubkey") == 0) {
            uint8_t pub[32];
            char hex[65];
            if (ks_ed25519_public(old, pub) != 0) {
                fprintf(stderr, "cardgatectl key pubkey: %s is not an ed25519 key\n", a.name);
                goto out;
            }
            util_hex_encode(pub, sizeof(pub), hex);
            puts(hex);
            rc = 0;
        } else {
            struct kargs g = {.length = NULL};
            k = *old;
            k.version = old->version + 1;
            g.length = NULL;
            char lenbuf[8];
            snprintf(lenbuf, sizeof(lenbuf), "%zu", old->len);
            g.length = lenbuf;
            if (do_generate(cmd, &g, ks, &k, err, sizeof(err)) == 0) {
                changed = true;
                rc = 0;
            }
        }
    } else {
        if (key_attrs(cmd, &a, &k) != 0)
            goto out;
        const struct ks_key *old = keyset_find(ks, k.name);
        if (old != NULL) {
            fprintf(stderr, "cardgatectl key %s: key %s exists (use rotate)\n", cmd, k.name);
            goto out;
        }
        k.version = 1;
        if ((strcmp(cmd, "generate") == 0 ? do_generate(cmd, &a, ks, &k, err, sizeof(err))
                                          : do_import(&a, ks, &k, err, sizeof(err))) == 0) {
            changed = true;
            rc = 0;
        }
    }
    if (changed) {
        if (keyset_save(ks, a.store, mk, err, sizeof(err)) != 0) {
            rc = fail(cmd, err);
            goto out;
        }
        print_entry(keyset_find(ks, k.name));
    }
out:
    OPENSSL_cleanse(mk, sizeof(mk));
    OPENSSL_cleanse(&k, sizeof(k));
    keyset_unref(ks);
    return rc;
}
