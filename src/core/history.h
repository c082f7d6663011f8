/* A topic's recent messages: a ring of message references in id order, bounded by count, age
 * and bytes, and charged to a budget every history of a broker shares. Pure data structure (no
 * locking, no I/O): the broker serialises access. */
#ifndef HR_HISTORY_H
#define HR_HISTORY_H

#include <stddef.h>
#include <stdint.h>

#include "core/list.h"
#include "core/msg.h"

/* Shared by every history of one broker: the bytes they hold, and every held message in the
 * order it was pushed (hr_msg_t.hist_link), so the oldest held message anywhere is the head.
 * The head is always the oldest message of its own ring too, since each ring is in push order. */
typedef struct hr_history_budget_s {
    hr_list_t order;    /* held messages, oldest first */
    size_t bytes;       /* charged by every history: messages plus per-topic fixed cost */
    size_t messages;    /* held in all */
    uint64_t evictions; /* messages the broker dropped to stay within its budget */
} hr_history_budget_t;

typedef struct hr_history_s {
    hr_msg_t **ring;             /* capacity slots; grows by doubling up to max_count */
    size_t capacity;             /* allocated slots */
    size_t head;                 /* index of the oldest message */
    size_t count;                /* messages held */
    size_t max_count;            /* limit; 0 keeps nothing */
    uint64_t floor_id;           /* highest id dropped from this ring (0 if none) */
    hr_history_budget_t *budget; /* charged as messages come and go; NULL = none */
    size_t bytes;                /* charged by this ring (fixed_bytes included while non-empty) */
    size_t max_bytes;            /* per-topic cap: the oldest go past it; 0 = none */
    size_t fixed_bytes;          /* what holding anything costs (topic, ring): charged once */
} hr_history_t;

/* What one held message is charged: the message block (struct, event, data), its ring slot
 * with room for doubling, and the allocator's header. */
size_t hr_history_cost(size_t event_len, size_t data_len);

void hr_history_init(hr_history_t *hist, size_t max_count);
/* Charges `hist` to `budget` and caps it at `max_bytes` (0 = no cap); before any push. */
void hr_history_charge_to(hr_history_t *hist, hr_history_budget_t *budget, size_t max_bytes,
                          size_t fixed_bytes);
void hr_history_budget_init(hr_history_budget_t *budget);
/* Drops every reference held. */
void hr_history_clear(hr_history_t *hist);

/* Takes ownership of one reference to `msg` (ids must increase). When full (count or bytes),
 * the oldest messages are dropped; a message over max_bytes alone is not kept (it raises the
 * floor). Returns 0, or -1 on allocation failure (msg is then not taken). */
int hr_history_push(hr_history_t *hist, hr_msg_t *msg);

/* Drops the oldest held message (raising the floor). No-op when empty. */
void hr_history_drop_oldest(hr_history_t *hist);

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
