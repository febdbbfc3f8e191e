/*
 * fuzz_crypto.c - libFuzzer target for the parsers in crypto/ that see
 * bytes from the network or from operators: TR-31 key blocks, track 2,
 * clear and encrypted PIN blocks of every format, the EMV ARQC input
 * builder (IAD of any length) and the MAC padding.  The first input byte
 * picks the parser.
 */
#include "crypto/cipher.h"
#include "crypto/cvv.h"
#include "crypto/emv.h"
#include "crypto/keyblock.h"
#include "crypto/mac.h"
#include "crypto/pin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t K16[16] = {0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF,
                                0xFE, 0xDC, 0xBA, 0x98, 0x76, 0x54, 0x32, 0x10};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char err[200];
    (void)argc;
    (void)argv;
    if (crypto_init(err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        abort();
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char s[1024], pin[PIN_BUF], err[200];
    uint8_t key[TR31_MAX_KEY], out[64], big[2048];
    size_t kl = 0, n;
    struct tr31_header h;
    struct track2 t;

    if (size < 1 || size > sizeof(s))
        return 0;
    memcpy(s, data + 1, size - 1);
    s[size - 1] = '\0';
    switch (data[0] % 6) {
    case 0:
        if (tr31_unwrap(K16, 16, s, &h, key, &kl, err, sizeof(err)) == 0 && kl > TR31_MAX_KEY)
            abort();
        (void)tr31_unwrap(key, 32, s, &h, key, &kl, err, sizeof(err));
        break;
    case 1:
        if (track2_parse(s, size - 1, &t) == 0 && (t.pan_len > 19 || t.disc_len > size))
            abort();
        (void)cvv_verify_track2(CVV_ICVV, K16, 16, s, size - 1, data[0] >> 3);
        break;
    case 2:
        if (size >= 9)
            for (int f = 0; f <= 3; f++)
                if (pinblock_clear_decode((enum pin_format)f, data + 1, "4761739001010119", 16,
                                          pin) == 0 &&
                    !pin_is_wellformed(pin))
                    abort();
        break;
    case 3:
        if (size >= 17)
            (void)pinblock_decrypt(PIN_ISO4, K16, 16, data + 1, 16, s + 16, strnlen(s + 16, 19),
                                   pin);
        break;
    case 4: {
        uint8_t z[8] = {0};
        struct emv_tags tg = {z, z, z, z, z, z, z, z, z, z, data + 1, size - 1, z};
        struct emv_auth_req r = {.cvn = data[0] >> 3,
                                 .imk = K16,
                                 .imk_len = 16,
                                 .pan = "4761739001010119",
                                 .pan_len = 16,
                                 .tags = &tg};
        (void)emv_arqc_data(r.cvn, &tg, out, sizeof(out));
        (void)emv_verify_arqc(&r);
        break;
    }
    case 5:
        n = mac_pad(1 + (data[0] >> 7), 8, data + 1, size - 1, big, sizeof(big));
        if (n != 0 && (n % 8 != 0 || n < size - 1))
            abort();
        break;
    }
    return 0;
}
