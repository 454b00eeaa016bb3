#include "cw_health.h"

const char *const cw_health_names[CW_HEALTH_NFIELDS] = {
    [CW_HEALTH_STATE] = "state",
    [CW_HEALTH_PID] = "pid",
    [CW_HEALTH_HOST] = "host",
    [CW_HEALTH_STARTED_AT] = "started_at",
    [CW_HEALTH_HEARTBEAT_AT] = "heartbeat_at",
    [CW_HEALTH_STOPPED_AT] = "stopped_at",
    [CW_HEALTH_LAST_ID] = "last_id",
    [CW_HEALTH_LAG] = "lag",
    [CW_HEALTH_EVENTS] = "events",
    [CW_HEALTH_DUPLICATES] = "duplicates",
    [CW_HEALTH_DEAD_LETTERED] = "dead_lettered",
    [CW_HEALTH_OPEN_CASES] = "open_cases",
    [CW_HEALTH_ALERTS_FIRING] = "alerts_firing",
    [CW_HEALTH_RSS_BYTES] = "rss_bytes",
    [CW_HEALTH_ENTRIES_READ] = "entries_read",
    [CW_HEALTH_VERSION] = "version",
    [CW_HEALTH_PROGRESS] = "progress",
    [CW_HEALTH_MAX_STALL_MS] = "max_stall_ms",
    [CW_HEALTH_STALL_RECENT_MS] = "stall_recent_ms",
    [CW_HEALTH_CALENDAR_THROUGH] = "calendar_through",
};
