/* cw_engine: the domain core of the daemon, with no I/O. It owns the case
 * table (cw_cases), the counters (cw_ind), the clocks the cases carry and
 * the alert rules (cw_rules); events and time go in, and what changed
 * comes out:
 *
 *   cw_engine_apply(ev)     an event: its case, its counters, its clocks;
 *                           a verdict (applied, duplicate, refused by a cap)
 *   cw_engine_advance(now)  the clock moved (the wall clock live): lights
 *                           whose day came, rankings of closed periods
 *   cw_engine_judge()       a flush point: the indicator rules judged on
 *                           every (scope, period) that changed, and each
 *                           as a hash row to write
 *
 * Alert state changes leave through the `alert` callback as they happen
 * (inside apply, advance, judge and the rest); hash rows through the
 * callback given to judge. Rules are judged whether or not anybody writes
 * the rows: a verdict never depends on the Redis writer being up.
 *
 * The engine never touches hiredis, libuv, files or the wall clock: time
 * is what the caller says it is. Not thread-safe; one caller. */
#ifndef CW_ENGINE_H
#define CW_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "../proto/cw_event.h"
#include "cw_cases.h"
#include "cw_config.h"
#include "cw_rules.h"

typedef struct cw_engine cw_engine;

/* Where alert state changes go: `a` lives for the call. May be NULL. */
typedef struct cw_engine_out {
    cw_alert_fn alert;
    void *data;
} cw_engine_out;

/* Deadline lights offered raw before they are worded (a --replay holds
 * them and words only its net change, PROTOCOL.md §3b): `hold` sees each
 * light a rule words, after it is counted, and returns 1 when it took it
 * (see cw_light_hold_fn); on 0 the light is worded and leaves through
 * `alert` as usual. A reload calls hold(NULL, old rules) before those
 * rules go. NULL: every light is worded at once (the default). */
void cw_engine_hold_lights(cw_engine *e, cw_light_hold_fn hold, void *data);

/* Reads the rules of cfg (which must outlive the engine, or until a
 * reload hands it a new one). Returns NULL with a message naming the rule
 * (a bad configuration) or "out of memory". */
cw_engine *cw_engine_new(const cw_config *cfg, const cw_engine_out *out, char *err, size_t errlen);
void cw_engine_free(cw_engine *e);

/* What became of an event. */
typedef enum cw_verdict {
    CW_APPLIED,     /* counted */
    CW_AFTER_CLOSE, /* counted, on a case already closed (the case stays closed) */
    CW_DUPLICATE,   /* an id already counted: nothing changed */
    CW_REFUSED,     /* over a cap ([limits]): nothing changed; why says which, for the dead letter */
    CW_NOMEM        /* out of memory: what was counted of it stays */
} cw_verdict;

/* Applies one valid event (decoded and checked: cw_event_decode). When
 * the clock follows events (cw_engine_follow_events), ev's time moves it
 * first. Fills why (for CW_REFUSED) and may raise alerts. */
cw_verdict cw_engine_apply(cw_engine *e, const cw_event *ev, char *why, size_t whylen);

/* What applying an event needs of it that is a pure function of the
 * event (the hashes of its case key and id), worked out ahead:
 * cw_engine_prepare touches nothing but k, so any thread may call it
 * (the daemon's decode workers do, cw_batch_decode). Zeroed (what
 * cw_engine_prepare makes of a NULL ev): not worked out. */
typedef struct cw_event_keys {
    cw_case_keys c;
} cw_event_keys;
void cw_engine_prepare(const cw_event *ev, cw_event_keys *k);

/* cw_engine_apply with ev's keys (cw_engine_prepare of that same event;
 * not worked out: computed here). The same verdicts and effects. */
cw_verdict cw_engine_apply_keys(cw_engine *e, const cw_event *ev, const cw_event_keys *k, char *why, size_t whylen);

/* A hint, on the engine's thread, that the event of k is applied
 * CW_ENGINE_AHEAD events from now (k not worked out: none): its case's
 * map slot is fetched into the cache now, and its case record a few
 * calls later (the engine keeps a copy of the keys), so that neither
 * waits for memory when its turn comes. Changes nothing else. */
#define CW_ENGINE_AHEAD 12
void cw_engine_ahead(cw_engine *e, const cw_event_keys *k);

/* Whether the clock of deadlines and rankings is event time (replays,
 * catching up, clock = event: on) or only what cw_engine_advance says
 * (live once caught up: off). On at start. limit_ms (0: none): event time
 * never moves the clock past it (live, the wall clock: an event stamped a
 * day ahead must not light everybody's next day early). */
void cw_engine_follow_events(cw_engine *e, int on, int64_t limit_ms);

/* The legal calendar (the engine owns it; NULL: weekends only): every
 * running clock is judged again by it. */
struct cw_calendar;
void cw_engine_set_calendar(cw_engine *e, struct cw_calendar *cal);

/* The next instant (ms) something is due to change by the clock alone: a
 * light's day, or midnight (periods close): when to call
 * cw_engine_advance next, live. */
int64_t cw_engine_next_change(const cw_engine *e);

/* The clock reached now_ms (the wall clock, live): lights whose day has
 * come, rank rules of each month, quarter or year it moved past, and the
 * rolling windows end today. Never moves the clock back. Judges a slice
 * of the clocks due at a time: returns 1 when some are left (call again
 * once the loop has run; cw_engine_next_change says 0, now). */
int cw_engine_advance(cw_engine *e, int64_t now_ms);

/* One hash to write: HSET key fields/values, and HDEL key `gone` (the
 * indicators whose denominator fell to 0, undefined now: their fields go
 * rather than keep an old value). Strings live for the call. */
typedef struct cw_row {
    const char *scope;  /* "unit:410923" */
    const char *period; /* "2020-Q3" */
    const char *const *fields, *const *values;
    size_t n;
    const char *const *gone;
    size_t ngone;
} cw_row;
typedef void (*cw_row_fn)(const cw_row *row, void *data);

/* A flush point: judges the indicator rules on up to `budget` (0: all)
 * of the (scope, period) pairs changed since the last judge, handing each
 * to row (which may be NULL: judged, not written; see
 * cw_engine_touch_all). Returns how many were judged; see
 * cw_engine_judge_pending. */
size_t cw_engine_judge(cw_engine *e, cw_row_fn row, void *data, size_t budget);
int cw_engine_judge_pending(const cw_engine *e);

/* Marks every held (scope, period) changed: the next judges re-judge and
 * hand out every row (after a reload, or when written rows may be lost). */
void cw_engine_touch_all(cw_engine *e);

/* Resolves the capacity alerts of caps that fell back below 90%. */
void cw_engine_check_capacity(cw_engine *e);

/* The daemon's own alerts ("system.stream_trimmed", "system.snapshot",
 * ...: see cw_rules_system), raised through the same callback. */
void cw_engine_system_alert(cw_engine *e, const char *name, const char *what, int firing, const char *level,
                            const char *label, const char *message, int64_t ts);

/* After a crash: an alert state a lost process published (read back from
 * the alert log) is the state later changes are judged against. */
void cw_engine_reconcile(cw_engine *e, const char *id, int firing);

/* SIGHUP: the rules and units of nc, taken whole or not at all. On
 * success the engine owns nc (the rules point into it), alerts of rules
 * that are gone resolve, and every held period is judged again at the
 * next judge; returns 0. Returns -1 with a message (nc stays the
 * caller's, nothing changed). */
int cw_engine_reload(cw_engine *e, cw_config *nc, int64_t now_ms, char *err, size_t errlen);

/* What the engine holds, for the health hash and STATUS=. events,
 * duplicates and after_close may be set (a snapshot restores them). */
typedef struct cw_engine_counts {
    uint64_t events, duplicates, after_close;
} cw_engine_counts;
cw_engine_counts *cw_engine_counts_of(cw_engine *e);
size_t cw_engine_open_cases(const cw_engine *e);
uint64_t cw_engine_firing(const cw_engine *e);
size_t cw_engine_rules(const cw_engine *e);
int64_t cw_engine_event_now(const cw_engine *e); /* the newest event time seen */

/* Snapshot sections, in the order the file has them: the clock (newest
 * event, day reached, open periods) and the state (cases, counters, alert
 * states). Load into an engine just made. Returns 0, or -1 (corrupt:
 * r->bad, or memory). */
struct cw_snap_writer;
struct cw_snap_reader;
void cw_engine_save_clock(const cw_engine *e, struct cw_snap_writer *w);
int cw_engine_load_clock(cw_engine *e, struct cw_snap_reader *r);
void cw_engine_save_state(const cw_engine *e, struct cw_snap_writer *w);
int cw_engine_load_state(cw_engine *e, struct cw_snap_reader *r);

#endif
