/*
 * linkmac.h - message authentication (ISO 8583 field 64 / 128) on a link.
 *
 * A listener with `mac = x919|alg1|cmac` and `mak = NAME` requires a MAC on
 * every message it receives (0100/0200/0400/0800/0810 ...) and puts one on
 * every message it sends (answers and our own 0800 echo).
 *
 * Which field: field 64 when the message has no secondary bitmap (no field
 * 65..128), field 128 when it has one.  The MAC field is then always the
 * last field of the message, so:
 *
 *   MAC'd bytes = the message exactly as on the wire (MTI, bitmap(s), every
 *                 field with its length prefix, in the link's dialect), from
 *                 its first byte up to, not including, the MAC field's own
 *                 bytes; no framing (length prefix) and no TPDU header.
 *
 * The bitmap covered includes the MAC field's own bit (set).  A message
 * that carries the other MAC field (64 beside a secondary bitmap), or
 * fields after the MAC field, is refused as a bad MAC.  The MAC field must
 * be fixed-length binary in the dialect (8 bytes: raw, or 16 hex digits).
 *
 * Algorithms: x919 = ISO 9797-1 algorithm 3 (ANSI X9.19 retail MAC, a
 * 16-byte TDES key), alg1 = ISO 9797-1 algorithm 1 (CBC-MAC under the whole
 * TDES key), cmac = AES-CMAC; padding method 1 (default) or 2 (not used by
 * cmac).  The field holds the leftmost 8 bytes.
 *
 * Nothing here logs key material; logs name the MTI, STAN and reason.
 */
#ifndef CARDGATE_DAEMON_LINKMAC_H
#define CARDGATE_DAEMON_LINKMAC_H

#include "crypto/keystore.h"
#include "crypto/mac.h"
#include "daemon/config.h"
#include "iso8583/iso8583.h"

struct link;
struct link_frame;

/* "none", "x919", "alg1", "cmac" */
const char *linkmac_name(enum cg_mac m);

/*
 * Can the dialect carry a MAC (fields 64 and 128 fixed-length binary)?
 * 0, or -1 with the reason in err.
 */
int linkmac_dialect_check(const struct iso_dialect *d, char *err, size_t cap)
    __attribute__((warn_unused_result));

/*
 * Is the listener's MAC key in ks with the right type, usage and algorithm
 * for its mac?  0 (also when the listener needs no MAC), or -1 with the
 * reason in err.
 */
int linkmac_key_check(const struct keyset *ks, const struct cg_listener_conf *c, char *err,
                      size_t cap) __attribute__((warn_unused_result));

/* The field the MAC of m goes into: 128 when m has a secondary bitmap, else 64. */
int linkmac_field(const struct iso_msg *m);

/*
 * The MAC field's bytes on the wire in dialect d (8 raw, or 16 hex), or 0
 * when the dialect cannot carry it.
 */
size_t linkmac_wire_len(const struct iso_dialect *d, int field);

/*
 * Verify the MAC (algorithm mac, ISO 9797-1 padding pad) of a received message: msg[0..len) as
 * received (no framing), m its decode in d.  MAC_OK, MAC_BAD (no MAC field, the wrong one, fields
 * after it, or a mismatch) or MAC_UNAVAILABLE (mak NULL or unusable).  *why gets a short reason for
 * the log (never key material).
 */
enum mac_status linkmac_verify(enum cg_mac mac, int pad, const struct iso_dialect *d,
                               const struct ks_key *mak, const uint8_t *msg, size_t len,
                               const struct iso_msg *m, const char **why);

/*
 * Encode m in d into out[0..cap) with its MAC: the MAC field (64 or 128,
 * see linkmac_field) is set, the message encoded, the MAC computed over the
 * bytes before the field and filled in last.  m's MAC fields are changed
 * (the value lives in m's scratch).  Returns 0, or -1 with err (no usable
 * key: err says so; an encode error as iso_encode gives it).
 */
int linkmac_encode(enum cg_mac mac, int pad, const struct iso_dialect *d, const struct ks_key *mak,
                   struct iso_msg *m, uint8_t *out, size_t cap, size_t *outlen, struct iso_err *err)
    __attribute__((warn_unused_result));

/* ---- on a link (linkmac_link.c: the listener's settings, the server's keys) ---- */

/*
 * Check the MAC of a frame received on l when its listener requires one.
 * Returns true when the frame may be served (MAC good, or none required);
 * false when it was refused: counted (cg_metrics.mac_failures) and logged.
 */
bool linkmac_link_verify(struct link *l, const struct link_frame *f);

/*
 * Encode an outgoing message for l: with its MAC when the listener
 * requires one (key from the server's working keys), plain iso_encode
 * otherwise.  Same contract as iso_encode.
 */
int linkmac_link_encode(struct link *l, struct iso_msg *m, uint8_t *out, size_t cap, size_t *outlen,
                        struct iso_err *err) __attribute__((warn_unused_result));

#endif
