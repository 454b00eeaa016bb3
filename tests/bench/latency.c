/* End-to-end latency: XADD events at a steady rate (new arrest reviews),
 * one in every 20 of them raising an alert at once (a prosecution.decided
 * whose acceptance was never seen: data.decided_unaccepted), and time each
 * such alert's arrival at a subscriber of casewatch:alerts. Prints
 * "alerting_sent received p50_ms p99_ms max_ms".
 * Usage: latency PORT RATE SECONDS */
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hiredis.h>

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void pack_str(msgpack_packer *pk, const char *s) {
    msgpack_pack_str(pk, strlen(s));
    msgpack_pack_str_body(pk, s, strlen(s));
}

int main(int argc, char **argv) {
    int port = argc > 1 ? atoi(argv[1]) : 6379, rate = argc > 2 ? atoi(argv[2]) : 5000;
    int secs = argc > 3 ? atoi(argv[3]) : 10, events = rate * secs, every = 20, total = events / every;
    double *arrive = calloc((size_t)total, sizeof(double)), *sent = calloc((size_t)total, sizeof(double));
    int fds[2];
    if (pipe(fds) != 0) return 2;
    pid_t child = fork();
    if (child == 0) { /* the subscriber: arrival times by event number, to the pipe */
        close(fds[0]);
        redisContext *s = redisConnect("127.0.0.1", port);
        redisReply *r = redisCommand(s, "SUBSCRIBE casewatch:alerts");
        freeReplyObject(r);
        if (write(fds[1], "r", 1) != 1) _exit(2);
        struct timeval tv = {5, 0};
        redisSetTimeout(s, tv);
        int got = 0;
        while (got < total && redisGetReply(s, (void **)&r) == REDIS_OK) {
            double t = now_ms();
            const char *m = r->element[2]->str, *p = strstr(m, "case:410923:lat-");
            if (p && strstr(m, "\"state\":\"firing\"")) {
                int i = atoi(p + 16);
                if (i >= 0 && i < total) {
                    if (write(fds[1], &i, sizeof(i)) != sizeof(i) || write(fds[1], &t, sizeof(t)) != sizeof(t)) _exit(2);
                    got++;
                }
            }
            freeReplyObject(r);
        }
        _exit(0);
    }
    close(fds[1]);
    char ready;
    if (read(fds[0], &ready, 1) != 1) return 2;
    redisContext *c = redisConnect("127.0.0.1", port);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    double start = now_ms();
    for (int k = 0; k < events; k++) {
        double due = start + (double)k * 1000.0 / rate;
        int alerting = k % every == 0, i = k / every;
        while (now_ms() < due) {
            struct timespec ts = {0, 20000};
            nanosleep(&ts, NULL);
        }
        char id[32], cs[32];
        snprintf(id, sizeof(id), alerting ? "lat-%d" : "bg-%d", alerting ? i : k);
        snprintf(cs, sizeof(cs), alerting ? "lat-%d" : "bg-%d", alerting ? i : k);
        msgpack_sbuffer_clear(&sb);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        msgpack_pack_map(&pk, 7);
        pack_str(&pk, "v"), msgpack_pack_uint8(&pk, 1);
        pack_str(&pk, "id"), pack_str(&pk, id);
        pack_str(&pk, "ts"), msgpack_pack_int64(&pk, 1700000000000LL + i);
        pack_str(&pk, "type"), pack_str(&pk, alerting ? "prosecution.decided" : "arrest.accepted");
        pack_str(&pk, "case"), pack_str(&pk, cs);
        pack_str(&pk, "unit"), pack_str(&pk, "410923");
        if (alerting) pack_str(&pk, "decision"), pack_str(&pk, "prosecute");
        else pack_str(&pk, "detained"), msgpack_pack_true(&pk);
        if (alerting) sent[i] = now_ms();
        redisReply *r = redisCommand(c, "XADD casewatch:events * e %b", sb.data, sb.size);
        if (r) freeReplyObject(r);
    }
    int got = 0, i;
    double t;
    while (read(fds[0], &i, sizeof(i)) == sizeof(i) && read(fds[0], &t, sizeof(t)) == sizeof(t)) {
        arrive[got++] = t - sent[i];
    }
    waitpid(child, NULL, 0);
    qsort(arrive, (size_t)got, sizeof(double), cmp);
    if (!got) return printf("%d 0 - - -\n", total), 1;
    printf("%d %d %.3f %.3f %.3f\n", total, got, arrive[got / 2], arrive[(size_t)(got * 0.99)], arrive[got - 1]);
    msgpack_sbuffer_destroy(&sb);
    redisFree(c);
    free(arrive);
    free(sent);
    return 0;
}
