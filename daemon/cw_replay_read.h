/* cw_replay_read: the stream reads of a --replay, off the loop thread.
 *
 * A live daemon reads on the asynchronous reader connection (cw_conn) and
 * the loop parses every reply. A replay only reads, as fast as it can:
 * here each read is a libuv work item (uv_queue_work) on a blocking
 * hiredis connection of its own, which sends the stream check and the
 * XREAD in one round trip, parses the XREAD reply with reader callbacks
 * that fill a cw_batch directly (no reply tree, one copy of each string),
 * all on the worker thread. The loop thread gets the batch, filled, in the
 * read's callback, and has it decoded (cw_batch_decode) on another worker
 * while the next read goes on: Redis prepares a reply while the one
 * before is decoded and the one before that applied.
 *
 * Threads and ownership. The cw_replay_read belongs to the loop thread:
 * every function below is called there, and every callback is called
 * there. At most one read is in flight; while it is, the worker owns the
 * blocking connection and the batch it fills, and the loop touches
 * neither (the batch is the caller's again in the callback). A read that
 * fails (connection refused, lost, no reply within [redis] timeout_ms:
 * the socket has timeouts, a read never hangs) drops the connection and
 * waits 100 ms, doubling up to 5 s, before the next one may start (like
 * cw_conn's BACKOFF); `ready` is called when it may. */
#ifndef CW_REPLAY_READ_H
#define CW_REPLAY_READ_H

#include <stddef.h>

#include <hiredis.h>
#include <uv.h>

#include "cw_batch.h"
#include "cw_config.h"

typedef struct cw_replay_read cw_replay_read;

/* What a read brought. */
typedef struct cw_replay_read_result {
    int ok;                  /* 1: the batch is filled (not decoded); 0: see why */
    int refused;             /* !ok: Redis answered the XREAD with an error (why) */
    int nomem;               /* !ok: out of memory filling the batch */
    int closed;              /* !ok: cw_replay_read_close was called meanwhile */
    char why[256];
    const redisReply *check; /* the stream check's reply, or NULL when it did not come; valid in the callback */
    int stream;              /* ok: the reply held the stream (else: no entries) */
    size_t n;                /* ok: entries the reply held */
    const char *last;        /* ok: the last one's id (NULL: none); valid in the callback */
} cw_replay_read_result;

/* Called on the loop thread once per started read; b is the caller's again. */
typedef void (*cw_replay_read_cb)(cw_batch *b, const cw_replay_read_result *res, void *data);
/* Called on the loop thread when a read may start again after a failure. */
typedef void (*cw_replay_read_ready_cb)(void *data);

/* loop and cfg must outlive it; check_script: the stream check (EVAL'd
 * with the stream key before each XREAD; kept, not copied). NULL when out
 * of memory. */
cw_replay_read *cw_replay_read_new(uv_loop_t *loop, const cw_config *cfg, const char *check_script,
                                   cw_replay_read_ready_cb ready, void *data);

/* Whether a read may start now (none in flight, not waiting after a failure). */
int cw_replay_read_idle(const cw_replay_read *rr);

/* Starts reading up to [stream] batch entries after pos (copied) into b,
 * which the worker owns until cb. Returns 0, or -1 when a read may not
 * start (cb is then never called). */
int cw_replay_read_start(cw_replay_read *rr, const char *pos, cw_batch *b, cw_replay_read_cb cb, void *data);

/* Closes: no read starts any more, a read in flight still calls its cb
 * (closed) once the worker is done with it, and the connection is freed
 * after that, from the loop. Accepts NULL. */
void cw_replay_read_close(cw_replay_read *rr);

#endif
