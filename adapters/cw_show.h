/* cw_show: prints what the daemon keeps in Redis for people: its health
 * hash (`casewatch status`) and one indicator hash with Chinese labels
 * (`casewatch ind`). */
#ifndef CW_SHOW_H
#define CW_SHOW_H

#include <stdio.h>

#include <hiredis.h>

#include "../daemon/cw_config.h"

/* Prints the health of the configured instance, as text or (json) one
 * JSON object: the health hash's fields, numbers as numbers, plus `state`
 * (running, stopped, stale, missing) and `heartbeat_age_ms`. Returns 0
 * when running (heartbeat under 5 s old), 3 when the daemon stopped
 * cleanly (the hash says state = stopped), 1 when the heartbeat is stale
 * or there is no hash, -1 with a message on a Redis failure. */
int cw_show_status(redisContext *rc, const cw_config *cfg, int json, FILE *out, char *err, size_t errlen);

/* Prints the indicator hash of scope ("unit:410923", "unit:南乐",
 * "dept:410923:第一检察部": a unit by its code or [units] name, names as
 * typed: they are escaped here as the daemon does) and period ("2020-Q3",
 * "2020-07", "2020", "rolling-30d"); with period NULL, lists the periods
 * held for the scope. json: one JSON object. Returns 0; 1 with a message
 * saying what is missing when there is no such hash (or no period); 2
 * with a message when the scope or period is malformed; -1 with a message
 * on a Redis failure. */
int cw_show_ind(redisContext *rc, const cw_config *cfg, const char *scope, const char *period, int json, FILE *out,
                char *err, size_t errlen);

#endif
