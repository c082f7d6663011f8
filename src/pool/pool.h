/* Response pools (issue 18, docs/POOLS.md): for each configured pool (--pool) and key, a few
 * answers of a slow upstream (an AI API). A key holding `size` of them answers with a random
 * one at once; below that, the request goes to the upstream and its answer joins the pool.
 * Concurrent requests for one key start at most max(1, size - members) calls and share their
 * answers (flights, pool/flight.h). The members live in the embedded store (pool/store.h) or,
 * in cluster mode, in Redis (pool/pool_redis.c). The upstream calls run on their own thread
 * (pool/upstream.c). */
#ifndef HR_POOL_POOL_H
#define HR_POOL_POOL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "core/broker.h"
#include "core/config.h"
#include "pool/flight.h"
#include "pool/spec.h"
#include "pool/store.h"

#define HR_POOL_KEY_MAX     200  /* bytes of a {key} */
#define HR_POOL_WAITING_MAX 1024 /* calls waiting for a free upstream slot, per pool */

typedef struct hr_pools_s hr_pools_t;
struct hr_bus_s;

/* Parses every --pool. NULL with why in err (a bad --pool stops the start). `bus`: cluster
 * mode, else NULL. */
hr_pools_t *hr_pools_new(const hr_config_t *config, hr_broker_t *broker, struct hr_bus_s *bus,
                         char *err, size_t err_size);
/* Starts the upstream thread (when any pool is configured). */
int hr_pools_start(hr_pools_t *pools);
/* Embedded mode with a store that keeps them (--data-dir): loads the saved answers and saves
 * a snapshot every minute when they changed, and at the stop (persist.c). 0 when there is
 * nothing to do. */
int hr_pools_persist(hr_pools_t *pools, hr_store_t *disk);
void hr_pools_persist_stop(hr_pools_t *pools);
/* Stops the thread (calls in flight are abandoned; their waiters get 503) and frees. */
void hr_pools_free(hr_pools_t *pools);

/* The pool named `name`, or -1. */
int hr_pools_find(const hr_pools_t *pools, const char *name, size_t len);
const hr_pool_spec_t *hr_pools_spec(const hr_pools_t *pools, unsigned pool);
size_t hr_pools_count(const hr_pools_t *pools);
int hr_pools_clustered(const hr_pools_t *pools);

/* What an upstream call needs of the request that starts it. */
typedef struct hr_pool_ask_s {
    unsigned pool;
    const char *key;
    size_t key_len;
    int post; /* POST with `body`; else GET */
    const char *body;
    size_t body_len;
    const char *content_type; /* the request's, or NULL */
    const char *accept;       /* the request's, or NULL */
} hr_pool_ask_t;

enum hr_pool_outcome {
    HR_POOL_HIT,    /* *hit holds a member */
    HR_POOL_MISS,   /* a new upstream call: watch *flight */
    HR_POOL_SHARED, /* a call under way for the key: watch *flight */
    HR_POOL_BUSY,   /* too many calls wait for the upstream: 503 */
    HR_POOL_NOMEM
};

/* Embedded mode: a member when the key holds `size`, else a flight to wait on (the caller
 * owns one reference, handed to hr_flight_watch). *members: the key's members now. */
enum hr_pool_outcome hr_pools_ask(hr_pools_t *pools, const hr_pool_ask_t *ask,
                                  hr_pool_answer_t **hit, hr_flight_t **flight, size_t *members);
/* Cluster mode, once Redis said the key holds `members` (fewer than `size`): a flight. */
enum hr_pool_outcome hr_pools_join(hr_pools_t *pools, const hr_pool_ask_t *ask, size_t members,
                                   hr_flight_t **flight);

/* Counters the request side keeps (hits, shared waits, fallbacks, errors). */
enum hr_pool_count {
    HR_POOL_COUNT_HIT,
    HR_POOL_COUNT_SHARED,
    HR_POOL_COUNT_FALLBACK,
    HR_POOL_COUNT_ERROR,
    HR_POOL_COUNTS
};
void hr_pools_count_one(hr_pools_t *pools, unsigned pool, enum hr_pool_count what);

/* Cluster mode: the pools' Redis side (pool/pool_redis.h), else NULL. */
struct hr_pool_redis_s *hr_pools_redis(hr_pools_t *pools);
/* The embedded store (NULL in cluster mode) and the store key of (pool, key): "NAME KEY". */
hr_pool_store_t *hr_pools_store(hr_pools_t *pools);
size_t hr_pools_store_key(const hr_pools_t *pools, unsigned pool, const char *key, size_t len,
                          char *out, size_t out_size);

/* {"NAME": {hits, misses, shared, fallbacks, errors, upstream: {calls, in_flight, waiting,
 * p50_ms, p99_ms}, keys, members, bytes, evictions}} (keys... from the embedded store). */
json_t *hr_pools_stats(hr_pools_t *pools);

#endif
