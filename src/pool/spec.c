/* --pool values; see spec.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/broker.h"
#include "pool/spec.h"

static int fail(char *err, size_t size, const char *why)
{
    snprintf(err, size, "%s", why);
    return -1;
}

static int number(const char *text, size_t len, int64_t min, int64_t max, int64_t *out)
{
    char buf[24];
    if (len == 0 || len >= sizeof buf) return -1;
    memcpy(buf, text, len);
    buf[len] = '\0';
    char *end;
    errno = 0;
    long long value = strtoll(buf, &end, 10);
    if (errno || *end || buf[0] == '-' || buf[0] == '+' || value < min || value > max) return -1;
    *out = value;
    return 0;
}

/* header=NAME:VALUE: a token name, a value without CR or LF (env:VAR read now). */
static int add_header(hr_pool_spec_t *spec, const char *text, size_t len, char *err, size_t size)
{
    const char *colon = memchr(text, ':', len);
    if (!colon || colon == text || spec->nheaders == HR_POOL_HEADERS_MAX)
        return fail(err, size, "header=NAME:VALUE, at most 8");
    size_t name_len = (size_t)(colon - text);
    for (size_t i = 0; i < name_len; i++)
        if (!strchr("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
                    text[i]))
            return fail(err, size, "a header name is a token");
    char value[1024];
    size_t value_len = len - name_len - 1;
    if (value_len >= sizeof value) return fail(err, size, "header value too long");
    memcpy(value, colon + 1, value_len);
    value[value_len] = '\0';
    const char *resolved = value;
    if (strncmp(value, "env:", 4) == 0 && !(resolved = getenv(value + 4)))
        return fail(err, size, "header value env:VAR names an unset variable");
    if (strpbrk(resolved, "\r\n")) return fail(err, size, "header value holds CR or LF");
    int n = snprintf(spec->headers[spec->nheaders], sizeof spec->headers[0], "%.*s: %s",
                     (int)name_len, text, resolved);
    if (n < 0 || (size_t)n >= sizeof spec->headers[0]) return fail(err, size, "header too long");
    spec->nheaders++;
    return 0;
}

static int option(hr_pool_spec_t *spec, const char *text, size_t len, char *err, size_t size)
{
    int64_t value;
    if (len > 5 && strncmp(text, "size=", 5) == 0) {
        if (number(text + 5, len - 5, 1, HR_POOL_SIZE_MAX, &value) != 0)
            return fail(err, size, "size is 1..100");
        spec->size = (unsigned)value;
    } else if (len > 8 && strncmp(text, "timeout=", 8) == 0) {
        if (number(text + 8, len - 8, 100, 600000, &spec->timeout_ms) != 0)
            return fail(err, size, "timeout is 100..600000 ms");
    } else if (len > 4 && strncmp(text, "ttl=", 4) == 0) {
        if (number(text + 4, len - 4, 0, 365ll * 86400, &spec->ttl_s) != 0)
            return fail(err, size, "ttl is 0..31536000 s");
    } else if (len > 12 && strncmp(text, "concurrency=", 12) == 0) {
        if (number(text + 12, len - 12, 1, 1024, &value) != 0)
            return fail(err, size, "concurrency is 1..1024");
        spec->concurrency = (unsigned)value;
    } else if (len > 7 && strncmp(text, "header=", 7) == 0) {
        return add_header(spec, text + 7, len - 7, err, size);
    } else {
        return fail(err, size, "options are size=, timeout=, ttl=, concurrency= and header=");
    }
    return 0;
}

int hr_pool_spec_parse(const char *text, hr_pool_spec_t *spec, char *err, size_t err_size)
{
    memset(spec, 0, sizeof *spec);
    spec->size = 5;
    spec->timeout_ms = 30000;
    spec->concurrency = 16;
    const char *eq = strchr(text, '=');
    size_t name_len = eq ? (size_t)(eq - text) : 0;
    if (!eq || name_len == 0 || name_len > HR_POOL_NAME_MAX || !hr_topic_name_valid(text, name_len))
        return fail(err, err_size, "NAME=URL: a name of 1-64 topic-name bytes");
    memcpy(spec->name, text, name_len);
    const char *url = eq + 1, *comma = strchr(url, ',');
    size_t url_len = comma ? (size_t)(comma - url) : strlen(url);
    if ((strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) ||
        url_len >= sizeof spec->url || memchr(url, ' ', url_len))
        return fail(err, err_size, "the upstream is an http:// or https:// URL");
    memcpy(spec->url, url, url_len);
    while (comma) {
        const char *start = comma + 1;
        comma = strchr(start, ',');
        size_t len = comma ? (size_t)(comma - start) : strlen(start);
        if (option(spec, start, len, err, err_size) != 0) return -1;
    }
    return 0;
}
