/* The pools' insides, shared by pool.c (setup), flow.c (asking, the upstream's answers,
 * stats) and pool_redis.c (cluster mode). */
#ifndef HR_POOL_INT_H
#define HR_POOL_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "core/strmap.h"
#include "pool/pool.h"
#include "pool/upstream.h"

#define LATENCY_KEEP    1024  /* the last upstream calls' durations, for p50/p99 */
#define HR_POOL_SAVE_MS 60000 /* --data-dir: a snapshot of the answers this often, if changed */

typedef struct pool_s {
    hr_pool_spec_t spec;
    atomic_uint_fast64_t counts[HR_POOL_COUNTS];
    atomic_uint_fast64_t misses;
    uint32_t latency_ms[LATENCY_KEEP]; /* under pools->lock */
    uint64_t nlatency;
} pool_t;

/* The calls under way for one key, and how many requests wait on each (to spread joiners). */
typedef struct key_flights_s {
    hr_strmap_node_t node;
    size_t n;
    struct {
        hr_flight_t *flight; /* no reference: the call holds one until it leaves this table */
        size_t waiters;
    } at[HR_POOL_SIZE_MAX];
    size_t len;
    char name[]; /* the store key */
} key_flights_t;

struct hr_pools_s {
    const hr_config_t *config;
    hr_broker_t *broker;
    struct hr_bus_s *bus;          /* cluster mode, else NULL */
    hr_pool_store_t *store;        /* embedded mode, else NULL */
    hr_upstream_t *upstream;       /* when any pool is configured */
    struct hr_pool_redis_s *redis; /* cluster mode, else NULL */
    pthread_mutex_t lock;          /* flights, latencies */
    hr_strmap_t flights;           /* store key → key_flights_t */
    unsigned npools;
    pool_t pools[HR_POOLS_MAX];
    /* persist.c: the snapshot's thread (embedded mode with --data-dir) */
    hr_store_t *disk;
    pthread_t saver;
    pthread_mutex_t save_lock;
    pthread_cond_t save_cond;
    int save_stop, saving;
    uint64_t saved_changes; /* saver thread */
};

/* The upstream thread's verdict on a call (hr_upstream_done_fn). */
void hr_pools_call_done(void *arg, hr_upstream_call_t *call, int status, const char *reason);
/* Ends a flight (any thread): out of the table, then DONE with `members` or FAILED with a
 * fallback member (may be NULL), and the waiters told. Takes `fallback`. */
void hr_pools_land(hr_pools_t *pools, const char *key, size_t key_len, hr_flight_t *flight,
                   int status, const char *reason, size_t members, hr_pool_answer_t *fallback);

#endif
