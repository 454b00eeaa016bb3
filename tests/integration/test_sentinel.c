/* Integration test of Redis Sentinel support (issue 5): the daemon is
 * given a wrong port and a sentinel; it asks the sentinel for the primary,
 * reads half a stream, follows a failover (SENTINEL FAILOVER promotes the
 * replica) and reads the other half from the new primary. A primary, a
 * replica and a sentinel of our own, on free loopback ports, stopped by pid. */
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

#include "cw_testredis.h"

typedef struct server {
    pid_t pid;
    int port;
} server;

static int free_port_near(int base) {
    /* the harness's redis took a free port; take the next free ones */
    for (int p = base + 1; p < base + 200; p++) {
        char cmd[64];
        snprintf(cmd, sizeof(cmd), "127.0.0.1:%d", p);
        redisContext *c = redisConnect("127.0.0.1", p);
        int taken = c && !c->err;
        redisFree(c);
        if (!taken) return p;
    }
    return -1;
}

static int wait_ping(int port) {
    for (int i = 0; i < 200; i++) {
        redisContext *c = redisConnect("127.0.0.1", port);
        if (c && !c->err) {
            redisReply *r = redisCommand(c, "PING");
            int ok = r && r->type == REDIS_REPLY_STATUS;
            if (r) freeReplyObject(r);
            redisFree(c);
            if (ok) return 0;
        } else {
            redisFree(c);
        }
        cw_test_sleep_ms(25);
    }
    return -1;
}

static server spawn(char *const argv[], int port) {
    server s = {0, port};
    s.pid = fork();
    if (s.pid == 0) {
        freopen("/dev/null", "w", stdout);
        execvp(argv[0], argv);
        _exit(127);
    }
    assert_int_equal(wait_ping(port), 0);
    return s;
}

static void stop(server *s) {
    if (s->pid > 0) {
        kill(s->pid, SIGTERM);
        waitpid(s->pid, NULL, 0);
        s->pid = 0;
    }
}

static long long hget_at(int port, const char *key, const char *field) {
    redisContext *c = redisConnect("127.0.0.1", port);
    redisReply *r = redisCommand(c, "HGET %s %s", key, field);
    long long v = r && r->type == REDIS_REPLY_STRING ? atoll(r->str) : -1;
    if (r) freeReplyObject(r);
    redisFree(c);
    return v;
}

static void feed_to(int port, const char *lines, size_t len) {
    char bin[256], p[64];
    cw_test_bin("casewatch", bin, sizeof(bin));
    snprintf(p, sizeof(p), "redis.port=%d", port);
    char *argv[] = {bin, "-c", "/dev/null", "-o", p, "feed", NULL};
    char *out, *err;
    int rc = cw_test_run(argv, lines, len, &out, &err);
    if (rc != 0) fail_msg("feed exited %d: %s", rc, err);
    free(out), free(err);
}

static void the_daemon_follows_a_sentinel_failover(void **state) {
    (void)state;
    int primary = cw_test_redis.port;
    int rport = free_port_near(primary), sport = free_port_near(rport);
    char dir[] = "/tmp/cwtest-sentinel-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char rp[16], pp[16], sp[16], sconf[128];
    snprintf(rp, sizeof(rp), "%d", rport);
    snprintf(pp, sizeof(pp), "%d", primary);
    snprintf(sp, sizeof(sp), "%d", sport);
    char *rargv[] = {"redis-server", "--port", rp, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir",
                     dir, "--replicaof", "127.0.0.1", pp, NULL};
    server replica = spawn(rargv, rport);
    snprintf(sconf, sizeof(sconf), "%s/sentinel.conf", dir);
    FILE *f = fopen(sconf, "w");
    fprintf(f,
            "port %d\nbind 127.0.0.1\ndir %s\nsentinel monitor mymaster 127.0.0.1 %d 1\n"
            "sentinel down-after-milliseconds mymaster 1000\nsentinel failover-timeout mymaster 4000\n",
            sport, dir, primary);
    fclose(f);
    char *sargv[] = {"redis-server", sconf, "--sentinel", NULL};
    server sentinel = spawn(sargv, sport);

    const char *args[] = {"--seed", "9", "--cases", "400", NULL};
    char *lines = cw_test_gen(args);
    size_t len = strlen(lines), half = len / 2;
    while (lines[half - 1] != '\n') half++;
    long long total = 0, first = 0;
    for (size_t i = 0; i < len; i++) total += lines[i] == '\n', first += i < half && lines[i] == '\n';
    feed_to(primary, lines, half);

    char sentinels[64];
    snprintf(sentinels, sizeof(sentinels), "redis.sentinels=127.0.0.1:%d", sport);
    const char *extra[] = {"redis.port=1", sentinels, "redis.timeout_ms=500", NULL}; /* port 1: only the sentinel knows */
    pid_t pid = cw_test_daemon_start(extra);
    for (int i = 0; i < 600 && hget_at(primary, "casewatch:daemon:main", "entries_read") < first; i++)
        cw_test_sleep_ms(50);
    assert_int_equal(hget_at(primary, "casewatch:daemon:main", "entries_read"), first);
    /* wait for the replica to have everything, then fail over */
    cw_test_sleep_ms(1500);
    redisContext *sc = redisConnect("127.0.0.1", sport);
    int promoted = 0;
    for (int attempt = 0; attempt < 20 && !promoted; attempt++) {
        redisReply *r = redisCommand(sc, "SENTINEL FAILOVER mymaster");
        if (r) freeReplyObject(r);
        for (int i = 0; i < 40 && !promoted; i++) {
            cw_test_sleep_ms(100);
            r = redisCommand(sc, "SENTINEL get-master-addr-by-name mymaster");
            promoted = r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 && atoi(r->element[1]->str) == rport;
            if (r) freeReplyObject(r);
        }
    }
    redisFree(sc);
    assert_true(promoted);
    feed_to(rport, lines + half, len - half);
    for (int i = 0; i < 1200 && hget_at(rport, "casewatch:daemon:main", "entries_read") < total; i++)
        cw_test_sleep_ms(50);
    assert_int_equal(hget_at(rport, "casewatch:daemon:main", "entries_read"), total);
    cw_test_sleep_ms(1200);
    long long cases = hget_at(rport, "casewatch:ind:nation:2020", "cases");
    assert_true(cases > 100);
    cw_test_daemon_stop(pid);
    print_message("read %lld entries from the first primary, %lld from the promoted replica (port %d)\n", first,
                  total - first, rport);
    stop(&sentinel);
    stop(&replica);
    free(lines);
    char cmd[96];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(the_daemon_follows_a_sentinel_failover),
    };
    return cmocka_run_group_tests_name("sentinel", tests, cw_testredis_group_setup, cw_testredis_group_teardown);
}
