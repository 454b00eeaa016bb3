/* Integration tests of the firing set and acknowledgements (issue 17,
 * PROTOCOL.md §3a) against a real redis-server: the firing hash against
 * the alert log's last states after a generated year, after SIGKILLs and
 * restarts (also of a process lost before its first snapshot), and after
 * a Redis restart; `casewatch ack` stored, logged and published, refused
 * for an id not firing, ended by the resolution, and racing resolutions
 * without ever leaving an ack behind. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "../../adapters/cw_alerts.h"
#include "../../daemon/cw_config.h"
#include "../../daemon/cw_map.h"
#include "../../daemon/cw_period.h"
#include "cw_testredis.h"

#define CONF "systemd/casewatch.conf"
#define FIRING "casewatch:alerts:firing"
#define ACKS "casewatch:alerts:acks"
#define LOG "casewatch:alerts:log"
#define T0 1593532800000LL /* 2020-07-01 00:00 +08:00 */
#define DAY 86400000LL

static void free_values(cw_map *m) {
    size_t pos = 0;
    void *v;
    while (cw_map_next(m, &pos, NULL, NULL, &v)) free(v);
    cw_map_free(m);
}

/* id -> JSON of its last entry in the log when that is "firing"; ids last
 * resolved are left out. Entries of other states (acknowledged) change
 * nothing. Counts entries and resolutions. */
static cw_map *log_firing(redisContext *c, const char *log, size_t *entries, size_t *resolved) {
    cw_map *m = cw_map_new();
    redisReply *r = redisCommand(c, "XRANGE %s - +", log);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    *entries = r->elements;
    *resolved = 0;
    for (size_t i = 0; i < r->elements; i++) {
        const char *json = r->element[i]->element[1]->element[1]->str;
        json_t *a = json_loads(json, 0, NULL);
        assert_non_null(a);
        const char *id = json_string_value(json_object_get(a, "id"));
        const char *st = json_string_value(json_object_get(a, "state"));
        if (strcmp(st, "firing") == 0 || strcmp(st, "resolved") == 0) {
            free(cw_map_del(m, id, strlen(id)));
            if (st[0] == 'f') cw_map_put(m, id, strlen(id), strdup(json));
            else (*resolved)++;
        }
        json_decref(a);
    }
    freeReplyObject(r);
    return m;
}

/* The firing hash as id -> JSON. */
static cw_map *firing_hash(redisContext *c) {
    cw_map *m = cw_map_new();
    redisReply *r = redisCommand(c, "HGETALL " FIRING);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    for (size_t i = 0; i + 1 < r->elements; i += 2)
        cw_map_put(m, r->element[i]->str, r->element[i]->len, strdup(r->element[i + 1]->str));
    freeReplyObject(r);
    return m;
}

/* Fails unless the two maps hold the same ids with the same JSON. */
static void assert_same(cw_map *want, cw_map *got, const char *what) {
    size_t pos = 0;
    const char *id;
    void *v;
    while (cw_map_next(want, &pos, &id, NULL, &v)) {
        const char *g = cw_map_get(got, id, strlen(id));
        if (!g) fail_msg("%s: %s is firing by the log, absent from the hash", what, id);
        if (strcmp(g, v) != 0) fail_msg("%s: %s differs:\n  log:  %s\n  hash: %s", what, id, (char *)v, g);
    }
    pos = 0;
    while (cw_map_next(got, &pos, &id, NULL, &v))
        if (!cw_map_get(want, id, strlen(id))) fail_msg("%s: %s is in the hash, not firing by the log", what, id);
    assert_int_equal(cw_map_size(want), cw_map_size(got));
}

/* The firing hash holds the log's last state of every id, exactly. */
static size_t assert_hash_matches_log(redisContext *c, size_t *entries, size_t *resolved) {
    cw_map *want = log_firing(c, LOG, entries, resolved), *got = firing_hash(c);
    assert_same(want, got, "firing hash vs alert log");
    size_t n = cw_map_size(want);
    free_values(want);
    free_values(got);
    return n;
}

static size_t lines_in(const char *s) {
    size_t n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

/* Appends one event as a JSON line (extra: more members, e.g. ',"detained":true'). */
static void ev(char **buf, size_t *len, const char *id, int64_t ts, const char *type, const char *case_id,
               const char *extra) {
    char line[512];
    int n = snprintf(line, sizeof(line), "{\"v\":1,\"id\":\"%s\",\"ts\":%lld,\"type\":\"%s\",\"case\":\"%s\",\"unit\":\"410923\"%s}\n",
                     id, (long long)ts, type, case_id, extra ? extra : "");
    *buf = realloc(*buf, *len + (size_t)n + 1);
    memcpy(*buf + *len, line, (size_t)n + 1);
    *len += (size_t)n;
}

/* Feeds buf (and frees it), counting its lines into *fed. */
static void feed(char *buf, size_t len, long long *fed) {
    cw_test_feed_raw(buf, len);
    *fed += (long long)lines_in(buf);
    free(buf);
}

/* Waits up to 10 s for HEXISTS key field to be `want`; returns whether it was. */
static int wait_hexists(redisContext *c, const char *key, const char *field, int want) {
    for (int i = 0; i < 200; i++) {
        redisReply *r = redisCommand(c, "HEXISTS %s %s", key, field);
        int got = (int)r->integer;
        freeReplyObject(r);
        if (got == want) return 1;
        cw_test_sleep_ms(50);
    }
    return 0;
}

/* Runs `casewatch ARGS...` against the test Redis; stdout and stderr
 * into *out and *err (caller frees). Returns the exit status. */
static int casewatch(const char *const *args, char **out, char **err) {
    char bin[256], port[64];
    cw_test_bin("casewatch", bin, sizeof(bin));
    snprintf(port, sizeof(port), "redis.port=%d", cw_test_redis.port);
    const char *argv[32] = {bin, "-c", "/dev/null", "-o", port};
    int n = 5;
    for (int i = 0; args[i] && n < 31; i++) argv[n++] = args[i];
    argv[n] = NULL;
    return cw_test_run((char *const *)argv, NULL, 0, out, err);
}

static pid_t start(const char *state_dir, const char *extra) {
    char sd[96];
    snprintf(sd, sizeof(sd), "daemon.state_dir=%s", state_dir);
    const char *opts[] = {sd, "daemon.snapshot_interval_ms=150", extra, NULL};
    return cw_test_daemon_start_with(CONF, opts);
}

/* ---- The firing hash ------------------------------------------------------ */

/* A year of cases with deadlines missed and met, late events moving
 * quarters' cards: the hash ends as the log's last word on every id. */
static void the_firing_hash_holds_the_last_state_of_every_alert_in_the_log(void **state) {
    (void)state;
    redisContext *c = cw_testredis_connect(&cw_test_redis);
    freeReplyObject(redisCommand(c, "FLUSHALL"));
    const char *args[] = {"--seed", "5", "--cases", "3000", "--days", "365", "--late-rate", "0.2", "--overdue-rate",
                          "0.05", NULL};
    char *lines = cw_test_gen(args);
    pid_t pid = start(cw_test_state_dir(), NULL);
    cw_test_feed_raw(lines, strlen(lines));
    cw_test_wait_read(c, (long long)lines_in(lines));
    cw_test_daemon_stop(pid);
    size_t entries, resolved;
    size_t firing = assert_hash_matches_log(c, &entries, &resolved);
    assert_true(entries > 200);
    assert_true(resolved > 50);
    assert_true(firing > 10);
    print_message("%zu log entries (%zu resolutions): the %zu firing equal the hash\n", entries, resolved, firing);
    free(lines);
    redisFree(c);
}

/* SIGKILL at random moments (snapshots every 150 ms), restart each time:
 * what the lost processes wrote is read back, and the hash, rewritten
 * whole at each start, still ends equal to the log's last states. */
static void after_sigkills_and_restarts_the_firing_hash_equals_the_logs_last_states(void **state) {
    (void)state;
    redisContext *c = cw_testredis_connect(&cw_test_redis);
    freeReplyObject(redisCommand(c, "FLUSHALL"));
    const char *args[] = {"--seed", "22", "--cases", "3000", "--days", "400", "--dup-rate", "0.02", "--late-rate",
                          "0.2", "--overdue-rate", "0.05", NULL};
    char *lines = cw_test_gen(args);
    size_t len = strlen(lines);
    const char *dir = cw_test_state_dir();
    srand(4242);
    pid_t pid = start(dir, NULL);
    size_t off = 0;
    int kills = 0;
    for (int slice = 0; slice < 12; slice++) {
        size_t end = slice == 11 ? len : len * (size_t)(slice + 1) / 12;
        while (end < len && lines[end - 1] != '\n') end++;
        cw_test_feed_raw(lines + off, end - off);
        off = end;
        if (slice % 2 == 0) {
            cw_test_sleep_ms(rand() % 400);
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            cw_test_daemon_reaped(pid);
            kills++;
            pid = start(dir, NULL);
        }
    }
    cw_test_wait_read(c, (long long)lines_in(lines));
    cw_test_daemon_stop(pid);
    size_t entries, resolved;
    size_t firing = assert_hash_matches_log(c, &entries, &resolved);
    assert_true(firing > 10);
    print_message("%d SIGKILLs; %zu log entries (%zu resolutions): the %zu firing equal the hash\n", kills, entries,
                  resolved, firing);
    free(lines);
    redisFree(c);
}

static char *a_yellow_light(redisContext *c, const char *case_id, long long *fed);

/* A process lost before its first snapshot logged a card firing (and put
 * it in the hash, in the same transaction): the next daemon, starting
 * without a snapshot, reads that back before it rewrites the hash, and
 * the card stays firing in both. Its quarter has no event in the stream,
 * so only the read-back can know of it. */
static void a_start_without_a_snapshot_keeps_what_a_lost_process_logged_firing(void **state) {
    (void)state;
    redisContext *c = cw_testredis_connect(&cw_test_redis);
    freeReplyObject(redisCommand(c, "FLUSHALL"));
    const char *card = "determinate_rate.yellow/unit:410900/2020-Q1";
    const char *json =
        "{\"id\":\"determinate_rate.yellow/unit:410900/2020-Q1\",\"state\":\"firing\",\"level\":\"yellow\","
        "\"label\":\"黄牌预警\",\"rule\":\"determinate_rate.yellow\",\"scope\":\"unit:410900\",\"unit\":\"410900\","
        "\"indicator\":\"determinate_rate\",\"value\":0.5,\"threshold\":0.7,\"period\":\"2020-Q1\","
        "\"event_ts\":1585670400000,\"emitted_at\":1585670400000,\"message\":\"lost process\"}";
    freeReplyObject(redisCommand(c, "MULTI"));
    freeReplyObject(redisCommand(c, "XADD " LOG " * a %s", json));
    freeReplyObject(redisCommand(c, "HSET " FIRING " %s %s", card, json));
    redisReply *r = redisCommand(c, "EXEC");
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    freeReplyObject(r);
    long long fed = 0;
    pid_t pid = start(cw_test_state_dir(), NULL); /* an empty state_dir: no snapshot */
    /* alerts go out only after the hash is rewritten at start */
    free(a_yellow_light(c, "N1", &fed));
    cw_test_wait_read(c, fed);
    cw_test_daemon_stop(pid);
    r = redisCommand(c, "HGET " FIRING " %s", card);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    assert_string_equal(r->str, json);
    freeReplyObject(r);
    size_t entries, resolved;
    assert_hash_matches_log(c, &entries, &resolved);
    redisFree(c);
}

/* The alert log read back, the firing hash is rewritten at once, before
 * the stream is read, not at the next flush tick: with flush_ms at its
 * largest (1 s), nothing to read and reads that block for a minute, the
 * swap that ends the rewrite comes within half a flush period of the
 * read-back's last XRANGE (as Redis's MONITOR times them; at the next
 * tick it would come most of a period later), and an id no process
 * logged is gone from the hash. */
static void the_firing_hash_is_rewritten_when_the_read_back_ends_not_at_the_next_flush_tick(void **state) {
    (void)state;
    redisContext *c = cw_testredis_connect(&cw_test_redis);
    freeReplyObject(redisCommand(c, "FLUSHALL"));
    freeReplyObject(redisCommand(c, "HSET " FIRING " stale/unit:410900/2020-Q1 {}"));
    redisContext *m = cw_testredis_connect(&cw_test_redis);
    struct timeval tv = {10, 0};
    redisSetTimeout(m, tv);
    redisReply *r = redisCommand(m, "MONITOR");
    assert_non_null(r);
    freeReplyObject(r);
    char sd[96];
    snprintf(sd, sizeof(sd), "daemon.state_dir=%s", cw_test_state_dir()); /* no snapshot: all of the log */
    const char *opts[] = {sd, "indicators.flush_ms=1000", "stream.block_ms=60000", NULL};
    pid_t pid = cw_test_daemon_start_with(CONF, opts);
    double xrange_at = -1, swap_at = -1;
    while (swap_at < 0) {
        void *v = NULL;
        if (redisGetReply(m, &v) != REDIS_OK) fail_msg("no rewrite of the firing hash within 10 s: %s", m->errstr);
        r = v;
        if (r->type == REDIS_REPLY_STATUS) {
            double at = atof(r->str);
            if (strstr(r->str, "\"XRANGE\" \"" LOG "\"")) xrange_at = at;
            else if (xrange_at > 0 && strstr(r->str, "firing rewrite incomplete")) swap_at = at;
        }
        freeReplyObject(r);
    }
    redisFree(m);
    print_message("the firing hash swapped in %.1f ms after the alert log's read-back (flush_ms 1000)\n",
                  (swap_at - xrange_at) * 1000);
    assert_true(swap_at - xrange_at < 0.5);
    r = redisCommand(c, "HEXISTS " FIRING " stale/unit:410900/2020-Q1");
    assert_int_equal(r->integer, 0);
    freeReplyObject(r);
    cw_test_daemon_stop(pid);
    redisFree(c);
}

/* Redis restarted empty (no persistence): the daemon reconnects and
 * writes the whole firing set again, as it was. */
static void a_redis_restart_gets_the_firing_hash_rewritten_whole(void **state) {
    (void)state;
    redisContext *c = cw_testredis_connect(&cw_test_redis);
    freeReplyObject(redisCommand(c, "FLUSHALL"));
    const char *args[] = {"--seed", "9", "--cases", "1500", "--days", "300", "--overdue-rate", "0.05", NULL};
    char *lines = cw_test_gen(args);
    pid_t pid = start(cw_test_state_dir(), NULL);
    cw_test_feed_raw(lines, strlen(lines));
    cw_test_wait_read(c, (long long)lines_in(lines));
    cw_map *before = firing_hash(c);
    assert_true(cw_map_size(before) > 10);
    redisFree(c);
    assert_int_equal(cw_testredis_restart(&cw_test_redis), 0);
    c = cw_testredis_connect(&cw_test_redis);
    long long n = 0;
    /* everything firing before, and the alert of the reset itself (issue 16) */
    for (int i = 0; i < 600 && n < (long long)cw_map_size(before) + 1; i++) {
        cw_test_sleep_ms(50);
        redisReply *r = redisCommand(c, "HLEN " FIRING);
        n = r->integer;
        freeReplyObject(r);
    }
    cw_map *after = firing_hash(c);
    const char *reset = "system.stream_reset/daemon:main/stream";
    char *reset_json = cw_map_del(after, reset, strlen(reset));
    if (!reset_json) fail_msg("Redis restarted empty, but %s is not firing", reset);
    free(reset_json);
    assert_same(before, after, "firing hash before vs after a Redis restart");
    print_message("%zu firing alerts written again after the Redis restart\n", cw_map_size(after));
    cw_test_daemon_stop(pid);
    free_values(before);
    free_values(after);
    free(lines);
    redisFree(c);
}

/* ---- Acknowledgements ------------------------------------------------------ */

static void an_ack_of_an_id_not_firing_exits_1_and_says_so(void **state) {
    (void)state;
    redisContext *c = cw_testredis_connect(&cw_test_redis);
    freeReplyObject(redisCommand(c, "FLUSHALL"));
    char *out, *err;
    const char *args[] = {"ack", "deadline.arrest_review/case:410923:none/2020-07-08/yellow", "--by", "张三", NULL};
    assert_int_equal(casewatch(args, &out, &err), 1);
    assert_non_null(strstr(err, "is not firing"));
    assert_non_null(strstr(err, "deadline.arrest_review/case:410923:none/2020-07-08/yellow"));
    free(out);
    free(err);
    const char *nobody[] = {"ack", "some/id", NULL};
    assert_int_equal(casewatch(nobody, &out, &err), 1); /* --by is required: bad input */
    free(out);
    free(err);
    redisReply *r = redisCommand(c, "EXISTS " ACKS " " LOG);
    assert_int_equal(r->integer, 0); /* nothing written */
    freeReplyObject(r);
    redisFree(c);
}

/* Reads one pub/sub message within 5 s; returns its channel and payload
 * (caller frees both) or fails. */
static void next_message(redisContext *s, char **channel, char **payload) {
    redisReply *r = NULL;
    assert_int_equal(redisGetReply(s, (void **)&r), REDIS_OK);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_string_equal(r->element[0]->str, "message");
    *channel = strdup(r->element[1]->str);
    *payload = strdup(r->element[2]->str);
    freeReplyObject(r);
}

/* A detained suspect's 7-day review, 5 days in: its yellow light fires
 * (unit 410923). Returns the alert's id (caller frees). */
static char *a_yellow_light(redisContext *c, const char *case_id, long long *fed) {
    char *buf = NULL, eid[64];
    size_t len = 0;
    snprintf(eid, sizeof(eid), "acc-%s", case_id);
    ev(&buf, &len, eid, T0, "arrest.accepted", case_id, ",\"detained\":true");
    snprintf(eid, sizeof(eid), "tick-%s", case_id);
    ev(&buf, &len, eid, T0 + 5 * DAY, "hearing.held", "tick", NULL);
    feed(buf, len, fed);
    char *id = malloc(200);
    snprintf(id, 200, "deadline.arrest_review/case:410923:%s/2020-07-08/yellow", case_id);
    if (!wait_hexists(c, FIRING, id, 1)) fail_msg("%s never fired", id);
    return id;
}

static void an_ack_is_stored_logged_and_published_on_both_channels(void **state) {
    (void)state;
    redisContext *c = cw_testredis_connect(&cw_test_redis);
    freeReplyObject(redisCommand(c, "FLUSHALL"));
    long long fed = 0;
    pid_t pid = start(cw_test_state_dir(), NULL);
    char *id = a_yellow_light(c, "R1", &fed);
    redisContext *s = cw_testredis_connect(&cw_test_redis);
    struct timeval tv = {5, 0};
    redisSetTimeout(s, tv);
    redisReply *r = redisCommand(s, "SUBSCRIBE casewatch:alerts casewatch:alerts:410923");
    freeReplyObject(r);
    assert_int_equal(redisGetReply(s, (void **)&r), REDIS_OK); /* the second subscription's confirmation */
    freeReplyObject(r);

    int64_t t0 = cw_wall_ms();
    char *out, *err;
    const char *args[] = {"ack", id, "--by", "张三", "--note", "已督促承办人 P017", NULL};
    assert_int_equal(casewatch(args, &out, &err), 0);
    assert_non_null(strstr(out, "acknowledged"));
    free(out);
    free(err);

    /* the acks entry */
    char *rec = cw_test_hget(c, ACKS, id);
    json_t *a = json_loads(rec, 0, NULL);
    assert_non_null(a);
    assert_string_equal(json_string_value(json_object_get(a, "by")), "张三");
    assert_string_equal(json_string_value(json_object_get(a, "note")), "已督促承办人 P017");
    assert_true(json_integer_value(json_object_get(a, "at")) >= t0);
    json_decref(a);
    free(rec);
    /* the log's last entry */
    r = redisCommand(c, "XREVRANGE " LOG " + - COUNT 1");
    a = json_loads(r->element[0]->element[1]->element[1]->str, 0, NULL);
    freeReplyObject(r);
    assert_string_equal(json_string_value(json_object_get(a, "state")), "acknowledged");
    assert_string_equal(json_string_value(json_object_get(a, "id")), id);
    assert_string_equal(json_string_value(json_object_get(a, "by")), "张三");
    assert_string_equal(json_string_value(json_object_get(a, "level")), "yellow");
    json_decref(a);
    /* published on both channels */
    int seen_all = 0, seen_unit = 0;
    for (int i = 0; i < 2; i++) {
        char *ch, *msg;
        next_message(s, &ch, &msg);
        a = json_loads(msg, 0, NULL);
        assert_string_equal(json_string_value(json_object_get(a, "state")), "acknowledged");
        assert_string_equal(json_string_value(json_object_get(a, "id")), id);
        json_decref(a);
        seen_all += strcmp(ch, "casewatch:alerts") == 0;
        seen_unit += strcmp(ch, "casewatch:alerts:410923") == 0;
        free(ch);
        free(msg);
    }
    assert_int_equal(seen_all, 1);
    assert_int_equal(seen_unit, 1);
    /* still firing: the ack changes no state, and `casewatch alerts` shows who */
    assert_true(wait_hexists(c, FIRING, id, 1));
    const char *list[] = {"alerts", "--acked", NULL};
    assert_int_equal(casewatch(list, &out, &err), 0);
    assert_non_null(strstr(out, id));
    assert_non_null(strstr(out, "acknowledged by 张三"));
    free(out);
    free(err);
    cw_test_daemon_stop(pid);
    redisFree(s);
    free(id);
    redisFree(c);
}

/* The capacity alert fires (11 cases, 10 allowed), is acknowledged,
 * resolves (cases closed: the ack goes with it), fires again: not
 * acknowledged. */
static void an_ack_ends_when_the_alert_resolves_and_a_later_firing_starts_unacknowledged(void **state) {
    (void)state;
    redisContext *c = cw_testredis_connect(&cw_test_redis);
    freeReplyObject(redisCommand(c, "FLUSHALL"));
    long long fed = 0;
    pid_t pid = start(cw_test_state_dir(), "limits.max_open_cases=10");
    const char *id = "system.capacity/daemon:main/max_open_cases";
    char *buf = NULL, eid[32], cid[32];
    size_t len = 0;
    for (int i = 1; i <= 11; i++) {
        snprintf(eid, sizeof(eid), "o%d", i), snprintf(cid, sizeof(cid), "c%d", i);
        ev(&buf, &len, eid, T0 + i * 1000, "arrest.accepted", cid, NULL);
    }
    feed(buf, len, &fed);
    assert_true(wait_hexists(c, FIRING, id, 1));
    char *out, *err;
    const char *args[] = {"ack", id, "--by", "李四", NULL};
    assert_int_equal(casewatch(args, &out, &err), 0);
    free(out);
    free(err);
    assert_true(wait_hexists(c, ACKS, id, 1));

    buf = NULL, len = 0;
    ev(&buf, &len, "x1", T0 + 20000, "case.closed", "c1", NULL);
    ev(&buf, &len, "x2", T0 + 20001, "case.closed", "c2", NULL);
    feed(buf, len, &fed);
    assert_true(wait_hexists(c, FIRING, id, 0)); /* resolved below 90% */
    assert_true(wait_hexists(c, ACKS, id, 0));   /* the ack ended with it */

    buf = NULL, len = 0;
    for (int i = 12; i <= 15; i++) {
        snprintf(eid, sizeof(eid), "o%d", i), snprintf(cid, sizeof(cid), "c%d", i);
        ev(&buf, &len, eid, T0 + 30000 + i, "arrest.accepted", cid, NULL);
    }
    feed(buf, len, &fed);
    assert_true(wait_hexists(c, FIRING, id, 1)); /* fires again */
    cw_test_wait_read(c, fed);
    redisReply *r = redisCommand(c, "HEXISTS " ACKS " %s", id);
    assert_int_equal(r->integer, 0);
    freeReplyObject(r);
    const char *list[] = {"alerts", "--unacked", "--json", NULL};
    assert_int_equal(casewatch(list, &out, &err), 0);
    assert_non_null(strstr(out, id));
    assert_null(strstr(out, "\"ack\""));
    free(out);
    free(err);
    cw_test_daemon_stop(pid);
    redisFree(c);
}

/* Acks whose alert is not firing, counted atomically (one script). */
static long long stale_acks(redisContext *c) {
    redisReply *r = redisCommand(c, "EVAL %s 2 " ACKS " " FIRING,
                                 "local n = 0 for _, id in ipairs(redis.call('HKEYS', KEYS[1])) do "
                                 "if redis.call('HEXISTS', KEYS[2], id) == 0 then n = n + 1 end end return n");
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    long long n = r->integer;
    freeReplyObject(r);
    return n;
}

/* The ids of one round's lights: HKEYS of the firing hash whose case is
 * K<round>-<i>, with i even (to be resolved) or odd. */
static redisReply *round_ids(redisContext *c, int round, int even, char ***ids, size_t *n) {
    redisReply *r = redisCommand(c, "HKEYS " FIRING);
    *ids = calloc(r->elements + 1, sizeof(char *));
    *n = 0;
    char pre[64];
    int plen = snprintf(pre, sizeof(pre), "deadline.arrest_review/case:410923:K%d-", round);
    for (size_t i = 0; i < r->elements; i++) {
        const char *id = r->element[i]->str;
        if (strncmp(id, pre, (size_t)plen) != 0) continue;
        if ((atoi(id + plen) % 2 == 0) == even) (*ids)[(*n)++] = r->element[i]->str;
    }
    return r;
}

/* Rounds of 100 yellow lights. A process acknowledges half of them (the
 * ids in the list test:race) over and over while the daemon resolves
 * exactly those, all in one burst: at no moment, and not at the end, is
 * there an ack without its firing alert; the other half, acknowledged
 * once, stays acknowledged. (A check and write that were not one script
 * leaves stale acks here within a few rounds.) */
static void an_ack_racing_the_resolution_never_leaves_an_ack_without_its_alert(void **state) {
    (void)state;
    enum { N = 100, ROUNDS = 8 };
    redisContext *c = cw_testredis_connect(&cw_test_redis);
    freeReplyObject(redisCommand(c, "FLUSHALL"));
    long long fed = 0, worst = 0, raced = 0;
    pid_t pid = start(cw_test_state_dir(), NULL);
    cw_config *cfg = cw_config_new();
    char err[512], port[64];
    snprintf(port, sizeof(port), "redis.port=%d", cw_test_redis.port);
    assert_int_equal(cw_config_override(cfg, port, err, sizeof(err)), 0);
    assert_int_equal(cw_config_finish(cfg, err, sizeof(err)), 0);
    pid_t acker = fork();
    if (acker == 0) { /* acknowledges the ids of test:race, round after round, until killed */
        redisContext *ac = cw_testredis_connect(&cw_test_redis);
        for (;;) {
            redisReply *l = redisCommand(ac, "LRANGE test:race 0 -1");
            for (size_t i = 0; i < l->elements; i++)
                if (cw_alerts_ack(ac, cfg, l->element[i]->str, "racer", NULL, cw_wall_ms(), err, sizeof(err)) < 0) _exit(4);
            if (!l->elements) cw_test_sleep_ms(1);
            freeReplyObject(l);
        }
    }
    for (int round = 0; round < ROUNDS; round++) {
        int64_t t = T0 + round * 10 * DAY;
        char *buf = NULL, eid[32], cid[32];
        size_t len = 0;
        for (int i = 0; i < N; i++) {
            snprintf(eid, sizeof(eid), "a%d-%d", round, i), snprintf(cid, sizeof(cid), "K%d-%d", round, i);
            ev(&buf, &len, eid, t + i, "arrest.accepted", cid, ",\"detained\":true");
        }
        snprintf(eid, sizeof(eid), "tick%d", round);
        ev(&buf, &len, eid, t + 5 * DAY, "hearing.held", "tick", NULL);
        feed(buf, len, &fed);
        cw_test_wait_read(c, fed);
        char **even, **odd;
        size_t neven, nodd;
        redisReply *ke = round_ids(c, round, 1, &even, &neven), *ko = round_ids(c, round, 0, &odd, &nodd);
        assert_int_equal(neven, N / 2);
        assert_int_equal(nodd, N / 2);
        for (size_t i = 0; i < nodd; i++)
            assert_int_equal(cw_alerts_ack(c, cfg, odd[i], "keeper", NULL, cw_wall_ms(), err, sizeof(err)), 0);
        freeReplyObject(redisCommand(c, "DEL test:race"));
        for (size_t i = 0; i < neven; i++) freeReplyObject(redisCommand(c, "RPUSH test:race %s", even[i]));
        assert_true(wait_hexists(c, ACKS, even[neven - 1], 1)); /* the acker is at work */
        /* every even one decided, in one burst (one transaction of the daemon) */
        buf = NULL, len = 0;
        for (int i = 0; i < N; i += 2) {
            snprintf(eid, sizeof(eid), "d%d-%d", round, i), snprintf(cid, sizeof(cid), "K%d-%d", round, i);
            ev(&buf, &len, eid, t + 5 * DAY + 1000 + i, "arrest.decided", cid, ",\"decision\":\"approve\"");
        }
        feed(buf, len, &fed);
        for (int k = 0; k < 20; k++) {
            long long st = stale_acks(c);
            if (st > worst) worst = st;
            cw_test_sleep_ms(10);
        }
        cw_test_wait_read(c, fed);
        cw_test_sleep_ms(50); /* the acker goes on after the resolutions */
        freeReplyObject(redisCommand(c, "DEL test:race"));
        for (size_t i = 0; i < neven; i++) {
            redisReply *r = redisCommand(c, "HEXISTS " ACKS " %s", even[i]);
            if (r->integer) fail_msg("round %d: %s resolved, yet acknowledged", round, even[i]);
            freeReplyObject(r);
        }
        for (size_t i = 0; i < nodd; i++) {
            redisReply *r = redisCommand(c, "HEXISTS " ACKS " %s", odd[i]);
            assert_int_equal(r->integer, 1);
            freeReplyObject(r);
        }
        raced += (long long)neven;
        free(even);
        free(odd);
        freeReplyObject(ke);
        freeReplyObject(ko);
    }
    kill(acker, SIGKILL);
    int st;
    waitpid(acker, &st, 0);
    assert_true(WIFSIGNALED(st)); /* it never failed */
    cw_test_daemon_stop(pid);
    assert_int_equal(worst, 0);
    assert_int_equal(stale_acks(c), 0);
    size_t entries, resolved;
    assert_hash_matches_log(c, &entries, &resolved);
    /* the decided ones, and the lights of the others moving on (yellow
     * resolves as orange fires: that ends its ack too) */
    assert_true(resolved >= (size_t)raced);
    print_message("%d rounds: %lld resolutions raced by acks, %zu log entries, no stale ack\n", ROUNDS, raced, entries);
    cw_config_free(cfg);
    redisFree(c);
}

/* ---- casewatch alerts ------------------------------------------------------ */

/* Puts one alert into the firing hash as the daemon would. */
static void put_alert(redisContext *c, const char *id, const char *unit, const char *rule, const char *level,
                      int64_t ts) {
    char json[1024];
    snprintf(json, sizeof(json),
             "{\"id\":\"%s\",\"state\":\"firing\",\"level\":\"%s\",\"label\":\"L-%s\",\"rule\":\"%s\",\"scope\":\"s\"%s%s%s,"
             "\"event_ts\":%lld,\"emitted_at\":%lld,\"message\":\"msg-%s\"}",
             id, level, rule, rule, unit[0] ? ",\"unit\":\"" : "", unit, unit[0] ? "\"" : "", (long long)ts,
             (long long)ts + 5, id);
    freeReplyObject(redisCommand(c, "HSET " FIRING " %s %s", id, json));
}

/* The positions of the needles in text, in order; fails when one is
 * missing or they are out of order. */
static void assert_in_order(const char *text, const char *const *needles) {
    const char *at = text;
    for (int i = 0; needles[i]; i++) {
        const char *p = strstr(at, needles[i]);
        if (!p) fail_msg("'%s' missing or out of order in:\n%s", needles[i], text);
        at = p + strlen(needles[i]);
    }
}

static int count_of(const char *text, const char *needle) {
    int n = 0;
    for (const char *p = text; (p = strstr(p, needle)); p += strlen(needle)) n++;
    return n;
}

/* 院 in code order (the nation and the daemon's own last); in a 院 the
 * rule with the most severe alert first, then the oldest; in a rule, red
 * before yellow; who acknowledged; every filter. */
static void casewatch_alerts_groups_by_unit_and_rule_most_severe_and_oldest_first(void **state) {
    (void)state;
    redisContext *c = cw_testredis_connect(&cw_test_redis);
    freeReplyObject(redisCommand(c, "FLUSHALL"));
    put_alert(c, "A", "410923", "case_item_ratio.yellow", "yellow", T0 + 10 * DAY);
    put_alert(c, "B", "410923", "deadline.arrest_review", "red", T0 + 20 * DAY);
    put_alert(c, "C", "410923", "deadline.arrest_review", "yellow", T0 + 5 * DAY);
    put_alert(c, "C2", "410923", "deadline.arrest_review", "yellow", T0 + 2 * DAY);
    put_alert(c, "D", "410922", "plea_rate.yellow", "yellow", T0);
    put_alert(c, "E", "", "system.capacity", "red", T0 + DAY);
    freeReplyObject(redisCommand(c, "HSET " ACKS " B {\"by\":\"王五\",\"at\":1796220489155,\"note\":\"在办\"}"));
    const char *u = "units.410923=南乐县人民检察院";
    char *out, *err;
    const char *all[] = {"-o", u, "alerts", NULL};
    assert_int_equal(casewatch(all, &out, &err), 0);
    const char *order[] = {"6 alerts firing, 1 acknowledged", "410922", "id D", "南乐县人民检察院 410923",
                           "deadline.arrest_review L-deadline.arrest_review (3)", "id B", "acknowledged by 王五",
                           ": 在办", "id C2", "id C\n", "case_item_ratio.yellow", "id A", "no 院", "id E", NULL};
    assert_in_order(out, order);
    free(out);
    free(err);

    struct {
        const char *args[4];
        const char *want; /* ids shown, in order */
    } filters[] = {
        {{"--unit", "南乐县人民检察院", NULL}, "B C2 C A"},
        {{"--unit", "4109", NULL}, "D B C2 C A"},
        {{"--rule", "deadline", NULL}, "B C2 C"},
        {{"--rule", "deadline.arrest_review", NULL}, "B C2 C"},
        {{"--level", "red", NULL}, "B E"},
        {{"--acked", NULL}, "B"},
        {{"--unacked", "--level", "yellow", NULL}, "D C2 C A"},
    };
    for (size_t f = 0; f < sizeof(filters) / sizeof(filters[0]); f++) {
        const char *args[12] = {"-o", u, "alerts", "--json"};
        int n = 4;
        for (int k = 0; filters[f].args[k]; k++) args[n++] = filters[f].args[k];
        args[n] = NULL;
        assert_int_equal(casewatch(args, &out, &err), 0);
        /* the ids of the JSON lines, in order */
        char got[128] = "";
        for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
            json_t *a = json_loads(line, 0, NULL);
            assert_non_null(a);
            if (got[0]) strcat(got, " ");
            strcat(got, json_string_value(json_object_get(a, "id")));
            if (strcmp(json_string_value(json_object_get(a, "id")), "B") == 0)
                assert_string_equal(json_string_value(json_object_get(json_object_get(a, "ack"), "by")), "王五");
            else
                assert_null(json_object_get(a, "ack"));
            json_decref(a);
        }
        if (strcmp(got, filters[f].want) != 0)
            fail_msg("alerts --json %s %s: got '%s', want '%s'", filters[f].args[0],
                     filters[f].args[1] ? filters[f].args[1] : "", got, filters[f].want);
        free(out);
        free(err);
    }
    const char *bad_level[] = {"alerts", "--level", "purple", NULL};
    assert_int_equal(casewatch(bad_level, &out, &err), 1);
    assert_non_null(strstr(err, "yellow, orange or red"));
    free(out);
    free(err);
    const char *bad_unit[] = {"alerts", "--unit", "无此院", NULL};
    assert_int_equal(casewatch(bad_unit, &out, &err), 1);
    assert_non_null(strstr(err, "无此院"));
    free(out);
    free(err);
    freeReplyObject(redisCommand(c, "DEL " FIRING));
    const char *none[] = {"alerts", NULL};
    assert_int_equal(casewatch(none, &out, &err), 0);
    assert_int_equal(count_of(out, "0 alerts firing"), 1);
    free(out);
    free(err);
    redisFree(c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(the_firing_hash_holds_the_last_state_of_every_alert_in_the_log),
        cmocka_unit_test(after_sigkills_and_restarts_the_firing_hash_equals_the_logs_last_states),
        cmocka_unit_test(a_start_without_a_snapshot_keeps_what_a_lost_process_logged_firing),
        cmocka_unit_test(the_firing_hash_is_rewritten_when_the_read_back_ends_not_at_the_next_flush_tick),
        cmocka_unit_test(a_redis_restart_gets_the_firing_hash_rewritten_whole),
        cmocka_unit_test(an_ack_of_an_id_not_firing_exits_1_and_says_so),
        cmocka_unit_test(an_ack_is_stored_logged_and_published_on_both_channels),
        cmocka_unit_test(an_ack_ends_when_the_alert_resolves_and_a_later_firing_starts_unacknowledged),
        cmocka_unit_test(an_ack_racing_the_resolution_never_leaves_an_ack_without_its_alert),
        cmocka_unit_test(casewatch_alerts_groups_by_unit_and_rule_most_severe_and_oldest_first),
    };
    return cmocka_run_group_tests(tests, cw_testredis_group_setup, cw_testredis_group_teardown);
}
