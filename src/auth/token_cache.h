/* Tokens a worker verified lately. A backend publishes with the same token many times, and a
 * signature check costs far more than a publish (docs/BENCHMARKS.md, Auth): the same bytes seen
 * again cost a hash and a compare. One cache per worker, touched only by its thread. Only valid
 * tokens go in, under their exact bytes; expiry is still checked at each use. */
#ifndef HR_AUTH_TOKEN_CACHE_H
#define HR_AUTH_TOKEN_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "auth/jwt.h"

#define HR_TOKEN_CACHE_SLOTS     32
#define HR_TOKEN_CACHE_MAX_BYTES 2048 /* longer tokens are verified every time */

typedef struct hr_token_cache_s {
    struct {
        uint64_t hash; /* of the token's bytes; 0 = empty slot */
        size_t len;
        char *token;        /* owned copy */
        hr_token_t *claims; /* owned */
    } slots[HR_TOKEN_CACHE_SLOTS];
    unsigned next; /* slot the next insert replaces (round robin) */
} hr_token_cache_t;

/* The claims cached for exactly these bytes, or NULL. Borrowed until the next put. */
const hr_token_t *hr_token_cache_get(const hr_token_cache_t *cache, const char *token, size_t len);
/* Keeps a copy of the token and its claims (nothing when too long or out of memory). */
void hr_token_cache_put(hr_token_cache_t *cache, const char *token, size_t len,
                        const hr_token_t *claims);
void hr_token_cache_clear(hr_token_cache_t *cache);

#endif
