/* Decoding alone: reads a whole stream into memory (XRANGE, 1,000 entries
 * a call), then decodes every entry ROUNDS times with one decoder, as a
 * decode worker does (cw_event_decode_entry). Prints "entries accepted
 * refused ns/entry". Under callgrind, --toggle-collect=decode_all counts
 * the decoding only.
 * Usage: decode PORT [STREAM] [ROUNDS] [--dump]
 * --dump prints one line per entry (its id, then the decoded event or the
 * refusal's reason) instead of timing: two builds of the decoder must
 * print the same lines. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis.h>

#include "../../proto/cw_event.h"

#define NOW_MS 1900000000000LL /* later than any generated event */

typedef struct entry {
    char id[48];
    size_t nfields;
    cw_entry_field fields[4];
} entry;

static entry *entries;
static size_t n_entries, cap_entries;

static char *dup_bytes(const char *s, size_t n) {
    char *p = malloc(n + 1);
    if (!p) exit(1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

static void load(redisContext *c, const char *stream) {
    char start[64] = "-";
    for (;;) {
        redisReply *r = redisCommand(c, "XRANGE %s %s + COUNT 1000", stream, start);
        if (!r || r->type != REDIS_REPLY_ARRAY) {
            fprintf(stderr, "decode: XRANGE failed\n");
            exit(1);
        }
        if (r->elements == 0) {
            freeReplyObject(r);
            return;
        }
        for (size_t i = 0; i < r->elements; i++) {
            redisReply *e = r->element[i], *f = e->element[1];
            if (n_entries == cap_entries) {
                cap_entries = cap_entries ? cap_entries * 2 : 4096;
                entries = realloc(entries, cap_entries * sizeof(*entries));
                if (!entries) exit(1);
            }
            entry *en = &entries[n_entries++];
            snprintf(en->id, sizeof(en->id), "%s", e->element[0]->str);
            en->nfields = f->elements / 2;
            for (size_t k = 0; k < en->nfields && k < 4; k++) {
                en->fields[k].name = dup_bytes(f->element[2 * k]->str, f->element[2 * k]->len);
                en->fields[k].name_len = f->element[2 * k]->len;
                en->fields[k].value = dup_bytes(f->element[2 * k + 1]->str, f->element[2 * k + 1]->len);
                en->fields[k].value_len = f->element[2 * k + 1]->len;
            }
            if (en->nfields > 4) en->nfields = 4;
        }
        /* the next call starts after the last id: "(" makes it exclusive */
        snprintf(start, sizeof(start), "(%s", r->element[r->elements - 1]->element[0]->str);
        freeReplyObject(r);
    }
}

static size_t accepted;

/* Not static and not inlined, so that callgrind can collect it alone. */
__attribute__((noinline)) void decode_all(cw_event_decoder *d, int rounds) {
    cw_event ev;
    char why[256];
    accepted = 0;
    for (int r = 0; r < rounds; r++)
        for (size_t i = 0; i < n_entries; i++)
            accepted += cw_event_decode_entry(d, entries[i].fields, entries[i].nfields, NOW_MS, &ev, why,
                                              sizeof(why)) == 0;
}

static void dump(cw_event_decoder *d) {
    for (size_t i = 0; i < n_entries; i++) {
        cw_event ev;
        char why[256];
        memset(&ev, 0xA5, sizeof(ev));
        if (cw_event_decode_entry(d, entries[i].fields, entries[i].nfields, NOW_MS, &ev, why, sizeof(why)) < 0) {
            printf("%s refused: %s\n", entries[i].id, why);
            continue;
        }
        printf("%s v=%u type=%s ts=%" PRId64 " n=%u present=%x flags=%x decision=%d sentencing=%d reply=%d "
               "id=%s case=%s unit=%s dept=%s pros=%s\n",
               entries[i].id, ev.v, cw_event_type_name(ev.type), ev.ts, ev.n, ev.present, ev.flags, ev.decision,
               ev.sentencing, ev.reply, ev.id, ev.case_id, ev.unit, ev.dept, ev.pros);
    }
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: decode PORT [STREAM] [ROUNDS] [--dump]\n");
        return 2;
    }
    const char *stream = argc > 2 ? argv[2] : "casewatch:events";
    int rounds = argc > 3 ? atoi(argv[3]) : 1;
    int want_dump = argc > 4 && strcmp(argv[4], "--dump") == 0;
    redisContext *c = redisConnect("127.0.0.1", atoi(argv[1]));
    if (!c || c->err) {
        fprintf(stderr, "decode: cannot connect\n");
        return 1;
    }
    load(c, stream);
    redisFree(c);
    cw_event_decoder *d = cw_event_decoder_new();
    if (!d) return 1;
    if (want_dump) {
        dump(d);
    } else {
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        decode_all(d, rounds < 1 ? 1 : rounds);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double ns = (t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec);
        size_t total = n_entries * (size_t)(rounds < 1 ? 1 : rounds);
        size_t ok = accepted / (size_t)(rounds < 1 ? 1 : rounds);
        printf("%zu %zu %zu %.1f\n", n_entries, ok, n_entries - ok, total ? ns / total : 0.0);
    }
    cw_event_decoder_free(d);
    for (size_t i = 0; i < n_entries; i++)
        for (size_t k = 0; k < entries[i].nfields; k++) {
            free((char *)entries[i].fields[k].name);
            free((char *)entries[i].fields[k].value);
        }
    free(entries);
    return 0;
}
