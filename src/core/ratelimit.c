#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/hash.h"
#include "core/ratelimit.h"

typedef struct bucket_s bucket_t;
struct bucket_s {
    bucket_t *next;
    double tokens;
    int64_t updated_ms;
    size_t len;
    char key[];
};

struct hr_ratelimit_s {
    pthread_mutex_t lock;
    double rate, burst;
    bucket_t **buckets;
    size_t nbuckets, count;
};

hr_ratelimit_t *hr_ratelimit_new(double rate, double burst)
{
    hr_ratelimit_t *limit = calloc(1, sizeof *limit);
    if (!limit) return NULL;
    limit->nbuckets = 1024;
    limit->buckets = calloc(limit->nbuckets, sizeof *limit->buckets);
    if (!limit->buckets) {
        free(limit);
        return NULL;
    }
    limit->rate = rate;
    limit->burst = burst < 1 ? 1 : burst;
    pthread_mutex_init(&limit->lock, NULL);
    return limit;
}

void hr_ratelimit_free(hr_ratelimit_t *limit)
{
    if (!limit) return;
    for (size_t b = 0; b < limit->nbuckets; b++) {
        for (bucket_t *bucket = limit->buckets[b], *next; bucket; bucket = next) {
            next = bucket->next;
            free(bucket);
        }
    }
    free(limit->buckets);
    pthread_mutex_destroy(&limit->lock);
    free(limit);
}

static size_t slot_of(const hr_ratelimit_t *limit, const char *key, size_t len)
{
    return hr_hash_bytes(key, len) & (limit->nbuckets - 1);
}

static void refill(const hr_ratelimit_t *limit, bucket_t *bucket, int64_t now_ms)
{
    if (now_ms <= bucket->updated_ms) return;
    bucket->tokens += (double)(now_ms - bucket->updated_ms) * limit->rate / 1000.0;
    if (bucket->tokens > limit->burst) bucket->tokens = limit->burst;
    bucket->updated_ms = now_ms;
}

int64_t hr_ratelimit_take(hr_ratelimit_t *limit, const char *key, size_t len, int64_t now_ms)
{
    pthread_mutex_lock(&limit->lock);
    bucket_t **slot = &limit->buckets[slot_of(limit, key, len)], *bucket = *slot;
    while (bucket && (bucket->len != len || memcmp(bucket->key, key, len) != 0))
        bucket = bucket->next;
    if (!bucket && (bucket = malloc(sizeof *bucket + len))) {
        bucket->tokens = limit->burst;
        bucket->updated_ms = now_ms;
        bucket->len = len;
        memcpy(bucket->key, key, len);
        bucket->next = *slot;
        *slot = bucket;
        limit->count++;
    }
    int64_t wait_ms = 0;
    if (bucket) { /* out of memory: let it through rather than refuse everyone */
        refill(limit, bucket, now_ms);
        if (bucket->tokens >= 1)
            bucket->tokens -= 1;
        else
            wait_ms = (int64_t)ceil((1 - bucket->tokens) * 1000.0 / limit->rate);
    }
    pthread_mutex_unlock(&limit->lock);
    return wait_ms;
}

void hr_ratelimit_sweep(hr_ratelimit_t *limit, int64_t now_ms)
{
    pthread_mutex_lock(&limit->lock);
    for (size_t b = 0; b < limit->nbuckets; b++) {
        bucket_t **link = &limit->buckets[b];
        while (*link) {
            bucket_t *bucket = *link;
            refill(limit, bucket, now_ms);
            if (bucket->tokens >= limit->burst) {
                *link = bucket->next;
                limit->count--;
                free(bucket);
            } else {
                link = &bucket->next;
            }
        }
    }
    pthread_mutex_unlock(&limit->lock);
}
