#include "core/id.h"

int hr_id_parse(const char *s, size_t len, uint64_t *out)
{
    if (len == 0 || len > 19) return -1;
    if (s[0] == '0' && len > 1) return -1;
    uint64_t value = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        uint64_t digit = (uint64_t)(s[i] - '0');
        if (value > (HR_ID_MAX - digit) / 10) return -1;
        value = value * 10 + digit;
    }
    *out = value;
    return 0;
}

size_t hr_id_format(uint64_t id, char *buf)
{
    char tmp[HR_ID_STR_MAX];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + id % 10);
        id /= 10;
    } while (id);
    for (size_t i = 0; i < n; i++)
        buf[i] = tmp[n - 1 - i];
    buf[n] = '\0';
    return n;
}
