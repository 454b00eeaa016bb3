/* casewatchd's I/O shell around the engine. Read top to bottom, this file
 * is the data path:
 *
 *   read      XREAD from the last entry applied (reader connection)
 *   decode    each reply copied into a batch and decoded on libuv's
 *             thread pool, up to AHEAD batches ahead (cw_batch)
 *   engine    entries applied in stream order (cw_engine): the unusable
 *             and the refused become dead letters (cw_dead)
 *   write     at flush points the engine judges its rules on what
 *             changed, and hands out the hash rows written here; alerts
 *             go out through the sink (cw_sink), dead letters through
 *             cw_dead (writer connection)
 *
 * and around it: the stream's size and trims, the health hash, snapshots,
 * reading back after a crash, signals, reload, and the orderly shutdown.
 *
 * Read strategy: plain XREAD from the last applied entry id, which the
 * daemon keeps itself (and the snapshot persists with the state it
 * produced). A consumer group's acknowledgement lives in Redis, apart
 * from the state, so it could never be committed atomically with it;
 * XREAD has no server-side bookkeeping to keep in step and is the
 * fastest read Redis offers. */
#include "cw_daemon.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/time.h>
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
#include "cw_notify.h"
#include "cw_period.h"
#include "cw_sink.h"
#include "cw_snap.h"

typedef struct daemon_ctx {
    uv_loop_t loop;
    const cw_config *cfg;
    cw_conn *reader; /* blocking stream reads hold this one */
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
    uint64_t read_ahead; /* entries received (read_total: applied) */
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
    char trim_reported[48]; /* the highest deleted id already reported */
    /* the writer */
    int writer_was_ready; /* a later READY means writes may have been lost */
    int rows_dropped;     /* rows judged while the writer was down: write all again */
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
    /* after a crash: alerts the lost process published are read back
     * before the stream */
    int reconciling;
    char reconcile_from[48];
    /* shutdown */
    int stopping;
    uint64_t stop_started;
    int final_health; /* 0, 1: the clean-stop health write sent, 2: acknowledged */
    uint64_t final_sent; /* uv_now() when it was sent */
} daemon_ctx;

static void read_more(daemon_ctx *d);
static void flush(daemon_ctx *d);
static void replay_done(daemon_ctx *d);
static void send_alerts(daemon_ctx *d);
static int load_calendar(daemon_ctx *d, const cw_config *cfg, const char *when);

/* Compares stream entry ids "ms-seq". */
static int id_cmp(const char *a, const char *b) {
    unsigned long long am = 0, as = 0, bm = 0, bs = 0;
    sscanf(a, "%llu-%llu", &am, &as);
    sscanf(b, "%llu-%llu", &bm, &bs);
    return am != bm ? (am < bm ? -1 : 1) : as != bs ? (as < bs ? -1 : 1) : 0;
}

/* What the engine raises goes to the sink, queued until Redis has it. */
static void on_alert(const cw_alert *a, void *data) {
    daemon_ctx *d = data;
    if (cw_sink_put(d->sink, a, cw_wall_ms()) < 0)
        CW_LOG(CW_LOG_ERR, "alert", "out of memory queueing alert %s", a->id);
}

/* ---- read -> decode -> engine ------------------------------------------- */

/* One entry, in stream order: the position moves, and the entry is
 * applied or becomes a dead letter. */
static void apply_entry(daemon_ctx *d, const cw_batch_entry *e) {
    d->read_total++;
    size_t idl = strlen(e->id); /* the position, once per entry: a copy, not a format */
    if (idl >= sizeof(d->last_id)) idl = sizeof(d->last_id) - 1;
    memcpy(d->last_id, e->id, idl);
    d->last_id[idl] = '\0';
    if (!e->ok) {
        cw_dead_queue(d->dead, e->id, e->fields, e->nfields, e->why, cw_wall_ms());
        return;
    }
    char why[200];
    switch (cw_engine_apply(d->engine, &e->ev, why, sizeof(why))) {
    case CW_REFUSED:
        cw_dead_queue(d->dead, e->id, e->fields, e->nfields, why, cw_wall_ms());
        break;
    case CW_NOMEM:
        CW_LOG(CW_LOG_ERR, "daemon", "out of memory applying entry %s", e->id);
        break;
    default:
        break;
    }
}

/* Reading ahead: a reply is copied into a batch (cw_batch) and decoded on
 * a worker while the loop applies the batches before it; batches are
 * applied in stream order, and at most AHEAD of them are read and not
 * yet applied. */
#define AHEAD 3
#define APPLY_SLICE 250 /* entries applied before the loop looks at the sockets again */

typedef struct read_batch {
    uv_work_t work;
    daemon_ctx *d;
    cw_batch *b;
    size_t n;    /* entries the reply held */
    size_t done; /* entries applied */
    int decoded; /* the worker is done with it */
    int hold;    /* --replay: a flush point; reading waits for its flush */
    struct read_batch *next;
} read_batch;

static void decode_work(uv_work_t *w) {
    read_batch *rb = w->data;
    cw_batch_decode(rb->b); /* on a worker thread: touches only the batch */
}

static void apply_ready(daemon_ctx *d);

static void decode_done(uv_work_t *w, int status) {
    (void)status; /* never cancelled */
    read_batch *rb = w->data;
    rb->decoded = 1;
    apply_ready(rb->d);
}

/* A batch to fill: a spare one, or a new one (NULL: out of memory). */
static read_batch *batch_take(daemon_ctx *d) {
    read_batch *rb = d->spare_batches;
    if (rb) {
        d->spare_batches = rb->next;
    } else {
        if (!(rb = calloc(1, sizeof(*rb)))) return NULL;
        if (!(rb->b = cw_batch_new())) {
            free(rb);
            return NULL;
        }
        rb->d = d;
        rb->work.data = rb;
    }
    cw_batch_clear(rb->b);
    rb->n = rb->done = 0;
    rb->decoded = rb->hold = 0;
    rb->next = NULL;
    return rb;
}

/* Live: the clock moves by itself. The engine says when the next light
 * or period changes; one timer waits for that instant (checked again at
 * least every minute, in case the wall clock jumps), so a light comes
 * on at its boundary, not at the next flush or midnight scan. */
static void on_boundary(uv_timer_t *t);

static void arm_boundary(daemon_ctx *d) {
    if (d->stopping) return;
    int64_t wait = cw_engine_next_change(d->engine) - cw_wall_ms();
    if (wait < 1) wait = 1; /* see write_more_later: never 0 from a timer callback */
    if (wait > 60000) wait = 60000;
    uv_timer_start(&d->boundary, on_boundary, (uint64_t)wait, 0);
}

static void on_boundary(uv_timer_t *t) {
    daemon_ctx *d = t->data;
    cw_engine_advance(d->engine, cw_wall_ms());
    send_alerts(d);
    arm_boundary(d);
}

/* After a batch is applied: what the clock, reads, alerts and flush
 * points do next, in stream order whatever order workers finish in. */
static void batch_applied(daemon_ctx *d, const read_batch *rb) {
    d->caught_up = rb->n < (size_t)d->cfg->stream_batch;
    /* live once caught up: the wall clock, not the newest event, moves
     * deadlines (an event may be up to a day ahead); catching up live,
     * event time, but never past the wall clock */
    int live = d->cfg->clock == CW_CLOCK_LIVE && !d->replay;
    cw_engine_follow_events(d->engine, !live || !d->caught_up, live ? cw_wall_ms() : 0);
    if (live && d->caught_up) arm_boundary(d);
    if (d->replay && (d->caught_up || id_cmp(d->last_id, d->replay_until) >= 0)) {
        replay_done(d);
        return;
    }
    if (d->caught_up && !d->ready_sent) {
        d->ready_sent = 1;
        snprintf(d->progress, sizeof(d->progress), "following");
        CW_LOG(CW_LOG_INFO, "stream", "caught up with %s after %llu entries; following", d->cfg->stream_key,
               (unsigned long long)d->read_total);
        cw_notify_ready();
    }
    /* alerts raised by these events (deadlines, data checks) go out now,
     * not at the next flush */
    send_alerts(d);
    cw_dead_send(d->dead, d->writer);
    if (rb->hold) {
        d->holding = 1;
        flush(d); /* reads again once it is out */
    }
    read_more(d);
}

static void on_apply_more(uv_idle_t *h);

/* Applies the decoded batches at the head, in order, APPLY_SLICE entries
 * at a time: between two slices the loop reads the next reply and hands
 * it to a worker, so that it is decoded while this one is applied. */
static void apply_ready(daemon_ctx *d) {
    size_t budget = APPLY_SLICE;
    while (!d->stopping && d->ahead && d->ahead->decoded) {
        read_batch *rb = d->ahead;
        size_t n = cw_batch_size(rb->b);
        while (rb->done < n && budget) {
            apply_entry(d, cw_batch_at(rb->b, rb->done++));
            budget--;
        }
        if (rb->done < n) {
            uv_idle_start(&d->apply_more, on_apply_more);
            return;
        }
        if (!(d->ahead = rb->next)) d->ahead_tail = NULL;
        d->nahead--;
        batch_applied(d, rb);
        rb->next = d->spare_batches;
        d->spare_batches = rb;
    }
    uv_idle_stop(&d->apply_more);
}

static void on_apply_more(uv_idle_t *h) {
    apply_ready(h->data);
}

static void on_read(cw_conn *c, redisReply *r, void *privdata) {
    (void)c;
    daemon_ctx *d = privdata;
    d->reading = 0;
    if (!r || d->stopping) return; /* connection going away; READY again resumes from read_pos */
    if (r->type == REDIS_REPLY_ERROR) {
        CW_LOG(CW_LOG_ERR, "stream", "XREAD refused: %s", r->str);
        cw_conn_drop(d->reader, "XREAD refused");
        return;
    }
    read_batch *rb = batch_take(d);
    if (!rb) {
        CW_LOG(CW_LOG_ERR, "stream", "out of memory for a batch of %s; reading it again", d->cfg->stream_key);
        cw_conn_drop(d->reader, "out of memory");
        return;
    }
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 1) {
        const redisReply *entries = r->element[0]->element[1];
        if (cw_batch_fill(rb->b, entries, cw_wall_ms()) < 0) { /* the wall clock event times are checked against */
            rb->next = d->spare_batches;
            d->spare_batches = rb;
            CW_LOG(CW_LOG_ERR, "stream", "out of memory copying a batch of %s; reading it again", d->cfg->stream_key);
            cw_conn_drop(d->reader, "out of memory");
            return;
        }
        rb->n = entries->elements;
        const char *last = rb->n ? entries->element[rb->n - 1]->element[0]->str : NULL;
        if (last) snprintf(d->read_pos, sizeof(d->read_pos), "%s", last);
        int more = rb->n == (size_t)d->cfg->stream_batch && !(d->replay && id_cmp(last, d->replay_until) >= 0);
        /* a replay going on after this batch, at a flush point: no read
         * past it until it is applied and its flush is out (see flush) */
        rb->hold = d->replay && more && d->read_ahead + rb->n >= d->flush_at;
        d->read_ahead += rb->n;
        if (d->replay && !more) d->read_all = 1;
        if (rb->hold) d->reads_held = 1;
    }
    if (d->ahead_tail) d->ahead_tail->next = rb;
    else d->ahead = rb;
    d->ahead_tail = rb;
    d->nahead++;
    if (rb->n == (size_t)d->cfg->stream_batch) read_more(d); /* Redis prepares the next one meanwhile */
    if (cw_batch_size(rb->b)) {
        uv_queue_work(&d->loop, &rb->work, decode_work, decode_done);
    } else {
        rb->decoded = 1;
        apply_ready(d);
    }
}

static void read_more(daemon_ctx *d) {
    /* the first read waits for the stream's size (see on_xinfo) */
    if (d->stopping || d->reading || d->reads_held || d->read_all || d->nahead >= AHEAD || d->reconciling ||
        !d->stream_checked || !cw_conn_is_ready(d->reader))
        return;
    char count[16], block[16];
    snprintf(count, sizeof(count), "%d", d->cfg->stream_batch);
    snprintf(block, sizeof(block), "%d", d->cfg->stream_block_ms);
    if (!d->read_pos[0]) snprintf(d->read_pos, sizeof(d->read_pos), "%s", d->last_id);
    const char *argv[] = {"XREAD", "COUNT", count, "BLOCK", block, "STREAMS", d->cfg->stream_key, d->read_pos};
    size_t lens[8];
    for (int i = 0; i < 8; i++) lens[i] = strlen(argv[i]);
    if (d->replay) { /* a backfill never waits for new entries */
        memmove(argv + 3, argv + 5, 3 * sizeof(argv[0]));
        memmove(lens + 3, lens + 5, 3 * sizeof(lens[0]));
    }
    int argc = d->replay ? 6 : 8;
    if (cw_conn_command(d->reader, argc, argv, lens, d->replay ? 0 : (uint64_t)d->cfg->stream_block_ms, on_read, d) == 0)
        d->reading = 1;
}

/* ---- engine -> write: hash rows, alerts, dead letters -------------------- */

static void on_write_reply(cw_conn *c, redisReply *r, void *privdata) {
    (void)c;
    (void)privdata;
    if (r && r->type == REDIS_REPLY_ERROR) CW_LOG(CW_LOG_ERR, "write", "redis refused a write: %s", r->str);
}

/* One judged (scope, period) as HDEL of its undefined indicators and
 * HSET of the rest (a row; see cw_engine_judge). */
static void write_row(const cw_row *row, void *data) {
    daemon_ctx *d = data;
    char key[512];
    int kl = snprintf(key, sizeof(key), "%s:%s:%s", d->cfg->ind_prefix, row->scope, row->period);
    if (kl < 0 || (size_t)kl >= sizeof(key)) return; /* cannot happen: names are capped */
    cw_resp *cmd = &d->cmd;
    if (row->ngone) {
        cw_resp_begin(cmd, 2 + (int)row->ngone);
        cw_resp_arg(cmd, "HDEL", 4);
        cw_resp_arg(cmd, key, (size_t)kl);
        for (size_t i = 0; i < row->ngone; i++) cw_resp_str(cmd, row->gone[i]);
        cw_conn_send(d->writer, cmd, 0, on_write_reply, d);
    }
    cw_resp_begin(cmd, 2 + 2 * (int)row->n);
    cw_resp_arg(cmd, "HSET", 4);
    cw_resp_arg(cmd, key, (size_t)kl);
    for (size_t i = 0; i < row->n; i++) {
        cw_resp_str(cmd, row->fields[i]);
        cw_resp_str(cmd, row->values[i]);
    }
    cw_conn_send(d->writer, cmd, 0, on_write_reply, d);
}

/* Rows judged per turn of the loop: judging and writing every rolling
 * window of a country's scopes when the day moves does not hold the loop
 * (a slice takes a few milliseconds; the rest follows after the loop has
 * run). */
#define FLUSH_SLICE 250
/* What the writer may hold before more is written: requests waiting for
 * replies, and bytes the socket has not taken (see cw_conn_unsent_bytes).
 * A country's windows, or the alerts queued during an outage, are thus
 * written in steps between which the loop runs, never all at once. */
#define WRITE_WINDOW 8000
#define WRITE_BYTES (512 * 1024)

static void on_flush_more(uv_timer_t *t);

/* Whether the writer can take more now. */
static int writer_has_room(daemon_ctx *d) {
    return cw_conn_in_flight(d->writer) < WRITE_WINDOW && cw_conn_unsent_bytes(d->writer) < WRITE_BYTES;
}

/* The rest of the writing (hash slices, alerts) after ms, once the loop
 * has run; one pending continuation at a time. At least 1 ms: libuv 1.44
 * (Debian 12) runs a timer started with 0 from a timer callback again in
 * the same iteration, before any I/O (libuv#4245, fixed in 1.48), so
 * slices would never let the loop run. */
static void write_more_later(daemon_ctx *d, uint64_t ms) {
    if (ms < 1) ms = 1;
    uv_handle_t *h = (uv_handle_t *)&d->flush_more;
    if (!uv_is_active(h) && !uv_is_closing(h)) uv_timer_start(&d->flush_more, on_flush_more, ms, 0);
}

/* Sends queued alerts while the writer has room; the rest follows. */
static void send_alerts(daemon_ctx *d) {
    if (d->reconciling) return; /* subscribers' last word is being read back */
    if (cw_sink_send(d->sink, d->writer, WRITE_BYTES) && cw_conn_is_ready(d->writer)) write_more_later(d, 2);
}

/* A flush point: the engine judges what changed, and the rows are
 * written, with what alerts and dead letters wait. On the timer: within
 * flush_ms of a change. In --replay, at points fixed by the stream
 * instead: every flush_entries entries read, with reading held (on_read)
 * until the whole flush is out, so that a replay of the same stream judges
 * the same counters, however fast it runs (the threshold rules'
 * hysteresis makes what fires depend on the states judged, not only on
 * the last). With the writer down, rows are judged all the same (a
 * verdict never waits for Redis) and all written again once it is back. */
static void flush(daemon_ctx *d) {
    if (d->reconciling) return; /* rules wait for the states subscribers saw */
    int judge = !d->replay || d->holding || d->stopping;
    if (d->cfg->clock == CW_CLOCK_LIVE && d->caught_up && !d->replay) cw_engine_advance(d->engine, cw_wall_ms());
    int up = cw_conn_is_ready(d->writer);
    /* backpressure: a slice only while Redis keeps up with the last ones */
    int room = !up || writer_has_room(d);
    if (judge && room) {
        if (!up && cw_engine_judge_pending(d->engine)) d->rows_dropped = 1;
        cw_engine_judge(d->engine, up ? write_row : NULL, d, FLUSH_SLICE);
    }
    int pending = cw_engine_judge_pending(d->engine);
    if (judge && pending) write_more_later(d, room ? 0 : 2);
    send_alerts(d);
    cw_dead_send(d->dead, d->writer);
    if (d->holding && !pending) {
        d->holding = d->reads_held = 0;
        d->flush_at = d->read_ahead + (uint64_t)d->cfg->flush_entries;
        read_more(d);
    }
}

static void on_flush_more(uv_timer_t *t) {
    flush(t->data);
}

/* ---- The stream's size: lag, and entries trimmed before we read them ---- */

/* Entries after our position deleted before we read them (XTRIM, MAXLEN,
 * XDEL). When the stream's first entry is past our position, every entry
 * it holds is unread and the number lost is exact: added - read - held
 * (new entries add to both sides, so a concurrent XADD cannot fake one).
 * Otherwise Redis 7's highest XDEL'd id tells of a hole, without a count. */
static void check_trimmed(daemon_ctx *d, const char *max_deleted, const char *first_id, long long added,
                          long long length) {
    long long lost = 0;
    int hole = 0;
    if (!first_id || id_cmp(first_id, d->last_id) > 0)
        lost = added - (d->stream_base + (long long)d->read_total) - length;
    else if (max_deleted && id_cmp(max_deleted, d->last_id) > 0 && id_cmp(max_deleted, d->trim_reported) > 0)
        hole = 1;
    if (lost <= 0 && !hole) return;
    if (max_deleted) snprintf(d->trim_reported, sizeof(d->trim_reported), "%s", max_deleted);
    char msg[500], count[64];
    if (lost > 0) snprintf(count, sizeof(count), "%lld 条事件", lost);
    else snprintf(count, sizeof(count), "部分事件");
    snprintf(msg, sizeof(msg), "事件流 %s 在 casewatchd 读取之前被裁剪，%s未经处理（%s 之后），指标可能偏少",
             d->cfg->stream_key, count, d->last_id);
    char n[32];
    snprintf(n, sizeof(n), lost > 0 ? "%lld" : "some", lost);
    CW_LOG(CW_LOG_ERR, "stream", "%s was trimmed past our position: %s entries after %s were never read",
           d->cfg->stream_key, n, d->last_id);
    cw_engine_system_alert(d->engine, "system.stream_trimmed", "stream", 1, "red", "数据丢失预警", msg, cw_wall_ms());
    if (lost > 0) {
        d->stream_base += lost; /* they will never be read: not lag */
        d->trimmed += (uint64_t)lost;
    }
}

static void on_xinfo(cw_conn *c, redisReply *r, void *privdata) {
    (void)c;
    daemon_ctx *d = privdata;
    if (r && r->type == REDIS_REPLY_ERROR && !d->stream_checked) { /* no stream yet: nothing was trimmed */
        if (!d->base_known) d->stream_base = 0;
        d->base_known = d->stream_checked = 1;
        if (d->replay) {
            d->replay_started = cw_mono_s();
            replay_done(d);
            return;
        }
        read_more(d);
        return;
    }
    if (!r || r->type != REDIS_REPLY_ARRAY) return;
    long long length = -1, added = -1;
    const char *max_deleted = NULL, *first_id = NULL;
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        const redisReply *k = r->element[i], *v = r->element[i + 1];
        if (k->type != REDIS_REPLY_STRING) continue;
        if (v->type == REDIS_REPLY_INTEGER && strcmp(k->str, "length") == 0) length = v->integer;
        if (v->type == REDIS_REPLY_INTEGER && strcmp(k->str, "entries-added") == 0) added = v->integer;
        if (v->type == REDIS_REPLY_STRING && strcmp(k->str, "max-deleted-entry-id") == 0) max_deleted = v->str;
        if (v->type == REDIS_REPLY_ARRAY && v->elements == 2 && strcmp(k->str, "first-entry") == 0)
            first_id = v->element[0]->str;
        if (v->type == REDIS_REPLY_STRING && strcmp(k->str, "last-generated-id") == 0 && !d->stream_checked)
            snprintf(d->replay_until, sizeof(d->replay_until), "%s", v->str);
    }
    if (added < 0) added = length; /* Redis before 7.0 */
    if (added < 0) return;
    if (!d->base_known) {
        /* trimmed before we ever read (asked before the first read) */
        d->stream_base = added - length - (int64_t)d->read_total;
        d->base_known = 1;
    } else {
        check_trimmed(d, max_deleted, first_id, added, length);
    }
    if (!d->stream_checked) {
        d->stream_checked = 1;
        if (d->replay) {
            CW_LOG(CW_LOG_NOTICE, "stream", "replaying %s from %s up to %s", d->cfg->stream_key, d->last_id,
                   d->replay_until);
            d->replay_started = cw_mono_s();
            d->replay_events0 = cw_engine_counts_of(d->engine)->events;
        }
        read_more(d);
    }
    int64_t lag = added - d->stream_base - (int64_t)d->read_total;
    d->lag = d->caught_up || lag < 0 ? 0 : lag;
}

/* XINFO STREAM: the lag, and entries trimmed before we read them. */
static void ask_stream_size(daemon_ctx *d) {
    const char *xi[] = {"XINFO", "STREAM", d->cfg->stream_key};
    size_t xl[] = {5, 6, strlen(d->cfg->stream_key)};
    cw_conn_command(d->writer, 3, xi, xl, 0, on_xinfo, d);
}

/* ---- Health, progress, STATUS= ------------------------------------------ */

static long rss_bytes(void) {
    long pages = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &rss) != 2) rss = 0;
        fclose(f);
    }
    return rss * sysconf(_SC_PAGESIZE);
}

static void on_final_health(cw_conn *c, redisReply *r, void *privdata) {
    (void)c;
    (void)r;
    ((daemon_ctx *)privdata)->final_health = 2;
}

/* The health hash (PROTOCOL.md §5). `stopped`: the clean stop's last
 * word, whose reply on_final_health waits for. */
static void write_health(daemon_ctx *d, int stopped) {
    if (!stopped) cw_engine_check_capacity(d->engine);
    const cw_engine_counts *n = cw_engine_counts_of(d->engine);
    char key[256], host[256] = "";
    snprintf(key, sizeof(key), "%s:%s", d->cfg->health_prefix, d->cfg->instance);
    gethostname(host, sizeof(host) - 1);
    char v[CW_HEALTH_NFIELDS][40];
    const char *val[CW_HEALTH_NFIELDS];
    for (int i = 0; i < CW_HEALTH_NFIELDS; i++) val[i] = v[i];
    int64_t now = cw_wall_ms();
    val[CW_HEALTH_STATE] = stopped ? "stopped" : "running";
    snprintf(v[CW_HEALTH_PID], 40, "%ld", (long)getpid());
    val[CW_HEALTH_HOST] = host;
    snprintf(v[CW_HEALTH_STARTED_AT], 40, "%lld", (long long)d->started_at);
    snprintf(v[CW_HEALTH_HEARTBEAT_AT], 40, "%lld", (long long)now);
    snprintf(v[CW_HEALTH_STOPPED_AT], 40, "%lld", stopped ? (long long)now : 0LL);
    val[CW_HEALTH_LAST_ID] = d->last_id;
    snprintf(v[CW_HEALTH_LAG], 40, "%lld", (long long)d->lag);
    snprintf(v[CW_HEALTH_EVENTS], 40, "%llu", (unsigned long long)n->events);
    snprintf(v[CW_HEALTH_DUPLICATES], 40, "%llu", (unsigned long long)n->duplicates);
    snprintf(v[CW_HEALTH_DEAD_LETTERED], 40, "%llu", (unsigned long long)cw_dead_total(d->dead));
    snprintf(v[CW_HEALTH_OPEN_CASES], 40, "%zu", cw_engine_open_cases(d->engine));
    snprintf(v[CW_HEALTH_ALERTS_FIRING], 40, "%llu", (unsigned long long)cw_engine_firing(d->engine));
    snprintf(v[CW_HEALTH_RSS_BYTES], 40, "%ld", rss_bytes());
    snprintf(v[CW_HEALTH_ENTRIES_READ], 40, "%llu", (unsigned long long)d->read_total);
    val[CW_HEALTH_VERSION] = CW_VERSION;
    val[CW_HEALTH_PROGRESS] = stopped ? "stopped" : d->progress[0] ? d->progress : "starting";
    snprintf(v[CW_HEALTH_MAX_STALL_MS], 40, "%.0f", d->max_stall_ms);
    double recent = d->stall_window_ms[0] > d->stall_window_ms[1] ? d->stall_window_ms[0] : d->stall_window_ms[1];
    snprintf(v[CW_HEALTH_STALL_RECENT_MS], 40, "%.0f", recent);
    snprintf(v[CW_HEALTH_CALENDAR_THROUGH], 40, "%d", d->calendar_through);
    const char *argv[2 + 2 * CW_HEALTH_NFIELDS];
    size_t lens[2 + 2 * CW_HEALTH_NFIELDS];
    int argc = 0;
    argv[argc++] = "HSET";
    argv[argc++] = key;
    for (int i = 0; i < CW_HEALTH_NFIELDS; i++) {
        argv[argc++] = cw_health_names[i];
        argv[argc++] = val[i];
    }
    for (int i = 0; i < argc; i++) lens[i] = strlen(argv[i]);
    if (stopped) {
        if (cw_conn_command(d->writer, argc, argv, lens, 0, on_final_health, d) < 0) d->final_health = 2;
        return;
    }
    cw_conn_command(d->writer, argc, argv, lens, 0, on_write_reply, d);
    ask_stream_size(d);
}

/* While catching up: every 5 s a line with the rate, the lag and an ETA
 * (also in the health hash's "progress", which `casewatch status` shows). */
static void progress_tick(daemon_ctx *d) {
    uint64_t now = uv_now(&d->loop);
    if (now - d->progress_at < 5000) return;
    double secs = d->progress_at ? (double)(now - d->progress_at) / 1000.0 : 0;
    double rate = secs > 0 ? (double)(d->read_total - d->progress_read) / secs : 0;
    d->progress_at = now;
    d->progress_read = d->read_total;
    if (d->caught_up && !d->replay) {
        snprintf(d->progress, sizeof(d->progress), "following");
        return;
    }
    if (rate <= 0) return;
    snprintf(d->progress, sizeof(d->progress), "catching up: %.0f entries/s, lag %lld, ETA %.0f s", rate,
             (long long)d->lag, (double)d->lag / rate);
    CW_LOG(CW_LOG_INFO, "stream", "%s", d->progress);
}

static void snapshot_tick(daemon_ctx *d);

static void on_flush_timer(uv_timer_t *t) {
    daemon_ctx *d = t->data;
    flush(d);
    snapshot_tick(d);
    progress_tick(d);
    cw_dead_tick(d->dead, cw_wall_ms());
    uint64_t now = uv_now(&d->loop);
    if (now - d->last_health >= 1000 && cw_conn_is_ready(d->writer)) {
        d->last_health = now;
        write_health(d, 0);
    }
    if (now - d->status_at >= 2000) {
        uint64_t events = cw_engine_counts_of(d->engine)->events;
        double rate = d->status_at ? (double)(events - d->status_events) * 1000.0 / (double)(now - d->status_at) : 0;
        d->status_at = now;
        d->status_events = events;
        cw_notify_status("%s %s: lag %lld, %.0f events/s, %zu open cases, %llu alerts firing",
                         d->caught_up ? "following" : "catching up on", d->cfg->stream_key, (long long)d->lag, rate,
                         cw_engine_open_cases(d->engine), (unsigned long long)cw_engine_firing(d->engine));
    }
}

/* ---- Snapshots ---------------------------------------------------------- */

/* Writes the whole state at this instant: the daemon's own position and
 * counts, then each module's section (the order is the file format's).
 * Runs in the forked child (periodic) or in the process at shutdown;
 * touches no loop or Redis handle. */
static int snapshot_write(daemon_ctx *d, size_t *size, char *err, size_t errlen) {
    cw_snap_writer *w = cw_snap_writer_open(d->snap_path, err, errlen);
    if (!w) return -1;
    const cw_engine_counts *n = cw_engine_counts_of(d->engine);
    cw_snap_put_i64(w, d->cfg->utc_offset_min);
    cw_snap_put_u32(w, (uint32_t)d->cfg->rolling_days);
    cw_snap_put_str(w, d->cfg->stream_key);
    cw_snap_put_str(w, d->last_id);
    cw_engine_save_clock(d->engine, w);
    cw_snap_put_u64(w, n->events);
    cw_snap_put_u64(w, n->duplicates);
    cw_snap_put_u64(w, cw_dead_total(d->dead));
    cw_snap_put_u64(w, d->read_total);
    cw_snap_put_u64(w, n->after_close);
    cw_snap_put_i64(w, d->stream_base);
    cw_snap_put_u8(w, (uint8_t)d->base_known);
    cw_dead_save(d->dead, w);
    cw_engine_save_state(d->engine, w);
    cw_sink_save(d->sink, w);
    return cw_snap_writer_commit(w, size, err, errlen);
}

/* Loads the snapshot if there is one. Returns 0 (loaded, or none: a
 * fresh start), -1 when it is refused (logged, with what to do). */
static int snapshot_load(daemon_ctx *d) {
    double t0 = cw_mono_s();
    size_t len = 0;
    char *buf = cw_snap_read_file(d->snap_path, &len);
    if (!buf) {
        if (errno == ENOTDIR)
            CW_LOG(CW_LOG_WARNING, "snapshot", "[daemon] state_dir %s is not a directory: snapshots will fail until it is",
                   d->cfg->state_dir);
        if (errno == ENOENT || errno == ENOTDIR) {
            CW_LOG(CW_LOG_INFO, "snapshot", "no snapshot at %s: starting empty, reading %s from its start", d->snap_path,
                   d->cfg->stream_key);
            return 0;
        }
        CW_LOG(CW_LOG_ERR, "snapshot", "cannot read %s: %s", d->snap_path, strerror(errno));
        return -1;
    }
    char err[512] = "";
    cw_snap_reader r;
    int ok = cw_snap_reader_init(&r, buf, len, err, sizeof(err)) == 0;
    uint32_t version = ok ? r.version : 0;
    if (ok) {
        int64_t off = cw_snap_get_i64(&r);
        uint32_t rolling = cw_snap_get_u32(&r);
        char stream[256];
        cw_snap_get_str(&r, stream, sizeof(stream));
        if (!r.bad && (off != d->cfg->utc_offset_min || (int)rolling != d->cfg->rolling_days ||
                       strcmp(stream, d->cfg->stream_key) != 0)) {
            snprintf(err, sizeof(err),
                     "made for stream %s, utc_offset %+lld min, rolling %u days; the configuration says %s, %+d min, %d days",
                     stream, (long long)off, rolling, d->cfg->stream_key, d->cfg->utc_offset_min, d->cfg->rolling_days);
            ok = 0;
        }
    }
    if (ok) {
        cw_engine_counts *n = cw_engine_counts_of(d->engine);
        cw_snap_get_str(&r, d->last_id, sizeof(d->last_id));
        cw_engine_load_clock(d->engine, &r);
        n->events = cw_snap_get_u64(&r);
        n->duplicates = cw_snap_get_u64(&r);
        cw_dead_set_total(d->dead, cw_snap_get_u64(&r));
        d->read_total = cw_snap_get_u64(&r);
        n->after_close = cw_snap_get_u64(&r);
        d->stream_base = cw_snap_get_i64(&r);
        d->base_known = cw_snap_get_u8(&r);
        ok = cw_dead_load(d->dead, &r) == 0 && cw_engine_load_state(d->engine, &r) == 0 &&
             cw_sink_load(d->sink, &r) == 0 && !r.bad && r.p == r.end;
        if (!ok && !err[0]) snprintf(err, sizeof(err), "its contents do not parse (corrupt, or out of memory)");
    }
    free(buf);
    if (!ok) {
        CW_LOG(CW_LOG_ERR, "snapshot",
               "refusing %s: %s. Move it away, or start once with --rebuild to replay %s from its start", d->snap_path,
               err, d->cfg->stream_key);
        return -1;
    }
    /* alerts a crashed process published after this snapshot are read
     * back before the stream (a clean stop leaves none) */
    const char *pos = cw_sink_log_position(d->sink);
    d->reconciling = 1;
    snprintf(d->reconcile_from, sizeof(d->reconcile_from), "%s", pos[0] && version >= 2 ? pos : "0-0");
    if (version < 2) /* no firing set was saved: it is read back from the whole alert log */
        CW_LOG(CW_LOG_NOTICE, "snapshot", "%s is of format version %u: the firing set is rebuilt from %s",
               d->snap_path, version, d->cfg->alerts_log_key);
    CW_LOG(CW_LOG_NOTICE, "snapshot", "loaded %s (%zu bytes) in %.0f ms: %zu open cases, resuming after %s",
           d->snap_path, len, (cw_mono_s() - t0) * 1000, cw_engine_open_cases(d->engine), d->last_id);
    return 0;
}

/* Starts a periodic snapshot: fork, and let the child write the state as
 * it was at the fork (copy-on-write) while the loop goes on. */
static void snapshot_start(daemon_ctx *d) {
    double t0 = cw_mono_s();
    pid_t pid = fork();
    if (pid < 0) {
        CW_LOG(CW_LOG_ERR, "snapshot", "cannot fork the snapshot writer: %s", strerror(errno));
        return;
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the daemon */
        char err[512];
        size_t size = 0;
        int rc = snapshot_write(d, &size, err, sizeof(err));
        if (rc < 0) CW_LOG(CW_LOG_ERR, "snapshot", "%s", err);
        _exit(rc < 0 ? 1 : 0);
    }
    d->snap_fork_ms = (cw_mono_s() - t0) * 1000;
    d->snap_child = pid;
    d->snap_started = uv_now(&d->loop);
}

/* Reaps a finished snapshot writer. */
static void snapshot_reap(daemon_ctx *d, int block) {
    if (!d->snap_child) return;
    int st;
    pid_t r = waitpid(d->snap_child, &st, block ? 0 : WNOHANG);
    if (r == 0) return;
    d->snap_child = 0;
    int ok = r > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0;
    char msg[700];
    if (ok) {
        if (d->snap_failing) {
            CW_LOG(CW_LOG_NOTICE, "snapshot", "snapshots are written again");
            snprintf(msg, sizeof(msg), "casewatchd %s 状态快照 %s 已恢复写入，快照失败预警解除", d->cfg->instance,
                     d->snap_path);
            cw_engine_system_alert(d->engine, "system.snapshot", "write", 0, "red", "快照失败", msg, cw_wall_ms());
        }
        d->snap_failing = 0;
        CW_LOG(CW_LOG_DEBUG, "snapshot", "written in %llu ms (fork held the loop %.1f ms)",
               (unsigned long long)(uv_now(&d->loop) - d->snap_started), d->snap_fork_ms);
    } else if (!d->snap_failing++) {
        CW_LOG(CW_LOG_ERR, "snapshot", "writing %s failed; the last good snapshot stays; retrying", d->snap_path);
        snprintf(msg, sizeof(msg), "casewatchd %s 无法写入状态快照 %s（磁盘已满或目录不可写），崩溃后将从上一个快照恢复；正在重试",
                 d->cfg->instance, d->snap_path);
        cw_engine_system_alert(d->engine, "system.snapshot", "write", 1, "red", "快照失败", msg, cw_wall_ms());
    }
}

static void snapshot_tick(daemon_ctx *d) {
    snapshot_reap(d, 0);
    uint64_t now = uv_now(&d->loop);
    if (!d->cfg->snapshot_interval_ms || d->snap_child || d->stopping) return;
    if (now - d->last_snapshot < (uint64_t)d->cfg->snapshot_interval_ms) return;
    d->last_snapshot = now;
    snapshot_start(d);
}

/* ---- After a crash: what the lost process published ------------------ */

static void reconcile_more(daemon_ctx *d);

/* One alert state subscribers saw (or will see) becomes the known state;
 * entries of other states (an acknowledgement) change nothing. */
static void reconcile_json(const char *json, void *data) {
    daemon_ctx *d = data;
    json_t *a = json_loads(json, 0, NULL);
    const char *id = json_string_value(json_object_get(a, "id"));
    const char *st = json_string_value(json_object_get(a, "state"));
    if (id && st && (strcmp(st, "firing") == 0 || strcmp(st, "resolved") == 0))
        cw_engine_reconcile(d->engine, id, strcmp(st, "firing") == 0);
    json_decref(a);
}

static void on_reconcile(cw_conn *c, redisReply *r, void *privdata) {
    (void)c;
    daemon_ctx *d = privdata;
    if (!r) return; /* the writer went away: asked again when it is back */
    size_t n = r->type == REDIS_REPLY_ARRAY ? r->elements : 0;
    for (size_t i = 0; i < n; i++) {
        const redisReply *e = r->element[i], *f = e->element[1];
        snprintf(d->reconcile_from, sizeof(d->reconcile_from), "%s", e->element[0]->str);
        for (size_t j = 0; j + 1 < f->elements; j += 2) {
            if (strcmp(f->element[j]->str, "a") != 0) continue;
            /* delivered before the crash: not to be sent again */
            cw_sink_delivered(d->sink, f->element[j + 1]->str, f->element[j + 1]->len);
            reconcile_json(f->element[j + 1]->str, d);
        }
    }
    if (r->type == REDIS_REPLY_ERROR) CW_LOG(CW_LOG_ERR, "alert", "reading back the alert log: %s", r->str);
    if (n == 1000) {
        reconcile_more(d);
        return;
    }
    d->reconciling = 0;
    /* what is still queued will be published after all: it is the latest word */
    cw_sink_each(d->sink, reconcile_json, d);
    /* judge every held period against what subscribers last saw */
    cw_engine_touch_all(d->engine);
    CW_LOG(CW_LOG_INFO, "alert", "alert log read back up to %s; reading the stream", d->reconcile_from);
    read_more(d);
}

static void reconcile_more(daemon_ctx *d) {
    if (!d->reconciling || !cw_conn_is_ready(d->writer)) return;
    char from[50];
    snprintf(from, sizeof(from), "(%s", d->reconcile_from);
    const char *argv[] = {"XRANGE", d->cfg->alerts_log_key, from, "+", "COUNT", "1000"};
    size_t lens[6];
    for (int i = 0; i < 6; i++) lens[i] = strlen(argv[i]);
    cw_conn_command(d->writer, 6, argv, lens, 0, on_reconcile, d);
}

/* ---- Life cycle --------------------------------------------------------- */

static void on_conn_state(cw_conn *c, int ready, void *data) {
    daemon_ctx *d = data;
    if (!ready) return;
    if (c == d->reader) {
        /* from the last entry received: the batches read ahead are still applied */
        CW_LOG(CW_LOG_INFO, "stream", "reading %s after %s", d->cfg->stream_key, d->read_pos[0] ? d->read_pos : d->last_id);
        read_more(d);
        return;
    }
    /* hash writes handed out before the writer dropped may be lost, and
     * rows judged while it was down were not written: write everything
     * again (idempotent HSETs) */
    if (d->writer_was_ready || d->rows_dropped) cw_engine_touch_all(d->engine);
    d->writer_was_ready = 1;
    d->rows_dropped = 0;
    cw_sink_resync(d->sink); /* the firing hash is rewritten whole before more alerts */
    if (!d->stream_checked) ask_stream_size(d);
    reconcile_more(d);
    send_alerts(d);
    cw_dead_send(d->dead, d->writer);
}

#define DRAIN_MS 4000 /* how long shutdown waits for Redis to acknowledge */

static void close_handles(daemon_ctx *d) {
    cw_conn_close(d->writer, NULL, NULL);
    d->writer = NULL;
    uv_close((uv_handle_t *)&d->sigterm, NULL);
    uv_close((uv_handle_t *)&d->sigint, NULL);
    uv_close((uv_handle_t *)&d->sighup, NULL);
    uv_close((uv_handle_t *)&d->flush_timer, NULL);
    uv_close((uv_handle_t *)&d->flush_more, NULL);
    uv_close((uv_handle_t *)&d->boundary, NULL);
    uv_close((uv_handle_t *)&d->apply_more, NULL);
    uv_close((uv_handle_t *)&d->stall_timer, NULL);
    if (d->watchdog_on) uv_close((uv_handle_t *)&d->watchdog_timer, NULL);
}

/* Shutdown, second half: once every write is acknowledged (or the writer
 * is gone, or DRAIN_MS passed), the final snapshot, the health hash's
 * clean stop, then every handle closed. */
static void on_drain_timer(uv_timer_t *t) {
    daemon_ctx *d = t->data;
    uint64_t now = uv_now(&d->loop);
    int late = now - d->stop_started >= DRAIN_MS;
    if (d->final_health == 1 && now - d->final_sent < 1000 && cw_conn_is_ready(d->writer))
        return; /* its reply is on the way */
    if (d->final_health) {
        close_handles(d);
        return;
    }
    flush(d);
    if (d->replay && !cw_engine_judge_pending(d->engine) && cw_sink_replaying(d->sink) == 1) {
        cw_sink_replay_end(d->sink, cw_wall_ms()); /* all judged: the net change (PROTOCOL.md §3b) */
        send_alerts(d);
    }
    int ready = cw_conn_is_ready(d->writer);
    int idle = !cw_conn_in_flight(d->writer) && !cw_sink_pending(d->sink) && !cw_dead_pending(d->dead) &&
               !cw_engine_judge_pending(d->engine);
    if (ready && !idle && !late) return;
    if (!idle)
        CW_LOG(CW_LOG_WARNING, "daemon", "stopping with %zu alerts and %zu dead letters not acknowledged",
               cw_sink_pending(d->sink), cw_dead_pending(d->dead));
    /* the final snapshot, in this process: nothing changes any more */
    if (d->snap_child) {
        kill(d->snap_child, SIGKILL);
        snapshot_reap(d, 1);
    }
    char err[512];
    size_t size = 0;
    double t0 = cw_mono_s();
    if (snapshot_write(d, &size, err, sizeof(err)) < 0) CW_LOG(CW_LOG_ERR, "snapshot", "final snapshot: %s", err);
    else
        CW_LOG(CW_LOG_INFO, "snapshot", "final snapshot %s: %zu bytes in %.0f ms, after %s", d->snap_path, size,
               (cw_mono_s() - t0) * 1000, d->last_id);
    d->final_health = 1;
    d->final_sent = now;
    if (ready) write_health(d, 1);
    else close_handles(d);
}

/* Shutdown, first half: stop reading, write what is pending. */
static void begin_shutdown(daemon_ctx *d) {
    if (d->stopping) return;
    d->stopping = 1;
    cw_notify_stopping();
    cw_conn_close(d->reader, NULL, NULL);
    d->reader = NULL;
    flush(d);
    if (cw_conn_is_ready(d->writer)) write_health(d, 0);
    d->stop_started = uv_now(&d->loop);
    uv_timer_stop(&d->flush_timer);
    uv_timer_start(&d->flush_timer, on_drain_timer, 10, 10);
}

static void on_signal(uv_signal_t *s, int signum) {
    daemon_ctx *d = s->data;
    if (d->stopping) return;
    CW_LOG(CW_LOG_NOTICE, "daemon", "%s received, shutting down", signum == SIGTERM ? "SIGTERM" : "SIGINT");
    begin_shutdown(d);
}

/* --replay reached the tip it was asked for: the one line, then the
 * orderly stop (hashes, alerts, snapshot). */
static void replay_done(daemon_ctx *d) {
    d->lag = 0; /* at the tip it was asked to reach */
    double secs = cw_mono_s() - d->replay_started;
    uint64_t n = cw_engine_counts_of(d->engine)->events - d->replay_events0;
    printf("replayed %llu events (%llu entries read) in %.2f s: %.0f events/s; longest loop stall %.0f ms\n",
           (unsigned long long)n, (unsigned long long)d->read_total, secs, secs > 0 ? (double)n / secs : 0.0,
           d->max_stall_ms);
    fflush(stdout);
    begin_shutdown(d);
}

/* Loop stalls: a 10 ms timer that notes how late it runs. */
static void on_stall_probe(uv_timer_t *t) {
    daemon_ctx *d = t->data;
    uint64_t now = uv_hrtime();
    if (now - d->stall_window_at >= 60000000000ULL) {
        d->stall_window_at = now;
        d->stall_window_ms[1] = d->stall_window_ms[0];
        d->stall_window_ms[0] = 0;
    }
    if (d->stall_last_ns) {
        double late = (double)(now - d->stall_last_ns) / 1e6 - 10.0;
        if (late > d->max_stall_ms) d->max_stall_ms = late;
        if (late > d->stall_window_ms[0]) d->stall_window_ms[0] = late;
    }
    d->stall_last_ns = now;
}

static void on_watchdog(uv_timer_t *t) {
    (void)t;
    cw_notify_watchdog(); /* from the loop: a stuck loop stops petting */
}

/* SIGHUP: a new configuration of rules, units and thresholds, taken
 * whole or not at all; the state (cases, counters, alert states) stays.
 * Connection and stream settings need a restart. */
static void on_sighup(uv_signal_t *s, int signum) {
    (void)signum;
    daemon_ctx *d = s->data;
    if (d->stopping) return;
    if (!d->reload) {
        CW_LOG(CW_LOG_WARNING, "config", "SIGHUP: no configuration file to reload");
        return;
    }
    cw_notify_reloading();
    char err[512];
    cw_config *nc = d->reload(d->reload_data, err, sizeof(err));
    if (!nc || cw_engine_reload(d->engine, nc, cw_wall_ms(), err, sizeof(err)) < 0) {
        CW_LOG(CW_LOG_ERR, "config", "SIGHUP: new configuration rejected, keeping the running one: %s", err);
        cw_config_free(nc);
        cw_notify_ready();
        return;
    }
    load_calendar(d, nc, "SIGHUP: "); /* a bad file keeps the calendar in use */
    const cw_config *oc = d->cfg;
    if (strcmp(nc->redis_host, oc->redis_host) || nc->redis_port != oc->redis_port ||
        strcmp(nc->stream_key, oc->stream_key) || nc->utc_offset_min != oc->utc_offset_min ||
        strcmp(nc->ind_prefix, oc->ind_prefix) || strcmp(nc->alerts_channel, oc->alerts_channel))
        CW_LOG(CW_LOG_WARNING, "config", "SIGHUP: Redis, stream, prefix and time settings change only on restart");
    cw_log_level = nc->log_level;
    CW_LOG(CW_LOG_NOTICE, "config", "SIGHUP: configuration reloaded, %zu rules", cw_engine_rules(d->engine));
    cw_notify_ready();
}

/* Loads [calendar] file into the engine. A missing file means weekends
 * only (with a warning); a malformed one is refused (-1, logged, naming
 * file and line) and the calendar in use stays. */
static int load_calendar(daemon_ctx *d, const cw_config *cfg, const char *when) {
    const char *path = cfg->calendar_file;
    cw_calendar *cal = NULL;
    if (path && path[0]) {
        char err[512];
        cal = cw_calendar_load(path, err, sizeof(err));
        if (!cal && access(path, F_OK) == 0) {
            CW_LOG(CW_LOG_ERR, "config", "%s[calendar] file: %s", when, err);
            return -1;
        }
        if (!cal)
            CW_LOG(CW_LOG_WARNING, "config", "%sno holiday calendar at %s ([calendar] file): periods count weekends only",
                   when, path);
    } else {
        CW_LOG(CW_LOG_WARNING, "config", "%s[calendar] file is empty: periods count weekends only", when);
    }
    int through = cw_calendar_through(cal);
    int year = (int)(cw_period_day(cw_wall_ms(), cfg->utc_offset_min) / 365.2425 + 1970);
    if (cal && through < year)
        CW_LOG(CW_LOG_WARNING, "config",
               "%sthe holiday calendar %s covers %d to %d: %d on counts weekends only until next year's notice is added",
               when, path, cw_calendar_from(cal), through, through + 1);
    d->calendar_through = through;
    cw_engine_set_calendar(d->engine, cal);
    return 0;
}

/* Frees the state (not the connections or handles). */
static void free_state(daemon_ctx *d) {
    cw_resp_destroy(&d->cmd);
    cw_dead_free(d->dead);
    cw_sink_free(d->sink);
    cw_engine_free(d->engine);
    for (int spare = 0; spare < 2; spare++) {
        read_batch *rb = spare ? d->spare_batches : d->ahead;
        while (rb) {
            read_batch *n = rb->next;
            cw_batch_free(rb->b);
            free(rb);
            rb = n;
        }
    }
}

/* An early failure: nothing was started on the loop yet. */
static int fail_early(daemon_ctx *d, int code) {
    free_state(d);
    uv_loop_close(&d->loop);
    return code;
}

int cw_daemon_run(const cw_config *cfg, const cw_daemon_opts *opts) {
    daemon_ctx d;
    memset(&d, 0, sizeof(d));
    d.cfg = cfg;
    d.reload = opts ? opts->reload : NULL;
    d.reload_data = opts ? opts->reload_data : NULL;
    d.replay = opts && opts->replay;
    snprintf(d.snap_path, sizeof(d.snap_path), "%s/%s.snap", cfg->state_dir, cfg->instance);
    d.started_at = cw_wall_ms();
    d.flush_at = (uint64_t)cfg->flush_entries;
    snprintf(d.last_id, sizeof(d.last_id), "0-0");
    if (uv_loop_init(&d.loop) != 0) {
        CW_LOG(CW_LOG_ERR, "daemon", "cannot initialise the event loop");
        return 1;
    }
    char err[512];
    cw_engine_out out = {on_alert, &d};
    d.engine = cw_engine_new(cfg, &out, err, sizeof(err));
    if (!d.engine) {
        CW_LOG(CW_LOG_ERR, "config", "%s", err);
        return fail_early(&d, 1);
    }
    if (!cw_engine_rules(d.engine))
        CW_LOG(CW_LOG_WARNING, "config", "no [rule ...] sections: indicators only, no alerts will be raised");
    if (load_calendar(&d, cfg, "") < 0) return fail_early(&d, 1);
    d.sink = cw_sink_new(cfg);
    d.dead = cw_dead_new(cfg);
    cw_resp_init(&d.cmd);
    if (!d.sink || !d.dead) {
        CW_LOG(CW_LOG_ERR, "daemon", "out of memory");
        return fail_early(&d, 1);
    }
    if (opts && opts->rebuild) {
        CW_LOG(CW_LOG_NOTICE, "snapshot", "--rebuild: ignoring %s, replaying %s from its start", d.snap_path,
               cfg->stream_key);
    } else if (snapshot_load(&d) < 0) {
        return fail_early(&d, 2); /* said why */
    }
    if (d.replay && cw_sink_replay_begin(d.sink, opts->rebuild) < 0) return fail_early(&d, 1);
    d.reader = cw_conn_new(&d.loop, cfg, "read", on_conn_state, &d);
    d.writer = cw_conn_new(&d.loop, cfg, "write", on_conn_state, &d);
    if (!d.reader || !d.writer) {
        CW_LOG(CW_LOG_ERR, "daemon", "out of memory");
        return fail_early(&d, 1);
    }
    uv_signal_init(&d.loop, &d.sigterm);
    uv_signal_init(&d.loop, &d.sigint);
    d.sigterm.data = d.sigint.data = &d;
    uv_signal_start(&d.sigterm, on_signal, SIGTERM);
    uv_signal_start(&d.sigint, on_signal, SIGINT);
    uv_signal_init(&d.loop, &d.sighup);
    d.sighup.data = &d;
    uv_signal_start(&d.sighup, on_sighup, SIGHUP);
    uv_timer_init(&d.loop, &d.stall_timer);
    d.stall_timer.data = &d;
    uv_timer_start(&d.stall_timer, on_stall_probe, 10, 10);
    uint64_t wd = cw_notify_watchdog_ms();
    if (wd) {
        uv_timer_init(&d.loop, &d.watchdog_timer);
        uv_timer_start(&d.watchdog_timer, on_watchdog, 0, wd / 2 ? wd / 2 : 1);
        d.watchdog_on = 1;
    }
    uv_timer_init(&d.loop, &d.flush_timer);
    d.flush_timer.data = &d;
    uv_timer_init(&d.loop, &d.flush_more);
    d.flush_more.data = &d;
    uv_timer_init(&d.loop, &d.boundary);
    d.boundary.data = &d;
    uv_idle_init(&d.loop, &d.apply_more);
    d.apply_more.data = &d;
    uv_timer_start(&d.flush_timer, on_flush_timer, (uint64_t)cfg->flush_ms, (uint64_t)cfg->flush_ms);
    signal(SIGPIPE, SIG_IGN);
    CW_LOG(CW_LOG_INFO, "daemon", "casewatchd %s starting: instance %s, stream %s on %s:%d", CW_VERSION, cfg->instance,
           cfg->stream_key, cfg->redis_host, cfg->redis_port);
    cw_conn_start(d.reader);
    cw_conn_start(d.writer);
    uv_run(&d.loop, UV_RUN_DEFAULT);
    int rc = uv_loop_close(&d.loop);
    if (rc != 0) CW_LOG(CW_LOG_ERR, "daemon", "event loop closed with handles still open: %s", uv_strerror(rc));
    if (cw_sink_pending(d.sink))
        CW_LOG(CW_LOG_WARNING, "alert", "%zu alerts not acknowledged by Redis at exit", cw_sink_pending(d.sink));
    const cw_engine_counts *n = cw_engine_counts_of(d.engine);
    CW_LOG(CW_LOG_INFO, "daemon", "stopped after %llu events, %llu duplicates, %llu dead-lettered",
           (unsigned long long)n->events, (unsigned long long)n->duplicates,
           (unsigned long long)cw_dead_total(d.dead));
    free_state(&d);
    return rc != 0 ? 1 : 0;
}
