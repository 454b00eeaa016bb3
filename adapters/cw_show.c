#include "cw_show.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../daemon/cw_ind.h"
#include "../daemon/cw_period.h"
#include "../proto/cw_text.h"

#define STALE_MS 5000

static const char *field(const redisReply *r, const char *name) {
    for (size_t i = 0; r && i + 1 < r->elements; i += 2)
        if (strcmp(r->element[i]->str, name) == 0) return r->element[i + 1]->str;
    return NULL;
}

static long long num(const redisReply *r, const char *name) {
    const char *v = field(r, name);
    return v ? atoll(v) : 0;
}

/* "2026-11-22 09:30:00" in the configured local time. */
static void local_time(int64_t ms, int offset_min, char *buf, size_t len) {
    time_t t = (time_t)(ms / 1000 + offset_min * 60);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm);
}

static void duration(int64_t ms, char *buf, size_t len) {
    int64_t s = ms / 1000;
    if (s < 60) snprintf(buf, len, "%lld s", (long long)s);
    else if (s < 3600) snprintf(buf, len, "%lld min %lld s", (long long)(s / 60), (long long)(s % 60));
    else if (s < 86400) snprintf(buf, len, "%lld h %lld min", (long long)(s / 3600), (long long)(s % 3600 / 60));
    else snprintf(buf, len, "%lld d %lld h", (long long)(s / 86400), (long long)(s % 86400 / 3600));
}

static redisReply *hgetall(redisContext *rc, const char *key, char *err, size_t errlen) {
    redisReply *r = redisCommand(rc, "HGETALL %s", key);
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        snprintf(err, errlen, "HGETALL %s failed: %s", key, r ? r->str : rc->errstr);
        if (r) freeReplyObject(r);
        return NULL;
    }
    return r;
}

int cw_show_status(redisContext *rc, const cw_config *cfg, FILE *out, char *err, size_t errlen) {
    char key[256];
    snprintf(key, sizeof(key), "%s:%s", cfg->health_prefix, cfg->instance);
    redisReply *r = hgetall(rc, key, err, errlen);
    if (!r) return -1;
    if (r->elements == 0) {
        fprintf(out, "casewatchd %s: no health hash at %s (never started against this Redis?)\n", cfg->instance,
                key);
        freeReplyObject(r);
        return 1;
    }
    int64_t now = cw_wall_ms(), beat = num(r, "heartbeat_at"), started = num(r, "started_at");
    char when[32], up[32], ago[32];
    local_time(started, cfg->utc_offset_min, when, sizeof(when));
    duration(now - started, up, sizeof(up));
    duration(now - beat, ago, sizeof(ago));
    int stale = now - beat > STALE_MS;
    long long rss = num(r, "rss_bytes");
    fprintf(out, "casewatchd %s, version %s: %s\n", cfg->instance, field(r, "version") ? field(r, "version") : "?",
            stale ? "NOT RUNNING (heartbeat stale)" : "running");
    fprintf(out, "  started        %s %s (%s ago)\n", when, cfg->utc_offset, up);
    fprintf(out, "  heartbeat      %s ago\n", ago);
    fprintf(out, "  stream         last applied %s, lag %lld entries\n", field(r, "last_id") ? field(r, "last_id") : "-",
            num(r, "lag"));
    fprintf(out, "  events         %lld applied, %lld duplicates, %lld dead-lettered (%s)\n", num(r, "events"),
            num(r, "duplicates"), num(r, "dead_lettered"), cfg->stream_dead_key);
    fprintf(out, "  open cases     %lld\n", num(r, "open_cases"));
    fprintf(out, "  alerts firing  %lld\n", num(r, "alerts_firing"));
    fprintf(out, "  memory         %.1f MiB\n", (double)rss / 1048576.0);
    const char *progress = field(r, "progress");
    if (progress) fprintf(out, "  progress       %s\n", progress);
    freeReplyObject(r);
    return stale ? 1 : 0;
}

/* The scope as the daemon names it in keys: the name part of pros: and
 * dept: scopes escaped (PROTOCOL.md §4). */
static int scope_key(const char *scope, char *buf, size_t len) {
    if (strncmp(scope, "pros:", 5) == 0 || strncmp(scope, "dept:", 5) == 0) {
        const char *unit = scope + 5, *colon = strchr(unit, ':');
        if (!colon || colon - unit != 6) return -1;
        char esc[3 * CW_NAME_MAX + 1];
        const char *name = colon + 1;
        if (!*name || cw_key_escape(name, strlen(name), esc, sizeof(esc)) < 0) return -1;
        snprintf(buf, len, "%.12s%s", scope, esc); /* "dept:410923:" + name */
        return 0;
    }
    if (strncmp(scope, "unit:", 5) == 0 || strncmp(scope, "region:", 7) == 0 || strcmp(scope, "nation") == 0) {
        snprintf(buf, len, "%s", scope);
        return 0;
    }
    return -1;
}

static int by_name(const void *a, const void *b) {
    const char *x = *(char *const *)a, *y = *(char *const *)b;
    return strcmp(x ? x : "", y ? y : "");
}

static int list_periods(redisContext *rc, const char *prefix, FILE *out, char *err, size_t errlen) {
    char pattern[700];
    snprintf(pattern, sizeof(pattern), "%s:*", prefix);
    size_t plen = strlen(prefix) + 1;
    char cursor[32] = "0";
    size_t found = 0, cap = 0;
    char **names = NULL;
    do {
        redisReply *r = redisCommand(rc, "SCAN %s MATCH %s COUNT 1000", cursor, pattern);
        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
            snprintf(err, errlen, "SCAN failed: %s", r && r->type == REDIS_REPLY_ERROR ? r->str : rc->errstr);
            if (r) freeReplyObject(r);
            return -1;
        }
        snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
        for (size_t i = 0; i < r->element[1]->elements; i++) {
            const char *k = r->element[1]->element[i]->str;
            if (strchr(k + plen, ':')) continue; /* a longer scope, not a period */
            if (found == cap) {
                cap = cap ? cap * 2 : 64;
                char **n = realloc(names, cap * sizeof(*n));
                if (!n) break;
                names = n;
            }
            names[found++] = strdup(k + plen);
        }
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    qsort(names, found, sizeof(*names), by_name);
    for (size_t i = 0; i < found; i++) {
        fprintf(out, "%s\n", names[i] ? names[i] : "?");
        free(names[i]);
    }
    free(names);
    return found ? 0 : 1;
}

int cw_show_ind(redisContext *rc, const cw_config *cfg, const char *scope, const char *period, FILE *out, char *err,
                size_t errlen) {
    char sk[512], key[600];
    if (scope_key(scope, sk, sizeof(sk)) < 0) {
        snprintf(err, errlen,
                 "scope '%s' is not one of unit:CODE, dept:CODE:NAME, pros:CODE:ID, region:NN, region:NNNN, nation",
                 scope);
        return -1;
    }
    snprintf(key, sizeof(key), "%s:%s", cfg->ind_prefix, sk);
    if (!period) return list_periods(rc, key, out, err, errlen);
    snprintf(key + strlen(key), sizeof(key) - strlen(key), ":%s", period);
    redisReply *r = hgetall(rc, key, err, errlen);
    if (!r) return -1;
    if (r->elements == 0) {
        fprintf(out, "no indicators for %s in %s (key %s)\n", scope, period, key);
        freeReplyObject(r);
        return 1;
    }
    const char *unit = strncmp(scope, "region", 6) && strcmp(scope, "nation") ? strchr(scope, ':') + 1 : NULL;
    char code[7] = "";
    if (unit) snprintf(code, sizeof(code), "%.6s", unit);
    const char *name = unit ? cw_config_unit_name(cfg, code) : NULL;
    fprintf(out, "%s  %s%s%s%s\n", scope, period, name ? "  (" : "", name ? name : "", name ? ")" : "");
    cw_ind_field f;
    int header = 0;
    for (size_t i = 0; cw_ind_fields(i, &f); i++) {
        const char *v = field(r, f.name);
        if (f.kind == CW_IND_COUNTER && !header) {
            fprintf(out, "  -- counters --\n");
            header = 1;
        }
        char shown[64];
        double x = v ? atof(v) : 0;
        if (!v) snprintf(shown, sizeof(shown), "-");
        else if (f.kind == CW_IND_RATIO) snprintf(shown, sizeof(shown), "1:%.3f", x);
        else if (f.kind == CW_IND_RATE) snprintf(shown, sizeof(shown), "%.4f (%.1f%%)", x, x * 100);
        else if (f.kind == CW_IND_DAYS) snprintf(shown, sizeof(shown), "%.1f 天", x);
        else snprintf(shown, sizeof(shown), "%s", v);
        fprintf(out, "  %-34s %-22s %s\n", f.name, shown, f.zh);
    }
    freeReplyObject(r);
    return 0;
}
