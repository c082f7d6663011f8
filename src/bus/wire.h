/* What herald nodes put on Redis, as bytes: the pub/sub payload, stream entries, stream ids and
 * the --redis URL. Pure functions (no I/O), so they are unit tested and fuzzable on their own.
 *
 * Pub/sub payload: "<id> <time_ms> <retry_ms> <binary> <event_len>\n" then the event name
 * bytes, then the data bytes (the rest). Stream entry fields: p (the topic's previous id: the
 * floor once this entry is the oldest left), t, e, r, b, d. Stream ids are "<id>-0". */
#ifndef HR_BUS_WIRE_H
#define HR_BUS_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "core/msg.h"

/* A decoded payload or entry: a new message (refs = 1, no topic yet), or NULL when malformed
 * or out of memory. */
hr_msg_t *hr_bus_payload_decode(const char *buf, size_t len);

typedef struct hr_bus_field_s {
    const char *name, *value;
    size_t name_len, value_len;
} hr_bus_field_t;

/* A stream entry; *prev receives its p field. */
hr_msg_t *hr_bus_entry_decode(const char *id, size_t id_len, const hr_bus_field_t *fields,
                              size_t nfields, uint64_t *prev);

/* "<digits>-0" → id. Returns 0 or -1. */
int hr_bus_stream_id_parse(const char *s, size_t len, uint64_t *id);

typedef struct hr_redis_url_s {
    char host[256];     /* "" with a unix socket */
    int port;           /* 6379 by default */
    char path[256];     /* unix socket path, or "" */
    char password[256]; /* "" for none */
    int db;             /* SELECT after connecting; 0 by default */
} hr_redis_url_t;

/* redis://[:password@]host[:port][/db] or unix:///path/to/socket (also unix:/path). Returns 0,
 * or -1 with a reason in `err`. */
int hr_redis_url_parse(const char *url, hr_redis_url_t *out, char *err, size_t err_size);

#endif
