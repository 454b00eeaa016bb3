/* cw_dead: dead letters (PROTOCOL.md §2). An entry that cannot be used is
 * copied, with its original fields plus `reason` and `source_id`, into a
 * queue, and from there to the dead-letter stream ([stream] dead_key,
 * XADD MAXLEN ~ [stream] dead_maxlen). A dead letter leaves the queue only
 * once Redis has acknowledged it, across reconnects and restarts (the
 * queue is saved with snapshots).
 *
 * Bounds, the same when queued, saved and loaded: at most
 * CW_DEAD_MAX_FIELDS of an entry's fields are copied, and at most
 * [limits] dead_letter_bytes of its names and values (never more than
 * CW_DEAD_MAX_BYTES); what is cut is said in a `cut` field ("v: 10485760
 * bytes, 65000 kept"). Dead letters are logged as a rate, not a line
 * each: the first of a minute with its reason, then a count. */
#ifndef CW_DEAD_H
#define CW_DEAD_H

#include <stddef.h>
#include <stdint.h>

#include "../proto/cw_event.h"
#include "cw_config.h"
#include "cw_conn.h"

#define CW_DEAD_MAX_FIELDS 64            /* an entry's fields copied at most */
#define CW_DEAD_MAX_BYTES (16 << 20)     /* the most [limits] dead_letter_bytes may be */
#define CW_DEAD_TEXT_MAX 4096            /* reason, source_id, cut: each at most */

typedef struct cw_dead cw_dead;

/* cfg must outlive the queue. NULL: out of memory. */
cw_dead *cw_dead_new(const cw_config *cfg);
void cw_dead_free(cw_dead *q);

/* Queues an unusable entry (its fields as read, copied within the
 * bounds) with why it was refused. now_ms is for the rate log. Returns 0,
 * or -1 when out of memory (logged; the entry is then lost). */
int cw_dead_queue(cw_dead *q, const char *source_id, const cw_entry_field *fields, size_t nfields,
                  const char *reason, int64_t now_ms);

/* Sends what is queued and not in flight over w (pipelined), when w is
 * READY. A refusal (an error reply, a lost connection) leaves the dead
 * letter queued: it is sent again on the next call, in order; a refusal
 * is logged once until one lands again. May be called from callbacks. */
void cw_dead_send(cw_dead *q, cw_conn *w);

/* Dead letters queued (in flight included), and queued in all. */
size_t cw_dead_pending(const cw_dead *q);
size_t cw_dead_pending_bytes(const cw_dead *q); /* their names and values */
uint64_t cw_dead_total(const cw_dead *q);
void cw_dead_set_total(cw_dead *q, uint64_t n); /* restored from a snapshot */

/* Logs the count of the minute that ended, if it held more than the one
 * already logged; call about once a second. */
void cw_dead_tick(cw_dead *q, int64_t now_ms);

/* Snapshot: the queue (acknowledged ones are gone). Load into a queue
 * just made. Returns 0, or -1 (corrupt: r->bad; or memory). */
struct cw_snap_writer;
struct cw_snap_reader;
void cw_dead_save(const cw_dead *q, struct cw_snap_writer *w);
int cw_dead_load(cw_dead *q, struct cw_snap_reader *r);

#endif
