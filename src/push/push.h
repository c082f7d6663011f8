/* Offline delivery (docs/PUSH.md): after a publish, which devices get an FCM push. A publish's
 * recipients are the user of a "~user:ID" topic, or the users whose devices registered for the
 * topic; the policy (the publish's "fcm", else the first --fcm-policy pattern that matches the
 * topic, else --fcm-default) says never, only those without a live connection (offline), or
 * always. The FCM request is built once per publish and per platform, with the publish's
 * "push" fields (title, body, collapse key, ttl, priority, data). */
#ifndef HR_PUSH_H
#define HR_PUSH_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "api/publish_body.h"
#include "core/config.h"
#include "presence/presence.h"
#include "push/devices.h"
#include "push/fcm.h"

#define HR_PUSH_TARGETS_MAX 100000 /* devices one publish may push to */

typedef struct hr_push_s hr_push_t;

/* Devices always (the API manages them even without FCM); FCM when --fcm-credentials is set.
 * NULL with why in err. */
hr_push_t *hr_push_new(const hr_config_t *config, hr_store_t *store, hr_presence_t *presence,
                       char *err, size_t err_size);
/* Cluster mode, before the bus starts: devices live in Redis (push/devices_redis.h). */
int hr_push_use_redis(hr_push_t *push, struct hr_bus_s *bus);
/* NULL outside cluster mode. */
struct hr_devices_redis_s *hr_push_devices_redis(hr_push_t *push);
int hr_push_start(hr_push_t *push);
void hr_push_free(hr_push_t *push);

hr_devices_t *hr_push_devices(hr_push_t *push);
hr_fcm_t *hr_push_fcm(hr_push_t *push); /* NULL without credentials */

/* One published message, as push sees it. */
typedef struct hr_push_msg_s {
    const char *topic;
    size_t topic_len;
    uint64_t id;
    const char *event;
    size_t event_len;
    const char *data;
    size_t data_len;
    int binary;
    enum hr_fcm_mode mode; /* HR_FCM_DEFAULT: the policy */
    json_t *fields;        /* the publish's "push" object, or NULL */
    unsigned worker;       /* the calling worker (cluster mode answers there) */
} hr_push_msg_t;

/* Queues the pushes a publish calls for; returns how many (cluster mode: 0, they follow the
 * recipients' lookup in Redis). Any worker. */
size_t hr_push_published(hr_push_t *push, const hr_push_msg_t *msg);

/* Worker 0, once a second: the stale-token job (devices not refreshed within --fcm-token-ttl
 * are removed), at most once a minute. */
void hr_push_tick(hr_push_t *push);

/* {"devices":{live,users,stale,removed_stale,removed_invalid}, "fcm":{...}|null} */
json_t *hr_push_stats(hr_push_t *push);

#endif
