/*
 * notify.h - the systemd service notification protocol, without libsystemd.
 *
 * systemd passes $NOTIFY_SOCKET (a path, or '@' for an abstract socket); a
 * notification is one datagram of "KEY=VALUE\n" lines: READY=1, STATUS=...,
 * RELOADING=1, STOPPING=1, WATCHDOG=1.  When the variable is absent every
 * call is a no-op that succeeds, so the daemon runs the same outside systemd.
 * $WATCHDOG_USEC (with $WATCHDOG_PID naming us, when set) asks for WATCHDOG=1
 * more often than that interval; the daemon sends it from a loop timer at
 * half the interval, so a wedged loop stops sending and gets restarted.
 */
#ifndef CARDGATE_DAEMON_NOTIFY_H
#define CARDGATE_DAEMON_NOTIFY_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/un.h>

struct notify {
    int fd; /* -1: notifications disabled */
    struct sockaddr_un addr;
    socklen_t addrlen;
};

/*
 * Read $NOTIFY_SOCKET and open a datagram socket for it.  Returns 0 (also
 * when the variable is unset: disabled), -1 when it is malformed or the
 * socket cannot be created (logged; the caller may carry on disabled).
 */
int notify_open(struct notify *n) __attribute__((warn_unused_result));

/* The same for an explicit address ("/path" or "@abstract"); for tests. */
int notify_open_addr(struct notify *n, const char *addr) __attribute__((warn_unused_result));

bool notify_enabled(const struct notify *n);

/*
 * Send one datagram holding text (e.g. "READY=1\nSTATUS=serving").  Returns
 * 0, or -1 with errno when the send failed (the caller logs; systemd being
 * gone is not fatal).  A no-op returning 0 when disabled.
 */
int notify_send(struct notify *n, const char *text) __attribute__((warn_unused_result));

/* printf-style notify_send; the text is truncated at 1 KiB. */
int notify_sendf(struct notify *n, const char *fmt, ...) __attribute__((format(printf, 2, 3)))
__attribute__((warn_unused_result));

/*
 * The watchdog interval systemd asked for in microseconds, 0 when none
 * ($WATCHDOG_USEC unset or invalid, or $WATCHDOG_PID names another process).
 */
uint64_t notify_watchdog_usec(void);

void notify_close(struct notify *n);

#endif
