/*
 * msg.h - requests a switch sends, built with the codec into caller buffers
 * (no allocation), framed for the wire; and the checks on answers.  Shared
 * by `cardgate-sim scenario` and `cardgate-sim load`.
 *
 * Defaults describe the plain purchase the demo seed's "expect" codes assume:
 * a grocery (MCC 5411) in Germany (field 19 = 276, field 43 ends "DE"),
 * EUR (field 49 = 978), chip entry (field 22 = 051).
 *
 * Where a field has no ISO 8583:1987 home the simulator picks one and says
 * so here (the daemon must read the same place):
 *   CVV2   field 48, subelement "92": "92" + 2-digit length + value
 *          (Mastercard DE 48 SE 92 layout), e.g. "9203123".
 *   PIN    field 52: an ISO 9564 format 0 block under the ZPK (--zpk).
 *
 * With a MAC key (sim_link_set_mac) every request carries its MAC in field
 * 64 (or 128 beside a secondary bitmap) over the message up to the MAC
 * field, as cardgated's daemon/linkmac.h computes it; answers are checked
 * with sim_check_mac.  With a chip (sim_req.chip) a purchase carries field
 * 55: the ARQC of a Visa CVN 18 card (ICC key from the IMK by option A,
 * PSN 00) over its amount, currency, country 276, today's date and the
 * chip's ATC, and the other tags cardgated's daemon/emvchk.h reads.
 */
#ifndef CARDGATE_SIM_MSG_H
#define CARDGATE_SIM_MSG_H

#include "crypto/keystore.h"
#include "daemon/linkmac.h"
#include "iso8583/iso8583.h"
#include "tools/sim/cards.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

enum sim_kind {
    SIM_K_SIGNON,   /* 0800 70=001 */
    SIM_K_ECHO,     /* 0800 70=301 */
    SIM_K_PURCHASE, /* 0200 3=000000 */
    SIM_K_BALANCE,  /* 0200 3=310000, amount 0; the answer carries 54 */
    SIM_K_REFUND,   /* 0200 3=200000 */
    SIM_K_ADVICE,   /* 0220 3=000000 with 38 and 39=00 (stand-in advice) */
    SIM_K_REVERSAL, /* 0400 3=000000 with 90 built from the original */
    SIM_K_PIN,      /* 0200 3=000000 with a PIN block (52) the caller builds (sim_pin_block) */
    SIM_K_COUNT
};

/* "purchase", "reversal", ... ; NULL for an out-of-range kind */
const char *sim_kind_name(enum sim_kind k);
/* kind by name, -1 when unknown */
int sim_kind_parse(const char *name);

/* The original of a reversal (field 90). */
struct sim_orig {
    char mti[5];
    char stan[7];
    char xmit[11];
    int64_t amount;
};

/*
 * One request.  The strings are copied into m->scratch by sim_build, so the
 * struct may be reused right after.
 */
/* EMV chip data for a purchase (field 55). */
struct sim_chip {
    uint8_t imk[16]; /* the issuer's IMK-AC (test keys only) */
    uint16_t atc;    /* the application transaction counter to send */
    bool forge;      /* flip one bit of the ARQC (the issuer must decline 82) */
    uint8_t arqc[8]; /* out: the cryptogram sent */
};

struct sim_req {
    enum sim_kind kind;
    const struct sim_card *card; /* NULL only for 0800 */
    int64_t amount;              /* minor units */
    char stan[7];                /* field 11 */
    char rrn[13];                /* field 37 */
    char xmit[11];               /* field 7, MMDDhhmmss UTC */
    char ltime[7];               /* field 12 hhmmss */
    char ldate[5];               /* field 13 MMDD */
    const char *mcc;             /* field 18; NULL: the card's or "5411" */
    const char *currency;        /* field 49; NULL: the card's or "978" (EUR) */
    const char *entry;           /* field 22; NULL: "051" (chip) */
    const char *cvv2;            /* NULL: the card's; "" sends none */
    const uint8_t *pinblock;     /* field 52 (8 or 16 bytes); NULL: none */
    size_t pinblock_len;
    const struct sim_orig *orig; /* reversals */
    struct sim_chip *chip;       /* NULL, or field 55 with this chip's ARQC */
};

/*
 * The ISO 9564 format 0 block of pin for card c's PAN under the TDES key
 * zpk into out[8].  Returns 0 or -1 (a malformed PIN or key).
 */
int sim_pin_block(const uint8_t *zpk, size_t zpk_len, const struct sim_card *c, const char *pin,
                  uint8_t out[8]) __attribute__((warn_unused_result));
/*
 * --zpk HEX (32 or 48 hex digits) into key[24] and *len, crypto_init()
 * done.  Returns 0, or -1 with err.
 */
int sim_parse_zpk(const char *hex, uint8_t key[24], size_t *len, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Fill xmit/ltime/ldate from a wall-clock time. */
void sim_req_times(struct sim_req *r, time_t now);
/* Write STAN n (1..999999) as 6 digits. */
void sim_stan(char out[7], uint32_t n);

/* The dialect's framing, with the kind replaced when framing is not NULL. */
struct sim_link {
    const struct iso_dialect *d;
    struct iso_framing fr;
    uint8_t hdr[16]; /* the header sent after the length (fr.hdr_len bytes) */
    enum cg_mac mac; /* CG_MAC_NONE, or requests MAC'd and answers checked */
    struct ks_key mak;
};
/*
 * Set up a link description: dialect by built-in name or file path, framing
 * "len2", "len4ascii", "len2bcd" or NULL for the dialect's own.  The dialect
 * is heap; free with sim_link_free.  -1 with err.
 */
int sim_link_init(struct sim_link *l, const char *dialect, const char *framing, char *err,
                  size_t errlen) __attribute__((warn_unused_result));
void sim_link_free(struct sim_link *l);
/*
 * Message header after the length: "none", or "tpdu" (5 bytes: 0x60,
 * destination 0001, source 0000; the answer's header is not checked).
 * -1 with err on an unknown name.
 */
int sim_link_set_header(struct sim_link *l, const char *header, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/*
 * MAC every request and check every answer: alg "x919", "alg1" or "cmac",
 * the key as hex (16 or 24 bytes TDES; AES for cmac), padding method 1;
 * crypto_init() done.  -1 with err (never the key).
 */
int sim_link_set_mac(struct sim_link *l, const char *alg, const char *hex, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/*
 * The MAC of an answer msg[0..len) decoded into m: 0 when good or when the
 * link has no MAC, -1 (missing or bad) with *why set.
 */
int sim_check_mac(const struct sim_link *l, const uint8_t *msg, size_t len, const struct iso_msg *m,
                  const char **why);
/*
 * Field 55 for a purchase of amount (minor units) in currency (3 digits) by
 * pan into out[0..cap): fills c->arqc.  Returns the length or -1.
 */
long sim_chip_f55(struct sim_chip *c, const char *pan, int64_t amount, const char *currency,
                  uint8_t *out, size_t cap);
/*
 * Check tag 91 in an answer's field 55 (f55, len) against the ARPC the
 * card computes for answer code rc (CVN 18 method 2: CSU 00800000 for
 * 00/10, else 00000000).  0 when it verifies, -1 otherwise.
 */
int sim_chip_check_arpc(const struct sim_chip *c, const char *pan, const char *rc,
                        const uint8_t *f55, size_t len);

/* The request MTI of a kind ("0200"). */
const char *sim_kind_mti(enum sim_kind k);
/*
 * Build r into m and encode it, framed, into out[0..cap); *outlen is the
 * whole frame.  Returns 0 or -1 with err.
 */
int sim_build(const struct sim_link *l, const struct sim_req *r, struct iso_msg *m, uint8_t *out,
              size_t cap, size_t *outlen, struct iso_err *err) __attribute__((warn_unused_result));
/* The answer MTI for a request MTI: "0200" -> "0210". */
void sim_answer_mti(const char req[4], char out[5]);
/*
 * Masked dump of m (text lines, or JSON when json): the codec's masked dump
 * (PAN first six/last four, track/PIN as '*') with field 48 (CVV2) starred
 * too.  May change field 48's view in m.  Returns the length or -1.
 */
long sim_dump(const struct sim_link *l, struct iso_msg *m, bool json, char *out, size_t cap);

#endif
