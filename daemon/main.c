/* casewatchd: command line, configuration, and the daemon's life cycle. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cw_config.h"
#include "cw_daemon.h"
#include "cw_rules.h"
#include "cw_log.h"

#define DEFAULT_CONFIG "/etc/casewatch/casewatch.conf"

static void usage(FILE *out) {
    fprintf(out,
            "usage: casewatchd [-c FILE] [-o section.key=value ...] [--check-config]\n"
            "\n"
            "Watches the casewatch event stream in Redis, keeps case-quality\n"
            "indicators and deadline clocks, and publishes alerts.\n"
            "\n"
            "  -c, --config FILE   configuration file (default " DEFAULT_CONFIG ")\n"
            "  -o section.key=value\n"
            "                      override one configuration value (repeatable)\n"
            "      --check-config  validate the configuration, print it, and exit\n"
            "  -h, --help          this text\n"
            "  -V, --version       print the version\n");
}

int main(int argc, char **argv) {
    enum { OPT_CHECK = 1000 };
    static const struct option lo[] = {{"config", required_argument, NULL, 'c'},
                                       {"check-config", no_argument, NULL, OPT_CHECK},
                                       {"help", no_argument, NULL, 'h'},
                                       {"version", no_argument, NULL, 'V'},
                                       {NULL, 0, NULL, 0}};
    cw_log_init("casewatchd");
    const char *path = DEFAULT_CONFIG;
    int check = 0, o;
    char **overrides = calloc((size_t)argc + 1, sizeof(char *));
    int noverrides = 0;
    if (!overrides) return 1;
    while ((o = getopt_long(argc, argv, "c:o:hV", lo, NULL)) != -1) {
        switch (o) {
        case 'c': path = optarg; break;
        case 'o': overrides[noverrides++] = optarg; break;
        case OPT_CHECK: check = 1; break;
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
    cw_config *cfg = cw_config_new();
    char err[512];
    int bad = !cfg;
    if (cfg && cw_config_load(cfg, path, err, sizeof(err)) < 0) bad = 1;
    for (int i = 0; !bad && i < noverrides; i++) bad = cw_config_override(cfg, overrides[i], err, sizeof(err)) < 0;
    if (!bad) bad = cw_config_finish(cfg, err, sizeof(err)) < 0;
    free(overrides);
    if (bad) {
        fprintf(stderr, "casewatchd: %s\n", cfg ? err : "out of memory");
        cw_config_free(cfg);
        return 2;
    }
    cw_rules *rules = cw_rules_new(cfg, err, sizeof(err));
    if (!rules) {
        fprintf(stderr, "casewatchd: %s\n", err);
        cw_config_free(cfg);
        return 2;
    }
    size_t nrules = cw_rules_count(rules);
    cw_rules_free(rules);
    if (check) {
        cw_config_print(cfg, stdout);
        fprintf(stderr, "casewatchd: %s: configuration is valid (%zu rules)\n", path, nrules);
        cw_config_free(cfg);
        return 0;
    }
    int rc = cw_daemon_run(cfg);
    cw_config_free(cfg);
    return rc;
}
