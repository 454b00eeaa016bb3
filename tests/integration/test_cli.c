/* Integration tests of the casewatch CLI's messages and exit statuses
 * against a real redis-server: every command does what it says or names
 * the problem, with exit 1 for bad input and 2 for a failure. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "../../proto/cw_event.h"
#include "cw_testredis.h"

static int64_t now_ms(void) {
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* Runs `casewatch -c /dev/null -o redis.port=P -o units... ARGS`; stdout
 * and stderr are the caller's to free. */
static int cli(const char *const *args, char **out, char **err) {
    char bin[256], port[64];
    cw_test_bin("casewatch", bin, sizeof(bin));
    snprintf(port, sizeof(port), "redis.port=%d", cw_test_redis.port);
    char *argv[40] = {bin,  "-c", "/dev/null", "-o", port, "-o", "units.410923=南乐县人民检察院",
                      "-o", "units.410900=濮阳市人民检察院"};
    int n = 9;
    for (int i = 0; args[i] && n < 38; i++) argv[n++] = (char *)args[i];
    argv[n] = NULL;
    return cw_test_run(argv, NULL, 0, out, err);
}

static redisContext *fresh(void) {
    redisContext *c = cw_testredis_connect(&cw_test_redis);
    freeReplyObject(redisCommand(c, "FLUSHALL"));
    return c;
}

static void log_alert(redisContext *c, const char *unit, const char *id) {
    char json[512];
    snprintf(json, sizeof(json),
             "{\"id\":\"%s\",\"state\":\"firing\",\"level\":\"yellow\",\"unit\":\"%s\",\"emitted_at\":%lld,"
             "\"message\":\"m\"}",
             id, unit, (long long)now_ms());
    freeReplyObject(redisCommand(c, "XADD casewatch:alerts:log * a %s", json));
}

static void tail_last_zero_prints_nothing_and_exits_zero(void **state) {
    (void)state;
    redisContext *c = fresh();
    log_alert(c, "410923", "a/1");
    char *out, *err;
    assert_int_equal(cli((const char *[]){"tail", "--last", "0", "--no-follow", NULL}, &out, &err), 0);
    assert_string_equal(out, "");
    assert_string_equal(err, "");
    free(out), free(err);
    assert_int_equal(cli((const char *[]){"tail", "--last", "1", "--no-follow", NULL}, &out, &err), 0);
    assert_non_null(strstr(out, "a/1"));
    free(out), free(err);
    redisFree(c);
}

static void tail_from_a_bogus_id_is_bad_input_naming_what_it_takes(void **state) {
    (void)state;
    char *out, *err;
    assert_int_equal(cli((const char *[]){"tail", "--from", "bogus", "--no-follow", NULL}, &out, &err), 1);
    assert_non_null(strstr(err, "--from takes an alert log id"));
    assert_non_null(strstr(err, "not 'bogus'"));
    assert_null(strstr(err, "ERR"));
    free(out), free(err);
}

static void tail_unit_takes_a_configured_name_and_refuses_an_unknown_one(void **state) {
    (void)state;
    redisContext *c = fresh();
    log_alert(c, "410923", "nanle/1");
    log_alert(c, "410900", "puyang/1");
    char *out, *err;
    assert_int_equal(cli((const char *[]){"tail", "--from", "0", "--unit", "南乐", "--no-follow", NULL}, &out, &err), 0);
    assert_non_null(strstr(out, "nanle/1"));
    assert_null(strstr(out, "puyang/1"));
    free(out), free(err);
    assert_int_equal(cli((const char *[]){"tail", "--unit", "北京", "--no-follow", NULL}, &out, &err), 1);
    assert_non_null(strstr(err, "unknown unit '北京'"));
    assert_non_null(strstr(err, "410923 南乐县人民检察院"));
    free(out), free(err);
    assert_int_equal(cli((const char *[]){"tail", "--unit", "人民检察院", "--no-follow", NULL}, &out, &err), 1);
    assert_non_null(strstr(err, "names more than one 院"));
    free(out), free(err);
    redisFree(c);
}

static void ind_without_data_says_what_is_missing(void **state) {
    (void)state;
    redisContext *c = fresh();
    char *out, *err;
    assert_int_equal(cli((const char *[]){"ind", "unit:410923", NULL}, &out, &err), 1);
    assert_non_null(strstr(err, "no indicators for unit:410923"));
    assert_non_null(strstr(err, "casewatch:ind:unit:410923:*"));
    free(out), free(err);
    freeReplyObject(redisCommand(c, "HSET casewatch:ind:unit:410923:2020-Q3 case_item_ratio 1.3200 cases 30"));
    assert_int_equal(cli((const char *[]){"ind", "unit:410923", "2020-Q4", NULL}, &out, &err), 1);
    assert_non_null(strstr(err, "no indicators for unit:410923 in 2020-Q4"));
    assert_non_null(strstr(err, "periods held: 2020-Q3"));
    free(out), free(err);
    assert_int_equal(cli((const char *[]){"ind", "shop:1", NULL}, &out, &err), 1);
    assert_non_null(strstr(err, "scope 'shop:1' is not one of"));
    free(out), free(err);
    redisFree(c);
}

static void ind_json_reads_a_unit_by_name(void **state) {
    (void)state;
    redisContext *c = fresh();
    freeReplyObject(redisCommand(c, "HSET casewatch:ind:unit:410923:2020-Q3 case_item_ratio 1.3200 cases 30"));
    char *out, *err;
    assert_int_equal(cli((const char *[]){"ind", "--json", "unit:南乐", "2020-Q3", NULL}, &out, &err), 0);
    json_error_t je;
    json_t *o = json_loads(out, 0, &je);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "scope")), "unit:410923");
    assert_string_equal(json_string_value(json_object_get(o, "unit_name")), "南乐县人民检察院");
    json_t *v = json_object_get(o, "values");
    assert_true(json_real_value(json_object_get(v, "case_item_ratio")) > 1.319);
    assert_int_equal(json_integer_value(json_object_get(v, "cases")), 30);
    assert_true(json_is_null(json_object_get(v, "plea_rate")));
    json_decref(o);
    free(out), free(err);
    redisFree(c);
}

static void ind_escapes_glob_characters_of_names_in_its_scan(void **state) {
    (void)state;
    redisContext *c = fresh();
    freeReplyObject(redisCommand(c, "HSET casewatch:ind:dept:410923:a*b:2020-Q3 cases 1"));
    freeReplyObject(redisCommand(c, "HSET casewatch:ind:dept:410923:aXb:2020-Q1 cases 1"));
    freeReplyObject(redisCommand(c, "HSET casewatch:ind:dept:410923:a?[b]\\:2020-Q2 cases 1"));
    char *out, *err;
    assert_int_equal(cli((const char *[]){"ind", "dept:410923:a*b", NULL}, &out, &err), 0);
    assert_string_equal(out, "2020-Q3\n");
    free(out), free(err);
    assert_int_equal(cli((const char *[]){"ind", "--json", "dept:410923:a?[b]\\", NULL}, &out, &err), 0);
    assert_non_null(strstr(out, "2020-Q2"));
    assert_null(strstr(out, "2020-Q1"));
    free(out), free(err);
    redisFree(c);
}

static void status_tells_running_stale_stopped_and_missing_apart(void **state) {
    (void)state;
    redisContext *c = fresh();
    char *out, *err;
    assert_int_equal(cli((const char *[]){"status", "--json", NULL}, &out, &err), 1);
    assert_non_null(strstr(out, "\"state\": \"missing\""));
    free(out), free(err);
    long long t = (long long)now_ms();
    freeReplyObject(redisCommand(c, "HSET casewatch:daemon:main started_at %lld heartbeat_at %lld events 7 state running",
                                 t - 60000, t));
    assert_int_equal(cli((const char *[]){"status", NULL}, &out, &err), 0);
    assert_non_null(strstr(out, ": running"));
    free(out), free(err);
    assert_int_equal(cli((const char *[]){"status", "--json", NULL}, &out, &err), 0);
    json_t *o = json_loads(out, 0, NULL);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "state")), "running");
    assert_int_equal(json_integer_value(json_object_get(o, "events")), 7);
    json_decref(o);
    free(out), free(err);
    freeReplyObject(redisCommand(c, "HSET casewatch:daemon:main heartbeat_at %lld", t - 60000));
    assert_int_equal(cli((const char *[]){"status", NULL}, &out, &err), 1);
    assert_non_null(strstr(out, "NOT RUNNING (heartbeat stale)"));
    free(out), free(err);
    freeReplyObject(redisCommand(c, "HSET casewatch:daemon:main state stopped stopped_at %lld", t - 60000));
    assert_int_equal(cli((const char *[]){"status", NULL}, &out, &err), 3);
    assert_non_null(strstr(out, "stopped cleanly at"));
    assert_null(strstr(out, "NOT RUNNING"));
    free(out), free(err);
    assert_int_equal(cli((const char *[]){"status", "--json", NULL}, &out, &err), 3);
    assert_non_null(strstr(out, "\"state\": \"stopped\""));
    free(out), free(err);
    assert_int_equal(cli((const char *[]){"status", "extra", NULL}, &out, &err), 1);
    assert_non_null(strstr(err, "unexpected argument 'extra'"));
    free(out), free(err);
    redisFree(c);
}

static void every_command_has_its_own_help(void **state) {
    (void)state;
    const char *cmds[] = {"feed", "gen", "status", "ind", "tail", "dead"};
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        char *out, *err, want[64];
        assert_int_equal(cli((const char *[]){cmds[i], "--help", NULL}, &out, &err), 0);
        snprintf(want, sizeof(want), "] %s", cmds[i]);
        if (!strstr(out, want)) fail_msg("%s --help printed: %s", cmds[i], out);
        assert_null(strstr(out, "Commands:")); /* not the general usage */
        free(out), free(err);
    }
    char *out, *err;
    assert_int_equal(cli((const char *[]){"tail", "--bogus", NULL}, &out, &err), 1);
    assert_non_null(strstr(err, "casewatch tail: unrecognized option '--bogus'"));
    assert_non_null(strstr(err, "see casewatch tail --help"));
    free(out), free(err);
    assert_int_equal(cli((const char *[]){"nosuch", NULL}, &out, &err), 1);
    assert_non_null(strstr(err, "unknown command 'nosuch'"));
    free(out), free(err);
}

static void a_redis_that_cannot_be_reached_is_a_failure(void **state) {
    (void)state;
    char bin[256];
    cw_test_bin("casewatch", bin, sizeof(bin));
    char *argv[] = {bin, "-c", "/dev/null", "-o", "redis.port=1", "-o", "redis.timeout_ms=300", "status", NULL};
    char *out, *err;
    assert_int_equal(cw_test_run(argv, NULL, 0, &out, &err), 2);
    assert_non_null(strstr(err, "casewatch status: cannot connect to redis at 127.0.0.1:1"));
    free(out), free(err);
}

/* A dead letter as the daemon writes it: the original fields, reason,
 * source_id. */
static void add_dead(redisContext *c, const char *e, size_t elen, const char *reason, const char *src) {
    const char *argv[] = {"XADD", "casewatch:events:dead", "*", "e", e, "reason", reason, "source_id", src};
    size_t argl[] = {4, 21, 1, 1, elen, 6, strlen(reason), 9, strlen(src)};
    freeReplyObject(redisCommandArgv(c, 9, argv, argl));
}

static void dead_lists_letters_with_reasons_and_refeeds_a_corrected_one(void **state) {
    (void)state;
    redisContext *c = fresh();
    cw_event ev = cw_test_event("d1", "南检刑诉受[2020]1号", "410923", CW_EV_ARREST_DECIDED, 1596157200000LL);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    cw_event_encode(&ev, &sb); /* no decision: the daemon refused it */
    add_dead(c, sb.data, sb.size, "key 'decision' is required for arrest.decided", "1596157200000-0");
    add_dead(c, "\xc1\xff", 2, "event is not a msgpack map", "1596157200000-1");
    msgpack_sbuffer_destroy(&sb);
    char *out, *err;
    assert_int_equal(cli((const char *[]){"dead", NULL}, &out, &err), 0);
    assert_non_null(strstr(out, "reason  key 'decision' is required for arrest.decided"));
    assert_non_null(strstr(out, "from 1596157200000-0"));
    assert_non_null(strstr(out, "\"id\":\"d1\""));
    assert_non_null(strstr(out, "\"case\":\"南检刑诉受[2020]1号\""));
    assert_non_null(strstr(out, "e (hex) c1ff"));
    free(out), free(err);
    assert_int_equal(cli((const char *[]){"dead", "--json", "--reason", "decision", NULL}, &out, &err), 0);
    json_t *o = json_loads(out, JSON_DISABLE_EOF_CHECK, NULL);
    assert_non_null(o);
    assert_null(strstr(out, "c1ff"));
    char id[64];
    snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(o, "id")));
    assert_string_equal(json_string_value(json_object_get(json_object_get(o, "event"), "type")), "arrest.decided");
    json_decref(o);
    free(out), free(err);
    /* still bad without a correction: refused, nothing sent */
    assert_int_equal(cli((const char *[]){"dead", "--refeed", id, NULL}, &out, &err), 1);
    assert_non_null(strstr(err, "is still bad: key 'decision' is required"));
    free(out), free(err);
    redisReply *r = redisCommand(c, "XLEN casewatch:events");
    assert_int_equal(r->integer, 0);
    freeReplyObject(r);
    assert_int_equal(cli((const char *[]){"dead", "--refeed", id, "--set", "decision=approve", NULL}, &out, &err), 0);
    assert_non_null(strstr(out, "re-fed to casewatch:events as "));
    free(out), free(err);
    r = redisCommand(c, "XRANGE casewatch:events - +");
    assert_int_equal(r->elements, 1);
    redisReply *f = r->element[0]->element[1];
    cw_event got;
    char why[256];
    assert_int_equal(cw_event_decode(NULL, f->element[1]->str, f->element[1]->len, now_ms(), &got, why, sizeof(why)), 0);
    assert_string_equal(got.id, "d1");
    assert_int_equal(got.decision, CW_DECISION_APPROVE);
    assert_int_equal(got.ts, 1596157200000LL);
    char *newid = strdup(r->element[0]->element[0]->str);
    freeReplyObject(r);
    char *marked = cw_test_hget(c, "casewatch:events:dead:refed", id);
    assert_string_equal(marked, newid);
    free(marked);
    /* once only, and the listing says so */
    assert_int_equal(cli((const char *[]){"dead", "--refeed", id, "--set", "decision=approve", NULL}, &out, &err), 1);
    assert_non_null(strstr(err, "was re-fed already"));
    free(out), free(err);
    assert_int_equal(cli((const char *[]){"dead", "--last", "5", NULL}, &out, &err), 0);
    char want[128];
    snprintf(want, sizeof(want), "re-fed  as %s", newid);
    assert_non_null(strstr(out, want));
    free(out), free(err);
    assert_int_equal(cli((const char *[]){"dead", "--refeed", "1-1", NULL}, &out, &err), 1);
    assert_non_null(strstr(err, "no dead letter 1-1"));
    free(out), free(err);
    assert_int_equal(cli((const char *[]){"dead", "--refeed", id, "--set", "nope=1", NULL}, &out, &err), 1);
    assert_non_null(strstr(err, "'nope' is not a key"));
    free(out), free(err);
    free(newid);
    redisFree(c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(tail_last_zero_prints_nothing_and_exits_zero),
        cmocka_unit_test(tail_from_a_bogus_id_is_bad_input_naming_what_it_takes),
        cmocka_unit_test(tail_unit_takes_a_configured_name_and_refuses_an_unknown_one),
        cmocka_unit_test(ind_without_data_says_what_is_missing),
        cmocka_unit_test(ind_json_reads_a_unit_by_name),
        cmocka_unit_test(ind_escapes_glob_characters_of_names_in_its_scan),
        cmocka_unit_test(status_tells_running_stale_stopped_and_missing_apart),
        cmocka_unit_test(every_command_has_its_own_help),
        cmocka_unit_test(a_redis_that_cannot_be_reached_is_a_failure),
        cmocka_unit_test(dead_lists_letters_with_reasons_and_refeeds_a_corrected_one),
    };
    return cmocka_run_group_tests_name("casewatch CLI", tests, cw_testredis_group_setup, cw_testredis_group_teardown);
}
