/*
 * cards.h - the simulator's test cards: read from a JSON cards file (the
 * ledger demo seed, shape in tools/sim/README.md) or generated.
 *
 * Cards hold clear PANs and CVV2s (test cards only); nothing here logs them.
 */
#ifndef CARDGATE_SIM_CARDS_H
#define CARDGATE_SIM_CARDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sim_card {
    char pan[20];     /* 12..19 digits */
    char expiry[5];   /* YYMM */
    char cvv2[4];     /* 3 digits, may be empty */
    char pin[13];     /* optional PIN (4..12 digits) for the pin/wrong_pin steps */
    char label[48];   /* "label" or "kind" (what the card demonstrates) */
    char account[48]; /* "account"/"wallet"/"account_id", may be empty */
    char mcc[5];      /* optional merchant category to use with this card */
    char currency[4]; /* optional field 49, numeric ("978"; "EUR" is read as 978) */
    char expect[3];   /* optional: the answer a plain 10.00 grocery purchase should get */
    int64_t amount;   /* optional amount in minor units to use with this card, 0 = default */
    bool hot;         /* "hot": true, or the label says "hot" */
};

struct sim_cards {
    struct sim_card *v;
    size_t n;
};

/*
 * Read a cards file: a JSON array of card objects, or an object whose
 * "cards" member is that array.  Objects without a well-formed "pan" or
 * "expiry" are refused (with their index in err); unknown members are
 * ignored.  Returns 0 or -1 with err.  Free with sim_cards_free().
 */
int sim_cards_load(const char *path, struct sim_cards *out, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/*
 * The i-th synthetic PAN: "999999" + i as 9 digits + the Luhn digit (BIN
 * 999999 is never a real issuer).  A demo or bench seed that writes the same
 * PANs into the database lets `load --synth` run without a cards file.
 */
void sim_synth_pan(size_t i, char out[20]);
/*
 * n synthetic cards (sim_synth_pan 0..n-1), expiry 12/49, CVV2 "123"; card
 * i belongs to account "i % accounts" (accounts 0 means one per card).
 */
int sim_cards_synth(size_t n, size_t accounts, struct sim_cards *out)
    __attribute__((warn_unused_result));
void sim_cards_free(struct sim_cards *c);
/*
 * The first card whose label equals or contains one of the '|'-separated
 * words of want ("frozen|blocked"), case-insensitive; NULL when none.
 */
const struct sim_card *sim_cards_find(const struct sim_cards *c, const char *want);
/* The first card whose "expect" is code; NULL when none. */
const struct sim_card *sim_cards_find_expect(const struct sim_cards *c, const char *code);
/*
 * Keep only the cards of one wallet for --hot: those marked hot; failing
 * that, those sharing the account of the most common account.  Returns
 * the number kept (0 leaves the set unchanged).
 */
size_t sim_cards_keep_hot(struct sim_cards *c);

#endif
