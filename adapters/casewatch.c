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
#include "cw_alerts.h"
#include "cw_feed.h"
#include "cw_gen.h"
#include "cw_show.h"
#include "cw_tail.h"
#include "cw_redis_sync.h"

#define DEFAULT_CONFIG "/etc/casewatch/casewatch.conf"

static void usage(FILE *out) {
    fprintf(out,
            "usage: casewatch [-c FILE] [-o section.key=value ...] COMMAND [ARGS]\n"
            "\n"
            "Commands:\n"
            "  feed [--format auto|json|csv|msgpack] [--dry-run] [--raw] [FILE]\n"
            "        validate upstream records (JSON lines, CSV with a header row, or\n"
            "        msgpack) from FILE or stdin and append the good ones to the event\n"
            "        stream; bad records are reported with their line and reason.\n"
            "        --raw appends every record unchecked (to test dead letters).\n"
            "        Exit status: 0 all added, 1 some records were bad, 2 failure.\n"
            "  gen [--seed N] [--cases N] [--lines N] [--units A,B,..] [--start YYYY-MM-DD]\n"
            "      [--days N] [--dup-rate F] [--late-rate F] [--bad-rate F] [--overdue-rate F]\n"
            "        write realistic case lifecycles as JSON lines to stdout, in time\n"
            "        order but for the duplicates, late and bad lines asked for;\n"
            "        pipe into 'casewatch feed' (or 'feed --raw' to keep bad lines).\n"
            "  status\n"
            "        the daemon's health: heartbeat, lag, events, dead letters, open cases.\n"
            "        Exit status: 0 running, 1 heartbeat stale or missing, 2 failure.\n"
            "  ind SCOPE [PERIOD]\n"
            "        one indicator hash with Chinese labels (案件比 as 1:x), e.g.\n"
            "        'ind unit:410923 2020-Q3', 'ind dept:410923:第一检察部 2020-07',\n"
            "        'ind region:41 rolling-30d'; without PERIOD, the periods held.\n"
            "  tail [--from ID] [--last N] [--unit CODE] [--json] [--no-follow] [--count N]\n"
            "       [--color auto|always|never]\n"
            "        follow the alert log: the last N alerts (10), or those after ID\n"
            "        ('0' for all), then new ones as they come; one line per alert,\n"
            "        coloured by level, or the JSON with --json. --unit keeps the\n"
            "        alerts of one 院 (or a region code prefix).\n"
            "  alerts [--unit CODE|NAME] [--rule R] [--level L] [--acked|--unacked] [--json]\n"
            "        what is firing now, grouped by 院 and rule, most severe and oldest\n"
            "        first, with how long each has been open and who acknowledged it;\n"
            "        --json prints one alert a line (with \"ack\" when acknowledged).\n"
            "  ack ID --by NAME [--note TEXT]\n"
            "        take a firing alert in hand: recorded, logged and published as\n"
            "        acknowledged until it resolves. Exit status 1 when ID is not firing.\n"
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
                                       {"raw", no_argument, NULL, 'r'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
    cw_feed_format fmt = CW_FEED_AUTO;
    int dry = 0, raw = 0, o;
    optind = 1;
    while ((o = getopt_long(argc, argv, "f:nrh", lo, NULL)) != -1) {
        switch (o) {
        case 'f':
            if (cw_feed_format_parse(optarg, &fmt) < 0) {
                fprintf(stderr, "casewatch feed: --format must be auto, json, csv or msgpack, not '%s'\n", optarg);
                return 2;
            }
            break;
        case 'n': dry = 1; break;
        case 'r': raw = 1; break;
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
    cw_feed_set_raw(f, raw);
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

/* Reads a number option within bounds; prints what was wrong. */
static int num_opt(const char *cmd, const char *name, const char *s, double lo, double hi, double *out) {
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "casewatch %s: --%s must be a number from %g to %g, not '%s'\n", cmd, name, lo, hi, s);
        return -1;
    }
    *out = v;
    return 0;
}

static int cmd_gen(cw_config *cfg, int argc, char **argv) {
    (void)cfg;
    static const struct option lo[] = {{"seed", required_argument, NULL, 's'},
                                       {"cases", required_argument, NULL, 'n'},
                                       {"lines", required_argument, NULL, 'l'},
                                       {"units", required_argument, NULL, 'u'},
                                       {"start", required_argument, NULL, 'S'},
                                       {"days", required_argument, NULL, 'd'},
                                       {"dup-rate", required_argument, NULL, 'D'},
                                       {"late-rate", required_argument, NULL, 'L'},
                                       {"bad-rate", required_argument, NULL, 'B'},
                                       {"overdue-rate", required_argument, NULL, 'O'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
    cw_gen_opts go;
    cw_gen_defaults(&go);
    const char *units[64];
    char *unit_list = NULL;
    double v;
    int o, y, m, dd;
    optind = 1;
    while ((o = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        int bad = 0;
        switch (o) {
        case 's': bad = num_opt("gen", "seed", optarg, 0, 1e15, &v); go.seed = (uint64_t)v; break;
        case 'n': bad = num_opt("gen", "cases", optarg, 1, 1e9, &v); go.cases = (uint64_t)v; break;
        case 'l': bad = num_opt("gen", "lines", optarg, 1, 1e10, &v); go.max_lines = (uint64_t)v; break;
        case 'd': bad = num_opt("gen", "days", optarg, 1, 36500, &v); go.days = (int)v; break;
        case 'D': bad = num_opt("gen", "dup-rate", optarg, 0, 1, &go.dup_rate); break;
        case 'L': bad = num_opt("gen", "late-rate", optarg, 0, 1, &go.late_rate); break;
        case 'B': bad = num_opt("gen", "bad-rate", optarg, 0, 1, &go.bad_rate); break;
        case 'O': bad = num_opt("gen", "overdue-rate", optarg, 0, 1, &go.overdue_rate); break;
        case 'S':
            if (sscanf(optarg, "%d-%d-%d", &y, &m, &dd) != 3 || y < 2000 || m < 1 || m > 12 || dd < 1 || dd > 31) {
                fprintf(stderr, "casewatch gen: --start must be a date YYYY-MM-DD from 2000 on, not '%s'\n", optarg);
                bad = 1;
            } else {
                go.start_ms = cw_period_local_midnight(y, m, dd, 480);
            }
            break;
        case 'u': {
            free(unit_list);
            unit_list = strdup(optarg);
            go.nunits = 0;
            for (char *save = NULL, *t = strtok_r(unit_list, ",", &save); t && go.nunits < 64;
                 t = strtok_r(NULL, ",", &save)) {
                if (strlen(t) != 6 || strspn(t, "0123456789") != 6) {
                    fprintf(stderr, "casewatch gen: --units takes 6-digit unit codes, not '%s'\n", t);
                    bad = 1;
                }
                units[go.nunits++] = t;
            }
            go.units = units;
            break;
        }
        case 'h': usage(stdout); free(unit_list); return 0;
        default: bad = 1;
        }
        if (bad) {
            free(unit_list);
            return 2;
        }
    }
    char err[256];
    cw_gen_stats st;
    int r = cw_gen_run(&go, stdout, &st, err, sizeof(err));
    free(unit_list);
    if (r < 0) {
        fprintf(stderr, "casewatch gen: %s\n", err);
        return 2;
    }
    fprintf(stderr, "casewatch gen: %llu lines (%llu duplicates, %llu late, %llu bad)\n", (unsigned long long)st.lines,
            (unsigned long long)st.duplicates, (unsigned long long)st.late, (unsigned long long)st.bad);
    return 0;
}

/* A connection for command `cmd`, or NULL after saying why. */
static redisContext *connect_for(const cw_config *cfg, const char *cmd) {
    char err[512];
    redisContext *rc = cw_redis_sync_connect(cfg, err, sizeof(err));
    if (!rc) fprintf(stderr, "casewatch %s: %s\n", cmd, err);
    return rc;
}

static int cmd_status(cw_config *cfg, int argc, char **argv) {
    if (argc > 1 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
        usage(stdout);
        return 0;
    }
    char err[512];
    redisContext *rc = connect_for(cfg, "status");
    if (!rc) return 2;
    int r = cw_show_status(rc, cfg, stdout, err, sizeof(err));
    if (r < 0) fprintf(stderr, "casewatch status: %s\n", err);
    redisFree(rc);
    return r < 0 ? 2 : r;
}

static int cmd_ind(cw_config *cfg, int argc, char **argv) {
    if (argc < 2 || argc > 3 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 || argc > 3 ? 2 : 0;
    }
    char err[512];
    redisContext *rc = connect_for(cfg, "ind");
    if (!rc) return 2;
    int r = cw_show_ind(rc, cfg, argv[1], argc == 3 ? argv[2] : NULL, stdout, err, sizeof(err));
    if (r < 0) fprintf(stderr, "casewatch ind: %s\n", err);
    redisFree(rc);
    return r < 0 ? 2 : r;
}

static int cmd_tail(cw_config *cfg, int argc, char **argv) {
    static const struct option lo[] = {{"from", required_argument, NULL, 'f'},
                                       {"last", required_argument, NULL, 'l'},
                                       {"unit", required_argument, NULL, 'u'},
                                       {"json", no_argument, NULL, 'j'},
                                       {"no-follow", no_argument, NULL, 'n'},
                                       {"count", required_argument, NULL, 'k'},
                                       {"color", required_argument, NULL, 'C'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
    cw_tail_opts to = {.last = 10, .follow = 1, .color = isatty(1), .utc_offset_min = cfg->utc_offset_min};
    double v;
    int o;
    optind = 1;
    while ((o = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (o) {
        case 'f': to.from = optarg; break;
        case 'l':
            if (num_opt("tail", "last", optarg, 0, 100000, &v) < 0) return 2;
            to.last = (int)v;
            break;
        case 'u': to.unit = optarg; break;
        case 'j': to.json = 1; break;
        case 'n': to.follow = 0; break;
        case 'k':
            if (num_opt("tail", "count", optarg, 1, 1e12, &v) < 0) return 2;
            to.count = (uint64_t)v;
            break;
        case 'C':
            if (strcmp(optarg, "always") == 0) to.color = 1;
            else if (strcmp(optarg, "never") == 0) to.color = 0;
            else if (strcmp(optarg, "auto") != 0) {
                fprintf(stderr, "casewatch tail: --color must be auto, always or never, not '%s'\n", optarg);
                return 2;
            }
            break;
        case 'h': usage(stdout); return 0;
        default: return 2;
        }
    }
    char err[512];
    redisContext *rc = connect_for(cfg, "tail");
    if (!rc) return 2;
    struct timeval tv = {(cfg->redis_timeout_ms + 2000) / 1000, (cfg->redis_timeout_ms + 2000) % 1000 * 1000};
    redisSetTimeout(rc, tv);
    int r = cw_tail_run(rc, cfg->alerts_log_key, &to, stdout, err, sizeof(err));
    if (r < 0) fprintf(stderr, "casewatch tail: %s\n", err);
    redisFree(rc);
    return r < 0 ? 2 : 0;
}

static int cmd_alerts(cw_config *cfg, int argc, char **argv) {
    static const struct option lo[] = {{"unit", required_argument, NULL, 'u'},  {"rule", required_argument, NULL, 'r'},
                                       {"level", required_argument, NULL, 'l'}, {"acked", no_argument, NULL, 'a'},
                                       {"unacked", no_argument, NULL, 'A'},     {"json", no_argument, NULL, 'j'},
                                       {"help", no_argument, NULL, 'h'},        {NULL, 0, NULL, 0}};
    cw_alerts_opts ao = {.acked = -1, .now_ms = cw_wall_ms()};
    int o;
    optind = 0; /* 0: glibc starts afresh, permuting (ID may come before the options) */
    while ((o = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (o) {
        case 'u': ao.unit = optarg; break;
        case 'r': ao.rule = optarg; break;
        case 'l': ao.level = optarg; break;
        case 'a': ao.acked = 1; break;
        case 'A': ao.acked = 0; break;
        case 'j': ao.json = 1; break;
        case 'h': usage(stdout); return 0;
        default: return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "casewatch alerts: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    char err[512];
    redisContext *rc = connect_for(cfg, "alerts");
    if (!rc) return 2;
    int r = cw_alerts_list(rc, cfg, &ao, stdout, err, sizeof(err));
    if (r < 0) fprintf(stderr, "casewatch alerts: %s\n", err);
    redisFree(rc);
    return r < 0 ? 2 : 0;
}

static int cmd_ack(cw_config *cfg, int argc, char **argv) {
    static const struct option lo[] = {{"by", required_argument, NULL, 'b'},
                                       {"note", required_argument, NULL, 'n'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
    const char *by = NULL, *note = NULL;
    int o;
    optind = 0; /* 0: glibc starts afresh, permuting (ID may come before the options) */
    while ((o = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (o) {
        case 'b': by = optarg; break;
        case 'n': note = optarg; break;
        case 'h': usage(stdout); return 0;
        default: return 2;
        }
    }
    if (optind != argc - 1 || !by) {
        fprintf(stderr, "casewatch ack: usage: casewatch ack ID --by NAME [--note TEXT]\n");
        return 2;
    }
    const char *id = argv[optind];
    char err[512];
    redisContext *rc = connect_for(cfg, "ack");
    if (!rc) return 2;
    int r = cw_alerts_ack(rc, cfg, id, by, note, cw_wall_ms(), err, sizeof(err));
    if (r) fprintf(stderr, "casewatch ack: %s\n", err);
    else printf("acknowledged %s (by %s)\n", id, by);
    redisFree(rc);
    return r == 0 ? 0 : r == 1 ? 1 : 2;
}

static const struct {
    const char *name;
    int (*run)(cw_config *, int, char **);
} commands[] = {
    {"feed", cmd_feed},
    {"gen", cmd_gen},
    {"status", cmd_status},
    {"ind", cmd_ind},
    {"tail", cmd_tail},
    {"alerts", cmd_alerts},
    {"ack", cmd_ack},
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
