/* cw_conn: one asynchronous Redis connection on a caller-owned libuv loop,
 * as an explicit state machine:
 *
 *   IDLE -> CONNECTING -> AUTHENTICATING -> READY
 *                ^                            |
 *                +------ BACKOFF <-- (error, silence, server gone)
 *
 * hiredis 0.14 has no command timeout and its libuv adapter no timer, so
 * every request carries a deadline watched by a uv_timer_t of our own; when
 * the oldest request is past it and the server has sent no reply at all
 * for the configured timeout (silence: a long pipeline answered steadily
 * is not), the connection is dropped, which fails
 * every request in flight (their callbacks see reply == NULL) and
 * reconnects after 100 ms, doubling up to 5 s. Each state change is logged
 * once. */
#ifndef CW_CONN_H
#define CW_CONN_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <hiredis.h>
#include <uv.h>

#include "../proto/cw_buf.h"
#include "cw_config.h"

typedef enum cw_conn_state {
    CW_CONN_IDLE,
    CW_CONN_CONNECTING,
    CW_CONN_AUTHENTICATING,
    CW_CONN_READY,
    CW_CONN_BACKOFF,
    CW_CONN_CLOSING,
    CW_CONN_CLOSED
} cw_conn_state;

typedef struct cw_conn cw_conn;

/* Called on every change into or out of READY. May issue commands. */
typedef void (*cw_conn_state_cb)(cw_conn *c, int ready, void *data);
/* reply is NULL when the request failed (timeout, connection lost, conn
 * closing); it is freed by hiredis after the callback returns. */
typedef void (*cw_conn_reply_cb)(cw_conn *c, redisReply *reply, void *privdata);

/* The conn keeps pointers to loop and cfg; both must outlive it. name
 * appears in log lines ("read", "write"). */
cw_conn *cw_conn_new(uv_loop_t *loop, const cw_config *cfg, const char *name, cw_conn_state_cb cb, void *data);

/* Starts connecting. */
void cw_conn_start(cw_conn *c);

int cw_conn_is_ready(const cw_conn *c);

/* Sends a command. extra_ms is added to the configured timeout (for
 * blocking reads). Returns 0, or -1 when the connection is not READY (the
 * callback is then never called). May be called from any callback. */
int cw_conn_command(cw_conn *c, int argc, const char **argv, const size_t *argvlen, uint64_t extra_ms,
                    cw_conn_reply_cb cb, void *privdata);

/* A command in Redis's wire format (RESP), built without a formatting
 * call or an allocation per command once the buffer has grown: for the
 * paths that send hundreds of thousands of commands (alerts, hashes).
 * Embedded in its owner: init/destroy. */
typedef struct cw_resp {
    cw_buf out;
} cw_resp;

void cw_resp_init(cw_resp *r);
void cw_resp_destroy(cw_resp *r);
/* Starts a command of argc arguments, forgetting the last one. */
void cw_resp_begin(cw_resp *r, int argc);
void cw_resp_arg(cw_resp *r, const char *s, size_t len);
static inline void cw_resp_str(cw_resp *r, const char *s) { cw_resp_arg(r, s, strlen(s)); }

/* Sends the command in r (copied; r may be reused at once). Same contract
 * as cw_conn_command; -1 also when r ran out of memory. */
int cw_conn_send(cw_conn *c, const cw_resp *r, uint64_t extra_ms, cw_conn_reply_cb cb, void *privdata);

/* Bytes of commands hiredis holds that the socket has not taken yet.
 * Writers keep this small: hiredis moves what is left of its buffer after
 * every partial write, so a buffer of megabytes costs the loop dearly. */
size_t cw_conn_unsent_bytes(const cw_conn *c);

/* Requests still waiting for their reply. */
size_t cw_conn_in_flight(const cw_conn *c);

/* Closes the connection: requests in flight see reply == NULL, then the
 * conn's handles are closed and `closed` is called from the loop, after
 * which the conn is freed. Safe from any callback, including its own;
 * the actual free is deferred until hiredis has returned. */
void cw_conn_close(cw_conn *c, void (*closed)(void *data), void *data);

/* Drops the current connection as if the server had gone away (tests,
 * and callers that detect a protocol error). */
void cw_conn_drop(cw_conn *c, const char *why);

#endif
