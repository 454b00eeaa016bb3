#include "cw_map.h"

#include <stdlib.h>
#include <string.h>

#define BORROWED 0x80000000u /* in len: the key belongs to the caller */

typedef struct slot {
    char *key; /* NULL: empty */
    uint32_t len; /* | BORROWED */
    uint32_t hash32; /* the low bits of the key's hash: its home slot, and a cheap compare */
    void *value;
} slot;

/* Linear probing with deletion by backward shift: no tombstones, so a
 * lookup runs at most to the first empty slot however many keys came and
 * went (the open-case table sees every case of a year pass through it). */
struct cw_map {
    slot *slots;
    size_t cap, size;
};

uint64_t cw_hash(const void *data, size_t len) {
    /* FNV-1a, then a 64-bit finaliser to spread the low bits */
    const unsigned char *p = data;
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < len; i++) h = (h ^ p[i]) * 1099511628211ULL;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
}

/* The map's own hash: 8 bytes a step (keys are hashed on every event's
 * path several times over). Not persisted anywhere, so it may change;
 * cw_hash above is the stable one (snapshots hold its values). */
static inline uint64_t mix(uint64_t a, uint64_t b) {
    __uint128_t r = (__uint128_t)a * b;
    return (uint64_t)r ^ (uint64_t)(r >> 64);
}

static uint64_t map_hash(const void *data, size_t len) {
    const unsigned char *p = data;
    uint64_t h = 0x243F6A8885A308D3ULL ^ len;
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = mix(h ^ w, 0x9E3779B97F4A7C15ULL);
        p += 8;
        len -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, p, len);
    h = mix(h ^ w, 0xBF58476D1CE4E5B9ULL);
    return mix(h, 0x94D049BB133111EBULL);
}

cw_map *cw_map_new(void) {
    cw_map *m = calloc(1, sizeof(*m));
    if (!m) return NULL;
    m->cap = 16;
    m->slots = calloc(m->cap, sizeof(slot));
    if (!m->slots) {
        free(m);
        return NULL;
    }
    return m;
}

void cw_map_free(cw_map *m) {
    if (!m) return;
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i].key && !(m->slots[i].len & BORROWED)) free(m->slots[i].key);
    free(m->slots);
    free(m);
}

static size_t find(const cw_map *m, const char *key, size_t len, uint64_t h, int *found) {
    size_t mask = m->cap - 1, i = h & mask;
    for (;;) {
        slot *s = &m->slots[i];
        if (!s->key) {
            *found = 0;
            return i;
        }
        if (s->hash32 == (uint32_t)h && (s->len & ~BORROWED) == len && memcmp(s->key, key, len) == 0) {
            *found = 1;
            return i;
        }
        i = (i + 1) & mask;
    }
}

static int grow(cw_map *m) {
    size_t cap = m->cap * 2;
    slot *old = m->slots;
    size_t oldcap = m->cap;
    slot *ns = calloc(cap, sizeof(slot));
    if (!ns) return -1;
    m->slots = ns;
    m->cap = cap;
    for (size_t i = 0; i < oldcap; i++) {
        if (!old[i].key) continue;
        size_t j = old[i].hash32 & (cap - 1); /* the low bits of the full hash: find probes from there */
        while (ns[j].key) j = (j + 1) & (cap - 1);
        ns[j] = old[i];
    }
    free(old);
    return 0;
}

void *cw_map_get(const cw_map *m, const char *key, size_t len) {
    int found;
    size_t i = find(m, key, len, map_hash(key, len), &found);
    return found ? m->slots[i].value : NULL;
}

static int put(cw_map *m, const char *key, size_t len, void *value, int borrow) {
    if (len >= BORROWED) return -1;
    if ((m->size + 1) * 4 > m->cap * 3 && grow(m) < 0) return -1;
    uint64_t h = map_hash(key, len);
    int found;
    size_t i = find(m, key, len, h, &found);
    slot *s = &m->slots[i];
    if (found) {
        s->value = value;
        return 0;
    }
    char *k = (char *)key;
    if (!borrow) {
        k = malloc(len + 1);
        if (!k) return -1;
        memcpy(k, key, len);
        k[len] = '\0';
    }
    s->key = k;
    s->len = (uint32_t)len | (borrow ? BORROWED : 0);
    s->hash32 = (uint32_t)h;
    s->value = value;
    m->size++;
    return 0;
}

int cw_map_put(cw_map *m, const char *key, size_t len, void *value) {
    return put(m, key, len, value, 0);
}

int cw_map_put_borrowed(cw_map *m, const char *key, size_t len, void *value) {
    return put(m, key, len, value, 1);
}

void *cw_map_del(cw_map *m, const char *key, size_t len) {
    int found;
    size_t i = find(m, key, len, map_hash(key, len), &found);
    if (!found) return NULL;
    void *v = m->slots[i].value;
    if (!(m->slots[i].len & BORROWED)) free(m->slots[i].key);
    /* shift back the keys after it that probed past i, so that no lookup
     * meets a hole before its key */
    size_t mask = m->cap - 1;
    for (size_t j = (i + 1) & mask; m->slots[j].key; j = (j + 1) & mask) {
        size_t home = m->slots[j].hash32 & mask;
        int stays = i < j ? (home > i && home <= j) : (home > i || home <= j);
        if (stays) continue;
        m->slots[i] = m->slots[j];
        i = j;
    }
    memset(&m->slots[i], 0, sizeof(slot));
    m->size--;
    return v;
}

size_t cw_map_size(const cw_map *m) {
    return m->size;
}

int cw_map_next(const cw_map *m, size_t *pos, const char **key, size_t *len, void **value) {
    while (*pos < m->cap) {
        slot *s = &m->slots[(*pos)++];
        if (s->key) {
            if (key) *key = s->key;
            if (len) *len = s->len & ~BORROWED;
            if (value) *value = s->value;
            return 1;
        }
    }
    return 0;
}
