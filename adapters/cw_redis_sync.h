/* cw_redis_sync: a blocking hiredis connection for the CLI, configured
 * from the same [redis] section as the daemon (address, timeout, ACL user
 * and password from password_file). */
#ifndef CW_REDIS_SYNC_H
#define CW_REDIS_SYNC_H

#include <stddef.h>

#include <hiredis.h>

#include "../daemon/cw_config.h"

/* Connects, sets the read/write timeout to [redis] timeout_ms and
 * authenticates when a password is configured. Returns a context the
 * caller frees with redisFree, or NULL with a message in err. The
 * password never appears in err. */
redisContext *cw_redis_sync_connect(const cw_config *c, char *err, size_t errlen);

/* HGETALL key: the reply (an array; the caller frees it), or NULL with
 * the reason in err. */
redisReply *cw_redis_sync_hgetall(redisContext *rc, const char *key, char *err, size_t errlen);

#endif
