#include "cw_daemon.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "cw_conn.h"
#include "cw_log.h"

typedef struct daemon_ctx {
    uv_loop_t loop;
    const cw_config *cfg;
    cw_conn *reader; /* blocking stream reads hold this one */
    cw_conn *writer; /* hashes, dead letters, alerts */
    uv_signal_t sigterm, sigint;
    int stopping;
} daemon_ctx;

static void on_conn_state(cw_conn *c, int ready, void *data) {
    (void)c;
    (void)ready;
    (void)data;
}

static void on_signal(uv_signal_t *s, int signum) {
    daemon_ctx *d = s->data;
    if (d->stopping) return;
    d->stopping = 1;
    CW_LOG(CW_LOG_NOTICE, "daemon", "%s received, shutting down", signum == SIGTERM ? "SIGTERM" : "SIGINT");
    cw_conn_close(d->reader, NULL, NULL);
    cw_conn_close(d->writer, NULL, NULL);
    d->reader = d->writer = NULL;
    uv_close((uv_handle_t *)&d->sigterm, NULL);
    uv_close((uv_handle_t *)&d->sigint, NULL);
}

int cw_daemon_run(const cw_config *cfg) {
    daemon_ctx d;
    memset(&d, 0, sizeof(d));
    d.cfg = cfg;
    if (uv_loop_init(&d.loop) != 0) {
        CW_LOG(CW_LOG_ERR, "daemon", "cannot initialise the event loop");
        return 1;
    }
    d.reader = cw_conn_new(&d.loop, cfg, "read", on_conn_state, &d);
    d.writer = cw_conn_new(&d.loop, cfg, "write", on_conn_state, &d);
    if (!d.reader || !d.writer) {
        CW_LOG(CW_LOG_ERR, "daemon", "out of memory");
        return 1;
    }
    uv_signal_init(&d.loop, &d.sigterm);
    uv_signal_init(&d.loop, &d.sigint);
    d.sigterm.data = d.sigint.data = &d;
    uv_signal_start(&d.sigterm, on_signal, SIGTERM);
    uv_signal_start(&d.sigint, on_signal, SIGINT);
    signal(SIGPIPE, SIG_IGN);
    CW_LOG(CW_LOG_INFO, "daemon", "casewatchd %s starting: instance %s, stream %s on %s:%d", CW_VERSION, cfg->instance,
           cfg->stream_key, cfg->redis_host, cfg->redis_port);
    cw_conn_start(d.reader);
    cw_conn_start(d.writer);
    uv_run(&d.loop, UV_RUN_DEFAULT);
    int rc = uv_loop_close(&d.loop);
    if (rc != 0) CW_LOG(CW_LOG_WARNING, "daemon", "event loop closed with handles still open: %s", uv_strerror(rc));
    CW_LOG(CW_LOG_INFO, "daemon", "stopped");
    return 0;
}
