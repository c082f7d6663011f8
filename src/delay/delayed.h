/* Delayed messages (docs/PUSH.md): a publish with `deliver_at` or `delay` is kept until then,
 * then published as if it had just arrived (live delivery and FCM per its policy). Kept in
 * SQLite when the store keeps them (a row each, written before the publisher hears 202; the row
 * goes in the same transaction that stores the message it becomes, so it is delivered once,
 * even across kill -9), else in memory only. Worker 0 checks for due ones every 100 ms.
 *
 * Bounds: --delayed-max messages and --delayed-max-bytes of them at once (507 above); at most
 * 30 days ahead (HR_DELAY_MAX_MS). */
#ifndef HR_DELAYED_H
#define HR_DELAYED_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "api/publish_body.h"
#include "store/store.h"

typedef struct hr_delayed_s hr_delayed_t;

/* One delayed publish, owned by whoever took it. */
typedef struct hr_delayed_entry_s {
    uint64_t id;
    int64_t due_ms;
    char **topics;
    size_t *lens, n;
    char *event;
    size_t event_len;
    char *data;
    size_t data_len;
    uint32_t retry_ms;
    int binary;
    enum hr_fcm_mode fcm;
    json_t *push; /* or NULL */
    size_t bytes;
} hr_delayed_entry_t;

hr_delayed_t *hr_delayed_new(hr_store_t *store, size_t max_count, size_t max_bytes);
/* Start-up: the store's schedule. */
int hr_delayed_load(hr_delayed_t *delayed);
void hr_delayed_free(hr_delayed_t *delayed);

/* Keeps a publish until due_ms. Returns 0 with its id, HR_ELIMIT (over the bounds), HR_ENOMEM
 * or HR_EINVAL (the store refused it). */
int hr_delayed_add(hr_delayed_t *delayed, const char *const *topics, const size_t *lens, size_t n,
                   const hr_pub_body_t *body, int binary, int64_t due_ms, uint64_t *id);
/* 1 when it was scheduled (and now is not), 0 when unknown or already delivered. */
int hr_delayed_cancel(hr_delayed_t *delayed, uint64_t id);
/* {"delayed":[{"id","deliver_at","topics","event","bytes"}], "count"} up to `limit`, soonest
 * first. */
json_t *hr_delayed_list(hr_delayed_t *delayed, size_t limit);
/* The next entry due at now_ms, taken out (the caller ends it with hr_delayed_done); NULL
 * when none. */
hr_delayed_entry_t *hr_delayed_take_due(hr_delayed_t *delayed, int64_t now_ms);
void hr_delayed_done(hr_delayed_entry_t *entry);
void hr_delayed_entry_free(hr_delayed_entry_t *entry); /* its contents */

#endif
