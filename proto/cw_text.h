/* cw_text: byte-level text checks shared by every module that lets a
 * string from the outside world reach a log line, a JSON document or a
 * Redis key. */
#ifndef CW_TEXT_H
#define CW_TEXT_H

#include <stddef.h>
#include <stdint.h>

/* Returns 1 when buf[0..len) is well-formed UTF-8 (no overlongs, no
 * surrogates, nothing above U+10FFFF), else 0. Runs of ASCII are checked
 * eight bytes at a time. */
int cw_utf8_valid(const char *buf, size_t len);
/* The same check for text that must also hold no NUL byte (U+0000 is
 * well-formed UTF-8 but cuts a C string short), in one pass: returns
 * CW_UTF8_OK, CW_UTF8_NUL (well-formed, but holds a NUL) or CW_UTF8_BAD
 * (not well-formed, wherever a NUL may be). */
enum { CW_UTF8_OK = 0, CW_UTF8_NUL = 1, CW_UTF8_BAD = 2 };
int cw_utf8_check(const char *buf, size_t len);
/* The length (1-4) of the well-formed UTF-8 character at buf[0..len), or
 * 0 when there is none there. Inline for the loops that check every
 * byte of every event and alert: ASCII and most of CJK (a 3-byte form
 * that can be neither overlong nor a surrogate) are decided here, the
 * rest by the full check. */
size_t cw__utf8_char(const char *buf, size_t len);
static inline size_t cw_utf8_char(const char *buf, size_t len) {
    const unsigned char *s = (const unsigned char *)buf;
    if (len && s[0] < 0x80) return 1;
    if (len > 2 && s[0] >= 0xE1 && s[0] <= 0xEC && (s[1] & 0xC0) == 0x80 && (s[2] & 0xC0) == 0x80) return 3;
    return cw__utf8_char(buf, len);
}

/* snprintf into a caller's error buffer; returns -1, so that a failing
 * function can `return cw_errf(err, errlen, ...)`. */
int cw_errf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Percent-escapes one name for use inside a Redis key or channel:
 * ':', '%', whitespace and control bytes become %XX; every other byte
 * (UTF-8 included) is kept. Writes at most outlen-1 bytes plus a NUL.
 * Returns the escaped length, or -1 when outlen is too small (out is then
 * left NUL-terminated but truncated). A name can therefore never forge a
 * ':'-separated key segment. */
int cw_key_escape(const char *name, size_t len, char *out, size_t outlen);
/* The reverse, for showing a name to people: %XX back to its byte (a
 * %00 stays as it is). Writes at most outlen-1 bytes plus a NUL. */
void cw_key_unescape(const char *key, char *out, size_t outlen);

/* The decimal digits of v, written at the end of buf (no NUL): returns
 * where they begin; they end at buf + 20. For hot paths that would
 * otherwise call snprintf per number. */
char *cw_u64_digits(uint64_t v, char buf[20]);

/* Copies src (len bytes) into dst of size dstlen as a NUL-terminated C
 * string. Returns 0, or -1 if it does not fit. */
int cw_strlcpy_n(char *dst, size_t dstlen, const char *src, size_t len);

#endif
