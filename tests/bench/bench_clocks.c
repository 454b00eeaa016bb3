/* bench_clocks [N]: how long the loop is held when the clock moves with N
 * open clocks (INDICATORS.md §4: lights judged at their boundary by one
 * heap of next changes, not a daily scan). Two shapes: N arrest reviews
 * started over 30 days (a day's boundary changes ~N/30 lights), and the
 * worst case, N started on one day (every light changes at one midnight);
 * and re-judging every clock under a new calendar (SIGHUP). No I/O:
 * the case table alone, a listener that counts. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../daemon/cw_calendar.h"
#include "../../daemon/cw_cases.h"
#include "../../daemon/cw_period.h"

static cw_event accepted(const char *id, const char *case_id, int64_t ts) {
    cw_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.v = 1, ev.type = CW_EV_ARREST_ACCEPTED, ev.ts = ts, ev.n = 1;
    snprintf(ev.id, sizeof(ev.id), "%s", id);
    snprintf(ev.case_id, sizeof(ev.case_id), "%s", case_id);
    memcpy(ev.unit, "410923", 7);
    return ev;
}

static long changes;

static void on_light(const cw_light *l, void *data) {
    (void)l, (void)data;
    changes++;
}

static cw_cases *table(const cw_clock_rules *k, cw_calendar *cal) {
    cw_case_listener l = {on_light, NULL, NULL};
    cw_cases *t = cw_cases_new(1000, 480, k, &l);
    cw_cases_set_calendar(t, cal);
    return t;
}

#define SLICE 2000 /* cw_engine.c's LIGHTS_SLICE: what the live daemon takes per turn of the loop */

/* The longest slice of cw_cases_advance_some over the days from `from`
 * to `to`, in ms; *whole: the longest day taken at once, as before. */
static double worst_advance(cw_cases *t, int64_t from, int64_t to, long *most, double *whole) {
    double worst = 0;
    *most = 0, *whole = 0;
    for (int64_t d = from; d <= to; d++) {
        long before = changes;
        double day0 = cw_mono_s();
        int more = 1;
        while (more) {
            double t0 = cw_mono_s();
            more = cw_cases_advance_some(t, d, SLICE);
            double ms = (cw_mono_s() - t0) * 1000;
            if (ms > worst) worst = ms;
        }
        double day_ms = (cw_mono_s() - day0) * 1000;
        if (day_ms > *whole) *whole = day_ms;
        if (changes - before > *most) *most = changes - before;
    }
    return worst;
}

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    char err[256];
    cw_calendar *cal = cw_calendar_load("systemd/holidays-cn.conf", err, sizeof(err));
    if (!cal) return fprintf(stderr, "%s\n", err), 1;
    cw_clock_rules k;
    memset(&k, 0, sizeof(k));
    cw_clock_rule *ar = &k.k[CW_CLOCK_ARREST_REVIEW];
    ar->enabled = 1, ar->warn_days = 3, ar->urgent_days = 1, ar->days = 15, ar->days_detained = 7;
    ar->days_complex = 20, ar->holidays_extend = 1;
    int64_t day0 = cw_period_day(cw_period_local_midnight(2021, 3, 1, 480), 480);
    for (int shape = 0; shape < 2; shape++) {
        cw_cases *t = table(&k, cal);
        cw_cases_advance(t, day0);
        for (long i = 0; i < n; i++) {
            char id[32], cs[32];
            snprintf(id, sizeof(id), "e%ld", i);
            snprintf(cs, sizeof(cs), "c%ld", i);
            int64_t day = shape ? day0 : day0 + i % 30;
            cw_event ev = accepted(id, cs, cw_period_day_start(day, 480) + 9 * 3600000LL);
            cw_case_facts f;
            if (shape == 0) cw_cases_advance(t, day);
            if (cw_cases_apply(t, &ev, &f) != 0) return 1;
        }
        long most;
        double whole, worst = worst_advance(t, day0 + 1, day0 + 60, &most, &whole);
        printf("%ld open clocks %s: busiest day %ld light changes, %.1f ms in all; longest slice (%d cases) %.1f ms\n",
               n, shape ? "started on one day (worst case)" : "started over 30 days", most, whole, SLICE, worst);
        if (shape == 1) {
            /* SIGHUP with a new calendar: every running clock judged again */
            cw_cases *t2 = table(&k, cal);
            cw_cases_advance(t2, day0);
            for (long i = 0; i < n; i++) {
                char id[32], cs[32];
                snprintf(id, sizeof(id), "f%ld", i);
                snprintf(cs, sizeof(cs), "d%ld", i);
                cw_event ev = accepted(id, cs, cw_period_day_start(day0, 480) + 9 * 3600000LL);
                cw_case_facts f;
                if (cw_cases_apply(t2, &ev, &f) != 0) return 1;
            }
            double t0 = cw_mono_s();
            cw_cases_set_calendar(t2, NULL);
            double set_ms = (cw_mono_s() - t0) * 1000;
            long most2;
            double whole2, worst2 = worst_advance(t2, day0, day0, &most2, &whole2);
            printf("%ld open clocks re-judged under a new calendar (SIGHUP): %.1f ms to mark them, then %.1f ms in "
                   "slices of at most %.1f ms\n",
                   n, set_ms, whole2, worst2);
            cw_cases_free(t2);
        }
        cw_cases_free(t);
    }
    cw_calendar_free(cal);
    return 0;
}
