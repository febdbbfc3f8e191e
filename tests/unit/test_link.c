/*
 * test_link.c - links and the server in this process, with a fake request
 * pipeline behind the dispatch hook: answers written out of arrival order,
 * deadlines = arrival + budget, backpressure at max_outstanding, a link
 * closing while requests are in flight (answers dropped, memory kept until
 * the last one: the SAN build catches a use after free), a refused
 * dispatch answered from stand-in, and a drain that waits for the answer.
 * The loop is pumped by hand (EVLOOP_NONBLOCK) between client steps.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/log.h"
#include "common/util.h"
#include "daemon/server.h"
#include "tests/lib/cgdtest.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAXREQ 16

struct held {
    struct link *l;
    char stan[7];
    int64_t budget_us;
};

static struct {
    struct event_base *base;
    struct server *srv;
    struct cgd d;
    struct held req[MAXREQ];
    int nreq;
    int drains;
    bool refuse;
    char events[1024]; /* "event:detail|" for every lifecycle event */
} t;

static void fake_event(void *arg, const char *who, const char *event, const char *detail)
{
    size_t n = strlen(t.events);
    (void)arg;
    assert_non_null(who);
    snprintf(t.events + n, sizeof(t.events) - n, "%s:%s|", event, detail);
}

static int fake_dispatch(void *arg, struct link *l, const struct link_frame *f)
{
    const struct iso_view *v = iso_get(f->iso, 11);

    (void)arg;
    if (t.refuse)
        return -1;
    assert_true(t.nreq < MAXREQ);
    assert_non_null(v);
    assert_int_equal(v->len, 6);
    t.req[t.nreq].l = l;
    memcpy(t.req[t.nreq].stan, v->p, 6);
    t.req[t.nreq].stan[6] = '\0';
    t.req[t.nreq].budget_us = f->deadline_us - f->arrival_us;
    t.nreq++;
    return 0;
}

static void fake_drain(void *arg, struct server *s)
{
    (void)arg;
    (void)s;
    t.drains++;
}

static void pump_ms(int ms)
{
    for (int i = 0; i < ms; i++) {
        event_base_loop(t.base, EVLOOP_NONBLOCK);
        usleep(1000);
    }
}

static bool pump_until_reqs(int n, int ms)
{
    for (int i = 0; i < ms && t.nreq < n; i++) {
        event_base_loop(t.base, EVLOOP_NONBLOCK);
        usleep(1000);
    }
    return t.nreq >= n;
}

static void start(const char *extra)
{
    struct cg_config *cfg = malloc(sizeof(*cfg));
    struct conf_err err;
    struct server_hooks h = {.dispatch = fake_dispatch, .drain = fake_drain, .event = fake_event};

    memset(&t, 0, sizeof(t));
    log_init("test_link", LOG_LVL_WARNING);
    assert_non_null(cfg);
    assert_int_equal(cgd_init(&t.d), 0);
    assert_int_equal(cgd_write_conf(&t.d,
                                    "[listener main]\naddress = 127.0.0.1:%u\nbudget = 120ms\n%s\n"
                                    "[standin]\nresponse_code = 96\n"
                                    "[metrics]\naddress = 127.0.0.1:%u\n",
                                    t.d.port[0], extra, t.d.port[1]),
                     0);
    assert_int_equal(cg_config_load(t.d.conf, cfg, &err), 0);
    t.base = event_base_new();
    assert_non_null(t.base);
    t.srv = server_new(t.base, cfg);
    assert_non_null(t.srv);
    server_set_hooks(t.srv, &h);
    assert_int_equal(server_start(t.srv), 0);
}

/* start() and one client connection. */
static int start_connected(const char *extra)
{
    int fd;
    start(extra);
    fd = cgd_connect(t.d.port[0]);
    assert_true(fd >= 0);
    return fd;
}

static int teardown(void **state)
{
    (void)state;
    server_free(t.srv);
    event_base_free(t.base);
    cgd_cleanup(&t.d);
    return 0;
}

static void send_purchase(int fd, const char *stan)
{
    uint8_t buf[256];
    char f11[16];
    long n;

    snprintf(f11, sizeof(f11), "11=%s", stan);
    n = cgd_build(buf, sizeof(buf), "0200", "3=000000", "4=000000000100", "7=1122101010", f11,
                  CGD_END);
    assert_true(n > 0);
    assert_int_equal(cgd_send_frame(fd, buf, (size_t)n), 0);
}

/* The pipeline's answer for held request i. */
static int answer(int i)
{
    uint8_t buf[256];
    char f11[16];
    long n;

    snprintf(f11, sizeof(f11), "11=%s", t.req[i].stan);
    n = cgd_build(buf, sizeof(buf), "0210", "3=000000", "7=1122101010", f11, "39=00", CGD_END);
    assert_true(n > 0);
    return link_send_answer(t.req[i].l, NULL, buf, (size_t)n);
}

static void expect_stan(int fd, const char *stan)
{
    uint8_t buf[256];
    char v[16];
    long n = cgd_recv_frame(fd, buf, sizeof(buf));

    assert_true(n > 0);
    assert_int_equal(cgd_field(buf, (size_t)n, 11, v, sizeof(v)), 0);
    assert_string_equal(v, stan);
}

static void test_out_of_order(void **state)
{
    int fd;

    (void)state;
    fd = start_connected("");
    send_purchase(fd, "000001");
    send_purchase(fd, "000002");
    send_purchase(fd, "000003");
    assert_true(pump_until_reqs(3, 2000));
    for (int i = 0; i < 3; i++)
        assert_int_equal(t.req[i].budget_us, 120000);
    assert_int_equal(t.req[0].l->outstanding, 3);
    assert_int_equal(answer(2), 0);
    assert_int_equal(answer(0), 0);
    assert_int_equal(answer(1), 0);
    pump_ms(20);
    expect_stan(fd, "000003");
    expect_stan(fd, "000001");
    expect_stan(fd, "000002");
    close(fd);
}

static void test_backpressure(void **state)
{
    int fd;

    (void)state;
    fd = start_connected("max_outstanding = 3");
    for (int i = 1; i <= 5; i++) {
        char stan[8];
        snprintf(stan, sizeof(stan), "%06d", i);
        send_purchase(fd, stan);
    }
    assert_true(pump_until_reqs(3, 2000));
    pump_ms(30);
    assert_int_equal(t.nreq, 3); /* reading paused */
    assert_true(t.req[0].l->read_paused);
    assert_int_equal(answer(0), 0);
    assert_true(pump_until_reqs(4, 2000));
    pump_ms(30);
    assert_int_equal(t.nreq, 4);
    assert_int_equal(answer(1), 0);
    assert_int_equal(answer(2), 0);
    assert_true(pump_until_reqs(5, 2000));
    assert_int_equal(answer(3), 0);
    assert_int_equal(answer(4), 0);
    pump_ms(20);
    for (int i = 1; i <= 5; i++) {
        char stan[8];
        snprintf(stan, sizeof(stan), "%06d", i);
        expect_stan(fd, stan);
    }
    close(fd);
}

static void test_close_with_requests_in_flight(void **state)
{
    int fd;

    (void)state;
    fd = start_connected("");
    send_purchase(fd, "000001");
    send_purchase(fd, "000002");
    assert_true(pump_until_reqs(2, 2000));
    close(fd);
    for (int i = 0; i < 2000 && cg_metrics.links_open > 0; i++)
        pump_ms(1);
    assert_int_equal(cg_metrics.links_open, 0);
    assert_string_equal(t.events,
                        "accepted:plain|closed:peer closed the connection (2 in flight)|");
    /* the link is closed but still allocated for its two requests */
    assert_int_equal(t.req[0].l->state, LINK_CLOSED);
    assert_int_equal(t.req[0].l->refs, 2);
    assert_int_equal(answer(0), -1);
    pump_ms(5);
    assert_int_equal(t.req[1].l->refs, 1);
    link_request_cancel(t.req[1].l); /* last reference: freed from the loop */
    pump_ms(5);
}

static void test_refused_dispatch_standin(void **state)
{
    uint8_t buf[256];
    char v[8];
    long n;
    int fd;

    (void)state;
    fd = start_connected("");
    t.refuse = true;
    send_purchase(fd, "000007");
    pump_ms(30);
    n = cgd_recv_frame(fd, buf, sizeof(buf));
    assert_true(n > 0);
    assert_int_equal(cgd_field(buf, (size_t)n, 39, v, sizeof(v)), 0);
    assert_string_equal(v, "96");
    close(fd);
}

static void test_drain_waits_for_answer(void **state)
{
    int fd;

    (void)state;
    fd = start_connected("");
    send_purchase(fd, "000001");
    assert_true(pump_until_reqs(1, 2000));
    server_drain(t.srv);
    assert_int_equal(t.drains, 1);
    assert_int_equal(t.req[0].l->state, LINK_DRAINING);
    assert_false(event_base_got_exit(t.base));
    assert_int_equal(answer(0), 0);
    /* the loop must end by itself once the answer is out and the link closed */
    struct timeval limit = {3, 0};
    int64_t t0 = util_now_us();
    event_base_loopexit(t.base, &limit);
    assert_int_equal(event_base_dispatch(t.base), 0);
    assert_true(util_now_us() - t0 < 1000000);
    assert_true(TAILQ_EMPTY(&t.srv->links));
    expect_stan(fd, "000001");
    assert_true(cgd_wait_closed(fd, 1000));
    close(fd);
}

/* GET path from the metrics port while pumping the loop; the status code. */
static int http_get_pumped(unsigned port, const char *path)
{
    char req[128], resp[4096];
    size_t n = 0;
    int fd = cgd_connect(port), code = -1;

    assert_true(fd >= 0);
    snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\n\r\n", path);
    assert_int_equal(send(fd, req, strlen(req), 0), (ssize_t)strlen(req));
    for (int i = 0; i < 2000; i++) {
        event_base_loop(t.base, EVLOOP_NONBLOCK);
        ssize_t r = recv(fd, resp + n, sizeof(resp) - 1 - n, MSG_DONTWAIT);
        if (r == 0)
            break;
        if (r > 0)
            n += (size_t)r;
        else
            usleep(1000);
    }
    close(fd);
    resp[n] = '\0';
    assert_int_equal(sscanf(resp, "HTTP/1.%*d %d", &code), 1);
    return code;
}

static void test_drain_serves_buffered_frames(void **state)
{
    int fd;

    (void)state;
    fd = start_connected("max_outstanding = 1");
    send_purchase(fd, "000001");
    send_purchase(fd, "000002");
    send_purchase(fd, "000003");
    assert_true(pump_until_reqs(1, 2000));
    pump_ms(20);
    assert_int_equal(t.nreq, 1);
    assert_int_equal(http_get_pumped(t.d.port[1], "/health"), 200);
    server_drain(t.srv);
    assert_int_equal(http_get_pumped(t.d.port[1], "/health"), 503);
    /* the two frames already received are served one by one, then the link closes */
    assert_int_equal(answer(0), 0);
    assert_true(pump_until_reqs(2, 2000));
    assert_int_equal(answer(1), 0);
    assert_true(pump_until_reqs(3, 2000));
    assert_int_equal(answer(2), 0);
    struct timeval limit = {3, 0};
    event_base_loopexit(t.base, &limit);
    assert_int_equal(event_base_dispatch(t.base), 0);
    assert_true(TAILQ_EMPTY(&t.srv->links));
    expect_stan(fd, "000001");
    expect_stan(fd, "000002");
    expect_stan(fd, "000003");
    assert_true(cgd_wait_closed(fd, 1000));
    assert_string_equal(t.events, "accepted:plain|draining:|closed:drained|");
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_out_of_order, teardown),
        cmocka_unit_test_teardown(test_backpressure, teardown),
        cmocka_unit_test_teardown(test_close_with_requests_in_flight, teardown),
        cmocka_unit_test_teardown(test_refused_dispatch_standin, teardown),
        cmocka_unit_test_teardown(test_drain_waits_for_answer, teardown),
        cmocka_unit_test_teardown(test_drain_serves_buffered_frames, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
