/* casewatch: the command-line edge of casewatch. Feeds upstream exports
 * into the event stream and reads what the daemon publishes. */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../daemon/cw_config.h"
#include "../daemon/cw_log.h"
#include "../daemon/cw_period.h"
#include "cw_args.h"
#include "cw_letters.h"
#include "cw_export.h"
#include "cw_alerts.h"
#include "cw_feed.h"
#include "cw_gen.h"
#include "cw_report.h"
#include "cw_show.h"
#include "cw_tail.h"
#include "cw_redis_sync.h"

#define DEFAULT_CONFIG "/etc/casewatch/casewatch.conf"

/* Each command's own help: its synopsis line and what it does. */
static const struct {
    const char *name, *synopsis, *text;
} helps[] = {
    {"feed", "feed [--format auto|json|csv|msgpack] [--columns FILE] [--dry-run] [--raw] [FILE]",
     "        validate upstream records (JSON lines, CSV with a header row, or\n"
     "        msgpack) from FILE or stdin and append the good ones to the event\n"
     "        stream; bad records are reported with their line and reason.\n"
     "        Exports as people have them are read too: ts as ISO 8601 or a local\n"
     "        'YYYY-MM-DD[ HH:MM[:SS]]' ([indicators] utc_offset), v 1 when absent,\n"
     "        unit by its [units] name, and the export's own column names and words\n"
     "        through a column map (--columns FILE, default [feed] columns).\n"
     "        --raw appends every record unchecked (to test dead letters).\n"
     "        Exit status: 0 all added, 1 some records were bad (or bad options),\n"
     "        2 failure.\n"},
    {"gen", "gen [--seed N] [--cases N] [--lines N] [--units A,B,..] [--start YYYY-MM-DD]\n"
            "      [--days N] [--dup-rate F] [--late-rate F] [--bad-rate F] [--overdue-rate F]",
     "        write realistic case lifecycles as JSON lines to stdout, in time\n"
     "        order but for the duplicates, late and bad lines asked for;\n"
     "        pipe into 'casewatch feed' (or 'feed --raw' to keep bad lines).\n"
     "        --units takes codes or [units] names.\n"},
    {"status", "status [--json]",
     "        the daemon's health: heartbeat, lag, events, dead letters, open cases.\n"
     "        Exit status: 0 running, 1 heartbeat stale or no health hash, 2 failure,\n"
     "        3 stopped cleanly.\n"},
    {"ind", "ind [--json] SCOPE [PERIOD]",
     "        one indicator hash with Chinese labels (案件比 as 1:x), e.g.\n"
     "        'ind unit:410923 2020-Q3', 'ind unit:南乐 2020-Q3',\n"
     "        'ind dept:410923:第一检察部 2020-07', 'ind region:41 rolling-30d';\n"
     "        without PERIOD, the periods held. Exit status: 0, 1 nothing held\n"
     "        (the message says what is missing) or bad arguments, 2 failure.\n"},
    {"tail", "tail [--from ID|TIME] [--last N] [--unit CODE|NAME] [--json] [--no-follow]\n"
             "       [--count N] [--color auto|always|never]",
     "        follow the alert log: the last N alerts (10; 0: none), or those after\n"
     "        ID ('0' for all) or a local TIME ('2026-11-27 09:00'), then new ones\n"
     "        as they come; one line per alert, coloured by level, or the JSON\n"
     "        with --json. --unit keeps the alerts of one 院 (a code, a region\n"
     "        code prefix, or a [units] name).\n"},
    {"dead", "dead [--last N] [--reason TEXT] [--json]\n"
             "  dead --refeed ID [--set key=value ...] [--force]",
     "        the dead-letter stream ([stream] dead_key): the last N (10) unusable\n"
     "        entries, oldest first, with their reason, the id they had in the\n"
     "        event stream and the event (hex when it is not msgpack); --reason\n"
     "        keeps those whose reason contains TEXT. --refeed sends dead letter\n"
     "        ID back to the event stream with the corrections given by --set\n"
     "        (an empty value removes the key), once it decodes, and marks it in\n"
     "        the hash <dead_key>:refed (ID -> new entry id).\n"
     "        Exit status: 0, 1 bad input (still bad, no such ID, re-fed already),\n"
     "        2 failure.\n"},
};

#define NHELPS (sizeof(helps) / sizeof(helps[0]))

static void usage(FILE *out) {
    fprintf(out, "usage: casewatch [-c FILE] [-o section.key=value ...] COMMAND [ARGS]\n\nCommands:\n");
    for (size_t i = 0; i < NHELPS; i++) fprintf(out, "  %s\n%s", helps[i].synopsis, helps[i].text);
    fprintf(out, "\n"
                 "Every command takes --help. Exit status 1 means bad input, 2 a failure\n"
                 "(configuration, Redis).\n"
                 "\n"
                 "Options:\n"
                 "  -c, --config FILE   configuration (default " DEFAULT_CONFIG " if present)\n"
                 "  -o section.key=value\n"
                 "                      override one configuration value (repeatable)\n"
                 "  -h, --help          this text\n"
                 "  -V, --version       print the version\n");
}

/* `casewatch CMD --help`. */
static int command_help(const char *cmd) {
    for (size_t i = 0; i < NHELPS; i++)
        if (strcmp(helps[i].name, cmd) == 0) printf("usage: casewatch [-c FILE] [-o section.key=value ...] %s\n\n%s",
                                                    helps[i].synopsis, helps[i].text);
    return 0;
}

/* A bad option or argument: getopt has said which, or we say it here. */
static int bad_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int bad_usage(const char *cmd, const char *fmt, ...) {
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        fprintf(stderr, "casewatch %s: ", cmd);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
    }
    fprintf(stderr, "(see casewatch %s --help)\n", cmd);
    return 1;
}

/* Directory of the configuration file loaded, for paths relative to it. */
static char config_dir[4096] = "";

/* The column map of `feed` and `dead --refeed`: --columns, else [feed]
 * columns (relative to the configuration's directory). NULL after saying
 * why. */
static cw_export *load_export(const cw_config *cfg, const char *columns, const char *cmd) {
    cw_export *x = cw_export_new(cfg);
    if (!x) {
        fprintf(stderr, "casewatch %s: out of memory\n", cmd);
        return NULL;
    }
    char path[8192], err[1024];
    const char *file = columns;
    if (!file && cfg->feed_columns[0]) {
        file = cfg->feed_columns;
        if (file[0] != '/' && config_dir[0]) {
            snprintf(path, sizeof(path), "%s/%s", config_dir, file);
            if (access(path, R_OK) == 0) file = path;
        }
    }
    if (file && cw_export_load(x, file, err, sizeof(err)) < 0) {
        fprintf(stderr, "casewatch %s: %s\n", cmd, err);
        cw_export_free(x);
        return NULL;
    }
    return x;
}

static int cmd_feed(cw_config *cfg, int argc, char **argv) {
    static const struct option lo[] = {{"format", required_argument, NULL, 'f'},
                                       {"columns", required_argument, NULL, 'm'},
                                       {"dry-run", no_argument, NULL, 'n'},
                                       {"raw", no_argument, NULL, 'r'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
    cw_feed_format fmt = CW_FEED_AUTO;
    const char *columns = NULL;
    int dry = 0, raw = 0, o;
    optind = 1;
    while ((o = getopt_long(argc, argv, "f:nrh", lo, NULL)) != -1) {
        switch (o) {
        case 'f':
            if (cw_feed_format_parse(optarg, &fmt) < 0)
                return bad_usage("feed", "--format must be auto, json, csv or msgpack, not '%s'", optarg);
            break;
        case 'm': columns = optarg; break;
        case 'n': dry = 1; break;
        case 'r': raw = 1; break;
        case 'h': return command_help("feed");
        default: return bad_usage("feed", NULL);
        }
    }
    if (argc - optind > 1) return bad_usage("feed", "one FILE at most, got '%s' and '%s'", argv[optind], argv[optind + 1]);
    cw_export *x = load_export(cfg, columns, "feed");
    if (!x) return columns ? 1 : 2;
    FILE *in = stdin;
    const char *name = "stdin";
    if (optind < argc) {
        name = argv[optind];
        in = fopen(name, "rb");
        if (!in) {
            fprintf(stderr, "casewatch feed: %s: %s\n", name, strerror(errno));
            cw_export_free(x);
            return 1;
        }
    }
    char err[512];
    redisContext *rc = NULL;
    if (!dry && !(rc = cw_redis_sync_connect(cfg, err, sizeof(err)))) {
        fprintf(stderr, "casewatch feed: %s\n", err);
        if (in != stdin) fclose(in);
        cw_export_free(x);
        return 2;
    }
    cw_feed *f = cw_feed_new(rc, cfg->stream_key, cfg->stream_batch);
    if (!f) {
        fprintf(stderr, "casewatch feed: out of memory\n");
        redisFree(rc);
        cw_export_free(x);
        return 2;
    }
    cw_feed_set_progress(f, isatty(2));
    cw_feed_set_raw(f, raw);
    cw_feed_set_export(f, x);
    double t0 = cw_mono_s();
    int r = cw_feed_run(f, in, fmt, err, sizeof(err));
    double secs = cw_mono_s() - t0;
    const cw_feed_stats *st = cw_feed_get_stats(f);
    if (r < 0) fprintf(stderr, "casewatch feed: %s\n", err);
    if (dry)
        fprintf(stderr, "casewatch feed: %s: %llu records, %llu valid, %llu bad (dry run: nothing added), %.2f s\n",
                name, (unsigned long long)st->records, (unsigned long long)st->added, (unsigned long long)st->bad,
                secs);
    else
        fprintf(stderr, "casewatch feed: %s: %llu records, %llu added to %s, %llu bad, %.2f s\n", name,
                (unsigned long long)st->records, (unsigned long long)st->added, cfg->stream_key,
                (unsigned long long)st->bad, secs);
    int code = r < 0 ? 2 : st->bad ? 1 : 0;
    cw_feed_free(f);
    cw_export_free(x);
    redisFree(rc);
    if (in != stdin) fclose(in);
    return code;
}

/* Reads a number option within bounds; says what was wrong. */
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
    go.offset_min = cfg->utc_offset_min;
    go.start_ms = cw_period_local_midnight(2020, 1, 1, go.offset_min);
    const char *units[64];
    char codes[64][7];
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
                go.start_ms = cw_period_local_midnight(y, m, dd, go.offset_min);
            }
            break;
        case 'u': {
            char *list = strdup(optarg), *save = NULL;
            go.nunits = 0;
            for (char *t = strtok_r(list, ",", &save); t && !bad; t = strtok_r(NULL, ",", &save)) {
                char why[1024];
                if (go.nunits == 64) {
                    fprintf(stderr, "casewatch gen: --units takes 64 units at most\n");
                    bad = 1;
                } else if (cw_args_unit(cfg, t, 0, codes[go.nunits], why, sizeof(why)) < 0) {
                    fprintf(stderr, "casewatch gen: --units: %s\n", why);
                    bad = 1;
                } else {
                    units[go.nunits] = codes[go.nunits];
                    go.nunits++;
                }
            }
            free(list);
            go.units = units;
            break;
        }
        case 'h': return command_help("gen");
        default: bad = 1;
        }
        if (bad) return bad_usage("gen", NULL);
    }
    if (optind < argc) return bad_usage("gen", "unexpected argument '%s'", argv[optind]);
    char err[256];
    cw_gen_stats st;
    int r = cw_gen_run(&go, stdout, &st, err, sizeof(err));
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

/* Options of the commands that take only --json and --help; the
 * arguments left are at argv[optind..]. Returns -1 to go on, else the
 * exit status. */
static int json_opts(const char *cmd, int argc, char **argv, int *json) {
    static const struct option lo[] = {
        {"json", no_argument, NULL, 'j'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    int o;
    optind = 1;
    while ((o = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        if (o == 'j') *json = 1;
        else if (o == 'h') return command_help(cmd);
        else return bad_usage(cmd, NULL);
    }
    return -1;
}

static int cmd_status(cw_config *cfg, int argc, char **argv) {
    int json = 0, r = json_opts("status", argc, argv, &json);
    if (r >= 0) return r;
    if (optind < argc) return bad_usage("status", "unexpected argument '%s'", argv[optind]);
    char err[512];
    redisContext *rc = connect_for(cfg, "status");
    if (!rc) return 2;
    r = cw_show_status(rc, cfg, json, stdout, err, sizeof(err));
    if (r < 0) fprintf(stderr, "casewatch status: %s\n", err);
    redisFree(rc);
    return r < 0 ? 2 : r;
}

static int cmd_ind(cw_config *cfg, int argc, char **argv) {
    int json = 0, r = json_opts("ind", argc, argv, &json);
    if (r >= 0) return r;
    int n = argc - optind;
    if (n < 1) return bad_usage("ind", "a SCOPE is needed, e.g. unit:410923");
    if (n > 2) return bad_usage("ind", "SCOPE and PERIOD at most, got also '%s'", argv[optind + 2]);
    char err[2048];
    redisContext *rc = connect_for(cfg, "ind");
    if (!rc) return 2;
    r = cw_show_ind(rc, cfg, argv[optind], n == 2 ? argv[optind + 1] : NULL, json, stdout, err, sizeof(err));
    if (r != 0) fprintf(stderr, "casewatch ind: %s\n", err);
    redisFree(rc);
    if (r == 2) return bad_usage("ind", NULL);
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
    char unit[7], from[64], why[1024];
    double v;
    int64_t ms;
    int o;
    optind = 1;
    while ((o = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (o) {
        case 'f':
            if (cw_args_stream_id(optarg)) {
                to.from = optarg;
            } else if (cw_args_time(optarg, strlen(optarg), cfg->utc_offset_min, &ms, why, sizeof(why)) == 0) {
                /* alerts logged from that instant on */
                snprintf(from, sizeof(from), "%lld-0", (long long)(ms > 0 ? ms - 1 : 0));
                to.from = from;
            } else {
                return bad_usage("tail",
                                 "--from takes an alert log id (1596211200000-0, or 0 for all) or a local time "
                                 "(2026-11-27 09:00), not '%s'",
                                 optarg);
            }
            break;
        case 'l':
            if (num_opt("tail", "last", optarg, 0, 100000, &v) < 0) return bad_usage("tail", NULL);
            to.last = (int)v;
            break;
        case 'u':
            if (cw_args_unit(cfg, optarg, 1, unit, why, sizeof(why)) < 0) return bad_usage("tail", "--unit: %s", why);
            to.unit = unit;
            break;
        case 'j': to.json = 1; break;
        case 'n': to.follow = 0; break;
        case 'k':
            if (num_opt("tail", "count", optarg, 1, 1e12, &v) < 0) return bad_usage("tail", NULL);
            to.count = (uint64_t)v;
            break;
        case 'C':
            if (strcmp(optarg, "always") == 0) to.color = 1;
            else if (strcmp(optarg, "never") == 0) to.color = 0;
            else if (strcmp(optarg, "auto") != 0)
                return bad_usage("tail", "--color must be auto, always or never, not '%s'", optarg);
            break;
        case 'h': return command_help("tail");
        default: return bad_usage("tail", NULL);
        }
    }
    if (optind < argc) return bad_usage("tail", "unexpected argument '%s'", argv[optind]);
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

static int cmd_dead(cw_config *cfg, int argc, char **argv) {
    static const struct option lo[] = {{"last", required_argument, NULL, 'l'},
                                       {"reason", required_argument, NULL, 'r'},
                                       {"json", no_argument, NULL, 'j'},
                                       {"refeed", required_argument, NULL, 'R'},
                                       {"set", required_argument, NULL, 's'},
                                       {"force", no_argument, NULL, 'F'},
                                       {"columns", required_argument, NULL, 'm'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
    int last = 10, json = 0, force = 0, nsets = 0, o;
    const char *reason = NULL, *refeed = NULL, *columns = NULL;
    char **sets = calloc((size_t)argc + 1, sizeof(char *));
    double v;
    optind = 1;
    while ((o = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (o) {
        case 'l':
            if (num_opt("dead", "last", optarg, 1, 1000000, &v) < 0) return free(sets), bad_usage("dead", NULL);
            last = (int)v;
            break;
        case 'r': reason = optarg; break;
        case 'j': json = 1; break;
        case 'R': refeed = optarg; break;
        case 's': sets[nsets++] = optarg; break;
        case 'F': force = 1; break;
        case 'm': columns = optarg; break;
        case 'h': free(sets); return command_help("dead");
        default: free(sets); return bad_usage("dead", NULL);
        }
    }
    if (optind < argc) return free(sets), bad_usage("dead", "unexpected argument '%s'", argv[optind]);
    if (!refeed && (nsets || force)) return free(sets), bad_usage("dead", "--set and --force go with --refeed ID");
    char err[2048];
    redisContext *rc = connect_for(cfg, "dead");
    if (!rc) return free(sets), 2;
    int r;
    if (refeed) {
        cw_export *x = load_export(cfg, columns, "dead");
        r = x ? cw_letters_refeed(rc, cfg, x, refeed, sets, nsets, force, stdout, err, sizeof(err)) : -2;
        cw_export_free(x);
    } else {
        r = cw_letters_list(rc, cfg, last, reason, json, stdout, err, sizeof(err));
    }
    if (r == -1 || r == 1) fprintf(stderr, "casewatch dead: %s\n", err);
    redisFree(rc);
    free(sets);
    return r < 0 ? 2 : r;
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
        case 'h': return command_help("alerts");
        default: return bad_usage("alerts", NULL);
        }
    }
    if (optind < argc) return bad_usage("alerts", "unexpected argument '%s'", argv[optind]);
    char err[512];
    redisContext *rc = connect_for(cfg, "alerts");
    if (!rc) return 2;
    int r = cw_alerts_list(rc, cfg, &ao, stdout, err, sizeof(err));
    if (r < 0) fprintf(stderr, "casewatch alerts: %s\n", err);
    redisFree(rc);
    return r == -2 ? 1 : r < 0 ? 2 : 0; /* -2: a wrong option (bad input) */
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
        case 'h': return command_help("ack");
        default: return bad_usage("ack", NULL);
        }
    }
    if (optind != argc - 1) return bad_usage("ack", "one alert ID is needed");
    if (!by) return bad_usage("ack", "--by NAME is needed: who takes the alert in hand");
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
    {"feed", cmd_feed}, {"gen", cmd_gen}, {"status", cmd_status}, {"ind", cmd_ind}, {"tail", cmd_tail},
    {"dead", cmd_dead}, {"report", cw_report_cmd}, {"alerts", cmd_alerts}, {"ack", cmd_ack},
};

int main(int argc, char **argv) {
    static const struct option lo[] = {{"config", required_argument, NULL, 'c'},
                                       {"help", no_argument, NULL, 'h'},
                                       {"version", no_argument, NULL, 'V'},
                                       {NULL, 0, NULL, 0}};
    cw_log_init("casewatch");
    const char *path = NULL;
    char **overrides = calloc((size_t)argc, sizeof(char *));
    int noverrides = 0, o;
    while ((o = getopt_long(argc, argv, "+c:o:hV", lo, NULL)) != -1) {
        switch (o) {
        case 'c': path = optarg; break;
        case 'o': overrides[noverrides++] = optarg; break;
        case 'h': usage(stdout); free(overrides); return 0;
        case 'V': printf("casewatch %s\n", CW_VERSION); free(overrides); return 0;
        default: usage(stderr); free(overrides); return 1;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        free(overrides);
        return 1;
    }
    const char *cmd = argv[optind];
    int known = -1;
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(cmd, commands[i].name) == 0) known = (int)i;
    if (known < 0) {
        fprintf(stderr, "casewatch: unknown command '%s' (see casewatch --help)\n", cmd);
        free(overrides);
        return 1;
    }
    /* help needs no configuration */
    for (int i = optind + 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) return free(overrides), command_help(cmd);
    cw_config *cfg = cw_config_new();
    if (!cfg) return free(overrides), 2;
    char err[1536];
    if (!path && access(DEFAULT_CONFIG, R_OK) == 0) path = DEFAULT_CONFIG;
    if (path) {
        const char *slash = strrchr(path, '/');
        if (slash) snprintf(config_dir, sizeof(config_dir), "%.*s", (int)(slash - path), path);
        else snprintf(config_dir, sizeof(config_dir), ".");
        if (!config_dir[0]) snprintf(config_dir, sizeof(config_dir), "/");
    }
    int bad = path && cw_config_load(cfg, path, err, sizeof(err)) < 0;
    for (int i = 0; !bad && i < noverrides; i++) bad = cw_config_override(cfg, overrides[i], err, sizeof(err)) < 0;
    if (!bad) bad = cw_config_finish(cfg, err, sizeof(err)) < 0;
    free(overrides);
    if (bad) {
        fprintf(stderr, "casewatch: %s\n", err);
        cw_config_free(cfg);
        return 2;
    }
    /* getopt's own messages then say "casewatch CMD: ..." */
    char prog[64];
    snprintf(prog, sizeof(prog), "casewatch %s", cmd);
    argv[optind] = prog;
    int rc = commands[known].run(cfg, argc - optind, argv + optind);
    cw_config_free(cfg);
    return rc;
}
