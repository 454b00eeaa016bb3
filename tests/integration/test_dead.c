/* Integration test of dead letters under hostile input (issue 16 item 4)
 * against a real redis-server: a 10 MB value and a hundred fields are cut
 * to [limits] dead_letter_bytes and the dead letter says what was cut; the
 * dead-letter stream is capped by [stream] dead_maxlen; hundreds of dead
 * letters are logged as a rate, not a line each; and the daemon's own
 * snapshot, holding such dead letters unsent, loads again. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cw_testredis.h"

#define BIG (10 * 1024 * 1024)

static const char *const opts[] = {"limits.dead_letter_bytes=65536", "stream.dead_maxlen=100", "daemon.log_level=notice",
                                   NULL};

static long count_lines(const char *path, const char *needle) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char line[4096];
    long n = 0;
    while (fgets(line, sizeof(line), f))
        if (strstr(line, needle)) n++;
    fclose(f);
    return n;
}

/* 300 unusable entries, the last with a 10 MB value among 100 fields. */
static void add_bad_entries(redisContext *c) {
    for (int i = 0; i < 299; i++) {
        redisReply *r = redisCommand(c, "XADD casewatch:events * x %d", i);
        freeReplyObject(r);
    }
    char *big = malloc(BIG);
    memset(big, 'x', BIG);
    const char *argv[3 + 200];
    size_t lens[3 + 200];
    char names[100][8];
    int n = 0;
    argv[n] = "XADD", lens[n++] = 4;
    argv[n] = "casewatch:events", lens[n++] = 16;
    argv[n] = "*", lens[n++] = 1;
    for (int i = 0; i < 100; i++) {
        snprintf(names[i], sizeof(names[i]), "f%d", i);
        argv[n] = names[i], lens[n++] = strlen(names[i]);
        argv[n] = big, lens[n++] = i == 0 ? BIG : 10;
    }
    redisReply *r = redisCommandArgv(c, n, argv, lens);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    freeReplyObject(r);
    free(big);
}

static void wait_dead(redisContext *c, long long n) {
    for (int i = 0; i < 400; i++) {
        if (cw_test_hget_ll(c, "casewatch:daemon:main", "dead_lettered") >= n) return;
        cw_test_sleep_ms(50);
    }
    fail_msg("the daemon did not dead-letter %lld entries", n);
}

static void huge_and_many_dead_letters_are_bounded_capped_and_logged_as_a_rate(void **state) {
    (void)state;
    redisContext *c = cw_testredis_connect(&cw_test_redis);
    freeReplyObject(redisCommand(c, "FLUSHALL"));
    char log[] = "/tmp/cw-test-dead-XXXXXX";
    int fd = mkstemp(log);
    close(fd);
    setenv("CW_TEST_DAEMON_STDERR", log, 1);
    pid_t pid = cw_test_daemon_start(opts);
    unsetenv("CW_TEST_DAEMON_STDERR");
    add_bad_entries(c);
    wait_dead(c, 300);
    /* the stream kept about dead_maxlen (MAXLEN ~ trims whole nodes) */
    redisReply *r = redisCommand(c, "XLEN casewatch:events:dead");
    for (int i = 0; i < 100 && r->integer < 1; i++) { /* the last ones may still be on their way */
        freeReplyObject(r);
        cw_test_sleep_ms(50);
        r = redisCommand(c, "XLEN casewatch:events:dead");
    }
    assert_true(r->integer >= 100 && r->integer < 300);
    freeReplyObject(r);
    /* the last dead letter: cut to 64 KiB, saying what was cut */
    long long bytes = 0;
    int cut_said = 0, fields = 0;
    for (int i = 0; i < 100 && !cut_said; i++) {
        r = redisCommand(c, "XREVRANGE casewatch:events:dead + - COUNT 1");
        if (r->elements == 1) {
            redisReply *f = r->element[0]->element[1];
            fields = (int)f->elements / 2;
            bytes = 0;
            for (size_t j = 0; j + 1 < f->elements; j += 2) {
                bytes += (long long)(f->element[j]->len + f->element[j + 1]->len);
                if (strcmp(f->element[j]->str, "cut") == 0)
                    cut_said = strstr(f->element[j + 1]->str, "f0: 10485760 bytes") != NULL &&
                               strstr(f->element[j + 1]->str, "36 more fields dropped") != NULL;
            }
        }
        freeReplyObject(r);
        if (!cut_said) cw_test_sleep_ms(50);
    }
    assert_true(cut_said);
    assert_int_equal(fields, 64 + 3); /* 64 fields kept, cut, reason, source_id */
    assert_true(bytes < 65536 + 4096 + 200);
    /* one line for the first dead letter of the minute, not 300 */
    cw_test_daemon_stop(pid);
    long lines = count_lines(log, "dead-lettered");
    assert_true(lines >= 1 && lines <= 2);
    unlink(log);
    redisFree(c);
}

/* Redis down while such dead letters wait: the final snapshot holds them,
 * and the next start loads it (it used to refuse its own snapshot past 16
 * fields or 1 MiB) and sends them. */
static void dead_letters_waiting_for_redis_survive_the_snapshot(void **state) {
    (void)state;
    redisContext *c = cw_testredis_connect(&cw_test_redis);
    freeReplyObject(redisCommand(c, "FLUSHALL"));
    /* the dead-letter key of the wrong type: every dead letter is refused */
    freeReplyObject(redisCommand(c, "SET casewatch:events:dead blocked"));
    const char *dir = cw_test_state_dir();
    char state_dir[160];
    snprintf(state_dir, sizeof(state_dir), "daemon.state_dir=%s", dir);
    const char *o[] = {"limits.dead_letter_bytes=65536", state_dir, NULL};
    pid_t pid = cw_test_daemon_start(o);
    add_bad_entries(c);
    wait_dead(c, 300);
    cw_test_sleep_ms(300);
    cw_test_daemon_stop(pid); /* they stay queued: into the final snapshot */
    freeReplyObject(redisCommand(c, "DEL casewatch:events:dead"));
    pid = cw_test_daemon_start(o);
    redisReply *r = NULL;
    for (int i = 0; i < 200; i++) {
        if (r) freeReplyObject(r);
        r = redisCommand(c, "XLEN casewatch:events:dead");
        if (r->type == REDIS_REPLY_INTEGER && r->integer >= 300) break;
        cw_test_sleep_ms(50);
    }
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    assert_int_equal(r->integer, 300); /* the snapshot loaded, every dead letter sent once */
    freeReplyObject(r);
    cw_test_daemon_stop(pid);
    redisFree(c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(huge_and_many_dead_letters_are_bounded_capped_and_logged_as_a_rate),
        cmocka_unit_test(dead_letters_waiting_for_redis_survive_the_snapshot),
    };
    return cmocka_run_group_tests_name("dead letters", tests, cw_testredis_group_setup, cw_testredis_group_teardown);
}
