#include "cw_notify.h"

#include <stdarg.h>
#include <stdio.h>

#include <systemd/sd-daemon.h>

void cw_notify_ready(void) {
    sd_notify(0, "READY=1");
}

void cw_notify_reloading(void) {
    sd_notify(0, "RELOADING=1");
}

void cw_notify_stopping(void) {
    sd_notify(0, "STOPPING=1");
}

void cw_notify_watchdog(void) {
    sd_notify(0, "WATCHDOG=1");
}

void cw_notify_status(const char *fmt, ...) {
    char buf[256] = "STATUS=";
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + 7, sizeof(buf) - 7, fmt, ap);
    va_end(ap);
    sd_notify(0, buf);
}

uint64_t cw_notify_watchdog_ms(void) {
    uint64_t usec = 0;
    return sd_watchdog_enabled(0, &usec) > 0 ? usec / 1000 : 0;
}
