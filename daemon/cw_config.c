#include "cw_config.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <ini.h>

#include "../proto/cw_text.h"
#include "cw_ind.h"
#include "cw_log.h"
#include "cw_period.h"

/* ---- The option table ------------------------------------------------- */

typedef enum { OPT_STR, OPT_INT, OPT_ENUM } opt_type;

typedef struct opt {
    const char *section;
    const char *key;
    opt_type type;
    size_t offset;
    const char *def;
    long min, max;             /* OPT_INT bounds; OPT_STR: min length 1 when min is 1 */
    const char *const *choices; /* OPT_ENUM, NULL-terminated; value = index */
    const char *help;
} opt;

static const char *const clock_choices[] = {"live", "event", NULL};
static const char *const level_choices[] = {"emerg", "alert", "crit", "err", "warning", "notice", "info", "debug", NULL};

#define F(field) offsetof(cw_config, field)

static const opt opts[] = {
    {"redis", "host", OPT_STR, F(redis_host), "127.0.0.1", 1, 0, NULL, "Redis server address"},
    {"redis", "port", OPT_INT, F(redis_port), "6379", 1, 65535, NULL, "Redis server port"},
    {"redis", "user", OPT_STR, F(redis_user), "", 0, 0, NULL, "ACL user (empty: default user)"},
    {"redis", "password_file", OPT_STR, F(redis_password_file), "", 0, 0, NULL,
     "file holding the password, readable only by its owner (empty: no AUTH)"},
    {"redis", "sentinels", OPT_STR, F(redis_sentinels), "", 0, 0, NULL,
     "host:port,... of Redis Sentinels to ask for the primary (empty: use host and port)"},
    {"redis", "master_name", OPT_STR, F(redis_master_name), "mymaster", 1, 0, NULL,
     "the primary's name in Sentinel"},
    {"redis", "timeout_ms", OPT_INT, F(redis_timeout_ms), "2000", 10, 600000, NULL,
     "how long the server may stay silent (a request overdue, no reply at all) before the connection is dropped"},
    {"stream", "key", OPT_STR, F(stream_key), "casewatch:events", 1, 0, NULL, "the event stream"},
    {"stream", "dead_key", OPT_STR, F(stream_dead_key), "casewatch:events:dead", 1, 0, NULL,
     "where unusable entries are copied with a reason"},
    {"stream", "dead_maxlen", OPT_INT, F(stream_dead_maxlen), "100000", 100, 100000000, NULL,
     "dead letters kept in the dead-letter stream (XADD MAXLEN ~)"},
    {"stream", "batch", OPT_INT, F(stream_batch), "1000", 1, 100000, NULL, "entries read per request"},
    {"stream", "block_ms", OPT_INT, F(stream_block_ms), "1000", 1, 60000, NULL,
     "how long a read waits for new entries when caught up"},
    {"daemon", "instance", OPT_STR, F(instance), "main", 1, 0, NULL, "name of this daemon in casewatch:daemon:<instance>"},
    {"daemon", "clock", OPT_ENUM, F(clock), "live", 0, 0, clock_choices,
     "live: deadlines expire by the wall clock; event: by event time only (replays, tests)"},
    {"daemon", "state_dir", OPT_STR, F(state_dir), "/var/lib/casewatch", 1, 0, NULL,
     "where snapshots are written (<state_dir>/<instance>.snap)"},
    {"daemon", "snapshot_interval_ms", OPT_INT, F(snapshot_interval_ms), "60000", 0, 86400000, NULL,
     "how often the whole state is snapshotted (0: only at shutdown)"},
    {"daemon", "log_level", OPT_ENUM, F(log_level), "info", 0, 0, level_choices, "least important level logged"},
    {"daemon", "health_prefix", OPT_STR, F(health_prefix), "casewatch:daemon", 1, 0, NULL,
     "the health hash is <health_prefix>:<instance>"},
    {"indicators", "prefix", OPT_STR, F(ind_prefix), "casewatch:ind", 1, 0, NULL,
     "indicator hashes are <prefix>:<scope>:<period>"},
    {"indicators", "utc_offset", OPT_STR, F(utc_offset), "+08:00", 1, 0, NULL,
     "local time of periods and deadlines (China time)"},
    {"indicators", "rolling_days", OPT_INT, F(rolling_days), "30", 1, 366, NULL, "days in the rolling-<N>d period"},
    {"indicators", "keep_quarters", OPT_INT, F(keep_quarters), "8", 1, 400, NULL,
     "quarters kept in memory before the newest event's quarter"},
    {"indicators", "flush_ms", OPT_INT, F(flush_ms), "500", 10, 1000, NULL,
     "how often changed indicator hashes are written"},
    {"indicators", "flush_entries", OPT_INT, F(flush_entries), "100000", 1000, 100000000, NULL,
     "in --replay: hashes written and rules judged every this many entries read"},
    {"indicators", "closed_window", OPT_INT, F(closed_window), "1000000", 1, 100000000, NULL,
     "event ids of closed cases remembered for dedupe (16 bytes each)"},
    {"limits", "max_open_cases", OPT_INT, F(max_open_cases), "5000000", 1, 2000000000, NULL,
     "open cases held at most; an event that would open one more is dead-lettered (容量预警)"},
    {"limits", "max_scopes", OPT_INT, F(max_scopes), "200000", 10, 2000000000, NULL,
     "distinct scopes (prosecutors, departments, units, regions) held at most"},
    {"limits", "max_ids_per_case", OPT_INT, F(max_ids_per_case), "10000", 10, 2000000000, NULL,
     "event ids remembered for one open case at most"},
    {"limits", "dead_letter_bytes", OPT_INT, F(dead_letter_bytes), "65536", 1024, 16777216, NULL,
     "bytes of an unusable entry's names and values copied into its dead letter at most (the rest is cut, and said)"},
    {"alerts", "channel", OPT_STR, F(alerts_channel), "casewatch:alerts", 1, 0, NULL,
     "alerts are published here and on <channel>:<unit>"},
    {"alerts", "log_key", OPT_STR, F(alerts_log_key), "casewatch:alerts:log", 1, 0, NULL,
     "the durable alert log stream subscribers catch up from"},
    {"alerts", "log_maxlen", OPT_INT, F(alerts_log_maxlen), "100000", 100, 100000000, NULL,
     "entries kept in the alert log (XADD MAXLEN ~)"},
    {"calendar", "file", OPT_STR, F(calendar_file), "/etc/casewatch/holidays-cn.conf", 0, 0, NULL,
     "the holiday file deadlines are counted on (CPL art. 105); empty: weekends only"},
    {"feed", "columns", OPT_STR, F(feed_columns), "", 0, 0, NULL,
     "casewatch feed: file mapping an export's column names and values to the protocol's keys (relative to the "
     "configuration file's directory; empty: the protocol's own keys only)"},
    {"alerts", "firing_key", OPT_STR, F(alerts_firing_key), "", 0, 0, NULL,
     "hash id -> alert JSON of every alert firing now (empty: log_key's prefix + :firing)"},
    {"alerts", "acks_key", OPT_STR, F(alerts_acks_key), "", 0, 0, NULL,
     "hash id -> {by, at, note} of firing alerts acknowledged (empty: log_key's prefix + :acks)"},
};

#define NOPTS (sizeof(opts) / sizeof(opts[0]))


static const opt *find_opt(const char *section, const char *key) {
    for (size_t i = 0; i < NOPTS; i++)
        if (strcmp(opts[i].section, section) == 0 && strcmp(opts[i].key, key) == 0) return &opts[i];
    return NULL;
}

static int section_known(const char *section) {
    for (size_t i = 0; i < NOPTS; i++)
        if (strcmp(opts[i].section, section) == 0) return 1;
    return strcmp(section, "units") == 0 || strcmp(section, "prosecutors") == 0;
}

static void choices_text(const char *const *ch, char *out, size_t outlen) {
    out[0] = '\0';
    for (size_t i = 0; ch[i]; i++) {
        strncat(out, i ? ", " : "", outlen - strlen(out) - 1);
        strncat(out, ch[i], outlen - strlen(out) - 1);
    }
}

/* Sets one option from text; on failure writes "expected ..., got '...'"
 * into err (the caller adds where). */
static int set_opt(cw_config *c, const opt *o, const char *value, char *err, size_t errlen) {
    char *base = (char *)c;
    switch (o->type) {
    case OPT_STR: {
        if (o->min == 1 && value[0] == '\0') return cw_errf(err, errlen, "expected a non-empty value");
        if (!cw_utf8_valid(value, strlen(value))) return cw_errf(err, errlen, "expected UTF-8 text");
        char *dup = strdup(value);
        if (!dup) return cw_errf(err, errlen, "out of memory");
        char **slot = (char **)(base + o->offset);
        free(*slot);
        *slot = dup;
        return 0;
    }
    case OPT_INT: {
        char *end;
        errno = 0;
        long v = strtol(value, &end, 10);
        if (errno || end == value || *end || v < o->min || v > o->max)
            return cw_errf(err, errlen, "expected an integer from %ld to %ld, got '%.64s'", o->min, o->max, value);
        *(int *)(base + o->offset) = (int)v;
        return 0;
    }
    case OPT_ENUM:
        for (int i = 0; o->choices[i]; i++) {
            if (strcmp(o->choices[i], value) == 0) {
                *(int *)(base + o->offset) = i;
                return 0;
            }
        }
        char ch[160];
        choices_text(o->choices, ch, sizeof(ch));
        return cw_errf(err, errlen, "expected one of %s, got '%.64s'", ch, value);
    }
    return cw_errf(err, errlen, "internal: bad option type");
}

static int set_unit(cw_config *c, const char *code, const char *name, char *err, size_t errlen) {
    int ok = strlen(code) == 6;
    for (int i = 0; ok && i < 6; i++) ok = code[i] >= '0' && code[i] <= '9';
    if (!ok) return cw_errf(err, errlen, "expected a 6-digit unit code as the key");
    if (!name[0] || !cw_utf8_valid(name, strlen(name))) return cw_errf(err, errlen, "expected the unit's name in UTF-8");
    for (size_t i = 0; i < c->nunits; i++) {
        if (strcmp(c->units[i].code, code) == 0) {
            char *dup = strdup(name);
            if (!dup) return cw_errf(err, errlen, "out of memory");
            free(c->units[i].name);
            c->units[i].name = dup;
            return 0;
        }
    }
    char *dup = strdup(name);
    cw_unit_name *nu = dup ? realloc(c->units, (c->nunits + 1) * sizeof(*nu)) : NULL;
    if (!nu) {
        free(dup);
        return cw_errf(err, errlen, "out of memory");
    }
    c->units = nu;
    /* kept in code order: every alert looks its unit's name up */
    size_t at = c->nunits;
    while (at > 0 && strcmp(nu[at - 1].code, code) > 0) at--;
    memmove(nu + at + 1, nu + at, (c->nunits - at) * sizeof(*nu));
    memcpy(nu[at].code, code, 7);
    nu[at].name = dup;
    c->nunits++;
    return 0;
}

static int by_key(const void *a, const void *b) {
    return strcmp(((const cw_pros_name *)a)->key, ((const cw_pros_name *)b)->key);
}

/* [prosecutors]: "410923/P017 = 张三" (a unit's prosecutor) or "P017 = 张三"
 * (that id in any unit). Kept sorted by key: every deadline alert looks
 * its prosecutor's name up. */
static int set_pros(cw_config *c, const char *key, const char *name, char *err, size_t errlen) {
    const char *slash = strchr(key, '/');
    if (!key[0] || (slash && (slash - key != 6 || strspn(key, "0123456789") != 6 || !slash[1])))
        return cw_errf(err, errlen, "expected a prosecutor id, or UNIT/ID with a 6-digit unit code, as the key");
    if (!name[0] || !cw_utf8_valid(name, strlen(name))) return cw_errf(err, errlen, "expected the prosecutor's name in UTF-8");
    for (size_t i = 0; i < c->npros; i++) {
        if (strcmp(c->pros[i].key, key) == 0) {
            char *dup = strdup(name);
            if (!dup) return cw_errf(err, errlen, "out of memory");
            free(c->pros[i].name);
            c->pros[i].name = dup;
            return 0;
        }
    }
    cw_pros_name *np = realloc(c->pros, (c->npros + 1) * sizeof(*np));
    if (!np) return cw_errf(err, errlen, "out of memory");
    c->pros = np;
    np[c->npros].key = strdup(key);
    np[c->npros].name = strdup(name);
    c->npros++;
    if (!np[c->npros - 1].key || !np[c->npros - 1].name) return cw_errf(err, errlen, "out of memory");
    qsort(c->pros, c->npros, sizeof(*c->pros), by_key);
    return 0;
}

const char *cw_config_pros_name(const cw_config *c, const char *unit, const char *id) {
    char key[8 + 256];
    cw_pros_name want = {key, NULL};
    for (int pass = 0; pass < 2 && c->npros; pass++) {
        if (pass == 0) snprintf(key, sizeof(key), "%.6s/%s", unit, id);
        else snprintf(key, sizeof(key), "%s", id);
        const cw_pros_name *p = bsearch(&want, c->pros, c->npros, sizeof(*c->pros), by_key);
        if (p) return p->name;
    }
    return NULL;
}

/* Every name of one kind of field of the indicator hashes, for messages:
 * "case_item_ratio, plea_rate, ..." in full. */
static void ind_names(int counters, char *out, size_t outlen) {
    cw_ind_field f;
    out[0] = '\0';
    for (size_t i = 0; cw_ind_fields(i, &f); i++) {
        if ((f.kind == CW_IND_COUNTER) != counters) continue;
        size_t at = strlen(out);
        snprintf(out + at, outlen - at, "%s%s", at ? ", " : "", f.name);
    }
}

/* A [rule NAME] key is kept as text; cw_rules checks it, but for the
 * names of indicators and counters, which are checked here so that a
 * misspelt one is answered with every valid name. */
static int add_rule_kv(cw_config *c, const char *rule, const char *key, const char *value, const char *where,
                       char *err, size_t errlen) {
    if (!rule[0]) return cw_errf(err, errlen, "a rule section needs a name: [rule NAME]");
    if (!cw_utf8_valid(value, strlen(value))) return cw_errf(err, errlen, "expected UTF-8 text");
    int counters = strcmp(key, "sample") == 0;
    if ((counters && cw_ind_counter_index(value) < 0) || (strcmp(key, "indicator") == 0 && cw_ind_indicator_index(value) < 0)) {
        char names[2048];
        ind_names(counters, names, sizeof(names));
        return cw_errf(err, errlen, "expected %s (%s), got '%.64s'",
                       counters ? "a counter of INDICATORS.md §2" : "an indicator of INDICATORS.md §2", names, value);
    }
    for (size_t i = 0; i < c->nrule_kvs; i++) {
        cw_rule_kv *kv = &c->rule_kvs[i];
        if (strcmp(kv->rule, rule) == 0 && strcmp(kv->key, key) == 0) { /* a later value wins */
            char *v = strdup(value), *w = strdup(where);
            if (!v || !w) return free(v), free(w), cw_errf(err, errlen, "out of memory");
            free(kv->value);
            free(kv->where);
            kv->value = v;
            kv->where = w;
            return 0;
        }
    }
    cw_rule_kv *n = realloc(c->rule_kvs, (c->nrule_kvs + 1) * sizeof(*n));
    if (!n) return cw_errf(err, errlen, "out of memory");
    c->rule_kvs = n;
    cw_rule_kv *kv = &n[c->nrule_kvs];
    kv->rule = strdup(rule);
    kv->key = strdup(key);
    kv->value = strdup(value);
    kv->where = strdup(where);
    c->nrule_kvs++;
    if (!kv->rule || !kv->key || !kv->value || !kv->where) return cw_errf(err, errlen, "out of memory");
    return 0;
}

/* Sets section/key from text wherever it came from. */
static int set_value(cw_config *c, const char *section, const char *key, const char *value, const char *where,
                     char *err, size_t errlen) {
    if (strncmp(section, "rule ", 5) == 0) return add_rule_kv(c, section + 5, key, value, where, err, errlen);
    if (strcmp(section, "units") == 0) return set_unit(c, key, value, err, errlen);
    if (strcmp(section, "prosecutors") == 0) return set_pros(c, key, value, err, errlen);
    const opt *o = find_opt(section, key);
    if (!o) {
        if (!section_known(section)) return cw_errf(err, errlen, "unknown section");
        return cw_errf(err, errlen, "unknown key");
    }
    return set_opt(c, o, value, err, errlen);
}

/* ---- Life cycle ------------------------------------------------------- */

cw_config *cw_config_new(void) {
    cw_config *c = calloc(1, sizeof(*c));
    if (!c) return NULL;
    char err[256];
    for (size_t i = 0; i < NOPTS; i++) {
        if (set_opt(c, &opts[i], opts[i].def, err, sizeof(err)) < 0) {
            cw_config_free(c);
            return NULL;
        }
    }
    return c;
}

void cw_config_free(cw_config *c) {
    if (!c) return;
    for (size_t i = 0; i < NOPTS; i++)
        if (opts[i].type == OPT_STR) free(*(char **)((char *)c + opts[i].offset));
    for (size_t i = 0; i < c->nunits; i++) free(c->units[i].name);
    free(c->units);
    for (size_t i = 0; i < c->npros; i++) free(c->pros[i].key), free(c->pros[i].name);
    free(c->pros);
    for (size_t i = 0; i < c->nrule_kvs; i++) {
        free(c->rule_kvs[i].rule);
        free(c->rule_kvs[i].key);
        free(c->rule_kvs[i].value);
        free(c->rule_kvs[i].where);
    }
    free(c->rule_kvs);
    if (c->redis_password) {
        explicit_bzero(c->redis_password, strlen(c->redis_password));
        free(c->redis_password);
    }
    free(c);
}

/* ---- Loading ---------------------------------------------------------- */

typedef struct load_ctx {
    cw_config *c;
    FILE *f;
    const char *path;
    int line; /* line most recently handed to inih */
    int failed;
    char *err;
    size_t errlen;
} load_ctx;

/* inih reads through this so that the handler knows the line it is on.
 * A section header without its ']' is caught here: inih would report it
 * only at the end, after the keys below it went to the section before. */
static char *read_line(char *str, int num, void *stream) {
    load_ctx *lc = stream;
    char *r = fgets(str, num, lc->f);
    if (!r) return r;
    lc->line++;
    /* at the start of the line only: an indented line may continue a value */
    const char *p = str;
    if (*p == '[' && !lc->failed) {
        const char *close = strchr(p, ']');
        const char *comment = strpbrk(p, ";#");
        if (!close || (comment && comment < close)) {
            size_t n = strcspn(p, "\r\n;#");
            while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t')) n--;
            lc->failed = 1;
            cw_errf(lc->err, lc->errlen, "%s:%d: unclosed section header '%.*s' (expected ']')", lc->path, lc->line,
                    (int)(n > 64 ? 64 : n), p);
        }
    }
    return r;
}

static int on_value(void *user, const char *section, const char *key, const char *value) {
    load_ctx *lc = user;
    if (lc->failed) return 1;
    char why[1024], where[300];
    snprintf(where, sizeof(where), "%s:%d", lc->path, lc->line);
    if (set_value(lc->c, section, key, value, where, why, sizeof(why)) < 0) {
        lc->failed = 1;
        cw_errf(lc->err, lc->errlen, "%s:%d: [%s] %s: %s", lc->path, lc->line, section, key, why);
    }
    return 1; /* keep inih going; we report our own first error */
}

int cw_config_load_stream(cw_config *c, FILE *f, const char *name, char *err, size_t errlen) {
    load_ctx lc = {.c = c, .path = name, .err = err, .errlen = errlen, .f = f};
    int rc = ini_parse_stream(read_line, &lc, on_value, &lc);
    if (lc.failed) return -1;
    if (rc > 0) return cw_errf(err, errlen, "%s:%d: not INI syntax (expected [section] or key = value)", name, rc);
    if (rc < 0) return cw_errf(err, errlen, "%s: could not be read", name);
    return 0;
}

int cw_config_load(cw_config *c, const char *path, char *err, size_t errlen) {
    FILE *f = fopen(path, "r");
    if (!f) return cw_errf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    int rc = cw_config_load_stream(c, f, path, err, errlen);
    fclose(f);
    return rc;
}

int cw_config_override(cw_config *c, const char *assignment, char *err, size_t errlen) {
    /* the key follows the last '.' before '=': rule names hold dots */
    const char *eq = strchr(assignment, '=');
    const char *dot = NULL;
    for (const char *p = assignment; eq && p < eq; p++)
        if (*p == '.') dot = p;
    if (!dot || !eq || dot > eq || dot == assignment || eq == dot + 1)
        return cw_errf(err, errlen, "-o %s: expected section.key=value", assignment);
    char section[128], key[64];
    if ((size_t)(dot - assignment) >= sizeof(section) || (size_t)(eq - dot - 1) >= sizeof(key))
        return cw_errf(err, errlen, "-o %s: section or key too long", assignment);
    memcpy(section, assignment, (size_t)(dot - assignment));
    section[dot - assignment] = '\0';
    memcpy(key, dot + 1, (size_t)(eq - dot - 1));
    key[eq - dot - 1] = '\0';
    char why[1024];
    if (set_value(c, section, key, eq + 1, "-o", why, sizeof(why)) < 0)
        return cw_errf(err, errlen, "-o %s: [%s] %s: %s", assignment, section, key, why);
    return 0;
}

/* An empty key of [alerts] next to the log: "casewatch:alerts:log" ->
 * "casewatch:alerts:<suffix>" (the log key's prefix, or the key itself
 * when it has no ':'). Returns 0 or -1 (memory). */
static int alerts_key_default(char **key, const char *log_key, const char *suffix) {
    if ((*key)[0]) return 0;
    const char *colon = strrchr(log_key, ':');
    size_t n = colon ? (size_t)(colon - log_key) : strlen(log_key);
    char *k = malloc(n + strlen(suffix) + 2);
    if (!k) return -1;
    sprintf(k, "%.*s:%s", (int)n, log_key, suffix);
    free(*key);
    *key = k;
    return 0;
}

int cw_config_finish(cw_config *c, char *err, size_t errlen) {
    cw_log_level = c->log_level;
    if (alerts_key_default(&c->alerts_firing_key, c->alerts_log_key, "firing") < 0 ||
        alerts_key_default(&c->alerts_acks_key, c->alerts_log_key, "acks") < 0)
        return cw_errf(err, errlen, "out of memory");
    if (cw_period_parse_offset(c->utc_offset, &c->utc_offset_min) < 0)
        return cw_errf(err, errlen, "[indicators] utc_offset: expected +HH:MM, -HH:MM or Z, got '%.32s'", c->utc_offset);
    if (!c->redis_password_file[0]) return 0;
    const char *path = c->redis_password_file;
    FILE *f = fopen(path, "r");
    if (!f) return cw_errf(err, errlen, "[redis] password_file %s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && (st.st_mode & 077))
        CW_LOG(CW_LOG_WARNING, "config", "password file %s can be read by others (mode %03o); chmod 600 it", path,
               (unsigned)(st.st_mode & 0777));
    /* the whole file: room for the longest password, "\r\n" and one
     * byte more that tells a longer file */
    char buf[CW_PASSWORD_MAX + 3];
    size_t n = fread(buf, 1, sizeof(buf), f);
    int failed = ferror(f);
    fclose(f);
    int rc = 0;
    if (failed) {
        rc = cw_errf(err, errlen, "[redis] password_file %s: cannot read", path);
        goto out;
    }
    size_t whole = n;
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) n--;
    if (whole == sizeof(buf) || n > CW_PASSWORD_MAX) {
        rc = cw_errf(err, errlen, "[redis] password_file %s: longer than %d bytes, the most a password may be", path,
                     CW_PASSWORD_MAX);
        goto out;
    }
    if (n == 0) {
        rc = cw_errf(err, errlen, "[redis] password_file %s: file is empty", path);
        goto out;
    }
    if (memchr(buf, '\0', n)) { /* it would cut the password short */
        rc = cw_errf(err, errlen, "[redis] password_file %s: holds a NUL byte", path);
        goto out;
    }
    buf[n] = '\0';
    free(c->redis_password);
    c->redis_password = strdup(buf);
    if (!c->redis_password) rc = cw_errf(err, errlen, "out of memory");
out:
    explicit_bzero(buf, sizeof(buf));
    return rc;
}

const char *cw_config_unit_name(const cw_config *c, const char *code) {
    size_t lo = 0, hi = c->nunits; /* units are in code order (set_unit) */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int cmp = strcmp(c->units[mid].code, code);
        if (cmp == 0) return c->units[mid].name;
        if (cmp < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

void cw_config_print(const cw_config *c, FILE *out) {
    const char *section = "";
    for (size_t i = 0; i < NOPTS; i++) {
        const opt *o = &opts[i];
        if (strcmp(section, o->section) != 0) {
            fprintf(out, "%s[%s]\n", i ? "\n" : "", o->section);
            section = o->section;
        }
        fprintf(out, "; %s\n", o->help);
        const char *base = (const char *)c;
        switch (o->type) {
        case OPT_STR: fprintf(out, "%s = %s\n", o->key, *(char *const *)(base + o->offset)); break;
        case OPT_INT: fprintf(out, "%s = %d\n", o->key, *(const int *)(base + o->offset)); break;
        case OPT_ENUM: fprintf(out, "%s = %s\n", o->key, o->choices[*(const int *)(base + o->offset)]); break;
        }
    }
    const char *rule = NULL;
    for (size_t i = 0; i < c->nrule_kvs; i++) {
        const cw_rule_kv *kv = &c->rule_kvs[i];
        if (!rule || strcmp(rule, kv->rule) != 0) {
            /* keys of one rule may be spread (overrides); print them together */
            int seen = 0;
            for (size_t j = 0; j < i; j++) seen |= strcmp(c->rule_kvs[j].rule, kv->rule) == 0;
            if (seen) continue;
            rule = kv->rule;
            fprintf(out, "\n[rule %s]\n", rule);
            for (size_t j = i; j < c->nrule_kvs; j++)
                if (strcmp(c->rule_kvs[j].rule, rule) == 0)
                    fprintf(out, "%s = %s\n", c->rule_kvs[j].key, c->rule_kvs[j].value);
        }
    }
    if (c->nunits) {
        fprintf(out, "\n[units]\n");
        for (size_t i = 0; i < c->nunits; i++) fprintf(out, "%s = %s\n", c->units[i].code, c->units[i].name);
    }
    if (c->npros) {
        fprintf(out, "\n[prosecutors]\n");
        for (size_t i = 0; i < c->npros; i++) fprintf(out, "%s = %s\n", c->pros[i].key, c->pros[i].name);
    }
}
