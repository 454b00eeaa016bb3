#include "cw_conn.h"

#include <stdlib.h>
#include <string.h>

#include <adapters/libuv.h>
#include <async.h>

#include "cw_log.h"
#include "cw_sentinel.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000

typedef struct request {
    cw_conn *c;
    cw_conn_reply_cb cb; /* NULL for the conn's own AUTH */
    void *privdata;
    uint64_t deadline; /* uv_now() ms */
    struct request *next;
} request;

struct cw_conn {
    uv_loop_t *loop;
    const cw_config *cfg;
    char name[16];
    char host[256]; /* the server of this attempt: [redis] host, or the primary a sentinel named */
    int port;
    cw_conn_state state;
    redisAsyncContext *ac;
    uv_timer_t timer; /* request deadlines, connect deadline, backoff */
    uint64_t connect_deadline;
    uint64_t backoff_ms;
    request *head, *tail;
    size_t in_flight;
    int down_logged; /* the outage was logged; stay quiet until READY */
    cw_conn_state_cb cb;
    void *data;
    void (*closed)(void *);
    void *closed_data;
};

static void arm_timer(cw_conn *c);
static void go_backoff(cw_conn *c, const char *why);

const char *cw_conn_state_name(cw_conn_state s) {
    static const char *const names[] = {"idle", "connecting", "authenticating", "ready", "backoff", "closing", "closed"};
    return (unsigned)s <= CW_CONN_CLOSED ? names[s] : "?";
}

cw_conn *cw_conn_new(uv_loop_t *loop, const cw_config *cfg, const char *name, cw_conn_state_cb cb, void *data) {
    cw_conn *c = calloc(1, sizeof(*c));
    if (!c) return NULL;
    c->loop = loop;
    c->cfg = cfg;
    snprintf(c->name, sizeof(c->name), "%s", name);
    snprintf(c->host, sizeof(c->host), "%s", cfg->redis_host);
    c->port = cfg->redis_port;
    c->cb = cb;
    c->data = data;
    c->backoff_ms = BACKOFF_MIN_MS;
    uv_timer_init(loop, &c->timer);
    c->timer.data = c;
    return c;
}

int cw_conn_is_ready(const cw_conn *c) {
    return c && c->state == CW_CONN_READY;
}

cw_conn_state cw_conn_get_state(const cw_conn *c) {
    return c->state;
}

size_t cw_conn_in_flight(const cw_conn *c) {
    return c->in_flight;
}

/* ---- Requests --------------------------------------------------------- */

static void set_ready(cw_conn *c) {
    c->state = CW_CONN_READY;
    c->backoff_ms = BACKOFF_MIN_MS;
    CW_LOG(c->down_logged ? CW_LOG_NOTICE : CW_LOG_INFO, c->name, "connected to redis %s:%d%s", c->cfg->redis_host,
           c->cfg->redis_port, c->down_logged ? " again" : "");
    c->down_logged = 0;
    arm_timer(c);
    if (c->cb) c->cb(c, 1, c->data);
}

/* hiredis calls this once per request, in order; reply is NULL when the
 * context is going away. */
static void on_reply(redisAsyncContext *ac, void *reply, void *privdata) {
    (void)ac;
    request *rq = privdata;
    cw_conn *c = rq->c;
    /* replies come in request order, so rq is the head */
    c->head = rq->next;
    if (!c->head) c->tail = NULL;
    c->in_flight--;
    redisReply *r = reply;
    /* a primary demoted by a failover: find the new one */
    int readonly = r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "READONLY", 8) == 0;
    if (rq->cb) {
        rq->cb(c, r, rq->privdata);
    } else if (r && c->state == CW_CONN_AUTHENTICATING) {
        if (r->type == REDIS_REPLY_ERROR) {
            CW_LOG(CW_LOG_ERR, c->name, "redis %s:%d refused AUTH%s%s: %s", c->host, c->port,
                   c->cfg->redis_user[0] ? " as " : "", c->cfg->redis_user, r->str);
            c->down_logged = 1;
            cw_conn_drop(c, "AUTH refused");
        } else {
            set_ready(c);
        }
    }
    free(rq);
    if (readonly && c->state == CW_CONN_READY) cw_conn_drop(c, "the server is a replica now (failover)");
}

static int send_argv(cw_conn *c, int argc, const char **argv, const size_t *argvlen, uint64_t extra_ms,
                     cw_conn_reply_cb cb, void *privdata) {
    request *rq = calloc(1, sizeof(*rq));
    if (!rq) return -1;
    rq->c = c;
    rq->cb = cb;
    rq->privdata = privdata;
    rq->deadline = uv_now(c->loop) + (uint64_t)c->cfg->redis_timeout_ms + extra_ms;
    if (redisAsyncCommandArgv(c->ac, on_reply, rq, argc, argv, argvlen) != REDIS_OK) {
        free(rq);
        return -1;
    }
    if (c->tail) c->tail->next = rq;
    else c->head = rq;
    c->tail = rq;
    c->in_flight++;
    if (c->in_flight == 1) arm_timer(c);
    return 0;
}

int cw_conn_command(cw_conn *c, int argc, const char **argv, const size_t *argvlen, uint64_t extra_ms,
                    cw_conn_reply_cb cb, void *privdata) {
    if (c->state != CW_CONN_READY || !c->ac) return -1;
    return send_argv(c, argc, argv, argvlen, extra_ms, cb, privdata);
}

/* ---- Connection life cycle ------------------------------------------- */

static void on_disconnect(const redisAsyncContext *ac, int status) {
    cw_conn *c = ac->data;
    (void)status;
    if (c->ac != ac) return; /* already dropped by us */
    c->ac = NULL;
    if (c->state == CW_CONN_CLOSING) return;
    go_backoff(c, ac->errstr[0] ? ac->errstr : "connection closed by the server");
}

static void on_connect(const redisAsyncContext *ac, int status) {
    cw_conn *c = ac->data;
    if (c->ac != ac) return;
    if (status != REDIS_OK) {
        /* hiredis frees the context after we return */
        c->ac = NULL;
        if (c->state != CW_CONN_CLOSING) go_backoff(c, ac->errstr);
        return;
    }
    if (c->cfg->redis_password) {
        c->state = CW_CONN_AUTHENTICATING;
        const char *argv[3] = {"AUTH", c->cfg->redis_user, c->cfg->redis_password};
        int has_user = c->cfg->redis_user[0] != '\0';
        const char **a = has_user ? argv : argv + 1;
        a[0] = "AUTH";
        size_t lens[3];
        for (int i = 0; i < 2 + has_user; i++) lens[i] = strlen(a[i]);
        if (send_argv(c, 2 + has_user, a, lens, 0, NULL, NULL) < 0)
            CW_LOG(CW_LOG_ERR, c->name, "cannot queue AUTH");
        return;
    }
    set_ready(c);
}

static void connect_now(cw_conn *c) {
    c->state = CW_CONN_CONNECTING;
    if (c->cfg->redis_sentinels[0]) {
        char why[300];
        if (cw_sentinel_primary(c->cfg, c->host, sizeof(c->host), &c->port, why, sizeof(why)) < 0) {
            go_backoff(c, why);
            return;
        }
    }
    redisAsyncContext *ac = redisAsyncConnect(c->host, c->port);
    if (!ac) {
        go_backoff(c, "out of memory");
        return;
    }
    if (ac->err) {
        char why[128];
        snprintf(why, sizeof(why), "%s", ac->errstr);
        redisAsyncFree(ac);
        go_backoff(c, why);
        return;
    }
    ac->data = c;
    c->ac = ac;
    redisLibuvAttach(ac, c->loop);
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    c->connect_deadline = uv_now(c->loop) + (uint64_t)c->cfg->redis_timeout_ms;
    arm_timer(c);
}

void cw_conn_start(cw_conn *c) {
    if (c->state == CW_CONN_IDLE) connect_now(c);
}

static void go_backoff(cw_conn *c, const char *why) {
    int was_ready = c->state == CW_CONN_READY;
    c->state = CW_CONN_BACKOFF;
    if (!c->down_logged) {
        CW_LOG(CW_LOG_WARNING, c->name, "redis %s:%d unavailable (%s); retrying from %llu ms up to %d s",
               c->host, c->port, why, (unsigned long long)c->backoff_ms, BACKOFF_MAX_MS / 1000);
        c->down_logged = 1;
    } else {
        CW_LOG(CW_LOG_DEBUG, c->name, "still unavailable (%s); next try in %llu ms", why,
               (unsigned long long)c->backoff_ms);
    }
    arm_timer(c);
    c->backoff_ms = c->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : c->backoff_ms * 2;
    if (was_ready && c->cb) c->cb(c, 0, c->data);
}

void cw_conn_drop(cw_conn *c, const char *why) {
    redisAsyncContext *ac = c->ac;
    if (!ac) return;
    c->ac = NULL;
    go_backoff(c, why);
    /* requests in flight now see NULL replies; deferred by hiredis when
     * we are inside one of its callbacks */
    redisAsyncFree(ac);
}

static void on_timer(uv_timer_t *t) {
    cw_conn *c = t->data;
    uint64_t now = uv_now(c->loop);
    switch (c->state) {
    case CW_CONN_BACKOFF: connect_now(c); return;
    case CW_CONN_CONNECTING:
        if (now >= c->connect_deadline) {
            cw_conn_drop(c, "connect timed out");
            return;
        }
        break;
    case CW_CONN_AUTHENTICATING:
    case CW_CONN_READY:
        if (c->head && now >= c->head->deadline) {
            char why[64];
            snprintf(why, sizeof(why), "no reply within %d ms", c->cfg->redis_timeout_ms);
            cw_conn_drop(c, why);
            return;
        }
        break;
    default: return;
    }
    arm_timer(c);
}

/* Points the timer at whatever this state waits for next. */
static void arm_timer(cw_conn *c) {
    uint64_t now = uv_now(c->loop), at;
    switch (c->state) {
    case CW_CONN_BACKOFF: uv_timer_start(&c->timer, on_timer, c->backoff_ms, 0); return;
    case CW_CONN_CONNECTING: at = c->connect_deadline; break;
    case CW_CONN_AUTHENTICATING:
    case CW_CONN_READY:
        if (!c->head) {
            uv_timer_stop(&c->timer);
            return;
        }
        at = c->head->deadline;
        break;
    default: uv_timer_stop(&c->timer); return;
    }
    uv_timer_start(&c->timer, on_timer, at > now ? at - now : 0, 0);
}

static void on_timer_closed(uv_handle_t *h) {
    cw_conn *c = h->data;
    c->state = CW_CONN_CLOSED;
    if (c->closed) c->closed(c->closed_data);
    free(c);
}

void cw_conn_close(cw_conn *c, void (*closed)(void *data), void *data) {
    if (!c || c->state == CW_CONN_CLOSING) return;
    c->state = CW_CONN_CLOSING;
    c->closed = closed;
    c->closed_data = data;
    redisAsyncContext *ac = c->ac;
    c->ac = NULL;
    if (ac) redisAsyncFree(ac);
    uv_close((uv_handle_t *)&c->timer, on_timer_closed);
}
