/* Unit tests of daemon/cw_period (periods, statutory day counting) and
 * daemon/cw_map. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../daemon/cw_map.h"
#include "../../daemon/cw_period.h"

#define CN 480
#define H 3600000LL

static void periods_are_named_in_china_time(void **state) {
    (void)state;
    char m[8], q[8], y[8];
    /* 2020-06-30T16:30:00Z is 2020-07-01 00:30 in China: Q3 there */
    cw_period_names(1593534600000LL, CN, m, q, y);
    assert_string_equal(m, "2020-07");
    assert_string_equal(q, "2020-Q3");
    assert_string_equal(y, "2020");
    cw_period_names(1593534600000LL, 0, m, q, y);
    assert_string_equal(m, "2020-06");
    assert_string_equal(q, "2020-Q2");
    assert_int_equal(cw_period_name_quarter_index("2020-Q3"), 2020 * 4 + 2);
    assert_int_equal(cw_period_name_quarter_index("2020-08"), 2020 * 4 + 2);
    assert_int_equal(cw_period_name_quarter_index("2020"), 2020 * 4 + 3);
    assert_int_equal(cw_period_name_quarter_index("rolling-30d"), -1);
}

static void n_days_end_at_midnight_after_the_nth_day_not_counting_the_first(void **state) {
    (void)state;
    /* accepted 2020-08-01 15:00 China: 7 days end 2020-08-08 24:00 China
     * = 2020-08-08T16:00:00Z */
    int64_t start = 1596265200000LL; /* 2020-08-01T07:00:00Z = 15:00 China */
    assert_true(cw_deadline_days(start, 7, CN) == 1596902400000LL);
    /* accepted at 00:00:00 China still does not count its own day */
    int64_t midnight = 1596211200000LL; /* 2020-08-01 00:00 China */
    assert_true(cw_deadline_days(midnight, 7, CN) == 1596902400000LL);
    /* accepted at 23:59 China, same day */
    assert_true(cw_deadline_days(midnight + 24 * H - 60000, 7, CN) == 1596902400000LL);
}

static void one_month_ends_on_the_same_date_next_month(void **state) {
    (void)state;
    int64_t start = 1596265200000LL; /* 2020-08-01 15:00 China */
    /* ends 2020-09-01 24:00 China = 2020-09-01T16:00:00Z */
    assert_true(cw_deadline_months(start, 1, CN) == 1598976000000LL);
    /* 2020-01-31 -> 2020-02-29 (no 31st: the month's last day), 24:00 */
    int64_t jan31 = 1580400000000LL; /* 2020-01-31 00:00 China */
    assert_true(cw_deadline_months(jan31, 1, CN) == 1582992000000LL); /* 2020-02-29T16:00:00Z */
    /* three months from 2020-11-15 ends 2021-02-15 24:00 China */
    int64_t nov15 = 1605369600000LL; /* 2020-11-15 00:00 China */
    assert_true(cw_deadline_months(nov15, 3, CN) == 1613404800000LL);
}

static void utc_offsets_parse_strictly(void **state) {
    (void)state;
    int m;
    assert_int_equal(cw_period_parse_offset("+08:00", &m), 0);
    assert_int_equal(m, 480);
    assert_int_equal(cw_period_parse_offset("-05:30", &m), 0);
    assert_int_equal(m, -330);
    assert_int_equal(cw_period_parse_offset("Z", &m), 0);
    assert_int_equal(m, 0);
    assert_int_equal(cw_period_parse_offset("8", &m), -1);
    assert_int_equal(cw_period_parse_offset("+08:00x", &m), -1);
}

/* What cw_period_kind_of and cw_period_shift said when they read every
 * name with sscanf and wrote it with snprintf. */
static cw_period_kind old_kind_of(const char *name) {
    int y, x;
    size_t n = strlen(name);
    if (strncmp(name, "rolling-", 8) == 0) return CW_PERIOD_ROLLING;
    if (n == 7 && sscanf(name, "%4d-Q%1d", &y, &x) == 2) return CW_PERIOD_QUARTER;
    if (n == 7 && sscanf(name, "%4d-%2d", &y, &x) == 2) return CW_PERIOD_MONTH;
    if (n == 4 && sscanf(name, "%4d", &y) == 1) return CW_PERIOD_YEAR;
    return CW_PERIOD_NONE;
}

static int old_shift(const char *name, int delta, char out[8]) {
    int y, x;
    switch (old_kind_of(name)) {
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

static void period_names_are_read_and_shifted_as_sscanf_and_snprintf_did(void **state) {
    (void)state;
    static const char *const odd[] = {"", "2020", "2020-Q3", "2020-07", "0000-Q0", "9999-Q4", "0000-00", "2020-13",
                                      "2020-Q9", "99999", "202", "2020-", "2020-Q", "2020-Q34", "2020-7", " 202",
                                      "-202", "+202-Q1", " 20-Q1", "-020-07", "2020-+7", "2020- 7", "2020x07",
                                      "rolling-30d", "rolling-", "abcd", "2020-Q3 ", "20 0"};
    static char names[5000][24];
    size_t n = 0;
    for (size_t i = 0; i < sizeof(odd) / sizeof(odd[0]); i++) snprintf(names[n++], sizeof(names[0]), "%s", odd[i]);
    for (unsigned y = 0; y <= 9999; y += 7) {
        snprintf(names[n++], sizeof(names[0]), "%04u", y);
        snprintf(names[n++], sizeof(names[0]), "%04u-Q%u", y, y % 6);
        snprintf(names[n++], sizeof(names[0]), "%04u-%02u", y, y % 14);
    }
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(cw_period_kind_of(names[i]), old_kind_of(names[i]));
        for (int delta = -13; delta <= 13; delta += 2) {
            char a[8] = "x", b[8] = "x";
            int ra = cw_period_shift(names[i], delta, a), rb = old_shift(names[i], delta, b);
            assert_int_equal(ra, rb);
            if (ra == 0) assert_string_equal(a, b);
        }
    }
}

static void the_map_survives_growth_and_deletes(void **state) {
    (void)state;
    cw_map *m = cw_map_new();
    char k[32];
    for (long i = 0; i < 50000; i++) {
        int n = snprintf(k, sizeof(k), "case-%ld", i);
        assert_int_equal(cw_map_put(m, k, (size_t)n, (void *)(i + 1)), 0);
    }
    for (long i = 0; i < 50000; i += 2) {
        int n = snprintf(k, sizeof(k), "case-%ld", i);
        assert_true(cw_map_del(m, k, (size_t)n) == (void *)(i + 1));
    }
    assert_int_equal(cw_map_size(m), 25000);
    for (long i = 0; i < 50000; i++) {
        int n = snprintf(k, sizeof(k), "case-%ld", i);
        void *v = cw_map_get(m, k, (size_t)n);
        assert_true(i % 2 ? v == (void *)(i + 1) : v == NULL);
    }
    size_t pos = 0, seen = 0;
    while (cw_map_next(m, &pos, NULL, NULL, NULL)) seen++;
    assert_int_equal(seen, 25000);
    cw_map_free(m);
    cw_map_free(NULL);
}

/* Keys come and go as cases open and close: after 300,000 random puts
 * and deletes over 5,000 keys (many wrap-arounds of the probe runs), the
 * map holds exactly what a plain array says it should. */
static void the_map_finds_every_key_after_much_churn(void **state) {
    (void)state;
    enum { KEYS = 5000 };
    static uintptr_t want[KEYS];
    memset(want, 0, sizeof(want));
    cw_map *m = cw_map_new();
    uint64_t x = 0x9E3779B97F4A7C15ULL;
    size_t live = 0;
    for (int op = 0; op < 300000; op++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        int k = (int)(x % KEYS);
        char key[24];
        int n = snprintf(key, sizeof(key), "unit|case-%d", k);
        if ((x >> 32) % 3 == 0) {
            void *v = cw_map_del(m, key, (size_t)n);
            assert_true(v == (void *)want[k]);
            if (want[k]) live--;
            want[k] = 0;
        } else {
            if (!want[k]) live++;
            want[k] = (uintptr_t)op + 1;
            assert_int_equal(cw_map_put(m, key, (size_t)n, (void *)want[k]), 0);
        }
        if (op % 50000 == 0 || op == 299999) {
            assert_int_equal(cw_map_size(m), live);
            for (int i = 0; i < KEYS; i++) {
                n = snprintf(key, sizeof(key), "unit|case-%d", i);
                assert_true(cw_map_get(m, key, (size_t)n) == (void *)want[i]);
            }
            size_t pos = 0, seen = 0;
            while (cw_map_next(m, &pos, NULL, NULL, NULL)) seen++;
            assert_int_equal(seen, live);
        }
    }
    cw_map_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(periods_are_named_in_china_time),
        cmocka_unit_test(n_days_end_at_midnight_after_the_nth_day_not_counting_the_first),
        cmocka_unit_test(one_month_ends_on_the_same_date_next_month),
        cmocka_unit_test(utc_offsets_parse_strictly),
        cmocka_unit_test(period_names_are_read_and_shifted_as_sscanf_and_snprintf_did),
        cmocka_unit_test(the_map_survives_growth_and_deletes),
        cmocka_unit_test(the_map_finds_every_key_after_much_churn),
    };
    return cmocka_run_group_tests_name("periods and map", tests, NULL, NULL);
}
