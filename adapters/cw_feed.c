#include "cw_feed.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include <csv.h>

#include "../proto/cw_event.h"
#include "../daemon/cw_period.h"
#include "../proto/cw_record.h"
#include "cw_export.h"

struct cw_feed {
    redisContext *rc;
    char *key;
    int batch;
    int progress;
    int raw;
    cw_export *x; /* not owned; NULL: the protocol's keys only */
    int header_bad; /* the CSV header leaves a required key without a column */
    cw_event_decoder *dec;
    msgpack_sbuffer sb;
    uint64_t *pending_lines; /* line of each XADD in flight */
    int npending;
    cw_feed_stats st;
    int64_t now_ms;
    double last_progress;
    char *err;
    size_t errlen;
    int fatal;
};

cw_feed *cw_feed_new(redisContext *rc, const char *stream_key, int batch) {
    cw_feed *f = calloc(1, sizeof(*f));
    if (!f) return NULL;
    f->rc = rc;
    f->batch = batch > 0 ? batch : 1000;
    f->key = strdup(stream_key);
    f->dec = cw_event_decoder_new();
    f->pending_lines = calloc((size_t)f->batch, sizeof(uint64_t));
    msgpack_sbuffer_init(&f->sb);
    if (!f->key || !f->dec || !f->pending_lines) {
        cw_feed_free(f);
        return NULL;
    }
    return f;
}

void cw_feed_free(cw_feed *f) {
    if (!f) return;
    free(f->key);
    cw_event_decoder_free(f->dec);
    free(f->pending_lines);
    msgpack_sbuffer_destroy(&f->sb);
    free(f);
}

void cw_feed_set_progress(cw_feed *f, int on) {
    f->progress = on;
}

void cw_feed_set_raw(cw_feed *f, int on) {
    f->raw = on;
}

void cw_feed_set_export(cw_feed *f, cw_export *x) {
    f->x = x;
}

const cw_feed_stats *cw_feed_get_stats(const cw_feed *f) {
    return &f->st;
}

int cw_feed_format_parse(const char *s, cw_feed_format *out) {
    static const char *const names[] = {"auto", "json", "csv", "msgpack"};
    for (int i = 0; i < 4; i++)
        if (strcmp(s, names[i]) == 0) return (*out = (cw_feed_format)i, 0);
    return -1;
}

static int fatalf(cw_feed *f, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->err, f->errlen, fmt, ap);
    va_end(ap);
    f->fatal = 1;
    return -1;
}

static void bad_record(cw_feed *f, uint64_t line, const char *why) {
    f->st.bad++;
    /* "line 5, column 3 (类型): ..." when the reason names a column */
    fprintf(stderr, "line %llu%s%s\n", (unsigned long long)line, strncmp(why, "column ", 7) == 0 ? ", " : ": ", why);
}

/* Reads the replies of every XADD in flight. */
static int flush(cw_feed *f) {
    for (int i = 0; i < f->npending; i++) {
        redisReply *r = NULL;
        if (redisGetReply(f->rc, (void **)&r) != REDIS_OK)
            return fatalf(f, "redis connection failed after %llu events were added: %s",
                          (unsigned long long)f->st.added, f->rc->errstr);
        int ok = r->type == REDIS_REPLY_STRING;
        if (!ok) {
            fatalf(f, "redis refused the event of line %llu: %s", (unsigned long long)f->pending_lines[i],
                   r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
            freeReplyObject(r);
            return -1;
        }
        freeReplyObject(r);
        f->st.added++;
    }
    f->npending = 0;
    if (f->progress) {
        double now = cw_mono_s();
        if (now - f->last_progress >= 1.0) {
            f->last_progress = now;
            fprintf(stderr, "\rfeed: %llu records, %llu added, %llu bad ", (unsigned long long)f->st.records,
                    (unsigned long long)f->st.added, (unsigned long long)f->st.bad);
        }
    }
    return 0;
}

/* Validates one msgpack value and queues its XADD. A bad value is
 * reported and counted; only a Redis failure returns -1. */
static int take(cw_feed *f, uint64_t line, const char *buf, size_t len) {
    cw_event ev;
    char why[256];
    if (!f->raw && cw_event_decode(f->dec, buf, len, f->now_ms, &ev, why, sizeof(why)) < 0) {
        /* the decoder names keys; an export names its own columns */
        const char *k = strstr(why, "key '");
        const char *e = k ? strchr(k + 5, '\'') : NULL;
        char where[200] = "";
        if (f->x && e) cw_export_where(f->x, k + 5, (size_t)(e - k - 5), where, sizeof(where));
        char msg[512];
        snprintf(msg, sizeof(msg), "%s%s", why, where);
        bad_record(f, line, msg);
        return 0;
    }
    if (!f->rc) {
        f->st.added++;
        return 0;
    }
    const char *argv[5] = {"XADD", f->key, "*", "e", buf};
    size_t argl[5] = {4, strlen(f->key), 1, 1, len};
    if (redisAppendCommandArgv(f->rc, 5, argv, argl) != REDIS_OK)
        return fatalf(f, "cannot queue XADD: %s", f->rc->errstr);
    f->pending_lines[f->npending++] = line;
    return f->npending >= f->batch ? flush(f) : 0;
}

/* ---- JSON lines ------------------------------------------------------- */

static int run_json(cw_feed *f, FILE *in) {
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    uint64_t lineno = 0;
    int rc = 0;
    while (rc == 0 && (n = getline(&line, &cap, in)) >= 0) {
        lineno++;
        char *p = line;
        if (lineno == 1 && n >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0) p += 3, n -= 3;
        while (n > 0 && (p[n - 1] == '\n' || p[n - 1] == '\r' || p[n - 1] == ' ' || p[n - 1] == '\t')) n--;
        size_t skip = 0;
        while ((ssize_t)skip < n && (p[skip] == ' ' || p[skip] == '\t')) skip++;
        if ((ssize_t)skip == n) continue; /* blank line */
        f->st.records++;
        char why[256];
        f->sb.size = 0;
        int bad = f->x ? cw_export_json(f->x, p + skip, (size_t)n - skip, f->raw, &f->sb, why, sizeof(why))
                       : cw_record_from_json(p + skip, (size_t)n - skip, &f->sb, why, sizeof(why));
        if (bad < 0) {
            bad_record(f, lineno, why);
            continue;
        }
        rc = take(f, lineno, f->sb.data, f->sb.size);
    }
    free(line);
    if (rc == 0 && ferror(in)) return fatalf(f, "reading input: %s", strerror(errno));
    return rc;
}

/* ---- CSV -------------------------------------------------------------- */

typedef struct csv_row {
    char **cells;
    size_t *lens;
    size_t n, cap;
} csv_row;

typedef struct csv_ctx {
    cw_feed *f;
    csv_row header, row;
    int have_header;
    uint64_t line, row_start; /* line being fed; line the current row began on */
    int rc;
} csv_ctx;

static void row_clear(csv_row *r) {
    for (size_t i = 0; i < r->n; i++) free(r->cells[i]);
    r->n = 0;
}

static void row_free(csv_row *r) {
    row_clear(r);
    free(r->cells);
    free(r->lens);
}

static void on_cell(void *s, size_t len, void *data) {
    csv_ctx *c = data;
    csv_row *r = &c->row;
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 16;
        char **nc = realloc(r->cells, cap * sizeof(*nc));
        if (nc) r->cells = nc;
        size_t *nl = realloc(r->lens, cap * sizeof(*nl));
        if (nl) r->lens = nl;
        if (!nc || !nl) return;
        r->cap = cap;
    }
    char *copy = malloc(len + 1);
    if (!copy) return;
    if (len) memcpy(copy, s, len);
    copy[len] = '\0';
    r->cells[r->n] = copy;
    r->lens[r->n++] = len;
}

static void on_row(int term, void *data) {
    (void)term;
    csv_ctx *c = data;
    cw_feed *f = c->f;
    uint64_t line = c->row_start;
    c->row_start = c->line + 1;
    if (c->rc) {
        row_clear(&c->row);
        return;
    }
    if (!c->have_header) {
        c->header = c->row;
        memset(&c->row, 0, sizeof(c->row));
        c->have_header = 1;
        if (c->header.n > 0 && c->header.lens[0] >= 3 && memcmp(c->header.cells[0], "\xEF\xBB\xBF", 3) == 0) {
            memmove(c->header.cells[0], c->header.cells[0] + 3, c->header.lens[0] - 2);
            c->header.lens[0] -= 3;
        }
        char why[2048];
        /* --raw sends the rows even so: the daemon will dead-letter them */
        if (f->x && cw_export_header(f->x, (const char *const *)c->header.cells, c->header.lens, c->header.n, stderr,
                                     why, sizeof(why)) < 0 && !f->raw) {
            fprintf(stderr, "line %llu: %s\n", (unsigned long long)line, why);
            f->header_bad = 1;
        }
        return;
    }
    f->st.records++;
    if (f->header_bad) { /* said once, at the header */
        f->st.bad++;
        row_clear(&c->row);
        return;
    }
    if (c->row.n > c->header.n) {
        char why[96];
        snprintf(why, sizeof(why), "row has %zu cells, the header names %zu", c->row.n, c->header.n);
        bad_record(f, line, why);
        row_clear(&c->row);
        return;
    }
    char why[1024];
    f->sb.size = 0;
    int bad = f->x ? cw_export_row(f->x, (const char *const *)c->row.cells, c->row.lens, c->row.n, f->raw, &f->sb, why,
                                   sizeof(why))
                   : cw_record_from_cells((const char *const *)c->header.cells, c->header.lens,
                                          (const char *const *)c->row.cells, c->row.lens, c->row.n, &f->sb, why,
                                          sizeof(why));
    if (bad < 0)
        bad_record(f, line, why);
    else
        c->rc = take(f, line, f->sb.data, f->sb.size);
    row_clear(&c->row);
}

static int run_csv(cw_feed *f, FILE *in) {
    csv_ctx c = {.f = f, .row_start = 1};
    struct csv_parser p;
    if (csv_init(&p, CSV_STRICT | CSV_STRICT_FINI) != 0) return fatalf(f, "out of memory");
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while (c.rc == 0 && (n = getline(&line, &cap, in)) >= 0) {
        c.line++;
        if (csv_parse(&p, line, (size_t)n, on_cell, on_row, &c) != (size_t)n) {
            /* a malformed row: report it, drop what was gathered, and
             * start a fresh parser on the next line */
            char why[96];
            snprintf(why, sizeof(why), "malformed CSV: %s", csv_strerror(csv_error(&p)));
            if (c.have_header) f->st.records++;
            bad_record(f, c.row_start, why);
            row_clear(&c.row);
            csv_free(&p);
            csv_init(&p, CSV_STRICT | CSV_STRICT_FINI);
            c.row_start = c.line + 1;
        }
    }
    if (c.rc == 0 && csv_fini(&p, on_cell, on_row, &c) != 0) {
        f->st.records++;
        bad_record(f, c.row_start, "malformed CSV: unterminated quoted field at end of input");
    }
    csv_free(&p);
    free(line);
    row_free(&c.header);
    row_free(&c.row);
    if (c.rc == 0 && ferror(in)) return fatalf(f, "reading input: %s", strerror(errno));
    return c.rc;
}

/* ---- msgpack ---------------------------------------------------------- */

static int run_msgpack(cw_feed *f, FILE *in, const char *head, size_t headlen) {
    cw_event_reader *r = cw_event_reader_new();
    if (!r) return fatalf(f, "out of memory");
    char buf[65536];
    int rc = 0, broken = 0;
    size_t n = headlen;
    memcpy(buf, head, headlen);
    do {
        if (cw_event_reader_feed(r, buf, n) < 0) {
            rc = fatalf(f, "out of memory");
            break;
        }
        const char *v;
        size_t len;
        char why[256];
        int got;
        while (rc == 0 && (got = cw_event_reader_next(r, &v, &len, why, sizeof(why))) == 1) {
            f->st.records++;
            rc = take(f, f->st.records, v, len);
        }
        if (rc == 0 && got < 0) {
            f->st.records++;
            bad_record(f, f->st.records, why);
            broken = 1;
        }
    } while (rc == 0 && !broken && (n = fread(buf, 1, sizeof(buf), in)) > 0);
    if (rc == 0 && !broken && cw_event_reader_pending(r) > 0) {
        f->st.records++;
        bad_record(f, f->st.records, "input ends inside a msgpack value");
    }
    cw_event_reader_free(r);
    return rc;
}

/* ---- Driver ----------------------------------------------------------- */

int cw_feed_run(cw_feed *f, FILE *in, cw_feed_format fmt, char *err, size_t errlen) {
    f->err = err;
    f->errlen = errlen;
    f->now_ms = cw_wall_ms();
    f->last_progress = cw_mono_s();
    int c = 0;
    if (fmt == CW_FEED_AUTO || fmt == CW_FEED_MSGPACK) {
        /* look at the first byte; a msgpack map starts 0x80-0x8f/0xde/0xdf */
        while ((c = getc(in)) == ' ' || c == '\n' || c == '\r' || c == '\t') {
            if (fmt == CW_FEED_MSGPACK) break;
        }
        if (c == EOF) return ferror(in) ? fatalf(f, "reading input: %s", strerror(errno)) : 0;
        if (fmt == CW_FEED_AUTO) {
            unsigned char u = (unsigned char)c;
            fmt = (u >= 0x80 && u <= 0x8f) || u == 0xde || u == 0xdf ? CW_FEED_MSGPACK
                  : u == '{'                                      ? CW_FEED_JSON
                                                                   : CW_FEED_CSV;
        }
    }
    int rc;
    if (fmt == CW_FEED_MSGPACK) {
        char head = (char)c;
        rc = run_msgpack(f, in, &head, 1);
    } else {
        if (c) ungetc(c, in);
        rc = fmt == CW_FEED_JSON ? run_json(f, in) : run_csv(f, in);
    }
    if (rc == 0 && f->rc && f->npending) rc = flush(f);
    if (f->progress) fputc('\n', stderr);
    return f->fatal ? -1 : rc;
}
