/* Unit tests of daemon/cw_config and proto/cw_record. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../daemon/cw_config.h"
#include "../../daemon/cw_ind.h"
#include "../../daemon/cw_log.h"
#include "../../proto/cw_event.h"
#include "../../proto/cw_record.h"

static char path[64];
static char err[2048];

static cw_config *load_text(const char *text, int *rc) {
    snprintf(path, sizeof(path), "/tmp/cwconf-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    cw_config *c = cw_config_new();
    assert_non_null(c);
    err[0] = '\0';
    *rc = cw_config_load(c, path, err, sizeof(err));
    unlink(path);
    return c;
}

static void defaults_match_the_protocol_key_names(void **state) {
    (void)state;
    cw_config *c = cw_config_new();
    assert_string_equal(c->redis_host, "127.0.0.1");
    assert_int_equal(c->redis_port, 6379);
    assert_string_equal(c->stream_key, "casewatch:events");
    assert_string_equal(c->stream_dead_key, "casewatch:events:dead");
    assert_int_equal(c->stream_batch, 1000);
    assert_int_equal(c->clock, CW_CLOCK_LIVE);
    assert_int_equal(c->log_level, CW_LOG_INFO);
    assert_null(c->redis_password);
    assert_string_equal(c->calendar_file, "/etc/casewatch/holidays-cn.conf"); /* where make install puts it */
    cw_config_free(c);
    cw_config_free(NULL);
}

static void a_full_file_sets_every_section(void **state) {
    (void)state;
    int rc;
    cw_config *c = load_text("; comment\n[redis]\nhost = 10.0.0.5\nport = 7000\nuser = cw\n"
                             "[stream]\nkey = k:events\nbatch = 500\n"
                             "[daemon]\ninstance = nanle\nclock = event\nstate_dir = /tmp/x\nlog_level = debug\n"
                             "[calendar]\nfile = /srv/holidays-cn.conf\n"
                             "[units]\n410923 = 南乐县人民检察院\n",
                             &rc);
    assert_int_equal(rc, 0);
    assert_string_equal(c->redis_host, "10.0.0.5");
    assert_int_equal(c->redis_port, 7000);
    assert_string_equal(c->stream_key, "k:events");
    assert_int_equal(c->stream_batch, 500);
    assert_string_equal(c->instance, "nanle");
    assert_int_equal(c->clock, CW_CLOCK_EVENT);
    assert_int_equal(c->log_level, CW_LOG_DEBUG);
    assert_string_equal(c->calendar_file, "/srv/holidays-cn.conf");
    assert_string_equal(cw_config_unit_name(c, "410923"), "南乐县人民检察院");
    assert_null(cw_config_unit_name(c, "410900"));
    cw_config_free(c);
}

static void an_unknown_key_is_named_with_file_and_line(void **state) {
    (void)state;
    int rc;
    cw_config *c = load_text("[redis]\nhost = a\n\n# comment\nprot = 1\n", &rc);
    assert_int_equal(rc, -1);
    char want[128];
    snprintf(want, sizeof(want), "%s:5: [redis] prot: unknown key", path);
    assert_string_equal(err, want);
    cw_config_free(c);
}

static void an_unknown_section_is_an_error(void **state) {
    (void)state;
    int rc;
    cw_config *c = load_text("[redis]\nport = 1\n[bogus]\nx = 1\n", &rc);
    assert_int_equal(rc, -1);
    assert_non_null(strstr(err, ":4: [bogus] x: unknown section"));
    cw_config_free(c);
}

static void an_out_of_range_integer_says_what_was_expected(void **state) {
    (void)state;
    int rc;
    cw_config *c = load_text("[redis]\nport = 70000\n", &rc);
    assert_int_equal(rc, -1);
    assert_non_null(strstr(err, ":2: [redis] port: expected an integer from 1 to 65535, got '70000'"));
    cw_config_free(c);
    c = load_text("[stream]\nbatch = 12abc\n", &rc);
    assert_int_equal(rc, -1);
    assert_non_null(strstr(err, "[stream] batch: expected an integer"));
    cw_config_free(c);
}

static void a_bad_choice_lists_the_choices(void **state) {
    (void)state;
    int rc;
    cw_config *c = load_text("[daemon]\nclock = wall\n", &rc);
    assert_int_equal(rc, -1);
    assert_non_null(strstr(err, "[daemon] clock: expected one of live, event, got 'wall'"));
    cw_config_free(c);
}

static void a_bad_unit_code_is_refused(void **state) {
    (void)state;
    int rc;
    cw_config *c = load_text("[units]\n41092 = 某院\n", &rc);
    assert_int_equal(rc, -1);
    assert_non_null(strstr(err, "[units] 41092: expected a 6-digit unit code"));
    cw_config_free(c);
}

static void a_line_that_is_not_ini_is_refused(void **state) {
    (void)state;
    int rc;
    cw_config *c = load_text("[redis]\nthis line has no equals sign\n", &rc);
    assert_int_equal(rc, -1);
    assert_non_null(strstr(err, ":2: not INI syntax"));
    cw_config_free(c);
}

static void a_missing_file_is_named(void **state) {
    (void)state;
    cw_config *c = cw_config_new();
    assert_int_equal(cw_config_load(c, "/nonexistent/casewatch.conf", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "/nonexistent/casewatch.conf: cannot open"));
    cw_config_free(c);
}

static void overrides_apply_and_bad_ones_are_named(void **state) {
    (void)state;
    cw_config *c = cw_config_new();
    assert_int_equal(cw_config_override(c, "redis.port=6380", err, sizeof(err)), 0);
    assert_int_equal(c->redis_port, 6380);
    assert_int_equal(cw_config_override(c, "units.410923=南乐县院", err, sizeof(err)), 0);
    assert_string_equal(cw_config_unit_name(c, "410923"), "南乐县院");
    assert_int_equal(cw_config_override(c, "redis.port", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "expected section.key=value"));
    assert_int_equal(cw_config_override(c, "redis.nope=1", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "[redis] nope: unknown key"));
    cw_config_free(c);
}

static void the_password_is_read_from_its_file_without_the_newline(void **state) {
    (void)state;
    char pw[64] = "/tmp/cwpw-XXXXXX";
    int fd = mkstemp(pw);
    assert_int_equal(write(fd, "hunter2\n", 8), 8);
    close(fd);
    chmod(pw, 0600);
    cw_config *c = cw_config_new();
    char o[128];
    snprintf(o, sizeof(o), "redis.password_file=%s", pw);
    assert_int_equal(cw_config_override(c, o, err, sizeof(err)), 0);
    assert_int_equal(cw_config_finish(c, err, sizeof(err)), 0);
    assert_string_equal(c->redis_password, "hunter2");
    /* an empty password file is an error, not an empty password */
    fd = open(pw, O_WRONLY | O_TRUNC);
    close(fd);
    assert_int_equal(cw_config_finish(c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "file is empty"));
    unlink(pw);
    assert_int_equal(cw_config_finish(c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "cannot open"));
    cw_config_free(c);
}

/* The password file is read whole (it was cut at 511 bytes without a
 * word): 600 bytes and the longest, 4,096 bytes with a CRLF, are read
 * exactly; 4,097 bytes, or a NUL inside, are refused naming the file. */
static void a_password_file_is_read_whole_up_to_4096_bytes_and_refused_beyond(void **state) {
    (void)state;
    static char text[5000];
    char pw[64] = "/tmp/cwpw-XXXXXX", o[128];
    int fd = mkstemp(pw);
    close(fd);
    chmod(pw, 0600);
    snprintf(o, sizeof(o), "redis.password_file=%s", pw);
    cw_config *c = cw_config_new();
    assert_int_equal(cw_config_override(c, o, err, sizeof(err)), 0);
    const struct {
        size_t len;
        const char *tail;
        int ok;
    } cases[] = {{600, "\n", 1}, {4096, "\r\n", 1}, {4096, "", 1}, {4097, "\n", 0}, {4097, "", 0}, {4998, "", 0}};
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        for (size_t i = 0; i < cases[k].len; i++) text[i] = (char)('!' + (i * 13 + k) % 90);
        size_t tl = strlen(cases[k].tail);
        memcpy(text + cases[k].len, cases[k].tail, tl);
        fd = open(pw, O_WRONLY | O_TRUNC);
        assert_int_equal(write(fd, text, cases[k].len + tl), (ssize_t)(cases[k].len + tl));
        close(fd);
        int rc = cw_config_finish(c, err, sizeof(err));
        if (cases[k].ok) {
            assert_int_equal(rc, 0);
            assert_int_equal(strlen(c->redis_password), cases[k].len);
            assert_memory_equal(c->redis_password, text, cases[k].len);
        } else {
            assert_int_equal(rc, -1);
            assert_non_null(strstr(err, pw));
            assert_non_null(strstr(err, "longer than 4096 bytes"));
            char head[9];
            memcpy(head, text, 8);
            head[8] = '\0';
            assert_null(strstr(err, head)); /* no part of the password */
        }
    }
    fd = open(pw, O_WRONLY | O_TRUNC);
    assert_int_equal(write(fd, "abc\0def\n", 8), 8);
    close(fd);
    assert_int_equal(cw_config_finish(c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, pw));
    assert_non_null(strstr(err, "NUL"));
    unlink(pw);
    cw_config_free(c);
}

static void the_printed_config_never_contains_the_password(void **state) {
    (void)state;
    cw_config *c = cw_config_new();
    c->redis_password = strdup("topsecret");
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    cw_config_print(c, f);
    fclose(f);
    assert_null(strstr(buf, "topsecret"));
    assert_non_null(strstr(buf, "[redis]"));
    assert_non_null(strstr(buf, "key = casewatch:events"));
    free(buf);
    cw_config_free(c);
}

/* ---- cw_record ---------------------------------------------------------- */

static void a_json_record_becomes_the_same_event(void **state) {
    (void)state;
    const char *j = "{\"v\":1,\"id\":\"x\",\"ts\":1596211200000,\"type\":\"prosecution.decided\",\"case\":\"c\","
                    "\"unit\":\"410923\",\"decision\":\"prosecute\",\"plea\":true,\"sentencing\":\"determinate\","
                    "\"n\":4,\"pros\":null}";
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    assert_int_equal(cw_record_from_json(j, strlen(j), &sb, err, sizeof(err)), 0);
    cw_event ev;
    assert_int_equal(cw_event_decode(NULL, sb.data, sb.size, 1700000000000LL, &ev, err, sizeof(err)), 0);
    assert_int_equal(ev.n, 4);
    assert_true(cw_event_flag(&ev, CW_F_PLEA));
    assert_int_equal(ev.sentencing, CW_SENTENCING_DETERMINATE);
    assert_string_equal(ev.pros, "");
    msgpack_sbuffer_destroy(&sb);
}

static void json_duplicate_keys_and_non_objects_are_refused(void **state) {
    (void)state;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    assert_int_equal(cw_record_from_json("{\"a\":1,\"a\":2}", 13, &sb, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "duplicate"));
    assert_int_equal(cw_record_from_json("[42]", 4, &sb, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "not a JSON object"));
    assert_int_equal(cw_record_from_json("42", 2, &sb, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "not JSON"));
    msgpack_sbuffer_destroy(&sb);
}

static void csv_cells_are_typed_by_their_key(void **state) {
    (void)state;
    const char *names[] = {"v", "id", "ts", "type", "case", "unit", "fast", "n", "note"};
    const char *cells[] = {"1", "x", "1596211200000", "prosecution.accepted", "c", "410923", "TRUE", "", "12"};
    size_t nl[9], cl[9];
    for (int i = 0; i < 9; i++) nl[i] = strlen(names[i]), cl[i] = strlen(cells[i]);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    assert_int_equal(cw_record_from_cells(names, nl, cells, cl, 9, &sb, err, sizeof(err)), 0);
    cw_event ev;
    assert_int_equal(cw_event_decode(NULL, sb.data, sb.size, 1700000000000LL, &ev, err, sizeof(err)), 0);
    assert_true(cw_event_flag(&ev, CW_F_FAST));
    assert_int_equal(ev.n, 1);
    /* a unit that looks like a number stays a string: "041092" keeps its 0 */
    cells[5] = "010101";
    cells[6] = "maybe";
    cl[6] = 5;
    sb.size = 0;
    assert_int_equal(cw_record_from_cells(names, nl, cells, cl, 9, &sb, err, sizeof(err)), 0);
    assert_int_equal(cw_event_decode(NULL, sb.data, sb.size, 1700000000000LL, &ev, err, sizeof(err)), -1);
    assert_string_equal(err, "key 'fast' must be a boolean");
    msgpack_sbuffer_destroy(&sb);
}

static void an_unclosed_section_header_is_named_as_such_with_its_line(void **state) {
    (void)state;
    int rc;
    cw_config *c = load_text("[redis]\nport = 6379\n[stream\nkey = x\n", &rc);
    assert_int_equal(rc, -1);
    char want[128];
    snprintf(want, sizeof(want), "%s:3: unclosed section header '[stream' (expected ']')", path);
    assert_string_equal(err, want);
    cw_config_free(c);
}

static void an_unknown_indicator_is_answered_with_every_valid_name(void **state) {
    (void)state;
    int rc;
    cw_config *c = load_text("[rule r]\nkind = threshold\nindicator = case_item_ratoi\n", &rc);
    assert_int_equal(rc, -1);
    assert_non_null(strstr(err, ":3: [rule r] indicator: expected an indicator of INDICATORS.md"));
    cw_ind_field f;
    for (size_t i = 0; cw_ind_fields(i, &f); i++) /* every one of them, none as "..." */
        if (f.kind != CW_IND_COUNTER && !strstr(err, f.name)) fail_msg("%s not listed in: %s", f.name, err);
    assert_null(strstr(err, "..."));
    assert_non_null(strstr(err, "got 'case_item_ratoi'"));
    cw_config_free(c);
    c = load_text("[rule r]\nsample = casez\n", &rc);
    assert_int_equal(rc, -1);
    for (size_t i = 0; cw_ind_fields(i, &f); i++)
        if (f.kind == CW_IND_COUNTER && !strstr(err, f.name)) fail_msg("%s not listed in: %s", f.name, err);
    cw_config_free(c);
}

static void log_lines_carry_their_zone_offset(void **state) {
    (void)state;
    char tmp[] = "/tmp/cwtest-log-XXXXXX";
    int fd = mkstemp(tmp);
    assert_true(fd >= 0);
    int saved = dup(2);
    dup2(fd, 2);
    setenv("TZ", "CST-8", 1);
    tzset();
    cw_log_init("t");
    cw_log_write(CW_LOG_NOTICE, "ctx", "hello");
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    char line[256] = "";
    FILE *f = fopen(tmp, "r");
    assert_non_null(fgets(line, sizeof(line), f));
    fclose(f);
    close(fd);
    unlink(tmp);
    unsetenv("TZ");
    tzset();
    /* 2026-12-02T22:05:01.123+08:00 t[notice] ctx: hello */
    assert_int_equal(line[10], 'T');
    assert_memory_equal(line + 23, "+08:00 t[notice] ctx: hello", 27);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults_match_the_protocol_key_names),
        cmocka_unit_test(a_full_file_sets_every_section),
        cmocka_unit_test(an_unknown_key_is_named_with_file_and_line),
        cmocka_unit_test(an_unknown_section_is_an_error),
        cmocka_unit_test(an_out_of_range_integer_says_what_was_expected),
        cmocka_unit_test(a_bad_choice_lists_the_choices),
        cmocka_unit_test(a_bad_unit_code_is_refused),
        cmocka_unit_test(a_line_that_is_not_ini_is_refused),
        cmocka_unit_test(a_missing_file_is_named),
        cmocka_unit_test(overrides_apply_and_bad_ones_are_named),
        cmocka_unit_test(the_password_is_read_from_its_file_without_the_newline),
        cmocka_unit_test(a_password_file_is_read_whole_up_to_4096_bytes_and_refused_beyond),
        cmocka_unit_test(the_printed_config_never_contains_the_password),
        cmocka_unit_test(a_json_record_becomes_the_same_event),
        cmocka_unit_test(json_duplicate_keys_and_non_objects_are_refused),
        cmocka_unit_test(csv_cells_are_typed_by_their_key),
        cmocka_unit_test(an_unclosed_section_header_is_named_as_such_with_its_line),
        cmocka_unit_test(an_unknown_indicator_is_answered_with_every_valid_name),
        cmocka_unit_test(log_lines_carry_their_zone_offset),
    };
    return cmocka_run_group_tests_name("config and records", tests, NULL, NULL);
}
