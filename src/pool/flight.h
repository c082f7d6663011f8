/* A flight: one upstream call's answer as it arrives, shared by every request waiting on it
 * (single-flight, docs/POOLS.md). The upstream thread appends chunks and ends it; each worker
 * that has watchers gets one coalesced post per change and hands its watchers what is new.
 * Chunks, once linked, never move or change, so a worker reads them without the lock after
 * taking a snapshot of the tail under it. Reference counted: the pools' table or the upstream
 * call, each watcher and each queued post hold one. */
#ifndef HR_POOL_FLIGHT_H
#define HR_POOL_FLIGHT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "core/broker.h"
#include "core/list.h"

enum hr_flight_phase {
    HR_FLIGHT_WAITING,   /* nothing known yet */
    HR_FLIGHT_STREAMING, /* a 2xx text/event-stream: chunks go out as they come */
    HR_FLIGHT_DONE,      /* the whole answer is here (stored, unless `stored` says not) */
    HR_FLIGHT_FAILED     /* no usable answer: status and reason say why */
};

typedef struct hr_flight_chunk_s hr_flight_chunk_t;
struct hr_flight_chunk_s {
    hr_flight_chunk_t *next;
    size_t len;
    char bytes[];
};

typedef struct hr_flight_s hr_flight_t;

/* A request waiting on a flight; embedded in the request's state. Worker thread only. */
typedef struct hr_flight_watch_s hr_flight_watch_t;
struct hr_flight_watch_s {
    hr_list_t link;
    const hr_flight_chunk_t *last; /* the last chunk handed over; NULL = none yet */
    /* Called on the watcher's worker when the flight changed; `fresh` is the first chunk not
     * yet handed over (walk ->next up to and including `tail`; NULL when none). */
    void (*progress)(hr_flight_watch_t *watch, hr_flight_t *flight, enum hr_flight_phase phase,
                     const hr_flight_chunk_t *fresh, const hr_flight_chunk_t *tail);
};

typedef struct flight_slot_s {
    hr_post_t post;
    hr_flight_t *flight;
    atomic_int queued;
    atomic_size_t nwatchers;
    hr_list_t watchers; /* worker thread only */
} flight_slot_t;

struct hr_flight_s {
    atomic_size_t refs;
    pthread_mutex_t lock; /* head, tail, len, phase and what the phase tells */
    hr_flight_chunk_t *head, *tail;
    size_t len;
    enum hr_flight_phase phase;
    int status;            /* FAILED: the HTTP status to answer (502, 504, 503) */
    char reason[160];      /* FAILED: why, for the client and the log */
    char content_type[64]; /* STREAMING and DONE */
    size_t members;        /* DONE: the key's members after this answer was added */
    char *fallback;        /* FAILED: a member to answer with instead (or NULL) */
    size_t fallback_len;
    char fallback_type[64];
    hr_broker_t *broker;
    unsigned nslots;
    flight_slot_t slots[]; /* one per worker */
};

hr_flight_t *hr_flight_new(hr_broker_t *broker, unsigned workers);
void hr_flight_ref(hr_flight_t *flight);
void hr_flight_unref(hr_flight_t *flight);

/* Upstream side (any thread): appends bytes (copied); sets the phase (with what it tells,
 * under the lock, by the caller through hr_flight_lock); wakes the workers with watchers. */
int hr_flight_append(hr_flight_t *flight, const char *bytes, size_t len);
void hr_flight_notify(hr_flight_t *flight);
/* The whole answer so far, concatenated (caller frees); NULL on allocation failure. */
char *hr_flight_concat(hr_flight_t *flight, size_t *len);

/* Worker side: starts watching on `worker` and hands over what is already there at once. */
void hr_flight_watch(hr_flight_t *flight, unsigned worker, hr_flight_watch_t *watch);
/* Stops watching (the client left, or the answer is complete). Drops the watcher's ref. */
void hr_flight_unwatch(hr_flight_t *flight, unsigned worker, hr_flight_watch_t *watch);

#endif
