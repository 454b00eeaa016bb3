/* cw_rules: the alert rules of the configuration ([rule NAME] sections,
 * INDICATORS.md §3-5) and the state of every alert, so that each alert
 * is reported once when it starts firing and once when it resolves.
 *
 * Kinds of rule:
 *   threshold    an indicator of a scope level in a period kind compared
 *                with a threshold, silent below a minimum sample, resolved
 *                past a resolve threshold (hysteresis)
 *   persistence  another rule firing for N consecutive periods
 *   deadline     a statutory clock of a case (which one: the rule's name,
 *                deadline.arrest_review, ...): its periods, and the
 *                days-left at which the yellow and orange lights come on
 *   stale        no event on an open case for N days (挂案)
 *   data         a check of the case records (data.third_return, ...)
 *   rank         peers ranked on an indicator when a period closes: the
 *                worst `bottom` (or, among a province's units, the worst
 *                `bottom_city` city-level and `bottom_county_fraction` of
 *                county-level ones), for `periods` consecutive periods
 * Alerts leave through one callback, as cw_alert values that live only
 * for the call. */
#ifndef CW_RULES_H
#define CW_RULES_H

#include <stddef.h>
#include <stdint.h>

#include "cw_clock.h"
#include "cw_config.h"

typedef struct cw_alert {
    const char *id;    /* "case_item_ratio.yellow/unit:410923/2020-Q3" */
    int firing;        /* 1 firing, 0 resolved */
    const char *level; /* "yellow" "orange" "red" */
    const char *label; /* 黄牌预警 ... */
    const char *rule;
    const char *scope;
    const char *unit;      /* 6 digits, a region's code, or "" (nation) */
    const char *indicator; /* NULL unless an indicator rule */
    int has_value; /* value is known (the indicator's denominator is not 0) */
    double value, threshold;
    const char *period;  /* NULL unless an indicator rule */
    int64_t deadline_ms; /* 0 unless a deadline rule */
    const char *dept, *pros; /* case scopes: who handles the case (NULL or "": unknown) */
    int rank, peers;         /* rank rules: the position (1 = best) and how many were compared; 0 otherwise */
    int64_t event_ts;
    const char *message;
} cw_alert;

typedef void (*cw_alert_fn)(const cw_alert *a, void *data);

typedef struct cw_rules cw_rules;

/* Reads and checks the rules of cfg (which must outlive the rules).
 * Returns NULL with a message naming the rule, key and where it was set. */
cw_rules *cw_rules_new(const cw_config *cfg, char *err, size_t errlen);
void cw_rules_free(cw_rules *r);
size_t cw_rules_count(const cw_rules *r);

/* Alerts currently firing. */
uint64_t cw_rules_firing(const cw_rules *r);

/* Moves the firing states of `old` (same ids) into r, for a reload:
 * alerts of rules that are gone are resolved through `fn`. */
void cw_rules_adopt(cw_rules *r, cw_rules *old, int64_t now_ms, cw_alert_fn fn, void *data);

/* Snapshot: the alert states (firing indicator and rank alerts, data
 * checks raised, ranks taken, deadline lights on). Returns 0 or -1. */
struct cw_snap_writer;
struct cw_snap_reader;
void cw_rules_save(const cw_rules *r, struct cw_snap_writer *w);
int cw_rules_load(cw_rules *r, struct cw_snap_reader *rd);

/* After a crash: an alert state a lost process published after the last
 * snapshot (read back from the alert log) becomes the known state of
 * threshold and persistence alerts, so that what subscribers last saw is
 * what later changes are judged against. Other ids are ignored: clock and
 * data alerts are derived from events again, and rank alerts are judged
 * only when a period closes. */
void cw_rules_reconcile(cw_rules *r, const char *id, int firing);

/* Evaluates the indicator rules (threshold, then persistence) for one
 * (scope, period) whose counters changed. event_ts is the newest event
 * that changed them. May call fn. */
void cw_rules_eval(cw_rules *r, const char *scope, const char *period, const uint64_t *counters, int64_t event_ts,
                   cw_alert_fn fn, void *data);

/* Ranks peers for the rank rules of `period` (a month, quarter or year
 * that has just closed: the clock moved past it), reading the counters of
 * ind; last period's rank alerts resolve unless ranked again. */
struct cw_ind;
void cw_rules_close_period(cw_rules *r, const struct cw_ind *ind, const char *period, int64_t ts, cw_alert_fn fn,
                           void *data);

/* The daemon's own alerts (not configured rules): "system.capacity",
 * "system.stream_trimmed", "system.snapshot", about scope
 * "daemon:<instance>" and `what` (e.g. the cap's name). Reported once when
 * the state changes. */
void cw_rules_system(cw_rules *r, const char *name, const char *what, int firing, const char *level, const char *label,
                     const char *message, int64_t ts, cw_alert_fn fn, void *data);
int cw_rules_system_firing(const cw_rules *r, const char *name, const char *what);



void cw_rules_clocks(const cw_rules *r, cw_clock_rules *out);

/* A light of a case's clock changed (cw_clock.h): counted among the
 * lights firing, and worded with who must act (dept, prosecutor by their
 * [prosecutors] name) and the true days left. */
void cw_rules_light(cw_rules *r, const cw_light *l, cw_alert_fn fn, void *data);

/* cw_rules_light in parts, for a --replay that holds lights raw and words
 * only the ones its net change announces (PROTOCOL.md §3b,
 * cw_sink_hold_light):
 *   count  counts l among the lights firing, as cw_rules_light does;
 *          returns 1 when a rule words l, 0 when none does (no rule for
 *          its clock, or CW_LIGHT_NONE: nothing counted, nothing to word)
 *   id     the alert id cw_rules_light would give l, into
 *          id[CW_LIGHT_ID_MAX] (cut there, as it would be); its length
 *          ("" and 0 when no rule words l)
 *   words  the alert cw_rules_light would report for l, byte for byte,
 *          to fn, without counting it
 *   id_whole  1 when a rule words l and its id is never cut (so it is
 *          no other light's id), without putting it together
 * l's strings live for the call. Loop thread (the engine's). */
#define CW_LIGHT_ID_MAX 700
int cw_rules_light_count(cw_rules *r, const cw_light *l);
size_t cw_rules_light_id(const cw_rules *r, const cw_light *l, char *id);
int cw_rules_light_id_whole(const cw_rules *r, const cw_light *l);
void cw_rules_light_words(const cw_rules *r, const cw_light *l, cw_alert_fn fn, void *data);

/* Offered each light's change before it is worded (cw_engine_hold_lights):
 * returns 1 when it took l raw (then it words l itself, later, with the
 * parts above and `rules`), 0 to have it worded and reported now. Called
 * with l NULL when `rules` are about to be freed (a reload): what it
 * holds must be worded then. */
typedef int (*cw_light_hold_fn)(const cw_light *l, const cw_rules *rules, void *data);

/* Data checks of INDICATORS.md §5 (CW_CHECK_*). */
void cw_rules_check(cw_rules *r, int check, const char *unit, const char *case_id, const char *event_type,
                    int64_t event_ts, cw_alert_fn fn, void *data);

#endif
