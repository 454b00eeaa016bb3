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


/* An export as the case systems give it: a UTF-8 BOM, CRLF line ends,
 * Chinese headers and words, local dates, a 院 by its name, a column of
 * personal data the map does not name; read through the shipped
 * configuration's [feed] columns (systemd/feed-columns-cn.conf). */
static const char chinese_export[] =
    "\xEF\xBB\xBF案件编号,单位,类型,部门,承办检察官,时间,人数,是否羁押,犯罪嫌疑人\r\n"
    "南检刑诉受[2020]1号,南乐县人民检察院,受理审查逮捕,第一检察部,P017,2020-07-31 09:00,1,是,张三\r\n"
    "南检刑诉受[2020]1号,410923,批准逮捕,第一检察部,P017,2020-08-04 15:30:00,1,,张三\r\n"
    "南检刑诉受[2020]2号,南乐,受理审查起诉,第二检察部,P020,2020/7/31 9:05,2,否,\"李四,王五\"\r\n"
    "南检刑诉受[2020]3号,410923,受理审查,第一检察部,P017,2020-07-31,1,是,赵六\r\n"
    "南检刑诉受[2020]4号,410923,受理审查逮捕,第一检察部,P017,2020-13-31,1,是,赵六\r\n"
    "南检刑诉受[2020]5号,410923,受理审查逮捕,第一检察部,P017,2020-07-31T09:00:00+08:00,1,也许,赵六\r\n"
    "南检刑诉受[2020]6号,410923,起诉,第一检察部,P017,2020-07-31T01:00:00Z,1,,\r\n";

static void feed_reads_a_chinese_export_with_local_dates_a_bom_and_crlf(void **state) {
    (void)state;
    flush_all();
    const char *extra[] = {"-c", "systemd/casewatch.conf", NULL};
    char *out, *err;
    assert_int_equal(feed(chinese_export, extra, NULL, &out, &err), 1);
    assert_non_null(strstr(err, "line 1: columns not in the column map, ignored: 9 (犯罪嫌疑人)"));
    assert_non_null(strstr(err, "line 1: no column gives 'id'"));
    assert_non_null(strstr(err, "line 5, column 3 (类型): '受理审查' is not a word of [values type]"));
    assert_non_null(strstr(err, "line 6, column 6 (时间): '2020-13-31' is not a time (no such date)"));
    assert_non_null(strstr(err, "line 7, column 8 (是否羁押): '也许' is not a word of [values bool]"));
    assert_non_null(strstr(err, "7 records, 4 added to casewatch:events, 3 bad"));
    free(out);
    free(err);
    cw_event ev[16];
    assert_int_equal(read_stream("casewatch:events", ev, 16), 4);
    assert_string_equal(ev[0].case_id, "南检刑诉受[2020]1号");
    assert_string_equal(ev[0].unit, "410923"); /* from 南乐县人民检察院 */
    assert_int_equal(ev[0].type, CW_EV_ARREST_ACCEPTED);
    assert_int_equal(ev[0].ts, 1596157200000LL); /* 2020-07-31 09:00 +08:00 */
    assert_int_equal(ev[0].v, 1);
    assert_string_equal(ev[0].dept, "第一检察部");
    assert_string_equal(ev[0].pros, "P017");
    assert_true(cw_event_flag(&ev[0], CW_F_DETAINED));
    assert_memory_equal(ev[0].id, "d:", 2);
    assert_int_equal(ev[1].type, CW_EV_ARREST_DECIDED);
    assert_int_equal(ev[1].decision, CW_DECISION_APPROVE); /* 批准逮捕 brings it */
    assert_int_equal(ev[1].ts, 1596526200000LL);
    assert_string_not_equal(ev[1].id, ev[0].id);
    assert_string_equal(ev[2].unit, "410923"); /* from 南乐 */
    assert_int_equal(ev[2].type, CW_EV_PROSECUTION_ACCEPTED);
    assert_int_equal(ev[2].n, 2);
    assert_true(cw_event_has(&ev[2], CW_F_DETAINED));
    assert_false(cw_event_flag(&ev[2], CW_F_DETAINED));
    assert_int_equal(ev[2].ts, 1596157500000LL); /* 2020/7/31 9:05 */
    assert_int_equal(ev[3].type, CW_EV_PROSECUTION_DECIDED);
    assert_int_equal(ev[3].decision, CW_DECISION_PROSECUTE);
    assert_int_equal(ev[3].ts, 1596157200000LL); /* ISO 8601 in UTC */
    /* the personal data of the unmapped column never reaches the stream */
    redisContext *c = cw_testredis_connect(&cw_test_redis);
    redisReply *r = redisCommand(c, "XRANGE casewatch:events - +");
    for (size_t i = 0; i < r->elements; i++) {
        redisReply *v = r->element[i]->element[1]->element[1];
        assert_null(memmem(v->str, v->len, "张三", strlen("张三")));
        assert_null(memmem(v->str, v->len, "李四", strlen("李四")));
    }
    freeReplyObject(r);
    redisFree(c);
    /* fed again, the same rows get the same ids: the daemon counts them once */
    assert_int_equal(feed(chinese_export, extra, NULL, &out, &err), 1);
    free(out);
    free(err);
    assert_int_equal(read_stream("casewatch:events", ev, 16), 8);
    for (int i = 0; i < 4; i++) assert_string_equal(ev[4 + i].id, ev[i].id);
}

static void feed_takes_iso_and_local_times_and_a_missing_v_in_json_lines(void **state) {
    (void)state;
    flush_all();
    const char *in =
        "{\"id\":\"j1\",\"ts\":\"2020-07-31 09:00\",\"type\":\"arrest.accepted\",\"case\":\"c1\",\"unit\":\"410923\"}\n"
        "{\"v\":1,\"id\":\"j2\",\"ts\":\"2020-07-31T01:00:00.250Z\",\"type\":\"hearing.held\",\"case\":\"c2\","
        "\"unit\":\"410923\"}\n"
        "{\"id\":\"j3\",\"ts\":\"yesterday\",\"type\":\"hearing.held\",\"case\":\"c3\",\"unit\":\"410923\"}\n"
        "{\"id\":\"j4\",\"ts\":\"2020-07-31T09:00:00+0800\",\"type\":\"hearing.held\",\"case\":\"c4\",\"unit\":\"410923\"}\n";
    char *out, *err;
    assert_int_equal(feed(in, NULL, NULL, &out, &err), 1);
    assert_non_null(strstr(err, "line 3: key 'ts': 'yesterday' is not a time"));
    free(out);
    free(err);
    cw_event ev[4];
    assert_int_equal(read_stream("casewatch:events", ev, 4), 3);
    assert_string_equal(ev[0].id, "j1");
    assert_int_equal(ev[0].v, 1);
    assert_int_equal(ev[0].ts, 1596157200000LL);
    assert_int_equal(ev[1].ts, 1596157200250LL);
    assert_int_equal(ev[2].ts, 1596157200000LL);
}

static void feed_says_once_that_a_header_lacks_required_columns(void **state) {
    (void)state;
    flush_all();
    const char *in = "编号,名称\n1,甲\n2,乙\n";
    char *out, *err;
    assert_int_equal(feed(in, NULL, NULL, &out, &err), 1);
    const char *msg = "line 1: no column gives 'ts', 'type', 'case', 'unit' (the header names: 编号, 名称)";
    char *at = strstr(err, msg);
    assert_non_null(at);
    assert_null(strstr(at + strlen(msg), "no column gives"));
    assert_non_null(strstr(err, "2 records, 0 added to casewatch:events, 2 bad"));
    free(out);
    free(err);
    cw_event ev[2];
    assert_int_equal(read_stream("casewatch:events", ev, 2), 0);
}

static void feed_takes_a_column_map_of_its_own_and_names_a_bad_one(void **state) {
    (void)state;
    flush_all();
    char map[64], bad[64];
    const char *text = "[columns]\n案号 = case\n院 = unit\n事件 = type\n日期 = ts\n[values type]\n听证 = hearing.held\n";
    cw_test_tmpfile(text, strlen(text), map, sizeof(map));
    const char *in = "案号,院,事件,日期\nh1,410923,听证,2020-07-31\n";
    const char *args[] = {"--columns", map, NULL};
    char *out, *err;
    assert_int_equal(feed(in, NULL, args, &out, &err), 0);
    free(out);
    free(err);
    cw_event ev[2];
    assert_int_equal(read_stream("casewatch:events", ev, 2), 1);
    assert_int_equal(ev[0].type, CW_EV_HEARING_HELD);
    assert_int_equal(ev[0].ts, 1596124800000LL); /* 2020-07-31 00:00 +08:00 */
    const char *btext = "[columns]\n案号 = caes\n";
    cw_test_tmpfile(btext, strlen(btext), bad, sizeof(bad));
    const char *bargs[] = {"--columns", bad, NULL};
    assert_int_equal(feed(in, NULL, bargs, &out, &err), 1);
    assert_non_null(strstr(err, ":2: [columns] 案号: 'caes' is not a key of PROTOCOL.md"));
    free(out);
    free(err);
    unlink(map);
    unlink(bad);
}

static void feed_dry_run_counts_valid_and_bad_records(void **state) {
    (void)state;
    const char *in =
        "{\"v\":1,\"id\":\"k1\",\"ts\":1596211200000,\"type\":\"hearing.held\",\"case\":\"h\",\"unit\":\"410923\"}\n"
        "{\"v\":1,\"id\":\"k2\",\"ts\":1596211200000,\"type\":\"hearing.held\",\"case\":\"h\",\"unit\":\"4109\"}\n"
        "{\"v\":1,\"id\":\"k3\",\"ts\":1596211200000,\"type\":\"nope\",\"case\":\"h\",\"unit\":\"410923\"}\n";
    const char *args[] = {"--dry-run", NULL};
    char *out, *err;
    assert_int_equal(feed(in, NULL, args, &out, &err), 1);
    assert_non_null(strstr(err, "stdin: 3 records, 1 valid, 2 bad (dry run: nothing added)"));
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
        cmocka_unit_test(feed_reads_a_chinese_export_with_local_dates_a_bom_and_crlf),
        cmocka_unit_test(feed_takes_iso_and_local_times_and_a_missing_v_in_json_lines),
        cmocka_unit_test(feed_says_once_that_a_header_lacks_required_columns),
        cmocka_unit_test(feed_takes_a_column_map_of_its_own_and_names_a_bad_one),
        cmocka_unit_test(feed_dry_run_counts_valid_and_bad_records),
    };
    return cmocka_run_group_tests_name("casewatch feed", tests, cw_testredis_group_setup, cw_testredis_group_teardown);
}
