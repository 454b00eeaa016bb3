/* libFuzzer target: the holiday file parser (cw_calendar). Whatever the
 * bytes, parsing must not crash, leak or invoke UB; a refusal says why,
 * and a calendar that loads answers consistently: the first working day
 * on or after a day is a working day, and counting working days moves
 * forward onto working days. */
#include <stdint.h>
#include <stdlib.h>

#include "../../daemon/cw_calendar.h"
#include "../../daemon/cw_period.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[512];
    err[0] = '\0';
    cw_calendar *cal = cw_calendar_parse((const char *)data, size, "fuzz", err, sizeof(err));
    if (!cal) {
        if (!err[0]) abort();
        return 0;
    }
    int from = cw_calendar_from(cal), through = cw_calendar_through(cal);
    if (from < 1971 || through < from) abort();
    int64_t first = cw_period_local_midnight(from, 1, 1, 0) / 86400000LL - 31;
    int64_t last = cw_period_local_midnight(through, 12, 31, 0) / 86400000LL + 7;
    for (int64_t d = first; d <= last && d < first + 4000; d++) {
        int64_t w = cw_calendar_next_working(cal, d);
        if (w < d || cw_calendar_is_rest(cal, w)) abort();
        int64_t a = cw_calendar_add_working(cal, d, 3);
        if (a <= d || cw_calendar_is_rest(cal, a)) abort();
        (void)cw_calendar_label(cal, d);
    }
    cw_calendar_free(cal);
    return 0;
}
