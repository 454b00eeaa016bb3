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

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define CW__LITTLE_ENDIAN 1
#else
#define CW__LITTLE_ENDIAN 0
#endif

#define HIGH8 0x8080808080808080ULL
#define ONES8 0x0101010101010101ULL
/* Non-zero when one of the bytes of w is 0 (exact for the lowest such
 * byte; bytes above a zero one may be flagged too). */
#define ZERO_BYTE8(w) (((w) - ONES8) & ~(w) & HIGH8)
#define ZERO_BYTE4(w) (((w) - 0x01010101u) & ~(w) & 0x80808080u)

/* How many bytes at p[0..len) are ASCII before the first that is not
 * (len when all are); *zero becomes non-zero when one of them is 0.
 * Eight at a time: the words at p, p + 8, ..., then the word that ends
 * the text shifted down to the bytes not yet seen; a word with a high
 * byte is ASCII up to its lowest one. Texts under eight bytes: two words
 * of four (overlapping) when all is ASCII, else byte by byte. Where the
 * machine is not little-endian, a word with a high byte (and the last
 * bytes) go byte by byte. Reads nothing outside p[0..len). */
static inline __attribute__((always_inline)) size_t ascii_prefix(const unsigned char *p, size_t len,
                                                                 uint64_t *zero) {
    size_t i = 0;
    uint64_t w;
    if (len >= 8) {
        for (;;) {
            memcpy(&w, p + i, 8);
            if (w & HIGH8) break;
            *zero |= ZERO_BYTE8(w);
            i += 8;
            if (len - i >= 8) continue;
            if (i == len) return len;
            if (!CW__LITTLE_ENDIAN) break;
            size_t left = len - i;
            memcpy(&w, p + len - 8, 8);
            w >>= 8 * (8 - left);
            w |= ~0ULL << (8 * left) & ONES8; /* past the text: 0x01, neither high nor zero */
            if (!(w & HIGH8)) {
                *zero |= ZERO_BYTE8(w);
                return len;
            }
            break;
        }
        if (CW__LITTLE_ENDIAN) { /* w is the word at i, with a high byte */
            /* a zero byte flagged here is one of the text's (the padding
             * of a last word is flagged only above a real zero), so the
             * bytes past the ASCII ones need no mask */
            *zero |= ZERO_BYTE8(w);
            return i + (size_t)__builtin_ctzll(w & HIGH8) / 8;
        }
    } else if (len >= 4) {
        uint32_t a, b;
        memcpy(&a, p, 4);
        memcpy(&b, p + len - 4, 4);
        if (!((a | b) & 0x80808080u)) {
            *zero |= ZERO_BYTE4(a) | ZERO_BYTE4(b);
            return len;
        }
    }
    for (; i < len && p[i] < 0x80; i++) *zero |= p[i] == 0;
    return i;
}

/* The scan behind cw_utf8_valid and cw_utf8_check, in one pass over
 * buf[0..len) from `from` on (the bytes before it were ASCII, and *zero
 * says whether one was 0), reading nothing outside buf[0..len): ASCII by
 * ascii_prefix; a run of three-byte characters whose lead is E1-EC (most
 * CJK: they can be neither overlong nor surrogates) two at a time where
 * eight bytes are left (little-endian), then one at a time; every other
 * character by cw__utf8_char. Kept out of line, so that the callers'
 * all-ASCII case stays a few instructions. */
static __attribute__((noinline)) int utf8_scan(const char *buf, size_t len, size_t from, uint64_t zero) {
    const unsigned char *p = (const unsigned char *)buf + from, *end = (const unsigned char *)buf + len;
    while (p < end) {
        if (*p < 0x80) {
            p += ascii_prefix(p, (size_t)(end - p), &zero);
            if (p == end) break;
        }
        while (CW__LITTLE_ENDIAN && end - p >= 8) {
            uint64_t w;
            memcpy(&w, p, 8);
            /* two leads 1110xxxx, each followed by two 10xxxxxx */
            if ((w & 0xC0C0F0C0C0F0ULL) != 0x8080E08080E0ULL) break;
            if ((unsigned)((w & 0xFF) - 0xE1) > 0xEC - 0xE1) break;
            if ((unsigned)(((w >> 24) & 0xFF) - 0xE1) > 0xEC - 0xE1) break;
            p += 6;
        }
        while (end - p >= 3) {
            uint16_t cont;
            memcpy(&cont, p + 1, 2);
            if ((unsigned)(p[0] - 0xE1) > 0xEC - 0xE1 || (cont & 0xC0C0) != 0x8080) break;
            p += 3;
        }
        if (p < end && *p >= 0x80) {
            size_t n = cw__utf8_char((const char *)p, (size_t)(end - p));
            if (!n) return CW_UTF8_BAD;
            p += n;
        }
    }
    return zero ? CW_UTF8_NUL : CW_UTF8_OK;
}

int cw_utf8_valid(const char *buf, size_t len) {
    return cw_utf8_check(buf, len) != CW_UTF8_BAD;
}

int cw_utf8_check(const char *buf, size_t len) {
    if (len && (unsigned char)buf[0] >= 0x80) return utf8_scan(buf, len, 0, 0);
    uint64_t zero = 0;
    size_t ascii = ascii_prefix((const unsigned char *)buf, len, &zero);
    if (ascii == len) return zero ? CW_UTF8_NUL : CW_UTF8_OK;
    return utf8_scan(buf, len, ascii, zero);
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
