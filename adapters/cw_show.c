#include "cw_show.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "../daemon/cw_ind.h"
#include "../daemon/cw_period.h"
#include "../proto/cw_health.h"
#include "../proto/cw_text.h"
#include "cw_args.h"
#include "cw_redis_sync.h"

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

/* A hash field as JSON: a number when the whole value reads as one. */
static json_t *field_json(const char *v) {
    char *end;
    long long ll = strtoll(v, &end, 10);
    if (*v && !*end) return json_integer(ll);
    double d = strtod(v, &end);
    if (*v && !*end) return json_real(d);
    return json_string(v);
}

static void print_json(json_t *o, FILE *out) {
    char *s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    fprintf(out, "%s\n", s ? s : "{}");
    free(s);
}

int cw_show_status(redisContext *rc, const cw_config *cfg, int json, FILE *out, char *err, size_t errlen) {
    char key[256];
    snprintf(key, sizeof(key), "%s:%s", cfg->health_prefix, cfg->instance);
    redisReply *r = cw_redis_sync_hgetall(rc, key, err, errlen);
    if (!r) return -1;
    if (r->elements == 0) {
        if (json) {
            json_t *o = json_pack("{s:s, s:s, s:s}", "instance", cfg->instance, "key", key, "state", "missing");
            print_json(o, out);
            json_decref(o);
        } else {
            fprintf(out, "casewatchd %s: no health hash at %s (never started against this Redis?)\n", cfg->instance,
                    key);
        }
        freeReplyObject(r);
        return 1;
    }
    int64_t now = cw_wall_ms(), beat = num(r, cw_health_names[CW_HEALTH_HEARTBEAT_AT]),
            started = num(r, cw_health_names[CW_HEALTH_STARTED_AT]);
    const char *st = field(r, cw_health_names[CW_HEALTH_STATE]);
    int stopped = st && strcmp(st, "stopped") == 0;
    int stale = !stopped && now - beat > STALE_MS;
    const char *state = stopped ? "stopped" : stale ? "stale" : "running";
    if (json) {
        json_t *o = json_object();
        json_object_set_new(o, "instance", json_string(cfg->instance));
        json_object_set_new(o, "state", json_string(state));
        json_object_set_new(o, "heartbeat_age_ms", json_integer(now - beat));
        for (size_t i = 0; i + 1 < r->elements; i += 2)
            if (strcmp(r->element[i]->str, cw_health_names[CW_HEALTH_STATE]) != 0)
                json_object_set_new(o, r->element[i]->str, field_json(r->element[i + 1]->str));
        print_json(o, out);
        json_decref(o);
        freeReplyObject(r);
        return stopped ? 3 : stale ? 1 : 0;
    }
    char when[32], up[32], ago[32];
    cw_args_show_time(started, cfg->utc_offset_min, 1, when, sizeof(when));
    cw_args_show_duration(now - started, 1, up, sizeof(up));
    cw_args_show_duration(now - beat, 1, ago, sizeof(ago));
    long long rss = num(r, "rss_bytes");
    const char *version = field(r, "version") ? field(r, "version") : "?";
    if (stopped) {
        int64_t at = field(r, cw_health_names[CW_HEALTH_STOPPED_AT]) ? num(r, cw_health_names[CW_HEALTH_STOPPED_AT]) : beat;
        char stop_when[32], stop_ago[32];
        cw_args_show_time(at, cfg->utc_offset_min, 1, stop_when, sizeof(stop_when));
        cw_args_show_duration(now - at, 1, stop_ago, sizeof(stop_ago));
        fprintf(out, "casewatchd %s, version %s: stopped cleanly at %s %s (%s ago)\n", cfg->instance, version,
                stop_when, cfg->utc_offset, stop_ago);
        fprintf(out, "  started        %s %s\n", when, cfg->utc_offset);
    } else {
        fprintf(out, "casewatchd %s, version %s: %s\n", cfg->instance, version,
                stale ? "NOT RUNNING (heartbeat stale)" : "running");
        fprintf(out, "  started        %s %s (%s ago)\n", when, cfg->utc_offset, up);
        fprintf(out, "  heartbeat      %s ago\n", ago);
    }
    fprintf(out, "  stream         last applied %s, lag %lld entries\n", field(r, "last_id") ? field(r, "last_id") : "-",
            num(r, "lag"));
    fprintf(out, "  events         %lld applied, %lld duplicates, %lld dead-lettered (%s)\n", num(r, "events"),
            num(r, "duplicates"), num(r, "dead_lettered"), cfg->stream_dead_key);
    fprintf(out, "  open cases     %lld\n", num(r, "open_cases"));
    fprintf(out, "  alerts firing  %lld\n", num(r, "alerts_firing"));
    if (!stopped) fprintf(out, "  memory         %.1f MiB\n", (double)rss / 1048576.0);
    const char *progress = field(r, cw_health_names[CW_HEALTH_PROGRESS]);
    if (progress && !stopped && !stale) fprintf(out, "  progress       %s\n", progress);
    freeReplyObject(r);
    return stopped ? 3 : stale ? 1 : 0;
}

/* The scope as the daemon names it in keys: the unit by its code (a
 * [units] name is looked up), the name part of pros: and dept: scopes
 * escaped (PROTOCOL.md §4). Returns 0, or -1 with a message. */
static int scope_key(const cw_config *cfg, const char *scope, char *buf, size_t len, char code[7], char *err,
                     size_t errlen) {
    static const char *const forms = "unit:CODE, dept:CODE:NAME, pros:CODE:ID, region:NN, region:NNNN or nation "
                                     "(a unit by its 6-digit code or its [units] name)";
    code[0] = '\0';
    if (strcmp(scope, "nation") == 0 || strncmp(scope, "region:", 7) == 0) {
        const char *r = scope + 6;
        if (*r == ':' && ((strlen(r + 1) == 2 || strlen(r + 1) == 4) && strspn(r + 1, "0123456789") == strlen(r + 1)))
            return snprintf(buf, len, "%s", scope), 0;
        if (*r == '\0') return snprintf(buf, len, "%s", scope), 0;
        return cw_errf(err, errlen, "scope '%s': a region is 2 (province) or 4 (city) digits", scope);
    }
    int named = strncmp(scope, "pros:", 5) == 0 || strncmp(scope, "dept:", 5) == 0;
    if (!named && strncmp(scope, "unit:", 5) != 0)
        return cw_errf(err, errlen, "scope '%s' is not one of %s", scope, forms);
    const char *unit = scope + 5, *colon = named ? strchr(unit, ':') : unit + strlen(unit);
    if (!colon) return cw_errf(err, errlen, "scope '%s': expected %.4s:UNIT:NAME", scope, scope);
    char typed[256], why[1024];
    snprintf(typed, sizeof(typed), "%.*s", (int)(colon - unit), unit);
    if (cw_args_unit(cfg, typed, 0, code, why, sizeof(why)) < 0) return cw_errf(err, errlen, "scope '%s': %s", scope, why);
    if (!named) return snprintf(buf, len, "unit:%s", code), 0;
    char esc[3 * CW_NAME_MAX + 1];
    const char *name = colon + 1;
    if (!*name) return cw_errf(err, errlen, "scope '%s': the name after the unit is empty", scope);
    if (cw_key_escape(name, strlen(name), esc, sizeof(esc)) < 0)
        return cw_errf(err, errlen, "scope '%s': the name is over %d bytes", scope, CW_NAME_MAX);
    snprintf(buf, len, "%.5s%s:%s", scope, code, esc); /* "dept:" + code + ":" + name */
    return 0;
}

static int by_name(const void *a, const void *b) {
    const char *x = *(char *const *)a, *y = *(char *const *)b;
    return strcmp(x ? x : "", y ? y : "");
}

/* The periods held for the key prefix of a scope, sorted; *out is a
 * NULL-terminated array the caller frees (names and all). */
static int list_periods(redisContext *rc, const char *prefix, char ***out, size_t *count, char *err, size_t errlen) {
    char esc[1400], pattern[1410];
    if (cw_args_glob_escape(prefix, esc, sizeof(esc)) < 0) return cw_errf(err, errlen, "scope too long");
    snprintf(pattern, sizeof(pattern), "%s:*", esc);
    size_t plen = strlen(prefix) + 1;
    char cursor[32] = "0";
    size_t found = 0, cap = 0;
    char **names = NULL;
    do {
        redisReply *r = redisCommand(rc, "SCAN %s MATCH %s COUNT 1000", cursor, pattern);
        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
            snprintf(err, errlen, "SCAN failed: %s", r && r->type == REDIS_REPLY_ERROR ? r->str : rc->errstr);
            if (r) freeReplyObject(r);
            for (size_t i = 0; i < found; i++) free(names[i]);
            free(names);
            return -1;
        }
        snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
        for (size_t i = 0; i < r->element[1]->elements; i++) {
            const char *k = r->element[1]->element[i]->str;
            if (strchr(k + plen, ':')) continue; /* a longer scope, not a period */
            if (found + 1 >= cap) {
                cap = cap ? cap * 2 : 64;
                char **n = realloc(names, cap * sizeof(*n));
                if (!n) break;
                names = n;
            }
            names[found++] = strdup(k + plen);
        }
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    if (found) qsort(names, found, sizeof(*names), by_name);
    *out = names;
    *count = found;
    return 0;
}

static void free_names(char **names, size_t n) {
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
}

int cw_show_ind(redisContext *rc, const cw_config *cfg, const char *scope, const char *period, int json, FILE *out,
                char *err, size_t errlen) {
    char sk[512], key[600], code[7];
    if (scope_key(cfg, scope, sk, sizeof(sk), code, err, errlen) < 0) return 2;
    if (period && cw_period_kind_of(period) == CW_PERIOD_NONE)
        return cw_errf(err, errlen, "period '%s' is not one of YYYY-Qn, YYYY-MM, YYYY or rolling-Nd", period), 2;
    snprintf(key, sizeof(key), "%s:%s", cfg->ind_prefix, sk);
    char **names = NULL;
    size_t nnames = 0;
    if (!period) {
        if (list_periods(rc, key, &names, &nnames, err, errlen) < 0) return -1;
        if (!nnames) {
            cw_errf(err, errlen, "no indicators for %s: no key matches %s:* (no event of this scope has been applied, "
                    "or [indicators] prefix differs)", scope, key);
            free(names);
            return 1;
        }
        if (json) {
            json_t *o = json_object(), *a = json_array();
            json_object_set_new(o, "scope", json_string(sk));
            for (size_t i = 0; i < nnames; i++) json_array_append_new(a, json_string(names[i]));
            json_object_set_new(o, "periods", a);
            print_json(o, out);
            json_decref(o);
        } else {
            for (size_t i = 0; i < nnames; i++) fprintf(out, "%s\n", names[i]);
        }
        free_names(names, nnames);
        return 0;
    }
    size_t base = strlen(key);
    snprintf(key + base, sizeof(key) - base, ":%s", period);
    redisReply *r = cw_redis_sync_hgetall(rc, key, err, errlen);
    if (!r) return -1;
    if (r->elements == 0) {
        freeReplyObject(r);
        key[base] = '\0';
        if (list_periods(rc, key, &names, &nnames, err, errlen) < 0) return -1;
        char held[512] = "";
        for (size_t i = 0; i < nnames && strlen(held) < 400; i++) {
            size_t at = strlen(held);
            snprintf(held + at, sizeof(held) - at, "%s%s", i ? ", " : "", names[i]);
        }
        if (nnames) cw_errf(err, errlen, "no indicators for %s in %s (no key %s:%s); periods held: %s", scope, period,
                            key, period, held);
        else cw_errf(err, errlen, "no indicators for %s in any period (no key matches %s:*)", scope, key);
        free_names(names, nnames);
        return 1;
    }
    const char *name = code[0] ? cw_config_unit_name(cfg, code) : NULL;
    if (json) {
        json_t *o = json_object(), *v = json_object();
        json_object_set_new(o, "scope", json_string(sk));
        json_object_set_new(o, "period", json_string(period));
        if (name) json_object_set_new(o, "unit_name", json_string(name));
        cw_ind_field f;
        for (size_t i = 0; cw_ind_fields(i, &f); i++) {
            const char *x = field(r, f.name);
            json_object_set_new(v, f.name, x ? field_json(x) : json_null());
        }
        json_object_set_new(o, "values", v);
        print_json(o, out);
        json_decref(o);
        freeReplyObject(r);
        return 0;
    }
    fprintf(out, "%s  %s%s%s%s\n", sk, period, name ? "  (" : "", name ? name : "", name ? ")" : "");
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
