/*
 * test_conf.c - the configuration parser and cardgated's config schema.
 *
 * Table-driven: every tests/data/conf/bad/NAME.conf starts with
 * "# expect: LINE: message" and must be refused with exactly
 * "tests/data/conf/bad/NAME.conf:LINE: message"; every good/NAME.conf starts
 * with "# expect-listeners: N" and must load.  One cmocka test per file, so
 * a failure names the file.  Getter edge cases are tested directly below.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "conf/conf.h"
#include "daemon/config.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define BAD_DIR   "tests/data/conf/bad"
#define GOOD_DIR  "tests/data/conf/good"
#define MAX_CASES 128

static char case_paths[MAX_CASES][512];
static char case_names[MAX_CASES][128];

static void first_line(const char *path, char *buf, size_t len)
{
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    assert_non_null(fgets(buf, (int)len, fp));
    fclose(fp);
    buf[strcspn(buf, "\n")] = '\0';
}

static void test_bad_file(void **state)
{
    const char *path = *state;
    char head[600], want[700];
    struct cg_config *cfg = malloc(sizeof(*cfg));
    struct conf_err err;

    assert_non_null(cfg);
    first_line(path, head, sizeof(head));
    assert_true(strncmp(head, "# expect: ", 10) == 0);
    snprintf(want, sizeof(want), "%s:%s", path, head + 10);
    memset(&err, 0, sizeof(err));
    assert_int_equal(cg_config_load(path, cfg, &err), -1);
    assert_string_equal(err.msg, want);
    free(cfg);
}

static void test_good_file(void **state)
{
    const char *path = *state;
    char head[600];
    struct cg_config *cfg = malloc(sizeof(*cfg));
    struct conf_err err;

    assert_non_null(cfg);
    first_line(path, head, sizeof(head));
    assert_true(strncmp(head, "# expect-listeners: ", 20) == 0);
    memset(&err, 0, sizeof(err));
    if (cg_config_load(path, cfg, &err) != 0)
        fail_msg("%s", err.msg);
    assert_int_equal(cfg->nlisteners, atoi(head + 20));
    free(cfg);
}

/* The full example's values arrive typed and converted. */
static void test_full_values(void **state)
{
    (void)state;
    struct cg_config *cfg = malloc(sizeof(*cfg));
    struct conf_err err;
    uint8_t a[16];

    assert_non_null(cfg);
    if (cg_config_load(GOOD_DIR "/full.conf", cfg, &err) != 0)
        fail_msg("%s", err.msg);
    assert_int_equal(cfg->log_level, 7);
    assert_string_equal(cfg->db_conninfo,
                        "host=db1,db2 dbname=cardgate target_session_attrs=read-write");
    assert_int_equal(cfg->db_pool_size, 8);
    assert_int_equal(cfg->db_max_batch, 128);
    assert_int_equal(cfg->db_connect_timeout_us, 2500000);
    assert_int_equal(cfg->db_reconnect_min_us, 50000);
    assert_true(cfg->standin_approve);
    assert_string_equal(cfg->standin_journal, "/var/lib/cardgate/standin.journal");
    assert_int_equal(cfg->standin_refresh_us, 30000000);
    assert_int_equal(cfg->standin_max_cards, 5000);
    assert_int_equal(cfg->standin_max_pending, 200);

    const struct cg_listener_conf *v = &cfg->listeners[0];
    assert_string_equal(v->name, "visa");
    assert_string_equal(v->address.host, "::1");
    assert_int_equal(v->address.port, 5001);
    assert_string_equal(v->dialect, "bcd87");
    assert_int_equal(v->framing, CG_FRAMING_LEN2BCD);
    assert_int_equal(v->header_len, 5);
    assert_true(v->header_swap_tpdu);
    assert_int_equal(v->budget_us, 1500000);
    /* per message kind: advices and reversals set, the others fall back to budget */
    assert_int_equal(cg_listener_budget(v, "0100"), 1500000);
    assert_int_equal(cg_listener_budget(v, "0200"), 1500000);
    assert_int_equal(cg_listener_budget(v, "0120"), 5000000);
    assert_int_equal(cg_listener_budget(v, "0221"), 5000000);
    assert_int_equal(cg_listener_budget(v, "0400"), 4000000);
    assert_int_equal(cg_listener_budget(v, "0421"), 4000000);
    assert_int_equal(cg_listener_budget_max(v), 5000000);
    assert_int_equal(v->max_frame, 4096);
    assert_int_equal(v->idle_timeout_us, 600000000LL);
    assert_int_equal(v->write_buffer_max, 2 << 20);
    assert_true(v->require_signon);
    assert_true(v->tls);
    assert_int_equal(v->tls_verify, CG_TLS_VERIFY_REQUIRE);
    assert_int_equal(v->nallow, 3);
    inet_pton(AF_INET, "10.20.30.40", a);
    assert_true(cg_allow_match(v, AF_INET, a));
    inet_pton(AF_INET, "11.0.0.1", a);
    assert_false(cg_allow_match(v, AF_INET, a));
    inet_pton(AF_INET6, "::1", a);
    assert_true(cg_allow_match(v, AF_INET6, a));
    inet_pton(AF_INET6, "::2", a);
    assert_false(cg_allow_match(v, AF_INET6, a));

    const struct cg_listener_conf *l = &cfg->listeners[1];
    assert_string_equal(l->name, "local");
    assert_string_equal(l->dialect, "ascii87");
    assert_int_equal(l->framing, CG_FRAMING_LEN2);
    assert_int_equal(l->budget_us, 250000);
    assert_int_equal(cg_listener_budget(l, "0420"), 250000);
    assert_int_equal(cg_listener_budget_max(l), 250000);
    assert_int_equal(l->nallow, 0);
    inet_pton(AF_INET, "192.0.2.1", a);
    assert_true(cg_allow_match(l, AF_INET, a)); /* no allow-list: anyone */
    assert_true(cfg->metrics_enabled);
    assert_int_equal(cfg->metrics_address.port, 9187);
    assert_int_equal(cfg->audit_segment_size, 64 << 20);
    assert_int_equal(cfg->audit_checkpoint_interval_us, 30000000);
    assert_int_equal(cfg->audit_fsync, 2); /* batch */
    assert_string_equal(cfg->master_key_credential, "cardgate-master");
    assert_string_equal(cfg->keys_cvk, "issuer-cvk");
    assert_int_equal(cfg->cvv_position, 3);
    assert_string_equal(cfg->keys_pvk, "issuer-pvk");
    assert_int_equal(cfg->pvki, 2);
    assert_string_equal(cfg->pin_dectab, "9876543210123456");
    assert_string_equal(cfg->listeners[0].zpk, "visa-zpk");
    assert_string_equal(cfg->listeners[0].zmk, "visa-zmk");
    assert_string_equal(cfg->listeners[1].zpk, "");
    free(cfg);
}

static void test_durations(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        int ok;
        int64_t us;
    } cases[] = {
        {"150ms", 1, 150000}, {"2s", 1, 2000000},   {"1.5s", 1, 1500000},
        {"100us", 1, 100},    {"5m", 1, 300000000}, {"1h", 1, 3600000000LL},
        {"0ms", 1, 0},        {"0", 1, 0},          {"0.25ms", 1, 250},
        {"15", 0, 0},         {"ms", 0, 0},         {"1.s", 0, 0},
        {"-5s", 0, 0},        {" 5s", 0, 0},        {"5 s", 0, 0},
        {"5sec", 0, 0},       {"", 0, 0},           {"99999999999999999999s", 0, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t v = -1;
        int rc = conf_parse_duration_us(cases[i].in, &v);
        if (cases[i].ok) {
            assert_int_equal(rc, 0);
            assert_int_equal(v, cases[i].us);
        } else if (rc != -1) {
            fail_msg("'%s' accepted as a duration", cases[i].in);
        }
    }
}

static void test_sizes_bools_addrs(void **state)
{
    (void)state;
    uint64_t sz;
    bool b;
    struct conf_addr a;

    assert_int_equal(conf_parse_size("4k", &sz), 0);
    assert_int_equal(sz, 4096);
    assert_int_equal(conf_parse_size("2M", &sz), 0);
    assert_int_equal(sz, 2 << 20);
    assert_int_equal(conf_parse_size("512", &sz), 0);
    assert_int_equal(sz, 512);
    assert_int_equal(conf_parse_size("1T", &sz), -1);
    assert_int_equal(conf_parse_size("-1", &sz), -1);
    assert_int_equal(conf_parse_size("99999999999999999999G", &sz), -1);

    assert_int_equal(conf_parse_bool("yes", &b), 0);
    assert_true(b);
    assert_int_equal(conf_parse_bool("off", &b), 0);
    assert_false(b);
    assert_int_equal(conf_parse_bool("Yes", &b), -1);

    assert_int_equal(conf_parse_addr("127.0.0.1:5000", &a), 0);
    assert_string_equal(a.host, "127.0.0.1");
    assert_int_equal(a.port, 5000);
    assert_int_equal(conf_parse_addr("[::1]:0", &a), 0);
    assert_string_equal(a.host, "::1");
    assert_int_equal(conf_parse_addr("unix:/run/cardgate.sock", &a), 0);
    assert_string_equal(a.path, "/run/cardgate.sock");
    assert_int_equal(conf_parse_addr("::1:5000", &a), -1);
    assert_int_equal(conf_parse_addr("host:65536", &a), -1);
    assert_int_equal(conf_parse_addr("host:", &a), -1);
    assert_int_equal(conf_parse_addr(":5000", &a), -1);
    assert_int_equal(conf_parse_addr("unix:relative", &a), -1);
}

/* Parser corners: quoting, comments, globals, bounds. */
static void test_parser_corners(void **state)
{
    (void)state;
    static const char text[] = "top = 1\n"
                               "[s \"quoted arg\"]\n"
                               "a = \"x # not a comment\"  # a comment\n"
                               "b = plain;semicolon-inside ; comment\n"
                               "c = \"esc \\\"q\\\" \\\\ \\t\"\n"
                               "d =\n";
    struct conf_file *f;
    struct conf_err err;
    const char *v = NULL;

    assert_int_equal(conf_parse("mem", text, sizeof(text) - 1, &f, &err), 0);
    struct conf_section *g = conf_global(f);
    assert_int_equal(conf_get_str(f, g, "top", &v, &err), 0);
    assert_string_equal(v, "1");
    struct conf_section *s = conf_find(f, "s", "quoted arg");
    assert_non_null(s);
    assert_int_equal(conf_get_str(f, s, "a", &v, &err), 0);
    assert_string_equal(v, "x # not a comment");
    assert_int_equal(conf_get_str(f, s, "b", &v, &err), 0);
    assert_string_equal(v, "plain;semicolon-inside");
    assert_int_equal(conf_get_str(f, s, "c", &v, &err), 0);
    assert_string_equal(v, "esc \"q\" \\ \t");
    assert_int_equal(conf_check_unused(f, &err), -1);
    assert_string_equal(err.msg, "mem:6: unknown key 'd' in [s quoted arg]");
    assert_int_equal(conf_get_str(f, s, "d", &v, &err), 0);
    assert_string_equal(v, "");
    assert_int_equal(conf_check_unused(f, &err), 0);
    conf_free(f);

    /* a line longer than the limit is refused, not truncated */
    size_t n = CONF_MAX_LINE + 10;
    char *big = malloc(n + 1);
    assert_non_null(big);
    memset(big, 'a', n);
    memcpy(big, "k = ", 4);
    big[n] = '\0';
    assert_int_equal(conf_parse("big", big, n, &f, &err), -1);
    assert_string_equal(err.msg, "big:1: line longer than 4096 characters");
    free(big);

    /* NUL bytes inside a line are refused */
    static const char nul[] = "a = 1\nb = x\0y\n";
    assert_int_equal(conf_parse("nul", nul, sizeof(nul) - 1, &f, &err), -1);
    assert_string_equal(err.msg, "nul:2: NUL byte in line");

    /* a missing file names the file */
    struct cg_config *cfg = malloc(sizeof(*cfg));
    assert_non_null(cfg);
    assert_int_equal(cg_config_load("tests/data/conf/does-not-exist.conf", cfg, &err), -1);
    assert_string_equal(
        err.msg, "tests/data/conf/does-not-exist.conf: cannot open: No such file or directory");
    free(cfg);
}

static int collect(const char *dir, size_t *n)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    size_t start = *n;
    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL && *n < MAX_CASES) {
        size_t len = strlen(e->d_name);
        if (len < 6 || strcmp(e->d_name + len - 5, ".conf") != 0)
            continue;
        snprintf(case_paths[*n], sizeof(case_paths[*n]), "%s/%s", dir, e->d_name);
        (*n)++;
    }
    closedir(d);
    /* stable order: sort this directory's entries */
    for (size_t i = start; i < *n; i++)
        for (size_t j = i + 1; j < *n; j++)
            if (strcmp(case_paths[i], case_paths[j]) > 0) {
                char t[512];
                memcpy(t, case_paths[i], sizeof(t));
                memcpy(case_paths[i], case_paths[j], sizeof(t));
                memcpy(case_paths[j], t, sizeof(t));
            }
    return 0;
}

int main(void)
{
    static struct CMUnitTest tests[MAX_CASES + 8];
    size_t n = 0, nbad, t = 0;

    if (collect(BAD_DIR, &n) != 0 || (nbad = n, collect(GOOD_DIR, &n)) != 0) {
        fprintf(stderr, "test_conf: run from the repository root (tests/data/conf missing)\n");
        return 1;
    }
    for (size_t i = 0; i < n; i++) {
        const char *base = strrchr(case_paths[i], '/') + 1;
        snprintf(case_names[i], sizeof(case_names[i]), "%s %s", i < nbad ? "bad" : "good", base);
        tests[t].name = case_names[i];
        tests[t].test_func = i < nbad ? test_bad_file : test_good_file;
        tests[t].initial_state = case_paths[i];
        t++;
    }
    tests[t++] = (struct CMUnitTest)cmocka_unit_test(test_full_values);
    tests[t++] = (struct CMUnitTest)cmocka_unit_test(test_durations);
    tests[t++] = (struct CMUnitTest)cmocka_unit_test(test_sizes_bools_addrs);
    tests[t++] = (struct CMUnitTest)cmocka_unit_test(test_parser_corners);
    return _cmocka_run_group_tests("conf", tests, t, NULL, NULL);
}
