/*
 * test_crypto_cvv.c - CVV, CVV2 and iCVV as the daemon checks them: from a
 * magstripe track 2, from field 35 of a chip card (iCVV, service code 999)
 * and card-not-present (CVV2, service code 000), using the public CVV
 * vector's keys; wrong values, malformed tracks and a CVV2 presented as a
 * CVV are refused.
 */
#include "crypto/cipher.h"
#include "crypto/cvv.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

/* ../shared/vectors cvv[0]: CVK A|B, PAN, expiry 3333, service code 111 -> 361 */
static const uint8_t cvk[16] = {0x99, 0x99, 0x99, 0x99, 0x99, 0x99, 0x99, 0x99,
                                0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88};
#define PAN "2222222222222222"

static int setup(void **state)
{
    char err[200];
    (void)state;
    return crypto_init(err, sizeof(err));
}

static void t_track2(void **state)
{
    char t2[64], cvv2[4], icvv[4];
    struct track2 t;
    (void)state;

    snprintf(t2, sizeof(t2),
             "%s=3333111"
             "0000"
             "361"
             "000F",
             PAN);
    assert_int_equal(track2_parse(t2, strlen(t2), &t), 0);
    assert_string_equal(t.expiry, "3333");
    assert_string_equal(t.service_code, "111");
    assert_int_equal(t.disc_len, 10);
    assert_int_equal(cvv_verify_track2(CVV_MAGSTRIPE, cvk, 16, t2, strlen(t2), 4), CVV_OK);
    assert_int_equal(cvv_verify_track2(CVV_MAGSTRIPE, cvk, 16, t2, strlen(t2), 3), CVV_WRONG);
    assert_int_equal(cvv_verify_track2(CVV_MAGSTRIPE, cvk, 16, t2, strlen(t2), 8),
                     CVV_FORMAT_ERROR);
    t2[21] = '2'; /* the service code (after PAN, '=', YYMM) is covered by the CVV */
    assert_int_equal(cvv_verify_track2(CVV_MAGSTRIPE, cvk, 16, t2, strlen(t2), 4), CVV_WRONG);

    /* chip: iCVV is computed with service code 999, track keeps its own */
    assert_int_equal(cvv_compute(cvk, 16, PAN, 16, "3333", "999", icvv), 0);
    snprintf(t2, sizeof(t2),
             "%sD3333201"
             "00%s"
             "00",
             PAN, icvv);
    assert_int_equal(cvv_verify_track2(CVV_ICVV, cvk, 16, t2, strlen(t2), 2), CVV_OK);
    /* a magstripe CVV in the chip track is not an iCVV */
    assert_int_equal(cvv_compute(cvk, 16, PAN, 16, "3333", "201", icvv), 0);
    snprintf(t2, sizeof(t2),
             "%sD3333201"
             "00%s"
             "00",
             PAN, icvv);
    assert_int_equal(cvv_verify_track2(CVV_ICVV, cvk, 16, t2, strlen(t2), 2), CVV_WRONG);

    /* card not present */
    assert_int_equal(cvv_compute(cvk, 16, PAN, 16, "3333", "000", cvv2), 0);
    assert_int_equal(cvv_verify(CVV_CVV2, cvk, 16, PAN, 16, "3333", NULL, cvv2), CVV_OK);
    assert_int_equal(cvv_verify(CVV_CVV2, cvk, 16, PAN, 16, "3334", NULL, cvv2), CVV_WRONG);
    assert_int_equal(cvv_verify(CVV_CVV2, cvk, 16, PAN, 16, "3333", NULL, "12"), CVV_FORMAT_ERROR);
    assert_int_equal(cvv_verify(CVV_CVV2, NULL, 0, PAN, 16, "3333", NULL, cvv2), CVV_UNAVAILABLE);

    /* malformed tracks */
    static const char *badt[] = {"",
                                 "=",
                                 "2222222222222222",
                                 "2222222222222222=333",
                                 "22222=33331110000",
                                 "2222222222222222=33X31110000",
                                 "222222222222222A=33331110000"};
    for (size_t i = 0; i < sizeof(badt) / sizeof(badt[0]); i++)
        assert_int_equal(track2_parse(badt[i], strlen(badt[i]), &t), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_track2),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
