/*
 * test_notify.c - the sd_notify datagram protocol against sockets of the
 * test's own (a path and an abstract name), the disabled case, malformed
 * addresses, and $WATCHDOG_USEC / $WATCHDOG_PID parsing (table-driven).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "daemon/notify.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* Bind a datagram socket at addr ("/path" or "@name"). */
static int bind_dgram(const char *addr)
{
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    size_t len = strlen(addr);
    int fd = socket(AF_UNIX, SOCK_DGRAM, 0);

    assert_true(fd >= 0);
    memcpy(un.sun_path, addr, len);
    if (addr[0] == '@')
        un.sun_path[0] = '\0';
    assert_int_equal(
        bind(fd, (struct sockaddr *)&un,
             (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + (addr[0] == '@' ? 0 : 1))),
        0);
    return fd;
}

static void expect_datagram(int fd, const char *want)
{
    char buf[2048];
    ssize_t n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
    assert_true(n > 0);
    buf[n] = '\0';
    assert_string_equal(buf, want);
}

static void roundtrip(const char *addr)
{
    struct notify n;
    int fd = bind_dgram(addr);

    setenv("NOTIFY_SOCKET", addr, 1);
    assert_int_equal(notify_open(&n), 0);
    assert_true(notify_enabled(&n));
    assert_int_equal(notify_send(&n, "READY=1\nSTATUS=serving"), 0);
    expect_datagram(fd, "READY=1\nSTATUS=serving");
    assert_int_equal(notify_sendf(&n, "STATUS=links %d", 7), 0);
    expect_datagram(fd, "STATUS=links 7");
    assert_int_equal(notify_send(&n, "STOPPING=1"), 0);
    expect_datagram(fd, "STOPPING=1");
    notify_close(&n);
    assert_false(notify_enabled(&n));
    close(fd);
    unsetenv("NOTIFY_SOCKET");
}

static void test_path_socket(void **state)
{
    char path[108];
    (void)state;
    snprintf(path, sizeof(path), "/tmp/cardgate-notify-test-%ld.sock", (long)getpid());
    unlink(path);
    roundtrip(path);
    unlink(path);
}

static void test_abstract_socket(void **state)
{
    char addr[108];
    (void)state;
    snprintf(addr, sizeof(addr), "@cardgate-notify-test-%ld", (long)getpid());
    roundtrip(addr);
}

static void test_disabled_and_malformed(void **state)
{
    struct notify n;
    static const char *const bad[] = {"relative/path", "@", "x", ""};

    (void)state;
    unsetenv("NOTIFY_SOCKET");
    assert_int_equal(notify_open(&n), 0);
    assert_false(notify_enabled(&n));
    assert_int_equal(notify_send(&n, "READY=1"), 0); /* a no-op outside systemd */
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (bad[i][0] == '\0')
            continue;
        assert_int_equal(notify_open_addr(&n, bad[i]), -1);
        assert_false(notify_enabled(&n));
    }
    /* nobody listening: the send fails, the caller decides */
    assert_int_equal(notify_open_addr(&n, "/nonexistent/cardgate-notify.sock"), 0);
    assert_int_equal(notify_send(&n, "READY=1"), -1);
    notify_close(&n);
}

static void test_watchdog_env(void **state)
{
    char me[32], other[32];
    const struct {
        const char *usec, *pid;
        uint64_t want;
    } cases[] = {
        {NULL, NULL, 0},
        {"2000000", NULL, 2000000},
        {"2000000", me, 2000000},
        {"2000000", other, 0},
        {"0", NULL, 0},
        {"12x", NULL, 0},
        {"", NULL, 0},
        {"-5", NULL, 0},
    };

    (void)state;
    snprintf(me, sizeof(me), "%ld", (long)getpid());
    snprintf(other, sizeof(other), "%ld", (long)getpid() + 1);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (cases[i].usec != NULL)
            setenv("WATCHDOG_USEC", cases[i].usec, 1);
        else
            unsetenv("WATCHDOG_USEC");
        if (cases[i].pid != NULL)
            setenv("WATCHDOG_PID", cases[i].pid, 1);
        else
            unsetenv("WATCHDOG_PID");
        if (notify_watchdog_usec() != cases[i].want)
            fail_msg("case %zu: WATCHDOG_USEC=%s WATCHDOG_PID=%s", i,
                     cases[i].usec ? cases[i].usec : "(unset)",
                     cases[i].pid ? cases[i].pid : "(unset)");
    }
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_path_socket),
        cmocka_unit_test(test_abstract_socket),
        cmocka_unit_test(test_disabled_and_malformed),
        cmocka_unit_test(test_watchdog_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
