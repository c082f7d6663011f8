/* Response pools; see pool.h. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/error.h"
#include "core/log.h"
#include "core/strmap.h"
#include "pool/pool.h"
#include "pool/pool_int.h"
#include "pool/pool_redis.h"

_Static_assert(HR_MAX_POOLS == HR_POOLS_MAX, "--pool's capacity is the store's");

/* ---- setup ------------------------------------------------------------------------------ */

hr_pools_t *hr_pools_new(const hr_config_t *config, hr_broker_t *broker, struct hr_bus_s *bus,
                         char *err, size_t err_size)
{
    hr_pools_t *pools = calloc(1, sizeof *pools);
    if (!pools) {
        snprintf(err, err_size, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&pools->lock, NULL);
    pools->config = config;
    pools->broker = broker;
    pools->bus = bus;
    unsigned concurrency[HR_POOLS_MAX];
    for (size_t i = 0; i < config->npools; i++) {
        char why[128];
        pool_t *pool = &pools->pools[i];
        int bad = hr_pool_spec_parse(config->pools[i], &pool->spec, why, sizeof why) != 0;
        if (!bad && hr_pools_find(pools, pool->spec.name, strlen(pool->spec.name)) >= 0) {
            snprintf(why, sizeof why, "a pool of that name exists");
            bad = 1;
        }
        if (bad) {
            snprintf(err, err_size, "--pool %.64s: %s", config->pools[i], why);
            hr_pools_free(pools);
            return NULL;
        }
        concurrency[i] = pool->spec.concurrency;
        pools->npools++;
    }
    if (!bus && !(pools->store = hr_pool_store_new(config->pool_max_bytes, 0))) goto oom;
    if (bus && pools->npools && !(pools->redis = hr_pool_redis_new(bus, config))) goto oom;
    if (pools->npools &&
        !(pools->upstream = hr_upstream_new(config->pool_max_answer, concurrency, pools->npools,
                                            hr_pools_call_done, pools)))
        goto oom;
    return pools;
oom:
    snprintf(err, err_size, "out of memory");
    hr_pools_free(pools);
    return NULL;
}

int hr_pools_start(hr_pools_t *pools)
{
    return pools->upstream ? hr_upstream_start(pools->upstream) : 0;
}

void hr_pools_free(hr_pools_t *pools)
{
    if (!pools) return;
    hr_upstream_free(pools->upstream); /* first: its calls end before the table goes */
    hr_pools_persist_stop(pools);      /* the last snapshot, with every answer that landed */
    while (pools->flights.count) {
        key_flights_t *entry = NULL;
        for (size_t b = 0; !entry && b < pools->flights.nbuckets; b++)
            entry = (key_flights_t *)pools->flights.buckets[b];
        hr_strmap_remove(&pools->flights, &entry->node);
        free(entry);
    }
    hr_strmap_free(&pools->flights);
    hr_pool_store_free(pools->store);
    hr_pool_redis_free(pools->redis);
    pthread_mutex_destroy(&pools->lock);
    free(pools);
}

int hr_pools_find(const hr_pools_t *pools, const char *name, size_t len)
{
    for (unsigned i = 0; i < pools->npools; i++)
        if (strlen(pools->pools[i].spec.name) == len &&
            memcmp(pools->pools[i].spec.name, name, len) == 0)
            return (int)i;
    return -1;
}

const hr_pool_spec_t *hr_pools_spec(const hr_pools_t *pools, unsigned pool)
{
    return &pools->pools[pool].spec;
}

size_t hr_pools_count(const hr_pools_t *pools)
{
    return pools->npools;
}

int hr_pools_clustered(const hr_pools_t *pools)
{
    return pools->bus != NULL;
}

struct hr_pool_redis_s *hr_pools_redis(hr_pools_t *pools)
{
    return pools->redis;
}

hr_pool_store_t *hr_pools_store(hr_pools_t *pools)
{
    return pools->store;
}

size_t hr_pools_store_key(const hr_pools_t *pools, unsigned pool, const char *key, size_t len,
                          char *out, size_t out_size)
{
    int n = snprintf(out, out_size, "%s %.*s", pools->pools[pool].spec.name, (int)len, key);
    return n > 0 && (size_t)n < out_size ? (size_t)n : 0;
}

void hr_pools_count_one(hr_pools_t *pools, unsigned pool, enum hr_pool_count what)
{
    atomic_fetch_add(&pools->pools[pool].counts[what], 1);
}
