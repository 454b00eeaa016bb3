/* cw_health: the fields of the daemon's health hash
 * (<health_prefix>:<instance>, PROTOCOL.md §5), named once for the daemon
 * that writes them and `casewatch status` that reads them. */
#ifndef CW_HEALTH_H
#define CW_HEALTH_H

typedef enum cw_health_field {
    CW_HEALTH_STATE,         /* "running", "stopped" (a clean stop) */
    CW_HEALTH_PID,           /* of the daemon writing */
    CW_HEALTH_HOST,
    CW_HEALTH_STARTED_AT,    /* ms */
    CW_HEALTH_HEARTBEAT_AT,  /* ms, every second while running */
    CW_HEALTH_STOPPED_AT,    /* ms, written by a clean stop; 0 while running */
    CW_HEALTH_LAST_ID,       /* the last stream entry applied */
    CW_HEALTH_LAG,           /* entries behind the stream's tip */
    CW_HEALTH_EVENTS,
    CW_HEALTH_DUPLICATES,
    CW_HEALTH_DEAD_LETTERED,
    CW_HEALTH_OPEN_CASES,
    CW_HEALTH_ALERTS_FIRING,
    CW_HEALTH_RSS_BYTES,
    CW_HEALTH_ENTRIES_READ,
    CW_HEALTH_VERSION,
    CW_HEALTH_PROGRESS,      /* catching up: rate, lag, ETA; "following" once caught up */
    CW_HEALTH_MAX_STALL_MS,  /* the longest the event loop was held */
    CW_HEALTH_STALL_RECENT_MS, /* the same over the last one to two minutes */
    CW_HEALTH_CALENDAR_THROUGH, /* the last year the holiday calendar covers (0: none, weekends only) */
    CW_HEALTH_WRITES_REFUSED_SINCE, /* ms since Redis refuses writes (OOM, READONLY, ...); 0 while they land */
    CW_HEALTH_READING_PAUSED, /* 1 while reading waits for the writer (queues at their bound), else 0 */
    CW_HEALTH_NFIELDS
} cw_health_field;

/* The field names, by cw_health_field. */
extern const char *const cw_health_names[CW_HEALTH_NFIELDS];

#endif
