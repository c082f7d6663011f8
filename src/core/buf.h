/* A growable byte buffer for building replies. Allocation failure is sticky: later appends do
 * nothing and hr_buf_failed() tells, so callers check once at the end. */
#ifndef HR_BUF_H
#define HR_BUF_H

#include <stddef.h>

typedef struct hr_buf_s {
    char *data; /* NUL-terminated when len > 0 */
    size_t len; /* bytes used */
    size_t cap; /* bytes allocated */
    int failed; /* an allocation failed */
} hr_buf_t;

void hr_buf_append(hr_buf_t *buf, const char *bytes, size_t len);
void hr_buf_puts(hr_buf_t *buf, const char *str);
void hr_buf_printf(hr_buf_t *buf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void hr_buf_free(hr_buf_t *buf);

static inline int hr_buf_failed(const hr_buf_t *buf)
{
    return buf->failed;
}

#endif
