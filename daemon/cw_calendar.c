#include "cw_calendar.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../proto/cw_text.h"
#include "cw_period.h"

#define DAY_MS 86400000LL
#define MAX_FILE (4 << 20) /* a year is ~20 lines: far more than any file needs */
#define MAX_RANGE 31       /* the longest holiday so far is 9 days */

/* ---- Days --------------------------------------------------------------- */

/* 0 Sunday .. 6 Saturday; day 0 (1970-01-01) was a Thursday. */
static int weekday(int64_t day) {
    int64_t w = (day + 4) % 7;
    return (int)(w < 0 ? w + 7 : w);
}

static int weekend(int64_t day) {
    int w = weekday(day);
    return w == 0 || w == 6;
}

static int64_t day_of(int y, int m, int d) {
    return cw_period_local_midnight(y, m, d, 0) / DAY_MS;
}

static int month_days(int y, int m) {
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return mdays[m - 1] + (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0));
}

/* ---- The calendar ------------------------------------------------------- */

enum { LISTED_NONE = 0, LISTED_REST = 1, LISTED_WORK = 2 };

struct cw_calendar {
    int from, through; /* years of the first and last `year` lines */
    int64_t base;      /* the first day of the table */
    size_t ndays;
    uint8_t *rest;     /* ndays: 1 rest day, 0 working day */
    uint16_t *label;   /* ndays: 0 none, else index + 1 into labels */
    char **labels;
    size_t nlabels;
};

void cw_calendar_free(cw_calendar *cal) {
    if (!cal) return;
    for (size_t i = 0; i < cal->nlabels; i++) free(cal->labels[i]);
    free(cal->labels);
    free(cal->rest);
    free(cal->label);
    free(cal);
}

int cw_calendar_is_rest(const cw_calendar *cal, int64_t day) {
    if (cal && day >= cal->base && (uint64_t)(day - cal->base) < cal->ndays) return cal->rest[day - cal->base];
    return weekend(day);
}

const char *cw_calendar_label(const cw_calendar *cal, int64_t day) {
    if (!cal || day < cal->base || (uint64_t)(day - cal->base) >= cal->ndays) return NULL;
    uint16_t i = cal->label[day - cal->base];
    return i ? cal->labels[i - 1] : NULL;
}

int64_t cw_calendar_next_working(const cw_calendar *cal, int64_t day) {
    while (cw_calendar_is_rest(cal, day)) day++; /* ends: beyond the table only weekends rest */
    return day;
}

int64_t cw_calendar_add_working(const cw_calendar *cal, int64_t day, int n) {
    while (n > 0) {
        day++;
        if (!cw_calendar_is_rest(cal, day)) n--;
    }
    return day;
}

int cw_calendar_from(const cw_calendar *cal) {
    return cal ? cal->from : 0;
}

int cw_calendar_through(const cw_calendar *cal) {
    return cal ? cal->through : 0;
}

/* ---- Parsing ------------------------------------------------------------ */

typedef struct entry {
    int64_t first, last;
    int kind; /* LISTED_REST or LISTED_WORK */
    int line;
    size_t label; /* index + 1 into the labels, or 0 */
} entry;

typedef struct parser {
    const char *name;
    char *err;
    size_t errlen;
    int line;
    int year; /* of the last `year` line, 0 before the first */
    int from;
    entry *entries;
    size_t nentries, capentries;
    char **labels;
    size_t nlabels, caplabels;
} parser;

/* Writes "NAME:LINE: message" (or "NAME: message" after the last line)
 * into the parser's err; returns -1. */
static int fail(parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(parser *p, const char *fmt, ...) {
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (p->line) return cw_errf(p->err, p->errlen, "%s:%d: %s", p->name, p->line, msg);
    return cw_errf(p->err, p->errlen, "%s: %s", p->name, msg);
}

static int is_space(char c) {
    return c == ' ' || c == '\t';
}

/* Splits the next word off *s (words end at spaces or tabs); returns its
 * length, 0 at the end of the line. */
static size_t word(const char **s, const char *end, const char **w) {
    while (*s < end && is_space(**s)) (*s)++;
    *w = *s;
    while (*s < end && !is_space(**s)) (*s)++;
    return (size_t)(*s - *w);
}

static int digits(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9') return 0;
    return 1;
}

static int number(const char *s, size_t n) {
    int v = 0;
    for (size_t i = 0; i < n; i++) v = v * 10 + (s[i] - '0');
    return v;
}

/* "YYYY-MM-DD" -> day; 0 or -1 (not a date). */
static int parse_date(const char *s, size_t n, int64_t *day, int *y, int *m) {
    if (n != 10 || s[4] != '-' || s[7] != '-' || !digits(s, 4) || !digits(s + 5, 2) || !digits(s + 8, 2)) return -1;
    *y = number(s, 4);
    *m = number(s + 5, 2);
    int d = number(s + 8, 2);
    if (*y < 1970 || *m < 1 || *m > 12 || d < 1 || d > month_days(*y, *m)) return -1;
    *day = day_of(*y, *m, d);
    return 0;
}

static const char *const weekday_names[] = {"Sunday", "Monday", "Tuesday", "Wednesday",
                                            "Thursday", "Friday", "Saturday"};

static int parse_year(parser *p, const char *s, const char *end) {
    const char *w;
    size_t n = word(&s, end, &w);
    char text[16];
    snprintf(text, sizeof(text), "%.*s", (int)(n < 12 ? n : 12), w);
    if (n != 4 || !digits(w, 4) || number(w, 4) < 1971)
        return fail(p, "expected a year after 'year' (e.g. year 2027), got '%s'", text);
    int y = number(w, 4);
    if (p->year && y != p->year + 1) {
        if (y <= p->year) return fail(p, "year %d after year %d: years come in order, each once", y, p->year);
        return fail(p, "year %d after year %d: the years between are missing (each year's notice, in order)", y,
                    p->year);
    }
    if (!p->year) p->from = y;
    p->year = y;
    return 0;
}

static int add_label(parser *p, const char *s, const char *end, size_t *index) {
    while (s < end && is_space(*s)) s++;
    while (end > s && is_space(end[-1])) end--;
    *index = 0;
    if (s == end) return 0;
    if (!cw_utf8_valid(s, (size_t)(end - s))) return fail(p, "expected the label in UTF-8");
    if (p->nlabels && strlen(p->labels[p->nlabels - 1]) == (size_t)(end - s) &&
        memcmp(p->labels[p->nlabels - 1], s, (size_t)(end - s)) == 0) {
        *index = p->nlabels; /* the same as the line before */
        return 0;
    }
    if (p->nlabels == 65535) return fail(p, "too many labels");
    if (p->nlabels == p->caplabels) {
        size_t cap = p->caplabels ? p->caplabels * 2 : 64;
        char **l = realloc(p->labels, cap * sizeof(*l));
        if (!l) return fail(p, "out of memory");
        p->labels = l;
        p->caplabels = cap;
    }
    char *dup = strndup(s, (size_t)(end - s));
    if (!dup) return fail(p, "out of memory");
    p->labels[p->nlabels++] = dup;
    *index = p->nlabels;
    return 0;
}

/* A date must belong to the year of the `year` line above it, or to the
 * December before (a New Year's holiday may start then). */
static int check_year(parser *p, const char *text, int y, int m) {
    if (y == p->year || (y == p->year - 1 && m == 12)) return 0;
    return fail(p, "%s is outside year %d's notice (its year, or the December before)", text, p->year);
}

static int parse_entry(parser *p, const char *w, size_t n, const char *s, const char *end) {
    char text[32];
    snprintf(text, sizeof(text), "%.*s", (int)(n < 24 ? n : 24), w);
    if (!p->year) return fail(p, "%s comes before any 'year YYYY' line", text);
    const char *dots = NULL;
    for (size_t i = 0; i + 1 < n; i++)
        if (w[i] == '.' && w[i + 1] == '.') {
            dots = w + i;
            break;
        }
    size_t n1 = dots ? (size_t)(dots - w) : n;
    int64_t first, last;
    int y, m;
    char part[32];
    snprintf(part, sizeof(part), "%.*s", (int)(n1 < 24 ? n1 : 24), w);
    if (parse_date(w, n1, &first, &y, &m) < 0)
        return fail(p, "'%s' is not a date (expected YYYY-MM-DD or FIRST..LAST)", part);
    if (check_year(p, part, y, m) < 0) return -1;
    last = first;
    if (dots) {
        const char *w2 = dots + 2;
        size_t n2 = (size_t)(w + n - w2);
        snprintf(part, sizeof(part), "%.*s", (int)(n2 < 24 ? n2 : 24), w2);
        if (parse_date(w2, n2, &last, &y, &m) < 0)
            return fail(p, "'%s' is not a date (expected YYYY-MM-DD or FIRST..LAST)", part);
        if (check_year(p, part, y, m) < 0) return -1;
        if (last < first) return fail(p, "the range %s ends before it starts", text);
        if (last - first + 1 > MAX_RANGE) return fail(p, "the range %s is longer than 31 days", text);
    }
    const char *k;
    size_t nk = word(&s, end, &k);
    int kind;
    if (nk == 4 && memcmp(k, "rest", 4) == 0) {
        kind = LISTED_REST;
    } else if (nk == 4 && memcmp(k, "work", 4) == 0) {
        kind = LISTED_WORK;
    } else {
        char got[32];
        snprintf(got, sizeof(got), "%.*s", (int)(nk < 24 ? nk : 24), k);
        if (!nk) return fail(p, "expected 'rest' or 'work' after %s", text);
        return fail(p, "expected 'rest' or 'work' after %s, got '%s'", text, got);
    }
    if (kind == LISTED_WORK) {
        for (int64_t d = first; d <= last; d++) {
            if (weekend(d)) continue;
            char date[11];
            cw_period_day_date(d, date);
            return fail(p, "%s is a %s, a working day anyway: 'work' is for a Saturday or Sunday (调休)", date,
                        weekday_names[weekday(d)]);
        }
    }
    size_t label;
    if (add_label(p, s, end, &label) < 0) return -1;
    if (p->nentries == p->capentries) {
        size_t cap = p->capentries ? p->capentries * 2 : 256;
        entry *e = realloc(p->entries, cap * sizeof(*e));
        if (!e) return fail(p, "out of memory");
        p->entries = e;
        p->capentries = cap;
    }
    p->entries[p->nentries++] = (entry){first, last, kind, p->line, label};
    return 0;
}

static int parse_line(parser *p, const char *s, const char *end) {
    if (end > s && end[-1] == '\r') end--;
    const char *w;
    size_t n = word(&s, end, &w);
    if (!n || w[0] == '#') return 0;
    if (n == 4 && memcmp(w, "year", 4) == 0) return parse_year(p, s, end);
    if (w[0] >= '0' && w[0] <= '9') return parse_entry(p, w, n, s, end);
    char got[32];
    snprintf(got, sizeof(got), "%.*s", (int)(n < 24 ? n : 24), w);
    return fail(p, "expected 'year YYYY' or a date (YYYY-MM-DD or FIRST..LAST), got '%s'", got);
}

/* Lays the entries out as one byte a day from the first listed day to the
 * end of the last year; a day listed both rest and work is an error. */
static cw_calendar *build(parser *p) {
    cw_calendar *cal = calloc(1, sizeof(*cal));
    if (!cal) return fail(p, "out of memory"), NULL;
    cal->from = p->from;
    cal->through = p->year;
    cal->base = day_of(p->from, 1, 1);
    for (size_t i = 0; i < p->nentries; i++)
        if (p->entries[i].first < cal->base) cal->base = p->entries[i].first;
    cal->ndays = (size_t)(day_of(p->year, 12, 31) - cal->base + 1);
    uint8_t *listed = calloc(cal->ndays, 1);
    int *line = calloc(cal->ndays, sizeof(int));
    cal->rest = calloc(cal->ndays, 1);
    cal->label = calloc(cal->ndays, sizeof(uint16_t));
    if (!listed || !line || !cal->rest || !cal->label) goto oom;
    for (size_t i = 0; i < p->nentries; i++) {
        const entry *e = &p->entries[i];
        for (int64_t d = e->first; d <= e->last; d++) {
            size_t at = (size_t)(d - cal->base);
            if (listed[at] && listed[at] != e->kind) {
                char date[11];
                cw_period_day_date(d, date);
                p->line = e->line;
                fail(p, "%s is listed both as a rest day and as a working day (line %d)", date, line[at]);
                goto fail;
            }
            listed[at] = (uint8_t)e->kind;
            line[at] = e->line;
            if (e->label) cal->label[at] = (uint16_t)e->label;
        }
    }
    for (size_t at = 0; at < cal->ndays; at++)
        cal->rest[at] = listed[at] == LISTED_REST || (listed[at] != LISTED_WORK && weekend(cal->base + (int64_t)at));
    free(listed);
    free(line);
    cal->labels = p->labels;
    cal->nlabels = p->nlabels;
    p->labels = NULL;
    p->nlabels = 0;
    return cal;
oom:
    fail(p, "out of memory");
fail:
    free(listed);
    free(line);
    cw_calendar_free(cal);
    return NULL;
}

cw_calendar *cw_calendar_parse(const char *text, size_t len, const char *name, char *err, size_t errlen) {
    parser p = {.name = name, .err = err, .errlen = errlen};
    cw_calendar *cal = NULL;
    const char *s = text, *end = text + len;
    if (len >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) s += 3; /* a BOM some editors write */
    while (s < end) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        const char *eol = nl ? nl : end;
        p.line++;
        if (memchr(s, '\0', (size_t)(eol - s))) {
            fail(&p, "a NUL byte: not a text file");
            goto done;
        }
        if (parse_line(&p, s, eol) < 0) goto done;
        s = nl ? nl + 1 : end;
    }
    p.line = 0;
    if (!p.year) {
        fail(&p, "no 'year YYYY' line: the file covers no year");
        goto done;
    }
    cal = build(&p);
done:
    for (size_t i = 0; i < p.nlabels; i++) free(p.labels[i]);
    free(p.labels);
    free(p.entries);
    return cal;
}

cw_calendar *cw_calendar_load(const char *path, char *err, size_t errlen) {
    FILE *f = fopen(path, "rb");
    if (!f) return cw_errf(err, errlen, "%s: cannot open: %s", path, strerror(errno)), NULL;
    char *buf = malloc(MAX_FILE + 1);
    if (!buf) {
        fclose(f);
        return cw_errf(err, errlen, "%s: out of memory", path), NULL;
    }
    size_t n = fread(buf, 1, MAX_FILE + 1, f);
    int bad = ferror(f);
    fclose(f);
    cw_calendar *cal = NULL;
    if (bad)
        cw_errf(err, errlen, "%s: cannot read", path);
    else if (n > MAX_FILE)
        cw_errf(err, errlen, "%s: larger than %d bytes: not a holiday file", path, MAX_FILE);
    else
        cal = cw_calendar_parse(buf, n, path, err, errlen);
    free(buf);
    return cal;
}
