/* One publish (to one or more topics) from the HTTP API or a WebSocket, wherever it goes:
 * embedded, the local broker and then (sync/batch) the disk; in cluster mode, Redis. Callers
 * submit, then answer at once or when `done` runs; the answer is the same either way. */
#ifndef HR_PUBREQ_H
#define HR_PUBREQ_H

#include <jansson.h>

#include "api/publish_body.h"
#include "bus/bus.h"
#include "core/worker.h"

enum hr_pub_result {
    HR_PUB_OK,
    HR_PUB_CONFLICT,     /* the requested id is not above every id so far (409) */
    HR_PUB_NOMEM,        /* 503 */
    HR_PUB_REFUSED,      /* a recent disk write failed; refused before publishing (507) */
    HR_PUB_NOT_STORED,   /* delivered live, but its disk write failed (507) */
    HR_PUB_UNAVAILABLE,  /* cluster: Redis down or lost mid-publish (503) */
    HR_PUB_TOPIC_LIMIT,  /* --topic-limit reached and this topic is new (503) */
    HR_PUB_IDSPACE,      /* the id sequence reached 2^53 - 1 (503; /healthz says so too) */
    HR_PUB_TOO_LARGE,    /* larger than one topic's history may hold (413) */
    HR_PUB_USER_OFFLINE, /* cluster: a signal to a user offline on every node (404) */
};

typedef struct hr_pubreq_s hr_pubreq_t;
struct hr_pubreq_s {
    hr_worker_t *worker;
    enum hr_pub_result result;
    hr_bus_item_t *items; /* topics (copied) and their assigned ids */
    size_t n;
    /* Set by the caller before submit; runs on the worker when a pending publish finishes.
     * The caller frees the request afterwards. */
    void (*done)(hr_pubreq_t *req);
    void *user;
    /* internal */
    hr_bus_pub_t bus;
    hr_durable_wait_t wait;
    char *copy;           /* event and data, for the bus thread */
    enum hr_fcm_mode fcm; /* push policy of this publish (docs/PUSH.md) */
    json_t *push;         /* its "push" fields, or NULL (a reference) */
    uint64_t delayed_id;  /* set by src/delay: the schedule this publish retires */
    int waiting_disk, cancelled;
};

hr_pubreq_t *hr_pubreq_new(hr_worker_t *worker, const char *const *names, const size_t *lens,
                           size_t n, const hr_pub_body_t *body, int binary);
/* Returns 0 when finished now (result and ids set), 1 when `done` will run later. */
int hr_pubreq_submit(hr_pubreq_t *req);
/* The caller goes away before `done`: the request frees itself when its answer comes. */
void hr_pubreq_cancel(hr_pubreq_t *req);
void hr_pubreq_free(hr_pubreq_t *req);

/* --publish-rate: 0 when the client at `peer` ("ip:port") may publish now, else the ms until
 * it may (answer 429 with Retry-After). Takes a token when allowed. */
int64_t hr_pubreq_rate_wait(hr_worker_t *worker, const char *peer);

/* [{"topic","id"}, ...] */
json_t *hr_pubreq_ids(const hr_pubreq_t *req);
/* HTTP status and a short reason for a result. */
int hr_pubreq_status(enum hr_pub_result result, const char **reason, const char **code);

#endif
