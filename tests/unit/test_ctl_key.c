/*
 * test_ctl_key.c - `cardgatectl key` end to end in a temporary directory:
 * master key creation, generate, import from components with their KCVs
 * (and a wrong component KCV), import of a TR-31 block under a ZMK (TR-31:2018
 * A.7.2.2), list, kcv, rotate, a world-readable master key refused, and the
 * PAN-hash key read back through keystore_pan_hash_key().  Neither the store
 * file nor any stderr may contain clear key material.
 */
#include "common/util.h"
#include "crypto/cipher.h"
#include "crypto/keystore.h"
#include "tests/lib/runprog.h"
#include "tools/ctl/ctl_card.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

static char dir[64], store[128], master[128], allerr[32768];

/* run "key ARGS" with the store/master options, collect stderr */
static int key(const char *args, char *out, size_t outcap)
{
    char full[4096], err[4096];
    /* options first, any "<" redirection of args stays at the end */
    const char *redir = strchr(args, '<');
    snprintf(full, sizeof(full), "key %.*s --store %s --master %s %s",
             redir ? (int)(redir - args) : (int)strlen(args), args, store, master,
             redir ? redir : "");
    int rc = runprog("cardgatectl", full, out, outcap, err, sizeof(err));
    strncat(allerr, err, sizeof(allerr) - strlen(allerr) - 1);
    return rc;
}

static void t_key_cli(void **state)
{
    char out[4096], args[1024], err[256], hex1[33], hex2[33], kcvh1[7], kcvh2[7], c2kcv[7];
    uint8_t zmk[16], c1[16], c2[16], kcv[3], pk[KS_KEY_MAX];
    size_t pkl = 0;
    struct stat st;
    (void)state;

    assert_int_equal(crypto_init(err, sizeof(err)), 0);
    snprintf(dir, sizeof(dir), "/tmp/cg-ctlkey-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(store, sizeof(store), "%s/keys", dir);
    snprintf(master, sizeof(master), "%s/master", dir);

    assert_int_equal(key("init-master", out, sizeof(out)), 0);
    assert_int_equal(stat(master, &st), 0);
    assert_int_equal(st.st_mode & 077, 0);
    assert_int_not_equal(key("init-master", out, sizeof(out)), 0); /* never overwrites */

    /* ZMK from two components: the TR-31:2018 A.7.2.2 KBPK split in two */
    assert_int_equal(util_hex_decode("DD7515F2BFC17F85CE48F3CA25CB21F6", zmk, 16), 16);
    assert_int_equal(crypto_random(c1, 16), 0);
    crypto_xor(c2, zmk, c1, 16);
    util_hex_encode(c1, 16, hex1);
    util_hex_encode(c2, 16, hex2);
    assert_int_equal(crypto_kcv(CRYPTO_TDES, c1, 16, kcv, 3), 0);
    util_hex_encode(kcv, 3, kcvh1);
    assert_int_equal(crypto_kcv(CRYPTO_TDES, c2, 16, kcv, 3), 0);
    util_hex_encode(kcv, 3, kcvh2);
    snprintf(c2kcv, sizeof(c2kcv), "%s", kcvh2);
    c2kcv[0] = c2kcv[0] == '0' ? '1' : '0';
    snprintf(args, sizeof(args),
             "import --name zmk1 --type zmk --component %s --component-kcv %s --component %s "
             "--component-kcv %s",
             hex1, kcvh1, hex2, c2kcv);
    assert_int_equal(key(args, out, sizeof(out)), 1);
    assert_non_null(strstr(allerr, "component 2 does not match its KCV"));
    snprintf(args, sizeof(args),
             "import --name zmk1 --type zmk --component %s --component-kcv %s --component %s", hex1,
             kcvh1, hex2);
    assert_int_equal(key(args, out, sizeof(out)), 1);
    /* the second custodian types the component on stdin (here: a file) */
    char cfile[160];
    snprintf(cfile, sizeof(cfile), "%s/c2", dir);
    FILE *cf = fopen(cfile, "w");
    assert_non_null(cf);
    fprintf(cf, "%s\n", hex2);
    fclose(cf);
    snprintf(args, sizeof(args),
             "import --name zmk1 --type zmk --component %s --component-kcv %s --component - "
             "--component-kcv %s < %s",
             hex1, kcvh1, kcvh2, cfile);
    assert_int_equal(key(args, out, sizeof(out)), 0);
    assert_non_null(strstr(out, "zmk1 zmk key-encrypt tdes 1 "));

    /* a ZPK under the ZMK as a TR-31 key block: KCV 57C409 */
    assert_int_equal(key("import --name zpk1 --type zpk --under zmk1 --scheme tr31 --block "
                         "B0080P0TE00E000094B420079CC80BA3461F86FE26EFC4A3B8E4FA4C5F5341176EED7B"
                         "727B8A248E",
                         out, sizeof(out)),
                     0);
    assert_string_equal(out, "zpk1 zpk pin-encrypt tdes 1 57C409\n");
    /* the same block is refused as a MAC key (usage P0) and when altered */
    assert_int_equal(key("import --name mak1 --type mak --under zmk1 --scheme tr31 --block "
                         "B0080P0TE00E000094B420079CC80BA3461F86FE26EFC4A3B8E4FA4C5F5341176EED7B"
                         "727B8A248E",
                         out, sizeof(out)),
                     1);
    assert_int_equal(key("import --name zpk2 --type zpk --under zmk1 --scheme tr31 --block "
                         "B0080P0TE00E000094B420079CC80BA3461F86FE26EFC4A3B8E4FA4C5F5341176EED7B"
                         "727B8A248F",
                         out, sizeof(out)),
                     1);
    assert_int_equal(key("generate --name pan --type pan-hash", out, sizeof(out)), 0);
    assert_int_equal(key("generate --name audit1 --type audit-sign", out, sizeof(out)), 0);
    assert_non_null(strstr(out, "audit1 audit-sign sign ed25519 1 "));
    assert_int_equal(key("pubkey --name audit1", out, sizeof(out)), 0);
    assert_int_equal(strlen(out), 65);
    assert_int_equal(key("pubkey --name pan", out, sizeof(out)), 1);
    assert_int_equal(key("generate --name cvk1 --type cvk", out, sizeof(out)), 0);
    assert_int_equal(key("generate --name cvk1 --type cvk", out, sizeof(out)), 1); /* exists */
    assert_int_equal(key("generate --name bad --type cvk --alg aes", out, sizeof(out)), 1);
    assert_int_equal(key("list", out, sizeof(out)), 0);
    assert_non_null(strstr(out, "zmk1 zmk key-encrypt tdes 1 "));
    assert_non_null(strstr(out, "zpk1 zpk pin-encrypt tdes 1 57C409\n"));
    assert_non_null(strstr(out, "pan pan-hash hmac hmac 1 "));
    assert_int_equal(key("kcv --name zpk1", out, sizeof(out)), 0);
    assert_string_equal(out, "57C409\n");
    assert_int_equal(key("rotate --name zpk1", out, sizeof(out)), 0);
    assert_non_null(strstr(out, "zpk1 zpk pin-encrypt tdes 2 "));
    assert_null(strstr(out, "57C409"));
    assert_int_equal(key("kcv --name nope", out, sizeof(out)), 1);

    /* the PAN-hash key as the ledger tools will read it */
    assert_int_equal(keystore_pan_hash_key(store, master, pk, &pkl, err, sizeof(err)), 0);
    assert_int_equal(pkl, 32);
    /* and through cardgatectl card's loader when only the key store is configured */
    uint8_t ck[CTL_PAN_KEY_BYTES];
    unsetenv("CARDGATE_PAN_KEY_FILE");
    setenv("CARDGATE_KEYSTORE", store, 1);
    setenv("CARDGATE_MASTER_KEY", master, 1);
    assert_int_equal(ctl_pan_key_load(NULL, ck), 0);
    assert_memory_equal(ck, pk, 32);
    unsetenv("CARDGATE_KEYSTORE");
    unsetenv("CARDGATE_MASTER_KEY");

    /* no clear key in the store file or on stderr */
    size_t len;
    char *text = util_read_file(store, 1 << 20, &len), zh[33];
    assert_non_null(text);
    util_hex_encode(zmk, 16, zh);
    const char *secrets[] = {hex1, hex2, zh, "3F419E1CB7079442AA37474C2EFBF8B8"};
    for (size_t i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++) {
        assert_null(strcasestr(text, secrets[i]));
        assert_null(strcasestr(allerr, secrets[i]));
    }
    free(text);

    /* a master key others can read is refused */
    assert_int_equal(chmod(master, 0644), 0);
    assert_int_equal(key("list", out, sizeof(out)), 1);
    assert_non_null(strstr(allerr, "chmod 600"));

    snprintf(args, sizeof(args), "rm -rf %s", dir);
    assert_int_equal(system(args), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_key_cli),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
