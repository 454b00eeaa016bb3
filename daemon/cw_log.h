/* cw_log: one level-filtered logging macro for the daemon and the CLI.
 * Levels are syslog priorities. When stderr is connected to the journal
 * (systemd sets JOURNAL_STREAM), lines carry "<N>" priority prefixes and
 * no timestamp (the journal stamps them); otherwise an ISO 8601 local
 * timestamp with its offset ("2026-12-02T22:05:01.123+08:00") and the
 * level's name. */
#ifndef CW_LOG_H
#define CW_LOG_H

enum { CW_LOG_ERR = 3, CW_LOG_WARNING = 4, CW_LOG_NOTICE = 5, CW_LOG_INFO = 6, CW_LOG_DEBUG = 7 };

extern int cw_log_level;

/* Reads JOURNAL_STREAM once; call before the first log line. */
void cw_log_init(const char *program);
const char *cw_log_level_name(int level);

void cw_log_write(int level, const char *ctx, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Arguments are not evaluated when the level is filtered out. */
#define CW_LOG(level, ctx, ...)                                          \
    do {                                                                 \
        if ((level) <= cw_log_level) cw_log_write((level), (ctx), __VA_ARGS__); \
    } while (0)

#endif
