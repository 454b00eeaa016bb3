/* The replay's read path without the engine: an upper bound on how fast
 * casewatchd --replay could go if applying an event cost nothing (the
 * daemon also pauses reading at its flush points, and looks at each stream
 * check's reply; this does neither). Reads the whole stream as a
 * replay does (cw_replay_read: the stream check and XREAD COUNT [stream]
 * batch in one round trip on a worker, the reply parsed into a cw_batch),
 * and with --decode also has each batch decoded on another worker while
 * the next is read, as the daemon does, at most 3 batches ahead. Nothing
 * is applied. Prints "entries seconds entries/s"; prints nothing and
 * exits 1 when a read fails or the stream is missing or empty.
 * Usage: readpath PORT [--decode] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <uv.h>

#include "../../daemon/cw_batch.h"
#include "../../daemon/cw_config.h"
#include "../../daemon/cw_daemon.h"
#include "../../daemon/cw_replay_read.h"

#define AHEAD 3

typedef struct slot {
    uv_work_t work;
    cw_batch *b;
    int busy; /* being read or decoded */
} slot;

static struct {
    uv_loop_t *loop;
    cw_config *cfg;
    cw_replay_read *rr;
    slot slots[AHEAD];
    int decode, reading, done, failed;
    int decoding; /* batches being decoded */
    char pos[64];
    long long entries;
} g;

static void read_next(void);

/* Once: the reader is freed after this, from the loop. */
static void close_reader(void) {
    cw_replay_read_close(g.rr);
    g.rr = NULL;
}

static void decode_work(uv_work_t *w) {
    cw_batch_decode(((slot *)w->data)->b);
}

static void decode_done(uv_work_t *w, int status) {
    (void)status;
    ((slot *)w->data)->busy = 0;
    g.decoding--;
    read_next();
}

static void on_read(cw_batch *b, const cw_replay_read_result *res, void *data) {
    (void)b;
    slot *s = data;
    g.reading = 0;
    if (!res->ok) {
        fprintf(stderr, "readpath: read failed: %s\n", res->why);
        g.failed = 1;
        s->busy = 0;
        read_next(); /* closes once no decode is left */
        return;
    }
    if (!res->stream && !g.entries) {
        fprintf(stderr, "readpath: no entries to read (no stream, or an empty one)\n");
        g.failed = 1;
    }
    g.entries += (long long)res->n;
    if (res->last) snprintf(g.pos, sizeof(g.pos), "%s", res->last);
    if (res->n < (size_t)g.cfg->stream_batch) g.done = 1;
    int decode = g.decode && res->n;
    if (decode) g.decoding++; /* counted before read_next, which may close */
    else s->busy = 0;
    read_next(); /* before the decode: libuv's pool takes work in the order it is queued */
    if (decode && uv_queue_work(g.loop, &s->work, decode_work, decode_done) != 0) {
        fprintf(stderr, "readpath: cannot queue a decode\n");
        g.failed = 1;
        g.decoding--;
        s->busy = 0;
        read_next();
    }
}

static void read_next(void) {
    if (!g.rr) return;
    if (g.done || g.failed) {
        if (!g.decoding && !g.reading) close_reader();
        return;
    }
    if (g.reading) return;
    for (int i = 0; i < AHEAD; i++) {
        slot *s = &g.slots[i];
        if (s->busy) continue;
        cw_batch_clear(s->b);
        if (cw_replay_read_start(g.rr, g.pos, s->b, on_read, s) < 0) return;
        s->busy = 1;
        g.reading = 1;
        return;
    }
}

static void on_ready(void *data) {
    (void)data;
    read_next();
}

int main(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "--help") == 0) {
        fprintf(stderr, "usage: readpath PORT [--decode]\n");
        return 2;
    }
    g.decode = argc > 2 && strcmp(argv[2], "--decode") == 0;
    g.cfg = cw_config_new();
    char err[256], port[64];
    snprintf(port, sizeof(port), "redis.port=%s", argv[1]);
    if (!g.cfg || cw_config_override(g.cfg, port, err, sizeof(err)) < 0 || cw_config_finish(g.cfg, err, sizeof(err)) < 0)
        return fprintf(stderr, "readpath: %s\n", err), 2;
    uv_loop_t loop;
    uv_loop_init(&loop);
    g.loop = &loop;
    for (int i = 0; i < AHEAD; i++) {
        if (!(g.slots[i].b = cw_batch_new())) return fprintf(stderr, "readpath: out of memory\n"), 1;
        g.slots[i].work.data = &g.slots[i];
    }
    if (!(g.rr = cw_replay_read_new(&loop, g.cfg, cw_daemon_stream_check, on_ready, NULL)))
        return fprintf(stderr, "readpath: out of memory\n"), 1;
    snprintf(g.pos, sizeof(g.pos), "0-0");
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    read_next();
    uv_run(&loop, UV_RUN_DEFAULT);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    if (!g.failed) printf("%lld %.3f %.0f\n", g.entries, s, (double)g.entries / s);
    uv_loop_close(&loop);
    for (int i = 0; i < AHEAD; i++) cw_batch_free(g.slots[i].b);
    cw_config_free(g.cfg);
    return g.failed;
}
