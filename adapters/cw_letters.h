/* cw_letters: the dead-letter stream for people (`casewatch dead`): each
 * unusable entry with its reason, the id it had in the event stream, and
 * its event as JSON where the bytes are MessagePack (hex where they are
 * not); and the way back (`--refeed`): a dead letter corrected with
 * key=value pairs is checked as the daemon will check it, appended to the
 * event stream, and marked in the hash <dead_key>:refed (dead letter id ->
 * new entry id), in one script so that it is re-fed once. */
#ifndef CW_LETTERS_H
#define CW_LETTERS_H

#include <stdio.h>

#include <hiredis.h>

#include "../daemon/cw_config.h"
#include "cw_export.h"

/* Prints the last `last` dead letters (oldest first) whose reason
 * contains `reason` (NULL: all), as text or one JSON object per line.
 * Returns 0, or -1 with a message on a Redis failure. */
int cw_letters_list(redisContext *rc, const cw_config *cfg, int last, const char *reason, int json, FILE *out, char *err,
                 size_t errlen);

/* Re-feeds dead letter `id` with the nsets "key=value" corrections of
 * `sets` (an empty value removes the key; values are read as `feed` reads
 * a JSON row, through x: local times, unit names, the map's words).
 * Refuses one already re-fed unless `force`. Prints the new entry id.
 * Returns 0; 1 with a message when the input is at fault (no such dead
 * letter, a bad --set, an event still bad, already re-fed); -1 with a
 * message on a Redis failure. */
int cw_letters_refeed(redisContext *rc, const cw_config *cfg, cw_export *x, const char *id, char *const *sets, int nsets,
                   int force, FILE *out, char *err, size_t errlen);

#endif
