/* application/x-www-form-urlencoded query strings: split on '&', keys and values
 * percent-decoded ('+' is a space). Pure. */
#ifndef HR_QUERY_H
#define HR_QUERY_H

#include <stddef.h>

typedef struct hr_qparam_s {
    const char *key; /* NUL-terminated, in the caller's buffer */
    size_t key_len;
    const char *value; /* NUL-terminated, in the caller's buffer */
    size_t value_len;
} hr_qparam_t;

/* Decodes `query` into `buf` (at least len*2+2 bytes: each key and value gets a NUL) and fills
 * up to `max` params. Returns the count, -1 on a malformed %-escape, -2 on more than `max`. */
int hr_query_parse(const char *query, size_t len, char *buf, hr_qparam_t *params, size_t max);

/* First value of `key`, or NULL. */
const hr_qparam_t *hr_query_get(const hr_qparam_t *params, int n, const char *key);

#endif
