/* The one-process presence sink: a topic's joins and leaves are published on its presence
 * stream ("~presence:TOPIC", events herald.join / herald.leave, kept in history like any
 * message, so a resume replays the ones missed), and last-seen times go to the store. */
#include <stdio.h>
#include <string.h>

#include "core/log.h"
#include "presence/presence_sinks.h"

static void local_member(void *arg, const char *topic, size_t topic_len, const char *user,
                         size_t user_len, int joined)
{
    hr_presence_local_t *local = arg;
    char stream[HR_TOPIC_MAX_LEN + 1], data[HR_TOPIC_MAX_LEN + HR_PRESENCE_USER_MAX + 32];
    size_t stream_len = hr_presence_topic(topic, topic_len, stream);
    if (!stream_len) return;
    /* Names are of the topic alphabet: nothing to escape in JSON. */
    int data_len = snprintf(data, sizeof data, "{\"topic\":\"%.*s\",\"user\":\"%.*s\"}",
                            (int)topic_len, topic, (int)user_len, user);
    const char *event = joined ? "herald.join" : "herald.leave";
    hr_publish_t pub = {.topic = stream,
                        .topic_len = stream_len,
                        .event = event,
                        .event_len = strlen(event),
                        .data = data,
                        .data_len = (size_t)data_len};
    uint64_t id;
    int rc = hr_broker_publish(local->broker, &pub, &id);
    if (rc != 0)
        hr_warn("presence.publish_failed", "topic=%.*s user=%.*s event=%s rc=%d", (int)topic_len,
                topic, (int)user_len, user, event, rc);
    else
        hr_debug("presence.member", "topic=%.*s user=%.*s event=%s id=%llu", (int)topic_len, topic,
                 (int)user_len, user, event, (unsigned long long)id);
}

static void local_seen(void *arg, const char *user, size_t len, int64_t unix_ms)
{
    hr_presence_local_t *local = arg;
    if (local->store && local->store->ops->seen_put)
        local->store->ops->seen_put(local->store, user, len, unix_ms);
}

static int local_seen_read(void *arg, const char *user, size_t len, int64_t *unix_ms)
{
    hr_presence_local_t *local = arg;
    *unix_ms = 0;
    if (!local->store || !local->store->ops->seen_get) return 0;
    return local->store->ops->seen_get(local->store, user, len, unix_ms);
}

hr_presence_t *hr_presence_local_new(hr_presence_local_t *local, const hr_config_t *config)
{
    hr_presence_config_t presence_config = {config->presence_grace_ms,
                                            config->last_seen_interval_ms, local_seen_read, local};
    hr_presence_sink_t sink = {NULL, local_member, local_seen, local};
    return hr_presence_new(&presence_config, &sink);
}
