/* cw_tail: follows the durable alert log (casewatch tail): catches up from
 * a position, then blocks for new alerts, printing one line per alert,
 * coloured by level, or the JSON as it is. */
#ifndef CW_TAIL_H
#define CW_TAIL_H

#include <stdint.h>
#include <stdio.h>

#include <hiredis.h>

typedef struct cw_tail_opts {
    const char *from; /* stream id to start after; NULL: the last `last` alerts */
    int last;
    const char *unit; /* only alerts whose unit starts with this; NULL: all */
    int json;         /* print the JSON lines */
    int color;        /* ANSI colours by level */
    int follow;       /* 0: stop once caught up */
    uint64_t count;   /* stop after this many alerts; 0: never */
    int utc_offset_min;
} cw_tail_opts;

/* Runs until caught up (follow 0), count alerts were printed, or Redis
 * fails. Returns 0, or -1 with a message. */
int cw_tail_run(redisContext *rc, const char *log_key, const cw_tail_opts *o, FILE *out, char *err, size_t errlen);

#endif
