/* Unit tests of the statutory clocks of cw_cases (INDICATORS.md §4) and
 * the data checks (§5), with a listener that records what it is told. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "../../daemon/cw_calendar.h"
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
        k.k[i].holidays_extend = 0; /* the tests of the calendar set it */
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

/* ---- The law, with the shipped calendar (INDICATORS.md §4) ------------ */

typedef struct law {
    seen s;
    cw_clock_rules k;
    cw_calendar *cal;
    cw_cases *t;
} law;

static void law_begin(law *w) {
    memset(w, 0, sizeof(*w));
    w->s.starts = 1;
    w->k = defaults();
    for (int i = 0; i < CW_NCLOCKS - 1; i++) w->k.k[i].holidays_extend = 1;
    char err[256];
    w->cal = cw_calendar_load("systemd/holidays-cn.conf", err, sizeof(err));
    if (!w->cal) fail_msg("%s", err);
    cw_case_listener l = {on_light, on_check, &w->s};
    w->t = cw_cases_new(1000, OFF, &w->k, &l);
    cw_cases_set_calendar(w->t, w->cal);
}

static void law_end(law *w) {
    cw_cases_free(w->t);
    cw_calendar_free(w->cal);
}

/* The last day a start logged ("k/0/on/<last day>"), of its last start. */
static const char *last_start(const seen *s, int clock) {
    char want[8];
    snprintf(want, sizeof(want), "%d/0/on/", clock);
    for (int i = s->n - 1; i >= 0; i--)
        if (strncmp(s->log[i], want, strlen(want)) == 0) return s->log[i] + strlen(want);
    return "";
}

static int logged(const seen *s, const char *line) {
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->log[i], line) == 0) return 1;
    return 0;
}

static cw_event flagged(const char *id, cw_event_type t, int64_t ts, unsigned flag) {
    cw_event e = ev(id, t, ts);
    e.present |= flag, e.flags |= flag;
    return e;
}

static void a_month_from_jan_31_ends_on_the_last_day_of_february(void **state) {
    (void)state;
    law w;
    law_begin(&w);
    /* in custody (arrested): art. 105 does not move it off the Saturday */
    apply(w.t, flagged("p", CW_EV_PROSECUTION_ACCEPTED, at(1, 31, 10), CW_F_ARRESTED));
    assert_string_equal(last_start(&w.s, CW_CLOCK_PROSECUTION_REVIEW), "2020-02-29");
    law_end(&w);
}

/* A month from a month's last day ends on the next month's last day
 * (docs/CALENDAR.md): from 02-29 of a leap year, 03-31; from 02-28 of it,
 * 03-28. */
static void a_month_from_feb_29_in_a_leap_year_ends_on_march_31(void **state) {
    (void)state;
    law w;
    law_begin(&w);
    apply(w.t, flagged("p", CW_EV_PROSECUTION_ACCEPTED, at(2, 29, 10), CW_F_ARRESTED));
    assert_string_equal(last_start(&w.s, CW_CLOCK_PROSECUTION_REVIEW), "2020-03-31");
    law_end(&w);
}

static void a_last_day_on_a_weekend_moves_to_monday_unless_in_custody(void **state) {
    (void)state;
    law w;
    law_begin(&w);
    apply(w.t, flagged("p", CW_EV_PROSECUTION_ACCEPTED, at(2, 28, 10), CW_F_ARRESTED));
    assert_string_equal(last_start(&w.s, CW_CLOCK_PROSECUTION_REVIEW), "2020-03-28"); /* a Saturday */
    apply(w.t, ev("p2", CW_EV_PROSECUTION_RESUBMITTED, at(2, 28, 11)));            /* not in custody */
    assert_string_equal(last_start(&w.s, CW_CLOCK_PROSECUTION_REVIEW), "2020-03-30");
    law_end(&w);
}

static void a_start_at_23_59_china_time_counts_from_the_next_day(void **state) {
    (void)state;
    law w;
    law_begin(&w);
    /* detained: 7 days, no move; 23:59 on 08-03 is still 08-03 */
    apply(w.t, flagged("a", CW_EV_ARREST_ACCEPTED, at(8, 3, 23) + 59 * 60000, CW_F_DETAINED));
    assert_string_equal(last_start(&w.s, CW_CLOCK_ARREST_REVIEW), "2020-08-10");
    law_end(&w);
}

static void a_start_at_00_00_china_time_does_not_count_its_day(void **state) {
    (void)state;
    law w;
    law_begin(&w);
    apply(w.t, flagged("a", CW_EV_ARREST_ACCEPTED, at(8, 4, 0), CW_F_DETAINED));
    assert_string_equal(last_start(&w.s, CW_CLOCK_ARREST_REVIEW), "2020-08-11");
    law_end(&w);
}

/* CPL art. 105: a non-custody review whose last day is 10-01 ends on the
 * first working day after the National Day holiday: 10-09. No red before
 * 10-10. */
static void a_last_day_on_national_day_moves_to_the_first_working_day(void **state) {
    (void)state;
    law w;
    law_begin(&w);
    apply(w.t, ev("p", CW_EV_PROSECUTION_ACCEPTED, at(9, 1, 10)));
    assert_string_equal(last_start(&w.s, CW_CLOCK_PROSECUTION_REVIEW), "2020-10-09");
    cw_cases_advance(w.t, cw_period_day(at(10, 9, 12), OFF));
    assert_false(logged(&w.s, "1/3/on/2020-10-09"));
    cw_cases_advance(w.t, cw_period_day(at(10, 10, 0), OFF));
    assert_true(logged(&w.s, "1/3/on/2020-10-09"));
    law_end(&w);
}

static void a_last_day_on_a_holiday_in_custody_does_not_move(void **state) {
    (void)state;
    law w;
    law_begin(&w);
    apply(w.t, flagged("p", CW_EV_PROSECUTION_ACCEPTED, at(9, 1, 10), CW_F_ARRESTED));
    assert_string_equal(last_start(&w.s, CW_CLOCK_PROSECUTION_REVIEW), "2020-10-01");
    cw_cases_advance(w.t, cw_period_day(at(10, 2, 0), OFF));
    assert_true(logged(&w.s, "1/3/on/2020-10-01"));
    law_end(&w);
}

/* 2020-10-10 is a Saturday worked for National Day (调休): a last day on
 * it stays. */
static void a_last_day_on_a_make_up_working_saturday_does_not_move(void **state) {
    (void)state;
    law w;
    law_begin(&w);
    apply(w.t, ev("a", CW_EV_ARREST_ACCEPTED, at(9, 25, 10))); /* 15 days: 10-10 */
    assert_string_equal(last_start(&w.s, CW_CLOCK_ARREST_REVIEW), "2020-10-10");
    law_end(&w);
}

/* 速裁: 10 days, and an extension makes it 15 days in all (CPL art. 172),
 * not 10 + 15. */
static void a_fast_review_runs_10_days_and_15_in_all_once_extended(void **state) {
    (void)state;
    law w;
    law_begin(&w);
    apply(w.t, flagged("p", CW_EV_PROSECUTION_ACCEPTED, at(6, 2, 10), CW_F_FAST | CW_F_ARRESTED));
    assert_string_equal(last_start(&w.s, CW_CLOCK_PROSECUTION_REVIEW), "2020-06-12");
    cw_cases_advance(w.t, cw_period_day(at(6, 10, 10), OFF)); /* yellow: 3 days left */
    assert_true(logged(&w.s, "1/1/on/2020-06-12"));
    apply(w.t, ev("x", CW_EV_PROSECUTION_EXTENDED, at(6, 11, 10)));
    assert_true(logged(&w.s, "1/1/off/2020-06-12"));
    cw_cases_advance(w.t, cw_period_day(at(6, 15, 10), OFF));
    assert_true(logged(&w.s, "1/1/on/2020-06-17")); /* 06-02 + 15 days */
    law_end(&w);
}

/* 退回补充侦查 twice: each return stops the review and starts a month of
 * supplementary investigation; each resubmission restarts the review in
 * full from its own day. */
static void two_returns_each_end_with_the_review_restarted_in_full(void **state) {
    (void)state;
    law w;
    law_begin(&w);
    apply(w.t, flagged("p", CW_EV_PROSECUTION_ACCEPTED, at(3, 2, 10), CW_F_ARRESTED));
    assert_string_equal(last_start(&w.s, CW_CLOCK_PROSECUTION_REVIEW), "2020-04-02");
    apply(w.t, ev("r1", CW_EV_PROSECUTION_RETURNED, at(3, 20, 10)));
    assert_string_equal(last_start(&w.s, CW_CLOCK_SUPPLEMENTARY), "2020-04-20");
    apply(w.t, flagged("s1", CW_EV_PROSECUTION_RESUBMITTED, at(4, 15, 10), CW_F_ARRESTED));
    assert_string_equal(last_start(&w.s, CW_CLOCK_PROSECUTION_REVIEW), "2020-05-15");
    apply(w.t, ev("r2", CW_EV_PROSECUTION_RETURNED, at(5, 6, 10)));
    assert_string_equal(last_start(&w.s, CW_CLOCK_SUPPLEMENTARY), "2020-06-08"); /* Saturday 06-06 moves */
    apply(w.t, flagged("s2", CW_EV_PROSECUTION_RESUBMITTED, at(6, 1, 10), CW_F_ARRESTED));
    assert_string_equal(last_start(&w.s, CW_CLOCK_PROSECUTION_REVIEW), "2020-07-01");
    /* no light of the first two reviews is left on */
    cw_cases_advance(w.t, cw_period_day(at(6, 29, 10), OFF));
    assert_true(logged(&w.s, "1/1/on/2020-07-01"));
    assert_false(logged(&w.s, "1/1/on/2020-05-15"));
    law_end(&w);
}

static void the_four_reconsideration_clocks_run_from_their_event_to_its_decision(void **state) {
    (void)state;
    law w;
    law_begin(&w);
    apply(w.t, ev("a", CW_EV_ARREST_RECONSIDERATION, at(7, 6, 10)));
    apply(w.t, ev("b", CW_EV_ARREST_REVIEW, at(7, 6, 11)));
    apply(w.t, ev("c", CW_EV_NONPROSECUTION_RECONSIDERATION, at(7, 6, 12)));
    apply(w.t, ev("d", CW_EV_NONPROSECUTION_REVIEW, at(7, 6, 13)));
    assert_string_equal(last_start(&w.s, CW_CLOCK_ARREST_RECONSIDERATION), "2020-07-13");         /* 7 days */
    assert_string_equal(last_start(&w.s, CW_CLOCK_ARREST_HIGHER_REVIEW), "2020-07-21");           /* 15 days */
    assert_string_equal(last_start(&w.s, CW_CLOCK_NONPROSECUTION_RECONSIDERATION), "2020-08-05"); /* 30 days */
    assert_string_equal(last_start(&w.s, CW_CLOCK_NONPROSECUTION_HIGHER_REVIEW), "2020-08-05");
    cw_cases_advance(w.t, cw_period_day(at(7, 14, 0), OFF));
    assert_true(logged(&w.s, "5/3/on/2020-07-13"));
    apply(w.t, ev("a2", CW_EV_ARREST_RECONSIDERATION_DECIDED, at(7, 15, 10)));
    assert_true(logged(&w.s, "5/3/off/2020-07-13"));
    apply(w.t, ev("b2", CW_EV_ARREST_REVIEW_DECIDED, at(7, 15, 11)));
    apply(w.t, ev("c2", CW_EV_NONPROSECUTION_RECONSIDERATION_DECIDED, at(7, 15, 12)));
    apply(w.t, ev("d2", CW_EV_NONPROSECUTION_REVIEW_DECIDED, at(7, 15, 13)));
    cw_cases_advance(w.t, cw_period_day(at(12, 31, 0), OFF));
    assert_false(logged(&w.s, "6/3/on/2020-07-21")); /* decided in time: never red */
    assert_false(logged(&w.s, "7/3/on/2020-08-05"));
    law_end(&w);
}

/* Entered 8 days after it started, a detained arrest review is already
 * overdue: only the red comes on, at once, with the true day count. */
static void a_clock_started_past_its_end_shows_only_red_at_once(void **state) {
    (void)state;
    law w;
    law_begin(&w);
    cw_cases_advance(w.t, cw_period_day(at(8, 5, 9), OFF)); /* today (live: the wall clock) */
    int before = w.s.n;
    cw_event a = flagged("a", CW_EV_ARREST_ACCEPTED, at(7, 27, 10), CW_F_DETAINED);
    cw_case_facts f;
    assert_int_equal(cw_cases_apply(w.t, &a, &f), 0);
    assert_int_equal(w.s.n, before + 2); /* the start, and one light */
    assert_string_equal(w.s.log[before + 1], "0/3/on/2020-08-03");
    assert_int_equal(w.s.days_left, -1); /* due 08-04, today 08-05 */
    law_end(&w);
}

/* Some provinces count 信访 replies in working days: 7 working days from
 * Monday 2020-09-28 skip the weekend and National Day and count the
 * make-up Saturday 10-10. */
static void a_clock_in_working_days_skips_rest_days_and_counts_make_up_days(void **state) {
    (void)state;
    law w;
    law_begin(&w);
    w.k.k[CW_CLOCK_LETTER_PROCEDURAL].days = 0;
    w.k.k[CW_CLOCK_LETTER_PROCEDURAL].working_days = 7;
    cw_cases_set_clocks(w.t, &w.k);
    apply(w.t, ev("l", CW_EV_LETTER_RECEIVED, at(9, 28, 10)));
    assert_string_equal(last_start(&w.s, CW_CLOCK_LETTER_PROCEDURAL), "2020-10-14");
    law_end(&w);
}

/* Which case a light change was of, in order ("case/light/on|off"). */
static void on_light_of(const cw_light *l, void *data) {
    seen *s = data;
    if (l->light == CW_LIGHT_NONE || s->n >= 64) return;
    snprintf(s->log[s->n++], 64, "%s/%d/%s", l->case_id, l->light, l->firing ? "on" : "off");
}

/* Three arrest reviews accepted the same day, in the order c, a, b: their
 * yellows come on together on 08-06 and are told in that order, also
 * when the day is judged one case a call (a live midnight's slices). A
 * clock of 3,000 days waits past the 1,024 days the light queue keeps a
 * bucket for, and still comes on the day it is due. */
static void lights_of_one_day_come_in_the_order_their_clocks_were_scheduled(void **state) {
    (void)state;
    seen s = {0};
    cw_clock_rules k = defaults();
    k.k[CW_CLOCK_LETTER_SUBSTANTIVE].months = 0;
    k.k[CW_CLOCK_LETTER_SUBSTANTIVE].days = 3000;
    cw_case_listener l = {on_light_of, on_check, &s};
    cw_cases *t = cw_cases_new(1000, OFF, &k, &l);
    const char *order[] = {"c", "a", "b"};
    for (int i = 0; i < 3; i++) {
        cw_event e = cw_test_event(order[i], order[i], "410923", CW_EV_ARREST_ACCEPTED, at(7, 25, 9 + i));
        apply(t, e);
    }
    /* accepted 07-25: 15 days end 08-09; yellow with 3 days left: 08-07 */
    int64_t yellow = cw_period_day(at(8, 7, 0), OFF);
    assert_int_equal(cw_cases_next_day(t), yellow);
    assert_int_equal(cw_cases_advance_some(t, yellow, 1), 1);
    assert_int_equal(s.n, 1);
    assert_int_equal(cw_cases_next_day(t), yellow); /* the rest of the day is pending */
    assert_int_equal(cw_cases_advance_some(t, yellow, 1), 1);
    assert_int_equal(cw_cases_advance_some(t, yellow, 1), 0);
    assert_int_equal(s.n, 3);
    assert_string_equal(s.log[0], "c/1/on");
    assert_string_equal(s.log[1], "a/1/on");
    assert_string_equal(s.log[2], "b/1/on");
    /* a letter whose substantive reply has 3,000 days */
    s.n = 0;
    cw_event letter = cw_test_event("x", "x", "410923", CW_EV_LETTER_RECEIVED, at(8, 7, 10));
    apply(t, letter);
    cw_event decided = cw_test_event("d", "c", "410923", CW_EV_ARREST_DECIDED, at(8, 7, 11));
    decided.decision = CW_DECISION_APPROVE;
    apply(t, decided);
    s.n = 0;
    int64_t start = cw_period_day(at(8, 7, 10), OFF);
    int64_t due = start + 1 + 3000; /* the start day not counted */
    cw_cases_advance(t, start + 1500);
    for (int i = 0; i < s.n; i++) assert_null(strstr(s.log[i], "x/1"));
    s.n = 0;
    cw_cases_advance(t, due - 4);
    for (int i = 0; i < s.n; i++) assert_null(strstr(s.log[i], "x/"));
    cw_cases_advance(t, due - 3);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.log[0], "x/1/on");
    cw_cases_free(t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(arrest_review_lights_come_on_on_their_days),
        cmocka_unit_test(prosecution_review_extends_pauses_and_restarts),
        cmocka_unit_test(data_checks_and_closing),
        cmocka_unit_test(a_month_from_jan_31_ends_on_the_last_day_of_february),
        cmocka_unit_test(a_month_from_feb_29_in_a_leap_year_ends_on_march_31),
        cmocka_unit_test(a_last_day_on_a_weekend_moves_to_monday_unless_in_custody),
        cmocka_unit_test(a_start_at_23_59_china_time_counts_from_the_next_day),
        cmocka_unit_test(a_start_at_00_00_china_time_does_not_count_its_day),
        cmocka_unit_test(a_last_day_on_national_day_moves_to_the_first_working_day),
        cmocka_unit_test(a_last_day_on_a_holiday_in_custody_does_not_move),
        cmocka_unit_test(a_last_day_on_a_make_up_working_saturday_does_not_move),
        cmocka_unit_test(a_fast_review_runs_10_days_and_15_in_all_once_extended),
        cmocka_unit_test(two_returns_each_end_with_the_review_restarted_in_full),
        cmocka_unit_test(the_four_reconsideration_clocks_run_from_their_event_to_its_decision),
        cmocka_unit_test(a_clock_started_past_its_end_shows_only_red_at_once),
        cmocka_unit_test(a_clock_in_working_days_skips_rest_days_and_counts_make_up_days),
        cmocka_unit_test(lights_of_one_day_come_in_the_order_their_clocks_were_scheduled),
    };
    return cmocka_run_group_tests_name("statutory clocks", tests, NULL, NULL);
}
