/* See strmap.h. */
#include <stdlib.h>
#include <string.h>

#include "core/hash.h"
#include "core/strmap.h"

uint64_t hr_strmap_hash(const char *key, size_t len)
{
    return hr_hash_bytes(key, len);
}

hr_strmap_node_t *hr_strmap_get(const hr_strmap_t *map, const char *key, size_t len)
{
    if (!map->nbuckets) return NULL;
    uint64_t hash = hr_strmap_hash(key, len);
    for (hr_strmap_node_t *node = map->buckets[hash & (map->nbuckets - 1)]; node; node = node->next)
        if (node->hash == hash && node->key_len == len && memcmp(node->key, key, len) == 0)
            return node;
    return NULL;
}

static int grow(hr_strmap_t *map)
{
    size_t size = map->nbuckets ? map->nbuckets * 2 : 16;
    hr_strmap_node_t **buckets = calloc(size, sizeof *buckets);
    if (!buckets) return -1;
    for (size_t i = 0; i < map->nbuckets; i++) {
        hr_strmap_node_t *node = map->buckets[i], *next;
        for (; node; node = next) {
            next = node->next;
            hr_strmap_node_t **slot = &buckets[node->hash & (size - 1)];
            node->next = *slot;
            *slot = node;
        }
    }
    free(map->buckets);
    map->buckets = buckets;
    map->nbuckets = size;
    return 0;
}

int hr_strmap_put(hr_strmap_t *map, hr_strmap_node_t *node)
{
    if (map->count >= map->nbuckets) grow(map); /* a failed grow only makes chains longer */
    if (!map->nbuckets) return -1;
    node->hash = hr_strmap_hash(node->key, node->key_len);
    hr_strmap_node_t **slot = &map->buckets[node->hash & (map->nbuckets - 1)];
    node->next = *slot;
    *slot = node;
    map->count++;
    return 0;
}

void hr_strmap_remove(hr_strmap_t *map, hr_strmap_node_t *node)
{
    hr_strmap_node_t **slot = &map->buckets[node->hash & (map->nbuckets - 1)];
    while (*slot && *slot != node)
        slot = &(*slot)->next;
    if (*slot) {
        *slot = node->next;
        map->count--;
    }
}

void hr_strmap_free(hr_strmap_t *map)
{
    free(map->buckets);
    *map = (hr_strmap_t){0};
}
