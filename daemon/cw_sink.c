#include "cw_sink.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "../proto/cw_json.h"

#include "cw_log.h"
#include "cw_map.h"
#include "cw_period.h"
#include "cw_snap.h"

typedef struct cw_sink cw_sink;
/* An alert state change: queued until Redis acknowledged it, then (when
 * firing) kept in the firing map until its resolution is acknowledged. */
typedef struct queued {
    struct queued *next;
    int in_flight;
    int firing;
    char unit[16];
    const char *id; /* inside json[], after the JSON's NUL */
    size_t id_len;
    size_t len;
    char json[]; /* the JSON, NUL, the id, NUL */
} queued;

/* One transaction of alerts in flight: `n` queued alerts from `first` on
 * (contiguous: nothing is unlinked while in flight). */
typedef struct batch {
    cw_sink *sink;
    queued *first;
    size_t n;
} batch;

/* The head of every record a replay holds (PROTOCOL.md §3b): when its id
 * was first held (the net change goes out in that order, see held_order)
 * and which transition was its last word. */
typedef struct held_rec {
    uint64_t seq;  /* ids first held before this one */
    uint64_t last; /* replay_judged when it was last held */
    int raw;       /* a held_light (its id not yet worded), else a held */
    int firing;
} held_rec;

/* A replay's last word on one alert id: the alert as the engine last
 * raised it, copied flat (its strings in str[], at offsets; NO_STR for
 * NULL). Its JSON is written only if the replay ends with it as a net
 * change. */
#define HELD_STRS 11 /* id level label rule scope unit indicator period dept pros message */
#define NO_STR UINT32_MAX
typedef struct held {
    held_rec r;
    size_t cap; /* bytes of str[] */
    int has_value, rank, peers;
    double value, threshold;
    int64_t deadline_ms, event_ts;
    uint32_t off[HELD_STRS];
    char str[];
} held;

/* A deadline light held raw (cw_sink_hold_light): the facts of its
 * cw_light, under a key of what makes its alert id (clock, light, due
 * day, unit, case: one id for a given set of rules), worded by the rules
 * only if the replay ends with it as a net change. */
typedef struct held_light {
    held_rec r;
    size_t cap;      /* bytes of str[] */
    size_t key_len;  /* str[0, key_len) */
    int days_left;
    int64_t ts;
    uint32_t dept, pros; /* offsets in str[] */
    char str[];      /* the key (LIGHT_KEY_HEAD bytes, unit, NUL, case id), NUL, dept, NUL, pros, NUL */
} held_light;
#define LIGHT_KEY_HEAD 10 /* clock, light, due day (8 bytes) */

/* Bump allocation for what lives until the end of a replay (raw lights,
 * the ids worded at the end): freed all at once, never one by one. */
typedef struct chunk {
    struct chunk *next;
    size_t used, cap;
    max_align_t data[];
} chunk;
#define CHUNK_BYTES (256 * 1024)

static void *arena_alloc(chunk **arena, size_t n) {
    n = (n + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
    chunk *c = *arena;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > CHUNK_BYTES ? n : CHUNK_BYTES;
        if (!(c = malloc(sizeof(*c) + cap))) return NULL;
        c->next = *arena;
        c->used = 0;
        c->cap = cap;
        *arena = c;
    }
    void *p = (char *)c->data + c->used;
    c->used += n;
    return p;
}

static void arena_free(chunk **arena) {
    while (*arena) {
        chunk *n = (*arena)->next;
        free(*arena);
        *arena = n;
    }
}

#define BATCH_ALERTS 256           /* alerts per transaction at most */
#define BATCH_BYTES (256 * 1024)   /* and JSON bytes */

struct cw_sink {
    const cw_config *cfg;
    queued *head, *tail;
    queued *unsent; /* the first queued alert not in flight (in flight ones come first) */
    size_t n;
    size_t batches;  /* transactions in flight */
    cw_map *firing;  /* id -> queued (the firing alert's record, owned) as Redis acknowledged it */
    cw_map *seen;    /* scratch of send_batch: id -> last record of it in the batch */
    int rewrite;     /* the firing hash is to be rewritten whole before the queue is sent */
    int rewriting;   /* that rewrite is under way: parts sent, the swap not yet answered */
    size_t rewrite_pos;  /* the firing set's iteration: where the next part starts */
    int rewrite_done;    /* every part and the swap sent */
    int rewrite_failed_logged;
    char maxlen[16];
    char log_position[48]; /* id of the last alert log entry acknowledged */
    /* a --replay (PROTOCOL.md §3b): transitions are held, not sent */
    int replay;        /* 0 none, 1 running, 2 ended (the net change waits for `before`) */
    int replay_rebuild; /* the engine started empty (--rebuild) */
    int before_fetch;   /* 1: the firing hash is to be read (HGETALL), 2: being read */
    cw_map *before;     /* id -> queued (owned, firing): the state before the replay */
    cw_map *held;       /* id -> held (owned): the replay's last word on each id */
    cw_map *lights;     /* light key -> held_light (in light_arena): the same, for deadline lights held raw */
    chunk *light_arena;
    const cw_rules *light_rules; /* what words the raw lights (the engine's, until a reload says otherwise) */
    int lights_worded;  /* a reload worded the raw lights: the rest of the replay's lights come worded */
    int lights_mixed;   /* and so some lights may be held both raw and worded (or one fell back to worded) */
    uint64_t held_seq;  /* ids first held (held_rec.seq) */
    uint64_t replay_judged; /* transitions held */
    int64_t replay_end_at;  /* the wall clock cw_sink_replay_end was given */
    int64_t replay_last_at; /* and cw_sink_put, last */
    cw_json json;          /* reused for every alert */
    cw_resp cmd;           /* reused for every command */
    char unit_channel[300]; /* "<channel>:" and room for a unit */
    size_t unit_channel_len;
};

/* The alert transaction (one per batch): MULTI, the batch's log entries
 * (XADD each), the net change of the firing hash (HSET of the ids firing
 * at the batch's end, HDEL of those resolved; HDEL from the acks of every
 * id resolved in the batch), the publications (two each, in order), EXEC.
 * Nothing between MULTI and EXEC is visible alone, so the net change of a
 * batch is the change of each of its entries. */

/* The rewrite of the firing hash from what the sink holds: written into
 * <firing>:rewrite in parts of REWRITE_PART alerts (pipelined, so that a
 * million firing alerts never hold Redis for long nor fill the socket
 * buffer at once), then swapped in by this script, atomically: nobody
 * sees the hash half written. The old hash is UNLINKed (freed in the
 * background). Acknowledgements of ids no longer firing go.
 * KEYS: firing, the part key, acks. ARGV: the count of alerts written.
 * A part that did not land makes the count differ: an error, and the
 * rewrite starts again. Returns the acknowledgements removed. */
#define REWRITE_PART 1000
static const char swap_script[] =
    "if redis.call('HLEN', KEYS[2]) ~= tonumber(ARGV[1]) then\n"
    "  redis.call('UNLINK', KEYS[2])\n"
    "  return redis.error_reply('firing rewrite incomplete')\n"
    "end\n"
    "redis.call('UNLINK', KEYS[1])\n"
    "if tonumber(ARGV[1]) > 0 then redis.call('RENAME', KEYS[2], KEYS[1]) end\n"
    "local gone = 0\n"
    "for _, id in ipairs(redis.call('HKEYS', KEYS[3])) do\n"
    "  if redis.call('HEXISTS', KEYS[1], id) == 0 then redis.call('HDEL', KEYS[3], id) gone = gone + 1 end\n"
    "end\n"
    "return gone\n";

cw_sink *cw_sink_new(const cw_config *cfg) {
    cw_sink *s = calloc(1, sizeof(*s));
    if (!s) return NULL;
    s->firing = cw_map_new();
    s->seen = cw_map_new();
    if (!s->firing || !s->seen) {
        cw_map_free(s->firing);
        cw_map_free(s->seen);
        free(s);
        return NULL;
    }
    s->cfg = cfg;
    s->rewrite = 1; /* the hash may hold what an earlier process left */
    snprintf(s->maxlen, sizeof(s->maxlen), "%d", cfg->alerts_log_maxlen);
    cw_json_init(&s->json);
    cw_resp_init(&s->cmd);
    int n = snprintf(s->unit_channel, sizeof(s->unit_channel), "%s:", cfg->alerts_channel);
    s->unit_channel_len = n > 0 && (size_t)n < sizeof(s->unit_channel) ? (size_t)n : 0;
    return s;
}

/* Frees a map and the values it owns (NULL: nothing). */
static void free_map_values(cw_map *m) {
    if (!m) return;
    size_t pos = 0;
    const char *k;
    size_t kl;
    void *v;
    while (cw_map_next(m, &pos, &k, &kl, &v)) free(v);
    cw_map_free(m);
}

void cw_sink_free(cw_sink *s) {
    if (!s) return;
    while (s->head) {
        queued *n = s->head->next;
        free(s->head);
        s->head = n;
    }
    size_t pos = 0;
    const char *k;
    size_t kl;
    void *v;
    while (cw_map_next(s->firing, &pos, &k, &kl, &v)) free(v);
    cw_map_free(s->firing);
    cw_map_free(s->seen);
    free_map_values(s->before);
    free_map_values(s->held);
    cw_map_free(s->lights);
    arena_free(&s->light_arena);
    cw_json_destroy(&s->json);
    cw_resp_destroy(&s->cmd);
    free(s);
}

/* "2020-08-04T00:00:00+08:00" in the configured local time. */
static void iso_local(const cw_config *cfg, int64_t ms, char *out, size_t len) {
    int64_t day = cw_period_day(ms, cfg->utc_offset_min);
    int64_t sec = (ms - cw_period_day_start(day, cfg->utc_offset_min)) / 1000;
    const char *off = cfg->utc_offset_min == 0 ? "+00:00" : cfg->utc_offset;
    size_t ol = strlen(off);
    if (len < 20 + ol) {
        if (len) out[0] = '\0';
        return;
    }
    /* by hand: every deadline alert carries one */
    cw_period_day_date(day, out);
    int h = (int)(sec / 3600), m = (int)(sec / 60 % 60), sc = (int)(sec % 60);
    out[10] = 'T', out[11] = (char)('0' + h / 10), out[12] = (char)('0' + h % 10), out[13] = ':';
    out[14] = (char)('0' + m / 10), out[15] = (char)('0' + m % 10), out[16] = ':';
    out[17] = (char)('0' + sc / 10), out[18] = (char)('0' + sc % 10);
    memcpy(out + 19, off, ol + 1);
}

/* The alert's JSON (PROTOCOL.md §3) into j; NULL when out of memory. */
static const char *alert_json(cw_json *j, const cw_config *cfg, const cw_alert *a, int64_t emitted_at, int replay,
                              size_t *len) {
    cw_json_begin(j);
    cw_json_str(j, "id", a->id);
    cw_json_str(j, "state", a->firing ? "firing" : "resolved");
    cw_json_str(j, "level", a->level);
    cw_json_str(j, "label", a->label);
    cw_json_str(j, "rule", a->rule);
    cw_json_str(j, "scope", a->scope);
    if (a->unit && a->unit[0]) cw_json_str(j, "unit", a->unit);
    if (a->indicator) {
        cw_json_str(j, "indicator", a->indicator);
        if (a->has_value) cw_json_real(j, "value", (double)llround(a->value * 10000) / 10000.0);
        cw_json_real(j, "threshold", a->threshold);
    }
    if (a->period) cw_json_str(j, "period", a->period);
    if (a->deadline_ms) {
        char iso[40];
        iso_local(cfg, a->deadline_ms, iso, sizeof(iso));
        cw_json_str(j, "deadline", iso);
    }
    if (a->dept && a->dept[0]) cw_json_str(j, "dept", a->dept);
    if (a->pros && a->pros[0]) cw_json_str(j, "pros", a->pros);
    if (a->rank) {
        cw_json_int(j, "rank", a->rank);
        cw_json_int(j, "peers", a->peers);
    }
    cw_json_int(j, "event_ts", a->event_ts);
    cw_json_int(j, "emitted_at", emitted_at);
    if (replay) cw_json_bool(j, "replay", 1);
    cw_json_str(j, "message", a->message);
    return cw_json_finish(j, len);
}

/* One allocation: the record, its JSON and its id. */
static queued *queued_new(const char *json, size_t len, const char *unit, const char *id, size_t id_len,
                          int firing) {
    queued *q = malloc(sizeof(*q) + len + 1 + id_len + 1);
    if (!q) return NULL;
    q->next = NULL;
    q->in_flight = 0;
    q->firing = firing;
    snprintf(q->unit, sizeof(q->unit), "%s", unit ? unit : "");
    q->len = len;
    memcpy(q->json, json, len);
    q->json[len] = '\0';
    char *idp = q->json + len + 1;
    memcpy(idp, id, id_len);
    idp[id_len] = '\0';
    q->id = idp;
    q->id_len = id_len;
    return q;
}

static void enqueue(cw_sink *s, queued *q) {
    if (s->tail) s->tail->next = q;
    else s->head = q;
    s->tail = q;
    if (!s->unsent) s->unsent = q;
    s->n++;
}

static int hold(cw_sink *s, const cw_alert *a, int64_t emitted_at);

int cw_sink_put(cw_sink *s, const cw_alert *a, int64_t emitted_at) {
    if (s->replay) return hold(s, a, emitted_at);
    size_t len;
    const char *json = alert_json(&s->json, s->cfg, a, emitted_at, 0, &len);
    queued *q = json ? queued_new(json, len, a->unit, a->id, strlen(a->id), a->firing) : NULL;
    if (!q) return -1;
    enqueue(s, q);
    CW_LOG(CW_LOG_INFO, "alert", "%s %s", a->firing ? "firing" : "resolved", a->id);
    return 0;
}

/* A state Redis holds now (acknowledged, or found in the log): a firing
 * record q goes into the firing map (taking q), a resolution takes the
 * id out (q is freed). Either way q is no longer the caller's. */
static void firing_apply(cw_sink *s, queued *q) {
    queued *old = cw_map_del(s->firing, q->id, q->id_len);
    free(old);
    q->next = NULL;
    q->in_flight = 0;
    if (!q->firing || cw_map_put_borrowed(s->firing, q->id, q->id_len, q) < 0) {
        if (q->firing) CW_LOG(CW_LOG_ERR, "alert", "out of memory keeping firing alert %s", q->id);
        free(q);
    }
}

/* ---- --replay (PROTOCOL.md §3b) ------------------------------------------ */

/* The strings of a, in the order of held.off. */
static void alert_strs(const cw_alert *a, const char *v[HELD_STRS]) {
    v[0] = a->id, v[1] = a->level, v[2] = a->label, v[3] = a->rule, v[4] = a->scope, v[5] = a->unit;
    v[6] = a->indicator, v[7] = a->period, v[8] = a->dept, v[9] = a->pros, v[10] = a->message;
}

static const char *held_str(const held *h, int i) {
    return h->off[i] == NO_STR ? NULL : h->str + h->off[i];
}

/* The alert a held record is a copy of (its strings are the record's). */
static void held_alert(const held *h, cw_alert *a) {
    memset(a, 0, sizeof(*a));
    a->id = held_str(h, 0), a->level = held_str(h, 1), a->label = held_str(h, 2), a->rule = held_str(h, 3);
    a->scope = held_str(h, 4), a->unit = held_str(h, 5), a->indicator = held_str(h, 6), a->period = held_str(h, 7);
    a->dept = held_str(h, 8), a->pros = held_str(h, 9), a->message = held_str(h, 10);
    a->firing = h->r.firing, a->has_value = h->has_value, a->value = h->value, a->threshold = h->threshold;
    a->deadline_ms = h->deadline_ms, a->rank = h->rank, a->peers = h->peers, a->event_ts = h->event_ts;
}

/* a's strings and facts into h (which has room). */
static void held_fill(held *h, const cw_alert *a, const char *const v[HELD_STRS], const size_t len[HELD_STRS]) {
    size_t at = 0;
    for (int i = 0; i < HELD_STRS; i++) {
        if (!v[i]) {
            h->off[i] = NO_STR;
            continue;
        }
        h->off[i] = (uint32_t)at;
        memcpy(h->str + at, v[i], len[i] + 1);
        at += len[i] + 1;
    }
    h->r.firing = a->firing, h->has_value = a->has_value, h->value = a->value, h->threshold = a->threshold;
    h->deadline_ms = a->deadline_ms, h->rank = a->rank, h->peers = a->peers, h->event_ts = a->event_ts;
}

/* Makes a the last word of its id in s->held as of transition `last`
 * (the record is reused when the new one fits). A new id is given `seq`
 * (UINT64_MAX: the next one, counted as held). Returns its record, or
 * NULL (memory). */
static held *held_put(cw_sink *s, const cw_alert *a, uint64_t seq, uint64_t last) {
    const char *v[HELD_STRS];
    size_t len[HELD_STRS], need = 0;
    alert_strs(a, v);
    for (int i = 0; i < HELD_STRS; i++) need += v[i] ? (len[i] = strlen(v[i])) + 1 : 0;
    size_t idl = len[0];
    held *h = cw_map_get(s->held, a->id, idl);
    if (!h || h->cap < need) {
        size_t cap = need < 256 ? 256 : need + need / 4;
        held *n = realloc(h, sizeof(*h) + cap);
        if (!n) return NULL;
        if (cw_map_put(s->held, a->id, idl, n) < 0) {
            if (!h) free(n);
            else cw_map_del(s->held, a->id, idl), free(n);
            return NULL;
        }
        if (!h) {
            n->r.raw = 0;
            n->r.seq = seq == UINT64_MAX ? s->held_seq++ : seq;
        }
        h = n;
        h->cap = cap;
    }
    held_fill(h, a, v, len);
    h->r.last = last;
    return h;
}

/* A transition judged during a replay: it becomes the id's last word.
 * Nothing is written or logged one by one. Returns 0 or -1 (memory). */
static int hold(cw_sink *s, const cw_alert *a, int64_t emitted_at) {
    if (!held_put(s, a, UINT64_MAX, s->replay_judged)) return -1;
    s->replay_last_at = emitted_at;
    s->replay_judged++;
    return 0;
}

/* The light a raw record holds (its strings are the record's). */
static void light_of(const held_light *h, cw_light *l) {
    memset(l, 0, sizeof(*l));
    l->clock = (unsigned char)h->str[0];
    l->light = (unsigned char)h->str[1];
    memcpy(&l->due_day, h->str + 2, sizeof(l->due_day));
    l->unit = h->str + LIGHT_KEY_HEAD;
    l->case_id = l->unit + strlen(l->unit) + 1; /* the key ends in a NUL */
    l->firing = h->r.firing;
    l->days_left = h->days_left;
    l->ts = h->ts;
    l->dept = h->str + h->dept;
    l->pros = h->str + h->pros;
}

/* A raw light worded (cw_rules_light_words) into s->held, keeping its
 * place and its last word. */
static void light_worded(const cw_alert *a, void *data) {
    void **ctx = data;
    cw_sink *s = ctx[0];
    const held_light *hl = ctx[1];
    held *h = cw_map_get(s->held, a->id, strlen(a->id));
    if (h && h->r.last > hl->r.last) { /* the same id held worded after it (never with the shipped rules) */
        if (hl->r.seq < h->r.seq) h->r.seq = hl->r.seq;
        return;
    }
    uint64_t seq = h && h->r.seq < hl->r.seq ? h->r.seq : hl->r.seq;
    h = held_put(s, a, seq, hl->r.last);
    if (h) h->r.seq = seq;
    else CW_LOG(CW_LOG_ERR, "alert", "out of memory holding alert %s", a->id);
}

/* A reload is about to free the rules that word the raw lights: each
 * is worded now, by the rules of its time, and held as worded alerts
 * are; the rest of the replay's lights come worded (cw_sink_hold_light
 * declines them), so that an id is held once. */
static void word_held_lights(cw_sink *s) {
    size_t pos = 0, kl;
    const char *k;
    void *v;
    while (cw_map_next(s->lights, &pos, &k, &kl, &v)) {
        cw_light l;
        light_of(v, &l);
        void *ctx[2] = {s, v};
        cw_rules_light_words(s->light_rules, &l, light_worded, ctx);
    }
    cw_map_free(s->lights);
    arena_free(&s->light_arena);
    s->lights = cw_map_new(); /* empty from now on; NULL (memory) is never looked at again */
    s->lights_worded = s->lights_mixed = 1;
    s->light_rules = NULL;
}

int cw_sink_hold_light(cw_sink *s, const cw_light *l, const cw_rules *rules, int64_t emitted_at) {
    if (!s->replay || s->lights_worded) return 0;
    if (!l) {
        if (s->light_rules) word_held_lights(s);
        return 0;
    }
    char key[LIGHT_KEY_HEAD + 16 + 1 + 512];
    size_t ul = strlen(l->unit), cl = strlen(l->case_id), dl = strlen(l->dept), pl = strlen(l->pros);
    if (LIGHT_KEY_HEAD + ul + 1 + cl > sizeof(key) || (unsigned)l->clock > 255 || (unsigned)l->light > 255)
        return s->lights_mixed = 1, 0; /* not from the case table: worded now */
    key[0] = (char)l->clock;
    key[1] = (char)l->light;
    memcpy(key + 2, &l->due_day, sizeof(l->due_day));
    memcpy(key + LIGHT_KEY_HEAD, l->unit, ul);
    key[LIGHT_KEY_HEAD + ul] = '\0';
    memcpy(key + LIGHT_KEY_HEAD + ul + 1, l->case_id, cl);
    size_t kl = LIGHT_KEY_HEAD + ul + 1 + cl, need = kl + 1 + dl + 1 + pl + 1;
    held_light *h = cw_map_get(s->lights, key, kl);
    if (!h || h->cap < need) { /* a grown record leaves the old one in the arena (rare) */
        size_t cap = need + 16; /* room for a longer dept or prosecutor later */
        held_light *n = arena_alloc(&s->light_arena, sizeof(*n) + cap);
        if (!n) return s->lights_mixed = 1, 0;
        if (h) *n = *h;
        memcpy(n->str, key, kl);
        n->str[kl] = '\0';
        n->key_len = kl;
        n->cap = cap;
        if (h) cw_map_del(s->lights, key, kl); /* its key was the old record's */
        if (cw_map_put_borrowed(s->lights, n->str, kl, n) < 0)
            return s->lights_mixed = 1, 0; /* h's facts are lost: out of memory */
        if (!h) {
            n->r.raw = 1;
            n->r.seq = s->held_seq++;
        }
        h = n;
    }
    h->r.firing = l->firing;
    h->r.last = s->replay_judged;
    h->days_left = l->days_left;
    h->ts = l->ts;
    h->dept = (uint32_t)(kl + 1);
    memcpy(h->str + h->dept, l->dept, dl + 1);
    h->pros = (uint32_t)(h->dept + dl + 1);
    memcpy(h->str + h->pros, l->pros, pl + 1);
    s->light_rules = rules;
    s->replay_last_at = emitted_at;
    s->replay_judged++;
    return 1;
}

/* Keeps a copy of q (firing or not) as the state before the replay. */
static int before_put(cw_sink *s, const queued *q) {
    queued *old = cw_map_del(s->before, q->id, q->id_len);
    free(old);
    if (!q->firing) return 0;
    queued *c = queued_new(q->json, q->len, q->unit, q->id, q->id_len, 1);
    if (!c || cw_map_put_borrowed(s->before, c->id, c->id_len, c) < 0) {
        free(c);
        return -1;
    }
    return 0;
}

int cw_sink_replay_begin(cw_sink *s, int rebuild) {
    if (s->replay) return 0;
    s->before = cw_map_new();
    s->held = cw_map_new();
    s->lights = cw_map_new();
    if (!s->before || !s->held || !s->lights) goto nomem;
    s->replay = 1;
    s->replay_rebuild = rebuild;
    s->replay_judged = 0;
    s->held_seq = 0;
    s->lights_worded = s->lights_mixed = 0;
    s->light_rules = NULL;
    if (rebuild) { /* what the deployment holds, read before anything rewrites it */
        s->before_fetch = 1;
        return 0;
    }
    /* what Redis holds, and what it will hold once the queue is in */
    size_t pos = 0;
    const char *k;
    size_t kl;
    void *v;
    while (cw_map_next(s->firing, &pos, &k, &kl, &v))
        if (before_put(s, v) < 0) goto nomem;
    for (const queued *q = s->head; q; q = q->next)
        if (before_put(s, q) < 0) goto nomem;
    return 0;
nomem:
    free_map_values(s->before);
    free_map_values(s->held);
    cw_map_free(s->lights);
    arena_free(&s->light_arena);
    s->before = s->held = s->lights = NULL;
    s->replay = 0;
    CW_LOG(CW_LOG_ERR, "alert", "out of memory starting the replay: its alerts are published one by one");
    return -1;
}

/* The reply of HGETALL <firing_key> at the start of a rebuild: the state
 * before it, and what the sink knows the hash holds. */
static void on_before(cw_conn *c, redisReply *r, void *privdata) {
    (void)c;
    cw_sink *s = privdata;
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        if (r) CW_LOG(CW_LOG_ERR, "alert", "reading %s: %s (tried again)", s->cfg->alerts_firing_key,
                      r->type == REDIS_REPLY_ERROR ? r->str : "not a hash");
        s->before_fetch = 1;
        return;
    }
    s->before_fetch = 0;
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        const redisReply *id = r->element[i], *js = r->element[i + 1];
        if (id->type != REDIS_REPLY_STRING || js->type != REDIS_REPLY_STRING) continue;
        json_t *a = json_loadb(js->str, js->len, 0, NULL);
        const char *unit = json_string_value(json_object_get(a, "unit"));
        queued *q = queued_new(js->str, js->len, unit, id->str, id->len, 1);
        json_decref(a);
        if (!q || before_put(s, q) < 0) {
            CW_LOG(CW_LOG_ERR, "alert", "out of memory reading %s", s->cfg->alerts_firing_key);
            free(q);
            continue;
        }
        firing_apply(s, q);
    }
    CW_LOG(CW_LOG_INFO, "alert", "replay: %zu alerts firing before it (%s)", cw_map_size(s->before),
           s->cfg->alerts_firing_key);
}

/* HGETALL <firing_key>, before anything else on this connection (before
 * the rewrite a new sink owes, which would otherwise empty it). */
static int send_before(cw_sink *s, cw_conn *w) {
    cw_resp_begin(&s->cmd, 2);
    cw_resp_arg(&s->cmd, "HGETALL", 7);
    cw_resp_str(&s->cmd, s->cfg->alerts_firing_key);
    if (cw_conn_send(w, &s->cmd, 0, on_before, s) < 0) return -1;
    s->before_fetch = 2;
    s->rewrite = 0; /* the hash is what the sink will know */
    return 0;
}

/* The firing record `f` turned resolved by a rebuild that never raised
 * it: its JSON with "state" resolved, emitted_at now and "replay": true
 * (before "message", as the sink writes them). NULL when out of memory. */
static queued *resolved_of(const queued *f, int64_t now) {
    json_t *a = json_loadb(f->json, f->len, 0, NULL), *o = json_object();
    queued *q = NULL;
    if (!a || !o || !json_is_object(a)) goto done;
    const char *k;
    json_t *v;
    json_object_foreach(a, k, v) {
        if (strcmp(k, "message") == 0) json_object_set_new(o, "replay", json_true());
        if (strcmp(k, "state") == 0) json_object_set_new(o, k, json_string("resolved"));
        else if (strcmp(k, "emitted_at") == 0) json_object_set_new(o, k, json_integer(now));
        else if (strcmp(k, "replay") != 0) json_object_set(o, k, v);
    }
    char *js = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
    if (js) q = queued_new(js, strlen(js), f->unit, f->id, f->id_len, 0);
    free(js);
done:
    json_decref(a);
    json_decref(o);
    return q;
}

/* One id held, with its record (see held_order). */
typedef struct held_id {
    held_rec *r;
    const char *id; /* in held_order's keys */
    size_t len;
} held_id;

/* Every id held so far in the order it was first held (the order the net
 * change goes out in: history's, oldest first), a raw light's id worded
 * (only the id) on the way; an id held twice (a light worded on a
 * reload, then held again) takes its first place and its last word.
 * When nothing was firing before, a raw light not firing now is no change
 * and is left out when its id cannot be cut (see quiet below).
 * Fills *order (the caller's to free) and returns how many it holds, with
 * *ids (id -> held_id *, the caller's to free with cw_map_free) and the
 * ids' text in *keys (arena_free); -1 when out of memory. */
static long held_order(cw_sink *s, held_id **order, cw_map **ids, chunk **keys) {
    size_t n = (size_t)s->held_seq, pos = 0, kl, m = 0;
    const char *k;
    void *v;
    *ids = cw_map_new();
    held_rec **r = calloc(n ? n : 1, sizeof(*r));
    held_id *out = calloc(n ? n : 1, sizeof(*out));
    if (!*ids || !r || !out) goto nomem;
    while (cw_map_next(s->held, &pos, &k, &kl, &v)) r[((held_rec *)v)->seq] = v;
    pos = 0;
    while (s->lights && cw_map_next(s->lights, &pos, &k, &kl, &v)) r[((held_rec *)v)->seq] = v;
    /* nothing firing before, and each light held one way: a raw light not
     * firing now is no change, and when its id cannot be cut it is no
     * other record's id either (see below): it is left out, unworded */
    int quiet = !s->lights_mixed && !cw_map_size(s->before);
    for (size_t i = 0; i < n; i++) {
        if (!r[i]) continue;
        char buf[CW_LIGHT_ID_MAX];
        const char *id = buf;
        size_t idl;
        if (r[i]->raw) {
            cw_light l;
            light_of((const held_light *)r[i], &l);
            if (quiet && !r[i]->firing && cw_rules_light_id_whole(s->light_rules, &l)) continue;
            idl = cw_rules_light_id(s->light_rules, &l, buf);
        } else {
            id = held_str((const held *)r[i], 0);
            idl = strlen(id);
        }
        /* Ids of distinct records differ (a light's key makes its id, no
         * rule words another's), unless lights were held both ways or an
         * id was cut: only then may one be here already. */
        held_id *first = s->lights_mixed || idl >= CW_LIGHT_ID_MAX - 1 ? cw_map_get(*ids, id, idl) : NULL;
        if (first) { /* merged: the first place, the last word */
            if (r[i]->last > first->r->last) first->r = r[i];
            continue;
        }
        char *key = arena_alloc(keys, idl + 1);
        if (!key) goto nomem;
        memcpy(key, id, idl + 1);
        out[m] = (held_id){r[i], key, idl};
        if (cw_map_put_borrowed(*ids, key, idl, &out[m]) < 0) goto nomem;
        m++;
    }
    free(r);
    *order = out;
    return (long)m;
nomem:
    cw_map_free(*ids);
    *ids = NULL;
    free(r);
    free(out);
    return -1;
}

/* A net change worded (a raw light, by the rules) into a new record. */
typedef struct net_light {
    cw_sink *s;
    int64_t now;
    const char *id;
    size_t id_len;
    queued *q;
} net_light;

static void net_light_worded(const cw_alert *a, void *data) {
    net_light *n = data;
    size_t len;
    const char *json = alert_json(&n->s->json, n->s->cfg, a, n->now, 1, &len);
    n->q = json ? queued_new(json, len, a->unit, n->id, n->id_len, a->firing) : NULL;
}

/* Calls fn with every net change of the replay so far (PROTOCOL.md §3b),
 * as a new record (the callee's), emitted at `now`, in the order their
 * ids were first held (held_order), then (a rebuild) the alerts firing
 * before that the replay never raised, resolved. Returns the count, or
 * -1 (memory). */
static long net_changes(cw_sink *s, int64_t now, void (*fn)(cw_sink *s, queued *q, void *data), void *data) {
    long n = 0;
    size_t pos, kl;
    const char *k;
    void *v;
    held_id *order = NULL;
    cw_map *ids = NULL;
    chunk *keys = NULL;
    long nids = held_order(s, &order, &ids, &keys);
    if (nids < 0) return arena_free(&keys), -1;
    for (long i = 0; i < nids; i++) {
        const held_rec *r = order[i].r;
        k = order[i].id, kl = order[i].len;
        if (r->firing == (cw_map_size(s->before) && cw_map_get(s->before, k, kl))) continue;
        queued *q = NULL;
        if (r->raw) {
            cw_light l;
            light_of((const held_light *)r, &l);
            net_light nl = {s, now, k, kl, NULL};
            cw_rules_light_words(s->light_rules, &l, net_light_worded, &nl);
            q = nl.q;
        } else {
            cw_alert a;
            held_alert((const held *)r, &a);
            size_t len;
            const char *json = alert_json(&s->json, s->cfg, &a, now, 1, &len);
            q = json ? queued_new(json, len, a.unit, k, kl, r->firing) : NULL;
        }
        if (!q) goto nomem;
        fn(s, q, data);
        n++;
    }
    if (s->replay_rebuild) { /* else the engine started with the ids it did not change */
        pos = 0;
        while (cw_map_next(s->before, &pos, &k, &kl, &v)) {
            if (cw_map_get(ids, k, kl)) continue;
            queued *q = resolved_of(v, now);
            if (!q) goto nomem;
            fn(s, q, data);
            n++;
        }
    }
    cw_map_free(ids);
    free(order);
    arena_free(&keys);
    return n;
nomem:
    cw_map_free(ids);
    free(order);
    arena_free(&keys);
    return -1;
}

static void enqueue_change(cw_sink *s, queued *q, void *data) {
    (void)data;
    enqueue(s, q);
}

/* The end of a replay, once `before` is known: the net changes queued,
 * the firing hash to be rewritten whole, and the sink back to normal. */
static void replay_finish(cw_sink *s, int64_t now) {
    size_t judged = (size_t)s->replay_judged;
    long n = net_changes(s, now, enqueue_change, NULL);
    if (n < 0) CW_LOG(CW_LOG_ERR, "alert", "out of memory queueing the replay's net change: part of it is lost");
    free_map_values(s->before);
    free_map_values(s->held);
    cw_map_free(s->lights);
    arena_free(&s->light_arena);
    s->before = s->held = s->lights = NULL;
    s->light_rules = NULL;
    s->replay = 0;
    s->rewrite = 1;
    CW_LOG(CW_LOG_NOTICE, "alert", "replay ended: %zu alert state changes judged, %ld net changes published", judged,
           n < 0 ? 0 : n);
}

int cw_sink_replay_end(cw_sink *s, int64_t now) {
    if (!s->replay) return 0;
    s->replay = 2;
    s->replay_end_at = now;
    if (s->before_fetch) return 1; /* finished once the firing hash was read (cw_sink_send) */
    replay_finish(s, now);
    return 0;
}

int cw_sink_replaying(const cw_sink *s) {
    return s->replay;
}

/* Takes q (not in flight) off the queue; prev is the record before it. */
static void unlink_queued(cw_sink *s, queued *prev, queued *q) {
    if (prev) prev->next = q->next;
    else s->head = q->next;
    if (s->tail == q) s->tail = prev;
    if (s->unsent == q) s->unsent = q->next;
    s->n--;
}

static int send_cmd(cw_sink *s, cw_conn *w);
static size_t unit_channel(const cw_sink *s, const queued *q, char *chan);

/* Publishes an alert whose log entry landed (from on_alerts): a
 * subscriber never hears of a state the log does not hold, nor of one
 * twice (a refused transaction is sent again, and published only then),
 * and finds the firing hash changed when the message comes. Lost only
 * with the connection. */
static void publish(cw_sink *s, cw_conn *w, const queued *q) {
    cw_resp *cmd = &s->cmd;
    char chan[sizeof(s->unit_channel) + sizeof(q->unit)];
    size_t cl = unit_channel(s, q, chan);
    for (int k = 0; k < (cl ? 2 : 1); k++) {
        cw_resp_begin(cmd, 3);
        cw_resp_arg(cmd, "PUBLISH", 7);
        if (k) cw_resp_arg(cmd, chan, cl);
        else cw_resp_str(cmd, s->cfg->alerts_channel);
        cw_resp_arg(cmd, q->json, q->len);
        send_cmd(s, w);
    }
}

/* The alert transaction's reply (EXEC's): the batch's alerts are in the
 * log and the firing hash changed with them, or none is (a connection
 * lost, EXECABORT) and they go again. A refused XADD (a key of the wrong
 * type) counts as not logged. When they go again, the connection is
 * dropped first, so that no batch sent after them lands before them, and
 * the firing hash is rewritten. */
static void on_alerts(cw_conn *c, redisReply *r, void *privdata) {
    batch *b = privdata;
    cw_sink *s = b->sink;
    s->batches--;
    const char *why = NULL;
    if (!r) {
        why = ""; /* connection lost: sent again once it is back */
    } else if (r->type == REDIS_REPLY_ERROR) {
        why = r->str;
    } else if (r->type != REDIS_REPLY_ARRAY || r->elements < b->n) {
        why = "the transaction was not executed";
    } else {
        for (size_t i = 0; i < r->elements; i++) {
            const redisReply *e = r->element[i];
            if (e->type == REDIS_REPLY_ERROR) {
                CW_LOG(CW_LOG_ERR, "alert", "alert log or firing hash write refused: %s", e->str);
                if (i < b->n) why = e->str;
            }
        }
        if (!why && b->n && r->element[b->n - 1]->type == REDIS_REPLY_STRING)
            snprintf(s->log_position, sizeof(s->log_position), "%s", r->element[b->n - 1]->str);
    }
    if (why && why[0]) CW_LOG(CW_LOG_ERR, "alert", "alert transaction not applied: %s", why);
    queued *q = b->first;
    for (size_t i = 0; i < b->n; i++) {
        queued *next = q->next;
        q->in_flight = 0;
        if (!why) {
            /* acknowledged: off the queue (acks come in order, so q is at
             * the head; be safe anyway), into the firing map, in order */
            queued *prev = NULL, *p = s->head;
            for (; p && p != q; p = p->next) prev = p;
            if (!p) { /* cannot happen: only records not in flight leave early */
                q = next;
                continue;
            }
            publish(s, c, q);
            unlink_queued(s, prev, q);
            firing_apply(s, q);
        }
        q = next;
    }
    free(b);
    if (why) {
        s->unsent = s->head; /* look from the start again */
        s->rewrite = 1;
        if (r) cw_conn_drop(c, "alert transaction not applied");
    }
}

/* A part of a rewrite: a refusal is seen by the swap (its count differs). */
static void on_rewrite_part(cw_conn *c, redisReply *r, void *privdata) {
    (void)c;
    cw_sink *s = privdata;
    if (r && r->type == REDIS_REPLY_ERROR && !s->rewrite_failed_logged++)
        CW_LOG(CW_LOG_ERR, "alert", "rewriting %s refused: %s (tried again)", s->cfg->alerts_firing_key, r->str);
}

/* The swap that ends a rewrite (see swap_script). */
static void on_rewrite(cw_conn *c, redisReply *r, void *privdata) {
    (void)c;
    cw_sink *s = privdata;
    s->rewriting = 0;
    if (!r) {
        s->rewrite = 1;
        return;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        if (!s->rewrite_failed_logged++)
            CW_LOG(CW_LOG_ERR, "alert", "rewriting %s refused: %s (tried again)", s->cfg->alerts_firing_key, r->str);
        s->rewrite = 1;
        return;
    }
    s->rewrite_failed_logged = 0;
    CW_LOG(CW_LOG_INFO, "alert", "%s rewritten: %zu alerts firing%s", s->cfg->alerts_firing_key,
           cw_map_size(s->firing), r->type == REDIS_REPLY_INTEGER && r->integer ? ", stale acknowledgements removed" : "");
}

void cw_sink_resync(cw_sink *s) {
    s->rewrite = 1;
}

/* The rewrite of the whole firing hash, its parts sent while the writer
 * holds fewer than max_unsent bytes (0: no limit). The firing set does not
 * change meanwhile: no batch is in flight during a rewrite. Returns 0
 * when all of it is sent, 1 when parts are left, -1 on a send failure
 * (the connection is going away: started again once it is back). */
static int send_rewrite(cw_sink *s, cw_conn *w, size_t max_unsent) {
    const cw_config *cfg = s->cfg;
    cw_resp *cmd = &s->cmd;
    char part_key[300];
    int pkl = snprintf(part_key, sizeof(part_key), "%s:rewrite", cfg->alerts_firing_key);
    if (!s->rewriting) { /* a new rewrite */
        s->rewrite = 0;
        s->rewriting = 1;
        s->rewrite_done = 0;
        s->rewrite_pos = 0;
        cw_resp_begin(cmd, 2);
        cw_resp_arg(cmd, "DEL", 3);
        cw_resp_arg(cmd, part_key, (size_t)pkl);
        if (cw_conn_send(w, cmd, 0, on_rewrite_part, s) < 0) return -1;
    }
    size_t total = cw_map_size(s->firing);
    while (!s->rewrite_done) {
        if (max_unsent && cw_conn_unsent_bytes(w) >= max_unsent) return 1;
        const char *ids[REWRITE_PART], *jsons[REWRITE_PART];
        size_t idl[REWRITE_PART], jl[REWRITE_PART], n = 0;
        const char *k;
        size_t kl;
        void *v;
        while (n < REWRITE_PART && cw_map_next(s->firing, &s->rewrite_pos, &k, &kl, &v)) {
            const queued *q = v;
            ids[n] = q->id, idl[n] = q->id_len, jsons[n] = q->json, jl[n] = q->len;
            n++;
        }
        if (n) {
            cw_resp_begin(cmd, 2 + 2 * (int)n);
            cw_resp_arg(cmd, "HSET", 4);
            cw_resp_arg(cmd, part_key, (size_t)pkl);
            for (size_t i = 0; i < n; i++) {
                cw_resp_arg(cmd, ids[i], idl[i]);
                cw_resp_arg(cmd, jsons[i], jl[i]);
            }
            if (cw_conn_send(w, cmd, 0, on_rewrite_part, s) < 0) return -1;
        }
        if (n == REWRITE_PART) continue;
        char count[24];
        int cl = snprintf(count, sizeof(count), "%zu", total);
        cw_resp_begin(cmd, 7);
        cw_resp_arg(cmd, "EVAL", 4);
        cw_resp_arg(cmd, swap_script, sizeof(swap_script) - 1);
        cw_resp_arg(cmd, "3", 1);
        cw_resp_str(cmd, cfg->alerts_firing_key);
        cw_resp_arg(cmd, part_key, (size_t)pkl);
        cw_resp_str(cmd, cfg->alerts_acks_key);
        cw_resp_arg(cmd, count, (size_t)cl);
        if (cw_conn_send(w, cmd, 0, on_rewrite, s) < 0) return -1;
        s->rewrite_done = 1;
    }
    return 0;
}

static int send_cmd(cw_sink *s, cw_conn *w) {
    return cw_conn_send(w, &s->cmd, 0, NULL, NULL);
}

/* "<channel>:<unit>" into chan (room for both); its length, 0 for none. */
static size_t unit_channel(const cw_sink *s, const queued *q, char *chan) {
    if (!q->unit[0] || !s->unit_channel_len) return 0;
    size_t ul = strlen(q->unit);
    memcpy(chan, s->unit_channel, s->unit_channel_len);
    memcpy(chan + s->unit_channel_len, q->unit, ul);
    return s->unit_channel_len + ul;
}

/* One transaction of up to BATCH_ALERTS alerts from s->unsent on (see
 * above). Returns 0, or -1 when it could not be handed to the connection
 * (then dropped, if a part was: Redis discards a MULTI never EXECed). */
static int send_batch(cw_sink *s, cw_conn *w) {
    const cw_config *cfg = s->cfg;
    cw_resp *cmd = &s->cmd;
    size_t n = 0, seen = 0, bytes = 0, nset = 0, ndel = 0, nresolved = 0;
    /* the last record of each id in the batch: its state at the end */
    for (queued *q = s->unsent; q && n < BATCH_ALERTS && bytes < BATCH_BYTES; q = q->next) {
        queued *last = cw_map_get(s->seen, q->id, q->id_len);
        if (cw_map_put_borrowed(s->seen, q->id, q->id_len, q) < 0) break; /* memory: the rest later */
        seen++;
        if (last) nset -= (size_t)last->firing, ndel -= (size_t)!last->firing;
        nset += (size_t)q->firing, ndel += (size_t)!q->firing, nresolved += (size_t)!q->firing;
        bytes += q->len;
        n++;
    }
    queued *q, *first = s->unsent;
    batch *b = n ? malloc(sizeof(*b)) : NULL;
    int rc = -1, started = 0;
    if (!b) goto done;
    *b = (batch){s, s->unsent, n};
    cw_resp_begin(cmd, 1);
    cw_resp_arg(cmd, "MULTI", 5);
    if (send_cmd(s, w) < 0) goto done;
    started = 1;
    q = s->unsent;
    for (size_t i = 0; i < n; i++, q = q->next) {
        cw_resp_begin(cmd, 8);
        cw_resp_arg(cmd, "XADD", 4);
        cw_resp_str(cmd, cfg->alerts_log_key);
        cw_resp_arg(cmd, "MAXLEN", 6);
        cw_resp_arg(cmd, "~", 1);
        cw_resp_str(cmd, s->maxlen);
        cw_resp_arg(cmd, "*", 1);
        cw_resp_arg(cmd, "a", 1);
        cw_resp_arg(cmd, q->json, q->len);
        if (send_cmd(s, w) < 0) goto done;
    }
    /* the net change of the hashes: the ids' last records */
    for (int pass = 0; pass < 3; pass++) {
        size_t count = pass == 0 ? nset : pass == 1 ? ndel : nresolved;
        if (!count) continue;
        cw_resp_begin(cmd, 2 + (int)(pass == 0 ? 2 * count : count));
        cw_resp_arg(cmd, pass == 0 ? "HSET" : "HDEL", 4);
        cw_resp_str(cmd, pass == 2 ? cfg->alerts_acks_key : cfg->alerts_firing_key);
        q = s->unsent;
        for (size_t i = 0; i < n; i++, q = q->next) {
            int last = cw_map_get(s->seen, q->id, q->id_len) == q;
            /* acks end with every resolution; the firing hash takes the last word */
            if (pass == 2 ? q->firing : !last || q->firing != (pass == 0)) continue;
            cw_resp_arg(cmd, q->id, q->id_len);
            if (pass == 0) cw_resp_arg(cmd, q->json, q->len);
        }
        if (send_cmd(s, w) < 0) goto done;
    }
    cw_resp_begin(cmd, 1);
    cw_resp_arg(cmd, "EXEC", 4);
    if (cw_conn_send(w, cmd, 0, on_alerts, b) < 0) goto done;
    s->batches++;
    b = NULL;
    started = 0;
    rc = 0;
    q = s->unsent;
    for (size_t i = 0; i < n; i++, q = q->next) q->in_flight = 1;
    s->unsent = q;
done:
    q = first;
    for (size_t i = 0; i < seen && q; i++, q = q->next) cw_map_del(s->seen, q->id, q->id_len);
    if (rc < 0) {
        free(b);
        if (started) cw_conn_drop(w, "out of memory sending alerts");
    }
    return rc;
}

int cw_sink_send(cw_sink *s, cw_conn *w, size_t max_unsent) {
    if (!w || !cw_conn_is_ready(w)) return s->head != NULL || s->rewrite || s->before_fetch;
    if (s->before_fetch == 1 && send_before(s, w) < 0) return 1;
    if (s->before_fetch) return 1; /* nothing before it is known */
    if (s->replay == 2) replay_finish(s, s->replay_end_at);
    if (s->rewrite || s->rewriting) {
        /* from the acknowledged state: nothing may be in flight before it */
        if (s->batches) return 1;
        if (s->rewrite && s->rewriting) s->rewriting = 0; /* started again (a lost connection) */
        int rc = send_rewrite(s, w, max_unsent);
        if (rc < 0) {
            s->rewriting = 0;
            s->rewrite = 1;
            return 1;
        }
        if (rc > 0 || s->rewriting) return 1; /* alerts go out once the swap is answered */
    }
    while (s->unsent && s->unsent->in_flight) s->unsent = s->unsent->next;
    while (s->unsent) {
        if (max_unsent && cw_conn_unsent_bytes(w) >= max_unsent) return 1;
        if (send_batch(s, w) < 0) return 1;
    }
    return 0;
}

size_t cw_sink_pending(const cw_sink *s) {
    return s->n + (s->replay ? 1 : 0); /* a replay's net change, not yet queued, counts as one */
}

size_t cw_sink_firing(const cw_sink *s) {
    return cw_map_size(s->firing);
}

int cw_sink_delivered(cw_sink *s, const char *json, size_t len) {
    queued *prev = NULL;
    for (queued *q = s->head; q; prev = q, q = q->next) {
        if (q->in_flight || q->len != len || memcmp(q->json, json, len) != 0) continue;
        unlink_queued(s, prev, q);
        firing_apply(s, q);
        return 1; /* a replay's `before` counted it already, as queued */
    }
    /* not queued here (published after the snapshot): its state is what
     * the firing hash holds, and so what the sink must know */
    json_t *a = json_loadb(json, len, 0, NULL);
    const char *id = json_string_value(json_object_get(a, "id"));
    const char *st = json_string_value(json_object_get(a, "state"));
    const char *unit = json_string_value(json_object_get(a, "unit"));
    int firing = st && strcmp(st, "firing") == 0;
    if (id && st && (firing || strcmp(st, "resolved") == 0)) { /* not "acknowledged" */
        queued *q = queued_new(json, len, unit, id, strlen(id), firing);
        /* published by a lost process: before a replay too */
        if (q && s->replay && s->before && !s->replay_rebuild && before_put(s, q) < 0)
            CW_LOG(CW_LOG_ERR, "alert", "out of memory reading back alert %s", id);
        if (q) firing_apply(s, q);
        else CW_LOG(CW_LOG_ERR, "alert", "out of memory reading back alert %s", id);
    }
    json_decref(a);
    return 0;
}

void cw_sink_each(const cw_sink *s, void (*fn)(const char *json, void *data), void *data) {
    for (const queued *q = s->head; q; q = q->next) fn(q->json, data);
}

const char *cw_sink_log_position(const cw_sink *s) {
    return s->log_position;
}

static void save_record(cw_snap_writer *w, const queued *q) {
    cw_snap_put_bytes(w, q->json, q->len);
    cw_snap_put_str(w, q->unit);
    cw_snap_put_bytes(w, q->id, q->id_len);
    cw_snap_put_u8(w, (uint8_t)q->firing);
}

static void list_change(cw_sink *s, queued *q, void *data) {
    (void)s;
    queued **list = data;
    q->next = *list;
    *list = q;
}

/* Section: the log position; the queue (oldest first); the firing map.
 * In the middle of a replay, the queue saved ends with the net change so
 * far (the engine's state saved with it has made it): a daemon started
 * from this snapshot publishes it. That costs the sink's scratch JSON,
 * hence the cast (snapshots are written in a forked child). */
void cw_sink_save(const cw_sink *s, cw_snap_writer *w) {
    queued *changes = NULL;
    size_t nchanges = 0;
    if (s->replay && !s->before_fetch && net_changes((cw_sink *)s, s->replay_last_at, list_change, &changes) < 0)
        CW_LOG(CW_LOG_ERR, "snapshot", "out of memory saving the replay's net change so far");
    queued *rev = NULL; /* oldest first: the order does not matter, ids are distinct */
    while (changes) {
        queued *n = changes->next;
        changes->next = rev;
        rev = changes;
        changes = n;
        nchanges++;
    }
    cw_snap_put_str(w, s->log_position);
    cw_snap_put_u64(w, s->n + nchanges);
    for (const queued *q = s->head; q; q = q->next) save_record(w, q);
    while (rev) {
        queued *n = rev->next;
        save_record(w, rev);
        free(rev);
        rev = n;
    }
    cw_snap_put_u64(w, cw_map_size(s->firing));
    size_t pos = 0;
    const char *k;
    size_t kl;
    void *v;
    while (cw_map_next(s->firing, &pos, &k, &kl, &v)) save_record(w, v);
}

static queued *load_record(cw_snap_reader *r) {
    size_t len, id_len;
    char unit[16];
    const char *json = cw_snap_get_bytes(r, 1 << 20, &len);
    if (!json || cw_snap_get_str(r, unit, sizeof(unit)) < 0) return NULL;
    const char *id = cw_snap_get_bytes(r, 4096, &id_len);
    uint8_t firing = cw_snap_get_u8(r);
    if (!id || r->bad || firing > 1) return r->bad = 1, NULL;
    return queued_new(json, len, unit, id, id_len, firing);
}

/* A version-1 record: the JSON and the unit; its id and state are the
 * JSON's own. */
static queued *load_record_v1(cw_snap_reader *r) {
    size_t len;
    char unit[16];
    const char *json = cw_snap_get_bytes(r, 1 << 20, &len);
    if (!json || cw_snap_get_str(r, unit, sizeof(unit)) < 0) return NULL;
    json_t *a = json_loadb(json, len, 0, NULL);
    const char *id = json_string_value(json_object_get(a, "id"));
    const char *st = json_string_value(json_object_get(a, "state"));
    queued *q = id && st ? queued_new(json, len, unit, id, strlen(id), strcmp(st, "firing") == 0) : NULL;
    json_decref(a);
    if (!q) r->bad = 1;
    return q;
}

/* Version 1 had no firing set: it starts with what the queue holds and
 * fills as alerts change (the firing hash did not exist then). */
int cw_sink_load(cw_sink *s, cw_snap_reader *r) {
    int v1 = r->version < 2;
    cw_snap_get_str(r, s->log_position, sizeof(s->log_position));
    uint64_t n = cw_snap_get_u64(r);
    for (uint64_t i = 0; i < n && !r->bad; i++) {
        queued *q = v1 ? load_record_v1(r) : load_record(r);
        if (!q) return -1;
        enqueue(s, q);
    }
    uint64_t m = v1 ? 0 : cw_snap_get_u64(r);
    for (uint64_t i = 0; i < m && !r->bad; i++) {
        queued *q = load_record(r);
        if (!q) return -1;
        if (!q->firing) {
            free(q);
            return r->bad = 1, -1;
        }
        firing_apply(s, q);
    }
    s->rewrite = 1;
    return r->bad ? -1 : 0;
}
