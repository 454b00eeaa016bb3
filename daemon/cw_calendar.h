/* cw_calendar: the legal calendar — which local days are rest days
 * (节假日: a Saturday or Sunday that is not a make-up working day, or a
 * statutory holiday), read from the holiday file (systemd/holidays-cn.conf,
 * format in docs/CALENDAR.md). Days are local day numbers (days since
 * 1970-01-01 in the configured local time, as cw_period_day gives them).
 *
 * A calendar is immutable once loaded, so it may be read from any thread.
 * Every query accepts a NULL calendar, meaning weekends only; years the
 * file does not cover are counted as weekends only too. */
#ifndef CW_CALENDAR_H
#define CW_CALENDAR_H

#include <stddef.h>
#include <stdint.h>

typedef struct cw_calendar cw_calendar;

/* Reads and checks a holiday file. Returns a calendar the caller frees
 * with cw_calendar_free, or NULL with a message naming the file and the
 * line ("holidays-cn.conf:12: ...") in err. Reads the file only. */
cw_calendar *cw_calendar_load(const char *path, char *err, size_t errlen);

/* The same from text in memory (len bytes, not necessarily
 * NUL-terminated); name stands for the file in messages. */
cw_calendar *cw_calendar_parse(const char *text, size_t len, const char *name, char *err, size_t errlen);

void cw_calendar_free(cw_calendar *cal);

/* 1 when day is a rest day, else 0. */
int cw_calendar_is_rest(const cw_calendar *cal, int64_t day);

/* The holiday's name ("国庆节、中秋节", "春节调休") when the file lists
 * day, else NULL. Points into cal: valid until cw_calendar_free. */
const char *cw_calendar_label(const cw_calendar *cal, int64_t day);

/* The first working day on or after day. */
int64_t cw_calendar_next_working(const cw_calendar *cal, int64_t day);

/* The n-th working day after day (day itself not counted; n >= 0, n = 0
 * gives day). */
int64_t cw_calendar_add_working(const cw_calendar *cal, int64_t day, int n);

/* The first and last years the file covers (its `year` lines); 0 for a
 * NULL calendar. Days after the end of cw_calendar_through's year, or
 * before cw_calendar_from's, count weekends only. */
int cw_calendar_from(const cw_calendar *cal);
int cw_calendar_through(const cw_calendar *cal);

#endif
