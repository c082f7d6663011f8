/* Verified-token cache; see token_cache.h. */
#include <stdlib.h>
#include <string.h>

#include "auth/token_cache.h"
#include "core/hash.h"

static uint64_t hash_of(const char *token, size_t len)
{
    uint64_t hash = hr_hash_bytes(token, len);
    return hash ? hash : 1; /* 0 marks an empty slot */
}

const hr_token_t *hr_token_cache_get(const hr_token_cache_t *cache, const char *token, size_t len)
{
    if (len > HR_TOKEN_CACHE_MAX_BYTES) return NULL;
    uint64_t hash = hash_of(token, len);
    for (unsigned i = 0; i < HR_TOKEN_CACHE_SLOTS; i++)
        if (cache->slots[i].hash == hash && cache->slots[i].len == len &&
            memcmp(cache->slots[i].token, token, len) == 0)
            return cache->slots[i].claims;
    return NULL;
}

static void empty(hr_token_cache_t *cache, unsigned i)
{
    free(cache->slots[i].token);
    free(cache->slots[i].claims);
    memset(&cache->slots[i], 0, sizeof cache->slots[i]);
}

void hr_token_cache_put(hr_token_cache_t *cache, const char *token, size_t len,
                        const hr_token_t *claims)
{
    if (len > HR_TOKEN_CACHE_MAX_BYTES) return;
    /* Copied before the slot is emptied: `claims` may be the very entry it replaces. */
    char *copy = malloc(len);
    hr_token_t *claims_copy = hr_token_dup(claims);
    if (!copy || !claims_copy) {
        free(copy);
        free(claims_copy);
        return;
    }
    unsigned i = cache->next;
    cache->next = (i + 1) % HR_TOKEN_CACHE_SLOTS;
    empty(cache, i);
    memcpy(copy, token, len);
    cache->slots[i].hash = hash_of(token, len);
    cache->slots[i].len = len;
    cache->slots[i].token = copy;
    cache->slots[i].claims = claims_copy;
}

void hr_token_cache_clear(hr_token_cache_t *cache)
{
    for (unsigned i = 0; i < HR_TOKEN_CACHE_SLOTS; i++)
        empty(cache, i);
}
