/* cw_daemon_int: what the parts of casewatchd's I/O shell share (private
 * to daemon/cw_daemon*.c): the daemon's context and the functions one part
 * calls in another. cw_daemon.c: the data path (read, decode, engine,
 * write), health and the life cycle; cw_daemon_state.c: snapshots and the
 * read-back after a crash; cw_daemon_lease.c: one writer per instance. All
 * of them run on the loop thread only. */
#ifndef CW_DAEMON_INT_H
#define CW_DAEMON_INT_H

#include "cw_daemon.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>
#include <uv.h>

#include "../proto/cw_health.h"
#include "cw_batch.h"
#include "cw_calendar.h"
#include "cw_conn.h"
#include "cw_dead.h"
#include "cw_engine.h"
#include "cw_log.h"
#include "cw_map.h"
#include "cw_notify.h"
#include "cw_period.h"
#include "cw_replay_read.h"
#include "cw_sink.h"
#include "cw_snap.h"

/* The writer's refusal episodes (see "Writes Redis refuses"). */
enum { WRITES_OK, WRITES_REFUSED, WRITES_RETRYING };

typedef struct daemon_ctx {
    uv_loop_t loop;
    const cw_config *cfg;
    cw_conn *reader; /* blocking stream reads hold this one (live) */
    cw_replay_read *rread; /* --replay: stream reads off the loop instead */
    cw_conn *writer; /* hashes, alerts, dead letters, health */
    uv_signal_t sigterm, sigint, sighup;
    uv_timer_t flush_timer, watchdog_timer, stall_timer;
    uv_timer_t flush_more; /* the rest of a flush that did not fit one slice */
    uv_timer_t boundary;   /* live: the next instant a light or period changes by the clock alone */
    uv_idle_t apply_more;  /* the rest of a batch: applied in slices, between which replies are read */
    int watchdog_on;
    cw_config_reload_fn reload;
    void *reload_data;
    /* the domain, and where what it produces goes */
    cw_engine *engine;
    cw_dead *dead;
    cw_sink *sink;
    cw_resp cmd; /* hash writes are formatted here */
    int calendar_through; /* the last year the legal calendar covers (0: none) */
    /* reading */
    struct read_batch *ahead, *ahead_tail; /* read, not yet applied, oldest first */
    struct read_batch *spare_batches;
    int nahead;
    int reading;
    uint64_t read_ahead; /* entries received since start (read_total: applied) */
    uint64_t received;   /* entries received in all (read_total at start, then with read_ahead) */
    int read_paused;     /* the writer is too far behind: no read until it catches up */
    uint64_t read_total;
    char last_id[48];  /* the last entry applied: the position the state is at */
    char read_pos[48]; /* where the next XREAD starts: the last entry received */
    int caught_up;
    int ready_sent;
    /* --replay: up to the tip as it was at start, then exit; flush points
     * fixed by the stream (see flush) */
    int replay;
    char replay_until[48];
    double replay_started;
    uint64_t replay_events0;
    int reads_held; /* no read past a flush point until its flush is out */
    int read_all;   /* the batch reaching the tip was received */
    uint64_t flush_at; /* read_ahead at which the next such flush begins */
    int holding;
    /* the stream's size: lag and trims */
    int stream_checked; /* looked at (XINFO) before the first read */
    int64_t stream_base; /* entries added before what we first read */
    int base_known;
    int64_t lag;
    uint64_t trimmed;
    int stream_gone;      /* reported missing (Redis restarted empty): said once */
    /* the writer */
    int writer_was_ready; /* a later READY means writes may have been lost */
    int rows_dropped;     /* rows judged while the writer was down: write all again */
    /* writes Redis refuses (OOM, READONLY, WRONGTYPE): see writes_refused */
    int wstate;             /* WRITES_OK, WRITES_REFUSED, WRITES_RETRYING */
    int64_t refused_since;  /* wall ms of the first refusal of this episode; 0 when they land */
    uint64_t refused_count; /* writes refused in this episode */
    uint64_t probe_ms;      /* the next probe's delay (backoff) */
    uv_timer_t probe_timer;
    uint64_t health_sent, health_acked; /* health HSETs sent and answered (the marker: see flush) */
    uint64_t marker_at;     /* health_sent of the marker after a rewrite (0: none) */
    cw_map *parked;         /* key -> row_rec: hashes refused one by one (WRONGTYPE) */
    uint64_t row_gen;       /* HSETs of rows sent in all: the newest of a key wins */
    uint64_t park_ms;       /* the next retry of the parked ones (backoff) */
    size_t parked_out;      /* parked ones sent again, not answered yet */
    uv_timer_t park_timer;
    /* the write lease: one writer per instance (see lease_ask) */
    char lease_key[300];
    char lease_val[400];     /* "<pid>@<host> <since ms>" */
    char lease_holder[400];  /* another holder, as last logged */
    char host[256];
    int lease_held, lease_ever, lease_lost, lease_asking;
    uint64_t lease_asked, lease_renewed; /* uv_now() */
    int lease_errlogged;
    /* health, progress, status */
    int64_t started_at;
    uint64_t last_health;
    uint64_t progress_at, progress_read;
    char progress[160];
    uint64_t status_events, status_at;
    uint64_t stall_last_ns;
    double max_stall_ms;
    double stall_window_ms[2]; /* the longest stall of this minute and of the one before */
    uint64_t stall_window_at;  /* uv_hrtime() the current minute began */
    /* snapshots */
    char snap_path[512];
    pid_t snap_child;       /* a forked writer at work, or 0 */
    uint64_t snap_started;  /* uv_now() when it was forked */
    double snap_fork_ms;    /* how long fork() held the loop */
    uint64_t last_snapshot; /* uv_now() of the last one started */
    int snap_failing;
    int snap_cancel;        /* the running writer is being stopped on purpose: not a failure */
    /* after a crash: alerts the lost process published are read back
     * before the stream */
    int reconciling;
    char reconcile_from[48];
    /* shutdown */
    int stopping;
    uint64_t stop_started;
    int final_health; /* 0, 1: the clean-stop health write sent, 2: acknowledged */
    int exit_code;
    uint64_t final_sent; /* uv_now() when it was sent */
} daemon_ctx;

#define LEASE_MS 10000      /* the write lease lapses this long after its last renewal */
#define LEASE_RENEW_MS 1000 /* renewed this often */

/* Called from one part of the shell in another (each defined, and
 * commented, where it belongs). */
void cw__begin_shutdown(daemon_ctx *d);
void cw__lease_ask(daemon_ctx *d, const char *gone);
int cw__lease_release(daemon_ctx *d, cw_conn_reply_cb cb);
int cw__load_calendar(daemon_ctx *d, const cw_config *cfg, const char *when);
void cw__on_alert(const cw_alert *a, void *data);
int cw__hold_light(const cw_light *l, const cw_rules *rules, void *data);
void cw__on_lease(cw_conn *c, redisReply *r, void *privdata);
void cw__read_more(daemon_ctx *d);
void cw__reconcile_more(daemon_ctx *d);
void cw__send_alerts(daemon_ctx *d);
int cw__snapshot_load(daemon_ctx *d);
void cw__snapshot_reap(daemon_ctx *d, int block);
void cw__snapshot_tick(daemon_ctx *d);
int cw__snapshot_write(daemon_ctx *d, size_t *size, char *err, size_t errlen);
void cw__writer_resumed(daemon_ctx *d);

#endif
