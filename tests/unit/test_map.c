/* Unit tests of cw_map filled in the orders that once clustered it (the
 * slot order of another map: a snapshot load, a rules reload) and of the
 * open-case table's snapshot load that relies on it. How long a load
 * takes is measured by `make bench` (bench_cases load); these tests
 * assert what a regression would change: every key still found, and no
 * insert walking a cluster (cw_map_longest_insert). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../daemon/cw_cases.h"
#include "../../daemon/cw_map.h"
#include "../../daemon/cw_snap.h"
#include "../integration/cw_testredis.h"

/* A healthy map's longest insert at a load of 3/4 is a few hundred slots
 * at most; the clustered copies this guards against walked 27,000+ for
 * 300,000 keys. */
#define LONGEST_OK 1000

static int key_of(long i, char *out, size_t outlen) {
    return snprintf(out, outlen, "410923|南检刑诉受[2020]%ld号", i);
}

static cw_map *filled(long n) {
    cw_map *m = cw_map_new();
    assert_non_null(m);
    char k[64];
    for (long i = 0; i < n; i++) {
        int len = key_of(i, k, sizeof(k));
        assert_int_equal(cw_map_put(m, k, (size_t)len, (void *)(intptr_t)(i + 1)), 0);
    }
    return m;
}

/* Copies src into a new map in src's slot order (reserving first when
 * asked) and checks that every key of src is found with its value. */
static cw_map *copied(const cw_map *src, long n, int reserve) {
    cw_map *m = cw_map_new();
    assert_non_null(m);
    if (reserve) assert_int_equal(cw_map_reserve(m, (size_t)n), 0);
    size_t pos = 0, len;
    const char *k;
    void *v;
    while (cw_map_next(src, &pos, &k, &len, &v)) assert_int_equal(cw_map_put(m, k, len, v), 0);
    assert_int_equal(cw_map_size(m), (size_t)n);
    char key[64];
    for (long i = 0; i < n; i++) {
        int kl = key_of(i, key, sizeof(key));
        assert_true(cw_map_get(m, key, (size_t)kl) == (void *)(intptr_t)(i + 1));
    }
    return m;
}

/* 300,000 keys sit in 524,288 slots (0.57 full) and 360,000 (0.69): the
 * loads at which, with nested homes, the copy into a map still growing
 * swept its homes twice and piled up. */
/* A lookup by a hash worked out ahead (cw_map_hash) finds what a plain
 * lookup finds, and hints of lookups to come change nothing. */
static void a_lookup_by_a_hash_worked_out_ahead_finds_what_a_plain_lookup_finds(void **state) {
    (void)state;
    cw_map *m = filled(5000);
    for (long i = 0; i < 6000; i++) { /* the last 1000 are absent */
        char key[64];
        int len = key_of(i, key, sizeof(key));
        uint64_t h = cw_map_hash(key, (size_t)len);
        cw_map_prefetch(m, h, 0);
        cw_map_prefetch(m, h, 1);
        assert_ptr_equal(cw_map_get_hashed(m, key, (size_t)len, h), cw_map_get(m, key, (size_t)len));
        assert_true((cw_map_get(m, key, (size_t)len) != NULL) == (i < 5000));
    }
    assert_int_equal(cw_map_size(m), 5000);
    cw_map_free(m);
}

static void a_map_filled_in_the_slot_order_of_a_bigger_map_finds_every_key_without_clustering(void **state) {
    (void)state;
    const long sizes[] = {300000, 360000};
    for (int s = 0; s < 2; s++) {
        cw_map *src = filled(sizes[s]);
        cw_map *dst = copied(src, sizes[s], 0);
        if (cw_map_longest_insert(dst) >= LONGEST_OK)
            fail_msg("%ld keys: an insert walked %zu slots", sizes[s], cw_map_longest_insert(dst));
        cw_map_free(dst);
        cw_map_free(src);
    }
}

/* The snapshot load's case: the copy reserves its count first, so it has
 * the capacity of the map it was saved from and gets the keys in its own
 * home order: each insert ends the run it extends. */
static void a_map_that_reserved_its_count_takes_another_maps_slot_order_in_order(void **state) {
    (void)state;
    const long n = 300000;
    cw_map *src = filled(n);
    cw_map *dst = copied(src, n, 1);
    if (cw_map_longest_insert(dst) > cw_map_longest_insert(src))
        fail_msg("in order, an insert walked %zu slots; in random order %zu", cw_map_longest_insert(dst),
                 cw_map_longest_insert(src));
    cw_map_free(dst);
    cw_map_free(src);
}

/* Reserving on a map that holds keys keeps them, and a count no memory
 * could hold is refused with the map unchanged. */
static void reserving_keeps_every_key_and_refuses_the_impossible(void **state) {
    (void)state;
    cw_map *m = filled(1000);
    assert_int_equal(cw_map_reserve(m, 100000), 0);
    assert_int_equal(cw_map_reserve(m, 10), 0); /* never shrinks */
    assert_int_equal(cw_map_reserve(m, SIZE_MAX), -1);
    assert_int_equal(cw_map_size(m), 1000);
    char k[64];
    for (long i = 0; i < 1000; i++) {
        int len = key_of(i, k, sizeof(k));
        assert_true(cw_map_get(m, k, (size_t)len) == (void *)(intptr_t)(i + 1));
    }
    int len = key_of(5000, k, sizeof(k));
    assert_int_equal(cw_map_put(m, k, (size_t)len, (void *)1), 0);
    assert_int_equal(cw_map_size(m), 1001);
    cw_map_free(m);
}

/* Cases open and close in a table that reserved room and so never grows:
 * deletes shift keys back across the end of the table many times. After
 * 400,000 random puts and deletes over 20,000 keys the map holds exactly
 * what a plain array says, and a copy of it in its slot order too. */
static void insert_and_delete_churn_in_a_reserved_map_keeps_every_key(void **state) {
    (void)state;
    enum { KEYS = 20000 };
    static uintptr_t want[KEYS];
    memset(want, 0, sizeof(want));
    cw_map *m = cw_map_new();
    assert_int_equal(cw_map_reserve(m, KEYS), 0);
    uint64_t x = 0x2545F4914F6CDD1DULL;
    size_t live = 0;
    char key[64];
    for (int op = 0; op < 400000; op++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        long k = (long)(x % KEYS);
        int n = key_of(k, key, sizeof(key));
        if ((x >> 40) % 2 == 0) {
            assert_true(cw_map_del(m, key, (size_t)n) == (void *)want[k]);
            if (want[k]) live--;
            want[k] = 0;
        } else {
            if (!want[k]) live++;
            want[k] = (uintptr_t)op + 1;
            assert_int_equal(cw_map_put(m, key, (size_t)n, (void *)want[k]), 0);
        }
    }
    assert_int_equal(cw_map_size(m), live);
    for (long i = 0; i < KEYS; i++) {
        int n = key_of(i, key, sizeof(key));
        assert_true(cw_map_get(m, key, (size_t)n) == (void *)want[i]);
    }
    assert_true(cw_map_longest_insert(m) < LONGEST_OK);
    cw_map *c = cw_map_new();
    size_t pos = 0, len;
    const char *k;
    void *v;
    while (cw_map_next(m, &pos, &k, &len, &v)) assert_int_equal(cw_map_put(c, k, len, v), 0);
    assert_int_equal(cw_map_size(c), live);
    for (long i = 0; i < KEYS; i++) {
        int n = key_of(i, key, sizeof(key));
        assert_true(cw_map_get(c, key, (size_t)n) == (void *)want[i]);
    }
    cw_map_free(c);
    cw_map_free(m);
}

/* ---- the open-case table's snapshot ------------------------------------ */

static cw_clock_rules clocks(void) {
    cw_clock_rules k;
    memset(&k, 0, sizeof(k));
    cw_clock_rule *r = &k.k[CW_CLOCK_ARREST_REVIEW];
    r->enabled = 1, r->days = 15, r->days_detained = 7, r->days_complex = 20;
    return k;
}

static char *save(const cw_cases *t, size_t *len) {
    char path[64], err[256];
    snprintf(path, sizeof(path), "/tmp/cw-test-map-%d.snap", (int)getpid());
    cw_snap_writer *w = cw_snap_writer_open(path, err, sizeof(err));
    assert_non_null(w);
    cw_cases_save(t, w);
    size_t size;
    assert_int_equal(cw_snap_writer_commit(w, &size, err, sizeof(err)), 0);
    char *buf = cw_snap_read_file(path, len);
    assert_non_null(buf);
    assert_int_equal(*len, size);
    unlink(path);
    return buf;
}

static cw_event arrest(long i, int n) {
    char id[32], cs[64];
    snprintf(id, sizeof(id), "XJ-%ld-%d", i, n);
    snprintf(cs, sizeof(cs), "南检刑诉受[2020]%ld号", i);
    return cw_test_event(id, cs, "410923", CW_EV_ARREST_ACCEPTED, 1595815200000LL + n * 3600000LL);
}

/* 200,000 open cases saved and loaded: every case is back with its ids
 * (their events are duplicates now, a new event of a case is not), and
 * the loaded table saves a snapshot of the same size. */
static void a_snapshot_of_many_open_cases_loads_every_case_with_its_ids(void **state) {
    (void)state;
    const long n = 200000;
    cw_clock_rules k = clocks();
    cw_cases *t = cw_cases_new(1000, 480, &k, NULL);
    assert_non_null(t);
    cw_case_facts f;
    for (long i = 0; i < n; i++) {
        cw_event e = arrest(i, 0);
        assert_int_equal(cw_cases_apply(t, &e, &f), 0);
    }
    size_t len1, len2;
    char *one = save(t, &len1);
    cw_snap_reader r;
    char err[256];
    cw_cases *back = cw_cases_new(1000, 480, &k, NULL);
    assert_int_equal(cw_snap_reader_init(&r, one, len1, err, sizeof(err)), 0);
    assert_int_equal(cw_cases_load(back, &r), 0);
    assert_int_equal(cw_cases_open(back), (size_t)n);
    char *two = save(back, &len2);
    assert_int_equal(len1, len2);
    for (long i = 0; i < n; i += 997) {
        cw_event old = arrest(i, 0), fresh = arrest(i, 1);
        assert_int_equal(cw_cases_apply(back, &old, &f), 1);
        assert_int_equal(cw_cases_apply(back, &fresh, &f), 0);
    }
    assert_int_equal(cw_cases_open(back), (size_t)n);
    free(one);
    free(two);
    cw_cases_free(back);
    cw_cases_free(t);
}

/* A snapshot whose case count is more than its bytes could hold is
 * refused before the table makes room for them (no 2^40-case table). */
static void a_snapshot_claiming_more_cases_than_it_holds_is_refused(void **state) {
    (void)state;
    char path[64], err[256];
    snprintf(path, sizeof(path), "/tmp/cw-test-map-count-%d.snap", (int)getpid());
    cw_snap_writer *w = cw_snap_writer_open(path, err, sizeof(err));
    assert_non_null(w);
    cw_snap_put_u32(w, CW_NCLOCKS);
    cw_snap_put_i64(w, 18000);
    cw_snap_put_u64(w, (uint64_t)1 << 40);
    for (int i = 0; i < 100; i++) cw_snap_put_u64(w, 0);
    size_t size, len;
    assert_int_equal(cw_snap_writer_commit(w, &size, err, sizeof(err)), 0);
    char *buf = cw_snap_read_file(path, &len);
    unlink(path);
    assert_non_null(buf);
    cw_snap_reader r;
    assert_int_equal(cw_snap_reader_init(&r, buf, len, err, sizeof(err)), 0);
    cw_clock_rules k = clocks();
    cw_cases *t = cw_cases_new(1000, 480, &k, NULL);
    assert_int_equal(cw_cases_load(t, &r), -1);
    assert_true(r.bad);
    assert_int_equal(cw_cases_open(t), 0);
    cw_cases_free(t);
    free(buf);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_lookup_by_a_hash_worked_out_ahead_finds_what_a_plain_lookup_finds),
        cmocka_unit_test(a_map_filled_in_the_slot_order_of_a_bigger_map_finds_every_key_without_clustering),
        cmocka_unit_test(a_map_that_reserved_its_count_takes_another_maps_slot_order_in_order),
        cmocka_unit_test(reserving_keeps_every_key_and_refuses_the_impossible),
        cmocka_unit_test(insert_and_delete_churn_in_a_reserved_map_keeps_every_key),
        cmocka_unit_test(a_snapshot_of_many_open_cases_loads_every_case_with_its_ids),
        cmocka_unit_test(a_snapshot_claiming_more_cases_than_it_holds_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
