/* Response pools kept across restarts (embedded mode with --data-dir; docs/POOLS.md): the
 * answers are loaded at start and saved as a snapshot, Redis-RDB style — every minute when
 * something changed, from a thread of its own (copy under the store's lock, write without it),
 * and once more at a clean stop. A cache, so a kill -9 loses at most the last minute. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/log.h"
#include "pool/pool_int.h"

typedef struct rows_s {
    hr_store_pool_row_t *at;
    size_t n, cap;
    int failed;
} rows_t;

static char *copy(const char *bytes, size_t len)
{
    char *out = malloc(len + 1);
    if (out) {
        memcpy(out, bytes, len);
        out[len] = '\0';
    }
    return out;
}

static void gather(void *arg, const char *key, size_t key_len, const char *type, const char *bytes,
                   size_t len, int64_t born_ms)
{
    rows_t *rows = arg;
    if (rows->failed) return;
    if (rows->n == rows->cap) {
        size_t cap = rows->cap ? rows->cap * 2 : 256;
        hr_store_pool_row_t *grown = realloc(rows->at, cap * sizeof *grown);
        if (!grown) {
            rows->failed = 1;
            return;
        }
        rows->at = grown;
        rows->cap = cap;
    }
    hr_store_pool_row_t *row = &rows->at[rows->n];
    *row = (hr_store_pool_row_t){copy(key, key_len), key_len, copy(type, strlen(type)),
                                 copy(bytes, len),   len,     born_ms};
    if (!row->key || !row->type || !row->body) rows->failed = 1;
    rows->n++;
}

static void rows_free(rows_t *rows)
{
    for (size_t i = 0; i < rows->n; i++) {
        free((char *)rows->at[i].key);
        free((char *)rows->at[i].type);
        free((char *)rows->at[i].body);
    }
    free(rows->at);
}

static void save(hr_pools_t *pools)
{
    if (hr_pool_store_changes(pools->store) == pools->saved_changes) return;
    rows_t rows = {0};
    int64_t started = hr_clock_mono_ms();
    uint64_t changes = hr_pool_store_each_all(pools->store, gather, &rows);
    int rc = rows.failed ? -1 : pools->disk->ops->pool_save(pools->disk, rows.at, rows.n);
    if (rc == 0) {
        pools->saved_changes = changes;
        hr_debug("pool.saved", "answers=%zu ms=%lld", rows.n,
                 (long long)(hr_clock_mono_ms() - started));
    } else {
        hr_warn("pool.save_failed", "answers=%zu reason=\"%s\"", rows.n,
                rows.failed ? "out of memory" : "database");
    }
    rows_free(&rows);
}

static void *saver_main(void *arg)
{
    hr_pools_t *pools = arg;
    pthread_mutex_lock(&pools->save_lock);
    while (!pools->save_stop) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += HR_POOL_SAVE_MS / 1000;
        pthread_cond_timedwait(&pools->save_cond, &pools->save_lock, &until);
        if (pools->save_stop) break;
        pthread_mutex_unlock(&pools->save_lock);
        save(pools);
        pthread_mutex_lock(&pools->save_lock);
    }
    pthread_mutex_unlock(&pools->save_lock);
    save(pools); /* the clean stop's snapshot */
    return NULL;
}

static int load_row(void *arg, const hr_store_pool_row_t *row)
{
    hr_pools_t *pools = arg;
    const char *space = memchr(row->key, ' ', row->key_len);
    int pool = space ? hr_pools_find(pools, row->key, (size_t)(space - row->key)) : -1;
    if (pool < 0) return 0; /* a pool no longer configured */
    const hr_pool_spec_t *spec = &pools->pools[pool].spec;
    hr_pool_store_add(pools->store, (unsigned)pool, row->key, row->key_len, row->body,
                      row->body_len, row->type, spec->size, spec->ttl_s * 1000, row->born_ms);
    return 0;
}

int hr_pools_persist(hr_pools_t *pools, hr_store_t *disk)
{
    if (!pools->store || !pools->npools || !disk->ops->pool_save) return 0;
    pools->disk = disk;
    if (disk->ops->pool_each(disk, load_row, pools) != 0) return -1;
    pools->saved_changes = hr_pool_store_changes(pools->store);
    hr_pool_store_stats_t stats;
    hr_pool_store_stats(pools->store, HR_POOL_ALL, &stats);
    hr_info("pool.loaded", "keys=%zu answers=%zu bytes=%zu", stats.keys, stats.members,
            stats.bytes);
    pthread_mutex_init(&pools->save_lock, NULL);
    pthread_cond_init(&pools->save_cond, NULL);
    if (pthread_create(&pools->saver, NULL, saver_main, pools) != 0) return -1;
    pools->saving = 1;
    return 0;
}

void hr_pools_persist_stop(hr_pools_t *pools)
{
    if (!pools->saving) return;
    pthread_mutex_lock(&pools->save_lock);
    pools->save_stop = 1;
    pthread_cond_signal(&pools->save_cond);
    pthread_mutex_unlock(&pools->save_lock);
    pthread_join(pools->saver, NULL);
    pthread_cond_destroy(&pools->save_cond);
    pthread_mutex_destroy(&pools->save_lock);
    pools->saving = 0;
}
