/*
 * test_cardgated_tls.c - TLS listeners of a real cardgated: mutual TLS with
 * a client certificate from the configured CA (served), without one and
 * with one from another CA (refused, the link closed with a logged reason),
 * and optional client certificates (served with and without).  A throwaway
 * CA and certificates are made with the openssl command-line tool.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "tests/lib/cgdtest.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct cgd d;

static int make_certs(const char *dir)
{
    char cmd[4096];
    snprintf(cmd, sizeof(cmd),
             "set -e; cd '%s'; exec 2>openssl.log;"
             "key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out $1; };"
             "key ca.key; key rogue.key; key server.key; key client.key; key rclient.key;"
             "openssl req -x509 -key ca.key -out ca.pem -days 2 -subj /CN=test-ca;"
             "openssl req -x509 -key rogue.key -out rogue.pem -days 2 -subj /CN=rogue-ca;"
             "printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > server.ext;"
             "printf 'extendedKeyUsage=clientAuth\\n' > client.ext;"
             "openssl req -new -key server.key -out server.csr -subj /CN=localhost;"
             "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
             "  -out server.pem -days 2 -extfile server.ext;"
             "openssl req -new -key client.key -out client.csr -subj /CN=test-switch;"
             "openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
             "  -out client.pem -days 2 -extfile client.ext;"
             "openssl req -new -key rclient.key -out rclient.csr -subj /CN=rogue-switch;"
             "openssl x509 -req -in rclient.csr -CA rogue.pem -CAkey rogue.key -CAcreateserial "
             "  -out rclient.pem -days 2 -extfile client.ext",
             dir);
    return system(cmd) == 0 ? 0 : -1;
}

static int setup(void **state)
{
    (void)state;
    if (cgd_init(&d) != 0 || make_certs(d.dir) != 0)
        return -1;
    if (cgd_write_conf(&d,
                       "[listener mtls]\naddress = 127.0.0.1:%u\ntls = yes\n"
                       "tls_cert = %s/server.pem\ntls_key = %s/server.key\n"
                       "tls_ca = %s/ca.pem\ntls_verify_client = require\n"
                       "[listener opt]\naddress = 127.0.0.1:%u\ntls = yes\n"
                       "tls_cert = %s/server.pem\ntls_key = %s/server.key\n"
                       "tls_ca = %s/ca.pem\ntls_verify_client = optional\n",
                       d.port[0], d.dir, d.dir, d.dir, d.port[1], d.dir, d.dir, d.dir) != 0)
        return -1;
    return cgd_start(&d, NULL);
}

static int teardown(void **state)
{
    (void)state;
    return cgd_finish(&d);
}

/* A TLS connection to port, verifying the server; client cert NAME or NULL. */
static SSL *tls_connect(unsigned port, const char *name, SSL_CTX **ctxp)
{
    char path[600], key[600];
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    SSL *ssl;
    int fd;

    assert_non_null(ctx);
    snprintf(path, sizeof(path), "%s/ca.pem", d.dir);
    assert_int_equal(SSL_CTX_load_verify_locations(ctx, path, NULL), 1);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (name != NULL) {
        snprintf(path, sizeof(path), "%s/%s.pem", d.dir, name);
        snprintf(key, sizeof(key), "%s/%s.key", d.dir, name);
        assert_int_equal(SSL_CTX_use_certificate_file(ctx, path, SSL_FILETYPE_PEM), 1);
        assert_int_equal(SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM), 1);
    }
    fd = cgd_connect(port);
    assert_true(fd >= 0);
    ssl = SSL_new(ctx);
    assert_non_null(ssl);
    assert_int_equal(SSL_set1_host(ssl, "localhost"), 1);
    SSL_set_fd(ssl, fd);
    *ctxp = ctx;
    return ssl;
}

static void tls_close(SSL *ssl, SSL_CTX *ctx)
{
    int fd = SSL_get_fd(ssl);
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    close(fd);
    ERR_clear_error();
}

/* Handshake, then one echo; true when answered 00. */
static bool tls_echo(SSL *ssl)
{
    uint8_t buf[300], frame[302];
    char rc[8];
    long n;
    size_t got = 0, want;

    if (SSL_connect(ssl) != 1)
        return false;
    n = cgd_build(buf, sizeof(buf), "0800", "7=1122101010", "11=000001", "70=301", CGD_END);
    if (n <= 0)
        return false;
    frame[0] = (uint8_t)(n >> 8);
    frame[1] = (uint8_t)n;
    memcpy(frame + 2, buf, (size_t)n);
    if (SSL_write(ssl, frame, (int)n + 2) != (int)n + 2)
        return false;
    for (want = 2; got < want;) {
        int r = SSL_read(ssl, frame + got, (int)(sizeof(frame) - got));
        if (r <= 0)
            return false;
        got += (size_t)r;
        if (got >= 2)
            want = 2 + ((size_t)frame[0] << 8 | frame[1]);
        if (want > sizeof(frame))
            return false;
    }
    return cgd_field(frame + 2, want - 2, 39, rc, sizeof(rc)) == 0 && strcmp(rc, "00") == 0;
}

static void test_mtls_with_cert(void **state)
{
    SSL_CTX *ctx;
    SSL *ssl;
    int closed = cgd_log_count(&d, "peer closed the connection");

    (void)state;
    ssl = tls_connect(d.port[0], "client", &ctx);
    assert_true(tls_echo(ssl));
    assert_true(cgd_log_wait(&d, "established, client certificate: /CN=test-switch", 1000));
    /* dropped without close_notify: an ordinary close, not a TLS error */
    tls_close(ssl, ctx);
    for (int i = 0; i < 100 && cgd_log_count(&d, "peer closed the connection") == closed; i++)
        usleep(10000);
    assert_int_equal(cgd_log_count(&d, "peer closed the connection"), closed + 1);
    assert_int_equal(cgd_log_count(&d, "closed: TLS error"), 0);
}

static void test_mtls_without_cert(void **state)
{
    SSL_CTX *ctx;
    SSL *ssl;
    int before = cgd_log_count(&d, "closed: TLS error");

    (void)state;
    ssl = tls_connect(d.port[0], NULL, &ctx);
    assert_false(tls_echo(ssl));
    tls_close(ssl, ctx);
    for (int i = 0; i < 100 && cgd_log_count(&d, "closed: TLS error") == before; i++)
        usleep(10000);
    assert_int_equal(cgd_log_count(&d, "closed: TLS error"), before + 1);
}

static void test_mtls_rogue_cert(void **state)
{
    SSL_CTX *ctx;
    SSL *ssl;
    int before = cgd_log_count(&d, "closed: TLS error");

    (void)state;
    ssl = tls_connect(d.port[0], "rclient", &ctx);
    assert_false(tls_echo(ssl));
    tls_close(ssl, ctx);
    for (int i = 0; i < 100 && cgd_log_count(&d, "closed: TLS error") == before; i++)
        usleep(10000);
    assert_int_equal(cgd_log_count(&d, "closed: TLS error"), before + 1);
    assert_int_equal(cgd_log_count(&d, "rogue-switch"), 0); /* never established */
}

static void test_optional_cert(void **state)
{
    SSL_CTX *ctx;
    SSL *ssl;

    (void)state;
    ssl = tls_connect(d.port[1], NULL, &ctx);
    assert_true(tls_echo(ssl));
    tls_close(ssl, ctx);
    assert_true(cgd_log_wait(&d, "established, client certificate: none", 1000));
    ssl = tls_connect(d.port[1], "client", &ctx);
    assert_true(tls_echo(ssl));
    tls_close(ssl, ctx);
}

static void test_plain_client_on_tls(void **state)
{
    int fd;
    uint8_t buf[256];
    long n;

    (void)state;
    fd = cgd_connect(d.port[1]);
    assert_true(fd >= 0);
    n = cgd_build(buf, sizeof(buf), "0800", "7=1122101010", "11=000001", "70=301", CGD_END);
    assert_int_equal(cgd_send_frame(fd, buf, (size_t)n), 0);
    assert_true(cgd_wait_closed(fd, 2000));
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mtls_with_cert),      cmocka_unit_test(test_mtls_without_cert),
        cmocka_unit_test(test_mtls_rogue_cert),     cmocka_unit_test(test_optional_cert),
        cmocka_unit_test(test_plain_client_on_tls),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
