/* Unit tests of proto/cw_event: decoding, validation (one test per
 * rejection class of PROTOCOL.md §2), encoding, framing and the streaming
 * reader. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../proto/cw_event.h"
#include "../../proto/cw_text.h"

#define NOW 1700000000000LL /* 2023-11-14 */
#define TS 1596211200000LL  /* 2020-07-31T16:00:00Z */

/* ---- A tiny builder for hand-made maps -------------------------------- */

typedef struct kv {
    const char *k;
    char t; /* s str, i int, b bool, n nil, f float, a array, x raw str bytes of length len */
    const char *s;
    long long i;
    size_t len;
} kv;

static const kv base[] = {
    {"v", 'i', NULL, 1, 0},
    {"id", 's', "ev-1", 0, 0},
    {"ts", 'i', NULL, TS, 0},
    {"type", 's', "arrest.accepted", 0, 0},
    {"case", 's', "南检刑诉受[2020]1号", 0, 0},
    {"unit", 's', "410923", 0, 0},
};
#define NBASE (sizeof(base) / sizeof(base[0]))

static void pack_val(msgpack_packer *pk, const kv *e) {
    switch (e->t) {
    case 's': msgpack_pack_str(pk, strlen(e->s)); msgpack_pack_str_body(pk, e->s, strlen(e->s)); break;
    case 'x': msgpack_pack_str(pk, e->len); msgpack_pack_str_body(pk, e->s, e->len); break;
    case 'i': msgpack_pack_int64(pk, e->i); break;
    case 'b': if (e->i) msgpack_pack_true(pk); else msgpack_pack_false(pk); break;
    case 'n': msgpack_pack_nil(pk); break;
    case 'f': msgpack_pack_double(pk, 1.5); break;
    case 'a': msgpack_pack_array(pk, 2); msgpack_pack_int(pk, 1); msgpack_pack_map(pk, 1);
        msgpack_pack_str(pk, 1); msgpack_pack_str_body(pk, "z", 1); msgpack_pack_nil(pk); break;
    }
}

/* Packs the base event with `over` replacing or adding keys and `omit`
 * (may be NULL) left out. */
static void build(msgpack_sbuffer *sb, const kv *over, size_t nover, const char *omit) {
    msgpack_packer pk;
    msgpack_sbuffer_init(sb);
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    const kv *all[64];
    size_t n = 0;
    for (size_t i = 0; i < NBASE; i++) {
        if (omit && strcmp(base[i].k, omit) == 0) continue;
        int replaced = 0;
        for (size_t j = 0; j < nover; j++) replaced |= strcmp(over[j].k, base[i].k) == 0;
        if (!replaced) all[n++] = &base[i];
    }
    for (size_t j = 0; j < nover; j++) all[n++] = &over[j];
    msgpack_pack_map(&pk, n);
    for (size_t i = 0; i < n; i++) {
        msgpack_pack_str(&pk, strlen(all[i]->k));
        msgpack_pack_str_body(&pk, all[i]->k, strlen(all[i]->k));
        pack_val(&pk, all[i]);
    }
}

static char reason[256];

static int decode_with(const kv *over, size_t nover, const char *omit, cw_event *ev) {
    msgpack_sbuffer sb;
    build(&sb, over, nover, omit);
    reason[0] = '\0';
    int rc = cw_event_decode(NULL, sb.data, sb.size, NOW, ev, reason, sizeof(reason));
    msgpack_sbuffer_destroy(&sb);
    return rc;
}

#define REJECTS(over, omit, needle)                                                         \
    do {                                                                                    \
        cw_event ev_;                                                                       \
        assert_int_equal(decode_with((over), sizeof(over) / sizeof((over)[0]), (omit), &ev_), -1); \
        if (!strstr(reason, (needle))) fail_msg("reason '%s' lacks '%s'", reason, (needle)); \
    } while (0)

static int decode_bytes(const char *buf, size_t len) {
    cw_event ev;
    reason[0] = '\0';
    return cw_event_decode(NULL, buf, len, NOW, &ev, reason, sizeof(reason));
}

/* ---- Acceptance ------------------------------------------------------- */

static void a_minimal_event_decodes_with_its_defaults(void **state) {
    (void)state;
    cw_event ev;
    assert_int_equal(decode_with(NULL, 0, NULL, &ev), 0);
    assert_int_equal(ev.v, 1);
    assert_string_equal(ev.id, "ev-1");
    assert_true(ev.ts == TS);
    assert_int_equal(ev.type, CW_EV_ARREST_ACCEPTED);
    assert_string_equal(ev.case_id, "南检刑诉受[2020]1号");
    assert_string_equal(ev.unit, "410923");
    assert_string_equal(ev.dept, "");
    assert_int_equal(ev.n, 1);
    assert_int_equal(ev.present, 0);
}

static void unknown_extra_keys_are_ignored_even_when_nested(void **state) {
    (void)state;
    kv over[] = {{"future", 'a', NULL, 0, 0}, {"note", 'f', NULL, 0, 0}, {"x-nil", 'n', NULL, 0, 0}};
    cw_event ev;
    assert_int_equal(decode_with(over, 3, NULL, &ev), 0);
}

static void every_field_survives_an_encode_decode_round_trip(void **state) {
    (void)state;
    cw_event ev = {0}, back;
    ev.v = 1;
    ev.type = CW_EV_PROSECUTION_DECIDED;
    ev.ts = TS + 12345;
    ev.n = 3;
    strcpy(ev.id, "sys-a:000042");
    strcpy(ev.case_id, "南检刑诉受[2020]1号");
    strcpy(ev.unit, "410923");
    strcpy(ev.dept, "第一检察部");
    strcpy(ev.pros, "P017");
    ev.present = CW_F_PLEA | CW_F_FAST | CW_F_ARRESTED;
    ev.flags = CW_F_PLEA | CW_F_ARRESTED;
    ev.decision = CW_DECISION_PROSECUTE;
    ev.sentencing = CW_SENTENCING_DETERMINATE;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    assert_int_equal(cw_event_encode(&ev, &sb), 0);
    assert_int_equal(cw_event_decode(NULL, sb.data, sb.size, NOW, &back, reason, sizeof(reason)), 0);
    msgpack_sbuffer_destroy(&sb);
    assert_memory_equal(&ev, &back, sizeof(ev));
}

static void every_event_type_round_trips_by_name(void **state) {
    (void)state;
    cw_event_decoder *d = cw_event_decoder_new();
    for (int t = 0; t < CW_EV_TYPE_COUNT; t++) {
        cw_event ev = {0}, back;
        ev.v = 1;
        ev.type = (cw_event_type)t;
        ev.ts = TS;
        ev.n = 1;
        snprintf(ev.id, sizeof(ev.id), "id-%d", t);
        strcpy(ev.case_id, "c1");
        strcpy(ev.unit, "410000");
        if (t == CW_EV_ARREST_DECIDED) ev.decision = CW_DECISION_REJECT;
        if (t == CW_EV_PROSECUTION_DECIDED) ev.decision = CW_DECISION_NOT_PROSECUTE;
        if (t == CW_EV_LETTER_REPLIED) ev.reply = CW_REPLY_SUBSTANTIVE;
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        assert_int_equal(cw_event_encode(&ev, &sb), 0);
        if (cw_event_decode(d, sb.data, sb.size, NOW, &back, reason, sizeof(reason)) != 0)
            fail_msg("%s: %s", cw_event_type_name((cw_event_type)t), reason);
        assert_memory_equal(&ev, &back, sizeof(ev));
        msgpack_sbuffer_destroy(&sb);
    }
    cw_event_decoder_free(d);
    /* the table marks exactly the 15 non-routine types of PROTOCOL.md */
    int extra = 0;
    for (int t = 0; t < CW_EV_TYPE_COUNT; t++) extra += cw_event_type_is_extra_item((cw_event_type)t);
    assert_int_equal(extra, 15);
}

static void strings_at_their_exact_limits_are_accepted(void **state) {
    (void)state;
    char id[65], cs[129], dept[65];
    memset(id, 'i', 64), id[64] = 0;
    memset(cs, 'c', 128), cs[128] = 0;
    memset(dept, 'd', 64), dept[64] = 0;
    kv over[] = {{"id", 's', id, 0, 0}, {"case", 's', cs, 0, 0}, {"dept", 's', dept, 0, 0}, {"pros", 's', dept, 0, 0}};
    cw_event ev;
    assert_int_equal(decode_with(over, 4, NULL, &ev), 0);
    assert_int_equal(strlen(ev.case_id), 128);
}

static void ts_window_edges_are_inclusive(void **state) {
    (void)state;
    kv lo[] = {{"ts", 'i', NULL, CW_TS_MIN, 0}};
    kv hi[] = {{"ts", 'i', NULL, NOW + CW_TS_MAX_AHEAD, 0}};
    cw_event ev;
    assert_int_equal(decode_with(lo, 1, NULL, &ev), 0);
    assert_int_equal(decode_with(hi, 1, NULL, &ev), 0);
}

/* ---- Rejections, one per class of PROTOCOL.md §2 ----------------------- */

static void an_entry_without_an_e_field_is_rejected(void **state) {
    (void)state;
    cw_event ev;
    cw_entry_field f = {"x", 1, "\x80", 1};
    assert_int_equal(cw_event_decode_entry(NULL, &f, 1, NOW, &ev, reason, sizeof(reason)), -1);
    assert_non_null(strstr(reason, "no field 'e'"));
    assert_int_equal(cw_event_decode_entry(NULL, NULL, 0, NOW, &ev, reason, sizeof(reason)), -1);
    assert_non_null(strstr(reason, "no field 'e'"));
}

static void an_entry_with_more_than_one_field_is_rejected(void **state) {
    (void)state;
    cw_event ev;
    cw_entry_field f[2] = {{"e", 1, "\x80", 1}, {"x", 1, "1", 1}};
    assert_int_equal(cw_event_decode_entry(NULL, f, 2, NOW, &ev, reason, sizeof(reason)), -1);
    assert_non_null(strstr(reason, "2 fields"));
}

static void a_value_that_is_not_a_map_is_rejected(void **state) {
    (void)state;
    assert_int_equal(decode_bytes("\x92\x01\x02", 3), -1); /* [1,2] */
    assert_non_null(strstr(reason, "not a msgpack map"));
    assert_int_equal(decode_bytes("\xa3" "abc", 4), -1);
    assert_non_null(strstr(reason, "not a msgpack map"));
    assert_int_equal(decode_bytes("plain text", 10), -1);
}

static void trailing_bytes_after_the_map_are_rejected(void **state) {
    (void)state;
    msgpack_sbuffer sb;
    build(&sb, NULL, 0, NULL);
    msgpack_sbuffer_write(&sb, "\xc0", 1);
    assert_int_equal(decode_bytes(sb.data, sb.size), -1);
    assert_non_null(strstr(reason, "1 trailing bytes"));
    msgpack_sbuffer_destroy(&sb);
}

static void each_missing_required_key_is_named(void **state) {
    (void)state;
    const char *req[] = {"v", "id", "ts", "type", "case", "unit"};
    for (size_t i = 0; i < 6; i++) {
        cw_event ev;
        assert_int_equal(decode_with(NULL, 0, req[i], &ev), -1);
        char want[64];
        snprintf(want, sizeof(want), "key '%s' is required", req[i]);
        if (!strstr(reason, want)) fail_msg("'%s' lacks '%s'", reason, want);
    }
}

static void a_wrong_type_is_named_with_the_type_expected(void **state) {
    (void)state;
    kv ts_str[] = {{"ts", 's', "1596211200000", 0, 0}};
    REJECTS(ts_str, NULL, "key 'ts' must be an integer");
    kv v_neg[] = {{"v", 'i', NULL, -1, 0}};
    REJECTS(v_neg, NULL, "key 'v' must be an unsigned integer");
    kv id_int[] = {{"id", 'i', NULL, 7, 0}};
    REJECTS(id_int, NULL, "key 'id' must be a string");
    kv det_int[] = {{"detained", 'i', NULL, 1, 0}};
    REJECTS(det_int, NULL, "key 'detained' must be a boolean");
    kv n_float[] = {{"n", 'f', NULL, 0, 0}};
    REJECTS(n_float, NULL, "key 'n' must be an unsigned integer");
    kv dept_nil[] = {{"dept", 'n', NULL, 0, 0}};
    REJECTS(dept_nil, NULL, "key 'dept' must be a string");
}

static void a_string_over_its_limit_is_rejected(void **state) {
    (void)state;
    char id[66], cs[130];
    memset(id, 'i', 65), id[65] = 0;
    memset(cs, 'c', 129), cs[129] = 0;
    kv o1[] = {{"id", 's', id, 0, 0}};
    REJECTS(o1, NULL, "key 'id' is longer than 64 bytes");
    kv o2[] = {{"case", 's', cs, 0, 0}};
    REJECTS(o2, NULL, "key 'case' is longer than 128 bytes");
    kv o3[] = {{"pros", 's', id, 0, 0}};
    REJECTS(o3, NULL, "key 'pros' is longer than 64 bytes");
    kv o4[] = {{"dept", 's', id, 0, 0}};
    REJECTS(o4, NULL, "key 'dept' is longer than 64 bytes");
    kv o5[] = {{"id", 's', "", 0, 0}};
    REJECTS(o5, NULL, "key 'id' is empty");
}

static void a_string_that_is_not_utf8_is_rejected(void **state) {
    (void)state;
    kv o1[] = {{"case", 'x', "ab\xff", 0, 3}};
    REJECTS(o1, NULL, "key 'case' is not valid UTF-8");
    kv o2[] = {{"dept", 'x', "\xe7\xac", 0, 2}}; /* truncated 第 */
    REJECTS(o2, NULL, "key 'dept' is not valid UTF-8");
    kv o3[] = {{"pros", 'x', "\xed\xa0\x80", 0, 3}}; /* a surrogate */
    REJECTS(o3, NULL, "key 'pros' is not valid UTF-8");
    kv o4[] = {{"id", 'x', "\xc0\xaf", 0, 2}}; /* overlong '/' */
    REJECTS(o4, NULL, "key 'id' is not valid UTF-8");
}

static void a_string_with_a_nul_byte_is_rejected(void **state) {
    (void)state;
    kv o1[] = {{"case", 'x', "a\0b", 0, 3}};
    REJECTS(o1, NULL, "key 'case' contains a NUL byte");
    kv o2[] = {{"id", 'x', "\0", 0, 1}};
    REJECTS(o2, NULL, "key 'id' contains a NUL byte");
}

static void an_unknown_protocol_version_is_rejected(void **state) {
    (void)state;
    kv o[] = {{"v", 'i', NULL, 2, 0}};
    REJECTS(o, NULL, "only protocol version 1");
}

static void an_unknown_event_type_is_rejected_and_named(void **state) {
    (void)state;
    kv o[] = {{"type", 's', "arrest.exploded", 0, 0}};
    REJECTS(o, NULL, "unknown event type 'arrest.exploded'");
}

static void a_unit_that_is_not_six_digits_is_rejected(void **state) {
    (void)state;
    kv o1[] = {{"unit", 's', "41092", 0, 0}};
    REJECTS(o1, NULL, "key 'unit' must be 6 digits");
    kv o2[] = {{"unit", 's', "4109231", 0, 0}};
    REJECTS(o2, NULL, "key 'unit' must be 6 digits");
    kv o3[] = {{"unit", 's', "41092a", 0, 0}};
    REJECTS(o3, NULL, "key 'unit' must be 6 digits");
    kv o4[] = {{"unit", 'x', "41092\0", 0, 6}};
    REJECTS(o4, NULL, "key 'unit' must be 6 digits");
}

static void a_ts_before_2000_is_rejected(void **state) {
    (void)state;
    kv o[] = {{"ts", 'i', NULL, CW_TS_MIN - 1, 0}};
    REJECTS(o, NULL, "key 'ts' is before 2000-01-01");
    kv neg[] = {{"ts", 'i', NULL, -5, 0}};
    REJECTS(neg, NULL, "key 'ts' is before 2000-01-01");
}

static void a_ts_more_than_a_day_ahead_is_rejected(void **state) {
    (void)state;
    kv o[] = {{"ts", 'i', NULL, NOW + CW_TS_MAX_AHEAD + 1, 0}};
    REJECTS(o, NULL, "more than one day in the future");
    /* uint64 above INT64_MAX must not wrap into the past */
    char buf[256];
    msgpack_sbuffer sb;
    build(&sb, NULL, 0, "ts");
    assert_true(sb.size + 12 <= sizeof(buf));
    memcpy(buf, sb.data, sb.size);
    size_t n = sb.size;
    msgpack_sbuffer_destroy(&sb);
    buf[0] = (char)((unsigned char)buf[0] + 1); /* fixmap count + 1 */
    memcpy(buf + n, "\xa2ts\xcf\xff\xff\xff\xff\xff\xff\xff\xff", 12);
    assert_int_equal(decode_bytes(buf, n + 12), -1);
    assert_non_null(strstr(reason, "more than one day in the future"));
}

static void a_decided_event_without_its_decision_is_rejected(void **state) {
    (void)state;
    kv a[] = {{"type", 's', "arrest.decided", 0, 0}};
    REJECTS(a, NULL, "key 'decision' is required for arrest.decided");
    kv p[] = {{"type", 's', "prosecution.decided", 0, 0}};
    REJECTS(p, NULL, "key 'decision' is required for prosecution.decided");
    kv wrong[] = {{"type", 's', "arrest.decided", 0, 0}, {"decision", 's', "prosecute", 0, 0}};
    REJECTS(wrong, NULL, "must be approve or reject");
    kv bad[] = {{"type", 's', "prosecution.decided", 0, 0}, {"decision", 's', "maybe", 0, 0}};
    REJECTS(bad, NULL, "key 'decision' must be");
}

static void a_letter_reply_without_its_kind_is_rejected(void **state) {
    (void)state;
    kv r[] = {{"type", 's', "letter.replied", 0, 0}};
    REJECTS(r, NULL, "key 'reply' is required for letter.replied");
    kv bad[] = {{"type", 's', "letter.replied", 0, 0}, {"reply", 's', "eventually", 0, 0}};
    REJECTS(bad, NULL, "key 'reply' must be procedural or substantive");
}

static void person_counts_outside_1_to_10000_are_rejected(void **state) {
    (void)state;
    kv zero[] = {{"n", 'i', NULL, 0, 0}};
    REJECTS(zero, NULL, "key 'n' must be between 1 and 10000");
    kv big[] = {{"n", 'i', NULL, 10001, 0}};
    REJECTS(big, NULL, "key 'n' must be between 1 and 10000");
}

static void duplicate_and_non_string_keys_are_rejected(void **state) {
    (void)state;
    kv dup[] = {{"unit", 's', "410923", 0, 0}, {"unit", 's', "410900", 0, 0}};
    REJECTS(dup, NULL, "key 'unit' appears twice");
    /* {1: 2} */
    assert_int_equal(decode_bytes("\x81\x01\x02", 3), -1);
    assert_non_null(strstr(reason, "map key #1 is not a string"));
}

static void sentencing_values_outside_the_protocol_are_rejected(void **state) {
    (void)state;
    kv o[] = {{"sentencing", 's', "harsh", 0, 0}};
    REJECTS(o, NULL, "key 'sentencing' must be determinate, range or none");
}

/* ---- Malformed bytes and oversized headers ---------------------------- */

static void malformed_and_truncated_bytes_are_rejected(void **state) {
    (void)state;
    assert_int_equal(decode_bytes("", 0), -1);
    assert_int_equal(decode_bytes("\xc1", 1), -1);
    assert_non_null(strstr(reason, "0xc1"));
    msgpack_sbuffer sb;
    build(&sb, NULL, 0, NULL);
    for (size_t cut = 1; cut < sb.size; cut++) {
        assert_int_equal(decode_bytes(sb.data, cut), -1);
        assert_non_null(strstr(reason, "truncated"));
    }
    msgpack_sbuffer_destroy(&sb);
}

static void oversized_headers_are_refused_without_allocating(void **state) {
    (void)state;
    /* map32 / array32 / str32 / bin32 claiming ~4G, ext32 too */
    const char *heads[] = {"\xdf\xff\xff\xff\xff", "\xdd\xff\xff\xff\xff", "\xdb\xff\xff\xff\xff",
                           "\xc6\xff\xff\xff\xff", "\xc9\xff\xff\xff\xff\x01", "\xde\xff\xff"};
    size_t lens[] = {5, 5, 5, 5, 6, 3};
    for (size_t i = 0; i < 6; i++) {
        assert_int_equal(decode_bytes(heads[i], lens[i]), -1);
        const char *why = NULL;
        size_t used;
        assert_int_equal(cw_msgpack_frame(heads[i], lens[i], CW_EVENT_MAX_BYTES, &used, &why), -1);
        assert_non_null(why);
    }
    /* a map of 65 keys is over the key cap even though it is small */
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 65);
    for (int i = 0; i < 65; i++) {
        char k[8];
        int n = snprintf(k, sizeof(k), "k%d", i);
        msgpack_pack_str(&pk, (size_t)n);
        msgpack_pack_str_body(&pk, k, (size_t)n);
        msgpack_pack_nil(&pk);
    }
    assert_int_equal(decode_bytes(sb.data, sb.size), -1);
    assert_non_null(strstr(reason, "more than 64"));
    msgpack_sbuffer_destroy(&sb);
    /* an event larger than the byte cap */
    char *big = malloc(CW_EVENT_MAX_BYTES + 2);
    memset(big, 0, CW_EVENT_MAX_BYTES + 2);
    assert_int_equal(decode_bytes(big, CW_EVENT_MAX_BYTES + 1), -1);
    assert_non_null(strstr(reason, "more than the cap"));
    free(big);
}

static void deep_nesting_in_extra_keys_is_refused(void **state) {
    (void)state;
    char buf[64];
    size_t n = 0;
    buf[n++] = (char)0x81; /* {"x": [[[[...]]]]} */
    buf[n++] = (char)0xa1;
    buf[n++] = 'x';
    for (int i = 0; i < 20; i++) buf[n++] = (char)0x91;
    buf[n++] = (char)0xc0;
    assert_int_equal(decode_bytes(buf, n), -1);
    assert_non_null(strstr(reason, "nested too deeply"));
}

static void random_mutations_never_crash_the_decoder(void **state) {
    (void)state;
    msgpack_sbuffer sb;
    kv over[] = {{"dept", 's', "第一检察部", 0, 0}, {"n", 'i', NULL, 3, 0}, {"future", 'a', NULL, 0, 0}};
    build(&sb, over, 3, NULL);
    char *buf = malloc(sb.size);
    unsigned seed = 12345;
    int accepted = 0;
    cw_event_decoder *d = cw_event_decoder_new();
    for (int round = 0; round < 20000; round++) {
        memcpy(buf, sb.data, sb.size);
        int flips = 1 + round % 4;
        for (int f = 0; f < flips; f++) {
            seed = seed * 1103515245u + 12345u;
            buf[(seed >> 8) % sb.size] = (char)(seed >> 16);
        }
        seed = seed * 1103515245u + 12345u;
        size_t len = (seed >> 4) % 8 == 0 ? (seed >> 12) % sb.size : sb.size;
        cw_event ev;
        char why[256];
        if (cw_event_decode(d, buf, len, NOW, &ev, why, sizeof(why)) == 0) {
            accepted++;
            assert_true(cw_utf8_valid(ev.case_id, strlen(ev.case_id)));
            assert_int_equal(strlen(ev.unit), 6);
        } else {
            assert_true(strlen(why) > 0);
            assert_true(cw_utf8_valid(why, strlen(why)));
        }
    }
    cw_event_decoder_free(d);
    assert_true(accepted > 0); /* some mutations only touch values */
    free(buf);
    msgpack_sbuffer_destroy(&sb);
}

/* ---- Streaming reader ------------------------------------------------- */

static void events_fed_one_byte_at_a_time_come_out_whole(void **state) {
    (void)state;
    msgpack_sbuffer all;
    msgpack_sbuffer_init(&all);
    for (int i = 0; i < 5; i++) {
        cw_event ev = {0};
        ev.v = 1;
        ev.type = CW_EV_HEARING_HELD;
        ev.ts = TS + i;
        ev.n = 1 + (uint32_t)i;
        snprintf(ev.id, sizeof(ev.id), "e%d", i);
        strcpy(ev.case_id, "听证1");
        strcpy(ev.unit, "410923");
        cw_event_encode(&ev, &all);
    }
    /* then malformed bytes: a never-used byte */
    msgpack_sbuffer_write(&all, "\xc1\x00", 2);
    cw_event_reader *r = cw_event_reader_new();
    int got = 0, broken = 0;
    for (size_t i = 0; i < all.size && !broken; i++) {
        assert_int_equal(cw_event_reader_feed(r, all.data + i, 1), 0);
        const char *v;
        size_t len;
        int rc;
        while ((rc = cw_event_reader_next(r, &v, &len, reason, sizeof(reason))) == 1) {
            cw_event ev;
            assert_int_equal(cw_event_decode(NULL, v, len, NOW, &ev, reason, sizeof(reason)), 0);
            assert_int_equal(ev.n, (uint32_t)got + 1);
            got++;
        }
        if (rc < 0) broken = 1;
    }
    assert_int_equal(got, 5);
    assert_true(broken);
    assert_non_null(strstr(reason, "0xc1"));
    /* a broken reader stays broken */
    const char *v;
    size_t len;
    assert_int_equal(cw_event_reader_next(r, &v, &len, reason, sizeof(reason)), -1);
    cw_event_reader_free(r);
    msgpack_sbuffer_destroy(&all);
}

static void a_reader_refuses_an_oversized_header_as_soon_as_it_arrives(void **state) {
    (void)state;
    cw_event_reader *r = cw_event_reader_new();
    const char *hdr = "\xdb\x7f\xff\xff\xff"; /* str32 of 2 GiB */
    const char *v;
    size_t len;
    for (int i = 0; i < 4; i++) {
        cw_event_reader_feed(r, hdr + i, 1);
        assert_int_equal(cw_event_reader_next(r, &v, &len, reason, sizeof(reason)), 0);
    }
    cw_event_reader_feed(r, hdr + 4, 1);
    assert_int_equal(cw_event_reader_next(r, &v, &len, reason, sizeof(reason)), -1);
    assert_non_null(strstr(reason, "size cap"));
    cw_event_reader_free(r);
    cw_event_reader_free(NULL);
    cw_event_decoder_free(NULL);
}

/* ---- Text helpers ------------------------------------------------------ */

static void key_escaping_keeps_utf8_and_escapes_separators(void **state) {
    (void)state;
    char out[64];
    assert_int_equal(cw_key_escape("第一检察部", strlen("第一检察部"), out, sizeof(out)), 15);
    assert_string_equal(out, "第一检察部");
    cw_key_escape("a:b%c d\n", 8, out, sizeof(out));
    assert_string_equal(out, "a%3Ab%25c%20d%0A");
    assert_int_equal(cw_key_escape("abcdef", 6, out, 4), -1);
}

/* ---- Key names, framing and UTF-8 on their fast paths ------------------ */

static void every_key_name_is_recognised_and_near_misses_are_not(void **state) {
    (void)state;
    static const struct {
        const char *name;
        cw_key_kind kind;
    } known[] = {
        {"v", CW_KIND_UINT}, {"id", CW_KIND_STR}, {"ts", CW_KIND_INT}, {"type", CW_KIND_STR},
        {"case", CW_KIND_STR}, {"unit", CW_KIND_STR}, {"dept", CW_KIND_STR}, {"pros", CW_KIND_STR},
        {"n", CW_KIND_UINT}, {"detained", CW_KIND_BOOL}, {"complex", CW_KIND_BOOL}, {"arrested", CW_KIND_BOOL},
        {"fast", CW_KIND_BOOL}, {"plea", CW_KIND_BOOL}, {"adopted", CW_KIND_BOOL}, {"decision", CW_KIND_STR},
        {"sentencing", CW_KIND_STR}, {"reply", CW_KIND_STR},
    };
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
        const char *k = known[i].name;
        size_t n = strlen(k);
        assert_int_equal(cw_event_key_kind(k, n), known[i].kind);
        /* the same length and first byte, one byte off anywhere */
        char near[16];
        for (size_t at = 0; at < n; at++) {
            memcpy(near, k, n);
            near[at] ^= 0x20;
            if (at == 0 && n == 1 && (near[0] == 'v' || near[0] == 'n')) continue;
            assert_int_equal(cw_event_key_kind(near, n), CW_KIND_UNKNOWN);
        }
        assert_int_equal(cw_event_key_kind(k, n - 1), n - 1 == 1 && (k[0] == 'v' || k[0] == 'n') ? CW_KIND_UINT
                                                                                                  : CW_KIND_UNKNOWN);
        memcpy(near, k, n);
        near[n] = 's';
        assert_int_equal(cw_event_key_kind(near, n + 1), CW_KIND_UNKNOWN);
    }
    assert_int_equal(cw_event_key_kind("", 0), CW_KIND_UNKNOWN);
    /* an event whose extra keys miss known ones by a byte keeps its defaults */
    static const kv over[] = {{"plex", 'b', NULL, 1, 0}, {"decisiom", 's', "approve", 0, 0},
                              {"Dept", 's', "x", 0, 0}};
    cw_event ev;
    assert_int_equal(decode_with(over, 3, NULL, &ev), 0);
    assert_int_equal(ev.present, 0);
    assert_int_equal(ev.decision, CW_DECISION_NONE);
    assert_string_equal(ev.dept, "");
}

/* A plain reading of Unicode's table 3-7 (well-formed UTF-8 byte
 * sequences), to check cw_utf8_check's word-at-a-time paths against. */
static int utf8_reference(const unsigned char *s, size_t len) {
    int nul = 0;
    for (size_t i = 0; i < len;) {
        unsigned c = s[i];
        size_t need;
        unsigned lo = 0x80, hi = 0xBF; /* range of the second byte */
        if (c < 0x80) {
            nul |= c == 0;
            i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF) need = 1;
        else if (c == 0xE0) need = 2, lo = 0xA0;
        else if (c >= 0xE1 && c <= 0xEC) need = 2;
        else if (c == 0xED) need = 2, hi = 0x9F;
        else if (c >= 0xEE && c <= 0xEF) need = 2;
        else if (c == 0xF0) need = 3, lo = 0x90;
        else if (c >= 0xF1 && c <= 0xF3) need = 3;
        else if (c == 0xF4) need = 3, hi = 0x8F;
        else return CW_UTF8_BAD;
        if (len - i <= need) return CW_UTF8_BAD;
        if (s[i + 1] < lo || s[i + 1] > hi) return CW_UTF8_BAD;
        for (size_t k = 2; k <= need; k++)
            if (s[i + k] < 0x80 || s[i + k] > 0xBF) return CW_UTF8_BAD;
        i += need + 1;
    }
    return nul ? CW_UTF8_NUL : CW_UTF8_OK;
}

static void utf8_checks_agree_with_a_plain_reading_of_the_standard(void **state) {
    (void)state;
    /* pieces that meet every path: ASCII words, tails, NULs, CJK runs, the
     * edges of the three-byte fast path (E0, EC, ED, EE, EF leads), two-
     * and four-byte forms, and bytes that are never well-formed */
    static const char *const pieces[] = {
        "a", "0", "[2020]", "\0", "abcdefgh", "刑", "诉受", "第三检察部", "\xe0\xa0\x80", "\xe0\x9f\xbf",
        "\xec\xbf\xbf", "\xed\x9f\xbf", "\xed\xa0\x80", "\xee\x80\x80", "\xef\xbc\x88", "\xc2\x80", "\xc1\xbf",
        "\xdf\xbf", "\xf0\x90\x80\x80", "\xf4\x8f\xbf\xbf", "\xf4\x90\x80\x80", "\xf5", "\x80", "\xbf", "\xe4",
        "\xe4\xb8", "\xff", "\x7f",
    };
    const size_t npieces = sizeof(pieces) / sizeof(pieces[0]);
    unsigned seed = 18;
    char buf[64 + 8];
    for (int round = 0; round < 20000; round++) {
        size_t len = 0;
        int parts = 1 + (int)((seed = seed * 1103515245u + 12345u) >> 16) % 8;
        for (int k = 0; k < parts; k++) {
            const char *piece = pieces[((seed = seed * 1103515245u + 12345u) >> 16) % npieces];
            size_t n = piece[0] == '\0' ? 1 : strlen(piece); /* "\0" is one NUL byte */
            if (len + n > 64) break;
            memcpy(buf + 4 + len, piece, n);
            len += n;
        }
        /* every start and end inside the text, at every alignment */
        size_t from = ((seed = seed * 1103515245u + 12345u) >> 16) % (len + 1);
        for (size_t to = from; to <= len; to++) {
            const char *t = buf + 4 + from;
            int want = utf8_reference((const unsigned char *)t, to - from);
            int got = cw_utf8_check(t, to - from);
            if (got != want) fail_msg("cw_utf8_check = %d, want %d, for %zu bytes at round %d", got, want, to - from, round);
            assert_int_equal(cw_utf8_valid(t, to - from), want != CW_UTF8_BAD);
        }
    }
}

static void flat_maps_frame_alike_whole_cut_and_capped(void **state) {
    (void)state;
    /* every scalar kind the fast path sizes, and two it leaves to the
     * general walk (an ext and a nested map) */
    char s40[41], s300[301];
    memset(s40, 'x', 40);
    s40[40] = '\0';
    memset(s300, 'y', 300);
    s300[300] = '\0';
    for (int variant = 0; variant < 3; variant++) {
        msgpack_sbuffer sb;
        msgpack_packer pk;
        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        msgpack_pack_map(&pk, variant == 2 ? 17 : 11);
        const char *names[] = {"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n", "o", "p", "q"};
        int k = 0;
#define KEY() (msgpack_pack_str(&pk, 1), msgpack_pack_str_body(&pk, names[k++], 1))
        KEY(), msgpack_pack_uint64(&pk, 1596211200000ULL);
        KEY(), msgpack_pack_int64(&pk, -40000);
        KEY(), msgpack_pack_int8(&pk, -100);
        KEY(), msgpack_pack_uint16(&pk, 60000);
        KEY(), msgpack_pack_float(&pk, 1.5f);
        KEY(), msgpack_pack_double(&pk, 2.5);
        KEY(), msgpack_pack_nil(&pk);
        KEY(), msgpack_pack_str(&pk, 40), msgpack_pack_str_body(&pk, s40, 40);
        KEY(), msgpack_pack_str(&pk, 300), msgpack_pack_str_body(&pk, s300, 300);
        KEY(), msgpack_pack_bin(&pk, 3), msgpack_pack_bin_body(&pk, "\x01\x02\x03", 3);
        if (variant == 1) KEY(), msgpack_pack_ext(&pk, 2, 7), msgpack_pack_ext_body(&pk, "\x01\x02", 2);
        else KEY(), msgpack_pack_true(&pk);
        if (variant == 2) {
            KEY(), msgpack_pack_map(&pk, 1), msgpack_pack_str(&pk, 1), msgpack_pack_str_body(&pk, "z", 1),
                msgpack_pack_nil(&pk);
            while (k < 17) KEY(), msgpack_pack_int(&pk, k);
        }
#undef KEY
        size_t used = 0;
        const char *why = NULL;
        assert_int_equal(cw_msgpack_frame(sb.data, sb.size, CW_EVENT_MAX_BYTES, &used, &why), 1);
        assert_int_equal(used, sb.size);
        /* with bytes after it, the value still ends where it ends */
        char *more = malloc(sb.size + 3);
        memcpy(more, sb.data, sb.size);
        memcpy(more + sb.size, "\x01\x02\x03", 3);
        assert_int_equal(cw_msgpack_frame(more, sb.size + 3, CW_EVENT_MAX_BYTES, &used, &why), 1);
        assert_int_equal(used, sb.size);
        free(more);
        for (size_t cut = 0; cut < sb.size; cut++) {
            assert_int_equal(cw_msgpack_frame(sb.data, cut, CW_EVENT_MAX_BYTES, &used, &why), 0);
            /* a cap the value does not fit: refused once the bytes reach it */
            why = NULL;
            assert_int_equal(cw_msgpack_frame(sb.data, sb.size, cut, &used, &why), -1);
            assert_non_null(why);
        }
        msgpack_sbuffer_destroy(&sb);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_minimal_event_decodes_with_its_defaults),
        cmocka_unit_test(unknown_extra_keys_are_ignored_even_when_nested),
        cmocka_unit_test(every_field_survives_an_encode_decode_round_trip),
        cmocka_unit_test(every_event_type_round_trips_by_name),
        cmocka_unit_test(strings_at_their_exact_limits_are_accepted),
        cmocka_unit_test(ts_window_edges_are_inclusive),
        cmocka_unit_test(an_entry_without_an_e_field_is_rejected),
        cmocka_unit_test(an_entry_with_more_than_one_field_is_rejected),
        cmocka_unit_test(a_value_that_is_not_a_map_is_rejected),
        cmocka_unit_test(trailing_bytes_after_the_map_are_rejected),
        cmocka_unit_test(each_missing_required_key_is_named),
        cmocka_unit_test(a_wrong_type_is_named_with_the_type_expected),
        cmocka_unit_test(a_string_over_its_limit_is_rejected),
        cmocka_unit_test(a_string_that_is_not_utf8_is_rejected),
        cmocka_unit_test(a_string_with_a_nul_byte_is_rejected),
        cmocka_unit_test(an_unknown_protocol_version_is_rejected),
        cmocka_unit_test(an_unknown_event_type_is_rejected_and_named),
        cmocka_unit_test(a_unit_that_is_not_six_digits_is_rejected),
        cmocka_unit_test(a_ts_before_2000_is_rejected),
        cmocka_unit_test(a_ts_more_than_a_day_ahead_is_rejected),
        cmocka_unit_test(a_decided_event_without_its_decision_is_rejected),
        cmocka_unit_test(a_letter_reply_without_its_kind_is_rejected),
        cmocka_unit_test(person_counts_outside_1_to_10000_are_rejected),
        cmocka_unit_test(duplicate_and_non_string_keys_are_rejected),
        cmocka_unit_test(sentencing_values_outside_the_protocol_are_rejected),
        cmocka_unit_test(malformed_and_truncated_bytes_are_rejected),
        cmocka_unit_test(oversized_headers_are_refused_without_allocating),
        cmocka_unit_test(deep_nesting_in_extra_keys_is_refused),
        cmocka_unit_test(random_mutations_never_crash_the_decoder),
        cmocka_unit_test(events_fed_one_byte_at_a_time_come_out_whole),
        cmocka_unit_test(a_reader_refuses_an_oversized_header_as_soon_as_it_arrives),
        cmocka_unit_test(key_escaping_keeps_utf8_and_escapes_separators),
        cmocka_unit_test(every_key_name_is_recognised_and_near_misses_are_not),
        cmocka_unit_test(utf8_checks_agree_with_a_plain_reading_of_the_standard),
        cmocka_unit_test(flat_maps_frame_alike_whole_cut_and_capped),
    };
    return cmocka_run_group_tests_name("proto event", tests, NULL, NULL);
}
