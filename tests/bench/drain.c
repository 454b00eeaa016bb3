/* The raw drain baseline: a client that only reads the whole stream with
 * XREAD COUNT 1000 and discards it. Prints "entries seconds entries/s".
 * Usage: drain PORT [STREAM] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis.h>

int main(int argc, char **argv) {
    int port = argc > 1 ? atoi(argv[1]) : 6379;
    const char *key = argc > 2 ? argv[2] : "casewatch:events";
    redisContext *c = redisConnect("127.0.0.1", port);
    if (!c || c->err) return fprintf(stderr, "drain: cannot connect\n"), 2;
    char last[64] = "0-0";
    long long n = 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        redisReply *r = redisCommand(c, "XREAD COUNT 1000 STREAMS %s %s", key, last);
        if (!r || r->type != REDIS_REPLY_ARRAY) {
            if (r) freeReplyObject(r);
            break;
        }
        redisReply *e = r->element[0]->element[1];
        n += (long long)e->elements;
        if (e->elements) snprintf(last, sizeof(last), "%s", e->element[e->elements - 1]->element[0]->str);
        size_t got = e->elements;
        freeReplyObject(r);
        if (got < 1000) break;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("%lld %.3f %.0f\n", n, s, (double)n / s);
    redisFree(c);
    return 0;
}
