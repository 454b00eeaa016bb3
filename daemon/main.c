/* casewatchd: command line, configuration, and the daemon's life cycle. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include "cw_calendar.h"
#include "cw_config.h"
#include "cw_daemon.h"
#include "cw_rules.h"
#include "cw_log.h"

#define DEFAULT_CONFIG "/etc/casewatch/casewatch.conf"

static void usage(FILE *out) {
    fprintf(out,
            "usage: casewatchd [-c FILE] [-o section.key=value ...] [--check-config] [--rebuild] [--replay]\n"
            "\n"
            "Watches the casewatch event stream in Redis, keeps case-quality\n"
            "indicators and deadline clocks, and publishes alerts.\n"
            "\n"
            "  -c, --config FILE   configuration file (default " DEFAULT_CONFIG ")\n"
            "  -o section.key=value\n"
            "                      override one configuration value (repeatable)\n"
            "      --check-config  validate the configuration, print it, and exit\n"
            "      --rebuild       ignore the snapshot: start from an empty state and replay\n"
            "                      the stream from its start (after changing rules, or when\n"
            "                      the snapshot is refused)\n"
            "      --replay        backfill: read from the snapshot's position (or the\n"
            "                      start, with --rebuild) to the stream's tip as it is now,\n"
            "                      write hashes, alerts and the snapshot, print one line\n"
            "                      (events, seconds, events/s) and exit 0\n"
            "  -h, --help          this text\n"
            "  -V, --version       print the version\n");
}

/* Where the configuration comes from: the file, then -o overrides. */
typedef struct config_sources {
    const char *path;
    char **overrides;
    int noverrides;
} config_sources;

static cw_config *load_config(const config_sources *src, char *err, size_t errlen) {
    cw_config *cfg = cw_config_new();
    if (!cfg) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    int bad = cw_config_load(cfg, src->path, err, errlen) < 0;
    for (int i = 0; !bad && i < src->noverrides; i++) bad = cw_config_override(cfg, src->overrides[i], err, errlen) < 0;
    if (!bad) bad = cw_config_finish(cfg, err, errlen) < 0;
    if (bad) {
        cw_config_free(cfg);
        return NULL;
    }
    return cfg;
}

/* SIGHUP: the same sources again; the log level changes only if the new
 * configuration is taken. */
static cw_config *reload_config(void *data, char *err, size_t errlen) {
    int level = cw_log_level;
    cw_config *cfg = load_config(data, err, errlen);
    cw_log_level = level;
    return cfg;
}

int main(int argc, char **argv) {
    enum { OPT_CHECK = 1000, OPT_REBUILD, OPT_REPLAY };
    static const struct option lo[] = {{"config", required_argument, NULL, 'c'},
                                       {"check-config", no_argument, NULL, OPT_CHECK},
                                       {"rebuild", no_argument, NULL, OPT_REBUILD},
                                       {"replay", no_argument, NULL, OPT_REPLAY},
                                       {"help", no_argument, NULL, 'h'},
                                       {"version", no_argument, NULL, 'V'},
                                       {NULL, 0, NULL, 0}};
    cw_log_init("casewatchd");
    const char *path = DEFAULT_CONFIG;
    int check = 0, rebuild = 0, replay = 0, o;
    char **overrides = calloc((size_t)argc + 1, sizeof(char *));
    int noverrides = 0;
    if (!overrides) return 1;
    while ((o = getopt_long(argc, argv, "c:o:hV", lo, NULL)) != -1) {
        switch (o) {
        case 'c': path = optarg; break;
        case 'o': overrides[noverrides++] = optarg; break;
        case OPT_CHECK: check = 1; break;
        case OPT_REBUILD: rebuild = 1; break;
        case OPT_REPLAY: replay = 1; break;
        case 'h': usage(stdout); free(overrides); return 0;
        case 'V': printf("casewatchd %s\n", CW_VERSION); free(overrides); return 0;
        default: usage(stderr); free(overrides); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "casewatchd: unexpected argument '%s'\n", argv[optind]);
        free(overrides);
        return 2;
    }
    config_sources src = {path, overrides, noverrides};
    char err[1536];
    cw_config *cfg = load_config(&src, err, sizeof(err));
    if (!cfg) {
        fprintf(stderr, "casewatchd: %s\n", err);
        free(overrides);
        return 2;
    }
    cw_rules *rules = cw_rules_new(cfg, err, sizeof(err));
    if (!rules) {
        fprintf(stderr, "casewatchd: %s\n", err);
        cw_config_free(cfg);
        free(overrides);
        return 2;
    }
    size_t nrules = cw_rules_count(rules);
    cw_rules_free(rules);
    if (check && cfg->calendar_file[0] && access(cfg->calendar_file, F_OK) == 0) {
        cw_calendar *cal = cw_calendar_load(cfg->calendar_file, err, sizeof(err));
        if (!cal) {
            fprintf(stderr, "casewatchd: [calendar] file: %s\n", err);
            cw_config_free(cfg);
            free(overrides);
            return 2;
        }
        fprintf(stderr, "casewatchd: %s: holiday calendar %d to %d\n", cfg->calendar_file, cw_calendar_from(cal),
                cw_calendar_through(cal));
        cw_calendar_free(cal);
    } else if (check && cfg->calendar_file[0]) {
        fprintf(stderr, "casewatchd: no holiday calendar at %s ([calendar] file): periods would count weekends only\n",
                cfg->calendar_file);
    }
    if (check) {
        cw_config_print(cfg, stdout);
        fprintf(stderr, "casewatchd: %s: configuration is valid (%zu rules)\n", path, nrules);
        cw_config_free(cfg);
        free(overrides);
        return 0;
    }
    cw_daemon_opts dopts = {reload_config, &src, rebuild, replay};
    int rc = cw_daemon_run(cfg, &dopts);
    cw_config_free(cfg);
    free(overrides);
    return rc;
}
