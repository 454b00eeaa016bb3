#include "cw_cases.h"

#include <stdlib.h>
#include <string.h>

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
};

typedef struct open_case {
    int64_t review_start;  /* prosecution.accepted / resubmitted clock start, 0 if none */
    int64_t returned_at;   /* when the current 退回补充侦查 began, 0 if none */
    int64_t returned_ms;   /* time spent returned during this review */
    int64_t received_at;   /* letter.received */
    uint64_t ids[4];  /* the first ids (hashes), inside the record: one memory access finds them */
    uint64_t *more;   /* the ids after those, when a case has more */
    uint32_t nids, capmore;
    int32_t due[CW_NCLOCKS]; /* local day at whose start each clock runs out; 0 = not running */
    int32_t scheduled;       /* day of the newest light entry for this case, 0 = none */
    uint16_t refs;           /* light entries pointing here */
    uint8_t lights[CW_NCLOCKS];
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

struct cw_cases {
    cw_map *open;
    int offset_min;
    cw_clock_rules clocks;
    cw_case_listener listener;
    int64_t today; /* the last day advanced to */
    /* closed-case dedupe window: a ring of hashes and a set over them */
    uint64_t *ring;
    size_t ring_cap, ring_len, ring_head;
    uint64_t *set; /* open addressing, 0 = empty */
    size_t set_cap;
    uint32_t most_ids; /* the most ids any case has held: no case can be at the ids cap below it */
    /* light entries, a min-heap by day */
    light_entry *heap;
    size_t nheap, capheap;
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
    t->ring_cap = closed_window ? closed_window : 1;
    t->ring = calloc(t->ring_cap, sizeof(uint64_t));
    t->set_cap = 16;
    while (t->set_cap < t->ring_cap * 2) t->set_cap *= 2;
    t->set = calloc(t->set_cap, sizeof(uint64_t));
    if (!t->open || !t->ring || !t->set) {
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
    if (t->open) {
        size_t pos = 0;
        void *v;
        while (cw_map_next(t->open, &pos, NULL, NULL, &v)) case_free(v);
        cw_map_free(t->open); /* keys were borrowed from the cases */
    }
    free(t->heap);
    free(t->ring);
    free(t->set);
    free(t);
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

static int64_t next_light(const cw_cases *t, const open_case *c);

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

/* The day a light of a clock comes on: 1 yellow, 2 orange, 3 red. */
static int64_t light_day(const cw_cases *t, const open_case *c, int k, int light) {
    if (light == 1) return t->clocks.warn_days[k] ? (int64_t)c->due[k] - t->clocks.warn_days[k] : 0;
    if (light == 2) return t->clocks.urgent_days[k] ? (int64_t)c->due[k] - t->clocks.urgent_days[k] : 0;
    return c->due[k];
}

static void unit_and_case(const open_case *c, char unit[7], const char **case_id) {
    memcpy(unit, c->key, 6);
    unit[6] = '\0';
    *case_id = c->key + 7; /* the key ends in a NUL (see case_new) */
}

/* Turns on the lights of c whose day has come; returns the next day a
 * light of c comes on, or 0. */
static int64_t light_up(cw_cases *t, open_case *c, int64_t today, int64_t ts) {
    int64_t next = 0;
    for (int k = 0; k < CW_NCLOCKS; k++) {
        if (!c->due[k]) continue;
        for (int light = 1; light <= 3; light++) {
            int64_t day = light_day(t, c, k, light);
            if (!day || (c->lights[k] & (1 << light))) continue;
            if (day <= today) {
                c->lights[k] |= (uint8_t)(1 << light);
                if (light == 3 && k == CW_CLOCK_LETTER_PROCEDURAL) c->flags |= F_LETTER_DUE_P;
                if (light == 3 && k == CW_CLOCK_LETTER_SUBSTANTIVE) c->flags |= F_LETTER_DUE_S;
                if (t->listener.light) {
                    char unit[7];
                    const char *cs;
                    unit_and_case(c, unit, &cs);
                    t->listener.light(k, light, 1, unit, cs, c->due[k], ts, t->listener.data);
                }
            } else if (!next || day < next) {
                next = day;
            }
        }
    }
    return next;
}

/* Makes sure a light entry exists for c's next light. */
static void schedule(cw_cases *t, open_case *c, int64_t next) {
    if (!next) return;
    if (c->scheduled && c->scheduled > t->today && c->scheduled <= next) return; /* an entry comes in time */
    if (heap_push(t, (int32_t)next, c) == 0) c->scheduled = (int32_t)next;
}

/* Stops clock k: the lights it had on go off. */
static void clock_stop(cw_cases *t, open_case *c, int k, int64_t ts) {
    if (!c->due[k]) return;
    for (int light = 1; light <= 3; light++) {
        if (!(c->lights[k] & (1 << light)) || !t->listener.light) continue;
        char unit[7];
        const char *cs;
        unit_and_case(c, unit, &cs);
        t->listener.light(k, light, 0, unit, cs, c->due[k], ts, t->listener.data);
    }
    c->due[k] = 0;
    c->lights[k] = 0;
}

/* (Re)starts clock k to run out at the start of local day `due`. */
static void clock_start(cw_cases *t, open_case *c, int k, int64_t due) {
    clock_stop(t, c, k, 0);
    if (t->clocks.enabled[k]) c->due[k] = (int32_t)due;
}

static int64_t days_due(const cw_cases *t, int64_t ts, int days) {
    return cw_period_day(cw_deadline_days(ts, days, t->offset_min), t->offset_min);
}

static int64_t months_due(const cw_cases *t, int64_t ts, int months) {
    return cw_period_day(cw_deadline_months(ts, months, t->offset_min), t->offset_min);
}

void cw_cases_advance(cw_cases *t, int64_t today) {
    if (today > t->today) t->today = today;
    while (t->nheap && t->heap[0].day <= t->today) {
        light_entry e = heap_pop(t);
        open_case *c = e.c;
        c->refs--;
        if (c->flags & F_DEAD) {
            if (!c->refs) case_free(c);
            continue;
        }
        int64_t ts = (t->today * 86400000LL) - (int64_t)t->offset_min * 60000; /* the day's start */
        schedule(t, c, light_up(t, c, t->today, ts));
    }
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

/* The clocks an event starts, stops or moves (INDICATORS.md §4) and the
 * data checks it may fail (§5). */
static void clocks_and_checks(cw_cases *t, open_case *c, const cw_event *ev) {
    const cw_clock_rules *k = &t->clocks;
    switch (ev->type) {
    case CW_EV_ARREST_ACCEPTED: {
        c->flags |= F_ARREST_SEEN;
        int days = cw_event_flag(ev, CW_F_DETAINED) ? k->arrest_days_detained
                   : cw_event_flag(ev, CW_F_COMPLEX) ? k->arrest_days_complex
                                                      : k->arrest_days;
        if (days) clock_start(t, c, CW_CLOCK_ARREST_REVIEW, days_due(t, ev->ts, days));
        break;
    }
    case CW_EV_ARREST_DECIDED:
        if (!(c->flags & F_ARREST_SEEN)) check(t, CW_CHECK_DECIDED_UNACCEPTED, ev);
        clock_stop(t, c, CW_CLOCK_ARREST_REVIEW, ev->ts);
        break;
    case CW_EV_PROSECUTION_ACCEPTED:
    case CW_EV_PROSECUTION_RESUBMITTED:
        if (ev->type == CW_EV_PROSECUTION_ACCEPTED) c->flags |= F_PROSECUTION_SEEN;
        c->flags &= (uint8_t)~F_EXTENDED;
        clock_stop(t, c, CW_CLOCK_SUPPLEMENTARY, ev->ts);
        if (cw_event_flag(ev, CW_F_FAST) && k->review_days_fast)
            clock_start(t, c, CW_CLOCK_PROSECUTION_REVIEW, days_due(t, ev->ts, k->review_days_fast));
        else if (k->review_months)
            clock_start(t, c, CW_CLOCK_PROSECUTION_REVIEW, months_due(t, ev->ts, k->review_months));
        break;
    case CW_EV_PROSECUTION_RETURNED:
        if (c->returns < 255) c->returns++;
        if (c->returns == 3) check(t, CW_CHECK_THIRD_RETURN, ev);
        clock_stop(t, c, CW_CLOCK_PROSECUTION_REVIEW, ev->ts);
        if (k->supplementary_months)
            clock_start(t, c, CW_CLOCK_SUPPLEMENTARY, months_due(t, ev->ts, k->supplementary_months));
        break;
    case CW_EV_PROSECUTION_EXTENDED:
        if (c->flags & F_EXTENDED) check(t, CW_CHECK_SECOND_EXTENSION, ev);
        c->flags |= F_EXTENDED;
        if (c->due[CW_CLOCK_PROSECUTION_REVIEW] && k->review_extension_days) {
            int64_t due = c->due[CW_CLOCK_PROSECUTION_REVIEW] + k->review_extension_days;
            clock_stop(t, c, CW_CLOCK_PROSECUTION_REVIEW, ev->ts); /* lights of the old deadline go off */
            clock_start(t, c, CW_CLOCK_PROSECUTION_REVIEW, due);
        }
        break;
    case CW_EV_PROSECUTION_DECIDED:
        if (!(c->flags & F_PROSECUTION_SEEN)) check(t, CW_CHECK_DECIDED_UNACCEPTED, ev);
        clock_stop(t, c, CW_CLOCK_PROSECUTION_REVIEW, ev->ts);
        clock_stop(t, c, CW_CLOCK_SUPPLEMENTARY, ev->ts);
        break;
    case CW_EV_LETTER_RECEIVED:
        if (k->letter_procedural_days)
            clock_start(t, c, CW_CLOCK_LETTER_PROCEDURAL, days_due(t, ev->ts, k->letter_procedural_days));
        if (k->letter_substantive_months)
            clock_start(t, c, CW_CLOCK_LETTER_SUBSTANTIVE, months_due(t, ev->ts, k->letter_substantive_months));
        break;
    case CW_EV_LETTER_REPLIED:
        clock_stop(t, c, CW_CLOCK_LETTER_PROCEDURAL, ev->ts);
        if (ev->reply == CW_REPLY_SUBSTANTIVE) clock_stop(t, c, CW_CLOCK_LETTER_SUBSTANTIVE, ev->ts);
        break;
    default: break;
    }
    /* 挂案: any event restarts the stale clock */
    if (k->stale_days) clock_start(t, c, CW_CLOCK_STALE, days_due(t, ev->ts, k->stale_days));
    /* lights already due (a late start) come on at the next advance */
    schedule(t, c, next_light(t, c));
}

/* Removes a closed case: its lights go off, its ids move to the window. */
static void case_close(cw_cases *t, open_case *c, int64_t ts) {
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

int cw_cases_apply(cw_cases *t, const cw_event *ev, cw_case_facts *f) {
    memset(f, 0, sizeof(*f));
    char key[7 + CW_CASE_MAX + 1];
    size_t klen = case_key(ev, key);
    uint64_t kh = cw_hash(key, klen), h = id_hash_k(kh, ev->id);
    open_case *c = cw_map_get(t->open, key, klen);
    if (c) {
        if (case_has_id(c, h)) return 1;
    } else if (set_has(t, h)) {
        return 1;
    } else if (set_has(t, closed_mark_k(kh))) {
        /* the case closed (within the window): count the event, keep the
         * case closed, remember the id */
        window_add(t, h);
        if (!post_trial(ev->type) && ev->type != CW_EV_CASE_CLOSED) check(t, CW_CHECK_AFTER_CLOSED, ev);
        return 2;
    }
    if (ev->type == CW_EV_CASE_CLOSED) {
        if (c) case_close(t, c, ev->ts);
        else {
            window_add(t, closed_mark_k(kh));
        }
        window_add(t, h);
        return 0;
    }
    if (!c && !(c = case_new(t->open, key, klen))) return -1;
    if (case_add_id(c, h) < 0) return -1;
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
            int64_t due = f->letter_replied == 1 ? cw_deadline_days(c->received_at, 7, t->offset_min)
                                                 : cw_deadline_months(c->received_at, 3, t->offset_min);
            f->letter_ontime = ev->ts < due;
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
        cw_snap_put_u32(w, c->nids);
        for (uint32_t i = 0; i < c->nids; i++) cw_snap_put_u64(w, case_id(c, i));
    }
    /* the closed-case window, oldest first */
    cw_snap_put_u64(w, t->ring_len);
    for (size_t i = 0; i < t->ring_len; i++) cw_snap_put_u64(w, t->ring[(t->ring_head + i) % t->ring_cap]);
}

/* The first day a light of c not yet on comes on, or 0. */
static int64_t next_light(const cw_cases *t, const open_case *c) {
    int64_t next = 0;
    for (int i = 0; i < CW_NCLOCKS; i++) {
        for (int light = 1; c->due[i] && light <= 3; light++) {
            int64_t day = light_day(t, c, i, light);
            if (day && !(c->lights[i] & (1 << light)) && (!next || day < next)) next = day;
        }
    }
    return next;
}

int cw_cases_load(cw_cases *t, cw_snap_reader *r) {
    if (cw_snap_get_u32(r) != CW_NCLOCKS) r->bad = 1;
    t->today = cw_snap_get_i64(r);
    if (t->today < 0 || t->today > 3000000) r->bad = 1; /* a local day from 1970 to about 10000 */
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
        for (int i = 0; i < CW_NCLOCKS; i++) {
            c->due[i] = (int32_t)cw_snap_get_u32(r);
            c->lights[i] = cw_snap_get_u8(r);
            if (c->due[i] < 0 || c->due[i] > 3000000) r->bad = 1;
        }
        uint32_t nids = cw_snap_get_u32(r);
        if (r->bad || nids > (uint32_t)((r->end - r->p) / 8)) {
            r->bad = 1;
            break;
        }
        for (uint32_t i = 0; i < nids; i++)
            if (case_add_id(c, cw_snap_get_u64(r)) < 0) return -1;
        if (nids > t->most_ids) t->most_ids = nids;
        schedule(t, c, next_light(t, c));
    }
    uint64_t ring = cw_snap_get_u64(r);
    if (ring > (uint64_t)((r->end - r->p) / 8)) r->bad = 1;
    for (uint64_t i = 0; i < ring && !r->bad; i++) {
        uint64_t h = cw_snap_get_u64(r);
        if (h) window_add(t, h);
    }
    return r->bad ? -1 : 0;
}
