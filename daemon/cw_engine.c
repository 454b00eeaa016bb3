#include "cw_engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cw_calendar.h"
#include "cw_cases.h"
#include "cw_ind.h"
#include "cw_log.h"
#include "cw_period.h"
#include "cw_snap.h"

struct cw_engine {
    const cw_config *cfg;   /* the process's: limits, time, instance */
    cw_config *rules_cfg;   /* after a reload: the rules and units point into it (owned) */
    cw_engine_out out;
    cw_light_hold_fn hold; /* lights offered raw first (NULL: none) */
    void *hold_data;
    cw_cases *cases;
    cw_ind *ind;
    cw_rules *rules;
    cw_calendar *cal;        /* the legal calendar (owned); NULL: weekends only */
    int64_t clock_limit;     /* event time never moves the clock past this (0: no limit) */
    int follow_events;       /* the clock moves with event time */
    int lights_pending;      /* live: clocks due by the clock's day not yet judged (a slice at a time) */
    int64_t event_now;       /* the newest event time seen */
    int64_t clock_day;       /* the local day the deadline/rank clock has reached */
    char open_periods[3][8]; /* the month, quarter and year it is in */
    cw_engine_counts counts;
    /* cw_engine_ahead: the keys of the last AHEAD_LAG events hinted */
#define AHEAD_LAG 8
    cw_case_keys ahead[AHEAD_LAG];
    unsigned nahead;
};

/* ---- What changed goes out ----------------------------------------------- */

static void alert_out(const cw_alert *a, void *data) {
    cw_engine *e = data;
    if (e->out.alert) e->out.alert(a, e->out.data);
}

/* A clock's light changed (from cw_cases): history is counted (the
 * clocks started and gone overdue, INDICATORS.md §4; a letter whose clock
 * ran out is due, §2) in the scopes of the case, the rules count it among
 * the lights firing, and word it unless `hold` takes it raw (a replay,
 * which words only its net change). */
static void on_light(const cw_light *l, void *data) {
    cw_engine *e = data;
    int rc = 0;
    if (l->firing && l->light == CW_LIGHT_NONE) {
        rc = cw_ind_clock(e->ind, l->unit, l->dept, l->pros, l->clock, 0, l->ts);
    } else if (l->firing && l->light == CW_LIGHT_RED) {
        int64_t due_ms = cw_period_day_start(l->due_day, e->cfg->utc_offset_min);
        rc = cw_ind_clock(e->ind, l->unit, l->dept, l->pros, l->clock, 1, due_ms);
        if (l->clock == CW_CLOCK_LETTER_PROCEDURAL || l->clock == CW_CLOCK_LETTER_SUBSTANTIVE)
            rc |= cw_ind_letter_overdue(e->ind, l->unit, l->dept, l->pros, l->clock == CW_CLOCK_LETTER_SUBSTANTIVE,
                                        due_ms);
    }
    if (rc < 0) CW_LOG(CW_LOG_ERR, "engine", "out of memory counting a clock of case %s", l->case_id);
    if (l->light == CW_LIGHT_NONE || !cw_rules_light_count(e->rules, l)) return;
    if (!e->hold || e->hold(l, e->rules, e->hold_data) != 1) cw_rules_light_words(e->rules, l, alert_out, e);
}

void cw_engine_hold_lights(cw_engine *e, cw_light_hold_fn hold, void *data) {
    e->hold = hold;
    e->hold_data = data;
}

static void on_check(int check, const char *unit, const char *case_id, const cw_event *ev, void *data) {
    cw_engine *e = data;
    cw_rules_check(e->rules, check, unit, case_id, cw_event_type_name(ev->type), ev->ts, alert_out, e);
}

/* ---- Life cycle ----------------------------------------------------------- */

cw_engine *cw_engine_new(const cw_config *cfg, const cw_engine_out *out, char *err, size_t errlen) {
    cw_engine *e = calloc(1, sizeof(*e));
    if (!e) goto fail_memory;
    e->cfg = cfg;
    if (out) e->out = *out;
    e->follow_events = 1;
    if (!(e->rules = cw_rules_new(cfg, err, errlen))) {
        free(e);
        return NULL;
    }
    cw_clock_rules clocks;
    cw_rules_clocks(e->rules, &clocks);
    cw_case_listener listener = {on_light, on_check, e};
    e->cases = cw_cases_new((size_t)cfg->closed_window, cfg->utc_offset_min, &clocks, &listener);
    e->ind = cw_ind_new(cfg->utc_offset_min, cfg->rolling_days, cfg->keep_quarters);
    if (!e->cases || !e->ind) {
        cw_engine_free(e);
        goto fail_memory;
    }
    return e;
fail_memory:
    snprintf(err, errlen, "out of memory");
    return NULL;
}

void cw_engine_free(cw_engine *e) {
    if (!e) return;
    cw_ind_free(e->ind);
    cw_cases_free(e->cases);
    cw_rules_free(e->rules);
    cw_config_free(e->rules_cfg);
    cw_calendar_free(e->cal);
    free(e);
}

/* ---- Time ------------------------------------------------------------------ */

/* The clock reached `now`: deadline lights whose day has come (at most
 * `budget` cases of them, 0: all; the rest stays pending), and the rank
 * rules of every month, quarter or year it moved past. */
static void clock_moved(cw_engine *e, int64_t now, size_t budget) {
    int offset = e->cfg->utc_offset_min;
    int64_t day = cw_period_day(now, offset);
    if (day <= e->clock_day) {
        if (e->lights_pending || !budget) e->lights_pending = cw_cases_advance_some(e->cases, e->clock_day, budget);
        return;
    }
    e->clock_day = day;
    e->lights_pending = cw_cases_advance_some(e->cases, day, budget);
    char names[3][8];
    cw_period_names(now, offset, names[0], names[1], names[2]);
    for (int k = 0; k < 3; k++) {
        if (e->open_periods[k][0] && strcmp(e->open_periods[k], names[k]) != 0)
            cw_rules_close_period(e->rules, e->ind, e->open_periods[k], now, alert_out, e);
        memcpy(e->open_periods[k], names[k], 8);
    }
}

void cw_engine_follow_events(cw_engine *e, int on, int64_t limit_ms) {
    e->follow_events = on;
    e->clock_limit = limit_ms;
}

void cw_engine_set_calendar(cw_engine *e, cw_calendar *cal) {
    cw_calendar *old = e->cal;
    e->cal = cal;
    cw_cases_set_calendar(e->cases, cal);
    cw_calendar_free(old);
    e->lights_pending = 1; /* every running clock, at the next advance */
}

int64_t cw_engine_next_change(const cw_engine *e) {
    if (e->lights_pending) return 0; /* now */
    int64_t day = cw_cases_next_day(e->cases);
    int64_t next = cw_period_day_start(e->clock_day + 1, e->cfg->utc_offset_min); /* periods close at midnight */
    if (day && day <= e->clock_day) day = e->clock_day + 1;
    if (day) {
        int64_t at = cw_period_day_start(day, e->cfg->utc_offset_min);
        if (at < next) next = at;
    }
    return next;
}

#define LIGHTS_SLICE 2000 /* cases whose clocks are judged per call, live: ~1 ms in the table (bench_clocks), ~20 ms with the alerts they raise */

int cw_engine_advance(cw_engine *e, int64_t now_ms) {
    clock_moved(e, now_ms, LIGHTS_SLICE);
    cw_ind_set_today(e->ind, cw_period_day(now_ms, e->cfg->utc_offset_min));
    return e->lights_pending;
}

int64_t cw_engine_event_now(const cw_engine *e) {
    return e->event_now;
}

/* ---- Caps ------------------------------------------------------------------ */

/* Raises 容量预警 for one cap (once) and says what happens to the excess. */
static void capacity_alert(cw_engine *e, const char *cap, long value, int firing, int64_t ts) {
    char msg[400];
    if (firing)
        snprintf(msg, sizeof(msg), "casewatchd %s 已达容量上限 [limits] %s = %ld，超出的事件转入 %s，已计入的数据不受影响",
                 e->cfg->instance, cap, value, e->cfg->stream_dead_key);
    else
        snprintf(msg, sizeof(msg), "casewatchd %s 容量已回落到 [limits] %s = %ld 的九成以下，容量预警解除",
                 e->cfg->instance, cap, value);
    cw_rules_system(e->rules, "system.capacity", cap, firing, "red", "容量预警", msg, ts, alert_out, e);
}

/* The cap ev would break, or NULL: what is already counted stays. */
static const char *over_capacity(cw_engine *e, const cw_event *ev, long *value) {
    const cw_config *cfg = e->cfg;
    int adm = cw_cases_admit(e->cases, ev, (size_t)cfg->max_open_cases, (size_t)cfg->max_ids_per_case);
    if (adm == 1) return *value = cfg->max_open_cases, "max_open_cases";
    if (adm == 2) return *value = cfg->max_ids_per_case, "max_ids_per_case";
    if (cw_ind_scopes(e->ind) + 6 > (size_t)cfg->max_scopes &&
        cw_ind_scopes(e->ind) + cw_ind_new_scopes(e->ind, ev) > (size_t)cfg->max_scopes)
        return *value = cfg->max_scopes, "max_scopes";
    return NULL;
}

void cw_engine_check_capacity(cw_engine *e) {
    const cw_config *cfg = e->cfg;
    if (cw_rules_system_firing(e->rules, "system.capacity", "max_open_cases") &&
        cw_cases_open(e->cases) < (size_t)cfg->max_open_cases / 10 * 9)
        capacity_alert(e, "max_open_cases", cfg->max_open_cases, 0, e->event_now);
    if (cw_rules_system_firing(e->rules, "system.capacity", "max_scopes") &&
        cw_ind_scopes(e->ind) < (size_t)cfg->max_scopes / 10 * 9)
        capacity_alert(e, "max_scopes", cfg->max_scopes, 0, e->event_now);
}

/* ---- Events: case table -> counters ---------------------------------------- */

void cw_engine_prepare(const cw_event *ev, cw_event_keys *k) {
    if (ev) cw_cases_keys(ev, &k->c);
    else memset(k, 0, sizeof(*k));
}

void cw_engine_ahead(cw_engine *e, const cw_event_keys *k) {
    if (!k->c.klen) return;
    cw_cases_prefetch(e->cases, &k->c, 0);
    /* the slot of the one AHEAD_LAG calls before is in the cache by now:
     * its record next */
    cw_case_keys *old = &e->ahead[e->nahead++ % AHEAD_LAG];
    cw_cases_prefetch(e->cases, old, 1);
    *old = k->c;
}

cw_verdict cw_engine_apply(cw_engine *e, const cw_event *ev, char *why, size_t whylen) {
    return cw_engine_apply_keys(e, ev, NULL, why, whylen);
}

cw_verdict cw_engine_apply_keys(cw_engine *e, const cw_event *ev, const cw_event_keys *k, char *why, size_t whylen) {
    cw_event_keys own;
    if (!k || !k->c.klen) {
        cw_engine_prepare(ev, &own);
        k = &own;
    }
    long value = 0;
    const char *cap = over_capacity(e, ev, &value);
    if (cap) {
        snprintf(why, whylen, "capacity: [limits] %s = %ld reached", cap, value);
        capacity_alert(e, cap, value, 1, ev->ts);
        return CW_REFUSED;
    }
    if (ev->ts > e->event_now) e->event_now = ev->ts;
    /* an event up to a day ahead (allowed) does not move everybody's
     * lights early: never past the limit (the wall clock, live) */
    if (e->follow_events) /* in stream order: every light due before this event is judged first */
        clock_moved(e, e->clock_limit && e->event_now > e->clock_limit ? e->clock_limit : e->event_now, 0);
    cw_case_facts facts;
    int rc = cw_cases_apply_keys(e->cases, ev, &k->c, &facts);
    if (rc == 1) {
        e->counts.duplicates++;
        return CW_DUPLICATE;
    }
    if (rc == 2) e->counts.after_close++;
    if (rc < 0 || cw_ind_apply(e->ind, ev, &facts) < 0) return CW_NOMEM;
    e->counts.events++;
    return rc == 2 ? CW_AFTER_CLOSE : CW_APPLIED;
}

/* ---- Flush points: counters -> rules, and rows to write -------------------- */

typedef struct judging {
    cw_engine *e;
    cw_row_fn row;
    void *data;
} judging;

#define ROW_FIELDS 64 /* counters and indicators of one hash */
#define ROW_GONE 16   /* indicators */

/* One (scope, period) that changed: judged, then handed out as a row. */
static void judge_one(const char *scope, const char *period, const uint64_t *counters, int64_t event_ts,
                      const char *const *fields, const char *const *values, size_t n, void *data) {
    judging *j = data;
    cw_rules_eval(j->e->rules, scope, period, counters, event_ts, alert_out, j->e);
    if (!j->row) return;
    const char *gone[ROW_GONE];
    size_t ngone = 0;
    cw_ind_field f;
    for (size_t i = 0; cw_ind_fields(i, &f) && f.kind != CW_IND_COUNTER && ngone < ROW_GONE; i++) {
        double v;
        if (cw_ind_value(counters, (int)i, &v) < 0) gone[ngone++] = f.name;
    }
    cw_row r = {scope, period, fields, values, n > ROW_FIELDS ? ROW_FIELDS : n, gone, ngone};
    j->row(&r, j->data);
}

size_t cw_engine_judge(cw_engine *e, cw_row_fn row, void *data, size_t budget) {
    judging j = {e, row, data};
    return cw_ind_flush(e->ind, judge_one, &j, budget);
}

int cw_engine_judge_pending(const cw_engine *e) {
    return cw_ind_flush_pending(e->ind);
}

void cw_engine_touch_all(cw_engine *e) {
    cw_ind_touch_all(e->ind);
}

/* ---- Alert states ------------------------------------------------------------ */

void cw_engine_system_alert(cw_engine *e, const char *name, const char *what, int firing, const char *level,
                            const char *label, const char *message, int64_t ts) {
    cw_rules_system(e->rules, name, what, firing, level, label, message, ts, alert_out, e);
}

void cw_engine_reconcile(cw_engine *e, const char *id, int firing) {
    cw_rules_reconcile(e->rules, id, firing);
}

int cw_engine_reload(cw_engine *e, cw_config *nc, int64_t now_ms, char *err, size_t errlen) {
    cw_rules *nr = cw_rules_new(nc, err, errlen);
    if (!nr) return -1;
    cw_rules_adopt(nr, e->rules, now_ms, alert_out, e);
    if (e->hold) e->hold(NULL, e->rules, e->hold_data); /* what it holds raw is worded by the rules of its time */
    cw_rules_free(e->rules);
    e->rules = nr;
    cw_clock_rules clocks;
    cw_rules_clocks(nr, &clocks);
    cw_cases_set_clocks(e->cases, &clocks);
    cw_config_free(e->rules_cfg);
    e->rules_cfg = nc;
    cw_ind_touch_all(e->ind); /* every held period judged by the new rules */
    return 0;
}

/* ---- What it holds ------------------------------------------------------------ */

cw_engine_counts *cw_engine_counts_of(cw_engine *e) {
    return &e->counts;
}

size_t cw_engine_open_cases(const cw_engine *e) {
    return cw_cases_open(e->cases);
}

uint64_t cw_engine_firing(const cw_engine *e) {
    return cw_rules_firing(e->rules);
}

size_t cw_engine_rules(const cw_engine *e) {
    return cw_rules_count(e->rules);
}

/* ---- Snapshot sections ----------------------------------------------------------- */

void cw_engine_save_clock(const cw_engine *e, cw_snap_writer *w) {
    cw_snap_put_i64(w, e->event_now);
    cw_snap_put_i64(w, e->clock_day);
    for (int k = 0; k < 3; k++) cw_snap_put_str(w, e->open_periods[k]);
}

int cw_engine_load_clock(cw_engine *e, cw_snap_reader *r) {
    e->event_now = cw_snap_get_i64(r);
    e->clock_day = cw_snap_get_i64(r);
    for (int k = 0; k < 3; k++) cw_snap_get_str(r, e->open_periods[k], sizeof(e->open_periods[k]));
    return r->bad ? -1 : 0;
}

void cw_engine_save_state(const cw_engine *e, cw_snap_writer *w) {
    cw_cases_save(e->cases, w);
    cw_ind_save(e->ind, w);
    cw_rules_save(e->rules, w);
}

int cw_engine_load_state(cw_engine *e, cw_snap_reader *r) {
    if (cw_cases_load(e->cases, r) < 0 || cw_ind_load(e->ind, r) < 0 || cw_rules_load(e->rules, r) < 0) return -1;
    return r->bad ? -1 : 0;
}
