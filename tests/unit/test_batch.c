/* Unit tests of daemon/cw_batch: an XREAD batch copied out of its reply
 * and decoded apart from it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "../../daemon/cw_batch.h"
#include "../integration/cw_testredis.h"

#define NOW 1596211200000LL /* 2020-07-31T16:00Z */

static redisReply str(const char *s, size_t len) {
    redisReply r;
    memset(&r, 0, sizeof(r));
    r.type = REDIS_REPLY_STRING;
    r.str = (char *)s;
    r.len = len;
    return r;
}

static redisReply arr(redisReply **el, size_t n) {
    redisReply r;
    memset(&r, 0, sizeof(r));
    r.type = REDIS_REPLY_ARRAY;
    r.element = el;
    r.elements = n;
    return r;
}

/* Three entries as XREAD gives them (a good event, an entry with two
 * fields, a malformed one that is skipped), copied, then the reply's
 * bytes overwritten: the batch decodes from its own copy. */
static void a_batch_decodes_its_own_copy_of_the_reply(void **state) {
    (void)state;
    cw_event ev = cw_test_event("ev-1", "南检刑诉受[2020]7号", "410923", CW_EV_ARREST_ACCEPTED, NOW - 3600000);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    assert_int_equal(cw_event_encode(&ev, &sb), 0);
    char packed[512], id1[] = "1596211200000-0", id2[] = "1596211200000-1";
    assert_true(sb.size < sizeof(packed));
    memcpy(packed, sb.data, sb.size);

    redisReply e = str("e", 1), v = str(packed, sb.size), x = str("x", 1), y = str("y", 1);
    redisReply *f1v[] = {&e, &v}, *f2v[] = {&e, &v, &x, &y};
    redisReply f1 = arr(f1v, 2), f2 = arr(f2v, 4), i1 = str(id1, strlen(id1)), i2 = str(id2, strlen(id2));
    redisReply *e1v[] = {&i1, &f1}, *e2v[] = {&i2, &f2};
    redisReply e1 = arr(e1v, 2), e2 = arr(e2v, 2), bad = str("not an entry", 12);
    redisReply *entries_v[] = {&e1, &bad, &e2};
    redisReply entries = arr(entries_v, 3);

    cw_batch *b = cw_batch_new();
    assert_non_null(b);
    assert_int_equal(cw_batch_fill(b, &entries, NOW), 0);
    memset(packed, 0, sizeof(packed)); /* the reply goes away */
    memset(id1, '9', strlen(id1));
    cw_batch_decode(b);

    assert_int_equal(cw_batch_size(b), 2);
    const cw_batch_entry *a = cw_batch_at(b, 0), *c = cw_batch_at(b, 1);
    assert_string_equal(a->id, "1596211200000-0");
    assert_true(a->ok);
    assert_string_equal(a->ev.id, "ev-1");
    assert_string_equal(a->ev.case_id, "南检刑诉受[2020]7号");
    assert_int_equal(a->ev.ts, NOW - 3600000);
    assert_string_equal(c->id, "1596211200000-1");
    assert_false(c->ok);
    assert_string_equal(c->why, "entry has 2 fields, expected only 'e'");
    assert_int_equal(c->nfields, 2); /* every field kept, for the dead letter */
    assert_int_equal(c->fields[1].name_len, 1);
    assert_memory_equal(c->fields[1].value, "y", 2);
    assert_null(cw_batch_at(b, 2));

    /* reused: a reply without entries leaves it empty */
    cw_batch_clear(b);
    assert_int_equal(cw_batch_size(b), 0);
    cw_batch_free(b);
    cw_batch_free(NULL);
    msgpack_sbuffer_destroy(&sb);
}

/* Filled string by string as a reply is parsed (cw_replay_read): 3,000
 * entries (the bytes move many times as they grow), values holding NULs,
 * a name left without its value (dropped, as cw_batch_fill drops it), an
 * entry without fields; every pointer right after cw_batch_end, and the
 * batch decodes like one copied from a reply tree. */
static void a_batch_filled_part_by_part_holds_every_entry_and_field_as_added(void **state) {
    (void)state;
    cw_event ev = cw_test_event("ev-2", "南检刑诉受[2020]8号", "410923", CW_EV_ARREST_ACCEPTED, NOW - 7200000);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    assert_int_equal(cw_event_encode(&ev, &sb), 0);
    cw_batch *b = cw_batch_new();
    assert_non_null(b);
    for (int round = 0; round < 2; round++) { /* the second reuses the grown batch */
        cw_batch_begin(b, NOW);
        char id[48];
        for (int i = 0; i < 3000; i++) {
            snprintf(id, sizeof(id), "1596211200000-%d", i);
            assert_int_equal(cw_batch_add_entry(b, id, strlen(id)), 0);
            if (i % 3 == 0) {
                assert_int_equal(cw_batch_add_string(b, "e", 1), 0);
                assert_int_equal(cw_batch_add_string(b, sb.data, sb.size), 0);
            } else if (i % 3 == 1) {
                assert_int_equal(cw_batch_add_string(b, "k", 1), 0);
                assert_int_equal(cw_batch_add_string(b, "a\0b", 3), 0);
                assert_int_equal(cw_batch_add_string(b, "dangling", 8), 0); /* no value follows */
            }
        }
        assert_int_equal(cw_batch_end(b), 0);
        cw_batch_decode(b);
        assert_int_equal(cw_batch_size(b), 3000);
        for (int i = 0; i < 3000; i++) {
            const cw_batch_entry *e = cw_batch_at(b, (size_t)i);
            snprintf(id, sizeof(id), "1596211200000-%d", i);
            assert_string_equal(e->id, id);
            if (i % 3 == 0) {
                assert_int_equal(e->nfields, 1);
                assert_true(e->ok);
                assert_string_equal(e->ev.case_id, "南检刑诉受[2020]8号");
                assert_int_equal(e->ev.ts, NOW - 7200000);
            } else if (i % 3 == 1) {
                assert_int_equal(e->nfields, 1);
                assert_false(e->ok);
                assert_int_equal(e->fields[0].name_len, 1);
                assert_memory_equal(e->fields[0].name, "k", 2);
                assert_int_equal(e->fields[0].value_len, 3);
                assert_memory_equal(e->fields[0].value, "a\0b", 4);
            } else {
                assert_int_equal(e->nfields, 0);
                assert_false(e->ok);
            }
        }
    }
    /* strings before any entry belong to none */
    cw_batch_begin(b, NOW);
    assert_int_equal(cw_batch_add_string(b, "x", 1), 0);
    assert_int_equal(cw_batch_end(b), 0);
    assert_int_equal(cw_batch_size(b), 0);
    cw_batch_free(b);
    msgpack_sbuffer_destroy(&sb);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_batch_decodes_its_own_copy_of_the_reply),
        cmocka_unit_test(a_batch_filled_part_by_part_holds_every_entry_and_field_as_added),
    };
    return cmocka_run_group_tests_name("cw_batch", tests, NULL, NULL);
}
