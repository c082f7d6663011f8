/* Cluster mode's pools (docs/POOLS.md): each (pool, key) is a Redis set, PREFIX:pool:NAME KEY,
 * whose members are "TYPE\nBYTES" (UTF-8 answers only: binary ones are relayed, not pooled).
 * A request asks one script for the count and, when there are enough, SRANDMEMBER; an answer
 * joins with SADD (trimmed to the size) and a TTL (the pool's ttl=, else 30 days) so that a
 * volatile-lfu Redis can evict pool keys. At each (re)connect herald reads maxmemory-policy and
 * warns when it would evict history or is not LFU. Single-flight is per node. */
#ifndef HR_POOL_REDIS_H
#define HR_POOL_REDIS_H

#include <stddef.h>
#include <stdint.h>

#include "bus/bus.h"
#include "core/config.h"

#define HR_POOL_REDIS_TTL_S (30 * 86400) /* a member's life when the pool sets no ttl= */

typedef struct hr_pool_redis_s hr_pool_redis_t;
struct hr_pools_s;

/* Before hr_bus_start (scripts and the policy check are registered with the bus). */
hr_pool_redis_t *hr_pool_redis_new(hr_bus_t *bus, const hr_config_t *config);
void hr_pool_redis_free(hr_pool_redis_t *redis);

/* Commands for the caller to send (NULL on allocation failure). The ask's reply is [count] or
 * [count, member] when the key holds at least `need`. */
hr_bus_cmd_t *hr_pool_redis_ask(hr_pool_redis_t *redis, const char *key, size_t len, unsigned need);
hr_bus_cmd_t *hr_pool_redis_random(hr_pool_redis_t *redis, const char *key, size_t len);
hr_bus_cmd_t *hr_pool_redis_members(hr_pool_redis_t *redis, const char *key, size_t len);
/* Removes the member with id `id` (hr_pool_member_id), or the whole key with id 0. Reply: 1
 * or 0. */
hr_bus_cmd_t *hr_pool_redis_remove(hr_pool_redis_t *redis, const char *key, size_t len,
                                   uint64_t id);
/* Sends a command (hr_bus_command). */
int hr_pool_redis_send(hr_pool_redis_t *redis, hr_bus_cmd_t *cmd);
/* Any thread: adds an answer (fire and forget; the bus keeps commands in order, so a request
 * that follows the answer's response sees it). */
void hr_pool_redis_add(hr_pool_redis_t *redis, const char *key, size_t len, const char *type,
                       const char *bytes, size_t bytes_len, unsigned size, int64_t ttl_s);

/* Splits a stored member into its type and bytes; -1 when malformed. */
int hr_pool_redis_split(const char *member, size_t len, char *type, size_t type_size,
                        const char **bytes, size_t *bytes_len);

#endif
