/*
 * test_cardgated_life.c - cardgated's lifecycle against a real process:
 * SIGHUP with a good config (listener added, then removed) and with bad
 * ones (a syntax error, a TLS certificate that does not exist) while links
 * stay up and signed on; SIGTERM -> exit 0; the notify socket (the test's
 * own) sees READY, STATUS, WATCHDOG, RELOADING/READY and STOPPING in order;
 * systemd socket activation (LISTEN_FDS) instead of binding; READY=1
 * waits for the database up to [daemon] ready_wait, then comes with a
 * STATUS saying the database is down.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "tests/lib/cgdtest.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static struct cgd d;
static int nfd = -1;        /* our notify socket */
static char notes[1 << 16]; /* every datagram received, separated by '|' */
static size_t notes_len;
static pthread_mutex_t notes_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_t reader;
static volatile bool reader_stop;

static int teardown(void **state)
{
    (void)state;
    if (nfd >= 0) {
        reader_stop = true;
        pthread_join(reader, NULL);
        close(nfd);
    }
    nfd = -1;
    return cgd_finish(&d);
}

/*
 * Collect datagrams in a thread, as systemd would, so none is lost to a
 * full receive queue while the test is busy elsewhere.
 */

static void *read_notes(void *arg)
{
    char buf[2048];
    struct pollfd p = {.fd = nfd, .events = POLLIN};

    (void)arg;
    while (!reader_stop) {
        if (poll(&p, 1, 20) <= 0)
            continue;
        ssize_t n = recv(nfd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
        if (n <= 0)
            continue;
        pthread_mutex_lock(&notes_mu);
        if (notes_len + (size_t)n + 2 < sizeof(notes)) {
            memcpy(notes + notes_len, buf, (size_t)n);
            notes_len += (size_t)n;
            notes[notes_len++] = '|';
            notes[notes_len] = '\0';
        }
        pthread_mutex_unlock(&notes_mu);
    }
    return NULL;
}

/* Wait up to ms for needle among the notifications. */
static bool notes_wait(const char *needle, int ms)
{
    for (int waited = 0; waited <= ms; waited += 10) {
        pthread_mutex_lock(&notes_mu);
        bool found = strstr(notes, needle) != NULL;
        pthread_mutex_unlock(&notes_mu);
        if (found)
            return true;
        usleep(10000);
    }
    return false;
}

/* Bind an abstract datagram socket; its NOTIFY_SOCKET value into env. */
static void notify_socket(char *env, size_t cap)
{
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    char name[64];
    socklen_t len;

    snprintf(name, sizeof(name), "cardgate-test-notify-%ld", (long)getpid());
    memcpy(un.sun_path + 1, name, strlen(name));
    len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(name));
    nfd = socket(AF_UNIX, SOCK_DGRAM, 0);
    assert_true(nfd >= 0);
    assert_int_equal(bind(nfd, (struct sockaddr *)&un, len), 0);
    snprintf(env, cap, "NOTIFY_SOCKET=@%s", name);
    notes_len = 0;
    notes[0] = '\0';
    reader_stop = false;
    assert_int_equal(pthread_create(&reader, NULL, read_notes, NULL), 0);
}

/* An echo on fd answered 00. */
static bool echo_ok(int fd)
{
    uint8_t buf[256];
    char rc[8];
    long n = cgd_build(buf, sizeof(buf), "0800", "7=1122101010", "11=000001", "70=301", CGD_END);
    if (n <= 0 || cgd_send_frame(fd, buf, (size_t)n) != 0)
        return false;
    n = cgd_recv_frame(fd, buf, sizeof(buf));
    return n > 0 && cgd_field(buf, (size_t)n, 39, rc, sizeof(rc)) == 0 && strcmp(rc, "00") == 0;
}

/* Sign on fd. */
static void sign_on(int fd)
{
    uint8_t buf[256];
    char rc[8];
    long n = cgd_build(buf, sizeof(buf), "0800", "7=1122101010", "11=000002", "70=001", CGD_END);
    assert_true(n > 0);
    assert_int_equal(cgd_send_frame(fd, buf, (size_t)n), 0);
    n = cgd_recv_frame(fd, buf, sizeof(buf));
    assert_true(n > 0);
    assert_int_equal(cgd_field(buf, (size_t)n, 39, rc, sizeof(rc)), 0);
    assert_string_equal(rc, "00");
}

/* The response code a purchase gets on fd. */
static void purchase_rc(int fd, char rc[8])
{
    uint8_t buf[256];
    long n = cgd_build(buf, sizeof(buf), "0200", "3=000000", "4=000000000500", "7=1122101010",
                       "11=000003", CGD_END);
    assert_true(n > 0);
    assert_int_equal(cgd_send_frame(fd, buf, (size_t)n), 0);
    n = cgd_recv_frame(fd, buf, sizeof(buf));
    assert_true(n > 0);
    assert_int_equal(cgd_field(buf, (size_t)n, 39, rc, 8), 0);
}

/* No database here: READY=1 at once (ready_wait = 0), stand-in answers. */
#define BASE_CONF "[daemon]\nready_wait = 0\n" LISTENER_CONF
#define LISTENER_CONF                                                                              \
    "[listener main]\naddress = 127.0.0.1:%u\nrequire_signon = yes\n"                              \
    "[standin]\nresponse_code = 96\n"

static void test_reload_and_notify(void **state)
{
    char env_notify[128], rc[8];
    const char *env[] = {env_notify, "WATCHDOG_USEC=200000", NULL};
    int a, b, c;

    (void)state;
    assert_int_equal(cgd_init(&d), 0);
    notify_socket(env_notify, sizeof(env_notify));
    assert_int_equal(cgd_write_conf(&d, BASE_CONF, d.port[0]), 0);
    assert_int_equal(cgd_start(&d, env), 0);
    assert_true(notes_wait("WATCHDOG=1", 2000));
    a = cgd_connect(d.port[0]);
    assert_true(a >= 0);
    sign_on(a);

    /* good: a second listener appears, link a stays signed on */
    assert_int_equal(cgd_write_conf(&d, BASE_CONF "[listener second]\naddress = 127.0.0.1:%u\n",
                                    d.port[0], d.port[1]),
                     0);
    kill(d.pid, SIGHUP);
    assert_true(cgd_log_wait(&d, "reload: done, 2 listeners", 3000));
    b = cgd_connect(d.port[1]);
    assert_true(b >= 0);
    assert_true(echo_ok(b));
    assert_true(echo_ok(a));
    purchase_rc(a, rc);
    assert_string_equal(rc, "96"); /* still signed on: not 91 */

    /* bad syntax: refused, everything keeps serving */
    assert_int_equal(cgd_write_conf(&d, BASE_CONF "[listener second]\naddres = x\n", d.port[0]), 0);
    kill(d.pid, SIGHUP);
    assert_true(cgd_log_wait(&d, "reload refused: ", 3000));
    assert_true(cgd_log_wait(&d, "unknown key 'addres' in [listener second]", 100));
    assert_true(echo_ok(a));
    assert_true(echo_ok(b));
    c = cgd_connect(d.port[1]);
    assert_true(c >= 0 && echo_ok(c));
    close(c);

    /* bad TLS files: valid syntax, but the listener cannot be set up */
    assert_int_equal(cgd_write_conf(&d,
                                    BASE_CONF "[listener tls]\naddress = 127.0.0.1:%u\n"
                                              "tls = yes\ntls_cert = %s/none.pem\n"
                                              "tls_key = %s/none.key\n",
                                    d.port[0], d.port[2], d.dir, d.dir),
                     0);
    kill(d.pid, SIGHUP);
    assert_true(cgd_log_wait(&d, "listener tls: TLS setup failed", 3000));
    assert_int_equal(cgd_log_count(&d, "reload refused: "), 2);
    assert_true(echo_ok(a));
    c = cgd_connect(d.port[1]); /* "second" is still there: the old config serves */
    assert_true(c >= 0 && echo_ok(c));
    close(c);
    assert_true(cgd_connect(d.port[2]) < 0);

    /* good again: "second" removed; its open link b stays */
    assert_int_equal(cgd_write_conf(&d, BASE_CONF, d.port[0]), 0);
    kill(d.pid, SIGHUP);
    assert_true(cgd_log_wait(&d, "reload: done, 1 listener", 3000));
    assert_true(cgd_log_wait(&d, "listener second: no longer configured", 100));
    assert_true(cgd_connect(d.port[1]) < 0);
    assert_true(echo_ok(b));
    assert_true(echo_ok(a));

    assert_int_equal(cgd_signal_wait(&d, SIGTERM), 0);
    assert_true(cgd_wait_closed(a, 1000));
    assert_true(cgd_wait_closed(b, 1000));
    close(a);
    close(b);
    assert_true(notes_wait("STOPPING=1", 1000));
    /* the order systemd needs */
    const char *order[] = {"READY=1",
                           "STATUS=serving",
                           "WATCHDOG=1",
                           "RELOADING=1",
                           "READY=1",
                           "RELOADING=1",
                           "READY=1",
                           "STATUS=serving (reload "
                           "refused",
                           "RELOADING=1",
                           "READY=1",
                           "STOPPING=1"};
    pthread_mutex_lock(&notes_mu);
    const char *p = notes;
    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
        const char *q = strstr(p, order[i]);
        if (q == NULL) {
            fprintf(stderr, "notifications: %s\n%s missing after: %s\n", notes, order[i], p);
            pthread_mutex_unlock(&notes_mu);
            fail();
        }
        p = q + strlen(order[i]);
    }
    pthread_mutex_unlock(&notes_mu);
    assert_true(cgd_log_wait(&d, "stopped", 100));
}

/*
 * No database: READY=1 is held back for ready_wait (STATUS says why), then
 * sent with a STATUS saying the database is down; the listeners serve
 * (stand-in) meanwhile.
 */
static void test_ready_waits_for_database(void **state)
{
    char env_notify[128], rc[8];
    const char *env[] = {env_notify, NULL};
    int a;

    (void)state;
    assert_int_equal(cgd_init(&d), 0);
    notify_socket(env_notify, sizeof(env_notify));
    assert_int_equal(cgd_write_conf(&d, "[daemon]\nready_wait = 600ms\n" LISTENER_CONF, d.port[0]),
                     0);
    assert_int_equal(cgd_start(&d, env), 0);
    assert_true(notes_wait("STATUS=starting: waiting for the database", 1000));
    pthread_mutex_lock(&notes_mu);
    bool early = strstr(notes, "READY=1") != NULL;
    pthread_mutex_unlock(&notes_mu);
    assert_false(early);
    a = cgd_connect(d.port[0]);
    assert_true(a >= 0);
    sign_on(a);
    purchase_rc(a, rc);
    assert_string_equal(rc, "96"); /* serving from stand-in while not READY */
    assert_true(notes_wait("READY=1", 3000));
    assert_true(cgd_log_wait(&d, "ready without the database", 100));
    pthread_mutex_lock(&notes_mu);
    const char *r = strstr(notes, "READY=1");
    bool down = r != NULL && strstr(r, "database down: answering from stand-in") != NULL;
    pthread_mutex_unlock(&notes_mu);
    assert_true(down);
    close(a);
    assert_int_equal(cgd_signal_wait(&d, SIGTERM), 0);
}

static void test_sigterm_and_int(void **state)
{
    int a;

    (void)state;
    assert_int_equal(cgd_init(&d), 0);
    assert_int_equal(cgd_write_conf(&d, BASE_CONF, d.port[0]), 0);
    assert_int_equal(cgd_start(&d, NULL), 0);
    a = cgd_connect(d.port[0]);
    assert_true(a >= 0 && echo_ok(a));
    assert_int_equal(cgd_signal_wait(&d, SIGINT), 0);
    assert_true(cgd_log_wait(&d, "SIGINT: draining", 100));
    assert_true(cgd_log_wait(&d, "closed: drained", 100));
    close(a);
}

static void test_socket_activation(void **state)
{
    int a;

    (void)state;
    assert_int_equal(cgd_init(&d), 0);
    d.listen_fd = cgd_listen(d.port[0]);
    assert_true(d.listen_fd >= 0);
    assert_int_equal(cgd_write_conf(&d, BASE_CONF, d.port[0]), 0);
    assert_int_equal(cgd_start(&d, NULL), 0);
    if (!cgd_log_wait(&d, "systemd passed 1 listening socket", 100))
        cgd_dump_log(&d);
    assert_true(cgd_log_wait(&d, "systemd passed 1 listening socket", 100));
    assert_true(cgd_log_wait(&d, "(ascii87, len2) from systemd", 100));
    a = cgd_connect(d.port[0]);
    if (!(a >= 0 && echo_ok(a)))
        cgd_dump_log(&d);
    assert_true(a >= 0 && echo_ok(a));
    close(a);
    assert_int_equal(cgd_signal_wait(&d, SIGTERM), 0);
}

static volatile bool traffic_stop;

/* Echo round trips on one link until told to stop; returns failures. */
static void *traffic(void *arg)
{
    int fd = *(int *)arg;
    long fails = 0, ok = 0;

    while (!traffic_stop) {
        if (echo_ok(fd))
            ok++;
        else
            fails++;
        if (fails > 0)
            break; /* the stream is out of step after a failure */
    }
    *(int *)arg = (int)(ok > 0 && fails == 0 ? 0 : -1);
    return NULL;
}

static void test_reload_under_traffic(void **state)
{
    pthread_t th[2];
    int fds[2];

    (void)state;
    assert_int_equal(cgd_init(&d), 0);
    assert_int_equal(cgd_write_conf(&d, BASE_CONF, d.port[0]), 0);
    assert_int_equal(cgd_start(&d, NULL), 0);
    traffic_stop = false;
    for (int i = 0; i < 2; i++) {
        fds[i] = cgd_connect(d.port[0]);
        assert_true(fds[i] >= 0);
    }
    int rcs[2] = {fds[0], fds[1]};
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&th[i], NULL, traffic, &rcs[i]), 0);
    for (int i = 0; i < 10; i++) {
        if (i % 2 == 0)
            assert_int_equal(cgd_write_conf(&d,
                                            "[listener main]\naddress = 127.0.0.1:%u\n"
                                            "require_signon = yes\nidle_timeout = %ds\n",
                                            d.port[0], 100 + i),
                             0);
        else
            assert_int_equal(cgd_write_conf(&d, BASE_CONF "bogus = 1\n", d.port[0]), 0);
        kill(d.pid, SIGHUP);
        usleep(60000);
    }
    traffic_stop = true;
    for (int i = 0; i < 2; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(rcs[i], 0);
    }
    assert_int_equal(cgd_log_count(&d, "reload: done"), 5);
    assert_int_equal(cgd_log_count(&d, "reload refused: "), 5);
    assert_int_equal(cgd_log_count(&d, "closed:"), 0); /* no link dropped */
    for (int i = 0; i < 2; i++)
        close(fds[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_reload_and_notify, teardown),
        cmocka_unit_test_teardown(test_ready_waits_for_database, teardown),
        cmocka_unit_test_teardown(test_sigterm_and_int, teardown),
        cmocka_unit_test_teardown(test_socket_activation, teardown),
        cmocka_unit_test_teardown(test_reload_under_traffic, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
