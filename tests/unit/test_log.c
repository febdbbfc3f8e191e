/*
 * test_log.c - the logging API: journald priority prefixes when stderr is
 * the journal, timestamps otherwise, errno text and preservation, per-link
 * prefixes, level filtering, and bounded lines.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char path[64];
static int saved_stderr = -1;

/* Point stderr at a fresh temporary file. */
static int capture_start(void **state)
{
    (void)state;
    snprintf(path, sizeof(path), "/tmp/cardgate-log.XXXXXX");
    int fd = mkstemp(path);
    if (fd < 0)
        return -1;
    saved_stderr = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    close(fd);
    unsetenv("JOURNAL_STREAM");
    return 0;
}

/* Restore stderr and return what was written to it. */
static char *capture_end(void)
{
    static char buf[8192];
    dup2(saved_stderr, STDERR_FILENO);
    close(saved_stderr);
    FILE *fp = fopen(path, "r");
    size_t n = fp ? fread(buf, 1, sizeof(buf) - 1, fp) : 0;
    if (fp)
        fclose(fp);
    buf[n] = '\0';
    unlink(path);
    return buf;
}

static void test_journal_prefixes(void **state)
{
    struct stat st;
    char js[64];
    assert_int_equal(capture_start(state), 0);
    assert_int_equal(fstat(STDERR_FILENO, &st), 0);
    snprintf(js, sizeof(js), "%llu:%llu", (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino);
    setenv("JOURNAL_STREAM", js, 1);
    log_init("test", LOG_LVL_DEBUG);
    log_warnx("w %d", 1);
    log_info_p("link 127.0.0.1:9#3", "signed on");
    log_debug("d");
    bool journal = log_is_journal();
    char *out = capture_end();
    unsetenv("JOURNAL_STREAM");
    assert_true(journal);
    assert_string_equal(out, "<4>w 1\n<6>link 127.0.0.1:9#3: signed on\n<7>d\n");
}

static void test_plain_timestamps_and_levels(void **state)
{
    assert_int_equal(capture_start(state), 0);
    log_init("/usr/sbin/cardgated", LOG_LVL_INFO);
    log_debug("hidden");
    log_notice("shown");
    bool journal = log_is_journal();
    char *out = capture_end();
    assert_false(journal);
    /* 2026-11-22T03:58:06.123Z cardgated[123]: notice: shown */
    assert_int_equal(strlen(out) > 30, 1);
    assert_true(out[4] == '-' && out[10] == 'T' && out[23] == 'Z');
    assert_non_null(strstr(out, " cardgated["));
    assert_non_null(strstr(out, "]: notice: shown\n"));
    assert_null(strstr(out, "hidden"));
}

static void test_errno_text_and_preserved(void **state)
{
    assert_int_equal(capture_start(state), 0);
    log_init("t", LOG_LVL_INFO);
    errno = ENOENT;
    log_warn("open %s", "x.conf");
    int after = errno;
    errno = EACCES;
    log_warnx("no errno here");
    int after2 = errno;
    char *out = capture_end();
    assert_int_equal(after, ENOENT);
    assert_int_equal(after2, EACCES);
    assert_non_null(strstr(out, "warning: open x.conf: No such file or directory\n"));
    assert_non_null(strstr(out, "warning: no errno here\n"));
    assert_null(strstr(out, "no errno here: "));
}

static void test_long_line_bounded(void **state)
{
    static char big[5000];
    assert_int_equal(capture_start(state), 0);
    log_init("t", LOG_LVL_INFO);
    memset(big, 'x', sizeof(big) - 1);
    log_warnx("%s", big);
    log_warnx("next");
    char *out = capture_end();
    char *nl = strchr(out, '\n');
    assert_non_null(nl);
    assert_true(nl - out < 2048);                               /* truncated, */
    assert_string_equal(nl + 1 + strlen(nl + 1) - 5, "next\n"); /* still one line each */
}

static void test_level_names(void **state)
{
    (void)state;
    assert_int_equal(log_level_parse("debug"), LOG_LVL_DEBUG);
    assert_int_equal(log_level_parse("warning"), LOG_LVL_WARNING);
    assert_int_equal(log_level_parse("warn"), LOG_LVL_WARNING);
    assert_int_equal(log_level_parse("error"), LOG_LVL_ERR);
    assert_int_equal(log_level_parse("loud"), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_journal_prefixes),
        cmocka_unit_test(test_plain_timestamps_and_levels),
        cmocka_unit_test(test_errno_text_and_preserved),
        cmocka_unit_test(test_long_line_bounded),
        cmocka_unit_test(test_level_names),
    };
    return cmocka_run_group_tests_name("log", tests, NULL, NULL);
}
