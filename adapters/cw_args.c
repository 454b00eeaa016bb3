#include "cw_args.h"

#include <time.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../daemon/cw_period.h"
#include "../proto/cw_text.h"

static int all_digits(const char *s, size_t n) {
    if (!n) return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9') return 0;
    return 1;
}

/* The configured 院 as a list for messages: "410923 南乐县人民检察院, ...". */
static void unit_list(const cw_config *cfg, char *out, size_t len) {
    out[0] = '\0';
    for (size_t i = 0; i < cfg->nunits; i++) {
        size_t at = strlen(out);
        snprintf(out + at, len - at, "%s%s %s", i ? ", " : "", cfg->units[i].code, cfg->units[i].name);
    }
}

int cw_args_unit(const cw_config *cfg, const char *text, int prefix_ok, char code[7], char *err, size_t errlen) {
    size_t n = strlen(text);
    if (all_digits(text, n)) {
        if (n == 6 || (prefix_ok && n < 6)) {
            memcpy(code, text, n + 1);
            return 0;
        }
        return cw_errf(err, errlen, "unit '%s' is not a 6-digit code%s", text,
                       prefix_ok ? " nor a region prefix of 1 to 5 digits" : "");
    }
    if (!n) return cw_errf(err, errlen, "empty unit: give a 6-digit code or a [units] name");
    char list[1024];
    unit_list(cfg, list, sizeof(list));
    for (size_t i = 0; i < cfg->nunits; i++) {
        if (strcmp(cfg->units[i].name, text) == 0) {
            memcpy(code, cfg->units[i].code, 7);
            return 0;
        }
    }
    size_t found = 0, which = 0;
    for (size_t i = 0; i < cfg->nunits; i++)
        if (strstr(cfg->units[i].name, text)) found++, which = i;
    if (found == 1) {
        memcpy(code, cfg->units[which].code, 7);
        return 0;
    }
    if (found > 1) {
        char m[1024] = "";
        for (size_t i = 0; i < cfg->nunits; i++)
            if (strstr(cfg->units[i].name, text)) {
                size_t at = strlen(m);
                snprintf(m + at, sizeof(m) - at, "%s%s %s", at ? ", " : "", cfg->units[i].code, cfg->units[i].name);
            }
        return cw_errf(err, errlen, "unit '%s' names more than one 院 (%s): give the code", text, m);
    }
    if (!cfg->nunits)
        return cw_errf(err, errlen, "unknown unit '%s': not a 6-digit code, and the configuration names no 院 ([units])",
                       text);
    return cw_errf(err, errlen, "unknown unit '%s': not a 6-digit code nor a [units] name (%s)", text, list);
}

int cw_args_stream_id(const char *s) {
    const char *dash = strchr(s, '-');
    if (!dash) return all_digits(s, strlen(s)) && strlen(s) <= 20;
    return dash - s <= 20 && all_digits(s, (size_t)(dash - s)) && all_digits(dash + 1, strlen(dash + 1)) &&
           strlen(dash + 1) <= 20;
}

/* Reads 1..max digits at *p (not past end) as a number. */
static int digits(const char **p, const char *end, int min, int max, int *out) {
    int v = 0, k = 0;
    while (*p < end && **p >= '0' && **p <= '9' && k < max) v = v * 10 + (*(*p)++ - '0'), k++;
    if (k < min) return -1;
    *out = v;
    return 0;
}

/* Takes the literal lit at *p when it is there. */
static int take(const char **p, const char *end, const char *lit) {
    size_t n = strlen(lit);
    if ((size_t)(end - *p) >= n && memcmp(*p, lit, n) == 0) return (*p += n, 1);
    return 0;
}

static int days_in_month(int y, int m) {
    static const int d[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0) ? 29 : d[m - 1];
}

int cw_args_time(const char *s, size_t len, int offset_min, int64_t *ms, char *err, size_t errlen) {
    const char *p = s, *end = s + len;
    while (p < end && (*p == ' ' || *p == '\t')) p++;
    while (end > p && (end[-1] == ' ' || end[-1] == '\t')) end--;
    int y, mo, d, h = 0, mi = 0, sec = 0, frac = 0, zone = offset_min;
    const char *why = NULL;
    if (digits(&p, end, 4, 4, &y) < 0) why = "no year";
    else if (!take(&p, end, "-") && !take(&p, end, "/") && !take(&p, end, "年")) why = "no date";
    else if (digits(&p, end, 1, 2, &mo) < 0) why = "no month";
    else if (!take(&p, end, "-") && !take(&p, end, "/") && !take(&p, end, "月")) why = "no day";
    else if (digits(&p, end, 1, 2, &d) < 0) why = "no day";
    if (!why) {
        take(&p, end, "日");
        if (p < end && (*p == 'T' || *p == ' ')) {
            while (p < end && (*p == 'T' || *p == ' ')) p++;
            if (digits(&p, end, 1, 2, &h) < 0 || !take(&p, end, ":") || digits(&p, end, 2, 2, &mi) < 0) {
                why = "a time of day is HH:MM[:SS]";
            } else if (take(&p, end, ":")) {
                if (digits(&p, end, 2, 2, &sec) < 0) why = "seconds are two digits";
                else if (take(&p, end, ".") || take(&p, end, ",")) {
                    int k = 0;
                    while (p < end && *p >= '0' && *p <= '9') {
                        if (k < 3) frac = frac * 10 + (*p - '0');
                        k++, p++;
                    }
                    while (k < 3) frac *= 10, k++;
                }
            }
        }
    }
    if (!why && p < end) {
        /* a zone: Z, +HH:MM, +HHMM, +HH */
        if (*p == 'Z' || *p == 'z') {
            zone = 0;
            p++;
        } else if (*p == '+' || *p == '-') {
            int sign = *p++ == '-' ? -1 : 1, zh, zm = 0;
            if (digits(&p, end, 2, 2, &zh) < 0) why = "a zone is Z or +HH:MM";
            else {
                take(&p, end, ":");
                if (p < end && digits(&p, end, 2, 2, &zm) < 0) why = "a zone is Z or +HH:MM";
                else if (zh > 14 || zm > 59) why = "the zone is out of range";
                zone = sign * (zh * 60 + zm);
            }
        }
        if (!why && p < end) why = "unexpected text after the time";
    }
    if (!why && (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo))) why = "no such date";
    if (!why && (h > 23 || mi > 59 || sec > 59)) why = "no such time of day";
    if (why) {
        char zone_text[16];
        snprintf(zone_text, sizeof(zone_text), "%c%02d:%02d", offset_min < 0 ? '-' : '+', abs(offset_min) / 60,
                 abs(offset_min) % 60);
        return cw_errf(err, errlen,
                       "'%.*s' is not a time (%s): expected ISO 8601 such as 2026-11-27T09:00:00+08:00, or "
                       "YYYY-MM-DD[ HH:MM[:SS]] in local time (%s)",
                       (int)len > 64 ? 64 : (int)len, s, why, zone_text);
    }
    *ms = cw_period_local_midnight(y, mo, d, zone) + ((int64_t)h * 3600 + mi * 60 + sec) * 1000 + frac;
    return 0;
}

int cw_args_glob_escape(const char *s, char *out, size_t outlen) {
    size_t k = 0;
    for (; *s; s++) {
        int special = strchr("*?[]\\", *s) != NULL;
        if (k + (size_t)special + 2 > outlen) {
            if (outlen) out[k < outlen ? k : outlen - 1] = '\0';
            return -1;
        }
        if (special) out[k++] = '\\';
        out[k++] = *s;
    }
    out[k] = '\0';
    return 0;
}

void cw_args_show_time(int64_t ms, int offset_min, int seconds, char *buf, size_t len) {
    time_t t = (time_t)(ms / 1000 + offset_min * 60);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, len, seconds ? "%Y-%m-%d %H:%M:%S" : "%Y-%m-%d %H:%M", &tm);
}

void cw_args_show_duration(int64_t ms, int seconds, char *buf, size_t len) {
    long long s = ms > 0 ? (long long)(ms / 1000) : 0;
    if (seconds && s < 60) snprintf(buf, len, "%lld s", s);
    else if (seconds && s < 3600) snprintf(buf, len, "%lld min %lld s", s / 60, s % 60);
    else if (s < 3600) snprintf(buf, len, "%lld min", s / 60);
    else if (s < 86400) snprintf(buf, len, "%lld h %lld min", s / 3600, s % 3600 / 60);
    else snprintf(buf, len, "%lld d %lld h", s / 86400, s % 86400 / 3600);
}
