/* cw_sink: where alerts go (PROTOCOL.md §3). Each alert state change
 * becomes one JSON object (written by cw_json, byte for byte what jansson
 * would write), appended to the durable
 * alert log stream (XADD <log_key> MAXLEN ~ N * a <json>) and published on
 * <channel> and <channel>:<unit>. An alert stays queued until Redis has
 * acknowledged its XADD; after a reconnect, what was not acknowledged is
 * sent again (same id and state: at least once, never lost while the
 * daemon runs). */
#ifndef CW_SINK_H
#define CW_SINK_H

#include <stddef.h>
#include <stdint.h>

#include "cw_config.h"
#include "cw_conn.h"
#include "cw_rules.h"

typedef struct cw_sink cw_sink;

/* cfg must outlive the sink and have been through cw_config_finish (which
 * names the firing and acks hashes). */
cw_sink *cw_sink_new(const cw_config *cfg);
void cw_sink_free(cw_sink *s);

/* Queues one alert (copied, as JSON). Returns 0 or -1 (memory). May be
 * called from any callback. */
int cw_sink_put(cw_sink *s, const cw_alert *a, int64_t emitted_at);

/* Sends what is queued and not in flight over w (when READY), until w
 * holds max_unsent bytes not yet taken by the socket (0: no limit).
 * Returns 1 when alerts are left to send (call again once w has drained). */
int cw_sink_send(cw_sink *s, cw_conn *w, size_t max_unsent);

/* The firing set (PROTOCOL.md §3a). Every alert's log entry and the change
 * it makes to the hash <firing_key> (HSET when firing; HDEL from it and
 * from <acks_key> when resolved) are written by one MULTI/EXEC per batch
 * of alerts, so the log and the hash never disagree; the batch is
 * published once EXEC's reply says it landed. The sink keeps the JSON of
 * every alert Redis acknowledged as firing, and rewrites the hash whole
 * from it (in parts, swapped in atomically; removing acknowledgements of
 * ids no longer firing)
 * before sending anything else after cw_sink_resync, after cw_sink_load,
 * and on the first send of a new sink.
 *
 * To be called whenever the writer connection becomes READY again (a
 * reconnect, perhaps to a restarted Redis that lost its data) and after
 * anything that changed the firing set without logging it. */
void cw_sink_resync(cw_sink *s);
/* Alerts firing as Redis acknowledged them. */
size_t cw_sink_firing(const cw_sink *s);

/* A --replay (PROTOCOL.md §3b). From cw_sink_replay_begin on, cw_sink_put
 * holds each alert's last word instead of queueing it: nothing is logged
 * or published one by one. cw_sink_replay_end (given the wall clock)
 * compares each id's state at the end with its state before the replay
 * and queues one message per id that differs ("replay": true), then has
 * the firing hash rewritten whole.
 *
 * The state before: without rebuild, the sink's firing set as the replay
 * starts (from the snapshot, with the queue's effect); the engine starts
 * from the same snapshot, so an id the replay never raised keeps it.
 * With rebuild (the engine starts empty): what the firing hash holds,
 * read (HGETALL) on the writer before anything rewrites it, so that a
 * rebuild against a running deployment announces only what changed; an
 * id firing there that the replay never raised is resolved.
 *
 * begin returns 0 or -1 (memory: alerts then go one by one, as live);
 * end returns 1 when the net change waits for the firing hash to be read
 * (it is queued by a later cw_sink_send), else 0. */
int cw_sink_replay_begin(cw_sink *s, int rebuild);
/* A deadline light's change during a replay, offered before it is worded
 * (a cw_light_hold_fn, cw_engine_hold_lights): held raw, its facts copied
 * under a key of what makes its id, and worded by `rules` (which must
 * live until the replay ends, or until a call with l NULL) only if the
 * replay ends with it as a net change; the net change is what it would
 * be had every light been worded and put (its order included). Returns 1
 * when held, 0 when the caller is to word it and cw_sink_put it (no
 * replay, a reload worded the lights held so far, or memory). With l NULL
 * (a reload is about to free `rules`): the lights held are worded now. */
int cw_sink_hold_light(cw_sink *s, const cw_light *l, const cw_rules *rules, int64_t emitted_at);
int cw_sink_replay_end(cw_sink *s, int64_t now);
/* 0 none, 1 running, 2 ended, the net change not yet queued. */
int cw_sink_replaying(const cw_sink *s);

/* Alerts queued (in flight included; the net change of a replay not yet
 * queued counts as one). */
size_t cw_sink_pending(const cw_sink *s);

/* The id of the last alert log entry Redis acknowledged ("" before any):
 * saved with snapshots, so that a restart can read back what a crashed
 * process published after its last snapshot. */
const char *cw_sink_log_position(const cw_sink *s);

/* After a crash: an alert log entry found written (its JSON exactly) is
 * taken off the queue (it was delivered before the crash). Returns 1 when
 * one was. Either way its state (firing or resolved; others, such as
 * "acknowledged", are ignored) becomes the sink's idea of the firing set,
 * as it is the hash's: call it for every entry read back, in log order. */
int cw_sink_delivered(cw_sink *s, const char *json, size_t len);
/* Calls fn with the JSON of every queued alert, oldest first. */
void cw_sink_each(const cw_sink *s, void (*fn)(const char *json, void *data), void *data);

/* Snapshot: the alerts not yet acknowledged and the firing set; after a
 * load the former are sent again (at least once), after a rewrite of the
 * firing hash. Returns 0 or -1. */
struct cw_snap_writer;
struct cw_snap_reader;
void cw_sink_save(const cw_sink *s, struct cw_snap_writer *w);
int cw_sink_load(cw_sink *s, struct cw_snap_reader *r);

#endif
