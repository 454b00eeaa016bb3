#include "cw_dead.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cw_log.h"
#include "cw_snap.h"

/* One dead letter: the XADD's arguments after "XADD key *" as they are
 * saved (argv[0..2] are "XADD", the key and "*", for the snapshot format;
 * MAXLEN is put in when sending). */
typedef struct letter {
    int argc;
    char **argv;
    size_t *argvlen;
    int in_flight;
    int done; /* acknowledged; leaves once the ones before it have */
    struct cw_dead *q;
    struct letter *next;
} letter;

struct cw_dead {
    const cw_config *cfg;
    letter *head, *tail;
    size_t n;
    size_t bytes; /* of the names and values queued */
    uint64_t total;
    size_t in_flight;
    int refused;          /* the last reply was a refusal (logged once) */
    cw_resp cmd;
    /* the rate log */
    int64_t minute_start;
    uint64_t minute_count;
    char minute_reason[200];
};

cw_dead *cw_dead_new(const cw_config *cfg) {
    cw_dead *q = calloc(1, sizeof(*q));
    if (!q) return NULL;
    q->cfg = cfg;
    cw_resp_init(&q->cmd);
    return q;
}

static void letter_free(letter *l) {
    if (!l) return;
    for (int i = 0; i < l->argc; i++) free(l->argv[i]);
    free(l->argv);
    free(l->argvlen);
    free(l);
}

void cw_dead_free(cw_dead *q) {
    if (!q) return;
    while (q->head) {
        letter *n = q->head->next;
        letter_free(q->head);
        q->head = n;
    }
    cw_resp_destroy(&q->cmd);
    free(q);
}

/* A letter with room for argc arguments, none set yet. */
static letter *letter_new(size_t argc) {
    letter *l = calloc(1, sizeof(*l));
    if (!l) return NULL;
    l->argv = calloc(argc, sizeof(char *));
    l->argvlen = calloc(argc, sizeof(size_t));
    if (!l->argv || !l->argvlen) {
        letter_free(l);
        return NULL;
    }
    return l;
}

/* Appends a copy of s[0..len) as the next argument. Returns 0 or -1. */
static int push(letter *l, const char *s, size_t len) {
    char *p = malloc(len + 1);
    if (!p) return -1;
    memcpy(p, s, len);
    p[len] = '\0';
    l->argv[l->argc] = p;
    l->argvlen[l->argc++] = len;
    return 0;
}

static size_t letter_bytes(const letter *l) {
    size_t b = 0;
    for (int i = 0; i < l->argc; i++) b += l->argvlen[i];
    return b;
}

static void append(cw_dead *q, letter *l) {
    if (q->tail) q->tail->next = l;
    else q->head = l;
    q->tail = l;
    q->n++;
    q->bytes += letter_bytes(l);
}

/* The rate log: the first dead letter of a minute on a line of its own,
 * the rest counted (see cw_dead_tick). */
static void note(cw_dead *q, const char *source_id, const char *reason, int64_t now_ms) {
    if (now_ms - q->minute_start >= 60000) {
        cw_dead_tick(q, now_ms);
        q->minute_start = now_ms;
        q->minute_count = 0;
    }
    if (!q->minute_count++) {
        snprintf(q->minute_reason, sizeof(q->minute_reason), "%s", reason);
        CW_LOG(CW_LOG_NOTICE, "stream", "entry %s dead-lettered: %s", source_id, reason);
    }
}

void cw_dead_tick(cw_dead *q, int64_t now_ms) {
    if (now_ms - q->minute_start < 60000 || q->minute_count <= 1) return;
    CW_LOG(CW_LOG_NOTICE, "stream", "%llu dead letters in the last minute, first reason: %s",
           (unsigned long long)q->minute_count, q->minute_reason);
    q->minute_count = 0;
}

int cw_dead_queue(cw_dead *q, const char *source_id, const cw_entry_field *fields, size_t nfields,
                  const char *reason, int64_t now_ms) {
    size_t ncopy = nfields < CW_DEAD_MAX_FIELDS ? nfields : CW_DEAD_MAX_FIELDS;
    letter *l = letter_new(3 + 2 * ncopy + 6);
    if (!l) goto fail;
    const char *key = q->cfg->stream_dead_key;
    if (push(l, "XADD", 4) < 0 || push(l, key, strlen(key)) < 0 || push(l, "*", 1) < 0) goto fail;
    size_t budget = (size_t)q->cfg->dead_letter_bytes;
    if (budget > CW_DEAD_MAX_BYTES) budget = CW_DEAD_MAX_BYTES;
    char cut[CW_DEAD_TEXT_MAX] = "";
    size_t cl = 0;
    for (size_t i = 0; i < ncopy; i++) {
        const cw_entry_field *f = &fields[i];
        char name[16];
        const char *nm = f->name;
        size_t nl = f->name_len;
        /* a field named like ours would be shadowed; keep it under orig_ */
        if ((nl == 6 && memcmp(nm, "reason", 6) == 0) || (nl == 9 && memcmp(nm, "source_id", 9) == 0) ||
            (nl == 3 && memcmp(nm, "cut", 3) == 0)) {
            snprintf(name, sizeof(name), "orig_%.*s", (int)nl, nm);
            nm = name;
            nl = strlen(name);
        }
        size_t take_name = nl < budget ? nl : budget;
        budget -= take_name;
        size_t take = f->value_len < budget ? f->value_len : budget;
        budget -= take;
        if ((take_name < nl || take < f->value_len) && cl < sizeof(cut) - 100)
            cl += (size_t)snprintf(cut + cl, sizeof(cut) - cl, "%s%.*s: %zu bytes, %zu kept", cl ? "; " : "",
                                   (int)(take_name < 64 ? take_name : 64), nm, f->value_len, take);
        if (push(l, nm, take_name) < 0 || push(l, f->value, take) < 0) goto fail;
    }
    if (nfields > ncopy && cl < sizeof(cut) - 100)
        cl += (size_t)snprintf(cut + cl, sizeof(cut) - cl, "%s%zu more fields dropped", cl ? "; " : "",
                               nfields - ncopy);
    size_t rl = strnlen(reason, CW_DEAD_TEXT_MAX), sl = strnlen(source_id, CW_DEAD_TEXT_MAX);
    if (cl && (push(l, "cut", 3) < 0 || push(l, cut, cl) < 0)) goto fail;
    if (push(l, "reason", 6) < 0 || push(l, reason, rl) < 0 || push(l, "source_id", 9) < 0 ||
        push(l, source_id, sl) < 0)
        goto fail;
    l->q = q;
    append(q, l);
    q->total++;
    note(q, source_id, reason, now_ms);
    return 0;
fail:
    letter_free(l);
    CW_LOG(CW_LOG_ERR, "stream", "out of memory: entry %s could not be dead-lettered (%s)", source_id, reason);
    return -1;
}

/* ---- Sending ------------------------------------------------------------ */

#define SEND_WINDOW 256 /* dead letters in flight at most */

static void on_reply(cw_conn *c, redisReply *r, void *privdata) {
    (void)c;
    letter *l = privdata;
    cw_dead *q = l->q;
    l->in_flight = 0;
    q->in_flight--;
    if (!r || r->type == REDIS_REPLY_ERROR) {
        /* stays queued, sent again on the next call */
        if (r && !q->refused)
            CW_LOG(CW_LOG_ERR, "stream", "Redis refuses dead letters (XADD %s: %s); they stay queued and are retried",
                   q->cfg->stream_dead_key, r->str);
        if (r) q->refused = 1;
        return;
    }
    if (q->refused) CW_LOG(CW_LOG_NOTICE, "stream", "dead letters are accepted again (%zu queued)", q->n);
    q->refused = 0;
    l->done = 1;
    while (q->head && q->head->done) {
        letter *h = q->head;
        if (!(q->head = h->next)) q->tail = NULL;
        q->n--;
        q->bytes -= letter_bytes(h);
        letter_free(h);
    }
}

void cw_dead_send(cw_dead *q, cw_conn *w) {
    if (!cw_conn_is_ready(w)) return;
    char maxlen[24];
    int ml = snprintf(maxlen, sizeof(maxlen), "%d", q->cfg->stream_dead_maxlen);
    for (letter *l = q->head; l && q->in_flight < SEND_WINDOW; l = l->next) {
        if (l->in_flight || l->done) continue;
        cw_resp *cmd = &q->cmd;
        cw_resp_begin(cmd, l->argc + 3);
        cw_resp_arg(cmd, l->argv[0], l->argvlen[0]);
        cw_resp_arg(cmd, l->argv[1], l->argvlen[1]);
        cw_resp_arg(cmd, "MAXLEN", 6);
        cw_resp_arg(cmd, "~", 1);
        cw_resp_arg(cmd, maxlen, (size_t)ml);
        for (int i = 2; i < l->argc; i++) cw_resp_arg(cmd, l->argv[i], l->argvlen[i]);
        if (cw_conn_send(w, cmd, 0, on_reply, l) < 0) return;
        l->in_flight = 1;
        q->in_flight++;
    }
}

size_t cw_dead_pending(const cw_dead *q) {
    return q->n;
}

size_t cw_dead_pending_bytes(const cw_dead *q) {
    return q->bytes;
}

uint64_t cw_dead_total(const cw_dead *q) {
    return q->total;
}

void cw_dead_set_total(cw_dead *q, uint64_t n) {
    q->total = n;
}

/* ---- Snapshot ------------------------------------------------------------ */

/* The format predates the module: a count, then each letter's argc and
 * arguments from "XADD". */
void cw_dead_save(const cw_dead *q, cw_snap_writer *w) {
    uint64_t n = 0;
    for (const letter *l = q->head; l; l = l->next) n += !l->done;
    cw_snap_put_u64(w, n);
    for (const letter *l = q->head; l; l = l->next) {
        if (l->done) continue;
        cw_snap_put_u32(w, (uint32_t)l->argc);
        for (int i = 0; i < l->argc; i++) cw_snap_put_bytes(w, l->argv[i], l->argvlen[i]);
    }
}

/* The most arguments a queued letter has: XADD key *, the fields, cut,
 * reason, source_id. */
#define MAX_ARGC (3 + 2 * CW_DEAD_MAX_FIELDS + 6)

int cw_dead_load(cw_dead *q, cw_snap_reader *r) {
    uint64_t n = cw_snap_get_u64(r);
    for (uint64_t k = 0; k < n && !r->bad; k++) {
        uint32_t argc = cw_snap_get_u32(r);
        if (argc < 3 || argc > MAX_ARGC) return r->bad = 1, -1;
        letter *l = letter_new(argc);
        if (!l) return -1;
        for (uint32_t i = 0; i < argc; i++) {
            size_t len;
            const char *p = cw_snap_get_bytes(r, CW_DEAD_MAX_BYTES, &len);
            if (!p || push(l, p, len) < 0) {
                letter_free(l);
                return -1;
            }
        }
        l->q = q;
        append(q, l);
    }
    return r->bad ? -1 : 0;
}
