/* cw_gen: a generator of realistic case lifecycles as JSON lines, for
 * tests, benchmarks and the demo. Cases arrive evenly over a span of
 * days in a set of 院; each walks 受理审查逮捕 → 批捕 → 受理审查起诉 →
 * (退回补充侦查 ↔ 重新移送, 延长) → 起诉/不起诉 → 一审判决 → (上诉) → 办结,
 * with letters from the public on the side. Events come out in time
 * order, except the faults asked for: redelivered ids (duplicates),
 * events delivered late (older than the case's previous event), and bad
 * lines that the protocol rejects. The same seed gives the same lines. */
#ifndef CW_GEN_H
#define CW_GEN_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct cw_gen_opts {
    uint64_t seed;
    uint64_t cases;      /* lifecycles to start */
    uint64_t max_lines;  /* stop after this many lines; 0 = run every case to its end */
    const char *const *units;
    size_t nunits;
    int offset_min;   /* local time ([indicators] utc_offset): days and working hours */
    int64_t start_ms; /* first arrival */
    int days;         /* arrivals spread over this many days */
    double dup_rate;  /* fraction of events delivered twice */
    double late_rate; /* fraction of hearings and appeals delivered late */
    double bad_rate;  /* bad lines per event */
    double overdue_rate; /* decisions taken after their statutory deadline */
} cw_gen_opts;

/* Fills o with defaults: seed 1, 1000 cases, units 410923 410922 410900,
 * China time, from 2020-01-01 over 365 days, 1% duplicates, 1% late, no bad lines,
 * 2% overdue. */
void cw_gen_defaults(cw_gen_opts *o);

typedef struct cw_gen_stats {
    uint64_t lines, duplicates, late, bad;
} cw_gen_stats;

/* Writes the lines to out. Returns 0, or -1 with a message (out of memory,
 * write error). stats may be NULL. */
int cw_gen_run(const cw_gen_opts *o, FILE *out, cw_gen_stats *stats, char *err, size_t errlen);

#endif
