#include "cw_daemon.h"

#include <errno.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include <jansson.h>
#include <uv.h>

#include "../proto/cw_event.h"
#include "cw_batch.h"
#include "cw_period.h"
#include "cw_rules.h"
#include "cw_sink.h"
#include "cw_snap.h"
#include "cw_cases.h"
#include "cw_conn.h"
#include "cw_ind.h"
#include "cw_log.h"
#include "cw_notify.h"

/* Read strategy: plain XREAD from the last applied entry id, which the
 * daemon keeps itself (and the snapshot will persist with the state it
 * produced). A consumer group's acknowledgement lives in Redis, apart
 * from the state, so it could never be committed atomically with it;
 * XREAD has no server-side bookkeeping to keep in step and is the
 * fastest read Redis offers. */

#define MAX_FIELDS 16

/* A dead letter waiting for the writer: the XADD argv, owned. */
typedef struct dead_letter {
    int argc;
    char **argv;
    size_t *argvlen;
    struct dead_letter *next;
} dead_letter;

typedef struct daemon_ctx {
    uv_loop_t loop;
    const cw_config *cfg;
    cw_conn *reader; /* blocking stream reads hold this one */
    cw_conn *writer; /* hashes, dead letters, health */
    uv_signal_t sigterm, sigint, sighup;
    uv_timer_t flush_timer, watchdog_timer, stall_timer;
    uv_timer_t flush_more; /* the rest of a flush that did not fit one slice */
    uv_idle_t apply_more;  /* the rest of a batch: applied in slices, between which replies are read */
    uint64_t stall_last_ns; /* when the stall probe last ran */
    double max_stall_ms;    /* the longest the loop was kept from a 10 ms timer */
    int watchdog_on;
    int ready_sent;
    cw_config_reload_fn reload;
    void *reload_data;
    cw_config *rules_cfg; /* the configuration of rules and units after a reload (owned) */
    uint64_t status_events; /* events at the last STATUS= */
    uint64_t status_at;
    int stopping;
    int reading;
    /* data path */
    struct read_batch *ahead, *ahead_tail; /* read, not yet applied, oldest first */
    struct read_batch *spare_batches;
    int nahead;
    uint64_t read_ahead; /* entries received (read_total: applied) */
    int reads_held;      /* --replay: no read past a flush point until its flush is out */
    int read_all;        /* --replay: the batch reaching the tip was received */
    cw_cases *cases;
    cw_ind *ind;
    cw_rules *rules;
    cw_sink *sink;
    int64_t event_now; /* the newest event time seen: the clock of replays */
    cw_resp cmd;           /* hash writes are formatted here */
    int64_t clock_day;    /* local day the deadline/rank clock has reached */
    char open_periods[3][8]; /* the month, quarter and year it is in */
    char last_id[48];  /* the last entry applied: the position the state is at */
    char read_pos[48]; /* where the next XREAD starts: the last entry received (ahead of last_id while batches wait) */
    int caught_up;
    /* --replay: the flush of a flush point is out while holding */
    uint64_t flush_at; /* read_ahead at which the next such flush begins */
    int holding;
    dead_letter *dl_head, *dl_tail; /* not yet acknowledged */
    int dl_sending;
    int writer_was_ready; /* a later READY means writes may have been lost */
    /* stats for the health hash */
    int64_t started_at;
    uint64_t events, duplicates, dead_lettered, read_total;
    uint64_t after_close; /* events on cases already closed */
    uint64_t trimmed;     /* entries trimmed from the stream before we read them */
    char trim_reported[48]; /* the highest deleted id already reported */
    int stream_checked;     /* the stream was looked at (XINFO) before the first read */
    /* --replay: up to the tip as it was at start, then exit */
    int replay;
    char replay_until[48];
    double replay_started;
    uint64_t replay_events0;
    /* progress while catching up */
    uint64_t progress_at, progress_read;
    char progress[160];
    int64_t lag;
    int64_t stream_base; /* entries added before what we first read */
    int base_known;
    size_t hashes_written;
    uint64_t last_health; /* uv_now() of the last health write */
    uint64_t stop_started; /* uv_now() when shutdown began */
    /* snapshots */
    char snap_path[512];
    pid_t snap_child;       /* a forked writer at work, or 0 */
    uint64_t snap_started;  /* uv_now() when it was forked */
    double snap_fork_ms;    /* how long fork() held the loop */
    uint64_t last_snapshot; /* uv_now() of the last one started */
    int64_t snapshot_at;    /* wall ms of the last one written */
    int reconciling;        /* reading back alerts published after the snapshot; the stream waits */
    char reconcile_from[48];
    int snap_failing;
} daemon_ctx;

static void read_more(daemon_ctx *d);
static void flush(daemon_ctx *d);
static void replay_done(daemon_ctx *d);
static int id_cmp(const char *a, const char *b);
static void send_dead_letters(daemon_ctx *d);
static void snapshot_tick(daemon_ctx *d);
static void send_alerts(daemon_ctx *d);

/* ---- Dead letters ------------------------------------------------------ */

static void dead_letter_free(dead_letter *dl) {
    for (int i = 0; i < dl->argc; i++) free(dl->argv[i]);
    free(dl->argv);
    free(dl->argvlen);
    free(dl);
}

/* Copies an unusable entry (its original fields, reason, source_id) into
 * the queue for the dead-letter stream; it stays queued until Redis has
 * acknowledged it, across reconnects. */
static void dead_letter_queue(daemon_ctx *d, const char *id, const cw_entry_field *fields, size_t nfields,
                              const char *reason) {
    dead_letter *dl = calloc(1, sizeof(*dl));
    int argc = 3 + 2 * (int)nfields + 4;
    dl->argv = calloc((size_t)argc, sizeof(char *));
    dl->argvlen = calloc((size_t)argc, sizeof(size_t));
    int n = 0;
#define PUSH(s, l)                          \
    do {                                    \
        dl->argv[n] = malloc((l) + 1);      \
        memcpy(dl->argv[n], (s), (l));      \
        dl->argv[n][(l)] = '\0';            \
        dl->argvlen[n++] = (l);             \
    } while (0)
    PUSH("XADD", 4);
    PUSH(d->cfg->stream_dead_key, strlen(d->cfg->stream_dead_key));
    PUSH("*", 1);
    for (size_t i = 0; i < nfields; i++) {
        /* a field named like ours would be shadowed; keep it under orig_ */
        const cw_entry_field *f = &fields[i];
        if ((f->name_len == 6 && memcmp(f->name, "reason", 6) == 0) ||
            (f->name_len == 9 && memcmp(f->name, "source_id", 9) == 0)) {
            char buf[16];
            snprintf(buf, sizeof(buf), "orig_%.9s", f->name);
            PUSH(buf, strlen(buf));
        } else {
            PUSH(f->name, f->name_len);
        }
        PUSH(f->value, f->value_len);
    }
    PUSH("reason", 6);
    PUSH(reason, strlen(reason));
    PUSH("source_id", 9);
    PUSH(id, strlen(id));
#undef PUSH
    dl->argc = n;
    if (d->dl_tail) d->dl_tail->next = dl;
    else d->dl_head = dl;
    d->dl_tail = dl;
    d->dead_lettered++;
    CW_LOG(CW_LOG_NOTICE, "stream", "entry %s dead-lettered: %s", id, reason);
}

static void on_dead_letter_reply(cw_conn *c, redisReply *r, void *privdata) {
    (void)c;
    daemon_ctx *d = privdata;
    d->dl_sending = 0;
    if (!r || r->type == REDIS_REPLY_ERROR) {
        if (r) CW_LOG(CW_LOG_ERR, "stream", "dead-letter XADD refused: %s", r->str);
        return; /* stays queued; retried on the next flush or reconnect */
    }
    dead_letter *dl = d->dl_head;
    d->dl_head = dl->next;
    if (!d->dl_head) d->dl_tail = NULL;
    dead_letter_free(dl);
    send_dead_letters(d);
}

/* One dead letter in flight at a time keeps the queue simple: it is
 * removed only once acknowledged. Dead letters are rare. */
static void send_dead_letters(daemon_ctx *d) {
    if (d->dl_sending || !d->dl_head || !cw_conn_is_ready(d->writer)) return;
    dead_letter *dl = d->dl_head;
    if (cw_conn_command(d->writer, dl->argc, (const char **)dl->argv, dl->argvlen, 0, on_dead_letter_reply, d) == 0)
        d->dl_sending = 1;
}

/* ---- Alerts: rules -> sink ---------------------------------------------- */

static void on_alert(const cw_alert *a, void *data) {
    daemon_ctx *d = data;
    if (cw_sink_put(d->sink, a, cw_wall_ms()) < 0)
        CW_LOG(CW_LOG_ERR, "alert", "out of memory queueing alert %s", a->id);
}

/* A light of a case's statutory clock (from cw_cases). */
static void on_light(int clock, int light, int firing, const char *unit, const char *case_id, int64_t due_day,
                     int64_t ts, void *data) {
    daemon_ctx *d = data;
    if (firing && light == 3 && (clock == CW_CLOCK_LETTER_PROCEDURAL || clock == CW_CLOCK_LETTER_SUBSTANTIVE)) {
        int64_t due_ms = due_day * 86400000LL - (int64_t)d->cfg->utc_offset_min * 60000;
        if (cw_ind_letter_overdue(d->ind, unit, clock == CW_CLOCK_LETTER_SUBSTANTIVE, due_ms) < 0)
            CW_LOG(CW_LOG_ERR, "daemon", "out of memory counting an overdue letter");
    }
    cw_rules_light(d->rules, clock, light, firing, unit, case_id, due_day, ts, on_alert, d);
}

static void on_check(int check, const char *unit, const char *case_id, const cw_event *ev, void *data) {
    daemon_ctx *d = data;
    cw_rules_check(d->rules, check, unit, case_id, cw_event_type_name(ev->type), ev->ts, on_alert, d);
}

/* The clock reached `now`: deadline lights whose day has come, and the
 * rank rules of every month, quarter or year it moved past. */
static void clock_moved(daemon_ctx *d, int64_t now) {
    int64_t day = cw_period_day(now, d->cfg->utc_offset_min);
    if (day <= d->clock_day) return;
    d->clock_day = day;
    cw_cases_advance(d->cases, day);
    char names[3][8];
    cw_period_names(now, d->cfg->utc_offset_min, names[0], names[1], names[2]);
    for (int k = 0; k < 3; k++) {
        if (d->open_periods[k][0] && strcmp(d->open_periods[k], names[k]) != 0)
            cw_rules_close_period(d->rules, d->ind, d->open_periods[k], now, on_alert, d);
        memcpy(d->open_periods[k], names[k], 8);
    }
}

/* The clock deadlines and rankings run by: event time while replaying or
 * catching up (and always with clock = event), the wall clock once caught
 * up live (see flush). */
static void advance_clocks(daemon_ctx *d, int64_t event_ts) {
    if (event_ts > d->event_now) d->event_now = event_ts;
    if (d->cfg->clock == CW_CLOCK_LIVE && d->caught_up && !d->replay) return;
    clock_moved(d, d->event_now);
}

/* ---- Caps ---------------------------------------------------------------- */

/* Raises 容量预警 for one cap (once) and says what happens to the excess. */
static void capacity_alert(daemon_ctx *d, const char *cap, long value, int firing, int64_t ts) {
    char msg[400];
    if (firing)
        snprintf(msg, sizeof(msg), "casewatchd %s 已达容量上限 [limits] %s = %ld，超出的事件转入 %s，已计入的数据不受影响",
                 d->cfg->instance, cap, value, d->cfg->stream_dead_key);
    else
        snprintf(msg, sizeof(msg), "casewatchd %s 容量已回落到 [limits] %s = %ld 的九成以下，容量预警解除",
                 d->cfg->instance, cap, value);
    cw_rules_system(d->rules, "system.capacity", cap, firing, "red", "容量预警", msg, ts, on_alert, d);
}

/* An event past a cap is dead-lettered with the cap's name; what is
 * already counted stays. Returns 1 when ev was refused. */
static int over_capacity(daemon_ctx *d, const cw_batch_entry *e) {
    const cw_event *ev = &e->ev;
    const cw_config *cfg = d->cfg;
    const char *cap = NULL;
    long value = 0;
    int adm = cw_cases_admit(d->cases, ev, (size_t)cfg->max_open_cases, (size_t)cfg->max_ids_per_case);
    if (adm == 1) cap = "max_open_cases", value = cfg->max_open_cases;
    else if (adm == 2) cap = "max_ids_per_case", value = cfg->max_ids_per_case;
    else if (cw_ind_scopes(d->ind) + 6 > (size_t)cfg->max_scopes &&
             cw_ind_scopes(d->ind) + cw_ind_new_scopes(d->ind, ev) > (size_t)cfg->max_scopes)
        cap = "max_scopes", value = cfg->max_scopes;
    if (!cap) return 0;
    char why[200];
    snprintf(why, sizeof(why), "capacity: [limits] %s = %ld reached", cap, value);
    dead_letter_queue(d, e->id, e->fields, e->nfields, why);
    capacity_alert(d, cap, value, 1, ev->ts);
    return 1;
}

/* Caps that can fall back (cases close, old periods go) resolve their
 * alert below 90%. */
static void capacity_check(daemon_ctx *d) {
    const cw_config *cfg = d->cfg;
    if (cw_rules_system_firing(d->rules, "system.capacity", "max_open_cases") &&
        cw_cases_open(d->cases) < (size_t)cfg->max_open_cases / 10 * 9)
        capacity_alert(d, "max_open_cases", cfg->max_open_cases, 0, d->event_now);
    if (cw_rules_system_firing(d->rules, "system.capacity", "max_scopes") &&
        cw_ind_scopes(d->ind) < (size_t)cfg->max_scopes / 10 * 9)
        capacity_alert(d, "max_scopes", cfg->max_scopes, 0, d->event_now);
}

/* ---- The data path: stream -> decode -> cases -> counters -------------- */

static void apply_entry(daemon_ctx *d, const cw_batch_entry *e) {
    d->read_total++;
    /* the position, once per entry: a copy, not a format */
    size_t idl = strlen(e->id);
    if (idl >= sizeof(d->last_id)) idl = sizeof(d->last_id) - 1;
    memcpy(d->last_id, e->id, idl);
    d->last_id[idl] = '\0';
    if (!e->ok) {
        dead_letter_queue(d, e->id, e->fields, e->nfields, e->why);
        return;
    }
    const cw_event *ev = &e->ev;
    if (over_capacity(d, e)) return;
    advance_clocks(d, ev->ts);
    cw_case_facts facts;
    int rc = cw_cases_apply(d->cases, ev, &facts);
    if (rc == 1) {
        d->duplicates++;
        return;
    }
    if (rc == 2) d->after_close++;
    if (rc < 0 || cw_ind_apply(d->ind, ev, &facts) < 0) {
        CW_LOG(CW_LOG_ERR, "daemon", "out of memory applying entry %s", e->id);
        return;
    }
    d->events++;
}

/* ---- Reading ahead: batches decoded on libuv's thread pool --------------
 *
 * A reply is copied into a batch (cw_batch) and decoded on a worker while
 * the loop applies the batches before it; batches are applied in stream
 * order, and at most AHEAD of them are read and not yet applied. */

#define AHEAD 3

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

/* After a batch is applied: what the reads, alerts and flush points do
 * next. The order is that of the stream, whatever order workers finish. */
static void batch_applied(daemon_ctx *d, const read_batch *rb) {
    d->caught_up = rb->n < (size_t)d->cfg->stream_batch;
    if (d->replay && (d->caught_up || id_cmp(d->last_id, d->replay_until) >= 0)) {
        replay_done(d);
        return;
    }
    if (d->caught_up && !d->ready_sent) {
        d->ready_sent = 1;
        CW_LOG(CW_LOG_INFO, "stream", "caught up with %s after %llu entries; following", d->cfg->stream_key,
               (unsigned long long)d->read_total);
        cw_notify_ready();
    }
    /* alerts raised by these events (deadlines, data checks) go out now,
     * not at the next flush */
    send_alerts(d);
    send_dead_letters(d);
    if (rb->hold) {
        d->holding = 1;
        flush(d); /* reads again once it is out */
    }
    read_more(d);
}

#define APPLY_SLICE 250 /* entries applied before the loop looks at the sockets again */

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

/* ---- Writing indicator hashes and the health hash ---------------------- */

static void on_write_reply(cw_conn *c, redisReply *r, void *privdata) {
    (void)c;
    (void)privdata;
    if (r && r->type == REDIS_REPLY_ERROR) CW_LOG(CW_LOG_ERR, "write", "redis refused a write: %s", r->str);
}

static void emit_hash(const char *scope, const char *period, const uint64_t *counters, int64_t event_ts,
                      const char *const *fields, const char *const *values, size_t n, void *data) {
    daemon_ctx *d = data;
    cw_rules_eval(d->rules, scope, period, counters, event_ts, on_alert, d);
    char key[512];
    int kl = snprintf(key, sizeof(key), "%s:%s:%s", d->cfg->ind_prefix, scope, period);
    if (kl < 0 || (size_t)kl >= sizeof(key)) return; /* cannot happen: names are capped */
    cw_resp *cmd = &d->cmd;
    /* an indicator whose denominator fell to 0 (a rolling window moving
     * on) is undefined: its field goes, rather than keep an old value */
    const char *gone[16];
    int ngone = 0;
    cw_ind_field f;
    for (size_t i = 0; cw_ind_fields(i, &f) && f.kind != CW_IND_COUNTER && ngone < 16; i++) {
        double v;
        if (cw_ind_value(counters, (int)i, &v) < 0) gone[ngone++] = f.name;
    }
    if (ngone) {
        cw_resp_begin(cmd, 2 + ngone);
        cw_resp_arg(cmd, "HDEL", 4);
        cw_resp_arg(cmd, key, (size_t)kl);
        for (int i = 0; i < ngone; i++) cw_resp_str(cmd, gone[i]);
        cw_conn_send(d->writer, cmd, 0, on_write_reply, d);
    }
    if (n > 40) n = 40;
    cw_resp_begin(cmd, 2 + 2 * (int)n);
    cw_resp_arg(cmd, "HSET", 4);
    cw_resp_arg(cmd, key, (size_t)kl);
    for (size_t i = 0; i < n; i++) {
        cw_resp_str(cmd, fields[i]);
        cw_resp_str(cmd, values[i]);
    }
    cw_conn_send(d->writer, cmd, 0, on_write_reply, d);
    d->hashes_written++;
}

static long rss_bytes(void) {
    long pages = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &rss) != 2) rss = 0;
        fclose(f);
    }
    return rss * sysconf(_SC_PAGESIZE);
}

/* Compares stream entry ids "ms-seq". */
static int id_cmp(const char *a, const char *b) {
    unsigned long long am = 0, as = 0, bm = 0, bs = 0;
    sscanf(a, "%llu-%llu", &am, &as);
    sscanf(b, "%llu-%llu", &bm, &bs);
    return am != bm ? (am < bm ? -1 : 1) : as != bs ? (as < bs ? -1 : 1) : 0;
}

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
    cw_rules_system(d->rules, "system.stream_trimmed", "stream", 1, "red", "数据丢失预警", msg, cw_wall_ms(), on_alert,
                    d);
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
            d->replay_events0 = d->events;
        }
        read_more(d);
    }
    int64_t lag = added - d->stream_base - (int64_t)d->read_total;
    d->lag = d->caught_up || lag < 0 ? 0 : lag;
}

static void capacity_check(daemon_ctx *d);

/* XINFO STREAM: the lag, and entries trimmed before we read them. */
static void ask_stream_size(daemon_ctx *d) {
    const char *xi[] = {"XINFO", "STREAM", d->cfg->stream_key};
    size_t xl[] = {5, 6, strlen(d->cfg->stream_key)};
    cw_conn_command(d->writer, 3, xi, xl, 0, on_xinfo, d);
}

static void write_health(daemon_ctx *d) {
    capacity_check(d);
    char key[256];
    snprintf(key, sizeof(key), "%s:%s", d->cfg->health_prefix, d->cfg->instance);
    char v[11][32];
    snprintf(v[0], 32, "%lld", (long long)d->started_at);
    snprintf(v[1], 32, "%lld", (long long)cw_wall_ms());
    snprintf(v[2], 32, "%lld", (long long)d->lag);
    snprintf(v[3], 32, "%llu", (unsigned long long)d->events);
    snprintf(v[4], 32, "%llu", (unsigned long long)d->duplicates);
    snprintf(v[5], 32, "%llu", (unsigned long long)d->dead_lettered);
    snprintf(v[6], 32, "%zu", cw_cases_open(d->cases));
    snprintf(v[7], 32, "%llu", (unsigned long long)cw_rules_firing(d->rules));
    snprintf(v[8], 32, "%ld", rss_bytes());
    snprintf(v[9], 32, "%llu", (unsigned long long)d->read_total);
    snprintf(v[10], 32, "%.0f", d->max_stall_ms);
    const char *argv[] = {"HSET",        key,  "started_at", v[0], "heartbeat_at", v[1], "last_id",
                          d->last_id,    "lag", v[2],        "events", v[3],         "duplicates", v[4],
                          "dead_lettered", v[5], "open_cases", v[6], "alerts_firing", v[7], "rss_bytes", v[8],
                          "entries_read", v[9], "version",    CW_VERSION, "progress", d->progress[0] ? d->progress : "starting",
                          "max_stall_ms", v[10]};
    size_t argc = sizeof(argv) / sizeof(argv[0]), lens[sizeof(argv) / sizeof(argv[0])];
    for (size_t i = 0; i < argc; i++) lens[i] = strlen(argv[i]);
    cw_conn_command(d->writer, (int)argc, argv, lens, 0, on_write_reply, d);
    ask_stream_size(d);
}

/* Hashes written per turn of the loop: writing every rolling window of a
 * country's scopes when the day moves does not hold the loop (a slice
 * takes a few milliseconds; the rest follows after the loop has run). */
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
 * has run; one pending continuation at a time. */
static void write_more_later(daemon_ctx *d, uint64_t ms) {
    uv_handle_t *h = (uv_handle_t *)&d->flush_more;
    if (!uv_is_active(h) && !uv_is_closing(h)) uv_timer_start(&d->flush_more, on_flush_more, ms, 0);
}

/* Sends queued alerts while the writer has room; the rest follows. */
static void send_alerts(daemon_ctx *d) {
    if (d->reconciling) return; /* subscribers' last word is being read back */
    if (cw_sink_send(d->sink, d->writer, WRITE_BYTES) && cw_conn_is_ready(d->writer)) write_more_later(d, 2);
}

/* Writes the touched indicator hashes, judging the indicator rules on
 * each (emit_hash), and what alerts and dead letters wait. On the timer:
 * within flush_ms of a change. In --replay, at points fixed by the stream
 * instead: every flush_entries entries read, with reading held (on_read)
 * until the whole flush is out, so that a replay of the same stream judges
 * the same counters, however fast it runs (the threshold rules'
 * hysteresis makes what fires depend on the states judged, not only on
 * the last). */
static void flush(daemon_ctx *d) {
    if (!cw_conn_is_ready(d->writer)) return; /* touched hashes wait for the writer */
    if (d->reconciling) return;                /* rules wait for the states subscribers saw */
    int judge = !d->replay || d->holding || d->stopping;
    if (d->cfg->clock == CW_CLOCK_LIVE && d->caught_up && !d->replay) {
        int64_t now = cw_wall_ms();
        clock_moved(d, now);
        if (cw_ind_set_today(d->ind, cw_period_day(now, d->cfg->utc_offset_min)) < 0)
            CW_LOG(CW_LOG_ERR, "daemon", "out of memory");
    }
    /* backpressure: a slice only while Redis keeps up with the last ones */
    int room = writer_has_room(d);
    if (judge && room) cw_ind_flush(d->ind, emit_hash, d, FLUSH_SLICE);
    int pending = cw_ind_flush_pending(d->ind);
    if (judge && pending) write_more_later(d, room ? 0 : 2);
    send_alerts(d);
    send_dead_letters(d);
    if (d->holding && !pending) {
        d->holding = d->reads_held = 0;
        d->flush_at = d->read_ahead + (uint64_t)d->cfg->flush_entries;
        read_more(d);
    }
}

static void on_flush_more(uv_timer_t *t) {
    flush(t->data);
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

static void on_flush_timer(uv_timer_t *t) {
    daemon_ctx *d = t->data;
    flush(d);
    snapshot_tick(d);
    progress_tick(d);
    uint64_t now = uv_now(&d->loop);
    if (now - d->last_health >= 1000 && cw_conn_is_ready(d->writer)) {
        d->last_health = now;
        write_health(d);
    }
    if (now - d->status_at >= 2000) {
        double rate = d->status_at ? (double)(d->events - d->status_events) * 1000.0 / (double)(now - d->status_at) : 0;
        d->status_at = now;
        d->status_events = d->events;
        cw_notify_status("%s %s: lag %lld, %.0f events/s, %llu open cases, %llu alerts firing",
                         d->caught_up ? "following" : "catching up on", d->cfg->stream_key, (long long)d->lag, rate,
                         (unsigned long long)cw_cases_open(d->cases), (unsigned long long)cw_rules_firing(d->rules));
    }
}

/* ---- Snapshots ---------------------------------------------------------- */

/* Writes the whole state at this instant: the daemon's own position and
 * counts, then each module's section. Runs in the forked child (periodic)
 * or in the process at shutdown; touches no loop or Redis handle. */
static int snapshot_write(daemon_ctx *d, size_t *size, char *err, size_t errlen) {
    cw_snap_writer *w = cw_snap_writer_open(d->snap_path, err, errlen);
    if (!w) return -1;
    cw_snap_put_i64(w, d->cfg->utc_offset_min);
    cw_snap_put_u32(w, (uint32_t)d->cfg->rolling_days);
    cw_snap_put_str(w, d->cfg->stream_key);
    cw_snap_put_str(w, d->last_id);
    cw_snap_put_i64(w, d->event_now);
    cw_snap_put_i64(w, d->clock_day);
    for (int k = 0; k < 3; k++) cw_snap_put_str(w, d->open_periods[k]);
    cw_snap_put_u64(w, d->events);
    cw_snap_put_u64(w, d->duplicates);
    cw_snap_put_u64(w, d->dead_lettered);
    cw_snap_put_u64(w, d->read_total);
    cw_snap_put_u64(w, d->after_close);
    cw_snap_put_i64(w, d->stream_base);
    cw_snap_put_u8(w, (uint8_t)d->base_known);
    size_t ndl = 0;
    for (dead_letter *dl = d->dl_head; dl; dl = dl->next) ndl++;
    cw_snap_put_u64(w, ndl);
    for (dead_letter *dl = d->dl_head; dl; dl = dl->next) {
        cw_snap_put_u32(w, (uint32_t)dl->argc);
        for (int i = 0; i < dl->argc; i++) cw_snap_put_bytes(w, dl->argv[i], dl->argvlen[i]);
    }
    cw_cases_save(d->cases, w);
    cw_ind_save(d->ind, w);
    cw_rules_save(d->rules, w);
    cw_sink_save(d->sink, w);
    return cw_snap_writer_commit(w, size, err, errlen);
}

static int load_dead_letters(daemon_ctx *d, cw_snap_reader *r) {
    uint64_t n = cw_snap_get_u64(r);
    for (uint64_t k = 0; k < n && !r->bad; k++) {
        uint32_t argc = cw_snap_get_u32(r);
        if (argc < 3 || argc > 3 + 2 * MAX_FIELDS + 8) return r->bad = 1, -1;
        dead_letter *dl = calloc(1, sizeof(*dl));
        if (!dl) return -1;
        dl->argv = calloc(argc, sizeof(char *));
        dl->argvlen = calloc(argc, sizeof(size_t));
        if (d->dl_tail) d->dl_tail->next = dl;
        else d->dl_head = dl;
        d->dl_tail = dl;
        if (!dl->argv || !dl->argvlen) return -1;
        for (uint32_t i = 0; i < argc; i++) {
            size_t len;
            const char *p = cw_snap_get_bytes(r, 1 << 20, &len);
            if (!p) return -1;
            dl->argv[i] = malloc(len + 1);
            if (!dl->argv[i]) return -1;
            memcpy(dl->argv[i], p, len);
            dl->argv[i][len] = '\0';
            dl->argvlen[i] = len;
            dl->argc = (int)i + 1;
        }
    }
    return r->bad ? -1 : 0;
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
        cw_snap_get_str(&r, d->last_id, sizeof(d->last_id));
        d->event_now = cw_snap_get_i64(&r);
        d->clock_day = cw_snap_get_i64(&r);
        for (int k = 0; k < 3; k++) cw_snap_get_str(&r, d->open_periods[k], sizeof(d->open_periods[k]));
        d->events = cw_snap_get_u64(&r);
        d->duplicates = cw_snap_get_u64(&r);
        d->dead_lettered = cw_snap_get_u64(&r);
        d->read_total = cw_snap_get_u64(&r);
        d->after_close = cw_snap_get_u64(&r);
        d->stream_base = cw_snap_get_i64(&r);
        d->base_known = cw_snap_get_u8(&r);
        ok = load_dead_letters(d, &r) == 0 && cw_cases_load(d->cases, &r) == 0 && cw_ind_load(d->ind, &r) == 0 &&
             cw_rules_load(d->rules, &r) == 0 && cw_sink_load(d->sink, &r) == 0 && !r.bad && r.p == r.end;
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
    snprintf(d->reconcile_from, sizeof(d->reconcile_from), "%s", pos[0] ? pos : "0-0");
    CW_LOG(CW_LOG_NOTICE, "snapshot", "loaded %s (%zu bytes) in %.0f ms: %zu open cases, resuming after %s",
           d->snap_path, len, (cw_mono_s() - t0) * 1000, cw_cases_open(d->cases), d->last_id);
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
    if (ok) {
        d->snapshot_at = cw_wall_ms();
        if (d->snap_failing) {
            CW_LOG(CW_LOG_NOTICE, "snapshot", "snapshots are written again");
            char msg[700];
            snprintf(msg, sizeof(msg), "casewatchd %s 状态快照 %s 已恢复写入，快照失败预警解除", d->cfg->instance,
                     d->snap_path);
            cw_rules_system(d->rules, "system.snapshot", "write", 0, "red", "快照失败", msg, cw_wall_ms(), on_alert, d);
        }
        d->snap_failing = 0;
        CW_LOG(CW_LOG_DEBUG, "snapshot", "written in %llu ms (fork held the loop %.1f ms)",
               (unsigned long long)(uv_now(&d->loop) - d->snap_started), d->snap_fork_ms);
    } else if (!d->snap_failing++) {
        CW_LOG(CW_LOG_ERR, "snapshot", "writing %s failed; the last good snapshot stays; retrying", d->snap_path);
        char msg[700];
        snprintf(msg, sizeof(msg), "casewatchd %s 无法写入状态快照 %s（磁盘已满或目录不可写），崩溃后将从上一个快照恢复；正在重试",
                 d->cfg->instance, d->snap_path);
        cw_rules_system(d->rules, "system.snapshot", "write", 1, "red", "快照失败", msg, cw_wall_ms(), on_alert, d);
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

/* One alert state subscribers saw (or will see) becomes the known state. */
static void reconcile_json(const char *json, void *data) {
    daemon_ctx *d = data;
    json_t *a = json_loads(json, 0, NULL);
    const char *id = json_string_value(json_object_get(a, "id"));
    const char *st = json_string_value(json_object_get(a, "state"));
    /* [firing] an "acknowledged" entry (casewatch ack) changes no state */
    if (id && st && (strcmp(st, "firing") == 0 || strcmp(st, "resolved") == 0))
        cw_rules_reconcile(d->rules, id, strcmp(st, "firing") == 0);
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
    if (cw_ind_touch_all(d->ind) < 0) CW_LOG(CW_LOG_ERR, "daemon", "out of memory marking hashes for re-evaluation");
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
    } else {
        /* hash writes handed out before the writer dropped may be lost;
         * write everything again (idempotent HSETs) */
        if (d->writer_was_ready && cw_ind_touch_all(d->ind) < 0)
            CW_LOG(CW_LOG_ERR, "daemon", "out of memory marking indicator hashes for rewrite");
        d->writer_was_ready = 1;
        cw_sink_resync(d->sink); /* [firing] the firing hash is rewritten before more alerts */
        if (!d->stream_checked) ask_stream_size(d);
        reconcile_more(d);
        send_alerts(d);
        send_dead_letters(d);
    }
}

#define DRAIN_MS 4000 /* how long shutdown waits for Redis to acknowledge */

/* Shutdown, second half: once every write is acknowledged (or the writer
 * is gone, or DRAIN_MS passed), close the writer and every handle. */
static void on_drain_timer(uv_timer_t *t) {
    daemon_ctx *d = t->data;
    flush(d);
    int ready = cw_conn_is_ready(d->writer);
    int idle = !cw_conn_in_flight(d->writer) && !cw_sink_pending(d->sink) && !d->dl_head &&
               !cw_ind_flush_pending(d->ind);
    if (ready && !idle && uv_now(&d->loop) - d->stop_started < DRAIN_MS) return;
    if (!idle)
        CW_LOG(CW_LOG_WARNING, "daemon", "stopping with %zu alerts and %s dead letters not acknowledged",
               cw_sink_pending(d->sink), d->dl_head ? "some" : "no");
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
    cw_conn_close(d->writer, NULL, NULL);
    d->writer = NULL;
    uv_close((uv_handle_t *)&d->sigterm, NULL);
    uv_close((uv_handle_t *)&d->sigint, NULL);
    uv_close((uv_handle_t *)&d->sighup, NULL);
    uv_close((uv_handle_t *)&d->flush_timer, NULL);
    uv_close((uv_handle_t *)&d->flush_more, NULL);
    uv_close((uv_handle_t *)&d->apply_more, NULL);
    uv_close((uv_handle_t *)&d->stall_timer, NULL);
    if (d->watchdog_on) uv_close((uv_handle_t *)&d->watchdog_timer, NULL);
}

/* Shutdown, first half: stop reading, write what is pending. */
static void begin_shutdown(daemon_ctx *d) {
    if (d->stopping) return;
    d->stopping = 1;
    cw_notify_stopping();
    cw_conn_close(d->reader, NULL, NULL);
    d->reader = NULL;
    flush(d);
    if (cw_conn_is_ready(d->writer)) write_health(d);
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
    uint64_t n = d->events - d->replay_events0;
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
    if (d->stall_last_ns) {
        double late = (double)(now - d->stall_last_ns) / 1e6 - 10.0;
        if (late > d->max_stall_ms) d->max_stall_ms = late;
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
    cw_rules *nr = nc ? cw_rules_new(nc, err, sizeof(err)) : NULL;
    if (!nr) {
        CW_LOG(CW_LOG_ERR, "config", "SIGHUP: new configuration rejected, keeping the running one: %s", err);
        cw_config_free(nc);
        cw_notify_ready();
        return;
    }
    const cw_config *oc = d->cfg;
    if (strcmp(nc->redis_host, oc->redis_host) || nc->redis_port != oc->redis_port ||
        strcmp(nc->stream_key, oc->stream_key) || nc->utc_offset_min != oc->utc_offset_min ||
        strcmp(nc->ind_prefix, oc->ind_prefix) || strcmp(nc->alerts_channel, oc->alerts_channel))
        CW_LOG(CW_LOG_WARNING, "config", "SIGHUP: Redis, stream, prefix and time settings change only on restart");
    cw_rules_adopt(nr, d->rules, cw_wall_ms(), on_alert, d);
    cw_rules_free(d->rules);
    d->rules = nr;
    cw_clock_rules clocks;
    cw_rules_clocks(nr, &clocks);
    cw_cases_set_clocks(d->cases, &clocks);
    cw_log_level = nc->log_level;
    cw_config_free(d->rules_cfg);
    d->rules_cfg = nc; /* the rules point into it */
    /* judge every held period by the new rules at the next flush */
    if (cw_ind_touch_all(d->ind) < 0) CW_LOG(CW_LOG_ERR, "daemon", "out of memory marking hashes for re-evaluation");
    CW_LOG(CW_LOG_NOTICE, "config", "SIGHUP: configuration reloaded, %zu rules", cw_rules_count(nr));
    cw_notify_ready();
}

/* Frees the state (not the connections or handles). */
static void free_state(daemon_ctx *d) {
    cw_resp_destroy(&d->cmd);
    while (d->dl_head) {
        dead_letter *n = d->dl_head->next;
        dead_letter_free(d->dl_head);
        d->dl_head = n;
    }
    cw_sink_free(d->sink);
    cw_ind_free(d->ind);
    cw_cases_free(d->cases);
    cw_rules_free(d->rules);
    cw_config_free(d->rules_cfg);
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
    d.rules = cw_rules_new(cfg, err, sizeof(err));
    if (!d.rules) {
        CW_LOG(CW_LOG_ERR, "config", "%s", err);
        return fail_early(&d, 1);
    }
    if (!cw_rules_count(d.rules)) CW_LOG(CW_LOG_WARNING, "config", "no [rule ...] sections: indicators only, no alerts");
    cw_clock_rules clocks;
    cw_rules_clocks(d.rules, &clocks);
    cw_case_listener listener = {on_light, on_check, &d};
    d.sink = cw_sink_new(cfg);
    d.cases = cw_cases_new((size_t)cfg->closed_window, cfg->utc_offset_min, &clocks, &listener);
    d.ind = cw_ind_new(cfg->utc_offset_min, cfg->rolling_days, cfg->keep_quarters);
    if (!d.cases || !d.ind || !d.sink) {
        CW_LOG(CW_LOG_ERR, "daemon", "out of memory");
        return fail_early(&d, 1);
    }
    if (opts && opts->rebuild) {
        CW_LOG(CW_LOG_NOTICE, "snapshot", "--rebuild: ignoring %s, replaying %s from its start", d.snap_path,
               cfg->stream_key);
    } else if (snapshot_load(&d) < 0) {
        return fail_early(&d, 2); /* said why */
    }
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
    if (rc != 0) CW_LOG(CW_LOG_WARNING, "daemon", "event loop closed with handles still open: %s", uv_strerror(rc));
    if (cw_sink_pending(d.sink))
        CW_LOG(CW_LOG_WARNING, "alert", "%zu alerts not acknowledged by Redis at exit", cw_sink_pending(d.sink));
    free_state(&d);
    CW_LOG(CW_LOG_INFO, "daemon", "stopped after %llu events, %llu duplicates, %llu dead-lettered",
           (unsigned long long)d.events, (unsigned long long)d.duplicates, (unsigned long long)d.dead_lettered);
    return 0;
}
