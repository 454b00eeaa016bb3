/* Unit tests of the engine (cw_engine) and the dead-letter queue
 * (cw_dead) without Redis: a small stream in, the exact alert
 * transitions, hash rows and verdicts out. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../daemon/cw_dead.h"
#include "../../daemon/cw_engine.h"
#include "../../daemon/cw_period.h"
#include "../../daemon/cw_snap.h"
#include "../integration/cw_testredis.h"

#define OFF 480

typedef struct seen {
    char log[64][200];
    int n;
    char rows[64][200]; /* "scope period cases=N" */
    int nrows;
} seen;

static void on_alert(const cw_alert *a, void *data) {
    seen *s = data;
    if (s->n < 64) snprintf(s->log[s->n++], 200, "%c%s", a->firing ? '+' : '-', a->id);
}

static void on_row(const cw_row *r, void *data) {
    seen *s = data;
    const char *cases = "?";
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->fields[i], "cases") == 0) cases = r->values[i];
    if (s->nrows < 64) snprintf(s->rows[s->nrows++], 200, "%s %s cases=%s", r->scope, r->period, cases);
}

static int has_row(const seen *s, const char *row) {
    for (int i = 0; i < s->nrows; i++)
        if (strcmp(s->rows[i], row) == 0) return 1;
    return 0;
}

static const char *const RULES = "[rule deadline.arrest_review]\nkind = deadline\nclock = arrest_review\n"
                                 "days = 15\ndays_detained = 7\nwarn_days = 3\nurgent_days = 1\n"
                                 "label = 期限预警\noverdue_label = 超期预警\n"
                                 "[rule ratio.yellow]\nkind = threshold\nscope = unit\nindicator = case_item_ratio\n"
                                 "period = quarter\ncompare = >\nthreshold = 1.15\nmin_sample = 1\n"
                                 "level = yellow\nlabel = 黄牌预警\n";

/* 2020-mm-dd hh:00 China time */
static int64_t at(int m, int d, int h) {
    return cw_period_local_midnight(2020, m, d, OFF) + (int64_t)h * 3600000LL;
}

static cw_event event(const char *id, const char *case_id, cw_event_type t, int64_t ts) {
    cw_event ev = cw_test_event(id, case_id, "410923", t, ts);
    snprintf(ev.dept, sizeof(ev.dept), "第一检察部");
    snprintf(ev.pros, sizeof(ev.pros), "P1");
    return ev;
}

static cw_verdict apply(cw_engine *e, cw_event ev) {
    char why[200];
    return cw_engine_apply(e, &ev, why, sizeof(why));
}

/* One detained arrest review, its redelivery and its decision: one row
 * per scope and period it touched, each light of its clock on its day,
 * all off when it is decided. */
static void an_engine_hands_out_the_rows_and_transitions_of_a_small_stream(void **state) {
    (void)state;
    cw_config *cfg = cw_test_config(RULES);
    seen s = {0};
    cw_engine_out out = {on_alert, &s};
    char err[256];
    cw_engine *e = cw_engine_new(cfg, &out, err, sizeof(err));
    assert_non_null(e);
    cw_engine_follow_events(e, 0, 0); /* live: only advance moves the clock */
    cw_event a = event("e1", "c1", CW_EV_ARREST_ACCEPTED, at(7, 27, 10));
    a.present |= CW_F_DETAINED, a.flags |= CW_F_DETAINED;
    assert_int_equal(apply(e, a), CW_APPLIED);
    assert_int_equal(apply(e, a), CW_DUPLICATE);
    assert_int_equal(cw_engine_judge(e, on_row, &s, 0), 24); /* 6 scopes x month, quarter, year, 30 days */
    assert_true(has_row(&s, "unit:410923 2020-Q3 cases=1"));
    assert_true(has_row(&s, "pros:410923:P1 2020-07 cases=1"));
    assert_true(has_row(&s, "dept:410923:第一检察部 rolling-30d cases=1"));
    assert_true(has_row(&s, "region:4109 2020 cases=1"));
    assert_true(has_row(&s, "nation 2020-Q3 cases=1"));
    assert_int_equal(cw_engine_judge(e, on_row, &s, 0), 0); /* nothing changed since */
    /* 7 days, the start day not counted: the last day is 08-03 */
    cw_engine_advance(e, at(7, 31, 12));
    assert_int_equal(s.n, 0);
    cw_engine_advance(e, at(8, 1, 0));
    cw_engine_advance(e, at(8, 3, 0));
    cw_engine_advance(e, at(8, 4, 0));
    /* one light at a time: each gives way to the next */
    assert_int_equal(s.n, 5);
    assert_string_equal(s.log[0], "+deadline.arrest_review/case:410923:c1/2020-08-03/yellow");
    assert_string_equal(s.log[1], "-deadline.arrest_review/case:410923:c1/2020-08-03/yellow");
    assert_string_equal(s.log[2], "+deadline.arrest_review/case:410923:c1/2020-08-03/orange");
    assert_string_equal(s.log[3], "-deadline.arrest_review/case:410923:c1/2020-08-03/orange");
    assert_string_equal(s.log[4], "+deadline.arrest_review/case:410923:c1/2020-08-03/red");
    cw_event dec = event("e2", "c1", CW_EV_ARREST_DECIDED, at(8, 5, 9));
    dec.decision = CW_DECISION_APPROVE;
    assert_int_equal(apply(e, dec), CW_APPLIED);
    assert_int_equal(s.n, 6);
    assert_string_equal(s.log[5], "-deadline.arrest_review/case:410923:c1/2020-08-03/red");
    cw_engine_counts *n = cw_engine_counts_of(e);
    assert_int_equal(n->events, 2);
    assert_int_equal(n->duplicates, 1);
    cw_engine_free(e);
    cw_config_free(cfg);
}

/* An indicator rule's verdict does not wait for anybody to write rows. */
static void rules_are_judged_when_nobody_writes_the_rows(void **state) {
    (void)state;
    cw_config *cfg = cw_test_config(RULES);
    seen s = {0};
    cw_engine_out out = {on_alert, &s};
    char err[256];
    cw_engine *e = cw_engine_new(cfg, &out, err, sizeof(err));
    assert_int_equal(apply(e, event("e1", "c1", CW_EV_ARREST_ACCEPTED, at(7, 1, 10))), CW_APPLIED);
    assert_int_equal(apply(e, event("e2", "c1", CW_EV_PROSECUTION_RETURNED, at(7, 2, 10))), CW_APPLIED);
    assert_true(cw_engine_judge_pending(e));
    cw_engine_judge(e, NULL, NULL, 0); /* the writer is down */
    assert_false(cw_engine_judge_pending(e));
    assert_int_equal(s.n, 1);
    assert_string_equal(s.log[0], "+ratio.yellow/unit:410923/2020-Q3"); /* 1:2.00 */
    /* written later: every row again, judged again, no second alert */
    cw_engine_touch_all(e);
    assert_true(cw_engine_judge(e, on_row, &s, 0) > 0);
    assert_true(has_row(&s, "unit:410923 2020-Q3 cases=1"));
    assert_int_equal(s.n, 1);
    cw_engine_free(e);
    cw_config_free(cfg);
}

static void an_event_past_a_cap_is_refused_naming_the_cap_and_raises_one_capacity_alert(void **state) {
    (void)state;
    char ini[2048];
    snprintf(ini, sizeof(ini), "%s[limits]\nmax_open_cases = 1\n", RULES);
    cw_config *cfg = cw_test_config(ini);
    seen s = {0};
    cw_engine_out out = {on_alert, &s};
    char err[256], why[200] = "";
    cw_engine *e = cw_engine_new(cfg, &out, err, sizeof(err));
    assert_int_equal(apply(e, event("e1", "c1", CW_EV_ARREST_ACCEPTED, at(7, 1, 10))), CW_APPLIED);
    cw_event b = event("e2", "c2", CW_EV_ARREST_ACCEPTED, at(7, 1, 11));
    assert_int_equal(cw_engine_apply(e, &b, why, sizeof(why)), CW_REFUSED);
    assert_string_equal(why, "capacity: [limits] max_open_cases = 1 reached");
    cw_event c = event("e3", "c3", CW_EV_ARREST_ACCEPTED, at(7, 1, 12));
    assert_int_equal(apply(e, c), CW_REFUSED);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.log[0], "+system.capacity/daemon:main/max_open_cases");
    assert_int_equal(cw_engine_counts_of(e)->events, 1);
    assert_int_equal(cw_engine_open_cases(e), 1);
    cw_engine_free(e);
    cw_config_free(cfg);
}

/* The bytes of an engine's state section. */
static char *state_bytes(const cw_engine *e, size_t *len) {
    char err[256], path[] = "/tmp/cw_test_engine_XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    cw_snap_writer *w = cw_snap_writer_open(path, err, sizeof(err));
    assert_non_null(w);
    cw_engine_save_clock(e, w);
    cw_engine_save_state(e, w);
    size_t size;
    assert_int_equal(cw_snap_writer_commit(w, &size, err, sizeof(err)), 0);
    char *buf = cw_snap_read_file(path, len);
    unlink(path);
    assert_non_null(buf);
    return buf;
}

/* The engine's snapshot sections load into a new engine that then hands
 * out the same rows and knows the same alert states. */
static void an_engine_loaded_from_its_snapshot_writes_the_same_rows(void **state) {
    (void)state;
    cw_config *cfg = cw_test_config(RULES);
    seen s1 = {0}, s2 = {0};
    cw_engine_out out1 = {on_alert, &s1}, out2 = {on_alert, &s2};
    char err[256];
    cw_engine *e = cw_engine_new(cfg, &out1, err, sizeof(err));
    assert_int_equal(apply(e, event("e1", "c1", CW_EV_ARREST_ACCEPTED, at(7, 1, 10))), CW_APPLIED);
    assert_int_equal(apply(e, event("e2", "c1", CW_EV_PROSECUTION_RETURNED, at(7, 2, 10))), CW_APPLIED);
    cw_engine_judge(e, on_row, &s1, 0);
    size_t len;
    char *buf = state_bytes(e, &len);
    cw_snap_reader r;
    assert_int_equal(cw_snap_reader_init(&r, buf, len, err, sizeof(err)), 0);
    cw_engine *e2 = cw_engine_new(cfg, &out2, err, sizeof(err));
    assert_int_equal(cw_engine_load_clock(e2, &r), 0);
    assert_int_equal(cw_engine_load_state(e2, &r), 0);
    assert_true(r.p == r.end);
    free(buf);
    cw_engine_judge(e2, on_row, &s2, 0);
    assert_int_equal(s2.nrows, s1.nrows);
    for (int i = 0; i < s1.nrows; i++) assert_true(has_row(&s2, s1.rows[i]));
    assert_int_equal(s2.n, 0); /* the yellow card was known: not raised again */
    assert_int_equal(cw_engine_firing(e2), 1);
    assert_int_equal(cw_engine_event_now(e2), cw_engine_event_now(e));
    cw_engine_free(e2);
    cw_engine_free(e);
    cw_config_free(cfg);
}


/* The daemon's way (keys worked out ahead on a worker, hints of the
 * events to come, cw_engine_apply_keys) and cw_engine_apply give the same
 * verdicts, alerts, rows and snapshot on a stream with redeliveries,
 * closed cases, late events and names that change; keys never worked out
 * (cw_engine_prepare of no event) and hints of events that never come
 * change nothing. */
static void events_applied_with_keys_worked_out_ahead_change_the_engine_as_plain_applies_do(void **state) {
    (void)state;
    cw_config *cfg = cw_test_config(RULES);
    seen s1 = {0}, s2 = {0};
    cw_engine_out out1 = {on_alert, &s1}, out2 = {on_alert, &s2};
    char err[256], why1[200], why2[200];
    cw_engine *plain = cw_engine_new(cfg, &out1, err, sizeof(err)), *keyed = cw_engine_new(cfg, &out2, err, sizeof(err));
    assert_non_null(plain);
    assert_non_null(keyed);
    static const cw_event_type types[] = {CW_EV_ARREST_ACCEPTED, CW_EV_PROSECUTION_ACCEPTED, CW_EV_PROSECUTION_RETURNED,
                                          CW_EV_HEARING_HELD, CW_EV_PROSECUTION_DECIDED, CW_EV_CASE_CLOSED};
    enum { N = 600 };
    static cw_event evs[N];
    static cw_event_keys keys[N];
    for (int i = 0; i < N; i++) {
        char id[32], case_id[32];
        int c = i % 37, step = i / 37;
        snprintf(id, sizeof(id), "e%d", i);
        snprintf(case_id, sizeof(case_id), "案%d", c);
        int64_t ts = at(1, 1, 0) + (int64_t)i * 3 * 3600000LL - (i % 11 == 0 ? 20LL * 86400000 : 0); /* some late */
        evs[i] = event(id, case_id, types[step % 6], ts);
        if (i % 5 == 0) snprintf(evs[i].pros, sizeof(evs[i].pros), "P%d", i % 3);
        if (i % 7 == 0) evs[i].dept[0] = '\0';
        if (evs[i].type == CW_EV_PROSECUTION_DECIDED) evs[i].decision = CW_DECISION_PROSECUTE;
        if (i % 97 == 5) evs[i] = evs[i - 5]; /* a redelivery */
        memset(&keys[i], 0xa5, sizeof(keys[i]));
        cw_engine_prepare(i % 13 != 0 ? &evs[i] : NULL, &keys[i]); /* NULL: not worked out (a dead letter's) */
    }
    cw_event_keys stray;
    cw_event never = event("never", "案-none", CW_EV_HEARING_HELD, at(3, 1, 0));
    cw_engine_prepare(&never, &stray);
    for (int i = 0; i < N; i++) {
        if (i + CW_ENGINE_AHEAD < N) cw_engine_ahead(keyed, &keys[i + CW_ENGINE_AHEAD]);
        if (i % 50 == 0) cw_engine_ahead(keyed, &stray);
        cw_verdict v1 = cw_engine_apply(plain, &evs[i], why1, sizeof(why1));
        cw_verdict v2 = cw_engine_apply_keys(keyed, &evs[i], &keys[i], why2, sizeof(why2));
        assert_int_equal(v1, v2);
        if (i % 100 == 99) {
            cw_engine_judge(plain, on_row, &s1, 0);
            cw_engine_judge(keyed, on_row, &s2, 0);
        }
    }
    assert_true(cw_engine_counts_of(plain)->duplicates > 0);
    assert_true(cw_engine_counts_of(plain)->after_close > 0);
    assert_int_equal(cw_engine_counts_of(keyed)->events, cw_engine_counts_of(plain)->events);
    assert_int_equal(cw_engine_counts_of(keyed)->duplicates, cw_engine_counts_of(plain)->duplicates);
    assert_int_equal(cw_engine_counts_of(keyed)->after_close, cw_engine_counts_of(plain)->after_close);
    assert_int_equal(s2.n, s1.n);
    for (int i = 0; i < s1.n; i++) assert_string_equal(s2.log[i], s1.log[i]);
    assert_int_equal(s2.nrows, s1.nrows);
    for (int i = 0; i < s1.nrows; i++) assert_string_equal(s2.rows[i], s1.rows[i]);
    size_t l1, l2;
    char *b1 = state_bytes(plain, &l1), *b2 = state_bytes(keyed, &l2);
    assert_int_equal(l1, l2);
    assert_memory_equal(b1, b2, l1);
    free(b1);
    free(b2);
    cw_engine_free(keyed);
    cw_engine_free(plain);
    cw_config_free(cfg);
}

/* A dead letter of many fields and huge values is cut to the bounds
 * when queued, and its saved queue loads again (the daemon used to
 * refuse its own snapshot past 16 fields or 1 MiB). */
static void a_dead_letter_past_every_bound_is_cut_and_its_queue_loads_again(void **state) {
    (void)state;
    cw_config *cfg = cw_test_config("[limits]\ndead_letter_bytes = 2048\n");
    cw_dead *q = cw_dead_new(cfg);
    enum { N = 100 };
    cw_entry_field f[N];
    char names[N][16];
    static char big[3 << 20];
    memset(big, 'x', sizeof(big));
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof(names[i]), "f%d", i);
        f[i] = (cw_entry_field){names[i], strlen(names[i]), big, i == 0 ? sizeof(big) : 10};
    }
    assert_int_equal(cw_dead_queue(q, "1-1", f, N, "no `e` field", 0), 0);
    assert_int_equal(cw_dead_queue(q, "1-2", f + 1, 1, "reason two", 0), 0);
    assert_int_equal(cw_dead_pending(q), 2);
    char path[] = "/tmp/cw_test_dead_XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    char err[256];
    cw_snap_writer *w = cw_snap_writer_open(path, err, sizeof(err));
    cw_dead_save(q, w);
    size_t size;
    assert_int_equal(cw_snap_writer_commit(w, &size, err, sizeof(err)), 0);
    assert_true(size < 8192); /* 2048 bytes of the entry, not 3 MiB */
    size_t len;
    char *buf = cw_snap_read_file(path, &len);
    unlink(path);
    cw_snap_reader r;
    assert_int_equal(cw_snap_reader_init(&r, buf, len, err, sizeof(err)), 0);
    cw_dead *q2 = cw_dead_new(cfg);
    assert_int_equal(cw_dead_load(q2, &r), 0);
    assert_true(r.p == r.end);
    assert_int_equal(cw_dead_pending(q2), 2);
    /* what was cut is said: the first value's size, the fields dropped */
    assert_non_null(memmem(buf, len, "f0: 3145728 bytes, 2046 kept", 28));
    assert_non_null(memmem(buf, len, "36 more fields dropped", 22));
    free(buf);
    cw_dead_free(q2);
    cw_dead_free(q);
    cw_config_free(cfg);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(an_engine_hands_out_the_rows_and_transitions_of_a_small_stream),
        cmocka_unit_test(rules_are_judged_when_nobody_writes_the_rows),
        cmocka_unit_test(an_event_past_a_cap_is_refused_naming_the_cap_and_raises_one_capacity_alert),
        cmocka_unit_test(an_engine_loaded_from_its_snapshot_writes_the_same_rows),
        cmocka_unit_test(events_applied_with_keys_worked_out_ahead_change_the_engine_as_plain_applies_do),
        cmocka_unit_test(a_dead_letter_past_every_bound_is_cut_and_its_queue_loads_again),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
