/* Device tokens in cluster mode (docs/PUSH.md): in Redis, shared by every node, each change
 * one Lua script.
 *
 *   PREFIX:dev:TOKEN   hash  user, body (the device's JSON), topics (JSON array), updated
 *   PREFIX:devu:USER   set   the user's tokens
 *   PREFIX:devt:TOPIC  set   tokens registered for the topic
 *   PREFIX:devage      zset  token -> updated (unix ms): bounds, eviction, the stale job
 *   PREFIX:devjob      the stale job's lease: one node runs it at a time
 *
 * A push's recipients come from one script that also reads presence (PREFIX:pu:USER and the
 * node leases), so "offline" means offline on every node. */
#ifndef HR_PUSH_DEVICES_REDIS_H
#define HR_PUSH_DEVICES_REDIS_H

#include "bus/bus.h"
#include "core/config.h"
#include "push/devices.h"

typedef struct hr_devices_redis_s hr_devices_redis_t;

hr_devices_redis_t *hr_devices_redis_new(hr_bus_t *bus, const hr_config_t *config);
void hr_devices_redis_free(hr_devices_redis_t *redis);

/* Replies: put 1, or -1 at --fcm-max-devices; remove 1/0; list [token, body, updated, ...];
 * targets [token, user, platform, ...] (offline: only users with no live connection). */
hr_bus_cmd_t *hr_devices_redis_put(hr_devices_redis_t *redis, const hr_device_info_t *info);
hr_bus_cmd_t *hr_devices_redis_remove(hr_devices_redis_t *redis, const char *user, size_t user_len,
                                      const char *token, size_t token_len);
hr_bus_cmd_t *hr_devices_redis_list(hr_devices_redis_t *redis, const char *user, size_t len);
hr_bus_cmd_t *hr_devices_redis_targets(hr_devices_redis_t *redis, int of_user, const char *name,
                                       size_t len, int offline_only);
/* Fire and forget: FCM called the token dead. */
void hr_devices_redis_invalid(hr_devices_redis_t *redis, const char *token, size_t len);
/* The stale job under a lease (held for twice its period): reply the devices removed, or -1
 * when another node holds the lease. */
hr_bus_cmd_t *hr_devices_redis_expire(hr_devices_redis_t *redis, int64_t cutoff_ms,
                                      int64_t lease_ms);

#endif
