/*
 * net.c - sockets and frame reception for the simulator.
 */
#include "tools/sim/net.h"

#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int sim_parse_addr(const char *addr, char *host, size_t hostcap, char *port, size_t portcap)
{
    const char *colon;
    const char *h = addr;
    size_t hlen;
    if (addr[0] == '[') {
        const char *rb = strchr(addr, ']');
        if (!rb || rb[1] != ':')
            return -1;
        h = addr + 1;
        hlen = (size_t)(rb - h);
        colon = rb + 1;
    } else {
        colon = strrchr(addr, ':');
        if (!colon)
            return -1;
        hlen = (size_t)(colon - addr);
    }
    size_t plen = strlen(colon + 1);
    if (hlen == 0 || hlen >= hostcap || plen == 0 || plen >= portcap)
        return -1;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    memcpy(port, colon + 1, plen + 1);
    return 0;
}

/* Wait for fd to become ready for events within timeout_ms; 1 ready, 0 timeout, -1 error. */
static int wait_fd(int fd, short events, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = events};
    for (;;) {
        int r = poll(&p, 1, timeout_ms);
        if (r < 0 && errno == EINTR)
            continue;
        return r < 0 ? -1 : r;
    }
}

int sim_connect(const char *addr, int timeout_ms, char *err, size_t errlen)
{
    char host[256], port[32];
    if (sim_parse_addr(addr, host, sizeof(host), port, sizeof(port)) != 0) {
        snprintf(err, errlen, "bad address '%s' (HOST:PORT)", addr);
        return -1;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res;
    int gai = getaddrinfo(host, port, &hints, &res);
    if (gai != 0) {
        snprintf(err, errlen, "%s: %s", addr, gai_strerror(gai));
        return -1;
    }
    int fd = -1;
    snprintf(err, errlen, "%s: no address", addr);
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
            continue;
        int r = connect(fd, ai->ai_addr, ai->ai_addrlen);
        if (r != 0 && errno == EINPROGRESS) {
            int soerr = 0;
            socklen_t sl = sizeof(soerr);
            r = wait_fd(fd, POLLOUT, timeout_ms);
            if (r == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr == 0)
                r = 0;
            else {
                errno = r == 0 ? ETIMEDOUT : soerr;
                r = -1;
            }
        }
        if (r == 0) {
            int one = 1;
            (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
            int fl = fcntl(fd, F_GETFL);
            if (fl >= 0)
                (void)fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
            break;
        }
        snprintf(err, errlen, "%s: connect: %s", addr, strerror(errno));
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

int sim_send_all(int fd, const uint8_t *buf, size_t len, int timeout_ms)
{
    size_t off = 0;
    while (off < len) {
        ssize_t w = send(fd, buf + off, len - off, MSG_NOSIGNAL);
        if (w > 0) {
            off += (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (wait_fd(fd, POLLOUT, timeout_ms) != 1)
                return -1;
            continue;
        }
        return -1;
    }
    return 0;
}

int sim_rx_next(const struct sim_link *l, struct sim_rx *rx, const uint8_t **msg, size_t *len,
                char *err, size_t errlen)
{
    if (rx->pending) {
        memmove(rx->buf, rx->buf + rx->pending, rx->have - rx->pending);
        rx->have -= rx->pending;
        rx->pending = 0;
    }
    size_t off, mlen, flen;
    struct iso_err e;
    int r = iso_frame_parse(&l->fr, rx->buf, rx->have, &off, &mlen, &flen, &e);
    if (r < 0) {
        snprintf(err, errlen, "framing: %s", e.msg);
        return -1;
    }
    if (r == 0) {
        if (rx->have == sizeof(rx->buf)) {
            snprintf(err, errlen, "framing: frame larger than %zu bytes", sizeof(rx->buf));
            return -1;
        }
        return 0;
    }
    *msg = rx->buf + off;
    *len = mlen;
    rx->pending = flen;
    return 1;
}

long sim_rx_fill(int fd, struct sim_rx *rx)
{
    if (rx->pending) {
        memmove(rx->buf, rx->buf + rx->pending, rx->have - rx->pending);
        rx->have -= rx->pending;
        rx->pending = 0;
    }
    if (rx->have == sizeof(rx->buf)) {
        errno = EMSGSIZE;
        return -1;
    }
    for (;;) {
        ssize_t r = read(fd, rx->buf + rx->have, sizeof(rx->buf) - rx->have);
        if (r < 0 && errno == EINTR)
            continue;
        if (r > 0)
            rx->have += (size_t)r;
        return (long)r;
    }
}

int sim_recv_frame(int fd, const struct sim_link *l, struct sim_rx *rx, int timeout_ms,
                   const uint8_t **msg, size_t *len, char *err, size_t errlen)
{
    int64_t deadline = util_now_us() + (int64_t)timeout_ms * 1000;
    for (;;) {
        int r = sim_rx_next(l, rx, msg, len, err, errlen);
        if (r != 0)
            return r;
        int64_t left = deadline - util_now_us();
        if (left <= 0)
            return 0;
        int w = wait_fd(fd, POLLIN, (int)((left + 999) / 1000));
        if (w == 0)
            return 0;
        if (w < 0) {
            snprintf(err, errlen, "poll: %s", strerror(errno));
            return -1;
        }
        long n = sim_rx_fill(fd, rx);
        if (n == 0) {
            snprintf(err, errlen, "connection closed by the peer");
            return -1;
        }
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
            snprintf(err, errlen, "read: %s", strerror(errno));
            return -1;
        }
    }
}
