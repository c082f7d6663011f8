#include "core/timeq.h"

static void on_timer(uv_timer_t *timer);

void hr_timeq_init(uv_loop_t *loop, hr_timeq_t *queue)
{
    uv_timer_init(loop, &queue->timer);
    queue->timer.data = queue;
    queue->armed_ms = 0;
    for (size_t i = 0; i <= HR_TIMEQ_MAX_S; i++)
        hr_list_init(&queue->lists[i]);
}

void hr_timeq_entry_init(hr_timeq_entry_t *entry)
{
    hr_list_init(&entry->link);
}

static void arm(hr_timeq_t *queue, uint64_t deadline_ms)
{
    if (queue->armed_ms && queue->armed_ms <= deadline_ms) return;
    uint64_t now = uv_now(queue->timer.loop);
    queue->armed_ms = deadline_ms;
    uv_timer_start(&queue->timer, on_timer, deadline_ms > now ? deadline_ms - now : 0, 0);
}

void hr_timeq_add(hr_timeq_t *queue, hr_timeq_entry_t *entry, unsigned seconds, hr_timeq_fn expire)
{
    if (seconds < 1) seconds = 1;
    if (seconds > HR_TIMEQ_MAX_S) seconds = HR_TIMEQ_MAX_S;
    hr_list_remove(&entry->link);
    entry->deadline_ms = uv_now(queue->timer.loop) + (uint64_t)seconds * 1000u;
    entry->expire = expire;
    hr_list_push(&queue->lists[seconds], &entry->link);
    arm(queue, entry->deadline_ms);
}

void hr_timeq_remove(hr_timeq_entry_t *entry)
{
    /* The timer may then fire for nothing; cheaper than finding the next deadline now. */
    hr_list_remove(&entry->link);
}

size_t hr_timeq_run(hr_timeq_t *queue, uint64_t now_ms)
{
    size_t expired = 0;
    for (size_t i = 1; i <= HR_TIMEQ_MAX_S; i++) {
        hr_list_t *head = &queue->lists[i];
        while (!hr_list_empty(head)) {
            hr_timeq_entry_t *entry = hr_container_of(head->next, hr_timeq_entry_t, link);
            if (entry->deadline_ms > now_ms) break;
            hr_list_remove(&entry->link);
            entry->expire(entry);
            expired++;
        }
    }
    return expired;
}

static uint64_t earliest(const hr_timeq_t *queue)
{
    uint64_t first = 0;
    for (size_t i = 1; i <= HR_TIMEQ_MAX_S; i++) {
        const hr_list_t *head = &queue->lists[i];
        if (hr_list_empty(head)) continue;
        uint64_t deadline = hr_container_of(head->next, hr_timeq_entry_t, link)->deadline_ms;
        if (!first || deadline < first) first = deadline;
    }
    return first;
}

static void on_timer(uv_timer_t *timer)
{
    hr_timeq_t *queue = timer->data;
    queue->armed_ms = 0;
    hr_timeq_run(queue, uv_now(timer->loop));
    uint64_t next = earliest(queue);
    if (next) arm(queue, next);
}

void hr_timeq_close(hr_timeq_t *queue)
{
    if (!uv_is_closing((uv_handle_t *)&queue->timer)) uv_close((uv_handle_t *)&queue->timer, NULL);
}
