#include "cw_cases.h"

#include <stdlib.h>
#include <string.h>

#include "cw_deadline.h"
#include "cw_map.h"
#include "cw_period.h"
#include "cw_snap.h"

/* Flags of an open case. */
enum {
    F_ARREST_SEEN = 1,      /* arrest.accepted seen */
    F_PROSECUTION_SEEN = 2, /* prosecution.accepted seen */
    F_EXTENDED = 4,         /* prosecution.extended within this review */
    F_DEAD = 8,             /* closed; freed once no light entry points here */
    F_LETTER_DUE_P = 16,    /* procedural reply clock ran out (counted) */
    F_LETTER_DUE_S = 32,
    F_FAST = 64,            /* this review is 速裁 */
    F_CUSTODY = 128,        /* the suspect is in custody for this review: no CPL art. 105 extension */
};

typedef struct open_case {
    int64_t review_start;  /* prosecution.accepted / resubmitted clock start, 0 if none */
    int64_t returned_at;   /* when the current 退回补充侦查 began, 0 if none */
    int64_t returned_ms;   /* time spent returned during this review */
    int64_t received_at;   /* letter.received */
    uint64_t ids[4];  /* the first ids (hashes), inside the record: one memory access finds them */
    uint64_t *more;   /* the ids after those, when a case has more */
    uint32_t nids, capmore;
    int32_t due[CW_NCLOCKS]; /* local day at whose start each clock runs out before CPL art. 105; 0 = not running */
    int32_t scheduled;       /* day of the newest light entry for this case, 0 = none */
    int32_t review_from;     /* the local day the prosecution-review clock (re)started */
    uint32_t dept, pros;     /* who handles it: names interned in the table (index + 1), 0 = unknown */
    uint16_t refs;           /* light entries pointing here */
    uint16_t extend;         /* bit k: clock k's last day moves past rest days (CPL art. 105; see due_of) */
    uint8_t lights[CW_NCLOCKS]; /* the light each clock shows: CW_LIGHT_* */
    uint8_t returns, flags;
    uint16_t klen;
    char key[]; /* "unit|case", the map's key (borrowed) */
} open_case;

#define INLINE_IDS 4

static uint64_t case_id(const open_case *c, uint32_t i) {
    return i < INLINE_IDS ? c->ids[i] : c->more[i - INLINE_IDS];
}

static int case_has_id(const open_case *c, uint64_t h) {
    uint32_t n = c->nids < INLINE_IDS ? c->nids : INLINE_IDS;
    for (uint32_t i = 0; i < n; i++)
        if (c->ids[i] == h) return 1;
    for (uint32_t i = INLINE_IDS; i < c->nids; i++)
        if (c->more[i - INLINE_IDS] == h) return 1;
    return 0;
}

/* Remembers one more id of c. Returns 0 or -1 (memory). */
static int case_add_id(open_case *c, uint64_t h) {
    if (c->nids < INLINE_IDS) {
        c->ids[c->nids++] = h;
        return 0;
    }
    uint32_t k = c->nids - INLINE_IDS;
    if (k == c->capmore) {
        uint32_t cap = c->capmore ? c->capmore * 2 : 4;
        uint64_t *nm = realloc(c->more, cap * sizeof(uint64_t));
        if (!nm) return -1;
        c->more = nm;
        c->capmore = cap;
    }
    c->more[k] = h;
    c->nids++;
    return 0;
}

/* A case whose next light comes on at `day`. */
typedef struct light_entry {
    int32_t day;
    open_case *c;
} light_entry;

/* The cases whose lights change on one day, in the order they were
 * scheduled; taken from `head` on. */
typedef struct day_bucket {
    open_case **c;
    uint32_t head, n, cap;
} day_bucket;

/* Days the light queue keeps a bucket for (see the queue's functions):
 * deadlines come within months, so nearly every entry lands in one. */
#define QUEUE_DAYS 1024

struct cw_cases {
    cw_map *open;
    int offset_min;
    cw_clock_rules clocks;
    const cw_calendar *cal; /* rest days (borrowed); NULL: weekends only */
    cw_case_listener listener;
    int64_t today; /* the last day advanced to */
    /* closed-case dedupe window: a ring of hashes and a set over them */
    uint64_t *ring;
    size_t ring_cap, ring_len, ring_head;
    uint64_t *set; /* open addressing, 0 = empty */
    size_t set_cap;
    uint32_t most_ids; /* the most ids any case has held: no case can be at the ids cap below it */
    /* light entries: a bucket for each of the days [qday, qday +
     * QUEUE_DAYS) (ring[day % QUEUE_DAYS]; bit set in `busy` while it holds
     * entries), and a min-heap by day of the entries after those */
    day_bucket ring_days[QUEUE_DAYS];
    uint64_t busy[QUEUE_DAYS / 64];
    int64_t qday;  /* the earliest day not taken yet; <= today, or the first day of an empty queue */
    size_t queued; /* entries in the buckets */
    light_entry *heap;
    size_t nheap, capheap;
    /* department and prosecutor names, interned: a case holds indexes */
    cw_map *names;
    char **name_of;
    uint32_t nnames, capnames;
};

static size_t case_key(const cw_event *ev, char *buf) {
    size_t n = strlen(ev->case_id);
    memcpy(buf, ev->unit, 6);
    buf[6] = '|';
    memcpy(buf + 7, ev->case_id, n);
    return n + 7;
}

/* The dedupe hash of an event id of a case, from the hash of the case's
 * key (cw_hash, stable: snapshots hold these values). */
static uint64_t id_hash_k(uint64_t key_hash, const char *id) {
    uint64_t h = key_hash ^ (cw_hash(id, strlen(id)) * 0x9E3779B97F4A7C15ULL);
    return h ? h : 1;
}

static uint64_t id_hash(const char *key, size_t klen, const char *id) {
    return id_hash_k(cw_hash(key, klen), id);
}

/* What the window remembers of a closed case itself, beside its ids. */
static uint64_t closed_mark_k(uint64_t key_hash) {
    return id_hash_k(key_hash, "\x01closed");
}

static uint64_t closed_mark(const char *key, size_t klen) {
    return closed_mark_k(cw_hash(key, klen));
}

cw_cases *cw_cases_new(size_t closed_window, int offset_min, const cw_clock_rules *clocks,
                       const cw_case_listener *listener) {
    cw_cases *t = calloc(1, sizeof(*t));
    if (!t) return NULL;
    t->offset_min = offset_min;
    if (clocks) t->clocks = *clocks;
    if (listener) t->listener = *listener;
    t->open = cw_map_new();
    t->names = cw_map_new();
    t->ring_cap = closed_window ? closed_window : 1;
    t->ring = calloc(t->ring_cap, sizeof(uint64_t));
    t->set_cap = 16;
    while (t->set_cap < t->ring_cap * 2) t->set_cap *= 2;
    t->set = calloc(t->set_cap, sizeof(uint64_t));
    if (!t->open || !t->names || !t->ring || !t->set) {
        cw_cases_free(t);
        return NULL;
    }
    return t;
}

void cw_cases_set_clocks(cw_cases *t, const cw_clock_rules *clocks) {
    t->clocks = *clocks;
}


static void case_free(open_case *c) {
    free(c->more);
    free(c);
}

void cw_cases_free(cw_cases *t) {
    if (!t) return;
    /* a case is open (in the map; light entries may point at it too) or
     * closed and still pointed at by light entries (F_DEAD) */
    for (size_t i = 0; i < t->nheap; i++) {
        open_case *c = t->heap[i].c;
        if ((c->flags & F_DEAD) && --c->refs == 0) case_free(c);
    }
    for (size_t d = 0; d < QUEUE_DAYS; d++) {
        day_bucket *b = &t->ring_days[d];
        for (uint32_t i = b->head; i < b->n; i++)
            if ((b->c[i]->flags & F_DEAD) && --b->c[i]->refs == 0) case_free(b->c[i]);
        free(b->c);
    }
    if (t->open) {
        size_t pos = 0;
        void *v;
        while (cw_map_next(t->open, &pos, NULL, NULL, &v)) case_free(v);
        cw_map_free(t->open); /* keys were borrowed from the cases */
    }
    for (uint32_t i = 0; i < t->nnames; i++) free(t->name_of[i]);
    free(t->name_of);
    cw_map_free(t->names);
    free(t->heap);
    free(t->ring);
    free(t->set);
    free(t);
}

/* The index + 1 of a department or prosecutor name, interned on first
 * sight; 0 for "" (or when out of memory: the name is then unknown). */
static uint32_t intern(cw_cases *t, const char *name) {
    size_t len = strlen(name);
    if (!len) return 0;
    void *v = cw_map_get(t->names, name, len);
    if (v) return (uint32_t)(uintptr_t)v;
    if (t->nnames == t->capnames) {
        uint32_t cap = t->capnames ? t->capnames * 2 : 256;
        char **n = realloc(t->name_of, cap * sizeof(*n));
        if (!n) return 0;
        t->name_of = n;
        t->capnames = cap;
    }
    char *copy = strdup(name);
    if (!copy) return 0;
    uint32_t ix = t->nnames + 1;
    if (cw_map_put(t->names, name, len, (void *)(uintptr_t)ix) < 0) {
        free(copy);
        return 0;
    }
    t->name_of[t->nnames++] = copy;
    return ix;
}

static const char *name_at(const cw_cases *t, uint32_t ix) {
    return ix && ix <= t->nnames ? t->name_of[ix - 1] : "";
}

size_t cw_cases_open(const cw_cases *t) {
    return cw_map_size(t->open);
}

/* ---- closed window: linear-probing set with backward-shift delete ---- */

static int set_has(const cw_cases *t, uint64_t h) {
    size_t m = t->set_cap - 1;
    for (size_t i = h & m; t->set[i]; i = (i + 1) & m)
        if (t->set[i] == h) return 1;
    return 0;
}

/* Adds h; returns 1 when it was not there yet. */
static int set_add(cw_cases *t, uint64_t h) {
    size_t m = t->set_cap - 1, i = h & m;
    while (t->set[i]) {
        if (t->set[i] == h) return 0;
        i = (i + 1) & m;
    }
    t->set[i] = h;
    return 1;
}

static void set_del(cw_cases *t, uint64_t h) {
    size_t m = t->set_cap - 1, i = h & m;
    while (t->set[i] && t->set[i] != h) i = (i + 1) & m;
    if (!t->set[i]) return;
    t->set[i] = 0;
    for (size_t j = (i + 1) & m; t->set[j]; j = (j + 1) & m) {
        uint64_t x = t->set[j];
        size_t home = x & m;
        /* move x back if its home is not within (i, j] */
        if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j)) {
            t->set[i] = x;
            t->set[j] = 0;
            i = j;
        }
    }
}

/* One probe sequence: the set says whether h is new (a case's ids are
 * random accesses into a table of 16 MiB: each probe is a cache miss). */
static void window_add(cw_cases *t, uint64_t h) {
    if (!set_add(t, h)) return; /* already remembered */
    if (t->ring_len == t->ring_cap) {
        uint64_t oldest = t->ring[t->ring_head];
        t->ring[t->ring_head] = h;
        t->ring_head = (t->ring_head + 1) % t->ring_cap;
        if (oldest != h) set_del(t, oldest);
    } else {
        t->ring[(t->ring_head + t->ring_len) % t->ring_cap] = h;
        t->ring_len++;
    }
}

/* ---- statutory clocks and their lights ------------------------------- */

static int heap_push(cw_cases *t, int32_t day, open_case *c) {
    if (t->nheap == t->capheap) {
        size_t cap = t->capheap ? t->capheap * 2 : 1024;
        light_entry *h = realloc(t->heap, cap * sizeof(*h));
        if (!h) return -1;
        t->heap = h;
        t->capheap = cap;
    }
    size_t i = t->nheap++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (t->heap[p].day <= day) break;
        t->heap[i] = t->heap[p];
        i = p;
    }
    t->heap[i] = (light_entry){day, c};
    c->refs++;
    return 0;
}

static light_entry heap_pop(cw_cases *t) {
    light_entry top = t->heap[0], last = t->heap[--t->nheap];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1;
        if (l >= t->nheap) break;
        size_t m = l + 1 < t->nheap && t->heap[l + 1].day < t->heap[l].day ? l + 1 : l;
        if (t->heap[m].day >= last.day) break;
        t->heap[i] = t->heap[m];
        i = m;
    }
    if (t->nheap) t->heap[i] = last;
    return top;
}

/* ---- the light queue ---------------------------------------------------
 *
 * Which cases' lights change on which day. An entry is a case and a day;
 * a case may have several (refs counts them; a closed case waits, F_DEAD,
 * for its last). Entries of one day are taken in the order they were
 * put. The days [qday, qday + QUEUE_DAYS) have a bucket each in a ring,
 * so putting and taking are O(1) and walk memory in order; the rare
 * entry further out waits in the heap above and moves into its bucket as
 * the ring moves on. An entry for a day before qday goes into qday's
 * bucket: it is due at the next advance, as it was with a heap. */

static void queue_move_in(cw_cases *t);

static int bucket_put(cw_cases *t, int64_t day, open_case *c) {
    day_bucket *b = &t->ring_days[day % QUEUE_DAYS];
    if (b->n == b->cap) {
        uint32_t cap = b->cap ? b->cap * 2 : 64;
        open_case **nc = realloc(b->c, cap * sizeof(*nc));
        if (!nc) return -1;
        b->c = nc;
        b->cap = cap;
    }
    b->c[b->n++] = c;
    t->busy[(day % QUEUE_DAYS) / 64] |= 1ULL << (day % 64);
    t->queued++;
    c->refs++;
    return 0;
}

/* Puts an entry for c at `day`. Returns 0 or -1 (memory). */
static int queue_put(cw_cases *t, int64_t day, open_case *c) {
    if (!t->queued && !t->nheap && t->qday < t->today) t->qday = t->today; /* an empty queue starts at today */
    if (day < t->qday) day = t->qday;
    if (day >= t->qday + QUEUE_DAYS) return heap_push(t, (int32_t)day, c);
    return bucket_put(t, day, c);
}

/* Moves qday on to the next day with entries (at most to `to`), and the
 * heap's entries that now fall in the ring into their buckets. */
static void queue_next_day(cw_cases *t, int64_t to) {
    if (!t->queued) { /* nothing in the ring: straight to the heap's first day */
        int64_t next = t->nheap && t->heap[0].day < to ? t->heap[0].day : to;
        t->qday = next > t->qday ? next : t->qday + 1;
    } else {
        t->qday++;
    }
    queue_move_in(t);
}

static void queue_move_in(cw_cases *t) {
    while (t->nheap && t->heap[0].day < t->qday + QUEUE_DAYS) {
        light_entry e = t->heap[0];
        if (bucket_put(t, e.day < t->qday ? t->qday : e.day, e.c) < 0) return; /* stays: moved in next time */
        heap_pop(t);
        e.c->refs--;
    }
}

/* The first day with entries (0: none). */
static int64_t queue_first_day(const cw_cases *t) {
    if (t->queued) {
        /* a word at a time; the bits of qday's word below it are days at
         * the ring's far end, looked at last (the ones above were empty) */
        for (int64_t d = t->qday; d < t->qday + QUEUE_DAYS;) {
            size_t slot = (size_t)(d % QUEUE_DAYS);
            uint64_t word = t->busy[slot / 64] >> (slot % 64);
            if (word) return d + __builtin_ctzll(word);
            d += 64 - (int64_t)(slot % 64);
        }
    }
    return t->nheap ? t->heap[0].day : 0;
}

/* The day clock k runs out at the start of, as the calendar stands now:
 * its last day moved past rest days when it extends (CPL art. 105). The
 * calendar is applied here, not when the clock starts, so a new calendar
 * (SIGHUP) re-judges every running clock. */
static int64_t due_of(const cw_cases *t, const open_case *c, int k) {
    if (!(c->extend & (1u << k))) return c->due[k];
    return cw_deadline_due_from_last(t->cal, (int64_t)c->due[k] - 1, 1);
}

/* The day a light of clock k due at `due` (due_of) comes on (0: that
 * light is off for it). */
static int64_t light_day(const cw_cases *t, int k, int64_t due, int light) {
    const cw_clock_rule *r = &t->clocks.k[k];
    if (light == CW_LIGHT_YELLOW) return r->warn_days ? due - r->warn_days : 0;
    if (light == CW_LIGHT_ORANGE) return r->urgent_days ? due - r->urgent_days : 0;
    return due;
}

/* Tells the listener of a light of clock k of c (due at `due`: due_of)
 * coming on or going off. */
static void tell_due(cw_cases *t, const open_case *c, int k, int64_t due, int light, int firing, int64_t today,
                     int64_t ts) {
    if (!t->listener.light) return;
    char unit[7];
    memcpy(unit, c->key, 6);
    unit[6] = '\0';
    cw_light l = {.clock = k,
                  .light = light,
                  .firing = firing,
                  .unit = unit,
                  .case_id = c->key + 7, /* the key ends in a NUL (see case_new) */
                  .dept = name_at(t, c->dept),
                  .pros = name_at(t, c->pros),
                  .due_day = due,
                  .days_left = (int)(due - today),
                  .ts = ts};
    t->listener.light(&l, t->listener.data);
}

static void tell(cw_cases *t, const open_case *c, int k, int light, int firing, int64_t today, int64_t ts) {
    if (t->listener.light) tell_due(t, c, k, due_of(t, c, k), light, firing, today, ts);
}

/* Brings every running clock of c to the light it should show on local
 * day `today`: one light at a time, the one before going off as the next
 * comes on, and a clock already past several boundaries showing only the
 * last. Returns the next day a light of c changes, or 0. */
static int64_t light_up(cw_cases *t, open_case *c, int64_t today, int64_t ts) {
    int64_t next = 0;
    for (int k = 0; k < CW_NCLOCKS; k++) {
        if (!c->due[k]) continue;
        int64_t due = due_of(t, c, k); /* once: with a calendar it is a scan */
        int target = CW_LIGHT_NONE;
        for (int light = CW_LIGHT_YELLOW; light <= CW_LIGHT_RED; light++) {
            int64_t day = light_day(t, k, due, light);
            if (!day) continue;
            if (day <= today) target = light;
            else if (light > c->lights[k] && (!next || day < next)) next = day;
        }
        if (target <= c->lights[k]) continue;
        if (c->lights[k]) tell_due(t, c, k, due, c->lights[k], 0, today, ts);
        c->lights[k] = (uint8_t)target;
        if (target == CW_LIGHT_RED && k == CW_CLOCK_LETTER_PROCEDURAL) c->flags |= F_LETTER_DUE_P;
        if (target == CW_LIGHT_RED && k == CW_CLOCK_LETTER_SUBSTANTIVE) c->flags |= F_LETTER_DUE_S;
        tell_due(t, c, k, due, target, 1, today, ts);
    }
    return next;
}

/* The next day a light of c comes on, or 0 (light_up before any day:
 * nothing changes). */
static int64_t next_change(cw_cases *t, open_case *c) {
    return light_up(t, c, 0, 0);
}

/* Makes sure a light entry exists for c's next light. */
static void schedule(cw_cases *t, open_case *c, int64_t next) {
    if (!next) return;
    if (c->scheduled && c->scheduled > t->today && c->scheduled <= next) return; /* an entry comes in time */
    if (queue_put(t, next, c) == 0) c->scheduled = (int32_t)next;
}

/* Stops clock k: the light it shows goes off. */
static void clock_stop(cw_cases *t, open_case *c, int k, int64_t ts) {
    if (!c->due[k]) return;
    if (c->lights[k]) tell(t, c, k, c->lights[k], 0, t->today, ts);
    c->due[k] = 0;
    c->extend &= (uint16_t) ~(1u << k);
    c->lights[k] = CW_LIGHT_NONE;
}

/* A period: its due day before art. 105, and whether art. 105 moves it. */
typedef struct period {
    int64_t due;
    int extend;
} period;

/* (Re)starts clock k to run out with period p; a fresh start (not a move
 * of a running clock) is told as a light CW_LIGHT_NONE coming on. */
static void clock_start_as(cw_cases *t, open_case *c, int k, period p, int64_t ts, int fresh) {
    clock_stop(t, c, k, ts);
    if (!t->clocks.k[k].enabled || p.due <= 0) return;
    c->due[k] = (int32_t)p.due;
    if (p.extend) c->extend |= (uint16_t)(1u << k);
    if (fresh && k != CW_CLOCK_STALE) tell(t, c, k, CW_LIGHT_NONE, 1, t->today, ts);
}

static void clock_start(cw_cases *t, open_case *c, int k, period p, int64_t ts) {
    clock_start_as(t, c, k, p, ts, 1);
}

/* A period of n units of clock k begun at ts, counted as the law counts
 * them (INDICATORS.md §4: the start day does not count; months to the
 * same date; working days by the calendar); art. 105 applies unless the
 * suspect is in custody or the rule says holidays = ignore. */
static period period_of(const cw_cases *t, int k, int64_t ts, cw_deadline_unit unit, int n, int custody) {
    int64_t start = cw_period_day(ts, t->offset_min);
    period p = {cw_deadline_last_day(t->cal, start, unit, n) + 1, t->clocks.k[k].holidays_extend && !custody};
    return p;
}

/* Clock k's own period (months, days or working days). */
static period clock_period(const cw_cases *t, int k, int64_t ts) {
    const cw_clock_rule *r = &t->clocks.k[k];
    if (r->months) return period_of(t, k, ts, CW_DEADLINE_MONTHS, r->months, 0);
    if (r->working_days) return period_of(t, k, ts, CW_DEADLINE_WORKING_DAYS, r->working_days, 0);
    return period_of(t, k, ts, CW_DEADLINE_DAYS, r->days, 0);
}

void cw_cases_set_calendar(cw_cases *t, const cw_calendar *cal) {
    t->cal = cal;
    /* every case with a running clock judged again by the new calendar at
     * the next advance (its next change may have moved either way): an
     * entry for today, which the advance takes in slices */
    size_t pos = 0;
    void *v;
    while (cw_map_next(t->open, &pos, NULL, NULL, &v)) {
        open_case *c = v;
        int running = 0;
        for (int k = 0; k < CW_NCLOCKS && !running; k++) running = c->due[k] != 0;
        if (running && queue_put(t, t->today, c) == 0) c->scheduled = (int32_t)t->today;
    }
}

int cw_cases_advance_some(cw_cases *t, int64_t today, size_t budget) {
    if (today > t->today) t->today = today;
    size_t left = budget;
    if (!t->queued && !t->nheap) {
        if (t->qday < t->today) t->qday = t->today;
        return 0;
    }
    for (;;) {
        day_bucket *b = &t->ring_days[t->qday % QUEUE_DAYS];
        while (b->head < b->n) { /* b->c may move: a light put for today lands here */
            if (budget && left-- == 0) return 1;
            open_case *c = b->c[b->head++];
            t->queued--;
            if (b->head + 2 < b->n) { /* a later one's record, while this one is judged */
                const char *next = (const char *)b->c[b->head + 2];
                __builtin_prefetch(next);
                __builtin_prefetch(next + 64);
                __builtin_prefetch(next + 128);
            }
            c->refs--;
            if (c->flags & F_DEAD) {
                if (!c->refs) case_free(c);
                continue;
            }
            int64_t ts = cw_period_day_start(t->today, t->offset_min);
            schedule(t, c, light_up(t, c, t->today, ts));
        }
        b->head = b->n = 0;
        if (b->cap > 4096) { /* a busy day's room, not kept for the quiet ones */
            free(b->c);
            b->c = NULL;
            b->cap = 0;
        }
        t->busy[(t->qday % QUEUE_DAYS) / 64] &= ~(1ULL << (t->qday % 64));
        if (t->qday >= t->today) return 0;
        queue_next_day(t, t->today);
    }
}

void cw_cases_advance(cw_cases *t, int64_t today) {
    cw_cases_advance_some(t, today, 0);
}

int64_t cw_cases_next_day(const cw_cases *t) {
    return queue_first_day(t);
}

static int post_trial(cw_event_type type) {
    switch (type) {
    case CW_EV_TRIAL_JUDGMENT:
    case CW_EV_TRIAL_APPEAL:
    case CW_EV_TRIAL_PROTEST:
    case CW_EV_TRIAL_REMANDED:
    case CW_EV_TRIAL_POSTPONED:
    case CW_EV_TRIAL_PETITION:
    case CW_EV_COMPENSATION_FILED:
    case CW_EV_ARREST_COMPLAINT:
    case CW_EV_NONPROSECUTION_COMPLAINT:
    case CW_EV_LETTER_RECEIVED:
    case CW_EV_LETTER_REPLIED: return 1;
    default: return 0;
    }
}

static void check(cw_cases *t, int which, const cw_event *ev) {
    if (t->listener.check) t->listener.check(which, ev->unit, ev->case_id, ev, t->listener.data);
}

static open_case *case_new(cw_map *open, const char *key, size_t klen) {
    open_case *c = calloc(1, sizeof(*c) + klen + 1);
    if (!c) return NULL;
    memcpy(c->key, key, klen);
    c->key[klen] = '\0';
    c->klen = (uint16_t)klen;
    if (cw_map_put_borrowed(open, c->key, klen, c) < 0) {
        free(c);
        return NULL;
    }
    return c;
}

/* The prosecution review's period from the day its clock (re)started:
 * 1 month, 速裁 10 days; in custody (arrested) art. 105 does not move it. */
static period review_period(const cw_cases *t, const open_case *c, int64_t from_ts) {
    const cw_clock_rule *r = &t->clocks.k[CW_CLOCK_PROSECUTION_REVIEW];
    int custody = (c->flags & F_CUSTODY) != 0, k = CW_CLOCK_PROSECUTION_REVIEW;
    if ((c->flags & F_FAST) && r->days_fast) return period_of(t, k, from_ts, CW_DEADLINE_DAYS, r->days_fast, custody);
    if (r->months) return period_of(t, k, from_ts, CW_DEADLINE_MONTHS, r->months, custody);
    return period_of(t, k, from_ts, CW_DEADLINE_DAYS, r->days, custody);
}

/* 延长: the review runs 15 days more, counted on from the day it would
 * have ended (art. 105 applied); 速裁: 15 days in all from its start (CPL
 * art. 172). */
static period extended_period(const cw_cases *t, const open_case *c) {
    const cw_clock_rule *r = &t->clocks.k[CW_CLOCK_PROSECUTION_REVIEW];
    int custody = (c->flags & F_CUSTODY) != 0, k = CW_CLOCK_PROSECUTION_REVIEW;
    if ((c->flags & F_FAST) && r->days_fast) {
        int64_t from = cw_period_day_start(c->review_from, t->offset_min);
        return period_of(t, k, from, CW_DEADLINE_DAYS, r->days_fast_extended, custody);
    }
    period p = {due_of(t, c, k) - 1 + r->extension_days + 1, r->holidays_extend && !custody};
    return p;
}

/* The clock a reconsideration or higher review starts (its .decided
 * stops it), or -1. */
static int review_clock(cw_event_type type, int *stops) {
    *stops = 0;
    switch (type) {
    case CW_EV_ARREST_RECONSIDERATION_DECIDED: *stops = 1; /* fall through */
    case CW_EV_ARREST_RECONSIDERATION: return CW_CLOCK_ARREST_RECONSIDERATION;
    case CW_EV_ARREST_REVIEW_DECIDED: *stops = 1; /* fall through */
    case CW_EV_ARREST_REVIEW: return CW_CLOCK_ARREST_HIGHER_REVIEW;
    case CW_EV_NONPROSECUTION_RECONSIDERATION_DECIDED: *stops = 1; /* fall through */
    case CW_EV_NONPROSECUTION_RECONSIDERATION: return CW_CLOCK_NONPROSECUTION_RECONSIDERATION;
    case CW_EV_NONPROSECUTION_REVIEW_DECIDED: *stops = 1; /* fall through */
    case CW_EV_NONPROSECUTION_REVIEW: return CW_CLOCK_NONPROSECUTION_HIGHER_REVIEW;
    default: return -1;
    }
}

/* The clocks an event starts, stops or moves (INDICATORS.md §4) and the
 * data checks it may fail (§5). A clock is judged the moment it changes:
 * a light already due by the clock's day comes on now, alone. */
static void clocks_and_checks(cw_cases *t, open_case *c, const cw_event *ev) {
    const cw_clock_rules *k = &t->clocks;
    int64_t ts = ev->ts;
    int stops, rc = review_clock(ev->type, &stops);
    if (rc >= 0) {
        if (stops) clock_stop(t, c, rc, ts);
        else clock_start(t, c, rc, clock_period(t, rc, ts), ts);
    }
    switch (ev->type) {
    case CW_EV_ARREST_ACCEPTED: {
        c->flags |= F_ARREST_SEEN;
        const cw_clock_rule *r = &k->k[CW_CLOCK_ARREST_REVIEW];
        int days = cw_event_flag(ev, CW_F_DETAINED) ? r->days_detained
                   : cw_event_flag(ev, CW_F_COMPLEX) ? r->days_complex
                                                      : r->days;
        int custody = cw_event_flag(ev, CW_F_DETAINED);
        if (days)
            clock_start(t, c, CW_CLOCK_ARREST_REVIEW,
                        period_of(t, CW_CLOCK_ARREST_REVIEW, ts, CW_DEADLINE_DAYS, days, custody), ts);
        break;
    }
    case CW_EV_ARREST_DECIDED:
        if (!(c->flags & F_ARREST_SEEN)) check(t, CW_CHECK_DECIDED_UNACCEPTED, ev);
        clock_stop(t, c, CW_CLOCK_ARREST_REVIEW, ts);
        break;
    case CW_EV_PROSECUTION_ACCEPTED:
    case CW_EV_PROSECUTION_RESUBMITTED:
        if (ev->type == CW_EV_PROSECUTION_ACCEPTED) c->flags |= F_PROSECUTION_SEEN;
        c->flags &= (uint8_t) ~(F_EXTENDED | F_FAST | F_CUSTODY);
        if (cw_event_flag(ev, CW_F_FAST)) c->flags |= F_FAST;
        if (cw_event_flag(ev, CW_F_ARRESTED)) c->flags |= F_CUSTODY;
        clock_stop(t, c, CW_CLOCK_SUPPLEMENTARY, ts);
        c->review_from = (int32_t)cw_period_day(ts, t->offset_min);
        clock_start(t, c, CW_CLOCK_PROSECUTION_REVIEW, review_period(t, c, ts), ts);
        break;
    case CW_EV_PROSECUTION_RETURNED:
        if (c->returns < 255) c->returns++;
        if (c->returns == 3) check(t, CW_CHECK_THIRD_RETURN, ev);
        clock_stop(t, c, CW_CLOCK_PROSECUTION_REVIEW, ts);
        clock_start(t, c, CW_CLOCK_SUPPLEMENTARY, clock_period(t, CW_CLOCK_SUPPLEMENTARY, ts), ts);
        break;
    case CW_EV_PROSECUTION_EXTENDED:
        if (c->flags & F_EXTENDED) check(t, CW_CHECK_SECOND_EXTENSION, ev);
        c->flags |= F_EXTENDED;
        if (c->due[CW_CLOCK_PROSECUTION_REVIEW]) /* moved: the light of the old deadline goes off */
            clock_start_as(t, c, CW_CLOCK_PROSECUTION_REVIEW, extended_period(t, c), ts, 0);
        break;
    case CW_EV_PROSECUTION_DECIDED:
        if (!(c->flags & F_PROSECUTION_SEEN)) check(t, CW_CHECK_DECIDED_UNACCEPTED, ev);
        clock_stop(t, c, CW_CLOCK_PROSECUTION_REVIEW, ts);
        clock_stop(t, c, CW_CLOCK_SUPPLEMENTARY, ts);
        break;
    case CW_EV_LETTER_RECEIVED:
        clock_start(t, c, CW_CLOCK_LETTER_PROCEDURAL, clock_period(t, CW_CLOCK_LETTER_PROCEDURAL, ts), ts);
        clock_start(t, c, CW_CLOCK_LETTER_SUBSTANTIVE, clock_period(t, CW_CLOCK_LETTER_SUBSTANTIVE, ts), ts);
        break;
    case CW_EV_LETTER_REPLIED:
        clock_stop(t, c, CW_CLOCK_LETTER_PROCEDURAL, ts);
        if (ev->reply == CW_REPLY_SUBSTANTIVE) clock_stop(t, c, CW_CLOCK_LETTER_SUBSTANTIVE, ts);
        break;
    default: break;
    }
    /* 挂案: any event restarts the stale clock */
    clock_start(t, c, CW_CLOCK_STALE, clock_period(t, CW_CLOCK_STALE, ts), ts);
    schedule(t, c, light_up(t, c, t->today, ts));
}

/* Removes a closed case: its lights go off, its ids move to the window. */
static void case_close(cw_cases *t, open_case *c, int64_t ts) {
    /* the window's slots of its ids, and of the oldest ids they push out:
     * random places in a big table, asked for all at once */
    for (uint32_t i = 0; i < c->nids; i++) {
        __builtin_prefetch(&t->set[case_id(c, i) & (t->set_cap - 1)]);
        if (t->ring_len == t->ring_cap)
            __builtin_prefetch(&t->set[t->ring[(t->ring_head + i) % t->ring_cap] & (t->set_cap - 1)]);
    }
    for (int k = 0; k < CW_NCLOCKS; k++) clock_stop(t, c, k, ts);
    for (uint32_t i = 0; i < c->nids; i++) window_add(t, case_id(c, i));
    window_add(t, closed_mark(c->key, c->klen));
    cw_map_del(t->open, c->key, c->klen);
    if (c->refs) {
        c->flags |= F_DEAD; /* freed when its last light entry is popped */
        free(c->more);
        c->more = NULL;
        c->nids = c->capmore = 0;
    } else {
        case_free(c);
    }
}

int cw_cases_admit(const cw_cases *t, const cw_event *ev, size_t max_open, size_t max_ids) {
    /* far from both caps (the usual case): no lookup */
    if (cw_map_size(t->open) < max_open && t->most_ids < max_ids) return 0;
    char key[7 + CW_CASE_MAX + 1];
    size_t klen = case_key(ev, key);
    const open_case *c = cw_map_get(t->open, key, klen);
    if (c) {
        if (c->nids < max_ids) return 0;
        if (case_has_id(c, id_hash(key, klen, ev->id))) return 0; /* a duplicate: counted as such */
        return ev->type == CW_EV_CASE_CLOSED ? 0 : 2;
    }
    if (ev->type == CW_EV_CASE_CLOSED || cw_map_size(t->open) < max_open) return 0;
    if (set_has(t, id_hash(key, klen, ev->id)) || set_has(t, closed_mark(key, klen))) return 0;
    return 1;
}

void cw_cases_keys(const cw_event *ev, cw_case_keys *k) {
    char key[7 + CW_CASE_MAX + 1];
    size_t klen = case_key(ev, key);
    k->key_hash = cw_hash(key, klen);
    k->id_hash = id_hash_k(k->key_hash, ev->id);
    k->map_hash = cw_map_hash(key, klen);
    k->mark_hash = closed_mark_k(k->key_hash);
    k->klen = (uint32_t)klen;
}

void cw_cases_prefetch(const cw_cases *t, const cw_case_keys *k, int stage) {
    if (!k->klen) return;
    if (cw_map_prefetch(t->open, k->map_hash, stage) || stage == 0) return;
    /* not open: a new case, or one closed (within the window) */
    __builtin_prefetch(&t->set[k->id_hash & (t->set_cap - 1)]);
    __builtin_prefetch(&t->set[k->mark_hash & (t->set_cap - 1)]);
}

int cw_cases_apply(cw_cases *t, const cw_event *ev, cw_case_facts *f) {
    cw_case_keys k;
    cw_cases_keys(ev, &k);
    return cw_cases_apply_keys(t, ev, &k, f);
}

int cw_cases_apply_keys(cw_cases *t, const cw_event *ev, const cw_case_keys *keys, cw_case_facts *f) {
    memset(f, 0, sizeof(*f));
    char key[7 + CW_CASE_MAX + 1];
    size_t klen = keys->klen;
    memcpy(key, ev->unit, 6);
    key[6] = '|';
    memcpy(key + 7, ev->case_id, klen - 7);
    uint64_t h = keys->id_hash;
    open_case *c = cw_map_get_hashed(t->open, key, klen, keys->map_hash);
    if (c) {
        if (case_has_id(c, h)) return 1;
    } else if (set_has(t, h)) {
        return 1;
    } else if (set_has(t, keys->mark_hash)) {
        /* the case closed (within the window): count the event, keep the
         * case closed, remember the id */
        window_add(t, h);
        if (!post_trial(ev->type) && ev->type != CW_EV_CASE_CLOSED) check(t, CW_CHECK_AFTER_CLOSED, ev);
        return 2;
    }
    if (ev->type == CW_EV_CASE_CLOSED) {
        if (c) case_close(t, c, ev->ts);
        else {
            window_add(t, keys->mark_hash);
        }
        window_add(t, h);
        return 0;
    }
    if (!c && !(c = case_new(t->open, key, klen))) return -1;
    if (case_add_id(c, h) < 0) return -1;
    /* the same names as before, mostly: a compare, not a lookup */
    if (ev->dept[0] && (!c->dept || strcmp(name_at(t, c->dept), ev->dept) != 0)) c->dept = intern(t, ev->dept);
    if (ev->pros[0] && (!c->pros || strcmp(name_at(t, c->pros), ev->pros) != 0)) c->pros = intern(t, ev->pros);
    if (ev->dept[0] && c->dept) f->dept = name_at(t, c->dept);
    if (ev->pros[0] && c->pros) f->pros = name_at(t, c->pros);
    if (c->nids > t->most_ids) t->most_ids = c->nids;

    switch (ev->type) {
    case CW_EV_PROSECUTION_ACCEPTED:
    case CW_EV_PROSECUTION_RESUBMITTED:
        if (ev->type == CW_EV_PROSECUTION_ACCEPTED || !c->review_start) {
            c->review_start = ev->ts;
            c->returned_ms = 0;
        }
        if (c->returned_at) {
            c->returned_ms += ev->ts - c->returned_at;
            c->returned_at = 0;
        }
        break;
    case CW_EV_PROSECUTION_RETURNED:
        if (!c->returned_at) c->returned_at = ev->ts;
        break;
    case CW_EV_PROSECUTION_DECIDED:
        if (c->review_start) {
            int64_t paused = c->returned_ms + (c->returned_at ? ev->ts - c->returned_at : 0);
            int64_t ms = ev->ts - c->review_start - paused;
            f->review_decided = 1;
            f->review_ms = ms > 0 ? ms : 0;
        }
        break;
    case CW_EV_LETTER_RECEIVED: c->received_at = ev->ts; break;
    case CW_EV_LETTER_REPLIED:
        if (c->received_at) {
            f->letter_replied = ev->reply == CW_REPLY_PROCEDURAL ? 1 : 2;
            /* on time by the configured clock (its due day, as running);
             * with that clock off, by the law's 7 days or 3 months */
            int k = f->letter_replied == 1 ? CW_CLOCK_LETTER_PROCEDURAL : CW_CLOCK_LETTER_SUBSTANTIVE;
            period p = {0, 1};
            if (c->due[k]) p.due = due_of(t, c, k), p.extend = 0;
            else if (t->clocks.k[k].enabled) p = clock_period(t, k, c->received_at);
            else if (k == CW_CLOCK_LETTER_PROCEDURAL) p.due = cw_deadline_last_day(t->cal, cw_period_day(c->received_at, t->offset_min), CW_DEADLINE_DAYS, 7) + 1;
            else p.due = cw_deadline_last_day(t->cal, cw_period_day(c->received_at, t->offset_min), CW_DEADLINE_MONTHS, 3) + 1;
            int64_t due = p.extend ? cw_deadline_due_from_last(t->cal, p.due - 1, 1) : p.due;
            f->letter_ontime = ev->ts < cw_period_day_start(due, t->offset_min);
            f->letter_counted = (c->flags & (f->letter_replied == 1 ? F_LETTER_DUE_P : F_LETTER_DUE_S)) != 0;
        }
        break;
    default: break;
    }
    clocks_and_checks(t, c, ev);
    return 0;
}

/* ---- snapshots ------------------------------------------------------------ */

void cw_cases_save(const cw_cases *t, cw_snap_writer *w) {
    cw_snap_put_u32(w, CW_NCLOCKS);
    cw_snap_put_i64(w, t->today);
    cw_snap_put_u64(w, cw_map_size(t->open));
    size_t pos = 0;
    void *v;
    while (cw_map_next(t->open, &pos, NULL, NULL, &v)) {
        const open_case *c = v;
        cw_snap_put_bytes(w, c->key, c->klen);
        cw_snap_put_i64(w, c->review_start);
        cw_snap_put_i64(w, c->returned_at);
        cw_snap_put_i64(w, c->returned_ms);
        cw_snap_put_i64(w, c->received_at);
        cw_snap_put_u8(w, c->returns);
        cw_snap_put_u8(w, c->flags);
        for (int k = 0; k < CW_NCLOCKS; k++) {
            cw_snap_put_u32(w, (uint32_t)c->due[k]);
            cw_snap_put_u8(w, c->lights[k]);
        }
        cw_snap_put_u32(w, (uint32_t)c->review_from);
        cw_snap_put_u32(w, c->extend);
        cw_snap_put_str(w, name_at(t, c->dept));
        cw_snap_put_str(w, name_at(t, c->pros));
        cw_snap_put_u32(w, c->nids);
        for (uint32_t i = 0; i < c->nids; i++) cw_snap_put_u64(w, case_id(c, i));
    }
    /* the closed-case window, oldest first */
    cw_snap_put_u64(w, t->ring_len);
    for (size_t i = 0; i < t->ring_len; i++) cw_snap_put_u64(w, t->ring[(t->ring_head + i) % t->ring_cap]);
}

/* Version 1 wrote CW_NCLOCKS_V1 clocks (stale last) as bits of the
 * lights that were on; version 2 writes every clock, the light it shows,
 * the review's start day and who handles the case. */
int cw_cases_load(cw_cases *t, cw_snap_reader *r) {
    int v1 = r->version < 2;
    uint32_t nclocks = cw_snap_get_u32(r);
    if (nclocks != (v1 ? CW_NCLOCKS_V1 : CW_NCLOCKS)) r->bad = 1;
    t->today = cw_snap_get_i64(r);
    if (t->today < 0 || t->today > 3000000) r->bad = 1; /* a local day from 1970 to about 10000 */
    if (!t->queued && !t->nheap) t->qday = t->today;
    uint64_t n = cw_snap_get_u64(r);
    /* room for every case at once (no rehash on the way), once the count
     * is plausible: each case takes at least its fixed fields */
    const size_t least = 4 + 8 + 4 * 8 + 2 + CW_NCLOCKS * 5 + 4;
    if (n > (uint64_t)((r->end - r->p) / least)) r->bad = 1;
    else if (cw_map_reserve(t->open, (size_t)n) < 0) return -1;
    for (uint64_t k = 0; k < n && !r->bad; k++) {
        size_t klen;
        const char *key = cw_snap_get_bytes(r, 7 + CW_CASE_MAX, &klen);
        if (!key || klen < 8 || cw_map_get(t->open, key, klen)) {
            r->bad = 1;
            break;
        }
        open_case *c = case_new(t->open, key, klen);
        if (!c) return -1;
        c->review_start = cw_snap_get_i64(r);
        c->returned_at = cw_snap_get_i64(r);
        c->returned_ms = cw_snap_get_i64(r);
        c->received_at = cw_snap_get_i64(r);
        c->returns = cw_snap_get_u8(r);
        c->flags = cw_snap_get_u8(r) & (uint8_t)~F_DEAD;
        for (uint32_t f = 0; f < nclocks && !r->bad; f++) {
            int i = v1 && f == CW_NCLOCKS_V1 - 1 ? CW_CLOCK_STALE : (int)f;
            c->due[i] = (int32_t)cw_snap_get_u32(r);
            uint8_t lights = cw_snap_get_u8(r);
            if (v1) /* the bits of the lights on: the highest is the one shown */
                lights = lights & 8 ? CW_LIGHT_RED : lights & 4 ? CW_LIGHT_ORANGE : lights & 2 ? CW_LIGHT_YELLOW : 0;
            c->lights[i] = lights;
            if (c->due[i] < 0 || c->due[i] > 3000000 || lights > CW_LIGHT_RED) r->bad = 1;
        }
        if (!v1) {
            char name[CW_NAME_MAX + 1];
            c->review_from = (int32_t)cw_snap_get_u32(r);
            c->extend = (uint16_t)cw_snap_get_u32(r);
            if (cw_snap_get_str(r, name, sizeof(name)) == 0) c->dept = intern(t, name);
            if (cw_snap_get_str(r, name, sizeof(name)) == 0) c->pros = intern(t, name);
            if (c->review_from < 0 || c->review_from > 3000000) r->bad = 1;
        } else if (c->review_start) {
            c->review_from = (int32_t)cw_period_day(c->review_start, t->offset_min);
        }
        uint32_t nids = cw_snap_get_u32(r);
        if (r->bad || nids > (uint32_t)((r->end - r->p) / 8)) {
            r->bad = 1;
            break;
        }
        for (uint32_t i = 0; i < nids; i++)
            if (case_add_id(c, cw_snap_get_u64(r)) < 0) return -1;
        if (nids > t->most_ids) t->most_ids = nids;
        /* lights due by then change at the next advance */
        schedule(t, c, next_change(t, c));
    }
    uint64_t ring = cw_snap_get_u64(r);
    if (ring > (uint64_t)((r->end - r->p) / 8)) r->bad = 1;
    for (uint64_t i = 0; i < ring && !r->bad; i++) {
        uint64_t h = cw_snap_get_u64(r);
        if (h) window_add(t, h);
    }
    return r->bad ? -1 : 0;
}
