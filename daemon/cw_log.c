#include "cw_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>

int cw_log_level = CW_LOG_INFO;

static int to_journal;
static const char *prog = "casewatch";

static const char *const names[] = {"emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"};

void cw_log_init(const char *program) {
    if (program) prog = program;
    const char *js = getenv("JOURNAL_STREAM");
    struct stat st;
    unsigned long long dev, ino;
    to_journal = js && sscanf(js, "%llu:%llu", &dev, &ino) == 2 && fstat(2, &st) == 0 &&
                 (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

const char *cw_log_level_name(int level) {
    return level >= 0 && level < 8 ? names[level] : "?";
}

void cw_log_write(int level, const char *ctx, const char *fmt, ...) {
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (to_journal) {
        fprintf(stderr, "<%d>%s: %s\n", level, ctx, msg);
        return;
    }
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    localtime_r(&tv.tv_sec, &tm);
    /* ISO 8601 with the zone's offset (the process's local time, TZ),
     * so a line can be compared with alerts shown in China time */
    char ts[32];
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    long off = tm.tm_gmtoff / 60;
    fprintf(stderr, "%s.%03d%c%02ld:%02ld %s[%s] %s: %s\n", ts, (int)(tv.tv_usec / 1000), off < 0 ? '-' : '+',
            labs(off) / 60, labs(off) % 60, prog, cw_log_level_name(level), ctx, msg);
}
