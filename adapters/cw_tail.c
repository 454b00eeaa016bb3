#include "cw_tail.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "../daemon/cw_period.h"

static const char *colour(const char *level) {
    if (!level) return "";
    if (strcmp(level, "yellow") == 0) return "\033[33m";
    if (strcmp(level, "orange") == 0) return "\033[38;5;208m";
    if (strcmp(level, "red") == 0) return "\033[31m";
    return "";
}

static const char *str(json_t *o, const char *k) {
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

/* Prints one alert; returns 1 when printed, 0 when filtered out. */
static int show(const char *json, size_t len, const cw_tail_opts *o, FILE *out) {
    json_error_t je;
    json_t *a = json_loadb(json, len, 0, &je);
    if (!a) {
        fprintf(out, "(not JSON: %.*s)\n", (int)len, json);
        return 1;
    }
    if (o->unit && strncmp(str(a, "unit"), o->unit, strlen(o->unit)) != 0) {
        json_decref(a);
        return 0;
    }
    if (o->json) {
        fprintf(out, "%.*s\n", (int)len, json);
    } else {
        int64_t at = json_integer_value(json_object_get(a, "emitted_at"));
        time_t t = (time_t)(at / 1000 + o->utc_offset_min * 60);
        struct tm tm;
        char when[32];
        gmtime_r(&t, &tm);
        strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
        int resolved = strcmp(str(a, "state"), "resolved") == 0;
        const char *c = o->color ? (resolved ? "\033[32m" : colour(str(a, "level"))) : "";
        fprintf(out, "%s%s %-8s %-6s %s%s  %s\n", c, when, str(a, "state"), str(a, "level"),
                str(a, "message"), o->color ? "\033[0m" : "", str(a, "id"));
    }
    json_decref(a);
    return 1;
}

int cw_tail_run(redisContext *rc, const char *log_key, const cw_tail_opts *o, FILE *out, char *err, size_t errlen) {
    char last_id[64] = "0-0";
    uint64_t shown = 0;
    if (o->from) {
        snprintf(last_id, sizeof(last_id), "%s", o->from);
    } else if (o->last > 0) {
        /* the last few, oldest first */
        redisReply *r = redisCommand(rc, "XREVRANGE %s + - COUNT %d", log_key, o->last);
        if (!r || (r->type != REDIS_REPLY_ARRAY && r->type != REDIS_REPLY_NIL)) {
            snprintf(err, errlen, "reading the last alerts of %s failed: %s", log_key,
                     r && r->type == REDIS_REPLY_ERROR ? r->str : rc->err ? rc->errstr : "unexpected reply");
            if (r) freeReplyObject(r);
            return -1;
        }
        if (r->type == REDIS_REPLY_ARRAY && r->elements) {
            /* start just before the oldest of them */
            const char *oldest = r->element[r->elements - 1]->element[0]->str;
            unsigned long long ms, seq;
            if (sscanf(oldest, "%llu-%llu", &ms, &seq) == 2) {
                if (seq) snprintf(last_id, sizeof(last_id), "%llu-%llu", ms, seq - 1);
                else if (ms) snprintf(last_id, sizeof(last_id), "%llu-%llu", ms - 1, (unsigned long long)-1);
            }
        }
        freeReplyObject(r);
    }
    if (!o->from && strcmp(last_id, "0-0") == 0) {
        /* --last 0, or an empty log: only what comes from now on */
        redisReply *x = redisCommand(rc, "XINFO STREAM %s", log_key);
        for (size_t i = 0; x && x->type == REDIS_REPLY_ARRAY && i + 1 < x->elements; i += 2)
            if (strcmp(x->element[i]->str, "last-generated-id") == 0)
                snprintf(last_id, sizeof(last_id), "%s", x->element[i + 1]->str);
        if (x) freeReplyObject(x);
    }
    for (;;) {
        /* blocks 2 s at a time: the context's own timeout must be longer */
        redisReply *r = o->follow ? redisCommand(rc, "XREAD COUNT 1000 BLOCK 2000 STREAMS %s %s", log_key, last_id)
                                  : redisCommand(rc, "XREAD COUNT 1000 STREAMS %s %s", log_key, last_id);
        if (!r || r->type == REDIS_REPLY_ERROR) {
            snprintf(err, errlen, "reading %s after %s failed: %s", log_key, last_id,
                     r && r->type == REDIS_REPLY_ERROR ? r->str : rc->err ? rc->errstr : "no reply");
            if (r) freeReplyObject(r);
            return -1;
        }
        if (r->type != REDIS_REPLY_ARRAY || r->elements == 0) { /* nil: nothing new */
            freeReplyObject(r);
            if (!o->follow) return 0;
            continue;
        }
        redisReply *entries = r->element[0]->element[1];
        for (size_t i = 0; i < entries->elements; i++) {
            redisReply *e = entries->element[i], *f = e->element[1];
            snprintf(last_id, sizeof(last_id), "%s", e->element[0]->str);
            for (size_t j = 0; j + 1 < f->elements; j += 2) {
                if (strcmp(f->element[j]->str, "a") != 0) continue;
                shown += (uint64_t)show(f->element[j + 1]->str, f->element[j + 1]->len, o, out);
            }
            if (o->count && shown >= o->count) break;
        }
        fflush(out);
        freeReplyObject(r);
        if (o->count && shown >= o->count) return 0;
    }
}
