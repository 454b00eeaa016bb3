/* cw_ind: the raw counters of INDICATORS.md §2 for every scope (pros,
 * dept, unit, city and province region, nation) and period (month,
 * quarter, year, and a rolling window of days), and the indicators
 * computed from them. A counter moves in the period of the event's own
 * ts, so late events correct old periods. Touched (scope, period) pairs
 * are remembered and handed out once per flush: a burst of a million
 * events writes each touched hash once. */
#ifndef CW_IND_H
#define CW_IND_H

#include <stddef.h>
#include <stdint.h>

#include "../proto/cw_event.h"

typedef struct cw_ind cw_ind;
struct cw_case_facts; /* cw_cases.h: what an applied event means for its case */

/* What a field of an indicator hash is, for people: its Chinese label
 * and how to show it (案件比 as 1:x, rates as fractions, days). */
typedef enum cw_ind_kind { CW_IND_COUNTER, CW_IND_RATIO, CW_IND_RATE, CW_IND_DAYS } cw_ind_kind;
typedef struct cw_ind_field {
    const char *name, *zh;
    cw_ind_kind kind;
} cw_ind_field;

/* The i-th field (indicators first, then counters) into *out; returns
 * the number of fields, or 0 when i is past the end. */
size_t cw_ind_fields(size_t i, cw_ind_field *out);

cw_ind *cw_ind_new(int offset_min, int rolling_days, int keep_quarters);
void cw_ind_free(cw_ind *x);

/* Counts an applied (not duplicate) event. Returns 0 or -1 (memory). */
int cw_ind_apply(cw_ind *x, const cw_event *ev, const struct cw_case_facts *facts);

/* Live mode: the rolling window ends at local day `today` (the wall
 * clock's), not only at the newest event's day; a new day re-emits the
 * windows. */
void cw_ind_set_today(cw_ind *x, int64_t today);

/* A letter whose reply clock (substantive or procedural) ran out
 * unreplied at ts counts as due in its case's scopes (INDICATORS.md §2:
 * its prosecutor and department when known, its unit and above); its
 * reply will not count it again. Returns 0 or -1 (memory). */
int cw_ind_letter_overdue(cw_ind *x, const char *unit, const char *dept, const char *pros, int substantive, int64_t ts);

/* A statutory clock (cw_clock.h, stale excluded) of a case started
 * (overdue 0) or went overdue (1) at ts: `<clock>_started` or
 * `<clock>_overdue` in the case's scopes. Returns 0 or -1 (memory). */
int cw_ind_clock(cw_ind *x, const char *unit, const char *dept, const char *pros, int clock, int overdue, int64_t ts);

/* One hash to write: scope "unit:410923", period "2020-Q3", and n
 * field/value pairs (counters and indicators, values as decimal text);
 * `counters` are the raw counters behind them, for cw_ind_value. */
typedef void (*cw_ind_emit_fn)(const char *scope, const char *period, const uint64_t *counters, int64_t event_ts,
                               const char *const *fields, const char *const *values, size_t n, void *data);

/* Index of an indicator or a counter by name, or -1. */
int cw_ind_indicator_index(const char *name);
int cw_ind_counter_index(const char *name);
/* An indicator's value from raw counters: 0 and *out, or -1 while its
 * denominator is 0 (undefined). */
int cw_ind_value(const uint64_t *counters, int indicator, double *out);
/* An indicator's value as the hashes write it: the text of
 * snprintf("%.4f", v), byte for byte (by hand for the values indicators
 * take; snprintf itself costs ~1.7k instructions a value). */
void cw_ind_format_value(double v, char out[32]);
/* The counter an indicator divides by (its sample size). */
int cw_ind_denominator(int indicator);

/* Emits the (scope, period) pairs touched since the last flush (every
 * rolling window when its last day moved), at most `budget` of them (0:
 * all), forgetting that they were touched; once none is left, drops the
 * periods older than keep_quarters before the newest event. A flush of a
 * whole country's windows is thus done in slices between which the loop
 * runs. Returns the number emitted; see cw_ind_flush_pending. */
size_t cw_ind_flush(cw_ind *x, cw_ind_emit_fn emit, void *data, size_t budget);
/* Whether a flush has something left to emit. */
int cw_ind_flush_pending(const cw_ind *x);

/* Marks every held (scope, period) touched, so that the next flush
 * writes them all: for when hash writes may have been lost (the writer
 * connection dropped after a flush handed them out). */
void cw_ind_touch_all(cw_ind *x);

/* Calls fn for every scope held in `period` ("2020-Q3"), with its
 * counters: for ranking peers when a period closes. A full scan. */
void cw_ind_each(const cw_ind *x, const char *period, void (*fn)(const char *scope, const uint64_t *counters, void *data),
                 void *data);

/* Distinct scopes held, and how many more applying ev would add. */
size_t cw_ind_scopes(const cw_ind *x);
size_t cw_ind_new_scopes(const cw_ind *x, const cw_event *ev);

/* Snapshot: every (scope, period) with its counters. After a load every
 * hash is marked for writing. Returns 0 or -1 (corrupt: r->bad, memory). */
struct cw_snap_writer;
struct cw_snap_reader;
void cw_ind_save(const cw_ind *x, struct cw_snap_writer *w);
int cw_ind_load(cw_ind *x, struct cw_snap_reader *r);

/* A counter's current value, for tests and `status`; 0 when unknown. */
uint64_t cw_ind_counter(const cw_ind *x, const char *scope, const char *period, const char *counter);

/* Scopes and periods held. */
size_t cw_ind_entries(const cw_ind *x);

#endif
