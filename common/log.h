/*
 * log.h - logging in the OpenBSD shape.
 *
 * log_warn()/fatal() append strerror(errno); the *x variants do not.  Every
 * call preserves errno.  Output goes to stderr: with "<N>" syslog priority
 * prefixes when stderr is the journal (JOURNAL_STREAM matches it), with an
 * ISO-8601 UTC timestamp and the program name otherwise.
 *
 * Callers never pass a clear PAN, track data, PIN block, CVV or key: mask
 * first (crypto/ has the helpers).  The prefix argument of the _p variants
 * names the link or peer ("link 127.0.0.1:5000#3").
 */
#ifndef CARDGATE_COMMON_LOG_H
#define CARDGATE_COMMON_LOG_H

#include <stdarg.h>
#include <stdbool.h>

/* syslog priorities, as journald reads them */
enum log_level {
    LOG_LVL_EMERG = 0,
    LOG_LVL_ALERT = 1,
    LOG_LVL_CRIT = 2,
    LOG_LVL_ERR = 3,
    LOG_LVL_WARNING = 4,
    LOG_LVL_NOTICE = 5,
    LOG_LVL_INFO = 6,
    LOG_LVL_DEBUG = 7,
};

#define LOG_PRINTF(a, b) __attribute__((format(printf, a, b)))

/* Set the program name and the most verbose level that is printed. */
void log_init(const char *progname, enum log_level max_level);
void log_set_level(enum log_level max_level);
enum log_level log_get_level(void);
/* Parse "debug", "info", "notice", "warning", "error"; -1 when unknown. */
int log_level_parse(const char *name);
/* true when output carries journald "<N>" prefixes instead of timestamps */
bool log_is_journal(void);

void log_emit(enum log_level lvl, const char *prefix, bool with_errno, const char *fmt, ...)
    LOG_PRINTF(4, 5);
void log_vemit(enum log_level lvl, const char *prefix, bool with_errno, const char *fmt, va_list ap)
    LOG_PRINTF(4, 0);

void log_warn(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_warnx(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_notice(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_info(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_debug(const char *fmt, ...) LOG_PRINTF(1, 2);
_Noreturn void fatal(const char *fmt, ...) LOG_PRINTF(1, 2);
_Noreturn void fatalx(const char *fmt, ...) LOG_PRINTF(1, 2);

/* The same with a per-link (or per-peer) prefix. */
void log_warn_p(const char *prefix, const char *fmt, ...) LOG_PRINTF(2, 3);
void log_warnx_p(const char *prefix, const char *fmt, ...) LOG_PRINTF(2, 3);
void log_info_p(const char *prefix, const char *fmt, ...) LOG_PRINTF(2, 3);
void log_debug_p(const char *prefix, const char *fmt, ...) LOG_PRINTF(2, 3);

#endif
