/* Integration tests of `casewatch report` (issue 17, INDICATORS.md §6)
 * against a real redis-server: indicator hashes written here with known
 * values (and once by the daemon from a generated stream), the report run
 * in each format, its rankings, comparisons, cards, deadline counts, trend
 * and errors asserted; and the HTML rendered in headless Chromium as a
 * person sees it (tests/integration/report_chromium.sh). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "cw_testredis.h"

#define CONF "systemd/casewatch.conf"

/* HSET <prefix>:<scope>:<period> with "field", "value", ... NULL. */
static void put_hash(redisContext *c, const char *prefix, const char *scope, const char *period, ...) {
    const char *argv[64];
    char key[512];
    snprintf(key, sizeof(key), "%s:%s:%s", prefix, scope, period);
    int n = 0;
    argv[n++] = "HSET";
    argv[n++] = key;
    va_list ap;
    va_start(ap, period);
    for (const char *f; (f = va_arg(ap, const char *)) && n < 62;) argv[n++] = f;
    va_end(ap);
    redisReply *r = redisCommandArgv(c, n, argv, NULL);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    freeReplyObject(r);
}

/* The 2020-Q3 picture of 濮阳 (region 4109) the tests below know by heart:
 * four 院 (one with a small sample), another province's 院 that must not
 * be ranked with them, three 部门 and three 检察官 of 南乐 (410923), the
 * previous quarter and the year before for 南乐. */
static void write_fixture(redisContext *c, const char *p) {
    freeReplyObject(redisCommand(c, "FLUSHALL"));
    put_hash(c, p, "region:4109", "2020-Q3", "cases", "120", "extra_items", "26", "case_item_ratio", "1.2167",
             "decided_persons", "113", "plea_persons", "96", "plea_rate", "0.8496", NULL);
    put_hash(c, p, "region:41", "2020-Q3", "cases", "200", "case_item_ratio", "1.2500", NULL);
    put_hash(c, p, "unit:410923", "2020-Q3", "cases", "40", "extra_items", "13", "case_item_ratio", "1.3250",
             "decided_persons", "30", "plea_persons", "21", "plea_rate", "0.7000", "arrest_review_started", "12",
             "arrest_review_overdue", "2", NULL);
    put_hash(c, p, "unit:410923", "2020-Q2", "cases", "30", "case_item_ratio", "1.4000", NULL);
    put_hash(c, p, "unit:410923", "2019-Q3", "cases", "25", "case_item_ratio", "1.2500", NULL);
    put_hash(c, p, "unit:410922", "2020-Q3", "cases", "30", "case_item_ratio", "1.1000", "decided_persons", "40",
             "plea_persons", "36", "plea_rate", "0.9000", NULL);
    put_hash(c, p, "unit:410900", "2020-Q3", "cases", "25", "case_item_ratio", "1.2000", "decided_persons", "40",
             "plea_persons", "36", "plea_rate", "0.9000", NULL);
    put_hash(c, p, "unit:410926", "2020-Q3", "cases", "5", "case_item_ratio", "1.0500", "decided_persons", "3",
             "plea_persons", "3", "plea_rate", "1.0000", NULL);
    put_hash(c, p, "unit:420100", "2020-Q3", "cases", "50", "case_item_ratio", "1.0100", NULL);
    put_hash(c, p, "dept:410923:第一检察部", "2020-Q3", "cases", "22", "case_item_ratio", "1.5000", NULL);
    put_hash(c, p, "dept:410923:第二检察部", "2020-Q3", "cases", "18", "case_item_ratio", "1.1000", NULL);
    put_hash(c, p, "dept:410923:<b>&\"组", "2020-Q3", "cases", "21", "case_item_ratio", "1.3000", NULL);
    put_hash(c, p, "pros:410923:P001", "2020-Q3", "cases", "20", "case_item_ratio", "1.2000", NULL);
    put_hash(c, p, "pros:410923:P002", "2020-Q3", "cases", "25", "case_item_ratio", "1.0000", NULL);
    put_hash(c, p, "pros:410923:P003", "2020-Q3", "cases", "3", "case_item_ratio", "1.0000", NULL);
}

/* Runs `casewatch -c CONF -o redis.port=.. -o units.410922=.. [extra -o] report ARGS...`. */
static int report(const char *const *args, const char *extra_o, char **out, char **err) {
    char bin[256], port[64];
    cw_test_bin("casewatch", bin, sizeof(bin));
    snprintf(port, sizeof(port), "redis.port=%d", cw_test_redis.port);
    char *argv[40] = {bin, "-c", CONF, "-o", port, "-o", "units.410922=清丰县人民检察院"};
    int n = 7;
    if (extra_o) argv[n++] = "-o", argv[n++] = (char *)extra_o;
    argv[n++] = "report";
    for (int i = 0; args[i] && n < 38; i++) argv[n++] = (char *)args[i];
    argv[n] = NULL;
    return cw_test_run(argv, NULL, 0, out, err);
}

/* Where `line` is in text (fails when it is not there). */
static size_t at(const char *text, const char *line) {
    const char *p = strstr(text, line);
    if (!p) fail_msg("not in the report: '%s'", line);
    return (size_t)(p - text);
}

static void the_markdown_report_ranks_the_units_departments_and_prosecutors_as_the_hashes_say(void **state) {
    (void)state;
    redisContext *c = cw_testredis_connect(&cw_test_redis);
    write_fixture(c, "casewatch:ind");
    char *out, *err;
    const char *args[] = {"2020-Q3", "--scope", "unit:410923", "--format", "md", NULL};
    int rc = report(args, NULL, &out, &err);
    if (rc != 0) fail_msg("exit %d: %s", rc, err);
    at(out, "# 南乐县人民检察院 2020年第3季度 案件质量通报");
    /* the summary: 横比 against the city, 纵比 against 2020-Q2 and 2019-Q3 */
    at(out, "| 案件比 | 1:1.32 | 40 | 1:1.22 | 劣于 | 1:1.40 | ↓好 | 1:1.25 | ↑差 |");
    at(out, "| 认罪认罚从宽制度适用率 | 70.0% | 30 | 85.0% | 劣于 | — | — | — | — |");
    /* 院 in the city, lower 案件比 first; 410926's 5 cases are under the
     * rule's min_sample (20): shown, not ranked; 湖北 420100 is elsewhere */
    size_t t = at(out, "**案件比 · 院排名（越低越好）　濮阳市人民检察院辖区 1:1.22**");
    size_t r1 = at(out, "| 1 | 清丰县人民检察院 | 1:1.10 | 30 | 优于 | — | — | — | — |");
    size_t r2 = at(out, "| 2 | 濮阳市人民检察院 | 1:1.20 | 25 | 优于 | — | — | — | — |");
    size_t r3 = at(out, "| 3 | 南乐县人民检察院 | 1:1.32 | 40 | 劣于 | 1:1.40 | ↓好 | 1:1.25 | ↑差 |");
    size_t r4 = at(out, "| 样本不足 | 410926 | 1:1.05 | 5 | 优于 | — | — | — | — |");
    assert_true(t < r1 && r1 < r2 && r2 < r3 && r3 < r4);
    assert_null(strstr(out, "420100"));
    at(out, "样本（cases）少于 20 的 1 个院列出但不参加排名。");
    /* higher is better for 认罪认罚: a tie shares the rank */
    size_t p1 = at(out, "| 1 | 濮阳市人民检察院 | 90.0% | 40 | 优于 |");
    size_t p2 = at(out, "| 1 | 清丰县人民检察院 | 90.0% | 40 | 优于 |");
    size_t p3 = at(out, "| 3 | 南乐县人民检察院 | 70.0% | 30 | 劣于 |");
    assert_true(p1 < p2 && p2 < p3);
    /* 部门 and 检察官 of the 院, against the 院's own value */
    size_t d1 = at(out, "| 1 | \\<b>&\"组 | 1:1.30 | 21 | 优于 |");
    size_t d2 = at(out, "| 2 | 第一检察部 | 1:1.50 | 22 | 劣于 |");
    size_t d3 = at(out, "| 样本不足 | 第二检察部 | 1:1.10 | 18 | 优于 |");
    assert_true(d1 < d2 && d2 < d3);
    size_t k1 = at(out, "| 1 | P002 | 1:1.00 | 25 | 优于 |");
    size_t k2 = at(out, "| 2 | P001 | 1:1.20 | 20 | 优于 |");
    size_t k3 = at(out, "| 样本不足 | P003 | 1:1.00 | 3 | 优于 |");
    assert_true(k1 < k2 && k2 < k3);
    /* no firing set yet: said, not failed */
    at(out, "不详：Redis 中没有在办预警集合 casewatch:alerts:firing");
    /* deadline counters of the hash */
    at(out, "| 南乐县人民检察院 合计 | 审查逮捕 | 12 | 2 | 16.7% |");
    /* 8 quarters up to 2020-Q3 */
    at(out, "| 指标 | 2018-Q4 | 2019-Q1 | 2019-Q2 | 2019-Q3 | 2019-Q4 | 2020-Q1 | 2020-Q2 | 2020-Q3 |");
    at(out, "| 案件比 | — | — | — | 1:1.25 | — | — | 1:1.40 | 1:1.32 |");
    free(out);
    free(err);
    redisFree(c);
}

static void the_csv_report_starts_with_a_bom_and_quotes_every_cell(void **state) {
    (void)state;
    redisContext *c = cw_testredis_connect(&cw_test_redis);
    write_fixture(c, "casewatch:ind");
    char *out, *err;
    const char *args[] = {"2020-Q3", "--scope", "region:4109", "--format", "csv", NULL};
    int rc = report(args, NULL, &out, &err);
    if (rc != 0) fail_msg("exit %d: %s", rc, err);
    assert_memory_equal(out, "\xEF\xBB\xBF", 3);
    assert_null(memchr(out + 3, 0xEF, 1)); /* one BOM */
    size_t r1 = at(out, "\"1\",\"清丰县人民检察院\",\"1:1.10\",\"30\",\"优于\",\"—\",\"—\",\"—\",\"—\"\r\n");
    size_t r3 = at(out, "\"3\",\"南乐县人民检察院\",\"1:1.32\",\"40\",\"劣于\",\"1:1.40\",\"↓好\",\"1:1.25\",\"↑差\"\r\n");
    assert_true(r1 < r3);
    /* a region's 部门 carry their 院; a quote inside a name is doubled */
    at(out, "\"1\",\"<b>&\"\"组（南乐县人民检察院）\",\"1:1.30\",\"21\"");
    free(out);
    free(err);
    redisFree(c);
}

static void the_html_report_is_one_self_contained_escaped_page_for_a4(void **state) {
    (void)state;
    redisContext *c = cw_testredis_connect(&cw_test_redis);
    write_fixture(c, "casewatch:ind");
    char path[] = "/tmp/cwreport-XXXXXX.html";
    int fd = mkstemps(path, 5);
    assert_true(fd >= 0);
    close(fd);
    char *out, *err;
    const char *args[] = {"2020-Q3", "--scope", "unit:410923", "-o", path, NULL};
    int rc = report(args, NULL, &out, &err);
    if (rc != 0) fail_msg("exit %d: %s", rc, err);
    assert_string_equal(out, "");
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char *html = calloc(1, 1 << 20);
    size_t n = fread(html, 1, (1 << 20) - 1, f);
    fclose(f);
    unlink(path);
    assert_true(n > 1000);
    assert_memory_equal(html, "<!DOCTYPE html>", 15);
    at(html, "@page{size:A4 portrait");
    at(html, "<table id=\"rank-unit-case_item_ratio\" class=\"rank\">");
    at(html, "<tr data-scope=\"unit:410923\" class=\"self\"><td class=\"rank\">3</td>");
    at(html, "<figure class=\"chart\" id=\"trend-case_item_ratio\"><svg");
    /* names are text, never markup */
    at(html, "&lt;b&gt;&amp;&quot;组");
    assert_null(strstr(html, "<b>"));
    /* nothing fetched, nothing run */
    assert_null(strstr(html, "<script"));
    assert_null(strstr(html, "http:"));
    assert_null(strstr(html, "https:"));
    assert_null(strstr(html, "src="));
    assert_null(strstr(html, "url("));
    assert_null(strstr(html, "@import"));
    free(html);
    free(out);
    free(err);
    redisFree(c);
}

static void the_cards_in_force_are_read_from_the_firing_hash(void **state) {
    (void)state;
    redisContext *c = cw_testredis_connect(&cw_test_redis);
    write_fixture(c, "casewatch:ind");
    freeReplyObject(redisCommand(
        c, "HSET casewatch:alerts:firing %s %s %s %s %s %s", "case_item_ratio.yellow/unit:410923/2020-Q3",
        "{\"id\":\"case_item_ratio.yellow/unit:410923/2020-Q3\",\"state\":\"firing\",\"level\":\"yellow\","
        "\"label\":\"黄牌预警\",\"rule\":\"case_item_ratio.yellow\",\"scope\":\"unit:410923\",\"unit\":\"410923\","
        "\"indicator\":\"case_item_ratio\",\"value\":1.325,\"threshold\":1.15,\"period\":\"2020-Q3\"}",
        "deadline.arrest_review/case:410923:A1/2020-08-04", 
        "{\"id\":\"deadline.arrest_review/case:410923:A1/2020-08-04\",\"state\":\"firing\",\"level\":\"red\","
        "\"label\":\"超期预警\",\"rule\":\"deadline.arrest_review\",\"scope\":\"case:410923:A1\",\"unit\":\"410923\","
        "\"deadline\":\"2020-08-04T00:00:00+08:00\"}",
        "case_item_ratio.yellow/unit:420100/2020-Q3",
        "{\"id\":\"case_item_ratio.yellow/unit:420100/2020-Q3\",\"state\":\"firing\",\"level\":\"yellow\","
        "\"label\":\"黄牌预警\",\"rule\":\"case_item_ratio.yellow\",\"scope\":\"unit:420100\",\"unit\":\"420100\","
        "\"indicator\":\"case_item_ratio\",\"value\":1.2,\"threshold\":1.15,\"period\":\"2020-Q3\"}"));
    char *out, *err;
    const char *args[] = {"2020-Q3", "--scope", "unit:410923", "--format", "md", NULL};
    int rc = report(args, NULL, &out, &err);
    if (rc != 0) fail_msg("exit %d: %s", rc, err);
    at(out, "| 黄 | 黄牌预警 | 南乐县人民检察院 | 案件比 | 2020-Q3 | 1:1.32 | 1:1.15 |");
    at(out, "| 南乐县人民检察院 | 红 | 超期预警 | 1 |");
    assert_null(strstr(out, "420100"));
    assert_null(strstr(out, "不详"));
    free(out);
    free(err);
    redisFree(c);
}

/* A prefix holding SCAN's glob characters matches only itself. */
static void a_prefix_with_glob_characters_is_escaped_in_scan_patterns(void **state) {
    (void)state;
    redisContext *c = cw_testredis_connect(&cw_test_redis);
    write_fixture(c, "c?[w]*");
    /* what an unescaped "c?[w]*:unit:4109*" would also match */
    put_hash(c, "cxw-other", "unit:410921", "2020-Q3", "cases", "99", "case_item_ratio", "1.0000", NULL);
    put_hash(c, "c?[w]*", "unit:4109\\*", "2020-Q3", "cases", "99", "case_item_ratio", "1.0000", NULL);
    char *out, *err;
    const char *args[] = {"2020-Q3", "--scope", "unit:410923", "--format", "md", NULL};
    int rc = report(args, "indicators.prefix=c?[w]*", &out, &err);
    if (rc != 0) fail_msg("exit %d: %s", rc, err);
    at(out, "| 3 | 南乐县人民检察院 | 1:1.32 | 40 | 劣于 | 1:1.40 | ↓好 | 1:1.25 | ↑差 |");
    assert_null(strstr(out, "410921"));
    assert_null(strstr(out, "4109\\"));
    free(out);
    free(err);
    redisFree(c);
}

static void bad_input_gets_a_clear_message_and_exit_status_1(void **state) {
    (void)state;
    redisContext *c = cw_testredis_connect(&cw_test_redis);
    write_fixture(c, "casewatch:ind");
    static const struct {
        const char *args[8];
        const char *says;
    } cases[] = {
        {{"2020-13", NULL}, "period '2020-13' is not a month (2020-07), a quarter (2020-Q3) or a year (2020)"},
        {{"2020-Q5", NULL}, "period '2020-Q5' is not"},
        {{"Q3", NULL}, "period 'Q3' is not"},
        {{"rolling-30d", NULL}, "period 'rolling-30d' is not"},
        {{"2020-Q3", "--scope", "unit:4109", NULL}, "scope 'unit:4109' is not unit:CODE"},
        {{"2020-Q3", "--scope", "dept:410923:第一检察部", NULL}, "scope 'dept:410923:第一检察部' is not"},
        {{"2020-Q3", "--format", "pdf", NULL}, "--format must be html, csv or md, not 'pdf'"},
        {{NULL}, "which period?"},
        {{"2020-Q3", "--scope", "unit:410999", NULL},
         "no data for unit:410999 in 2020-Q3 (no hash casewatch:ind:unit:410999:2020-Q3) — is the daemon's "
         "[indicators] prefix the same?"},
        {{"2020-Q1", "--scope", "unit:410923", NULL}, "no data for unit:410923 in 2020-Q1"},
        {{"2020-Q3", "-o", "/nonexistent-dir/report.html", NULL},
         "cannot write /nonexistent-dir/report.html: No such file or directory"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *out, *err;
        int rc = report(cases[i].args, NULL, &out, &err);
        if (rc != 1 || !strstr(err, cases[i].says))
            fail_msg("case %zu: exit %d, stderr '%s', expected 1 and '%s'", i, rc, err, cases[i].says);
        assert_string_equal(out, "");
        free(out);
        free(err);
    }
    /* no data: no file is left behind */
    char *out, *err;
    const char *nodata[] = {"2021-Q1", "--scope", "unit:410923", "-o", "/tmp/cwreport-nodata.html", NULL};
    unlink("/tmp/cwreport-nodata.html");
    assert_int_equal(report(nodata, NULL, &out, &err), 1);
    assert_int_not_equal(access("/tmp/cwreport-nodata.html", F_OK), 0);
    free(out);
    free(err);
    /* without --scope: the province holding data, when there is one */
    const char *whole[] = {"2020-Q3", "--format", "md", NULL};
    assert_int_equal(report(whole, NULL, &out, &err), 0);
    at(out, "# 河南省人民检察院辖区 2020年第3季度 案件质量通报");
    free(out);
    free(err);
    put_hash(c, "casewatch:ind", "region:42", "2020-Q3", "cases", "50", "case_item_ratio", "1.0100", NULL);
    assert_int_equal(report(whole, NULL, &out, &err), 1);
    at(err, "2 provinces hold data in 2020-Q3: choose one with --scope region:NN");
    free(out);
    free(err);
    redisFree(c);
}

/* What the daemon writes is what the report reads: one generated quarter. */
static void a_report_reads_what_the_daemon_wrote(void **state) {
    (void)state;
    redisContext *c = cw_testredis_connect(&cw_test_redis);
    freeReplyObject(redisCommand(c, "FLUSHALL"));
    const char *gen[] = {"--seed", "11", "--cases", "600", "--days", "180", NULL};
    char *lines = cw_test_gen(gen);
    long long n = 0;
    for (const char *p = lines; *p; p++) n += *p == '\n';
    cw_test_feed_raw(lines, strlen(lines));
    static const char *const event_clock[] = {"daemon.clock=event", NULL};
    pid_t pid = cw_test_daemon_start_with(CONF, event_clock);
    cw_test_wait_read(c, n);
    cw_test_daemon_stop(pid);
    char *out, *err;
    const char *args[] = {"2020-Q2", "--format", "md", NULL}; /* no scope: the one province, 41 */
    int rc = report(args, NULL, &out, &err);
    if (rc != 0) fail_msg("exit %d: %s", rc, err);
    at(out, "# 河南省人民检察院辖区 2020年第2季度 案件质量通报");
    /* the summary's 案件比 is the region hash's, and the 院 come in its order */
    char *v = cw_test_hget(c, "casewatch:ind:region:41:2020-Q2", "case_item_ratio");
    char line[200];
    snprintf(line, sizeof(line), "| 案件比 | 1:%.2f | %lld |", atof(v), cw_test_hget_ll(c, "casewatch:ind:region:41:2020-Q2", "cases"));
    at(out, line);
    free(v);
    const char *units[3] = {"410923", "410922", "410900"};
    const char *names[3] = {"南乐县人民检察院", "清丰县人民检察院", "濮阳市人民检察院"};
    double val[3];
    size_t pos[3];
    for (int u = 0; u < 3; u++) {
        char key[128];
        snprintf(key, sizeof(key), "casewatch:ind:unit:%s:2020-Q2", units[u]);
        char *s = cw_test_hget(c, key, "case_item_ratio");
        val[u] = atof(s);
        free(s);
        assert_true(cw_test_hget_ll(c, key, "cases") >= 20); /* all ranked */
        size_t t = at(out, "**案件比 · 院排名");
        snprintf(line, sizeof(line), " | %s | 1:%.2f |", names[u], val[u]);
        pos[u] = t + at(out + t, line);
    }
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 3; b++)
            if (val[a] < val[b]) assert_true(pos[a] < pos[b]);
    free(out);
    free(err);
    free(lines);
    redisFree(c);
}

/* ---- As a person sees it: Chromium ---------------------------------------- */

static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("cannot read %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = calloc(1, (size_t)n + 1);
    assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    if (len) *len = (size_t)n;
    return b;
}

/* The text of the first <td class="cls"> after p, before end. */
static void td_text(const char *p, const char *end, const char *cls, char *out, size_t len) {
    char pat[64];
    snprintf(pat, sizeof(pat), "<td class=\"%s\">", cls);
    const char *s = strstr(p, pat);
    out[0] = '\0';
    if (!s || s > end) return;
    s += strlen(pat);
    const char *e = strchr(s, '<');
    snprintf(out, len, "%.*s", (int)(e - s), s);
}

static void the_html_report_renders_in_chromium_with_the_ranking_of_the_hashes(void **state) {
    (void)state;
    if (getenv("CW_SKIP_CHROMIUM")) skip();
    redisContext *c = cw_testredis_connect(&cw_test_redis);
    write_fixture(c, "casewatch:ind");
    char dir[] = "/tmp/cwreport-chromium-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char html[128], cmd[512];
    snprintf(html, sizeof(html), "%s/report.html", dir);
    char *out, *err;
    const char *args[] = {"2020-Q3", "--scope", "unit:410923", "-o", html, NULL};
    int rc = report(args, NULL, &out, &err);
    if (rc != 0) fail_msg("exit %d: %s", rc, err);
    free(out);
    free(err);
    snprintf(cmd, sizeof(cmd), "sh tests/integration/report_chromium.sh '%s' '%s/out'", html, dir);
    assert_int_equal(system(cmd), 0);

    /* the PNG: one A4 page's width and height at 96 dpi, and not blank */
    char path[256];
    snprintf(path, sizeof(path), "%s/out/report.png", dir);
    size_t plen;
    unsigned char *png = (unsigned char *)slurp(path, &plen);
    assert_memory_equal(png, "\x89PNG\r\n\x1a\n", 8);
    unsigned w = (unsigned)png[16] << 24 | (unsigned)png[17] << 16 | (unsigned)png[18] << 8 | png[19];
    unsigned h = (unsigned)png[20] << 24 | (unsigned)png[21] << 16 | (unsigned)png[22] << 8 | png[23];
    assert_int_equal(w, 794);
    assert_int_equal(h, 1123);
    assert_true(plen > 50000); /* a page of text and tables, not an empty one */
    free(png);

    /* printed: A4 portrait pages (595 x 842 pt) */
    snprintf(path, sizeof(path), "%s/out/report.pdf", dir);
    size_t dlen;
    char *pdf = slurp(path, &dlen);
    assert_non_null(memmem(pdf, dlen, "/MediaBox [0 0 594.95996 841.91998]", 35));
    assert_null(memmem(pdf, dlen, "/MediaBox [0 0 841.91998", 24));
    free(pdf);

    /* the DOM Chromium built: nothing out of the page, and the ranking
     * table of the 院 in the order and with the values of the hashes */
    snprintf(path, sizeof(path), "%s/out/dom.html", dir);
    char *dom = slurp(path, NULL);
    const char *body = strstr(dom, "<body");
    assert_non_null(body);
    if (!strstr(body, "data-overflow=\"0\"")) fail_msg("elements overflow the A4 width: %.200s", body);
    assert_non_null(strstr(body, "data-body-width=\"703\"")); /* 186 mm */
    const char *t = strstr(dom, "<table id=\"rank-unit-case_item_ratio\"");
    assert_non_null(t);
    const char *tend = strstr(t, "</table>");
    static const struct {
        const char *scope, *rank, *value;
    } want[] = {
        {"unit:410922", "1", "1:1.10"},
        {"unit:410900", "2", "1:1.20"},
        {"unit:410923", "3", "1:1.32"},
        {"unit:410926", "样本不足", "1:1.05"},
    };
    const char *p = t;
    size_t i = 0;
    for (; (p = strstr(p, "<tr data-scope=\"")) && p < tend; p++, i++) {
        assert_true(i < 4);
        char scope[64], rank[64], value[64];
        const char *s = p + strlen("<tr data-scope=\"");
        snprintf(scope, sizeof(scope), "%.*s", (int)(strchr(s, '"') - s), s);
        const char *rend = strstr(p, "</tr>");
        td_text(p, rend, "rank", rank, sizeof(rank));
        td_text(p, rend, "v", value, sizeof(value));
        assert_string_equal(scope, want[i].scope);
        assert_string_equal(rank, want[i].rank);
        /* the value as the hash holds it, shown as 1:x */
        char key[128];
        snprintf(key, sizeof(key), "casewatch:ind:%s:2020-Q3", scope);
        char *hv = cw_test_hget(c, key, "case_item_ratio");
        char shown[32];
        snprintf(shown, sizeof(shown), "1:%.2f", atof(hv));
        free(hv);
        assert_string_equal(value, shown);
        assert_string_equal(value, want[i].value);
    }
    assert_int_equal(i, 4);
    free(dom);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    redisFree(c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(the_markdown_report_ranks_the_units_departments_and_prosecutors_as_the_hashes_say),
        cmocka_unit_test(the_csv_report_starts_with_a_bom_and_quotes_every_cell),
        cmocka_unit_test(the_html_report_is_one_self_contained_escaped_page_for_a4),
        cmocka_unit_test(the_cards_in_force_are_read_from_the_firing_hash),
        cmocka_unit_test(a_prefix_with_glob_characters_is_escaped_in_scan_patterns),
        cmocka_unit_test(bad_input_gets_a_clear_message_and_exit_status_1),
        cmocka_unit_test(a_report_reads_what_the_daemon_wrote),
        cmocka_unit_test(the_html_report_renders_in_chromium_with_the_ranking_of_the_hashes),
    };
    return cmocka_run_group_tests_name("report", tests, cw_testredis_group_setup, cw_testredis_group_teardown);
}
