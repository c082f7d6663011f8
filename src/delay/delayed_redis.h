/* Delayed messages in cluster mode (docs/PUSH.md): the schedule lives in Redis (a sorted set of
 * ids by due time, a hash per message), and one Lua script takes what is due *and* publishes it
 * (bus/lua.h), so a message is delivered once across every node, whichever node's check finds
 * it first. The node that took it then sends its FCM pushes. Commands come back as JSON on the
 * caller's worker (hr_bus_command). */
#ifndef HR_DELAYED_REDIS_H
#define HR_DELAYED_REDIS_H

#include "api/publish_body.h"
#include "bus/bus.h"
#include "core/config.h"

typedef struct hr_delayed_redis_s hr_delayed_redis_t;

/* Before the bus starts: registers the scripts. */
hr_delayed_redis_t *hr_delayed_redis_new(hr_bus_t *bus, const hr_config_t *config);
void hr_delayed_redis_free(hr_delayed_redis_t *redis);

/* Reply: the id, or -1 when --delayed-max messages are waiting. */
hr_bus_cmd_t *hr_delayed_redis_add(hr_delayed_redis_t *redis, const char *const *names,
                                   const size_t *lens, size_t n, const hr_pub_body_t *body,
                                   int64_t due_ms);
/* Reply: [count, [id, due, topics (JSON text), event], ...]. */
hr_bus_cmd_t *hr_delayed_redis_list(hr_delayed_redis_t *redis, size_t limit);
/* Reply: 1 when it was waiting (and now is not), else 0. */
hr_bus_cmd_t *hr_delayed_redis_cancel(hr_delayed_redis_t *redis, uint64_t id);
/* Takes and publishes what is due. Reply: a flat list, seven per message published: topic,
 * id, event, data, binary, fcm mode, push fields (JSON text or ""). */
hr_bus_cmd_t *hr_delayed_redis_take(hr_delayed_redis_t *redis);

#endif
