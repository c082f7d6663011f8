#include <string.h>

#include "http/query.h"

static int hex_value(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Decodes src[0..len) into dst; returns bytes written or -1. */
static long decode(const char *src, size_t len, char *dst)
{
    size_t out = 0;
    for (size_t i = 0; i < len; i++) {
        if (src[i] == '%') {
            if (i + 2 >= len) return -1;
            int hi = hex_value(src[i + 1]), lo = hex_value(src[i + 2]);
            if (hi < 0 || lo < 0) return -1;
            dst[out++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            dst[out++] = src[i] == '+' ? ' ' : src[i];
        }
    }
    dst[out] = '\0';
    return (long)out;
}

int hr_query_parse(const char *query, size_t len, char *buf, hr_qparam_t *params, size_t max)
{
    size_t n = 0, pos = 0;
    char *out = buf;
    while (pos < len) {
        const char *part = query + pos;
        const char *amp = memchr(part, '&', len - pos);
        size_t part_len = amp ? (size_t)(amp - part) : len - pos;
        pos += part_len + 1;
        if (part_len == 0) continue;
        if (n == max) return -2;
        const char *eq = memchr(part, '=', part_len);
        size_t key_len = eq ? (size_t)(eq - part) : part_len;
        long k = decode(part, key_len, out);
        if (k < 0) return -1;
        params[n].key = out;
        params[n].key_len = (size_t)k;
        out += k + 1;
        long v = eq ? decode(eq + 1, part_len - key_len - 1, out) : (out[0] = '\0', 0);
        if (v < 0) return -1;
        params[n].value = out;
        params[n].value_len = (size_t)v;
        out += v + 1;
        n++;
    }
    return (int)n;
}

const hr_qparam_t *hr_query_get(const hr_qparam_t *params, int n, const char *key)
{
    for (int i = 0; i < n; i++)
        if (strcmp(params[i].key, key) == 0) return &params[i];
    return NULL;
}
