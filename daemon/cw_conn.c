#include "cw_conn.h"

#include <stdlib.h>
#include <string.h>

#include <adapters/libuv.h>
#include <async.h>

#include "../proto/cw_text.h"
#include "cw_log.h"
#include "cw_sentinel.h"

/* ---- Events on the socket ------------------------------------------------
 *
 * hiredis asks for write (and read) interest on every command it queues, and
 * its libuv adapter answers each ask with uv_poll_start, which on Linux
 * removes the descriptor from epoll and has the next poll add it back: two
 * system calls per command, ~800,000 for a replay of 1M events. These
 * wrappers pass an ask on only when it changes what is being watched. They
 * are called by hiredis from inside its own callbacks, as the originals are. */

static void add_read_once(void *privdata) {
    if (!(((redisLibuvEvents *)privdata)->events & UV_READABLE)) redisLibuvAddRead(privdata);
}

static void del_read_once(void *privdata) {
    if (((redisLibuvEvents *)privdata)->events & UV_READABLE) redisLibuvDelRead(privdata);
}

static void add_write_once(void *privdata) {
    if (!(((redisLibuvEvents *)privdata)->events & UV_WRITABLE)) redisLibuvAddWrite(privdata);
}

static void del_write_once(void *privdata) {
    if (((redisLibuvEvents *)privdata)->events & UV_WRITABLE) redisLibuvDelWrite(privdata);
}

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000

/* ---- Replies from an arena ------------------------------------------------
 *
 * hiredis builds each reply as a tree of malloc'd objects (five per stream
 * entry) and frees it after the callback. The reader here builds the same
 * redisReply tree (callers see no difference) in an arena that belongs to
 * the connection and is reset when the next reply begins: replies are
 * processed one at a time (hiredis frees one before it parses the next),
 * so one arena serves them all and a batch of 1,000 entries costs no
 * malloc at all once the arena has grown to its size. */

typedef struct arena_block {
    struct arena_block *next;
    size_t cap, used;
    _Alignas(16) char data[];
} arena_block;

typedef struct reply_arena {
    arena_block *blocks; /* the newest first */
    size_t hint;         /* bytes the last reply took when it needed several blocks */
} reply_arena;

#define ARENA_MIN (64 * 1024)
#define ARENA_KEEP (16 * 1024 * 1024) /* a block larger than this is not kept between replies */

static void arena_free(reply_arena *a) {
    while (a->blocks) {
        arena_block *n = a->blocks->next;
        free(a->blocks);
        a->blocks = n;
    }
}

static void arena_reset(reply_arena *a) {
    size_t used = 0, nblocks = 0;
    for (arena_block *b = a->blocks; b; b = b->next) used += b->used, nblocks++;
    if (nblocks > 1 || (a->blocks && a->blocks->cap > ARENA_KEEP)) {
        arena_free(a); /* one block of the size it took, next time */
        a->hint = used > ARENA_KEEP ? 0 : used;
    } else if (a->blocks) {
        a->blocks->used = 0;
    }
}

static void *arena_alloc(reply_arena *a, size_t n) {
    n = (n + 15) & ~(size_t)15;
    arena_block *b = a->blocks;
    if (!b || b->cap - b->used < n) {
        size_t cap = ARENA_MIN;
        if (b && b->cap * 2 > cap) cap = b->cap * 2;
        if (a->hint > cap) cap = a->hint;
        if (n > cap) cap = n;
        b = malloc(sizeof(*b) + cap);
        if (!b) return NULL;
        b->cap = cap;
        b->used = 0;
        b->next = a->blocks;
        a->blocks = b;
    }
    void *p = b->data + b->used;
    b->used += n;
    return p;
}

/* A new object of the reply being read, linked into its parent array. */
static redisReply *arena_object(const redisReadTask *task, int type) {
    reply_arena *a = task->privdata;
    if (!task->parent) arena_reset(a); /* the last reply was freed: hiredis reads one at a time */
    redisReply *r = arena_alloc(a, sizeof(*r));
    if (!r) return NULL;
    memset(r, 0, sizeof(*r));
    r->type = type;
    if (task->parent) {
        redisReply *parent = task->parent->obj;
        parent->element[task->idx] = r;
    }
    return r;
}

static void *arena_string(const redisReadTask *task, char *str, size_t len) {
    redisReply *r = arena_object(task, task->type);
    if (!r) return NULL;
    char *buf = arena_alloc(task->privdata, len + 1);
    if (!buf) return NULL;
    memcpy(buf, str, len);
    buf[len] = '\0';
    r->str = buf;
    r->len = len;
    return r;
}

static void *arena_array(const redisReadTask *task, int elements) {
    redisReply *r = arena_object(task, REDIS_REPLY_ARRAY);
    if (!r) return NULL;
    if (elements > 0) {
        r->element = arena_alloc(task->privdata, (size_t)elements * sizeof(redisReply *));
        if (!r->element) return NULL;
        memset(r->element, 0, (size_t)elements * sizeof(redisReply *));
    }
    r->elements = (size_t)(elements > 0 ? elements : 0);
    return r;
}

static void *arena_integer(const redisReadTask *task, long long value) {
    redisReply *r = arena_object(task, REDIS_REPLY_INTEGER);
    if (r) r->integer = value;
    return r;
}

static void *arena_nil(const redisReadTask *task) {
    return arena_object(task, REDIS_REPLY_NIL);
}

/* hiredis frees only whole replies (the root), after their callback or
 * when the reader fails or goes away mid-reply; the callback gets no
 * arena, so the memory is taken back when the next reply begins (above)
 * or when the connection is freed. */
static void arena_reply_free(void *reply) {
    (void)reply;
}

static redisReplyObjectFunctions arena_functions = {arena_string, arena_array, arena_integer, arena_nil,
                                                    arena_reply_free};

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
    reply_arena arena; /* where replies are built (see above) */
    uint64_t last_reply; /* uv_now() of the last reply: a server that answers is not silent */
    int in_grace;        /* a deadline passed; judged after one more poll (see grace) */
    request *spare;    /* request records to reuse */
    size_t nspare;
    int down_logged; /* the outage was logged; stay quiet until READY */
    cw_conn_state_cb cb;
    void *data;
    void (*closed)(void *);
    void *closed_data;
};

static void arm_timer(cw_conn *c);
static void go_backoff(cw_conn *c, const char *why);
static void request_free(cw_conn *c, request *rq);
static void on_timer(uv_timer_t *t);

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

size_t cw_conn_in_flight(const cw_conn *c) {
    return c->in_flight;
}

size_t cw_conn_unsent_bytes(const cw_conn *c) {
    return c && c->ac && c->ac->c.obuf ? sdslen(c->ac->c.obuf) : 0;
}

/* ---- Requests --------------------------------------------------------- */

static void set_ready(cw_conn *c) {
    c->state = CW_CONN_READY;
    c->last_reply = uv_now(c->loop);
    c->in_grace = 0;
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
    c->last_reply = uv_now(c->loop);
    c->in_grace = 0;
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
    request_free(c, rq);
    if (readonly && c->state == CW_CONN_READY) cw_conn_drop(c, "the server is a replica now (failover)");
}

/* Request records are reused: a replay sends hundreds of thousands. */
static request *request_new(cw_conn *c, cw_conn_reply_cb cb, void *privdata, uint64_t extra_ms) {
    request *rq = c->spare;
    if (rq) c->spare = rq->next, c->nspare--;
    else if (!(rq = malloc(sizeof(*rq)))) return NULL;
    *rq = (request){c, cb, privdata, uv_now(c->loop) + (uint64_t)c->cfg->redis_timeout_ms + extra_ms, NULL};
    return rq;
}

static void request_free(cw_conn *c, request *rq) {
    if (c->nspare >= 4096) {
        free(rq);
        return;
    }
    rq->next = c->spare;
    c->spare = rq;
    c->nspare++;
}

/* A request hiredis took: it waits in order for its reply. */
static void queued(cw_conn *c, request *rq) {
    if (c->tail) c->tail->next = rq;
    else c->head = rq;
    c->tail = rq;
    c->in_flight++;
    if (c->in_flight == 1) arm_timer(c);
}

static int send_argv(cw_conn *c, int argc, const char **argv, const size_t *argvlen, uint64_t extra_ms,
                     cw_conn_reply_cb cb, void *privdata) {
    request *rq = request_new(c, cb, privdata, extra_ms);
    if (!rq) return -1;
    if (redisAsyncCommandArgv(c->ac, on_reply, rq, argc, argv, argvlen) != REDIS_OK) {
        request_free(c, rq);
        return -1;
    }
    queued(c, rq);
    return 0;
}

int cw_conn_command(cw_conn *c, int argc, const char **argv, const size_t *argvlen, uint64_t extra_ms,
                    cw_conn_reply_cb cb, void *privdata) {
    if (c->state != CW_CONN_READY || !c->ac) return -1;
    return send_argv(c, argc, argv, argvlen, extra_ms, cb, privdata);
}

int cw_conn_send(cw_conn *c, const cw_resp *r, uint64_t extra_ms, cw_conn_reply_cb cb, void *privdata) {
    if (c->state != CW_CONN_READY || !c->ac || r->out.oom || !r->out.len) return -1;
    request *rq = request_new(c, cb, privdata, extra_ms);
    if (!rq) return -1;
    if (redisAsyncFormattedCommand(c->ac, on_reply, rq, r->out.buf, r->out.len) != REDIS_OK) {
        request_free(c, rq);
        return -1;
    }
    queued(c, rq);
    return 0;
}

/* ---- Commands in the wire format ---------------------------------------- */

void cw_resp_init(cw_resp *r) {
    cw_buf_init(&r->out);
}

void cw_resp_destroy(cw_resp *r) {
    if (r) cw_buf_destroy(&r->out);
}

/* "<prefix><n>\r\n" */
static void resp_header(cw_resp *r, char prefix, uint64_t n) {
    char num[20], *p = cw_u64_digits(n, num);
    size_t nl = (size_t)(num + sizeof(num) - p);
    char *o = cw_buf_room(&r->out, nl + 3);
    if (!o) return;
    o[0] = prefix;
    memcpy(o + 1, p, nl);
    o[nl + 1] = '\r';
    o[nl + 2] = '\n';
    r->out.len += nl + 3;
}

void cw_resp_begin(cw_resp *r, int argc) {
    cw_buf_reset(&r->out);
    resp_header(r, '*', (uint64_t)argc);
}

void cw_resp_arg(cw_resp *r, const char *s, size_t len) {
    resp_header(r, '$', len);
    char *o = cw_buf_room(&r->out, len + 2);
    if (!o) return;
    memcpy(o, s, len);
    o[len] = '\r';
    o[len + 1] = '\n';
    r->out.len += len + 2;
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
    c->in_grace = 0;
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
    /* keep the reader's buffer between replies: by default hiredis drops
     * it once it is empty and over 16 KiB, and every XREAD batch (~150
     * KiB) grew a new one from nothing */
    ac->c.reader->maxbuf = 0;
    ac->c.reader->fn = &arena_functions;
    ac->c.reader->privdata = &c->arena;
    if (redisLibuvAttach(ac, c->loop) != REDIS_OK) {
        redisAsyncFree(ac);
        c->ac = NULL;
        go_backoff(c, "cannot watch the socket");
        return;
    }
    ac->ev.addRead = add_read_once;
    ac->ev.delRead = del_read_once;
    ac->ev.addWrite = add_write_once;
    ac->ev.delWrite = del_write_once;
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    uv_update_time(c->loop); /* the loop's cached time may be old (start-up, a long turn) */
    c->connect_deadline = uv_now(c->loop) + (uint64_t)c->cfg->redis_timeout_ms;
    c->in_grace = 0;
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

/* A deadline has passed: judge only after the loop has polled once more.
 * libuv runs timers before it reads sockets, so after a long turn of the
 * loop (a big batch, a slow machine, valgrind) the reply or the connection
 * may be waiting unread in the kernel. Returns 1 when the judgment is
 * deferred (the timer is re-armed past one poll phase). */
static int grace(cw_conn *c) {
    if (c->in_grace) return 0;
    c->in_grace = 1;
    uv_timer_start(&c->timer, on_timer, 1, 0);
    return 1;
}

static void on_timer(uv_timer_t *t) {
    cw_conn *c = t->data;
    uint64_t now = uv_now(c->loop);
    switch (c->state) {
    case CW_CONN_BACKOFF: connect_now(c); return;
    case CW_CONN_CONNECTING:
        if (now >= c->connect_deadline) {
            if (grace(c)) return;
            cw_conn_drop(c, "connect timed out");
            return;
        }
        break;
    case CW_CONN_AUTHENTICATING:
    case CW_CONN_READY:
        /* the oldest request is overdue and the server has said nothing
         * for timeout_ms: silence. (A long pipeline of writes may keep its
         * last requests waiting past their own deadline while every reply
         * before them comes in: that server is alive.) */
        if (c->head && now >= c->head->deadline && now - c->last_reply >= (uint64_t)c->cfg->redis_timeout_ms) {
            if (grace(c)) return;
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
        if (c->last_reply + (uint64_t)c->cfg->redis_timeout_ms > at) at = c->last_reply + (uint64_t)c->cfg->redis_timeout_ms;
        break;
    default: uv_timer_stop(&c->timer); return;
    }
    uv_timer_start(&c->timer, on_timer, at > now ? at - now : 0, 0);
}

static void on_timer_closed(uv_handle_t *h) {
    cw_conn *c = h->data;
    c->state = CW_CONN_CLOSED;
    if (c->closed) c->closed(c->closed_data);
    arena_free(&c->arena);
    while (c->spare) {
        request *n = c->spare->next;
        free(c->spare);
        c->spare = n;
    }
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
