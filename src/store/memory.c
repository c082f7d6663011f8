/* The memory store: nothing outlives the process. The broker's in-memory history is the whole
 * of it, so every operation is empty; it exists so the broker always has a store to call. */
#include <stdlib.h>

#include "store/store.h"

static int memory_load(hr_store_t *store, size_t per_topic, const hr_store_sink_t *sink)
{
    (void)store, (void)per_topic, (void)sink;
    return 0;
}

static int memory_start(hr_store_t *store)
{
    (void)store;
    return 0;
}

static void memory_append(hr_store_t *store, hr_msg_t *msg)
{
    atomic_store(&store->durable_id, msg->id); /* as durable as it will ever be */
}

static void memory_close(hr_store_t *store)
{
    hr_store_destroy(store);
    free(store);
}

/* No last-seen either: presence keeps the recent ones in memory (HR_PRESENCE_SEEN_CACHE). */
static const hr_store_ops_t memory_ops = {
    "memory", memory_load, NULL, memory_start, memory_append, memory_close, NULL, NULL,
    NULL,     NULL,        NULL, NULL,         NULL,          NULL,         NULL, NULL};

hr_store_t *hr_store_memory_new(void)
{
    hr_store_t *store = calloc(1, sizeof *store);
    if (store) hr_store_init(store, &memory_ops, HR_DURABLE_OFF);
    return store;
}
