/* The pools' upstream calls: one thread, one libuv loop, libcurl multi (core/curl_uv.h), so a
 * slow or dead upstream never touches a worker. Each call feeds a flight (pool/flight.h): a
 * 2xx text/event-stream answer goes out chunk by chunk as it arrives; anything else at the
 * end. At most `concurrency` calls per pool at once; more wait in order (bounded by the
 * caller), and one that waited past its timeout fails without being made. */
#ifndef HR_POOL_UPSTREAM_H
#define HR_POOL_UPSTREAM_H

#include <curl/curl.h>
#include <stddef.h>
#include <stdint.h>

#include "core/list.h"
#include "pool/flight.h"
#include "pool/store.h"

typedef struct hr_upstream_s hr_upstream_t;
typedef struct hr_upstream_call_s hr_upstream_call_t;

struct hr_upstream_call_s {
    hr_list_t link;
    hr_flight_t *flight; /* one reference, dropped when the call is freed */
    unsigned pool;
    char *url;
    struct curl_slist *headers;
    char *body; /* POST: sent as is */
    size_t body_len;
    int post;
    int64_t timeout_ms;
    int64_t queued_ms;  /* monotonic */
    int64_t started_ms; /* monotonic; 0 until made */
    char key[272];      /* the pools' store key: "POOL KEY" */
    size_t key_len;
    /* upstream thread */
    hr_upstream_t *up;
    CURL *easy;
    long status;
    int streaming;
    int too_big;
    char content_type[64];
    char error_body[256]; /* the start of a non-2xx answer, for the reason */
    size_t error_len;
};

/* `done` runs on the upstream thread once per call: `status` 0 when the answer is whole and
 * 2xx (it is in the flight), else the HTTP status to answer (502, 504) with `reason`. The
 * call is freed after it returns. */
typedef void (*hr_upstream_done_fn)(void *arg, hr_upstream_call_t *call, int status,
                                    const char *reason);

hr_upstream_t *hr_upstream_new(size_t max_answer, const unsigned *concurrency, unsigned npools,
                               hr_upstream_done_fn done, void *arg);
int hr_upstream_start(hr_upstream_t *up);
/* Stops the thread; calls in flight or waiting end with 503 "shutting down". Frees. */
void hr_upstream_free(hr_upstream_t *up);

/* Any thread: queues `call` (owned by the upstream from now on). */
void hr_upstream_submit(hr_upstream_t *up, hr_upstream_call_t *call);
void hr_upstream_call_free(hr_upstream_call_t *call);

typedef struct hr_upstream_stats_s {
    uint64_t calls;
    size_t in_flight, waiting;
} hr_upstream_stats_t;
void hr_upstream_stats(hr_upstream_t *up, unsigned pool, hr_upstream_stats_t *stats);

#endif
