/* The embedded pool store; see store.h. Keys live in a hash (lookup) and an array (uniform
 * random sampling for eviction, swap-removed). */
#include <openssl/sha.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/error.h"
#include "core/strmap.h"
#include "pool/lfu.h"
#include "pool/store.h"

typedef struct member_s {
    struct member_s *next; /* oldest first */
    int64_t born_ms;
    size_t len;
    char content_type[64];
    char bytes[];
} member_t;

typedef struct pkey_s {
    hr_strmap_node_t node;
    size_t slot; /* in store->keys */
    member_t *members, *last;
    size_t nmembers, bytes;
    uint8_t lfu;
    unsigned pool;
    int64_t access_ms;
    int64_t ttl_ms; /* a member's life; 0 = until evicted */
    size_t len;
    char name[];
} pkey_t;

struct hr_pool_store_s {
    pthread_mutex_t lock;
    size_t max_bytes, bytes; /* bytes: what the budget counts, every pool */
    hr_strmap_t map;
    pkey_t **keys;
    size_t nkeys, cap;
    uint64_t rng;
    uint64_t changes; /* for a snapshot to know it has nothing new */
    hr_pool_store_stats_t per_pool[HR_POOLS_MAX + 1]; /* [HR_POOL_ALL]: every pool */
};

/* Every change to the numbers goes through here, for the key's pool and for all. */
static void count(hr_pool_store_t *store, unsigned pool, long keys, long members, long bytes)
{
    unsigned which[2] = {pool, HR_POOL_ALL};
    store->changes++;
    for (int i = 0; i < 2; i++) {
        hr_pool_store_stats_t *stats = &store->per_pool[which[i]];
        stats->keys += (size_t)keys;
        stats->members += (size_t)members;
        stats->bytes += (size_t)bytes;
    }
}

static uint64_t next_random(hr_pool_store_t *store)
{
    uint64_t x = store->rng; /* xorshift64* */
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    store->rng = x;
    return x * 0x2545F4914F6CDD1Dull;
}

static double uniform(hr_pool_store_t *store)
{
    return (double)(next_random(store) >> 11) / 9007199254740992.0;
}

hr_pool_store_t *hr_pool_store_new(size_t max_bytes, uint64_t seed)
{
    hr_pool_store_t *store = calloc(1, sizeof *store);
    if (!store) return NULL;
    pthread_mutex_init(&store->lock, NULL);
    store->max_bytes = max_bytes;
    store->rng = seed ? seed : (uint64_t)hr_clock_unix_ms() | 1;
    return store;
}

static size_t key_cost(const pkey_t *key)
{
    return sizeof *key + key->len + key->bytes;
}

static void drop_key(hr_pool_store_t *store, pkey_t *key)
{
    store->bytes -= key_cost(key);
    count(store, key->pool, -1, -(long)key->nmembers, -(long)key_cost(key));
    hr_strmap_remove(&store->map, &key->node);
    store->keys[key->slot] = store->keys[--store->nkeys];
    store->keys[key->slot]->slot = key->slot;
    for (member_t *m = key->members, *next; m; m = next) {
        next = m->next;
        free(m);
    }
    free(key);
}

/* Redis's way: of a few keys drawn at random, the least frequently used (after decay) goes.
 * A small store is scanned whole: sampling there would too often draw only popular keys. */
static void evict_one(hr_pool_store_t *store, const pkey_t *keep, int64_t now_ms)
{
    pkey_t *victim = NULL;
    int victim_lfu = 256;
    int exact = store->nkeys <= 4 * HR_POOL_SAMPLES;
    size_t draws = exact ? store->nkeys : HR_POOL_SAMPLES;
    for (size_t i = 0; i < draws; i++) {
        pkey_t *key = store->keys[exact ? i : next_random(store) % store->nkeys];
        if (key == keep) continue;
        int lfu = hr_lfu_decay(key->lfu, (now_ms - key->access_ms) / 60000);
        if (lfu < victim_lfu) {
            victim = key;
            victim_lfu = lfu;
        }
    }
    if (!victim) return;
    store->per_pool[victim->pool].evictions++;
    store->per_pool[HR_POOL_ALL].evictions++;
    drop_key(store, victim);
}

/* Unlinks `gone` (after `prev`, NULL when first) from `key` and frees it. */
static void drop_member(hr_pool_store_t *store, pkey_t *key, member_t *prev, member_t *gone)
{
    *(prev ? &prev->next : &key->members) = gone->next;
    if (key->last == gone) key->last = prev;
    size_t cost = sizeof *gone + gone->len;
    key->nmembers--;
    key->bytes -= cost;
    store->bytes -= cost;
    count(store, key->pool, 0, -1, -(long)cost);
    free(gone);
}

/* Members past the key's ttl go, lazily, when the key is touched (as Redis expires keys). */
static void expire_members(hr_pool_store_t *store, pkey_t *key, int64_t now_ms)
{
    while (key->ttl_ms && key->members && now_ms - key->members->born_ms >= key->ttl_ms)
        drop_member(store, key, NULL, key->members);
}

/* The key, its expired members gone; NULL when none is left (the key goes with them). */
static pkey_t *find(hr_pool_store_t *store, const char *name, size_t len, int64_t now_ms)
{
    pkey_t *key = (pkey_t *)hr_strmap_get(&store->map, name, len);
    if (!key) return NULL;
    expire_members(store, key, now_ms);
    if (key->nmembers) return key;
    drop_key(store, key);
    return NULL;
}

static pkey_t *key_get(hr_pool_store_t *store, unsigned pool, const char *name, size_t len,
                       int64_t now_ms)
{
    pkey_t *key = (pkey_t *)hr_strmap_get(&store->map, name, len);
    if (key) return key;
    if (store->nkeys == store->cap) {
        size_t cap = store->cap ? store->cap * 2 : 64;
        pkey_t **keys = realloc(store->keys, cap * sizeof *keys);
        if (!keys) return NULL;
        store->keys = keys;
        store->cap = cap;
    }
    if (!(key = calloc(1, sizeof *key + len))) return NULL;
    memcpy(key->name, name, len);
    key->len = len;
    key->node.key = key->name;
    key->node.key_len = len;
    key->lfu = HR_LFU_INIT;
    key->pool = pool;
    key->access_ms = now_ms;
    if (hr_strmap_put(&store->map, &key->node) != 0) {
        free(key);
        return NULL;
    }
    key->slot = store->nkeys;
    store->keys[store->nkeys++] = key;
    store->bytes += key_cost(key);
    count(store, pool, 1, 0, (long)key_cost(key));
    return key;
}

int hr_pool_store_add(hr_pool_store_t *store, unsigned pool, const char *name, size_t name_len,
                      const char *bytes, size_t len, const char *content_type, size_t max_members,
                      int64_t ttl_ms, int64_t now_ms)
{
    size_t cost = sizeof(member_t) + len;
    if (cost + sizeof(pkey_t) + name_len > store->max_bytes) return HR_ELIMIT;
    member_t *member = malloc(sizeof *member + len);
    if (!member) return HR_ENOMEM;
    member->next = NULL;
    member->born_ms = now_ms;
    member->len = len;
    memcpy(member->bytes, bytes, len);
    strncpy(member->content_type, content_type ? content_type : "",
            sizeof member->content_type - 1);
    member->content_type[sizeof member->content_type - 1] = '\0';
    pthread_mutex_lock(&store->lock);
    pkey_t *key = key_get(store, pool < HR_POOLS_MAX ? pool : 0, name, name_len, now_ms);
    if (!key) {
        pthread_mutex_unlock(&store->lock);
        free(member);
        return HR_ENOMEM;
    }
    key->ttl_ms = ttl_ms;
    expire_members(store, key, now_ms);              /* the key stays: a member joins now */
    if (max_members && key->nmembers >= max_members) /* the oldest answer makes room */
        drop_member(store, key, NULL, key->members);
    while (store->bytes + cost > store->max_bytes && store->nkeys > 1)
        evict_one(store, key, now_ms);
    while (store->bytes + cost > store->max_bytes && key->members) /* alone and still over */
        drop_member(store, key, NULL, key->members);
    if (key->last)
        key->last->next = member;
    else
        key->members = member;
    key->last = member;
    key->nmembers++;
    key->bytes += cost;
    store->bytes += cost;
    count(store, key->pool, 0, 1, (long)cost);
    pthread_mutex_unlock(&store->lock);
    return 0;
}

size_t hr_pool_store_count(hr_pool_store_t *store, const char *name, size_t len)
{
    pthread_mutex_lock(&store->lock);
    pkey_t *key = find(store, name, len, hr_clock_unix_ms());
    size_t n = key ? key->nmembers : 0;
    pthread_mutex_unlock(&store->lock);
    return n;
}

hr_pool_answer_t *hr_pool_store_pick(hr_pool_store_t *store, const char *name, size_t len,
                                     size_t need, int64_t now_ms)
{
    hr_pool_answer_t *answer = NULL;
    pthread_mutex_lock(&store->lock);
    pkey_t *key = find(store, name, len, now_ms);
    if (key && key->nmembers && key->nmembers >= need) {
        key->lfu = hr_lfu_decay(key->lfu, (now_ms - key->access_ms) / 60000);
        key->lfu = hr_lfu_incr(key->lfu, uniform(store));
        key->access_ms = now_ms;
        member_t *member = key->members;
        for (size_t skip = next_random(store) % key->nmembers; skip; skip--)
            member = member->next;
        if ((answer = malloc(sizeof *answer + member->len + 1))) {
            answer->len = member->len;
            memcpy(answer->content_type, member->content_type, sizeof answer->content_type);
            memcpy(answer->bytes, member->bytes, member->len);
            answer->bytes[member->len] = '\0';
        }
    }
    pthread_mutex_unlock(&store->lock);
    return answer;
}

uint64_t hr_pool_member_id(const char *bytes, size_t len)
{
    unsigned char digest[SHA_DIGEST_LENGTH];
    SHA1((const unsigned char *)bytes, len, digest);
    uint64_t id = 0;
    for (int i = 0; i < 8; i++)
        id = id << 8 | digest[i];
    return id ? id : 1; /* 0 names the whole key */
}

int hr_pool_store_remove(hr_pool_store_t *store, const char *name, size_t len, uint64_t id)
{
    int found = 0;
    pthread_mutex_lock(&store->lock);
    pkey_t *key = (pkey_t *)hr_strmap_get(&store->map, name, len);
    if (key && id == 0) {
        drop_key(store, key);
        found = 1;
    } else if (key) {
        for (member_t *m = key->members, *prev = NULL; m; prev = m, m = m->next) {
            if (hr_pool_member_id(m->bytes, m->len) != id) continue;
            drop_member(store, key, prev, m);
            found = 1;
            break;
        }
        if (!key->nmembers) drop_key(store, key);
    }
    pthread_mutex_unlock(&store->lock);
    return found;
}

size_t hr_pool_store_list(hr_pool_store_t *store, const char *name, size_t len,
                          hr_pool_member_fn fn, void *arg)
{
    size_t n = 0;
    pthread_mutex_lock(&store->lock);
    pkey_t *key = find(store, name, len, hr_clock_unix_ms());
    for (member_t *m = key ? key->members : NULL; m; m = m->next, n++)
        fn(arg, hr_pool_member_id(m->bytes, m->len), m->content_type, m->bytes, m->len);
    pthread_mutex_unlock(&store->lock);
    return n;
}

uint64_t hr_pool_store_each_all(hr_pool_store_t *store, hr_pool_row_fn fn, void *arg)
{
    pthread_mutex_lock(&store->lock);
    for (size_t i = 0; i < store->nkeys; i++) {
        const pkey_t *key = store->keys[i];
        for (const member_t *m = key->members; m; m = m->next)
            fn(arg, key->name, key->len, m->content_type, m->bytes, m->len, m->born_ms);
    }
    uint64_t changes = store->changes;
    pthread_mutex_unlock(&store->lock);
    return changes;
}

uint64_t hr_pool_store_changes(hr_pool_store_t *store)
{
    pthread_mutex_lock(&store->lock);
    uint64_t changes = store->changes;
    pthread_mutex_unlock(&store->lock);
    return changes;
}

void hr_pool_store_stats(hr_pool_store_t *store, unsigned pool, hr_pool_store_stats_t *stats)
{
    pthread_mutex_lock(&store->lock);
    *stats = store->per_pool[pool <= HR_POOL_ALL ? pool : HR_POOL_ALL];
    pthread_mutex_unlock(&store->lock);
}

void hr_pool_store_free(hr_pool_store_t *store)
{
    if (!store) return;
    while (store->nkeys)
        drop_key(store, store->keys[store->nkeys - 1]);
    free(store->keys);
    hr_strmap_free(&store->map);
    pthread_mutex_destroy(&store->lock);
    free(store);
}
