/* cw_json: writes flat JSON objects (string, integer and real members)
 * into a reusable buffer, for the alert JSON of PROTOCOL.md §3, which the
 * daemon writes a few hundred thousand times a second in a replay.
 *
 * The output is byte for byte what jansson's json_dumps gives with
 * JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10) (a unit
 * test holds it to that), without building a tree of objects first.
 * Strings are escaped as jansson does (", \, control characters; UTF-8
 * kept); invalid UTF-8 is written as U+FFFD rather than dropped. Reading
 * JSON is jansson's job. */
#ifndef CW_JSON_H
#define CW_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "cw_buf.h"

/* Embedded in its owner (init/destroy, like msgpack_sbuffer). */
typedef struct cw_json {
    cw_buf out; /* out.oom: a write could not grow it; cw_json_finish says so */
    int members;
} cw_json;

void cw_json_init(cw_json *j);
void cw_json_destroy(cw_json *j);

/* Starts a new object, forgetting the last one (the buffer is kept). */
void cw_json_begin(cw_json *j);

/* Members, in the order written. Keys are written as given (escaped). */
void cw_json_str(cw_json *j, const char *key, const char *value);
void cw_json_int(cw_json *j, const char *key, int64_t value);
void cw_json_bool(cw_json *j, const char *key, int value);
/* Reals as jansson writes them ("%.10g", with ".0" when that looks like
 * an integer); NaN and infinities are left out, as jansson leaves them. */
void cw_json_real(cw_json *j, const char *key, double value);

/* Closes the object. Returns the NUL-terminated text (valid until the
 * next begin or destroy) and its length, or NULL when out of memory. */
const char *cw_json_finish(cw_json *j, size_t *len);

#endif
