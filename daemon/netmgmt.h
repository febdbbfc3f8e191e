/*
 * netmgmt.h - network management on a link: 0800 -> 0810.
 *
 * Field 70 (network management information code):
 *   001 sign-on   link -> SIGNED_ON, 39=00
 *   002 sign-off  link -> SIGNED_OFF, 39=00
 *   301 echo      39=00, no state change
 *   201 cutover   39=00 (logged; business date handling is the ledger's)
 *   101/161 key change of the link's ZPK: the server's key_change hook
 *            (the pipeline: daemon/keychg.h), 39=00/12/30/63/96; 12
 *            without the hook
 *   other    39=12
 * A missing field 7, 11 or 70 is answered 39=30.  The answer echoes 7, 11,
 * 70 and, when present, 32, 33, 37, 41.  An 0810 from the peer answers our
 * own echo (netmgmt_send_echo).
 */
#ifndef CARDGATE_DAEMON_NETMGMT_H
#define CARDGATE_DAEMON_NETMGMT_H

#include "daemon/link.h"

/* Handle a decoded 0800 on l.  Returns 0 (answered) or -1 (link closed). */
int netmgmt_handle(struct link *l, const struct link_frame *f);

/* Send our own 0800 echo (70=301) on l.  Returns 0 or -1 (link closed). */
int netmgmt_send_echo(struct link *l);

/*
 * Answer a request on l with response code rc (2 characters) and no
 * decision: MTI + 10, fields 2 (masked is not our business: it is left
 * out), 3, 4, 7, 11, 12, 13, 32, 37, 41, 42, 49, 70 echoed when present.  For
 * requests the link refuses itself (not signed on, no pipeline).  Returns
 * 0 or -1 (link closed).
 */
int netmgmt_answer_code(struct link *l, const struct link_frame *f, const char *rc);

/* The response MTI for a request MTI ("0100" -> "0110", "0421" -> "0430"). */
void netmgmt_response_mti(const char *req, char out[4]);

#endif
