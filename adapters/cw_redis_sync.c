#include "cw_redis_sync.h"

#include <stdio.h>
#include <string.h>

#include "../daemon/cw_sentinel.h"

redisContext *cw_redis_sync_connect(const cw_config *c, char *err, size_t errlen) {
    struct timeval tv = {c->redis_timeout_ms / 1000, (c->redis_timeout_ms % 1000) * 1000};
    char host[256];
    int port = c->redis_port;
    snprintf(host, sizeof(host), "%s", c->redis_host);
    if (c->redis_sentinels[0] && cw_sentinel_primary(c, host, sizeof(host), &port, err, errlen) < 0) return NULL;
    redisContext *rc = redisConnectWithTimeout(host, port, tv);
    if (!rc || rc->err) {
        snprintf(err, errlen, "cannot connect to redis at %s:%d: %s", host, port, rc ? rc->errstr : "out of memory");
        redisFree(rc);
        return NULL;
    }
    redisSetTimeout(rc, tv);
    if (c->redis_password) {
        redisReply *r = c->redis_user[0] ? redisCommand(rc, "AUTH %s %s", c->redis_user, c->redis_password)
                                         : redisCommand(rc, "AUTH %s", c->redis_password);
        int ok = r && r->type == REDIS_REPLY_STATUS;
        if (!ok)
            snprintf(err, errlen, "redis at %s:%d refused AUTH%s%s: %s", host, port,
                     c->redis_user[0] ? " as " : "", c->redis_user,
                     r && r->type == REDIS_REPLY_ERROR ? r->str : rc->errstr);
        if (r) freeReplyObject(r);
        if (!ok) {
            redisFree(rc);
            return NULL;
        }
    }
    return rc;
}

redisReply *cw_redis_sync_hgetall(redisContext *rc, const char *key, char *err, size_t errlen) {
    redisReply *r = redisCommand(rc, "HGETALL %s", key);
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        snprintf(err, errlen, "HGETALL %s failed: %s", key, r ? r->str : rc->errstr);
        if (r) freeReplyObject(r);
        return NULL;
    }
    return r;
}
