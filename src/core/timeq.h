/* Many timeouts of few distinct lengths (parked long polls): one FIFO list per length in whole
 * seconds, so entries of one list expire in the order they were added, and one uv_timer set to
 * the earliest list head. Adding and removing are O(1): no heap, no timer per entry, so 10k
 * parked requests cost 10k list links. */
#ifndef HR_TIMEQ_H
#define HR_TIMEQ_H

#include <stdint.h>
#include <uv.h>

#include "core/list.h"

#define HR_TIMEQ_MAX_S 300 /* longest timeout a queue takes */

typedef struct hr_timeq_entry_s hr_timeq_entry_t;
typedef void (*hr_timeq_fn)(hr_timeq_entry_t *entry);

struct hr_timeq_entry_s {
    hr_list_t link;       /* in lists[seconds]; self-linked when not queued */
    uint64_t deadline_ms; /* loop time */
    hr_timeq_fn expire;   /* called once, after the entry left the queue */
};

typedef struct hr_timeq_s {
    uv_timer_t timer;
    uint64_t armed_ms; /* deadline the timer is set for; 0 = not set */
    hr_list_t lists[HR_TIMEQ_MAX_S + 1];
} hr_timeq_t;

void hr_timeq_init(uv_loop_t *loop, hr_timeq_t *queue);
/* Before first use of an entry, so that removing it is always safe. */
void hr_timeq_entry_init(hr_timeq_entry_t *entry);
/* Queues `entry` to expire `seconds` (1..HR_TIMEQ_MAX_S) after now. */
void hr_timeq_add(hr_timeq_t *queue, hr_timeq_entry_t *entry, unsigned seconds, hr_timeq_fn expire);
/* Idempotent. */
void hr_timeq_remove(hr_timeq_entry_t *entry);
/* Expires every entry due at `now_ms`; returns how many. The timer calls it; tests may too. */
size_t hr_timeq_run(hr_timeq_t *queue, uint64_t now_ms);
void hr_timeq_close(hr_timeq_t *queue);

#endif
