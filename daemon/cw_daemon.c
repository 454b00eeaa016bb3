/* casewatchd's I/O shell around the engine. Read top to bottom, this file
 * is the data path:
 *
 *   read      XREAD from the last entry applied (reader connection; in
 *             --replay on a worker instead, cw_replay_read)
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
#include "cw_daemon_int.h"

static void flush(daemon_ctx *d);
static void replay_done(daemon_ctx *d);
static void send_dead(daemon_ctx *d);

/* Compares stream entry ids "ms-seq". */
static int id_cmp(const char *a, const char *b) {
    unsigned long long am = 0, as = 0, bm = 0, bs = 0;
    sscanf(a, "%llu-%llu", &am, &as);
    sscanf(b, "%llu-%llu", &bm, &bs);
    return am != bm ? (am < bm ? -1 : 1) : as != bs ? (as < bs ? -1 : 1) : 0;
}

/* What the engine raises goes to the sink, queued until Redis has it. */
void cw__on_alert(const cw_alert *a, void *data) {
    daemon_ctx *d = data;
    if (cw_sink_put(d->sink, a, cw_wall_ms()) < 0)
        CW_LOG(CW_LOG_ERR, "alert", "out of memory queueing alert %s", a->id);
}

/* A deadline light before it is worded: a replay holds it raw and words
 * only its net change (PROTOCOL.md §3b); otherwise 0, worded as usual. */
int cw__hold_light(const cw_light *l, const cw_rules *rules, void *data) {
    daemon_ctx *d = data;
    return cw_sink_replaying(d->sink) ? cw_sink_hold_light(d->sink, l, rules, cw_wall_ms()) : 0;
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
    switch (cw_engine_apply_keys(d->engine, &e->ev, &e->keys, why, sizeof(why))) {
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
    cw__send_alerts(d);
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
    cw__send_alerts(d);
    send_dead(d);
    if (rb->hold) {
        d->holding = 1;
        flush(d); /* reads again once it is out */
    }
    cw__read_more(d);
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
            if (rb->done + CW_ENGINE_AHEAD < n) cw_engine_ahead(d->engine, &cw_batch_at(rb->b, rb->done + CW_ENGINE_AHEAD)->keys);
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

/* A reply read into rb joins the batches read ahead, in stream order.
 * stream: the reply held the stream, with n entries, the last one's id
 * last (else it held none). The next read starts at once when this one
 * was full: Redis prepares it while this one is decoded and applied. */
static void batch_received(daemon_ctx *d, read_batch *rb, int stream, size_t n, const char *last) {
    if (stream) {
        rb->n = n;
        if (last) snprintf(d->read_pos, sizeof(d->read_pos), "%s", last);
        int more = rb->n == (size_t)d->cfg->stream_batch && !(d->replay && id_cmp(last, d->replay_until) >= 0);
        /* a replay going on after this batch, at a flush point: no read
         * past it until it is applied and its flush is out (see flush) */
        rb->hold = d->replay && more && d->read_ahead + rb->n >= d->flush_at;
        d->read_ahead += rb->n;
        d->received += rb->n;
        if (d->replay && !more) d->read_all = 1;
        if (rb->hold) d->reads_held = 1;
    }
    if (d->ahead_tail) d->ahead_tail->next = rb;
    else d->ahead = rb;
    d->ahead_tail = rb;
    d->nahead++;
    if (rb->n == (size_t)d->cfg->stream_batch) cw__read_more(d);
}

static void on_read_check(cw_conn *c, redisReply *r, void *privdata);

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
    int stream = r->type == REDIS_REPLY_ARRAY && r->elements == 1;
    const redisReply *entries = stream ? r->element[0]->element[1] : NULL;
    if (stream && cw_batch_fill(rb->b, entries, cw_wall_ms()) < 0) { /* the wall clock event times are checked against */
        rb->next = d->spare_batches;
        d->spare_batches = rb;
        CW_LOG(CW_LOG_ERR, "stream", "out of memory copying a batch of %s; reading it again", d->cfg->stream_key);
        cw_conn_drop(d->reader, "out of memory");
        return;
    }
    size_t n = stream ? entries->elements : 0;
    batch_received(d, rb, stream, n, n ? entries->element[n - 1]->element[0]->str : NULL);
    if (cw_batch_size(rb->b)) {
        uv_queue_work(&d->loop, &rb->work, decode_work, decode_done);
    } else {
        rb->decoded = 1;
        apply_ready(d);
    }
}

/* --replay reads off the loop (cw_replay_read): the stream check and the
 * XREAD on a worker, the batch parsed and decoded there; here it comes
 * back ready to apply, as a decoded batch of on_read does. A failed read
 * is read again from read_pos once the reader may (on_replay_ready). */
static void on_replay_read(cw_batch *b, const cw_replay_read_result *res, void *data) {
    (void)b; /* rb->b */
    read_batch *rb = data;
    daemon_ctx *d = rb->d;
    d->reading = 0;
    if (res->check) on_read_check(NULL, (redisReply *)res->check, d);
    if (!res->ok || d->stopping) {
        if (res->refused) CW_LOG(CW_LOG_ERR, "stream", "XREAD refused: %s", res->why);
        if (res->nomem)
            CW_LOG(CW_LOG_ERR, "stream", "out of memory copying a batch of %s; reading it again", d->cfg->stream_key);
        rb->next = d->spare_batches;
        d->spare_batches = rb;
        return;
    }
    batch_received(d, rb, res->stream, res->n, res->last); /* the next read starts */
    if (cw_batch_size(rb->b)) {
        uv_queue_work(&d->loop, &rb->work, decode_work, decode_done); /* meanwhile */
    } else {
        rb->decoded = 1;
        apply_ready(d);
    }
}

static void replay_read(daemon_ctx *d) {
    read_batch *rb = batch_take(d);
    if (!rb) { /* the flush timer tries again */
        CW_LOG(CW_LOG_ERR, "stream", "out of memory for a batch of %s; reading it again", d->cfg->stream_key);
        return;
    }
    if (cw_replay_read_start(d->rread, d->read_pos, rb->b, on_replay_read, rb) < 0) {
        rb->next = d->spare_batches;
        d->spare_batches = rb;
        return;
    }
    d->reading = 1;
}

static void on_replay_ready(void *data) {
    daemon_ctx *d = data;
    CW_LOG(CW_LOG_INFO, "stream", "reading %s after %s", d->cfg->stream_key, d->read_pos[0] ? d->read_pos : d->last_id);
    cw__read_more(d);
}

/* Reading pauses while the writer is this far behind (Redis refusing or
 * slow): what waits for it stays bounded. Resumes at half. */
#define PAUSE_ALERTS 50000
#define PAUSE_DEAD 10000
#define PAUSE_DEAD_BYTES (64u << 20)

static int writer_far_behind(daemon_ctx *d) {
    size_t div = d->read_paused ? 2 : 1;
    return cw_sink_pending(d->sink) >= PAUSE_ALERTS / div || cw_dead_pending(d->dead) >= PAUSE_DEAD / div ||
           cw_dead_pending_bytes(d->dead) >= PAUSE_DEAD_BYTES / div;
}

/* What the stream is right before each read, in one round trip with it
 * (the reply is small: no entry is copied): {length, entries-added,
 * first id, last-generated id}, or {-1} when there is no stream. */
const char cw_daemon_stream_check[] =
    "local ok, i = pcall(redis.call, 'XINFO', 'STREAM', KEYS[1]) "
    "if not ok then return {-1} end "
    "local r = {0, -1, '', ''} "
    "for k = 1, #i, 2 do "
    "if i[k] == 'length' then r[1] = i[k + 1] "
    "elseif i[k] == 'entries-added' then r[2] = i[k + 1] "
    "elseif i[k] == 'first-entry' then if i[k + 1] then r[3] = i[k + 1][1] end "
    "elseif i[k] == 'last-generated-id' then r[4] = i[k + 1] end "
    "end "
    "return r";

void cw__read_more(daemon_ctx *d) {
    /* the first read waits for the stream's size (see on_xinfo) and the lease */
    if (d->stopping || d->reading || d->reads_held || d->read_all || d->nahead >= AHEAD || d->reconciling ||
        !d->stream_checked || !d->lease_held || !(d->rread ? cw_replay_read_idle(d->rread) : cw_conn_is_ready(d->reader)))
        return;
    if (writer_far_behind(d)) {
        if (!d->read_paused) /* a catch-up outrunning the writer is normal; Redis refusing is not */
            CW_LOG(d->wstate == WRITES_OK ? CW_LOG_INFO : CW_LOG_WARNING, "stream",
                   "reading paused: %zu alerts and %zu dead letters (%.1f MB) wait for Redis; reading resumes when "
                   "half of them are written",
                   cw_sink_pending(d->sink), cw_dead_pending(d->dead), (double)cw_dead_pending_bytes(d->dead) / 1e6);
        d->read_paused = 1;
        return;
    }
    if (d->read_paused) CW_LOG(CW_LOG_INFO, "stream", "reading resumed");
    d->read_paused = 0;
    if (!d->read_pos[0]) snprintf(d->read_pos, sizeof(d->read_pos), "%s", d->last_id);
    if (d->rread) {
        replay_read(d);
        return;
    }
    char count[16], block[16];
    snprintf(count, sizeof(count), "%d", d->cfg->stream_batch);
    snprintf(block, sizeof(block), "%d", d->cfg->stream_block_ms);
    const char *argv[] = {"XREAD", "COUNT", count, "BLOCK", block, "STREAMS", d->cfg->stream_key, d->read_pos};
    size_t lens[8];
    for (int i = 0; i < 8; i++) lens[i] = strlen(argv[i]);
    if (d->replay) { /* a backfill never waits for new entries */
        memmove(argv + 3, argv + 5, 3 * sizeof(argv[0]));
        memmove(lens + 3, lens + 5, 3 * sizeof(lens[0]));
    }
    int argc = d->replay ? 6 : 8;
    const char *cv[] = {"EVAL", cw_daemon_stream_check, "1", d->cfg->stream_key};
    size_t cl[] = {4, strlen(cw_daemon_stream_check), 1, strlen(d->cfg->stream_key)};
    /* the check's deadline is the read's: a loop held by a big batch must
     * not take its reply, waiting in the socket, for silence */
    uint64_t extra = d->replay ? 0 : (uint64_t)d->cfg->stream_block_ms;
    if (cw_conn_command(d->reader, 4, cv, cl, extra, on_read_check, d) < 0) return;
    if (cw_conn_command(d->reader, argc, argv, lens, extra, on_read, d) == 0) d->reading = 1;
}

/* ---- engine -> write: hash rows, alerts, dead letters -------------------- */

/* ---- Writes Redis refuses ----------------------------------------------
 *
 * Redis may refuse a write it receives (OOM under maxmemory with
 * noeviction, READONLY after a failover, WRONGTYPE, MISCONF): the hash it
 * carried must be written again, and the writes after it must not
 * overtake it. A hash row is the whole present value of its (scope,
 * period), so "again, in order" is: every row judged again and rewritten
 * once Redis takes writes (cw_engine_touch_all), which supersedes
 * whatever was refused. An episode:
 *
 *   WRITES_OK --refusal--> WRITES_REFUSED: nothing is written but a probe
 *        ^                  (the health HSET) after probe_ms, doubling from
 *        |                  PROBE_FIRST to PROBE_MAX while it is refused
 *        |                        | the probe lands
 *        |                        v
 *        +--marker lands-- WRITES_RETRYING: every row rewritten (touch_all);
 *                           a refusal goes back to REFUSED; once the last
 *                           row is sent, a health HSET (the marker) whose
 *                           reply comes after every row's ends it
 *
 * It is said once (a log line and the health hash's writes_refused_since)
 * when it begins and once when it ends. A lost write (a timeout drops the
 * connection) is the writer's READY path: everything is written again. */
#define PROBE_FIRST 250
#define PROBE_MAX 8000

static void write_health(daemon_ctx *d, int stopped);
static void flush_soon(daemon_ctx *d);

/* Whether anything but the probe and the lease may be written now. */
static int can_write(const daemon_ctx *d) {
    return d->lease_held && d->wstate != WRITES_REFUSED && cw_conn_is_ready(d->writer);
}

/* WRONGTYPE refuses one hash (its key holds something else), not every
 * write: that HSET alone is parked and sent again, from PROBE_FIRST to
 * every PROBE_MAX, until the key is freed, while every other write goes
 * on. Each row's HSET carries a record of its key and bytes until Redis
 * answers; a newer write of the key supersedes a parked one (a row is the
 * whole present value), and a parked one older than a write that landed
 * is dropped. */
typedef struct row_rec {
    daemon_ctx *d;
    uint64_t gen;  /* d->row_gen when sent */
    int retry;     /* sent again from the parked ones (counted in d->parked_out) */
    size_t keylen; /* data: the key, then the HSET in the wire format */
    size_t len;
    char data[];
} row_rec;

static void on_row_reply(cw_conn *c, redisReply *r, void *privdata);

/* Drops every parked row (a rewrite of every hash supersedes them). */
static void parked_clear(daemon_ctx *d) {
    size_t pos = 0;
    void *v;
    while (cw_map_next(d->parked, &pos, NULL, NULL, &v)) free(v);
    cw_map_free(d->parked);
    d->parked = cw_map_new();
}

/* The end of an episode: no write refused, none parked. */
static void writes_maybe_landed(daemon_ctx *d) {
    if (!d->refused_since || d->wstate != WRITES_OK || d->parked_out || (d->parked && cw_map_size(d->parked)))
        return;
    CW_LOG(CW_LOG_NOTICE, "write", "writes land again after %.1f s (%llu writes were refused and written again)",
           (double)(cw_wall_ms() - d->refused_since) / 1000.0, (unsigned long long)d->refused_count);
    d->refused_since = 0;
    d->refused_count = 0;
}

static void on_park(uv_timer_t *t) {
    daemon_ctx *d = t->data;
    size_t n = cw_map_size(d->parked);
    if (d->stopping || !n) return;
    if (!can_write(d)) {
        uv_timer_start(&d->park_timer, on_park, d->park_ms, 0);
        return;
    }
    /* each leaves the map while in flight; its reply parks it again */
    row_rec **all = malloc(n * sizeof(*all));
    if (!all) {
        uv_timer_start(&d->park_timer, on_park, d->park_ms, 0);
        return;
    }
    size_t pos = 0, k = 0;
    void *v;
    while (k < n && cw_map_next(d->parked, &pos, NULL, NULL, &v)) all[k++] = v;
    d->park_ms = d->park_ms * 2 > PROBE_MAX ? PROBE_MAX : d->park_ms * 2;
    for (size_t i = 0; i < k; i++) {
        row_rec *rec = all[i];
        cw_resp cmd = {.out = {.buf = rec->data + rec->keylen, .len = rec->len, .cap = rec->len, .oom = 0}};
        cw_map_del(d->parked, rec->data, rec->keylen);
        if (cw_conn_send(d->writer, &cmd, 0, on_row_reply, rec) == 0) {
            rec->retry = 1;
            d->parked_out++;
        } else if (cw_map_put_borrowed(d->parked, rec->data, rec->keylen, rec) < 0) {
            free(rec);
        }
    }
    free(all);
    if (cw_map_size(d->parked)) uv_timer_start(&d->park_timer, on_park, d->park_ms, 0);
}

/* One hash refused by its key (WRONGTYPE): parked, said once an episode. */
static void row_park(daemon_ctx *d, row_rec *rec, const char *why) {
    row_rec *old = cw_map_get(d->parked, rec->data, rec->keylen);
    if (old && old->gen > rec->gen) {
        free(rec);
        return;
    }
    if (old) {
        cw_map_del(d->parked, rec->data, rec->keylen);
        free(old);
    }
    d->refused_count++;
    if (cw_map_put_borrowed(d->parked, rec->data, rec->keylen, rec) < 0) {
        free(rec);
        d->rows_dropped = 1; /* written again with everything at the next READY */
        return;
    }
    if (!d->refused_since) {
        d->refused_since = cw_wall_ms();
        d->park_ms = PROBE_FIRST;
        CW_LOG(CW_LOG_ERR, "write",
               "Redis refuses the hash %.*s (%s): it is written again alone, from %d ms to every %d ms, until its key "
               "is freed; every other write goes on",
               (int)rec->keylen, rec->data, why, PROBE_FIRST, PROBE_MAX);
    }
    if (!uv_is_active((uv_handle_t *)&d->park_timer) && !d->stopping)
        uv_timer_start(&d->park_timer, on_park, d->park_ms, 0);
}


static void on_probe(uv_timer_t *t) {
    daemon_ctx *d = t->data;
    if (d->stopping) return;
    if (d->lease_held && cw_conn_is_ready(d->writer)) write_health(d, 0);
    else uv_timer_start(&d->probe_timer, on_probe, d->probe_ms, 0); /* READY brings the lease, then a probe */
}

/* A write was refused (why: Redis's error). From OK or RETRYING: wait
 * probe_ms, then probe. Row replies in flight that come back refused
 * while already REFUSED change nothing; a refused probe (probe = 1)
 * doubles the wait. */
static void writes_refused(daemon_ctx *d, const char *why, int probe) {
    d->refused_count++;
    d->rows_dropped = 1;
    if (d->wstate == WRITES_REFUSED && !probe) return;
    if (d->wstate == WRITES_OK) {
        if (!d->refused_since) d->refused_since = cw_wall_ms(); /* or since a hash was parked */
        d->probe_ms = PROBE_FIRST;
        CW_LOG(CW_LOG_ERR, "write",
               "Redis refuses writes (%s): indicator hashes, alerts and dead letters wait, and are written again in "
               "order once it takes them (retrying from %d ms to every %d ms)",
               why, PROBE_FIRST, PROBE_MAX);
    } else {
        d->probe_ms = d->probe_ms * 2 > PROBE_MAX ? PROBE_MAX : d->probe_ms * 2;
    }
    d->wstate = WRITES_REFUSED;
    d->marker_at = 0;
    if (!d->stopping) uv_timer_start(&d->probe_timer, on_probe, d->probe_ms, 0);
}

/* A health HSET was answered (r NULL: lost with the connection). */
static void on_health_reply(cw_conn *c, redisReply *r, void *privdata) {
    (void)c;
    daemon_ctx *d = privdata;
    d->health_acked++;
    if (!r) return;
    if (r->type == REDIS_REPLY_ERROR) {
        writes_refused(d, r->str, d->wstate == WRITES_REFUSED);
        return;
    }
    if (d->wstate == WRITES_REFUSED) { /* the probe landed: rewrite every row */
        d->wstate = WRITES_RETRYING;
        d->marker_at = 0;
        cw_engine_touch_all(d->engine);
        parked_clear(d);
        d->rows_dropped = 0;
        CW_LOG(CW_LOG_INFO, "write", "Redis takes writes again: rewriting every indicator hash");
        flush_soon(d);
    } else if (d->wstate == WRITES_RETRYING && d->marker_at && d->health_acked >= d->marker_at) {
        d->wstate = WRITES_OK;
        d->marker_at = 0;
        writes_maybe_landed(d);
    }
}

/* A row's HSET answered: landed (a parked older one of its key goes),
 * refused by its key (parked), or refused by Redis (an episode). Lost
 * with the connection: the READY path writes everything again. */
static void on_row_reply(cw_conn *c, redisReply *r, void *privdata) {
    (void)c;
    row_rec *rec = privdata;
    daemon_ctx *d = rec->d;
    if (rec->retry) {
        rec->retry = 0;
        d->parked_out--;
    }
    if (r && r->type == REDIS_REPLY_ERROR) {
        if (strncmp(r->str, "WRONGTYPE", 9) == 0 && d->parked) {
            row_park(d, rec, r->str);
            return;
        }
        writes_refused(d, r->str, 0);
    } else if (r && d->parked) {
        row_rec *old = cw_map_get(d->parked, rec->data, rec->keylen);
        if (old && old->gen < rec->gen) {
            cw_map_del(d->parked, rec->data, rec->keylen);
            free(old);
        }
        writes_maybe_landed(d);
    }
    free(rec);
}

static void on_write_reply(cw_conn *c, redisReply *r, void *privdata) {
    (void)c;
    if (r && r->type == REDIS_REPLY_ERROR) writes_refused(privdata, r->str, 0);
}

/* A row's HDEL: refused by its key (WRONGTYPE), the HSET after it is
 * parked, and written alone once the key is freed (no field is left to
 * delete then). */
static void on_hdel_reply(cw_conn *c, redisReply *r, void *privdata) {
    if (r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "WRONGTYPE", 9) == 0) return;
    on_write_reply(c, r, privdata);
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
        cw_conn_send(d->writer, cmd, 0, on_hdel_reply, d);
    }
    cw_resp_begin(cmd, 2 + 2 * (int)row->n);
    cw_resp_arg(cmd, "HSET", 4);
    cw_resp_arg(cmd, key, (size_t)kl);
    for (size_t i = 0; i < row->n; i++) {
        cw_resp_str(cmd, row->fields[i]);
        cw_resp_str(cmd, row->values[i]);
    }
    /* this write supersedes a parked one of the key (and stands for it
     * until answered: the episode is not over before) */
    row_rec *old = d->parked ? cw_map_del(d->parked, key, (size_t)kl) : NULL;
    int was_parked = old != NULL;
    free(old);
    row_rec *rec = cmd->out.oom ? NULL : malloc(sizeof(*rec) + (size_t)kl + cmd->out.len);
    if (!rec) { /* out of memory: a refusal is then only logged */
        cw_conn_send(d->writer, cmd, 0, on_write_reply, d);
        return;
    }
    rec->d = d;
    rec->gen = ++d->row_gen;
    rec->retry = 0;
    rec->keylen = (size_t)kl;
    rec->len = cmd->out.len;
    memcpy(rec->data, key, (size_t)kl);
    memcpy(rec->data + kl, cmd->out.buf, cmd->out.len);
    if (cw_conn_send(d->writer, cmd, 0, on_row_reply, rec) < 0) {
        free(rec);
    } else if (was_parked) {
        rec->retry = 1;
        d->parked_out++;
    }
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

/* Sends queued dead letters (pipelined, see cw_dead_send). */
static void send_dead(daemon_ctx *d) {
    if (can_write(d)) cw_dead_send(d->dead, d->writer);
}

/* Sends queued alerts while the writer has room; the rest follows. Loop
 * thread only; not while the alert log is read back (on_reconcile calls
 * it when that ends). */
void cw__send_alerts(daemon_ctx *d) {
    if (d->reconciling || !can_write(d)) return; /* subscribers' last word is being read back */
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
    int up = can_write(d);
    /* backpressure: a slice only while Redis keeps up with the last ones */
    int room = !up || writer_has_room(d);
    if (judge && room) {
        if (!up && cw_engine_judge_pending(d->engine)) d->rows_dropped = 1;
        cw_engine_judge(d->engine, up ? write_row : NULL, d, FLUSH_SLICE);
    }
    int pending = cw_engine_judge_pending(d->engine);
    if (judge && pending) write_more_later(d, room ? 0 : 2);
    /* a rewrite after refusals is out: the marker ends the episode */
    if (up && d->wstate == WRITES_RETRYING && !pending && !d->marker_at) {
        write_health(d, 0);
        d->marker_at = d->health_sent;
    }
    cw__send_alerts(d);
    send_dead(d);
    if (d->holding && !pending) {
        d->holding = d->reads_held = 0;
        d->flush_at = d->read_ahead + (uint64_t)d->cfg->flush_entries;
        cw__read_more(d);
    }
}

static void on_flush_more(uv_timer_t *t) {
    flush(t->data);
}

static void flush_soon(daemon_ctx *d) {
    write_more_later(d, 0);
}

/* ---- The stream's size: lag, and entries trimmed before we read them ---- */

/* Entries after our position deleted before we read them (XTRIM, MAXLEN,
 * MINID, a rename): checked right before every read
 * (cw_daemon_stream_check, in the same round trip), so no hole is skipped
 * unseen, whenever it happens.
 * Entries added to the stream up to our position are exactly
 * stream_base + received (those before our first read, those lost, those
 * we received); when the stream's first entry is past our position (or it
 * is empty), everything it holds is unread, so added - length - that many
 * were deleted unread. New entries add to both sides, so a concurrent
 * XADD cannot fake a loss. Ids are not dense: comparing ids alone cannot
 * tell a hole. */
static void report_lost(daemon_ctx *d, long long lost, const char *after) {
    char msg[500];
    snprintf(msg, sizeof(msg), "事件流 %s 在 casewatchd 读取之前被裁剪，%lld 条事件未经处理（%s 之后），指标可能偏少",
             d->cfg->stream_key, lost, after);
    CW_LOG(CW_LOG_ERR, "stream", "%s was trimmed past our position: %lld entries after %s were never read",
           d->cfg->stream_key, lost, after);
    /* a loss while the last one is still firing is news too */
    cw_engine_system_alert(d->engine, "system.stream_trimmed", "stream", 0, "red", "数据丢失预警",
                           "新的数据丢失预警取代本条", cw_wall_ms());
    cw_engine_system_alert(d->engine, "system.stream_trimmed", "stream", 1, "red", "数据丢失预警", msg, cw_wall_ms());
    d->stream_base += lost; /* they will never be read: not lag */
    d->trimmed += (uint64_t)lost;
}

/* The stream is gone, or is not the one we read (fewer entries ever
 * added than we have seen: Redis restarted empty, or restored from an
 * older copy). Said once; every indicator hash is written again (they
 * went with the rest); reading goes on after our position. */
static void stream_reset(daemon_ctx *d, const char *what, long long added, long long length, int all_unseen) {
    CW_LOG(CW_LOG_ERR, "stream",
           "%s %s (Redis restarted empty, or restored from an older copy?): %llu entries were read up to %s; "
           "reading goes on after it, and every indicator hash is written again",
           d->cfg->stream_key, what, (unsigned long long)d->received, d->read_pos[0] ? d->read_pos : d->last_id);
    char msg[600];
    snprintf(msg, sizeof(msg),
             "事件流 %s %s（Redis 重启后数据为空，或从旧备份恢复），casewatchd 已处理至 %s；指标已重写，重启期间写入的事件可能丢失",
             d->cfg->stream_key, added < 0 ? "已不存在" : "被重建", d->read_pos[0] ? d->read_pos : d->last_id);
    cw_engine_system_alert(d->engine, "system.stream_reset", "stream", 0, "red", "数据丢失预警", "新的数据丢失预警取代本条",
                           cw_wall_ms());
    cw_engine_system_alert(d->engine, "system.stream_reset", "stream", 1, "red", "数据丢失预警", msg, cw_wall_ms());
    cw_engine_touch_all(d->engine);
    /* what the new stream holds counts from here */
    d->stream_base = (all_unseen ? added - length : added) - (int64_t)d->received;
    if (added < 0) d->stream_base = -(int64_t)d->received;
    d->stream_gone = added < 0;
}

static void on_read_check(cw_conn *c, redisReply *r, void *privdata) {
    (void)c;
    daemon_ctx *d = privdata;
    if (!r || d->stopping || !d->base_known || r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
        r->element[0]->type != REDIS_REPLY_INTEGER)
        return;
    const char *pos = d->read_pos[0] ? d->read_pos : d->last_id;
    long long seen = d->stream_base + (long long)d->received;
    if (r->element[0]->integer < 0) { /* no stream */
        if (seen > 0 && !d->stream_gone) stream_reset(d, "is gone", -1, 0, 1);
        return;
    }
    if (r->elements < 4 || r->element[1]->type != REDIS_REPLY_INTEGER || r->element[2]->type != REDIS_REPLY_STRING ||
        r->element[3]->type != REDIS_REPLY_STRING)
        return;
    long long length = r->element[0]->integer, added = r->element[1]->integer;
    const char *first = r->element[2]->str, *last = r->element[3]->str;
    if (added < 0) return; /* Redis before 7.0: no entries-added (the writer's XINFO check covers it) */
    int all_unseen = !first[0] || id_cmp(first, pos) > 0;
    if (added < seen || (seen > 0 && id_cmp(last, pos) < 0)) {
        stream_reset(d, "was recreated", added, length, all_unseen);
        return;
    }
    d->stream_gone = 0;
    if (all_unseen && added - length > seen) report_lost(d, added - length - seen, pos);
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
        cw__read_more(d);
        return;
    }
    if (!r || r->type != REDIS_REPLY_ARRAY) return;
    long long length = -1, added = -1;
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        const redisReply *k = r->element[i], *v = r->element[i + 1];
        if (k->type != REDIS_REPLY_STRING) continue;
        if (v->type == REDIS_REPLY_INTEGER && strcmp(k->str, "length") == 0) length = v->integer;
        if (v->type == REDIS_REPLY_INTEGER && strcmp(k->str, "entries-added") == 0) added = v->integer;
        if (v->type == REDIS_REPLY_STRING && strcmp(k->str, "last-generated-id") == 0 && !d->stream_checked)
            snprintf(d->replay_until, sizeof(d->replay_until), "%s", v->str);
    }
    if (added < 0) added = length; /* Redis before 7.0 */
    if (added < 0) return;
    if (!d->base_known) {
        /* trimmed before we ever read (asked before the first read) */
        d->stream_base = added - length - (int64_t)d->read_total;
        d->base_known = 1;
    }
    if (!d->stream_checked) {
        d->stream_checked = 1;
        if (d->replay) {
            CW_LOG(CW_LOG_NOTICE, "stream", "replaying %s from %s up to %s", d->cfg->stream_key, d->last_id,
                   d->replay_until);
            d->replay_started = cw_mono_s();
            d->replay_events0 = cw_engine_counts_of(d->engine)->events;
        }
        cw__read_more(d);
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
    char key[256];
    snprintf(key, sizeof(key), "%s:%s", d->cfg->health_prefix, d->cfg->instance);
    char v[CW_HEALTH_NFIELDS][40];
    const char *val[CW_HEALTH_NFIELDS];
    for (int i = 0; i < CW_HEALTH_NFIELDS; i++) val[i] = v[i];
    int64_t now = cw_wall_ms();
    val[CW_HEALTH_STATE] = stopped ? "stopped" : "running";
    snprintf(v[CW_HEALTH_PID], 40, "%ld", (long)getpid());
    val[CW_HEALTH_HOST] = d->host;
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
    snprintf(v[CW_HEALTH_WRITES_REFUSED_SINCE], 40, "%lld", (long long)d->refused_since);
    val[CW_HEALTH_READING_PAUSED] = d->read_paused ? "1" : "0";
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
    if (stopped) { /* then the lease goes: the reply to that ends the stop */
        if (cw_conn_command(d->writer, argc, argv, lens, 0, NULL, NULL) < 0 || cw__lease_release(d, on_final_health) < 0)
            d->final_health = 2;
        return;
    }
    if (cw_conn_command(d->writer, argc, argv, lens, 0, on_health_reply, d) == 0) d->health_sent++;
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


static void on_flush_timer(uv_timer_t *t) {
    daemon_ctx *d = t->data;
    flush(d);
    cw__snapshot_tick(d);
    progress_tick(d);
    cw_dead_tick(d->dead, cw_wall_ms());
    uint64_t now = uv_now(&d->loop);
    if (now - d->lease_asked >= LEASE_RENEW_MS) cw__lease_ask(d, NULL);
    if (now - d->last_health >= 1000 && can_write(d)) { /* while refused, the probe writes it */
        d->last_health = now;
        write_health(d, 0);
    }
    cw__read_more(d); /* reading paused for the writer resumes here */
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

/* ---- Life cycle --------------------------------------------------------- */

static void on_conn_state(cw_conn *c, int ready, void *data) {
    daemon_ctx *d = data;
    if (c == d->writer && !ready) d->lease_held = 0; /* renewed (or waited for) on READY */
    if (!ready) return;
    if (c == d->reader) {
        /* from the last entry received: the batches read ahead are still applied */
        CW_LOG(CW_LOG_INFO, "stream", "reading %s after %s", d->cfg->stream_key, d->read_pos[0] ? d->read_pos : d->last_id);
        cw__read_more(d);
        return;
    }
    /* nothing is written before the lease is held (see cw__on_lease) */
    cw__lease_ask(d, NULL);
}

/* The writer is READY and the lease held: hash writes handed out before
 * the writer dropped may be lost, and rows judged while it was down were
 * not written: write everything again (idempotent HSETs). */
void cw__writer_resumed(daemon_ctx *d) {
    if (d->writer_was_ready || d->rows_dropped) {
        cw_engine_touch_all(d->engine);
        parked_clear(d);
    }
    d->writer_was_ready = 1;
    d->rows_dropped = 0;
    cw_sink_resync(d->sink); /* the firing hash is rewritten whole before more alerts */
    if (!d->stream_checked) ask_stream_size(d);
    cw__reconcile_more(d);
    cw__send_alerts(d);
    send_dead(d);
    cw__read_more(d);
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
    uv_close((uv_handle_t *)&d->probe_timer, NULL);
    uv_close((uv_handle_t *)&d->park_timer, NULL);
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
        cw__send_alerts(d);
    }
    int ready = can_write(d);
    int idle = !cw_conn_in_flight(d->writer) && !cw_sink_pending(d->sink) && !cw_dead_pending(d->dead) &&
               !cw_engine_judge_pending(d->engine);
    if (ready && !idle && !late) return;
    if (!idle)
        CW_LOG(CW_LOG_WARNING, "daemon", "stopping with %zu alerts and %zu dead letters not acknowledged",
               cw_sink_pending(d->sink), cw_dead_pending(d->dead));
    /* the final snapshot, in this process: nothing changes any more */
    if (d->snap_child) { /* cancelled: the final snapshot is newer */
        d->snap_cancel = 1;
        kill(d->snap_child, SIGKILL);
        cw__snapshot_reap(d, 1);
    }
    char err[512];
    size_t size = 0;
    double t0 = cw_mono_s();
    if (!d->lease_ever || d->lease_lost) /* the holder's snapshot is not ours to overwrite */
        CW_LOG(CW_LOG_NOTICE, "snapshot", "no final snapshot: this daemon %s the write lease of instance %s",
               d->lease_ever ? "lost" : "never held", d->cfg->instance);
    else if (cw__snapshot_write(d, &size, err, sizeof(err)) < 0)
        CW_LOG(CW_LOG_ERR, "snapshot", "final snapshot: %s", err);
    else
        CW_LOG(CW_LOG_INFO, "snapshot", "final snapshot %s: %zu bytes in %.0f ms, after %s", d->snap_path, size,
               (cw_mono_s() - t0) * 1000, d->last_id);
    d->final_health = 1;
    d->final_sent = now;
    if (ready && d->lease_held) write_health(d, 1);
    else close_handles(d);
}

/* Shutdown, first half: stop reading, write what is pending. */
void cw__begin_shutdown(daemon_ctx *d) {
    if (d->stopping) return;
    d->stopping = 1;
    cw_notify_stopping();
    cw_conn_close(d->reader, NULL, NULL);
    d->reader = NULL;
    cw_replay_read_close(d->rread); /* a read in flight ends first (on_replay_read) */
    d->rread = NULL;
    flush(d);
    if (can_write(d)) write_health(d, 0);
    uv_timer_stop(&d->probe_timer);
    uv_timer_stop(&d->park_timer);
    d->stop_started = uv_now(&d->loop);
    uv_timer_stop(&d->flush_timer);
    uv_timer_start(&d->flush_timer, on_drain_timer, 10, 10);
}

static void on_signal(uv_signal_t *s, int signum) {
    daemon_ctx *d = s->data;
    if (d->stopping) return;
    CW_LOG(CW_LOG_NOTICE, "daemon", "%s received, shutting down", signum == SIGTERM ? "SIGTERM" : "SIGINT");
    cw__begin_shutdown(d);
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
    cw__begin_shutdown(d);
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
    cw__load_calendar(d, nc, "SIGHUP: "); /* a bad file keeps the calendar in use */
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
int cw__load_calendar(daemon_ctx *d, const cw_config *cfg, const char *when) {
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
    if (d->parked) {
        size_t pos = 0;
        void *v;
        while (cw_map_next(d->parked, &pos, NULL, NULL, &v)) free(v);
        cw_map_free(d->parked);
    }
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
    if (gethostname(d.host, sizeof(d.host) - 1) != 0) snprintf(d.host, sizeof(d.host), "?");
    snprintf(d.lease_key, sizeof(d.lease_key), "%s:%s:lease", cfg->health_prefix, cfg->instance);
    snprintf(d.lease_val, sizeof(d.lease_val), "%ld@%s %lld", (long)getpid(), d.host, (long long)d.started_at);
    if (uv_loop_init(&d.loop) != 0) {
        CW_LOG(CW_LOG_ERR, "daemon", "cannot initialise the event loop");
        return 1;
    }
    /* the first periodic snapshot one interval after the start, not at the
     * first tick: the state just loaded is the snapshot's, and a replay
     * would fork a writer of half its state while it reads */
    d.last_snapshot = uv_now(&d.loop);
    char err[512];
    cw_engine_out out = {cw__on_alert, &d};
    d.engine = cw_engine_new(cfg, &out, err, sizeof(err));
    if (!d.engine) {
        CW_LOG(CW_LOG_ERR, "config", "%s", err);
        return fail_early(&d, 1);
    }
    cw_engine_hold_lights(d.engine, cw__hold_light, &d);
    if (!cw_engine_rules(d.engine))
        CW_LOG(CW_LOG_WARNING, "config", "no [rule ...] sections: indicators only, no alerts will be raised");
    if (cw__load_calendar(&d, cfg, "") < 0) return fail_early(&d, 1);
    d.sink = cw_sink_new(cfg);
    d.dead = cw_dead_new(cfg);
    d.parked = cw_map_new();
    cw_resp_init(&d.cmd);
    if (!d.sink || !d.dead || !d.parked) {
        CW_LOG(CW_LOG_ERR, "daemon", "out of memory");
        return fail_early(&d, 1);
    }
    if (opts && opts->rebuild) {
        CW_LOG(CW_LOG_NOTICE, "snapshot", "--rebuild: ignoring %s, replaying %s from its start", d.snap_path,
               cfg->stream_key);
    } else if (cw__snapshot_load(&d) < 0) {
        return fail_early(&d, 2); /* said why */
    }
    if (d.replay && cw_sink_replay_begin(d.sink, opts->rebuild) < 0) return fail_early(&d, 1);
    if (d.replay) d.rread = cw_replay_read_new(&d.loop, cfg, cw_daemon_stream_check, on_replay_ready, &d);
    else d.reader = cw_conn_new(&d.loop, cfg, "read", on_conn_state, &d);
    d.writer = cw_conn_new(&d.loop, cfg, "write", on_conn_state, &d);
    if (!(d.reader || d.rread) || !d.writer) {
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
    uv_timer_init(&d.loop, &d.probe_timer);
    d.probe_timer.data = &d;
    uv_timer_init(&d.loop, &d.park_timer);
    d.park_timer.data = &d;
    uv_timer_start(&d.flush_timer, on_flush_timer, (uint64_t)cfg->flush_ms, (uint64_t)cfg->flush_ms);
    signal(SIGPIPE, SIG_IGN);
    CW_LOG(CW_LOG_INFO, "daemon", "casewatchd %s starting: instance %s, stream %s on %s:%d", CW_VERSION, cfg->instance,
           cfg->stream_key, cfg->redis_host, cfg->redis_port);
    if (d.reader) cw_conn_start(d.reader);
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
    return rc != 0 ? 1 : d.exit_code;
}
