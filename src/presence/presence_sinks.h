/* Where presence transitions go: this process (presence_local.c) or Redis
 * (presence_redis.c). */
#ifndef HR_PRESENCE_SINKS_H
#define HR_PRESENCE_SINKS_H

#include "core/broker.h"
#include "core/config.h"
#include "presence/presence.h"
#include "store/store.h"

typedef struct hr_presence_local_s {
    hr_broker_t *broker;
    hr_store_t *store; /* last-seen; may keep none (the memory store) */
} hr_presence_local_t;

/* A registry whose joins and leaves are published by this process's broker. `local` must
 * outlive it. */
hr_presence_t *hr_presence_local_new(hr_presence_local_t *local, const hr_config_t *config);

/* Cluster mode: presence shared through Redis (presence_redis.c). Registers its scripts with
 * the bus (before hr_bus_start) and creates the registry into *presence. */
typedef struct hr_presence_redis_s hr_presence_redis_t;
struct hr_bus_s;
hr_presence_redis_t *hr_presence_redis_new(struct hr_bus_s *bus, const hr_config_t *config,
                                           hr_presence_t **presence);
/* From worker 0's housekeeping, once a second: lease renewal, reaping, resync. */
void hr_presence_redis_tick(hr_presence_redis_t *redis);
/* After the workers stopped, before the bus goes: this node's entries are removed. */
void hr_presence_redis_stop(hr_presence_redis_t *redis);
void hr_presence_redis_free(hr_presence_redis_t *redis);

/* The presence routes in cluster mode: answered when Redis replies (503 when it is down). */
struct hr_exchange_s;
void hr_presence_redis_query(hr_presence_redis_t *redis, struct hr_exchange_s *ex,
                             const char *const *users, const size_t *lens, size_t n, int many);
void hr_presence_redis_members(hr_presence_redis_t *redis, struct hr_exchange_s *ex,
                               const char *topic, size_t len, size_t limit);

#endif
