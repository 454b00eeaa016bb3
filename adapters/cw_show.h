/* cw_show: prints what the daemon keeps in Redis for people: its health
 * hash (`casewatch status`) and one indicator hash with Chinese labels
 * (`casewatch ind`). */
#ifndef CW_SHOW_H
#define CW_SHOW_H

#include <stdio.h>

#include <hiredis.h>

#include "../daemon/cw_config.h"

/* Prints the health of the configured instance. Returns 0 when the
 * heartbeat is fresh (under 5 s old), 1 when it is stale or missing,
 * -1 with a message on a Redis failure. */
int cw_show_status(redisContext *rc, const cw_config *cfg, FILE *out, char *err, size_t errlen);

/* Prints the indicator hash of scope ("unit:410923", "dept:410923:第一检察部",
 * names as typed: they are escaped here as the daemon does) and period
 * ("2020-Q3", "2020-07", "2020", "rolling-30d"); with period NULL, lists
 * the periods held for the scope. Returns 0, 1 when there is no such
 * hash, -1 with a message on a Redis failure or a malformed scope. */
int cw_show_ind(redisContext *rc, const cw_config *cfg, const char *scope, const char *period, FILE *out, char *err,
                size_t errlen);

#endif
