/* Integration tests of deadline lights on the live clock (INDICATORS.md
 * §4 "When a light comes on") against a real redis-server: a case that
 * arrives already overdue shows red at once, and only red; a light
 * changes the moment its boundary passes, by the wall clock (shifted to
 * just before a midnight with CW_TEST_NOW_OFFSET_MS, not waited for). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <cmocka.h>
#include <jansson.h>
#include <msgpack.h>

#include "../../daemon/cw_period.h"
#include "../../proto/cw_event.h"
#include "cw_testredis.h"

#define OFF 480
#define DAY 86400000LL

static const char *const live[] = {"daemon.clock=live", "calendar.file=systemd/holidays-cn.conf", NULL};

/* The real wall clock (cw_wall_ms may be shifted for the daemon). */
static int64_t real_ms(void) {
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static void xadd(redisContext *c, const cw_event *ev) {
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    cw_event_encode(ev, &sb);
    redisReply *r = redisCommand(c, "XADD casewatch:events * e %b", sb.data, sb.size);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    freeReplyObject(r);
    msgpack_sbuffer_destroy(&sb);
}

/* Waits until the daemon follows the stream live. */
static void wait_following(redisContext *c) {
    for (int i = 0; i < 200; i++) {
        char *p = cw_test_hget(c, "casewatch:daemon:main", "progress");
        int ok = p && strcmp(p, "following") == 0;
        free(p);
        if (ok) return;
        cw_test_sleep_ms(50);
    }
    fail_msg("the daemon did not catch up");
}

/* The next alert published about `case_id` within ms, as "+level" or
 * "-level" (firing, resolved); "" on timeout. */
static const char *next_light(redisContext *sub, const char *case_id, int ms, char *out, size_t len) {
    int64_t until = real_ms() + ms;
    out[0] = '\0';
    while (real_ms() < until) {
        struct timeval tv = {0, 100000};
        redisSetTimeout(sub, tv);
        redisReply *m = NULL;
        if (redisGetReply(sub, (void **)&m) != REDIS_OK) {
            sub->err = 0; /* a timeout: keep listening */
            continue;
        }
        if (m->type == REDIS_REPLY_ARRAY && m->elements == 3 && m->element[2]->type == REDIS_REPLY_STRING) {
            json_t *a = json_loads(m->element[2]->str, 0, NULL);
            const char *scope = json_string_value(json_object_get(a, "scope"));
            if (scope && strstr(scope, case_id)) {
                snprintf(out, len, "%c%s", strcmp(json_string_value(json_object_get(a, "state")), "firing") == 0 ? '+' : '-',
                         json_string_value(json_object_get(a, "level")));
                json_decref(a);
                freeReplyObject(m);
                return out;
            }
            json_decref(a);
        }
        freeReplyObject(m);
    }
    return out;
}

static redisContext *subscribe(void) {
    redisContext *sub = cw_testredis_connect(&cw_test_redis);
    freeReplyObject(redisCommand(sub, "SUBSCRIBE casewatch:alerts"));
    return sub;
}

/* A detained arrest review entered 8 days after it started: red within a
 * second of its XADD, not at the next midnight, and neither yellow nor
 * orange before it. */
static void an_already_overdue_case_raises_exactly_one_red_within_a_second(void **state) {
    (void)state;
    redisContext *c = cw_testredis_connect(&cw_test_redis);
    freeReplyObject(redisCommand(c, "FLUSHALL"));
    pid_t pid = cw_test_daemon_start_with("systemd/casewatch.conf", live);
    wait_following(c);
    redisContext *sub = subscribe();
    cw_event ev = cw_test_event("od-1", "南检刑诉受[2026]8号", "410923", CW_EV_ARREST_ACCEPTED, real_ms() - 8 * DAY);
    ev.present |= CW_F_DETAINED, ev.flags |= CW_F_DETAINED;
    int64_t t0 = real_ms();
    xadd(c, &ev);
    char got[32];
    next_light(sub, "南检刑诉受[2026]8号", 1000, got, sizeof(got));
    int64_t delay = real_ms() - t0;
    assert_string_equal(got, "+red");
    print_message("XADD -> red alert of an already-overdue case: %lld ms\n", (long long)delay);
    assert_true(delay < 1000);
    next_light(sub, "南检刑诉受[2026]8号", 700, got, sizeof(got));
    assert_string_equal(got, ""); /* nothing else about it */
    redisFree(sub);
    cw_test_daemon_stop(pid);
    redisFree(c);
}

/* With the daemon's clock 6 s before a local midnight: a detained review
 * with 2 days left shows yellow at once, and when midnight passes (1 day
 * left) the yellow resolves and the orange fires, in that order. */
static void a_case_with_two_days_left_turns_yellow_then_orange_at_its_boundary(void **state) {
    (void)state;
    redisContext *c = cw_testredis_connect(&cw_test_redis);
    freeReplyObject(redisCommand(c, "FLUSHALL"));
    int64_t now = real_ms();
    int64_t midnight = cw_period_day_start(cw_period_day(now, OFF) + 1, OFF);
    int64_t shifted = midnight - 6000, offset = shifted - now;
    char v[32];
    snprintf(v, sizeof(v), "%lld", (long long)offset);
    setenv("CW_TEST_NOW_OFFSET_MS", v, 1);
    pid_t pid = cw_test_daemon_start_with("systemd/casewatch.conf", live);
    unsetenv("CW_TEST_NOW_OFFSET_MS");
    wait_following(c);
    redisContext *sub = subscribe();
    /* 7 days from day D-6: the last day is D+1, due D+2: 2 days left on D */
    int64_t d = cw_period_day(shifted, OFF);
    cw_event ev = cw_test_event("tl-1", "南检刑诉受[2026]9号", "410923", CW_EV_ARREST_ACCEPTED,
                                cw_period_day_start(d - 6, OFF) + 12 * 3600000LL);
    ev.present |= CW_F_DETAINED, ev.flags |= CW_F_DETAINED;
    xadd(c, &ev);
    char got[32];
    next_light(sub, "南检刑诉受[2026]9号", 1500, got, sizeof(got));
    assert_string_equal(got, "+yellow");
    int64_t t_yellow = real_ms();
    next_light(sub, "南检刑诉受[2026]9号", 10000, got, sizeof(got));
    assert_string_equal(got, "-yellow");
    int64_t at = real_ms() - t_yellow;
    next_light(sub, "南检刑诉受[2026]9号", 1000, got, sizeof(got));
    assert_string_equal(got, "+orange");
    print_message("the orange came %lld ms after the yellow (the daemon's midnight was ~6 s after its start)\n",
                  (long long)at);
    next_light(sub, "南检刑诉受[2026]9号", 500, got, sizeof(got));
    assert_string_equal(got, "");
    redisFree(sub);
    cw_test_daemon_stop(pid);
    redisFree(c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(an_already_overdue_case_raises_exactly_one_red_within_a_second),
        cmocka_unit_test(a_case_with_two_days_left_turns_yellow_then_orange_at_its_boundary),
    };
    return cmocka_run_group_tests_name("deadline lights, live", tests, cw_testredis_group_setup,
                                       cw_testredis_group_teardown);
}
