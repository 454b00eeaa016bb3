/* cw_report: the 通报 of INDICATORS.md §6 (`casewatch report`), read from
 * the indicator hashes the daemon writes (PROTOCOL.md §4) and the firing
 * set (§3a): for a period and a scope, every indicator's ranking of the
 * 院, the 部门 and the 检察官 with the region's value (横比), the previous
 * period and the same period a year before (纵比), the cards in force,
 * the deadline counters and the trend of the last 8 quarters. One
 * self-contained HTML page (prints on A4), CSV (UTF-8 with a BOM) or
 * Markdown. The daemon is not involved: only Redis is read. */
#ifndef CW_REPORT_H
#define CW_REPORT_H

#include <stddef.h>

#include <hiredis.h>

#include "../daemon/cw_config.h"

typedef enum cw_report_format { CW_REPORT_HTML, CW_REPORT_CSV, CW_REPORT_MD } cw_report_format;

/* "html", "csv", "md" (or "markdown"); returns 0, or -1 for anything else. */
int cw_report_format_parse(const char *s, cw_report_format *out);

/* Checks a period ("2020-07", "2020-Q3", "2020") and a scope ("unit:410923",
 * "region:4109", "region:41", "nation"; NULL: the one province holding
 * data, found later) before anything is read. Returns 0, or -1 with a
 * message saying what is accepted. */
int cw_report_check_args(const char *period, const char *scope, char *err, size_t errlen);

/* Reads what the report needs over rc and writes it to `path` (NULL or
 * "-": stdout). The report is made in memory first, so a failed read
 * leaves no file behind. Returns 0; 1 with a message in err for what the
 * user can fix (a malformed period or scope, no hashes for them, a file
 * that cannot be written); -1 with a message on a Redis failure. rc stays
 * the caller's. */
int cw_report_write(redisContext *rc, const cw_config *cfg, const char *period, const char *scope,
                    cw_report_format fmt, const char *path, char *err, size_t errlen);

/* `casewatch report PERIOD [--scope S] [--format F] [-o FILE]`, argv[0]
 * being "report": parses the options, connects as [redis] says, writes.
 * Returns the exit status: 0, 1 for bad input or no data (a message on
 * stderr), 2 for a Redis failure. */
int cw_report_cmd(cw_config *cfg, int argc, char **argv);

#endif
