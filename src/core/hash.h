/* FNV-1a over bytes: the hash of every name- or address-keyed table (topics, the bus's topics,
 * rate buckets, per-IP counts). Short keys, no adversarial flooding worth a keyed hash yet. */
#ifndef HR_HASH_H
#define HR_HASH_H

#include <stddef.h>
#include <stdint.h>

static inline uint64_t hr_hash_bytes(const char *bytes, size_t len)
{
    uint64_t hash = 1469598103934665603ull;
    for (size_t i = 0; i < len; i++)
        hash = (hash ^ (unsigned char)bytes[i]) * 1099511628211ull;
    return hash;
}

#endif
