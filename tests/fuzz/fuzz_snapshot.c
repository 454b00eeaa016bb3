/* libFuzzer target: the snapshot loaders. The input is a snapshot body;
 * the target seals it (header and checksum, so that the fuzzer gets past
 * the checksum and into the parsers) and loads it as the daemon does:
 * cases, counters, alert states, queued alerts. Whatever the bytes: no
 * crash, leak or UB; a load either succeeds or is refused. At start it
 * writes a real snapshot body into the corpus directory as a seed. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../../daemon/cw_cases.h"
#include "../../daemon/cw_config.h"
#include "../../daemon/cw_ind.h"
#include "../../daemon/cw_log.h"
#include "../../daemon/cw_rules.h"
#include "../../daemon/cw_sink.h"
#include "../../daemon/cw_snap.h"

static cw_config *cfg;
static cw_clock_rules clocks;

static void setup(void) {
    cw_log_level = 0;
    cfg = cw_config_new();
    memset(&clocks, 0, sizeof(clocks));
    for (int k = 0; k < CW_NCLOCKS; k++) {
        cw_clock_rule *c = &clocks.k[k];
        c->enabled = 1, c->warn_days = 3, c->urgent_days = 1, c->days = 7, c->holidays_extend = 1;
        c->days_detained = c->days_complex = 7;
    }
    clocks.k[CW_CLOCK_PROSECUTION_REVIEW].months = clocks.k[CW_CLOCK_SUPPLEMENTARY].months = 1;
    clocks.k[CW_CLOCK_LETTER_SUBSTANTIVE].months = 1;
    clocks.k[CW_CLOCK_STALE].days = 180;
}

static void no_emit(const char *scope, const char *period, const uint64_t *counters, int64_t event_ts,
                    const char *const *fields, const char *const *values, size_t n, void *data) {
    (void)scope, (void)period, (void)counters, (void)event_ts, (void)fields, (void)values, (void)n, (void)data;
}

static void ignore(const cw_alert *a, void *data) {
    (void)a, (void)data;
}

static int load(const uint8_t *body, size_t len) {
    uint8_t *img;
    size_t n = cw_snap_image(body, len, &img);
    if (!n) return -1;
    char err[256];
    cw_snap_reader r;
    cw_cases *cases = cw_cases_new(64, 480, &clocks, NULL);
    cw_ind *ind = cw_ind_new(480, 30, 8);
    cw_rules *rules = cw_rules_new(cfg, err, sizeof(err));
    cw_sink *sink = cw_sink_new(cfg);
    int ok = cw_snap_reader_init(&r, img, n, err, sizeof(err)) == 0 && cw_cases_load(cases, &r) == 0 &&
             cw_ind_load(ind, &r) == 0 && cw_rules_load(rules, &r) == 0 && cw_sink_load(sink, &r) == 0;
    if (ok) { /* what loaded must work */
        cw_cases_advance(cases, 20000);
        cw_ind_flush(ind, no_emit, NULL, 0);
    }
    cw_sink_free(sink);
    cw_rules_free(rules);
    cw_ind_free(ind);
    cw_cases_free(cases);
    free(img);
    return ok ? 0 : -1;
}

/* A real body: a few cases with clocks, counters, an alert state. */
static void write_seed(const char *dir) {
    char path[512];
    snprintf(path, sizeof(path), "%s/real-state", dir);
    struct stat st;
    if (stat(path, &st) == 0) return;
    cw_cases *cases = cw_cases_new(64, 480, &clocks, NULL);
    cw_ind *ind = cw_ind_new(480, 30, 8);
    char err[256];
    cw_rules *rules = cw_rules_new(cfg, err, sizeof(err));
    cw_sink *sink = cw_sink_new(cfg);
    for (int i = 0; i < 5; i++) {
        cw_event ev;
        memset(&ev, 0, sizeof(ev));
        ev.v = 1, ev.n = 1, ev.ts = 1577840400000LL + i * 86400000LL;
        ev.type = i == 4 ? CW_EV_CASE_CLOSED : i % 2 ? CW_EV_PROSECUTION_ACCEPTED : CW_EV_ARREST_ACCEPTED;
        snprintf(ev.id, sizeof(ev.id), "seed-%d", i);
        snprintf(ev.case_id, sizeof(ev.case_id), "南检刑诉受[2020]%d号", i % 3);
        snprintf(ev.unit, sizeof(ev.unit), "410923");
        snprintf(ev.pros, sizeof(ev.pros), "P00%d", i);
        cw_case_facts f;
        cw_cases_apply(cases, &ev, &f);
        cw_ind_apply(ind, &ev, &f);
    }
    cw_rules_system(rules, "system.capacity", "max_scopes", 1, "red", "容量预警", "seed", 0, ignore, NULL);
    char tmp[520];
    snprintf(tmp, sizeof(tmp), "%s.snap", path);
    cw_snap_writer *w = cw_snap_writer_open(tmp, err, sizeof(err));
    if (w) {
        cw_cases_save(cases, w);
        cw_ind_save(ind, w);
        cw_rules_save(rules, w);
        cw_sink_save(sink, w);
        size_t size;
        if (cw_snap_writer_commit(w, &size, err, sizeof(err)) == 0) {
            size_t len;
            uint8_t *img = cw_snap_read_file(tmp, &len);
            FILE *f = fopen(path, "wb");
            if (img && f && len > 20) fwrite(img + 12, 1, len - 20, f); /* the body: no header, no checksum */
            if (f) fclose(f);
            free(img);
        }
        remove(tmp);
    }
    cw_sink_free(sink);
    cw_rules_free(rules);
    cw_ind_free(ind);
    cw_cases_free(cases);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    setup();
    for (int i = 1; i < *argc; i++) {
        struct stat st;
        if ((*argv)[i][0] != '-' && stat((*argv)[i], &st) == 0 && S_ISDIR(st.st_mode)) write_seed((*argv)[i]);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    load(data, size);
    return 0;
}
