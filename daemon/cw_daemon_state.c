#include "cw_daemon_int.h"

/* ---- Snapshots ---------------------------------------------------------- */

/* Writes the whole state at this instant: the daemon's own position and
 * counts, then each module's section (the order is the file format's).
 * Runs in the forked child (periodic) or in the process at shutdown;
 * touches no loop or Redis handle. */
int cw__snapshot_write(daemon_ctx *d, size_t *size, char *err, size_t errlen) {
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
 * fresh start), -1 when it is refused (logged, with what to do). Either
 * way the alert log is read back first (d->reconciling): after the
 * snapshot's log position, or all of it when there is no snapshot. */
int cw__snapshot_load(daemon_ctx *d) {
    double t0 = cw_mono_s();
    size_t len = 0;
    char *buf = cw_snap_read_file(d->snap_path, &len);
    if (!buf) {
        if (errno == ENOTDIR)
            CW_LOG(CW_LOG_WARNING, "snapshot", "[daemon] state_dir %s is not a directory: snapshots will fail until it is",
                   d->cfg->state_dir);
        if (errno == ENOENT || errno == ENOTDIR) {
            /* A process lost before its first snapshot (or a state_dir
             * lost) may have logged alerts, and the firing hash holds
             * them: they are all read back (the alert log is capped), or
             * the rewrite at start would empty the hash under the log. */
            d->reconciling = 1;
            snprintf(d->reconcile_from, sizeof(d->reconcile_from), "0-0");
            CW_LOG(CW_LOG_INFO, "snapshot",
                   "no snapshot at %s: starting empty, reading %s back, then %s from its start", d->snap_path,
                   d->cfg->alerts_log_key, d->cfg->stream_key);
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
        d->read_total = d->received = cw_snap_get_u64(&r);
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
        int rc = cw__snapshot_write(d, &size, err, sizeof(err));
        if (rc < 0) CW_LOG(CW_LOG_ERR, "snapshot", "%s", err);
        _exit(rc < 0 ? 1 : 0);
    }
    d->snap_fork_ms = (cw_mono_s() - t0) * 1000;
    d->snap_child = pid;
    d->snap_started = uv_now(&d->loop);
}

/* Reaps a finished snapshot writer. */
void cw__snapshot_reap(daemon_ctx *d, int block) {
    if (!d->snap_child) return;
    int st;
    pid_t child = d->snap_child;
    pid_t r = waitpid(child, &st, block ? 0 : WNOHANG);
    if (r == 0) return;
    d->snap_child = 0;
    int ok = r > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0;
    /* stopped on purpose: by us at shutdown (the final snapshot replaces
     * it), or by SIGTERM/SIGINT (systemd stops the whole control group):
     * not a failure, and its temporary file goes */
    int sig = r > 0 && WIFSIGNALED(st) ? WTERMSIG(st) : 0;
    if (r > 0 && (d->snap_cancel || sig == SIGTERM || sig == SIGINT)) {
        char tmp[600];
        snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", d->snap_path, (long)child);
        int removed = unlink(tmp) == 0;
        CW_LOG(CW_LOG_INFO, "snapshot", "snapshot writer %ld stopped (%s)%s; the next snapshot replaces it", (long)child,
               sig ? strsignal(sig) : "exited", removed ? ", its temporary file removed" : "");
        d->snap_cancel = 0;
        return;
    }
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

void cw__snapshot_tick(daemon_ctx *d) {
    cw__snapshot_reap(d, 0);
    uint64_t now = uv_now(&d->loop);
    if (!d->cfg->snapshot_interval_ms || d->snap_child || d->stopping || !d->lease_held) return;
    if (now - d->last_snapshot < (uint64_t)d->cfg->snapshot_interval_ms) return;
    d->last_snapshot = now;
    snapshot_start(d);
}

/* ---- After a crash: what the lost process published ------------------ */


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
        cw__reconcile_more(d);
        return;
    }
    d->reconciling = 0;
    /* what is still queued will be published after all: it is the latest word */
    cw_sink_each(d->sink, reconcile_json, d);
    /* judge every held period against what subscribers last saw */
    cw_engine_touch_all(d->engine);
    CW_LOG(CW_LOG_INFO, "alert", "alert log read back up to %s; reading the stream", d->reconcile_from);
    /* the rewrite of the firing hash (and what is queued) goes now, as
     * at a start with nothing to read back, not at the next flush tick */
    cw__send_alerts(d);
    cw__read_more(d);
}

void cw__reconcile_more(daemon_ctx *d) {
    if (!d->reconciling || !cw_conn_is_ready(d->writer)) return;
    char from[50];
    snprintf(from, sizeof(from), "(%s", d->reconcile_from);
    const char *argv[] = {"XRANGE", d->cfg->alerts_log_key, from, "+", "COUNT", "1000"};
    size_t lens[6];
    for (int i = 0; i < 6; i++) lens[i] = strlen(argv[i]);
    cw_conn_command(d->writer, 6, argv, lens, 0, on_reconcile, d);
}

