/* The embedded pool store (issue 18, docs/POOLS.md to come): for each (pool, key) a small set of
 * upstream answers ("members"), under one byte budget, evicting whole keys the way Redis's
 * allkeys-lfu does: sample a few keys at random, drop the one with the lowest decayed LFU
 * counter (pool/lfu.h), repeat until the new member fits. Thread-safe (one mutex); no I/O. */
#ifndef HR_POOL_STORE_H
#define HR_POOL_STORE_H

#include <stddef.h>
#include <stdint.h>

#define HR_POOL_SAMPLES 5            /* Redis's maxmemory-samples default */
#define HR_POOLS_MAX    16           /* --pool, repeatable */
#define HR_POOL_ALL     HR_POOLS_MAX /* stats of every pool together */

typedef struct hr_pool_store_s hr_pool_store_t;

/* A member handed out: a copy the caller frees with free(). */
typedef struct hr_pool_answer_s {
    size_t len;
    char content_type[64];
    char bytes[];
} hr_pool_answer_t;

typedef struct hr_pool_store_stats_s {
    size_t keys, members, bytes;
    uint64_t evictions;
} hr_pool_store_stats_t;

/* `seed` makes the sampling and the picks repeatable (tests); 0 seeds from the clock. */
hr_pool_store_t *hr_pool_store_new(size_t max_bytes, uint64_t seed);
void hr_pool_store_free(hr_pool_store_t *store);

/* Adds a member to `key` (a pool's name and the key, joined by the caller) of pool number
 * `pool` (for its stats), evicting keys by LFU until it fits; at most `max_members` are kept
 * (the oldest goes); members older than `ttl_ms` (0: no limit) go when the key is next
 * touched. Returns 0, HR_ELIMIT (larger than the whole budget) or HR_ENOMEM. `now_ms`: for the
 * decay and the ttl. */
int hr_pool_store_add(hr_pool_store_t *store, unsigned pool, const char *key, size_t key_len,
                      const char *bytes, size_t len, const char *content_type, size_t max_members,
                      int64_t ttl_ms, int64_t now_ms);
/* How many members `key` holds (no access counted). */
size_t hr_pool_store_count(hr_pool_store_t *store, const char *key, size_t key_len);
/* A random member of `key` when it holds at least `need`; counts an access. NULL otherwise. */
hr_pool_answer_t *hr_pool_store_pick(hr_pool_store_t *store, const char *key, size_t key_len,
                                     size_t need, int64_t now_ms);
/* A member's id: the first 64 bits of the SHA-1 of its bytes (the same in Redis mode, where a
 * script computes it with redis.sha1hex). */
uint64_t hr_pool_member_id(const char *bytes, size_t len);
/* Removes the member with id `id`, or the whole key with id 0. 1 when found. */
int hr_pool_store_remove(hr_pool_store_t *store, const char *key, size_t key_len, uint64_t id);
/* Calls `fn` for each member of `key`, oldest first (under the store's lock: copy, no calls
 * back into the store). Returns how many. */
typedef void (*hr_pool_member_fn)(void *arg, uint64_t id, const char *content_type,
                                  const char *bytes, size_t len);
size_t hr_pool_store_list(hr_pool_store_t *store, const char *key, size_t key_len,
                          hr_pool_member_fn fn, void *arg);
/* Every member of every key (under the lock: copy, no calls back); returns the change count
 * the walk saw, for hr_pool_store_changes. */
typedef void (*hr_pool_row_fn)(void *arg, const char *key, size_t key_len, const char *content_type,
                               const char *bytes, size_t len, int64_t born_ms);
uint64_t hr_pool_store_each_all(hr_pool_store_t *store, hr_pool_row_fn fn, void *arg);
/* Grows with every added or dropped member or key. */
uint64_t hr_pool_store_changes(hr_pool_store_t *store);
/* One pool's numbers, or every pool's with HR_POOL_ALL. */
void hr_pool_store_stats(hr_pool_store_t *store, unsigned pool, hr_pool_store_stats_t *stats);

#endif
