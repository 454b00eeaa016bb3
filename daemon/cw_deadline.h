/* cw_deadline: the day a statutory period runs out, counted as the law
 * counts it (INDICATORS.md §4, docs/CALENDAR.md): the day a period starts
 * does not count; N days end on the Nth day after; N months on the same
 * date N months later (see cw_deadline_last_day for month ends); N working
 * days on the Nth working day after; and CPL art. 105: a last day that is
 * a rest day moves to the first working day after it, unless the suspect
 * is in custody (or the rule says holidays = ignore).
 *
 * Pure functions, no I/O. Days are local day numbers (cw_period_day). A
 * result is "due": the local day at whose start the period has run out,
 * i.e. its last day + 1, the convention of the case table's clocks. */
#ifndef CW_DEADLINE_H
#define CW_DEADLINE_H

#include <stdint.h>

#include "cw_calendar.h"

typedef enum cw_deadline_unit {
    CW_DEADLINE_DAYS = 0,     /* 日 */
    CW_DEADLINE_MONTHS,       /* 月 */
    CW_DEADLINE_WORKING_DAYS  /* 工作日 */
} cw_deadline_unit;

/* The last day of a period of n units (n >= 0) starting on local day
 * start (not counted), before art. 105. Months: the same date n months
 * later; when that month has no such date, or when start is the last day
 * of its month, the last day of the month n months later (SPC
 * interpretation of the CPL, 法释〔2021〕1号 art. 202): 01-31 + 1 month ->
 * 02-28/29, 02-28 (2021) + 1 month -> 03-31, 02-29 + 12 months -> 02-28.
 * cal is used for working days only (NULL: weekends only). */
int64_t cw_deadline_last_day(const cw_calendar *cal, int64_t start, cw_deadline_unit unit, int n);

/* Art. 105: the due day of a period whose last day is last_day. extend
 * nonzero: a last day on a rest day moves to the first working day after
 * it (that working day still counts); zero (custody, holidays = ignore):
 * it stays. */
int64_t cw_deadline_due_from_last(const cw_calendar *cal, int64_t last_day, int extend);

/* The due day of a period of n units starting at start_ts (ms since the
 * epoch) in local time offset_min: the whole count, from the event's
 * timestamp to the value clock_start takes. */
int64_t cw_deadline_due(const cw_calendar *cal, int64_t start_ts, int offset_min, cw_deadline_unit unit, int n,
                        int extend);

/* A running period extended by n more units (延长): counted on from the
 * day it would have ended (due - 1, art. 105 already applied), and art.
 * 105 applied again to the new last day. */
int64_t cw_deadline_extend(const cw_calendar *cal, int64_t due, cw_deadline_unit unit, int n, int extend);

#endif
