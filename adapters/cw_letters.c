#include "cw_letters.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <msgpack.h>

#include "../daemon/cw_period.h"
#include "../proto/cw_event.h"
#include "../proto/cw_text.h"
#include "cw_args.h"

#define HEX_SHOWN 256 /* bytes of an undecodable value shown in hex */

static char *hex(const char *s, size_t n, size_t cap) {
    size_t shown = n < cap ? n : cap;
    char *out = malloc(shown * 2 + 32);
    if (!out) return NULL;
    for (size_t i = 0; i < shown; i++) sprintf(out + 2 * i, "%02x", (unsigned char)s[i]);
    if (shown < n) sprintf(out + 2 * shown, "... (%zu bytes)", n);
    else out[2 * shown] = '\0';
    return out;
}

/* Text as a JSON string: itself when UTF-8, else "hex:..." */
static json_t *text_json(const char *s, size_t n) {
    if (cw_utf8_valid(s, n)) return json_stringn(s, n);
    char *h = hex(s, n, HEX_SHOWN);
    json_t *j = json_sprintf("hex:%s", h ? h : "");
    free(h);
    return j;
}

/* A msgpack object as JSON (bin, ext and non-UTF-8 text as "hex:..."). */
static json_t *obj_json(const msgpack_object *o) {
    switch (o->type) {
    case MSGPACK_OBJECT_NIL: return json_null();
    case MSGPACK_OBJECT_BOOLEAN: return json_boolean(o->via.boolean);
    case MSGPACK_OBJECT_POSITIVE_INTEGER: return json_integer((json_int_t)o->via.u64);
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: return json_integer((json_int_t)o->via.i64);
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64: return json_real(o->via.f64);
    case MSGPACK_OBJECT_STR: return text_json(o->via.str.ptr, o->via.str.size);
    case MSGPACK_OBJECT_BIN: {
        char *h = hex(o->via.bin.ptr, o->via.bin.size, HEX_SHOWN);
        json_t *j = json_sprintf("hex:%s", h ? h : "");
        free(h);
        return j;
    }
    case MSGPACK_OBJECT_EXT: return json_string("(msgpack ext)");
    case MSGPACK_OBJECT_ARRAY: {
        json_t *a = json_array();
        for (uint32_t i = 0; i < o->via.array.size; i++) json_array_append_new(a, obj_json(&o->via.array.ptr[i]));
        return a;
    }
    case MSGPACK_OBJECT_MAP: {
        json_t *m = json_object();
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            const msgpack_object *k = &o->via.map.ptr[i].key;
            char key[256];
            if (k->type == MSGPACK_OBJECT_STR) snprintf(key, sizeof(key), "%.*s", (int)k->via.str.size, k->via.str.ptr);
            else {
                json_t *kj = obj_json(k);
                char *ks = json_dumps(kj, JSON_ENCODE_ANY | JSON_COMPACT);
                snprintf(key, sizeof(key), "%s", ks ? ks : "?");
                free(ks);
                json_decref(kj);
            }
            if (!cw_utf8_valid(key, strlen(key))) snprintf(key, sizeof(key), "(key %u, not UTF-8)", i);
            json_object_set_new(m, key, obj_json(&o->via.map.ptr[i].val));
        }
        return m;
    }
    }
    return json_null();
}

/* The value of an `e` field as JSON when it is one msgpack value (a map or
 * not), else NULL. */
static json_t *decode_value(const char *buf, size_t len) {
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    json_t *j = NULL;
    if (len <= 1 << 20 && msgpack_unpack_next(&u, buf, len, &off) == MSGPACK_UNPACK_SUCCESS && off == len)
        j = obj_json(&u.data);
    msgpack_unpacked_destroy(&u);
    return j;
}

static const redisReply *entry_field(const redisReply *fields, const char *name) {
    for (size_t i = 0; i + 1 < fields->elements; i += 2)
        if (strcmp(fields->element[i]->str, name) == 0) return fields->element[i + 1];
    return NULL;
}

/* One dead letter as a JSON object: id, source_id, reason, event (or
 * hex), other fields, refed_as. */
static json_t *letter_json(const redisReply *e, const char *refed) {
    const redisReply *fields = e->element[1];
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(e->element[0]->str));
    const redisReply *src = entry_field(fields, "source_id"), *why = entry_field(fields, "reason");
    json_object_set_new(o, "source_id", src ? text_json(src->str, src->len) : json_null());
    json_object_set_new(o, "reason", why ? text_json(why->str, why->len) : json_null());
    json_t *other = json_object();
    for (size_t i = 0; i + 1 < fields->elements; i += 2) {
        const char *name = fields->element[i]->str;
        const redisReply *v = fields->element[i + 1];
        if (strcmp(name, "source_id") == 0 || strcmp(name, "reason") == 0) continue;
        if (strcmp(name, "e") == 0) {
            json_t *ev = decode_value(v->str, v->len);
            if (ev) json_object_set_new(o, "event", ev);
            else {
                char *h = hex(v->str, v->len, HEX_SHOWN);
                json_object_set_new(o, "hex", json_string(h ? h : ""));
                free(h);
            }
            continue;
        }
        if (!cw_utf8_valid(name, strlen(name))) continue;
        json_object_set_new(other, name, text_json(v->str, v->len));
    }
    if (json_object_size(other)) json_object_set_new(o, "fields", other);
    else json_decref(other);
    if (refed) json_object_set_new(o, "refed_as", json_string(refed));
    return o;
}

/* "2026-12-02 22:05:01" (local) of an entry id's milliseconds. */
static void id_time(const char *id, int offset_min, char *out, size_t len) {
    long long ms = atoll(id);
    time_t t = (time_t)(ms / 1000 + offset_min * 60);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, len, "%Y-%m-%d %H:%M:%S", &tm);
}

static void print_letter(const json_t *o, const cw_config *cfg, FILE *out) {
    const char *id = json_string_value(json_object_get(o, "id"));
    char when[32];
    id_time(id, cfg->utc_offset_min, when, sizeof(when));
    const char *src = json_string_value(json_object_get(o, "source_id"));
    const char *why = json_string_value(json_object_get(o, "reason"));
    fprintf(out, "%s  %s %s  from %s\n", id, when, cfg->utc_offset, src ? src : "(no source_id)");
    fprintf(out, "  reason  %s\n", why ? why : "(none)");
    json_t *ev = json_object_get(o, "event");
    if (ev) {
        char *s = json_dumps(ev, JSON_ENCODE_ANY | JSON_COMPACT | JSON_PRESERVE_ORDER);
        fprintf(out, "  event   %s\n", s ? s : "?");
        free(s);
    }
    const char *h = json_string_value(json_object_get(o, "hex"));
    if (h) fprintf(out, "  e (hex) %s\n", h);
    json_t *fields = json_object_get(o, "fields");
    const char *k;
    json_t *v;
    json_object_foreach(fields, k, v) fprintf(out, "  %-7s %s\n", k, json_string_value(v) ? json_string_value(v) : "");
    const char *refed = json_string_value(json_object_get(o, "refed_as"));
    if (refed) fprintf(out, "  re-fed  as %s\n", refed);
}

static int redis_failed(redisContext *rc, redisReply *r, const char *what, char *err, size_t errlen) {
    cw_errf(err, errlen, "%s failed: %s", what,
            r && r->type == REDIS_REPLY_ERROR ? r->str : rc->err ? rc->errstr : "unexpected reply");
    if (r) freeReplyObject(r);
    return -1;
}

int cw_letters_list(redisContext *rc, const cw_config *cfg, int last, const char *reason, int json, FILE *out, char *err,
                 size_t errlen) {
    char refed_key[512];
    snprintf(refed_key, sizeof(refed_key), "%s:refed", cfg->stream_dead_key);
    /* newest first, a page at a time, until `last` match */
    json_t *shown = json_array();
    char end[64] = "+";
    long long scanned = 0;
    for (;;) {
        redisReply *r = redisCommand(rc, "XREVRANGE %s %s - COUNT 500", cfg->stream_dead_key, end);
        if (!r || r->type != REDIS_REPLY_ARRAY) {
            json_decref(shown);
            return redis_failed(rc, r, "XREVRANGE of the dead letters", err, errlen);
        }
        size_t n = r->elements;
        for (size_t i = 0; i < n && (int)json_array_size(shown) < last; i++) {
            redisReply *e = r->element[i];
            if (strcmp(e->element[0]->str, end) == 0) continue; /* the page boundary, seen */
            scanned++;
            const redisReply *why = entry_field(e->element[1], "reason");
            if (reason && (!why || !strstr(why->str, reason))) continue;
            redisReply *h = redisCommand(rc, "HGET %s %s", refed_key, e->element[0]->str);
            json_array_append_new(shown, letter_json(e, h && h->type == REDIS_REPLY_STRING ? h->str : NULL));
            if (h) freeReplyObject(h);
        }
        int more = n > 0 && (int)json_array_size(shown) < last;
        if (n) {
            /* the next page ends just before the oldest entry of this one */
            unsigned long long ms, seq;
            const char *oldest = r->element[n - 1]->element[0]->str;
            if (sscanf(oldest, "%llu-%llu", &ms, &seq) != 2 || (ms == 0 && seq == 0)) more = 0;
            else if (seq) snprintf(end, sizeof(end), "%llu-%llu", ms, seq - 1);
            else snprintf(end, sizeof(end), "%llu-%llu", ms - 1, (unsigned long long)-1);
        }
        freeReplyObject(r);
        if (!more) break;
    }
    size_t n = json_array_size(shown);
    if (n == 0 && !json) {
        if (reason) fprintf(out, "no dead letter in %s has a reason containing '%s' (%lld looked at)\n",
                            cfg->stream_dead_key, reason, scanned);
        else fprintf(out, "no dead letters in %s\n", cfg->stream_dead_key);
    }
    for (size_t i = n; i-- > 0;) { /* oldest first */
        json_t *o = json_array_get(shown, i);
        if (json) {
            char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
            fprintf(out, "%s\n", s ? s : "{}");
            free(s);
        } else {
            print_letter(o, cfg, out);
        }
    }
    json_decref(shown);
    return 0;
}

static const char *refeed_script =
    "local done = redis.call('HGET', KEYS[2], ARGV[2]) "
    "if done and ARGV[3] ~= '1' then return redis.error_reply('ALREADY ' .. done) end "
    "local id = redis.call('XADD', KEYS[1], '*', 'e', ARGV[1]) "
    "redis.call('HSET', KEYS[2], ARGV[2], id) "
    "return id";

int cw_letters_refeed(redisContext *rc, const cw_config *cfg, cw_export *x, const char *id, char *const *sets, int nsets,
                   int force, FILE *out, char *err, size_t errlen) {
    if (!cw_args_stream_id(id))
        return cw_errf(err, errlen, "'%s' is not a dead letter id (an entry id such as 1796219933692-0)", id), 1;
    redisReply *r = redisCommand(rc, "XRANGE %s %s %s", cfg->stream_dead_key, id, id);
    if (!r || r->type != REDIS_REPLY_ARRAY) return redis_failed(rc, r, "XRANGE of the dead letter", err, errlen);
    if (r->elements == 0) {
        freeReplyObject(r);
        return cw_errf(err, errlen, "no dead letter %s in %s (see casewatch dead)", id, cfg->stream_dead_key), 1;
    }
    const redisReply *e = entry_field(r->element[0]->element[1], "e");
    json_t *ev = e ? decode_value(e->str, e->len) : NULL;
    if (!ev || !json_is_object(ev)) {
        /* nothing usable to correct: start from the keys given */
        json_decref(ev);
        ev = json_object();
        if (!nsets) {
            freeReplyObject(r);
            json_decref(ev);
            return cw_errf(err, errlen,
                           "dead letter %s holds no event map to correct; give the whole event with --set key=value",
                           id),
                   1;
        }
    }
    freeReplyObject(r);
    for (int i = 0; i < nsets; i++) {
        const char *eq = strchr(sets[i], '=');
        char key[64];
        if (!eq || eq == sets[i] || (size_t)(eq - sets[i]) >= sizeof(key)) {
            json_decref(ev);
            return cw_errf(err, errlen, "--set takes key=value, not '%s'", sets[i]), 1;
        }
        memcpy(key, sets[i], (size_t)(eq - sets[i]));
        key[eq - sets[i]] = '\0';
        if (cw_event_key_kind(key, strlen(key)) == CW_KIND_UNKNOWN) {
            json_decref(ev);
            return cw_errf(err, errlen,
                           "--set %s: '%s' is not a key of PROTOCOL.md §1 (v, id, ts, type, case, unit, dept, pros, n, "
                           "detained, complex, arrested, fast, decision, plea, sentencing, adopted, reply)",
                           sets[i], key),
                   1;
        }
        if (!eq[1]) json_object_del(ev, key);
        else if (!cw_utf8_valid(eq + 1, strlen(eq + 1))) {
            json_decref(ev);
            return cw_errf(err, errlen, "--set %s: the value is not UTF-8", key), 1;
        } else json_object_set_new(ev, key, json_string(eq + 1));
    }
    char *text = json_dumps(ev, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(ev);
    if (!text) return cw_errf(err, errlen, "out of memory");
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    char why[1024];
    int bad = cw_export_json(x, text, strlen(text), 0, &sb, why, sizeof(why));
    cw_event dec;
    if (!bad) bad = cw_event_decode(NULL, sb.data, sb.size, cw_wall_ms(), &dec, why, sizeof(why));
    if (bad) {
        const char *k = strstr(why, "key '");
        int klen = k ? (int)strcspn(k + 5, "'") : 0;
        cw_errf(err, errlen, "dead letter %s is still bad: %s (event %s); correct it with --set %.*s%s=value", id, why,
                text, klen, k ? k + 5 : "", k ? "" : "key");
        free(text);
        msgpack_sbuffer_destroy(&sb);
        return 1;
    }
    free(text);
    char refed_key[512];
    snprintf(refed_key, sizeof(refed_key), "%s:refed", cfg->stream_dead_key);
    const char *argv[] = {"EVAL", refeed_script, "2", cfg->stream_key, refed_key, sb.data, id, force ? "1" : "0"};
    size_t argl[8];
    for (int i = 0; i < 8; i++) argl[i] = strlen(argv[i]);
    argl[5] = sb.size;
    r = redisCommandArgv(rc, 8, argv, argl);
    msgpack_sbuffer_destroy(&sb);
    if (r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "ALREADY ", 8) == 0) {
        cw_errf(err, errlen, "dead letter %s was re-fed already, as %s (--force sends it again)", id, r->str + 8);
        freeReplyObject(r);
        return 1;
    }
    if (!r || r->type != REDIS_REPLY_STRING) return redis_failed(rc, r, "re-feeding (EVAL XADD + HSET)", err, errlen);
    fprintf(out, "dead letter %s re-fed to %s as %s (event %s, %s); marked in %s\n", id, cfg->stream_key, r->str,
            dec.id, cw_event_type_name(dec.type), refed_key);
    freeReplyObject(r);
    return 0;
}
