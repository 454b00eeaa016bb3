#include "cw_replay_read.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cw_log.h"
#include "cw_period.h"
#include "cw_sentinel.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define MAX_DEPTH 10 /* hiredis 0.14 nests replies 9 deep at most */

enum { RR_IDLE, RR_READING, RR_BACKOFF };

struct cw_replay_read {
    /* the loop thread's */
    uv_loop_t *loop;
    const cw_config *cfg;
    const char *check;
    cw_replay_read_ready_cb ready;
    void *data;
    int state; /* RR_IDLE, RR_READING, RR_BACKOFF */
    int closing, timer_closing;
    uv_timer_t timer; /* the wait after a failure */
    uint64_t backoff_ms;
    int down_logged; /* the outage was logged; quiet until a read connects */
    int ever_connected;
    /* the read in flight: set by the loop before it is queued, the
     * worker's until its after-work callback runs on the loop */
    uv_work_t work;
    char pos[48];
    cw_batch *b;
    cw_replay_read_cb cb;
    void *cb_data;
    cw_replay_read_result res;
    redisReply *check_reply;
    int connected; /* this read made the connection */
    char last[48];
    /* the worker's while a read is in flight (nobody's between reads) */
    redisContext *c;
    redisReplyObjectFunctions *tree_fn; /* hiredis's own reply trees, for the stream check */
    char host[256];
    int port;
    /* where the reader callbacks are in the XREAD reply */
    char level[MAX_DEPTH]; /* what they return: &level[depth], so a child knows its depth */
    int in_entry;          /* the entry being read is [id, fields] */
    int entry_added;       /* and its id started an entry of the batch */
};

/* ---- The XREAD reply, straight into the batch (worker thread) -----------
 *
 * [[key, [[id, [name, value, ...]], ...]]]: depth 0 the reply, 1 the
 * stream, 2 its key and its entries, 3 an entry, 4 its id and its fields,
 * 5 a name or a value. An entry that is not [id (a string), fields] is
 * skipped, and a non-string name or value reads as "", as cw_batch_fill
 * does with a reply tree. The objects returned point into rr->level: they
 * must not be NULL (NULL says out of memory), and a reader holding part
 * of a reply must be freed with these functions in place (see read_work). */

static int depth_of(const cw_replay_read *rr, const redisReadTask *t) {
    return t->parent ? (int)((const char *)t->parent->obj - rr->level) + 1 : 0;
}

static void *at_depth(cw_replay_read *rr, int depth) {
    return &rr->level[depth < MAX_DEPTH ? depth : MAX_DEPTH - 1];
}

/* A name or a value of the current entry (depth 5, in its fields). */
static int field_part(cw_replay_read *rr, const redisReadTask *t, const char *s, size_t len) {
    if (!rr->entry_added || t->parent->idx != 1) return 0;
    return cw_batch_add_string(rr->b, s, len);
}

static void *xr_string(const redisReadTask *t, char *str, size_t len) {
    cw_replay_read *rr = t->privdata;
    int depth = depth_of(rr, t);
    if (depth == 0 && t->type == REDIS_REPLY_ERROR) {
        rr->res.refused = 1;
        snprintf(rr->res.why, sizeof(rr->res.why), "%.*s", (int)len, str);
    } else if (depth == 4 && t->idx == 0) { /* an entry's id */
        size_t l = len < sizeof(rr->last) - 1 ? len : sizeof(rr->last) - 1;
        memcpy(rr->last, str, l);
        rr->last[l] = '\0';
        if (rr->in_entry && t->type == REDIS_REPLY_STRING) {
            if (cw_batch_add_entry(rr->b, str, len) < 0) return NULL;
            rr->entry_added = 1;
        }
    } else if (depth == 5) { /* a status or an error reads as "" too */
        int text = t->type == REDIS_REPLY_STRING;
        if (field_part(rr, t, text ? str : "", text ? len : 0) < 0) return NULL;
    }
    return at_depth(rr, depth);
}

static void *xr_array(const redisReadTask *t, int elements) {
    cw_replay_read *rr = t->privdata;
    int depth = depth_of(rr, t);
    if (depth == 0) {
        rr->res.stream = elements == 1;
    } else if (depth == 2 && t->idx == 1 && t->parent->idx == 0) { /* the entries */
        rr->res.n = (size_t)(elements > 0 ? elements : 0);
    } else if (depth == 3) {
        rr->in_entry = elements == 2;
        rr->entry_added = 0;
    } else if (depth == 5 && field_part(rr, t, "", 0) < 0) {
        return NULL;
    }
    return at_depth(rr, depth);
}

/* An integer or a nil: an entry whose id it is is skipped; a name or a
 * value is "". */
static void *xr_other(const redisReadTask *t) {
    cw_replay_read *rr = t->privdata;
    int depth = depth_of(rr, t);
    if (depth == 3) rr->in_entry = rr->entry_added = 0;
    if (depth == 4 && t->idx == 0) rr->last[0] = '\0';
    if (depth == 5 && field_part(rr, t, "", 0) < 0) return NULL;
    return at_depth(rr, depth);
}

static void *xr_integer(const redisReadTask *t, long long value) {
    (void)value;
    return xr_other(t);
}

static void *xr_nil(const redisReadTask *t) {
    return xr_other(t);
}

static void xr_free(void *obj) {
    (void)obj; /* nothing was allocated */
}

static redisReplyObjectFunctions batch_functions = {xr_string, xr_array, xr_integer, xr_nil, xr_free};

/* ---- The blocking connection (worker thread) ----------------------------- */

static struct timeval ms_tv(int ms) {
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    return tv;
}

/* The read failed on the connection: why, and it is dropped. */
static void conn_failed(cw_replay_read *rr, const char *what) {
    redisContext *c = rr->c;
    if (c && c->err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK))
        snprintf(rr->res.why, sizeof(rr->res.why), "no reply within %d ms", rr->cfg->redis_timeout_ms);
    else if (c && c->err)
        snprintf(rr->res.why, sizeof(rr->res.why), "%s", c->errstr);
    else
        snprintf(rr->res.why, sizeof(rr->res.why), "%s", what);
    redisFree(c);
    rr->c = NULL;
}

/* Connects (through the sentinels when there are), with the timeout on
 * connect, every send and every receive; AUTH when configured. */
static int connect_blocking(cw_replay_read *rr) {
    const cw_config *cfg = rr->cfg;
    snprintf(rr->host, sizeof(rr->host), "%s", cfg->redis_host);
    rr->port = cfg->redis_port;
    if (cfg->redis_sentinels[0] &&
        cw_sentinel_primary(cfg, rr->host, sizeof(rr->host), &rr->port, rr->res.why, sizeof(rr->res.why)) < 0)
        return -1;
    struct timeval tv = ms_tv(cfg->redis_timeout_ms);
    rr->c = redisConnectWithTimeout(rr->host, rr->port, tv);
    if (!rr->c || rr->c->err || redisSetTimeout(rr->c, tv) != REDIS_OK) {
        conn_failed(rr, "out of memory");
        return -1;
    }
    /* keep the reader's buffer between replies (see cw_conn) */
    rr->c->reader->maxbuf = 0;
    rr->tree_fn = rr->c->reader->fn;
    if (cfg->redis_password) {
        const char *argv[3] = {"AUTH", cfg->redis_user, cfg->redis_password};
        int has_user = cfg->redis_user[0] != '\0';
        const char **a = has_user ? argv : argv + 1;
        a[0] = "AUTH";
        size_t lens[3];
        for (int i = 0; i < 2 + has_user; i++) lens[i] = strlen(a[i]);
        redisReply *r = redisCommandArgv(rr->c, 2 + has_user, a, lens);
        if (!r) {
            conn_failed(rr, "AUTH not answered");
            return -1;
        }
        if (r->type == REDIS_REPLY_ERROR) {
            snprintf(rr->res.why, sizeof(rr->res.why), "AUTH%s%s refused: %s", has_user ? " as " : "", cfg->redis_user,
                     r->str);
            freeReplyObject(r);
            redisFree(rr->c);
            rr->c = NULL;
            return -1;
        }
        freeReplyObject(r);
    }
    rr->connected = 1;
    return 0;
}

/* The work item: the stream check and the XREAD in one round trip, the
 * reply parsed into the batch (decoded elsewhere: see the header). */
static void read_work(uv_work_t *w) {
    cw_replay_read *rr = w->data;
    if (!rr->c && connect_blocking(rr) < 0) return;
    const cw_config *cfg = rr->cfg;
    char count[16];
    snprintf(count, sizeof(count), "%d", cfg->stream_batch);
    const char *cv[] = {"EVAL", rr->check, "1", cfg->stream_key};
    size_t cl[] = {4, strlen(rr->check), 1, strlen(cfg->stream_key)};
    const char *xv[] = {"XREAD", "COUNT", count, "STREAMS", cfg->stream_key, rr->pos};
    size_t xl[6];
    for (int i = 0; i < 6; i++) xl[i] = strlen(xv[i]);
    if (redisAppendCommandArgv(rr->c, 4, cv, cl) != REDIS_OK || redisAppendCommandArgv(rr->c, 6, xv, xl) != REDIS_OK) {
        conn_failed(rr, "out of memory");
        return;
    }
    /* the check as a reply tree (it is small); hiredis parses one reply
     * per call, so the XREAD's is parsed with the batch's callbacks */
    void *reply = NULL;
    rr->c->reader->fn = rr->tree_fn;
    if (redisGetReply(rr->c, &reply) != REDIS_OK) {
        conn_failed(rr, "connection lost");
        return;
    }
    rr->check_reply = reply;
    rr->c->reader->fn = &batch_functions;
    rr->c->reader->privdata = rr;
    rr->in_entry = rr->entry_added = 0;
    cw_batch_begin(rr->b, cw_wall_ms()); /* the wall clock event times are checked against */
    int got = redisGetReply(rr->c, &reply);
    if (got != REDIS_OK) {
        /* cut short (a timeout, EOF): the reader holds the part read as
         * objects of ours (rr->level), which hiredis's own free must never
         * see: the connection goes with the batch's functions in place */
        rr->res.nomem = rr->c->err == REDIS_ERR_OOM;
        conn_failed(rr, rr->res.nomem ? "out of memory" : "connection lost");
        return;
    }
    rr->c->reader->fn = rr->tree_fn;
    if (cw_batch_end(rr->b) < 0) {
        rr->res.nomem = 1;
        conn_failed(rr, "out of memory");
        return;
    }
    if (rr->res.refused) { /* why: Redis's error */
        redisFree(rr->c);
        rr->c = NULL;
        cw_batch_clear(rr->b);
        return;
    }
    rr->res.ok = 1;
}

/* ---- The loop's side ------------------------------------------------------ */

static void free_now(cw_replay_read *rr) {
    redisFree(rr->c);
    free(rr);
}

static void on_timer_closed(uv_handle_t *h) {
    free_now(h->data);
}

/* Closing, and no read in flight: the timer goes, then the rest. */
static void close_when_idle(cw_replay_read *rr) {
    if (!rr->closing || rr->state == RR_READING || rr->timer_closing) return;
    rr->timer_closing = 1;
    uv_close((uv_handle_t *)&rr->timer, on_timer_closed);
}

static void on_backoff(uv_timer_t *t) {
    cw_replay_read *rr = t->data;
    rr->state = RR_IDLE;
    if (!rr->closing && rr->ready) rr->ready(rr->data);
}

/* After a failure: said once an outage, then the wait. */
static void go_backoff(cw_replay_read *rr, const char *why) {
    if (!rr->down_logged) {
        CW_LOG(CW_LOG_WARNING, "read", "redis %s:%d unavailable (%s); retrying from %llu ms up to %d s",
               rr->host[0] ? rr->host : rr->cfg->redis_host, rr->host[0] ? rr->port : rr->cfg->redis_port,
               why, (unsigned long long)rr->backoff_ms, BACKOFF_MAX_MS / 1000);
        rr->down_logged = 1;
    } else {
        CW_LOG(CW_LOG_DEBUG, "read", "still unavailable (%s); next try in %llu ms", why,
               (unsigned long long)rr->backoff_ms);
    }
    rr->state = RR_BACKOFF;
    uv_timer_start(&rr->timer, on_backoff, rr->backoff_ms, 0);
    rr->backoff_ms = rr->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : rr->backoff_ms * 2;
}

/* The read's end, on the loop. Its result is copied out first: the
 * callback may start the next read at once. */
static void read_done(uv_work_t *w, int status) {
    cw_replay_read *rr = w->data;
    cw_replay_read_result res = rr->res;
    char last[sizeof(rr->last)];
    memcpy(last, rr->last, sizeof(last));
    res.last = res.n && last[0] ? last : NULL;
    res.check = rr->check_reply;
    cw_batch *b = rr->b;
    cw_replay_read_cb cb = rr->cb;
    void *cb_data = rr->cb_data;
    rr->check_reply = NULL;
    rr->b = NULL;
    rr->state = RR_IDLE;
    if (status == UV_ECANCELED) snprintf(res.why, sizeof(res.why), "cancelled");
    if (rr->connected)
        CW_LOG(rr->down_logged ? CW_LOG_NOTICE : CW_LOG_INFO, "read", "connected to redis %s:%d%s", rr->host, rr->port,
               rr->down_logged ? " again" : "");
    if (res.ok) { /* a read that lands ends an outage; a connection alone does not (a refusal every time) */
        rr->down_logged = 0;
        rr->backoff_ms = BACKOFF_MIN_MS;
    }
    if (rr->closing) {
        res.ok = 0;
        res.closed = 1;
    } else if (!res.ok) {
        go_backoff(rr, res.why);
    }
    cb(b, &res, cb_data);
    if (res.check) freeReplyObject((redisReply *)res.check);
    close_when_idle(rr);
}

cw_replay_read *cw_replay_read_new(uv_loop_t *loop, const cw_config *cfg, const char *check_script,
                                   cw_replay_read_ready_cb ready, void *data) {
    cw_replay_read *rr = calloc(1, sizeof(*rr));
    if (!rr) return NULL;
    rr->loop = loop;
    rr->cfg = cfg;
    rr->check = check_script;
    rr->ready = ready;
    rr->data = data;
    rr->backoff_ms = BACKOFF_MIN_MS;
    rr->work.data = rr;
    uv_timer_init(loop, &rr->timer);
    rr->timer.data = rr;
    return rr;
}

int cw_replay_read_idle(const cw_replay_read *rr) {
    return rr && !rr->closing && rr->state == RR_IDLE;
}

int cw_replay_read_start(cw_replay_read *rr, const char *pos, cw_batch *b, cw_replay_read_cb cb, void *data) {
    if (!cw_replay_read_idle(rr)) return -1;
    snprintf(rr->pos, sizeof(rr->pos), "%s", pos);
    memset(&rr->res, 0, sizeof(rr->res));
    rr->b = b;
    rr->cb = cb;
    rr->cb_data = data;
    rr->check_reply = NULL;
    rr->connected = 0;
    rr->last[0] = '\0';
    if (uv_queue_work(rr->loop, &rr->work, read_work, read_done) != 0) return -1;
    rr->state = RR_READING;
    return 0;
}

void cw_replay_read_close(cw_replay_read *rr) {
    if (!rr || rr->closing) return;
    rr->closing = 1;
    uv_timer_stop(&rr->timer);
    if (rr->state == RR_BACKOFF) rr->state = RR_IDLE;
    if (rr->state == RR_READING) uv_cancel((uv_req_t *)&rr->work); /* if not begun: read_done, cancelled */
    close_when_idle(rr);
}
