#include "cw_text.h"

#include <stdarg.h>
#include <stdio.h>

#include <string.h>

size_t cw__utf8_char(const char *buf, size_t len) {
    const unsigned char *s = (const unsigned char *)buf;
    if (!len) return 0;
    unsigned c = s[0];
    if (c < 0x80) return 1;
    size_t need;
    unsigned min, cp;
    if (c >= 0xC2 && c <= 0xDF) { need = 1; min = 0x80; cp = c & 0x1F; }
    else if (c >= 0xE0 && c <= 0xEF) { need = 2; min = 0x800; cp = c & 0x0F; }
    else if (c >= 0xF0 && c <= 0xF4) { need = 3; min = 0x10000; cp = c & 0x07; }
    else return 0;
    if (len <= need) return 0;
    for (size_t k = 1; k <= need; k++) {
        unsigned cc = s[k];
        if ((cc & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (cc & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return need + 1;
}

int cw_utf8_valid(const char *buf, size_t len) {
    size_t i = 0;
    while (i < len) {
        size_t n = cw_utf8_char(buf + i, len - i);
        if (!n) return 0;
        i += n;
    }
    return 1;
}

static int needs_escape(unsigned char c) {
    return c == ':' || c == '%' || c <= 0x20 || c == 0x7F;
}

int cw_key_escape(const char *name, size_t len, char *out, size_t outlen) {
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    if (outlen == 0) return -1;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        size_t w = needs_escape(c) ? 3 : 1;
        if (o + w >= outlen) { out[o] = '\0'; return -1; }
        if (w == 3) {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        } else {
            out[o++] = (char)c;
        }
    }
    out[o] = '\0';
    return (int)o;
}

int cw_strlcpy_n(char *dst, size_t dstlen, const char *src, size_t len) {
    if (len >= dstlen) return -1;
    memcpy(dst, src, len);
    dst[len] = '\0';
    return 0;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

void cw_key_unescape(const char *key, char *out, size_t outlen) {
    size_t n = 0;
    for (const char *p = key; *p && n + 1 < outlen; p++) {
        int hi, lo;
        if (p[0] == '%' && (hi = hexval(p[1])) >= 0 && (lo = hexval(p[2])) >= 0 && (hi || lo)) {
            out[n++] = (char)(hi * 16 + lo);
            p += 2;
        } else {
            out[n++] = *p;
        }
    }
    if (outlen) out[n] = '\0';
}

int cw_errf(char *err, size_t errlen, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

char *cw_u64_digits(uint64_t v, char buf[20]) {
    char *p = buf + 20;
    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return p;
}
