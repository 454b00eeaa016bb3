#include "cw_sink.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../proto/cw_json.h"

#include "cw_log.h"
#include "cw_period.h"
#include "cw_snap.h"

typedef struct cw_sink cw_sink;
typedef struct queued {
    struct queued *next;
    cw_sink *sink; /* for the reply callback */
    int in_flight;
    char unit[16];
    size_t len;
    char json[]; /* NUL-terminated */
} queued;

struct cw_sink {
    const cw_config *cfg;
    queued *head, *tail;
    queued *unsent; /* the first queued alert not in flight (in flight ones come first) */
    size_t n;
    uint64_t published;
    char maxlen[16];
    char log_position[48]; /* id of the last alert log entry acknowledged */
    cw_json json;          /* reused for every alert */
    cw_resp cmd;           /* reused for every command */
    char unit_channel[300]; /* "<channel>:" and room for a unit */
    size_t unit_channel_len;
};

cw_sink *cw_sink_new(const cw_config *cfg) {
    cw_sink *s = calloc(1, sizeof(*s));
    if (!s) return NULL;
    s->cfg = cfg;
    snprintf(s->maxlen, sizeof(s->maxlen), "%d", cfg->alerts_log_maxlen);
    cw_json_init(&s->json);
    cw_resp_init(&s->cmd);
    int n = snprintf(s->unit_channel, sizeof(s->unit_channel), "%s:", cfg->alerts_channel);
    s->unit_channel_len = n > 0 && (size_t)n < sizeof(s->unit_channel) ? (size_t)n : 0;
    return s;
}

void cw_sink_free(cw_sink *s) {
    if (!s) return;
    while (s->head) {
        queued *n = s->head->next;
        free(s->head);
        s->head = n;
    }
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
static const char *alert_json(cw_json *j, const cw_config *cfg, const cw_alert *a, int64_t emitted_at, size_t *len) {
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
    cw_json_str(j, "message", a->message);
    return cw_json_finish(j, len);
}

/* One allocation: the record and its JSON. */
static queued *queued_new(cw_sink *s, const char *json, size_t len, const char *unit) {
    queued *q = malloc(sizeof(*q) + len + 1);
    if (!q) return NULL;
    q->next = NULL;
    q->sink = s;
    q->in_flight = 0;
    snprintf(q->unit, sizeof(q->unit), "%s", unit ? unit : "");
    q->len = len;
    memcpy(q->json, json, len);
    q->json[len] = '\0';
    return q;
}

static void enqueue(cw_sink *s, queued *q) {
    if (s->tail) s->tail->next = q;
    else s->head = q;
    s->tail = q;
    if (!s->unsent) s->unsent = q;
    s->n++;
}

int cw_sink_put(cw_sink *s, const cw_alert *a, int64_t emitted_at) {
    size_t len;
    const char *json = alert_json(&s->json, s->cfg, a, emitted_at, &len);
    queued *q = json ? queued_new(s, json, len, a->unit) : NULL;
    if (!q) return -1;
    enqueue(s, q);
    CW_LOG(CW_LOG_INFO, "alert", "%s %s", a->firing ? "firing" : "resolved", a->id);
    return 0;
}

static void on_xadd(cw_conn *c, redisReply *r, void *privdata) {
    (void)c;
    queued *q = privdata;
    cw_sink *s = q->sink;
    if (!r || r->type == REDIS_REPLY_ERROR) {
        if (r) CW_LOG(CW_LOG_ERR, "alert", "alert log XADD refused: %s", r->str);
        q->in_flight = 0;    /* sent again after the reconnect or the next flush */
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
    free(q);
}

static void on_publish(cw_conn *c, redisReply *r, void *privdata) {
    (void)c;
    (void)privdata;
    if (r && r->type == REDIS_REPLY_ERROR) CW_LOG(CW_LOG_ERR, "alert", "PUBLISH refused: %s", r->str);
}

int cw_sink_send(cw_sink *s, cw_conn *w, size_t max_unsent) {
    if (!w || !cw_conn_is_ready(w)) return s->head != NULL;
    const cw_config *cfg = s->cfg;
    cw_resp *cmd = &s->cmd;
    for (queued *q = s->unsent ? s->unsent : s->head; q; q = q->next) {
        s->unsent = q;
        if (q->in_flight) continue;
        if (max_unsent && cw_conn_unsent_bytes(w) >= max_unsent) return 1;
        cw_resp_begin(cmd, 8);
        cw_resp_arg(cmd, "XADD", 4);
        cw_resp_str(cmd, cfg->alerts_log_key);
        cw_resp_arg(cmd, "MAXLEN", 6);
        cw_resp_arg(cmd, "~", 1);
        cw_resp_str(cmd, s->maxlen);
        cw_resp_arg(cmd, "*", 1);
        cw_resp_arg(cmd, "a", 1);
        cw_resp_arg(cmd, q->json, q->len);
        if (cw_conn_send(w, cmd, 0, on_xadd, q) < 0) return 1;
        q->in_flight = 1;
        cw_resp_begin(cmd, 3);
        cw_resp_arg(cmd, "PUBLISH", 7);
        cw_resp_str(cmd, cfg->alerts_channel);
        cw_resp_arg(cmd, q->json, q->len);
        cw_conn_send(w, cmd, 0, on_publish, NULL);
        if (q->unit[0] && s->unit_channel_len) {
            size_t ul = strlen(q->unit);
            char chan[sizeof(s->unit_channel) + sizeof(q->unit)];
            memcpy(chan, s->unit_channel, s->unit_channel_len);
            memcpy(chan + s->unit_channel_len, q->unit, ul);
            cw_resp_begin(cmd, 3);
            cw_resp_arg(cmd, "PUBLISH", 7);
            cw_resp_arg(cmd, chan, s->unit_channel_len + ul);
            cw_resp_arg(cmd, q->json, q->len);
            cw_conn_send(w, cmd, 0, on_publish, NULL);
        }
        s->unsent = q->next;
    }
    return 0;
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
        if (q->in_flight || q->len != len || memcmp(q->json, json, len) != 0) continue;
        if (prev) prev->next = q->next;
        else s->head = q->next;
        if (s->tail == q) s->tail = prev;
        if (s->unsent == q) s->unsent = q->next;
        s->n--;
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
        char unit[16];
        if (!json || cw_snap_get_str(r, unit, sizeof(unit)) < 0) return -1;
        queued *q = queued_new(s, json, len, unit);
        if (!q) return -1;
        enqueue(s, q);
    }
    return r->bad ? -1 : 0;
}
