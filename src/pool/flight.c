/* Flights; see flight.h. */
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "pool/flight.h"

static void slot_run(hr_post_t *post);

hr_flight_t *hr_flight_new(hr_broker_t *broker, unsigned workers)
{
    hr_flight_t *flight = calloc(1, sizeof *flight + workers * sizeof(flight_slot_t));
    if (!flight) return NULL;
    atomic_init(&flight->refs, 1);
    pthread_mutex_init(&flight->lock, NULL);
    flight->broker = broker;
    flight->nslots = workers;
    for (unsigned i = 0; i < workers; i++) {
        flight_slot_t *slot = &flight->slots[i];
        slot->post.run = slot_run;
        slot->flight = flight;
        atomic_init(&slot->queued, 0);
        atomic_init(&slot->nwatchers, 0);
        hr_list_init(&slot->watchers);
    }
    return flight;
}

void hr_flight_ref(hr_flight_t *flight)
{
    atomic_fetch_add(&flight->refs, 1);
}

void hr_flight_unref(hr_flight_t *flight)
{
    if (!flight || atomic_fetch_sub(&flight->refs, 1) != 1) return;
    for (hr_flight_chunk_t *chunk = flight->head, *next; chunk; chunk = next) {
        next = chunk->next;
        free(chunk);
    }
    free(flight->fallback);
    pthread_mutex_destroy(&flight->lock);
    free(flight);
}

int hr_flight_append(hr_flight_t *flight, const char *bytes, size_t len)
{
    hr_flight_chunk_t *chunk = malloc(sizeof *chunk + len);
    if (!chunk) return -1;
    chunk->next = NULL;
    chunk->len = len;
    memcpy(chunk->bytes, bytes, len);
    pthread_mutex_lock(&flight->lock);
    if (flight->tail)
        flight->tail->next = chunk;
    else
        flight->head = chunk;
    flight->tail = chunk;
    flight->len += len;
    pthread_mutex_unlock(&flight->lock);
    return 0;
}

/* One post per worker at a time: a worker that has not run the last one yet will see this
 * change too when it does. The post holds a reference until it ran. */
void hr_flight_notify(hr_flight_t *flight)
{
    for (unsigned i = 0; i < flight->nslots; i++) {
        flight_slot_t *slot = &flight->slots[i];
        if (!atomic_load(&slot->nwatchers) || atomic_exchange(&slot->queued, 1)) continue;
        hr_flight_ref(flight);
        if (hr_broker_post(flight->broker, i, &slot->post) != 0) {
            atomic_store(&slot->queued, 0);
            hr_flight_unref(flight);
            hr_error("pool.oom", "what=flight_post");
        }
    }
}

char *hr_flight_concat(hr_flight_t *flight, size_t *len)
{
    pthread_mutex_lock(&flight->lock);
    char *all = malloc(flight->len + 1);
    size_t at = 0;
    for (const hr_flight_chunk_t *chunk = flight->head; all && chunk; chunk = chunk->next) {
        memcpy(all + at, chunk->bytes, chunk->len);
        at += chunk->len;
    }
    pthread_mutex_unlock(&flight->lock);
    if (all) all[at] = '\0';
    *len = at;
    return all;
}

static void hand_over(hr_flight_t *flight, hr_flight_watch_t *watch, enum hr_flight_phase phase,
                      const hr_flight_chunk_t *head, const hr_flight_chunk_t *tail)
{
    const hr_flight_chunk_t *fresh =
        watch->last ? (watch->last == tail ? NULL : watch->last->next) : head;
    if (fresh) watch->last = tail;
    watch->progress(watch, flight, phase, fresh, tail);
}

static void slot_run(hr_post_t *post)
{
    flight_slot_t *slot = hr_container_of(post, flight_slot_t, post);
    hr_flight_t *flight = slot->flight;
    atomic_store(&slot->queued, 0); /* changes from now on post again */
    pthread_mutex_lock(&flight->lock);
    enum hr_flight_phase phase = flight->phase;
    const hr_flight_chunk_t *head = flight->head, *tail = flight->tail;
    pthread_mutex_unlock(&flight->lock);
    hr_list_t *list = &slot->watchers;
    for (hr_list_t *it = list->next, *next; it != list; it = next) {
        next = it->next; /* a watcher may unwatch itself */
        hand_over(flight, hr_container_of(it, hr_flight_watch_t, link), phase, head, tail);
    }
    hr_flight_unref(flight);
}

void hr_flight_watch(hr_flight_t *flight, unsigned worker, hr_flight_watch_t *watch)
{
    flight_slot_t *slot = &flight->slots[worker];
    watch->last = NULL;
    hr_list_push(&slot->watchers, &watch->link);
    atomic_fetch_add(&slot->nwatchers, 1);
    pthread_mutex_lock(&flight->lock); /* after the count: a change from now on posts */
    enum hr_flight_phase phase = flight->phase;
    const hr_flight_chunk_t *head = flight->head, *tail = flight->tail;
    pthread_mutex_unlock(&flight->lock);
    if (phase != HR_FLIGHT_WAITING) hand_over(flight, watch, phase, head, tail);
}

void hr_flight_unwatch(hr_flight_t *flight, unsigned worker, hr_flight_watch_t *watch)
{
    hr_list_remove(&watch->link);
    atomic_fetch_sub(&flight->slots[worker].nwatchers, 1);
    hr_flight_unref(flight);
}
