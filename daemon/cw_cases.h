/* cw_cases: the open-case table, keyed by (unit, case), with what the
 * indicators and the statutory deadline clocks need, and the memory that
 * keeps a redelivered event id from counting twice.
 *
 * Dedupe bound: every id of an open case is remembered with the case (8
 * bytes each, a 64-bit hash of the id); when a case closes, its ids move
 * to a window of the most recent `closed_window` ids of closed cases (16
 * bytes each), oldest forgotten first. A redelivery older than that window
 * for a case that has since closed would count again. The window also
 * holds one entry per closed case, so that a later event does not
 * reopen it. */
#ifndef CW_CASES_H
#define CW_CASES_H

#include <stddef.h>
#include <stdint.h>

#include "../proto/cw_event.h"
#include "cw_clock.h"

typedef struct cw_cases cw_cases;

/* What an applied event means beyond its own fields, for the counters. */
typedef struct cw_case_facts {
    int review_decided; /* a prosecution.decided with its accepted seen */
    int64_t review_ms;  /* time in review, 退回补充侦查 excluded */
    int letter_replied; /* 1 procedural, 2 substantive (received seen) */
    int letter_ontime;
    int letter_counted; /* its clock ran out before: already counted as due */
    /* the event's dept and pros as the table interned them (equal strings
     * that stay put until the table is freed: counters may remember them
     * by address), or NULL (not interned: use the event's) */
    const char *dept, *pros;
} cw_case_facts;

/* Where the statutory clocks report: a light of a clock of a case
 * changing (cw_light: one light at a time per clock), and data checks.
 * Called from inside cw_cases_apply and cw_cases_advance; the strings
 * live for the call. */
typedef struct cw_case_listener {
    void (*light)(const cw_light *l, void *data);
    void (*check)(int check, const char *unit, const char *case_id, const cw_event *ev, void *data);
    void *data;
} cw_case_listener;

/* clocks: the configured periods (copied); listener may be NULL. */
cw_cases *cw_cases_new(size_t closed_window, int offset_min, const cw_clock_rules *clocks,
                       const cw_case_listener *listener);

/* Replaces the clock periods (a reload); running clocks keep their due
 * days, new ones use the new periods. */
void cw_cases_set_clocks(cw_cases *t, const cw_clock_rules *clocks);

/* The legal calendar (borrowed: it must outlive its use; NULL: weekends
 * only). A last day on a rest day moves past it (CPL art. 105) by the
 * calendar as it is when judged: setting a new one re-judges every
 * running clock at the next advance (lights that no longer apply are not
 * turned back; a later light waits for its new day). */
struct cw_calendar;
void cw_cases_set_calendar(cw_cases *t, const struct cw_calendar *cal);

/* Brings every clock whose next light is due by local day `today` to
 * the light it should show (clock time: the wall clock live, event time
 * in replays). Cheap when nothing is due: a heap of the next change of
 * each case. A clock started or changed by cw_cases_apply is judged
 * against the last `today` at once. */
void cw_cases_advance(cw_cases *t, int64_t today);
/* The same, taking at most `budget` cases (0: all) whose clocks are due:
 * returns 1 when some are left for the next call (a midnight that changes
 * a million lights is taken in slices between which the loop runs). */
int cw_cases_advance_some(cw_cases *t, int64_t today, size_t budget);
/* The next local day a light changes on (0: none): when to advance next. */
int64_t cw_cases_next_day(const cw_cases *t);
void cw_cases_free(cw_cases *t);

/* Applies ev to its case. Returns 1 when ev is a duplicate (nothing
 * changed), 0 when applied (facts filled), 2 when ev came after its
 * case's case.closed (counted, but the case stays closed; the window
 * remembers closed cases as it does their ids), -1 on out of memory. */
int cw_cases_apply(cw_cases *t, const cw_event *ev, cw_case_facts *facts);

/* An event's keys in the table, worked out ahead of its apply: the hashes
 * of its case key "unit|case" and of its id. cw_cases_keys is a pure
 * function of the event: any thread may call it (the daemon's decode
 * workers do), so that the loop neither hashes nor measures them. */
typedef struct cw_case_keys {
    uint64_t key_hash; /* cw_hash of the case key (stable: snapshots hold what derives from it) */
    uint64_t id_hash;  /* the dedupe hash of the event id (stable: snapshots hold it) */
    uint64_t map_hash; /* the open-case map's own hash of the case key */
    uint64_t mark_hash; /* what the closed-case window remembers of the case itself (stable) */
    uint32_t klen;     /* of the case key; 0: not worked out */
} cw_case_keys;
void cw_cases_keys(const cw_event *ev, cw_case_keys *k);

/* cw_cases_apply with ev's keys (k: cw_cases_keys of that same event). */
int cw_cases_apply_keys(cw_cases *t, const cw_event *ev, const cw_case_keys *k, cw_case_facts *facts);

/* Hints that the event of k is applied soon: stage 0 fetches its case's
 * map slot into the cache, stage 1 (a few events later, the slot there
 * by then) its case record, or when the case is not open the
 * closed-case window's slots it will be looked for in. Changes nothing;
 * any k (not worked out: nothing). */
void cw_cases_prefetch(const cw_cases *t, const cw_case_keys *k, int stage);

size_t cw_cases_open(const cw_cases *t);

/* Caps against hostile or broken input: whether ev may be applied without
 * opening more than max_open cases or remembering more than max_ids ids
 * of one case. Returns 0 (yes, or ev is a duplicate), 1 (the open-case
 * cap), 2 (the ids-per-case cap). Changes nothing. */
int cw_cases_admit(const cw_cases *t, const cw_event *ev, size_t max_open, size_t max_ids);

/* Snapshot: every open case (clocks and lights included), the closed-case
 * window and the clock's day. Load into a table just made by
 * cw_cases_new; lights due by then come on at the next advance. Returns
 * 0, or -1 (corrupt: r->bad, or memory). */
struct cw_snap_writer;
struct cw_snap_reader;
void cw_cases_save(const cw_cases *t, struct cw_snap_writer *w);
int cw_cases_load(cw_cases *t, struct cw_snap_reader *r);

#endif
