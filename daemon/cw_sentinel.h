/* cw_sentinel: asks Redis Sentinel for the current primary of
 * [redis] master_name, trying each of [redis] sentinels in turn. Used when
 * a connection is (re)made, by the daemon and the CLI alike. */
#ifndef CW_SENTINEL_H
#define CW_SENTINEL_H

#include <stddef.h>

#include "cw_config.h"

/* Synchronous, each sentinel given at most min(timeout_ms, 500) ms: it
 * runs only while (re)connecting. Returns 0 with host/port of the primary,
 * or -1 with why. */
int cw_sentinel_primary(const cw_config *cfg, char *host, size_t hostlen, int *port, char *why, size_t wl);

#endif
