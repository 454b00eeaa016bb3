#include "cw_map.h"

#include <stdlib.h>
#include <string.h>

#define BORROWED 0x80000000u /* in len: the key belongs to the caller */

typedef struct slot {
    char *key; /* NULL: empty */
    uint32_t len; /* | BORROWED */
    uint32_t hash32; /* the high bits of the key's hash: its home slot (see home), and a cheap compare */
    void *value;
} slot;

/* Linear probing with deletion by backward shift: no tombstones, so a
 * lookup runs at most to the first empty slot however many keys came and
 * went (the open-case table sees every case of a year pass through it).
 *
 * A key's home slot is the top log2(cap) bits of its 32 stored hash bits
 * times a multiplier of its own for each capacity. Slot order is thus
 * home order for a map of this capacity only. Were the homes of every
 * capacity nested (the low bits of one hash, as they once were), a map
 * filled from the iteration of a bigger one (a snapshot load, a rules
 * reload, a map still growing) would get its keys in an order that
 * sweeps its homes several times over (low bits) or all into its first
 * slots (high bits), and pile them into one cluster that every later
 * insert walks: 1.4M keys copied in slot order cost 5,396 probes per
 * insert with the low bits (3.35 in random order), and 5M open cases took
 * 428 s to load. With a multiplier per capacity such a copy looks like a
 * random order to the smaller map, and a copy into a map of the same
 * capacity (a snapshot load that reserves its count) comes in home order:
 * each insert ends the run it extends. */
struct cw_map {
    slot *slots;
    size_t cap, size;
    uint32_t mult;  /* odd, one for each capacity */
    unsigned shift; /* 32 - log2(cap) */
    size_t longest; /* the most slots an insert walked past its home */
};

#define MIN_CAP 16
#define MAX_CAP ((size_t)1 << 31) /* homes come from the 32 bits of hash32 */

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

/* The stored part of a hash: its high half (see the struct). */
static inline uint32_t high32(uint64_t h) {
    return (uint32_t)(h >> 32);
}

static inline size_t home(const cw_map *m, uint32_t h32) {
    return (size_t)((uint32_t)(h32 * m->mult) >> m->shift);
}

/* Sets cap (a power of two) and the home function that goes with it. */
static void set_cap(cw_map *m, size_t cap) {
    unsigned bits = 0;
    while (((size_t)1 << bits) < cap) bits++;
    m->cap = cap;
    m->shift = 32 - bits;
    /* splitmix64 of the capacity's bits: fixed, so that iteration order
     * (which snapshots and alert order follow) is the same from run to run */
    uint64_t z = (uint64_t)bits * 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    m->mult = (uint32_t)(z ^ (z >> 31)) | 1;
}

cw_map *cw_map_new(void) {
    cw_map *m = calloc(1, sizeof(*m));
    if (!m) return NULL;
    set_cap(m, MIN_CAP);
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

static size_t find(const cw_map *m, const char *key, size_t len, uint32_t h32, int *found) {
    size_t mask = m->cap - 1, i = home(m, h32);
    for (;;) {
        slot *s = &m->slots[i];
        if (!s->key) {
            *found = 0;
            return i;
        }
        if (s->hash32 == h32 && (s->len & ~BORROWED) == len && memcmp(s->key, key, len) == 0) {
            *found = 1;
            return i;
        }
        i = (i + 1) & mask;
    }
}

/* Moves every key into a table of cap slots (a power of two, more than
 * the current one). Returns 0 or -1 (memory; m unchanged). */
static int rehash(cw_map *m, size_t cap) {
    if (cap > MAX_CAP) return -1;
    slot *ns = calloc(cap, sizeof(slot));
    if (!ns) return -1;
    slot *old = m->slots;
    size_t oldcap = m->cap;
    m->slots = ns;
    set_cap(m, cap);
    for (size_t i = 0; i < oldcap; i++) {
        if (!old[i].key) continue;
        size_t j = home(m, old[i].hash32);
        while (ns[j].key) j = (j + 1) & (cap - 1);
        ns[j] = old[i];
    }
    free(old);
    return 0;
}

/* The capacity that holds n keys at a load of at most 3/4. */
static size_t cap_for(size_t n) {
    size_t cap = MIN_CAP;
    while (cap <= MAX_CAP && n > cap / 4 * 3) cap *= 2;
    return cap;
}

int cw_map_reserve(cw_map *m, size_t n) {
    size_t cap = cap_for(n);
    return cap <= m->cap ? 0 : rehash(m, cap);
}

void *cw_map_get(const cw_map *m, const char *key, size_t len) {
    int found;
    size_t i = find(m, key, len, high32(map_hash(key, len)), &found);
    return found ? m->slots[i].value : NULL;
}

uint64_t cw_map_hash(const void *key, size_t len) {
    return map_hash(key, len);
}

void *cw_map_get_hashed(const cw_map *m, const char *key, size_t len, uint64_t hash) {
    int found;
    size_t i = find(m, key, len, high32(hash), &found);
    return found ? m->slots[i].value : NULL;
}

int cw_map_prefetch(const cw_map *m, uint64_t hash, int stage) {
    uint32_t h32 = high32(hash);
    size_t i = home(m, h32);
    if (stage == 0) {
        __builtin_prefetch(&m->slots[i]);
        return 0;
    }
    int found = 0;
    /* the run from home to the first empty slot: a few slots, mostly in
     * the line just fetched */
    size_t mask = m->cap - 1;
    for (int walked = 0; m->slots[i].key; i = (i + 1) & mask, walked++) {
        if (walked == 4) return 1; /* a long run: maybe further on */
        if (m->slots[i].hash32 == h32) {
            const char *v = m->slots[i].value;
            __builtin_prefetch(v);
            __builtin_prefetch(v + 64);
            __builtin_prefetch(v + 128);
            __builtin_prefetch(m->slots[i].key); /* borrowed keys live in their values, further on */
            found++;
        }
    }
    return found;
}

static int put(cw_map *m, const char *key, size_t len, void *value, int borrow) {
    if (len >= BORROWED) return -1;
    if ((m->size + 1) * 4 > m->cap * 3 && rehash(m, m->cap * 2) < 0) return -1;
    uint32_t h32 = high32(map_hash(key, len));
    int found;
    size_t i = find(m, key, len, h32, &found);
    slot *s = &m->slots[i];
    if (found) {
        s->value = value;
        return 0;
    }
    size_t walked = (i - home(m, h32)) & (m->cap - 1);
    if (walked > m->longest) m->longest = walked;
    char *k = (char *)key;
    if (!borrow) {
        k = malloc(len + 1);
        if (!k) return -1;
        memcpy(k, key, len);
        k[len] = '\0';
    }
    s->key = k;
    s->len = (uint32_t)len | (borrow ? BORROWED : 0);
    s->hash32 = h32;
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
    size_t i = find(m, key, len, high32(map_hash(key, len)), &found);
    if (!found) return NULL;
    void *v = m->slots[i].value;
    if (!(m->slots[i].len & BORROWED)) free(m->slots[i].key);
    /* shift back the keys after it that probed past i, so that no lookup
     * meets a hole before its key */
    size_t mask = m->cap - 1;
    for (size_t j = (i + 1) & mask; m->slots[j].key; j = (j + 1) & mask) {
        size_t h = home(m, m->slots[j].hash32);
        int stays = i < j ? (h > i && h <= j) : (h > i || h <= j);
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

size_t cw_map_longest_insert(const cw_map *m) {
    return m->longest;
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
