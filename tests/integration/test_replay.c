/* Integration test of replays (issue 18, PROTOCOL.md §3b) against a real
 * redis-server: a --replay judges all of history but logs and publishes
 * only its net change against the state before it ("replay": true), ends
 * with the firing hash a live run of the same stream ends with, and a
 * second replay of the same stream announces nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "../../daemon/cw_map.h"
#include "cw_testredis.h"

#define CONF "systemd/casewatch.conf"
#define FIRING "casewatch:alerts:firing"
#define LOG "casewatch:alerts:log"

static void free_values(cw_map *m) {
    size_t pos = 0;
    void *v;
    while (cw_map_next(m, &pos, NULL, NULL, &v)) free(v);
    cw_map_free(m);
}

/* An alert's JSON without what differs between a live run and a replay
 * of the same stream: when it was sent, the replay mark, and for
 * indicator rules the value it fired with (and the event and sentence
 * carrying it), which depends on when a flush point judged it (on a
 * timer live, every flush_entries entries in a replay). Deadline lights
 * are judged on event time, and are compared whole. */
static char *comparable(const char *json) {
    json_t *a = json_loads(json, 0, NULL);
    assert_non_null(a);
    json_object_del(a, "emitted_at");
    json_object_del(a, "replay");
    if (json_object_get(a, "indicator")) {
        json_object_del(a, "value");
        json_object_del(a, "event_ts");
        json_object_del(a, "message");
    }
    char *s = json_dumps(a, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(a);
    return s;
}

/* A firing hash as id -> comparable JSON. */
static cw_map *hash_of(redisContext *c, const char *key) {
    cw_map *m = cw_map_new();
    redisReply *r = redisCommand(c, "HGETALL %s", key);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    for (size_t i = 0; i + 1 < r->elements; i += 2)
        cw_map_put(m, r->element[i]->str, r->element[i]->len, comparable(r->element[i + 1]->str));
    freeReplyObject(r);
    return m;
}

static void assert_same_hash(cw_map *want, cw_map *got) {
    size_t pos = 0;
    const char *id;
    void *v;
    while (cw_map_next(want, &pos, &id, NULL, &v)) {
        const char *g = cw_map_get(got, id, strlen(id));
        if (!g) fail_msg("%s is firing after the live run, not after the replay", id);
        if (strcmp(g, v) != 0) fail_msg("%s differs:\n  live:   %s\n  replay: %s", id, (char *)v, g);
    }
    pos = 0;
    while (cw_map_next(got, &pos, &id, NULL, &v))
        if (!cw_map_get(want, id, strlen(id))) fail_msg("%s is firing after the replay, not after the live run", id);
}

static long long xlen(redisContext *c, const char *key) {
    redisReply *r = redisCommand(c, "XLEN %s", key);
    long long n = r->integer;
    freeReplyObject(r);
    return n;
}

/* Calls of a command since the last CONFIG RESETSTAT (INFO commandstats). */
static long long calls(redisContext *c, const char *cmd) {
    redisReply *r = redisCommand(c, "INFO commandstats");
    char want[64];
    snprintf(want, sizeof(want), "cmdstat_%s:calls=", cmd);
    const char *p = strstr(r->str, want);
    long long n = p ? atoll(p + strlen(want)) : 0;
    freeReplyObject(r);
    return n;
}

/* casewatchd --replay with the shipped rules: from the snapshot in
 * state_dir, or with rebuild from the stream's start. */
static void replay_from(const char *state_dir, int rebuild) {
    char bin[256], port[64], sd[96];
    cw_test_bin("casewatchd", bin, sizeof(bin));
    snprintf(port, sizeof(port), "redis.port=%d", cw_test_redis.port);
    snprintf(sd, sizeof(sd), "daemon.state_dir=%s", state_dir);
    char *argv[] = {bin, "-c", CONF, "-o", port, "-o", sd, "-o", "daemon.log_level=warning", "--replay",
                    rebuild ? "--rebuild" : NULL, NULL};
    char *out, *err;
    if (cw_test_run(argv, NULL, 0, &out, &err) != 0) fail_msg("replay failed: %s", err);
    free(out), free(err);
}

static void replay(void) {
    replay_from(cw_test_state_dir(), 1);
}

/* Every log entry from index `from` on: marked "replay": true; counts
 * them and those resolved. */
static size_t replay_entries(redisContext *c, long long from, size_t *resolved) {
    redisReply *r = redisCommand(c, "XRANGE %s - +", LOG);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    size_t n = 0;
    *resolved = 0;
    for (size_t i = (size_t)from; i < r->elements; i++, n++) {
        const char *json = r->element[i]->element[1]->element[1]->str;
        json_t *a = json_loads(json, 0, NULL);
        if (!json_is_true(json_object_get(a, "replay"))) fail_msg("a replay's entry without \"replay\": true: %s", json);
        *resolved += strcmp(json_string_value(json_object_get(a, "state")), "resolved") == 0;
        json_decref(a);
    }
    freeReplyObject(r);
    return n;
}

/* Two years of 6,000 cases (a few percent of reviews overdue, no late
 * events, so that what fires at the end does not hang on when a live run
 * happened to judge): thousands of transitions. */
static void a_replay_logs_only_its_net_change_and_ends_as_a_live_run_and_a_second_one_logs_nothing(void **state) {
    (void)state;
    redisContext *c = cw_testredis_connect(&cw_test_redis);
    freeReplyObject(redisCommand(c, "FLUSHALL"));
    const char *args[] = {"--seed", "18", "--cases", "6000", "--days", "730", "--late-rate", "0", "--dup-rate", "0",
                          "--overdue-rate", "0.04", NULL};
    char *lines = cw_test_gen(args);
    long long n = 0;
    for (const char *p = lines; *p; p++) n += *p == '\n';
    cw_test_feed_raw(lines, strlen(lines));

    /* the live run (it catches up: not a replay), on keys of its own */
    const char *live[] = {"alerts.log_key=live:log", "alerts.firing_key=live:firing", "alerts.acks_key=live:acks",
                          "alerts.channel=live:alerts", NULL};
    pid_t pid = cw_test_daemon_start_with(CONF, live);
    cw_test_wait_read(c, n);
    cw_test_daemon_stop(pid);
    long long transitions = xlen(c, "live:log");
    assert_true(transitions > 2000);

    /* the first replay: before it, nothing firing */
    freeReplyObject(redisCommand(c, "CONFIG RESETSTAT"));
    replay();
    size_t resolved;
    size_t logged = replay_entries(c, 0, &resolved);
    cw_map *want = hash_of(c, "live:firing"), *got = hash_of(c, FIRING);
    assert_same_hash(want, got);
    /* the net change from nothing firing: one message per alert firing at the end */
    assert_int_equal(logged, cw_map_size(want));
    assert_int_equal(resolved, 0);
    assert_true(logged > 10 && (long long)logged * 5 < transitions);
    long long pub = calls(c, "publish");
    assert_true(pub >= (long long)logged && pub <= 2 * (long long)logged);
    assert_int_equal(calls(c, "xadd"), (long long)logged);
    print_message("%lld events, %lld transitions live; the replay logged %zu (%lld publications), its firing hash "
                  "equals the live run's\n", n, transitions, logged, pub);

    /* the second replay of the same stream: nothing differs, nothing said */
    freeReplyObject(redisCommand(c, "CONFIG RESETSTAT"));
    replay();
    assert_int_equal(xlen(c, LOG), (long long)logged);
    assert_int_equal(calls(c, "publish"), 0);
    cw_map *again = hash_of(c, FIRING);
    assert_same_hash(want, again);

    /* a rebuild against a hash holding an alert the stream never raises:
     * that one alert is resolved, nothing else is said */
    const char *ghost = "{\"id\":\"ghost.yellow/unit:410923/2019-Q1\",\"state\":\"firing\",\"level\":\"yellow\","
                        "\"label\":\"黄牌预警\",\"rule\":\"ghost.yellow\",\"scope\":\"unit:410923\",\"unit\":\"410923\","
                        "\"event_ts\":1,\"emitted_at\":2,\"message\":\"鬼\"}";
    freeReplyObject(redisCommand(c, "HSET %s %s %s", FIRING, "ghost.yellow/unit:410923/2019-Q1", ghost));
    replay();
    assert_int_equal(replay_entries(c, (long long)logged, &resolved), 1);
    assert_int_equal(resolved, 1);
    redisReply *r = redisCommand(c, "HEXISTS %s %s", FIRING, "ghost.yellow/unit:410923/2019-Q1");
    assert_int_equal(r->integer, 0);
    freeReplyObject(r);
    cw_map *last = hash_of(c, FIRING);
    assert_same_hash(want, last);

    free_values(want), free_values(got), free_values(again), free_values(last);
    free(lines);
    redisFree(c);
}

/* The live run of a whole stream on keys of its own (live:*), as the
 * reference a replay must end equal to; returns its transitions. */
static long long live_run(redisContext *c, long long n) {
    const char *live[] = {"alerts.log_key=live:log", "alerts.firing_key=live:firing", "alerts.acks_key=live:acks",
                          "alerts.channel=live:alerts", NULL};
    pid_t pid = cw_test_daemon_start_with(CONF, live);
    cw_test_wait_read(c, n);
    cw_test_daemon_stop(pid);
    return xlen(c, "live:log");
}

/* A backfill (--replay from a snapshot, no rebuild): the state before it
 * is the snapshot's firing set. A daemon reads the first half of a stream
 * and stops (its snapshot); the second half is fed, and a --replay from
 * that snapshot logs exactly the ids whose state differs between the
 * firing set before it and the one it ends with, all "replay": true; it
 * ends equal to a live run of the whole stream. */
static void a_backfill_from_a_snapshot_announces_what_changed_since_it(void **state) {
    (void)state;
    redisContext *c = cw_testredis_connect(&cw_test_redis);
    freeReplyObject(redisCommand(c, "FLUSHALL"));
    const char *args[] = {"--seed", "7", "--cases", "6000", "--days", "730", "--late-rate", "0", "--dup-rate", "0",
                          "--overdue-rate", "0.04", NULL};
    char *lines = cw_test_gen(args);
    size_t len = strlen(lines), half = len / 2;
    while (lines[half - 1] != '\n') half++;
    long long n1 = 0, n = 0;
    for (size_t i = 0; i < len; i++) n += lines[i] == '\n', n1 += i < half && lines[i] == '\n';

    /* the first half, read by a daemon that stops with a snapshot */
    const char *dir = cw_test_state_dir();
    char sd[96];
    snprintf(sd, sizeof(sd), "daemon.state_dir=%s", dir);
    const char *opts[] = {sd, NULL};
    cw_test_feed_raw(lines, half);
    pid_t pid = cw_test_daemon_start_with(CONF, opts);
    cw_test_wait_read(c, n1);
    cw_test_daemon_stop(pid);
    cw_map *before = hash_of(c, FIRING);
    long long logged0 = xlen(c, LOG);

    /* the rest, and the reference */
    cw_test_feed_raw(lines + half, len - half);
    long long transitions = live_run(c, n);

    replay_from(dir, 0);
    cw_map *after = hash_of(c, FIRING), *want = hash_of(c, "live:firing");
    assert_same_hash(want, after);
    /* the net change: the symmetric difference of the two firing sets */
    size_t changed = 0, pos = 0;
    const char *id;
    void *v;
    while (cw_map_next(after, &pos, &id, NULL, &v)) changed += !cw_map_get(before, id, strlen(id));
    size_t appeared = changed;
    pos = 0;
    while (cw_map_next(before, &pos, &id, NULL, &v)) changed += !cw_map_get(after, id, strlen(id));
    size_t resolved;
    size_t logged = replay_entries(c, logged0, &resolved);
    assert_int_equal(logged, changed);
    assert_int_equal(resolved, changed - appeared);
    assert_true(changed > 10 && (long long)changed * 5 < transitions);
    print_message("%zu firing at the snapshot, %zu at the end; the backfill logged %zu (%zu resolved); %lld "
                  "transitions in the live run\n", cw_map_size(before), cw_map_size(after), logged, resolved,
                  transitions);
    free_values(before), free_values(after), free_values(want);
    free(lines);
    redisFree(c);
}

/* ---- A replay interrupted: Redis restarting, SIGTERM ---------------------- */

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every indicator hash as key -> its fields and values, sorted. */
static cw_map *indicators_of(redisContext *c) {
    cw_map *m = cw_map_new();
    redisReply *keys = redisCommand(c, "KEYS casewatch:ind:*");
    assert_int_equal(keys->type, REDIS_REPLY_ARRAY);
    for (size_t k = 0; k < keys->elements; k++) {
        redisReply *r = redisCommand(c, "HGETALL %s", keys->element[k]->str);
        size_t n = r->elements / 2, len = 1;
        char **fv = calloc(n + 1, sizeof(*fv));
        for (size_t i = 0; i < n; i++) {
            size_t l = r->element[2 * i]->len + r->element[2 * i + 1]->len + 2;
            fv[i] = malloc(l);
            snprintf(fv[i], l, "%s=%s", r->element[2 * i]->str, r->element[2 * i + 1]->str);
            len += l;
        }
        qsort(fv, n, sizeof(*fv), cmp_str);
        char *all = calloc(1, len);
        for (size_t i = 0; i < n; i++) {
            strcat(all, fv[i]);
            strcat(all, "\n");
            free(fv[i]);
        }
        free(fv);
        cw_map_put(m, keys->element[k]->str, keys->element[k]->len, all);
        freeReplyObject(r);
    }
    freeReplyObject(keys);
    return m;
}

static void assert_same_indicators(cw_map *want, cw_map *got) {
    assert_int_equal(cw_map_size(want), cw_map_size(got));
    size_t pos = 0;
    const char *key;
    void *v;
    while (cw_map_next(want, &pos, &key, NULL, &v)) {
        const char *g = cw_map_get(got, key, strlen(key));
        if (!g) fail_msg("%s is missing after the interrupted replay", key);
        if (strcmp(g, v) != 0) fail_msg("%s differs:\n  whole:       %s\n  interrupted: %s", key, (char *)v, g);
    }
}

/* What a replay wrote, gone (the stream stays). */
static void clear_outputs(redisContext *c) {
    redisReply *keys = redisCommand(c, "KEYS casewatch:ind:*");
    for (size_t k = 0; k < keys->elements; k++) freeReplyObject(redisCommand(c, "DEL %s", keys->element[k]->str));
    freeReplyObject(keys);
    freeReplyObject(redisCommand(c, "DEL %s %s casewatch:events:dead", LOG, FIRING));
}

/* casewatchd --replay --rebuild in the background, its stdout and stderr
 * to files under the state directory; returns its pid. */
static pid_t replay_start(const char *dir, const char *extra, char *out, char *err, size_t len) {
    char bin[256], port[64], sd[96];
    cw_test_bin("casewatchd", bin, sizeof(bin));
    snprintf(port, sizeof(port), "redis.port=%d", cw_test_redis.port);
    snprintf(sd, sizeof(sd), "daemon.state_dir=%s", dir);
    snprintf(out, len, "%s/replay.out", dir);
    snprintf(err, len, "%s/replay.err", dir);
    char *argv[] = {bin, "-c", CONF, "-o", port, "-o", sd, "-o", "daemon.log_level=warning", "-o",
                    (char *)(extra ? extra : "daemon.instance=main"), "--replay", "--rebuild", NULL};
    pid_t pid = fork();
    if (pid == 0) {
        int o = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644), e = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(o, 1);
        dup2(e, 2);
        execv(bin, argv);
        _exit(127);
    }
    assert_true(pid > 0);
    return pid;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *slurp(const char *path) {
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char *buf = calloc(1, 1 << 20);
    size_t n = fread(buf, 1, (1 << 20) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* Waits until Redis has answered `n` XREADs since the last CONFIG
 * RESETSTAT (the replay is that far). */
static void wait_xreads(redisContext *c, long long n) {
    for (int i = 0; i < 20000 && calls(c, "xread") < n; i++) cw_test_sleep_ms(1);
    assert_true(calls(c, "xread") >= n);
}

static const char *const big_args[] = {"--seed", "5", "--cases", "20000", "--lines", "100000", "--days", "730",
                                       "--late-rate", "0", "--dup-rate", "0.01", "--overdue-rate", "0.03", NULL};

/* A connection to the test's Redis, emptied and fed the big_args stream;
 * *events (when not NULL): how many lines it had. */
static redisContext *big_stream(long long *events) {
    redisContext *c = cw_testredis_connect(&cw_test_redis);
    freeReplyObject(redisCommand(c, "FLUSHALL"));
    char *lines = cw_test_gen(big_args);
    long long n = 0;
    for (const char *p = lines; *p; p++) n += *p == '\n';
    cw_test_feed_raw(lines, strlen(lines));
    free(lines);
    if (events) *events = n;
    return c;
}

/* Redis killed (SIGKILL; the stream survives in its last SAVE) and
 * restarted. */
static void restart_redis(redisContext *c) {
    (void)c;
    assert_int_equal(cw_testredis_restart(&cw_test_redis), 0);
}

/* Redis paused past five read timeouts (redis.timeout_ms=300), then on. */
static void pause_redis(redisContext *c) {
    (void)c;
    kill(cw_test_redis.pid, SIGSTOP);
    cw_test_sleep_ms(1500);
    kill(cw_test_redis.pid, SIGCONT);
}

/* Redis busy (Lua scripts of 600 ms, 100 ms apart, twice) while a replay
 * reads: a reply of 1,000 entries goes out in several writes, so a script
 * often stalls one half sent, past redis.timeout_ms=200; the read gives
 * up on a reply cut short (its part already parsed into the batch) and
 * reads it again. (Before that was so, hiredis's free met the batch's
 * objects and the replay aborted.) */
static void busy_redis(redisContext *unused) {
    (void)unused;
    redisContext *c = cw_testredis_connect(&cw_test_redis);
    for (int i = 0; i < 2; i++) {
        redisReply *r = redisCommand(c, "EVAL %s 0",
                                     "local t0 = redis.call('TIME') "
                                     "local s = tonumber(t0[1]) * 1000000 + tonumber(t0[2]) "
                                     "while true do local t = redis.call('TIME') "
                                     "if tonumber(t[1]) * 1000000 + tonumber(t[2]) - s > 600000 then break end end "
                                     "return 1");
        assert_non_null(r);
        assert_int_equal(r->type, REDIS_REPLY_INTEGER);
        freeReplyObject(r);
        cw_test_sleep_ms(100);
    }
    redisFree(c);
}

/* A replay of 100,000 entries, interrupted after a tenth of its XREADs
 * (extra: one more -o), must end as one that ran through: the same line
 * (every entry read once), the same indicator hashes and firing hash; the
 * reader saw the interruption (the log says `seen`). */
static void replay_interrupted(void (*interrupt)(redisContext *), const char *extra, const char *seen) {
    long long n = 0;
    redisContext *c = big_stream(&n);

    /* the reference: a replay that runs through */
    const char *dir = cw_test_state_dir();
    char out[256], err[256];
    freeReplyObject(redisCommand(c, "CONFIG RESETSTAT"));
    assert_int_equal(cw_test_wait_exit(replay_start(dir, extra, out, err, sizeof(out))), 0);
    long long xreads = calls(c, "xread");
    char *ref = slurp(out);
    cw_map *want = indicators_of(c), *want_firing = hash_of(c, FIRING);
    assert_true(cw_map_size(want) > 100 && xreads > 50);

    /* the same replay, interrupted */
    clear_outputs(c);
    freeReplyObject(redisCommand(c, "SAVE"));
    freeReplyObject(redisCommand(c, "CONFIG RESETSTAT"));
    pid_t pid = replay_start(cw_test_state_dir(), extra, out, err, sizeof(out));
    wait_xreads(c, xreads / 10);
    redisFree(c);
    interrupt(c);
    assert_int_equal(cw_test_wait_exit(pid), 0);
    c = cw_testredis_connect(&cw_test_redis);
    char *got = slurp(out), *log = slurp(err);
    int saw = 0;
    for (const char *l = strstr(log, "] read: redis"); l && !saw; l = strstr(l + 1, "] read: redis")) {
        const char *s = strstr(l, seen), *eol = strchr(l, '\n');
        saw = s && (!eol || s < eol);
    }
    if (!saw) fail_msg("the reader did not log '%s' (the replay ended first?): %s", seen, log);
    char want_line[96];
    snprintf(want_line, sizeof(want_line), "(%lld entries read)", n);
    if (!strstr(got, want_line)) fail_msg("expected '%s' in: %s", want_line, got);
    assert_memory_equal(ref, got, (size_t)(strstr(ref, " in ") - ref)); /* "replayed N events (M entries read)" */
    cw_map *have = indicators_of(c), *have_firing = hash_of(c, FIRING);
    assert_same_indicators(want, have);
    assert_same_hash(want_firing, have_firing);
    print_message("%lld entries, interrupted after %lld of %lld XREADs; %zu indicator hashes and %zu alerts firing "
                  "as in a replay that ran through\n", n, xreads / 10, xreads, cw_map_size(have), cw_map_size(have_firing));
    free(ref), free(got), free(log);
    free_values(want), free_values(want_firing), free_values(have), free_values(have_firing);
    redisFree(c);
}

/* Redis restarted while a replay reads: it reads again from the entry
 * after the last one it received. */
static void a_replay_whose_redis_restarts_midway_resumes_where_it_was(void **state) {
    (void)state;
    replay_interrupted(restart_redis, NULL, "unavailable");
}

/* Redis silent past the timeout while a replay reads: the read gives up
 * (a replay never hangs on it), and reads again once Redis answers. */
static void a_replay_whose_redis_pauses_past_the_timeout_reads_again_where_it_was(void **state) {
    (void)state;
    replay_interrupted(pause_redis, "redis.timeout_ms=300", "no reply within 300 ms");
}

/* Redis stalling in the middle of its replies: every read cut short is
 * read again (the replay neither aborts nor skips an entry). */
static void a_replay_whose_redis_stalls_in_the_middle_of_a_reply_reads_it_again(void **state) {
    (void)state;
    replay_interrupted(busy_redis, "redis.timeout_ms=200", "no reply within 200 ms");
}

/* SIGTERM while Redis is silent in the middle of a replay: the replay
 * stops within its timeouts (a read in flight gives up), exits 0. */
static void a_replay_stopped_while_redis_is_silent_exits_within_its_timeouts(void **state) {
    (void)state;
    redisContext *c = big_stream(NULL);
    char out[256], err[256];
    freeReplyObject(redisCommand(c, "CONFIG RESETSTAT"));
    pid_t pid = replay_start(cw_test_state_dir(), "redis.timeout_ms=300", out, err, sizeof(out));
    wait_xreads(c, 10);
    kill(cw_test_redis.pid, SIGSTOP);
    cw_test_sleep_ms(100);
    double t0 = now_s();
    kill(pid, SIGTERM);
    int rc = cw_test_wait_exit(pid);
    double took = now_s() - t0;
    kill(cw_test_redis.pid, SIGCONT);
    assert_int_equal(rc, 0);
    if (took > 8.0) fail_msg("the replay took %.1f s to stop", took);
    print_message("stopped in %.1f s with Redis silent\n", took);
    redisFree(c);
}

/* SIGTERM in the middle of a replay: it stops reading, announces the net
 * change of what it has applied (every alert firing so far, logged once,
 * "replay": true, against nothing before a rebuild), writes its final
 * snapshot and exits 0 without the line of a replay that reached the tip. */
static void a_replay_stopped_midway_announces_its_net_change_so_far_and_exits_cleanly(void **state) {
    (void)state;
    redisContext *c = big_stream(NULL);
    const char *dir = cw_test_state_dir();
    char out[256], err[256], snap[256];
    freeReplyObject(redisCommand(c, "CONFIG RESETSTAT"));
    pid_t pid = replay_start(dir, NULL, out, err, sizeof(out));
    wait_xreads(c, 30);
    kill(pid, SIGTERM);
    assert_int_equal(cw_test_wait_exit(pid), 0);
    char *got = slurp(out), *log = slurp(err);
    if (strstr(got, "replayed ")) fail_msg("the replay ran to the tip before SIGTERM: %s", got);
    size_t resolved;
    size_t logged = replay_entries(c, 0, &resolved);
    cw_map *firing = hash_of(c, FIRING);
    assert_true(logged > 0);
    assert_int_equal(logged, cw_map_size(firing));
    assert_int_equal(resolved, 0);
    snprintf(snap, sizeof(snap), "%s/main.snap", dir);
    assert_int_equal(access(snap, F_OK), 0);
    long long read = cw_test_hget_ll(c, "casewatch:daemon:main", "entries_read");
    assert_true(read > 0 && read < xlen(c, "casewatch:events"));
    print_message("stopped after %lld entries: %zu alerts firing, each logged once\n", read, logged);
    free(got), free(log);
    free_values(firing);
    redisFree(c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_replay_logs_only_its_net_change_and_ends_as_a_live_run_and_a_second_one_logs_nothing),
        cmocka_unit_test(a_backfill_from_a_snapshot_announces_what_changed_since_it),
        cmocka_unit_test(a_replay_whose_redis_restarts_midway_resumes_where_it_was),
        cmocka_unit_test(a_replay_whose_redis_pauses_past_the_timeout_reads_again_where_it_was),
        cmocka_unit_test(a_replay_whose_redis_stalls_in_the_middle_of_a_reply_reads_it_again),
        cmocka_unit_test(a_replay_stopped_while_redis_is_silent_exits_within_its_timeouts),
        cmocka_unit_test(a_replay_stopped_midway_announces_its_net_change_so_far_and_exits_cleanly),
    };
    return cmocka_run_group_tests_name("replay", tests, cw_testredis_group_setup, cw_testredis_group_teardown);
}
