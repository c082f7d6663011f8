/* What every store shares: opening by config, failed-write bookkeeping, refusal window. */
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "store/store.h"

void hr_store_init(hr_store_t *store, const hr_store_ops_t *ops, enum hr_durability durability)
{
    store->ops = ops;
    store->durability = durability;
    atomic_init(&store->durable_id, 0);
    atomic_init(&store->refuse_until_ms, 0);
    pthread_mutex_init(&store->failed_lock, NULL);
    store->nfailed = 0;
}

void hr_store_destroy(hr_store_t *store)
{
    pthread_mutex_destroy(&store->failed_lock);
}

void hr_store_mark_failed(hr_store_t *store, uint64_t first, uint64_t last, int64_t refuse_ms)
{
    pthread_mutex_lock(&store->failed_lock);
    unsigned slot = store->nfailed++ % HR_STORE_FAILED_RANGES;
    store->failed[slot].first = first;
    store->failed[slot].last = last;
    pthread_mutex_unlock(&store->failed_lock);
    if (refuse_ms) atomic_store(&store->refuse_until_ms, hr_clock_mono_ms() + refuse_ms);
}

int hr_store_failed(hr_store_t *store, uint64_t id)
{
    int failed = 0;
    pthread_mutex_lock(&store->failed_lock);
    unsigned n = store->nfailed < HR_STORE_FAILED_RANGES ? store->nfailed : HR_STORE_FAILED_RANGES;
    for (unsigned i = 0; i < n && !failed; i++)
        failed = id >= store->failed[i].first && id <= store->failed[i].last;
    pthread_mutex_unlock(&store->failed_lock);
    return failed;
}

hr_store_t *hr_store_open(const hr_store_config_t *config, char *err, size_t err_size)
{
    if (!config->data_dir || !config->data_dir[0]) return hr_store_memory_new();
    return hr_store_sqlite_open(config, err, err_size);
}

int hr_store_refusing(const hr_store_t *store)
{
    if (!store) return 0;
    int64_t until = atomic_load(&store->refuse_until_ms);
    if (!until) return 0;
    return hr_clock_mono_ms() < until;
}
