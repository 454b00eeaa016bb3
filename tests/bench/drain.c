/* The raw drain baseline: a client that only reads the whole stream with
 * XREAD COUNT 1000 and discards it. Prints "entries seconds entries/s".
 * Usage: drain PORT [STREAM] [--lean]
 *
 * By default hiredis builds its reply tree for every batch (five objects
 * per entry) and frees it. --lean parses the same replies with hiredis's
 * reader but builds nothing: it keeps only the last entry id (where the
 * next XREAD starts) and a count, so the client costs little and the
 * figure is close to what redis-server can serve. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis.h>

/* ---- --lean: reader callbacks that keep only what the next XREAD needs */

static char lean_last[64];
static long long lean_entries; /* entry ids seen in the current reply */
static char lean_object;       /* what every callback returns: non-NULL, never read */

static int depth(const redisReadTask *t) {
    int d = 0;
    for (; t->parent; t = t->parent) d++;
    return d;
}

/* An entry id is element 0 of an entry: reply -> stream -> entries -> entry -> id. */
static void *lean_string(const redisReadTask *task, char *str, size_t len) {
    if (task->idx == 0 && depth(task) == 4) {
        if (len >= sizeof(lean_last)) len = sizeof(lean_last) - 1;
        memcpy(lean_last, str, len);
        lean_last[len] = '\0';
        lean_entries++;
    }
    return &lean_object;
}

static void *lean_array(const redisReadTask *task, int elements) {
    (void)task;
    (void)elements;
    return &lean_object;
}

static void *lean_integer(const redisReadTask *task, long long value) {
    (void)task;
    (void)value;
    return &lean_object;
}

static void *lean_nil(const redisReadTask *task) {
    (void)task;
    return &lean_object;
}

static void lean_free(void *obj) {
    (void)obj;
}

static redisReplyObjectFunctions lean_functions = {lean_string, lean_array, lean_integer, lean_nil, lean_free};

int main(int argc, char **argv) {
    int port = argc > 1 ? atoi(argv[1]) : 6379;
    const char *key = argc > 2 && strcmp(argv[2], "--lean") ? argv[2] : "casewatch:events";
    int lean = strcmp(argv[argc - 1], "--lean") == 0;
    redisContext *c = redisConnect("127.0.0.1", port);
    if (!c || c->err) return fprintf(stderr, "drain: cannot connect\n"), 2;
    if (lean) c->reader->fn = &lean_functions;
    char last[64] = "0-0";
    long long n = 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        size_t got;
        if (lean) {
            void *r = NULL;
            lean_entries = 0;
            if (redisAppendCommand(c, "XREAD COUNT 1000 STREAMS %s %s", key, last) != REDIS_OK ||
                redisGetReply(c, &r) != REDIS_OK)
                break;
            got = (size_t)lean_entries;
            if (got) memcpy(last, lean_last, sizeof(last));
        } else {
            redisReply *r = redisCommand(c, "XREAD COUNT 1000 STREAMS %s %s", key, last);
            if (!r || r->type != REDIS_REPLY_ARRAY) {
                if (r) freeReplyObject(r);
                break;
            }
            redisReply *e = r->element[0]->element[1];
            got = e->elements;
            if (got) snprintf(last, sizeof(last), "%s", e->element[got - 1]->element[0]->str);
            freeReplyObject(r);
        }
        n += (long long)got;
        if (got < 1000) break;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("%lld %.3f %.0f\n", n, s, (double)n / s);
    redisFree(c);
    return 0;
}
