/*
 * emvchk.h - the EMV chip check the pipeline runs before the database step
 * ([keys] imk_ac, imk_ac_derivation), and the ARPC of the answer.
 *
 *   res = emvchk_arqc(ks, cfg, m, pan, &e, &atc)   -> "ok" / "bad" / "absent"
 *   ... the ledger decides (82 for a bad ARQC or an ATC not above the last) ...
 *   n = emvchk_answer_f55(ks, cfg, &e, pan, rc, buf, cap)  -> field 55: tag 91
 *
 * Field 55 (BER-TLV) must carry 9F26 (ARQC), 9F27, 9F36 (ATC), 9F10 (IAD),
 * 9F02, 9F03, 9F1A, 95, 5F2A, 9A, 9C, 9F37, 82; 5F34 (PAN sequence number,
 * else field 23, else "00").  The ICC master key comes from the IMK-AC, the
 * PAN and the PSN (option A, or B for PANs over 16 digits when configured).
 *
 * The cryptogram version: Visa IADs start with their own length byte and
 * carry the CVN in byte 2 (0x0A = 10, 0x12 = 18, 0x16 = 22); Mastercard
 * IADs carry it in byte 1 (0x10 = 16, 0x11 = 17, 0x14 = 20, 0x15 = 21).  A
 * PAN starting with 4 reads the Visa layout, 5 or 2 the Mastercard one,
 * any other the Visa layout when byte 0 is the IAD's length minus one.
 *
 * Results (auth_request.arqc_result, cardgate_arqc_total{result}):
 *   no field 55, or none with 9F26        absent (nothing to check, not counted)
 *   verified                              ok, atc sent (the ledger's replay check)
 *   does not verify                       bad (82), atc sent
 *   field 55 malformed, a tag missing or
 *   of the wrong length, no IAD            bad (82), counted format_error
 *   a CVN not listed above                absent, counted unsupported (debug log)
 *   no imk_ac configured, key unusable    absent, counted unavailable
 * The pipeline checks authorizations, financial requests, refunds and
 * balance inquiries; advices (0120/0220) and reversals repeat the
 * original's cryptogram and ATC and are not checked.
 * Nothing here logs a PAN, a cryptogram or key material.
 */
#ifndef CARDGATE_DAEMON_EMVCHK_H
#define CARDGATE_DAEMON_EMVCHK_H

#include "crypto/emv.h"
#include "crypto/keystore.h"
#include "daemon/config.h"
#include "iso8583/iso8583.h"

/* What the answer's ARPC needs from a verified request (no key material). */
struct emvchk_req {
    bool verified; /* the ARQC verified: the answer carries tag 91 */
    int cvn;
    char psn[3];
    uint8_t arqc[8], atc[2], un[4];
};

/*
 * The cryptogram version number from the IAD (9F10) and the PAN's first
 * digit (see above); -1 when the IAD is too short.
 */
int emvchk_cvn(const uint8_t *iad, size_t len, const char *pan);

/*
 * Check the ARQC in field 55 of m with [keys] imk_ac of cfg from ks (may be
 * NULL).  pan: digits (NUL-terminated; "" when none).  Fills *e (verified
 * or not) and *atc (-1 when not sent to the ledger).  Returns "ok", "bad"
 * or "absent" (see above) and counts the result in cg_metrics.arqc.
 */
const char *emvchk_arqc(const struct keyset *ks, const struct cg_config *cfg,
                        const struct iso_msg *m, const char *pan, struct emvchk_req *e, int *atc);

/*
 * Field 55 of the answer to a request whose ARQC verified: tag 91, the
 * issuer authentication data for answer code rc (2 characters): method 1
 * (CVN 10, 16, 17, 20, 21) ARPC || ARC with ARC = rc in ASCII ("00" = 3030);
 * method 2 (CVN 18, 22) ARPC || CSU with CSU 00800000 ("issuer approves")
 * for 00/10 and 00000000 otherwise.  Returns the length written to
 * out[0..cap), 0 when the request had no verified ARQC, -1 when the key is
 * gone or out is too small.
 */
long emvchk_answer_f55(const struct keyset *ks, const struct cg_config *cfg,
                       const struct emvchk_req *e, const char *pan, const char *rc, uint8_t *out,
                       size_t cap);

/* Is [keys] imk_ac in ks with type imk-ac, usage arqc, TDES 16 bytes? 0 or -1 with err. */
int emvchk_key_check(const struct keyset *ks, const struct cg_config *cfg, char *err, size_t cap)
    __attribute__((warn_unused_result));

#endif
