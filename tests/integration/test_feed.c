/* Integration tests of `casewatch feed` against a real redis-server. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../proto/cw_event.h"
#include "cw_testredis.h"


static int64_t now_ms(void) {
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* Runs `casewatch -o redis.port=P [extra...] feed [feed_args...]`. */
static int feed(const char *input, const char *const *extra, const char *const *feed_args, char **out, char **err) {
    char bin[256], port[64];
    cw_test_bin("casewatch", bin, sizeof(bin));
    snprintf(port, sizeof(port), "redis.port=%d", cw_test_redis.port);
    char *argv[32];
    int n = 0;
    argv[n++] = bin;
    argv[n++] = "-o";
    argv[n++] = port;
    for (; extra && *extra; extra++) argv[n++] = (char *)*extra;
    argv[n++] = "feed";
    for (; feed_args && *feed_args; feed_args++) argv[n++] = (char *)*feed_args;
    argv[n] = NULL;
    return cw_test_run(argv, input, strlen(input), out, err);
}

static void flush_all(void) {
    redisContext *c = cw_testredis_connect(&cw_test_redis);
    freeReplyObject(redisCommand(c, "FLUSHALL"));
    redisFree(c);
}

/* Reads the whole stream and decodes every entry; returns the count and
 * fills ids (up to max). Fails the test on any entry not of one field e. */
static size_t read_stream(const char *key, cw_event *evs, size_t max) {
    redisContext *c = cw_testredis_connect(&cw_test_redis);
    redisReply *r = redisCommand(c, "XRANGE %s - +", key);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    size_t n = r->elements;
    for (size_t i = 0; i < n && i < max; i++) {
        redisReply *fields = r->element[i]->element[1];
        assert_int_equal(fields->elements, 2);
        assert_string_equal(fields->element[0]->str, "e");
        char why[256];
        if (cw_event_decode(NULL, fields->element[1]->str, fields->element[1]->len, now_ms(), &evs[i], why,
                            sizeof(why)) != 0)
            fail_msg("stream entry %zu does not decode: %s", i, why);
    }
    freeReplyObject(r);
    redisFree(c);
    return n;
}

static void feed_adds_good_json_lines_and_reports_bad_ones_by_line(void **state) {
    (void)state;
    flush_all();
    const char *in =
        "{\"v\":1,\"id\":\"a1\",\"ts\":1596211200000,\"type\":\"arrest.accepted\",\"case\":\"南检刑诉受[2020]1号\","
        "\"unit\":\"410923\",\"dept\":\"第一检察部\",\"pros\":\"P017\",\"detained\":true}\n"
        "{\"v\":1,\"id\":\"a2\",\"ts\":1596211200000,\"type\":\"arrest.accepted\",\"case\":\"c2\",\"unit\":\"41092\"}\n"
        "this is not json\n"
        "\n"
        "{\"v\":1,\"id\":\"a3\",\"ts\":1596211300000,\"type\":\"arrest.decided\",\"case\":\"c1\",\"unit\":\"410923\","
        "\"decision\":\"approve\",\"n\":2,\"future\":{\"x\":[1,2]},\"dept\":null}\n"
        "{\"v\":1,\"id\":\"a4\",\"ts\":1596211300000,\"type\":\"arrest.decided\",\"case\":\"c1\",\"unit\":\"410923\"}\n"
        "[1,2]\n";
    char *out, *err;
    int rc = feed(in, NULL, NULL, &out, &err);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(err, "line 2: key 'unit' must be 6 digits"));
    assert_non_null(strstr(err, "line 3: not JSON"));
    assert_non_null(strstr(err, "line 6: key 'decision' is required for arrest.decided"));
    assert_non_null(strstr(err, "line 7: not a JSON object"));
    assert_non_null(strstr(err, "6 records, 2 added"));
    cw_event ev[8];
    assert_int_equal(read_stream("casewatch:events", ev, 8), 2);
    assert_string_equal(ev[0].id, "a1");
    assert_string_equal(ev[0].dept, "第一检察部");
    assert_true(cw_event_flag(&ev[0], CW_F_DETAINED));
    assert_string_equal(ev[1].id, "a3");
    assert_int_equal(ev[1].n, 2);
    assert_int_equal(ev[1].decision, CW_DECISION_APPROVE);
    free(out);
    free(err);
}

static void feed_reads_csv_with_quotes_commas_and_newlines_in_cells(void **state) {
    (void)state;
    flush_all();
    const char *in = "\xEF\xBB\xBFv,id,ts,type,case,unit,dept,n,detained,plea\r\n"
                     "1,c1,1596211200000,arrest.accepted,\"case, with comma\",410923,\"第一\"\"部\",2,true,\r\n"
                     "1,c2,1596211200000,arrest.accepted,x,410923,,abc,,\r\n"
                     "1,c3,1596211200000,arrest.accepted,\"multi\nline\",410923,,,no,\r\n"
                     "1,c4,\"bad\"quote,arrest.accepted,x,410923,,,,\r\n"
                     "1,c5,1596211200000,prosecution.decided,y,410923,,,,yes\r\n"
                     "1,c6,1596211200000,prosecution.decided,y,410923,,,,\r\n"
                     "1,c7,1596211200000,hearing.held,z,410923,,,,,extra\r\n";
    const char *args[] = {"--format", "csv", NULL};
    char *out, *err;
    int rc = feed(in, NULL, args, &out, &err);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(err, "line 3: key 'n' must be an unsigned integer"));
    assert_non_null(strstr(err, "line 6: malformed CSV"));
    assert_non_null(strstr(err, "line 7: key 'decision' is required for prosecution.decided"));
    assert_non_null(strstr(err, "line 9: row has 11 cells, the header names 10"));
    cw_event ev[8];
    assert_int_equal(read_stream("casewatch:events", ev, 8), 2);
    assert_string_equal(ev[0].case_id, "case, with comma");
    assert_string_equal(ev[0].dept, "第一\"部");
    assert_int_equal(ev[0].n, 2);
    assert_string_equal(ev[1].case_id, "multi\nline");
    assert_true(cw_event_has(&ev[1], CW_F_DETAINED));
    assert_false(cw_event_flag(&ev[1], CW_F_DETAINED));
    free(out);
    free(err);
}

static void feed_of_only_good_records_exits_zero(void **state) {
    (void)state;
    flush_all();
    char in[8192] = "";
    for (int i = 0; i < 50; i++) {
        char line[256];
        snprintf(line, sizeof(line),
                 "{\"v\":1,\"id\":\"g%d\",\"ts\":%lld,\"type\":\"letter.received\",\"case\":\"L%d\",\"unit\":\"410900\"}\n",
                 i, (long long)now_ms() - 1000, i);
        strcat(in, line);
    }
    char *out, *err;
    assert_int_equal(feed(in, NULL, NULL, &out, &err), 0);
    cw_event ev[64];
    assert_int_equal(read_stream("casewatch:events", ev, 64), 50);
    for (int i = 0; i < 50; i++) {
        char id[16];
        snprintf(id, sizeof(id), "g%d", i);
        assert_string_equal(ev[i].id, id); /* order kept through the pipeline */
    }
    free(out);
    free(err);
}

static void feed_takes_the_stream_key_from_the_config_file(void **state) {
    (void)state;
    flush_all();
    char path[64];
    const char *conf = "[stream]\nkey = other:events\n";
    cw_test_tmpfile(conf, strlen(conf), path, sizeof(path));
    const char *extra[] = {"-c", path, NULL};
    const char *in = "{\"v\":1,\"id\":\"k1\",\"ts\":1596211200000,\"type\":\"hearing.held\",\"case\":\"h\",\"unit\":\"410923\"}\n";
    char *out, *err;
    assert_int_equal(feed(in, extra, NULL, &out, &err), 0);
    cw_event ev[2];
    assert_int_equal(read_stream("other:events", ev, 2), 1);
    assert_int_equal(read_stream("casewatch:events", ev, 2), 0);
    unlink(path);
    free(out);
    free(err);
}

static void feed_reads_a_msgpack_stream_and_stops_at_broken_bytes(void **state) {
    (void)state;
    flush_all();
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    for (int i = 0; i < 3; i++) {
        cw_event ev = {0};
        ev.v = 1;
        ev.type = CW_EV_TRIAL_APPEAL;
        ev.ts = 1596211200000LL;
        ev.n = 1;
        snprintf(ev.id, sizeof(ev.id), "m%d", i);
        strcpy(ev.case_id, "上诉案");
        strcpy(ev.unit, "410923");
        cw_event_encode(&ev, &sb);
    }
    msgpack_sbuffer_write(&sb, "\xc1", 1);
    msgpack_sbuffer_write(&sb, "", 1);
    char *out, *err;
    char bin[256], port[64];
    cw_test_bin("casewatch", bin, sizeof(bin));
    snprintf(port, sizeof(port), "redis.port=%d", cw_test_redis.port);
    char *argv[] = {bin, "-o", port, "feed", NULL};
    assert_int_equal(cw_test_run(argv, sb.data, sb.size, &out, &err), 1);
    assert_non_null(strstr(err, "line 4: msgpack stream broken"));
    cw_event ev[4];
    assert_int_equal(read_stream("casewatch:events", ev, 4), 3);
    msgpack_sbuffer_destroy(&sb);
    free(out);
    free(err);
}

static void feed_authenticates_with_the_password_file_and_never_prints_it(void **state) {
    (void)state;
    flush_all();
    redisContext *c = cw_testredis_connect(&cw_test_redis);
    freeReplyObject(redisCommand(c, "ACL SETUSER feeder on >s3cret-pw ~* +@all"));
    char pwfile[64], conf[64], bad_pwfile[64];
    cw_test_tmpfile("s3cret-pw\n", 10, pwfile, sizeof(pwfile));
    chmod(pwfile, 0600);
    cw_test_tmpfile("wrong-pw\n", 9, bad_pwfile, sizeof(bad_pwfile));
    chmod(bad_pwfile, 0600);
    char text[256];
    snprintf(text, sizeof(text), "[redis]\nuser = feeder\npassword_file = %s\n", pwfile);
    cw_test_tmpfile(text, strlen(text), conf, sizeof(conf));
    const char *in = "{\"v\":1,\"id\":\"p1\",\"ts\":1596211200000,\"type\":\"hearing.held\",\"case\":\"h\",\"unit\":\"410923\"}\n";
    const char *extra[] = {"-c", conf, NULL};
    char *out, *err;
    assert_int_equal(feed(in, extra, NULL, &out, &err), 0);
    free(out);
    free(err);
    char override[128];
    snprintf(override, sizeof(override), "redis.password_file=%s", bad_pwfile);
    const char *extra_bad[] = {"-c", conf, "-o", override, NULL};
    assert_int_equal(feed(in, extra_bad, NULL, &out, &err), 2);
    assert_non_null(strstr(err, "refused AUTH as feeder"));
    assert_null(strstr(err, "wrong-pw"));
    assert_null(strstr(err, "s3cret"));
    free(out);
    free(err);
    freeReplyObject(redisCommand(c, "ACL DELUSER feeder"));
    redisFree(c);
    cw_event ev[2];
    assert_int_equal(read_stream("casewatch:events", ev, 2), 1);
    unlink(pwfile);
    unlink(bad_pwfile);
    unlink(conf);
}

static void feed_to_an_unreachable_redis_fails_with_a_message(void **state) {
    (void)state;
    char bin[256];
    cw_test_bin("casewatch", bin, sizeof(bin));
    char *argv[] = {bin, "-o", "redis.port=1", "-o", "redis.timeout_ms=500", "feed", NULL};
    char *out, *err;
    const char *in = "{}\n";
    assert_int_equal(cw_test_run(argv, in, strlen(in), &out, &err), 2);
    assert_non_null(strstr(err, "cannot connect to redis at 127.0.0.1:1"));
    free(out);
    free(err);
}

static void feed_rejects_a_bad_override_naming_it(void **state) {
    (void)state;
    const char *extra[] = {"-o", "stream.batch=0", NULL};
    char *out, *err;
    assert_int_equal(feed("", extra, NULL, &out, &err), 2);
    assert_non_null(strstr(err, "[stream] batch: expected an integer from 1 to 100000, got '0'"));
    free(out);
    free(err);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(feed_adds_good_json_lines_and_reports_bad_ones_by_line),
        cmocka_unit_test(feed_reads_csv_with_quotes_commas_and_newlines_in_cells),
        cmocka_unit_test(feed_of_only_good_records_exits_zero),
        cmocka_unit_test(feed_takes_the_stream_key_from_the_config_file),
        cmocka_unit_test(feed_reads_a_msgpack_stream_and_stops_at_broken_bytes),
        cmocka_unit_test(feed_authenticates_with_the_password_file_and_never_prints_it),
        cmocka_unit_test(feed_to_an_unreachable_redis_fails_with_a_message),
        cmocka_unit_test(feed_rejects_a_bad_override_naming_it),
    };
    return cmocka_run_group_tests_name("casewatch feed", tests, cw_testredis_group_setup, cw_testredis_group_teardown);
}
