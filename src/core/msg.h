/* A published message: immutable after publish, reference counted, shared by every worker.
 * History holds one reference, each worker inbox entry and each queued write one more.
 * Transports cache their wire encoding on the message (hr_msg_encoding) so a fan-out to
 * 10k subscribers encodes once and costs a reference bump per write. */
#ifndef HR_MSG_H
#define HR_MSG_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "core/list.h"

typedef struct hr_topic_s hr_topic_t;

enum hr_encoding_kind {
    HR_ENC_SSE,             /* SSE event frame */
    HR_ENC_SSE_JSON,        /* SSE frame, unnamed, data = the message as JSON (?format=json) */
    HR_ENC_WS_TEXT,         /* WebSocket text frame: herald.v1 JSON message */
    HR_ENC_WS_TEXT_DEFLATE, /* the same, compressed (permessage-deflate, no context) */
    HR_ENC_WS_BINARY,       /* WebSocket binary frame with the herald.v1 binary header */
    HR_ENC_MAX
};

typedef struct hr_encoded_s {
    size_t len;   /* bytes in `bytes` */
    char bytes[]; /* wire form, not NUL-terminated */
} hr_encoded_t;

typedef struct hr_msg_s {
    atomic_uint refs;       /* owners; freed at zero */
    uint64_t id;            /* broker-wide, increasing; 0 until published */
    int64_t time_ms;        /* publish time, unix ms */
    uint64_t born_ns;       /* made on this node, monotonic (the delivery-latency histogram) */
    hr_topic_t *topic;      /* holds a topic reference once published */
    const char *topic_name; /* borrowed from topic, NUL-terminated */
    char *event;            /* NUL-terminated; "" means none */
    char *data;             /* payload bytes, NUL-terminated for safety */
    size_t data_len;        /* bytes in data */
    uint32_t retry_ms;      /* SSE retry hint; 0 means none */
    int binary;             /* data is not UTF-8 text (or was sent as binary) */
    uint64_t delayed_id;    /* a delayed message (src/delay) this one retires when stored; 0 */
    hr_list_t hist_link;    /* in the history budget's order while a history holds it */
    _Atomic(hr_encoded_t *) encoded[HR_ENC_MAX]; /* per-transport cache, set once */
} hr_msg_t;

/* Copies event and data into one allocation. The message is binary when `binary` is set or
 * the data is not valid UTF-8. Returns NULL on allocation failure. refs = 1. */
hr_msg_t *hr_msg_new(const char *event, size_t event_len, const char *data, size_t data_len,
                     uint32_t retry_ms, int binary);

static inline hr_msg_t *hr_msg_ref(hr_msg_t *msg)
{
    atomic_fetch_add_explicit(&msg->refs, 1, memory_order_relaxed);
    return msg;
}

void hr_msg_unref(hr_msg_t *msg);

/* qsort comparator for an array of hr_msg_t pointers (or of structs whose first member is
 * one), ascending by id. */
int hr_msg_cmp_id(const void *a, const void *b);

typedef hr_encoded_t *(*hr_encode_fn)(const hr_msg_t *msg);

/* Returns the cached encoding of `kind`, building it with `encode` on first use. Safe from any
 * thread: two racing builders keep the first and free the second. NULL on allocation failure. */
const hr_encoded_t *hr_msg_encoding(hr_msg_t *msg, enum hr_encoding_kind kind, hr_encode_fn encode);

/* Called when the last reference to a published message goes; implemented by the broker, which
 * owns topics. */
void hr_topic_release(hr_topic_t *topic);

/* Called with the bytes a published message's cached encodings take (negative when they are
 * freed), so the broker's history budget sees them; implemented by the broker. Any thread. */
void hr_topic_charge_encoded(hr_topic_t *topic, long long bytes);

#endif
