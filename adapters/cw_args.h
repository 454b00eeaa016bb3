/* cw_args: what people type on the command line and in exports, read the
 * way they mean it: a 院 by its configured name or its code, a stream id,
 * a time with or without its zone. Every reader returns 0, or -1 with a
 * message naming what was typed and what was expected. */
#ifndef CW_ARGS_H
#define CW_ARGS_H

#include <stddef.h>
#include <stdint.h>

#include "../daemon/cw_config.h"

/* A 院 as typed: a 6-digit code, a code prefix of 1-5 digits when
 * `prefix_ok` (a region), or a [units] name, whole or a part of one
 * name only ("南乐" for 南乐县人民检察院). Writes the code (NUL-terminated)
 * into code[7]. */
int cw_args_unit(const cw_config *cfg, const char *text, int prefix_ok, char code[7], char *err, size_t errlen);

/* 1 when s is a stream entry id as XREAD takes it ("0", "1596211200000",
 * "1596211200000-3"), else 0. */
int cw_args_stream_id(const char *s);

/* A time as exports and people write it, into ms since the epoch:
 * ISO 8601 with a zone ("2026-11-27T09:00:00+08:00", "...Z", "...+0800"),
 * or a local date and time read at offset_min minutes from UTC:
 * "2026-11-27", "2026-11-27 09:00", "2026-11-27 09:00:00(.123)",
 * "2026/11/27 9:00", "2026年11月27日 09:00". Whole integers are not
 * times here (the caller decides what a number means). */
int cw_args_time(const char *s, size_t len, int offset_min, int64_t *ms, char *err, size_t errlen);

/* Escapes the glob characters * ? [ ] \ of s for a SCAN MATCH pattern
 * into out (at most outlen-1 bytes). Returns 0, or -1 when it does not fit. */
int cw_args_glob_escape(const char *s, char *out, size_t outlen);

/* For people, in the configured local time: "2026-11-22 09:30:00"
 * (seconds 1) or "2026-11-22 09:30" (0). */
void cw_args_show_time(int64_t ms, int offset_min, int seconds, char *buf, size_t len);
/* How long, for people: "3 d 4 h", "2 h 5 min", "5 min" (and "12 s",
 * "5 min 3 s" under an hour when seconds is 1). */
void cw_args_show_duration(int64_t ms, int seconds, char *buf, size_t len);

#endif
