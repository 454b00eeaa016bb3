#include "cw_report.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "../daemon/cw_ind.h"
#include "../daemon/cw_map.h"
#include "../daemon/cw_period.h"
#include "../proto/cw_buf.h"
#include "../proto/cw_text.h"
#include "cw_redis_sync.h"

/* ---- What is shown of each indicator ------------------------------------
 *
 * Which way is better is the configuration's word where a threshold or
 * rank rule watches the indicator (compare > : higher is worse); this
 * table holds the rest (INDICATORS.md §2: 案件比, 退查率, 延期率, 羁押率 and
 * 办案天数 are better low; the 适用率, 提出率, 采纳率 and reply rates high;
 * 不捕率 and 不诉率 are reference values, shown but not ranked). */

static const struct {
    const char *name;
    int better; /* -1 lower, +1 higher, 0 neither */
} default_better[] = {
    {"case_item_ratio", -1},          {"plea_rate", 1},           {"determinate_rate", 1},
    {"adoption_rate", 1},             {"return_rate", -1},        {"extension_rate", -1},
    {"non_arrest_rate", 0},           {"non_prosecution_rate", 0}, {"pretrial_detention_rate", -1},
    {"avg_review_days", -1},          {"letter_procedural_ontime_rate", 1},
    {"letter_substantive_ontime_rate", 1},
};

/* 流程监控 clocks by the names their counters carry (`<clock>_started`). */
static const struct {
    const char *clock, *zh;
} clock_names[] = {
    {"arrest_review", "审查逮捕"},
    {"prosecution_review", "审查起诉"},
    {"supplementary", "退回补充侦查"},
    {"arrest_reconsideration", "不批捕复议"},
    {"arrest_higher_review", "不批捕复核"},
    {"nonprosecution_reconsideration", "不起诉复议"},
    {"nonprosecution_higher_review", "不起诉复核"},
    {"letter_procedural", "来信程序性回复"},
    {"letter_substantive", "来信实体性答复"},
    {"stale", "挂案"},
};

enum { LV_UNIT, LV_DEPT, LV_PROS, NLV };
static const char *const lv_key[NLV] = {"unit", "dept", "pros"};
static const char *const lv_zh[NLV] = {"院", "部门", "检察官"};

enum { P_CUR, P_PREV, P_YOY, NP };
#define TREND_Q 8
#define MAX_IND 32

typedef struct ind_info {
    const char *name, *zh;
    cw_ind_kind kind;
    int better;
    const char *sample; /* the counter whose value is the sample size */
    long long min_sample[NLV];
    int has_threshold;
    double threshold;
} ind_info;

/* One hash as HGETALL gave it. */
typedef struct hashv {
    redisReply *r;
} hashv;

typedef struct ent {
    char *scope; /* as in keys: "dept:410923:第一检察部" (escaped) */
    char unit[7];
    char *label;
    const hashv *h[NP];
} ent;

typedef struct rep {
    redisContext *rc;
    const cw_config *cfg;
    cw_report_format fmt;
    char period[8], periods[NP][8], trend[TREND_Q][8];
    char scope[64];   /* "unit:410923", "region:4109", "nation" */
    char code[8];     /* the unit code or region digits; "" for nation */
    char parent[32];  /* the scope's peers' region (横比 of the summary), "" for none */
    char avg[NLV][64]; /* the region whose hash is each level's 横比 */
    cw_map *hashes;   /* "scope\nperiod" -> hashv* */
    ent *ents[NLV];
    size_t nents[NLV];
    ind_info ind[MAX_IND];
    size_t nind;
    cw_buf out;
    int col;     /* cells written in the current row */
    int ncols;
    size_t rank_tables;
    char *err;
    size_t errlen;
} rep;

/* ---- Output, in three formats -------------------------------------------- */

static void put_n(rep *r, const char *s, size_t n) {
    char *p = cw_buf_room(&r->out, n);
    if (!p) return;
    memcpy(p, s, n);
    r->out.len += n;
}

static void put(rep *r, const char *s) {
    put_n(r, s, strlen(s));
}

static void putf(rep *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(rep *r, const char *fmt, ...) {
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof(tmp)) {
        put_n(r, tmp, (size_t)n);
        return;
    }
    char *p = cw_buf_room(&r->out, (size_t)n);
    if (!p) return;
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    r->out.len += (size_t)n;
}

/* Text for people, escaped for the format: HTML entities; in Markdown the
 * table bar and line breaks; in CSV doubled quotes (cells are quoted). */
static void put_text(rep *r, const char *s) {
    for (; *s; s++) {
        const char *rep_ = NULL;
        switch (r->fmt) {
        case CW_REPORT_HTML:
            if (*s == '&') rep_ = "&amp;";
            else if (*s == '<') rep_ = "&lt;";
            else if (*s == '>') rep_ = "&gt;";
            else if (*s == '"') rep_ = "&quot;";
            else if (*s == '\'') rep_ = "&#39;";
            break;
        case CW_REPORT_MD:
            if (*s == '|') rep_ = "\\|";
            else if (*s == '\n' || *s == '\r') rep_ = " ";
            else if (*s == '*' || *s == '_' || *s == '`' || *s == '<' || *s == '[' || *s == '\\') {
                char esc[3] = {'\\', *s, 0};
                put(r, esc);
                continue;
            }
            break;
        case CW_REPORT_CSV:
            if (*s == '"') rep_ = "\"\"";
            break;
        }
        if (rep_) put(r, rep_);
        else put_n(r, s, 1);
    }
}

static void heading(rep *r, int level, const char *text) {
    switch (r->fmt) {
    case CW_REPORT_HTML: putf(r, "<h%d>", level); put_text(r, text); putf(r, "</h%d>\n", level); break;
    case CW_REPORT_MD: putf(r, "%.*s ", level, "####"); put_text(r, text); put(r, "\n\n"); break;
    case CW_REPORT_CSV: put(r, "\""); put_text(r, text); put(r, "\"\r\n"); break;
    }
}

static void para(rep *r, const char *cls, const char *text) {
    switch (r->fmt) {
    case CW_REPORT_HTML:
        putf(r, "<p%s%s%s>", cls ? " class=\"" : "", cls ? cls : "", cls ? "\"" : "");
        put_text(r, text);
        put(r, "</p>\n");
        break;
    case CW_REPORT_MD: put_text(r, text); put(r, "\n\n"); break;
    case CW_REPORT_CSV: put(r, "\""); put_text(r, text); put(r, "\"\r\n\r\n"); break;
    }
}

/* A table: caption, then heads (n of them); then rows of cells. */
static void table_begin(rep *r, const char *id, const char *cls, const char *caption, const char *const *heads,
                        int n) {
    r->ncols = n;
    switch (r->fmt) {
    case CW_REPORT_HTML:
        putf(r, "<table id=\"%s\" class=\"%s\">", id, cls);
        if (caption) {
            put(r, "<caption>");
            put_text(r, caption);
            put(r, "</caption>");
        }
        put(r, "<thead><tr>");
        for (int i = 0; i < n; i++) {
            put(r, "<th>");
            put_text(r, heads[i]);
            put(r, "</th>");
        }
        put(r, "</tr></thead>\n<tbody>\n");
        break;
    case CW_REPORT_MD:
        if (caption) {
            put(r, "**");
            put_text(r, caption);
            put(r, "**\n\n");
        }
        put(r, "|");
        for (int i = 0; i < n; i++) {
            put(r, " ");
            put_text(r, heads[i]);
            put(r, " |");
        }
        put(r, "\n|");
        for (int i = 0; i < n; i++) put(r, i < 2 ? "---|" : "--:|");
        put(r, "\n");
        break;
    case CW_REPORT_CSV:
        if (caption) {
            put(r, "\"");
            put_text(r, caption);
            put(r, "\"\r\n");
        }
        for (int i = 0; i < n; i++) {
            put(r, i ? ",\"" : "\"");
            put_text(r, heads[i]);
            put(r, "\"");
        }
        put(r, "\r\n");
        break;
    }
}

static void row_begin(rep *r, const char *scope, const char *cls) {
    r->col = 0;
    switch (r->fmt) {
    case CW_REPORT_HTML:
        put(r, "<tr");
        if (scope) {
            put(r, " data-scope=\"");
            put_text(r, scope);
            put(r, "\"");
        }
        if (cls) putf(r, " class=\"%s\"", cls);
        put(r, ">");
        break;
    case CW_REPORT_MD: put(r, "|"); break;
    case CW_REPORT_CSV: break;
    }
}

/* One cell; `word` (may be NULL) follows the text in CSV and Markdown,
 * where there is no colour to say better or worse. */
static void cell(rep *r, const char *cls, const char *text) {
    switch (r->fmt) {
    case CW_REPORT_HTML:
        if (cls) putf(r, "<td class=\"%s\">", cls);
        else put(r, "<td>");
        put_text(r, text);
        put(r, "</td>");
        break;
    case CW_REPORT_MD:
        put(r, " ");
        put_text(r, *text ? text : " ");
        put(r, " |");
        break;
    case CW_REPORT_CSV:
        put(r, r->col ? ",\"" : "\"");
        put_text(r, text);
        put(r, "\"");
        break;
    }
    r->col++;
}

static void row_end(rep *r) {
    switch (r->fmt) {
    case CW_REPORT_HTML: put(r, "</tr>\n"); break;
    case CW_REPORT_MD: put(r, "\n"); break;
    case CW_REPORT_CSV: put(r, "\r\n"); break;
    }
}

static void table_end(rep *r, const char *note) {
    switch (r->fmt) {
    case CW_REPORT_HTML:
        put(r, "</tbody></table>\n");
        if (note) para(r, "note", note);
        break;
    case CW_REPORT_MD:
        put(r, "\n");
        if (note) para(r, NULL, note);
        break;
    case CW_REPORT_CSV:
        if (note) {
            put(r, "\"");
            put_text(r, note);
            put(r, "\"\r\n");
        }
        put(r, "\r\n");
        break;
    }
}

/* ---- Values ------------------------------------------------------------- */

static const char *hfield(const hashv *h, const char *name) {
    if (!h) return NULL;
    for (size_t i = 0; i + 1 < h->r->elements; i += 2)
        if (strcmp(h->r->element[i]->str, name) == 0) return h->r->element[i + 1]->str;
    return NULL;
}

/* The indicator's value in h, and its sample: 1, or 0 when undefined. */
static int value_of(const hashv *h, const ind_info *ii, double *v, long long *sample) {
    const char *s = hfield(h, ii->name);
    if (!s) return 0;
    *v = atof(s);
    const char *n = hfield(h, ii->sample);
    *sample = n ? atoll(n) : 0;
    return 1;
}

static void fmt_value(const ind_info *ii, double v, char *buf, size_t len) {
    switch (ii->kind) {
    case CW_IND_RATIO: snprintf(buf, len, "1:%.2f", v); break;
    case CW_IND_RATE: snprintf(buf, len, "%.1f%%", v * 100); break;
    case CW_IND_DAYS: snprintf(buf, len, "%.1f天", v); break;
    default: snprintf(buf, len, "%.0f", v);
    }
}

/* How `now` stands against `then` for this indicator: the arrow says
 * which way the value moved, the word whether that is better. */
static const char *judge(const ind_info *ii, double now, double then, char *buf, size_t len, const char **cls) {
    double d = now - then;
    *cls = NULL;
    if (fabs(d) < 1e-9) {
        snprintf(buf, len, "→持平");
        return buf;
    }
    const char *arrow = d > 0 ? "↑" : "↓";
    if (!ii->better) {
        snprintf(buf, len, "%s", arrow);
        return buf;
    }
    int good = (d > 0) == (ii->better > 0);
    *cls = good ? "good" : "bad";
    snprintf(buf, len, "%s%s", arrow, good ? "好" : "差");
    return buf;
}

/* Against the region (横比): 优于 / 劣于 / 持平 its value. */
static const char *versus(const ind_info *ii, double v, double avg, const char **cls) {
    *cls = NULL;
    if (fabs(v - avg) < 1e-9) return "持平";
    if (!ii->better) return v > avg ? "高于" : "低于";
    int good = (v > avg) == (ii->better > 0);
    *cls = good ? "good" : "bad";
    return good ? "优于" : "劣于";
}

static const hashv *hash_at(const rep *r, const char *scope, const char *period) {
    char k[700];
    int n = snprintf(k, sizeof(k), "%s\n%s", scope, period);
    return (n > 0 && (size_t)n < sizeof(k)) ? cw_map_get(r->hashes, k, (size_t)n) : NULL;
}

/* ---- Configuration: min samples, directions, names ------------------------ */

static const char *rule_get(const cw_config *c, const char *rule, const char *key) {
    for (size_t i = 0; i < c->nrule_kvs; i++)
        if (strcmp(c->rule_kvs[i].rule, rule) == 0 && strcmp(c->rule_kvs[i].key, key) == 0)
            return c->rule_kvs[i].value;
    return NULL;
}

/* Whether the comma list `list` holds `word` (spaces around items ignored). */
static int list_has(const char *list, const char *word) {
    size_t wl = strlen(word);
    for (const char *p = list; p && *p;) {
        while (*p == ' ' || *p == ',') p++;
        const char *e = p;
        while (*e && *e != ',') e++;
        const char *t = e;
        while (t > p && t[-1] == ' ') t--;
        if ((size_t)(t - p) == wl && strncmp(p, word, wl) == 0) return 1;
        p = e;
    }
    return 0;
}

static size_t nind_fields(void) {
    cw_ind_field f;
    size_t n = 0;
    for (size_t i = 0; cw_ind_fields(i, &f); i++) n += f.kind != CW_IND_COUNTER;
    return n;
}

/* Fills r->ind from the field table of cw_ind and the [rule] sections: a
 * threshold or rank rule on an indicator gives its direction, its
 * threshold (drawn in the trend) and, per scope level it names, the
 * min_sample below which a value is shown but not ranked. */
static void load_indicators(rep *r) {
    cw_ind_field f;
    for (size_t i = 0; cw_ind_fields(i, &f) && r->nind < MAX_IND; i++) {
        if (f.kind == CW_IND_COUNTER) continue;
        ind_info *ii = &r->ind[r->nind++];
        memset(ii, 0, sizeof(*ii));
        ii->name = f.name, ii->zh = f.zh, ii->kind = f.kind;
        for (size_t k = 0; k < sizeof(default_better) / sizeof(default_better[0]); k++)
            if (strcmp(default_better[k].name, f.name) == 0) ii->better = default_better[k].better;
        /* the sample is the indicator's denominator; counters follow the
         * indicators in cw_ind_fields */
        int x = cw_ind_indicator_index(f.name);
        cw_ind_field cf;
        ii->sample = "cases";
        if (x >= 0 && cw_ind_fields(nind_fields() + (size_t)cw_ind_denominator(x), &cf)) ii->sample = cf.name;
        for (int lv = 0; lv < NLV; lv++) ii->min_sample[lv] = 1;
    }
    const cw_config *c = r->cfg;
    for (size_t i = 0; i < c->nrule_kvs; i++) {
        const char *rule = c->rule_kvs[i].rule;
        if (i > 0 && strcmp(c->rule_kvs[i - 1].rule, rule) == 0) continue; /* each rule once */
        const char *kind = rule_get(c, rule, "kind"), *indicator = rule_get(c, rule, "indicator");
        if (!kind || !indicator || (strcmp(kind, "threshold") != 0 && strcmp(kind, "rank") != 0)) continue;
        for (size_t k = 0; k < r->nind; k++) {
            ind_info *ii = &r->ind[k];
            if (strcmp(ii->name, indicator) != 0) continue;
            const char *cmp = rule_get(c, rule, "compare"), *scope = rule_get(c, rule, "scope");
            const char *ms = rule_get(c, rule, "min_sample"), *sample = rule_get(c, rule, "sample");
            const char *th = rule_get(c, rule, "threshold"), *period = rule_get(c, rule, "period");
            if (cmp) ii->better = cmp[0] == '>' ? -1 : 1;
            if (sample && strcmp(kind, "threshold") == 0) ii->sample = sample;
            if (th && !ii->has_threshold && strcmp(kind, "threshold") == 0 && period && strcmp(period, "quarter") == 0)
                ii->has_threshold = 1, ii->threshold = atof(th);
            for (int lv = 0; lv < NLV && ms; lv++)
                if (scope && list_has(scope, lv_key[lv]) && atoll(ms) > ii->min_sample[lv])
                    ii->min_sample[lv] = atoll(ms);
        }
    }
}

/* A region or the nation as people say it. */
static void region_label(const rep *r, const char *scope, char *buf, size_t len) {
    if (strcmp(scope, "nation") == 0) {
        snprintf(buf, len, "全国");
        return;
    }
    const char *digits = scope + 7;
    char code[7];
    snprintf(code, sizeof(code), "%s%s", digits, strlen(digits) == 2 ? "0000" : "00");
    const char *name = cw_config_unit_name(r->cfg, code);
    if (name) snprintf(buf, len, "%s辖区", name);
    else snprintf(buf, len, "区域 %s", digits);
}

static void scope_label(const rep *r, const char *scope, char *buf, size_t len) {
    if (strncmp(scope, "unit:", 5) == 0) {
        const char *name = cw_config_unit_name(r->cfg, scope + 5);
        snprintf(buf, len, "%s", name ? name : scope + 5);
    } else {
        region_label(r, scope, buf, len);
    }
}

/* ---- Arguments ---------------------------------------------------------- */

static int all_digits(const char *s, size_t n) {
    return strlen(s) == n && strspn(s, "0123456789") == n;
}

int cw_report_format_parse(const char *s, cw_report_format *out) {
    if (strcmp(s, "html") == 0) *out = CW_REPORT_HTML;
    else if (strcmp(s, "csv") == 0) *out = CW_REPORT_CSV;
    else if (strcmp(s, "md") == 0 || strcmp(s, "markdown") == 0) *out = CW_REPORT_MD;
    else return -1;
    return 0;
}

static int period_ok(const char *p) {
    if (strlen(p) == 4) return all_digits(p, 4);
    if (strlen(p) != 7 || p[4] != '-' || strspn(p, "0123456789") != 4) return 0;
    if (p[5] == 'Q') return p[6] >= '1' && p[6] <= '4';
    int m = atoi(p + 5);
    return all_digits(p + 5, 2) && m >= 1 && m <= 12;
}

static int scope_ok(const char *s) {
    if (strcmp(s, "nation") == 0) return 1;
    if (strncmp(s, "unit:", 5) == 0) return all_digits(s + 5, 6);
    if (strncmp(s, "region:", 7) == 0) return all_digits(s + 7, 2) || all_digits(s + 7, 4);
    return 0;
}

int cw_report_check_args(const char *period, const char *scope, char *err, size_t errlen) {
    if (!period_ok(period))
        return cw_errf(err, errlen, "period '%s' is not a month (2020-07), a quarter (2020-Q3) or a year (2020)",
                       period);
    if (scope && !scope_ok(scope))
        return cw_errf(err, errlen,
                       "scope '%s' is not unit:CODE (a 院's 6 digits), region:NNNN (a city), region:NN (a "
                       "province) or nation",
                       scope);
    return 0;
}

/* ---- Reading Redis ------------------------------------------------------- */

/* s with the glob characters of SCAN MATCH (*?[]\) escaped. */
static void glob_escape(const char *s, char *out, size_t len) {
    size_t o = 0;
    for (; *s && o + 3 < len; s++) {
        if (strchr("*?[]\\", *s)) out[o++] = '\\';
        out[o++] = *s;
    }
    out[o] = '\0';
}

typedef struct keylist {
    char **k;
    size_t n, cap;
} keylist;

static int keylist_add(keylist *l, const char *k) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        char **n = realloc(l->k, cap * sizeof(*n));
        if (!n) return -1;
        l->k = n, l->cap = cap;
    }
    if (!(l->k[l->n] = strdup(k))) return -1;
    l->n++;
    return 0;
}

static void keylist_free(keylist *l) {
    for (size_t i = 0; i < l->n; i++) free(l->k[i]);
    free(l->k);
}

/* Every key matching `pattern` (a SCAN MATCH glob) into l. Returns 0 or
 * -1 with a message. */
static int scan(rep *r, const char *pattern, keylist *l) {
    char cursor[32] = "0";
    do {
        redisReply *x = redisCommand(r->rc, "SCAN %s MATCH %s COUNT 1000", cursor, pattern);
        if (!x || x->type != REDIS_REPLY_ARRAY || x->elements != 2) {
            cw_errf(r->err, r->errlen, "SCAN failed: %s", x && x->type == REDIS_REPLY_ERROR ? x->str : r->rc->errstr);
            if (x) freeReplyObject(x);
            return -1;
        }
        snprintf(cursor, sizeof(cursor), "%s", x->element[0]->str);
        for (size_t i = 0; i < x->element[1]->elements; i++)
            if (keylist_add(l, x->element[1]->element[i]->str) < 0) {
                freeReplyObject(x);
                return cw_errf(r->err, r->errlen, "out of memory");
            }
        freeReplyObject(x);
    } while (strcmp(cursor, "0") != 0);
    return 0;
}

/* HGETALL of every (scope, period) in the lists, pipelined; the non-empty
 * ones go into r->hashes. Returns 0 or -1 with a message. */
static int fetch(rep *r, char **scopes, char **periods, size_t n) {
    const char *prefix = r->cfg->ind_prefix;
    for (size_t i = 0; i < n; i++)
        if (redisAppendCommand(r->rc, "HGETALL %s:%s:%s", prefix, scopes[i], periods[i]) != REDIS_OK)
            return cw_errf(r->err, r->errlen, "redis: %s", r->rc->errstr);
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        redisReply *x = NULL;
        if (redisGetReply(r->rc, (void **)&x) != REDIS_OK || !x)
            return cw_errf(r->err, r->errlen, "redis: %s", r->rc->errstr);
        if (x->type != REDIS_REPLY_ARRAY || x->elements == 0 || bad) {
            if (x->type == REDIS_REPLY_ERROR && !bad)
                bad = 1, cw_errf(r->err, r->errlen, "HGETALL %s:%s:%s: %s", prefix, scopes[i], periods[i], x->str);
            freeReplyObject(x);
            continue;
        }
        char k[700];
        int kl = snprintf(k, sizeof(k), "%s\n%s", scopes[i], periods[i]);
        hashv *h = malloc(sizeof(*h));
        if (!h || kl < 0 || (size_t)kl >= sizeof(k) || cw_map_get(r->hashes, k, (size_t)kl) ||
            cw_map_put(r->hashes, k, (size_t)kl, h) < 0) {
            free(h);
            freeReplyObject(x);
            continue;
        }
        h->r = x;
    }
    return bad ? -1 : 0;
}

static int by_label(const void *a, const void *b) {
    const ent *x = a, *y = b;
    return strcmp(x->scope, y->scope);
}

/* The level's scopes under the report's scope (SCAN over the configured
 * prefix), each with its hashes of the three compared periods. */
static int load_level(rep *r, int lv, keylist *want_s, keylist *want_p) {
    char pre[300], code[32], pattern[700];
    glob_escape(r->cfg->ind_prefix, pre, sizeof(pre));
    /* a 院's peers are its city's 院; its departments and prosecutors its own */
    if (lv == LV_UNIT && strncmp(r->scope, "unit:", 5) == 0) snprintf(code, sizeof(code), "%.4s", r->code);
    else snprintf(code, sizeof(code), "%s%s", r->code, lv != LV_UNIT && r->scope[0] == 'u' ? ":" : "");
    char esc[64];
    glob_escape(code, esc, sizeof(esc));
    snprintf(pattern, sizeof(pattern), "%s:%s:%s*", pre, lv_key[lv], esc);
    keylist l = {0};
    if (scan(r, pattern, &l) < 0) {
        keylist_free(&l);
        return -1;
    }
    size_t plen = strlen(r->cfg->ind_prefix) + 1;
    cw_map *seen = cw_map_new();
    int rc = seen ? 0 : -1;
    for (size_t i = 0; rc == 0 && i < l.n; i++) {
        const char *k = l.k[i];
        if (strlen(k) <= plen) continue;
        const char *sc = k + plen, *last = strrchr(sc, ':');
        if (!last) continue;
        size_t sl = (size_t)(last - sc);
        /* "unit:410923" has one ':', dept and pros scopes two */
        const char *c1 = memchr(sc, ':', sl), *c2 = c1 ? memchr(c1 + 1, ':', sl - (size_t)(c1 + 1 - sc)) : NULL;
        if (!c1 || (lv == LV_UNIT) != !c2 || (c2 ? c2 : sc + sl) - c1 != 7 || strspn(c1 + 1, "0123456789") < 6)
            continue; /* not a 院's 6 digits */
        int p = -1;
        for (int j = 0; j < NP; j++)
            if (strcmp(last + 1, r->periods[j]) == 0) p = j;
        if (p < 0) continue;
        char s[600];
        snprintf(s, sizeof(s), "%.*s", (int)sl, sc);
        if (keylist_add(want_s, s) < 0 || keylist_add(want_p, r->periods[p]) < 0) rc = -1;
        if (p == P_CUR && !cw_map_get(seen, s, sl)) {
            ent *n = realloc(r->ents[lv], (r->nents[lv] + 1) * sizeof(*n));
            if (!n) {
                rc = -1;
                break;
            }
            r->ents[lv] = n;
            ent *e = &n[r->nents[lv]++];
            memset(e, 0, sizeof(*e));
            e->scope = strdup(s);
            snprintf(e->unit, sizeof(e->unit), "%.6s", c1 + 1);
            cw_map_put(seen, s, sl, e);
        }
    }
    cw_map_free(seen);
    keylist_free(&l);
    if (rc < 0) return cw_errf(r->err, r->errlen, "out of memory");
    if (r->nents[lv]) qsort(r->ents[lv], r->nents[lv], sizeof(ent), by_label);
    for (size_t i = 0; i < r->nents[lv]; i++) {
        ent *e = &r->ents[lv][i];
        char name[400] = "", unit[256];
        const char *uname = cw_config_unit_name(r->cfg, e->unit);
        snprintf(unit, sizeof(unit), "%s", uname ? uname : e->unit);
        if (lv == LV_UNIT) snprintf(name, sizeof(name), "%s", unit);
        else cw_key_unescape(e->scope + 12, name, sizeof(name)); /* "dept:410923:" */
        if (lv != LV_UNIT && r->scope[0] != 'u') {
            size_t nl = strlen(name);
            snprintf(name + nl, sizeof(name) - nl, "（%s）", unit);
        }
        e->label = strdup(name);
    }
    return 0;
}

/* With no scope asked for: the one province holding data in the period. */
static int pick_province(rep *r) {
    char pre[300], pattern[400];
    glob_escape(r->cfg->ind_prefix, pre, sizeof(pre));
    snprintf(pattern, sizeof(pattern), "%s:region:[0-9][0-9]:%s", pre, r->period);
    keylist l = {0};
    if (scan(r, pattern, &l) < 0) {
        keylist_free(&l);
        return -1;
    }
    int rc = 0;
    if (l.n == 1) {
        snprintf(r->scope, sizeof(r->scope), "region:%.2s", l.k[0] + strlen(r->cfg->ind_prefix) + 8);
    } else if (l.n == 0) {
        rc = cw_errf(r->err, r->errlen,
                     "no data for any province in %s (no %s:region:NN:%s) — is the daemon's [indicators] prefix "
                     "the same?",
                     r->period, r->cfg->ind_prefix, r->period);
    } else {
        rc = cw_errf(r->err, r->errlen, "%zu provinces hold data in %s: choose one with --scope region:NN", l.n,
                     r->period);
    }
    keylist_free(&l);
    return rc;
}

/* ---- Sections ------------------------------------------------------------ */

static void summary(rep *r) {
    char label[256], plabel[256], h[64];
    scope_label(r, r->scope, label, sizeof(label));
    heading(r, 2, "一、总体情况");
    const char *heads[] = {"指标", "本期", "样本", "区域值", "横比", "上期", "环比", "去年同期", "同比"};
    char cap[1024];
    if (r->parent[0]) {
        region_label(r, r->parent, plabel, sizeof(plabel));
        snprintf(cap, sizeof(cap), "%s：本期与%s（横比）、上期 %s 与去年同期 %s（纵比）", label, plabel,
                 r->periods[P_PREV], r->periods[P_YOY]);
    } else {
        snprintf(cap, sizeof(cap), "%s：本期与上期 %s、去年同期 %s（纵比）", label, r->periods[P_PREV],
                 r->periods[P_YOY]);
    }
    table_begin(r, "summary", "summary", cap, heads, 9);
    const hashv *cur = hash_at(r, r->scope, r->periods[P_CUR]), *par = hash_at(r, r->parent, r->periods[P_CUR]);
    for (size_t i = 0; i < r->nind; i++) {
        const ind_info *ii = &r->ind[i];
        double v = 0, a = 0, o = 0;
        long long n = 0, an, on;
        int have = value_of(cur, ii, &v, &n);
        row_begin(r, NULL, have ? NULL : "none");
        cell(r, "ind", ii->zh);
        char buf[64];
        const char *cls;
        fmt_value(ii, v, buf, sizeof(buf));
        cell(r, "v", have ? buf : "—");
        snprintf(buf, sizeof(buf), "%lld", n);
        cell(r, "n", have ? buf : "—");
        int ha = value_of(par, ii, &a, &an);
        fmt_value(ii, a, buf, sizeof(buf));
        cell(r, "avg", ha ? buf : "—");
        const char *vs = have && ha ? versus(ii, v, a, &cls) : "—";
        cell(r, have && ha ? cls : NULL, vs);
        for (int p = P_PREV; p <= P_YOY; p++) {
            int ho = value_of(hash_at(r, r->scope, r->periods[p]), ii, &o, &on);
            fmt_value(ii, o, buf, sizeof(buf));
            cell(r, "old", ho ? buf : "—");
            cls = NULL;
            const char *j = have && ho ? judge(ii, v, o, h, sizeof(h), &cls) : "—";
            cell(r, cls, j);
        }
        row_end(r);
    }
    table_end(r, "箭头表示数值升降，“好/差”依该指标的优劣方向（案件比、退查率、延期率、羁押率、办案天数越低越好；"
                 "适用率、提出率、采纳率、答复率越高越好；不捕率、不诉率只作参考）。");
}

typedef struct ranked {
    const ent *e;
    double v;
    long long n;
    int small;
} ranked;

static int ranked_better; /* qsort has no context: the direction of the table being sorted */
static int by_value(const void *a, const void *b) {
    const ranked *x = a, *y = b;
    if (x->small != y->small) return x->small - y->small;
    if (x->v != y->v) {
        int asc = ranked_better < 0;
        return (x->v < y->v) == asc ? -1 : 1;
    }
    return strcmp(x->e->scope, y->e->scope);
}

/* The ranking of one level on one indicator: ranked rows first (ties share
 * a rank), then the small samples, shown but not ranked. */
static void ranking(rep *r, int lv, const ind_info *ii) {
    size_t n = r->nents[lv], m = 0;
    ranked *rows = calloc(n ? n : 1, sizeof(*rows));
    if (!rows) return;
    for (size_t i = 0; i < n; i++) {
        const ent *e = &r->ents[lv][i];
        double v;
        long long s;
        if (!value_of(hash_at(r, e->scope, r->periods[P_CUR]), ii, &v, &s)) continue;
        rows[m++] = (ranked){e, v, s, s < ii->min_sample[lv]};
    }
    if (!m) {
        free(rows);
        return;
    }
    ranked_better = ii->better ? ii->better : 1;
    qsort(rows, m, sizeof(*rows), by_value);
    double avg = 0;
    long long an;
    int ha = value_of(hash_at(r, r->avg[lv], r->periods[P_CUR]), ii, &avg, &an);
    char cap[700], alabel[256], abuf[64], id[128];
    if (strncmp(r->avg[lv], "unit:", 5) == 0) scope_label(r, r->avg[lv], alabel, sizeof(alabel));
    else region_label(r, r->avg[lv], alabel, sizeof(alabel));
    fmt_value(ii, avg, abuf, sizeof(abuf));
    snprintf(cap, sizeof(cap), "%s · %s排名（%s）　%s %s", ii->zh, lv_zh[lv],
             ii->better < 0 ? "越低越好" : ii->better > 0 ? "越高越好" : "参考指标，不排名", alabel,
             ha ? abuf : "—");
    snprintf(id, sizeof(id), "rank-%s-%s", lv_key[lv], ii->name);
    const char *heads[] = {"排名", lv_zh[lv], "本期", "样本", "横比", "上期", "环比", "去年同期", "同比"};
    table_begin(r, id, "rank", cap, heads, 9);
    int rank = 0, small = 0;
    for (size_t i = 0; i < m; i++) {
        const ranked *x = &rows[i];
        if (!x->small && (i == 0 || x->v != rows[i - 1].v)) rank = (int)i + 1;
        small += x->small;
        row_begin(r, x->e->scope, x->small ? "small" : strcmp(x->e->scope, r->scope) == 0 ? "self" : NULL);
        char buf[64], h[64];
        const char *cls;
        if (x->small) snprintf(buf, sizeof(buf), "样本不足");
        else if (!ii->better) snprintf(buf, sizeof(buf), "—");
        else snprintf(buf, sizeof(buf), "%d", rank);
        cell(r, "rank", buf);
        cell(r, "name", x->e->label);
        fmt_value(ii, x->v, buf, sizeof(buf));
        cell(r, "v", buf);
        snprintf(buf, sizeof(buf), "%lld", x->n);
        cell(r, "n", buf);
        const char *vs = ha ? versus(ii, x->v, avg, &cls) : "—";
        cell(r, ha ? cls : NULL, vs);
        for (int p = P_PREV; p <= P_YOY; p++) {
            double o;
            long long on;
            int ho = value_of(hash_at(r, x->e->scope, r->periods[p]), ii, &o, &on);
            fmt_value(ii, o, buf, sizeof(buf));
            cell(r, "old", ho ? buf : "—");
            cls = NULL;
            const char *j = ho ? judge(ii, x->v, o, h, sizeof(h), &cls) : "—";
            cell(r, cls, j);
        }
        row_end(r);
    }
    char note[256];
    snprintf(note, sizeof(note), "样本（%s）少于 %lld 的 %d 个%s列出但不参加排名。", ii->sample,
             ii->min_sample[lv], small, lv_zh[lv]);
    table_end(r, small ? note : NULL);
    r->rank_tables++;
    free(rows);
}

static void rankings(rep *r) {
    static const char *const titles[NLV] = {"五、院排名", "六、部门排名", "七、检察官排名"};
    for (int lv = 0; lv < NLV; lv++) {
        heading(r, 2, titles[lv]);
        if (!r->nents[lv]) {
            char t[200];
            snprintf(t, sizeof(t), "本期没有%s的数据。", lv_zh[lv]);
            para(r, "none", t);
            continue;
        }
        size_t before = r->rank_tables;
        for (size_t i = 0; i < r->nind; i++) ranking(r, lv, &r->ind[i]);
        if (before == r->rank_tables) para(r, "none", "本期没有可计算的指标。");
    }
}

/* The alerts of the firing set (PROTOCOL.md §3a) about the report's scope. */
static int in_scope(const rep *r, json_t *a) {
    const char *unit = json_string_value(json_object_get(a, "unit"));
    const char *scope = json_string_value(json_object_get(a, "scope"));
    if (r->scope[0] == 'n') return 1;
    if (r->scope[0] == 'u') return unit && strcmp(unit, r->code) == 0;
    size_t cl = strlen(r->code);
    if (unit) return strncmp(unit, r->code, cl) == 0;
    if (scope && strncmp(scope, "region:", 7) == 0) return strncmp(scope + 7, r->code, cl) == 0;
    return 0;
}

static int severity(json_t *a) {
    const char *l = json_string_value(json_object_get(a, "level"));
    return !l ? 0 : strcmp(l, "red") == 0 ? 3 : strcmp(l, "orange") == 0 ? 2 : strcmp(l, "yellow") == 0 ? 1 : 0;
}

static int by_severity(const void *a, const void *b) {
    json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    int d = severity(y) - severity(x);
    if (d) return d;
    const char *ix = json_string_value(json_object_get(x, "id")), *iy = json_string_value(json_object_get(y, "id"));
    return strcmp(ix ? ix : "", iy ? iy : "");
}

static const char *level_zh(json_t *a) {
    switch (severity(a)) {
    case 3: return "红";
    case 2: return "橙";
    case 1: return "黄";
    default: return "";
    }
}

static int cards(rep *r) {
    heading(r, 2, "三、在办预警");
    char key[300];
    snprintf(key, sizeof(key), "%s:firing", r->cfg->alerts_channel);
    redisReply *x = redisCommand(r->rc, "HGETALL %s", key);
    if (!x || x->type != REDIS_REPLY_ARRAY) {
        cw_errf(r->err, r->errlen, "HGETALL %s failed: %s", key,
                x && x->type == REDIS_REPLY_ERROR ? x->str : r->rc->errstr);
        if (x) freeReplyObject(x);
        return -1;
    }
    char t[600];
    if (x->elements == 0) {
        snprintf(t, sizeof(t), "不详：Redis 中没有在办预警集合 %s（守护进程尚未写入），本节从略。", key);
        para(r, "none", t);
        freeReplyObject(x);
        return 0;
    }
    size_t na = 0;
    json_t **all = calloc(x->elements / 2 + 1, sizeof(*all));
    for (size_t i = 0; all && i + 1 < x->elements; i += 2) {
        json_error_t je;
        json_t *a = json_loads(x->element[i + 1]->str, 0, &je);
        if (a && json_is_object(a) && in_scope(r, a)) all[na++] = a;
        else json_decref(a);
    }
    freeReplyObject(x);
    if (!all) return cw_errf(r->err, r->errlen, "out of memory");
    qsort(all, na, sizeof(*all), by_severity);
    /* indicator cards one by one */
    const char *heads[] = {"级别", "预警", "对象", "指标", "期间", "值", "阈值", "说明"};
    size_t ncards = 0;
    for (size_t i = 0; i < na; i++) {
        json_t *a = all[i];
        const char *ind = json_string_value(json_object_get(a, "indicator"));
        if (!ind) continue;
        if (!ncards++) table_begin(r, "cards", "cards", "黄牌 / 红牌（指标预警，按级别）", heads, 8);
        const ind_info *ii = NULL;
        for (size_t k = 0; k < r->nind; k++)
            if (strcmp(r->ind[k].name, ind) == 0) ii = &r->ind[k];
        const char *cls = severity(a) == 3 ? "bad" : "warn";
        row_begin(r, json_string_value(json_object_get(a, "scope")), NULL);
        cell(r, cls, level_zh(a));
        const char *label = json_string_value(json_object_get(a, "label"));
        cell(r, cls, label ? label : "");
        const char *scope = json_string_value(json_object_get(a, "scope"));
        char who[400] = "";
        if (scope) {
            const char *unit = json_string_value(json_object_get(a, "unit"));
            const char *uname = unit ? cw_config_unit_name(r->cfg, unit) : NULL;
            if (strncmp(scope, "unit:", 5) == 0) snprintf(who, sizeof(who), "%s", uname ? uname : scope);
            else if ((strncmp(scope, "dept:", 5) == 0 || strncmp(scope, "pros:", 5) == 0) && strlen(scope) > 12) {
                char nm[300];
                cw_key_unescape(scope + 12, nm, sizeof(nm));
                snprintf(who, sizeof(who), "%s%s（%s）", scope[0] == 'p' ? "检察官 " : "", nm,
                         uname ? uname : unit ? unit : "");
            } else snprintf(who, sizeof(who), "%s", scope);
        }
        cell(r, "name", who);
        cell(r, NULL, ii ? ii->zh : ind);
        const char *per = json_string_value(json_object_get(a, "period"));
        cell(r, NULL, per ? per : "");
        char buf[64] = "";
        json_t *v = json_object_get(a, "value"), *th = json_object_get(a, "threshold");
        if (ii && json_is_number(v)) fmt_value(ii, json_number_value(v), buf, sizeof(buf));
        cell(r, "v", buf);
        buf[0] = '\0';
        if (ii && json_is_number(th)) fmt_value(ii, json_number_value(th), buf, sizeof(buf));
        cell(r, "v", buf);
        json_t *rank = json_object_get(a, "rank"), *peers = json_object_get(a, "peers");
        buf[0] = '\0';
        if (json_is_integer(rank) && json_is_integer(peers))
            snprintf(buf, sizeof(buf), "第%lld名/共%lld", (long long)json_integer_value(rank),
                     (long long)json_integer_value(peers));
        cell(r, NULL, buf);
        row_end(r);
    }
    if (ncards) table_end(r, NULL);
    else para(r, "none", "本范围没有在办的指标预警（黄牌/红牌）。");
    /* the lights and other case alerts, counted by 院 and label */
    typedef struct {
        char unit[8];
        char label[64];
        int sev;
        long n;
    } cnt;
    cnt *c = calloc(na + 1, sizeof(*c));
    size_t nc = 0;
    for (size_t i = 0; c && i < na; i++) {
        json_t *a = all[i];
        if (json_object_get(a, "indicator")) continue;
        const char *unit = json_string_value(json_object_get(a, "unit"));
        const char *label = json_string_value(json_object_get(a, "label"));
        size_t k = 0;
        while (k < nc && !(strcmp(c[k].unit, unit ? unit : "") == 0 && strcmp(c[k].label, label ? label : "") == 0 &&
                           c[k].sev == severity(a)))
            k++;
        if (k == nc) {
            snprintf(c[k].unit, sizeof(c[k].unit), "%s", unit ? unit : "");
            snprintf(c[k].label, sizeof(c[k].label), "%s", label ? label : "");
            c[k].sev = severity(a);
            nc++;
        }
        c[k].n++;
    }
    if (nc) {
        const char *h2[] = {"院", "级别", "预警", "在办数"};
        table_begin(r, "lights", "lights", "流程监控：亮灯的期限与其他案件预警（按院）", h2, 4);
        for (size_t k = 0; k < nc; k++) {
            const char *uname = cw_config_unit_name(r->cfg, c[k].unit);
            row_begin(r, NULL, NULL);
            cell(r, "name", uname ? uname : c[k].unit);
            const char *lz = c[k].sev == 3 ? "红" : c[k].sev == 2 ? "橙" : c[k].sev == 1 ? "黄" : "";
            const char *cls = c[k].sev == 3 ? "bad" : "warn";
            cell(r, cls, lz);
            cell(r, cls, c[k].label);
            char b[32];
            snprintf(b, sizeof(b), "%ld", c[k].n);
            cell(r, "n", b);
            row_end(r);
        }
        table_end(r, NULL);
    } else {
        para(r, "none", "本范围现在没有亮灯的期限。");
    }
    free(c);
    for (size_t i = 0; i < na; i++) json_decref(all[i]);
    free(all);
    return 0;
}

/* <clock>_started / <clock>_overdue of the period, per 院 and in all. */
static void deadlines(rep *r) {
    heading(r, 2, "四、期限监控");
    const hashv *h = hash_at(r, r->scope, r->periods[P_CUR]);
    const char *clocks[32];
    size_t nclk = 0;
    for (size_t i = 0; h && i + 1 < h->r->elements && nclk < 32; i += 2) {
        const char *f = h->r->element[i]->str;
        size_t fl = strlen(f);
        if (fl > 8 && strcmp(f + fl - 8, "_started") == 0) clocks[nclk++] = f;
    }
    if (!nclk) {
        para(r, "none",
             "指标哈希中没有期限计数（<clock>_started / <clock>_overdue）：守护进程尚未统计，本节从略。");
        return;
    }
    const char *heads[] = {"院", "时限", "启动", "超期", "超期率"};
    table_begin(r, "deadlines", "deadlines", "本期启动与超期的法定时限（按启动日、超期日计）", heads, 5);
    for (size_t c = 0; c < nclk; c++) {
        char clock[128], of[160];
        snprintf(clock, sizeof(clock), "%.*s", (int)(strlen(clocks[c]) - 8), clocks[c]);
        snprintf(of, sizeof(of), "%s_overdue", clock);
        const char *zh = clock;
        for (size_t k = 0; k < sizeof(clock_names) / sizeof(clock_names[0]); k++)
            if (strcmp(clock_names[k].clock, clock) == 0) zh = clock_names[k].zh;
        for (size_t i = 0; i <= r->nents[LV_UNIT]; i++) {
            const ent *e = i < r->nents[LV_UNIT] ? &r->ents[LV_UNIT][i] : NULL;
            if (e && r->scope[0] == 'u') continue; /* a 院's report: its own total only */
            const hashv *x = e ? hash_at(r, e->scope, r->periods[P_CUR]) : h;
            const char *s = hfield(x, clocks[c]), *o = hfield(x, of);
            long long ns = s ? atoll(s) : 0, no = o ? atoll(o) : 0;
            if (e && !ns && !no) continue;
            char label[256], b1[32], b2[32], b3[32];
            if (e) snprintf(label, sizeof(label), "%s", e->label);
            else scope_label(r, r->scope, label, sizeof(label)), strncat(label, " 合计", sizeof(label) - strlen(label) - 1);
            row_begin(r, e ? e->scope : r->scope, e ? NULL : "total");
            cell(r, "name", label);
            cell(r, NULL, zh);
            snprintf(b1, sizeof(b1), "%lld", ns);
            snprintf(b2, sizeof(b2), "%lld", no);
            if (ns) snprintf(b3, sizeof(b3), "%.1f%%", 100.0 * (double)no / (double)ns);
            else snprintf(b3, sizeof(b3), "—");
            cell(r, "n", b1);
            cell(r, no ? "bad" : "n", b2);
            cell(r, "n", b3);
            row_end(r);
        }
    }
    table_end(r, NULL);
}

/* The trend of the last 8 quarters: small SVG charts in HTML, a table in
 * the other formats. Charted: the indicators a rule watches (with its
 * threshold as a dashed line), or every one with values. */
static void trend(rep *r) {
    heading(r, 2, "二、近8个季度趋势");
    int show[MAX_IND] = {0}, any_rule = 0;
    for (size_t i = 0; i < r->nind; i++) any_rule |= r->ind[i].has_threshold;
    for (size_t i = 0; i < r->nind; i++) {
        int has = 0;
        for (int q = 0; q < TREND_Q; q++) {
            double v;
            long long n;
            has |= value_of(hash_at(r, r->scope, r->trend[q]), &r->ind[i], &v, &n);
        }
        show[i] = has && (!any_rule || r->ind[i].has_threshold || r->fmt != CW_REPORT_HTML);
    }
    if (r->fmt != CW_REPORT_HTML) {
        const char *heads[TREND_Q + 1] = {"指标"};
        for (int q = 0; q < TREND_Q; q++) heads[q + 1] = r->trend[q];
        table_begin(r, "trend", "trend", NULL, heads, TREND_Q + 1);
        for (size_t i = 0; i < r->nind; i++) {
            if (!show[i]) continue;
            row_begin(r, NULL, NULL);
            cell(r, "ind", r->ind[i].zh);
            for (int q = 0; q < TREND_Q; q++) {
                double v;
                long long n;
                char buf[64];
                int has = value_of(hash_at(r, r->scope, r->trend[q]), &r->ind[i], &v, &n);
                fmt_value(&r->ind[i], v, buf, sizeof(buf));
                cell(r, "v", has ? buf : "—");
            }
            row_end(r);
        }
        table_end(r, NULL);
        return;
    }
    put(r, "<div class=\"charts\">\n");
    const double W = 340, H = 165, L = 44, R = 10, T = 42, B = 24;
    for (size_t i = 0; i < r->nind; i++) {
        if (!show[i]) continue;
        const ind_info *ii = &r->ind[i];
        double v[TREND_Q], g[TREND_Q];
        int has[TREND_Q], hasg[TREND_Q], anyg = 0;
        double lo = 1e300, hi = -1e300;
        for (int q = 0; q < TREND_Q; q++) {
            long long n;
            has[q] = value_of(hash_at(r, r->scope, r->trend[q]), ii, &v[q], &n);
            hasg[q] = value_of(hash_at(r, r->parent, r->trend[q]), ii, &g[q], &n);
            if (has[q]) lo = fmin(lo, v[q]), hi = fmax(hi, v[q]);
            if (hasg[q]) lo = fmin(lo, g[q]), hi = fmax(hi, g[q]), anyg = 1;
        }
        if (ii->has_threshold) lo = fmin(lo, ii->threshold), hi = fmax(hi, ii->threshold);
        if (ii->kind == CW_IND_RATE) lo = fmax(0, lo - 0.05), hi = fmin(1, hi + 0.05);
        double pad = (hi - lo) * 0.1 + 1e-6;
        if (ii->kind != CW_IND_RATE) lo -= pad, hi += pad;
        if (hi - lo < 1e-6) hi = lo + 1;
#define PX(q) (L + (W - L - R) * ((double)(q) + 0.5) / TREND_Q)
#define PY(x) (T + (H - T - B) * (1 - ((x) - lo) / (hi - lo)))
        putf(r, "<figure class=\"chart\" id=\"trend-%s\"><svg viewBox=\"0 0 %.0f %.0f\" role=\"img\">", ii->name, W, H);
        put(r, "<text class=\"t\" x=\"4\" y=\"14\">");
        put_text(r, ii->zh);
        put(r, "</text>");
        char a[64], b[64];
        fmt_value(ii, lo, a, sizeof(a));
        fmt_value(ii, hi, b, sizeof(b));
        putf(r, "<line class=\"ax\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>", L, H - B, W - R, H - B);
        putf(r, "<line class=\"ax\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>", L, T, L, H - B);
        putf(r, "<text class=\"y\" x=\"%.1f\" y=\"%.1f\">%s</text>", L - 3, H - B, a);
        putf(r, "<text class=\"y\" x=\"%.1f\" y=\"%.1f\">%s</text>", L - 3, T + 8, b);
        if (ii->has_threshold) {
            char th[64];
            fmt_value(ii, ii->threshold, th, sizeof(th));
            putf(r, "<line class=\"th\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>", L, PY(ii->threshold),
                 W - R, PY(ii->threshold));
            putf(r, "<text class=\"thl\" x=\"%.1f\" y=\"14\">- - 预警线 %s</text>", W - R, th);
        }
        for (int q = 0; q < TREND_Q; q++)
            putf(r, "<text class=\"x\" x=\"%.1f\" y=\"%.1f\">%.2s%s</text>", PX(q), H - 8, r->trend[q] + 2,
                 r->trend[q] + 4); /* "20-Q3" */
        if (anyg) {
            char rl[256];
            region_label(r, r->parent, rl, sizeof(rl));
            put(r, "<polyline class=\"rg\" points=\"");
            for (int q = 0; q < TREND_Q; q++)
                if (hasg[q]) putf(r, "%.1f,%.1f ", PX(q), PY(g[q]));
            putf(r, "\"/><text class=\"lg\" x=\"%.1f\" y=\"28\">━ 本单位</text>", L);
            putf(r, "<text class=\"lgr\" x=\"%.1f\" y=\"28\">━ ", L + 52);
            put_text(r, rl);
            put(r, "</text>");
        }
        put(r, "<polyline class=\"ln\" points=\"");
        for (int q = 0; q < TREND_Q; q++)
            if (has[q]) putf(r, "%.1f,%.1f ", PX(q), PY(v[q]));
        put(r, "\"/>");
        for (int q = 0; q < TREND_Q; q++) {
            if (!has[q]) continue;
            char s[64];
            fmt_value(ii, v[q], s, sizeof(s));
            putf(r, "<circle class=\"pt%s\" cx=\"%.1f\" cy=\"%.1f\" r=\"2.6\"><title>%s %s</title></circle>",
                 q == TREND_Q - 1 ? " now" : "", PX(q), PY(v[q]), r->trend[q], s);
            putf(r, "<text class=\"vl\" x=\"%.1f\" y=\"%.1f\">%s</text>", PX(q), PY(v[q]) - 5,
                 ii->kind == CW_IND_RATIO ? s + 2 : s);
        }
#undef PX
#undef PY
        put(r, "</svg></figure>\n");
    }
    put(r, "</div>\n");
}

/* ---- The document ------------------------------------------------------- */

static const char css[] =
    "@page{size:A4 portrait;margin:12mm 12mm 14mm}"
    "*{box-sizing:border-box}"
    "html{-webkit-print-color-adjust:exact;print-color-adjust:exact}"
    "body{font-family:\"Noto Sans CJK SC\",\"Source Han Sans SC\",\"WenQuanYi Zen Hei\",\"Microsoft YaHei\","
    "\"PingFang SC\",sans-serif;font-size:9pt;line-height:1.35;color:#1d1d1f;max-width:186mm;margin:0 auto;"
    "padding:4mm 0;background:#fff}"
    "h1{font-size:16pt;margin:0 0 2mm;text-align:center;letter-spacing:.05em}"
    "h2{font-size:11.5pt;margin:6mm 0 2mm;padding-bottom:1mm;border-bottom:1.5px solid #8b1a1a;color:#8b1a1a;"
    "break-after:avoid;page-break-after:avoid}"
    ".meta{text-align:center;color:#555;font-size:8.5pt;margin:0 0 1mm}"
    "table{width:100%;border-collapse:collapse;margin:1mm 0 3mm;table-layout:fixed;break-inside:auto}"
    "caption{text-align:left;font-weight:bold;font-size:9pt;padding:1mm 0;caption-side:top}"
    "thead{display:table-header-group}"
    "tr{break-inside:avoid;page-break-inside:avoid}"
    "th,td{border:0.5px solid #bbb;padding:0.6mm 1.2mm;text-align:right;overflow-wrap:anywhere;"
    "font-variant-numeric:tabular-nums}"
    "th{background:#f1ece4;font-weight:bold;text-align:center;font-size:8.5pt}"
    "td.name,td.ind{text-align:left}td.rank{text-align:center}"
    "table.rank th:nth-child(1){width:9%}table.rank th:nth-child(2){width:23%}"
    "table.summary th:nth-child(1){width:22%}"
    "tr.self td{background:#fdf3d8;font-weight:bold}tr.small td{color:#888;font-style:italic}tr.none td{color:#999}tr.total td{font-weight:bold}"
    "tbody tr:nth-child(even){background:#faf8f5}"
    ".good{color:#1b7a35}.bad{color:#c0261b;font-weight:bold}.warn{color:#a86400;font-weight:bold}"
    "p.note{color:#666;font-size:8pt;margin:0 0 3mm}p.none{color:#666}"
    ".charts{display:flex;flex-wrap:wrap;gap:3mm;justify-content:space-between}"
    "figure.chart{margin:0;width:calc(50% - 1.5mm);border:0.5px solid #ccc;break-inside:avoid}"
    "svg{width:100%;height:auto;display:block}"
    "svg text{font-size:8px;fill:#333}svg text.t{font-size:10px;font-weight:bold}"
    "svg text.y{text-anchor:end}svg text.x,svg text.vl{text-anchor:middle}svg text.thl{text-anchor:end;fill:#c0261b}"
    "svg .ax{stroke:#999;stroke-width:.7}svg .th{stroke:#c0261b;stroke-width:.8;stroke-dasharray:4 3}"
    "svg .ln{fill:none;stroke:#8b1a1a;stroke-width:1.6}svg .rg{fill:none;stroke:#7d8fa8;stroke-width:1.2}"
    "svg text.lg{fill:#8b1a1a}svg text.lgr{fill:#7d8fa8}svg circle{fill:#8b1a1a}svg circle.now{fill:#e0a100}"
    "footer{margin-top:6mm;color:#777;font-size:7.5pt;text-align:center}"
    "@media print{body{padding:0;max-width:none}h2{break-before:auto}}";

static void document(rep *r) {
    char label[256], pl[64], title[512], meta[700], now[32];
    scope_label(r, r->scope, label, sizeof(label));
    cw_period_label_zh(r->period, pl, sizeof(pl));
    snprintf(title, sizeof(title), "%s %s 案件质量通报", label, pl);
    time_t t = (time_t)(cw_wall_ms() / 1000 + r->cfg->utc_offset_min * 60);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(now, sizeof(now), "%Y-%m-%d %H:%M", &tm);
    snprintf(meta, sizeof(meta), "范围 %s · 期间 %s · 上期 %s · 去年同期 %s · 生成于 %s（UTC%s）", r->scope, r->period,
             r->periods[P_PREV], r->periods[P_YOY], now, r->cfg->utc_offset);
    switch (r->fmt) {
    case CW_REPORT_HTML:
        put(r, "<!DOCTYPE html>\n<html lang=\"zh-CN\"><head><meta charset=\"utf-8\">"
               "<meta name=\"viewport\" content=\"width=device-width\"><title>");
        put_text(r, title);
        putf(r, "</title><style>%s</style></head>\n<body>\n", css);
        heading(r, 1, title);
        para(r, "meta", meta);
        break;
    case CW_REPORT_MD:
        heading(r, 1, title);
        para(r, NULL, meta);
        break;
    case CW_REPORT_CSV:
        put(r, "\xEF\xBB\xBF"); /* so that Excel reads UTF-8 */
        heading(r, 1, title);
        para(r, NULL, meta);
        break;
    }
}

static void document_end(rep *r) {
    char f[400];
    snprintf(f, sizeof(f), "数据来源：Redis %s:<scope>:<period>（casewatchd），“样本不足”以配置中预警规则的 min_sample 为准。",
             r->cfg->ind_prefix);
    if (r->fmt == CW_REPORT_HTML) {
        put(r, "<footer>");
        put_text(r, f);
        put(r, "</footer>\n</body></html>\n");
    } else {
        para(r, NULL, f);
    }
}

/* ---- Entry --------------------------------------------------------------- */

static void rep_free(rep *r) {
    if (r->hashes) {
        size_t pos = 0;
        const char *k;
        size_t kl;
        void *v;
        while (cw_map_next(r->hashes, &pos, &k, &kl, &v)) {
            hashv *h = v;
            freeReplyObject(h->r);
            free(h);
        }
        cw_map_free(r->hashes);
    }
    for (int lv = 0; lv < NLV; lv++) {
        for (size_t i = 0; i < r->nents[lv]; i++) {
            free(r->ents[lv][i].scope);
            free(r->ents[lv][i].label);
        }
        free(r->ents[lv]);
    }
    cw_buf_destroy(&r->out);
}

/* Writes buf to path (or stdout); 0, or 1 with a message. */
static int write_out(const char *path, const char *buf, size_t len, char *err, size_t errlen) {
    int to_stdout = !path || strcmp(path, "-") == 0;
    FILE *f = to_stdout ? stdout : fopen(path, "wb");
    if (!f) {
        cw_errf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        return 1;
    }
    int ok = fwrite(buf, 1, len, f) == len;
    ok = (to_stdout ? fflush(f) : fclose(f)) == 0 && ok;
    if (!ok) {
        cw_errf(err, errlen, "cannot write %s: %s", to_stdout ? "stdout" : path, strerror(errno));
        return 1;
    }
    return 0;
}

static int gather(rep *r) {
    keylist s = {0}, p = {0};
    int rc = 0;
    for (int lv = 0; rc == 0 && lv < NLV; lv++) rc = load_level(r, lv, &s, &p);
    /* the scope, the regions of its 横比, and its trend */
    const char *regions[] = {r->scope, r->parent, r->avg[LV_UNIT]};
    for (size_t i = 0; rc == 0 && i < 3; i++) {
        if (!regions[i][0] || (i && strcmp(regions[i], r->scope) == 0)) continue;
        for (int j = 0; rc == 0 && j < NP; j++)
            if (keylist_add(&s, regions[i]) < 0 || keylist_add(&p, r->periods[j]) < 0) rc = -1;
    }
    for (int q = 0; rc == 0 && q < TREND_Q; q++) {
        if (keylist_add(&s, r->scope) < 0 || keylist_add(&p, r->trend[q]) < 0) rc = -1;
        if (rc == 0 && r->parent[0] && (keylist_add(&s, r->parent) < 0 || keylist_add(&p, r->trend[q]) < 0)) rc = -1;
    }
    if (rc == 0 && s.n != p.n) rc = -1;
    if (rc == 0) rc = fetch(r, s.k, p.k, s.n);
    keylist_free(&s);
    keylist_free(&p);
    return rc;
}

int cw_report_write(redisContext *rc, const cw_config *cfg, const char *period, const char *scope,
                    cw_report_format fmt, const char *path, char *err, size_t errlen) {
    if (cw_report_check_args(period, scope, err, errlen) < 0) return 1;
    rep r;
    memset(&r, 0, sizeof(r));
    r.rc = rc, r.cfg = cfg, r.fmt = fmt, r.err = err, r.errlen = errlen;
    cw_buf_init(&r.out);
    snprintf(r.period, sizeof(r.period), "%s", period);
    snprintf(r.periods[P_CUR], 8, "%s", period);
    cw_period_shift(period, -1, r.periods[P_PREV]);
    cw_period_shift(period, cw_period_kind_of(period) == CW_PERIOD_MONTH     ? -12
                            : cw_period_kind_of(period) == CW_PERIOD_QUARTER ? -4
                                                                             : -1,
                    r.periods[P_YOY]);
    int qi = cw_period_name_quarter_index(period);
    for (int q = 0; q < TREND_Q; q++) {
        int x = qi - (TREND_Q - 1 - q);
        snprintf(r.trend[q], 8, "%04u-Q%u", (unsigned)x / 4u % 10000u, (unsigned)x % 4u + 1u);
    }
    r.hashes = cw_map_new();
    int code = 0;
    if (!r.hashes) {
        cw_errf(err, errlen, "out of memory");
        code = -1;
        goto done;
    }
    load_indicators(&r);
    if (scope) snprintf(r.scope, sizeof(r.scope), "%s", scope);
    else if (pick_province(&r) < 0) {
        code = strncmp(err, "SCAN", 4) == 0 ? -1 : 1;
        goto done;
    }
    /* the code, the peers' region (横比) of the scope and of each level */
    const char *colon = strchr(r.scope, ':');
    snprintf(r.code, sizeof(r.code), "%s", colon ? colon + 1 : "");
    size_t cl = strlen(r.code);
    if (cl == 6) snprintf(r.parent, sizeof(r.parent), "region:%.4s", r.code);
    else if (cl == 4) snprintf(r.parent, sizeof(r.parent), "region:%.2s", r.code);
    else if (cl == 2) snprintf(r.parent, sizeof(r.parent), "nation");
    for (int lv = 0; lv < NLV; lv++) snprintf(r.avg[lv], sizeof(r.avg[lv]), "%s", r.scope);
    if (cl == 6) snprintf(r.avg[LV_UNIT], sizeof(r.avg[LV_UNIT]), "%s", r.parent);
    if (gather(&r) < 0) {
        code = -1;
        goto done;
    }
    if (!hash_at(&r, r.scope, r.period)) {
        cw_errf(err, errlen, "no data for %s in %s (no hash %s:%s:%s) — is the daemon's [indicators] prefix the same?",
                r.scope, r.period, cfg->ind_prefix, r.scope, r.period);
        code = 1;
        goto done;
    }
    document(&r);
    summary(&r);
    trend(&r);
    if (cards(&r) < 0) {
        code = -1;
        goto done;
    }
    deadlines(&r);
    rankings(&r);
    document_end(&r);
    if (r.out.oom) {
        cw_errf(err, errlen, "out of memory");
        code = -1;
        goto done;
    }
    code = write_out(path, r.out.buf, r.out.len, err, errlen);
done:
    rep_free(&r);
    return code;
}

static void cmd_usage(FILE *out) {
    fprintf(out, "usage: casewatch report PERIOD [--scope unit:CODE|region:CODE|nation] [--format html|csv|md] "
                 "[-o FILE]\n");
}

int cw_report_cmd(cw_config *cfg, int argc, char **argv) {
    static const struct option lo[] = {{"scope", required_argument, NULL, 's'},
                                       {"format", required_argument, NULL, 'f'},
                                       {"output", required_argument, NULL, 'o'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
    const char *scope = NULL, *path = NULL;
    cw_report_format fmt = CW_REPORT_HTML;
    int o;
    optind = 0; /* 0, not 1: GNU getopt starts afresh, permuting the period after the options */
    while ((o = getopt_long(argc, argv, "s:f:o:h", lo, NULL)) != -1) {
        switch (o) {
        case 's': scope = optarg; break;
        case 'o': path = optarg; break;
        case 'f':
            if (cw_report_format_parse(optarg, &fmt) < 0) {
                fprintf(stderr, "casewatch report: --format must be html, csv or md, not '%s'\n", optarg);
                return 1;
            }
            break;
        case 'h': cmd_usage(stdout); return 0;
        default: cmd_usage(stderr); return 1;
        }
    }
    if (optind + 1 != argc) {
        fprintf(stderr, "casewatch report: %s\n", optind >= argc ? "which period? e.g. 2020-Q3, 2020-07 or 2020"
                                                                   : "one period only");
        cmd_usage(stderr);
        return 1;
    }
    char err[1024];
    if (cw_report_check_args(argv[optind], scope, err, sizeof(err)) < 0) {
        fprintf(stderr, "casewatch report: %s\n", err);
        return 1;
    }
    redisContext *rc = cw_redis_sync_connect(cfg, err, sizeof(err));
    if (!rc) {
        fprintf(stderr, "casewatch report: %s\n", err);
        return 2;
    }
    int r = cw_report_write(rc, cfg, argv[optind], scope, fmt, path, err, sizeof(err));
    redisFree(rc);
    if (r != 0) fprintf(stderr, "casewatch report: %s\n", err);
    else if (path && strcmp(path, "-") != 0) fprintf(stderr, "casewatch report: wrote %s\n", path);
    return r == 0 ? 0 : r > 0 ? 1 : 2;
}
