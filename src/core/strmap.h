/* An intrusive hash map keyed by byte strings: the owner embeds an hr_strmap_node_t and keeps
 * the key bytes alive while linked (the Redis dict idea, without incremental rehash: maps here
 * are touched under one lock and grow by doubling). Not thread-safe by itself. */
#ifndef HR_STRMAP_H
#define HR_STRMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct hr_strmap_node_s {
    struct hr_strmap_node_s *next;
    uint64_t hash;
    const char *key; /* owned by the embedding struct */
    size_t key_len;
} hr_strmap_node_t;

typedef struct hr_strmap_s {
    hr_strmap_node_t **buckets;
    size_t nbuckets; /* a power of two, or 0 before the first insert */
    size_t count;
} hr_strmap_t;

uint64_t hr_strmap_hash(const char *key, size_t len);
hr_strmap_node_t *hr_strmap_get(const hr_strmap_t *map, const char *key, size_t len);
/* Links `node` (key and key_len set by the caller; the key must not be present). Returns 0, or
 * -1 (not linked) when the first bucket array could not be allocated. */
int hr_strmap_put(hr_strmap_t *map, hr_strmap_node_t *node);
void hr_strmap_remove(hr_strmap_t *map, hr_strmap_node_t *node);
/* Frees the bucket array; the nodes belong to their owners. */
void hr_strmap_free(hr_strmap_t *map);

#endif
