/* Test harness: a private redis-server on a free loopback port, started
 * and stopped by its pid, and helpers to run the project's binaries. */
#ifndef CW_TESTREDIS_H
#define CW_TESTREDIS_H

#include <stddef.h>
#include <sys/types.h>

#include <hiredis.h>

#include "../../proto/cw_event.h"

typedef struct cw_testredis {
    pid_t pid;
    int port;
    char dir[64];
} cw_testredis;

/* Starts redis-server (no persistence) and waits until it answers PING.
 * Returns 0 or -1. */
int cw_testredis_start(cw_testredis *r);
/* SIGTERM to its pid, wait, remove its directory. */
void cw_testredis_stop(cw_testredis *r);
/* Stops it with SIGKILL, keeping port and dir, then starts it again on
 * the same port (for restart tests). Returns 0 or -1. */
int cw_testredis_restart(cw_testredis *r);
redisContext *cw_testredis_connect(const cw_testredis *r);

/* The redis-server of a test group, started by cw_testredis_group_setup
 * and stopped by cw_testredis_group_teardown (cmocka group fixtures). */
extern cw_testredis cw_test_redis;
int cw_testredis_group_setup(void **state);
int cw_testredis_group_teardown(void **state);

/* Path of a project binary: $CW_BIN/name (or bin/name). */
const char *cw_test_bin(const char *name, char *buf, size_t len);

/* Runs argv with stdin_data on its stdin; captures stdout and stderr
 * (NUL-terminated, caller frees). Returns the exit status, or -1. */
int cw_test_run(char *const argv[], const char *stdin_data, size_t stdin_len, char **out, char **err);

/* Writes a temporary file with the given content; returns its path in buf. */
const char *cw_test_tmpfile(const char *content, size_t len, char *buf, size_t buflen);

/* A fresh state directory (removed at group teardown). */
const char *cw_test_state_dir(void);

/* Starts casewatchd against cw_test_redis with the test settings (event
 * clock, flush every 100 ms, warnings only, a fresh state directory) and
 * the extra "-o" overrides in `extra` (NULL-terminated, may be NULL; a
 * later daemon.state_dir wins). Returns its pid. */
pid_t cw_test_daemon_start(const char *const *extra);
/* With CW_TEST_DAEMON_STDERR set to a path, the daemon's stderr (its log)
 * is appended to that file instead of the test's. */
/* The same with a configuration file (e.g. systemd/casewatch.conf, whose
 * rules are the shipped defaults) instead of /dev/null. */
pid_t cw_test_daemon_start_with(const char *conf, const char *const *extra);
/* A daemon the test waited for itself (after a kill): not to be killed at
 * teardown, its pid may be reused. */
void cw_test_daemon_reaped(pid_t pid);
/* A per-test setup: daemons a failed test left running are killed (they
 * would hold the instance's write lease into the next test). */
int cw_test_daemons_reset(void **state);
/* SIGTERM, wait, and assert a clean exit 0. */
void cw_test_daemon_stop(pid_t pid);

/* HGET as a number (-1 when absent) or as a string (caller frees;
 * "(nil)" when absent). */
long long cw_test_hget_ll(redisContext *c, const char *key, const char *field);
char *cw_test_hget(redisContext *c, const char *key, const char *field);

/* Waits until the daemon's health hash says it has read `entries` stream
 * entries, then one more flush and heartbeat; fails the test after 30 s. */
void cw_test_wait_read(redisContext *c, long long entries);

void cw_test_sleep_ms(int ms);

/* The exit status of a child the test started (128 + the signal when
 * one ended it); kills it and fails the test after 60 s. */
int cw_test_wait_exit(pid_t pid);

/* Entries of casewatch:alerts:log whose JSON contains needle. */
int cw_test_log_count(redisContext *c, const char *needle);

/* The stdout of `casewatch gen ARGS...` (caller frees). */
char *cw_test_gen(const char *const *args);
/* Appends JSON lines to cw_test_redis's event stream with `feed --raw`. */
void cw_test_feed_raw(const char *lines, size_t len);

/* An event of version 1 for one person: the given keys, no others. */
cw_event cw_test_event(const char *id, const char *case_id, const char *unit, cw_event_type t, int64_t ts);

/* A configuration read from INI text named "test.conf" (fails the test
 * on an error). Free with cw_config_free. */
struct cw_config;
struct cw_config *cw_test_config(const char *ini);

#endif
