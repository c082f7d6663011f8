/* Open connections per client IP, shared by every worker (one mutex, taken on accept and
 * close only), for --max-conns-per-ip. */
#ifndef HR_IPCOUNT_H
#define HR_IPCOUNT_H

#include <stddef.h>

typedef struct hr_ipcount_s hr_ipcount_t;

hr_ipcount_t *hr_ipcount_new(void);
void hr_ipcount_free(hr_ipcount_t *counts);
/* Counts one more connection from `ip` unless it already has `max`. Returns 1 if counted. */
int hr_ipcount_take(hr_ipcount_t *counts, const char *ip, size_t len, size_t max);
void hr_ipcount_release(hr_ipcount_t *counts, const char *ip, size_t len);

#endif
