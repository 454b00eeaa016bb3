#include "cw_sink.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cw_log.h"
#include "cw_period.h"
#include "cw_snap.h"

typedef struct queued {
    char *json;
    char unit[16];
    int in_flight;
    struct queued *next;
} queued;

struct cw_sink {
    const cw_config *cfg;
    queued *head, *tail;
    queued *unsent; /* the first queued alert not in flight (in flight ones come first) */
    size_t n;
    uint64_t published;
    char maxlen[16];
    char log_position[48]; /* id of the last alert log entry acknowledged */
};

cw_sink *cw_sink_new(const cw_config *cfg) {
    cw_sink *s = calloc(1, sizeof(*s));
    if (!s) return NULL;
    s->cfg = cfg;
    snprintf(s->maxlen, sizeof(s->maxlen), "%d", cfg->alerts_log_maxlen);
    return s;
}

void cw_sink_free(cw_sink *s) {
    if (!s) return;
    while (s->head) {
        queued *n = s->head->next;
        free(s->head->json);
        free(s->head);
        s->head = n;
    }
    free(s);
}

/* "2020-08-04T00:00:00+08:00" in the configured local time. */
static void iso_local(const cw_config *cfg, int64_t ms, char *out, size_t len) {
    int64_t local = ms + (int64_t)cfg->utc_offset_min * 60000;
    int64_t day = cw_period_day(ms, cfg->utc_offset_min);
    int64_t sec = (local - day * 86400000LL) / 1000;
    char date[11];
    cw_period_day_date(day, date);
    const char *off = cfg->utc_offset_min == 0 ? "+00:00" : cfg->utc_offset;
    snprintf(out, len, "%sT%02d:%02d:%02d%s", date, (int)(sec / 3600), (int)(sec / 60 % 60), (int)(sec % 60), off);
}

char *cw_sink_json(const cw_config *cfg, const cw_alert *a, int64_t emitted_at) {
    json_t *o = json_object();
    if (!o) return NULL;
    json_object_set_new(o, "id", json_string(a->id));
    json_object_set_new(o, "state", json_string(a->firing ? "firing" : "resolved"));
    json_object_set_new(o, "level", json_string(a->level));
    json_object_set_new(o, "label", json_string(a->label));
    json_object_set_new(o, "rule", json_string(a->rule));
    json_object_set_new(o, "scope", json_string(a->scope));
    if (a->unit && a->unit[0]) json_object_set_new(o, "unit", json_string(a->unit));
    if (a->indicator) {
        json_object_set_new(o, "indicator", json_string(a->indicator));
        if (a->has_value) json_object_set_new(o, "value", json_real((double)llround(a->value * 10000) / 10000.0));
        json_object_set_new(o, "threshold", json_real(a->threshold));
    }
    if (a->period) json_object_set_new(o, "period", json_string(a->period));
    if (a->deadline_ms) {
        char iso[40];
        iso_local(cfg, a->deadline_ms, iso, sizeof(iso));
        json_object_set_new(o, "deadline", json_string(iso));
    }
    json_object_set_new(o, "event_ts", json_integer(a->event_ts));
    json_object_set_new(o, "emitted_at", json_integer(emitted_at));
    json_object_set_new(o, "message", json_string(a->message));
    char *text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
    json_decref(o);
    return text;
}

int cw_sink_put(cw_sink *s, const cw_alert *a, int64_t emitted_at) {
    queued *q = calloc(1, sizeof(*q));
    if (!q) return -1;
    q->json = cw_sink_json(s->cfg, a, emitted_at);
    if (!q->json) {
        free(q);
        return -1;
    }
    snprintf(q->unit, sizeof(q->unit), "%s", a->unit ? a->unit : "");
    if (s->tail) s->tail->next = q;
    else s->head = q;
    s->tail = q;
    if (!s->unsent) s->unsent = q;
    s->n++;
    CW_LOG(CW_LOG_INFO, "alert", "%s %s", a->firing ? "firing" : "resolved", a->id);
    return 0;
}

typedef struct sent {
    cw_sink *s;
    queued *q;
} sent;

static void on_xadd(cw_conn *c, redisReply *r, void *privdata) {
    (void)c;
    sent *x = privdata;
    cw_sink *s = x->s;
    queued *q = x->q;
    free(x);
    if (!r || r->type == REDIS_REPLY_ERROR) {
        if (r) CW_LOG(CW_LOG_ERR, "alert", "alert log XADD refused: %s", r->str);
        q->in_flight = 0; /* sent again after the reconnect or the next flush */
        s->unsent = s->head; /* look from the start again */
        return;
    }
    if (r->type == REDIS_REPLY_STRING) snprintf(s->log_position, sizeof(s->log_position), "%s", r->str);
    /* acknowledged: unlink q (acks come in order, but be safe) */
    queued **pp = &s->head, *prev = NULL;
    while (*pp && *pp != q) prev = *pp, pp = &(*pp)->next;
    if (!*pp) return;
    *pp = q->next;
    if (s->tail == q) s->tail = prev;
    if (s->unsent == q) s->unsent = q->next;
    s->n--;
    s->published++;
    free(q->json);
    free(q);
}

static void on_publish(cw_conn *c, redisReply *r, void *privdata) {
    (void)c;
    (void)privdata;
    if (r && r->type == REDIS_REPLY_ERROR) CW_LOG(CW_LOG_ERR, "alert", "PUBLISH refused: %s", r->str);
}

void cw_sink_send(cw_sink *s, cw_conn *w) {
    if (!w || !cw_conn_is_ready(w)) return;
    const cw_config *cfg = s->cfg;
    for (queued *q = s->unsent ? s->unsent : s->head; q; q = q->next) {
        s->unsent = q;
        if (q->in_flight) continue;
        sent *x = malloc(sizeof(*x));
        if (!x) return;
        *x = (sent){s, q};
        size_t jl = strlen(q->json);
        const char *xa[] = {"XADD", cfg->alerts_log_key, "MAXLEN", "~", s->maxlen, "*", "a", q->json};
        size_t xl[] = {4, strlen(cfg->alerts_log_key), 6, 1, strlen(s->maxlen), 1, 1, jl};
        if (cw_conn_command(w, 8, xa, xl, 0, on_xadd, x) < 0) {
            free(x);
            return;
        }
        q->in_flight = 1;
        const char *pa[] = {"PUBLISH", cfg->alerts_channel, q->json};
        size_t pl[] = {7, strlen(cfg->alerts_channel), jl};
        cw_conn_command(w, 3, pa, pl, 0, on_publish, NULL);
        if (q->unit[0]) {
            char chan[300];
            snprintf(chan, sizeof(chan), "%s:%s", cfg->alerts_channel, q->unit);
            pa[1] = chan;
            pl[1] = strlen(chan);
            cw_conn_command(w, 3, pa, pl, 0, on_publish, NULL);
        }
        s->unsent = q->next;
    }
}

size_t cw_sink_pending(const cw_sink *s) {
    return s->n;
}

uint64_t cw_sink_published(const cw_sink *s) {
    return s->published;
}

int cw_sink_delivered(cw_sink *s, const char *json, size_t len) {
    queued *prev = NULL;
    for (queued *q = s->head; q; prev = q, q = q->next) {
        if (q->in_flight || strlen(q->json) != len || memcmp(q->json, json, len) != 0) continue;
        if (prev) prev->next = q->next;
        else s->head = q->next;
        if (s->tail == q) s->tail = prev;
        if (s->unsent == q) s->unsent = q->next;
        s->n--;
        free(q->json);
        free(q);
        return 1;
    }
    return 0;
}

void cw_sink_each(const cw_sink *s, void (*fn)(const char *json, void *data), void *data) {
    for (const queued *q = s->head; q; q = q->next) fn(q->json, data);
}

const char *cw_sink_log_position(const cw_sink *s) {
    return s->log_position;
}

void cw_sink_save(const cw_sink *s, cw_snap_writer *w) {
    cw_snap_put_str(w, s->log_position);
    cw_snap_put_u64(w, s->n);
    for (const queued *q = s->head; q; q = q->next) {
        cw_snap_put_str(w, q->json);
        cw_snap_put_str(w, q->unit);
    }
}

int cw_sink_load(cw_sink *s, cw_snap_reader *r) {
    cw_snap_get_str(r, s->log_position, sizeof(s->log_position));
    uint64_t n = cw_snap_get_u64(r);
    for (uint64_t i = 0; i < n && !r->bad; i++) {
        size_t len;
        const char *json = cw_snap_get_bytes(r, 1 << 20, &len);
        queued *q = calloc(1, sizeof(*q));
        if (!q) return -1;
        q->json = json ? strndup(json, len) : NULL;
        if (cw_snap_get_str(r, q->unit, sizeof(q->unit)) < 0 || !q->json) {
            free(q->json);
            free(q);
            return -1;
        }
        if (s->tail) s->tail->next = q;
        else s->head = q;
        s->tail = q;
        if (!s->unsent) s->unsent = q;
        s->n++;
    }
    return r->bad ? -1 : 0;
}
