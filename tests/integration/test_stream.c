/* Integration tests of casewatchd on streams from `casewatch gen`: the
 * indicator hashes against a computation made here from the generated
 * lines, independently of the daemon; and a redis-server restarted in the
 * middle of a stream, with nothing lost and nothing counted twice. */
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

#include "../../daemon/cw_map.h"
#include "../../daemon/cw_period.h"
#include "cw_testredis.h"

#define MAXQ 64 /* quarters kept in the expectation */
#define NUNITS 3

static const char *const units[NUNITS] = {"410923", "410922", "410900"};

/* What the hashes must say, per unit and quarter, computed from the lines. */
typedef struct expect {
    long long cases[NUNITS][MAXQ], extra[NUNITS][MAXQ], decided[NUNITS][MAXQ], plea[NUNITS][MAXQ];
    long long returned[NUNITS][MAXQ], accepted[NUNITS][MAXQ], arrest_decided[NUNITS][MAXQ];
    int q0; /* quarter index of slot 0 */
    long long lines, events, duplicates, bad, open_cases;
} expect;

static int is_extra(const char *t) {
    static const char *const extra[] = {"arrest.reconsideration", "arrest.review", "arrest.complaint",
                                        "prosecution.extended", "prosecution.returned", "prosecution.withdrawn",
                                        "nonprosecution.reconsideration", "nonprosecution.review",
                                        "nonprosecution.complaint", "trial.appeal", "trial.protest",
                                        "trial.remanded", "trial.postponed", "trial.petition",
                                        "compensation.filed"};
    for (size_t i = 0; i < sizeof(extra) / sizeof(extra[0]); i++)
        if (strcmp(t, extra[i]) == 0) return 1;
    return 0;
}

/* INDICATORS.md §2, read straight from the formulas. A line is bad when
 * it has an unknown type, a unit that is not 6 digits, no case, or a ts
 * before 2000: the kinds the generator makes. */
static void compute(const char *text, expect *x) {
    memset(x, 0, sizeof(*x));
    x->q0 = 2020 * 4;
    cw_map *seen = cw_map_new(), *open = cw_map_new(), *closed = cw_map_new();
    const char *p = text;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        json_error_t je;
        json_t *o = json_loadb(p, len, 0, &je);
        p += len + (nl ? 1 : 0);
        assert_non_null(o);
        x->lines++;
        const char *id = json_string_value(json_object_get(o, "id"));
        const char *type = json_string_value(json_object_get(o, "type"));
        const char *cs = json_string_value(json_object_get(o, "case"));
        const char *unit = json_string_value(json_object_get(o, "unit"));
        long long ts = json_integer_value(json_object_get(o, "ts"));
        int u = -1;
        for (int i = 0; i < NUNITS; i++)
            if (unit && strcmp(unit, units[i]) == 0) u = i;
        if (u < 0 || !cs || ts < 946684800000LL || strchr(type, '.') == NULL || strstr(type, "exploded")) {
            x->bad++;
            json_decref(o);
            continue;
        }
        if (cw_map_get(seen, id, strlen(id))) {
            x->duplicates++;
            json_decref(o);
            continue;
        }
        cw_map_put(seen, id, strlen(id), (void *)1);
        x->events++;
        char key[256];
        snprintf(key, sizeof(key), "%s|%s", unit, cs);
        if (strcmp(type, "case.closed") == 0) {
            cw_map_del(open, key, strlen(key));
            cw_map_put(closed, key, strlen(key), (void *)1);
        } else if (!cw_map_get(closed, key, strlen(key))) {
            cw_map_put(open, key, strlen(key), (void *)1);
        }
        int q = cw_period_quarter_index(ts, 480) - x->q0;
        assert_true(q >= 0 && q < MAXQ);
        json_t *nj = json_object_get(o, "n");
        long long n = nj ? json_integer_value(nj) : 1;
        const char *decision = json_string_value(json_object_get(o, "decision"));
        if (strcmp(type, "arrest.accepted") == 0) x->cases[u][q]++;
        if (strcmp(type, "prosecution.accepted") == 0) {
            x->accepted[u][q]++;
            if (!json_is_true(json_object_get(o, "arrested"))) x->cases[u][q]++;
        }
        if (is_extra(type)) x->extra[u][q]++;
        if (strcmp(type, "prosecution.returned") == 0) x->returned[u][q]++;
        if (strcmp(type, "arrest.decided") == 0) x->arrest_decided[u][q] += n;
        if (strcmp(type, "prosecution.decided") == 0) {
            assert_non_null(decision);
            x->decided[u][q] += n;
            if (json_is_true(json_object_get(o, "plea"))) x->plea[u][q] += n;
        }
        json_decref(o);
    }
    x->open_cases = (long long)cw_map_size(open);
    cw_map_free(seen);
    cw_map_free(open);
    cw_map_free(closed);
}

static void check_hashes(redisContext *c, const expect *x) {
    int checked = 0;
    for (int u = 0; u < NUNITS; u++) {
        for (int q = 0; q < MAXQ; q++) {
            if (!x->cases[u][q] && !x->extra[u][q] && !x->decided[u][q]) continue;
            char key[128];
            int qi = x->q0 + q;
            snprintf(key, sizeof(key), "casewatch:ind:unit:%s:%d-Q%d", units[u], qi / 4, qi % 4 + 1);
            assert_int_equal(cw_test_hget_ll(c, key, "cases"), x->cases[u][q]);
            assert_int_equal(cw_test_hget_ll(c, key, "extra_items"), x->extra[u][q]);
            assert_int_equal(cw_test_hget_ll(c, key, "decided_persons"), x->decided[u][q]);
            assert_int_equal(cw_test_hget_ll(c, key, "plea_persons"), x->plea[u][q]);
            assert_int_equal(cw_test_hget_ll(c, key, "returned"), x->returned[u][q]);
            assert_int_equal(cw_test_hget_ll(c, key, "prosecution_accepted"), x->accepted[u][q]);
            assert_int_equal(cw_test_hget_ll(c, key, "arrest_decided_persons"), x->arrest_decided[u][q]);
            if (x->cases[u][q]) {
                char want[32], *got = cw_test_hget(c, key, "case_item_ratio");
                snprintf(want, sizeof(want), "%.4f",
                         (double)(x->cases[u][q] + x->extra[u][q]) / (double)x->cases[u][q]);
                assert_string_equal(got, want);
                free(got);
            }
            if (x->decided[u][q]) {
                char want[32], *got = cw_test_hget(c, key, "plea_rate");
                snprintf(want, sizeof(want), "%.4f", (double)x->plea[u][q] / (double)x->decided[u][q]);
                assert_string_equal(got, want);
                free(got);
            }
            checked++;
        }
    }
    assert_true(checked >= NUNITS * 4);
    assert_int_equal(cw_test_hget_ll(c, "casewatch:daemon:main", "events"), x->events);
    assert_int_equal(cw_test_hget_ll(c, "casewatch:daemon:main", "duplicates"), x->duplicates);
    assert_int_equal(cw_test_hget_ll(c, "casewatch:daemon:main", "dead_lettered"), x->bad);
    assert_int_equal(cw_test_hget_ll(c, "casewatch:daemon:main", "open_cases"), x->open_cases);
    assert_int_equal(cw_test_hget_ll(c, "casewatch:daemon:main", "lag"), 0);
    redisReply *r = redisCommand(c, "XLEN casewatch:events:dead");
    assert_int_equal(r->integer, x->bad);
    freeReplyObject(r);
}

static int cli(const char *const *args, char **out) {
    char bin[256], port[64];
    cw_test_bin("casewatch", bin, sizeof(bin));
    snprintf(port, sizeof(port), "redis.port=%d", cw_test_redis.port);
    char *argv[16] = {bin, "-c", "/dev/null", "-o", port, "-o", "units.410923=南乐县人民检察院"};
    int n = 7;
    for (int i = 0; args[i]; i++) argv[n++] = (char *)args[i];
    argv[n] = NULL;
    char *err = NULL;
    int rc = cw_test_run(argv, NULL, 0, out, &err);
    free(err);
    return rc;
}

/* `casewatch status` and `casewatch ind` read the same numbers back. */
static void show_status_and_indicators(const expect *x) {
    char *out, want[128];
    assert_int_equal(cli((const char *[]){"status", NULL}, &out), 0);
    snprintf(want, sizeof(want), "%lld applied, %lld duplicates, %lld dead-lettered", x->events, x->duplicates,
             x->bad);
    if (!strstr(out, want) || !strstr(out, "running")) fail_msg("status lacks '%s':\n%s", want, out);
    free(out);
    int q = 2; /* 2020-Q3 */
    assert_int_equal(cli((const char *[]){"ind", "unit:410923", "2020-Q3", NULL}, &out), 0);
    snprintf(want, sizeof(want), "1:%.3f", (double)(x->cases[0][q] + x->extra[0][q]) / (double)x->cases[0][q]);
    if (!strstr(out, want) || !strstr(out, "案件比") || !strstr(out, "南乐县人民检察院") ||
        !strstr(out, "认罪认罚从宽制度适用率"))
        fail_msg("ind lacks '%s' or a label:\n%s", want, out);
    free(out);
    assert_int_equal(cli((const char *[]){"ind", "dept:410923:第一检察部", NULL}, &out), 0);
    assert_non_null(strstr(out, "2020-Q3\n"));
    free(out);
    assert_int_equal(cli((const char *[]){"ind", "unit:410923", "1999-Q1", NULL}, &out), 1);
    free(out);
    assert_int_equal(cli((const char *[]){"ind", "bogus:1", "2020", NULL}, &out), 1); /* bad input */
    free(out);
}

static const char *const gen_args[] = {"--seed", "11", "--cases", "4000", "--days", "540", "--dup-rate", "0.03",
                                       "--late-rate", "0.3", "--bad-rate", "0.002", NULL};

static void a_generated_year_and_a_half_matches_the_formulas(void **state) {
    (void)state;
    redisContext *c = cw_testredis_connect(&cw_test_redis);
    freeReplyObject(redisCommand(c, "FLUSHALL"));
    char *lines = cw_test_gen(gen_args);
    expect *x = calloc(1, sizeof(*x));
    compute(lines, x);
    assert_true(x->duplicates > 100 && x->bad > 10 && x->events > 15000);
    cw_test_feed_raw(lines, strlen(lines));
    pid_t pid = cw_test_daemon_start(NULL);
    cw_test_wait_read(c, x->lines);
    show_status_and_indicators(x);
    cw_test_daemon_stop(pid);
    check_hashes(c, x);
    free(x);
    free(lines);
    redisFree(c);
}

/* The first half is read, Redis is killed (SIGKILL; the stream survives
 * in its last SAVE) and restarted while the daemon runs, the second half
 * comes in: every event counts exactly once. */
static void a_redis_restart_mid_stream_loses_and_doubles_nothing(void **state) {
    (void)state;
    redisContext *c = cw_testredis_connect(&cw_test_redis);
    freeReplyObject(redisCommand(c, "FLUSHALL"));
    char *lines = cw_test_gen(gen_args);
    expect *x = calloc(1, sizeof(*x));
    compute(lines, x);
    size_t len = strlen(lines), half = len / 2;
    while (half < len && lines[half] != '\n') half++;
    half++;
    long long first = 0;
    for (size_t i = 0; i < half; i++) first += lines[i] == '\n';
    cw_test_feed_raw(lines, half);
    pid_t pid = cw_test_daemon_start(NULL);
    cw_test_wait_read(c, first);
    freeReplyObject(redisCommand(c, "SAVE"));
    redisFree(c);
    assert_int_equal(cw_testredis_restart(&cw_test_redis), 0);
    c = cw_testredis_connect(&cw_test_redis);
    cw_test_feed_raw(lines + half, len - half);
    cw_test_wait_read(c, x->lines);
    cw_test_sleep_ms(1000);
    cw_test_daemon_stop(pid);
    check_hashes(c, x);
    free(x);
    free(lines);
    redisFree(c);
}

/* --replay: reads to the tip as it was at start, writes everything, prints
 * one line and exits 0; the hashes are those of a daemon left running. */
static void replay_reads_to_the_tip_and_exits(void **state) {
    (void)state;
    redisContext *c = cw_testredis_connect(&cw_test_redis);
    freeReplyObject(redisCommand(c, "FLUSHALL"));
    char *lines = cw_test_gen(gen_args);
    expect *x = calloc(1, sizeof(*x));
    compute(lines, x);
    cw_test_feed_raw(lines, strlen(lines));
    char bin[256], port[64], sd[96];
    cw_test_bin("casewatchd", bin, sizeof(bin));
    snprintf(port, sizeof(port), "redis.port=%d", cw_test_redis.port);
    snprintf(sd, sizeof(sd), "daemon.state_dir=%s", cw_test_state_dir());
    char *argv[] = {bin, "-c", "/dev/null", "-o", port, "-o", sd, "-o", "daemon.log_level=warning", "--replay", NULL};
    char *out, *err;
    assert_int_equal(cw_test_run(argv, NULL, 0, &out, &err), 0);
    char want[64];
    snprintf(want, sizeof(want), "replayed %lld events (%lld entries read)", x->events, x->lines);
    if (!strstr(out, want)) fail_msg("expected '%s' in: %s", want, out);
    free(out), free(err);
    check_hashes(c, x);
    free(x);
    free(lines);
    redisFree(c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_generated_year_and_a_half_matches_the_formulas),
        cmocka_unit_test(a_redis_restart_mid_stream_loses_and_doubles_nothing),
        cmocka_unit_test(replay_reads_to_the_tip_and_exits),
    };
    return cmocka_run_group_tests_name("casewatchd on generated streams", tests, cw_testredis_group_setup,
                                       cw_testredis_group_teardown);
}
