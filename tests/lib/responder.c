/*
 * responder.c - the test responder (see responder.h).
 */
#include "tests/lib/responder.h"

#include "tools/sim/net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RESP_MAX_CLIENTS 64

struct responder {
    struct responder_opts o;
    struct responder_stats st;
    int lfd;
    int cfd[RESP_MAX_CLIENTS];
    struct sim_rx *rx[RESP_MAX_CLIENTS];
    atomic_bool stop;
    pthread_t th;
    unsigned nfin; /* financial requests seen */
    struct iso_msg req, ans;
    uint8_t out[ISO_MAX_MSG + 64];
};

static void sleep_us(int64_t us)
{
    struct timespec ts = {.tv_sec = us / 1000000, .tv_nsec = (us % 1000000) * 1000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static int copy_field(struct responder *r, int n)
{
    const struct iso_view *v = iso_get(&r->req, n);
    return v ? iso_set(&r->ans, n, v->p, v->len) != 0 : 0;
}

/* Answer one request on fd; false when the connection should close. */
static bool answer(struct responder *r, int fd, const uint8_t *p, size_t len)
{
    struct iso_err e;
    atomic_fetch_add(&r->st.requests, 1);
    unsigned nreq = atomic_load(&r->st.requests);
    if (r->o.close_at && nreq == r->o.close_at)
        return false;
    if (iso_decode(r->o.link->d, p, len, &r->req, &e) != 0) {
        atomic_fetch_add(&r->st.undecodable, 1);
        return false;
    }
    if (r->o.stall_at && nreq == r->o.stall_at)
        sleep_us(r->o.stall_us);
    if (r->o.delay_us)
        sleep_us(r->o.delay_us);
    bool fin = memcmp(r->req.mti, "0800", 4) != 0;
    bool bad_stan = false, bad_mti = false;
    if (fin) {
        r->nfin++;
        if (r->o.drop_every && r->nfin % r->o.drop_every == 0) {
            atomic_fetch_add(&r->st.dropped, 1);
            return true;
        }
        bad_stan = r->o.bad_stan_every && r->nfin % r->o.bad_stan_every == 0;
        bad_mti = !bad_stan && r->o.bad_mti_every && r->nfin % r->o.bad_mti_every == 0;
    }
    char mti[5];
    sim_answer_mti(r->req.mti, mti);
    if (bad_mti)
        mti[1] = mti[1] == '2' ? '1' : '2';
    int bad = 0;
    iso_msg_init(&r->ans);
    if (iso_set_mti(&r->ans, mti) != 0)
        return false;
    static const int echo[] = {2, 3, 4, 7, 11, 12, 13, 32, 37, 41, 42, 49, 70, 90};
    for (size_t i = 0; i < sizeof(echo) / sizeof(echo[0]); i++)
        bad |= copy_field(r, echo[i]);
    const char *code = "00";
    if (fin && r->o.decide)
        code = r->o.decide(&r->req, r->o.decide_arg);
    bad |= iso_set(&r->ans, 39, code, 2);
    char buf[32];
    const struct iso_view *v11 = iso_get(&r->req, 11);
    if (fin && strcmp(code, "00") == 0 && v11) {
        snprintf(buf, sizeof(buf), "A%.5s", (const char *)v11->p + 1);
        bad |= iso_set_copy(&r->ans, 38, buf, 6);
    }
    const struct iso_view *v3 = iso_get(&r->req, 3);
    if (fin && v3 && v3->len == 6 && memcmp(v3->p, "31", 2) == 0 && strcmp(code, "00") == 0) {
        static const char bal[] = "0002840C0000001234560001840C000000123456";
        bad |= iso_set(&r->ans, 54, bal, strlen(bal));
    }
    if (bad_stan && v11) {
        char st[7];
        unsigned s = 0;
        for (int i = 0; i < 6; i++)
            s = s * 10 + (unsigned)(v11->p[i] - '0');
        sim_stan(st, s % 999999 + 1);
        bad |= iso_set_copy(&r->ans, 11, st, 6);
    }
    if (bad)
        return false;
    size_t pre = iso_frame_prefix_len(&r->o.link->fr) + r->o.link->fr.hdr_len;
    size_t mlen;
    if (iso_encode(r->o.link->d, &r->ans, r->out + pre, sizeof(r->out) - pre, &mlen, &e) != 0)
        return false;
    /* the request's header sits right before its message: answer with it swapped */
    struct iso_framing fr = r->o.link->fr;
    fr.tpdu_swap = fr.hdr_len == 5;
    if (iso_frame_write_head(&fr, fr.hdr_len ? p - fr.hdr_len : NULL, mlen, r->out, pre) !=
        (long)pre)
        return false;
    /* count before sending: whoever reads an answer then sees its count */
    if (bad_stan)
        atomic_fetch_add(&r->st.bad_stan, 1);
    else if (bad_mti)
        atomic_fetch_add(&r->st.bad_mti, 1);
    else
        atomic_fetch_add(&r->st.answered, 1);
    return sim_send_all(fd, r->out, pre + mlen, 5000) == 0;
}

static void drop_client(struct responder *r, int i)
{
    close(r->cfd[i]);
    r->cfd[i] = -1;
    free(r->rx[i]);
    r->rx[i] = NULL;
}

static void *run(void *arg)
{
    struct responder *r = arg;
    while (!atomic_load(&r->stop)) {
        struct pollfd pf[RESP_MAX_CLIENTS + 1];
        int map[RESP_MAX_CLIENTS + 1];
        int n = 0;
        pf[n] = (struct pollfd){.fd = r->lfd, .events = POLLIN};
        map[n++] = -1;
        for (int i = 0; i < RESP_MAX_CLIENTS; i++)
            if (r->cfd[i] >= 0) {
                pf[n] = (struct pollfd){.fd = r->cfd[i], .events = POLLIN};
                map[n++] = i;
            }
        if (poll(pf, (nfds_t)n, 10) <= 0)
            continue;
        if (pf[0].revents & POLLIN) {
            int fd = accept(r->lfd, NULL, NULL);
            int i;
            for (i = 0; fd >= 0 && i < RESP_MAX_CLIENTS && r->cfd[i] >= 0; i++)
                ;
            if (fd >= 0 && i < RESP_MAX_CLIENTS && (r->rx[i] = calloc(1, sizeof(struct sim_rx)))) {
                int one = 1;
                (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                r->cfd[i] = fd;
            } else if (fd >= 0)
                close(fd);
        }
        for (int k = 1; k < n; k++) {
            int i = map[k];
            if (!(pf[k].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            long got = sim_rx_fill(r->cfd[i], r->rx[i]);
            if (got <= 0) {
                drop_client(r, i);
                continue;
            }
            const uint8_t *msg;
            size_t len;
            char err[200];
            int fr;
            bool ok = true;
            while (ok && (fr = sim_rx_next(r->o.link, r->rx[i], &msg, &len, err, sizeof(err))) == 1)
                ok = answer(r, r->cfd[i], msg, len);
            if (!ok || fr < 0)
                drop_client(r, i);
        }
    }
    return NULL;
}

struct responder *responder_start(const struct responder_opts *o, char addr[64])
{
    struct responder *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->o = *o;
    for (int i = 0; i < RESP_MAX_CLIENTS; i++)
        r->cfd[i] = -1;
    r->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sa);
    if (r->lfd < 0 || bind(r->lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        listen(r->lfd, 64) != 0 || getsockname(r->lfd, (struct sockaddr *)&sa, &sl) != 0) {
        if (r->lfd >= 0)
            close(r->lfd);
        free(r);
        return NULL;
    }
    snprintf(addr, 64, "127.0.0.1:%u", (unsigned)ntohs(sa.sin_port));
    if (pthread_create(&r->th, NULL, run, r) != 0) {
        close(r->lfd);
        free(r);
        return NULL;
    }
    return r;
}

void responder_stop(struct responder *r)
{
    if (!r)
        return;
    atomic_store(&r->stop, true);
    pthread_join(r->th, NULL);
    for (int i = 0; i < RESP_MAX_CLIENTS; i++)
        if (r->cfd[i] >= 0)
            drop_client(r, i);
    close(r->lfd);
    free(r);
}

const struct responder_stats *responder_stats(const struct responder *r)
{
    return &r->st;
}
