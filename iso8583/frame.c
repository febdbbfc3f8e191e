/*
 * frame.c - message framing on plain byte buffers: a length prefix (2-byte
 * binary, 4 ASCII digits or 2-byte BCD) covering an optional fixed header
 * (for example a 5-byte TPDU) and the ISO message.  No length is trusted:
 * anything over the configured maximum is an error before any use.
 */
#include "iso8583/iso8583.h"

#include <stdio.h>
#include <string.h>

size_t iso_frame_prefix_len(const struct iso_framing *fr)
{
    switch (fr->kind) {
    case ISO_FR_LEN2:
    case ISO_FR_LEN2BCD:
        return 2;
    case ISO_FR_LEN4ASCII:
        return 4;
    default:
        return 0;
    }
}

static int ffail(struct iso_err *err, const char *msg)
{
    if (err != NULL) {
        err->field = 0;
        err->offset = 0;
        snprintf(err->msg, sizeof(err->msg), "frame: %s", msg);
    }
    return -1;
}

int iso_frame_parse(const struct iso_framing *fr, const uint8_t *buf, size_t have, size_t *msg_off,
                    size_t *msg_len, size_t *frame_len, struct iso_err *err)
{
    size_t pl = iso_frame_prefix_len(fr), n = 0;
    if (fr->kind == ISO_FR_NONE) {
        if (have < fr->hdr_len)
            return 0;
        if (have > fr->max_len)
            return ffail(err, "message longer than the maximum");
        *msg_off = fr->hdr_len;
        *msg_len = have - fr->hdr_len;
        *frame_len = have;
        return 1;
    }
    if (have < pl)
        return 0;
    switch (fr->kind) {
    case ISO_FR_LEN2:
        n = (size_t)buf[0] << 8 | buf[1];
        break;
    case ISO_FR_LEN4ASCII:
        for (size_t i = 0; i < 4; i++) {
            if (buf[i] < '0' || buf[i] > '9')
                return ffail(err, "bad ASCII length digits");
            n = n * 10 + (size_t)(buf[i] - '0');
        }
        break;
    case ISO_FR_LEN2BCD:
        for (size_t i = 0; i < 4; i++) {
            unsigned nib = (buf[i / 2] >> (i % 2 ? 0 : 4)) & 0xF;
            if (nib > 9)
                return ffail(err, "bad BCD length digits");
            n = n * 10 + nib;
        }
        break;
    default:
        return ffail(err, "unknown framing");
    }
    if (n > fr->max_len)
        return ffail(err, "length exceeds the configured maximum");
    if (n <= fr->hdr_len)
        return ffail(err, "length does not cover the header and a message");
    if (have - pl < n)
        return 0;
    *msg_off = pl + fr->hdr_len;
    *msg_len = n - fr->hdr_len;
    *frame_len = pl + n;
    return 1;
}

long iso_frame_write_head(const struct iso_framing *fr, const uint8_t *req_hdr, size_t msg_len,
                          uint8_t *out, size_t cap)
{
    size_t pl = iso_frame_prefix_len(fr), n = msg_len + fr->hdr_len;
    if (cap < pl + fr->hdr_len || n > fr->max_len)
        return -1;
    switch (fr->kind) {
    case ISO_FR_LEN2:
        if (n > 0xFFFF)
            return -1;
        out[0] = (uint8_t)(n >> 8);
        out[1] = (uint8_t)n;
        break;
    case ISO_FR_LEN4ASCII:
        if (n > 9999)
            return -1;
        for (size_t i = 4, v = n; i-- > 0; v /= 10)
            out[i] = (uint8_t)('0' + v % 10);
        break;
    case ISO_FR_LEN2BCD:
        if (n > 9999)
            return -1;
        out[0] = (uint8_t)((n / 1000) << 4 | (n / 100) % 10);
        out[1] = (uint8_t)(((n / 10) % 10) << 4 | n % 10);
        break;
    default:
        break;
    }
    if (fr->hdr_len > 0) {
        if (req_hdr == NULL)
            memset(out + pl, 0, fr->hdr_len);
        else
            memcpy(out + pl, req_hdr, fr->hdr_len);
        if (fr->tpdu_swap && req_hdr != NULL) {
            /* TPDU: id, destination (2), source (2) */
            out[pl + 1] = req_hdr[3];
            out[pl + 2] = req_hdr[4];
            out[pl + 3] = req_hdr[1];
            out[pl + 4] = req_hdr[2];
        }
    }
    return (long)(pl + fr->hdr_len);
}
