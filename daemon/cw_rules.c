#include "cw_rules.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../proto/cw_text.h"
#include "cw_ind.h"
#include "cw_map.h"
#include "cw_period.h"
#include "cw_snap.h"

typedef enum kind { K_THRESHOLD, K_PERSISTENCE, K_DEADLINE, K_STALE, K_DATA, K_RANK } kind;
static const char *const kind_names[] = {"threshold", "persistence", "deadline", "stale", "data", "rank", NULL};

/* Scope levels, as bits of a rule's `scope` list. */
enum { S_PROS = 1, S_DEPT = 2, S_UNIT = 4, S_CITY = 8, S_PROVINCE = 16, S_NATION = 32 };
static const struct {
    const char *name;
    unsigned bit;
} scope_names[] = {{"pros", S_PROS}, {"dept", S_DEPT},         {"unit", S_UNIT},
                   {"city", S_CITY}, {"province", S_PROVINCE}, {"nation", S_NATION}};

static const char *const clock_names[CW_NCLOCKS] = {
    [CW_CLOCK_ARREST_REVIEW] = "arrest_review",
    [CW_CLOCK_PROSECUTION_REVIEW] = "prosecution_review",
    [CW_CLOCK_SUPPLEMENTARY] = "supplementary",
    [CW_CLOCK_LETTER_PROCEDURAL] = "letter_procedural",
    [CW_CLOCK_LETTER_SUBSTANTIVE] = "letter_substantive",
    [CW_CLOCK_ARREST_RECONSIDERATION] = "arrest_reconsideration",
    [CW_CLOCK_ARREST_HIGHER_REVIEW] = "arrest_higher_review",
    [CW_CLOCK_NONPROSECUTION_RECONSIDERATION] = "nonprosecution_reconsideration",
    [CW_CLOCK_NONPROSECUTION_HIGHER_REVIEW] = "nonprosecution_higher_review",
    [CW_CLOCK_STALE] = "stale"};
static const char *const clock_zh[CW_NCLOCKS] = {
    [CW_CLOCK_ARREST_REVIEW] = "审查逮捕期限",
    [CW_CLOCK_PROSECUTION_REVIEW] = "审查起诉期限",
    [CW_CLOCK_SUPPLEMENTARY] = "补充侦查期限",
    [CW_CLOCK_LETTER_PROCEDURAL] = "来信程序性回复期限",
    [CW_CLOCK_LETTER_SUBSTANTIVE] = "来信实体性答复期限",
    [CW_CLOCK_ARREST_RECONSIDERATION] = "不批捕复议期限",
    [CW_CLOCK_ARREST_HIGHER_REVIEW] = "不批捕复核期限",
    [CW_CLOCK_NONPROSECUTION_RECONSIDERATION] = "不起诉复议期限",
    [CW_CLOCK_NONPROSECUTION_HIGHER_REVIEW] = "不起诉复核期限",
    [CW_CLOCK_STALE] = "挂案期限"};
static const char *const check_names[CW_NCHECKS] = {"third_return", "second_extension", "decided_unaccepted",
                                                    "after_closed"};
static const char *const check_zh[CW_NCHECKS] = {"第三次退回补充侦查", "同一审查期间第二次延长审查起诉期限",
                                                 "未见受理即作出决定", "办结后仍有案件事件"};

typedef struct rule {
    char *name;
    kind kind;
    unsigned scopes;
    int indicator;
    cw_period_kind period;
    char cmp[3]; /* ">" ">=" "<" "<=" */
    double threshold, resolve;
    int has_resolve;
    int sample;
    double min_sample;
    char *level, *label;
    char *overdue_level, *overdue_label; /* deadline: the red light */
    char *of_name;
    int of; /* persistence: index of the rule it follows */
    int periods;
    int clock, check;
    int warn_days, urgent_days;
    int days, days_detained, days_complex, months, days_fast, days_fast_extended, extension_days, working_days;
    int holidays_ignore; /* holidays = ignore: a last day on a rest day does not move */
    int peers_province; /* rank: peers are a province's units (else a unit's departments) */
    int bottom, bottom_city;
    double bottom_county_fraction;
} rule;

struct cw_rules {
    const cw_config *cfg;
    rule *rules;
    size_t n;
    cw_map *firing;      /* alert id -> (void *)1, indicator rules */
    cw_map *raised;      /* data-check alert ids already raised */
    cw_map *ranked;      /* "rule/scope/period" ranked at the bottom */
    uint64_t lights_on; /* deadline lights firing */
    /* the rule of each clock and data check (NULL: off), found once */
    const struct rule *clock_rule[CW_NCLOCKS];
    const struct rule *check_rule[CW_NCHECKS];
};

/* A bounded append buffer for alert ids and messages, which are made a
 * few hundred thousand times a second in a replay: what does not fit is
 * cut, as snprintf would cut it. */
typedef struct text {
    char *buf;
    size_t cap, len;
} text;

static void text_init(text *t, char *buf, size_t cap) {
    t->buf = buf;
    t->cap = cap;
    t->len = 0;
    buf[0] = '\0';
}

static void put_n(text *t, const char *s, size_t n) {
    if (t->len + n >= t->cap) n = t->cap - 1 - t->len;
    memcpy(t->buf + t->len, s, n);
    t->len += n;
    t->buf[t->len] = '\0';
}

static void put_s(text *t, const char *s) {
    put_n(t, s, strlen(s));
}

static void put_u(text *t, unsigned v) {
    char num[20], *p = cw_u64_digits(v, num);
    put_n(t, p, (size_t)(num + sizeof(num) - p));
}


/* ---- Reading the [rule NAME] sections ---------------------------------- */

static int parse_num(const char *v, double lo, double hi, double *out) {
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || end == v || *end || x < lo || x > hi) return -1;
    *out = x;
    return 0;
}

static int parse_int(const char *v, int lo, int hi, int *out) {
    double x;
    if (parse_num(v, lo, hi, &x) < 0 || x != (double)(int)x) return -1;
    *out = (int)x;
    return 0;
}

static int lookup(const char *const *names, size_t n, const char *v) {
    for (size_t i = 0; i < n; i++)
        if (names[i] && strcmp(names[i], v) == 0) return (int)i;
    return -1;
}

/* Sets one key of a rule; returns 0, or -1 with "expected ..." in why. */
static int set_key(rule *r, const char *key, const char *v, char *why, size_t wl) {
    if (strcmp(key, "kind") == 0) {
        int k = lookup(kind_names, 6, v);
        if (k < 0) return cw_errf(why, wl, "expected threshold, persistence, deadline, stale, data or rank, got '%s'", v);
        r->kind = (kind)k;
    } else if (strcmp(key, "scope") == 0) {
        r->scopes = 0;
        char buf[128];
        snprintf(buf, sizeof(buf), "%s", v);
        for (char *save = NULL, *t = strtok_r(buf, ", ", &save); t; t = strtok_r(NULL, ", ", &save)) {
            unsigned bit = 0;
            for (size_t i = 0; i < sizeof(scope_names) / sizeof(scope_names[0]); i++)
                if (strcmp(scope_names[i].name, t) == 0) bit = scope_names[i].bit;
            if (!bit) return cw_errf(why, wl, "expected a list of pros, dept, unit, city, province, nation; got '%s'", t);
            r->scopes |= bit;
        }
    } else if (strcmp(key, "indicator") == 0) {
        if ((r->indicator = cw_ind_indicator_index(v)) < 0)
            return cw_errf(why, wl, "expected an indicator of INDICATORS.md §2 (case_item_ratio, plea_rate, ...), got '%s'", v);
    } else if (strcmp(key, "period") == 0) {
        static const char *const p[] = {NULL, "month", "quarter", "year", "rolling"};
        int k = lookup(p, 5, v);
        if (k < 1) return cw_errf(why, wl, "expected month, quarter, year or rolling, got '%s'", v);
        r->period = (cw_period_kind)k;
    } else if (strcmp(key, "compare") == 0) {
        if (strcmp(v, ">") && strcmp(v, ">=") && strcmp(v, "<") && strcmp(v, "<="))
            return cw_errf(why, wl, "expected >, >=, < or <=, got '%s'", v);
        snprintf(r->cmp, sizeof(r->cmp), "%s", v);
    } else if (strcmp(key, "threshold") == 0) {
        if (parse_num(v, -1e12, 1e12, &r->threshold) < 0) return cw_errf(why, wl, "expected a number, got '%s'", v);
    } else if (strcmp(key, "resolve") == 0) {
        if (parse_num(v, -1e12, 1e12, &r->resolve) < 0) return cw_errf(why, wl, "expected a number, got '%s'", v);
        r->has_resolve = 1;
    } else if (strcmp(key, "sample") == 0) {
        if ((r->sample = cw_ind_counter_index(v)) < 0)
            return cw_errf(why, wl, "expected a counter name (cases, decided_persons, ...), got '%s'", v);
    } else if (strcmp(key, "min_sample") == 0) {
        if (parse_num(v, 0, 1e15, &r->min_sample) < 0) return cw_errf(why, wl, "expected a count, got '%s'", v);
    } else if (strcmp(key, "level") == 0 || strcmp(key, "overdue_level") == 0) {
        if (strcmp(v, "yellow") && strcmp(v, "orange") && strcmp(v, "red"))
            return cw_errf(why, wl, "expected yellow, orange or red, got '%s'", v);
        char **slot = key[0] == 'l' ? &r->level : &r->overdue_level;
        free(*slot);
        *slot = strdup(v);
    } else if (strcmp(key, "label") == 0 || strcmp(key, "overdue_label") == 0) {
        if (!v[0]) return cw_errf(why, wl, "expected the word users see, e.g. 黄牌预警");
        char **slot = key[0] == 'l' ? &r->label : &r->overdue_label;
        free(*slot);
        *slot = strdup(v);
    } else if (strcmp(key, "peers") == 0) {
        if (strcmp(v, "unit") && strcmp(v, "province"))
            return cw_errf(why, wl, "expected unit (a 院's departments) or province (a province's 院), got '%s'", v);
        r->peers_province = strcmp(v, "province") == 0;
    } else if (strcmp(key, "bottom_county_fraction") == 0) {
        if (parse_num(v, 0, 1, &r->bottom_county_fraction) < 0)
            return cw_errf(why, wl, "expected a fraction from 0 to 1, got '%s'", v);
    } else if (strcmp(key, "of") == 0) {
        free(r->of_name);
        r->of_name = strdup(v);
    } else if (strcmp(key, "periods") == 0) {
        if (parse_int(v, 1, 12, &r->periods) < 0) return cw_errf(why, wl, "expected 1 to 12 periods, got '%s'", v);
    } else if (strcmp(key, "clock") == 0) {
        if ((r->clock = lookup(clock_names, CW_NCLOCKS - 1, v)) < 0) {
            char list[400] = "";
            for (int i = 0; i < CW_NCLOCKS - 1; i++)
                snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", i ? ", " : "", clock_names[i]);
            return cw_errf(why, wl, "expected one of %s; got '%s'", list, v);
        }
    } else if (strcmp(key, "holidays") == 0) {
        if (strcmp(v, "extend") && strcmp(v, "ignore"))
            return cw_errf(why, wl, "expected extend (CPL art. 105: a last day on a rest day moves to the next working day) or ignore, got '%s'", v);
        r->holidays_ignore = strcmp(v, "ignore") == 0;
    } else if (strcmp(key, "check") == 0) {
        if ((r->check = lookup(check_names, CW_NCHECKS, v)) < 0)
            return cw_errf(why, wl, "expected third_return, second_extension, decided_unaccepted or after_closed, got '%s'",
                        v);
    } else {
        static const struct {
            const char *key;
            size_t off;
            int max;
        } ints[] = {
            {"warn_days", offsetof(rule, warn_days), 60},     {"urgent_days", offsetof(rule, urgent_days), 60},
            {"days", offsetof(rule, days), 3650},             {"days_detained", offsetof(rule, days_detained), 3650},
            {"days_complex", offsetof(rule, days_complex), 3650}, {"months", offsetof(rule, months), 120},
            {"days_fast", offsetof(rule, days_fast), 3650},   {"extension_days", offsetof(rule, extension_days), 3650},
            {"days_fast_extended", offsetof(rule, days_fast_extended), 3650},
            {"working_days", offsetof(rule, working_days), 3650},
            {"bottom", offsetof(rule, bottom), 1000},         {"bottom_city", offsetof(rule, bottom_city), 1000},
        };
        for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
            if (strcmp(key, ints[i].key) == 0) {
                if (parse_int(v, 0, ints[i].max, (int *)((char *)r + ints[i].off)) < 0)
                    return cw_errf(why, wl, "expected a whole number of days (0 to %d), got '%s'", ints[i].max, v);
                return 0;
            }
        }
        return cw_errf(why, wl, "unknown key");
    }
    return 0;
}

/* Checks what a rule of its kind needs; fills defaults. */
static int finish_rule(cw_rules *rs, rule *r, char *why, size_t wl) {
    if (!r->level) r->level = strdup(r->kind == K_DATA ? "red" : "yellow");
    if (!r->label)
        r->label = strdup(r->kind == K_DATA ? "数据异常" : r->kind == K_DEADLINE ? "期限预警" : r->kind == K_STALE ? "挂案预警" : "黄牌预警");
    if (!r->overdue_level) r->overdue_level = strdup("red");
    if (!r->overdue_label) r->overdue_label = strdup("超期预警");
    if (!r->level || !r->label || !r->overdue_level || !r->overdue_label) return cw_errf(why, wl, "out of memory");
    switch (r->kind) {
    case K_THRESHOLD:
        if (r->indicator < 0) return cw_errf(why, wl, "a threshold rule needs indicator =");
        if (!r->period) return cw_errf(why, wl, "a threshold rule needs period = month|quarter|year|rolling");
        if (!r->cmp[0]) return cw_errf(why, wl, "a threshold rule needs compare = > | >= | < | <=");
        if (!r->scopes) return cw_errf(why, wl, "a threshold rule needs scope = (pros, dept, unit, city, province, nation)");
        if (!r->has_resolve) r->resolve = r->threshold;
        if (r->cmp[0] == '>' && r->resolve > r->threshold)
            return cw_errf(why, wl, "resolve must not be above threshold for compare %s", r->cmp);
        if (r->cmp[0] == '<' && r->resolve < r->threshold)
            return cw_errf(why, wl, "resolve must not be below threshold for compare %s", r->cmp);
        if (r->sample < 0) r->sample = cw_ind_denominator(r->indicator);
        return 0;
    case K_PERSISTENCE:
        if (!r->of_name) return cw_errf(why, wl, "a persistence rule needs of = <threshold rule>");
        for (size_t i = 0; i < rs->n; i++)
            if (strcmp(rs->rules[i].name, r->of_name) == 0 && rs->rules[i].kind == K_THRESHOLD) r->of = (int)i;
        if (r->of < 0) return cw_errf(why, wl, "of = %s: no threshold rule of that name", r->of_name);
        if (!r->periods) r->periods = 2;
        return 0;
    case K_DEADLINE:
        if (r->clock < 0 && strncmp(r->name, "deadline.", 9) == 0) r->clock = lookup(clock_names, CW_NCLOCKS - 1, r->name + 9);
        if (r->clock < 0) return cw_errf(why, wl, "a deadline rule needs clock = (arrest_review, prosecution_review, ...)");
        if (!r->days && !r->months && !r->working_days)
            return cw_errf(why, wl, "a deadline rule needs days =, months = or working_days =");
        return 0;
    case K_STALE:
        r->clock = CW_CLOCK_STALE;
        if (!r->days) return cw_errf(why, wl, "a stale rule needs days =");
        return 0;
    case K_RANK:
        if (r->indicator < 0) return cw_errf(why, wl, "a rank rule needs indicator =");
        if (!r->period || r->period == CW_PERIOD_ROLLING)
            return cw_errf(why, wl, "a rank rule needs period = month|quarter|year (ranked when it closes)");
        if (!r->cmp[0]) return cw_errf(why, wl, "a rank rule needs compare = > (higher is worse) or < (lower is worse)");
        if (r->scopes != S_DEPT && r->scopes != S_UNIT) return cw_errf(why, wl, "a rank rule ranks scope = dept or scope = unit");
        if (r->scopes == S_DEPT && r->peers_province) return cw_errf(why, wl, "departments are ranked among their 院 (peers = unit)");
        if (r->scopes == S_UNIT && !r->peers_province) return cw_errf(why, wl, "院 are ranked among their province (peers = province)");
        if (!r->bottom && !r->bottom_city && r->bottom_county_fraction <= 0)
            return cw_errf(why, wl, "a rank rule needs bottom = N (or bottom_city and bottom_county_fraction)");
        if (!r->periods) r->periods = 1;
        if (r->sample < 0) r->sample = cw_ind_denominator(r->indicator);
        return 0;
    case K_DATA:
        if (r->check < 0 && strncmp(r->name, "data.", 5) == 0) r->check = lookup(check_names, CW_NCHECKS, r->name + 5);
        if (r->check < 0) return cw_errf(why, wl, "a data rule needs check = (third_return, second_extension, ...)");
        return 0;
    }
    return 0;
}

static const rule *find_kind(const cw_rules *rs, kind k, int which);

static void rule_clear(rule *r) {
    free(r->name);
    free(r->level);
    free(r->label);
    free(r->overdue_level);
    free(r->overdue_label);
    free(r->of_name);
}

cw_rules *cw_rules_new(const cw_config *cfg, char *err, size_t errlen) {
    cw_rules *rs = calloc(1, sizeof(*rs));
    if (!rs) return cw_errf(err, errlen, "out of memory"), NULL;
    rs->cfg = cfg;
    rs->firing = cw_map_new();
    rs->raised = cw_map_new();
    rs->ranked = cw_map_new();
    if (!rs->firing || !rs->raised || !rs->ranked) goto oom;
    /* one rule per distinct name, in the order first seen */
    for (size_t i = 0; i < cfg->nrule_kvs; i++) {
        const char *name = cfg->rule_kvs[i].rule;
        int seen = 0;
        for (size_t j = 0; j < rs->n; j++) seen |= strcmp(rs->rules[j].name, name) == 0;
        if (seen) continue;
        rule *nr = realloc(rs->rules, (rs->n + 1) * sizeof(*nr));
        if (!nr) goto oom;
        rs->rules = nr;
        rule *r = &nr[rs->n++];
        memset(r, 0, sizeof(*r));
        r->name = strdup(name);
        r->indicator = r->sample = r->of = r->clock = r->check = -1;
        if (!r->name) goto oom;
        /* kind first: other keys are checked against it */
        const cw_rule_kv *last = NULL;
        for (size_t j = 0; j < cfg->nrule_kvs; j++) {
            const cw_rule_kv *kv = &cfg->rule_kvs[j];
            if (strcmp(kv->rule, name) != 0) continue;
            last = kv;
            char why[256];
            if (set_key(r, kv->key, kv->value, why, sizeof(why)) < 0) {
                cw_errf(err, errlen, "%s: [rule %s] %s: %s", kv->where, name, kv->key, why);
                cw_rules_free(rs);
                return NULL;
            }
        }
        char why[256];
        if (finish_rule(rs, r, why, sizeof(why)) < 0) {
            cw_errf(err, errlen, "%s: [rule %s]: %s", last ? last->where : "?", name, why);
            cw_rules_free(rs);
            return NULL;
        }
    }
    for (int c = 0; c < CW_NCLOCKS; c++)
        rs->clock_rule[c] = c == CW_CLOCK_STALE ? find_kind(rs, K_STALE, c) : find_kind(rs, K_DEADLINE, c);
    for (int c = 0; c < CW_NCHECKS; c++) rs->check_rule[c] = find_kind(rs, K_DATA, c);
    return rs;
oom:
    cw_rules_free(rs);
    cw_errf(err, errlen, "out of memory");
    return NULL;
}

void cw_rules_free(cw_rules *rs) {
    if (!rs) return;
    for (size_t i = 0; i < rs->n; i++) rule_clear(&rs->rules[i]);
    free(rs->rules);
    cw_map_free(rs->firing);
    cw_map_free(rs->raised);
    cw_map_free(rs->ranked);
    free(rs);
}

size_t cw_rules_count(const cw_rules *rs) {
    return rs->n;
}

uint64_t cw_rules_firing(const cw_rules *rs) {
    return cw_map_size(rs->firing) + rs->lights_on;
}

/* ---- Words for people --------------------------------------------------- */

static const char *unit_name(const cw_rules *rs, const char *code, char *buf, size_t len) {
    const char *n = cw_config_unit_name(rs->cfg, code);
    if (n) return n;
    snprintf(buf, len, "%s院", code);
    return buf;
}

/* "南乐县人民检察院 第一检察部" for a scope, and its unit code for the JSON. */
static void scope_words(const cw_rules *rs, const char *scope, char *words, size_t wl, char *unit, size_t ul) {
    char nb[64], name[200];
    unit[0] = '\0';
    if (strncmp(scope, "pros:", 5) == 0 || strncmp(scope, "dept:", 5) == 0 || strncmp(scope, "unit:", 5) == 0 ||
        strncmp(scope, "case:", 5) == 0) {
        snprintf(unit, ul, "%.6s", scope + 5);
        const char *u = unit_name(rs, unit, nb, sizeof(nb));
        cw_key_unescape(scope + 12 <= scope + strlen(scope) ? scope + 12 : "", name, sizeof(name));
        if (scope[0] == 'p') snprintf(words, wl, "%s 检察官%s", u, name);
        else if (scope[0] == 'd') snprintf(words, wl, "%s %s", u, name);
        else if (scope[0] == 'c') snprintf(words, wl, "%s 案件%s", u, name);
        else snprintf(words, wl, "%s", u);
    } else if (strncmp(scope, "region:", 7) == 0) {
        const char *code = scope + 7;
        snprintf(unit, ul, "%s", code);
        char full[8];
        snprintf(full, sizeof(full), "%s%s", code, strlen(code) == 2 ? "0000" : "00");
        const char *n = cw_config_unit_name(rs->cfg, full);
        if (n) snprintf(words, wl, "%s辖区", n);
        else snprintf(words, wl, "%s地区", code);
    } else {
        snprintf(words, wl, "全国");
    }
}

/* An indicator as people read it, with `extra` more digits than usual. */
static void show_digits(int indicator, double v, int extra, char *out, size_t len) {
    cw_ind_field f;
    cw_ind_fields((size_t)indicator, &f);
    if (f.kind == CW_IND_RATIO) snprintf(out, len, "1:%.*f", 2 + extra, v);
    else if (f.kind == CW_IND_RATE) snprintf(out, len, "%.*f%%", 1 + extra, v * 100);
    else snprintf(out, len, "%.*f天", 1 + extra, v);
}

static void show_value(int indicator, double v, char *out, size_t len) {
    show_digits(indicator, v, 0, out, len);
}

/* A value beside the threshold it is compared with, with the digits that
 * make the comparison read true: 1.1515 against 1.15 is "1:1.152", never
 * "1:1.15，高于 1:1.15". */
static void show_against(int indicator, double v, double t, char *sv, char *st, size_t len) {
    for (int extra = 0; extra <= 4; extra++) {
        show_digits(indicator, v, extra, sv, len);
        show_digits(indicator, t, extra, st, len);
        if (v == t || strcmp(sv, st) != 0) return;
    }
}

/* ---- Indicator rules ---------------------------------------------------- */

static unsigned scope_level(const char *scope) {
    if (strncmp(scope, "pros:", 5) == 0) return S_PROS;
    if (strncmp(scope, "dept:", 5) == 0) return S_DEPT;
    if (strncmp(scope, "unit:", 5) == 0) return S_UNIT;
    if (strncmp(scope, "region:", 7) == 0) return strlen(scope + 7) == 4 ? S_CITY : S_PROVINCE;
    if (strcmp(scope, "nation") == 0) return S_NATION;
    return 0;
}

static int compare(const char *cmp, double v, double t) {
    if (cmp[0] == '>') return cmp[1] ? v >= t : v > t;
    return cmp[1] ? v <= t : v < t;
}

/* Reports a state change of an indicator rule, worded. */
static void indicator_alert(cw_rules *rs, const rule *r, const rule *base, const char *scope, const char *period,
                            const char *id, int firing, int defined, double v, int64_t event_ts, cw_alert_fn fn,
                            void *data) {
    char words[300], unit[8], plabel[32], shown[32], thr[32], msg[600];
    scope_words(rs, scope, words, sizeof(words), unit, sizeof(unit));
    cw_period_label_zh(period, plabel, sizeof(plabel));
    cw_ind_field f;
    cw_ind_fields((size_t)base->indicator, &f);
    double against = firing ? base->threshold : base->resolve;
    show_value(base->indicator, against, thr, sizeof(thr));
    if (defined) show_against(base->indicator, v, against, shown, thr, sizeof(shown));
    else snprintf(shown, sizeof(shown), "无");
    const char *side = base->cmp[0] == '>' ? "高于" : "低于";
    if (r->kind == K_PERSISTENCE && firing)
        snprintf(msg, sizeof(msg), "%s 截至%s %s 连续%d个周期%s %s，%s", words, plabel, f.zh, r->periods, side, thr,
                 r->label);
    else if (r->kind == K_PERSISTENCE)
        snprintf(msg, sizeof(msg), "%s 截至%s %s 不再连续%d个周期%s %s，%s解除", words, plabel, f.zh, r->periods, side,
                 thr, r->label);
    else if (firing)
        snprintf(msg, sizeof(msg), "%s %s %s %s，%s %s，%s", words, plabel, f.zh, shown, side, thr, r->label);
    else
        snprintf(msg, sizeof(msg), "%s %s %s %s，已不再%s %s，%s解除", words, plabel, f.zh, shown, side, thr, r->label);
    cw_alert a = {.id = id,
                  .firing = firing,
                  .level = r->level,
                  .label = r->label,
                  .rule = r->name,
                  .scope = scope,
                  .unit = unit,
                  .indicator = f.name,
                  .has_value = defined,
                  .value = defined ? v : 0,
                  .threshold = base->threshold,
                  .period = period,
                  .event_ts = event_ts,
                  .message = msg};
    fn(&a, data);
}

static int is_firing(cw_rules *rs, const char *id) {
    return cw_map_get(rs->firing, id, strlen(id)) != NULL;
}

static void set_firing(cw_rules *rs, const char *id, int on) {
    if (on) cw_map_put(rs->firing, id, strlen(id), (void *)1);
    else cw_map_del(rs->firing, id, strlen(id));
}

static void eval_persistence(cw_rules *rs, const rule *r, const char *scope, const char *period, const uint64_t *c,
                             int64_t event_ts, cw_alert_fn fn, void *data) {
    const rule *base = &rs->rules[r->of];
    /* the base changed in `period`: runs ending there or up to periods-1 later may change */
    for (int k = 0; k < r->periods; k++) {
        char end[8];
        if (cw_period_shift(period, k, end) < 0) return;
        int all = 1;
        for (int j = 0; j < r->periods && all; j++) {
            char p[8], bid[600];
            cw_period_shift(end, -j, p);
            snprintf(bid, sizeof(bid), "%s/%s/%s", base->name, scope, p);
            all = is_firing(rs, bid);
        }
        char id[600];
        snprintf(id, sizeof(id), "%s/%s/%s", r->name, scope, end);
        if (all == is_firing(rs, id)) continue;
        set_firing(rs, id, all);
        double v = 0;
        int defined = k == 0 && cw_ind_value(c, base->indicator, &v) == 0;
        indicator_alert(rs, r, base, scope, end, id, all, defined, v, event_ts, fn, data);
    }
}

void cw_rules_eval(cw_rules *rs, const char *scope, const char *period, const uint64_t *c, int64_t event_ts,
                   cw_alert_fn fn, void *data) {
    unsigned level = scope_level(scope);
    cw_period_kind pk = cw_period_kind_of(period);
    for (size_t i = 0; i < rs->n; i++) {
        const rule *r = &rs->rules[i];
        if (r->kind != K_THRESHOLD || !(r->scopes & level) || r->period != pk) continue;
        char id[600];
        snprintf(id, sizeof(id), "%s/%s/%s", r->name, scope, period);
        double v = 0;
        int defined = cw_ind_value(c, r->indicator, &v) == 0;
        int enough = (double)c[r->sample] >= r->min_sample;
        int was = is_firing(rs, id);
        int now = was ? defined && enough && compare(r->cmp, v, r->resolve)
                      : defined && enough && compare(r->cmp, v, r->threshold);
        if (now == was) continue;
        set_firing(rs, id, now);
        indicator_alert(rs, r, r, scope, period, id, now, defined, v, event_ts, fn, data);
        for (size_t j = 0; j < rs->n; j++)
            if (rs->rules[j].kind == K_PERSISTENCE && rs->rules[j].of == (int)i)
                eval_persistence(rs, &rs->rules[j], scope, period, c, event_ts, fn, data);
    }
}

void cw_rules_adopt(cw_rules *rs, cw_rules *old, int64_t now_ms, cw_alert_fn fn, void *data) {
    size_t pos = 0;
    const char *id;
    size_t len;
    while (cw_map_next(old->firing, &pos, &id, &len, NULL)) {
        const char *slash = memchr(id, '/', len);
        size_t nl = slash ? (size_t)(slash - id) : len;
        int kept = 0;
        for (size_t i = 0; i < rs->n && !kept; i++)
            kept = strlen(rs->rules[i].name) == nl && memcmp(rs->rules[i].name, id, nl) == 0 &&
                   (rs->rules[i].kind == K_THRESHOLD || rs->rules[i].kind == K_PERSISTENCE ||
                    rs->rules[i].kind == K_RANK);
        if (kept || (len > 7 && strncmp(id, "system.", 7) == 0)) { /* the daemon's own stay too */
            cw_map_put(rs->firing, id, len, (void *)1);
            continue;
        }
        /* the rule is gone: resolve what it had raised */
        char rname[128], scope[400], period[16], msg[600];
        const char *s2 = slash ? memchr(slash + 1, '/', len - nl - 1) : NULL;
        snprintf(rname, sizeof(rname), "%.*s", (int)nl, id);
        snprintf(scope, sizeof(scope), "%.*s", s2 ? (int)(s2 - slash - 1) : 0, slash ? slash + 1 : "");
        snprintf(period, sizeof(period), "%s", s2 ? s2 + 1 : "");
        char words[300], unit[8];
        scope_words(rs, scope, words, sizeof(words), unit, sizeof(unit));
        snprintf(msg, sizeof(msg), "%s 规则 %s 已从配置中删除，预警解除", words, rname);
        cw_alert a = {.id = id, .firing = 0, .level = "yellow", .label = "预警解除", .rule = rname,
                      .scope = scope, .unit = unit, .period = period, .event_ts = now_ms, .message = msg};
        fn(&a, data);
    }
    rs->lights_on = old->lights_on;
    pos = 0;
    while (cw_map_next(old->raised, &pos, &id, &len, NULL)) cw_map_put(rs->raised, id, len, (void *)1);
    pos = 0;
    while (cw_map_next(old->ranked, &pos, &id, &len, NULL)) cw_map_put(rs->ranked, id, len, (void *)1);
}

/* ---- Clocks and data checks --------------------------------------------- */

static const rule *find_kind(const cw_rules *rs, kind k, int which) {
    for (size_t i = 0; i < rs->n; i++) {
        const rule *r = &rs->rules[i];
        if (r->kind != k) continue;
        if ((k == K_DEADLINE && r->clock == which) || (k == K_DATA && r->check == which) || k == K_STALE) return r;
    }
    return NULL;
}

void cw_rules_clocks(const cw_rules *rs, cw_clock_rules *o) {
    memset(o, 0, sizeof(*o));
    for (int c = 0; c < CW_NCLOCKS; c++) {
        const rule *r = rs->clock_rule[c];
        if (!r) continue;
        cw_clock_rule *k = &o->k[c];
        k->enabled = 1;
        k->warn_days = r->warn_days;
        k->urgent_days = r->urgent_days;
        k->days = r->days;
        k->months = r->months;
        k->working_days = r->working_days;
        k->days_detained = r->days_detained ? r->days_detained : r->days;
        k->days_complex = r->days_complex ? r->days_complex : r->days;
        k->days_fast = r->days_fast;
        /* CPL art. 172: 速裁 10 days, 15 in all once extended */
        k->days_fast_extended = r->days_fast_extended ? r->days_fast_extended : r->days_fast ? 15 : 0;
        k->extension_days = r->extension_days;
        k->holidays_extend = !r->holidays_ignore;
    }
}

/* "case:<unit>:<escaped case>", on every light's path: appended, not formatted. */
#define CASE_ESC (3 * 128 + 1) /* a case id escaped: 3 bytes for each of 128 at most (CW_CASE_MAX) */
static void case_scope(const char *unit, const char *case_id, char *out, size_t len) {
    char esc[CASE_ESC];
    if (cw_key_escape(case_id, strlen(case_id), esc, sizeof(esc)) < 0) esc[0] = '\0';
    text t;
    text_init(&t, out, len);
    put_s(&t, "case:"), put_s(&t, unit), put_s(&t, ":"), put_s(&t, esc);
}

/* "第一检察部 检察官张三" (who must act), or "" when the case has neither. */
static void who_words(const cw_rules *rs, const cw_light *l, char *out, size_t len) {
    const char *pn = l->pros[0] ? cw_config_pros_name(rs->cfg, l->unit, l->pros) : NULL;
    text t;
    text_init(&t, out, len);
    if (l->dept[0]) put_s(&t, " "), put_s(&t, l->dept);
    if (l->pros[0]) put_s(&t, " 检察官"), put_s(&t, pn ? pn : l->pros);
    if (l->dept[0] || l->pros[0]) put_s(&t, " 承办的");
}

static const char *const light_names[] = {"", "yellow", "orange", "red"};

/* The rule that words l, or NULL (no rule for its clock, or no light). */
static const rule *light_rule(const cw_rules *rs, const cw_light *l) {
    const rule *r = (unsigned)l->clock < CW_NCLOCKS ? rs->clock_rule[l->clock] : NULL;
    return l->light == CW_LIGHT_NONE ? NULL : r;
}

/* "<rule>/<scope>/<date>/<light>" into id[CW_LIGHT_ID_MAX] (cut as the
 * text buffer cuts); scope[500] and date[11] are filled on the way. */
static size_t light_id(const rule *r, const cw_light *l, char *scope, char *date, char *id) {
    text t;
    case_scope(l->unit, l->case_id, scope, 500);
    cw_period_day_date(l->due_day - 1, date); /* the last day of the period */
    text_init(&t, id, CW_LIGHT_ID_MAX);
    put_s(&t, r->name), put_s(&t, "/"), put_s(&t, scope), put_s(&t, "/"), put_s(&t, date), put_s(&t, "/");
    put_s(&t, light_names[l->light & 3]);
    return t.len;
}

int cw_rules_light_count(cw_rules *rs, const cw_light *l) {
    if (!light_rule(rs, l)) return 0;
    if (l->firing) rs->lights_on++;
    else if (rs->lights_on) rs->lights_on--;
    return 1;
}

/* Whether nothing of l's id can be cut (the case's escape, the scope's
 * 500 bytes, the id's 700): the id is then at most nl + ul + 3 * cl + 24
 * bytes, below CW_LIGHT_ID_MAX - 1. */
static int id_whole(size_t nl, size_t ul, size_t cl) {
    return 3 * cl + 1 <= CASE_ESC && 6 + ul + 3 * cl < 500 && nl + ul + 3 * cl + 25 < CW_LIGHT_ID_MAX;
}

int cw_rules_light_id_whole(const cw_rules *rs, const cw_light *l) {
    const rule *r = light_rule(rs, l);
    return r && id_whole(strlen(r->name), strlen(l->unit), strlen(l->case_id));
}

/* Once for every light a replay held (cw_sink): when nothing can be cut,
 * the id is put together in place, without the scope or the date apart. */
size_t cw_rules_light_id(const cw_rules *rs, const cw_light *l, char *id) {
    const rule *r = light_rule(rs, l);
    if (!r) return id[0] = '\0', 0;
    size_t nl = strlen(r->name), ul = strlen(l->unit), cl = strlen(l->case_id);
    if (id_whole(nl, ul, cl)) {
        char *p = id;
        memcpy(p, r->name, nl), p += nl;
        memcpy(p, "/case:", 6), p += 6;
        memcpy(p, l->unit, ul), p += ul;
        *p++ = ':';
        p += cw_key_escape(l->case_id, cl, p, 3 * cl + 1); /* fits: 3 bytes a byte at most */
        *p++ = '/';
        cw_period_day_date(l->due_day - 1, p), p += 10; /* the last day of the period */
        *p++ = '/';
        const char *ln = light_names[l->light & 3];
        size_t ll = strlen(ln);
        memcpy(p, ln, ll + 1);
        return (size_t)(p + ll - id);
    }
    char scope[500], date[11];
    return light_id(r, l, scope, date, id);
}

void cw_rules_light_words(const cw_rules *rs, const cw_light *l, cw_alert_fn fn, void *data) {
    int clock = l->clock, light = l->light;
    const rule *r = light_rule(rs, l);
    if (!r) return;
    char scope[500], id[CW_LIGHT_ID_MAX], date[11], nb[64], who[300], msg[1000];
    text t;
    light_id(r, l, scope, date, id);
    /* a stale rule's only light is its own (挂案预警), not 超期预警 */
    int overdue = light == CW_LIGHT_RED && r->kind != K_STALE;
    const char *level = overdue ? r->overdue_level : light == CW_LIGHT_ORANGE ? "orange" : r->level;
    const char *label = overdue ? r->overdue_label : r->label;
    /* "南乐县人民检察院 第一检察部 检察官张三 承办的案件<case> 审查逮捕期限将于
     * 2020-08-04 24时届满，剩余2天，期限预警" */
    who_words(rs, l, who, sizeof(who));
    text_init(&t, msg, sizeof(msg));
    put_s(&t, unit_name(rs, l->unit, nb, sizeof(nb))), put_s(&t, who), put_s(&t, " 案件"), put_s(&t, l->case_id);
    put_s(&t, " ");
    put_s(&t, clock_zh[clock]);
    if (!l->firing) {
        put_s(&t, "（"), put_s(&t, date), put_s(&t, " 24时届满）"), put_s(&t, label), put_s(&t, "解除");
    } else if (light == CW_LIGHT_RED) {
        put_s(&t, "已于 "), put_s(&t, date), put_s(&t, " 24时届满");
        if (l->days_left < 0) put_s(&t, "，已超期"), put_u(&t, (unsigned)-l->days_left), put_s(&t, "天");
        put_s(&t, "，"), put_s(&t, label);
    } else {
        put_s(&t, "将于 "), put_s(&t, date), put_s(&t, " 24时届满，剩余");
        put_u(&t, (unsigned)(l->days_left > 0 ? l->days_left : 0));
        put_s(&t, "天，"), put_s(&t, label);
    }
    int off = rs->cfg->utc_offset_min;
    cw_alert a = {.id = id,
                  .firing = l->firing,
                  .level = level,
                  .label = label,
                  .rule = r->name,
                  .scope = scope,
                  .unit = l->unit,
                  .dept = l->dept,
                  .pros = l->pros,
                  .deadline_ms = cw_period_day_start(l->due_day, off),
                  .event_ts = l->ts,
                  .message = msg};
    fn(&a, data);
}

void cw_rules_light(cw_rules *rs, const cw_light *l, cw_alert_fn fn, void *data) {
    if (cw_rules_light_count(rs, l)) cw_rules_light_words(rs, l, fn, data);
}

void cw_rules_check(cw_rules *rs, int check, const char *unit, const char *case_id, const char *event_type,
                    int64_t event_ts, cw_alert_fn fn, void *data) {
    const rule *r = (unsigned)check < CW_NCHECKS ? rs->check_rule[check] : NULL;
    if (!r) return;
    char scope[500], id[700], words[400], u[8], msg[800];
    case_scope(unit, case_id, scope, sizeof(scope));
    snprintf(id, sizeof(id), "%s/%s", r->name, scope);
    if (cw_map_get(rs->raised, id, strlen(id))) return; /* once per case */
    cw_map_put(rs->raised, id, strlen(id), (void *)1);
    scope_words(rs, scope, words, sizeof(words), u, sizeof(u));
    snprintf(msg, sizeof(msg), "%s %s（%s），%s", words, check_zh[check], event_type, r->label);
    cw_alert a = {.id = id,
                  .firing = 1,
                  .level = r->level,
                  .label = r->label,
                  .rule = r->name,
                  .scope = scope,
                  .unit = unit,
                  .event_ts = event_ts,
                  .message = msg};
    fn(&a, data);
}

/* ---- Ranking peers when a period closes ---------------------------------- */

typedef struct peer {
    char scope[200];
    char group[8]; /* the unit (departments) or province + level (院) */
    double value;
    int rank, peers; /* its position in its group (1 = best) and the group's size */
} peer;

typedef struct peers {
    const rule *r;
    peer *p;
    size_t n, cap;
} peers;

static void collect_peer(const char *scope, const uint64_t *c, void *data) {
    peers *ps = data;
    const rule *r = ps->r;
    if (!(scope_level(scope) & r->scopes)) return;
    /* a province's own 院 (xx0000) has no peers among its cities or counties */
    if (r->scopes == S_UNIT && strcmp(scope + 7, "0000") == 0) return;
    double v;
    if (cw_ind_value(c, r->indicator, &v) < 0 || (double)c[r->sample] < r->min_sample) return;
    if (strlen(scope) >= sizeof(ps->p[0].scope)) return;
    if (ps->n == ps->cap) {
        size_t cap = ps->cap ? ps->cap * 2 : 64;
        peer *np = realloc(ps->p, cap * sizeof(*np));
        if (!np) return;
        ps->p = np;
        ps->cap = cap;
    }
    peer *p = &ps->p[ps->n++];
    snprintf(p->scope, sizeof(p->scope), "%s", scope);
    const char *code = scope + 5; /* "dept:410923:..." or "unit:410923" */
    if (r->scopes == S_DEPT) snprintf(p->group, sizeof(p->group), "%.6s", code);
    else if (r->bottom) snprintf(p->group, sizeof(p->group), "%.2s", code);
    else /* city-level 院 end in 00 (not 0000: the province's own), county-level do not */
        snprintf(p->group, sizeof(p->group), "%.2s%c", code, strcmp(code + 4, "00") == 0 ? 'c' : 'x');
    p->value = v;
}

static int worse_first_gt(const void *a, const void *b) {
    const peer *x = a, *y = b;
    int g = strcmp(x->group, y->group);
    if (g) return g;
    return x->value < y->value ? 1 : x->value > y->value ? -1 : strcmp(x->scope, y->scope);
}

static int worse_first_lt(const void *a, const void *b) {
    const peer *x = a, *y = b;
    int g = strcmp(x->group, y->group);
    if (g) return g;
    return x->value > y->value ? 1 : x->value < y->value ? -1 : strcmp(x->scope, y->scope);
}

static void rank_alert(cw_rules *rs, const rule *r, const peer *p, const char *period, const char *id, int firing,
                       int64_t ts, cw_alert_fn fn, void *data) {
    char words[300], unit[8], plabel[32], shown[32], msg[600];
    scope_words(rs, p->scope, words, sizeof(words), unit, sizeof(unit));
    cw_period_label_zh(period, plabel, sizeof(plabel));
    cw_ind_field f;
    cw_ind_fields((size_t)r->indicator, &f);
    show_value(r->indicator, p->value, shown, sizeof(shown));
    const char *among = r->scopes == S_DEPT ? "本院各部门" : p->group[2] == 'c' ? "本省市级院" : p->group[2] == 'x' ? "本省县级院" : "本省各院";
    char place[80];
    snprintf(place, sizeof(place), "在%s中排名第%d（共%d个）%s", among, p->rank, p->peers,
             p->rank == p->peers ? "，末位" : "");
    if (firing && r->periods > 1)
        snprintf(msg, sizeof(msg), "%s %s %s %s，%s，连续%d个周期排名靠后，%s", words, plabel, f.zh, shown, place,
                 r->periods, r->label);
    else if (firing)
        snprintf(msg, sizeof(msg), "%s %s %s %s，%s，%s", words, plabel, f.zh, shown, place, r->label);
    else
        snprintf(msg, sizeof(msg), "%s %s %s 排名预警解除（新一期排名已不在末位）", words, plabel, f.zh);
    cw_alert a = {.id = id, .firing = firing, .level = r->level, .label = r->label, .rule = r->name,
                  .scope = p->scope, .unit = unit, .indicator = f.name, .has_value = firing, .value = p->value,
                  .threshold = 0, .period = period, .event_ts = ts, .message = msg,
                  .rank = firing ? p->rank : 0, .peers = firing ? p->peers : 0};
    fn(&a, data);
}

void cw_rules_close_period(cw_rules *rs, const struct cw_ind *ind, const char *period, int64_t ts, cw_alert_fn fn,
                           void *data) {
    cw_period_kind pk = cw_period_kind_of(period);
    for (size_t i = 0; i < rs->n; i++) {
        const rule *r = &rs->rules[i];
        if (r->kind != K_RANK || r->period != pk) continue;
        peers ps = {.r = r};
        cw_ind_each(ind, period, collect_peer, &ps);
        if (ps.n) qsort(ps.p, ps.n, sizeof(peer), r->cmp[0] == '>' ? worse_first_gt : worse_first_lt);
        /* earlier periods' alerts of this rule resolve: this ranking replaces them */
        char prefix[200];
        snprintf(prefix, sizeof(prefix), "%s/", r->name);
        size_t plen = strlen(prefix), pos = 0;
        const char *id;
        size_t len;
        char **stale = NULL;
        size_t nstale = 0;
        while (cw_map_next(rs->firing, &pos, &id, &len, NULL)) {
            /* any earlier period of this rule: the clock may have jumped months */
            const char *slash = memrchr(id, '/', len);
            if (len > plen && strncmp(id, prefix, plen) == 0 && slash && strcmp(slash + 1, period) < 0) {
                char **ns = realloc(stale, (nstale + 1) * sizeof(*ns));
                if (!ns) break;
                stale = ns;
                stale[nstale++] = strndup(id, len);
            }
        }
        for (size_t g = 0; g < ps.n;) {
            size_t end = g;
            while (end < ps.n && strcmp(ps.p[end].group, ps.p[g].group) == 0) end++;
            size_t count = end - g, worst;
            if (ps.p[g].group[2] == 'c') worst = (size_t)r->bottom_city;
            else if (ps.p[g].group[2] == 'x') worst = (size_t)(r->bottom_county_fraction * (double)count + 0.5);
            else worst = (size_t)r->bottom;
            if (count < 2) worst = 0; /* no peers, no rank */
            if (worst > count) worst = count;
            for (size_t k = g; k < end; k++) { /* worst first: the last is ranked 1 */
                ps.p[k].rank = (int)(count - (k - g));
                ps.p[k].peers = (int)count;
            }
            for (size_t k = g; k < g + worst; k++) {
                const peer *p = &ps.p[k];
                char key[600], pid[600];
                snprintf(key, sizeof(key), "%s/%s/%s", r->name, p->scope, period);
                cw_map_put(rs->ranked, key, strlen(key), (void *)1);
                int all = 1;
                for (int j = 1; j < r->periods && all; j++) {
                    char pj[8];
                    cw_period_shift(period, -j, pj);
                    snprintf(pid, sizeof(pid), "%s/%s/%s", r->name, p->scope, pj);
                    all = cw_map_get(rs->ranked, pid, strlen(pid)) != NULL;
                }
                /* still at the bottom: last period's alert gives way to this one */
                if (!all) continue;
                if (!is_firing(rs, key)) {
                    set_firing(rs, key, 1);
                    rank_alert(rs, r, p, period, key, 1, ts, fn, data);
                }
            }
            g = end;
        }
        for (size_t k = 0; k < nstale; k++) {
            const char *scope = stale[k] + plen, *slash = strrchr(scope, '/');
            peer p;
            memset(&p, 0, sizeof(p));
            snprintf(p.scope, sizeof(p.scope), "%.*s", (int)(slash - scope), scope);
            set_firing(rs, stale[k], 0);
            rank_alert(rs, r, &p, slash + 1, stale[k], 0, ts, fn, data);
            free(stale[k]);
        }
        free(stale);
        free(ps.p);
    }
}

/* ---- snapshots ----------------------------------------------------------- */

static void save_map(const cw_map *m, cw_snap_writer *w) {
    cw_snap_put_u64(w, cw_map_size(m));
    size_t pos = 0, len;
    const char *k;
    while (cw_map_next(m, &pos, &k, &len, NULL)) cw_snap_put_bytes(w, k, len);
}

static int load_map(cw_map *m, cw_snap_reader *r) {
    uint64_t n = cw_snap_get_u64(r);
    for (uint64_t i = 0; i < n && !r->bad; i++) {
        size_t len;
        const char *k = cw_snap_get_bytes(r, 4096, &len);
        if (k && cw_map_put(m, k, len, (void *)1) < 0) return -1;
    }
    return r->bad ? -1 : 0;
}

void cw_rules_save(const cw_rules *rs, cw_snap_writer *w) {
    save_map(rs->firing, w);
    save_map(rs->raised, w);
    save_map(rs->ranked, w);
    cw_snap_put_u64(w, rs->lights_on);
}

int cw_rules_load(cw_rules *rs, cw_snap_reader *r) {
    if (load_map(rs->firing, r) < 0 || load_map(rs->raised, r) < 0 || load_map(rs->ranked, r) < 0) return -1;
    rs->lights_on = cw_snap_get_u64(r);
    return r->bad ? -1 : 0;
}

void cw_rules_reconcile(cw_rules *rs, const char *id, int firing) {
    const char *slash = strchr(id, '/');
    if (!slash) return;
    for (size_t i = 0; i < rs->n; i++) {
        const rule *r = &rs->rules[i];
        if (strlen(r->name) != (size_t)(slash - id) || strncmp(r->name, id, (size_t)(slash - id)) != 0) continue;
        if (r->kind == K_THRESHOLD || r->kind == K_PERSISTENCE) set_firing(rs, id, firing);
        return;
    }
}

static void system_id(const cw_rules *rs, const char *name, const char *what, char *id, size_t len, char *scope,
                      size_t slen) {
    snprintf(scope, slen, "daemon:%s", rs->cfg->instance);
    snprintf(id, len, "%s/%s/%s", name, scope, what);
}

int cw_rules_system_firing(const cw_rules *rs, const char *name, const char *what) {
    char id[300], scope[200];
    system_id(rs, name, what, id, sizeof(id), scope, sizeof(scope));
    return is_firing((cw_rules *)rs, id);
}

void cw_rules_system(cw_rules *rs, const char *name, const char *what, int firing, const char *level, const char *label,
                     const char *message, int64_t ts, cw_alert_fn fn, void *data) {
    char id[300], scope[200];
    system_id(rs, name, what, id, sizeof(id), scope, sizeof(scope));
    if (is_firing(rs, id) == firing) return;
    set_firing(rs, id, firing);
    cw_alert a = {.id = id, .firing = firing, .level = level, .label = label, .rule = name, .scope = scope,
                  .unit = "", .event_ts = ts, .message = message};
    fn(&a, data);
}
