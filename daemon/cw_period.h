/* cw_period: calendar periods and statutory day counting in the
 * configured local time (China time, UTC+08:00, by default), and the
 * two clocks the rest of the code reads. */
#ifndef CW_PERIOD_H
#define CW_PERIOD_H

#include <stddef.h>
#include <stdint.h>

/* Names of the month, quarter and year ts falls in: "2020-07",
 * "2020-Q3", "2020". offset_min is the local offset from UTC. */
void cw_period_names(int64_t ts, int offset_min, char month[8], char quarter[8], char year[8]);
/* Local calendar day number (days since 1970-01-01 local). */
int64_t cw_period_day(int64_t ts, int offset_min);
/* The civil date (month 1-12, day 1-31) of a local day number. */
void cw_period_date(int64_t day, int *y, int *m, int *d);
/* Quarter index (year * 4 + q - 1) of ts. */
int cw_period_quarter_index(int64_t ts, int offset_min);
/* Quarter index of a period name ("2020-07", "2020-Q3", "2020" -> its
 * last quarter), or -1. */
int cw_period_name_quarter_index(const char *name);

/* What a period name is: "2020-07" month, "2020-Q3" quarter, "2020"
 * year, "rolling-30d" rolling window; else CW_PERIOD_NONE. */
typedef enum cw_period_kind {
    CW_PERIOD_NONE = 0,
    CW_PERIOD_MONTH,
    CW_PERIOD_QUARTER,
    CW_PERIOD_YEAR,
    CW_PERIOD_ROLLING
} cw_period_kind;
cw_period_kind cw_period_kind_of(const char *name);
/* The period delta steps before (<0) or after a month, quarter or year
 * name, into out[8]. Returns 0, or -1 for other names. */
int cw_period_shift(const char *name, int delta, char out[8]);
/* The period as people say it: "2020年第3季度", "2020年7月", "2020年",
 * "近30日". */
void cw_period_label_zh(const char *name, char *out, size_t len);
/* "2020-08-04" for a local day number. */
void cw_period_day_date(int64_t day, char out[11]);

/* The instant (ms) a local day number begins: its local midnight. */
int64_t cw_period_day_start(int64_t day, int offset_min);
/* The instant local midnight begins the date y-m-d. */
int64_t cw_period_local_midnight(int y, int m, int d, int offset_min);

/* Statutory deadlines: the start day does not count; N days end at 24:00
 * local on the Nth day after; months end at 24:00 on the same date N
 * months later (the month's last day when it has no such date). Returns
 * the ms instant the period has run out. */
int64_t cw_deadline_days(int64_t start_ts, int days, int offset_min);
int64_t cw_deadline_months(int64_t start_ts, int months, int offset_min);

/* The wall clock in ms since the epoch, and a monotonic clock in
 * seconds for measuring durations. */
int64_t cw_wall_ms(void);
double cw_mono_s(void);

/* "+08:00" / "-05:30" / "Z" -> minutes; returns 0 or -1. */
int cw_period_parse_offset(const char *s, int *out_min);

#endif
