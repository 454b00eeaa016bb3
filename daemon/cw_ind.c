#include "cw_ind.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../proto/cw_text.h"
#include "cw_map.h"
#include "cw_period.h"
#include "cw_snap.h"

/* ---- Counters and indicators, as tables -------------------------------- */

/* X(name, 中文) */
#define COUNTERS(X)                                                                                        \
    X(cases, "案") X(extra_items, "非常态件") X(prosecution_accepted, "受理审查起诉")                        \
    X(returned, "退回补充侦查") X(extended, "延长审查起诉期限") X(decided_persons, "审结人数")              \
    X(not_prosecuted_persons, "不起诉人数") X(plea_persons, "认罪认罚人数")                                 \
    X(determinate_persons, "确定刑量刑建议人数") X(arrest_decided_persons, "审查逮捕审结人数")              \
    X(not_arrested_persons, "不捕人数") X(arrested_persons, "批捕人数")                                     \
    X(recommendation_judged_persons, "量刑建议判决人数") X(adopted_persons, "量刑建议采纳人数")             \
    X(review_decided, "审查起诉审结件数") X(review_ms, "审查起诉用时(毫秒)")                                \
    X(letters_procedural_due, "应程序性回复来信") X(letters_procedural_ontime, "按期程序性回复")           \
    X(letters_substantive_due, "应实体性答复来信") X(letters_substantive_ontime, "按期实体性答复")          \
    X(hearings, "公开听证")

enum {
#define X(name, zh) C_##name,
    COUNTERS(X)
#undef X
    NCOUNTERS
};

static const char *const counter_names[NCOUNTERS] = {
#define X(name, zh) #name,
    COUNTERS(X)
#undef X
};

/* indicator = (num [+ num2]) / den * scale */
static const struct {
    const char *name, *zh;
    cw_ind_kind kind;
    int num, num2, den;
    double scale;
} indicators[] = {
    {"case_item_ratio", "案件比", CW_IND_RATIO, C_cases, C_extra_items, C_cases, 1.0},
    {"plea_rate", "认罪认罚从宽制度适用率", CW_IND_RATE, C_plea_persons, -1, C_decided_persons, 1.0},
    {"determinate_rate", "确定刑量刑建议提出率", CW_IND_RATE, C_determinate_persons, -1, C_plea_persons, 1.0},
    {"adoption_rate", "量刑建议采纳率", CW_IND_RATE, C_adopted_persons, -1, C_recommendation_judged_persons, 1.0},
    {"return_rate", "退回补充侦查率", CW_IND_RATE, C_returned, -1, C_prosecution_accepted, 1.0},
    {"extension_rate", "延长审查起诉期限率", CW_IND_RATE, C_extended, -1, C_prosecution_accepted, 1.0},
    {"non_arrest_rate", "不捕率", CW_IND_RATE, C_not_arrested_persons, -1, C_arrest_decided_persons, 1.0},
    {"non_prosecution_rate", "不诉率", CW_IND_RATE, C_not_prosecuted_persons, -1, C_decided_persons, 1.0},
    {"pretrial_detention_rate", "诉前羁押率", CW_IND_RATE, C_arrested_persons, -1, C_decided_persons, 1.0},
    {"avg_review_days", "审查起诉平均办案天数", CW_IND_DAYS, C_review_ms, -1, C_review_decided, 1.0 / 86400000.0},
    {"letter_procedural_ontime_rate", "7日内程序性回复率", CW_IND_RATE, C_letters_procedural_ontime, -1,
     C_letters_procedural_due, 1.0},
    {"letter_substantive_ontime_rate", "3个月内实体性答复率", CW_IND_RATE, C_letters_substantive_ontime, -1,
     C_letters_substantive_due, 1.0},
};
#define NIND (sizeof(indicators) / sizeof(indicators[0]))

#define SCOPE_MAX (8 + CW_UNIT_LEN + 3 * CW_NAME_MAX + 1)

typedef struct entry {
    char *scope;
    char period[12]; /* "2020-Q3", or "d<day>" for a rolling day bucket */
    int quarter;     /* for dropping old periods */
    int dirty;
    struct entry *next_dirty;
    int64_t event_ts; /* of the event that changed it last */
    uint64_t c[NCOUNTERS];
} entry;

struct cw_ind {
    cw_map *entries;     /* "scope\x1fperiod" -> entry */
    cw_map *rolling;     /* scope -> (void*)1 when its window must be re-emitted */
    cw_map *scopes;      /* every scope seen, for re-emitting all windows when the day moves */
    int day_moved;       /* the window's last day changed since the last flush */
    entry *dirty;
    int offset_min, rolling_days, keep_quarters;
    int newest_quarter;
    int64_t newest_day, newest_ts;
    /* period names of the last event's day */
    int64_t names_day;
    int names_valid, q;
    char month[8], quarter_name[8], year[8], day[24];
    char rolling_name[24];
};

static const char *const counter_labels[NCOUNTERS] = {
#define X(name, zh) zh,
    COUNTERS(X)
#undef X
};

size_t cw_ind_fields(size_t i, cw_ind_field *out) {
    if (i < NIND) {
        *out = (cw_ind_field){indicators[i].name, indicators[i].zh, indicators[i].kind};
    } else if (i < NIND + NCOUNTERS) {
        *out = (cw_ind_field){counter_names[i - NIND], counter_labels[i - NIND], CW_IND_COUNTER};
    } else {
        return 0;
    }
    return NIND + NCOUNTERS;
}

cw_ind *cw_ind_new(int offset_min, int rolling_days, int keep_quarters) {
    cw_ind *x = calloc(1, sizeof(*x));
    if (!x) return NULL;
    x->entries = cw_map_new();
    x->rolling = cw_map_new();
    x->scopes = cw_map_new();
    x->offset_min = offset_min;
    x->rolling_days = rolling_days;
    x->keep_quarters = keep_quarters;
    snprintf(x->rolling_name, sizeof(x->rolling_name), "rolling-%dd", rolling_days);
    if (!x->entries || !x->rolling || !x->scopes) {
        cw_ind_free(x);
        return NULL;
    }
    return x;
}

static void free_entries(cw_map *m) {
    size_t pos = 0;
    void *v;
    while (cw_map_next(m, &pos, NULL, NULL, &v)) {
        free(((entry *)v)->scope);
        free(v);
    }
}

void cw_ind_free(cw_ind *x) {
    if (!x) return;
    if (x->entries) free_entries(x->entries);
    cw_map_free(x->entries);
    cw_map_free(x->rolling);
    cw_map_free(x->scopes);
    free(x);
}

size_t cw_ind_entries(const cw_ind *x) {
    return cw_map_size(x->entries);
}

/* "scope\x1fperiod", built by hand: this is on every event's path. */
static size_t entry_key(const char *scope, const char *period, char *buf, size_t len) {
    size_t a = strlen(scope), b = strlen(period);
    if (a + b + 2 > len) return 0;
    memcpy(buf, scope, a);
    buf[a] = '\x1f';
    memcpy(buf + a + 1, period, b + 1);
    return a + b + 1;
}

static entry *get_entry(cw_ind *x, const char *scope, const char *period, int quarter) {
    char key[512];
    size_t klen = entry_key(scope, period, key, sizeof(key));
    entry *e = cw_map_get(x->entries, key, klen);
    if (e) return e;
    e = calloc(1, sizeof(*e));
    if (!e) return NULL;
    e->scope = strdup(scope);
    snprintf(e->period, sizeof(e->period), "%s", period);
    e->quarter = quarter;
    if (!e->scope || cw_map_put(x->entries, key, klen, e) < 0 ||
        (!cw_map_get(x->scopes, scope, strlen(scope)) && cw_map_put(x->scopes, scope, strlen(scope), (void *)1) < 0)) {
        free(e->scope);
        free(e);
        return NULL;
    }
    return e;
}

/* Adds the event's deltas to one entry. */
static void add(entry *e, const uint64_t *delta, cw_ind *x, int64_t ts) {
    for (int i = 0; i < NCOUNTERS; i++) e->c[i] += delta[i];
    e->event_ts = ts;
    if (ts > x->newest_ts) x->newest_ts = ts;
    if (!e->dirty) {
        e->dirty = 1;
        e->next_dirty = x->dirty;
        x->dirty = e;
    }
}

/* The counters an event moves (INDICATORS.md §2). */
static int deltas(const cw_event *ev, const cw_case_facts *f, uint64_t *d) {
    memset(d, 0, sizeof(uint64_t) * NCOUNTERS);
    uint64_t n = ev->n;
    if (cw_event_type_is_extra_item(ev->type)) d[C_extra_items] = 1;
    switch (ev->type) {
    case CW_EV_ARREST_ACCEPTED: d[C_cases] = 1; break;
    case CW_EV_ARREST_DECIDED:
        d[C_arrest_decided_persons] = n;
        if (ev->decision == CW_DECISION_REJECT) d[C_not_arrested_persons] = n;
        else d[C_arrested_persons] = n;
        break;
    case CW_EV_PROSECUTION_ACCEPTED:
        d[C_prosecution_accepted] = 1;
        if (!cw_event_flag(ev, CW_F_ARRESTED)) d[C_cases] = 1;
        break;
    case CW_EV_PROSECUTION_RETURNED: d[C_returned] = 1; break;
    case CW_EV_PROSECUTION_EXTENDED: d[C_extended] = 1; break;
    case CW_EV_PROSECUTION_DECIDED:
        d[C_decided_persons] = n;
        if (ev->decision == CW_DECISION_NOT_PROSECUTE) d[C_not_prosecuted_persons] = n;
        if (cw_event_flag(ev, CW_F_PLEA)) {
            d[C_plea_persons] = n;
            if (ev->sentencing == CW_SENTENCING_DETERMINATE) d[C_determinate_persons] = n;
        }
        if (f->review_decided) {
            d[C_review_decided] = 1;
            d[C_review_ms] = (uint64_t)f->review_ms;
        }
        break;
    case CW_EV_TRIAL_JUDGMENT:
        if (cw_event_has(ev, CW_F_ADOPTED)) {
            d[C_recommendation_judged_persons] = n;
            if (cw_event_flag(ev, CW_F_ADOPTED)) d[C_adopted_persons] = n;
        }
        break;
    case CW_EV_LETTER_REPLIED:
        /* a letter counts as due once: when replied, or earlier when its
         * clock ran out unreplied (cw_ind_letter_overdue) */
        if (f->letter_replied == 1) {
            d[C_letters_procedural_due] = !f->letter_counted;
            d[C_letters_procedural_ontime] = (uint64_t)f->letter_ontime;
        } else if (f->letter_replied == 2) {
            d[C_letters_substantive_due] = !f->letter_counted;
            d[C_letters_substantive_ontime] = (uint64_t)f->letter_ontime;
        }
        break;
    case CW_EV_HEARING_HELD: d[C_hearings] = 1; break;
    default: break;
    }
    for (int i = 0; i < NCOUNTERS; i++)
        if (d[i]) return 1;
    return 0;
}

/* The scopes ev counts in (INDICATORS.md §1); returns how many. */
static int event_scopes(const cw_event *ev, char (*scopes)[SCOPE_MAX]);

/* Adds d to every scope in the periods of ts. */
static int add_to_scopes(cw_ind *x, char (*scopes)[SCOPE_MAX], int ns, int64_t ts, const uint64_t *d) {
    /* the period names of a day, kept while events stay on it */
    int64_t dayno = cw_period_day(ts, x->offset_min);
    if (dayno != x->names_day || !x->names_valid) {
        cw_period_names(ts, x->offset_min, x->month, x->quarter_name, x->year);
        x->q = cw_period_quarter_index(ts, x->offset_min);
        snprintf(x->day, sizeof(x->day), "d%lld", (long long)dayno);
        x->names_day = dayno;
        x->names_valid = 1;
    }
    const char *month = x->month, *quarter = x->quarter_name, *year = x->year, *day = x->day;
    int q = x->q;
    if (q > x->newest_quarter) x->newest_quarter = q;
    if (dayno > x->newest_day) {
        x->newest_day = dayno;
        x->day_moved = 1; /* every scope's window moved, touched or not */
    }
    const char *periods[4] = {month, quarter, year, day};
    for (int s = 0; s < ns; s++) {
        for (int p = 0; p < 4; p++) {
            entry *e = get_entry(x, scopes[s], periods[p], p == 2 ? q / 4 * 4 + 3 : q);
            if (!e) return -1;
            add(e, d, x, ts);
        }
        if (cw_map_put(x->rolling, scopes[s], strlen(scopes[s]), (void *)1) < 0) return -1;
    }
    return 0;
}

/* The unit's scope chain: unit, city, province, nation. */
static int unit_scopes(const char *unit, char (*scopes)[SCOPE_MAX]) {
    memcpy(scopes[0], "unit:", 5), memcpy(scopes[0] + 5, unit, 6), scopes[0][11] = '\0';
    memcpy(scopes[1], "region:", 7), memcpy(scopes[1] + 7, unit, 4), scopes[1][11] = '\0';
    memcpy(scopes[2], "region:", 7), memcpy(scopes[2] + 7, unit, 2), scopes[2][9] = '\0';
    memcpy(scopes[3], "nation", 7);
    return 4;
}

int cw_ind_apply(cw_ind *x, const cw_event *ev, const cw_case_facts *facts) {
    uint64_t d[NCOUNTERS];
    if (!deltas(ev, facts, d)) return 0;
    char scopes[6][SCOPE_MAX];
    int ns = event_scopes(ev, scopes);
    return add_to_scopes(x, scopes, ns, ev->ts, d);
}

/* "kind:unit:escaped-name", by hand (every event's path). */
static void named_scope(char *out, const char *kind, const char *unit, const char *name) {
    memcpy(out, kind, 5); /* "pros:" / "dept:" */
    memcpy(out + 5, unit, 6);
    out[11] = ':';
    if (cw_key_escape(name, strlen(name), out + 12, SCOPE_MAX - 12) < 0) out[12] = '\0';
}

static int event_scopes(const cw_event *ev, char (*scopes)[SCOPE_MAX]) {
    int ns = 0;
    if (ev->pros[0]) named_scope(scopes[ns++], "pros:", ev->unit, ev->pros);
    if (ev->dept[0]) named_scope(scopes[ns++], "dept:", ev->unit, ev->dept);
    ns += unit_scopes(ev->unit, scopes + ns);
    return ns;
}

int cw_ind_set_today(cw_ind *x, int64_t today) {
    if (today <= x->newest_day) return 0;
    x->newest_day = today;
    x->day_moved = 1;
    return 0;
}

size_t cw_ind_scopes(const cw_ind *x) {
    return cw_map_size(x->scopes);
}

size_t cw_ind_new_scopes(const cw_ind *x, const cw_event *ev) {
    char scopes[6][SCOPE_MAX];
    int ns = event_scopes(ev, scopes);
    size_t fresh = 0;
    for (int i = 0; i < ns; i++) fresh += cw_map_get(x->scopes, scopes[i], strlen(scopes[i])) == NULL;
    return fresh;
}

int cw_ind_letter_overdue(cw_ind *x, const char *unit, int substantive, int64_t ts) {
    uint64_t d[NCOUNTERS] = {0};
    d[substantive ? C_letters_substantive_due : C_letters_procedural_due] = 1;
    char scopes[4][SCOPE_MAX];
    return add_to_scopes(x, scopes, unit_scopes(unit, scopes), ts, d);
}

/* ---- Flushing ----------------------------------------------------------- */

int cw_ind_indicator_index(const char *name) {
    for (size_t i = 0; i < NIND; i++)
        if (strcmp(indicators[i].name, name) == 0) return (int)i;
    return -1;
}

int cw_ind_counter_index(const char *name) {
    for (int i = 0; i < NCOUNTERS; i++)
        if (strcmp(counter_names[i], name) == 0) return i;
    return -1;
}

int cw_ind_denominator(int indicator) {
    return indicators[indicator].den;
}

int cw_ind_value(const uint64_t *c, int i, double *out) {
    uint64_t den = c[indicators[i].den];
    if (!den) return -1;
    double num = (double)c[indicators[i].num] + (indicators[i].num2 >= 0 ? (double)c[indicators[i].num2] : 0);
    *out = num / (double)den * indicators[i].scale;
    return 0;
}

static void emit_counters(const char *scope, const char *period, const uint64_t *c, int64_t event_ts,
                          cw_ind_emit_fn emit, void *data) {
    const char *fields[NCOUNTERS + NIND];
    char values[NCOUNTERS + NIND][32];
    const char *vp[NCOUNTERS + NIND];
    size_t n = 0;
    for (int i = 0; i < NCOUNTERS; i++) {
        fields[n] = counter_names[i];
        snprintf(values[n], sizeof(values[n]), "%llu", (unsigned long long)c[i]);
        vp[n] = values[n];
        n++;
    }
    for (size_t i = 0; i < NIND; i++) {
        double v;
        if (cw_ind_value(c, (int)i, &v) < 0) continue; /* undefined until its denominator is */
        fields[n] = indicators[i].name;
        snprintf(values[n], sizeof(values[n]), "%.4f", v);
        vp[n] = values[n];
        n++;
    }
    emit(scope, period, c, event_ts, fields, vp, n, data);
}

size_t cw_ind_flush(cw_ind *x, cw_ind_emit_fn emit, void *data) {
    size_t emitted = 0;
    for (entry *e = x->dirty; e; e = e->next_dirty) {
        e->dirty = 0;
        if (e->period[0] == 'd') continue; /* day buckets feed the rolling window */
        emit_counters(e->scope, e->period, e->c, e->event_ts, emit, data);
        emitted++;
    }
    x->dirty = NULL;
    /* rolling windows of the scopes touched (all of them when the window's
     * last day moved): the sum of their last days */
    size_t pos = 0;
    if (x->day_moved) {
        const char *sc;
        size_t sl;
        while (cw_map_next(x->scopes, &pos, &sc, &sl, NULL))
            if (!cw_map_get(x->rolling, sc, sl)) cw_map_put(x->rolling, sc, sl, (void *)1);
        x->day_moved = 0;
        pos = 0;
    }
    const char *scope;
    while (cw_map_next(x->rolling, &pos, &scope, NULL, NULL)) {
        uint64_t sum[NCOUNTERS] = {0};
        for (int64_t dd = x->newest_day - x->rolling_days + 1; dd <= x->newest_day; dd++) {
            char key[512], period[24];
            snprintf(period, sizeof(period), "d%lld", (long long)dd);
            size_t klen = entry_key(scope, period, key, sizeof(key));
            entry *e = cw_map_get(x->entries, key, klen);
            if (!e) continue;
            for (int i = 0; i < NCOUNTERS; i++) sum[i] += e->c[i];
        }
        emit_counters(scope, x->rolling_name, sum, x->newest_ts, emit, data);
        emitted++;
        cw_map_del(x->rolling, scope, strlen(scope));
    }
    /* drop periods past what we keep */
    pos = 0;
    const char *key;
    size_t klen;
    void *v;
    while (cw_map_next(x->entries, &pos, &key, &klen, &v)) {
        entry *e = v;
        int old = e->period[0] == 'd' ? atoll(e->period + 1) <= x->newest_day - x->rolling_days
                                      : e->quarter < x->newest_quarter - x->keep_quarters;
        if (old) {
            cw_map_del(x->entries, key, klen);
            free(e->scope);
            free(e);
        }
    }
    return emitted;
}

int cw_ind_touch_all(cw_ind *x) {
    size_t pos = 0;
    void *v;
    while (cw_map_next(x->entries, &pos, NULL, NULL, &v)) {
        entry *e = v;
        if (!e->dirty) {
            e->dirty = 1;
            e->next_dirty = x->dirty;
            x->dirty = e;
        }
        if (cw_map_put(x->rolling, e->scope, strlen(e->scope), (void *)1) < 0) return -1;
    }
    return 0;
}

void cw_ind_each(const cw_ind *x, const char *period, void (*fn)(const char *scope, const uint64_t *counters, void *data),
                 void *data) {
    size_t pos = 0;
    void *v;
    while (cw_map_next(x->entries, &pos, NULL, NULL, &v)) {
        const entry *e = v;
        if (strcmp(e->period, period) == 0) fn(e->scope, e->c, data);
    }
}

uint64_t cw_ind_counter(const cw_ind *x, const char *scope, const char *period, const char *counter) {
    char key[512];
    size_t klen = entry_key(scope, period, key, sizeof(key));
    entry *e = cw_map_get(x->entries, key, klen);
    if (!e) return 0;
    for (int i = 0; i < NCOUNTERS; i++)
        if (strcmp(counter_names[i], counter) == 0) return e->c[i];
    return 0;
}

void cw_ind_save(const cw_ind *x, cw_snap_writer *w) {
    cw_snap_put_u32(w, NCOUNTERS);
    cw_snap_put_u32(w, (uint32_t)x->newest_quarter);
    cw_snap_put_i64(w, x->newest_day);
    cw_snap_put_i64(w, x->newest_ts);
    cw_snap_put_u64(w, cw_map_size(x->entries));
    size_t pos = 0;
    void *v;
    while (cw_map_next(x->entries, &pos, NULL, NULL, &v)) {
        const entry *e = v;
        cw_snap_put_str(w, e->scope);
        cw_snap_put_str(w, e->period);
        cw_snap_put_u32(w, (uint32_t)e->quarter);
        cw_snap_put_i64(w, e->event_ts);
        for (int i = 0; i < NCOUNTERS; i++) cw_snap_put_u64(w, e->c[i]);
    }
}

int cw_ind_load(cw_ind *x, cw_snap_reader *r) {
    if (cw_snap_get_u32(r) != NCOUNTERS) r->bad = 1;
    x->newest_quarter = (int)cw_snap_get_u32(r);
    x->newest_day = cw_snap_get_i64(r);
    x->newest_ts = cw_snap_get_i64(r);
    if (x->newest_day < 0 || x->newest_day > 3000000 || x->newest_quarter < 0 || x->newest_quarter > 40000) r->bad = 1;
    uint64_t n = cw_snap_get_u64(r);
    for (uint64_t k = 0; k < n && !r->bad; k++) {
        char scope[SCOPE_MAX], period[12];
        cw_snap_get_str(r, scope, sizeof(scope));
        cw_snap_get_str(r, period, sizeof(period));
        int quarter = (int)cw_snap_get_u32(r);
        int64_t ts = cw_snap_get_i64(r);
        if (r->bad || !scope[0] || !period[0]) {
            r->bad = 1;
            break;
        }
        entry *e = get_entry(x, scope, period, quarter);
        if (!e) return -1;
        e->event_ts = ts;
        for (int i = 0; i < NCOUNTERS; i++) e->c[i] = cw_snap_get_u64(r);
    }
    if (r->bad) return -1;
    return cw_ind_touch_all(x);
}
