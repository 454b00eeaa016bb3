#include "cw_sentinel.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis.h>

int cw_sentinel_primary(const cw_config *cfg, char *host, size_t hostlen, int *port, char *why, size_t wl) {
    char list[1024];
    snprintf(list, sizeof(list), "%s", cfg->redis_sentinels);
    int ms = cfg->redis_timeout_ms < 500 ? cfg->redis_timeout_ms : 500;
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    snprintf(why, wl, "no sentinel of %s named a primary for '%s'", cfg->redis_sentinels, cfg->redis_master_name);
    for (char *save = NULL, *t = strtok_r(list, ", ", &save); t; t = strtok_r(NULL, ", ", &save)) {
        char *colon = strrchr(t, ':');
        if (!colon) continue;
        *colon = '\0';
        redisContext *sc = redisConnectWithTimeout(t, atoi(colon + 1), tv);
        if (!sc || sc->err) {
            redisFree(sc);
            continue;
        }
        redisSetTimeout(sc, tv);
        redisReply *r = redisCommand(sc, "SENTINEL get-master-addr-by-name %s", cfg->redis_master_name);
        int ok = r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 && r->element[0]->type == REDIS_REPLY_STRING;
        if (ok) {
            snprintf(host, hostlen, "%s", r->element[0]->str);
            *port = atoi(r->element[1]->str);
        }
        if (r) freeReplyObject(r);
        redisFree(sc);
        if (ok) return 0;
    }
    return -1;
}
