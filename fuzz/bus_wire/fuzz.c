/* libFuzzer target: what a herald node reads from Redis (cluster mode) — pub/sub payloads, and
 * the --redis URL. Another node or anyone with access to the Redis can write these bytes, so the
 * decoder must reject garbage cleanly: NULL or a message whose lengths are exactly the input's. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bus/wire.h"

/* Messages from the decoder have no topic; the broker's release and charge are never reached. */
void hr_topic_release(hr_topic_t *topic)
{
    (void)topic;
    abort();
}

void hr_topic_charge_encoded(hr_topic_t *topic, long long bytes)
{
    (void)topic;
    (void)bytes;
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    hr_msg_t *msg = hr_bus_payload_decode((const char *)data, size);
    if (msg) {
        size_t event_len = strlen(msg->event);
        if (msg->id == 0 || event_len + msg->data_len > size) abort();
        if (memcmp(msg->data, data + size - msg->data_len, msg->data_len) != 0) abort();
        hr_msg_unref(msg);
    }
    char url[512], err[128];
    size_t n = size < sizeof url - 1 ? size : sizeof url - 1;
    memcpy(url, data, n);
    url[n] = '\0';
    hr_redis_url_t parsed;
    if (hr_redis_url_parse(url, &parsed, err, sizeof err) == 0) {
        if (!parsed.path[0] && (!parsed.host[0] || parsed.port < 1 || parsed.port > 65535)) abort();
    } else if (!err[0]) {
        abort();
    }
    return 0;
}
