/* cw_map: an open-addressing hash map from byte-string keys to pointers.
 * The map copies keys (unless put borrowed); values belong to the caller.
 * Not thread-safe. */
#ifndef CW_MAP_H
#define CW_MAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct cw_map cw_map;

cw_map *cw_map_new(void);
/* Frees the map and its key copies, not the values. */
void cw_map_free(cw_map *m);
void *cw_map_get(const cw_map *m, const char *key, size_t len);
/* The map's own hash of a key (cw_map_hash: a pure function, any thread
 * may call it; not persisted, it may change between versions), for a
 * lookup whose hash was worked out ahead, elsewhere. */
uint64_t cw_map_hash(const void *key, size_t len);
void *cw_map_get_hashed(const cw_map *m, const char *key, size_t len, uint64_t hash);
/* Hints that a lookup of that hash comes soon: stage 0 fetches its home
 * slot into the cache; stage 1 (once that slot is there) the values
 * whose slots carry the same hash bits (where the map's values hold
 * their keys, the records themselves), and returns how many it found (0:
 * the key is surely absent). Changes nothing. */
int cw_map_prefetch(const cw_map *m, uint64_t hash, int stage);
/* Inserts or replaces. Returns 0 or -1 (out of memory). */
int cw_map_put(cw_map *m, const char *key, size_t len, void *value);
/* Inserts without copying the key: it must stay valid and unchanged
 * until removed (for keys kept inside the value itself). */
int cw_map_put_borrowed(cw_map *m, const char *key, size_t len, void *value);
/* Makes room for n keys in all without growing again on the way (a load
 * that knows its count). Returns 0 or -1 (out of memory; m unchanged). */
int cw_map_reserve(cw_map *m, size_t n);
/* Removes key; returns its value or NULL. */
void *cw_map_del(cw_map *m, const char *key, size_t len);
size_t cw_map_size(const cw_map *m);
/* The most slots any insert has had to walk past its key's home slot
 * since the map was made: a few dozen at most in a healthy map, tens of
 * thousands when an insertion order clusters it (for tests). */
size_t cw_map_longest_insert(const cw_map *m);
/* Iterates: start with *pos = 0; returns 0 at the end. The map must not
 * change during an iteration (a delete moves keys back). */
int cw_map_next(const cw_map *m, size_t *pos, const char **key, size_t *len, void **value);

/* FNV-1a with a finaliser: stable across versions (snapshots keep its
 * values, e.g. the hashes of event ids), so never to be changed. The map
 * hashes its keys with a faster function of its own. */
uint64_t cw_hash(const void *data, size_t len);

#endif
