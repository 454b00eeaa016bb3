#include "cw_daemon_int.h"

/* ---- One writer per instance: the lease --------------------------------
 *
 * <health_prefix>:<instance>:lease holds "<pid>@<host> <since ms>" of the
 * daemon that may write for the instance, for LEASE_MS, renewed every
 * LEASE_RENEW_MS by the loop (one script: renew if ours, take if free).
 * Until it holds the lease a daemon reads nothing, writes nothing and
 * snapshots nothing; a second daemon of the same instance says once who
 * holds it and waits, asking every second, and takes over when the lease
 * lapses (or at once when the holder is a process of this host that no
 * longer exists: a crash, restarted by systemd). A clean stop releases it.
 * A holder that finds the lease in another's hands (it stalled past
 * LEASE_MS) stops writing and reading and waits like a second daemon. */
static const char LEASE_TAKE[] =
    "local v = redis.call('GET', KEYS[1]) "
    "if v == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end "
    "if v == false or v == ARGV[3] then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end "
    "return v";
static const char LEASE_RELEASE[] =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0";


/* Asks for (or renews) the lease; `gone`: the value of a holder known to
 * be dead, which may be replaced. */
void cw__lease_ask(daemon_ctx *d, const char *gone) {
    if (d->lease_asking || d->stopping || !cw_conn_is_ready(d->writer)) return;
    char ms[16];
    snprintf(ms, sizeof(ms), "%d", LEASE_MS);
    const char *argv[] = {"EVAL", LEASE_TAKE, "1", d->lease_key, d->lease_val, ms, gone ? gone : ""};
    size_t lens[7];
    for (int i = 0; i < 7; i++) lens[i] = strlen(argv[i]);
    d->lease_asked = uv_now(&d->loop);
    if (cw_conn_command(d->writer, 7, argv, lens, 0, cw__on_lease, d) == 0) d->lease_asking = 1;
}

/* Releases the lease if it is still ours; cb sees the reply. Returns -1
 * when nothing was sent (cb never called). */
int cw__lease_release(daemon_ctx *d, cw_conn_reply_cb cb) {
    if (!d->lease_held) return -1;
    const char *argv[] = {"EVAL", LEASE_RELEASE, "1", d->lease_key, d->lease_val};
    size_t lens[5];
    for (int i = 0; i < 5; i++) lens[i] = strlen(argv[i]);
    return cw_conn_command(d->writer, 5, argv, lens, 0, cb, d);
}

/* "<pid>@<host> <since ms>" as a sentence; *pid and host (of hostlen). */
static void lease_describe(const char *v, long *pid, char *host, size_t hostlen, char *out, size_t outlen) {
    long long since = 0;
    const char *at = strchr(v, '@'), *sp = strrchr(v, ' ');
    *pid = atol(v);
    host[0] = '\0';
    if (at && sp && sp > at) {
        snprintf(host, hostlen, "%.*s", (int)(sp - at - 1), at + 1);
        since = atoll(sp + 1);
    }
    char when[64] = "?";
    time_t t = (time_t)(since / 1000);
    struct tm tm;
    if (since > 0 && gmtime_r(&t, &tm)) strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm);
    snprintf(out, outlen, "pid %ld on host %s since %s", *pid, host[0] ? host : "?", when);
}

static void remove_stale_snapshots(daemon_ctx *d);

/* A daemon that waited while another held the lease takes over from the
 * state that one left (its final snapshot, newer than the one loaded at
 * start); nothing was read or written yet, so the state is made again
 * and loaded. (A SIGHUP taken while waiting is not kept.) Returns 0, or
 * -1 when the snapshot is refused (logged) or memory runs out. */
static int state_reload(daemon_ctx *d) {
    char err[512] = "out of memory";
    cw_engine_out out = {cw__on_alert, d};
    cw_engine *e = cw_engine_new(d->cfg, &out, err, sizeof(err));
    cw_sink *s = cw_sink_new(d->cfg);
    cw_dead *q = cw_dead_new(d->cfg);
    if (!e || !s || !q) {
        CW_LOG(CW_LOG_ERR, "daemon", "taking over instance %s: %s", d->cfg->instance, err);
        cw_engine_free(e);
        cw_sink_free(s);
        cw_dead_free(q);
        return -1;
    }
    cw_engine_hold_lights(e, cw__hold_light, d);
    cw_engine_free(d->engine);
    cw_sink_free(d->sink);
    cw_dead_free(d->dead);
    d->engine = e;
    d->sink = s;
    d->dead = q;
    cw__load_calendar(d, d->cfg, "");
    snprintf(d->last_id, sizeof(d->last_id), "0-0");
    d->read_pos[0] = '\0';
    d->read_total = d->received = 0;
    d->stream_base = 0;
    d->base_known = d->stream_checked = d->reconciling = 0;
    CW_LOG(CW_LOG_NOTICE, "snapshot", "taking over instance %s: loading the state its last holder left", d->cfg->instance);
    if (cw__snapshot_load(d) < 0) return -1;
    /* a replay goes on from that state: before it, that state's firing set */
    return d->replay ? cw_sink_replay_begin(d->sink, 0) : 0;
}

void cw__on_lease(cw_conn *c, redisReply *r, void *privdata) {
    (void)c;
    daemon_ctx *d = privdata;
    d->lease_asking = 0;
    if (!r || d->stopping) return; /* the writer went away: asked again once it is back */
    uint64_t now = uv_now(&d->loop);
    if (r->type == REDIS_REPLY_INTEGER && r->integer == 1) {
        d->lease_renewed = now;
        d->lease_errlogged = 0;
        if (d->lease_held) return;
        d->lease_held = 1;
        d->lease_lost = 0;
        if (!d->lease_ever && d->lease_holder[0] && state_reload(d) < 0) {
            d->exit_code = 2; /* said why; the refused snapshot stays as it is */
            d->lease_lost = 1;
            cw__begin_shutdown(d);
            return;
        }
        if (!d->lease_ever || d->lease_holder[0])
            CW_LOG(d->lease_holder[0] ? CW_LOG_NOTICE : CW_LOG_INFO, "daemon",
                   "write lease %s taken (%d s, renewed every second): this daemon writes for instance %s",
                   d->lease_key, LEASE_MS / 1000, d->cfg->instance);
        d->lease_holder[0] = '\0';
        if (!d->lease_ever) remove_stale_snapshots(d);
        d->lease_ever = 1;
        cw__writer_resumed(d);
        return;
    }
    if (r->type == REDIS_REPLY_STRING) {
        char host[256], who[400];
        long pid;
        lease_describe(r->str, &pid, host, sizeof(host), who, sizeof(who));
        if (strcmp(host, d->host) == 0 && pid > 0 && pid != (long)getpid() && kill((pid_t)pid, 0) < 0 &&
            errno == ESRCH) {
            CW_LOG(CW_LOG_NOTICE, "daemon", "the write lease of instance %s is held by %s, which no longer runs: taking it over",
                   d->cfg->instance, who);
            cw__lease_ask(d, r->str);
            return;
        }
        if (d->lease_held) {
            CW_LOG(CW_LOG_ERR, "daemon",
                   "the write lease of instance %s was taken by %s (this daemon could not renew it in time): not "
                   "reading or writing until it lapses",
                   d->cfg->instance, who);
            d->lease_held = 0;
            d->lease_lost = 1;
        } else if (strcmp(d->lease_holder, r->str) != 0) {
            CW_LOG(CW_LOG_WARNING, "daemon",
                   "instance %s is held by %s (lease %s): this daemon does not read or write; waiting for it to stop "
                   "or its lease to lapse",
                   d->cfg->instance, who, d->lease_key);
        }
        snprintf(d->lease_holder, sizeof(d->lease_holder), "%s", r->str);
        return;
    }
    /* refused (OOM refuses the SET of a free lease): asked again in a second */
    if (!d->lease_errlogged++)
        CW_LOG(CW_LOG_ERR, "daemon", "the write lease %s: %s; asking again every second", d->lease_key,
               r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
    if (d->lease_held && now - d->lease_renewed >= LEASE_MS) {
        CW_LOG(CW_LOG_ERR, "daemon", "the write lease %s lapsed: not reading or writing until it is taken again",
               d->lease_key);
        d->lease_held = 0;
    }
}

/* Stale temporary snapshot files of this instance (<instance>.snap.tmp.<pid>,
 * left by a writer killed mid-way): removed once this daemon holds the
 * lease, so never a file another live daemon of the instance writes. */
static void remove_stale_snapshots(daemon_ctx *d) {
    DIR *dir = opendir(d->cfg->state_dir);
    if (!dir) return;
    char prefix[300];
    int pl = snprintf(prefix, sizeof(prefix), "%s.snap.tmp.", d->cfg->instance);
    int n = 0;
    unsigned long long bytes = 0;
    struct dirent *e;
    while ((e = readdir(dir))) {
        const char *name = e->d_name;
        if (strncmp(name, prefix, (size_t)pl) != 0 || !name[pl] || strspn(name + pl, "0123456789") != strlen(name + pl))
            continue;
        if (d->snap_child && atol(name + pl) == (long)d->snap_child) continue;
        char path[1024];
        snprintf(path, sizeof(path), "%s/%s", d->cfg->state_dir, name);
        struct stat st;
        if (stat(path, &st) == 0 && unlink(path) == 0) {
            n++;
            bytes += (unsigned long long)st.st_size;
        }
    }
    closedir(dir);
    if (n)
        CW_LOG(CW_LOG_NOTICE, "snapshot", "removed %d stale temporary snapshot file%s of instance %s (%.1f MB) from %s", n,
               n == 1 ? "" : "s", d->cfg->instance, (double)bytes / 1e6, d->cfg->state_dir);
}

