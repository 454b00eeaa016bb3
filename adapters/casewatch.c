/* casewatch: the command-line edge of casewatch. Feeds upstream exports
 * into the event stream and reads what the daemon publishes. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../daemon/cw_config.h"
#include "../daemon/cw_log.h"
#include "../daemon/cw_period.h"
#include "cw_feed.h"
#include "cw_redis_sync.h"

#define DEFAULT_CONFIG "/etc/casewatch/casewatch.conf"

static void usage(FILE *out) {
    fprintf(out,
            "usage: casewatch [-c FILE] [-o section.key=value ...] COMMAND [ARGS]\n"
            "\n"
            "Commands:\n"
            "  feed [--format auto|json|csv|msgpack] [--dry-run] [FILE]\n"
            "        validate upstream records (JSON lines, CSV with a header row, or\n"
            "        msgpack) from FILE or stdin and append the good ones to the event\n"
            "        stream; bad records are reported with their line and reason.\n"
            "        Exit status: 0 all added, 1 some records were bad, 2 failure.\n"
            "\n"
            "Options:\n"
            "  -c, --config FILE   configuration (default " DEFAULT_CONFIG " if present)\n"
            "  -o section.key=value\n"
            "                      override one configuration value (repeatable)\n"
            "  -h, --help          this text\n"
            "  -V, --version       print the version\n");
}

static int cmd_feed(cw_config *cfg, int argc, char **argv) {
    static const struct option lo[] = {{"format", required_argument, NULL, 'f'},
                                       {"dry-run", no_argument, NULL, 'n'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
    cw_feed_format fmt = CW_FEED_AUTO;
    int dry = 0, o;
    optind = 1;
    while ((o = getopt_long(argc, argv, "f:nh", lo, NULL)) != -1) {
        switch (o) {
        case 'f':
            if (cw_feed_format_parse(optarg, &fmt) < 0) {
                fprintf(stderr, "casewatch feed: --format must be auto, json, csv or msgpack, not '%s'\n", optarg);
                return 2;
            }
            break;
        case 'n': dry = 1; break;
        case 'h': usage(stdout); return 0;
        default: return 2;
        }
    }
    FILE *in = stdin;
    const char *name = "stdin";
    if (optind < argc) {
        name = argv[optind];
        in = fopen(name, "rb");
        if (!in) {
            perror(name);
            return 2;
        }
    }
    char err[512];
    redisContext *rc = NULL;
    if (!dry && !(rc = cw_redis_sync_connect(cfg, err, sizeof(err)))) {
        fprintf(stderr, "casewatch feed: %s\n", err);
        if (in != stdin) fclose(in);
        return 2;
    }
    cw_feed *f = cw_feed_new(rc, cfg->stream_key, cfg->stream_batch);
    if (!f) {
        fprintf(stderr, "casewatch feed: out of memory\n");
        redisFree(rc);
        return 2;
    }
    cw_feed_set_progress(f, isatty(2));
    double t0 = cw_mono_s();
    int r = cw_feed_run(f, in, fmt, err, sizeof(err));
    double secs = cw_mono_s() - t0;
    const cw_feed_stats *st = cw_feed_get_stats(f);
    if (r < 0) fprintf(stderr, "casewatch feed: %s\n", err);
    fprintf(stderr, "casewatch feed: %s: %llu records, %llu %s %s, %llu bad, %.2f s\n", name,
            (unsigned long long)st->records, (unsigned long long)st->added, dry ? "valid" : "added to",
            dry ? "" : cfg->stream_key, (unsigned long long)st->bad, secs);
    int code = r < 0 ? 2 : st->bad ? 1 : 0;
    cw_feed_free(f);
    redisFree(rc);
    if (in != stdin) fclose(in);
    return code;
}

static const struct {
    const char *name;
    int (*run)(cw_config *, int, char **);
} commands[] = {
    {"feed", cmd_feed},
};

int main(int argc, char **argv) {
    static const struct option lo[] = {{"config", required_argument, NULL, 'c'},
                                       {"help", no_argument, NULL, 'h'},
                                       {"version", no_argument, NULL, 'V'},
                                       {NULL, 0, NULL, 0}};
    cw_log_init("casewatch");
    cw_config *cfg = cw_config_new();
    if (!cfg) return 2;
    const char *path = NULL;
    char **overrides = calloc((size_t)argc, sizeof(char *));
    int noverrides = 0, o;
    while ((o = getopt_long(argc, argv, "+c:o:hV", lo, NULL)) != -1) {
        switch (o) {
        case 'c': path = optarg; break;
        case 'o': overrides[noverrides++] = optarg; break;
        case 'h': usage(stdout); return 0;
        case 'V': printf("casewatch %s\n", CW_VERSION); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return 2;
    }
    char err[512];
    if (!path && access(DEFAULT_CONFIG, R_OK) == 0) path = DEFAULT_CONFIG;
    int bad = path && cw_config_load(cfg, path, err, sizeof(err)) < 0;
    for (int i = 0; !bad && i < noverrides; i++) bad = cw_config_override(cfg, overrides[i], err, sizeof(err)) < 0;
    if (!bad) bad = cw_config_finish(cfg, err, sizeof(err)) < 0;
    free(overrides);
    if (bad) {
        fprintf(stderr, "casewatch: %s\n", err);
        cw_config_free(cfg);
        return 2;
    }
    const char *cmd = argv[optind];
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strcmp(cmd, commands[i].name) == 0) {
            int rc = commands[i].run(cfg, argc - optind, argv + optind);
            cw_config_free(cfg);
            return rc;
        }
    }
    fprintf(stderr, "casewatch: unknown command '%s' (see casewatch --help)\n", cmd);
    cw_config_free(cfg);
    return 2;
}
