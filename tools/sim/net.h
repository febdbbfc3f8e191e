/*
 * net.h - the simulator's sockets: connect to HOST:PORT, send frames, and a
 * receive buffer that hands out whole frames (no allocation per frame).
 * The blocking calls serve the scenario and the load generator's sign-on;
 * the load generator's event loop uses sim_rx_fill/sim_rx_next on a
 * non-blocking socket.
 */
#ifndef CARDGATE_SIM_NET_H
#define CARDGATE_SIM_NET_H

#include "tools/sim/msg.h"

#include <stddef.h>
#include <stdint.h>

#define SIM_RX_CAP (64 * 1024)

struct sim_rx {
    size_t have;    /* bytes in buf */
    size_t pending; /* bytes of the last frame handed out, drained at the next call */
    uint8_t buf[SIM_RX_CAP];
};

/* Split "HOST:PORT" or "[V6]:PORT"; -1 when malformed or too long. */
int sim_parse_addr(const char *addr, char *host, size_t hostcap, char *port, size_t portcap)
    __attribute__((warn_unused_result));
/*
 * Connect (blocking, TCP_NODELAY) to addr within timeout_ms; returns the fd
 * or -1 with err.
 */
int sim_connect(const char *addr, int timeout_ms, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* Write all of buf on a blocking or non-blocking fd, waiting up to timeout_ms; -1 on error. */
int sim_send_all(int fd, const uint8_t *buf, size_t len, int timeout_ms)
    __attribute__((warn_unused_result));
/*
 * The next whole frame already in rx: returns 1 with *msg and *len (the ISO
 * message inside the frame, valid until the next call), 0 when more bytes
 * are needed, -1 with err when the framing is broken.
 */
int sim_rx_next(const struct sim_link *l, struct sim_rx *rx, const uint8_t **msg, size_t *len,
                char *err, size_t errlen) __attribute__((warn_unused_result));
/*
 * One read() into rx (non-blocking fd friendly): returns bytes read, 0 on
 * EOF, -1 on error (errno; EAGAIN when nothing to read).
 */
long sim_rx_fill(int fd, struct sim_rx *rx) __attribute__((warn_unused_result));
/*
 * Blocking: wait up to timeout_ms for the next frame.  1 with *msg and *len,
 * 0 on timeout, -1 with err on EOF, error or broken framing.
 */
int sim_recv_frame(int fd, const struct sim_link *l, struct sim_rx *rx, int timeout_ms,
                   const uint8_t **msg, size_t *len, char *err, size_t errlen)
    __attribute__((warn_unused_result));

#endif
