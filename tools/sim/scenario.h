/*
 * scenario.h - `cardgate-sim scenario`: connect like a switch, sign on, run
 * a scripted list of requests whose answers are known in advance, print
 * each request and answer masked, then a summary table.
 *
 * The steps (name: what is sent -> expected field 39):
 *   signon        0800 70=001                                   -> 00
 *   echo          0800 70=301                                   -> 00
 *   purchase      0200 000000 on the card labelled ok/active    -> 00
 *   duplicate     the purchase again, same STAN/RRN/field 7     -> the purchase's code and 38
 *   balance       0200 310000 on the same card                  -> 00 with field 54
 *   unknown_card  0200 on a PAN not in the cards file           -> 14
 *   expired       card labelled expired                         -> 54
 *   frozen        card labelled frozen/blocked                  -> 62
 *   over_limit    card labelled limit, its "amount" or 1,000,000.00 -> 61
 *   blocked_mcc   card labelled mcc, its "mcc" or 7995          -> 57
 *   insufficient  card labelled insufficient/nsf/low_balance, its "amount" or 900,000.00 -> 51
 *   wrong_cvv2    the ok card with a wrong CVV2                 -> N7
 *   chip          0200 on the ok card with field 55: a valid ARQC (--imk) -> 00,
 *                 and tag 91 in the answer must verify (the card's ARPC check)
 *   chip_forged   the same with one bit of the ARQC flipped     -> 82
 *   pin           the ok card with its "pin" (field 52, format 0 under --zpk) -> 00
 *   wrong_pin     the same with another PIN (first digit changed) -> 55
 *   reversal      0400 of the purchase, field 90 from it        -> 00
 * Any expected code can be overridden (--expect STEP=CODE).  The chip
 * steps run only with an IMK (--imk).  With a MAC key on the link every
 * request is MAC'd and an answer whose MAC is missing or wrong is a
 * mismatch.
 */
#ifndef CARDGATE_SIM_SCENARIO_H
#define CARDGATE_SIM_SCENARIO_H

#include "tools/sim/cards.h"
#include "tools/sim/msg.h"

#include <stdbool.h>
#include <stdio.h>

#define SCEN_MAX_OVERRIDES 16

struct scen_opts {
    const char *addr;
    const struct sim_link *link;
    const struct sim_cards *cards;
    bool json;
    int timeout_ms;
    bool have_imk;
    uint8_t imk[16];    /* --imk: the issuer's IMK-AC for the chip steps */
    const uint8_t *zpk; /* --zpk: TDES key for PIN blocks; NULL: pin steps skipped */
    size_t zpk_len;
    int noverrides;
    struct {
        char step[24];
        char code[3];
    } overrides[SCEN_MAX_OVERRIDES];
};

/* Add "STEP=CODE"; -1 with err on an unknown step or a code that is not 2 characters. */
int scen_add_override(struct scen_opts *o, const char *spec, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/*
 * Run the scenario, writing to out.  Returns 0 when every answer matched,
 * 1 otherwise (including a failed connection, reported on out and stderr).
 */
int scenario_run(const struct scen_opts *o, FILE *out);

#endif
