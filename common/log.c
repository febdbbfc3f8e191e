/*
 * log.c - see log.h.  One write(2) per line so lines from several
 * processes never interleave mid-line.
 */
#include "common/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *log_progname = "cardgate";
static enum log_level log_max = LOG_LVL_INFO;
static int log_journal = -1; /* -1: not yet probed */

static const char *const level_names[] = {
    "emerg", "alert", "crit", "error", "warning", "notice", "info", "debug",
};

/* stderr is the journal when JOURNAL_STREAM names its device:inode */
static bool probe_journal(void)
{
    const char *js = getenv("JOURNAL_STREAM");
    struct stat st;
    unsigned long long dev, ino;

    if (js == NULL || sscanf(js, "%llu:%llu", &dev, &ino) != 2)
        return false;
    if (fstat(STDERR_FILENO, &st) != 0)
        return false;
    return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void log_init(const char *progname, enum log_level max_level)
{
    if (progname != NULL) {
        const char *slash = strrchr(progname, '/');
        log_progname = slash ? slash + 1 : progname;
    }
    log_max = max_level;
    log_journal = probe_journal();
}

void log_set_level(enum log_level max_level)
{
    log_max = max_level;
}

enum log_level log_get_level(void)
{
    return log_max;
}

bool log_is_journal(void)
{
    if (log_journal < 0)
        log_journal = probe_journal();
    return log_journal == 1;
}

int log_level_parse(const char *name)
{
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
        if (strcmp(name, level_names[i]) == 0)
            return (int)i;
    if (strcmp(name, "err") == 0)
        return LOG_LVL_ERR;
    if (strcmp(name, "warn") == 0)
        return LOG_LVL_WARNING;
    return -1;
}

/* Append to a bounded line; truncates, never overflows. */
static void line_vappend(char *line, size_t cap, size_t *n, const char *fmt, va_list ap)
{
    if (*n >= cap - 1)
        return;
    int r = vsnprintf(line + *n, cap - *n, fmt, ap);
    if (r < 0)
        return;
    *n = (size_t)r < cap - *n ? *n + (size_t)r : cap - 1;
}

static void line_append(char *line, size_t cap, size_t *n, const char *fmt, ...) LOG_PRINTF(4, 5);
static void line_append(char *line, size_t cap, size_t *n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    line_vappend(line, cap, n, fmt, ap);
    va_end(ap);
}

void log_vemit(enum log_level lvl, const char *prefix, bool with_errno, const char *fmt, va_list ap)
{
    int saved = errno;
    char line[2048];
    size_t n = 0;

    if (lvl > log_max) {
        errno = saved;
        return;
    }
    /* one byte is kept back for the newline */
    if (log_is_journal()) {
        line_append(line, sizeof(line) - 1, &n, "<%d>", (int)lvl);
    } else {
        struct timespec ts;
        struct tm tm;
        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        line_append(line, sizeof(line) - 1, &n,
                    "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s[%d]: %s: ", tm.tm_year + 1900,
                    tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                    ts.tv_nsec / 1000000L, log_progname, (int)getpid(), level_names[lvl]);
    }
    if (prefix != NULL)
        line_append(line, sizeof(line) - 1, &n, "%s: ", prefix);
    line_vappend(line, sizeof(line) - 1, &n, fmt, ap);
    if (with_errno)
        line_append(line, sizeof(line) - 1, &n, ": %s", strerror(saved));
    line[n++] = '\n';
    /* one write: a torn line is worse than a short one */
    ssize_t w = write(STDERR_FILENO, line, n);
    (void)w;
    errno = saved;
}

void log_emit(enum log_level lvl, const char *prefix, bool with_errno, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vemit(lvl, prefix, with_errno, fmt, ap);
    va_end(ap);
}

#define LOG_FN(name, lvl, prefix, with_errno)                                                      \
    void name(const char *fmt, ...)                                                                \
    {                                                                                              \
        va_list ap;                                                                                \
        va_start(ap, fmt);                                                                         \
        log_vemit(lvl, prefix, with_errno, fmt, ap);                                               \
        va_end(ap);                                                                                \
    }

LOG_FN(log_warn, LOG_LVL_WARNING, NULL, true)
LOG_FN(log_warnx, LOG_LVL_WARNING, NULL, false)
LOG_FN(log_notice, LOG_LVL_NOTICE, NULL, false)
LOG_FN(log_info, LOG_LVL_INFO, NULL, false)
LOG_FN(log_debug, LOG_LVL_DEBUG, NULL, false)

#define LOG_FN_P(name, lvl, with_errno)                                                            \
    void name(const char *prefix, const char *fmt, ...)                                            \
    {                                                                                              \
        va_list ap;                                                                                \
        va_start(ap, fmt);                                                                         \
        log_vemit(lvl, prefix, with_errno, fmt, ap);                                               \
        va_end(ap);                                                                                \
    }

LOG_FN_P(log_warn_p, LOG_LVL_WARNING, true)
LOG_FN_P(log_warnx_p, LOG_LVL_WARNING, false)
LOG_FN_P(log_info_p, LOG_LVL_INFO, false)
LOG_FN_P(log_debug_p, LOG_LVL_DEBUG, false)

void fatal(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vemit(LOG_LVL_CRIT, NULL, true, fmt, ap);
    va_end(ap);
    exit(1);
}

void fatalx(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vemit(LOG_LVL_CRIT, NULL, false, fmt, ap);
    va_end(ap);
    exit(1);
}
