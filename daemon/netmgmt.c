/*
 * netmgmt.c - 0800/0810 on a link (see netmgmt.h).  Answers are encoded
 * into one static message and buffer: the loop is single-threaded and each
 * answer is written before the next is built.
 */
#include "daemon/netmgmt.h"

#include "common/log.h"
#include "common/util.h"
#include "daemon/linkmac.h"
#include "daemon/server.h"
#include "iso8583/iso8583.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static struct iso_msg out_msg;
static uint8_t out_buf[ISO_MAX_MSG];

void netmgmt_response_mti(const char *req, char out[4])
{
    memcpy(out, req, 4);
    if (out[2] >= '0' && out[2] <= '8')
        out[2] = (char)(out[2] + 1);
    out[3] = '0';
}

/* Copy field n of req into out_msg when present. */
static int echo_field(const struct iso_msg *req, int n)
{
    const struct iso_view *v = iso_get(req, n);
    if (v == NULL)
        return 0;
    return iso_set(&out_msg, n, v->p, v->len);
}

static int send_out(struct link *l, const struct link_frame *f, bool answer)
{
    struct iso_err err;
    size_t len;

    if (linkmac_link_encode(l, &out_msg, out_buf, sizeof(out_buf), &len, &err) != 0) {
        cg_metrics.errors[MERR_ENCODE]++;
        log_warnx_p(l->prefix, "cannot encode %.4s: %s", out_msg.mti, err.msg);
        return 0; /* the link itself is fine */
    }
    (void)answer;
    return link_write_frame(l, f != NULL ? f->hdr : NULL, out_buf, len);
}

int netmgmt_answer_code(struct link *l, const struct link_frame *f, const char *rc)
{
    static const int echoed[] = {3, 4, 7, 11, 12, 13, 32, 37, 41, 42, 49, 70};
    char mti[5];

    netmgmt_response_mti(f->iso->mti, mti);
    mti[4] = '\0';
    iso_msg_init(&out_msg);
    if (iso_set_mti(&out_msg, mti) != 0)
        return 0;
    for (size_t i = 0; i < sizeof(echoed) / sizeof(echoed[0]); i++)
        if (echo_field(f->iso, echoed[i]) != 0)
            return 0;
    if (iso_set(&out_msg, 39, rc, 2) != 0)
        return 0;
    metrics_request(f->iso->mti, rc, util_now_us() - f->arrival_us);
    return send_out(l, f, true);
}

/* The 0810 response code for a network management code (field 70). */
static const char *nm_code(struct link *l, const struct link_frame *f, const struct iso_view *code)
{
    if (code->len != 3)
        return "30";
    if (memcmp(code->p, "001", 3) == 0) {
        if (l->state == LINK_CONNECTED || l->state == LINK_SIGNED_OFF)
            link_set_state(l, LINK_SIGNED_ON);
        return "00";
    }
    if (memcmp(code->p, "002", 3) == 0) {
        if (l->state == LINK_CONNECTED || l->state == LINK_SIGNED_ON)
            link_set_state(l, LINK_SIGNED_OFF);
        return "00";
    }
    if (memcmp(code->p, "301", 3) == 0)
        return "00";
    if (memcmp(code->p, "201", 3) == 0) {
        log_info_p(l->prefix, "cutover (0800 code 201)");
        server_event(l->srv, l->prefix, "cutover", "%s", "");
        return "00";
    }
    if (memcmp(code->p, "101", 3) == 0 || memcmp(code->p, "161", 3) == 0) {
        if (l->srv->hooks.key_change != NULL)
            return l->srv->hooks.key_change(l->srv->hooks.arg, l, f);
    }
    log_info_p(l->prefix, "network management code %.3s not supported: answered 12",
               (const char *)code->p);
    return "12";
}

int netmgmt_handle(struct link *l, const struct link_frame *f)
{
    const struct iso_view *code = iso_get(f->iso, 70);
    const char *rc;
    int missing = iso_required_missing(f->iso);

    if (missing != 0) {
        log_warnx_p(l->prefix, "0800 without field %d: answered 30", missing);
        rc = "30";
    } else {
        rc = nm_code(l, f, code);
    }
    iso_msg_init(&out_msg);
    if (iso_set_mti(&out_msg, "0810") != 0)
        return 0;
    static const int echoed[] = {7, 11, 32, 33, 37, 41, 70};
    for (size_t i = 0; i < sizeof(echoed) / sizeof(echoed[0]); i++)
        if (echo_field(f->iso, echoed[i]) != 0)
            return 0;
    if (iso_set(&out_msg, 39, rc, 2) != 0)
        return 0;
    metrics_request("0800", rc, util_now_us() - f->arrival_us);
    return send_out(l, f, true);
}

int netmgmt_send_echo(struct link *l)
{
    char f7[32], f11[16];
    time_t now = time(NULL);
    struct tm tm;

    gmtime_r(&now, &tm);
    snprintf(f7, sizeof(f7), "%02d%02d%02d%02d%02d", tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
             tm.tm_min, tm.tm_sec);
    l->stan = l->stan % 999999 + 1;
    snprintf(f11, sizeof(f11), "%06u", (unsigned)l->stan);
    iso_msg_init(&out_msg);
    if (iso_set_mti(&out_msg, "0800") != 0 || iso_set(&out_msg, 7, f7, 10) != 0 ||
        iso_set(&out_msg, 11, f11, 6) != 0 || iso_set(&out_msg, 70, "301", 3) != 0)
        return 0;
    /* our own header: zeroes, or the TPDU fields as the listener has them */
    return send_out(l, NULL, false);
}
