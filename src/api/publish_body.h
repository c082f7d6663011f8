/* Publish request bodies: JSON {"event","data","id","retry"} or raw bytes. Pure (no I/O), so
 * it is unit-tested and fuzzed on its own. */
#ifndef HR_PUBLISH_BODY_H
#define HR_PUBLISH_BODY_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define HR_EVENT_MAX_LEN 128
#define HR_DELAY_MAX_MS  (30ll * 86400 * 1000) /* deliver_at at most 30 days ahead */

/* FCM push per publish (docs/PUSH.md): to recipients that are offline, always, or never. */
enum hr_fcm_mode { HR_FCM_DEFAULT = 0, HR_FCM_NEVER, HR_FCM_OFFLINE, HR_FCM_ALWAYS };

typedef struct hr_pub_body_s {
    const char *event; /* NULL when none */
    size_t event_len;
    const char *data; /* payload bytes */
    size_t data_len;
    uint32_t retry_ms;     /* 0 when none */
    uint64_t want_id;      /* 0 when none */
    json_t *json;          /* keeps event/data alive; owned */
    char *data_json;       /* data given as a non-string JSON value, serialised; owned */
    enum hr_fcm_mode fcm;  /* "fcm": never, offline, always; DEFAULT when absent */
    json_t *push;          /* "push": {title, body, collapse_key, ttl, priority, data}, checked;
                              borrowed from json */
    int64_t deliver_at_ms; /* "deliver_at" or "delay": unix ms; 0 = now */
} hr_pub_body_t;

/* "never" | "offline" | "always" → the mode; 0 when none of them. */
enum hr_fcm_mode hr_fcm_mode_parse(const char *text, size_t len);
/* A push object per docs/PUSH.md (sizes within FCM's). 0, or -1 with a message in err. */
int hr_push_fields_check(json_t *push, char *err, size_t err_size);
/* "deliver_at": RFC 3339 (2026-12-02T10:00:00Z, fractions, offsets) or unix ms digits; "delay":
 * ms. Either must land within HR_DELAY_MAX_MS of now_ms; a past time means now. 0, or -1. */
int hr_deliver_at_parse(const char *text, size_t len, int64_t now_ms, int64_t *out_ms);
int hr_delay_parse(const char *text, size_t len, int64_t now_ms, int64_t *out_ms);

/* Event names: 1..128 bytes, no control characters (CR or LF would break SSE framing). */
int hr_event_name_valid(const char *name, size_t len);

/* Parses a JSON body. "data" is required: a string is taken as is, any other JSON value is
 * carried as its compact serialisation. Returns 0, or -1 with a message in `err`. */
int hr_pub_body_parse_json(const char *body, size_t len, hr_pub_body_t *out, char *err,
                           size_t err_size);
/* The same from an already parsed object (borrowed; `out->json` stays NULL). */
int hr_pub_body_from_json(json_t *root, hr_pub_body_t *out, char *err, size_t err_size);
void hr_pub_body_free(hr_pub_body_t *body);

#endif
