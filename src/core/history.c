#include <stdlib.h>
#include <string.h>

#include "core/history.h"

size_t hr_history_cost(size_t event_len, size_t data_len)
{
    return sizeof(hr_msg_t) + event_len + 1 + data_len + 1 + 2 * sizeof(hr_msg_t *) + 16;
}

static size_t msg_cost(const hr_msg_t *msg)
{
    return hr_history_cost(strlen(msg->event), msg->data_len);
}

void hr_history_init(hr_history_t *hist, size_t max_count)
{
    memset(hist, 0, sizeof *hist);
    hist->max_count = max_count;
}

void hr_history_charge_to(hr_history_t *hist, hr_history_budget_t *budget, size_t max_bytes,
                          size_t fixed_bytes)
{
    hist->budget = budget;
    hist->max_bytes = max_bytes;
    hist->fixed_bytes = fixed_bytes;
}

void hr_history_budget_init(hr_history_budget_t *budget)
{
    memset(budget, 0, sizeof *budget);
    hr_list_init(&budget->order);
}

/* Adds (sign 1) or takes back (sign -1) what `msg` costs, with the fixed cost when the ring
 * becomes non-empty or empty. */
static void charge(hr_history_t *hist, hr_msg_t *msg, int sign)
{
    size_t bytes = msg_cost(msg) + (hist->count == 0 ? hist->fixed_bytes : 0);
    if (sign > 0) {
        hist->bytes += bytes;
    } else {
        hist->bytes -= bytes;
    }
    if (!hist->budget) return;
    if (sign > 0) {
        hist->budget->bytes += bytes;
        hist->budget->messages++;
        hr_list_push(&hist->budget->order, &msg->hist_link);
    } else {
        hist->budget->bytes -= bytes;
        hist->budget->messages--;
        hr_list_remove(&msg->hist_link);
    }
}

void hr_history_drop_oldest(hr_history_t *hist)
{
    if (!hist->count) return;
    hr_msg_t *oldest = hist->ring[hist->head];
    if (oldest->id > hist->floor_id) hist->floor_id = oldest->id;
    hist->head = (hist->head + 1) % hist->capacity;
    hist->count--;
    charge(hist, oldest, -1);
    hr_msg_unref(oldest);
}

void hr_history_clear(hr_history_t *hist)
{
    while (hist->count)
        hr_history_drop_oldest(hist);
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
    if (hist->max_count == 0 ||
        (hist->max_bytes && msg_cost(msg) + hist->fixed_bytes > hist->max_bytes)) {
        if (msg->id > hist->floor_id) hist->floor_id = msg->id;
        hr_msg_unref(msg);
        return 0;
    }
    if (hist->count == hist->capacity && hist->capacity < hist->max_count && grow(hist) != 0)
        return -1;
    if (hist->count == hist->capacity) hr_history_drop_oldest(hist);
    charge(hist, msg, 1); /* before count++: the fixed cost goes with the first message */
    hist->ring[(hist->head + hist->count) % hist->capacity] = msg;
    hist->count++;
    while (hist->max_bytes && hist->bytes > hist->max_bytes && hist->count > 1)
        hr_history_drop_oldest(hist);
    return 0;
}

size_t hr_history_expire(hr_history_t *hist, int64_t cutoff_ms)
{
    size_t dropped = 0;
    while (hist->count && hist->ring[hist->head]->time_ms < cutoff_ms) {
        hr_history_drop_oldest(hist);
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
