#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/msg.h"
#include "core/utf8.h"

hr_msg_t *hr_msg_new(const char *event, size_t event_len, const char *data, size_t data_len,
                     uint32_t retry_ms, int binary)
{
    hr_msg_t *msg = malloc(sizeof *msg + event_len + 1 + data_len + 1);
    if (!msg) return NULL;
    atomic_init(&msg->refs, 1);
    msg->id = 0;
    msg->time_ms = 0;
    msg->born_ns = hr_clock_mono_ns();
    msg->topic = NULL;
    msg->topic_name = "";
    msg->event = (char *)(msg + 1);
    if (event_len) memcpy(msg->event, event, event_len);
    msg->event[event_len] = '\0';
    msg->data = msg->event + event_len + 1;
    if (data_len) memcpy(msg->data, data, data_len);
    msg->data[data_len] = '\0';
    msg->data_len = data_len;
    msg->retry_ms = retry_ms;
    msg->binary = binary || !hr_utf8_valid((const uint8_t *)data, data_len);
    hr_list_init(&msg->hist_link);
    for (int i = 0; i < HR_ENC_MAX; i++)
        atomic_init(&msg->encoded[i], NULL);
    return msg;
}

void hr_msg_unref(hr_msg_t *msg)
{
    if (atomic_fetch_sub_explicit(&msg->refs, 1, memory_order_acq_rel) != 1) return;
    long long encoded = 0;
    for (int i = 0; i < HR_ENC_MAX; i++) {
        hr_encoded_t *enc = atomic_load(&msg->encoded[i]);
        if (enc) encoded += (long long)(sizeof *enc + enc->len);
        free(enc);
    }
    if (msg->topic) {
        if (encoded) hr_topic_charge_encoded(msg->topic, -encoded);
        hr_topic_release(msg->topic);
    }
    free(msg);
}

int hr_msg_cmp_id(const void *a, const void *b)
{
    uint64_t x = (*(hr_msg_t *const *)a)->id, y = (*(hr_msg_t *const *)b)->id;
    return x < y ? -1 : x > y;
}

const hr_encoded_t *hr_msg_encoding(hr_msg_t *msg, enum hr_encoding_kind kind, hr_encode_fn encode)
{
    hr_encoded_t *cached = atomic_load_explicit(&msg->encoded[kind], memory_order_acquire);
    if (cached) return cached;
    hr_encoded_t *built = encode(msg);
    if (!built) return NULL;
    hr_encoded_t *expected = NULL;
    if (atomic_compare_exchange_strong_explicit(&msg->encoded[kind], &expected, built,
                                                memory_order_acq_rel, memory_order_acquire)) {
        if (msg->topic)
            hr_topic_charge_encoded(msg->topic, (long long)(sizeof *built + built->len));
        return built;
    }
    free(built);
    return expected;
}
