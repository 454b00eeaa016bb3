/* Integration tests of casewatchd as a service: the sd_notify protocol
 * (READY=1, WATCHDOG=1, STATUS=, STOPPING=1) on a NOTIFY_SOCKET of our
 * own, SIGHUP reloads (a bad file rejected, a good one taken with the
 * state kept), the unit passing systemd-analyze verify, make install. */
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
#include <sys/un.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cmocka.h>

#include "cw_testredis.h"

static const char *const event_clock[] = {"daemon.clock=event", NULL};

static void the_daemon_speaks_sd_notify(void **state) {
    (void)state;
    char dir[] = "/tmp/cwtest-notify-XXXXXX", path[64];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/notify", dir);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    redisContext *c = cw_testredis_connect(&cw_test_redis);
    freeReplyObject(redisCommand(c, "FLUSHALL"));
    setenv("NOTIFY_SOCKET", path, 1);
    setenv("WATCHDOG_USEC", "200000", 1);
    const char *fast[] = {"daemon.clock=event", "stream.block_ms=100", NULL};
    pid_t pid = cw_test_daemon_start(fast);
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    int ready = 0, watchdog = 0, status = 0, stopping = 0, termed = 0;
    for (int i = 0; i < 100 && !stopping; i++) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 100) == 1) {
            char buf[512];
            ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);
            if (n <= 0) continue;
            buf[n] = '\0';
            ready += strstr(buf, "READY=1") != NULL;
            watchdog += strstr(buf, "WATCHDOG=1") != NULL;
            status += strstr(buf, "STATUS=") != NULL && strstr(buf, "lag") != NULL;
            stopping += strstr(buf, "STOPPING=1") != NULL;
        }
        if (!termed && ready && watchdog >= 3 && status) {
            kill(pid, SIGTERM);
            termed = 1;
        }
    }
    int st;
    waitpid(pid, &st, 0);
    cw_test_daemon_reaped(pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    print_message("READY=1 x%d, WATCHDOG=1 x%d, STATUS= x%d, STOPPING=1 x%d\n", ready, watchdog, status, stopping);
    assert_int_equal(ready, 1);
    assert_true(watchdog >= 3); /* every 100 ms for a 200 ms WatchdogSec */
    assert_true(status >= 1);
    assert_int_equal(stopping, 1);
    close(fd);
    unlink(path);
    rmdir(dir);
    redisFree(c);
}

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
    b[n] = '\0';
    fclose(f);
    return b;
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* 30 cases and 6 items in 2020-Q1 (1:1.20): yellow under the shipped
 * 1.15. A broken file on SIGHUP changes nothing; a threshold of 1.25
 * resolves the alert; the counters stay as they were. */
static void sighup_reloads_rules_and_keeps_state(void **state) {
    (void)state;
    redisContext *c = cw_testredis_connect(&cw_test_redis);
    freeReplyObject(redisCommand(c, "FLUSHALL"));
    char conf[64];
    char *shipped = slurp("systemd/casewatch.conf");
    cw_test_tmpfile(shipped, strlen(shipped), conf, sizeof(conf));
    char lines[16384];
    size_t len = 0;
    for (int i = 0; i < 36; i++)
        len += (size_t)snprintf(lines + len, sizeof(lines) - len,
                                "{\"v\":1,\"id\":\"h%d\",\"ts\":%lld,\"type\":\"%s\",\"case\":\"h-%d\",\"unit\":\"410923\"}\n",
                                i, 1578268800000LL + i * 3600000LL, i < 30 ? "prosecution.accepted" : "trial.appeal", i);
    cw_test_feed_raw(lines, len);
    pid_t pid = cw_test_daemon_start_with(conf, event_clock);
    cw_test_wait_read(c, 36);
    const char *id = "\"id\":\"case_item_ratio.yellow/unit:410923/2020-Q1\",\"state\":\"firing\"";
    assert_int_equal(cw_test_log_count(c, id), 1);

    write_file(conf, "[rule broken]\nkind = threshold\nindicator = no_such_indicator\n");
    kill(pid, SIGHUP);
    cw_test_sleep_ms(800);
    assert_int_equal(kill(pid, 0), 0); /* still running */
    long long beat = cw_test_hget_ll(c, "casewatch:daemon:main", "heartbeat_at");
    cw_test_sleep_ms(1200);
    assert_true(cw_test_hget_ll(c, "casewatch:daemon:main", "heartbeat_at") > beat);
    assert_int_equal(cw_test_log_count(c, "\"state\":\"resolved\""), 0);

    char *raised = malloc(strlen(shipped) + 64);
    char *t = strstr(shipped, "threshold = 1.15");
    assert_non_null(t);
    snprintf(raised, strlen(shipped) + 64, "%.*sthreshold = 1.25%s", (int)(t - shipped), shipped, t + 16);
    write_file(conf, raised);
    kill(pid, SIGHUP);
    cw_test_sleep_ms(1500);
    assert_int_equal(cw_test_log_count(c, "\"id\":\"case_item_ratio.yellow/unit:410923/2020-Q1\",\"state\":\"resolved\""), 1);
    assert_int_equal(cw_test_hget_ll(c, "casewatch:ind:unit:410923:2020-Q1", "cases"), 30);
    assert_int_equal(cw_test_hget_ll(c, "casewatch:daemon:main", "events"), 36);
    cw_test_daemon_stop(pid);
    unlink(conf);
    free(raised);
    free(shipped);
    redisFree(c);
}

static void the_unit_verifies_and_make_install_lays_out_everything(void **state) {
    (void)state;
    char dir[] = "/tmp/cwtest-install-XXXXXX", cmd[1024];
    assert_non_null(mkdtemp(dir));
    snprintf(cmd, sizeof(cmd), "make -s install PREFIX=/usr/local DESTDIR=%s >/dev/null", dir);
    char *argv[] = {"/bin/sh", "-c", cmd, NULL};
    char *out, *err;
    int rc = cw_test_run(argv, NULL, 0, &out, &err);
    if (rc != 0) fail_msg("make install failed: %s", err);
    free(out), free(err);
    const char *files[] = {"/usr/local/bin/casewatchd", "/usr/local/bin/casewatch",
                           "/usr/local/lib/systemd/system/casewatchd.service", "/usr/local/lib/sysusers.d/casewatch.conf",
                           "/usr/local/lib/tmpfiles.d/casewatch.conf", "/usr/local/share/man/man8/casewatchd.8",
                           "/usr/local/share/man/man1/casewatch.1", "/etc/casewatch/casewatch.conf",
                           "/etc/casewatch/feed-columns-cn.conf"};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        char p[512];
        struct stat st;
        snprintf(p, sizeof(p), "%s%s", dir, files[i]);
        if (stat(p, &st) != 0) fail_msg("make install did not write %s", p);
    }
    if (access("/usr/bin/systemd-analyze", X_OK) == 0) {
        /* verify needs ExecStart to exist: point it at the installed binary */
        snprintf(cmd, sizeof(cmd),
                 "cd %s && sed 's#/usr/local/bin/#%s/usr/local/bin/#' usr/local/lib/systemd/system/casewatchd.service "
                 "> casewatchd.service && systemd-analyze verify --man=no ./casewatchd.service",
                 dir, dir);
        rc = cw_test_run(argv, NULL, 0, &out, &err);
        if (rc != 0) fail_msg("systemd-analyze verify: %s%s", out, err);
        free(out), free(err);
    } else {
        print_message("systemd-analyze not installed: unit not verified\n");
    }
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

/* The daemon as an ACL user whose password comes from a file (mode 600):
 * it reads and writes; with a wrong password it says AUTH was refused,
 * and neither password ever appears in what it logs. */
static void the_daemon_authenticates_and_never_logs_the_password(void **state) {
    (void)state;
    redisContext *c = cw_testredis_connect(&cw_test_redis);
    freeReplyObject(redisCommand(c, "FLUSHALL"));
    freeReplyObject(redisCommand(c, "ACL SETUSER casewatchd on >d43mon-s3cret ~casewatch:* &* +@all"));
    char pw[64], bad[64], u[64], p1[96], p2[96];
    cw_test_tmpfile("d43mon-s3cret\n", 14, pw, sizeof(pw));
    chmod(pw, 0600);
    cw_test_tmpfile("wr0ng-pw\n", 9, bad, sizeof(bad));
    chmod(bad, 0600);
    snprintf(u, sizeof(u), "redis.user=casewatchd");
    snprintf(p1, sizeof(p1), "redis.password_file=%s", pw);
    snprintf(p2, sizeof(p2), "redis.password_file=%s", bad);
    const char *lines = "{\"v\":1,\"id\":\"a1\",\"ts\":1596211200000,\"type\":\"arrest.accepted\",\"case\":\"x\",\"unit\":\"410923\"}\n";
    cw_test_feed_raw(lines, strlen(lines));
    /* stderr of the daemon into a file we can read */
    char logpath[64];
    cw_test_tmpfile("", 0, logpath, sizeof(logpath));
    int saved = dup(2);
    int fd = open(logpath, O_WRONLY | O_TRUNC);
    dup2(fd, 2);
    const char *good[] = {u, p1, "daemon.log_level=info", NULL};
    pid_t pid = cw_test_daemon_start(good);
    dup2(saved, 2);
    cw_test_wait_read(c, 1);
    assert_int_equal(cw_test_hget_ll(c, "casewatch:ind:unit:410923:2020", "cases"), 1);
    cw_test_daemon_stop(pid);
    dup2(fd, 2);
    const char *wrong[] = {u, p2, NULL};
    pid = cw_test_daemon_start(wrong);
    dup2(saved, 2);
    cw_test_sleep_ms(1500);
    cw_test_daemon_stop(pid);
    close(fd);
    close(saved);
    char *log = slurp(logpath);
    if (!strstr(log, "refused AUTH as casewatchd")) fail_msg("no AUTH refusal logged:\n%s", log);
    assert_null(strstr(log, "d43mon-s3cret"));
    assert_null(strstr(log, "wr0ng-pw"));
    free(log);
    unlink(logpath), unlink(pw), unlink(bad);
    freeReplyObject(redisCommand(c, "ACL DELUSER casewatchd"));
    redisFree(c);
}

/* The password file is read whole: a 1,000-byte password (it was cut at
 * 511 bytes, and AUTH refused) authenticates; a file over 4 KiB is
 * refused at start (exit 2) with a message naming the file and the
 * limit, and the password is not in it. */
static void a_long_password_is_read_whole_and_one_too_long_is_refused_by_name(void **state) {
    (void)state;
    redisContext *c = cw_testredis_connect(&cw_test_redis);
    freeReplyObject(redisCommand(c, "FLUSHALL"));
    char secret[1001], huge[5001];
    for (int i = 0; i < 1000; i++) secret[i] = "abcdefghijklmnopqrstuvwxyz0123456789"[i * 7 % 36];
    secret[1000] = '\0';
    memset(huge, 'z', 5000);
    huge[5000] = '\0';
    redisReply *r = redisCommand(c, "ACL SETUSER longpw on >%s ~casewatch:* &* +@all", secret);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STATUS);
    freeReplyObject(r);
    char text[1100], pw[64], toolong[64], u[64], p1[96], p2[96];
    snprintf(text, sizeof(text), "%s\n", secret);
    cw_test_tmpfile(text, strlen(text), pw, sizeof(pw));
    chmod(pw, 0600);
    cw_test_tmpfile(huge, 5000, toolong, sizeof(toolong));
    chmod(toolong, 0600);
    snprintf(u, sizeof(u), "redis.user=longpw");
    snprintf(p1, sizeof(p1), "redis.password_file=%s", pw);
    snprintf(p2, sizeof(p2), "redis.password_file=%s", toolong);
    const char *lines = "{\"v\":1,\"id\":\"a1\",\"ts\":1596211200000,\"type\":\"arrest.accepted\",\"case\":\"x\",\"unit\":\"410923\"}\n";
    cw_test_feed_raw(lines, strlen(lines));
    const char *good[] = {u, p1, NULL};
    pid_t pid = cw_test_daemon_start(good);
    cw_test_wait_read(c, 1);
    assert_int_equal(cw_test_hget_ll(c, "casewatch:ind:unit:410923:2020", "cases"), 1);
    cw_test_daemon_stop(pid);

    char bin[256], port[64];
    cw_test_bin("casewatchd", bin, sizeof(bin));
    snprintf(port, sizeof(port), "redis.port=%d", cw_test_redis.port);
    char *argv[] = {bin, "-c", "/dev/null", "-o", port, "-o", u, "-o", p2, NULL};
    char *out = NULL, *err = NULL;
    int rc = cw_test_run(argv, NULL, 0, &out, &err);
    assert_int_equal(rc, 2);
    if (!strstr(err, toolong) || !strstr(err, "4096")) fail_msg("no message naming the file and the limit:\n%s", err);
    assert_null(strstr(err, "zzzzzzzz"));
    free(out);
    free(err);
    unlink(pw), unlink(toolong);
    freeReplyObject(redisCommand(c, "ACL DELUSER longpw"));
    redisFree(c);
}

/* A --replay reads on a blocking connection of its own (cw_replay_read):
 * with a password required, it authenticates there as on the others and
 * reads the stream to its tip. */
static void a_replay_authenticates_its_reads_too(void **state) {
    (void)state;
    redisContext *c = cw_testredis_connect(&cw_test_redis);
    freeReplyObject(redisCommand(c, "FLUSHALL"));
    freeReplyObject(redisCommand(c, "ACL SETUSER casewatchd on >r3play-s3cret ~casewatch:* &* +@all"));
    const char *lines = "{\"v\":1,\"id\":\"a1\",\"ts\":1596211200000,\"type\":\"arrest.accepted\",\"case\":\"x\",\"unit\":\"410923\"}\n"
                        "{\"v\":1,\"id\":\"a2\",\"ts\":1596211300000,\"type\":\"arrest.accepted\",\"case\":\"y\",\"unit\":\"410923\"}\n";
    cw_test_feed_raw(lines, strlen(lines));
    char pw[64], pwo[96], bin[256], port[64], sd[96];
    cw_test_tmpfile("r3play-s3cret\n", 14, pw, sizeof(pw));
    chmod(pw, 0600);
    snprintf(pwo, sizeof(pwo), "redis.password_file=%s", pw);
    cw_test_bin("casewatchd", bin, sizeof(bin));
    snprintf(port, sizeof(port), "redis.port=%d", cw_test_redis.port);
    snprintf(sd, sizeof(sd), "daemon.state_dir=%s", cw_test_state_dir());
    /* from here on, a connection that does not authenticate is refused */
    freeReplyObject(redisCommand(c, "CONFIG SET requirepass n0t-the-daemons"));
    char *argv[] = {"/usr/bin/timeout", "30", bin, "-c", "/dev/null", "-o", port, "-o", "redis.user=casewatchd", "-o", pwo,
                    "-o", sd, "-o", "daemon.log_level=warning", "--replay", NULL};
    char *out, *err;
    int rc = cw_test_run(argv, NULL, 0, &out, &err);
    freeReplyObject(redisCommand(c, "CONFIG SET requirepass %s", ""));
    redisContext *open_again = cw_testredis_connect(&cw_test_redis); /* the next tests connect without a password */
    redisReply *pong = redisCommand(open_again, "PING");
    assert_int_equal(pong->type, REDIS_REPLY_STATUS);
    freeReplyObject(pong);
    redisFree(open_again);
    if (rc != 0) fail_msg("the replay exited %d: %s", rc, err);
    if (!strstr(out, "replayed 2 events (2 entries read)")) fail_msg("expected the replay's line in: %s", out);
    assert_int_equal(cw_test_hget_ll(c, "casewatch:ind:unit:410923:2020", "cases"), 2);
    assert_null(strstr(err, "r3play-s3cret"));
    free(out), free(err);
    unlink(pw);
    freeReplyObject(redisCommand(c, "ACL DELUSER casewatchd"));
    redisFree(c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(the_daemon_speaks_sd_notify),
        cmocka_unit_test(sighup_reloads_rules_and_keeps_state),
        cmocka_unit_test(the_unit_verifies_and_make_install_lays_out_everything),
        cmocka_unit_test(the_daemon_authenticates_and_never_logs_the_password),
        cmocka_unit_test(a_long_password_is_read_whole_and_one_too_long_is_refused_by_name),
        cmocka_unit_test(a_replay_authenticates_its_reads_too),
    };
    return cmocka_run_group_tests_name("casewatchd as a service", tests, cw_testredis_group_setup,
                                       cw_testredis_group_teardown);
}
