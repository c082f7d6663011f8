#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus/wire.h"
#include "core/id.h"

/* Reads a decimal number ending at `stop`; advances *at past the stop character. */
static int read_number(const char **at, const char *end, char stop, uint64_t *out)
{
    const char *start = *at, *p = start;
    while (p < end && *p != stop)
        p++;
    if (p == end || hr_id_parse(start, (size_t)(p - start), out) != 0) return -1;
    *at = p + 1;
    return 0;
}

hr_msg_t *hr_bus_payload_decode(const char *buf, size_t len)
{
    const char *at = buf, *end = buf + len;
    uint64_t id, time_ms, retry_ms, binary, event_len;
    if (read_number(&at, end, ' ', &id) || read_number(&at, end, ' ', &time_ms) ||
        read_number(&at, end, ' ', &retry_ms) || read_number(&at, end, ' ', &binary) ||
        read_number(&at, end, '\n', &event_len))
        return NULL;
    if (id == 0 || binary > 1 || retry_ms > UINT32_MAX || event_len > (uint64_t)(end - at))
        return NULL;
    const char *event = at, *data = at + event_len;
    hr_msg_t *msg = hr_msg_new(event, (size_t)event_len, data, (size_t)(end - data),
                               (uint32_t)retry_ms, (int)binary);
    if (!msg) return NULL;
    msg->id = id;
    msg->time_ms = (int64_t)time_ms;
    return msg;
}

int hr_bus_stream_id_parse(const char *s, size_t len, uint64_t *id)
{
    if (len < 3 || s[len - 2] != '-' || s[len - 1] != '0') return -1;
    return hr_id_parse(s, len - 2, id) == 0 && *id > 0 ? 0 : -1;
}

static const hr_bus_field_t *field(const hr_bus_field_t *fields, size_t n, char name)
{
    for (size_t i = 0; i < n; i++)
        if (fields[i].name_len == 1 && fields[i].name[0] == name) return &fields[i];
    return NULL;
}

static int field_number(const hr_bus_field_t *f, uint64_t *out)
{
    return f ? hr_id_parse(f->value, f->value_len, out) : -1;
}

hr_msg_t *hr_bus_entry_decode(const char *id_str, size_t id_len, const hr_bus_field_t *fields,
                              size_t nfields, uint64_t *prev)
{
    uint64_t id, time_ms, retry_ms, binary;
    const hr_bus_field_t *event = field(fields, nfields, 'e'), *data = field(fields, nfields, 'd');
    if (hr_bus_stream_id_parse(id_str, id_len, &id) != 0 ||
        field_number(field(fields, nfields, 'p'), prev) != 0 ||
        field_number(field(fields, nfields, 't'), &time_ms) != 0 ||
        field_number(field(fields, nfields, 'r'), &retry_ms) != 0 ||
        field_number(field(fields, nfields, 'b'), &binary) != 0 || !event || !data || binary > 1 ||
        retry_ms > UINT32_MAX)
        return NULL;
    hr_msg_t *msg = hr_msg_new(event->value, event->value_len, data->value, data->value_len,
                               (uint32_t)retry_ms, (int)binary);
    if (!msg) return NULL;
    msg->id = id;
    msg->time_ms = (int64_t)time_ms;
    return msg;
}

static int fail(char *err, size_t err_size, const char *why)
{
    snprintf(err, err_size, "%s", why);
    return -1;
}

static int parse_unix(const char *rest, hr_redis_url_t *out, char *err, size_t err_size)
{
    while (rest[0] == '/' && rest[1] == '/')
        rest++; /* unix:///path and unix:/path alike */
    if (rest[0] != '/') return fail(err, err_size, "unix socket path must be absolute");
    if (strlen(rest) >= sizeof out->path) return fail(err, err_size, "socket path too long");
    strcpy(out->path, rest);
    return 0;
}

int hr_redis_url_parse(const char *url, hr_redis_url_t *out, char *err, size_t err_size)
{
    memset(out, 0, sizeof *out);
    out->port = 6379;
    if (strncmp(url, "unix:", 5) == 0) return parse_unix(url + 5, out, err, err_size);
    if (strncmp(url, "redis://", 8) != 0)
        return fail(err, err_size, "expected redis://host:port[/db] or unix:///path");
    const char *at = url + 8, *slash = strchr(at, '/'), *end = slash ? slash : at + strlen(at);
    const char *userinfo = memchr(at, '@', (size_t)(end - at));
    if (userinfo) {
        const char *colon = memchr(at, ':', (size_t)(userinfo - at));
        if (!colon) return fail(err, err_size, "credentials must be :password@ or user:password@");
        size_t plen = (size_t)(userinfo - colon - 1);
        if (plen >= sizeof out->password) return fail(err, err_size, "password too long");
        memcpy(out->password, colon + 1, plen);
        at = userinfo + 1;
    }
    const char *colon = memchr(at, ':', (size_t)(end - at));
    const char *host_end = colon ? colon : end;
    size_t hlen = (size_t)(host_end - at);
    if (hlen == 0 || hlen >= sizeof out->host) return fail(err, err_size, "bad host");
    memcpy(out->host, at, hlen);
    if (colon) {
        uint64_t port;
        if (hr_id_parse(colon + 1, (size_t)(end - colon - 1), &port) != 0 || port == 0 ||
            port > 65535)
            return fail(err, err_size, "port must be 1-65535");
        out->port = (int)port;
    }
    if (slash && slash[1]) {
        uint64_t db;
        if (hr_id_parse(slash + 1, strlen(slash + 1), &db) != 0 || db > 15)
            return fail(err, err_size, "database must be a number 0-15");
        out->db = (int)db;
    }
    return 0;
}
