/* Unit tests of the alert rules (cw_rules) without Redis: counters in,
 * alert state changes out, recorded by a callback. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../daemon/cw_cases.h"
#include "../../daemon/cw_ind.h"
#include "../../daemon/cw_period.h"
#include "../../daemon/cw_rules.h"
#include "../integration/cw_testredis.h"

#define OFF 480

typedef struct seen {
    char log[64][160];
    int n;
    char message[1000], level[16], label[64], dept[64], pros[64];
    int rank, peers;
} seen;

/* "+id" for a firing alert, "-id" for a resolution; the last alert's
 * words kept. */
static void on_alert(const cw_alert *a, void *data) {
    seen *s = data;
    if (s->n < 64) snprintf(s->log[s->n++], 160, "%c%s", a->firing ? '+' : '-', a->id);
    snprintf(s->message, sizeof(s->message), "%s", a->message);
    snprintf(s->level, sizeof(s->level), "%s", a->level);
    snprintf(s->label, sizeof(s->label), "%s", a->label);
    snprintf(s->dept, sizeof(s->dept), "%s", a->dept ? a->dept : "");
    snprintf(s->pros, sizeof(s->pros), "%s", a->pros ? a->pros : "");
    s->rank = a->rank, s->peers = a->peers;
}

static const char *const YELLOW = "[rule ratio.yellow]\n"
                                  "kind = threshold\nscope = unit\nindicator = case_item_ratio\nperiod = quarter\n"
                                  "compare = >\nthreshold = 1.15\nresolve = 1.10\nmin_sample = 20\n"
                                  "level = yellow\nlabel = 黄牌预警\n";
static const char *const RED = "[rule ratio.red]\nkind = persistence\nof = ratio.yellow\nperiods = 2\n"
                               "level = red\nlabel = 红牌预警\n";

/* Counters of a case_item_ratio of (cases + extra) / cases. */
static void ratio(uint64_t *c, uint64_t cases, uint64_t extra) {
    memset(c, 0, 64 * sizeof(*c));
    c[cw_ind_counter_index("cases")] = cases;
    c[cw_ind_counter_index("extra_items")] = extra;
}

static void a_threshold_fires_once_and_resolves_only_past_its_resolve_value(void **state) {
    (void)state;
    cw_config *cfg = cw_test_config(YELLOW);
    char err[256];
    cw_rules *r = cw_rules_new(cfg, err, sizeof(err));
    assert_non_null(r);
    seen s = {0};
    uint64_t c[64];
    ratio(c, 100, 20); /* 1.20 > 1.15 */
    cw_rules_eval(r, "unit:410923", "2020-Q3", c, 1, on_alert, &s);
    cw_rules_eval(r, "unit:410923", "2020-Q3", c, 2, on_alert, &s); /* the same state: not again */
    assert_int_equal(s.n, 1);
    assert_string_equal(s.log[0], "+ratio.yellow/unit:410923/2020-Q3");
    assert_int_equal(cw_rules_firing(r), 1);
    ratio(c, 100, 12); /* 1.12: under the threshold, above resolve: stays firing */
    cw_rules_eval(r, "unit:410923", "2020-Q3", c, 3, on_alert, &s);
    assert_int_equal(s.n, 1);
    ratio(c, 100, 9); /* 1.09: past resolve */
    cw_rules_eval(r, "unit:410923", "2020-Q3", c, 4, on_alert, &s);
    assert_int_equal(s.n, 2);
    assert_string_equal(s.log[1], "-ratio.yellow/unit:410923/2020-Q3");
    assert_int_equal(cw_rules_firing(r), 0);
    /* another period kind or scope level is not this rule's */
    ratio(c, 100, 50);
    cw_rules_eval(r, "unit:410923", "2020-07", c, 5, on_alert, &s);
    cw_rules_eval(r, "dept:410923:第一检察部", "2020-Q3", c, 5, on_alert, &s);
    assert_int_equal(s.n, 2);
    cw_rules_free(r);
    cw_config_free(cfg);
}

static void a_threshold_is_silent_below_its_minimum_sample(void **state) {
    (void)state;
    cw_config *cfg = cw_test_config(YELLOW);
    char err[256];
    cw_rules *r = cw_rules_new(cfg, err, sizeof(err));
    seen s = {0};
    uint64_t c[64];
    ratio(c, 19, 19); /* 2.0, but 19 cases < min_sample 20 */
    cw_rules_eval(r, "unit:410923", "2020-Q3", c, 1, on_alert, &s);
    assert_int_equal(s.n, 0);
    ratio(c, 20, 20);
    cw_rules_eval(r, "unit:410923", "2020-Q3", c, 2, on_alert, &s);
    assert_int_equal(s.n, 1);
    cw_rules_free(r);
    cw_config_free(cfg);
}

static void persistence_fires_on_the_second_consecutive_period_only(void **state) {
    (void)state;
    char ini[2048];
    snprintf(ini, sizeof(ini), "%s%s", YELLOW, RED);
    cw_config *cfg = cw_test_config(ini);
    char err[256];
    cw_rules *r = cw_rules_new(cfg, err, sizeof(err));
    assert_non_null(r);
    seen s = {0};
    uint64_t c[64];
    ratio(c, 100, 30);
    /* Q1 and Q3 are not consecutive: no red */
    cw_rules_eval(r, "unit:410923", "2020-Q1", c, 1, on_alert, &s);
    cw_rules_eval(r, "unit:410923", "2020-Q3", c, 2, on_alert, &s);
    assert_int_equal(s.n, 2);
    assert_string_equal(s.log[0], "+ratio.yellow/unit:410923/2020-Q1");
    assert_string_equal(s.log[1], "+ratio.yellow/unit:410923/2020-Q3");
    /* Q4 follows Q3: red for Q4 */
    cw_rules_eval(r, "unit:410923", "2020-Q4", c, 3, on_alert, &s);
    assert_int_equal(s.n, 4);
    assert_string_equal(s.log[2], "+ratio.yellow/unit:410923/2020-Q4");
    assert_string_equal(s.log[3], "+ratio.red/unit:410923/2020-Q4");
    /* Q4 recovers: its yellow and red resolve */
    ratio(c, 100, 5);
    cw_rules_eval(r, "unit:410923", "2020-Q4", c, 4, on_alert, &s);
    assert_int_equal(s.n, 6);
    assert_string_equal(s.log[4], "-ratio.yellow/unit:410923/2020-Q4");
    assert_string_equal(s.log[5], "-ratio.red/unit:410923/2020-Q4");
    cw_rules_free(r);
    cw_config_free(cfg);
}

/* Counts `cases` arrest reviews and `extra` returns for one scope in
 * July 2020: a case_item_ratio of (cases + extra) / cases. */
static void feed(cw_ind *x, const char *unit, const char *dept, int cases, int extra) {
    static int seq;
    for (int i = 0; i < cases + extra; i++) {
        char id[32], cs[32];
        snprintf(id, sizeof(id), "e%d", ++seq);
        snprintf(cs, sizeof(cs), "c%d", seq);
        cw_event ev = cw_test_event(id, cs, unit, i < cases ? CW_EV_ARREST_ACCEPTED : CW_EV_PROSECUTION_RETURNED,
                                    cw_period_local_midnight(2020, 7, 10, OFF));
        if (dept) snprintf(ev.dept, sizeof(ev.dept), "%s", dept);
        cw_case_facts f;
        memset(&f, 0, sizeof(f));
        assert_int_equal(cw_ind_apply(x, &ev, &f), 0);
    }
}

static void rank_bottom_names_the_worst_department_of_each_unit(void **state) {
    (void)state;
    cw_config *cfg = cw_test_config("[rule rank.bottom]\nkind = rank\nscope = dept\npeers = unit\n"
                               "indicator = case_item_ratio\nperiod = quarter\ncompare = >\nbottom = 1\n"
                               "min_sample = 20\nlevel = red\nlabel = 红牌预警\n");
    char err[256];
    cw_rules *r = cw_rules_new(cfg, err, sizeof(err));
    assert_non_null(r);
    cw_ind *x = cw_ind_new(OFF, 30, 8);
    feed(x, "410923", "第一检察部", 20, 2);  /* 1.10 */
    feed(x, "410923", "第二检察部", 20, 10); /* 1.50: the worst */
    feed(x, "410923", "第三检察部", 10, 10); /* 2.00, but a small sample: not ranked */
    feed(x, "410922", "第一检察部", 20, 4);  /* 1.20: the worst of its unit */
    feed(x, "410922", "第二检察部", 20, 1);  /* 1.05 */
    feed(x, "410924", "第一检察部", 20, 9);  /* alone in its unit: no peers, not ranked */
    seen s = {0};
    cw_rules_close_period(r, x, "2020-Q3", 1, on_alert, &s);
    assert_int_equal(s.n, 2);
    assert_string_equal(s.log[0], "+rank.bottom/dept:410922:第一检察部/2020-Q3");
    assert_string_equal(s.log[1], "+rank.bottom/dept:410923:第二检察部/2020-Q3");
    /* the position and how many were compared (the small sample was not) */
    assert_int_equal(s.rank, 2);
    assert_int_equal(s.peers, 2);
    assert_non_null(strstr(s.message, "排名第2（共2个），末位"));
    cw_ind_free(x);
    cw_rules_free(r);
    cw_config_free(cfg);
}

static void rank_region_ranks_city_units_and_county_units_apart(void **state) {
    (void)state;
    cw_config *cfg = cw_test_config("[rule rank.region]\nkind = rank\nscope = unit\npeers = province\n"
                               "indicator = case_item_ratio\nperiod = month\ncompare = >\nbottom_city = 1\n"
                               "bottom_county_fraction = 0.5\nmin_sample = 20\nlevel = yellow\nlabel = 黄牌预警\n");
    char err[256];
    cw_rules *r = cw_rules_new(cfg, err, sizeof(err));
    assert_non_null(r);
    cw_ind *x = cw_ind_new(OFF, 30, 8);
    feed(x, "410900", NULL, 20, 8);  /* city 1.40: the worse city */
    feed(x, "410800", NULL, 20, 1);  /* city 1.05 */
    feed(x, "410923", NULL, 20, 20); /* county 2.00: worse than any city, ranked among counties */
    feed(x, "410922", NULL, 20, 2);  /* county 1.10 */
    feed(x, "410000", NULL, 20, 19); /* the province's own 院: ranked neither among cities nor counties */
    seen s = {0};
    cw_rules_close_period(r, x, "2020-07", 1, on_alert, &s);
    assert_int_equal(s.n, 2);
    assert_string_equal(s.log[0], "+rank.region/unit:410900/2020-07");
    assert_string_equal(s.log[1], "+rank.region/unit:410923/2020-07");
    cw_ind_free(x);
    cw_rules_free(r);
    cw_config_free(cfg);
}

/* A crash lost the process that published a firing alert after the last
 * snapshot: read back from the log, it is the state judged against. */
static void a_state_read_back_after_a_crash_is_what_later_changes_are_judged_against(void **state) {
    (void)state;
    cw_config *cfg = cw_test_config(YELLOW);
    char err[256];
    cw_rules *r = cw_rules_new(cfg, err, sizeof(err));
    seen s = {0};
    uint64_t c[64];
    cw_rules_reconcile(r, "ratio.yellow/unit:410923/2020-Q3", 1);
    cw_rules_reconcile(r, "nosuchrule/unit:410923/2020-Q3", 1); /* ignored */
    assert_int_equal(cw_rules_firing(r), 1);
    ratio(c, 100, 30); /* still over: nothing new to say */
    cw_rules_eval(r, "unit:410923", "2020-Q3", c, 1, on_alert, &s);
    assert_int_equal(s.n, 0);
    ratio(c, 100, 0); /* recovered: the resolution subscribers need */
    cw_rules_eval(r, "unit:410923", "2020-Q3", c, 2, on_alert, &s);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.log[0], "-ratio.yellow/unit:410923/2020-Q3");
    cw_rules_free(r);
    cw_config_free(cfg);
}

/* SIGHUP: alerts of rules that stay keep their state (no second firing);
 * alerts of rules that are gone resolve. */
static void a_reload_keeps_the_state_of_rules_that_stay_and_resolves_the_rest(void **state) {
    (void)state;
    char ini[2048];
    snprintf(ini, sizeof(ini), "%s[rule plea.yellow]\nkind = threshold\nscope = unit\nindicator = plea_rate\n"
                               "period = quarter\ncompare = <\nthreshold = 0.8\nmin_sample = 1\nlevel = yellow\n"
                               "label = 黄牌预警\n",
             YELLOW);
    cw_config *cfg = cw_test_config(ini);
    char err[256];
    cw_rules *old = cw_rules_new(cfg, err, sizeof(err));
    assert_non_null(old);
    seen s = {0};
    uint64_t c[64];
    ratio(c, 100, 30);
    c[cw_ind_counter_index("decided_persons")] = 10; /* plea_rate 0 of 10 */
    cw_rules_eval(old, "unit:410923", "2020-Q3", c, 1, on_alert, &s);
    assert_int_equal(s.n, 2);
    cw_config *ncfg = cw_test_config(YELLOW); /* plea.yellow removed */
    cw_rules *nr = cw_rules_new(ncfg, err, sizeof(err));
    cw_rules_adopt(nr, old, 2, on_alert, &s);
    cw_rules_free(old);
    assert_int_equal(s.n, 3);
    assert_string_equal(s.log[2], "-plea.yellow/unit:410923/2020-Q3");
    cw_rules_eval(nr, "unit:410923", "2020-Q3", c, 3, on_alert, &s);
    assert_int_equal(s.n, 3); /* ratio.yellow still firing: not raised again */
    assert_int_equal(cw_rules_firing(nr), 1);
    cw_rules_free(nr);
    cw_config_free(ncfg);
    cw_config_free(cfg);
}

static void a_rule_naming_an_unknown_indicator_is_refused_with_where_it_was_set(void **state) {
    (void)state;
    /* the configuration refuses it as it is read, naming every indicator */
    const char *ini = "[rule x]\nkind = threshold\nscope = unit\nindicator = nosuch\nperiod = quarter\n"
                      "compare = >\nthreshold = 1\nlevel = yellow\nlabel = x\n";
    cw_config *cfg = cw_config_new();
    FILE *f = fmemopen((void *)ini, strlen(ini), "r");
    char err[1024] = "";
    assert_int_equal(cw_config_load_stream(cfg, f, "test.conf", err, sizeof(err)), -1);
    fclose(f);
    assert_non_null(strstr(err, "nosuch"));
    assert_non_null(strstr(err, "test.conf:4"));
    assert_non_null(strstr(err, "letter_substantive_ontime_rate"));
    cw_config_free(cfg);
}

static const char *const CLOCKS = "[rule deadline.arrest_review]\nkind = deadline\nclock = arrest_review\n"
                                  "days = 15\nwarn_days = 3\nurgent_days = 1\n"
                                  "[rule stale.case]\nkind = stale\ndays = 180\nlevel = yellow\nlabel = 挂案预警\n"
                                  "[units]\n410923 = 南乐县人民检察院\n"
                                  "[prosecutors]\n410923/P017 = 张三\n";

static void a_deadline_alert_names_the_department_and_prosecutor_who_must_act(void **state) {
    (void)state;
    cw_config *cfg = cw_test_config(CLOCKS);
    char err[256];
    cw_rules *r = cw_rules_new(cfg, err, sizeof(err));
    assert_non_null(r);
    seen s = {0};
    cw_light l = {.clock = CW_CLOCK_ARREST_REVIEW, .light = CW_LIGHT_YELLOW, .firing = 1, .unit = "410923",
                  .case_id = "c1", .dept = "第一检察部", .pros = "P017",
                  .due_day = cw_period_day(cw_period_local_midnight(2020, 8, 4, OFF), OFF), .days_left = 2, .ts = 1};
    cw_rules_light(r, &l, on_alert, &s);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.dept, "第一检察部");
    assert_string_equal(s.pros, "P017");
    assert_string_equal(s.message, "南乐县人民检察院 第一检察部 检察官张三 承办的 案件c1 审查逮捕期限将于 2020-08-03 "
                                   "24时届满，剩余2天，期限预警");
    /* an unnamed prosecutor is called by the id */
    l.pros = "P018";
    cw_rules_light(r, &l, on_alert, &s);
    assert_non_null(strstr(s.message, "检察官P018"));
    cw_rules_free(r);
    cw_config_free(cfg);
}

static void a_stale_case_rule_keeps_its_own_level_and_label(void **state) {
    (void)state;
    cw_config *cfg = cw_test_config(CLOCKS);
    char err[256];
    cw_rules *r = cw_rules_new(cfg, err, sizeof(err));
    seen s = {0};
    cw_light l = {.clock = CW_CLOCK_STALE, .light = CW_LIGHT_RED, .firing = 1, .unit = "410923", .case_id = "c1",
                  .dept = "", .pros = "", .due_day = 18500, .days_left = 0, .ts = 1};
    cw_rules_light(r, &l, on_alert, &s);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.level, "yellow");
    assert_string_equal(s.label, "挂案预警");
    cw_rules_free(r);
    cw_config_free(cfg);
}

/* What a replay holds raw is worded later by the parts of cw_rules_light:
 * together they count and word a light as it does, and the id alone is
 * the alert's id. */
static void a_light_worded_in_parts_is_what_cw_rules_light_reports(void **state) {
    (void)state;
    cw_config *cfg = cw_test_config(CLOCKS);
    char err[256];
    cw_rules *whole = cw_rules_new(cfg, err, sizeof(err)), *parts = cw_rules_new(cfg, err, sizeof(err));
    assert_non_null(whole);
    assert_non_null(parts);
    int64_t due = cw_period_day(cw_period_local_midnight(2020, 8, 4, OFF), OFF);
    const cw_light lights[] = {
        {CW_CLOCK_ARREST_REVIEW, CW_LIGHT_YELLOW, 1, "410923", "c:1 %", "第一检察部", "P017", due, 3, 5},
        {CW_CLOCK_ARREST_REVIEW, CW_LIGHT_YELLOW, 0, "410923", "c:1 %", "第一检察部", "P017", due, 1, 6},
        {CW_CLOCK_ARREST_REVIEW, CW_LIGHT_ORANGE, 1, "410923", "c:1 %", "", "P018", due, 1, 6},
        {CW_CLOCK_ARREST_REVIEW, CW_LIGHT_RED, 1, "410923", "c2", "", "", due, -4, 7},
        {CW_CLOCK_STALE, CW_LIGHT_RED, 1, "410900", "c3", "", "", due, 0, 8},
        {CW_CLOCK_STALE, CW_LIGHT_RED, 0, "410900", "c3", "", "", due, 0, 9},
    };
    for (size_t i = 0; i < sizeof(lights) / sizeof(lights[0]); i++) {
        seen a = {0}, b = {0};
        cw_rules_light(whole, &lights[i], on_alert, &a);
        assert_int_equal(cw_rules_light_count(parts, &lights[i]), 1);
        cw_rules_light_words(parts, &lights[i], on_alert, &b);
        assert_int_equal(a.n, 1);
        assert_int_equal(b.n, 1);
        assert_string_equal(a.log[0], b.log[0]);
        assert_string_equal(a.message, b.message);
        assert_string_equal(a.level, b.level);
        assert_string_equal(a.label, b.label);
        assert_string_equal(a.dept, b.dept);
        assert_string_equal(a.pros, b.pros);
        char id[CW_LIGHT_ID_MAX];
        size_t len = cw_rules_light_id(parts, &lights[i], id);
        assert_int_equal(len, strlen(id));
        assert_string_equal(id, a.log[0] + 1);
        assert_int_equal(cw_rules_firing(parts), cw_rules_firing(whole));
    }
    assert_int_equal(cw_rules_firing(parts), 2); /* the orange and the red of arrest_review */
    /* a clock no rule words: nothing counted, no id */
    cw_light none = {CW_CLOCK_LETTER_PROCEDURAL, CW_LIGHT_YELLOW, 1, "410923", "c4", "", "", due, 2, 9};
    char id[CW_LIGHT_ID_MAX];
    assert_int_equal(cw_rules_light_count(parts, &none), 0);
    assert_int_equal(cw_rules_light_id(parts, &none, id), 0);
    assert_int_equal(cw_rules_firing(parts), 2);
    cw_rules_free(whole);
    cw_rules_free(parts);
    cw_config_free(cfg);
}

/* 1.1515 against 1.15 must not read "1:1.15，高于 1:1.15". */
static void a_message_shows_the_digits_that_make_its_comparison_true(void **state) {
    (void)state;
    cw_config *cfg = cw_test_config(YELLOW);
    char err[256];
    cw_rules *r = cw_rules_new(cfg, err, sizeof(err));
    seen s = {0};
    uint64_t c[64];
    ratio(c, 2000, 303); /* 1.1515 */
    cw_rules_eval(r, "unit:410923", "2020-Q3", c, 1, on_alert, &s);
    assert_int_equal(s.n, 1);
    if (!strstr(s.message, "1:1.151，高于 1:1.150")) fail_msg("%s", s.message);
    cw_rules_free(r);
    cw_config_free(cfg);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_threshold_fires_once_and_resolves_only_past_its_resolve_value),
        cmocka_unit_test(a_threshold_is_silent_below_its_minimum_sample),
        cmocka_unit_test(persistence_fires_on_the_second_consecutive_period_only),
        cmocka_unit_test(rank_bottom_names_the_worst_department_of_each_unit),
        cmocka_unit_test(rank_region_ranks_city_units_and_county_units_apart),
        cmocka_unit_test(a_state_read_back_after_a_crash_is_what_later_changes_are_judged_against),
        cmocka_unit_test(a_reload_keeps_the_state_of_rules_that_stay_and_resolves_the_rest),
        cmocka_unit_test(a_rule_naming_an_unknown_indicator_is_refused_with_where_it_was_set),
        cmocka_unit_test(a_deadline_alert_names_the_department_and_prosecutor_who_must_act),
        cmocka_unit_test(a_stale_case_rule_keeps_its_own_level_and_label),
        cmocka_unit_test(a_light_worded_in_parts_is_what_cw_rules_light_reports),
        cmocka_unit_test(a_message_shows_the_digits_that_make_its_comparison_true),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
