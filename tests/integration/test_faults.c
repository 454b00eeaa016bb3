/* Fault tests (issue 6) against a real redis-server. Each states what must
 * hold:
 *  - caps: 10x the scope cap of distinct prosecutors and 10x the open-case
 *    cap of distinct cases: the excess is dead-lettered naming the cap, one
 *    容量预警 per cap, what was counted before stays, nothing crashes;
 *  - Redis paused (SIGSTOP) longer than the request timeout: the daemon
 *    drops the connection, reconnects after SIGCONT, loses nothing;
 *  - the alert log deleted while running: re-created by the next alert;
 *  - a subscriber that never reads: the daemon is not slowed or stopped;
 *  - the stream trimmed past the daemon's position: detected, logged, and
 *    alerted (数据丢失预警), then reading goes on;
 *  - snapshots that cannot be written: the daemon keeps running, alerts
 *    once (快照失败), retries, and resolves when writing works again. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <cmocka.h>

#include "cw_testredis.h"

#define CONF "systemd/casewatch.conf"

static char *lines_of(int n, const char *fmt_kind) {
    size_t cap = (size_t)n * 200 + 1, len = 0;
    char *b = malloc(cap);
    for (int i = 0; i < n; i++) {
        if (strcmp(fmt_kind, "pros") == 0) /* one case each, a prosecutor each */
            len += (size_t)snprintf(b + len, cap - len,
                                    "{\"v\":1,\"id\":\"p%d\",\"ts\":%lld,\"type\":\"prosecution.accepted\",\"case\":\"c%d\","
                                    "\"unit\":\"410923\",\"dept\":\"第一检察部\",\"pros\":\"P%04d\"}\n",
                                    i, 1578268800000LL + i * 60000LL, i, i);
        else /* distinct cases, no prosecutor */
            len += (size_t)snprintf(b + len, cap - len,
                                    "{\"v\":1,\"id\":\"o%d\",\"ts\":%lld,\"type\":\"arrest.accepted\",\"case\":\"o%d\","
                                    "\"unit\":\"410923\"}\n",
                                    i, 1578268800000LL + i * 60000LL, i);
    }
    return b;
}

static long long xlen(redisContext *c, const char *key) {
    redisReply *r = redisCommand(c, "XLEN %s", key);
    long long n = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    if (r) freeReplyObject(r);
    return n;
}

static void caps_dead_letter_the_excess_and_alert_once(void **state) {
    (void)state;
    redisContext *c = cw_testredis_connect(&cw_test_redis);
    freeReplyObject(redisCommand(c, "FLUSHALL"));
    /* scopes: 50 at most; each event brings a new prosecutor (the unit,
     * department, regions and nation come with the first) */
    char *pros = lines_of(500, "pros"), *open = lines_of(1000, "open");
    cw_test_feed_raw(pros, strlen(pros));
    cw_test_feed_raw(open, strlen(open));
    const char *extra[] = {"limits.max_scopes=50", "limits.max_open_cases=100", NULL};
    pid_t pid = cw_test_daemon_start_with(CONF, extra);
    cw_test_wait_read(c, 1500);
    assert_int_equal(kill(pid, 0), 0);
    long long events = cw_test_hget_ll(c, "casewatch:daemon:main", "events");
    long long dead = cw_test_hget_ll(c, "casewatch:daemon:main", "dead_lettered");
    assert_int_equal(events + dead, 1500);
    /* 50 scopes: nation, 2 regions, the unit, the department = 5, then 45 prosecutors */
    long long accepted_pros = cw_test_hget_ll(c, "casewatch:ind:unit:410923:2020-Q1", "prosecution_accepted");
    assert_int_equal(accepted_pros, 45);
    /* open cases: the 45 prosecution cases hold 45 of the 100 */
    assert_int_equal(cw_test_hget_ll(c, "casewatch:daemon:main", "open_cases"), 100);
    assert_int_equal(cw_test_hget_ll(c, "casewatch:ind:unit:410923:2020-Q1", "cases"), 100);
    assert_int_equal(dead, 455 + 945);
    redisReply *r = redisCommand(c, "XRANGE casewatch:events:dead - + COUNT 1");
    int named = 0;
    for (size_t j = 0; j + 1 < r->element[0]->element[1]->elements; j += 2)
        named |= strstr(r->element[0]->element[1]->element[j + 1]->str, "[limits] max_scopes = 50") != NULL;
    freeReplyObject(r);
    assert_true(named);
    assert_int_equal(cw_test_log_count(c, "\"id\":\"system.capacity/daemon:main/max_scopes\",\"state\":\"firing\""), 1);
    assert_int_equal(cw_test_log_count(c, "\"id\":\"system.capacity/daemon:main/max_open_cases\",\"state\":\"firing\""), 1);
    assert_int_equal(cw_test_log_count(c, "容量预警"), 2);
    cw_test_daemon_stop(pid);
    free(pros);
    free(open);
    redisFree(c);
}

static void a_paused_redis_loses_nothing(void **state) {
    (void)state;
    redisContext *c = cw_testredis_connect(&cw_test_redis);
    freeReplyObject(redisCommand(c, "FLUSHALL"));
    char *a = lines_of(300, "open");
    size_t len = strlen(a), half = len / 2;
    while (a[half - 1] != '\n') half++;
    cw_test_feed_raw(a, half);
    const char *extra[] = {"redis.timeout_ms=300", NULL};
    pid_t pid = cw_test_daemon_start(extra);
    cw_test_wait_read(c, 150);
    redisFree(c);
    kill(cw_test_redis.pid, SIGSTOP);
    cw_test_sleep_ms(1500); /* five request timeouts */
    kill(cw_test_redis.pid, SIGCONT);
    c = cw_testredis_connect(&cw_test_redis);
    cw_test_feed_raw(a + half, len - half);
    cw_test_wait_read(c, 300);
    assert_int_equal(cw_test_hget_ll(c, "casewatch:daemon:main", "events"), 300);
    assert_int_equal(cw_test_hget_ll(c, "casewatch:ind:unit:410923:2020", "cases"), 300);
    assert_int_equal(cw_test_hget_ll(c, "casewatch:daemon:main", "duplicates"), 0);
    cw_test_daemon_stop(pid);
    free(a);
    redisFree(c);
}

static long long connections_received(redisContext *c) {
    redisReply *r = redisCommand(c, "INFO stats");
    const char *p = r && r->type == REDIS_REPLY_STRING ? strstr(r->str, "total_connections_received:") : NULL;
    long long n = p ? atoll(p + strlen("total_connections_received:")) : -1;
    if (r) freeReplyObject(r);
    return n;
}

static long long count_keys(redisContext *c, const char *pattern) {
    long long n = 0;
    char cursor[32] = "0";
    do {
        redisReply *r = redisCommand(c, "SCAN %s MATCH %s COUNT 1000", cursor, pattern);
        assert_true(r && r->type == REDIS_REPLY_ARRAY && r->elements == 2);
        snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
        n += (long long)r->element[1]->elements;
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    return n;
}

/* A burst of new scopes makes one flush of tens of thousands of hashes:
 * their replies come steadily, but the last requests wait in Redis past
 * their own deadline. That is not silence: the writer must not be dropped
 * (it was, with deadlines alone), and every hash must be written. */
static void a_long_pipeline_of_writes_is_not_taken_for_silence(void **state) {
    (void)state;
    redisContext *c = cw_testredis_connect(&cw_test_redis);
    freeReplyObject(redisCommand(c, "FLUSHALL"));
    char *a = lines_of(6000, "pros");
    cw_test_feed_raw(a, strlen(a));
    long long before = connections_received(c);
    /* a tight timeout for the writer; the reader, caught up at once, waits
     * in a long blocking read whose own deadline is not what is tested */
    const char *extra[] = {"redis.timeout_ms=50", "stream.block_ms=20000", NULL};
    pid_t pid = cw_test_daemon_start(extra);
    cw_test_wait_read(c, 6000);
    long long quarter = 0, rolling = 0;
    int tries = getenv("CW_VALGRIND") ? 2400 : 200; /* 2 min under valgrind, else 10 s */
    for (int i = 0; i < tries; i++) {
        quarter = count_keys(c, "casewatch:ind:pros:410923:*:2020-Q1");
        rolling = count_keys(c, "casewatch:ind:pros:410923:*:rolling-30d");
        if (quarter == 6000 && rolling == 6000) break;
        cw_test_sleep_ms(50);
    }
    assert_int_equal(quarter, 6000);
    assert_int_equal(rolling, 6000);
    /* the reader and the writer, each connected once */
    assert_int_equal(connections_received(c), before + 2);
    cw_test_daemon_stop(pid);
    free(a);
    redisFree(c);
}

static void a_deleted_alert_log_and_a_subscriber_that_never_reads(void **state) {
    (void)state;
    redisContext *c = cw_testredis_connect(&cw_test_redis);
    freeReplyObject(redisCommand(c, "FLUSHALL"));
    /* a subscriber that never reads its socket */
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)cw_test_redis.port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
    const char *sub = "*2\r\n$9\r\nSUBSCRIBE\r\n$16\r\ncasewatch:alerts\r\n";
    assert_int_equal(write(s, sub, strlen(sub)), (ssize_t)strlen(sub));
    const char *args[] = {"--seed", "4", "--cases", "3000", "--overdue-rate", "0.05", NULL};
    char *lines = cw_test_gen(args);
    size_t len = strlen(lines), half = len / 2;
    while (lines[half - 1] != '\n') half++;
    long long total = 0, first = 0;
    for (size_t i = 0; i < len; i++) total += lines[i] == '\n', first += i < half && lines[i] == '\n';
    cw_test_feed_raw(lines, half);
    pid_t pid = cw_test_daemon_start_with(CONF, NULL);
    cw_test_wait_read(c, first);
    long long before = xlen(c, "casewatch:alerts:log");
    assert_true(before > 100);
    freeReplyObject(redisCommand(c, "DEL casewatch:alerts:log"));
    cw_test_feed_raw(lines + half, len - half);
    cw_test_wait_read(c, total);
    assert_int_equal(kill(pid, 0), 0);
    long long after = xlen(c, "casewatch:alerts:log");
    assert_true(after > 100); /* re-created by the next XADD */
    assert_int_equal(cw_test_hget_ll(c, "casewatch:daemon:main", "lag"), 0);
    cw_test_daemon_stop(pid);
    print_message("alert log: %lld entries, deleted, %lld new ones; the subscriber never read\n", before, after);
    close(s);
    free(lines);
    redisFree(c);
}

static void a_stream_trimmed_past_the_position_is_detected(void **state) {
    (void)state;
    redisContext *c = cw_testredis_connect(&cw_test_redis);
    freeReplyObject(redisCommand(c, "FLUSHALL"));
    char *a = lines_of(200, "open");
    size_t len = strlen(a), half = len / 2;
    while (a[half - 1] != '\n') half++;
    long long first = 0;
    for (size_t i = 0; i < half; i++) first += a[i] == '\n';
    cw_test_feed_raw(a, half);
    const char *dir = cw_test_state_dir();
    char sd[96];
    snprintf(sd, sizeof(sd), "daemon.state_dir=%s", dir);
    const char *extra[] = {sd, NULL};
    pid_t pid = cw_test_daemon_start_with(CONF, extra);
    cw_test_wait_read(c, first);
    cw_test_daemon_stop(pid);
    cw_test_feed_raw(a + half, len - half);
    freeReplyObject(redisCommand(c, "XTRIM casewatch:events MAXLEN 10")); /* the unread but 10 gone */
    pid = cw_test_daemon_start_with(CONF, extra);
    for (int i = 0; i < 100 && cw_test_log_count(c, "system.stream_trimmed") == 0; i++) cw_test_sleep_ms(50);
    cw_test_wait_read(c, first + 10);
    assert_int_equal(cw_test_log_count(c, "\"id\":\"system.stream_trimmed/daemon:main/stream\",\"state\":\"firing\""), 1);
    char lost[64];
    snprintf(lost, sizeof(lost), "%lld 条事件未经处理", 200 - first - 10); /* "88 条事件" */
    assert_int_equal(cw_test_log_count(c, lost), 1);
    assert_int_equal(cw_test_hget_ll(c, "casewatch:daemon:main", "events"), first + 10);
    assert_int_equal(cw_test_hget_ll(c, "casewatch:daemon:main", "lag"), 0);
    cw_test_daemon_stop(pid);
    free(a);
    redisFree(c);
}

static void snapshots_that_cannot_be_written_are_alerted_and_retried(void **state) {
    (void)state;
    redisContext *c = cw_testredis_connect(&cw_test_redis);
    freeReplyObject(redisCommand(c, "FLUSHALL"));
    char base[64], blocker[96], sd[128];
    snprintf(base, sizeof(base), "%s", cw_test_state_dir());
    snprintf(blocker, sizeof(blocker), "%s/state", base);
    FILE *f = fopen(blocker, "w"); /* a file where the directory should be */
    fclose(f);
    snprintf(sd, sizeof(sd), "daemon.state_dir=%s/state", base);
    const char *extra[] = {sd, "daemon.snapshot_interval_ms=200", NULL};
    char *a = lines_of(50, "open");
    cw_test_feed_raw(a, strlen(a));
    pid_t pid = cw_test_daemon_start_with(CONF, extra);
    cw_test_wait_read(c, 50);
    assert_int_equal(kill(pid, 0), 0);
    assert_int_equal(cw_test_log_count(c, "\"id\":\"system.snapshot/daemon:main/write\",\"state\":\"firing\""), 1);
    unlink(blocker);
    mkdir(blocker, 0750);
    for (int i = 0; i < 60 && cw_test_log_count(c, "\"id\":\"system.snapshot/daemon:main/write\",\"state\":\"resolved\"") == 0; i++)
        cw_test_sleep_ms(50);
    assert_int_equal(cw_test_log_count(c, "\"id\":\"system.snapshot/daemon:main/write\",\"state\":\"resolved\""), 1);
    char snap[160];
    snprintf(snap, sizeof(snap), "%s/main.snap", blocker);
    struct stat st;
    assert_int_equal(stat(snap, &st), 0);
    cw_test_daemon_stop(pid);
    free(a);
    redisFree(c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(caps_dead_letter_the_excess_and_alert_once),
        cmocka_unit_test(a_paused_redis_loses_nothing),
        cmocka_unit_test(a_long_pipeline_of_writes_is_not_taken_for_silence),
        cmocka_unit_test(a_deleted_alert_log_and_a_subscriber_that_never_reads),
        cmocka_unit_test(a_stream_trimmed_past_the_position_is_detected),
        cmocka_unit_test(snapshots_that_cannot_be_written_are_alerted_and_retried),
    };
    return cmocka_run_group_tests_name("faults", tests, cw_testredis_group_setup, cw_testredis_group_teardown);
}
