/*
 * emv.h - EMV issuer cryptography: ICC master key derivation (options A
 * and B), session keys (EMV common session key, Mastercard SKD), ARQC
 * verification for Visa CVN 10/18/22 and Mastercard CVN 16/17/20/21 from
 * field-55 tag values, ARPC generation (methods 1 and 2), ATC replay check.
 *
 * Keys are double-length TDES (16 bytes).  Derived keys live in stack
 * buffers that are wiped before return.  Nothing here logs.
 */
#ifndef CARDGATE_CRYPTO_EMV_H
#define CARDGATE_CRYPTO_EMV_H

#include "crypto/cipher.h"

enum emv_mkd {
    EMV_MKD_AUTO = 0, /* A when the PAN has at most 16 digits, else B */
    EMV_MKD_A = 1,
    EMV_MKD_B = 2, /* falls back to A for a PAN of 16 digits or fewer (Book 2 A1.4) */
};

/* Verification outcome; stable values for the database. */
enum emv_status {
    EMV_OK = 0,
    EMV_BAD_ARQC = 1,     /* cryptogram does not verify (answer N7 / 82 per rules) */
    EMV_REPLAY = 2,       /* ATC not above the last one seen for the card */
    EMV_FORMAT_ERROR = 3, /* missing or malformed tags, unsupported CVN */
    EMV_UNAVAILABLE = 4,  /* no usable IMK-AC */
};
const char *emv_status_name(enum emv_status s);

/* true for the supported CVNs: 10, 18, 22 (Visa), 16, 17, 20, 21 (Mastercard) */
bool emv_cvn_supported(int cvn);
/* ARPC method the CVN uses: 1 or 2 (0 when unsupported) */
int emv_cvn_arpc_method(int cvn);

/*
 * ICC master key (parity-adjusted) from the issuer master key for a PAN
 * (digits) and PSN (2 digits, NULL = "00").  Returns 0 or -1.
 */
int emv_derive_icc_mk(enum emv_mkd opt, const uint8_t imk[16], const char *pan, size_t panlen,
                      const char *psn, uint8_t mk[16]) CRYPTO_MUST_CHECK;

/* EMV common session key: E_MK(R, R[2]=F0) || E_MK(R, R[2]=0F). */
int emv_session_key(const uint8_t mk[16], const uint8_t r[8], uint8_t sk[16]) CRYPTO_MUST_CHECK;

/*
 * The key that computes the ARQC for a CVN: the ICC MK itself (CVN 10), the
 * common session key with R = ATC||0^6 (18, 22, 20, 21) or Mastercard SKD
 * with R = ATC||0000||UN (16, 17).  un may be NULL except for 16/17.
 */
int emv_ac_key(int cvn, const uint8_t mk[16], const uint8_t atc[2], const uint8_t un[4],
               uint8_t key[16]) CRYPTO_MUST_CHECK;

/* ARQC = ISO 9797-1 alg 3 MAC under key, padding 1 (CVN 10) or 2. */
int emv_arqc(int cvn, const uint8_t key[16], const uint8_t *data, size_t len,
             uint8_t out[8]) CRYPTO_MUST_CHECK;

/* ARPC method 1: TDES_K(ARQC XOR (ARC || 0^6)). */
int emv_arpc1(const uint8_t key[16], const uint8_t arqc[8], const uint8_t arc[2],
              uint8_t out[8]) CRYPTO_MUST_CHECK;
/* ARPC method 2: first 4 bytes of alg-3 MAC (pad 2) over ARQC||CSU||prop. */
int emv_arpc2(const uint8_t key[16], const uint8_t arqc[8], const uint8_t csu[4],
              const uint8_t *prop, size_t proplen, uint8_t out[4]) CRYPTO_MUST_CHECK;

/*
 * Field-55 tag values the ARQC covers, as the daemon's BER-TLV decoder
 * hands them over (pointers into the message, with their lengths checked
 * by emv_arqc_data).  iad is the whole 9F10 value.
 */
struct emv_tags {
    const uint8_t *amount;   /* 9F02, 6 */
    const uint8_t *other;    /* 9F03, 6 */
    const uint8_t *country;  /* 9F1A, 2 */
    const uint8_t *tvr;      /* 95, 5 */
    const uint8_t *currency; /* 5F2A, 2 */
    const uint8_t *date;     /* 9A, 3 */
    const uint8_t *type;     /* 9C, 1 */
    const uint8_t *un;       /* 9F37, 4 */
    const uint8_t *aip;      /* 82, 2 */
    const uint8_t *atc;      /* 9F36, 2 */
    const uint8_t *iad;      /* 9F10 */
    size_t iad_len;
    const uint8_t *arqc; /* 9F26, 8 */
};

/*
 * Record one field-55 tag for the ARQC (the daemon calls this for each TLV
 * its decoder yields).  Returns 1 when the tag is one of those above and
 * has its fixed length, 0 when the tag is not used here, -1 when a used tag
 * has a wrong length (the request is then a format error).  The value is
 * borrowed, not copied.
 */
int emv_tags_set(struct emv_tags *t, uint32_t tag, const uint8_t *value, size_t len);

/*
 * The ARQC input for a CVN: the tags above in order, then Visa CVN 10: the
 * CVR (IAD bytes 3..6); Visa CVN 18/22: the whole IAD; Mastercard 16/20:
 * the CVR (IAD bytes 2..7); 17/21: CVR and the counters (IAD bytes 10..17).
 * Returns the length written to out (cap bytes), or -1.
 */
long emv_arqc_data(int cvn, const struct emv_tags *t, uint8_t *out, size_t cap);

/* What the daemon hands over for one chip authorization. */
struct emv_auth_req {
    int cvn;
    const uint8_t *imk; /* IMK-AC, 16 bytes */
    size_t imk_len;
    const char *pan; /* digits */
    size_t pan_len;
    const char *psn; /* 5F34 as 2 digits, NULL = "00" */
    enum emv_mkd mkd;
    const struct emv_tags *tags;
};

/* Verify the ARQC of a request (does not check the ATC; see below). */
enum emv_status emv_verify_arqc(const struct emv_auth_req *r);

/*
 * ARPC for the answer's field 55 (tag 91 is ARPC || ARC or ARPC || CSU):
 * method 1 with arc (2 bytes), method 2 with csu (4 bytes) and optional
 * proprietary data.  out gets 8 (method 1) or 4 bytes; *outlen says which.
 */
int emv_make_arpc(const struct emv_auth_req *r, const uint8_t *arc, const uint8_t *csu,
                  const uint8_t *prop, size_t proplen, uint8_t out[8],
                  size_t *outlen) CRYPTO_MUST_CHECK;

/*
 * Issuer authentication data for tag 91 of the answer: ARPC || ARC (method
 * 1, 10 bytes) or ARPC || CSU || proprietary data (method 2, 8..16 bytes).
 * out holds 16 bytes; *outlen gets the length.  Returns 0 or -1.
 */
int emv_issuer_auth_data(const struct emv_auth_req *r, const uint8_t *arc, const uint8_t *csu,
                         const uint8_t *prop, size_t proplen, uint8_t out[16],
                         size_t *outlen) CRYPTO_MUST_CHECK;

/*
 * ATC replay check: EMV_OK when no ATC is stored yet (have_last false) or
 * atc > last; EMV_REPLAY otherwise.
 */
enum emv_status emv_atc_check(uint16_t atc, bool have_last, uint16_t last);

#endif
