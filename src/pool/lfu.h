/* Redis's LFU counter (evict.c, "LFU (Least Frequently Used) implementation"): an 8-bit
 * logarithmic access counter that climbs ever more slowly (a hit raises it with probability
 * 1 / ((counter - LFU_INIT) * log_factor + 1)) and decays by one per `decay_minutes` without
 * access. New keys start at LFU_INIT so they are not evicted before they had a chance. Pure. */
#ifndef HR_POOL_LFU_H
#define HR_POOL_LFU_H

#include <stdint.h>

#define HR_LFU_INIT       5
#define HR_LFU_LOG_FACTOR 10 /* Redis's lfu-log-factor default */
#define HR_LFU_DECAY_MIN  1  /* Redis's lfu-decay-time default, minutes */

/* `r` is a uniform random number in [0, 1). */
static inline uint8_t hr_lfu_incr(uint8_t counter, double r)
{
    if (counter == 255) return 255;
    double base = (double)counter - HR_LFU_INIT;
    if (base < 0) base = 0;
    return r < 1.0 / (base * HR_LFU_LOG_FACTOR + 1) ? (uint8_t)(counter + 1) : counter;
}

/* The counter after `idle_minutes` without access. */
static inline uint8_t hr_lfu_decay(uint8_t counter, int64_t idle_minutes)
{
    int64_t periods = idle_minutes > 0 ? idle_minutes / HR_LFU_DECAY_MIN : 0;
    return periods >= counter ? 0 : (uint8_t)(counter - periods);
}

#endif
