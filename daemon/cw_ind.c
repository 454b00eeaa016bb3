#include "cw_ind.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../proto/cw_text.h"
#include "cw_cases.h"
#include "cw_clock.h"
#include "cw_period.h"
#include "cw_snap.h"

/* ---- Counters and indicators, as tables -------------------------------- */

/* X(name, 中文) */
#define COUNTERS(X)                                                                                        \
    X(cases, "案") X(extra_items, "非常态件") X(prosecution_accepted, "受理审查起诉")                        \
    X(returned, "退回补充侦查") X(extended, "延长审查起诉期限") X(decided_persons, "审结人数")              \
    X(not_prosecuted_persons, "不起诉人数") X(plea_persons, "认罪认罚人数")                                 \
    X(determinate_persons, "确定刑量刑建议人数") X(arrest_decided_persons, "审查逮捕审结人数")              \
    X(not_arrested_persons, "不捕人数") X(arrested_persons, "批捕人数")                                     \
    X(recommendation_judged_persons, "量刑建议判决人数") X(adopted_persons, "量刑建议采纳人数")             \
    X(review_decided, "审查起诉审结件数") X(review_ms, "审查起诉用时(毫秒)")                                \
    X(letters_procedural_due, "应程序性回复来信") X(letters_procedural_ontime, "按期程序性回复")           \
    X(letters_substantive_due, "应实体性答复来信") X(letters_substantive_ontime, "按期实体性答复")          \
    X(hearings, "公开听证")                                                                                \
    /* the statutory clocks, in the order of cw_clock.h: started (by the day  \
     * they started) and gone overdue (by the day they did) */                 \
    X(arrest_review_started, "审查逮捕期限起算") X(arrest_review_overdue, "审查逮捕超期")                  \
    X(prosecution_review_started, "审查起诉期限起算") X(prosecution_review_overdue, "审查起诉超期")        \
    X(supplementary_started, "补充侦查期限起算") X(supplementary_overdue, "补充侦查超期")                  \
    X(letter_procedural_started, "来信程序性回复期限起算") X(letter_procedural_overdue, "来信程序性回复超期") \
    X(letter_substantive_started, "来信实体性答复期限起算") X(letter_substantive_overdue, "来信实体性答复超期") \
    X(arrest_reconsideration_started, "不批捕复议期限起算") X(arrest_reconsideration_overdue, "不批捕复议超期") \
    X(arrest_higher_review_started, "不批捕复核期限起算") X(arrest_higher_review_overdue, "不批捕复核超期")  \
    X(nonprosecution_reconsideration_started, "不起诉复议期限起算")                                         \
    X(nonprosecution_reconsideration_overdue, "不起诉复议超期")                                             \
    X(nonprosecution_higher_review_started, "不起诉复核期限起算")                                           \
    X(nonprosecution_higher_review_overdue, "不起诉复核超期")

enum {
#define X(name, zh) C_##name,
    COUNTERS(X)
#undef X
    NCOUNTERS
};
_Static_assert(NCOUNTERS <= 64, "a scope's pending counters are a 64-bit mask");

static const char *const counter_names[NCOUNTERS] = {
#define X(name, zh) #name,
    COUNTERS(X)
#undef X
};

/* indicator = (num [+ num2]) / den * scale */
static const struct {
    const char *name, *zh;
    cw_ind_kind kind;
    int num, num2, den;
    double scale;
} indicators[] = {
    {"case_item_ratio", "案件比", CW_IND_RATIO, C_cases, C_extra_items, C_cases, 1.0},
    {"plea_rate", "认罪认罚从宽制度适用率", CW_IND_RATE, C_plea_persons, -1, C_decided_persons, 1.0},
    {"determinate_rate", "确定刑量刑建议提出率", CW_IND_RATE, C_determinate_persons, -1, C_plea_persons, 1.0},
    {"adoption_rate", "量刑建议采纳率", CW_IND_RATE, C_adopted_persons, -1, C_recommendation_judged_persons, 1.0},
    {"return_rate", "退回补充侦查率", CW_IND_RATE, C_returned, -1, C_prosecution_accepted, 1.0},
    {"extension_rate", "延长审查起诉期限率", CW_IND_RATE, C_extended, -1, C_prosecution_accepted, 1.0},
    {"non_arrest_rate", "不捕率", CW_IND_RATE, C_not_arrested_persons, -1, C_arrest_decided_persons, 1.0},
    {"non_prosecution_rate", "不诉率", CW_IND_RATE, C_not_prosecuted_persons, -1, C_decided_persons, 1.0},
    {"pretrial_detention_rate", "诉前羁押率", CW_IND_RATE, C_arrested_persons, -1, C_decided_persons, 1.0},
    {"avg_review_days", "审查起诉平均办案天数", CW_IND_DAYS, C_review_ms, -1, C_review_decided, 1.0 / 86400000.0},
    {"letter_procedural_ontime_rate", "7日内程序性回复率", CW_IND_RATE, C_letters_procedural_ontime, -1,
     C_letters_procedural_due, 1.0},
    {"letter_substantive_ontime_rate", "3个月内实体性答复率", CW_IND_RATE, C_letters_substantive_ontime, -1,
     C_letters_substantive_due, 1.0},
};
#define NIND (sizeof(indicators) / sizeof(indicators[0]))

#define SCOPE_MAX (8 + CW_UNIT_LEN + 3 * CW_NAME_MAX + 1)

/* ---- The store: scopes holding their periods ---------------------------
 *
 * A scope (a prosecutor, department, unit, city, province, the nation) is
 * a record found by its raw identity: its kind, unit or region code and
 * name as they came, not escaped ('p' unit name, 'd' unit name, 'u' unit,
 * 'c' city, 'P' province, 'n'), hashed in one pass without building a key
 * (see scope_hash). A unit's record points at its city, province and
 * nation, so an event costs three lookups by name, not one per scope and
 * period.
 * A scope keeps its periods (months, quarters, years, and the day buckets
 * of the rolling window) as entries under integer codes, with the entries
 * of the last event's periods at hand: events mostly come in time order. */

enum { P_MONTH, P_QUARTER, P_YEAR, P_DAY, NPERIODS };
#define CODE(kind, index) ((((uint32_t)(kind) + 1) << 28) | (uint32_t)(index))
#define CODE_KIND(code) ((int)((code) >> 28) - 1)
#define CODE_INDEX(code) ((int64_t)((code) & 0x0FFFFFFFu))

struct scope;

typedef struct entry {
    struct scope *scope;
    struct entry *next_dirty;
    uint32_t code;
    int dirty;
    int64_t event_ts; /* of the event that changed it last */
    uint64_t c[NCOUNTERS];
} entry;

typedef struct scope {
    /* what it is found by (the index compares these): */
    char kind;                /* 'p', 'd', 'u', 'c', 'P', 'n' */
    uint8_t code_len, raw_len; /* of code and raw */
    char code[CW_UNIT_LEN];   /* the unit or region code */
    char raw[CW_NAME_MAX + 1]; /* a prosecutor's or department's name as it came ("" for others) */
    char *name;               /* "unit:410923", "dept:410923:第一检察部" (escaped as in keys) */
    struct scope *chain[3];   /* a unit's city, province and nation */
    entry *cur[NPERIODS];     /* the entries of the last event's periods ... */
    int64_t cur_day;          /* ... when they are those of this day (day_codes), else -1 */
    /* What events added to cur[] since the last fold (see fold): one add
     * an event instead of one a period. Only while cur_day holds. */
    uint64_t moved;           /* bit k: pending[k] is not 0 */
    int64_t pending_ts;       /* the last of those events' time */
    uint64_t pending[NCOUNTERS];
    entry **entries;          /* this scope's periods ... */
    uint32_t *codes;          /* ... and their codes, side by side for the scan */
    size_t n, cap;
    int rolling;              /* its window is to be written at the next flush */
    struct scope *next_rolling;
    struct scope *next;       /* every scope, in the order they came */
} scope;

/* A slot of a scope_table. */
typedef struct scope_slot {
    uint64_t key;
    scope *sc; /* NULL: empty */
} scope_slot;

/* Scopes by a 64-bit key, open addressing with linear probing, at most
 * half full (table_put): the index by a scope's hash, the units by their
 * code. Scopes are never removed. */
typedef struct scope_table {
    scope_slot *slots;
    size_t cap, n;
} scope_table;

/* A remembered lookup of a named scope by the address of its name: a
 * name interned by the case table (cw_case_facts) comes back at the same
 * address, and a compare confirms it (see named_lookup). */
typedef struct memo {
    const char *name;
    scope *sc;
} memo;
#define MEMO_BITS 10

struct cw_ind {
    scope_table index; /* (kind, code, raw name) -> scope, by scope_hash */
    scope_table units; /* unit code (unit_code) -> its scope */
    memo memo[1 << MEMO_BITS];
    scope *first, *last;
    size_t nscopes;
    scope *rolling;  /* scopes whose window must be written */
    int day_moved;   /* the window's last day changed since the last flush */
    entry *dirty;
    entry *spare; /* dropped entries, linked by next_dirty, for the next ones made */
    int offset_min, rolling_days, keep_quarters;
    int newest_quarter;
    int64_t newest_day, newest_ts;
    int dropped_quarter; /* what dropping last ran against */
    int64_t dropped_day;
    /* the period codes of the last event's day */
    int64_t codes_day;
    int codes_valid, q;
    uint32_t codes[NPERIODS];
    char rolling_name[24];
};

static const char *const counter_labels[NCOUNTERS] = {
#define X(name, zh) zh,
    COUNTERS(X)
#undef X
};

size_t cw_ind_fields(size_t i, cw_ind_field *out) {
    if (i < NIND) {
        *out = (cw_ind_field){indicators[i].name, indicators[i].zh, indicators[i].kind};
    } else if (i < NIND + NCOUNTERS) {
        *out = (cw_ind_field){counter_names[i - NIND], counter_labels[i - NIND], CW_IND_COUNTER};
    } else {
        return 0;
    }
    return NIND + NCOUNTERS;
}

cw_ind *cw_ind_new(int offset_min, int rolling_days, int keep_quarters) {
    cw_ind *x = calloc(1, sizeof(*x));
    if (!x) return NULL;
    x->index = (scope_table){calloc(64, sizeof(scope_slot)), 64, 0};
    x->units = (scope_table){calloc(16, sizeof(scope_slot)), 16, 0};
    x->offset_min = offset_min;
    x->rolling_days = rolling_days;
    x->keep_quarters = keep_quarters;
    snprintf(x->rolling_name, sizeof(x->rolling_name), "rolling-%dd", rolling_days);
    if (!x->index.slots || !x->units.slots) {
        cw_ind_free(x);
        return NULL;
    }
    return x;
}

static void scope_free(scope *sc) {
    for (size_t i = 0; i < sc->n; i++) free(sc->entries[i]);
    free(sc->entries);
    free(sc->codes);
    free(sc->name);
    free(sc);
}

void cw_ind_free(cw_ind *x) {
    if (!x) return;
    for (scope *sc = x->first, *n; sc; sc = n) {
        n = sc->next;
        scope_free(sc);
    }
    free(x->index.slots);
    free(x->units.slots);
    for (entry *e = x->spare, *n; e; e = n) {
        n = e->next_dirty;
        free(e);
    }
    free(x);
}

size_t cw_ind_entries(const cw_ind *x) {
    size_t n = 0;
    for (const scope *sc = x->first; sc; sc = sc->next) n += sc->n;
    return n;
}

/* ---- Period codes and their names ---------------------------------------- */

/* v in decimal, zero-padded to width, at out (as %0*d of a v >= 0);
 * returns its length. */
static size_t put_padded(char *out, uint64_t v, size_t width) {
    char digits[20], *p = cw_u64_digits(v, digits);
    size_t len = (size_t)(digits + sizeof(digits) - p), n = 0;
    while (len + n < width) out[n++] = '0';
    memcpy(out + n, p, len);
    return n + len;
}

/* "2020-07", "2020-Q3", "2020", or "d<day>" for a rolling day bucket
 * (by hand: every row written and every snapshot entry names one). */
static void code_name(uint32_t code, char out[16]) {
    uint64_t i = (uint64_t)CODE_INDEX(code); /* 28 bits: 11 characters at most */
    size_t n;
    switch (CODE_KIND(code)) {
    case P_MONTH:
        n = put_padded(out, i / 12, 4);
        out[n++] = '-';
        n += put_padded(out + n, i % 12 + 1, 2);
        break;
    case P_QUARTER:
        n = put_padded(out, i / 4, 4);
        out[n++] = '-', out[n++] = 'Q';
        n += put_padded(out + n, i % 4 + 1, 1);
        break;
    case P_YEAR: n = put_padded(out, i, 4); break;
    default:
        out[0] = 'd';
        n = 1 + put_padded(out + 1, i, 1);
        break;
    }
    out[n] = '\0';
}

/* The code of a period name, or 0. */
static uint32_t name_code(const char *name) {
    int y, x;
    size_t n = strlen(name);
    char tail;
    if (name[0] == 'd' && n > 1 && n < 12) {
        long long day;
        if (sscanf(name + 1, "%lld%c", &day, &tail) != 1 || day < 0 || day > 3000000) return 0;
        return CODE(P_DAY, day);
    }
    if (n == 7 && sscanf(name, "%4d-Q%1d%c", &y, &x, &tail) == 2 && x >= 1 && x <= 4 && y >= 0)
        return CODE(P_QUARTER, y * 4 + x - 1);
    if (n == 7 && sscanf(name, "%4d-%2d%c", &y, &x, &tail) == 2 && x >= 1 && x <= 12 && y >= 0)
        return CODE(P_MONTH, y * 12 + x - 1);
    if (n == 4 && sscanf(name, "%4d%c", &y, &tail) == 1 && y >= 0) return CODE(P_YEAR, y);
    return 0;
}

/* The quarter index a period is dropped by: its own, a year's last. */
static int code_quarter(uint32_t code) {
    int64_t i = CODE_INDEX(code);
    switch (CODE_KIND(code)) {
    case P_MONTH: return (int)(i / 12 * 4 + i % 12 / 3);
    case P_QUARTER: return (int)i;
    case P_YEAR: return (int)(i * 4 + 3);
    default: return 0;
    }
}

/* ---- Scopes ------------------------------------------------------------- */

/* The index's hash of a scope's identity (kind, code of at most 6 bytes,
 * raw name of nl bytes; NULL for units and regions), in one pass over its
 * parts, 8 bytes a step: the hot path of every event and clock count finds
 * three scopes this way. Not persisted: may change. */
static inline uint64_t mix(uint64_t a, uint64_t b) {
    __uint128_t r = (__uint128_t)a * b;
    return (uint64_t)r ^ (uint64_t)(r >> 64);
}

/* The n < 8 bytes at p as a word (byte by byte: a memcpy of a variable
 * length is a call). */
static inline uint64_t tail_word(const unsigned char *p, size_t n) {
    uint64_t w = 0;
    for (size_t i = 0; i < n; i++) w |= (uint64_t)p[i] << (8 * i);
    return w;
}

static uint64_t scope_hash(char kind, const char *code, size_t code_len, const char *name, size_t nl) {
    uint64_t w = tail_word((const unsigned char *)code, code_len);
    uint64_t h = mix((w << 8 | (uint8_t)kind) ^ 0x243F6A8885A308D3ULL ^ ((uint64_t)nl << 56), 0x9E3779B97F4A7C15ULL);
    const unsigned char *p = (const unsigned char *)name;
    while (nl >= 8) {
        memcpy(&w, p, 8);
        h = mix(h ^ w, 0x9E3779B97F4A7C15ULL);
        p += 8;
        nl -= 8;
    }
    if (nl) h = mix(h ^ tail_word(p, nl), 0xBF58476D1CE4E5B9ULL);
    return mix(h, 0x94D049BB133111EBULL);
}

/* Where key's probe starts in a table of cap slots. */
static size_t table_home(uint64_t key, size_t cap) {
    return (size_t)(mix(key, 0x9E3779B97F4A7C15ULL) & (cap - 1));
}

/* Puts sc under key (growing the table at half full). Returns 0 or -1. */
static int table_put(scope_table *t, uint64_t key, scope *sc) {
    if ((t->n + 1) * 2 > t->cap) {
        size_t cap = t->cap * 2;
        scope_slot *ns = calloc(cap, sizeof(*ns));
        if (!ns) return -1;
        for (size_t i = 0; i < t->cap; i++) {
            if (!t->slots[i].sc) continue;
            size_t j = table_home(t->slots[i].key, cap);
            while (ns[j].sc) j = (j + 1) & (cap - 1);
            ns[j] = t->slots[i];
        }
        free(t->slots);
        t->slots = ns;
        t->cap = cap;
    }
    size_t m = t->cap - 1, i = table_home(key, t->cap);
    while (t->slots[i].sc) i = (i + 1) & m;
    t->slots[i] = (scope_slot){key, sc};
    t->n++;
    return 0;
}

static scope *scope_find(const cw_ind *x, char kind, const char *code, size_t code_len, const char *name, size_t nl) {
    uint64_t h = scope_hash(kind, code, code_len, name, nl);
    const scope_table *t = &x->index;
    for (size_t i = table_home(h, t->cap); t->slots[i].sc; i = (i + 1) & (t->cap - 1)) {
        scope *sc = t->slots[i].sc;
        if (t->slots[i].key == h && sc->kind == kind && sc->code_len == code_len && sc->raw_len == nl &&
            memcmp(sc->code, code, code_len) == 0 && (!nl || memcmp(sc->raw, name, nl) == 0))
            return sc;
    }
    return NULL;
}

/* A new scope of that identity named `name` (taken); NULL on out of memory. */
static scope *scope_add(cw_ind *x, char kind, const char *code, size_t code_len, const char *raw, size_t nl,
                        char *name) {
    scope *sc = calloc(1, sizeof(*sc));
    if (!sc || !name) goto fail;
    sc->cur_day = -1;
    sc->kind = kind;
    sc->code_len = (uint8_t)code_len;
    memcpy(sc->code, code, code_len);
    sc->raw_len = (uint8_t)nl;
    if (nl) memcpy(sc->raw, raw, nl);
    if (table_put(&x->index, scope_hash(kind, code, code_len, raw, nl), sc) < 0) goto fail;
    sc->name = name;
    if (x->last) x->last->next = sc;
    else x->first = sc;
    x->last = sc;
    x->nscopes++;
    return sc;
fail:
    free(sc);
    free(name);
    return NULL;
}

static scope *region_scope(cw_ind *x, char kind, const char *code, size_t code_len) {
    scope *sc = scope_find(x, kind, code, code_len, NULL, 0);
    if (sc) return sc;
    char name[16];
    if (kind == 'n') snprintf(name, sizeof(name), "nation");
    else snprintf(name, sizeof(name), "region:%.*s", (int)code_len, code);
    return scope_add(x, kind, code, code_len, NULL, 0, strdup(name));
}

static uint64_t unit_code(const char *unit) {
    uint64_t w = 0;
    memcpy(&w, unit, 6);
    return w | (uint64_t)1 << 63;
}

/* A unit's scope, with its city, province and nation. */
static scope *unit_scope(cw_ind *x, const char *unit) {
    uint64_t code = unit_code(unit);
    const scope_table *t = &x->units;
    for (size_t i = table_home(code, t->cap); t->slots[i].sc; i = (i + 1) & (t->cap - 1))
        if (t->slots[i].key == code) return t->slots[i].sc;
    scope *sc = scope_find(x, 'u', unit, 6, NULL, 0);
    if (sc) return sc;
    scope *city = region_scope(x, 'c', unit, 4), *province = region_scope(x, 'P', unit, 2),
          *nation = region_scope(x, 'n', "", 0);
    if (!city || !province || !nation) return NULL;
    char name[16];
    snprintf(name, sizeof(name), "unit:%.6s", unit);
    sc = scope_add(x, 'u', unit, 6, NULL, 0, strdup(name));
    if (!sc) return NULL;
    (void)table_put(&x->units, code, sc); /* out of memory: found by the index, slower */
    sc->chain[0] = city, sc->chain[1] = province, sc->chain[2] = nation;
    return sc;
}

/* A prosecutor's or department's scope: "pros:410923:<escaped name>".
 * raw is 1..CW_NAME_MAX bytes (an event's field). */
static scope *named_scope(cw_ind *x, char kind, const char *unit, const char *raw) {
    size_t nl = strlen(raw);
    if (nl > CW_NAME_MAX) nl = CW_NAME_MAX;
    scope *sc = scope_find(x, kind, unit, 6, raw, nl);
    if (sc) return sc;
    char *name = malloc(SCOPE_MAX);
    if (!name) return NULL;
    memcpy(name, kind == 'p' ? "pros:" : "dept:", 5);
    memcpy(name + 5, unit, 6);
    name[11] = ':';
    if (cw_key_escape(raw, nl, name + 12, SCOPE_MAX - 12) < 0) name[12] = '\0';
    return scope_add(x, kind, unit, 6, raw, nl, name);
}

/* named_scope through the memo: a name met at this address before, for
 * this unit and kind, is its scope when it still reads the same. */
static scope *named_lookup(cw_ind *x, char kind, const char *unit, const char *raw) {
    uint64_t u = unit_code(unit) ^ (uint64_t)(unsigned char)kind;
    memo *m = &x->memo[mix((uint64_t)(uintptr_t)raw ^ u, 0x9E3779B97F4A7C15ULL) >> (64 - MEMO_BITS)];
    if (m->name == raw) {
        scope *sc = m->sc;
        if (sc->kind == kind && memcmp(sc->code, unit, 6) == 0 && strcmp(sc->raw, raw) == 0) return sc;
    }
    scope *sc = named_scope(x, kind, unit, raw);
    if (sc) {
        m->name = raw;
        m->sc = sc;
    }
    return sc;
}

/* The scope a name written by this module denotes (snapshots, tests),
 * made when absent; NULL when the name is not one of ours or memory ran out. */
static scope *scope_by_name(cw_ind *x, const char *name, int make) {
    size_t n = strlen(name);
    int digits = 1;
    if (strcmp(name, "nation") == 0) {
        scope *sc = scope_find(x, 'n', "", 0, NULL, 0);
        return sc || !make ? sc : region_scope(x, 'n', "", 0);
    }
    if (strncmp(name, "region:", 7) == 0 && (n == 11 || n == 9)) {
        for (size_t i = 7; i < n; i++) digits &= name[i] >= '0' && name[i] <= '9';
        if (!digits) return NULL;
        char kind = n == 11 ? 'c' : 'P';
        scope *sc = scope_find(x, kind, name + 7, n - 7, NULL, 0);
        return sc || !make ? sc : region_scope(x, kind, name + 7, n - 7);
    }
    if (n < 11 || name[4] != ':') return NULL;
    for (size_t i = 5; i < 11; i++) digits &= name[i] >= '0' && name[i] <= '9';
    if (!digits) return NULL;
    if (strncmp(name, "unit:", 5) == 0 && n == 11) {
        scope *sc = scope_find(x, 'u', name + 5, 6, NULL, 0);
        return sc || !make ? sc : unit_scope(x, name + 5);
    }
    char kind = strncmp(name, "pros:", 5) == 0 ? 'p' : strncmp(name, "dept:", 5) == 0 ? 'd' : 0;
    if (!kind || n < 13 || name[11] != ':') return NULL;
    char unit[7], raw[SCOPE_MAX];
    memcpy(unit, name + 5, 6);
    unit[6] = '\0';
    cw_key_unescape(name + 12, raw, sizeof(raw));
    if (!raw[0] || strlen(raw) > CW_NAME_MAX) return NULL;
    scope *sc = scope_find(x, kind, unit, 6, raw, strlen(raw));
    return sc || !make ? sc : named_scope(x, kind, unit, raw);
}

/* Drops sc's periods that are no longer kept: the day buckets that left
 * the rolling window and, unless days_only, the months, quarters and years
 * keep_quarters behind the newest. None may be dirty: day buckets never
 * are (only the window summed from them is written). */
static void scope_drop(cw_ind *x, scope *sc, int days_only) {
    size_t kept = 0;
    for (size_t i = 0; i < sc->n; i++) {
        entry *e = sc->entries[i];
        int day = CODE_KIND(e->code) == P_DAY;
        int old = day ? CODE_INDEX(e->code) <= x->newest_day - x->rolling_days
                      : !days_only && code_quarter(e->code) < x->newest_quarter - x->keep_quarters;
        if (!old) {
            sc->entries[kept] = e;
            sc->codes[kept++] = e->code;
            continue;
        }
        for (int p = 0; p < NPERIODS; p++)
            if (sc->cur[p] == e) sc->cur[p] = NULL, sc->cur_day = -1;
        e->next_dirty = x->spare; /* kept for the next entry made: a replay makes and drops days all along */
        x->spare = e;
    }
    sc->n = kept;
}

/* The entry of a period of sc, made when absent. A scope full of periods
 * first lets go of the days that left the window, so that a replay of
 * years between two flushes does not make this scan long. */
static entry *scope_entry(cw_ind *x, scope *sc, uint32_t code) {
    for (size_t i = 0; i < sc->n; i++)
        if (sc->codes[i] == code) return sc->entries[i];
    if (sc->n == sc->cap) scope_drop(x, sc, 1);
    if (sc->n == sc->cap) {
        size_t cap = sc->cap ? sc->cap * 2 : 8;
        entry **ne = realloc(sc->entries, cap * sizeof(*ne));
        if (!ne) return NULL;
        sc->entries = ne;
        uint32_t *nc = realloc(sc->codes, cap * sizeof(*nc));
        if (!nc) return NULL;
        sc->codes = nc;
        sc->cap = cap;
    }
    entry *e = x->spare;
    if (e) {
        x->spare = e->next_dirty;
        memset(e, 0, sizeof(*e));
    } else if (!(e = calloc(1, sizeof(*e)))) {
        return NULL;
    }
    e->scope = sc;
    e->code = code;
    sc->entries[sc->n] = e;
    sc->codes[sc->n++] = code;
    return e;
}

/* What an event adds: the few counters it moves (at most 7: an extra
 * item decided with a plea and a review time), of NCOUNTERS. */
#define DELTA_MAX 8
typedef struct delta {
    int n;
    uint8_t counter[DELTA_MAX];
    uint64_t by[DELTA_MAX];
    uint64_t moved; /* bit k: counter k is among them */
} delta;

/* An entry to write at the next flush (once, however often it changes).
 * A day bucket is not written itself (its scope's window is, see
 * mark_rolling), so is never dirty, and may be dropped at any time. */
static void mark_dirty(cw_ind *x, entry *e) {
    if (e->dirty || CODE_KIND(e->code) == P_DAY) return;
    e->dirty = 1;
    e->next_dirty = x->dirty;
    x->dirty = e;
}

static void mark_rolling(cw_ind *x, scope *sc) {
    if (sc->rolling) return;
    sc->rolling = 1;
    sc->next_rolling = x->rolling;
    x->rolling = sc;
}

/* Adds what is pending in sc to its current periods' entries. An event
 * adds to the scope's pending counters only; this runs when the scope's
 * day changes and before anything reads entries (fold_all). A scope with
 * something pending is on the rolling list (add_to_scope puts it there),
 * so fold_all finds every one. Entries were marked dirty when the first
 * add after a fold came (add_to_scope), as when adds went to them. */
static void fold(scope *sc) {
    uint64_t m = sc->moved;
    if (!m) return;
    for (int p = 0; p < NPERIODS; p++) {
        entry *e = sc->cur[p];
        for (uint64_t b = m; b; b &= b - 1) e->c[__builtin_ctzll(b)] += sc->pending[__builtin_ctzll(b)];
        e->event_ts = sc->pending_ts;
    }
    for (uint64_t b = m; b; b &= b - 1) sc->pending[__builtin_ctzll(b)] = 0;
    sc->moved = 0;
}

/* Every scope's pending counters into its entries: what a reader of
 * entries first calls. Changes no value a reader sees, so the readers
 * that take a const cw_ind may call it. */
static void fold_all(const cw_ind *x) {
    for (scope *sc = x->rolling; sc; sc = sc->next_rolling) fold(sc);
}

/* sc's entries of the day of day_codes, found or made, after what is
 * pending for its last day is folded. Returns 0 or -1 (memory). */
static int scope_day(cw_ind *x, scope *sc) {
    fold(sc);
    sc->cur_day = -1; /* until every one is found (out of memory half way: looked for again) */
    for (int p = 0; p < NPERIODS; p++) {
        entry *e = sc->cur[p];
        if (!e || e->code != x->codes[p]) {
            if (!(e = scope_entry(x, sc, x->codes[p]))) return -1;
            sc->cur[p] = e;
        }
    }
    sc->cur_day = x->codes_day;
    return 0;
}

/* The first add after a fold: the periods it will reach are to be
 * written (the day bucket never is, see mark_dirty). */
static void mark_periods(cw_ind *x, scope *sc) {
    for (int p = 0; p < NPERIODS; p++)
        if (p != P_DAY && !sc->cur[p]->dirty) mark_dirty(x, sc->cur[p]);
}

/* Adds d to the periods of the day of ts in one scope (day_codes: ts's):
 * to its pending counters, folded into the entries later (fold). On
 * every event's path, for each of its scopes: inlined. */
static inline __attribute__((always_inline)) int add_to_scope(cw_ind *x, scope *sc, int64_t ts, const delta *d) {
    if (sc->cur_day != x->codes_day && scope_day(x, sc) < 0) return -1;
    if (!sc->moved) mark_periods(x, sc);
    uint64_t *restrict c = sc->pending;
    if (d->n == 1) c[d->counter[0]] += d->by[0]; /* most events and every clock count */
    else
        for (int i = 0; i < d->n; i++) c[d->counter[i]] += d->by[i];
    sc->moved |= d->moved;
    sc->pending_ts = ts;
    mark_rolling(x, sc);
    return 0;
}

/* The period codes of ts's day, kept while events stay on it. */
static void day_codes(cw_ind *x, int64_t ts) {
    int64_t dayno = cw_period_day(ts, x->offset_min);
    if (dayno != x->codes_day || !x->codes_valid) {
        int y, m, dd;
        cw_period_date(dayno, &y, &m, &dd);
        x->codes[P_MONTH] = CODE(P_MONTH, y * 12 + m - 1);
        x->codes[P_QUARTER] = CODE(P_QUARTER, y * 4 + (m - 1) / 3);
        x->codes[P_YEAR] = CODE(P_YEAR, y);
        x->codes[P_DAY] = CODE(P_DAY, dayno);
        x->q = y * 4 + (m - 1) / 3;
        x->codes_day = dayno;
        x->codes_valid = 1;
    }
    if (x->q > x->newest_quarter) x->newest_quarter = x->q;
    if (dayno > x->newest_day) {
        x->newest_day = dayno;
        x->day_moved = 1; /* every scope's window moved, touched or not */
    }
}

/* Appends counter k moving by v (nothing when v is 0). */
static inline void put(delta *d, int k, uint64_t v) {
    if (!v) return;
    d->counter[d->n] = (uint8_t)k;
    d->by[d->n++] = v;
    d->moved |= 1ULL << k;
}

/* The counters an event moves (INDICATORS.md §2), each once, in counter
 * order (the order adds are made in changes nothing: sums). */
static int deltas(const cw_event *ev, const cw_case_facts *f, delta *out) {
    uint64_t n = ev->n;
    out->n = 0;
    out->moved = 0;
    switch (ev->type) {
    case CW_EV_ARREST_ACCEPTED: put(out, C_cases, 1); break;
    case CW_EV_ARREST_DECIDED:
        put(out, C_arrest_decided_persons, n);
        if (ev->decision == CW_DECISION_REJECT) put(out, C_not_arrested_persons, n);
        else put(out, C_arrested_persons, n);
        break;
    case CW_EV_PROSECUTION_ACCEPTED:
        if (!cw_event_flag(ev, CW_F_ARRESTED)) put(out, C_cases, 1);
        put(out, C_prosecution_accepted, 1);
        break;
    case CW_EV_PROSECUTION_RETURNED: put(out, C_returned, 1); break;
    case CW_EV_PROSECUTION_EXTENDED: put(out, C_extended, 1); break;
    case CW_EV_PROSECUTION_DECIDED:
        put(out, C_decided_persons, n);
        if (ev->decision == CW_DECISION_NOT_PROSECUTE) put(out, C_not_prosecuted_persons, n);
        if (cw_event_flag(ev, CW_F_PLEA)) {
            put(out, C_plea_persons, n);
            if (ev->sentencing == CW_SENTENCING_DETERMINATE) put(out, C_determinate_persons, n);
        }
        if (f->review_decided) {
            put(out, C_review_decided, 1);
            put(out, C_review_ms, (uint64_t)f->review_ms);
        }
        break;
    case CW_EV_TRIAL_JUDGMENT:
        if (cw_event_has(ev, CW_F_ADOPTED)) {
            put(out, C_recommendation_judged_persons, n);
            if (cw_event_flag(ev, CW_F_ADOPTED)) put(out, C_adopted_persons, n);
        }
        break;
    case CW_EV_LETTER_REPLIED:
        /* a letter counts as due once: when replied, or earlier when its
         * clock ran out unreplied (cw_ind_letter_overdue) */
        if (f->letter_replied == 1) {
            put(out, C_letters_procedural_due, !f->letter_counted);
            put(out, C_letters_procedural_ontime, (uint64_t)f->letter_ontime);
        } else if (f->letter_replied == 2) {
            put(out, C_letters_substantive_due, !f->letter_counted);
            put(out, C_letters_substantive_ontime, (uint64_t)f->letter_ontime);
        }
        break;
    case CW_EV_HEARING_HELD: put(out, C_hearings, 1); break;
    default: break;
    }
    if (cw_event_type_is_extra_item(ev->type)) put(out, C_extra_items, 1);
    return out->n > 0;
}

/* Adds d at ts to the scopes of a case: its prosecutor and department
 * (when known), its unit and the unit's regions. */
static int add_to_case_scopes(cw_ind *x, const char *unit, const char *dept, const char *pros, int64_t ts,
                              const delta *d) {
    scope *p = pros && pros[0] ? named_lookup(x, 'p', unit, pros) : NULL;
    scope *dp = dept && dept[0] ? named_lookup(x, 'd', unit, dept) : NULL;
    scope *u = unit_scope(x, unit);
    if ((pros && pros[0] && !p) || (dept && dept[0] && !dp) || !u) return -1;
    day_codes(x, ts);
    if (ts > x->newest_ts) x->newest_ts = ts;
    /* the prosecutor, the department, the unit and its city, province
     * and nation, in that order (the order rows are written in) */
    scope *scopes[6];
    int n = 0;
    if (p) scopes[n++] = p;
    if (dp) scopes[n++] = dp;
    scopes[n++] = u;
    for (int k = 0; k < 3; k++) scopes[n++] = u->chain[k];
    for (int i = 0; i < n; i++)
        if (add_to_scope(x, scopes[i], ts, d) < 0) return -1;
    return 0;
}

int cw_ind_apply(cw_ind *x, const cw_event *ev, const cw_case_facts *facts) {
    delta d;
    if (!deltas(ev, facts, &d)) return 0;
    /* the scopes of INDICATORS.md §1 */
    return add_to_case_scopes(x, ev->unit, facts->dept ? facts->dept : ev->dept, facts->pros ? facts->pros : ev->pros,
                              ev->ts, &d);
}

void cw_ind_set_today(cw_ind *x, int64_t today) {
    if (today <= x->newest_day) return;
    x->newest_day = today;
    x->day_moved = 1;
}

size_t cw_ind_scopes(const cw_ind *x) {
    return x->nscopes;
}

size_t cw_ind_new_scopes(const cw_ind *x, const cw_event *ev) {
    size_t fresh = 0;
    if (ev->pros[0]) fresh += !scope_find(x, 'p', ev->unit, 6, ev->pros, strlen(ev->pros));
    if (ev->dept[0]) fresh += !scope_find(x, 'd', ev->unit, 6, ev->dept, strlen(ev->dept));
    if (!scope_find(x, 'u', ev->unit, 6, NULL, 0)) {
        fresh++;
        fresh += !scope_find(x, 'c', ev->unit, 4, NULL, 0);
        fresh += !scope_find(x, 'P', ev->unit, 2, NULL, 0);
        fresh += !scope_find(x, 'n', "", 0, NULL, 0);
    }
    return fresh;
}

int cw_ind_letter_overdue(cw_ind *x, const char *unit, const char *dept, const char *pros, int substantive, int64_t ts) {
    delta d;
    d.n = 0;
    d.moved = 0;
    put(&d, substantive ? C_letters_substantive_due : C_letters_procedural_due, 1);
    return add_to_case_scopes(x, unit, dept, pros, ts, &d);
}

int cw_ind_clock(cw_ind *x, const char *unit, const char *dept, const char *pros, int clock, int overdue, int64_t ts) {
    if (clock < 0 || clock >= CW_CLOCK_STALE) return 0;
    delta d;
    d.n = 0;
    d.moved = 0;
    put(&d, C_arrest_review_started + 2 * clock + (overdue ? 1 : 0), 1);
    return add_to_case_scopes(x, unit, dept, pros, ts, &d);
}

/* ---- Flushing ----------------------------------------------------------- */

int cw_ind_indicator_index(const char *name) {
    for (size_t i = 0; i < NIND; i++)
        if (strcmp(indicators[i].name, name) == 0) return (int)i;
    return -1;
}

int cw_ind_counter_index(const char *name) {
    for (int i = 0; i < NCOUNTERS; i++)
        if (strcmp(counter_names[i], name) == 0) return i;
    return -1;
}

int cw_ind_denominator(int indicator) {
    return indicators[indicator].den;
}

int cw_ind_value(const uint64_t *c, int i, double *out) {
    uint64_t den = c[indicators[i].den];
    if (!den) return -1;
    double num = (double)c[indicators[i].num] + (indicators[i].num2 >= 0 ? (double)c[indicators[i].num2] : 0);
    *out = num / (double)den * indicators[i].scale;
    return 0;
}

void cw_ind_format_value(double v, char out[32]) {
    /* v = M * 2^-k exactly; v * 10^4 rounded to nearest, ties to even (as
     * glibc's printf in the default rounding mode), in integer arithmetic:
     * no double rounding on the way */
    if (signbit(v) || !(v < 1e15)) { /* negative (-0 too), NaN, inf, huge: as ever */
        snprintf(out, 32, "%.4f", v);
        return;
    }
    int exp;
    double m = frexp(v, &exp); /* v = m * 2^exp, m in [0.5, 1) (or 0) */
    uint64_t mant = (uint64_t)ldexp(m, 53);
    int k = 53 - exp; /* v = mant * 2^-k; k >= 3 below 1e15 */
    uint64_t q;
    if (mant == 0 || k >= 120) {
        q = 0; /* below 2^-53: rounds to 0.0000 */
    } else {
        unsigned __int128 x = (unsigned __int128)mant * 10000u;
        unsigned __int128 half = (unsigned __int128)1 << (k - 1), rest = x & ((half << 1) - 1);
        q = (uint64_t)(x >> k);
        if (rest > half || (rest == half && (q & 1))) q++;
    }
    char digits[20], *p = cw_u64_digits(q / 10000u, digits);
    size_t len = (size_t)(digits + sizeof(digits) - p);
    memcpy(out, p, len);
    unsigned f = (unsigned)(q % 10000u);
    out[len] = '.';
    out[len + 1] = (char)('0' + f / 1000u);
    out[len + 2] = (char)('0' + f / 100u % 10u);
    out[len + 3] = (char)('0' + f / 10u % 10u);
    out[len + 4] = (char)('0' + f % 10u);
    out[len + 5] = '\0';
}

static void emit_counters(const char *scope_name, const char *period, const uint64_t *c, int64_t event_ts,
                          cw_ind_emit_fn emit, void *data) {
    const char *fields[NCOUNTERS + NIND];
    char values[NCOUNTERS + NIND][32];
    const char *vp[NCOUNTERS + NIND];
    size_t n = 0;
    for (int i = 0; i < NCOUNTERS; i++) {
        fields[n] = counter_names[i];
        char digits[20], *p = cw_u64_digits(c[i], digits);
        size_t len = (size_t)(digits + sizeof(digits) - p);
        memcpy(values[n], p, len);
        values[n][len] = '\0';
        vp[n] = values[n];
        n++;
    }
    for (size_t i = 0; i < NIND; i++) {
        double v;
        if (cw_ind_value(c, (int)i, &v) < 0) continue; /* undefined until its denominator is */
        fields[n] = indicators[i].name;
        cw_ind_format_value(v, values[n]);
        vp[n] = values[n];
        n++;
    }
    emit(scope_name, period, c, event_ts, fields, vp, n, data);
}

/* Drops the periods older than what is kept: the day buckets that left
 * the window and the months, quarters and years keep_quarters behind the
 * newest. Runs when the newest day or quarter moved. */
static void drop_old(cw_ind *x) {
    if (x->newest_day == x->dropped_day && x->newest_quarter == x->dropped_quarter) return;
    x->dropped_day = x->newest_day;
    x->dropped_quarter = x->newest_quarter;
    for (scope *sc = x->first; sc; sc = sc->next) scope_drop(x, sc, 0); /* nothing is dirty: just written */
}

size_t cw_ind_flush(cw_ind *x, cw_ind_emit_fn emit, void *data, size_t budget) {
    size_t emitted = 0;
    char period[16];
    fold_all(x); /* events may have come since the last slice */
    while (x->dirty && (!budget || emitted < budget)) {
        entry *e = x->dirty;
        x->dirty = e->next_dirty;
        e->next_dirty = NULL;
        e->dirty = 0;
        code_name(e->code, period);
        emit_counters(e->scope->name, period, e->c, e->event_ts, emit, data);
        emitted++;
    }
    if (x->dirty) return emitted;
    /* rolling windows of the scopes touched (all of them when the window's
     * last day moved): the sum of their last days */
    if (x->day_moved) {
        for (scope *sc = x->first; sc; sc = sc->next) mark_rolling(x, sc);
        x->day_moved = 0;
    }
    int64_t from = x->newest_day - x->rolling_days + 1;
    while (x->rolling && (!budget || emitted < budget)) {
        scope *sc = x->rolling;
        x->rolling = sc->next_rolling;
        sc->rolling = 0;
        sc->next_rolling = NULL;
        uint64_t sum[NCOUNTERS] = {0};
        for (size_t i = 0; i < sc->n; i++) {
            uint32_t code = sc->codes[i];
            if (CODE_KIND(code) != P_DAY || CODE_INDEX(code) < from || CODE_INDEX(code) > x->newest_day) continue;
            const entry *e = sc->entries[i];
            for (int k = 0; k < NCOUNTERS; k++) sum[k] += e->c[k];
        }
        emit_counters(sc->name, x->rolling_name, sum, x->newest_ts, emit, data);
        emitted++;
    }
    if (x->rolling) return emitted;
    drop_old(x); /* nothing is dirty now: what it frees is written */
    return emitted;
}

int cw_ind_flush_pending(const cw_ind *x) {
    return x->dirty || x->rolling || x->day_moved;
}

void cw_ind_touch_all(cw_ind *x) {
    for (scope *sc = x->first; sc; sc = sc->next) {
        for (size_t i = 0; i < sc->n; i++) mark_dirty(x, sc->entries[i]);
        mark_rolling(x, sc);
    }
}

void cw_ind_each(const cw_ind *x, const char *period, void (*fn)(const char *scope, const uint64_t *counters, void *data),
                 void *data) {
    uint32_t code = name_code(period);
    if (!code) return;
    fold_all(x);
    for (const scope *sc = x->first; sc; sc = sc->next)
        for (size_t i = 0; i < sc->n; i++)
            if (sc->codes[i] == code) fn(sc->name, sc->entries[i]->c, data);
}

uint64_t cw_ind_counter(const cw_ind *x, const char *scope_name, const char *period, const char *counter) {
    scope *sc = scope_by_name((cw_ind *)x, scope_name, 0);
    uint32_t code = name_code(period);
    int k = cw_ind_counter_index(counter);
    if (!sc || !code || k < 0) return 0;
    fold_all(x);
    for (size_t i = 0; i < sc->n; i++)
        if (sc->codes[i] == code) return sc->entries[i]->c[k];
    return 0;
}

/* The format is that of the string-keyed store before it (scope and period
 * names), so snapshots carry over. */
void cw_ind_save(const cw_ind *x, cw_snap_writer *w) {
    fold_all(x);
    cw_snap_put_u32(w, NCOUNTERS);
    cw_snap_put_u32(w, (uint32_t)x->newest_quarter);
    cw_snap_put_i64(w, x->newest_day);
    cw_snap_put_i64(w, x->newest_ts);
    cw_snap_put_u64(w, cw_ind_entries(x));
    char period[16];
    for (const scope *sc = x->first; sc; sc = sc->next) {
        for (size_t i = 0; i < sc->n; i++) {
            const entry *e = sc->entries[i];
            code_name(e->code, period);
            cw_snap_put_str(w, sc->name);
            cw_snap_put_str(w, period);
            cw_snap_put_u32(w, (uint32_t)code_quarter(e->code)); /* kept in the format; loading derives it */
            cw_snap_put_i64(w, e->event_ts);
            for (int k = 0; k < NCOUNTERS; k++) cw_snap_put_u64(w, e->c[k]);
        }
    }
}

/* Counters were appended over versions: a snapshot of fewer counters
 * loads, the newer ones 0. */
int cw_ind_load(cw_ind *x, cw_snap_reader *r) {
    uint32_t ncounters = cw_snap_get_u32(r);
    if (ncounters > NCOUNTERS || ncounters < C_hearings + 1) r->bad = 1;
    x->newest_quarter = (int)cw_snap_get_u32(r);
    x->newest_day = cw_snap_get_i64(r);
    x->newest_ts = cw_snap_get_i64(r);
    if (x->newest_day < 0 || x->newest_day > 3000000 || x->newest_quarter < 0 || x->newest_quarter > 40000) r->bad = 1;
    x->dropped_day = x->newest_day;
    x->dropped_quarter = x->newest_quarter;
    uint64_t n = cw_snap_get_u64(r);
    for (uint64_t k = 0; k < n && !r->bad; k++) {
        char name[SCOPE_MAX], period[12];
        cw_snap_get_str(r, name, sizeof(name));
        cw_snap_get_str(r, period, sizeof(period));
        (void)cw_snap_get_u32(r); /* the quarter: implied by the period */
        int64_t ts = cw_snap_get_i64(r);
        uint32_t code = r->bad ? 0 : name_code(period);
        if (r->bad || !code) {
            r->bad = 1;
            break;
        }
        scope *sc = scope_by_name(x, name, 1);
        if (!sc) {
            r->bad = 1; /* not a scope name of ours (or out of memory) */
            break;
        }
        entry *e = scope_entry(x, sc, code);
        if (!e) return -1;
        e->event_ts = ts;
        for (int i = 0; i < (int)ncounters; i++) e->c[i] = cw_snap_get_u64(r);
    }
    if (r->bad) return -1;
    cw_ind_touch_all(x);
    return 0;
}
