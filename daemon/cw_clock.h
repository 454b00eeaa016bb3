/* cw_clock: the vocabulary of the statutory clocks a case carries
 * (INDICATORS.md §4) and of the data checks on its records (§5), shared by
 * the case table that runs them (cw_cases) and the rules that name and
 * word their alerts (cw_rules). Names only: no code. */
#ifndef CW_CLOCK_H
#define CW_CLOCK_H

#include <stdint.h>

enum {
    CW_CLOCK_ARREST_REVIEW,
    CW_CLOCK_PROSECUTION_REVIEW,
    CW_CLOCK_SUPPLEMENTARY,
    CW_CLOCK_LETTER_PROCEDURAL,
    CW_CLOCK_LETTER_SUBSTANTIVE,
    CW_CLOCK_ARREST_RECONSIDERATION,         /* 不批捕复议 */
    CW_CLOCK_ARREST_HIGHER_REVIEW,           /* 不批捕复核 */
    CW_CLOCK_NONPROSECUTION_RECONSIDERATION, /* 不起诉复议 */
    CW_CLOCK_NONPROSECUTION_HIGHER_REVIEW,   /* 不起诉复核 */
    CW_CLOCK_STALE,                          /* 挂案: always the last */
    CW_NCLOCKS
};
/* The clocks of snapshots written before the reconsideration clocks:
 * the first five, then stale. */
#define CW_NCLOCKS_V1 6

/* The lights of a clock: yellow and orange before the period runs out,
 * red once it has (overdue). A clock shows one at a time. */
enum { CW_LIGHT_NONE = 0, CW_LIGHT_YELLOW = 1, CW_LIGHT_ORANGE = 2, CW_LIGHT_RED = 3 };

/* The configured period of one clock (a clock without a rule is off).
 * The period is `days`, or `months`, or `working_days`; the variants
 * apply where the law gives them. */
typedef struct cw_clock_rule {
    int enabled;
    int warn_days;   /* yellow at this many days left (0: none) */
    int urgent_days; /* orange (0: none) */
    int days, months, working_days;
    int days_detained, days_complex;      /* arrest_review */
    int days_fast, days_fast_extended;    /* prosecution_review, 速裁: 10, and 15 in all once extended */
    int extension_days;                   /* prosecution_review: 延长 adds this */
    int holidays_extend; /* CPL art. 105: a last day on a rest day moves to the next working day (never in custody) */
} cw_clock_rule;

typedef struct cw_clock_rules {
    cw_clock_rule k[CW_NCLOCKS];
} cw_clock_rules;

/* A light of a case's clock changing: coming on (firing 1), or going off
 * because the next light took its place, or the clock stopped, paused
 * or moved (firing 0). CW_LIGHT_NONE coming on says the clock started
 * afresh (not moved: an extension is not a start). Strings live for the
 * call. */
typedef struct cw_light {
    int clock, light, firing;
    const char *unit, *case_id;
    const char *dept, *pros; /* who handles the case: "" when unknown */
    int64_t due_day;         /* the local day at whose start the period has run out */
    int days_left;           /* due_day - the day it changed on (<= 0 once overdue) */
    int64_t ts;              /* the event that changed it, or the start of the day it came on */
} cw_light;

/* Data checks of INDICATORS.md §5. */
enum { CW_CHECK_THIRD_RETURN, CW_CHECK_SECOND_EXTENSION, CW_CHECK_DECIDED_UNACCEPTED, CW_CHECK_AFTER_CLOSED, CW_NCHECKS };

#endif
