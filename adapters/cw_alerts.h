/* cw_alerts: what is firing now and who took it in hand (PROTOCOL.md §3a),
 * for people: `casewatch alerts` reads the firing hash and the acks hash
 * the daemon keeps; `casewatch ack` acknowledges one firing alert. */
#ifndef CW_ALERTS_H
#define CW_ALERTS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <hiredis.h>

#include "../daemon/cw_config.h"

typedef struct cw_alerts_opts {
    const char *unit;  /* a 6-digit code, a shorter region code (prefix), or a name from [units]; NULL: all */
    const char *rule;  /* a rule's name, or the start of names up to a '.' ("deadline"); NULL: all */
    const char *level; /* "yellow", "orange" or "red"; NULL: all */
    int acked;         /* -1 all, 0 not acknowledged only, 1 acknowledged only */
    int json;          /* one JSON object a line (the alert, with "ack" when acknowledged) */
    int64_t now_ms;    /* what ages are counted to */
} cw_alerts_opts;

/* Prints the alerts firing now that pass o's filters, grouped by 院 and
 * rule, most severe and oldest first, with how long each has been open
 * (since its event_ts, else its emitted_at) and who acknowledged it.
 * Returns 0, -1 with a message on a Redis failure, -2 with a message when
 * an option is wrong (an unknown unit name or level). */
int cw_alerts_list(redisContext *rc, const cw_config *cfg, const cw_alerts_opts *o, FILE *out, char *err,
                   size_t errlen);

/* Acknowledges the firing alert `id`: {"by", "at", "note"} into the acks
 * hash, and the alert's JSON with "state": "acknowledged" (and by, at,
 * note) logged and published on both channels, in one script that first
 * checks the alert is firing, so that an ack racing the resolution never
 * leaves an entry behind. note may be NULL. Returns 0; 1 with a message
 * when the id is not firing (unknown, or resolved); -1 with a message on
 * a failure or bad input. */
int cw_alerts_ack(redisContext *rc, const cw_config *cfg, const char *id, const char *by, const char *note,
                  int64_t at_ms, char *err, size_t errlen);

#endif
