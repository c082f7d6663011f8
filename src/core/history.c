#include <stdlib.h>

#include "core/history.h"

void hr_history_init(hr_history_t *hist, size_t max_count)
{
    hist->ring = NULL;
    hist->capacity = 0;
    hist->head = 0;
    hist->count = 0;
    hist->max_count = max_count;
    hist->floor_id = 0;
}

static void drop_oldest(hr_history_t *hist)
{
    hr_msg_t *oldest = hist->ring[hist->head];
    if (oldest->id > hist->floor_id) hist->floor_id = oldest->id;
    hist->head = (hist->head + 1) % hist->capacity;
    hist->count--;
    hr_msg_unref(oldest);
}

void hr_history_clear(hr_history_t *hist)
{
    while (hist->count)
        drop_oldest(hist);
    free(hist->ring);
    hist->ring = NULL;
    hist->capacity = 0;
    hist->head = 0;
}

/* Grows geometrically so a topic that sees three messages does not pay for a full ring. */
static int grow(hr_history_t *hist)
{
    size_t capacity = hist->capacity ? hist->capacity * 2 : 8;
    if (capacity > hist->max_count) capacity = hist->max_count;
    hr_msg_t **ring = malloc(capacity * sizeof *ring);
    if (!ring) return -1;
    for (size_t i = 0; i < hist->count; i++)
        ring[i] = hr_history_at(hist, i);
    free(hist->ring);
    hist->ring = ring;
    hist->capacity = capacity;
    hist->head = 0;
    return 0;
}

int hr_history_push(hr_history_t *hist, hr_msg_t *msg)
{
    if (hist->max_count == 0) {
        if (msg->id > hist->floor_id) hist->floor_id = msg->id;
        hr_msg_unref(msg);
        return 0;
    }
    if (hist->count == hist->capacity && hist->capacity < hist->max_count && grow(hist) != 0)
        return -1;
    if (hist->count == hist->capacity) drop_oldest(hist);
    hist->ring[(hist->head + hist->count) % hist->capacity] = msg;
    hist->count++;
    return 0;
}

size_t hr_history_expire(hr_history_t *hist, int64_t cutoff_ms)
{
    size_t dropped = 0;
    while (hist->count && hist->ring[hist->head]->time_ms < cutoff_ms) {
        drop_oldest(hist);
        dropped++;
    }
    return dropped;
}

/* Index of the first message with id > since (binary search: ids increase along the ring). */
static size_t first_after(const hr_history_t *hist, uint64_t since)
{
    size_t lo = 0, hi = hist->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (hr_history_at(hist, mid)->id <= since)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

size_t hr_history_count_since(const hr_history_t *hist, uint64_t since)
{
    return hist->count - first_after(hist, since);
}

void hr_history_each_since(const hr_history_t *hist, uint64_t since, size_t limit,
                           void (*fn)(hr_msg_t *msg, void *arg), void *arg)
{
    for (size_t i = first_after(hist, since); i < hist->count && limit; i++, limit--)
        fn(hr_history_at(hist, i), arg);
}
