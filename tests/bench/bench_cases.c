/* Memory per open case: applies N arrest.accepted events for N distinct
 * cases (ids and case numbers shaped like real ones) to the case table
 * and the counters, as the daemon does, and prints the RSS growth per
 * case; then one more event per case (a second remembered id) and the
 * time per event. Usage: bench_cases [N] (default 1000000).
 *
 * bench_cases load N...: for each N, a table of N open cases (one
 * arrest.accepted each) is saved to a snapshot, then loaded into a fresh
 * table three times; prints the load times (file read, check and
 * cw_cases_load) and their median. The saved entries come in the slot
 * order of the table that wrote them, the order that once made a load of
 * 5M cases take 428 s. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../daemon/cw_cases.h"
#include "../../daemon/cw_ind.h"
#include "../../daemon/cw_period.h"
#include "../../daemon/cw_snap.h"

#include <sys/wait.h>

static long rss_bytes(void) {
    long pages = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &rss) != 2) rss = 0;
        fclose(f);
    }
    return rss * sysconf(_SC_PAGESIZE);
}

static const char *const units[] = {"410923", "410922", "410900", "410902", "410926", "410927", "410928"};

static void event(cw_event *ev, long i, cw_event_type t, int step) {
    memset(ev, 0, sizeof(*ev));
    ev->v = 1;
    ev->type = t;
    ev->n = 1;
    ev->ts = 1577808000000LL + (int64_t)(i % 360) * 86400000LL + step * 3600000LL;
    snprintf(ev->id, sizeof(ev->id), "XJ-2020-%08ld-%d", i, step);
    snprintf(ev->case_id, sizeof(ev->case_id), "南检刑诉受[2020]%ld号", i);
    snprintf(ev->unit, sizeof(ev->unit), "%s", units[i % 7]);
    snprintf(ev->dept, sizeof(ev->dept), "第%s检察部", i % 2 ? "一" : "二");
    snprintf(ev->pros, sizeof(ev->pros), "P%03ld", i % 40);
    if (t == CW_EV_ARREST_DECIDED) ev->decision = CW_DECISION_APPROVE;
}

/* the shipped clocks: every open case runs a stale clock, arrest reviews
 * their own */
static void shipped_clocks(cw_clock_rules *clocks) {
    memset(clocks, 0, sizeof(*clocks));
    for (int k = 0; k < CW_NCLOCKS; k++)
        clocks->k[k].enabled = 1, clocks->k[k].warn_days = 3, clocks->k[k].urgent_days = 1, clocks->k[k].days = 30;
    cw_clock_rule *ar = &clocks->k[CW_CLOCK_ARREST_REVIEW], *pr = &clocks->k[CW_CLOCK_PROSECUTION_REVIEW];
    ar->days = 15, ar->days_detained = 7, ar->days_complex = 20;
    pr->days = 0, pr->months = 1, pr->days_fast = 10, pr->days_fast_extended = 15, pr->extension_days = 15;
    clocks->k[CW_CLOCK_SUPPLEMENTARY].days = 0, clocks->k[CW_CLOCK_SUPPLEMENTARY].months = 1;
    clocks->k[CW_CLOCK_LETTER_PROCEDURAL].days = 7;
    clocks->k[CW_CLOCK_LETTER_SUBSTANTIVE].days = 0, clocks->k[CW_CLOCK_LETTER_SUBSTANTIVE].months = 3;
    clocks->k[CW_CLOCK_STALE].days = 180, clocks->k[CW_CLOCK_STALE].warn_days = 0, clocks->k[CW_CLOCK_STALE].urgent_days = 0;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Saves a table of n open cases and loads it back three times. */
static int bench_load(long n) {
    cw_clock_rules clocks;
    shipped_clocks(&clocks);
    cw_cases *cases = cw_cases_new(1000000, 480, &clocks, NULL);
    if (!cases) return 1;
    cw_event ev;
    cw_case_facts f;
    for (long i = 0; i < n; i++) {
        event(&ev, i, CW_EV_ARREST_ACCEPTED, 0);
        if (cw_cases_apply(cases, &ev, &f) != 0) return 1;
    }
    char err[256], path[64];
    snprintf(path, sizeof(path), "/tmp/cw-bench-load-%d.snap", (int)getpid());
    cw_snap_writer *w = cw_snap_writer_open(path, err, sizeof(err));
    if (!w) return fprintf(stderr, "%s\n", err), 1;
    cw_cases_save(cases, w);
    size_t size = 0;
    if (cw_snap_writer_commit(w, &size, err, sizeof(err)) < 0) return fprintf(stderr, "%s\n", err), 1;
    cw_cases_free(cases);
    double runs[3];
    for (int run = 0; run < 3; run++) {
        double l0 = cw_mono_s();
        size_t len;
        char *buf = cw_snap_read_file(path, &len);
        cw_snap_reader r;
        cw_cases *c2 = cw_cases_new(1000000, 480, &clocks, NULL);
        if (!buf || !c2 || cw_snap_reader_init(&r, buf, len, err, sizeof(err)) < 0 || cw_cases_load(c2, &r) < 0)
            return fprintf(stderr, "load failed: %s\n", err), 1;
        runs[run] = cw_mono_s() - l0;
        if (cw_cases_open(c2) != (size_t)n) return fprintf(stderr, "loaded %zu of %ld\n", cw_cases_open(c2), n), 1;
        free(buf);
        cw_cases_free(c2);
    }
    unlink(path);
    double sorted[3] = {runs[0], runs[1], runs[2]};
    qsort(sorted, 3, sizeof(double), cmp_double);
    printf("snapshot load %ld open cases: %.2f s median (runs %.2f, %.2f, %.2f s; %.1f MiB)\n", n, sorted[1], runs[0],
           runs[1], runs[2], (double)size / 1048576.0);
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "load") == 0) {
        for (int i = 2; i < argc; i++)
            if (bench_load(atol(argv[i])) != 0) return 1;
        return 0;
    }
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    cw_clock_rules clocks;
    shipped_clocks(&clocks);
    cw_cases *cases = cw_cases_new(1000000, 480, &clocks, NULL);
    cw_ind *ind = cw_ind_new(480, 30, 8);
    if (!cases || !ind) return 1;
    long before = rss_bytes();
    double t0 = cw_mono_s();
    cw_event ev;
    cw_case_facts f;
    for (long i = 0; i < n; i++) {
        event(&ev, i, CW_EV_ARREST_ACCEPTED, 0);
        if (cw_cases_apply(cases, &ev, &f) != 0 || cw_ind_apply(ind, &ev, &f) != 0) return 1;
    }
    double t1 = cw_mono_s();
    long after = rss_bytes();
    printf("open cases            %zu\n", cw_cases_open(cases));
    printf("RSS growth            %.1f MiB\n", (double)(after - before) / 1048576.0);
    printf("bytes per open case   %.0f (one event each: counters, two running clocks and their light entries included)\n",
           (double)(after - before) / (double)n);
    for (long i = 0; i < n; i++) {
        event(&ev, i, CW_EV_ARREST_DECIDED, 1);
        if (cw_cases_apply(cases, &ev, &f) != 0 || cw_ind_apply(ind, &ev, &f) != 0) return 1;
    }
    double t2 = cw_mono_s();
    long after2 = rss_bytes();
    printf("bytes per open case   %.0f (two events each)\n", (double)(after2 - before) / (double)n);
    printf("apply                 %.0f ns/event (table + counters, no I/O)\n", (t1 - t0 + t2 - t1) / (2.0 * n) * 1e9);
    /* snapshots: what fork() holds the loop for (the periodic writer runs
     * in the child), the write itself, and loading it back */
    double f0 = cw_mono_s();
    pid_t pid = fork();
    if (pid == 0) _exit(0);
    double fork_ms = (cw_mono_s() - f0) * 1000;
    waitpid(pid, NULL, 0);
    char err[256];
    const char *path = "/tmp/cw-bench.snap";
    double w0 = cw_mono_s();
    cw_snap_writer *w = cw_snap_writer_open(path, err, sizeof(err));
    if (!w) return fprintf(stderr, "%s\n", err), 1;
    cw_cases_save(cases, w);
    cw_ind_save(ind, w);
    size_t size = 0;
    if (cw_snap_writer_commit(w, &size, err, sizeof(err)) < 0) return fprintf(stderr, "%s\n", err), 1;
    double write_s = cw_mono_s() - w0;
    cw_ind_free(ind);
    cw_cases_free(cases);
    double l0 = cw_mono_s();
    size_t len;
    char *buf = cw_snap_read_file(path, &len);
    cw_snap_reader r;
    cw_cases *c2 = cw_cases_new(1000000, 480, &clocks, NULL);
    cw_ind *i2 = cw_ind_new(480, 30, 8);
    if (!buf || cw_snap_reader_init(&r, buf, len, err, sizeof(err)) < 0 || cw_cases_load(c2, &r) < 0 ||
        cw_ind_load(i2, &r) < 0)
        return fprintf(stderr, "load failed: %s\n", err), 1;
    double load_s = cw_mono_s() - l0;
    printf("snapshot              %.1f MiB; fork() holds the loop %.1f ms; written (write+fsync+rename) in %.2f s; "
           "loaded in %.2f s (%zu open cases)\n",
           (double)size / 1048576.0, fork_ms, write_s, load_s, cw_cases_open(c2));
    free(buf);
    unlink(path);
    cw_ind_free(i2);
    cw_cases_free(c2);
    return 0;
}
