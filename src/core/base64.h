/* Standard base64 (RFC 4648, with padding), for carrying binary payloads in JSON. */
#ifndef HR_BASE64_H
#define HR_BASE64_H

#include <stddef.h>

#define HR_BASE64_LEN(n) (((n) + 2) / 3 * 4)

/* Writes HR_BASE64_LEN(len) bytes plus a NUL into `out`; returns the length. */
size_t hr_base64_encode(const unsigned char *data, size_t len, char *out);

#endif
