#include "cw_period.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#define DAY_MS 86400000LL

static int64_t floordiv(int64_t a, int64_t b) {
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

/* Civil date from days since 1970-01-01 (Howard Hinnant's algorithm). */
static void civil(int64_t z, int *y, int *m, int *d) {
    z += 719468;
    int64_t era = floordiv(z, 146097);
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yoe + era * 400 + (*m <= 2));
}

static int64_t days_from_civil(int y, int m, int d) {
    y -= m <= 2;
    int64_t era = floordiv(y, 400);
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void cw_period_date(int64_t day, int *y, int *m, int *d) {
    civil(day, y, m, d);
}

int64_t cw_period_day(int64_t ts, int offset_min) {
    return floordiv(ts + (int64_t)offset_min * 60000, DAY_MS);
}

void cw_period_names(int64_t ts, int offset_min, char month[8], char quarter[8], char year[8]) {
    int y, m, d;
    civil(cw_period_day(ts, offset_min), &y, &m, &d);
    /* y is within 2000..9999 for any accepted ts; m within 1..12 */
    unsigned yy = (unsigned)y % 10000u, mm = (unsigned)m % 13u;
    snprintf(month, 8, "%04u-%02u", yy, mm);
    snprintf(quarter, 8, "%04u-Q%u", yy, (mm + 2u) / 3u % 10u);
    snprintf(year, 8, "%04u", yy);
}

int cw_period_quarter_index(int64_t ts, int offset_min) {
    int y, m, d;
    civil(cw_period_day(ts, offset_min), &y, &m, &d);
    return y * 4 + (m - 1) / 3;
}

int cw_period_name_quarter_index(const char *name) {
    int y, x;
    if (sscanf(name, "%4d-Q%1d", &y, &x) == 2 && strlen(name) == 7) return y * 4 + x - 1;
    if (sscanf(name, "%4d-%2d", &y, &x) == 2 && strlen(name) == 7) return y * 4 + (x - 1) / 3;
    if (sscanf(name, "%4d", &y) == 1 && strlen(name) == 4) return y * 4 + 3;
    return -1;
}

static int64_t local_midnight_ms(int64_t day, int offset_min) {
    return day * DAY_MS - (int64_t)offset_min * 60000;
}

int64_t cw_deadline_days(int64_t start_ts, int days, int offset_min) {
    return local_midnight_ms(cw_period_day(start_ts, offset_min) + days + 1, offset_min);
}

int64_t cw_deadline_months(int64_t start_ts, int months, int offset_min) {
    int y, m, d;
    civil(cw_period_day(start_ts, offset_min), &y, &m, &d);
    int total = m - 1 + months;
    y += total / 12;
    m = total % 12 + 1;
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int last = mdays[m - 1] + (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0));
    if (d > last) d = last;
    return local_midnight_ms(days_from_civil(y, m, d) + 1, offset_min);
}

int cw_period_parse_offset(const char *s, int *out_min) {
    if (strcmp(s, "Z") == 0) return (*out_min = 0, 0);
    int h, mi;
    char sign;
    if (sscanf(s, "%c%2d:%2d", &sign, &h, &mi) != 3 || (sign != '+' && sign != '-') || strlen(s) != 6 || h > 14 ||
        mi > 59)
        return -1;
    *out_min = (sign == '-' ? -1 : 1) * (h * 60 + mi);
    return 0;
}

/* CW_TEST_NOW_OFFSET_MS (tests only): the wall clock shifted by that
 * many ms, read once, so a test can put the daemon two seconds before a
 * midnight instead of waiting days for a deadline's boundary. */
int64_t cw_wall_ms(void) {
    static int64_t offset = -1;
    if (offset == -1) {
        const char *v = getenv("CW_TEST_NOW_OFFSET_MS");
        offset = v ? strtoll(v, NULL, 10) : 0;
        if (offset == -1) offset = 0;
    }
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000 + offset;
}

double cw_mono_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int64_t cw_period_day_start(int64_t day, int offset_min) {
    return day * DAY_MS - (int64_t)offset_min * 60000;
}

int64_t cw_period_local_midnight(int y, int m, int d, int offset_min) {
    return cw_period_day_start(days_from_civil(y, m, d), offset_min);
}

static int is_digit(char ch) {
    return ch >= '0' && ch <= '9';
}

/* The names this module writes ("2020-Q3", "2020-07", "2020"), read by
 * hand: the rules ask for a period's kind and its neighbours at every
 * judged row. Returns the kind with *y and *x (quarter or month; 0 for a
 * year) as sscanf would read them, or CW_PERIOD_NONE for any other text
 * (read the slow way, as before). */
static cw_period_kind plain_name(const char *name, int *y, int *x) {
    if (!is_digit(name[0]) || !is_digit(name[1]) || !is_digit(name[2]) || !is_digit(name[3])) return CW_PERIOD_NONE;
    *y = (name[0] - '0') * 1000 + (name[1] - '0') * 100 + (name[2] - '0') * 10 + (name[3] - '0');
    *x = 0;
    if (name[4] == '\0') return CW_PERIOD_YEAR;
    if (name[4] != '-') return CW_PERIOD_NONE;
    if (name[5] == 'Q' && is_digit(name[6]) && name[7] == '\0') {
        *x = name[6] - '0';
        return CW_PERIOD_QUARTER;
    }
    if (is_digit(name[5]) && is_digit(name[6]) && name[7] == '\0') {
        *x = (name[5] - '0') * 10 + (name[6] - '0');
        return CW_PERIOD_MONTH;
    }
    return CW_PERIOD_NONE;
}

/* n decimal digits of v, zero-padded, at out. */
static void put_digits(char *out, unsigned v, int n) {
    for (int i = n - 1; i >= 0; i--, v /= 10) out[i] = (char)('0' + v % 10);
}

cw_period_kind cw_period_kind_of(const char *name) {
    int y, x;
    cw_period_kind plain = plain_name(name, &y, &x);
    if (plain != CW_PERIOD_NONE) return plain;
    size_t n = strlen(name);
    if (strncmp(name, "rolling-", 8) == 0) return CW_PERIOD_ROLLING;
    if (n == 7 && sscanf(name, "%4d-Q%1d", &y, &x) == 2) return CW_PERIOD_QUARTER;
    if (n == 7 && sscanf(name, "%4d-%2d", &y, &x) == 2) return CW_PERIOD_MONTH;
    if (n == 4 && sscanf(name, "%4d", &y) == 1) return CW_PERIOD_YEAR;
    return CW_PERIOD_NONE;
}

int cw_period_shift(const char *name, int delta, char out[8]) {
    int y, x;
    switch (plain_name(name, &y, &x)) { /* as below, without sscanf and snprintf */
    case CW_PERIOD_QUARTER: {
        unsigned q = (unsigned)(y * 4 + x - 1 + delta);
        put_digits(out, (q / 4u) % 10000u, 4);
        out[4] = '-', out[5] = 'Q', out[6] = (char)('0' + q % 4u + 1u), out[7] = '\0';
        return 0;
    }
    case CW_PERIOD_MONTH: {
        unsigned m = (unsigned)(y * 12 + x - 1 + delta);
        put_digits(out, (m / 12u) % 10000u, 4);
        out[4] = '-';
        put_digits(out + 5, m % 12u + 1u, 2);
        out[7] = '\0';
        return 0;
    }
    case CW_PERIOD_YEAR:
        put_digits(out, (unsigned)(y + delta) % 10000u, 4);
        out[4] = '\0';
        return 0;
    default: break;
    }
    switch (cw_period_kind_of(name)) {
    case CW_PERIOD_QUARTER: {
        sscanf(name, "%4d-Q%1d", &y, &x);
        unsigned q = (unsigned)(y * 4 + x - 1 + delta);
        snprintf(out, 8, "%04u-Q%u", (q / 4u) % 10000u, q % 4u + 1u);
        return 0;
    }
    case CW_PERIOD_MONTH: {
        sscanf(name, "%4d-%2d", &y, &x);
        unsigned m = (unsigned)(y * 12 + x - 1 + delta);
        snprintf(out, 8, "%04u-%02u", (m / 12u) % 10000u, m % 12u + 1u);
        return 0;
    }
    case CW_PERIOD_YEAR:
        sscanf(name, "%4d", &y);
        snprintf(out, 8, "%04u", (unsigned)(y + delta) % 10000u);
        return 0;
    default: return -1;
    }
}

void cw_period_label_zh(const char *name, char *out, size_t len) {
    int y, x;
    switch (cw_period_kind_of(name)) {
    case CW_PERIOD_QUARTER: sscanf(name, "%4d-Q%1d", &y, &x); snprintf(out, len, "%d年第%d季度", y, x); break;
    case CW_PERIOD_MONTH: sscanf(name, "%4d-%2d", &y, &x); snprintf(out, len, "%d年%d月", y, x); break;
    case CW_PERIOD_YEAR: snprintf(out, len, "%s年", name); break;
    case CW_PERIOD_ROLLING: snprintf(out, len, "近%d日", atoi(name + 8)); break;
    default: snprintf(out, len, "%s", name);
    }
}

void cw_period_day_date(int64_t day, char out[11]) {
    int y, m, d;
    civil(day, &y, &m, &d);
    /* by hand: every deadline alert names its date */
    unsigned yy = (unsigned)y % 10000u, mm = (unsigned)m % 13u, dd = (unsigned)d % 32u;
    out[0] = (char)('0' + yy / 1000), out[1] = (char)('0' + yy / 100 % 10), out[2] = (char)('0' + yy / 10 % 10);
    out[3] = (char)('0' + yy % 10), out[4] = '-', out[5] = (char)('0' + mm / 10), out[6] = (char)('0' + mm % 10);
    out[7] = '-', out[8] = (char)('0' + dd / 10), out[9] = (char)('0' + dd % 10), out[10] = '\0';
}
