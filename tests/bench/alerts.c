/* The alert sink alone: N alert transitions (half firing, half the
 * resolution of one fired before) queued into cw_sink and sent over one
 * cw_conn to a real redis-server, timed from the first put until Redis has
 * acknowledged the last one. Prints "alerts N secs alerts_per_s".
 * Usage: alerts PORT [N] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "../../daemon/cw_config.h"
#include "../../daemon/cw_conn.h"
#include "../../daemon/cw_log.h"
#include "../../daemon/cw_period.h"
#include "../../daemon/cw_sink.h"

typedef struct bench {
    uv_loop_t loop;
    cw_conn *w;
    cw_sink *s;
    uv_idle_t idle;
    int n, put;
    double t0, t1;
    int done;
} bench;

static void put_some(bench *b) {
    char id[96], msg[160];
    for (int k = 0; k < 2000 && b->put < b->n; k++, b->put++) {
        int i = b->put / 2, firing = b->put % 2 == 0;
        snprintf(id, sizeof(id), "deadline.prosecution.yellow/case:410923:南检刑诉受[2020]%d号", i);
        snprintf(msg, sizeof(msg), "南乐县人民检察院 案件 %d 审查起诉期限将满，期限预警", i);
        cw_alert a = {.id = id, .firing = firing, .level = "yellow", .label = "期限预警",
                      .rule = "deadline.prosecution.yellow", .scope = id + 27, .unit = "410923",
                      .deadline_ms = 1596470400000LL, .event_ts = 1596211200000LL + i, .message = msg};
        if (cw_sink_put(b->s, &a, 1596211200123LL) < 0) exit(2);
    }
}

static void on_idle(uv_idle_t *h) {
    bench *b = h->data;
    if (!cw_conn_is_ready(b->w)) return;
    if (b->t0 == 0) b->t0 = cw_mono_s();
    if (b->put < b->n && cw_sink_pending(b->s) < 20000) put_some(b);
    cw_sink_send(b->s, b->w, 512 * 1024);
    if (b->put == b->n && cw_sink_pending(b->s) == 0 && !b->done) {
        b->done = 1;
        b->t1 = cw_mono_s();
        uv_idle_stop(h);
        uv_close((uv_handle_t *)h, NULL);
        cw_conn_close(b->w, NULL, NULL);
    }
}

static void on_state(cw_conn *c, int ready, void *data) {
    (void)c;
    (void)ready;
    (void)data;
}

int main(int argc, char **argv) {
    cw_log_init("bench");
    bench b;
    memset(&b, 0, sizeof(b));
    b.n = argc > 2 ? atoi(argv[2]) : 200000;
    cw_config *cfg = cw_config_new();
    char err[256], port[32];
    snprintf(port, sizeof(port), "redis.port=%s", argc > 1 ? argv[1] : "6379");
    if (!cfg || cw_config_override(cfg, port, err, sizeof(err)) < 0 ||
        cw_config_override(cfg, "alerts.log_key=bench:alerts:log", err, sizeof(err)) < 0 ||
        cw_config_override(cfg, "daemon.log_level=warning", err, sizeof(err)) < 0 ||
        cw_config_finish(cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "alerts: %s\n", err);
        return 2;
    }
    uv_loop_init(&b.loop);
    b.s = cw_sink_new(cfg);
    b.w = cw_conn_new(&b.loop, cfg, "write", on_state, &b);
    cw_conn_start(b.w);
    uv_idle_init(&b.loop, &b.idle);
    b.idle.data = &b;
    uv_idle_start(&b.idle, on_idle);
    uv_run(&b.loop, UV_RUN_DEFAULT);
    uv_loop_close(&b.loop);
    double secs = b.t1 - b.t0;
    printf("alerts %d %.3f %.0f\n", b.n, secs, secs > 0 ? b.n / secs : 0);
    cw_sink_free(b.s);
    cw_config_free(cfg);
    return 0;
}
