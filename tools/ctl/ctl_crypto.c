/*
 * ctl_crypto.c - `cardgatectl crypto ...`: the payment-crypto library from
 * the command line, for operators and for testing from outside.  Keys given
 * as hex on the command line are for test keys only (they show up in the
 * shell history and the process list).  Every command prints its result on
 * one line (upper-case hex or digits); bad input exits 1 with a message
 * that names the option, never its value; usage errors exit 2.
 */
#include "common/util.h"
#include "crypto/cipher.h"
#include "crypto/cvv.h"
#include "crypto/emv.h"
#include "crypto/keyblock.h"
#include "crypto/mac.h"
#include "crypto/pan.h"
#include "crypto/pin.h"
#include "tools/ctl/ctl.h"

#include <getopt.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    O_KEY = 1,
    O_AES,
    O_LENGTH,
    O_FORMAT,
    O_PIN,
    O_PAN,
    O_BLOCK,
    O_EXPIRY,
    O_SC,
    O_CVK,
    O_PVKI,
    O_PVK,
    O_VALDATA,
    O_DECTAB,
    O_ALG,
    O_DATA,
    O_PAD,
    O_IMK,
    O_PSN,
    O_OPTION,
    O_MK,
    O_CVN,
    O_ATC,
    O_UN,
    O_METHOD,
    O_ARQC,
    O_ARC,
    O_CSU,
    O_PROP,
    O_KEK,
    O_SCHEME,
    O_COUNT
};

static const struct option longopts[] = {
    {"key", required_argument, NULL, O_KEY},
    {"aes", no_argument, NULL, O_AES},
    {"length", required_argument, NULL, O_LENGTH},
    {"format", required_argument, NULL, O_FORMAT},
    {"pin", required_argument, NULL, O_PIN},
    {"pan", required_argument, NULL, O_PAN},
    {"block", required_argument, NULL, O_BLOCK},
    {"expiry", required_argument, NULL, O_EXPIRY},
    {"service-code", required_argument, NULL, O_SC},
    {"cvk", required_argument, NULL, O_CVK},
    {"pvki", required_argument, NULL, O_PVKI},
    {"pvk", required_argument, NULL, O_PVK},
    {"validation-data", required_argument, NULL, O_VALDATA},
    {"dectab", required_argument, NULL, O_DECTAB},
    {"alg", required_argument, NULL, O_ALG},
    {"data", required_argument, NULL, O_DATA},
    {"pad", required_argument, NULL, O_PAD},
    {"imk", required_argument, NULL, O_IMK},
    {"psn", required_argument, NULL, O_PSN},
    {"option", required_argument, NULL, O_OPTION},
    {"mk", required_argument, NULL, O_MK},
    {"cvn", required_argument, NULL, O_CVN},
    {"atc", required_argument, NULL, O_ATC},
    {"un", required_argument, NULL, O_UN},
    {"method", required_argument, NULL, O_METHOD},
    {"arqc", required_argument, NULL, O_ARQC},
    {"arc", required_argument, NULL, O_ARC},
    {"csu", required_argument, NULL, O_CSU},
    {"prop", required_argument, NULL, O_PROP},
    {"kek", required_argument, NULL, O_KEK},
    {"scheme", required_argument, NULL, O_SCHEME},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static const char usage_text[] =
    "usage: cardgatectl crypto COMMAND [OPTIONS]   (hex keys: test keys only)\n"
    "  kcv --key HEX [--aes] [--length N]\n"
    "  pinblock encode --format 0|1|2|3|4 --pin PIN [--pan PAN] [--key HEX]\n"
    "  pinblock decode --format 0|1|2|3|4 --block HEX [--pan PAN] [--key HEX]\n"
    "  cvv --pan PAN --expiry YYMM --service-code SSS --cvk HEX\n"
    "  pvv --pan PAN --pin PIN --pvki N --pvk HEX\n"
    "  ibm3624 --pvk HEX --validation-data DIGITS --pin PIN [--dectab 16DIGITS]\n"
    "  mac --alg iso9797-1-3|iso9797-1-1|aes-cmac --key HEX --data HEX [--pad 1|2]\n"
    "  emv mk --imk HEX --pan PAN --psn NN [--option a|b]\n"
    "  emv arqc --mk HEX --cvn N --atc HEX --data HEX [--un HEX]\n"
    "  emv arpc --method 1|2 --key HEX --arqc HEX --arc HEX|--csu HEX [--prop HEX]\n"
    "  key unwrap --kek HEX --block HEX|--key HEX --scheme ecb|variant|tr31\n";

struct args {
    const char *cmd;
    const char *v[O_COUNT];
    bool aes;
};

static int bad(const struct args *a, const char *msg)
{
    fprintf(stderr, "cardgatectl crypto %s: %s\n", a->cmd, msg);
    return 1;
}

static const char *optname(int id)
{
    for (const struct option *o = longopts; o->name != NULL; o++)
        if (o->val == id)
            return o->name;
    return "?";
}

/* Required option id or NULL after a message. */
static const char *need(const struct args *a, int id)
{
    if (a->v[id] == NULL) {
        fprintf(stderr, "cardgatectl crypto %s: --%s is required\n", a->cmd, optname(id));
        return NULL;
    }
    return a->v[id];
}

/* Hex option into out; length or -1 after a message (min..max bytes). */
static long hexopt(const struct args *a, int id, uint8_t *out, size_t min, size_t max)
{
    const char *s = need(a, id);
    long n;
    if (s == NULL)
        return -1;
    n = util_hex_decode(s, out, max);
    if (n < 0 || (size_t)n < min) {
        fprintf(stderr, "cardgatectl crypto %s: --%s: expected %zu..%zu bytes of hex\n", a->cmd,
                optname(id), min, max);
        return -1;
    }
    return n;
}

static void print_hex(const uint8_t *b, size_t n)
{
    char hex[2 * 256 + 1];
    util_hex_encode(b, n, hex);
    puts(hex);
    OPENSSL_cleanse(hex, sizeof(hex));
}

static bool pan_ok(const struct args *a, const char *pan)
{
    if (pan == NULL || !pan_is_wellformed(pan, strlen(pan))) {
        bad(a, "--pan: expected 12..19 digits");
        return false;
    }
    return true;
}

static int cmd_kcv(struct args *a)
{
    uint8_t key[32], kcv[16];
    enum crypto_alg alg = a->aes ? CRYPTO_AES : CRYPTO_TDES;
    long n = hexopt(a, O_KEY, key, 8, 32), len = a->v[O_LENGTH] ? atol(a->v[O_LENGTH]) : 3;
    int rc = 1;

    if (n < 0)
        return 1;
    if (!crypto_key_len_ok(alg, (size_t)n))
        rc = bad(a, a->aes ? "--key: AES keys are 16, 24 or 32 bytes"
                           : "--key: TDES keys are 8, 16 or 24 bytes");
    else if (len < 1 || (size_t)len > crypto_block_size(alg))
        rc = bad(a, "--length: out of range");
    else if (crypto_kcv(alg, key, (size_t)n, kcv, (size_t)len) != 0)
        rc = bad(a, "KCV computation failed");
    else {
        print_hex(kcv, (size_t)len);
        rc = 0;
    }
    OPENSSL_cleanse(key, sizeof(key));
    return rc;
}

static int cmd_pinblock(struct args *a, const char *op)
{
    uint8_t key[32], blk[16];
    char pin[PIN_BUF];
    long kl = 0;
    size_t bl = 0;
    const char *f = need(a, O_FORMAT), *pan = a->v[O_PAN];
    size_t panlen = pan ? strlen(pan) : 0;
    int rc = 1;

    if (f == NULL)
        return 1;
    if (strlen(f) != 1 || f[0] < '0' || f[0] > '4')
        return bad(a, "--format: expected 0, 1, 2, 3 or 4");
    enum pin_format fmt = (enum pin_format)(f[0] - '0');
    if ((fmt == PIN_ISO0 || fmt == PIN_ISO3) && !pan_ok(a, pan))
        return 1;
    if (fmt == PIN_ISO4 && (pan == NULL || panlen == 0))
        return bad(a, "--pan: required for format 4");
    if (a->v[O_KEY] != NULL && (kl = hexopt(a, O_KEY, key, 16, 32)) < 0)
        return 1;
    if (fmt == PIN_ISO4 && kl == 0)
        return bad(a, "--key: format 4 needs an AES key");
    if (fmt == PIN_ISO2 && kl != 0)
        return bad(a, "--key: format 2 is clear only");
    if (strcmp(op, "encode") == 0) {
        const char *p = need(a, O_PIN);
        if (p == NULL)
            goto out;
        if (!pin_is_wellformed(p)) {
            rc = bad(a, "--pin: expected 4..12 digits");
            goto out;
        }
        if (kl > 0 ? pinblock_encrypt(fmt, key, (size_t)kl, p, pan, panlen, NULL, blk, &bl)
                   : (bl = 8, pinblock_clear_encode(fmt, p, pan, panlen, NULL, blk))) {
            rc = bad(a, "cannot encode (key length or PAN wrong for this format)");
            goto out;
        }
        print_hex(blk, bl);
        rc = 0;
    } else if (strcmp(op, "decode") == 0) {
        long n = hexopt(a, O_BLOCK, blk, 8, 16);
        if (n < 0)
            goto out;
        if (kl > 0 ? pinblock_decrypt(fmt, key, (size_t)kl, blk, (size_t)n, pan, panlen, pin)
                   : (n != 8 || pinblock_clear_decode(fmt, blk, pan, panlen, pin))) {
            rc = bad(a, "PIN block does not decode (malformed, or wrong key/PAN/format)");
            goto out;
        }
        puts(pin);
        rc = 0;
    } else {
        fputs(usage_text, stderr);
        rc = 2;
    }
out:
    OPENSSL_cleanse(key, sizeof(key));
    OPENSSL_cleanse(blk, sizeof(blk));
    OPENSSL_cleanse(pin, sizeof(pin));
    return rc;
}

static int cmd_cvv(struct args *a)
{
    uint8_t cvk[16];
    char out[4];
    const char *pan = need(a, O_PAN), *exp = need(a, O_EXPIRY), *sc = need(a, O_SC);
    int rc = 1;

    if (pan == NULL || exp == NULL || sc == NULL || !pan_ok(a, pan) ||
        hexopt(a, O_CVK, cvk, 16, 16) < 0)
        return 1;
    if (cvv_compute(cvk, 16, pan, strlen(pan), exp, sc, out) != 0)
        rc = bad(a, "--expiry must be YYMM and --service-code 3 digits");
    else {
        puts(out);
        rc = 0;
    }
    OPENSSL_cleanse(cvk, sizeof(cvk));
    return rc;
}

static int cmd_pvv(struct args *a)
{
    uint8_t pvk[24];
    char out[5];
    const char *pan = need(a, O_PAN), *pin = need(a, O_PIN), *ki = need(a, O_PVKI);
    long kl;
    int rc = 1;

    if (pan == NULL || pin == NULL || ki == NULL || !pan_ok(a, pan) ||
        (kl = hexopt(a, O_PVK, pvk, 16, 24)) < 0)
        return 1;
    if (strlen(ki) != 1 || ki[0] < '0' || ki[0] > '9')
        rc = bad(a, "--pvki: expected one digit");
    else if (!pin_is_wellformed(pin))
        rc = bad(a, "--pin: expected 4..12 digits");
    else if (pin_pvv(pvk, (size_t)kl, pan, strlen(pan), (unsigned)(ki[0] - '0'), pin, out) != 0)
        rc = bad(a, "--pvk: must be a 16- or 24-byte TDES key");
    else {
        puts(out);
        rc = 0;
    }
    OPENSSL_cleanse(pvk, sizeof(pvk));
    return rc;
}

static int cmd_ibm3624(struct args *a)
{
    uint8_t pvk[24];
    char out[PIN_BUF];
    const char *vd = need(a, O_VALDATA), *pin = need(a, O_PIN);
    long kl;
    int rc = 1;

    if (vd == NULL || pin == NULL || (kl = hexopt(a, O_PVK, pvk, 16, 24)) < 0)
        return 1;
    if (!pin_is_wellformed(pin))
        rc = bad(a, "--pin: expected 4..12 digits");
    else if (pin_ibm3624_offset(pvk, (size_t)kl, vd, a->v[O_DECTAB], pin, out) != 0)
        rc = bad(a, "--validation-data must be 1..16 hex digits, --dectab 16 digits");
    else {
        puts(out);
        rc = 0;
    }
    OPENSSL_cleanse(pvk, sizeof(pvk));
    return rc;
}

static int cmd_mac(struct args *a)
{
    uint8_t key[32], data[4096], mac[16];
    const char *alg = need(a, O_ALG);
    int algid, pad = a->v[O_PAD] ? atoi(a->v[O_PAD]) : 1, rc = 1;
    long kl, dl;
    size_t n = 0;

    if (alg == NULL)
        return 1;
    if ((algid = mac_alg_parse(alg)) < 0)
        return bad(a, "--alg: expected iso9797-1-3, iso9797-1-1 or aes-cmac");
    if (pad != 1 && pad != 2)
        return bad(a, "--pad: expected 1 or 2");
    if ((kl = hexopt(a, O_KEY, key, 8, 32)) < 0)
        return 1;
    if (a->v[O_DATA] != NULL && a->v[O_DATA][0] == '\0')
        dl = 0;
    else if ((dl = hexopt(a, O_DATA, data, 0, sizeof(data))) < 0)
        goto out;
    if (mac_compute((enum mac_alg)algid, key, (size_t)kl, pad, data, (size_t)dl, mac, &n) != 0)
        rc = bad(a, "--key: wrong length for this algorithm");
    else {
        print_hex(mac, n);
        rc = 0;
    }
out:
    OPENSSL_cleanse(key, sizeof(key));
    return rc;
}

static int cmd_emv(struct args *a, const char *op)
{
    uint8_t k[16], mk[16], data[1024], out[8], arqc[8], b[8], prop[8], un[4], atc[2];
    int rc = 1;

    if (strcmp(op, "mk") == 0) {
        const char *pan = need(a, O_PAN), *psn = a->v[O_PSN], *o = a->v[O_OPTION];
        enum emv_mkd opt = EMV_MKD_AUTO;
        if (pan == NULL || hexopt(a, O_IMK, k, 16, 16) < 0)
            goto out;
        if (o != NULL)
            opt = strcmp(o, "a") == 0   ? EMV_MKD_A
                  : strcmp(o, "b") == 0 ? EMV_MKD_B
                                        : (enum emv_mkd) - 1;
        if ((int)opt < 0)
            rc = bad(a, "--option: expected a or b");
        else if (emv_derive_icc_mk(opt, k, pan, strlen(pan), psn, mk) != 0)
            rc = bad(a, "--pan must be 1..19 digits and --psn 2 digits");
        else {
            print_hex(mk, 16);
            rc = 0;
        }
    } else if (strcmp(op, "arqc") == 0) {
        const char *c = need(a, O_CVN);
        long dl;
        int cvn = c ? atoi(c) : 0;
        if (c == NULL || hexopt(a, O_MK, mk, 16, 16) < 0 || hexopt(a, O_ATC, atc, 2, 2) < 0 ||
            (dl = hexopt(a, O_DATA, data, 1, sizeof(data))) < 0)
            goto out;
        if (!emv_cvn_supported(cvn)) {
            rc = bad(a, "--cvn: supported: 10, 18, 22 (Visa), 16, 17, 20, 21 (Mastercard)");
            goto out;
        }
        if ((cvn == 16 || cvn == 17) && hexopt(a, O_UN, un, 4, 4) < 0)
            goto out;
        if (emv_ac_key(cvn, mk, atc, un, k) != 0 || emv_arqc(cvn, k, data, (size_t)dl, out) != 0)
            rc = bad(a, "ARQC computation failed");
        else {
            print_hex(out, 8);
            rc = 0;
        }
    } else if (strcmp(op, "arpc") == 0) {
        const char *m = need(a, O_METHOD);
        if (m == NULL || hexopt(a, O_KEY, k, 16, 16) < 0 || hexopt(a, O_ARQC, arqc, 8, 8) < 0)
            goto out;
        if (strcmp(m, "1") == 0) {
            if (hexopt(a, O_ARC, b, 2, 2) < 0)
                goto out;
            rc = emv_arpc1(k, arqc, b, out) == 0 ? (print_hex(out, 8), 0) : 1;
        } else if (strcmp(m, "2") == 0) {
            long pl = 0;
            if (hexopt(a, O_CSU, b, 4, 4) < 0 ||
                (a->v[O_PROP] != NULL && (pl = hexopt(a, O_PROP, prop, 1, 8)) < 0))
                goto out;
            rc = emv_arpc2(k, arqc, b, prop, (size_t)pl, out) == 0 ? (print_hex(out, 4), 0) : 1;
        } else {
            rc = bad(a, "--method: expected 1 or 2");
        }
    } else {
        fputs(usage_text, stderr);
        rc = 2;
    }
out:
    OPENSSL_cleanse(k, sizeof(k));
    OPENSSL_cleanse(mk, sizeof(mk));
    return rc;
}

static int cmd_key(struct args *a, const char *op)
{
    uint8_t kek[32], in[32], key[TR31_MAX_KEY];
    char err[160];
    const char *s = need(a, O_SCHEME);
    int scheme, rc = 1;
    long kl, n;
    size_t outlen = 0;

    if (strcmp(op, "unwrap") != 0) {
        fputs(usage_text, stderr);
        return 2;
    }
    if (s == NULL)
        return 1;
    if ((scheme = keyblock_scheme_parse(s)) < 0)
        return bad(a, "--scheme: expected ecb, variant or tr31");
    if ((kl = hexopt(a, O_KEK, kek, 16, 32)) < 0)
        return 1;
    if (scheme == KEYBLOCK_TR31) {
        struct tr31_header h;
        const char *blk = need(a, O_BLOCK);
        if (blk == NULL)
            goto out;
        if (tr31_unwrap(kek, (size_t)kl, blk, &h, key, &outlen, err, sizeof(err)) != 0) {
            rc = bad(a, err);
            goto out;
        }
    } else {
        int id = a->v[O_KEY] ? O_KEY : O_BLOCK;
        if ((n = hexopt(a, id, in, 8, 24)) < 0)
            goto out;
        outlen = (size_t)n;
        if ((scheme == KEYBLOCK_ECB
                 ? keyblock_ecb(kek, (size_t)kl, false, in, outlen, key)
                 : keyblock_variant(kek, (size_t)kl, false, in, outlen, key)) != 0) {
            rc = bad(a, "--kek must be 16/24 bytes and the key 8/16/24 (variant: 16/24)");
            goto out;
        }
    }
    print_hex(key, outlen);
    rc = 0;
out:
    OPENSSL_cleanse(kek, sizeof(kek));
    OPENSSL_cleanse(in, sizeof(in));
    OPENSSL_cleanse(key, sizeof(key));
    return rc;
}

int ctl_crypto_main(int argc, char **argv)
{
    struct args a;
    char err[200];
    const char *sub = NULL;
    int c, first = 1;

    memset(&a, 0, sizeof(a));
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(usage_text, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    a.cmd = argv[1];
    if (strcmp(a.cmd, "pinblock") == 0 || strcmp(a.cmd, "emv") == 0 || strcmp(a.cmd, "key") == 0) {
        if (argc < 3) {
            fputs(usage_text, stderr);
            return 2;
        }
        sub = argv[2];
        first = 2;
    }
    optind = 1;
    opterr = 1;
    while ((c = getopt_long(argc - first, argv + first, "h", longopts, NULL)) != -1) {
        if (c == 'h') {
            fputs(usage_text, stdout);
            return 0;
        }
        if (c == O_AES)
            a.aes = true;
        else if (c > 0 && c < O_COUNT)
            a.v[c] = optarg;
        else {
            fputs(usage_text, stderr);
            return 2;
        }
    }
    if (optind != argc - first) {
        fprintf(stderr, "cardgatectl crypto %s: unexpected argument\n", a.cmd);
        return 2;
    }
    if (crypto_init(err, sizeof(err)) != 0) {
        fprintf(stderr, "cardgatectl crypto: %s\n", err);
        return 1;
    }
    if (strcmp(a.cmd, "kcv") == 0)
        return cmd_kcv(&a);
    if (strcmp(a.cmd, "pinblock") == 0)
        return cmd_pinblock(&a, sub);
    if (strcmp(a.cmd, "cvv") == 0)
        return cmd_cvv(&a);
    if (strcmp(a.cmd, "pvv") == 0)
        return cmd_pvv(&a);
    if (strcmp(a.cmd, "ibm3624") == 0)
        return cmd_ibm3624(&a);
    if (strcmp(a.cmd, "mac") == 0)
        return cmd_mac(&a);
    if (strcmp(a.cmd, "emv") == 0)
        return cmd_emv(&a, sub);
    if (strcmp(a.cmd, "key") == 0)
        return cmd_key(&a, sub);
    fprintf(stderr, "cardgatectl crypto: unknown command '%s'\n", a.cmd);
    fputs(usage_text, stderr);
    return 2;
}
