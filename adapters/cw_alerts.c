#include "cw_alerts.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "cw_args.h"
#include "cw_redis_sync.h"

/* One firing alert as read from the hash. */
typedef struct entry {
    json_t *a;         /* the alert (owned) */
    json_t *ack;       /* {"by","at","note"} or NULL (owned) */
    const char *unit;  /* "" when none (nation, the daemon's own) */
    const char *rule;
    const char *id;
    int sev;           /* 3 red, 2 orange, 1 yellow, 0 other */
    int64_t since;     /* when it began firing (ms) */
    int group_sev;     /* the most severe of its 院 and rule */
    int64_t group_since; /* the oldest of them */
} entry;

static const char *str(json_t *o, const char *k) {
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

static int severity(const char *level) {
    return strcmp(level, "red") == 0 ? 3 : strcmp(level, "orange") == 0 ? 2 : strcmp(level, "yellow") == 0 ? 1 : 0;
}

static int by_group(const void *x, const void *y) {
    const entry *a = x, *b = y;
    /* alerts with no 院 (the nation, the daemon's own) after the 院 */
    if (!a->unit[0] != !b->unit[0]) return a->unit[0] ? -1 : 1;
    int c = strcmp(a->unit, b->unit);
    return c ? c : strcmp(a->rule, b->rule);
}

/* 院 by code; in a 院, its rules most severe and oldest first; in a
 * rule, its alerts likewise. */
static int by_order(const void *x, const void *y) {
    const entry *a = x, *b = y;
    if (!a->unit[0] != !b->unit[0]) return a->unit[0] ? -1 : 1;
    int c = strcmp(a->unit, b->unit);
    if (c) return c;
    if (a->group_sev != b->group_sev) return b->group_sev - a->group_sev;
    if (a->group_since != b->group_since) return a->group_since < b->group_since ? -1 : 1;
    if ((c = strcmp(a->rule, b->rule))) return c;
    if (a->sev != b->sev) return b->sev - a->sev;
    if (a->since != b->since) return a->since < b->since ? -1 : 1;
    return strcmp(a->id, b->id);
}

/* The code the --unit option means: as given when digits, else the code
 * of the [units] name. NULL when no unit has that name. */
static const char *unit_code(const cw_config *cfg, const char *u) {
    if (u[0] && strspn(u, "0123456789") == strlen(u)) return u;
    for (size_t i = 0; i < cfg->nunits; i++)
        if (strcmp(cfg->units[i].name, u) == 0) return cfg->units[i].code;
    return NULL;
}

static int rule_matches(const char *rule, const char *want) {
    size_t n = strlen(want);
    return strncmp(rule, want, n) == 0 && (rule[n] == '\0' || rule[n] == '.' || want[n - 1] == '.');
}

/* now: what ages count to; wall: the wall clock (acks are made by people) */
static void print_entry(const entry *e, const cw_config *cfg, int64_t now, int64_t wall, FILE *out) {
    char since[32], open[32];
    cw_args_show_time(e->since, cfg->utc_offset_min, 0, since, sizeof(since));
    cw_args_show_duration(now - e->since, 0, open, sizeof(open));
    const char *level = str(e->a, "level");
    fprintf(out, "    %-6s open %-12s since %s  %s\n", level[0] ? level : "-", open, since, str(e->a, "message"));
    fprintf(out, "           id %s\n", e->id);
    if (e->ack) {
        char at[32], ago[32];
        int64_t t = json_integer_value(json_object_get(e->ack, "at"));
        cw_args_show_time(t, cfg->utc_offset_min, 0, at, sizeof(at));
        cw_args_show_duration(wall - t, 0, ago, sizeof(ago));
        const char *note = str(e->ack, "note");
        fprintf(out, "           acknowledged by %s at %s (%s ago)%s%s\n", str(e->ack, "by"), at, ago,
                note[0] ? ": " : "", note);
    }
}

int cw_alerts_list(redisContext *rc, const cw_config *cfg, const cw_alerts_opts *o, FILE *out, char *err,
                   size_t errlen) {
    const char *code = NULL;
    if (o->unit && !(code = unit_code(cfg, o->unit))) {
        snprintf(err, errlen, "--unit: '%s' is neither a unit code nor a name in [units]", o->unit);
        return -2;
    }
    if (o->level && !severity(o->level)) {
        snprintf(err, errlen, "--level must be yellow, orange or red, not '%s'", o->level);
        return -2;
    }
    redisReply *fr = cw_redis_sync_hgetall(rc, cfg->alerts_firing_key, err, errlen);
    if (!fr) return -1;
    redisReply *ar = cw_redis_sync_hgetall(rc, cfg->alerts_acks_key, err, errlen);
    if (!ar) {
        freeReplyObject(fr);
        return -1;
    }
    json_t *acks = json_object();
    for (size_t i = 0; i + 1 < ar->elements; i += 2) {
        json_t *ack = json_loads(ar->element[i + 1]->str, 0, NULL);
        if (ack) json_object_set_new(acks, ar->element[i]->str, ack);
    }
    entry *es = calloc(fr->elements / 2 + 1, sizeof(*es));
    size_t n = 0, total = fr->elements / 2, nacked = 0;
    /* a daemon on the event clock lives at its newest event: ages count to
     * the newest event time firing, not to the wall clock */
    int64_t now = o->now_ms, newest = 0;
    for (size_t i = 0; es && i + 1 < fr->elements; i += 2) {
        json_t *a = json_loads(fr->element[i + 1]->str, 0, NULL);
        if (!json_is_object(a)) {
            json_decref(a);
            continue;
        }
        entry *e = &es[n];
        e->a = a;
        e->id = fr->element[i]->str;
        e->unit = str(a, "unit");
        e->rule = str(a, "rule");
        e->sev = severity(str(a, "level"));
        json_t *ts = json_object_get(a, "event_ts");
        e->since = json_integer_value(ts ? ts : json_object_get(a, "emitted_at"));
        if (e->since > newest) newest = e->since;
        e->ack = json_object_get(acks, e->id);
        if (e->ack) json_incref(e->ack);
        int keep = (!code || strncmp(e->unit, code, strlen(code)) == 0) && (!o->rule || rule_matches(e->rule, o->rule)) &&
                   (!o->level || strcmp(str(a, "level"), o->level) == 0) &&
                   (o->acked < 0 || (e->ack != NULL) == (o->acked == 1));
        if (!keep) {
            json_decref(e->a);
            json_decref(e->ack);
            continue;
        }
        nacked += e->ack != NULL;
        n++;
    }
    json_decref(acks);
    if (cfg->clock == CW_CLOCK_EVENT && newest) now = newest;
    if (!es) {
        freeReplyObject(fr);
        freeReplyObject(ar);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    /* each group's most severe and oldest, for the order of the groups */
    qsort(es, n, sizeof(*es), by_group);
    for (size_t i = 0, j; i < n; i = j) {
        int sev = 0;
        int64_t since = INT64_MAX;
        for (j = i; j < n && by_group(&es[i], &es[j]) == 0; j++) {
            if (es[j].sev > sev) sev = es[j].sev;
            if (es[j].since < since) since = es[j].since;
        }
        for (size_t k = i; k < j; k++) es[k].group_sev = sev, es[k].group_since = since;
    }
    qsort(es, n, sizeof(*es), by_order);
    if (o->json) {
        for (size_t i = 0; i < n; i++) {
            if (es[i].ack) json_object_set(es[i].a, "ack", es[i].ack);
            char *s = json_dumps(es[i].a, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
            if (s) fprintf(out, "%s\n", s);
            free(s);
        }
    } else {
        if (n == total) fprintf(out, "%zu alerts firing, %zu acknowledged", n, nacked);
        else fprintf(out, "%zu of the %zu alerts firing, %zu of them acknowledged", n, total, nacked);
        if (now != o->now_ms) {
            char t[32];
            cw_args_show_time(now, cfg->utc_offset_min, 0, t, sizeof(t));
            fprintf(out, " (open for: event time, to the newest, %s: [daemon] clock = event)", t);
        }
        fputc('\n', out);
        for (size_t i = 0; i < n; i++) {
            const entry *e = &es[i];
            if (i == 0 || strcmp(es[i - 1].unit, e->unit) != 0) {
                const char *name = e->unit[0] ? cw_config_unit_name(cfg, e->unit) : NULL;
                if (!e->unit[0]) fprintf(out, "\n(no 院: the nation, or the daemon itself)\n");
                else if (name) fprintf(out, "\n%s %s\n", name, e->unit);
                else fprintf(out, "\n%s\n", e->unit);
            }
            if (i == 0 || by_group(&es[i - 1], e) != 0) {
                size_t c = 0;
                for (size_t k = i; k < n && by_group(&es[k], e) == 0; k++) c++;
                fprintf(out, "  %s %s (%zu)\n", e->rule, str(e->a, "label"), c);
            }
            print_entry(e, cfg, now, o->now_ms, out);
        }
    }
    for (size_t i = 0; i < n; i++) {
        json_decref(es[i].a);
        json_decref(es[i].ack);
    }
    free(es);
    freeReplyObject(fr);
    freeReplyObject(ar);
    return 0;
}

/* ---- casewatch ack ------------------------------------------------------ */

/* KEYS: firing, acks, log. ARGV: id, the firing JSON the ack was made
 * for, the ack record, the "acknowledged" JSON, maxlen, channel, unit
 * channel or "". Returns 0 when the id is not firing, -1 when it fires
 * with another JSON now (fired again: look again), else the log entry's
 * id. One script: the check and the writes happen together, so an ack
 * and the daemon's resolution (which removes the ack with the firing
 * entry) are one before the other, never interleaved. */
static const char ack_script[] =
    "local cur = redis.call('HGET', KEYS[1], ARGV[1])\n"
    "if not cur then return 0 end\n"
    "if cur ~= ARGV[2] then return -1 end\n"
    "redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])\n"
    "local xid = redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[5], '*', 'a', ARGV[4])\n"
    "redis.call('PUBLISH', ARGV[6], ARGV[4])\n"
    "if ARGV[7] ~= '' then redis.call('PUBLISH', ARGV[7], ARGV[4]) end\n"
    "return xid\n";

static int not_firing(const char *id, char *err, size_t errlen) {
    snprintf(err, errlen, "alert '%s' is not firing (unknown id, or resolved already); 'casewatch alerts' lists those firing",
             id);
    return 1;
}

int cw_alerts_ack(redisContext *rc, const cw_config *cfg, const char *id, const char *by, const char *note,
                  int64_t at_ms, char *err, size_t errlen) {
    if (!by || !by[0] || strlen(by) > 64) {
        snprintf(err, errlen, "--by NAME is required (1 to 64 bytes): who takes the alert in hand");
        return -1;
    }
    if (note && strlen(note) > 1000) {
        snprintf(err, errlen, "--note is limited to 1000 bytes");
        return -1;
    }
    json_t *rec = json_object();
    if (json_object_set_new(rec, "by", json_string(by)) < 0 || json_object_set_new(rec, "at", json_integer(at_ms)) < 0 ||
        json_object_set_new(rec, "note", json_string(note ? note : "")) < 0) {
        json_decref(rec);
        snprintf(err, errlen, "--by and --note must be UTF-8 text");
        return -1;
    }
    const size_t flags = JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10);
    char *ack = json_dumps(rec, flags);
    json_decref(rec);
    int rc_out = -1;
    for (int attempt = 0; attempt < 10 && ack; attempt++) {
        redisReply *cur = redisCommand(rc, "HGET %s %s", cfg->alerts_firing_key, id);
        if (!cur || cur->type == REDIS_REPLY_ERROR) {
            snprintf(err, errlen, "HGET %s failed: %s", cfg->alerts_firing_key, cur ? cur->str : rc->errstr);
            if (cur) freeReplyObject(cur);
            break;
        }
        if (cur->type != REDIS_REPLY_STRING) {
            freeReplyObject(cur);
            rc_out = not_firing(id, err, errlen);
            break;
        }
        /* the alert as logged, with the new state and who took it */
        json_t *a = json_loads(cur->str, 0, NULL);
        char *logged = NULL;
        if (json_is_object(a)) {
            json_object_set_new(a, "state", json_string("acknowledged"));
            json_object_set_new(a, "emitted_at", json_integer(at_ms));
            json_object_set_new(a, "by", json_string(by));
            json_object_set_new(a, "at", json_integer(at_ms));
            json_object_set_new(a, "note", json_string(note ? note : ""));
            logged = json_dumps(a, flags);
        }
        const char *unit = json_string_value(json_object_get(a, "unit"));
        char chan[512] = "";
        if (unit && unit[0]) snprintf(chan, sizeof(chan), "%s:%s", cfg->alerts_channel, unit);
        char maxlen[16];
        snprintf(maxlen, sizeof(maxlen), "%d", cfg->alerts_log_maxlen);
        if (!logged) {
            snprintf(err, errlen, "the firing entry of '%s' is not an alert's JSON", id);
            json_decref(a);
            freeReplyObject(cur);
            break;
        }
        const char *argv[] = {"EVAL", ack_script, "3", cfg->alerts_firing_key, cfg->alerts_acks_key,
                              cfg->alerts_log_key, id, cur->str, ack, logged, maxlen, cfg->alerts_channel, chan};
        size_t lens[13];
        for (int i = 0; i < 13; i++) lens[i] = strlen(argv[i]);
        lens[7] = cur->len;
        redisReply *r = redisCommandArgv(rc, 13, argv, lens);
        free(logged);
        json_decref(a);
        freeReplyObject(cur);
        if (!r || r->type == REDIS_REPLY_ERROR) {
            snprintf(err, errlen, "acknowledging failed: %s", r ? r->str : rc->errstr);
            if (r) freeReplyObject(r);
            break;
        }
        int again = r->type == REDIS_REPLY_INTEGER && r->integer == -1;
        if (r->type == REDIS_REPLY_INTEGER && r->integer == 0) rc_out = not_firing(id, err, errlen);
        else if (!again) rc_out = 0;
        freeReplyObject(r);
        if (!again) break;
        if (attempt == 9) snprintf(err, errlen, "alert '%s' kept changing while being acknowledged; try again", id);
    }
    if (!ack) snprintf(err, errlen, "out of memory");
    free(ack);
    return rc_out;
}
