/* Unit tests of the statutory clocks of cw_cases (INDICATORS.md §4) and
 * the data checks (§5), with a listener that records what it is told. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "../../daemon/cw_cases.h"
#include "../../daemon/cw_period.h"
#include "../integration/cw_testredis.h"

#define OFF 480
#define DAY 86400000LL

typedef struct seen {
    char log[64][64];
    int n;
    int starts;    /* record clock starts too */
    int days_left; /* of the last change */
} seen;

/* "clock/light/on|off/last day" of each light change; clock starts
 * ("clock/0/on/...") only when s->starts is set. */
static void on_light(const cw_light *l, void *data) {
    seen *s = data;
    if (l->light == CW_LIGHT_NONE && !s->starts) return;
    char date[11];
    cw_period_day_date(l->due_day - 1, date);
    if (s->n < 64)
        snprintf(s->log[s->n++], 64, "%d/%d/%s/%s", l->clock, l->light, l->firing ? "on" : "off", date);
    s->days_left = l->days_left;
}

static void on_check(int check, const char *unit, const char *case_id, const cw_event *ev, void *data) {
    (void)unit, (void)case_id, (void)ev;
    seen *s = data;
    if (s->n < 64) snprintf(s->log[s->n++], 64, "check %d", check);
}

/* The shipped rules' periods (systemd/casewatch.conf). */
static cw_clock_rules defaults(void) {
    cw_clock_rules k;
    memset(&k, 0, sizeof(k));
    for (int i = 0; i < CW_NCLOCKS - 1; i++) {
        k.k[i].enabled = 1;
        k.k[i].warn_days = 3;
        k.k[i].urgent_days = 1;
        k.k[i].holidays_extend = 1;
    }
    cw_clock_rule *r = &k.k[CW_CLOCK_ARREST_REVIEW];
    r->days = 15, r->days_detained = 7, r->days_complex = 20;
    r = &k.k[CW_CLOCK_PROSECUTION_REVIEW];
    r->months = 1, r->days_fast = 10, r->days_fast_extended = 15, r->extension_days = 15;
    k.k[CW_CLOCK_SUPPLEMENTARY].months = 1;
    k.k[CW_CLOCK_LETTER_PROCEDURAL].days = 7;
    k.k[CW_CLOCK_LETTER_SUBSTANTIVE].months = 3;
    k.k[CW_CLOCK_ARREST_RECONSIDERATION].days = 7;
    k.k[CW_CLOCK_ARREST_HIGHER_REVIEW].days = 15;
    k.k[CW_CLOCK_NONPROSECUTION_RECONSIDERATION].days = 30;
    k.k[CW_CLOCK_NONPROSECUTION_HIGHER_REVIEW].days = 30;
    return k;
}

/* 2020-mm-dd hh:00 China time */
static int64_t at(int m, int d, int h) {
    return cw_period_local_midnight(2020, m, d, OFF) + (int64_t)h * 3600000LL;
}

static cw_event ev(const char *id, cw_event_type t, int64_t ts) {
    return cw_test_event(id, "南检刑诉受[2020]1号", "410923", t, ts);
}

static void apply(cw_cases *t, cw_event e) {
    cw_case_facts f;
    cw_cases_advance(t, cw_period_day(e.ts, OFF));
    assert_int_equal(cw_cases_apply(t, &e, &f), 0);
}

/* Detained, accepted 2020-07-27: 7 days, the start day not counted, end
 * at 24:00 on 08-03. Yellow with 3 days left (08-01, 02, 03 remain),
 * orange with 1 (08-03), red from 08-04, one light at a time: each
 * resolves the one before; a decision on 08-05 turns the red off. */
static void arrest_review_lights_come_on_on_their_days(void **state) {
    (void)state;
    seen s = {0};
    cw_clock_rules k = defaults();
    cw_case_listener l = {on_light, on_check, &s};
    cw_cases *t = cw_cases_new(1000, OFF, &k, &l);
    cw_event a = ev("a", CW_EV_ARREST_ACCEPTED, at(7, 27, 10));
    a.present |= CW_F_DETAINED, a.flags |= CW_F_DETAINED;
    apply(t, a);
    cw_cases_advance(t, cw_period_day(at(7, 31, 23), OFF));
    assert_int_equal(s.n, 0);
    cw_cases_advance(t, cw_period_day(at(8, 1, 0), OFF));
    assert_int_equal(s.n, 1);
    assert_string_equal(s.log[0], "0/1/on/2020-08-03");
    cw_cases_advance(t, cw_period_day(at(8, 3, 9), OFF));
    assert_int_equal(s.n, 3);
    assert_string_equal(s.log[1], "0/1/off/2020-08-03"); /* the yellow gives way */
    assert_string_equal(s.log[2], "0/2/on/2020-08-03");
    assert_int_equal(s.days_left, 1);
    cw_event d = ev("d", CW_EV_ARREST_DECIDED, at(8, 5, 9));
    d.decision = CW_DECISION_APPROVE;
    apply(t, d);
    assert_int_equal(s.n, 6);
    assert_string_equal(s.log[3], "0/2/off/2020-08-03");
    assert_string_equal(s.log[4], "0/3/on/2020-08-03");
    assert_string_equal(s.log[5], "0/3/off/2020-08-03");
    cw_cases_free(t);
}

/* Prosecution review: one month from 01-31 ends 02-29 (2020 is a leap
 * year); an extension adds 15 days (lights of the old end go off); a
 * return stops it and starts the 1-month supplementary clock; the
 * resubmission restarts the review in full. */
static void prosecution_review_extends_pauses_and_restarts(void **state) {
    (void)state;
    seen s = {0};
    cw_clock_rules k = defaults();
    cw_case_listener l = {on_light, on_check, &s};
    cw_cases *t = cw_cases_new(1000, OFF, &k, &l);
    apply(t, ev("p", CW_EV_PROSECUTION_ACCEPTED, at(1, 31, 10)));
    cw_cases_advance(t, cw_period_day(at(2, 26, 10), OFF));
    assert_int_equal(s.n, 0);
    cw_cases_advance(t, cw_period_day(at(2, 27, 10), OFF));
    assert_int_equal(s.n, 1);
    assert_string_equal(s.log[0], "1/1/on/2020-02-29");
    apply(t, ev("x", CW_EV_PROSECUTION_EXTENDED, at(2, 28, 10)));
    assert_string_equal(s.log[1], "1/1/off/2020-02-29");
    cw_cases_advance(t, cw_period_day(at(3, 13, 10), OFF));
    assert_int_equal(s.n, 3);
    assert_string_equal(s.log[2], "1/1/on/2020-03-15");
    apply(t, ev("r", CW_EV_PROSECUTION_RETURNED, at(3, 14, 10)));
    assert_string_equal(s.log[3], "1/1/off/2020-03-15");
    cw_cases_advance(t, cw_period_day(at(4, 12, 10), OFF));
    assert_int_equal(s.n, 5);
    assert_string_equal(s.log[4], "2/1/on/2020-04-14"); /* supplementary: 03-14 + 1 month */
    apply(t, ev("s", CW_EV_PROSECUTION_RESUBMITTED, at(4, 13, 10)));
    assert_string_equal(s.log[5], "2/1/off/2020-04-14");
    cw_cases_advance(t, cw_period_day(at(5, 11, 10), OFF));
    assert_string_equal(s.log[6], "1/1/on/2020-05-13"); /* the review restarted in full */
    /* a second extension within this review is a data error */
    apply(t, ev("x2", CW_EV_PROSECUTION_EXTENDED, at(5, 12, 10)));
    apply(t, ev("x3", CW_EV_PROSECUTION_EXTENDED, at(5, 13, 10)));
    int checks = 0;
    for (int i = 0; i < s.n; i++) checks += strcmp(s.log[i], "check 1") == 0;
    assert_int_equal(checks, 1);
    cw_cases_free(t);
}

/* Fast track: 10 days. Third return and a decision without acceptance
 * are data checks; closing turns every light off and frees the case. */
static void data_checks_and_closing(void **state) {
    (void)state;
    seen s = {0};
    cw_clock_rules k = defaults();
    cw_case_listener l = {on_light, on_check, &s};
    cw_cases *t = cw_cases_new(1000, OFF, &k, &l);
    cw_event d = ev("d0", CW_EV_ARREST_DECIDED, at(6, 1, 10));
    d.decision = CW_DECISION_REJECT;
    apply(t, d);
    assert_string_equal(s.log[0], "check 2");
    cw_event p = ev("p", CW_EV_PROSECUTION_ACCEPTED, at(6, 2, 10));
    p.present |= CW_F_FAST, p.flags |= CW_F_FAST;
    apply(t, p);
    cw_cases_advance(t, cw_period_day(at(6, 10, 9), OFF));
    assert_string_equal(s.log[1], "1/1/on/2020-06-12");
    apply(t, ev("r1", CW_EV_PROSECUTION_RETURNED, at(6, 10, 10)));
    apply(t, ev("s1", CW_EV_PROSECUTION_RESUBMITTED, at(6, 11, 10)));
    apply(t, ev("r2", CW_EV_PROSECUTION_RETURNED, at(6, 12, 10)));
    apply(t, ev("s2", CW_EV_PROSECUTION_RESUBMITTED, at(6, 13, 10)));
    int before = s.n;
    apply(t, ev("r3", CW_EV_PROSECUTION_RETURNED, at(6, 14, 10)));
    int third = 0;
    for (int i = before; i < s.n; i++) third += strcmp(s.log[i], "check 0") == 0;
    assert_int_equal(third, 1);
    assert_int_equal(cw_cases_open(t), 1);
    cw_cases_advance(t, cw_period_day(at(7, 12, 10), OFF)); /* supplementary lights on */
    before = s.n;
    apply(t, ev("c", CW_EV_CASE_CLOSED, at(7, 13, 10)));
    assert_int_equal(cw_cases_open(t), 0);
    int offs = 0;
    for (int i = before; i < s.n; i++) offs += strstr(s.log[i], "/off/") != NULL;
    assert_int_equal(offs, 1); /* the supplementary clock's yellow */
    /* after closing: a non-post-trial event is a data error, an appeal is not */
    before = s.n;
    cw_case_facts f;
    cw_event late = ev("h", CW_EV_HEARING_HELD, at(7, 20, 10));
    assert_int_equal(cw_cases_apply(t, &late, &f), 2);
    cw_event appeal = ev("ap", CW_EV_TRIAL_APPEAL, at(7, 21, 10));
    assert_int_equal(cw_cases_apply(t, &appeal, &f), 2);
    assert_int_equal(s.n, before + 1);
    assert_string_equal(s.log[before], "check 3");
    assert_int_equal(cw_cases_open(t), 0);
    cw_cases_advance(t, cw_period_day(at(12, 31, 10), OFF)); /* frees what the heap still pointed at */
    cw_cases_free(t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(arrest_review_lights_come_on_on_their_days),
        cmocka_unit_test(prosecution_review_extends_pauses_and_restarts),
        cmocka_unit_test(data_checks_and_closing),
    };
    return cmocka_run_group_tests_name("statutory clocks", tests, NULL, NULL);
}
