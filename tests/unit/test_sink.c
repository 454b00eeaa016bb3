/* Unit tests of a --replay's hold in the sink (cw_sink, PROTOCOL.md §3b)
 * without Redis: deadline lights held raw (cw_sink_hold_light) end as the
 * same net change, worded the same and in the same order, as lights
 * worded one by one and held as alerts (cw_sink_put). What a replay
 * queues is read back with cw_sink_each. */
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
#include "../../daemon/cw_rules.h"
#include "../../daemon/cw_sink.h"
#include "../integration/cw_testredis.h"

#define OFF 480
#define NOW 1700000000000LL

static const char *const CLOCKS = "[rule deadline.arrest_review]\nkind = deadline\nclock = arrest_review\n"
                                  "days = 15\nwarn_days = 3\nurgent_days = 1\n"
                                  "[rule deadline.prosecution_review]\nkind = deadline\nclock = prosecution_review\n"
                                  "days = 30\nwarn_days = 5\nurgent_days = 2\n"
                                  "[units]\n410923 = 南乐县人民检察院\n"
                                  "[prosecutors]\n410923/P017 = 张三\n";
/* The same rules, read again after a reload that renamed a light. */
static const char *const CLOCKS_RELABELLED = "[rule deadline.arrest_review]\nkind = deadline\nclock = arrest_review\n"
                                             "days = 15\nwarn_days = 3\nurgent_days = 1\nlabel = 期限提醒\n"
                                             "[units]\n410923 = 南乐县人民检察院\n";

/* The JSON a sink queued, in order. */
typedef struct queue {
    char *json[512];
    size_t n;
} queue;

static void collect(const char *json, void *data) {
    queue *q = data;
    assert_true(q->n < 512);
    q->json[q->n++] = strdup(json);
}

static void queue_of(const cw_sink *s, queue *q) {
    memset(q, 0, sizeof(*q));
    cw_sink_each(s, collect, q);
}

static void queue_free(queue *q) {
    for (size_t i = 0; i < q->n; i++) free(q->json[i]);
    q->n = 0;
}

static void put(const cw_alert *a, void *data) {
    assert_int_equal(cw_sink_put(data, a, NOW), 0);
}

/* What the engine does with a light (cw_engine.c on_light): counted by
 * the rules, then held raw when `raw` and the sink takes it, else worded
 * and put. */
static void light(cw_rules *r, cw_sink *s, const cw_light *l, int raw) {
    if (!cw_rules_light_count(r, l)) return;
    if (raw && cw_sink_hold_light(s, l, r, NOW) == 1) return;
    cw_rules_light_words(r, l, put, s);
}

static cw_light a_light(int clock, int color, int firing, const char *case_id, int64_t due, int days_left) {
    return (cw_light){.clock = clock,
                      .light = color,
                      .firing = firing,
                      .unit = "410923",
                      .case_id = case_id,
                      .dept = "第一检察部",
                      .pros = "P017",
                      .due_day = due,
                      .days_left = days_left,
                      .ts = (due - days_left) * 86400000LL};
}

static int64_t day(int y, int m, int d) {
    return cw_period_day(cw_period_local_midnight(y, m, d, OFF), OFF);
}

static void a_light_that_fires_and_resolves_within_a_replay_leaves_nothing(void **state) {
    (void)state;
    cw_config *cfg = cw_test_config(CLOCKS);
    char err[256];
    cw_rules *r = cw_rules_new(cfg, err, sizeof(err));
    cw_sink *s = cw_sink_new(cfg);
    assert_non_null(r);
    assert_non_null(s);
    assert_int_equal(cw_sink_replay_begin(s, 0), 0);
    cw_light on = a_light(CW_CLOCK_ARREST_REVIEW, CW_LIGHT_YELLOW, 1, "c1", day(2020, 8, 4), 3);
    cw_light off = on;
    off.firing = 0;
    assert_int_equal(cw_rules_light_count(r, &on), 1);
    assert_int_equal(cw_sink_hold_light(s, &on, r, NOW), 1);
    assert_int_equal(cw_rules_firing(r), 1);
    assert_int_equal(cw_rules_light_count(r, &off), 1);
    assert_int_equal(cw_sink_hold_light(s, &off, r, NOW), 1);
    assert_int_equal(cw_rules_firing(r), 0);
    assert_int_equal(cw_sink_replay_end(s, NOW), 0);
    assert_int_equal(cw_sink_replaying(s), 0);
    queue q;
    queue_of(s, &q);
    assert_int_equal(q.n, 0);
    /* a replay over, lights are the caller's to word again */
    assert_int_equal(cw_sink_hold_light(s, &on, r, NOW), 0);
    cw_sink_free(s);
    cw_rules_free(r);
    cw_config_free(cfg);
}

/* live: the JSON a sink not replaying queues for the light */
static char *live_json(const cw_config *cfg, cw_rules *r, const cw_light *l) {
    cw_sink *live = cw_sink_new(cfg);
    cw_rules_light_words(r, l, put, live);
    queue q;
    queue_of(live, &q);
    assert_int_equal(q.n, 1);
    cw_sink_free(live);
    return q.json[0];
}

static void a_light_that_fires_then_moves_to_orange_ends_as_orange_worded_as_live_words_it(void **state) {
    (void)state;
    cw_config *cfg = cw_test_config(CLOCKS);
    char err[256];
    cw_rules *r = cw_rules_new(cfg, err, sizeof(err));
    cw_sink *s = cw_sink_new(cfg);
    assert_int_equal(cw_sink_replay_begin(s, 0), 0);
    int64_t due = day(2020, 8, 4);
    cw_light yellow = a_light(CW_CLOCK_ARREST_REVIEW, CW_LIGHT_YELLOW, 1, "（2020）南检:1号", due, 3);
    cw_light yellow_off = yellow, orange = a_light(CW_CLOCK_ARREST_REVIEW, CW_LIGHT_ORANGE, 1, yellow.case_id, due, 1);
    yellow_off.firing = 0;
    yellow_off.days_left = 1;
    light(r, s, &yellow, 1);
    light(r, s, &yellow_off, 1);
    light(r, s, &orange, 1);
    assert_int_equal(cw_sink_replay_end(s, NOW), 0);
    queue q;
    queue_of(s, &q);
    assert_int_equal(q.n, 1);
    /* byte for byte what live would write, with "replay": true before the message */
    char *want = live_json(cfg, r, &orange), *msg = strstr(want, ",\"message\":");
    assert_non_null(msg);
    char expect[2000];
    snprintf(expect, sizeof(expect), "%.*s,\"replay\":true%s", (int)(msg - want), want, msg);
    assert_string_equal(q.json[0], expect);
    assert_non_null(strstr(q.json[0], "\"state\":\"firing\""));
    assert_non_null(strstr(q.json[0], "/orange\""));
    assert_non_null(strstr(q.json[0], "剩余1天"));
    free(want);
    queue_free(&q);
    cw_sink_free(s);
    cw_rules_free(r);
    cw_config_free(cfg);
}

/* A system alert, worded by hand, whose message is `len` bytes long. */
static void system_alert(cw_sink *s, const char *what, int firing, size_t len) {
    char id[64], msg[600];
    snprintf(id, sizeof(id), "system.capacity/daemon:t/%s", what);
    memset(msg, 'x', len);
    msg[len] = '\0';
    cw_alert a = {.id = id,
                  .firing = firing,
                  .level = "red",
                  .label = "容量预警",
                  .rule = "system.capacity",
                  .scope = "daemon:t",
                  .event_ts = 1,
                  .message = msg};
    put(&a, s);
}

/* Many lights of many cases, some left on, others off, between alerts
 * of other kinds: held raw or worded one by one, the replay ends with
 * the same messages in the same order, and that order is the one their
 * ids were first held in (history's, oldest first). */
static void raw_lights_end_as_the_net_change_of_worded_ones_in_the_same_order(void **state) {
    (void)state;
    cw_config *cfg = cw_test_config(CLOCKS);
    char err[256];
    cw_rules *rw = cw_rules_new(cfg, err, sizeof(err)), *rr = cw_rules_new(cfg, err, sizeof(err));
    cw_sink *worded = cw_sink_new(cfg), *raw = cw_sink_new(cfg);
    cw_map *ids = cw_map_new(); /* id -> its place in first + 1 */
    char *first[700];
    int left_on[700];
    size_t nfirst = 0;
    assert_int_equal(cw_sink_replay_begin(worded, 0), 0);
    assert_int_equal(cw_sink_replay_begin(raw, 0), 0);
    int64_t due = day(2021, 3, 1);
    for (int i = 0; i < 300; i++) {
        char case_id[32], what[16];
        snprintf(case_id, sizeof(case_id), "案%03d", i);
        int clock = i % 3 ? CW_CLOCK_ARREST_REVIEW : CW_CLOCK_PROSECUTION_REVIEW;
        cw_light y = a_light(clock, CW_LIGHT_YELLOW, 1, case_id, due + i % 40, 3);
        cw_light steps[4] = {y, y, a_light(clock, CW_LIGHT_ORANGE, 1, case_id, due + i % 40, 1), y};
        steps[1].firing = 0;
        steps[3] = steps[2];
        steps[3].firing = 0;
        int n = i % 4 == 0 ? 1 : i % 4 == 1 ? 2 : i % 4 == 2 ? 3 : 4; /* yellow on, off, orange on, off */
        for (int k = 0; k < n; k++) {
            light(rw, worded, &steps[k], 0);
            light(rr, raw, &steps[k], 1);
            if (k == 0 || k == 2) {
                char id[CW_LIGHT_ID_MAX];
                size_t len = cw_rules_light_id(rr, &steps[k], id);
                intptr_t at = (intptr_t)cw_map_get(ids, id, len);
                if (!at) {
                    first[nfirst] = strdup(id);
                    at = (intptr_t)++nfirst;
                    assert_int_equal(cw_map_put(ids, id, len, (void *)at), 0);
                }
                left_on[at - 1] = k == 0 ? n == 1 : n == 3; /* its state at the end */
            }
        }
        if (i % 50 == 7) {
            snprintf(what, sizeof(what), "cap%d", i);
            system_alert(worded, what, 1, 100);
            system_alert(raw, what, 1, 100);
            char id[64];
            snprintf(id, sizeof(id), "system.capacity/daemon:t/%s", what);
            first[nfirst] = strdup(id);
            left_on[nfirst++] = 1;
            assert_int_equal(cw_map_put(ids, id, strlen(id), (void *)(intptr_t)nfirst), 0);
        }
    }
    assert_int_equal(cw_rules_firing(rr), cw_rules_firing(rw));
    assert_int_equal(cw_sink_replay_end(worded, NOW), 0);
    assert_int_equal(cw_sink_replay_end(raw, NOW), 0);
    queue qw, qr;
    queue_of(worded, &qw);
    queue_of(raw, &qr);
    assert_true(qw.n > 100);
    assert_int_equal(qr.n, qw.n);
    for (size_t i = 0; i < qw.n; i++) assert_string_equal(qr.json[i], qw.json[i]);
    /* the ids left firing, in the order they were first held */
    size_t n = 0;
    for (size_t i = 0; i < nfirst; i++) {
        if (left_on[i]) {
            char want[800];
            snprintf(want, sizeof(want), "{\"id\":\"%s\",\"state\":\"firing\"", first[i]);
            assert_true(n < qr.n);
            assert_memory_equal(qr.json[n], want, strlen(want));
            n++;
        }
        free(first[i]);
    }
    assert_int_equal(n, qr.n);
    queue_free(&qw);
    queue_free(&qr);
    cw_map_free(ids);
    cw_sink_free(worded);
    cw_sink_free(raw);
    cw_rules_free(rw);
    cw_rules_free(rr);
    cw_config_free(cfg);
}

/* An alert held again later, with a longer message (its record grows),
 * keeps the place it was first held in and goes out with its last word;
 * the lights held raw between come after it in the order they came. */
static void an_alert_held_again_keeps_its_first_place_and_goes_out_with_its_last_word(void **state) {
    (void)state;
    cw_config *cfg = cw_test_config(CLOCKS);
    char err[256];
    cw_rules *r = cw_rules_new(cfg, err, sizeof(err));
    cw_sink *s = cw_sink_new(cfg);
    char ids[12][CW_LIGHT_ID_MAX];
    assert_int_equal(cw_sink_replay_begin(s, 0), 0);
    system_alert(s, "first", 1, 10);
    snprintf(ids[0], sizeof(ids[0]), "system.capacity/daemon:t/first");
    for (int i = 0; i < 11; i++) {
        char case_id[16];
        snprintf(case_id, sizeof(case_id), "g%d", i);
        cw_light l = a_light(CW_CLOCK_ARREST_REVIEW, CW_LIGHT_RED, 1, case_id, day(2021, 5, 1), -2);
        light(r, s, &l, 1);
        cw_rules_light_id(r, &l, ids[i + 1]);
    }
    system_alert(s, "first", 1, 500); /* grows */
    assert_int_equal(cw_sink_replay_end(s, NOW), 0);
    queue q;
    queue_of(s, &q);
    assert_int_equal(q.n, 12);
    for (size_t n = 0; n < 12; n++) {
        char want[CW_LIGHT_ID_MAX + 16];
        snprintf(want, sizeof(want), "{\"id\":\"%.*s\"", (int)sizeof(ids[n]) - 1, ids[n]);
        assert_memory_equal(q.json[n], want, strlen(want));
    }
    char last_word[520];
    memset(last_word, 'x', 500);
    last_word[500] = '\0';
    assert_non_null(strstr(q.json[0], last_word));
    queue_free(&q);
    cw_sink_free(s);
    cw_rules_free(r);
    cw_config_free(cfg);
}

/* A reload in the middle of a replay frees the rules that word the lights
 * held raw: they are worded first, by the rules of their time, and the
 * lights after it come worded by the new rules. */
static void a_reload_in_a_replay_words_the_lights_held_by_the_rules_of_their_time(void **state) {
    (void)state;
    cw_config *cfg = cw_test_config(CLOCKS), *cfg2 = cw_test_config(CLOCKS_RELABELLED);
    char err[256];
    cw_rules *r = cw_rules_new(cfg, err, sizeof(err)), *r2 = cw_rules_new(cfg2, err, sizeof(err));
    cw_sink *s = cw_sink_new(cfg2); /* the process's configuration: it outlives the rules */
    assert_int_equal(cw_sink_replay_begin(s, 0), 0);
    int64_t due = day(2020, 8, 4);
    cw_light before = a_light(CW_CLOCK_ARREST_REVIEW, CW_LIGHT_YELLOW, 1, "c-before", due, 3);
    cw_light moved = a_light(CW_CLOCK_ARREST_REVIEW, CW_LIGHT_YELLOW, 1, "c-moved", due, 3);
    cw_light after = a_light(CW_CLOCK_ARREST_REVIEW, CW_LIGHT_YELLOW, 1, "c-after", due, 3);
    light(r, s, &before, 1);
    light(r, s, &moved, 1);
    assert_int_equal(cw_sink_hold_light(s, NULL, r, NOW), 0); /* the reload */
    cw_rules_free(r);
    cw_config_free(cfg);
    moved.firing = 0;
    light(r2, s, &moved, 1); /* worded by the new rules, held as an alert */
    light(r2, s, &after, 1);
    assert_int_equal(cw_sink_replay_end(s, NOW), 0);
    queue q;
    queue_of(s, &q);
    assert_int_equal(q.n, 2);
    const char *b = strstr(q.json[0], "c-before") ? q.json[0] : q.json[1];
    const char *a = b == q.json[0] ? q.json[1] : q.json[0];
    assert_non_null(strstr(b, "c-before"));
    assert_non_null(strstr(b, "期限预警\"}"));
    assert_non_null(strstr(a, "c-after"));
    assert_non_null(strstr(a, "期限提醒\"}"));
    queue_free(&q);
    cw_sink_free(s);
    cw_rules_free(r2);
    cw_config_free(cfg2);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_light_that_fires_and_resolves_within_a_replay_leaves_nothing),
        cmocka_unit_test(a_light_that_fires_then_moves_to_orange_ends_as_orange_worded_as_live_words_it),
        cmocka_unit_test(raw_lights_end_as_the_net_change_of_worded_ones_in_the_same_order),
        cmocka_unit_test(an_alert_held_again_keeps_its_first_place_and_goes_out_with_its_last_word),
        cmocka_unit_test(a_reload_in_a_replay_words_the_lights_held_by_the_rules_of_their_time),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
