/* cw_daemon: the daemon's life cycle on a caller-owned libuv loop:
 * connections, the data path, signals, and an orderly shutdown that closes
 * every handle. */
#ifndef CW_DAEMON_H
#define CW_DAEMON_H

#include "cw_config.h"

/* Runs until SIGTERM or SIGINT. Returns the process exit code. */
int cw_daemon_run(const cw_config *cfg);

#endif
