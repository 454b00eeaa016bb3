/* Unit tests of the hand-written encoders on the hot paths: proto/cw_json
 * (alert JSON) against jansson, and cw_resp (Redis commands) against
 * hiredis's own formatter. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <hiredis.h>
#include <jansson.h>

#include "../../daemon/cw_conn.h"
#include "../../proto/cw_json.h"
#include "../../proto/cw_text.h"

static uint64_t rng = 88172645463325252ULL;
static uint64_t next(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* A random valid UTF-8 string: ASCII, the characters JSON escapes, every
 * control byte, DEL, Chinese, 2- and 4-byte characters. */
static void random_text(char *out, size_t cap) {
    static const char *const pieces[] = {"a", "Z", "0", " ", "/", "\"", "\\", "\x7f", "案", "件", "比", "：", "é",
                                         "\xF0\x9F\x98\x80", "[", "]", "{", "}", ":", ","};
    size_t n = next() % 40, len = 0;
    for (size_t i = 0; i < n; i++) {
        char ctl[2] = {(char)(1 + next() % 31), 0};
        const char *p = next() % 5 == 0 ? ctl : pieces[next() % (sizeof(pieces) / sizeof(pieces[0]))];
        size_t pl = strlen(p);
        if (len + pl + 1 > cap) break;
        memcpy(out + len, p, pl);
        len += pl;
    }
    out[len] = '\0';
}

static double random_real(void) {
    switch (next() % 6) {
    case 0: return (double)(int64_t)(next() % 2000000) - 1000000.0;        /* integral */
    case 1: return (double)(next() % 100000) / 10000.0;                    /* 4 decimals, as alert values */
    case 2: return ldexp((double)(next() % 1000000), (int)(next() % 200)); /* large: exponents */
    case 3: return ldexp((double)(next() % 1000000), -(int)(next() % 200)); /* tiny */
    case 4: return -(double)(next() % 1000) / 7.0;
    default: return 0.0;
    }
}

static void the_alert_json_is_what_jansson_writes_byte_for_byte(void **state) {
    (void)state;
    cw_json j;
    cw_json_init(&j);
    for (int round = 0; round < 20000; round++) {
        json_t *o = json_object();
        cw_json_begin(&j);
        int members = 1 + (int)(next() % 8);
        for (int m = 0; m < members; m++) {
            char key[16], text[200];
            snprintf(key, sizeof(key), "k%d", m);
            switch (next() % 3) {
            case 0:
                random_text(text, sizeof(text));
                json_object_set_new(o, key, json_string(text));
                cw_json_str(&j, key, text);
                break;
            case 1: {
                int64_t v = (int64_t)next();
                if (next() % 4 == 0) v = next() % 2 ? INT64_MIN : INT64_MAX;
                json_object_set_new(o, key, json_integer(v));
                cw_json_int(&j, key, v);
                break;
            }
            default: {
                double v = random_real();
                json_object_set_new(o, key, json_real(v));
                cw_json_real(&j, key, v);
            }
            }
        }
        char *want = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
        size_t len = 0;
        const char *got = cw_json_finish(&j, &len);
        assert_non_null(want);
        assert_non_null(got);
        assert_string_equal(got, want);
        assert_int_equal(len, strlen(want));
        free(want);
        json_decref(o);
    }
    cw_json_destroy(&j);
}

static void invalid_utf8_becomes_the_replacement_character_not_broken_json(void **state) {
    (void)state;
    cw_json j;
    cw_json_init(&j);
    cw_json_begin(&j);
    cw_json_str(&j, "message", "GBK \xC4\xCF\xC0\xD6 and a cut \xE6\xA1");
    cw_json_str(&j, "ok", "南乐");
    const char *text = cw_json_finish(&j, NULL);
    json_error_t err;
    json_t *o = json_loads(text, 0, &err);
    assert_non_null(o);
    const char *m = json_string_value(json_object_get(o, "message"));
    assert_non_null(m);
    assert_non_null(strstr(m, "GBK \xEF\xBF\xBD"));
    assert_string_equal(json_string_value(json_object_get(o, "ok")), "南乐");
    json_decref(o);
    /* the buffer is reused: a second object starts clean */
    cw_json_begin(&j);
    cw_json_int(&j, "n", -42);
    assert_string_equal(cw_json_finish(&j, NULL), "{\"n\":-42}");
    cw_json_destroy(&j);
    cw_json_destroy(NULL);
}

static void commands_built_by_hand_are_what_hiredis_would_send(void **state) {
    (void)state;
    cw_resp r;
    cw_resp_init(&r);
    for (int round = 0; round < 2000; round++) {
        int argc = 1 + (int)(next() % 40);
        char args[40][300];
        const char *argv[40];
        size_t lens[40];
        cw_resp_begin(&r, argc);
        for (int i = 0; i < argc; i++) {
            if (next() % 4 == 0) {
                uint64_t v = next() >> (next() % 64);
                snprintf(args[i], sizeof(args[i]), "%llu", (unsigned long long)v);
                char digits[20], *p = cw_u64_digits(v, digits); /* numbers go out as their digits */
                cw_resp_arg(&r, p, (size_t)(digits + sizeof(digits) - p));
            } else {
                random_text(args[i], sizeof(args[i]));
                cw_resp_str(&r, args[i]);
            }
            argv[i] = args[i];
            lens[i] = strlen(args[i]);
        }
        char *want = NULL;
        int wl = redisFormatCommandArgv(&want, argc, argv, lens);
        assert_true(wl > 0);
        assert_int_equal(r.out.len, (size_t)wl);
        assert_memory_equal(r.out.buf, want, (size_t)wl);
        free(want);
    }
    cw_resp_destroy(&r);
    cw_resp_destroy(NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(the_alert_json_is_what_jansson_writes_byte_for_byte),
        cmocka_unit_test(invalid_utf8_becomes_the_replacement_character_not_broken_json),
        cmocka_unit_test(commands_built_by_hand_are_what_hiredis_would_send),
    };
    return cmocka_run_group_tests_name("encoders", tests, NULL, NULL);
}
