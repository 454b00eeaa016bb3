/* cw_daemon: the daemon's life cycle on a caller-owned libuv loop:
 * connections, the data path, signals, and an orderly shutdown that closes
 * every handle. */
#ifndef CW_DAEMON_H
#define CW_DAEMON_H

#include <stddef.h>

#include "cw_config.h"

/* Builds a fresh configuration from the same sources as the first (the
 * file and -o overrides), for SIGHUP; NULL with a message when the new
 * one is bad. */
typedef cw_config *(*cw_config_reload_fn)(void *data, char *err, size_t errlen);

/* Runs until SIGTERM or SIGINT. cfg must outlive the call; reload may be
 * NULL (SIGHUP then only logs). Returns the process exit code. */
int cw_daemon_run(const cw_config *cfg, cw_config_reload_fn reload, void *reload_data);

#endif
