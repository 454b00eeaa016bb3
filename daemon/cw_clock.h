/* cw_clock: the vocabulary of the statutory clocks a case carries
 * (INDICATORS.md §4) and of the data checks on its records (§5), shared by
 * the case table that runs them (cw_cases) and the rules that name and
 * word their alerts (cw_rules). Names only: no code. */
#ifndef CW_CLOCK_H
#define CW_CLOCK_H

enum {
    CW_CLOCK_ARREST_REVIEW,
    CW_CLOCK_PROSECUTION_REVIEW,
    CW_CLOCK_SUPPLEMENTARY,
    CW_CLOCK_LETTER_PROCEDURAL,
    CW_CLOCK_LETTER_SUBSTANTIVE,
    CW_CLOCK_STALE,
    CW_NCLOCKS
};

/* The lights of a clock: yellow and orange before the period runs out,
 * red once it has (overdue). */
enum { CW_LIGHT_YELLOW = 1, CW_LIGHT_ORANGE = 2, CW_LIGHT_RED = 3 };

/* The configured periods of the clocks; a clock without a rule is off. */
typedef struct cw_clock_rules {
    int enabled[CW_NCLOCKS];
    int warn_days[CW_NCLOCKS];   /* yellow at this many days left (0: none) */
    int urgent_days[CW_NCLOCKS]; /* orange (0: none) */
    /* periods: days, or months when months > 0 */
    int arrest_days, arrest_days_detained, arrest_days_complex;
    int review_months, review_days_fast, review_extension_days;
    int supplementary_months;
    int letter_procedural_days, letter_substantive_months;
    int stale_days;
} cw_clock_rules;

/* Data checks of INDICATORS.md §5. */
enum { CW_CHECK_THIRD_RETURN, CW_CHECK_SECOND_EXTENSION, CW_CHECK_DECIDED_UNACCEPTED, CW_CHECK_AFTER_CLOSED, CW_NCHECKS };

#endif
