#include "cw_deadline.h"

#include "cw_period.h"

#define DAY_MS 86400000LL

static int month_days(int y, int m) {
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return mdays[m - 1] + (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0));
}

int64_t cw_deadline_last_day(const cw_calendar *cal, int64_t start, cw_deadline_unit unit, int n) {
    if (n < 0) n = 0;
    switch (unit) {
    case CW_DEADLINE_MONTHS: {
        int y, m, d;
        cw_period_date(start, &y, &m, &d);
        int month_end = d == month_days(y, m);
        int total = m - 1 + n;
        y += total / 12;
        m = total % 12 + 1;
        int last = month_days(y, m);
        if (month_end || d > last) d = last;
        return cw_period_local_midnight(y, m, d, 0) / DAY_MS;
    }
    case CW_DEADLINE_WORKING_DAYS: return cw_calendar_add_working(cal, start, n);
    case CW_DEADLINE_DAYS:
    default: return start + n;
    }
}

int64_t cw_deadline_due_from_last(const cw_calendar *cal, int64_t last_day, int extend) {
    if (extend) last_day = cw_calendar_next_working(cal, last_day);
    return last_day + 1;
}

int64_t cw_deadline_due(const cw_calendar *cal, int64_t start_ts, int offset_min, cw_deadline_unit unit, int n,
                        int extend) {
    int64_t start = cw_period_day(start_ts, offset_min);
    return cw_deadline_due_from_last(cal, cw_deadline_last_day(cal, start, unit, n), extend);
}

int64_t cw_deadline_extend(const cw_calendar *cal, int64_t due, cw_deadline_unit unit, int n, int extend) {
    /* the period's last day is due - 1; n more units count from the day after it */
    return cw_deadline_due_from_last(cal, cw_deadline_last_day(cal, due - 1, unit, n), extend);
}
