#include "cw_cases.h"

#include <stdlib.h>
#include <string.h>

#include "cw_map.h"
#include "cw_period.h"

typedef struct open_case {
    int64_t review_start;  /* prosecution.accepted / resubmitted clock start, 0 if none */
    int64_t returned_at;   /* when the current 退回补充侦查 began, 0 if none */
    int64_t returned_ms;   /* time spent returned during this review */
    int64_t received_at;   /* letter.received */
    uint32_t nids, capids;
    uint64_t *ids;
} open_case;

struct cw_cases {
    cw_map *open;
    int offset_min;
    /* closed-case dedupe window: a ring of hashes and a set over them */
    uint64_t *ring;
    size_t ring_cap, ring_len, ring_head;
    uint64_t *set; /* open addressing, 0 = empty */
    size_t set_cap;
};

static size_t case_key(const cw_event *ev, char *buf) {
    size_t n = strlen(ev->case_id);
    memcpy(buf, ev->unit, 6);
    buf[6] = '|';
    memcpy(buf + 7, ev->case_id, n);
    return n + 7;
}

static uint64_t id_hash(const char *key, size_t klen, const char *id) {
    uint64_t h = cw_hash(key, klen) ^ (cw_hash(id, strlen(id)) * 0x9E3779B97F4A7C15ULL);
    return h ? h : 1;
}

/* What the window remembers of a closed case itself, beside its ids. */
static uint64_t closed_mark(const char *key, size_t klen) {
    return id_hash(key, klen, "\x01closed");
}

cw_cases *cw_cases_new(size_t closed_window, int offset_min) {
    cw_cases *t = calloc(1, sizeof(*t));
    if (!t) return NULL;
    t->offset_min = offset_min;
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

void cw_cases_free(cw_cases *t) {
    if (!t) return;
    if (t->open) {
        size_t pos = 0;
        void *v;
        while (cw_map_next(t->open, &pos, NULL, NULL, &v)) {
            free(((open_case *)v)->ids);
            free(v);
        }
        cw_map_free(t->open);
    }
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

static void set_add(cw_cases *t, uint64_t h) {
    size_t m = t->set_cap - 1, i = h & m;
    while (t->set[i]) {
        if (t->set[i] == h) return;
        i = (i + 1) & m;
    }
    t->set[i] = h;
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

static void window_add(cw_cases *t, uint64_t h) {
    if (set_has(t, h)) return;
    if (t->ring_len == t->ring_cap) {
        set_del(t, t->ring[t->ring_head]);
        t->ring[t->ring_head] = h;
        t->ring_head = (t->ring_head + 1) % t->ring_cap;
    } else {
        t->ring[(t->ring_head + t->ring_len) % t->ring_cap] = h;
        t->ring_len++;
    }
    set_add(t, h);
}

/* ---- applying ----------------------------------------------------------- */

int cw_cases_apply(cw_cases *t, const cw_event *ev, cw_case_facts *f) {
    memset(f, 0, sizeof(*f));
    char key[7 + CW_CASE_MAX + 1];
    size_t klen = case_key(ev, key);
    uint64_t h = id_hash(key, klen, ev->id);
    open_case *c = cw_map_get(t->open, key, klen);
    if (c) {
        for (uint32_t i = 0; i < c->nids; i++)
            if (c->ids[i] == h) return 1;
    } else if (set_has(t, h)) {
        return 1;
    } else if (set_has(t, closed_mark(key, klen))) {
        /* the case closed (within the window): count the event, keep the
         * case closed, remember the id */
        window_add(t, h);
        return 2;
    }
    if (ev->type == CW_EV_CASE_CLOSED) {
        if (c) {
            for (uint32_t i = 0; i < c->nids; i++) window_add(t, c->ids[i]);
            cw_map_del(t->open, key, klen);
            free(c->ids);
            free(c);
        }
        window_add(t, h);
        window_add(t, closed_mark(key, klen));
        return 0;
    }
    if (!c) {
        c = calloc(1, sizeof(*c));
        if (!c || cw_map_put(t->open, key, klen, c) < 0) {
            free(c);
            return -1;
        }
    }
    if (c->nids == c->capids) {
        uint32_t cap = c->capids ? c->capids * 2 : 4;
        uint64_t *ni = realloc(c->ids, cap * sizeof(uint64_t));
        if (!ni) return -1;
        c->ids = ni;
        c->capids = cap;
    }
    c->ids[c->nids++] = h;

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
        }
        break;
    default: break;
    }
    return 0;
}
