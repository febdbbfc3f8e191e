/*
 * test_cardgated_net.c - a real cardgated on loopback, driven like a switch:
 * network management (echo, sign-on/off, cutover, unknown code), sign-on
 * enforcement, malformed and oversize frames closing only their own link,
 * the allow-list, idle timeout, our own echo and closing a silent peer,
 * a peer that does not read its answers, /metrics and /health.
 * No database: without the request pipeline, financial requests are
 * answered from the stand-in response code.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "tests/lib/cgdtest.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define F7 "7=1122101010"

static struct cgd d;

static int teardown(void **state)
{
    (void)state;
    return cgd_finish(&d);
}

/* Start a daemon with one listener on port 0 plus extra listener keys. */
static void start_with(const char *listener_extra, const char *extra_sections)
{
    assert_int_equal(cgd_init(&d), 0);
    assert_int_equal(cgd_write_conf(&d,
                                    "[listener main]\naddress = 127.0.0.1:%u\n%s\n"
                                    "[standin]\nresponse_code = 96\n"
                                    "[metrics]\naddress = 127.0.0.1:%u\n%s\n",
                                    d.port[0], listener_extra, d.port[1], extra_sections),
                     0);
    assert_int_equal(cgd_start(&d, NULL), 0);
}

/* Assert field n (0: MTI) of the answer is want. */
static void expect_field(const uint8_t *msg, long len, int n, const char *want)
{
    char v[64];
    assert_true(len > 0);
    assert_int_equal(cgd_field(msg, (size_t)len, n, v, sizeof(v)), 0);
    assert_string_equal(v, want);
}

/* Send buf[0..n) as a frame and read the answer into buf; its length. */
static long exchange(int fd, uint8_t *buf, size_t cap, long n)
{
    assert_true(n > 0);
    assert_int_equal(cgd_send_frame(fd, buf, (size_t)n), 0);
    n = cgd_recv_frame(fd, buf, cap);
    assert_true(n > 0);
    return n;
}

/* Send an 0800 with field 70 = code; return the 0810's field 39. */
static void netmgmt(int fd, const char *code, const char *stan, char rc[3])
{
    uint8_t buf[512];
    char f11[16], f70[16];
    long n;

    snprintf(f11, sizeof(f11), "11=%s", stan);
    snprintf(f70, sizeof(f70), "70=%s", code);
    n = exchange(fd, buf, sizeof(buf), cgd_build(buf, sizeof(buf), "0800", F7, f11, f70, CGD_END));
    expect_field(buf, n, 0, "0810");
    expect_field(buf, n, 11, stan);
    expect_field(buf, n, 70, code);
    assert_int_equal(cgd_field(buf, (size_t)n, 39, rc, 3), 0);
}

/* Send an 0200 purchase; return the 0210's field 39. */
static void purchase(int fd, const char *stan, char rc[3])
{
    uint8_t buf[512];
    char f11[16], v[64];
    long n;

    snprintf(f11, sizeof(f11), "11=%s", stan);
    n = exchange(fd, buf, sizeof(buf),
                 cgd_build(buf, sizeof(buf), "0200", "2=4761739001010119", "3=000000",
                           "4=000000001000", F7, f11, "41=TERM0001", "49=978", CGD_END));
    expect_field(buf, n, 0, "0210");
    expect_field(buf, n, 11, stan);
    expect_field(buf, n, 4, "000000001000");
    /* the PAN is not echoed by the link's own answers */
    assert_int_equal(cgd_field(buf, (size_t)n, 2, v, sizeof(v)), -1);
    assert_int_equal(cgd_field(buf, (size_t)n, 39, rc, 3), 0);
}

static void test_netmgmt_and_signon(void **state)
{
    char rc[3];
    int fd;

    (void)state;
    start_with("require_signon = yes", "");
    fd = cgd_connect(d.port[0]);
    assert_true(fd >= 0);
    netmgmt(fd, "301", "000001", rc);
    assert_string_equal(rc, "00");
    purchase(fd, "000002", rc);
    assert_string_equal(rc, "91"); /* not signed on */
    netmgmt(fd, "001", "000003", rc);
    assert_string_equal(rc, "00");
    purchase(fd, "000004", rc);
    assert_string_equal(rc, "96"); /* signed on: the stand-in code (no pipeline here) */
    netmgmt(fd, "201", "000005", rc);
    assert_string_equal(rc, "00");
    netmgmt(fd, "999", "000006", rc);
    assert_string_equal(rc, "12");
    netmgmt(fd, "002", "000007", rc);
    assert_string_equal(rc, "00");
    purchase(fd, "000008", rc);
    assert_string_equal(rc, "91"); /* signed off again */
    assert_true(cgd_log_wait(&d, "CONNECTED -> SIGNED_ON", 1000));
    assert_true(cgd_log_wait(&d, "SIGNED_ON -> SIGNED_OFF", 1000));
    /* no PAN in the log */
    assert_int_equal(cgd_log_count(&d, "4761739001010119"), 0);
    close(fd);
    assert_int_equal(cgd_signal_wait(&d, SIGTERM), 0);
}

static void test_missing_field_30(void **state)
{
    uint8_t buf[256];
    long n;
    int fd;

    (void)state;
    start_with("", "");
    fd = cgd_connect(d.port[0]);
    assert_true(fd >= 0);
    /* no field 70 */
    n = exchange(fd, buf, sizeof(buf),
                 cgd_build(buf, sizeof(buf), "0800", F7, "11=000009", CGD_END));
    expect_field(buf, n, 39, "30");
    assert_true(cgd_log_wait(&d, "0800 without field 70", 1000));
    close(fd);
}

static void test_garbage_closes_only_its_link(void **state)
{
    char rc[3];
    int good, bad;

    (void)state;
    start_with("", "");
    good = cgd_connect(d.port[0]);
    bad = cgd_connect(d.port[0]);
    assert_true(good >= 0 && bad >= 0);
    netmgmt(good, "301", "000001", rc);
    assert_int_equal(cgd_send_frame(bad, "GARBAGE!!", 9), 0);
    assert_true(cgd_wait_closed(bad, 2000));
    assert_true(cgd_log_wait(&d, "closed: undecodable 9-byte message", 1000));
    netmgmt(good, "301", "000002", rc);
    assert_string_equal(rc, "00");
    close(bad);
    close(good);
}

static void test_oversize_length_closes(void **state)
{
    uint8_t hdr[2] = {0x40, 0x00}; /* 16384 > max_frame 1k */
    char rc[3];
    int fd, other;

    (void)state;
    start_with("max_frame = 1k", "");
    fd = cgd_connect(d.port[0]);
    other = cgd_connect(d.port[0]);
    assert_true(fd >= 0 && other >= 0);
    assert_int_equal(send(fd, hdr, 2, 0), 2);
    assert_true(cgd_wait_closed(fd, 2000));
    assert_true(cgd_log_wait(&d, "closed: bad frame (frame: length exceeds", 1000));
    netmgmt(other, "301", "000001", rc);
    assert_string_equal(rc, "00");
    close(fd);
    close(other);
}

static void test_allow_list_refusal(void **state)
{
    char rc[3];
    int fd;

    (void)state;
    assert_int_equal(cgd_init(&d), 0);
    assert_int_equal(cgd_write_conf(&d,
                                    "[listener closed]\naddress = 127.0.0.1:%u\n"
                                    "allow = 10.0.0.0/8, ::1\n"
                                    "[listener open]\naddress = 127.0.0.1:%u\n"
                                    "allow = 10.0.0.0/8, 127.0.0.0/8\n",
                                    d.port[0], d.port[1]),
                     0);
    assert_int_equal(cgd_start(&d, NULL), 0);
    fd = cgd_connect(d.port[0]);
    assert_true(fd >= 0);
    assert_true(cgd_wait_closed(fd, 2000));
    assert_true(cgd_log_wait(
        &d, "listener closed: refused connection from 127.0.0.1: not on the allow-list", 1000));
    close(fd);
    fd = cgd_connect(d.port[1]);
    assert_true(fd >= 0);
    netmgmt(fd, "301", "000001", rc);
    assert_string_equal(rc, "00");
    close(fd);
}

static void test_idle_timeout(void **state)
{
    int fd;

    (void)state;
    start_with("idle_timeout = 300ms", "");
    fd = cgd_connect(d.port[0]);
    assert_true(fd >= 0);
    assert_true(cgd_wait_closed(fd, 3000));
    assert_true(cgd_log_wait(&d, "closed: idle for", 1000));
    close(fd);
}

static void test_own_echo_and_silent_peer(void **state)
{
    uint8_t buf[256], ans[256];
    char v[16];
    long n;
    int fd;

    (void)state;
    start_with("echo_interval = 200ms", "");
    fd = cgd_connect(d.port[0]);
    assert_true(fd >= 0);
    /* the daemon echoes an idle link; we answer the first one */
    n = cgd_recv_frame(fd, buf, sizeof(buf));
    assert_true(n > 0);
    assert_int_equal(cgd_field(buf, (size_t)n, 0, v, sizeof(v)), 0);
    assert_string_equal(v, "0800");
    assert_int_equal(cgd_field(buf, (size_t)n, 70, v, sizeof(v)), 0);
    assert_string_equal(v, "301");
    assert_int_equal(cgd_field(buf, (size_t)n, 11, v, sizeof(v)), 0);
    char f11[32];
    snprintf(f11, sizeof(f11), "11=%s", v);
    n = cgd_build(ans, sizeof(ans), "0810", F7, f11, "39=00", "70=301", CGD_END);
    assert_true(n > 0);
    assert_int_equal(cgd_send_frame(fd, ans, (size_t)n), 0);
    assert_true(cgd_log_wait(&d, "echo answered", 1000));
    /* then stay silent: three more echoes, then the link is closed */
    assert_true(cgd_wait_closed(fd, 5000));
    assert_true(cgd_log_wait(&d, "closed: 3 echo requests unanswered", 1000));
    close(fd);
}

static void test_peer_not_reading(void **state)
{
    uint8_t one[128], *many;
    int fd, rcv = 4096;
    long n;
    size_t count = 250000, off = 0;
    bool closed = false;

    (void)state;
    start_with("write_buffer_max = 64k", "");
    fd = cgd_connect_rcvbuf(d.port[0], rcv);
    assert_true(fd >= 0);
    n = cgd_build(one, sizeof(one), "0800", F7, "11=000001", "70=301", CGD_END);
    assert_true(n > 0);
    many = malloc(count * (size_t)(n + 2));
    assert_non_null(many);
    for (size_t i = 0; i < count; i++) {
        many[off++] = (uint8_t)(n >> 8);
        many[off++] = (uint8_t)n;
        memcpy(many + off, one, (size_t)n);
        off += (size_t)n;
    }
    /* write everything, never read: the daemon must give up on us */
    for (size_t done = 0; done < off;) {
        ssize_t w = send(fd, many + done, off - done, MSG_NOSIGNAL);
        if (w <= 0) {
            closed = true;
            break;
        }
        done += (size_t)w;
    }
    free(many);
    assert_true(cgd_log_wait(&d, "closed: peer is not reading", 5000));
    (void)closed;
    close(fd);
}

static void test_metrics_and_health(void **state)
{
    static char body[65536];
    char rc[3];
    int fd;

    (void)state;
    start_with("", "");
    fd = cgd_connect(d.port[0]);
    assert_true(fd >= 0);
    netmgmt(fd, "301", "000001", rc);
    purchase(fd, "000002", rc);
    assert_int_equal(cgd_http_get(d.port[1], "/health", body, sizeof(body)), 200);
    assert_string_equal(body, "ok\n");
    assert_int_equal(cgd_http_get(d.port[1], "/metrics", body, sizeof(body)), 200);
    assert_non_null(strstr(body, "\ncardgate_links_open 1\n"));
    assert_non_null(strstr(body, "\ncardgate_frames_in_total 2\n"));
    assert_non_null(strstr(body, "\ncardgate_frames_out_total 2\n"));
    assert_non_null(strstr(body, "cardgate_requests_total{mti=\"0800\",rc=\"00\"} 1\n"));
    assert_non_null(strstr(body, "cardgate_requests_total{mti=\"0200\",rc=\"96\"} 1\n"));
    assert_non_null(strstr(body, "cardgate_request_duration_seconds_bucket{le=\"+Inf\"} 2\n"));
    assert_non_null(strstr(body, "cardgate_request_duration_seconds_count 2\n"));
    assert_non_null(strstr(body, "cardgate_errors_total{kind=\"decode\"} 0\n"));
    assert_non_null(strstr(body, "cardgate_db_connections_up 0\n"));
    assert_non_null(strstr(body, "\ncardgate_standin_answers_total 1\n"));
    assert_int_equal(cgd_http_get(d.port[1], "/nope", body, sizeof(body)), 404);
    close(fd);
    assert_int_equal(cgd_signal_wait(&d, SIGTERM), 0);
}

static void test_unix_socket_and_tpdu(void **state)
{
    char path[400], rc[3], v[16];
    uint8_t msg[256], frame[300], ans[300];
    long n;
    int fd;

    (void)state;
    assert_int_equal(cgd_init(&d), 0);
    snprintf(path, sizeof(path), "%s/switch.sock", d.dir);
    assert_int_equal(cgd_write_conf(&d,
                                    "[listener local]\naddress = unix:%s\n"
                                    "[listener tpdu]\naddress = 127.0.0.1:%u\nheader = tpdu\n",
                                    path, d.port[0]),
                     0);
    assert_int_equal(cgd_start(&d, NULL), 0);
    fd = cgd_connect_unix(path);
    assert_true(fd >= 0);
    netmgmt(fd, "301", "000001", rc);
    assert_string_equal(rc, "00");
    close(fd);

    /* TPDU 60 0001 0002: the answer carries 60 0002 0001 */
    fd = cgd_connect(d.port[0]);
    assert_true(fd >= 0);
    n = cgd_build(msg, sizeof(msg), "0800", F7, "11=000002", "70=301", CGD_END);
    assert_true(n > 0);
    memcpy(frame, "\x60\x00\x01\x00\x02", 5);
    memcpy(frame + 5, msg, (size_t)n);
    assert_int_equal(cgd_send_frame(fd, frame, (size_t)n + 5), 0);
    n = cgd_recv_frame(fd, ans, sizeof(ans));
    assert_true(n > 5);
    assert_memory_equal(ans, "\x60\x00\x02\x00\x01", 5);
    assert_int_equal(cgd_field(ans + 5, (size_t)n - 5, 39, v, sizeof(v)), 0);
    assert_string_equal(v, "00");
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_netmgmt_and_signon, teardown),
        cmocka_unit_test_teardown(test_missing_field_30, teardown),
        cmocka_unit_test_teardown(test_garbage_closes_only_its_link, teardown),
        cmocka_unit_test_teardown(test_oversize_length_closes, teardown),
        cmocka_unit_test_teardown(test_allow_list_refusal, teardown),
        cmocka_unit_test_teardown(test_idle_timeout, teardown),
        cmocka_unit_test_teardown(test_own_echo_and_silent_peer, teardown),
        cmocka_unit_test_teardown(test_peer_not_reading, teardown),
        cmocka_unit_test_teardown(test_metrics_and_health, teardown),
        cmocka_unit_test_teardown(test_unix_socket_and_tpdu, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
