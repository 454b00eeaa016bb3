/* cw_feed: reads an upstream export (JSON lines, CSV with a header row, or
 * concatenated msgpack events), validates every record with proto exactly
 * as the daemon will, and XADDs the good ones to the event stream,
 * pipelined. Bad records are reported on stderr with their line number and
 * reason and counted; they never stop the feed. */
#ifndef CW_FEED_H
#define CW_FEED_H

#include <stdint.h>
#include <stdio.h>

#include <hiredis.h>

typedef enum cw_feed_format { CW_FEED_AUTO, CW_FEED_JSON, CW_FEED_CSV, CW_FEED_MSGPACK } cw_feed_format;

typedef struct cw_feed_stats {
    uint64_t records; /* lines (JSON), rows (CSV) or values (msgpack) read */
    uint64_t added;   /* acknowledged by XADD (or valid, in a dry run) */
    uint64_t bad;
} cw_feed_stats;

typedef struct cw_feed cw_feed;

/* rc NULL means a dry run: validate only. The feed does not own rc.
 * batch is the number of XADDs pipelined per round trip. */
cw_feed *cw_feed_new(redisContext *rc, const char *stream_key, int batch);
void cw_feed_free(cw_feed *f);

/* Reports progress on stderr about once a second while running. */
void cw_feed_set_progress(cw_feed *f, int on);

/* Raw mode appends every record as it is, bad ones too (after only
 * turning JSON or CSV into msgpack): for exercising the daemon's
 * dead-letter path in tests and demos. */
void cw_feed_set_raw(cw_feed *f, int on);

/* Rows (CSV, JSON lines) are read through x (cw_export: column names,
 * words, local times, derived ids); x is not owned and must outlive the
 * feed. NULL: the protocol's own keys only. */
struct cw_export;
void cw_feed_set_export(cw_feed *f, struct cw_export *x);

/* Parses a --format word. Returns 0 or -1. */
int cw_feed_format_parse(const char *s, cw_feed_format *out);

/* Feeds everything in `in`. Returns 0 when the input was read to its end
 * (bad records included), -1 with a message when Redis failed or the
 * input could not be read; what was acknowledged before stays counted. */
int cw_feed_run(cw_feed *f, FILE *in, cw_feed_format fmt, char *err, size_t errlen);

const cw_feed_stats *cw_feed_get_stats(const cw_feed *f);

#endif
