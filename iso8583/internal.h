/*
 * internal.h - helpers shared by the iso8583/ sources; not part of the API.
 */
#ifndef CARDGATE_ISO8583_INTERNAL_H
#define CARDGATE_ISO8583_INTERNAL_H

#include "iso8583/iso8583.h"

/* Fill err (when not NULL) with field, offset and the message; returns -1. */
int iso_fail(struct iso_err *err, int field, size_t off, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/*
 * Take the lowest-numbered field out of a 64-bit bitmap word (bit 63 is
 * position 1): returns its position 1..64 and clears it.  word must not be 0.
 */
static inline int iso_bm_pop(uint64_t *word)
{
    int lead = __builtin_clzll(*word);
    *word &= ~(1ULL << (63 - lead));
    return lead + 1;
}

#endif
