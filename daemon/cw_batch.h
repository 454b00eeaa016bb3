/* cw_batch: one XREAD batch of stream entries, copied out of the reply so
 * that it outlives it, then decoded away from the loop (the daemon runs
 * cw_batch_decode on libuv's thread pool while the loop applies the batch
 * before it). A batch owns its copy, its decoder and its decoded events;
 * it is reused from one reply to the next. Not shared: one thread at a
 * time works on a batch. */
#ifndef CW_BATCH_H
#define CW_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include <hiredis.h>

#include "../proto/cw_event.h"
#include "cw_engine.h"

typedef struct cw_batch cw_batch;

typedef struct cw_batch_entry {
    const char *id;               /* the stream entry id */
    const cw_entry_field *fields; /* every field of the entry, as read */
    size_t nfields;
    int ok;        /* after cw_batch_decode: 1 and ev, or 0 and why */
    cw_event ev;
    cw_event_keys keys; /* after cw_batch_decode, of an ok ev: cw_engine_prepare's (zeroed otherwise) */
    char why[256];
} cw_batch_entry;

cw_batch *cw_batch_new(void);
void cw_batch_free(cw_batch *b);

/* Copies the entries of an XREAD reply's entry list (each [id, [field,
 * value, ...]]; a malformed one is skipped, as the loop always did) and
 * notes now_ms, the wall clock event times are checked against. Returns 0,
 * or -1 when out of memory (the batch is then empty). */
int cw_batch_fill(cw_batch *b, const redisReply *entries, int64_t now_ms);

/* Filling a batch entry by entry, string by string, as a reply is parsed
 * (cw_replay_read's reader callbacks: no reply tree, one copy of each
 * string): cw_batch_begin, then for each entry cw_batch_add_entry and its
 * fields' names and values in turn with cw_batch_add_string (a name left
 * without its value is dropped, as cw_batch_fill does), then
 * cw_batch_end, after which the entries may be read. The add functions
 * return 0, or -1 when out of memory (cw_batch_end then fails too and
 * the batch is empty). One thread at a time, like the rest. */
void cw_batch_begin(cw_batch *b, int64_t now_ms);
int cw_batch_add_entry(cw_batch *b, const char *id, size_t len);
int cw_batch_add_string(cw_batch *b, const char *s, size_t len);
int cw_batch_end(cw_batch *b);

/* Decodes and validates every entry. Touches nothing but b: may run on
 * another thread while the loop works on other batches. */
void cw_batch_decode(cw_batch *b);

/* Empties b (for a reply that held no entries). */
void cw_batch_clear(cw_batch *b);

size_t cw_batch_size(const cw_batch *b);
const cw_batch_entry *cw_batch_at(const cw_batch *b, size_t i);

#endif
