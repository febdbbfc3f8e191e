/*
 * notify.c - sd_notify's datagram protocol (see notify.h).  Small on purpose:
 * one socket, one sendto per notification, no threads, no allocation.
 */
#include "daemon/notify.h"

#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int notify_open_addr(struct notify *n, const char *addr)
{
    size_t len = strlen(addr);

    memset(n, 0, sizeof(*n));
    n->fd = -1;
    if (len < 2 || (addr[0] != '/' && addr[0] != '@') || len >= sizeof(n->addr.sun_path)) {
        log_warnx("notify: NOTIFY_SOCKET is not a usable socket address");
        return -1;
    }
    n->addr.sun_family = AF_UNIX;
    memcpy(n->addr.sun_path, addr, len);
    if (addr[0] == '@')
        n->addr.sun_path[0] = '\0'; /* abstract namespace: no trailing NUL counted */
    n->addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
    n->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (n->fd < 0) {
        log_warn("notify: socket");
        return -1;
    }
    return 0;
}

int notify_open(struct notify *n)
{
    const char *addr = getenv("NOTIFY_SOCKET");

    memset(n, 0, sizeof(*n));
    n->fd = -1;
    if (addr == NULL || addr[0] == '\0')
        return 0;
    return notify_open_addr(n, addr);
}

bool notify_enabled(const struct notify *n)
{
    return n->fd >= 0;
}

int notify_send(struct notify *n, const char *text)
{
    if (n->fd < 0)
        return 0;
    if (sendto(n->fd, text, strlen(text), MSG_NOSIGNAL, (const struct sockaddr *)&n->addr,
               n->addrlen) < 0)
        return -1;
    return 0;
}

int notify_sendf(struct notify *n, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;

    if (n->fd < 0)
        return 0;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    return notify_send(n, buf);
}

uint64_t notify_watchdog_usec(void)
{
    const char *us = getenv("WATCHDOG_USEC"), *pid = getenv("WATCHDOG_PID");
    char *end;
    unsigned long long v;

    if (us == NULL || us[0] < '0' || us[0] > '9') /* strtoull takes "-5" */
        return 0;
    if (pid != NULL && pid[0] != '\0') {
        errno = 0;
        long long p = strtoll(pid, &end, 10);
        if (errno != 0 || *end != '\0' || p != (long long)getpid())
            return 0;
    }
    errno = 0;
    v = strtoull(us, &end, 10);
    if (errno != 0 || *end != '\0' || v == 0)
        return 0;
    return (uint64_t)v;
}

void notify_close(struct notify *n)
{
    if (n->fd >= 0)
        close(n->fd);
    n->fd = -1;
}
