/* A --pool value (issue 18): NAME=UPSTREAM_URL[,size=N][,timeout=MS][,ttl=S][,concurrency=N]
 * [,header=NAME:VALUE]
 * (header repeatable; a value of env:VAR reads the variable, e.g. the upstream's API key). Pure
 * apart from getenv. */
#ifndef HR_POOL_SPEC_H
#define HR_POOL_SPEC_H

#include <stddef.h>
#include <stdint.h>

#define HR_POOL_NAME_MAX    64
#define HR_POOL_HEADERS_MAX 8
#define HR_POOL_SIZE_MAX    100 /* members a key may gather */

typedef struct hr_pool_spec_s {
    char name[HR_POOL_NAME_MAX + 1];         /* topic-name bytes */
    char url[1024];                          /* http:// or https:// */
    unsigned size;                           /* members before a key answers from the pool (5) */
    int64_t timeout_ms;                      /* an upstream call's limit (30,000) */
    int64_t ttl_s;                           /* a member's life; 0 = until evicted (0) */
    unsigned concurrency;                    /* upstream calls at once; more wait (16) */
    char headers[HR_POOL_HEADERS_MAX][1024]; /* "Name: value", values resolved */
    size_t nheaders;
} hr_pool_spec_t;

/* Returns 0, or -1 with why in err. */
int hr_pool_spec_parse(const char *text, hr_pool_spec_t *spec, char *err, size_t err_size);

#endif
