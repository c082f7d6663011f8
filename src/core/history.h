/* A topic's recent messages: a ring of message references in id order, bounded by count and
 * age. Pure data structure (no locking, no I/O): the broker serialises access. */
#ifndef HR_HISTORY_H
#define HR_HISTORY_H

#include <stddef.h>
#include <stdint.h>

#include "core/msg.h"

typedef struct hr_history_s {
    hr_msg_t **ring;   /* capacity slots; grows by doubling up to max_count */
    size_t capacity;   /* allocated slots */
    size_t head;       /* index of the oldest message */
    size_t count;      /* messages held */
    size_t max_count;  /* limit; 0 keeps nothing */
    uint64_t floor_id; /* highest id dropped from this ring (0 if none) */
} hr_history_t;

void hr_history_init(hr_history_t *hist, size_t max_count);
/* Drops every reference held. */
void hr_history_clear(hr_history_t *hist);

/* Takes ownership of one reference to `msg` (ids must increase). When full, the oldest message is
 * dropped. Returns 0, or -1 on allocation failure (msg is then not taken). */
int hr_history_push(hr_history_t *hist, hr_msg_t *msg);

/* Drops messages published before `cutoff_ms`. Returns how many were dropped. */
size_t hr_history_expire(hr_history_t *hist, int64_t cutoff_ms);

/* Number of held messages with id > since. */
size_t hr_history_count_since(const hr_history_t *hist, uint64_t since);

/* Calls `fn` for up to `limit` messages with id > since, oldest first. */
void hr_history_each_since(const hr_history_t *hist, uint64_t since, size_t limit,
                           void (*fn)(hr_msg_t *msg, void *arg), void *arg);

static inline hr_msg_t *hr_history_at(const hr_history_t *hist, size_t i)
{
    return hist->ring[(hist->head + i) % hist->capacity];
}

#endif
