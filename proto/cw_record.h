/* cw_record: turns one row of an upstream export (a JSON object, or CSV
 * cells under a header row) into the MessagePack value of a stream entry.
 * The result is then checked with cw_event_decode like any other entry, so
 * the feed and the daemon accept exactly the same events. */
#ifndef CW_RECORD_H
#define CW_RECORD_H

#include <stddef.h>

#include <jansson.h>
#include <msgpack.h>

/* Packs a JSON value as MessagePack. Unknown keys may hold nested values;
 * they are carried along (the protocol ignores them) up to the depth the
 * decoder accepts: deeper (depth > CW_EVENT_MAX_DEPTH) returns -1. */
int cw_record_pack_json(msgpack_packer *pk, json_t *v, int depth);

/* Packs the JSON object in text[0..len) into out (which is not cleared).
 * JSON null values are left out, as an empty CSV cell is. Returns 0, or -1
 * with a reason in err when the text is not a JSON object. */
int cw_record_from_json(const char *text, size_t len, msgpack_sbuffer *out, char *err, size_t errlen);

/* Packs n cells named by the header into out. A cell is typed by what the
 * protocol expects for its key (integers, booleans such as true/false/1/0,
 * strings); a cell that does not read as its type is packed as a string
 * so that validation names the key. Empty cells are left out. Returns 0
 * or -1 with a reason. */
int cw_record_from_cells(const char *const *names, const size_t *name_lens, const char *const *cells,
                         const size_t *cell_lens, size_t n, msgpack_sbuffer *out, char *err, size_t errlen);

/* A cell read as what the protocol expects: a whole number (0, or -1 when
 * it is not one), a boolean (true/false, 1/0, yes/no in any case). */
int cw_record_cell_int(const char *s, size_t n, long long *out);
int cw_record_cell_bool(const char *s, size_t n, int *out);

#endif
