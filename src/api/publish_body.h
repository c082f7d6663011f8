/* Publish request bodies: JSON {"event","data","id","retry"} or raw bytes. Pure (no I/O), so
 * it is unit-tested and fuzzed on its own. */
#ifndef HR_PUBLISH_BODY_H
#define HR_PUBLISH_BODY_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define HR_EVENT_MAX_LEN 128

typedef struct hr_pub_body_s {
    const char *event; /* NULL when none */
    size_t event_len;
    const char *data; /* payload bytes */
    size_t data_len;
    uint32_t retry_ms; /* 0 when none */
    uint64_t want_id;  /* 0 when none */
    json_t *json;      /* keeps event/data alive; owned */
    char *data_json;   /* data given as a non-string JSON value, serialised; owned */
} hr_pub_body_t;

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
