/* Unit tests of daemon/cw_calendar (the legal calendar and its file) and
 * daemon/cw_deadline (statutory periods, CPL art. 105). Each test is named
 * after the point of law it checks; the worked examples are the ones of
 * docs/CALENDAR.md. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../daemon/cw_calendar.h"
#include "../../daemon/cw_deadline.h"
#include "../../daemon/cw_period.h"

#define CN 480 /* China time, minutes east of UTC */
#define DAY_MS 86400000LL

/* The local day number of a date. */
static int64_t D(int y, int m, int d) {
    return cw_period_local_midnight(y, m, d, 0) / DAY_MS;
}

/* The instant of hh:mm China time on a date. */
static int64_t at_cn(int y, int m, int d, int hh, int mm) {
    return cw_period_local_midnight(y, m, d, CN) + ((int64_t)hh * 60 + mm) * 60000;
}

static cw_calendar *shipped;

/* The shipped holiday file, found from the source tree (make test runs
 * from it) or from the test binary's place in build/<mode>/tests/unit. */
static int load_shipped(void **state) {
    (void)state;
    char err[512];
    shipped = cw_calendar_load("systemd/holidays-cn.conf", err, sizeof(err));
    if (!shipped) {
        char exe[4096], path[4200];
        ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        if (n > 0) {
            exe[n] = '\0';
            char *slash = strrchr(exe, '/');
            if (slash) *slash = '\0';
            snprintf(path, sizeof(path), "%s/../../../../systemd/holidays-cn.conf", exe);
            shipped = cw_calendar_load(path, err, sizeof(err));
        }
    }
    if (!shipped) fprintf(stderr, "holidays-cn.conf: %s\n", err);
    return shipped ? 0 : -1;
}

static int free_shipped(void **state) {
    (void)state;
    cw_calendar_free(shipped);
    shipped = NULL;
    return 0;
}

static cw_calendar *parse(const char *text, char *err, size_t errlen) {
    return cw_calendar_parse(text, strlen(text), "test.conf", err, errlen);
}

/* ---- Counting days -------------------------------------------------------- */

static void a_period_in_days_does_not_count_its_start_day(void **state) {
    (void)state;
    /* accepted Monday 2020-08-03 10:00: 7 days are 08-04 .. 08-10 (a
     * Monday); the clock runs out at the start of 08-11 */
    assert_true(cw_deadline_due(shipped, at_cn(2020, 8, 3, 10, 0), CN, CW_DEADLINE_DAYS, 7, 1) == D(2020, 8, 11));
    assert_true(cw_deadline_last_day(shipped, D(2020, 8, 3), CW_DEADLINE_DAYS, 7) == D(2020, 8, 10));
}

static void a_start_at_00_00_china_time_still_does_not_count_its_day(void **state) {
    (void)state;
    /* 2020-08-03 00:00 China is 2020-08-02T16:00Z: the day is 08-03 China */
    int64_t ts = at_cn(2020, 8, 3, 0, 0);
    assert_true(ts == 1596384000000LL);
    assert_true(cw_deadline_due(shipped, ts, CN, CW_DEADLINE_DAYS, 7, 1) == D(2020, 8, 11));
}

static void a_start_at_23_59_china_time_counts_from_the_next_day(void **state) {
    (void)state;
    /* 23:59 is still 08-03: the same due day as 00:00 */
    assert_true(cw_deadline_due(shipped, at_cn(2020, 8, 3, 23, 59), CN, CW_DEADLINE_DAYS, 7, 1) == D(2020, 8, 11));
    /* a minute later it is 08-04 China (16:00Z on 08-03): one day later */
    int64_t next = at_cn(2020, 8, 4, 0, 0);
    assert_true(next == 1596470400000LL);
    assert_true(cw_deadline_due(shipped, next, CN, CW_DEADLINE_DAYS, 7, 1) == D(2020, 8, 12));
    /* the day is China's, not UTC's: 2020-08-03T16:30Z is 08-04 00:30 China */
    assert_true(cw_deadline_due(shipped, 1596472200000LL, CN, CW_DEADLINE_DAYS, 7, 1) == D(2020, 8, 12));
    assert_true(cw_deadline_due(shipped, 1596472200000LL, 0, CW_DEADLINE_DAYS, 7, 1) == D(2020, 8, 11));
}

static void the_due_day_is_the_one_the_case_table_used_for_a_working_last_day(void **state) {
    (void)state;
    /* when no rest day is involved the new count agrees with cw_period's */
    int64_t ts = at_cn(2020, 8, 3, 15, 0);
    assert_true(cw_deadline_due(shipped, ts, CN, CW_DEADLINE_DAYS, 7, 1) ==
                cw_period_day(cw_deadline_days(ts, 7, CN), CN));
    int64_t ts2 = at_cn(2020, 7, 14, 9, 0); /* + 1 month: Friday 08-14 */
    assert_true(cw_deadline_due(shipped, ts2, CN, CW_DEADLINE_MONTHS, 1, 1) ==
                cw_period_day(cw_deadline_months(ts2, 1, CN), CN));
}

/* ---- Months ----------------------------------------------------------------- */

static void a_month_ends_on_the_same_date_of_the_next_month(void **state) {
    (void)state;
    assert_true(cw_deadline_last_day(NULL, D(2020, 9, 1), CW_DEADLINE_MONTHS, 1) == D(2020, 10, 1));
    assert_true(cw_deadline_last_day(NULL, D(2021, 2, 27), CW_DEADLINE_MONTHS, 1) == D(2021, 3, 27));
    /* across the year's end */
    assert_true(cw_deadline_last_day(NULL, D(2020, 11, 15), CW_DEADLINE_MONTHS, 3) == D(2021, 2, 15));
    assert_true(cw_deadline_last_day(NULL, D(2020, 12, 15), CW_DEADLINE_MONTHS, 1) == D(2021, 1, 15));
}

static void a_month_from_jan_31_ends_on_the_last_day_of_february(void **state) {
    (void)state;
    assert_true(cw_deadline_last_day(NULL, D(2020, 1, 31), CW_DEADLINE_MONTHS, 1) == D(2020, 2, 29)); /* leap */
    assert_true(cw_deadline_last_day(NULL, D(2021, 1, 31), CW_DEADLINE_MONTHS, 1) == D(2021, 2, 28));
    assert_true(cw_deadline_last_day(NULL, D(2021, 1, 30), CW_DEADLINE_MONTHS, 1) == D(2021, 2, 28));
    assert_true(cw_deadline_last_day(NULL, D(2020, 3, 31), CW_DEADLINE_MONTHS, 1) == D(2020, 4, 30));
}

static void a_month_from_the_last_day_of_a_month_ends_on_the_last_day_of_the_next(void **state) {
    (void)state;
    /* 期限起算日为本月最后一日的，至下月最后一日为一个月 */
    assert_true(cw_deadline_last_day(NULL, D(2021, 2, 28), CW_DEADLINE_MONTHS, 1) == D(2021, 3, 31));
    assert_true(cw_deadline_last_day(NULL, D(2020, 2, 29), CW_DEADLINE_MONTHS, 1) == D(2020, 3, 31));
    assert_true(cw_deadline_last_day(NULL, D(2020, 4, 30), CW_DEADLINE_MONTHS, 1) == D(2020, 5, 31));
    assert_true(cw_deadline_last_day(NULL, D(2020, 4, 30), CW_DEADLINE_MONTHS, 3) == D(2020, 7, 31));
    /* the 28th of a 31-day month is not its last day */
    assert_true(cw_deadline_last_day(NULL, D(2021, 1, 28), CW_DEADLINE_MONTHS, 1) == D(2021, 2, 28));
}

static void twelve_months_from_feb_29_in_a_leap_year_end_on_feb_28(void **state) {
    (void)state;
    assert_true(cw_deadline_last_day(NULL, D(2020, 2, 29), CW_DEADLINE_MONTHS, 12) == D(2021, 2, 28));
    assert_true(cw_deadline_last_day(NULL, D(2020, 2, 29), CW_DEADLINE_MONTHS, 48) == D(2024, 2, 29));
    assert_true(cw_deadline_last_day(NULL, D(2019, 2, 28), CW_DEADLINE_MONTHS, 12) == D(2020, 2, 29));
}

/* ---- CPL art. 105 ------------------------------------------------------------- */

static void a_last_day_on_national_day_moves_to_the_first_working_day(void **state) {
    (void)state;
    /* a non-custody prosecution review accepted 2020-09-01: one month ends
     * on 10-01, inside 国庆节、中秋节 (10-01..10-08); the period ends on
     * Friday 10-09, which still counts: overdue from the start of 10-10 */
    int64_t ts = at_cn(2020, 9, 1, 10, 0);
    assert_true(cw_deadline_last_day(shipped, D(2020, 9, 1), CW_DEADLINE_MONTHS, 1) == D(2020, 10, 1));
    int64_t due = cw_deadline_due(shipped, ts, CN, CW_DEADLINE_MONTHS, 1, 1);
    assert_true(due == D(2020, 10, 10));
    assert_true(due - 1 == D(2020, 10, 9)); /* the last day on which it is on time */
}

static void a_last_day_on_a_holiday_in_custody_does_not_move(void **state) {
    (void)state;
    /* a detained arrest review (7 days) accepted 2020-09-24: last day 10-01
     * in the holiday; in custody it ends that day: overdue from 10-02 */
    int64_t ts = at_cn(2020, 9, 24, 16, 0);
    assert_true(cw_deadline_due(shipped, ts, CN, CW_DEADLINE_DAYS, 7, 0) == D(2020, 10, 2));
    /* the same period out of custody runs to 10-09 */
    assert_true(cw_deadline_due(shipped, ts, CN, CW_DEADLINE_DAYS, 7, 1) == D(2020, 10, 10));
}

static void a_last_day_on_a_make_up_working_saturday_does_not_move(void **state) {
    (void)state;
    /* 2020-10-10 is a Saturday made a working day (调休): a 15-day arrest
     * review accepted 09-25 ends on it */
    assert_true(cw_calendar_is_rest(shipped, D(2020, 10, 10)) == 0);
    assert_true(cw_deadline_due(shipped, at_cn(2020, 9, 25, 9, 0), CN, CW_DEADLINE_DAYS, 15, 1) == D(2020, 10, 11));
    /* accepted a day later, the last day is Sunday 10-11, a rest day: Monday */
    assert_true(cw_deadline_due(shipped, at_cn(2020, 9, 26, 9, 0), CN, CW_DEADLINE_DAYS, 15, 1) == D(2020, 10, 13));
}

static void a_last_day_on_an_ordinary_weekend_moves_to_monday(void **state) {
    (void)state;
    /* 7 days from Saturday 2020-08-01 end on Saturday 08-08: Monday 08-10 */
    assert_true(cw_deadline_due(shipped, at_cn(2020, 8, 1, 15, 0), CN, CW_DEADLINE_DAYS, 7, 1) == D(2020, 8, 11));
    assert_true(cw_deadline_due(shipped, at_cn(2020, 8, 1, 15, 0), CN, CW_DEADLINE_DAYS, 7, 0) == D(2020, 8, 9));
}

static void a_last_day_in_a_holiday_followed_by_a_make_up_saturday_ends_on_that_saturday(void **state) {
    (void)state;
    /* 2023: 中秋节、国庆节 09-29..10-06, then Saturday 10-07 is a working day */
    assert_true(cw_deadline_due_from_last(shipped, D(2023, 10, 3), 1) == D(2023, 10, 8));
    assert_true(cw_calendar_next_working(shipped, D(2023, 9, 29)) == D(2023, 10, 7));
}

static void a_last_day_in_the_spring_festival_moves_past_it(void **state) {
    (void)state;
    /* 2026: 春节 02-15..02-23 (9 days): a last day of 02-16 ends on 02-24 */
    assert_true(cw_deadline_due_from_last(shipped, D(2026, 2, 16), 1) == D(2026, 2, 25));
    /* 2020: the Spring Festival extended to 02-02 by 国办发明电〔2020〕1号;
     * Saturday 02-01, a working day in the first notice, became a rest day */
    assert_true(cw_calendar_is_rest(shipped, D(2020, 2, 1)) == 1);
    assert_true(cw_deadline_due_from_last(shipped, D(2020, 1, 25), 1) == D(2020, 2, 4));
}

static void an_extension_counts_on_from_the_day_the_period_ended(void **state) {
    (void)state;
    /* the review of 2020-09-01 ended 10-09 (art. 105); 15 more days end on
     * 10-24, a Saturday: Monday 10-26, overdue from 10-27 */
    assert_true(cw_deadline_extend(shipped, D(2020, 10, 10), CW_DEADLINE_DAYS, 15, 1) == D(2020, 10, 27));
    /* in custody the first period ended 10-01: 15 more days end 10-16 (Friday) */
    assert_true(cw_deadline_extend(shipped, D(2020, 10, 2), CW_DEADLINE_DAYS, 15, 0) == D(2020, 10, 17));
}

/* ---- Working days -------------------------------------------------------------- */

static void seven_working_days_skip_a_weekend_and_a_holiday_and_count_a_make_up_day(void **state) {
    (void)state;
    /* a letter received Monday 2020-09-28: 09-29 (1), 09-30 (2), 10-01..08
     * holiday, 10-09 (3), Saturday 10-10 make-up (4), Sunday 10-11 rest,
     * 10-12 (5), 10-13 (6), 10-14 (7): overdue from 10-15 */
    assert_true(cw_deadline_due(shipped, at_cn(2020, 9, 28, 11, 0), CN, CW_DEADLINE_WORKING_DAYS, 7, 1) ==
                D(2020, 10, 15));
    /* across an ordinary weekend: Thursday 2020-08-06 + 7 -> Monday 08-17 */
    assert_true(cw_deadline_last_day(shipped, D(2020, 8, 6), CW_DEADLINE_WORKING_DAYS, 7) == D(2020, 8, 17));
    /* received on a Saturday: the first working day after it is day 1 */
    assert_true(cw_deadline_last_day(shipped, D(2020, 8, 8), CW_DEADLINE_WORKING_DAYS, 1) == D(2020, 8, 10));
    assert_true(cw_calendar_add_working(shipped, D(2020, 8, 8), 0) == D(2020, 8, 8));
}

/* ---- Coverage ---------------------------------------------------------------------- */

static void a_year_beyond_the_file_counts_weekends_only(void **state) {
    (void)state;
    assert_int_equal(cw_calendar_through(shipped), 2026);
    /* 2027's notice is not in the file: Friday 2027-10-01 counts as a
     * working day, Saturday 10-02 as a rest day */
    assert_int_equal(cw_calendar_is_rest(shipped, D(2027, 10, 1)), 0);
    assert_int_equal(cw_calendar_is_rest(shipped, D(2027, 10, 2)), 1);
    assert_true(cw_deadline_due_from_last(shipped, D(2027, 10, 1), 1) == D(2027, 10, 2));
    assert_true(cw_deadline_due_from_last(shipped, D(2027, 10, 2), 1) == D(2027, 10, 5));
    /* the last covered day still follows the file, the day after does not */
    assert_int_equal(cw_calendar_is_rest(shipped, D(2026, 12, 31)), 0);
    assert_null(cw_calendar_label(shipped, D(2027, 1, 1)));
    /* nor a year before it: 2018-10-01 (Monday) counts as a working day */
    assert_int_equal(cw_calendar_from(shipped), 2019);
    assert_int_equal(cw_calendar_is_rest(shipped, D(2018, 10, 1)), 0);
}

static void no_calendar_counts_weekends_only(void **state) {
    (void)state;
    assert_int_equal(cw_calendar_through(NULL), 0);
    assert_int_equal(cw_calendar_is_rest(NULL, D(2020, 10, 1)), 0);  /* Thursday */
    assert_int_equal(cw_calendar_is_rest(NULL, D(2020, 10, 10)), 1); /* Saturday */
    assert_int_equal(cw_calendar_is_rest(NULL, D(1969, 12, 28)), 1); /* a Sunday before day 0 */
    assert_int_equal(cw_calendar_is_rest(NULL, D(1969, 12, 29)), 0);
    assert_null(cw_calendar_label(NULL, D(2020, 10, 1)));
    assert_true(cw_deadline_due_from_last(NULL, D(2020, 10, 10), 1) == D(2020, 10, 13));
    cw_calendar_free(NULL);
}

/* Statutory holidays a year (全国年节及纪念日放假办法): 11 days through
 * 2024, 13 from 2025. The notices move them with make-up working days,
 * so in each year the weekdays off less the weekend days worked make up
 * exactly that number — an independent check of every date in the file. */
static void the_shipped_calendar_covers_2019_through_2026_day_for_day(void **state) {
    (void)state;
    assert_int_equal(cw_calendar_from(shipped), 2019);
    assert_int_equal(cw_calendar_through(shipped), 2026);
    static const struct {
        int year, weekdays_off, weekends_worked, statutory;
    } want[] = {
        {2019, 17, 6, 11}, {2020, 19, 6, 13}, /* 2020: + 01-31 off and 02-01 not worked (the extension) */
        {2021, 18, 7, 11}, {2022, 18, 7, 11}, {2023, 18, 7, 11},
        {2024, 19, 8, 11}, {2025, 18, 5, 13}, {2026, 19, 6, 13},
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        int off = 0, worked = 0;
        for (int64_t d = D(want[i].year, 1, 1); d <= D(want[i].year, 12, 31); d++) {
            int wd = (int)(((d + 4) % 7 + 7) % 7);
            int weekend = wd == 0 || wd == 6;
            if (!weekend && cw_calendar_is_rest(shipped, d)) off++;
            if (weekend && !cw_calendar_is_rest(shipped, d)) worked++;
        }
        if (off != want[i].weekdays_off || worked != want[i].weekends_worked)
            fprintf(stderr, "%d: %d weekdays off, %d weekend days worked\n", want[i].year, off, worked);
        assert_int_equal(off, want[i].weekdays_off);
        assert_int_equal(worked, want[i].weekends_worked);
        assert_int_equal(off - worked, want[i].statutory);
    }
    /* one day of each notice, as its text says */
    assert_int_equal(cw_calendar_is_rest(shipped, D(2018, 12, 31)), 1); /* 2019 元旦 from 2018-12-30 */
    assert_int_equal(cw_calendar_is_rest(shipped, D(2018, 12, 29)), 0); /* 2018-12-29（星期六）上班 */
    assert_int_equal(cw_calendar_is_rest(shipped, D(2019, 5, 3)), 1);   /* 劳动节 as adjusted in 2019-03 */
    assert_int_equal(cw_calendar_is_rest(shipped, D(2021, 9, 18)), 0);
    assert_int_equal(cw_calendar_is_rest(shipped, D(2022, 4, 2)), 0);
    assert_int_equal(cw_calendar_is_rest(shipped, D(2023, 1, 2)), 1);
    assert_int_equal(cw_calendar_is_rest(shipped, D(2024, 2, 18)), 0);
    assert_int_equal(cw_calendar_is_rest(shipped, D(2025, 1, 28)), 1); /* 除夕, a holiday from 2025 */
    assert_int_equal(cw_calendar_is_rest(shipped, D(2026, 1, 4)), 0);
    assert_int_equal(cw_calendar_is_rest(shipped, D(2026, 2, 23)), 1);
    assert_string_equal(cw_calendar_label(shipped, D(2020, 10, 1)), "国庆节、中秋节");
    assert_string_equal(cw_calendar_label(shipped, D(2020, 10, 10)), "国庆节、中秋节调休");
    assert_null(cw_calendar_label(shipped, D(2020, 10, 9)));
}

/* ---- The file ------------------------------------------------------------------------ */

static void the_format_takes_comments_ranges_labels_crlf_and_a_bom(void **state) {
    (void)state;
    char err[256] = "";
    const char *text = "\xEF\xBB\xBF# a comment\r\n"
                       "\n"
                       "   # an indented comment\n"
                       "year 2020 国办发明电〔2019〕16号\r\n"
                       "2020-10-01..2020-10-08\trest   国庆节、中秋节  \n"
                       "2020-09-27 work\n"
                       "2019-12-31 rest 元旦前一日（for the test）\n"
                       "year 2021";
    cw_calendar *cal = parse(text, err, sizeof(err));
    assert_non_null(cal);
    assert_string_equal(err, "");
    assert_int_equal(cw_calendar_from(cal), 2020);
    assert_int_equal(cw_calendar_through(cal), 2021);
    assert_int_equal(cw_calendar_is_rest(cal, D(2020, 10, 8)), 1);
    assert_int_equal(cw_calendar_is_rest(cal, D(2020, 10, 9)), 0);
    assert_int_equal(cw_calendar_is_rest(cal, D(2020, 9, 27)), 0);
    assert_int_equal(cw_calendar_is_rest(cal, D(2019, 12, 31)), 1);
    assert_string_equal(cw_calendar_label(cal, D(2020, 10, 5)), "国庆节、中秋节");
    assert_null(cw_calendar_label(cal, D(2020, 9, 27)));
    /* 2021 has no entries: weekends only, but covered */
    assert_int_equal(cw_calendar_is_rest(cal, D(2021, 10, 1)), 0);
    cw_calendar_free(cal);
}

static void expect_error(const char *text, const char *want) {
    char err[512] = "";
    cw_calendar *cal = parse(text, err, sizeof(err));
    if (cal || !strstr(err, want)) fprintf(stderr, "want '%s', got '%s'\n", want, err);
    assert_null(cal);
    assert_non_null(strstr(err, want));
}

static void a_malformed_file_names_the_file_and_the_line(void **state) {
    (void)state;
    /* an unknown word */
    expect_error("year 2020\n2020-10-01 holiday 国庆节\n", "test.conf:2: expected 'rest' or 'work' after 2020-10-01, got 'holiday'");
    expect_error("year 2020\n2020-10-01\n", "test.conf:2: expected 'rest' or 'work' after 2020-10-01");
    expect_error("# x\nholidays 2020\n", "test.conf:2: expected 'year YYYY' or a date");
    /* a bad date */
    expect_error("year 2021\n2021-02-29 rest x\n", "test.conf:2: '2021-02-29' is not a date");
    expect_error("year 2021\n2021-2-3 rest x\n", "test.conf:2: '2021-2-3' is not a date");
    expect_error("year 2021\n2021-10-01..2021-10-32 rest x\n", "test.conf:2: '2021-10-32' is not a date");
    /* a range backwards, or too long */
    expect_error("year 2021\n\n2021-10-07..2021-10-01 rest x\n", "test.conf:3: the range 2021-10-07..2021-10-01 ends before it starts");
    expect_error("year 2021\n2021-10-01..2021-12-01 rest x\n", "test.conf:2: the range 2021-10-01..2021-12-01 is longer than 31 days");
    /* a make-up working day that is not a weekend day */
    expect_error("year 2021\n2021-09-17 work 中秋节调休\n", "test.conf:2: 2021-09-17 is a Friday, a working day anyway");
    /* a day both rest and work */
    expect_error("year 2020\n2020-01-24..2020-02-02 rest 春节\n2020-02-01 work 春节调休\n",
                 "test.conf:3: 2020-02-01 is listed both as a rest day and as a working day (line 2)");
    /* dates outside their notice's year, or before any year */
    expect_error("year 2020\n2021-10-01 rest x\n", "test.conf:2: 2021-10-01 is outside year 2020's notice");
    expect_error("year 2020\n2019-11-30 rest x\n", "test.conf:2: 2019-11-30 is outside year 2020's notice");
    expect_error("2020-10-01 rest x\n", "test.conf:1: 2020-10-01 comes before any 'year YYYY' line");
    /* years out of order or missing */
    expect_error("year 2020\nyear 2022\n", "test.conf:2: year 2022 after year 2020: the years between are missing");
    expect_error("year 2020\nyear 2020\n", "test.conf:2: year 2020 after year 2020: years come in order");
    expect_error("year twenty\n", "test.conf:1: expected a year after 'year'");
    /* no year at all */
    expect_error("# nothing\n\n", "test.conf: no 'year YYYY' line");
    /* a label that is not UTF-8 */
    expect_error("year 2020\n2020-10-01 rest \xff\xfe\n", "test.conf:2: expected the label in UTF-8");
}

static void a_malformed_file_on_disk_is_named_by_its_path(void **state) {
    (void)state;
    char path[64] = "/tmp/cwcal-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *text = "year 2020\n2020-10-01 rest 国庆节\n2020-10-02 rets 国庆节\n";
    assert_true(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    close(fd);
    char err[512], want[128];
    assert_null(cw_calendar_load(path, err, sizeof(err)));
    snprintf(want, sizeof(want), "%s:3: expected 'rest' or 'work' after 2020-10-02, got 'rets'", path);
    assert_string_equal(err, want);
    unlink(path);
    assert_null(cw_calendar_load("/nonexistent/holidays-cn.conf", err, sizeof(err)));
    assert_non_null(strstr(err, "/nonexistent/holidays-cn.conf: cannot open"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_period_in_days_does_not_count_its_start_day),
        cmocka_unit_test(a_start_at_00_00_china_time_still_does_not_count_its_day),
        cmocka_unit_test(a_start_at_23_59_china_time_counts_from_the_next_day),
        cmocka_unit_test(the_due_day_is_the_one_the_case_table_used_for_a_working_last_day),
        cmocka_unit_test(a_month_ends_on_the_same_date_of_the_next_month),
        cmocka_unit_test(a_month_from_jan_31_ends_on_the_last_day_of_february),
        cmocka_unit_test(a_month_from_the_last_day_of_a_month_ends_on_the_last_day_of_the_next),
        cmocka_unit_test(twelve_months_from_feb_29_in_a_leap_year_end_on_feb_28),
        cmocka_unit_test(a_last_day_on_national_day_moves_to_the_first_working_day),
        cmocka_unit_test(a_last_day_on_a_holiday_in_custody_does_not_move),
        cmocka_unit_test(a_last_day_on_a_make_up_working_saturday_does_not_move),
        cmocka_unit_test(a_last_day_on_an_ordinary_weekend_moves_to_monday),
        cmocka_unit_test(a_last_day_in_a_holiday_followed_by_a_make_up_saturday_ends_on_that_saturday),
        cmocka_unit_test(a_last_day_in_the_spring_festival_moves_past_it),
        cmocka_unit_test(an_extension_counts_on_from_the_day_the_period_ended),
        cmocka_unit_test(seven_working_days_skip_a_weekend_and_a_holiday_and_count_a_make_up_day),
        cmocka_unit_test(a_year_beyond_the_file_counts_weekends_only),
        cmocka_unit_test(no_calendar_counts_weekends_only),
        cmocka_unit_test(the_shipped_calendar_covers_2019_through_2026_day_for_day),
        cmocka_unit_test(the_format_takes_comments_ranges_labels_crlf_and_a_bom),
        cmocka_unit_test(a_malformed_file_names_the_file_and_the_line),
        cmocka_unit_test(a_malformed_file_on_disk_is_named_by_its_path),
    };
    return cmocka_run_group_tests(tests, load_shipped, free_shipped);
}
