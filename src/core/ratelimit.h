/* Token buckets by key (a client IP): `rate` tokens a second, up to `burst`. Shared by every
 * worker (one mutex; taken once per publish, never across I/O). */
#ifndef HR_RATELIMIT_H
#define HR_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

typedef struct hr_ratelimit_s hr_ratelimit_t;

hr_ratelimit_t *hr_ratelimit_new(double rate, double burst);
void hr_ratelimit_free(hr_ratelimit_t *limit);

/* Takes one token for `key`. Returns 0 when allowed, else the ms until a token is due. */
int64_t hr_ratelimit_take(hr_ratelimit_t *limit, const char *key, size_t len, int64_t now_ms);

/* Forgets keys whose bucket has refilled (they would start full anyway). */
void hr_ratelimit_sweep(hr_ratelimit_t *limit, int64_t now_ms);

#endif
