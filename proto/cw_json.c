#include "cw_json.h"

#include <math.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cw_text.h"

void cw_json_init(cw_json *j) {
    cw_buf_init(&j->out);
    j->members = 0;
}

void cw_json_destroy(cw_json *j) {
    if (!j) return;
    cw_buf_destroy(&j->out);
    j->members = 0;
}

static void put(cw_json *j, const char *s, size_t n) {
    char *o = cw_buf_room(&j->out, n);
    if (!o) return;
    memcpy(o, s, n);
    j->out.len += n;
}

void cw_json_begin(cw_json *j) {
    cw_buf_reset(&j->out);
    j->members = 0;
    put(j, "{", 1);
}

/* Bytes that stand for themselves inside a JSON string: printable ASCII
 * but '"' and '\\'. Bytes from 0x80 start a UTF-8 sequence to check. */
#define P16(v) v, v, v, v, v, v, v, v, v, v, v, v, v, v, v, v
static const unsigned char json_plain[256] = {
    P16(0), P16(0),
    1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x20: '"' is 0x22 */
    P16(1), P16(1),
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, /* 0x50: '\\' is 0x5C */
    P16(1), P16(1),
};
#undef P16

/* A JSON string, escaped as jansson escapes it, written in place: room for
 * the longest escaping (6 bytes a byte) is made once. Runs of bytes that
 * need nothing are copied whole. */
static void put_string(cw_json *j, const char *s) {
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(s);
    if (n > (SIZE_MAX - 2) / 6) {
        j->out.oom = 1;
        return;
    }
    char *o = cw_buf_room(&j->out, 6 * n + 2);
    if (!o) return;
    char *start = o;
    *o++ = '"';
    size_t run = 0, i = 0;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        if (json_plain[c]) {
            i++;
            continue;
        }
        if (c >= 0x80) {
            size_t k = cw_utf8_char(s + i, n - i);
            if (k) {
                i += k;
                continue;
            }
        }
        memcpy(o, s + run, i - run);
        o += i - run;
        if (c >= 0x80) { /* not UTF-8: the replacement character */
            memcpy(o, "\xEF\xBF\xBD", 3);
            o += 3;
        } else {
            *o++ = '\\';
            switch (c) {
            case '"': *o++ = '"'; break;
            case '\\': *o++ = '\\'; break;
            case '\b': *o++ = 'b'; break;
            case '\f': *o++ = 'f'; break;
            case '\n': *o++ = 'n'; break;
            case '\r': *o++ = 'r'; break;
            case '\t': *o++ = 't'; break;
            default:
                memcpy(o, "u00", 3);
                o[3] = hex[c >> 4];
                o[4] = hex[c & 15];
                o += 5;
            }
        }
        run = ++i;
    }
    memcpy(o, s + run, n - run);
    o += n - run;
    *o++ = '"';
    j->out.len += (size_t)(o - start);
}

static void member(cw_json *j, const char *key) {
    if (j->members++) put(j, ",", 1);
    put_string(j, key);
    put(j, ":", 1);
}

void cw_json_str(cw_json *j, const char *key, const char *value) {
    member(j, key);
    put_string(j, value);
}

void cw_json_int(cw_json *j, const char *key, int64_t value) {
    char buf[21];
    char *p = cw_u64_digits(value < 0 ? 0 - (uint64_t)value : (uint64_t)value, buf + 1);
    if (value < 0) *--p = '-';
    member(j, key);
    put(j, p, (size_t)(buf + sizeof(buf) - p));
}

void cw_json_bool(cw_json *j, const char *key, int value) {
    member(j, key);
    put(j, value ? "true" : "false", value ? 4 : 5);
}

void cw_json_real(cw_json *j, const char *key, double value) {
    if (!isfinite(value)) return;
    char buf[40];
    int n = snprintf(buf, sizeof(buf) - 3, "%.10g", value);
    if (n < 0 || (size_t)n >= sizeof(buf) - 3) return;
    /* as jansson: a dot or an exponent must show it is a real */
    if (!strchr(buf, '.') && !strchr(buf, 'e')) {
        memcpy(buf + n, ".0", 3);
        n += 2;
    }
    /* and the exponent without '+' or leading zeros: 1e+20 -> 1e20 */
    char *e = strchr(buf, 'e');
    if (e) {
        char *start = e + 1, *end = e + 2;
        if (*start == '-') start++;
        while (*end == '0') end++;
        if (end != start) {
            memmove(start, end, (size_t)(buf + n - end) + 1);
            n -= (int)(end - start);
        }
    }
    member(j, key);
    put(j, buf, (size_t)n);
}

const char *cw_json_finish(cw_json *j, size_t *len) {
    put(j, "}", 1);
    if (j->out.oom || !j->out.buf) return NULL;
    j->out.buf[j->out.len] = '\0';
    if (len) *len = j->out.len;
    return j->out.buf;
}
