#include "cw_testredis.h"

#include "../../daemon/cw_config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

static int free_port(void) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t l = sizeof(a);
    int port = -1;
    if (s >= 0 && bind(s, (struct sockaddr *)&a, sizeof(a)) == 0 && getsockname(s, (struct sockaddr *)&a, &l) == 0)
        port = ntohs(a.sin_port);
    if (s >= 0) close(s);
    return port;
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int spawn(cw_testredis *r) {
    char port[16];
    snprintf(port, sizeof(port), "%d", r->port);
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDWR);
        dup2(devnull, 1);
        dup2(devnull, 2);
        execlp("redis-server", "redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly",
               "no", "--dir", r->dir, "--daemonize", "no", "--protected-mode", "yes", (char *)NULL);
        _exit(127);
    }
    r->pid = pid;
    for (int i = 0; i < 200; i++) {
        redisContext *c = cw_testredis_connect(r);
        if (c) {
            redisReply *rep = redisCommand(c, "PING");
            int ok = rep && rep->type == REDIS_REPLY_STATUS;
            if (rep) freeReplyObject(rep);
            redisFree(c);
            if (ok) return 0;
        }
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) { /* died: port taken? */
            r->pid = 0;
            return -1;
        }
        sleep_ms(25);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    r->pid = 0;
    return -1;
}

int cw_testredis_start(cw_testredis *r) {
    memset(r, 0, sizeof(*r));
    snprintf(r->dir, sizeof(r->dir), "/tmp/cwtest-redis-XXXXXX");
    if (!mkdtemp(r->dir)) return -1;
    for (int attempt = 0; attempt < 5; attempt++) {
        r->port = free_port();
        if (r->port > 0 && spawn(r) == 0) return 0;
    }
    return -1;
}

void cw_testredis_stop(cw_testredis *r) {
    if (r->pid > 0) {
        kill(r->pid, SIGTERM);
        waitpid(r->pid, NULL, 0);
        r->pid = 0;
    }
    if (r->dir[0]) {
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", r->dir);
        if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", r->dir);
        r->dir[0] = '\0';
    }
}

int cw_testredis_restart(cw_testredis *r) {
    if (r->pid > 0) {
        kill(r->pid, SIGKILL);
        waitpid(r->pid, NULL, 0);
        r->pid = 0;
    }
    for (int i = 0; i < 40; i++) {
        if (spawn(r) == 0) return 0;
        sleep_ms(50);
    }
    return -1;
}

redisContext *cw_testredis_connect(const cw_testredis *r) {
    struct timeval tv = {2, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", r->port, tv);
    if (!c || c->err) {
        redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv);
    return c;
}

const char *cw_test_bin(const char *name, char *buf, size_t len) {
    const char *dir = getenv("CW_BIN");
    snprintf(buf, len, "%s/%s", dir ? dir : "bin", name);
    return buf;
}

const char *cw_test_tmpfile(const char *content, size_t len, char *buf, size_t buflen) {
    snprintf(buf, buflen, "/tmp/cwtest-XXXXXX");
    int fd = mkstemp(buf);
    if (fd < 0) return NULL;
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, content + off, len - off);
        if (w <= 0) break;
        off += (size_t)w;
    }
    close(fd);
    return buf;
}

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return strdup("");
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    size_t got = fread(b, 1, (size_t)n, f);
    b[got] = '\0';
    fclose(f);
    return b;
}

int cw_test_run(char *const argv[], const char *stdin_data, size_t stdin_len, char **out, char **err) {
    char in_path[64], out_path[64] = "/tmp/cwtest-out-XXXXXX", err_path[64] = "/tmp/cwtest-err-XXXXXX";
    if (!cw_test_tmpfile(stdin_data ? stdin_data : "", stdin_data ? stdin_len : 0, in_path, sizeof(in_path)))
        return -1;
    int ofd = mkstemp(out_path), efd = mkstemp(err_path);
    pid_t pid = fork();
    if (pid == 0) {
        int ifd = open(in_path, O_RDONLY);
        dup2(ifd, 0);
        dup2(ofd, 1);
        dup2(efd, 2);
        execv(argv[0], argv);
        _exit(127);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    close(ofd);
    close(efd);
    if (out) *out = slurp(out_path);
    if (err) *err = slurp(err_path);
    unlink(in_path);
    unlink(out_path);
    unlink(err_path);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* daemons started and not yet stopped: killed at group teardown, so that
 * a failed test leaves none behind */
static pid_t daemons[64];
static int ndaemons;
static void forget_daemon(pid_t pid);

void cw_test_daemon_reaped(pid_t pid) {
    forget_daemon(pid);
}

static void forget_daemon(pid_t pid) {
    for (int i = 0; i < ndaemons; i++)
        if (daemons[i] == pid) daemons[i] = daemons[--ndaemons];
}

/* state directories handed out, removed at group teardown */
static char state_dirs[128][40];
static int nstate_dirs;

cw_testredis cw_test_redis;

int cw_testredis_group_setup(void **state) {
    (void)state;
    return cw_testredis_start(&cw_test_redis);
}

int cw_test_daemons_reset(void **state) {
    (void)state;
    for (int i = 0; i < ndaemons; i++) {
        kill(daemons[i], SIGKILL);
        waitpid(daemons[i], NULL, 0);
    }
    ndaemons = 0;
    return 0;
}

int cw_testredis_group_teardown(void **state) {
    (void)state;
    for (int i = 0; i < ndaemons; i++) {
        kill(daemons[i], SIGKILL);
        waitpid(daemons[i], NULL, 0);
    }
    ndaemons = 0;
    cw_testredis_stop(&cw_test_redis);
    for (int i = 0; i < nstate_dirs; i++) {
        char cmd[96];
        snprintf(cmd, sizeof(cmd), "rm -rf '%.39s'", state_dirs[i]);
        if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", state_dirs[i]);
    }
    nstate_dirs = 0;
    return 0;
}

void cw_test_sleep_ms(int ms) {
    sleep_ms(ms);
}

int cw_test_wait_exit(pid_t pid) {
    for (int i = 0; i < 6000; i++) {
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        sleep_ms(10);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    fail_msg("process %d did not end within 60 s", (int)pid);
    return -1;
}

pid_t cw_test_daemon_start(const char *const *extra) {
    return cw_test_daemon_start_with("/dev/null", extra);
}


const char *cw_test_state_dir(void) {
    if (nstate_dirs == 128) return "/tmp";
    char *d = state_dirs[nstate_dirs];
    snprintf(d, sizeof(state_dirs[0]), "/tmp/cwtest-state-XXXXXX");
    if (!mkdtemp(d)) return "/tmp";
    nstate_dirs++;
    return d;
}

pid_t cw_test_daemon_start_with(const char *conf, const char *const *extra) {
    char bin[256], port[64], state[96];
    cw_test_bin("casewatchd", bin, sizeof(bin));
    snprintf(port, sizeof(port), "redis.port=%d", cw_test_redis.port);
    snprintf(state, sizeof(state), "daemon.state_dir=%s", cw_test_state_dir());
    const char *argv[64] = {bin, "-c", conf, "-o", port, "-o", "daemon.clock=event", "-o",
                            "daemon.log_level=warning", "-o", "indicators.flush_ms=100", "-o", state};
    int n = 13;
    for (int i = 0; extra && extra[i] && n < 60; i++) {
        argv[n++] = "-o";
        argv[n++] = extra[i];
    }
    argv[n] = NULL;
    pid_t pid = fork();
    if (pid == 0) {
        const char *log = getenv("CW_TEST_DAEMON_STDERR"); /* a test reading the daemon's log lines */
        if (log && log[0]) {
            int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
            if (fd >= 0) {
                dup2(fd, 2);
                close(fd);
            }
        }
        if (getenv("CW_VALGRIND")) { /* the daemon under valgrind: errors make it exit 99 */
            const char *vargv[72] = {"valgrind", "--quiet", "--error-exitcode=99", "--leak-check=full",
                                     "--errors-for-leak-kinds=definite", "--child-silent-after-fork=yes"};
            int k = 6;
            for (int i = 0; argv[i] && k < 71; i++) vargv[k++] = argv[i];
            vargv[k] = NULL;
            execvp("valgrind", (char *const *)vargv);
        }
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    if (pid > 0 && ndaemons < 64) daemons[ndaemons++] = pid;
    return pid;
}

void cw_test_daemon_stop(pid_t pid) {
    int st = 0;
    forget_daemon(pid);
    kill(pid, SIGTERM);
    waitpid(pid, &st, 0);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

long long cw_test_hget_ll(redisContext *c, const char *key, const char *field) {
    redisReply *r = redisCommand(c, "HGET %s %s", key, field);
    long long v = r && r->type == REDIS_REPLY_STRING ? atoll(r->str) : -1;
    if (r) freeReplyObject(r);
    return v;
}

char *cw_test_hget(redisContext *c, const char *key, const char *field) {
    redisReply *r = redisCommand(c, "HGET %s %s", key, field);
    char *v = r && r->type == REDIS_REPLY_STRING ? strdup(r->str) : strdup("(nil)");
    if (r) freeReplyObject(r);
    return v;
}

void cw_test_wait_read(redisContext *c, long long entries) {
    int tries = getenv("CW_VALGRIND") ? 6000 : 600; /* 5 min under valgrind, else 30 s */
    for (int i = 0; i < tries; i++) {
        if (cw_test_hget_ll(c, "casewatch:daemon:main", "entries_read") >= entries) {
            sleep_ms(1300); /* one more flush and heartbeat */
            return;
        }
        sleep_ms(50);
    }
    fail_msg("daemon read %lld of %lld entries", cw_test_hget_ll(c, "casewatch:daemon:main", "entries_read"), entries);
}

char *cw_test_gen(const char *const *args) {
    char bin[256];
    cw_test_bin("casewatch", bin, sizeof(bin));
    char *argv[40] = {bin, "gen"};
    int n = 2;
    for (int i = 0; args[i] && n < 38; i++) argv[n++] = (char *)args[i];
    argv[n] = NULL;
    char *out = NULL, *err = NULL;
    int rc = cw_test_run(argv, NULL, 0, &out, &err);
    if (rc != 0) fail_msg("casewatch gen exited %d: %s", rc, err);
    free(err);
    return out;
}

void cw_test_feed_raw(const char *lines, size_t len) {
    char bin[256], port[64];
    cw_test_bin("casewatch", bin, sizeof(bin));
    snprintf(port, sizeof(port), "redis.port=%d", cw_test_redis.port);
    char *argv[] = {bin, "-c", "/dev/null", "-o", port, "feed", "--raw", NULL};
    char *out = NULL, *err = NULL;
    int rc = cw_test_run(argv, lines, len, &out, &err);
    if (rc != 0) fail_msg("feed --raw exited %d: %s", rc, err);
    free(out);
    free(err);
}

int cw_test_log_count(redisContext *c, const char *needle) {
    redisReply *r = redisCommand(c, "XRANGE casewatch:alerts:log - +");
    int n = 0;
    for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i < r->elements; i++)
        n += strstr(r->element[i]->element[1]->element[1]->str, needle) != NULL;
    if (r) freeReplyObject(r);
    return n;
}

cw_event cw_test_event(const char *id, const char *case_id, const char *unit, cw_event_type t, int64_t ts) {
    cw_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.v = 1;
    ev.type = t;
    ev.ts = ts;
    ev.n = 1;
    snprintf(ev.id, sizeof(ev.id), "%s", id);
    snprintf(ev.case_id, sizeof(ev.case_id), "%s", case_id);
    snprintf(ev.unit, sizeof(ev.unit), "%s", unit);
    return ev;
}

cw_config *cw_test_config(const char *ini) {
    cw_config *c = cw_config_new();
    assert_non_null(c);
    FILE *f = fmemopen((void *)ini, strlen(ini), "r");
    char err[512] = "";
    int rc = cw_config_load_stream(c, f, "test.conf", err, sizeof(err));
    fclose(f);
    if (rc == 0) rc = cw_config_finish(c, err, sizeof(err));
    if (rc != 0) fail_msg("config: %s", err);
    return c;
}
