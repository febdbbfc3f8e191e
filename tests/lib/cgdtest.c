/*
 * cgdtest.c - see cgdtest.h.
 */
#include "tests/lib/cgdtest.h"

#include "common/util.h"
#include "iso8583/iso8583.h"
#include "tests/lib/pgtest.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

unsigned cgd_free_port(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    unsigned port = 0;

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
        port = ntohs(sa.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

int cgd_init(struct cgd *d)
{
    const char *tmp = getenv("TMPDIR");

    memset(d, 0, sizeof(*d));
    snprintf(d->dir, sizeof(d->dir), "%s/cardgated-test.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (mkdtemp(d->dir) == NULL)
        return -1;
    d->listen_fd = -1;
    snprintf(d->conf, sizeof(d->conf), "%s/cardgated.conf", d->dir);
    snprintf(d->log, sizeof(d->log), "%s/log", d->dir);
    for (int i = 0; i < CGD_NPORTS; i++) {
        d->port[i] = cgd_free_port();
        for (int j = 0; j < i; j++)
            if (d->port[j] == d->port[i])
                d->port[i] = cgd_free_port(), j = -1;
        if (d->port[i] == 0)
            return -1;
    }
    return 0;
}

int cgd_write_conf(struct cgd *d, const char *fmt, ...)
{
    FILE *fp = fopen(d->conf, "w");
    va_list ap;

    if (fp == NULL)
        return -1;
    va_start(ap, fmt);
    vfprintf(fp, fmt, ap);
    va_end(ap);
    return fclose(fp) == 0 ? 0 : -1;
}

static char *read_log(struct cgd *d)
{
    FILE *fp = fopen(d->log, "r");
    char *buf;
    size_t n;

    if (fp == NULL)
        return NULL;
    buf = malloc(4 << 20);
    if (buf == NULL) {
        fclose(fp);
        return NULL;
    }
    n = fread(buf, 1, (4 << 20) - 1, fp);
    buf[n] = '\0';
    fclose(fp);
    return buf;
}

int cgd_log_count(struct cgd *d, const char *needle)
{
    char *log = read_log(d), *p;
    int n = 0;

    if (log == NULL)
        return 0;
    for (p = log; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    free(log);
    return n;
}

bool cgd_log_wait(struct cgd *d, const char *needle, int ms)
{
    for (int waited = 0;; waited += 20) {
        if (cgd_log_count(d, needle) > 0)
            return true;
        if (waited >= ms)
            return false;
        sleep_ms(20);
    }
}

void cgd_dump_log(struct cgd *d)
{
    char *log = read_log(d);
    fprintf(stderr, "---- cardgated log ----\n%s-----------------------\n", log ? log : "");
    free(log);
}

int cgd_start(struct cgd *d, const char *const *env)
{
    char prog[256];
    pid_t pid;

    pgtest_prog("cardgated", prog, sizeof(prog));
    pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int fd = open(d->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd < 0)
            _exit(127);
        dup2(fd, 2);
        dup2(fd, 1);
        close(fd);
        for (size_t i = 0; env != NULL && env[i] != NULL; i++)
            putenv((char *)env[i]);
        if (d->listen_fd >= 0) {
            char spid[32];
            if (d->listen_fd != 3 && dup2(d->listen_fd, 3) != 3)
                _exit(127);
            snprintf(spid, sizeof(spid), "%ld", (long)getpid());
            setenv("LISTEN_PID", spid, 1);
            setenv("LISTEN_FDS", "1", 1);
        }
        execl(prog, prog, "-d", "-c", d->conf, (char *)NULL);
        _exit(127);
    }
    d->pid = pid;
    for (int waited = 0; waited < 5000; waited += 20) {
        int st;
        if (cgd_log_count(d, "ready:") > 0)
            return 0;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            d->pid = 0;
            cgd_dump_log(d);
            return -1;
        }
        sleep_ms(20);
    }
    cgd_dump_log(d);
    return -1;
}

int cgd_signal_wait(struct cgd *d, int sig)
{
    int st;

    if (d->pid <= 0)
        return -1;
    kill(d->pid, sig);
    for (int waited = 0; waited < 10000; waited += 10) {
        if (waitpid(d->pid, &st, WNOHANG) == d->pid) {
            d->pid = 0;
            return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        }
        sleep_ms(10);
    }
    kill(d->pid, SIGKILL);
    waitpid(d->pid, &st, 0);
    d->pid = 0;
    return -1;
}

int cgd_finish(struct cgd *d)
{
    int bad;

    if (d->pid > 0)
        (void)cgd_signal_wait(d, SIGTERM);
    bad = cgd_log_count(d, "Sanitizer") + cgd_log_count(d, "runtime error");
    if (bad > 0)
        cgd_dump_log(d);
    cgd_cleanup(d);
    return bad > 0 ? -1 : 0;
}

void cgd_cleanup(struct cgd *d)
{
    char cmd[600];

    if (d->listen_fd >= 0)
        close(d->listen_fd);
    d->listen_fd = -1;
    if (d->pid > 0) {
        kill(d->pid, SIGKILL);
        waitpid(d->pid, NULL, 0);
        d->pid = 0;
    }
    if (d->dir[0] != '\0' && strncmp(d->dir, "/", 1) == 0) {
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d->dir);
        if (system(cmd) != 0)
            fprintf(stderr, "cannot remove %s\n", d->dir);
    }
    d->dir[0] = '\0';
}

int cgd_listen(unsigned port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0)
        return -1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, 16) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* 5 s send and receive timeouts, so a test never hangs on a silent daemon. */
static void set_timeouts(int fd)
{
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

int cgd_connect_unix(const char *path)
{
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);

    if (fd < 0 || strlen(path) >= sizeof(un.sun_path)) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    memcpy(un.sun_path, path, strlen(path) + 1);
    if (connect(fd, (struct sockaddr *)&un, sizeof(un)) != 0) {
        close(fd);
        return -1;
    }
    set_timeouts(fd);
    return fd;
}

int cgd_connect(unsigned port)
{
    return cgd_connect_rcvbuf(port, 0);
}

int cgd_connect_rcvbuf(unsigned port, int rcvbuf)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0)
        return -1;
    if (rcvbuf > 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return -1;
    }
    set_timeouts(fd);
    return fd;
}

/* Send (write) or receive all of p[0..len); 0, or -1 on EOF, error, timeout. */
static int xfer_all(int fd, void *p, size_t len, bool write)
{
    uint8_t *b = p;
    while (len > 0) {
        ssize_t n = write ? send(fd, b, len, MSG_NOSIGNAL) : recv(fd, b, len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        b += n;
        len -= (size_t)n;
    }
    return 0;
}

int cgd_send_frame(int fd, const void *msg, size_t len)
{
    uint8_t hdr[2] = {(uint8_t)(len >> 8), (uint8_t)len};
    if (len > 0xFFFF)
        return -1;
    return xfer_all(fd, hdr, 2, true) == 0 && xfer_all(fd, (void *)msg, len, true) == 0 ? 0 : -1;
}

long cgd_recv_frame(int fd, uint8_t *buf, size_t cap)
{
    uint8_t hdr[2];
    size_t len;

    if (xfer_all(fd, hdr, 2, false) != 0)
        return -1;
    len = (size_t)hdr[0] << 8 | hdr[1];
    if (len > cap || xfer_all(fd, buf, len, false) != 0)
        return -1;
    return (long)len;
}

bool cgd_wait_closed(int fd, int ms)
{
    uint8_t buf[4096];
    struct pollfd p = {.fd = fd, .events = POLLIN};

    for (int waited = 0; waited <= ms; waited += 10) {
        if (poll(&p, 1, 10) > 0) {
            ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
                return true;
        }
    }
    return false;
}

static struct iso_dialect *ascii87_dialect;

static void ascii87_load(void)
{
    char err[256];
    ascii87_dialect = iso_dialect_builtin("ascii87", err, sizeof(err));
}

/* The ascii87 dialect, loaded once (tests may call from several threads). */
static struct iso_dialect *ascii87(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, ascii87_load);
    return ascii87_dialect;
}

long cgd_build(uint8_t *out, size_t cap, const char *mti, ...)
{
    const char *kvs[64];
    size_t n = 0;
    va_list ap;

    va_start(ap, mti);
    while (n + 1 < sizeof(kvs) / sizeof(kvs[0]) && (kvs[n] = va_arg(ap, const char *)) != NULL)
        n++;
    va_end(ap);
    kvs[n] = NULL;
    return cgd_buildv(out, cap, mti, kvs);
}

long cgd_buildv(uint8_t *out, size_t cap, const char *mti, const char *const *kvs)
{
    static _Thread_local struct iso_msg m;
    struct iso_err err;
    size_t len;

    if (ascii87() == NULL)
        return -1;
    iso_msg_init(&m);
    if (iso_set_mti(&m, mti) != 0)
        return -1;
    for (size_t i = 0; kvs[i] != NULL; i++) {
        int n = atoi(kvs[i]);
        const char *v = strchr(kvs[i], '=');
        const char *h = v == NULL ? strchr(kvs[i], '#') : NULL;
        if (h != NULL) { /* "N#HEX": a binary field's bytes */
            uint8_t bin[128];
            long bl = util_hex_decode(h + 1, bin, sizeof(bin));
            if (bl < 0 || iso_set_copy(&m, n, bin, (size_t)bl) != 0)
                return -1;
            continue;
        }
        if (v == NULL || iso_set_copy(&m, n, v + 1, strlen(v + 1)) != 0)
            return -1;
    }
    if (iso_encode(ascii87(), &m, out, cap, &len, &err) != 0) {
        fprintf(stderr, "cgd_build: %s\n", err.msg);
        return -1;
    }
    return (long)len;
}

int cgd_field(const uint8_t *msg, size_t len, int n, char *val, size_t cap)
{
    static _Thread_local struct iso_msg m;
    struct iso_err err;
    const struct iso_view *v;

    if (ascii87() == NULL || iso_decode(ascii87(), msg, len, &m, &err) != 0)
        return -1;
    if (n == 0) {
        snprintf(val, cap, "%.4s", m.mti);
        return 0;
    }
    v = iso_get(&m, n);
    if (v == NULL || v->len >= cap)
        return -1;
    memcpy(val, v->p, v->len);
    val[v->len] = '\0';
    return 0;
}

int cgd_http_get(unsigned port, const char *path, char *body, size_t cap)
{
    char req[256], resp[65536];
    size_t n = 0;
    int fd = cgd_connect(port), code = -1;
    char *b;

    if (fd < 0)
        return -1;
    snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: localhost\r\n\r\n", path);
    if (xfer_all(fd, req, strlen(req), true) != 0) {
        close(fd);
        return -1;
    }
    for (;;) {
        ssize_t r = recv(fd, resp + n, sizeof(resp) - 1 - n, 0);
        if (r <= 0)
            break;
        n += (size_t)r;
        if (n == sizeof(resp) - 1)
            break;
    }
    close(fd);
    resp[n] = '\0';
    if (sscanf(resp, "HTTP/1.%*d %d", &code) != 1)
        return -1;
    b = strstr(resp, "\r\n\r\n");
    snprintf(body, cap, "%s", b != NULL ? b + 4 : "");
    return code;
}
