/* cw_export: reads rows of an export as people have them into the
 * MessagePack value of a stream entry. A column map (`feed --columns FILE`
 * or [feed] columns, INI) names the protocol key of each of the export's
 * own headers ([columns] 案件编号 = case) and the protocol value of each of
 * its words ([values type] 受理审查逮捕 = arrest.accepted; [values bool]
 * 是 = true). Whatever the map: `ts` may be ISO 8601 or a local
 * "YYYY-MM-DD[ HH:MM[:SS]]" (read in [indicators] utc_offset), `unit` may
 * be a [units] name, and `v` is 1 when absent. A CSV header with no `id`
 * column gets ids derived from unit, case, type and ts, so feeding the same
 * export twice adds nothing twice.
 *
 * The result still goes through cw_event_decode: this module only
 * translates, it does not judge events. */
#ifndef CW_EXPORT_H
#define CW_EXPORT_H

#include <stddef.h>
#include <stdio.h>

#include <msgpack.h>

#include "../daemon/cw_config.h"

typedef struct cw_export cw_export;

/* cfg gives [units] names and utc_offset; it is not owned and must
 * outlive the export. Returns NULL on out of memory. */
cw_export *cw_export_new(const cw_config *cfg);
void cw_export_free(cw_export *x);

/* Loads a column map over what is loaded. Returns 0, or -1 with a
 * message naming the file and line. */
int cw_export_load(cw_export *x, const char *path, char *err, size_t errlen);

/* Reads a CSV header row (n names; a UTF-8 BOM already removed) into the
 * plan for the rows under it. Notes for people (columns ignored, ids
 * derived) go to `notes`. Returns 0, or -1 with a message when a
 * required key has no column: every row would be refused. */
int cw_export_header(cw_export *x, const char *const *names, const size_t *lens, size_t n, FILE *notes, char *err,
                     size_t errlen);

/* Packs one CSV row of n cells (n at most the header's) into out (not
 * cleared). Returns 0, or -1 with "column C (HEADER): ..." in err when a
 * cell cannot be translated. `lenient` (feed --raw) packs such a cell as
 * it is instead. */
int cw_export_row(cw_export *x, const char *const *cells, const size_t *lens, size_t n, int lenient,
                  msgpack_sbuffer *out, char *err, size_t errlen);

/* The same for one JSON object of a JSON-lines export. */
int cw_export_json(cw_export *x, const char *text, size_t len, int lenient, msgpack_sbuffer *out, char *err,
                   size_t errlen);

/* " (column 7, 时间)" when the protocol key came from a CSV column whose
 * header is not the key itself, else "": for the decoder's messages,
 * which name keys. */
void cw_export_where(const cw_export *x, const char *key, size_t keylen, char *out, size_t outlen);

#endif
