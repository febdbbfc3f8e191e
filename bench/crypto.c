/*
 * bench/crypto.c - per-request cost of the crypto checks the daemon runs
 * (one thread, release build).  Prints a table; never passes or fails.
 */
#include "common/util.h"
#include "crypto/cipher.h"
#include "crypto/cvv.h"
#include "crypto/emv.h"
#include "crypto/mac.h"
#include "crypto/pan.h"
#include "crypto/pin.h"

#include <stdio.h>
#include <string.h>

static const uint8_t K16[16] = {0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF,
                                0xFE, 0xDC, 0xBA, 0x98, 0x76, 0x54, 0x32, 0x10};
static volatile int sink;

static void row(const char *name, int n, int64_t t0)
{
    double us = (double)(util_now_us() - t0) / n;
    printf("%-34s %8d %10.2f %12.0f\n", name, n, us, 1e6 / us);
}

int main(void)
{
    char err[200], pvv[5];
    uint8_t epb[16], epb4[16], msg[200], mac[16], arqc[8], mk[16], sk[16];
    size_t n = 0;
    const int N = 20000;
    int64_t t0;

    if (crypto_init(err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    memset(msg, 0x5A, sizeof(msg));
    if (pinblock_encrypt(PIN_ISO0, K16, 16, "1234", "4761739001010119", 16, NULL, epb, &n) ||
        pinblock_encrypt(PIN_ISO4, K16, 16, "1234", "4761739001010119", 16, NULL, epb4, &n) ||
        pin_pvv(K16, 16, "4761739001010119", 16, 1, "1234", pvv))
        return 1;
    printf("%-34s %8s %10s %12s\n", "operation", "n", "us/op", "ops/s");

    struct pin_verify_req r = {.format = PIN_ISO0,
                               .zpk = K16,
                               .zpk_len = 16,
                               .block = epb,
                               .block_len = 8,
                               .pan = "4761739001010119",
                               .pan_len = 16,
                               .method = PIN_METHOD_PVV,
                               .pvk = K16,
                               .pvk_len = 16,
                               .pvki = 1,
                               .pvv = pvv};
    t0 = util_now_us();
    for (int i = 0; i < N; i++)
        sink += (int)pin_verify(&r);
    row("pin_verify ISO-0 TDES + PVV", N, t0);

    r.format = PIN_ISO4;
    r.block = epb4;
    r.block_len = 16;
    t0 = util_now_us();
    for (int i = 0; i < N; i++)
        sink += (int)pin_verify(&r);
    row("pin_verify ISO-4 AES + PVV", N, t0);

    t0 = util_now_us();
    for (int i = 0; i < N; i++)
        sink += (int)cvv_verify(CVV_CVV2, K16, 16, "4761739001010119", 16, "2812", NULL, "123");
    row("cvv_verify CVV2", N, t0);

    t0 = util_now_us();
    for (int i = 0; i < N; i++)
        sink += mac_compute(MAC_ISO9797_1_ALG3, K16, 16, 1, msg, sizeof(msg), mac, &n);
    row("MAC ISO 9797-1 alg 3, 200 bytes", N, t0);

    t0 = util_now_us();
    for (int i = 0; i < N; i++)
        sink += mac_compute(MAC_AES_CMAC, K16, 16, 1, msg, sizeof(msg), mac, &n);
    row("AES-CMAC, 200 bytes", N, t0);

    uint8_t z[8] = {0}, atc[2] = {0, 0x1C}, un[4] = {1, 2, 3, 4};
    uint8_t iad[7] = {0x06, 0x01, 0x12, 0x03, 0xA0, 0xB8, 0x00};
    struct emv_tags t = {z, z, z, z, z, z, z, un, z, atc, iad, sizeof(iad), arqc};
    struct emv_auth_req q = {.cvn = 18,
                             .imk = K16,
                             .imk_len = 16,
                             .pan = "4761739001010119",
                             .pan_len = 16,
                             .psn = "00",
                             .tags = &t};
    uint8_t data[64];
    long dl = emv_arqc_data(18, &t, data, sizeof(data));
    if (dl < 0 || emv_derive_icc_mk(EMV_MKD_AUTO, K16, q.pan, 16, "00", mk) ||
        emv_ac_key(18, mk, atc, un, sk) || emv_arqc(18, sk, data, (size_t)dl, arqc))
        return 1;
    t0 = util_now_us();
    for (int i = 0; i < N; i++)
        sink += (int)emv_verify_arqc(&q);
    row("emv_verify_arqc CVN 18 (MK+SK+MAC)", N, t0);

    t0 = util_now_us();
    for (int i = 0; i < N; i++)
        sink += emv_make_arpc(&q, NULL, z, NULL, 0, mac, &n);
    row("emv_make_arpc method 2", N, t0);

    char h[PAN_HASH_HEX];
    t0 = util_now_us();
    for (int i = 0; i < N; i++)
        sink += pan_hash_hex(K16, 16, "4761739001010119", 16, h);
    row("pan_hash_hex (HMAC-SHA-256)", N, t0);
    return 0;
}
