/* Integration tests of casewatchd's data path against a real redis-server:
 * stream in, exact indicators out, nothing lost. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../proto/cw_event.h"
#include "cw_testredis.h"


static void xadd_event(redisContext *c, const cw_event *ev) {
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    cw_event_encode(ev, &sb);
    redisAppendCommand(c, "XADD casewatch:events * e %b", sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
}

static void drain(redisContext *c, int n) {
    for (int i = 0; i < n; i++) {
        redisReply *r;
        assert_int_equal(redisGetReply(c, (void **)&r), REDIS_OK);
        assert_int_not_equal(r->type, REDIS_REPLY_ERROR);
        freeReplyObject(r);
    }
}


/* INDICATORS.md §2: 许昌 2016-2019, 9265 arrest reviews, 14640 prosecution
 * reviews of which 6220 already arrested, 4372 extensions, 3825 returns,
 * 1249 appeals, 184 others: 案件比 1 : 27315/17685 = 1 : 1.545. */
static void the_published_xuchang_figures_give_1_to_1_545(void **state) {
    (void)state;
    redisContext *c = cw_testredis_connect(&cw_test_redis);
    freeReplyObject(redisCommand(c, "FLUSHALL"));
    const int64_t t0 = 1514822400000LL; /* 2018-01-02 00:00 +08:00 */
    const struct {
        cw_event_type t;
        int count;
        int arrested;
    } parts[] = {
        {CW_EV_ARREST_ACCEPTED, 9265, 0},         {CW_EV_PROSECUTION_ACCEPTED, 6220, 1},
        {CW_EV_PROSECUTION_ACCEPTED, 14640 - 6220, 0}, {CW_EV_PROSECUTION_EXTENDED, 4372, 0},
        {CW_EV_PROSECUTION_RETURNED, 3825, 0},    {CW_EV_TRIAL_APPEAL, 1249, 0},
        {CW_EV_TRIAL_PROTEST, 100, 0},            {CW_EV_ARREST_RECONSIDERATION, 84, 0},
    };
    int total = 0;
    for (size_t p = 0; p < sizeof(parts) / sizeof(parts[0]); p++) {
        for (int i = 0; i < parts[p].count; i++, total++) {
            char id[32], cs[32];
            snprintf(id, sizeof(id), "xc-%d", total);
            snprintf(cs, sizeof(cs), "许检刑[2018]%d号", total);
            cw_event ev = cw_test_event(id, cs, "411000", parts[p].t, t0 + (int64_t)(total % 360) * 86400000LL);
            if (parts[p].arrested) {
                ev.present |= CW_F_ARRESTED;
                ev.flags |= CW_F_ARRESTED;
            }
            xadd_event(c, &ev);
            if (total % 1000 == 999) drain(c, 1000);
        }
    }
    drain(c, total % 1000);
    pid_t pid = cw_test_daemon_start(NULL);
    cw_test_wait_read(c, total);
    cw_test_daemon_stop(pid);
    const char *scopes[] = {"unit:411000", "region:4110", "region:41", "nation"};
    for (int s = 0; s < 4; s++) {
        char key[128];
        snprintf(key, sizeof(key), "casewatch:ind:%s:2018", scopes[s]);
        assert_int_equal(cw_test_hget_ll(c, key, "cases"), 17685);
        assert_int_equal(cw_test_hget_ll(c, key, "extra_items"), 9630);
        char *ratio = cw_test_hget(c, key, "case_item_ratio");
        assert_string_equal(ratio, "1.5445"); /* 27315/17685 = 1.54453 */
        char three[16];
        snprintf(three, sizeof(three), "%.3f",
                 (double)(cw_test_hget_ll(c, key, "cases") + cw_test_hget_ll(c, key, "extra_items")) / (double)cw_test_hget_ll(c, key, "cases"));
        assert_string_equal(three, "1.545"); /* the published 1 : 1.545 */
        free(ratio);
    }
    char *rr = cw_test_hget(c, "casewatch:ind:unit:411000:2018", "return_rate");
    assert_string_equal(rr, "0.2613"); /* 3825 / 14640 */
    free(rr);
    assert_int_equal(cw_test_hget_ll(c, "casewatch:daemon:main", "events"), total);
    assert_int_equal(cw_test_hget_ll(c, "casewatch:daemon:main", "lag"), 0);
    redisFree(c);
}

/* A generated stream with duplicates, late events and bad entries; the
 * expected counters are computed here, independently of the daemon. */
static void a_generated_stream_matches_an_independent_computation(void **state) {
    (void)state;
    redisContext *c = cw_testredis_connect(&cw_test_redis);
    freeReplyObject(redisCommand(c, "FLUSHALL"));
    const char *units[] = {"410923", "410922", "410900"};
    const int64_t q3 = 1593532800000LL; /* 2020-07-01 00:00 +08:00 */
    enum { NCASES = 400 };
    long long exp_cases[3] = {0}, exp_extra[3] = {0}, exp_plea[3] = {0}, exp_decided[3] = {0};
    long long exp_p017_decided = 0;
    int sent = 0, dupes = 0, applied = 0;
    unsigned seed = 42;
#define RND() (seed = seed * 1103515245u + 12345u, (seed >> 8))
    for (int k = 0; k < NCASES; k++) {
        int u = (int)(RND() % 3);
        char cs[48];
        snprintf(cs, sizeof(cs), "刑诉受[2020]%d号", k);
        int64_t ts = q3 + (int64_t)(RND() % (80 * 86400)) * 1000;
        int arrested = RND() % 2;
        char id[32];
        snprintf(id, sizeof(id), "g%d-a", k);
        cw_event ev;
        if (arrested) {
            ev = cw_test_event(id, cs, units[u], CW_EV_ARREST_ACCEPTED, ts);
            xadd_event(c, &ev), sent++, applied++;
            exp_cases[u]++;
        }
        snprintf(id, sizeof(id), "g%d-p", k);
        ev = cw_test_event(id, cs, units[u], CW_EV_PROSECUTION_ACCEPTED, ts + 86400000LL);
        if (arrested) ev.present |= CW_F_ARRESTED, ev.flags |= CW_F_ARRESTED;
        else exp_cases[u]++;
        xadd_event(c, &ev), sent++, applied++;
        if (RND() % 4 == 0) {
            snprintf(id, sizeof(id), "g%d-r", k);
            ev = cw_test_event(id, cs, units[u], CW_EV_PROSECUTION_RETURNED, ts + 5 * 86400000LL);
            xadd_event(c, &ev), sent++, applied++;
            exp_extra[u]++;
            /* a redelivery of the same id must not count */
            xadd_event(c, &ev), sent++, dupes++;
        }
        snprintf(id, sizeof(id), "g%d-d", k);
        ev = cw_test_event(id, cs, units[u], CW_EV_PROSECUTION_DECIDED, ts + 9 * 86400000LL);
        ev.decision = CW_DECISION_PROSECUTE;
        ev.n = 1 + RND() % 3;
        strcpy(ev.pros, k % 5 == 0 ? "P017" : "P001");
        strcpy(ev.dept, "第一检察部");
        if (RND() % 10 < 8) ev.present |= CW_F_PLEA, ev.flags |= CW_F_PLEA;
        /* decisions after the quarter fall in Q4 and must not count in Q3 */
        if (ev.ts < 1601481600000LL) {
            exp_decided[u] += ev.n;
            if (ev.flags & CW_F_PLEA) exp_plea[u] += ev.n;
            if (k % 5 == 0 && u == 0) exp_p017_decided += ev.n;
        }
        xadd_event(c, &ev), sent++, applied++;
    }
    /* late events: appended after everything else, belonging to Q3 */
    for (int k = 0; k < 20; k++) {
        char id[32], cs[32];
        snprintf(id, sizeof(id), "late-%d", k);
        snprintf(cs, sizeof(cs), "late-case-%d", k);
        cw_event ev = cw_test_event(id, cs, "410923", CW_EV_TRIAL_APPEAL, q3 + 86400000LL * k);
        xadd_event(c, &ev), sent++, applied++;
        exp_extra[0]++;
    }
    drain(c, sent);
    /* bad entries, raw */
    freeReplyObject(redisCommand(c, "XADD casewatch:events * e notmsgpack"));
    freeReplyObject(redisCommand(c, "XADD casewatch:events * x 1 y 2"));
    freeReplyObject(redisCommand(c, "XADD casewatch:events * e %b", "\x81\xa1v\x02", (size_t)4));
    sent += 3;

    pid_t pid = cw_test_daemon_start(NULL);
    cw_test_wait_read(c, sent);
    cw_test_daemon_stop(pid);
    for (int u = 0; u < 3; u++) {
        char key[128];
        snprintf(key, sizeof(key), "casewatch:ind:unit:%s:2020-Q3", units[u]);
        assert_int_equal(cw_test_hget_ll(c, key, "cases"), exp_cases[u]);
        assert_int_equal(cw_test_hget_ll(c, key, "extra_items"), exp_extra[u]);
        assert_int_equal(cw_test_hget_ll(c, key, "decided_persons"), exp_decided[u]);
        assert_int_equal(cw_test_hget_ll(c, key, "plea_persons"), exp_plea[u]);
        char want[32], *got = cw_test_hget(c, key, "case_item_ratio");
        snprintf(want, sizeof(want), "%.4f", (double)(exp_cases[u] + exp_extra[u]) / (double)exp_cases[u]);
        assert_string_equal(got, want);
        free(got);
        got = cw_test_hget(c, key, "plea_rate");
        snprintf(want, sizeof(want), "%.4f", (double)exp_plea[u] / (double)exp_decided[u]);
        assert_string_equal(got, want);
        free(got);
    }
    /* a prosecutor's and a department's scope, names kept in UTF-8 */
    assert_int_equal(cw_test_hget_ll(c, "casewatch:ind:pros:410923:P017:2020-Q3", "decided_persons"), exp_p017_decided);
    assert_true(cw_test_hget_ll(c, "casewatch:ind:dept:410923:第一检察部:2020-Q3", "decided_persons") > 0);
    assert_true(cw_test_hget_ll(c, "casewatch:ind:unit:410923:rolling-30d", "cases") >= 0);
    /* health */
    assert_int_equal(cw_test_hget_ll(c, "casewatch:daemon:main", "duplicates"), dupes);
    assert_int_equal(cw_test_hget_ll(c, "casewatch:daemon:main", "events"), applied);
    assert_int_equal(cw_test_hget_ll(c, "casewatch:daemon:main", "dead_lettered"), 3);
    assert_int_equal(cw_test_hget_ll(c, "casewatch:daemon:main", "open_cases"), NCASES + 20);
    assert_true(cw_test_hget_ll(c, "casewatch:daemon:main", "rss_bytes") > 0);
    /* dead letters keep their original fields, a reason and the source id */
    redisReply *r = redisCommand(c, "XRANGE casewatch:events:dead - +");
    assert_int_equal(r->elements, 3);
    const char *reasons[] = {"trailing bytes after the msgpack value", "entry has 2 fields, expected only 'e'", "only protocol version 1"};
    for (int i = 0; i < 3; i++) {
        redisReply *f = r->element[i]->element[1];
        int has_reason = 0, has_source = 0;
        for (size_t j = 0; j + 1 < f->elements; j += 2) {
            if (strcmp(f->element[j]->str, "reason") == 0) {
                has_reason = 1;
                if (!strstr(f->element[j + 1]->str, reasons[i]))
                    fail_msg("reason '%s' lacks '%s'", f->element[j + 1]->str, reasons[i]);
            }
            if (strcmp(f->element[j]->str, "source_id") == 0) has_source = 1;
        }
        assert_true(has_reason && has_source);
    }
    assert_string_equal(r->element[1]->element[1]->element[0]->str, "x"); /* original fields kept */
    freeReplyObject(r);
    redisFree(c);
#undef RND
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(the_published_xuchang_figures_give_1_to_1_545),
        cmocka_unit_test(a_generated_stream_matches_an_independent_computation),
    };
    return cmocka_run_group_tests_name("casewatchd data path", tests, cw_testredis_group_setup, cw_testredis_group_teardown);
}
