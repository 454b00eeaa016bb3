/* Integration tests of alerts (issue 4) with the shipped default rules
 * (systemd/casewatch.conf) against a real redis-server: the 黄牌 of a
 * generated year and its overdue arrest reviews against computations made
 * here from the generated lines; a burst of late events correcting a past
 * quarter's alert; each alert state published once, on the channel and in
 * the log alike. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include <cmocka.h>
#include <jansson.h>

#include "../../daemon/cw_calendar.h"
#include "../../daemon/cw_deadline.h"
#include "../../daemon/cw_map.h"
#include "../../daemon/cw_period.h"
#include "cw_testredis.h"

#define CONF "systemd/casewatch.conf"

static const char *const event_clock[] = {"daemon.clock=event", "calendar.file=systemd/holidays-cn.conf", NULL};

/* The alert log as a map id -> last state ("firing"/"resolved"), failing
 * the test if any id has the same state twice in a row. Returns the
 * number of log entries. */
static size_t read_log(redisContext *c, cw_map *last, cw_map *fired_once) {
    redisReply *r = redisCommand(c, "XRANGE casewatch:alerts:log - +");
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    size_t n = r->elements;
    for (size_t i = 0; i < n; i++) {
        redisReply *f = r->element[i]->element[1];
        assert_string_equal(f->element[0]->str, "a");
        json_error_t je;
        json_t *a = json_loads(f->element[1]->str, 0, &je);
        assert_non_null(a);
        const char *id = json_string_value(json_object_get(a, "id"));
        const char *state = json_string_value(json_object_get(a, "state"));
        assert_non_null(id);
        assert_non_null(state);
        /* every PROTOCOL.md §3 field a firing indicator alert must carry */
        assert_non_null(json_object_get(a, "level"));
        assert_non_null(json_object_get(a, "label"));
        assert_non_null(json_object_get(a, "rule"));
        assert_non_null(json_object_get(a, "scope"));
        assert_non_null(json_object_get(a, "event_ts"));
        assert_non_null(json_object_get(a, "emitted_at"));
        assert_non_null(json_object_get(a, "message"));
        int firing = strcmp(state, "firing") == 0;
        void *prev = cw_map_get(last, id, strlen(id));
        if (prev && ((intptr_t)prev == 2) == firing) fail_msg("alert %s published '%s' twice in a row", id, state);
        if (!prev && !firing) fail_msg("alert %s resolved before it fired", id);
        cw_map_put(last, id, strlen(id), (void *)(intptr_t)(firing ? 2 : 1));
        if (fired_once && firing) cw_map_put(fired_once, id, strlen(id), (void *)1);
        json_decref(a);
    }
    freeReplyObject(r);
    return n;
}

static int is_firing(cw_map *last, const char *id) {
    return (intptr_t)cw_map_get(last, id, strlen(id)) == 2;
}

/* One year from `casewatch gen`, all default rules on. */
static void a_generated_year_raises_exactly_the_expected_cards_and_deadline_alerts(void **state) {
    (void)state;
    redisContext *c = cw_testredis_connect(&cw_test_redis);
    freeReplyObject(redisCommand(c, "FLUSHALL"));
    const char *args[] = {"--seed", "5", "--cases", "5000", "--days", "365", "--dup-rate", "0.02", "--late-rate",
                          "0.2", "--overdue-rate", "0.05", NULL};
    char *lines = cw_test_gen(args);

    /* independent computation from the lines */
    enum { NU = 3, NQ = 8 };
    const char *units[NU] = {"410923", "410922", "410900"};
    long long cases[NU][NQ] = {{0}}, extra[NU][NQ] = {{0}};
    cw_map *seen = cw_map_new(), *due = cw_map_new(), *overdue = cw_map_new();
    char cerr[256];
    cw_calendar *cal = cw_calendar_load("systemd/holidays-cn.conf", cerr, sizeof(cerr));
    assert_non_null(cal);
    long long lines_n = 0;
    for (char *p = lines; *p;) {
        char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        json_error_t je;
        json_t *o = json_loadb(p, len, 0, &je);
        p += len + (nl ? 1 : 0);
        lines_n++;
        const char *id = json_string_value(json_object_get(o, "id"));
        if (cw_map_get(seen, id, strlen(id))) {
            json_decref(o);
            continue;
        }
        cw_map_put(seen, id, strlen(id), (void *)1);
        const char *type = json_string_value(json_object_get(o, "type"));
        const char *unit = json_string_value(json_object_get(o, "unit"));
        const char *cs = json_string_value(json_object_get(o, "case"));
        int64_t ts = json_integer_value(json_object_get(o, "ts"));
        int u = 0;
        while (u < NU && strcmp(unit, units[u]) != 0) u++;
        assert_true(u < NU);
        int q = cw_period_quarter_index(ts, 480) - 2020 * 4;
        char key[256];
        snprintf(key, sizeof(key), "case:%s:%s", unit, cs);
        if (q >= 0 && q < NQ) {
            if (strcmp(type, "arrest.accepted") == 0) cases[u][q]++;
            if (strcmp(type, "prosecution.accepted") == 0 && !json_is_true(json_object_get(o, "arrested")))
                cases[u][q]++;
            if (strstr("arrest.reconsideration prosecution.extended prosecution.returned nonprosecution.complaint "
                       "trial.appeal",
                       type))
                extra[u][q]++;
        }
        /* 审查逮捕: 7 days detained, 20 complex, else 15; overdue when
         * decided at or after the end; a last day on a rest day moves to
         * the next working day unless detained (CPL art. 105) */
        if (strcmp(type, "arrest.accepted") == 0) {
            int detained = json_is_true(json_object_get(o, "detained"));
            int days = detained ? 7 : json_is_true(json_object_get(o, "complex")) ? 20 : 15;
            int64_t due_day = cw_deadline_due(cal, ts, 480, CW_DEADLINE_DAYS, days, !detained);
            cw_map_put(due, key, strlen(key), (void *)(intptr_t)cw_period_day_start(due_day, 480));
        }
        if (strcmp(type, "arrest.decided") == 0) {
            int64_t end = (intptr_t)cw_map_get(due, key, strlen(key));
            assert_true(end > 0);
            if (ts >= end) cw_map_put(overdue, key, strlen(key), (void *)1);
        }
        json_decref(o);
    }
    size_t n_overdue = cw_map_size(overdue);
    assert_true(n_overdue > 10); /* the generator was asked for some */

    /* a subscriber sees every publication */
    redisContext *sub = cw_testredis_connect(&cw_test_redis);
    freeReplyObject(redisCommand(sub, "SUBSCRIBE casewatch:alerts"));
    cw_test_feed_raw(lines, strlen(lines));
    pid_t pid = cw_test_daemon_start_with(CONF, event_clock);
    cw_test_wait_read(c, lines_n);
    cw_test_daemon_stop(pid);

    cw_map *last = cw_map_new(), *fired = cw_map_new();
    size_t logged = read_log(c, last, fired);
    /* unit-quarter 黄牌 */
    int yellow = 0;
    for (int u = 0; u < NU; u++) {
        for (int q = 0; q < NQ; q++) {
            char id[128];
            snprintf(id, sizeof(id), "case_item_ratio.yellow/unit:%s/2020-Q%d", units[u], q + 1);
            int want = q < 4 && cases[u][q] >= 20 && (double)(cases[u][q] + extra[u][q]) / (double)cases[u][q] > 1.15;
            if (want != is_firing(last, id))
                fail_msg("%s: expected %s (cases %lld, extra items %lld)", id, want ? "firing" : "not firing",
                         cases[u][q], extra[u][q]);
            yellow += want;
        }
    }
    /* overdue arrest reviews: red lights, exactly the cases decided late */
    size_t pos = 0, reds = 0;
    const char *id;
    size_t len;
    while (cw_map_next(fired, &pos, &id, &len, NULL)) {
        if (strncmp(id, "deadline.arrest_review/", 23) != 0 || len < 4 || strcmp(id + len - 4, "/red") != 0) continue;
        char key[256];
        const char *scope = id + 23, *slash = strchr(scope, '/');
        snprintf(key, sizeof(key), "%.*s", (int)(slash - scope), scope);
        if (!cw_map_get(overdue, key, strlen(key))) fail_msg("%s: red, but its case was decided in time", id);
        reds++;
    }
    assert_int_equal(reds, n_overdue);
    /* the channel carried each logged state change once */
    struct timeval tv = {0, 300000};
    redisSetTimeout(sub, tv);
    size_t published = 0;
    redisReply *m;
    while (redisGetReply(sub, (void **)&m) == REDIS_OK) {
        published++;
        freeReplyObject(m);
    }
    assert_int_equal(published, logged);
    print_message("%zu alerts logged and published; %d unit-quarter yellow cards; %zu overdue arrest reviews\n", logged,
                  yellow, reds);
    assert_true(cw_test_hget_ll(c, "casewatch:daemon:main", "alerts_firing") > 0);
    redisFree(sub);
    cw_map_free(last);
    cw_map_free(fired);
    cw_map_free(seen);
    cw_map_free(due);
    cw_calendar_free(cal);
    cw_map_free(overdue);
    free(lines);
    redisFree(c);
}

static void add_line(char **buf, size_t *len, size_t *cap, const char *fmt, ...) {
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (*len + (size_t)n + 2 > *cap) {
        *cap = (*cap + (size_t)n + 2) * 2;
        *buf = realloc(*buf, *cap);
    }
    memcpy(*buf + *len, line, (size_t)n);
    *len += (size_t)n;
    (*buf)[(*len)++] = '\n';
    (*buf)[*len] = '\0';
}

/* cases and non-routine items in 2020-Q1 for 410923, with ids from `tag` */
static void q1_events(char **b, size_t *len, size_t *cap, const char *tag, int ncases, int nextra) {
    const int64_t jan = 1578268800000LL; /* 2020-01-06 08:00 +08:00 */
    for (int i = 0; i < ncases; i++)
        add_line(b, len, cap,
                 "{\"v\":1,\"id\":\"%s-c%d\",\"ts\":%lld,\"type\":\"prosecution.accepted\",\"case\":\"%s-%d\","
                 "\"unit\":\"410923\"}",
                 tag, i, (long long)(jan + (int64_t)i * 3600000LL), tag, i);
    for (int i = 0; i < nextra; i++)
        add_line(b, len, cap,
                 "{\"v\":1,\"id\":\"%s-x%d\",\"ts\":%lld,\"type\":\"trial.appeal\",\"case\":\"%s-%d\","
                 "\"unit\":\"410923\"}",
                 tag, i, (long long)(jan + 86400000LL * 30 + (int64_t)i * 3600000LL), tag, i);
}

static int count_states(redisContext *c, const char *id, const char *state) {
    char needle[256];
    snprintf(needle, sizeof(needle), "\"id\":\"%s\",\"state\":\"%s\"", id, state);
    return cw_test_log_count(c, needle);
}

/* 40 cases and 4 items in Q1 (1:1.10, quiet); Q2 begins; then late
 * items for Q1 (1:1.20: 黄牌 for Q1), then late cases for Q1 (1:1.11:
 * resolved). */
static void a_burst_of_late_events_corrects_a_past_quarter(void **state) {
    (void)state;
    redisContext *c = cw_testredis_connect(&cw_test_redis);
    freeReplyObject(redisCommand(c, "FLUSHALL"));
    char *b = NULL;
    size_t len = 0, cap = 0;
    q1_events(&b, &len, &cap, "early", 40, 4);
    add_line(&b, &len, &cap,
             "{\"v\":1,\"id\":\"q2\",\"ts\":1586505600000,\"type\":\"hearing.held\",\"case\":\"q2\",\"unit\":\"410923\"}");
    cw_test_feed_raw(b, len);
    pid_t pid = cw_test_daemon_start_with(CONF, event_clock);
    cw_test_wait_read(c, 45);
    const char *id = "case_item_ratio.yellow/unit:410923/2020-Q1";
    assert_int_equal(count_states(c, id, "firing"), 0);

    len = 0;
    q1_events(&b, &len, &cap, "late1", 0, 4);
    cw_test_feed_raw(b, len);
    cw_test_wait_read(c, 49);
    assert_int_equal(count_states(c, id, "firing"), 1);
    char *ratio = cw_test_hget(c, "casewatch:ind:unit:410923:2020-Q1", "case_item_ratio");
    assert_string_equal(ratio, "1.2000");
    free(ratio);

    len = 0;
    q1_events(&b, &len, &cap, "late2", 30, 0);
    cw_test_feed_raw(b, len);
    cw_test_wait_read(c, 79);
    cw_test_daemon_stop(pid);
    assert_int_equal(count_states(c, id, "firing"), 1);
    assert_int_equal(count_states(c, id, "resolved"), 1);
    /* the alert names its period and carries the value and threshold */
    redisReply *r = redisCommand(c, "XRANGE casewatch:alerts:log - +");
    int found = 0;
    for (size_t i = 0; i < r->elements; i++) {
        json_t *a = json_loads(r->element[i]->element[1]->element[1]->str, 0, NULL);
        if (strcmp(json_string_value(json_object_get(a, "id")), id) == 0 &&
            strcmp(json_string_value(json_object_get(a, "state")), "firing") == 0) {
            assert_string_equal(json_string_value(json_object_get(a, "period")), "2020-Q1");
            assert_string_equal(json_string_value(json_object_get(a, "unit")), "410923");
            assert_true(json_real_value(json_object_get(a, "value")) > 1.19);
            assert_true(json_real_value(json_object_get(a, "threshold")) == 1.15);
            assert_non_null(strstr(json_string_value(json_object_get(a, "message")), "南乐县人民检察院 2020年第1季度 案件比 1:1.20"));
            found = 1;
        }
        json_decref(a);
    }
    freeReplyObject(r);
    assert_true(found);
    free(b);
    redisFree(c);
}

/* n cases and x non-routine items for one scope, in the month starting at t */
static void scope_events(char **b, size_t *len, size_t *cap, const char *unit, const char *dept, int n, int x,
                         int64_t t) {
    static int seq = 0;
    for (int i = 0; i < n + x; i++, seq++)
        add_line(b, len, cap,
                 "{\"v\":1,\"id\":\"r%d\",\"ts\":%lld,\"type\":\"%s\",\"case\":\"rk-%d\",\"unit\":\"%s\","
                 "\"dept\":\"%s\"}",
                 seq, (long long)(t + (int64_t)i * 60000LL), i < n ? "prosecution.accepted" : "trial.appeal", seq, unit,
                 dept);
}

/* rank.bottom: the department last among its 院's for two consecutive
 * quarters (ranked when each quarter closes); rank.region: at month end
 * the 3 worst city-level 院 and the worst 30% of county-level 院. */
static void ranks_are_taken_when_a_period_closes(void **state) {
    (void)state;
    redisContext *c = cw_testredis_connect(&cw_test_redis);
    freeReplyObject(redisCommand(c, "FLUSHALL"));
    char *b = NULL;
    size_t len = 0, cap = 0;
    const int64_t jan = 1577840400000LL, apr = 1585702800000LL, jul = 1593565200000LL; /* 2020-01/04/07-01 09:00 */
    /* departments of 410923: 第三检察部 worst in Q1 and Q2, 第二检察部 only in Q1 */
    scope_events(&b, &len, &cap, "410923", "第一检察部", 30, 0, jan);
    scope_events(&b, &len, &cap, "410923", "第二检察部", 30, 9, jan);
    scope_events(&b, &len, &cap, "410923", "第三检察部", 30, 12, jan);
    /* January: four city-level and four county-level 院 of 河南 */
    const char *cities[] = {"410900", "411000", "411100", "411200"}, *counties[] = {"410922", "410926", "410927", "410928"};
    for (int i = 0; i < 4; i++) scope_events(&b, &len, &cap, cities[i], "第一检察部", 20, i * 2, jan + 86400000LL);
    for (int i = 0; i < 4; i++) scope_events(&b, &len, &cap, counties[i], "第一检察部", 20, 8 - i * 2, jan + 86400000LL);
    scope_events(&b, &len, &cap, "410923", "第一检察部", 30, 0, apr);
    scope_events(&b, &len, &cap, "410923", "第二检察部", 30, 1, apr);
    scope_events(&b, &len, &cap, "410923", "第三检察部", 30, 15, apr);
    scope_events(&b, &len, &cap, "410923", "第一检察部", 1, 0, jul); /* Q2 closes */
    cw_test_feed_raw(b, len);
    long long n = 0;
    for (size_t i = 0; i < len; i++) n += b[i] == '\n';
    pid_t pid = cw_test_daemon_start_with(CONF, event_clock);
    cw_test_wait_read(c, n);
    cw_test_daemon_stop(pid);
    cw_map *last = cw_map_new();
    read_log(c, last, NULL);
    assert_true(is_firing(last, "rank.bottom/dept:410923:第三检察部/2020-Q2"));
    assert_false(cw_map_get(last, "rank.bottom/dept:410923:第三检察部/2020-Q1", 43)); /* one quarter is not two */
    assert_false(cw_map_get(last, "rank.bottom/dept:410923:第二检察部/2020-Q2", 43));
    /* January's ranking: the 3 worst cities (most items: 411200, 411100, 411000); 30% of the
     * 5 counties (410923 has 1:1.23 from its departments) rounds to 2: 410922 1:1.4, 410926 1:1.3 */
    const char *want[] = {"411200", "411100", "411000", "410922", "410926"}, *not_want[] = {"410900", "410923", "410927"};
    for (int i = 0; i < 5; i++) {
        char id[128];
        snprintf(id, sizeof(id), "rank.region/unit:%s/2020-01", want[i]);
        if (!cw_map_get(last, id, strlen(id))) fail_msg("%s was not raised", id);
    }
    for (int i = 0; i < 3; i++) {
        char id[128];
        snprintf(id, sizeof(id), "rank.region/unit:%s/2020-01", not_want[i]);
        if (cw_map_get(last, id, strlen(id))) fail_msg("%s was raised", id);
    }
    /* February had no cases: January's ranking alerts resolve when it closes */
    assert_false(is_firing(last, "rank.region/unit:411200/2020-01"));
    cw_map_free(last);
    free(b);
    redisFree(c);
}

/* The alert log as one line per entry, "id state value", in log order. */
static char *log_lines(redisContext *c) {
    redisReply *r = redisCommand(c, "XRANGE casewatch:alerts:log - +");
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    size_t cap = 4096, len = 0;
    char *out = malloc(cap);
    out[0] = '\0';
    for (size_t i = 0; i < r->elements; i++) {
        json_error_t je;
        json_t *a = json_loads(r->element[i]->element[1]->element[1]->str, 0, &je);
        assert_non_null(a);
        char line[512];
        int n = snprintf(line, sizeof(line), "%s %s %.4f\n", json_string_value(json_object_get(a, "id")),
                         json_string_value(json_object_get(a, "state")), json_number_value(json_object_get(a, "value")));
        while (len + (size_t)n + 1 > cap) out = realloc(out, cap *= 2);
        memcpy(out + len, line, (size_t)n + 1);
        len += (size_t)n;
        json_decref(a);
    }
    freeReplyObject(r);
    return out;
}

/* casewatchd --rebuild --replay with the shipped rules, one more -o,
 * from nothing firing: it logs every alert firing at its end (its net
 * change, PROTOCOL.md §3b). */
static void replay_with(redisContext *c, const char *option) {
    freeReplyObject(redisCommand(c, "DEL casewatch:alerts:log casewatch:alerts:firing"));
    char bin[256], port[64], sd[96];
    cw_test_bin("casewatchd", bin, sizeof(bin));
    snprintf(port, sizeof(port), "redis.port=%d", cw_test_redis.port);
    snprintf(sd, sizeof(sd), "daemon.state_dir=%s", cw_test_state_dir());
    char *argv[] = {bin, "-c", CONF, "-o", port, "-o", sd, "-o", "daemon.log_level=warning",
                    "-o", "indicators.flush_entries=1000", "-o", (char *)option, "--rebuild", "--replay", NULL};
    char *out, *err;
    if (cw_test_run(argv, NULL, 0, &out, &err) != 0) fail_msg("replay failed: %s", err);
    free(out), free(err);
}

/* A rebuild judges the indicator rules at points fixed by the stream (every
 * flush_entries entries), not by the clock: the same stream replayed with
 * the flush timer at 10 ms and at 1 s (which before judged a replay of a
 * second or less only at its end) ends with the same alerts firing, with
 * the same values, hysteresis and all (a replay logs its end states). */
static void a_replay_judges_the_same_states_however_fast_it_runs(void **state) {
    (void)state;
    redisContext *c = cw_testredis_connect(&cw_test_redis);
    freeReplyObject(redisCommand(c, "FLUSHALL"));
    const char *args[] = {"--seed", "9", "--cases", "3000", "--days", "365", "--late-rate", "0.2", NULL};
    char *lines = cw_test_gen(args);
    cw_test_feed_raw(lines, strlen(lines));
    replay_with(c, "indicators.flush_ms=10");
    char *fast_timer = log_lines(c);
    long long firing = cw_test_hget_ll(c, "casewatch:daemon:main", "alerts_firing");
    replay_with(c, "indicators.flush_ms=1000");
    char *slow_timer = log_lines(c);
    /* indicator alerts (not only deadline lights) are among them */
    assert_non_null(strstr(fast_timer, "case_item_ratio."));
    if (strcmp(fast_timer, slow_timer) != 0) {
        size_t i = 0, line = 1;
        while (fast_timer[i] && fast_timer[i] == slow_timer[i])
            if (fast_timer[i++] == '\n') line++;
        fail_msg("the alert logs differ from line %zu: '%.80s' vs '%.80s'", line, fast_timer + i, slow_timer + i);
    }
    assert_int_equal(cw_test_hget_ll(c, "casewatch:daemon:main", "alerts_firing"), firing);
    size_t changes = 0;
    for (const char *p = fast_timer; *p; p++) changes += *p == '\n';
    print_message("%zu alerts logged, the same twice; %lld firing at the end\n", changes, firing);
    free(fast_timer);
    free(slow_timer);
    free(lines);
    redisFree(c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_generated_year_raises_exactly_the_expected_cards_and_deadline_alerts),
        cmocka_unit_test(a_burst_of_late_events_corrects_a_past_quarter),
        cmocka_unit_test(ranks_are_taken_when_a_period_closes),
        cmocka_unit_test(a_replay_judges_the_same_states_however_fast_it_runs),
    };
    return cmocka_run_group_tests_name("alerts", tests, cw_testredis_group_setup, cw_testredis_group_teardown);
}
