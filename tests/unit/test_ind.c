/* Unit tests of daemon/cw_ind: the counter store and its flush. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <math.h>

#include "../../daemon/cw_cases.h"
#include "../../daemon/cw_ind.h"
#include "../../daemon/cw_map.h"
#include "../integration/cw_testredis.h"

#define CN 480
#define DAY 86400000LL
#define T0 1593565200000LL /* 2020-07-01 09:00 China */

/* What one or more flushes wrote: "scope period" -> times, and the
 * counter `cases` of the last write. */
typedef struct seen {
    cw_map *times;
    size_t writes;
} seen;

static void count(const char *scope, const char *period, const uint64_t *counters, int64_t event_ts,
                  const char *const *fields, const char *const *values, size_t n, void *data) {
    (void)counters, (void)event_ts, (void)fields, (void)values, (void)n;
    seen *s = data;
    char key[300];
    int kl = snprintf(key, sizeof(key), "%s %s", scope, period);
    uintptr_t t = (uintptr_t)cw_map_get(s->times, key, (size_t)kl);
    assert_int_equal(cw_map_put(s->times, key, (size_t)kl, (void *)(t + 1)), 0);
    s->writes++;
}

/* Counts case i of unit 410923 (arrest.accepted at ts), of a department
 * and a prosecutor when given. */
static void apply_case(cw_ind *x, int64_t ts, int i, const char *dept, const char *pros) {
    char id[16], case_id[16];
    snprintf(id, sizeof(id), "e%d", i);
    snprintf(case_id, sizeof(case_id), "c%d", i);
    cw_event ev = cw_test_event(id, case_id, "410923", CW_EV_ARREST_ACCEPTED, ts);
    snprintf(ev.dept, sizeof(ev.dept), "%s", dept ? dept : "");
    snprintf(ev.pros, sizeof(ev.pros), "%s", pros ? pros : "");
    cw_case_facts f;
    memset(&f, 0, sizeof(f));
    assert_int_equal(cw_ind_apply(x, &ev, &f), 0);
}

/* 3,000 prosecutors of one unit, one case each, on two days. */
static cw_ind *filled(void) {
    cw_ind *x = cw_ind_new(CN, 30, 8);
    assert_non_null(x);
    for (int i = 0; i < 3000; i++) {
        char pros[16];
        snprintf(pros, sizeof(pros), "P%04d", i);
        apply_case(x, T0 + (i % 2) * DAY, i, "第一检察部", pros);
    }
    return x;
}

static void a_flush_in_slices_writes_every_hash_once_and_no_slice_is_over_budget(void **state) {
    (void)state;
    /* all at once, as the reference */
    cw_ind *whole = filled();
    seen all = {cw_map_new(), 0};
    cw_ind_flush(whole, count, &all, 0);
    assert_false(cw_ind_flush_pending(whole));
    /* 3,000 pros + dept + unit + city + province + nation: month, quarter,
     * year and rolling each */
    assert_int_equal(all.writes, 3005 * 4);

    cw_ind *x = filled();
    seen sliced = {cw_map_new(), 0};
    int calls = 0;
    do {
        size_t before = sliced.writes;
        size_t n = cw_ind_flush(x, count, &sliced, 250);
        assert_true(n <= 250);
        assert_int_equal(n, sliced.writes - before);
        calls++;
    } while (cw_ind_flush_pending(x));
    assert_true(calls >= 3005 * 4 / 250);
    assert_int_equal(sliced.writes, all.writes);
    size_t pos = 0;
    const char *key;
    size_t len;
    void *v;
    while (cw_map_next(sliced.times, &pos, &key, &len, &v)) {
        assert_int_equal((uintptr_t)v, 1); /* once each */
        assert_int_equal((uintptr_t)cw_map_get(all.times, key, len), 1);
    }
    assert_int_equal(cw_map_size(sliced.times), cw_map_size(all.times));

    /* the day moves: every rolling window again, in slices too */
    cw_ind_set_today(x, 18450); /* 2020-07-07, after the newest event's day */
    assert_true(cw_ind_flush_pending(x));
    seen windows = {cw_map_new(), 0};
    while (cw_ind_flush_pending(x)) assert_true(cw_ind_flush(x, count, &windows, 500) <= 500);
    assert_int_equal(windows.writes, 3005);
    assert_int_equal(cw_ind_counter(x, "pros:410923:P0007", "2020-Q3", "cases"), 1);
    assert_int_equal(cw_ind_counter(x, "unit:410923", "2020-07", "cases"), 3000);
    assert_int_equal(cw_ind_counter(x, "region:41", "2020", "cases"), 3000);

    cw_map_free(all.times);
    cw_map_free(sliced.times);
    cw_map_free(windows.times);
    cw_ind_free(whole);
    cw_ind_free(x);
    cw_ind_free(NULL);
}

/* The rolling window's cases of unit:410923, as a flush writes it. */
static void rolling_cases(const char *scope, const char *period, const uint64_t *counters, int64_t event_ts,
                          const char *const *fields, const char *const *values, size_t n, void *data) {
    (void)event_ts, (void)fields, (void)values, (void)n;
    if (strcmp(scope, "unit:410923") == 0 && strcmp(period, "rolling-30d") == 0)
        *(long long *)data = (long long)counters[cw_ind_counter_index("cases")];
}

/* A replay crosses many days between two flushes (every flush_entries
 * entries): the day buckets that leave the window are let go on the way,
 * and the window written at the flush is still the sum of its 30 days,
 * late events in it included. */
static void days_between_two_flushes_are_let_go_and_the_window_stays_right(void **state) {
    (void)state;
    cw_ind *x = cw_ind_new(CN, 30, 8);
    assert_non_null(x);
    int i = 0;
    for (int d = 0; d < 400; d++) {
        apply_case(x, T0 + d * DAY, i++, NULL, NULL);
        if (d >= 50 && d % 10 == 0) {
            apply_case(x, T0 + (d - 45) * DAY, i++, NULL, NULL); /* late, out of the window by the end */
            apply_case(x, T0 + (d - 10) * DAY, i++, NULL, NULL); /* late; in the window for d = 380 and 390 */
        }
    }
    /* unit, city, province, nation: their months, quarters and years, and
     * not 400 days each (about 3 x 30 at most: days go once a scope is full) */
    assert_true(cw_ind_entries(x) < 4 * (14 + 6 + 2 + 3 * 30));
    long long rolling = -1;
    while (cw_ind_flush_pending(x)) cw_ind_flush(x, rolling_cases, &rolling, 0);
    assert_int_equal(rolling, 30 + 2);
    /* 2020-07-01 + 399 days = 2021-08-04; August 2021 had days 396-399 */
    assert_int_equal(cw_ind_counter(x, "unit:410923", "2021-08", "cases"), 4);
    cw_ind_free(x);
}

/* One value through both: the hand formatter and snprintf. */
static void formats_as_snprintf(double v) {
    char a[32], b[32];
    cw_ind_format_value(v, a);
    snprintf(b, sizeof(b), "%.4f", v);
    if (strcmp(a, b) != 0) fail_msg("%.17g: %s, snprintf %s", v, a, b);
}

static void indicator_values_are_written_as_snprintf_wrote_them(void **state) {
    (void)state;
    /* what indicators are: counts over counts, milliseconds over days */
    for (uint64_t den = 1; den <= 400; den++)
        for (uint64_t num = 0; num <= 3 * den; num++) formats_as_snprintf((double)num / (double)den);
    for (uint64_t ms = 0; ms < 90ull * 86400000; ms += 7777777) formats_as_snprintf((double)ms / 86400000.0);
    /* exact ties at the fifth decimal (k/2^n) and their neighbours */
    for (int n = 1; n <= 20; n++)
        for (uint64_t k = 0; k < 5000; k++) {
            double v = ldexp((double)k, -n);
            formats_as_snprintf(v);
            formats_as_snprintf(nextafter(v, 0));
            formats_as_snprintf(nextafter(v, 1e300));
        }
    /* any bit pattern, large and tiny values, and what falls back */
    uint64_t r = 88172645463325252ull;
    for (int i = 0; i < 300000; i++) {
        r ^= r << 13, r ^= r >> 7, r ^= r << 17;
        double v;
        memcpy(&v, &r, sizeof(v));
        formats_as_snprintf(v);
        formats_as_snprintf((double)(r % 100000000000ull) / 1e4);
        formats_as_snprintf((double)(r >> 11) * 0x1p-53 * 1000.0);
    }
    static const double odd[] = {0.0, -0.0, 0.00005, 0.00004999999999999, 0.99995, 9.99995, 1e15, 9.99999999999999e14,
                                 1e-320, 5e-324, 1.0 / 0.0, -1.0 / 0.0, 0.0 / 0.0, -1.5, 123456789.123456789};
    for (size_t i = 0; i < sizeof(odd) / sizeof(odd[0]); i++) formats_as_snprintf(odd[i]);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_flush_in_slices_writes_every_hash_once_and_no_slice_is_over_budget),
        cmocka_unit_test(days_between_two_flushes_are_let_go_and_the_window_stays_right),
        cmocka_unit_test(indicator_values_are_written_as_snprintf_wrote_them),
    };
    return cmocka_run_group_tests_name("counters", tests, NULL, NULL);
}
