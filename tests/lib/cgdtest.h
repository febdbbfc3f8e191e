/*
 * cgdtest.h - run a real build/cardgated in integration tests and talk to
 * it like a switch.
 *
 *   struct cgd d;
 *   cgd_init(&d);                                  (temp dir, free ports)
 *   cgd_write_conf(&d, "[listener main]\naddress = 127.0.0.1:%u\n", d.port[0]);
 *   cgd_start(&d, NULL);                           (waits for "ready:")
 *   int fd = cgd_connect(d.port[0]);
 *   cgd_send_frame(fd, msg, len); cgd_recv_frame(fd, buf, sizeof(buf));
 *   cgd_log_wait(&d, "closed: bad frame", 2000);
 *   cgd_signal_wait(&d, SIGTERM) == 0;             (exit status)
 *   cgd_cleanup(&d);
 *
 * The daemon logs at debug level to DIR/log; cgd_log_wait polls that file.
 * Frames use 2-byte binary lengths (len2).
 */
#ifndef CARDGATE_TESTS_CGDTEST_H
#define CARDGATE_TESTS_CGDTEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define CGD_NPORTS 4

struct cgd {
    pid_t pid;
    char dir[256];
    char conf[300];
    char log[300];
    unsigned port[CGD_NPORTS]; /* free loopback ports picked at init */
    int listen_fd;             /* >= 0: passed as fd 3 with LISTEN_FDS=1 (socket activation) */
};

/* Make a temp dir and pick free ports; 0 or -1. */
int cgd_init(struct cgd *d);
/* Write printf-formatted configuration text to d->conf; 0 or -1. */
int cgd_write_conf(struct cgd *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/*
 * Start cardgated -d -c d->conf with extra environment entries env
 * ("NAME=value", NULL-terminated; may be NULL).  Waits up to 5 s for
 * "ready:" in the log; 0 or -1 (log printed).
 */
int cgd_start(struct cgd *d, const char *const *env);
/* Wait up to ms for needle to appear in the log. */
bool cgd_log_wait(struct cgd *d, const char *needle, int ms);
/* How often needle occurs in the log now. */
int cgd_log_count(struct cgd *d, const char *needle);
/* Send sig and wait up to 10 s for the exit; returns the exit status or -1 (killed). */
int cgd_signal_wait(struct cgd *d, int sig);
/* A listening TCP socket on 127.0.0.1:port (for socket activation); -1 on error. */
int cgd_listen(unsigned port);
/*
 * End of a test: SIGTERM a running daemon, then cgd_cleanup.  Returns -1
 * (log printed) when the log holds a sanitizer report, 0 otherwise.
 */
int cgd_finish(struct cgd *d);
/* Kill a still running daemon, remove the temp dir. */
void cgd_cleanup(struct cgd *d);
/* Print the log to stderr (on failure). */
void cgd_dump_log(struct cgd *d);

/* A free TCP port on 127.0.0.1 (bound then released). */
unsigned cgd_free_port(void);
/* A blocking TCP connection to 127.0.0.1:port with 5 s timeouts; -1 on error. */
int cgd_connect(unsigned port);
/* A blocking connection to a unix socket path with 5 s timeouts; -1 on error. */
int cgd_connect_unix(const char *path);
/* The same with a small receive buffer set before connecting (0: default). */
int cgd_connect_rcvbuf(unsigned port, int rcvbuf);
/* Write a len2 frame; 0 or -1. */
int cgd_send_frame(int fd, const void *msg, size_t len);
/* Read one len2 frame into buf; its length, or -1 on EOF, timeout or overflow. */
long cgd_recv_frame(int fd, uint8_t *buf, size_t cap);
/* Wait up to ms for the peer to close fd (EOF or reset); true if it did. */
bool cgd_wait_closed(int fd, int ms);
/*
 * Encode an ascii87 message: mti and "N=value" pairs ("N#HEX" for a
 * binary field such as the PIN block 52), ended by CGD_END (a
 * typed NULL: a plain NULL is not portable through varargs).
 * Returns the length or -1.
 */
#define CGD_END ((const char *)NULL)
long cgd_build(uint8_t *out, size_t cap, const char *mti, ...);
/* The same with the "N=value" pairs in a NULL-terminated array. */
long cgd_buildv(uint8_t *out, size_t cap, const char *mti, const char *const *kvs);
/*
 * Decode an ascii87 message and copy field n (0 = MTI) as a string into
 * val; 0, or -1 when undecodable or absent.
 */
int cgd_field(const uint8_t *msg, size_t len, int n, char *val, size_t cap);
/* Send an HTTP GET to 127.0.0.1:port; the status code, body into body. */
int cgd_http_get(unsigned port, const char *path, char *body, size_t cap);

#endif
