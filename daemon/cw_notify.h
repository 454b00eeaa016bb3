/* cw_notify: the systemd service manager protocol (sd_notify): READY=1,
 * STATUS=..., WATCHDOG=1, RELOADING=1, STOPPING=1. Every call is a no-op
 * when the daemon was not started by systemd (no NOTIFY_SOCKET). */
#ifndef CW_NOTIFY_H
#define CW_NOTIFY_H

#include <stdint.h>

void cw_notify_ready(void);
void cw_notify_reloading(void);
void cw_notify_stopping(void);
void cw_notify_watchdog(void);
void cw_notify_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The watchdog interval systemd asked for (WatchdogSec=), in ms; 0 when
 * none. Pet it at half that. */
uint64_t cw_notify_watchdog_ms(void);

#endif
