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

typedef struct cw_daemon_opts {
    cw_config_reload_fn reload; /* NULL: SIGHUP only logs */
    void *reload_data;
    int rebuild; /* ignore the snapshot: start empty, replay the stream from its start */
    int replay;  /* read up to the stream's tip as it is at start, write everything, exit */
} cw_daemon_opts;

/* Runs until SIGTERM or SIGINT (with opts->replay: until the stream's tip
 * as it was at start is applied and written). cfg must outlive the call.
 * Returns the process exit code: 0 after an orderly stop, 1 on a fatal
 * error (or a handle left open on the loop), 2 when the snapshot is
 * refused (corrupt or incompatible: see --rebuild). */
int cw_daemon_run(const cw_config *cfg, const cw_daemon_opts *opts);

/* The stream check sent with every read (a Lua script, EVAL'd with the
 * stream key): what the stream is right before it. Exported for
 * tests/bench/readpath, which reads as a replay does. */
extern const char cw_daemon_stream_check[];

#endif
