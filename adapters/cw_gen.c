#include "cw_gen.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "../daemon/cw_period.h"

#define DAY_MS 86400000LL

static const char *const default_units[] = {"410923", "410922", "410900"};
static const char *const depts[] = {"第一检察部", "第二检察部", "第三检察部"};

/* Where a case is in its life: the next event it will emit. */
typedef enum stage {
    ARREST_ACCEPTED,
    ARREST_DECIDED,
    ARREST_RECONSIDERATION,
    PROSECUTION_ACCEPTED,
    REVIEW, /* the next step of the review: return, extension, hearing or decision */
    RESUBMITTED,
    JUDGMENT,
    APPEAL,
    COMPLAINT,
    CLOSED,
    LETTER_RECEIVED,
    LETTER_PROCEDURAL,
    LETTER_SUBSTANTIVE,
    DONE
} stage;

typedef struct gcase {
    uint64_t k;
    int64_t next;     /* ts of the next event */
    int64_t review_start;
    stage st;
    int unit, dept, pros, n, step;
    int returns, planned_returns, extended, planned_extension, hearing;
    int detained, complex, fast, arrested, plea, prosecute, appeal;
    char case_id[64];
} gcase;

typedef struct delayed {
    uint64_t release; /* emitted after this many lines */
    char *line;
    int late;
} delayed;

typedef struct gen {
    const cw_gen_opts *o;
    FILE *out;
    uint64_t rng;
    gcase **heap;
    size_t nheap, capheap;
    delayed *delays;
    size_t ndelays, capdelays;
    uint64_t started;
    cw_gen_stats st;
    int failed;
} gen;

/* splitmix64: small, fast, and the same everywhere */
static uint64_t rnd(gen *g) {
    uint64_t z = (g->rng += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static double chance(gen *g) {
    return (double)(rnd(g) >> 11) / 9007199254740992.0;
}

static int uniform(gen *g, int lo, int hi) {
    return lo + (int)(rnd(g) % (uint64_t)(hi - lo + 1));
}

/* A working-hours moment (08:00-18:00 China time) `days` calendar days
 * after the day of ts. */
static int64_t after_days(gen *g, int64_t ts, int days) {
    int off = g->o->offset_min;
    int64_t day = cw_period_day(ts, off);
    return cw_period_day_start(day + days, off) + (8 * 3600 + (int64_t)uniform(g, 0, 10 * 3600)) * 1000;
}

/* When the review's next step comes: an intermediate step within a week,
 * or the decision, on time (28 days, the shortest month, or 10 fast; +15
 * once extended) unless this one is to be overdue. */
static void plan_review(gen *g, gcase *c, int64_t ts) {
    if (c->returns < c->planned_returns || (c->planned_extension && !c->extended) || c->hearing) {
        c->next = after_days(g, ts, uniform(g, 2, 8));
        return;
    }
    int limit = c->fast ? 10 : 28 + (c->extended ? 15 : 0);
    int64_t day0 = cw_period_day(c->review_start, g->o->offset_min), today = cw_period_day(ts, g->o->offset_min);
    int left = limit - (int)(today - day0);
    if (left < 1) left = 1;
    c->next = after_days(g, ts, chance(g) < g->o->overdue_rate ? left + uniform(g, 3, 6) : uniform(g, 1, left));
}

/* ---- the heap of cases, by the ts of their next event ------------------ */

static int heap_push(gen *g, gcase *c) {
    if (g->nheap == g->capheap) {
        size_t cap = g->capheap ? g->capheap * 2 : 1024;
        gcase **h = realloc(g->heap, cap * sizeof(*h));
        if (!h) return -1;
        g->heap = h;
        g->capheap = cap;
    }
    size_t i = g->nheap++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (g->heap[p]->next <= c->next) break;
        g->heap[i] = g->heap[p];
        i = p;
    }
    g->heap[i] = c;
    return 0;
}

static gcase *heap_pop(gen *g) {
    if (!g->nheap) return NULL;
    gcase *top = g->heap[0], *last = g->heap[--g->nheap];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        if (l >= g->nheap) break;
        m = l + 1 < g->nheap && g->heap[l + 1]->next < g->heap[l]->next ? l + 1 : l;
        if (g->heap[m]->next >= last->next) break;
        g->heap[i] = g->heap[m];
        i = m;
    }
    if (g->nheap) g->heap[i] = last;
    return top;
}

/* ---- output ------------------------------------------------------------ */

static void write_line(gen *g, const char *line) {
    if (fputs(line, g->out) == EOF || fputc('\n', g->out) == EOF) g->failed = 1;
    g->st.lines++;
}

static void delay(gen *g, const char *line, uint64_t after, int late) {
    if (g->ndelays == g->capdelays) {
        size_t cap = g->capdelays ? g->capdelays * 2 : 64;
        delayed *d = realloc(g->delays, cap * sizeof(*d));
        if (!d) {
            g->failed = 1;
            return;
        }
        g->delays = d;
        g->capdelays = cap;
    }
    char *copy = strdup(line);
    if (!copy) {
        g->failed = 1;
        return;
    }
    g->delays[g->ndelays++] = (delayed){g->st.lines + after, copy, late};
}

/* Writes the delayed lines whose turn has come (all of them if `all`). */
static void release(gen *g, int all) {
    for (size_t i = 0; i < g->ndelays;) {
        if (all || g->delays[i].release <= g->st.lines) {
            write_line(g, g->delays[i].line);
            free(g->delays[i].line);
            g->delays[i] = g->delays[--g->ndelays];
        } else {
            i++;
        }
    }
}

static int at_limit(const gen *g) {
    return g->o->max_lines && g->st.lines >= g->o->max_lines;
}

static void put(json_t *o, const char *key, json_t *v) {
    json_object_set_new_nocheck(o, key, v);
}

/* A line the protocol rejects, one of four kinds in turn. */
static void bad_line(gen *g, int64_t ts) {
    json_t *o = json_object();
    char id[48];
    snprintf(id, sizeof(id), "bad-%llu-%llu", (unsigned long long)g->o->seed, (unsigned long long)g->st.bad);
    put(o, "v", json_integer(1));
    put(o, "id", json_string(id));
    put(o, "ts", json_integer(ts));
    put(o, "type", json_string("arrest.accepted"));
    put(o, "case", json_string("坏数据[2020]1号"));
    put(o, "unit", json_string("410923"));
    switch (g->st.bad % 4) {
    case 0: put(o, "type", json_string("arrest.exploded")); break;
    case 1: put(o, "unit", json_string("41092")); break;
    case 2: json_object_del(o, "case"); break;
    default: put(o, "ts", json_integer(915148800000LL)); break; /* 1999 */
    }
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (!s) {
        g->failed = 1;
        return;
    }
    write_line(g, s);
    free(s);
    g->st.bad++;
}

/* Emits the case's current event and moves it to its next stage. */
static void step(gen *g, gcase *c) {
    const char *type = NULL;
    int64_t ts = c->next;
    json_t *o = json_object();
    char id[64];
    snprintf(id, sizeof(id), "g%llu-%llu-%d", (unsigned long long)g->o->seed, (unsigned long long)c->k, c->step++);
    char pros[16];
    snprintf(pros, sizeof(pros), "P%03d", c->pros);
    put(o, "v", json_integer(1));
    put(o, "id", json_string(id));
    put(o, "ts", json_integer(ts));
    put(o, "type", json_null());
    put(o, "case", json_string(c->case_id));
    put(o, "unit", json_string(g->o->units[c->unit]));
    if (c->st < LETTER_RECEIVED) {
        put(o, "dept", json_string(depts[c->dept]));
        put(o, "pros", json_string(pros));
    }
    int overdue = chance(g) < g->o->overdue_rate;
    int late_ok = 0;
    switch (c->st) {
    case ARREST_ACCEPTED:
        type = "arrest.accepted";
        put(o, "detained", json_boolean(c->detained));
        if (c->complex) put(o, "complex", json_true());
        if (c->n > 1) put(o, "n", json_integer(c->n));
        c->st = ARREST_DECIDED;
        {
            int limit = c->detained ? 7 : c->complex ? 20 : 15;
            c->next = after_days(g, ts, overdue ? limit + uniform(g, 1, 3) : uniform(g, 1, limit));
        }
        break;
    case ARREST_DECIDED: {
        type = "arrest.decided";
        int approve = chance(g) < 0.85;
        put(o, "decision", json_string(approve ? "approve" : "reject"));
        if (c->n > 1) put(o, "n", json_integer(c->n));
        c->arrested = approve;
        if (approve || chance(g) < 0.5) {
            c->st = !approve && chance(g) < 0.1 ? ARREST_RECONSIDERATION : PROSECUTION_ACCEPTED;
            c->next = after_days(g, ts, uniform(g, 5, 40));
        } else {
            c->st = CLOSED;
            c->next = after_days(g, ts, uniform(g, 3, 30));
        }
        break;
    }
    case ARREST_RECONSIDERATION:
        type = "arrest.reconsideration";
        c->st = PROSECUTION_ACCEPTED;
        c->next = after_days(g, ts, uniform(g, 5, 20));
        break;
    case PROSECUTION_ACCEPTED:
        type = "prosecution.accepted";
        put(o, "arrested", json_boolean(c->arrested));
        if (c->fast) put(o, "fast", json_true());
        if (c->n > 1) put(o, "n", json_integer(c->n));
        c->review_start = ts;
        c->st = REVIEW;
        plan_review(g, c, ts);
        break;
    case REVIEW:
        if (c->returns < c->planned_returns) {
            type = "prosecution.returned";
            c->returns++;
            c->st = RESUBMITTED;
            c->next = after_days(g, ts, overdue ? uniform(g, 32, 40) : uniform(g, 7, 27));
        } else if (c->planned_extension && !c->extended) {
            type = "prosecution.extended";
            c->extended = 1;
            plan_review(g, c, ts);
        } else if (c->hearing) {
            type = "hearing.held";
            c->hearing = 0;
            late_ok = 1;
            plan_review(g, c, ts);
        } else {
            type = "prosecution.decided";
            c->prosecute = chance(g) < 0.93;
            put(o, "decision", json_string(c->prosecute ? "prosecute" : "not_prosecute"));
            if (c->n > 1) put(o, "n", json_integer(c->n));
            if (c->plea) {
                put(o, "plea", json_true());
                put(o, "sentencing", json_string(chance(g) < 0.75 ? "determinate" : "range"));
            } else {
                put(o, "plea", json_false());
            }
            if (c->fast) put(o, "fast", json_true());
            if (c->prosecute) {
                c->st = JUDGMENT;
                c->next = after_days(g, ts, uniform(g, 20, 90));
            } else {
                c->st = chance(g) < 0.1 ? COMPLAINT : CLOSED;
                c->next = after_days(g, ts, uniform(g, 5, 30));
            }
            break;
        }
        break;
    case RESUBMITTED:
        type = "prosecution.resubmitted";
        c->review_start = ts;
        c->st = REVIEW;
        plan_review(g, c, ts);
        break;
    case JUDGMENT:
        type = "trial.judgment";
        if (c->n > 1) put(o, "n", json_integer(c->n));
        if (c->plea) put(o, "adopted", json_boolean(chance(g) < 0.95));
        c->st = c->appeal ? APPEAL : CLOSED;
        c->next = after_days(g, ts, uniform(g, 3, 10));
        break;
    case APPEAL:
        type = "trial.appeal";
        late_ok = 1;
        c->st = CLOSED;
        c->next = after_days(g, ts, uniform(g, 10, 60));
        break;
    case COMPLAINT:
        type = "nonprosecution.complaint";
        c->st = CLOSED;
        c->next = after_days(g, ts, uniform(g, 10, 30));
        break;
    case CLOSED:
        type = "case.closed";
        c->st = DONE;
        break;
    case LETTER_RECEIVED:
        type = "letter.received";
        c->st = LETTER_PROCEDURAL;
        c->next = after_days(g, ts, overdue ? uniform(g, 8, 10) : uniform(g, 1, 7));
        break;
    case LETTER_PROCEDURAL:
        type = "letter.replied";
        put(o, "reply", json_string("procedural"));
        c->st = LETTER_SUBSTANTIVE;
        c->next = after_days(g, ts, uniform(g, 20, 80));
        break;
    case LETTER_SUBSTANTIVE:
        type = "letter.replied";
        put(o, "reply", json_string("substantive"));
        c->st = CLOSED;
        c->next = after_days(g, ts, 1);
        break;
    case DONE: break;
    }
    put(o, "type", json_string(type));
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (!s) {
        g->failed = 1;
        return;
    }
    if (late_ok && chance(g) < g->o->late_rate) {
        delay(g, s, (uint64_t)uniform(g, 20, 400), 1);
        g->st.late++;
    } else {
        write_line(g, s);
    }
    if (chance(g) < g->o->dup_rate) {
        delay(g, s, (uint64_t)uniform(g, 1, 500), 0);
        g->st.duplicates++;
    }
    free(s);
    if (chance(g) < g->o->bad_rate) bad_line(g, ts);
}

static gcase *new_case(gen *g) {
    const cw_gen_opts *o = g->o;
    gcase *c = calloc(1, sizeof(*c));
    if (!c) return NULL;
    c->k = g->started++;
    int64_t span = (int64_t)o->days * DAY_MS;
    c->next = o->start_ms + (int64_t)((double)span * (double)c->k / (double)o->cases) + (int64_t)uniform(g, 0, 3600) * 1000;
    c->unit = uniform(g, 0, (int)o->nunits - 1);
    c->dept = uniform(g, 0, 2);
    c->pros = uniform(g, 1, 20);
    c->n = chance(g) < 0.8 ? 1 : uniform(g, 2, 4);
    char year[8], month[8], quarter[8];
    cw_period_names(c->next, g->o->offset_min, month, quarter, year);
    if (chance(g) < 0.05) {
        c->st = LETTER_RECEIVED;
        snprintf(c->case_id, sizeof(c->case_id), "信访[%s]%llu号", year, (unsigned long long)c->k);
        return c;
    }
    snprintf(c->case_id, sizeof(c->case_id), "刑诉受[%s]%llu号", year, (unsigned long long)c->k);
    c->st = chance(g) < 0.6 ? ARREST_ACCEPTED : PROSECUTION_ACCEPTED;
    c->detained = chance(g) < 0.8;
    c->complex = chance(g) < 0.1;
    c->fast = chance(g) < 0.25;
    /* units differ in quality: the first returns, extends and sees
     * appeals least, the last most (case-item ratios from about 1:1.1 up) */
    double f = o->nunits > 1 ? 0.3 + 1.2 * (double)c->unit / (double)(o->nunits - 1) : 1.0;
    double r = chance(g);
    c->planned_returns = c->fast ? 0 : r < 1 - 0.25 * f ? 0 : r < 1 - 0.05 * f ? 1 : 2;
    c->planned_extension = !c->fast && chance(g) < 0.12 * f;
    c->hearing = chance(g) < 0.05;
    c->plea = chance(g) < 0.85;
    c->appeal = chance(g) < 0.1 * f;
    return c;
}

void cw_gen_defaults(cw_gen_opts *o) {
    memset(o, 0, sizeof(*o));
    o->seed = 1;
    o->cases = 1000;
    o->units = default_units;
    o->nunits = sizeof(default_units) / sizeof(default_units[0]);
    o->offset_min = 480;
    o->start_ms = cw_period_local_midnight(2020, 1, 1, o->offset_min);
    o->days = 365;
    o->dup_rate = 0.01;
    o->late_rate = 0.01;
    o->overdue_rate = 0.02;
}

int cw_gen_run(const cw_gen_opts *o, FILE *out, cw_gen_stats *stats, char *err, size_t errlen) {
    gen g;
    memset(&g, 0, sizeof(g));
    g.o = o;
    g.out = out;
    g.rng = o->seed * 0x2545F4914F6CDD1DULL + 1;
    if (!o->nunits || !o->cases || o->days < 1) {
        snprintf(err, errlen, "nothing to generate: need units, cases and days");
        return -1;
    }
    gcase *first = new_case(&g);
    if (!first || heap_push(&g, first) < 0) g.failed = 1;
    while (!g.failed && !at_limit(&g)) {
        gcase *c = heap_pop(&g);
        if (!c) break;
        /* the next arrival joins once this one has started */
        if (c->step == 0 && g.started < o->cases) {
            gcase *n = new_case(&g);
            if (!n || heap_push(&g, n) < 0) {
                free(c);
                g.failed = 1;
                break;
            }
        }
        step(&g, c);
        release(&g, 0);
        if (c->st == DONE) free(c);
        else if (heap_push(&g, c) < 0) free(c), g.failed = 1;
    }
    if (!at_limit(&g)) release(&g, 1);
    for (size_t i = 0; i < g.nheap; i++) free(g.heap[i]);
    for (size_t i = 0; i < g.ndelays; i++) free(g.delays[i].line);
    free(g.heap);
    free(g.delays);
    if (fflush(out) != 0) g.failed = 1;
    if (stats) *stats = g.st;
    if (g.failed) {
        snprintf(err, errlen, "could not write the generated lines (out of memory or output closed)");
        return -1;
    }
    return 0;
}
