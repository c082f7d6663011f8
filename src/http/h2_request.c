/* HTTP/2 header fields into an hr_request_t: text holds "name\0value\0" pairs, so the lookup
 * and the handlers see the same request as from HTTP/1.1. Offsets while gathering (the text
 * grows); pointers once finished. */
#include <stdlib.h>
#include <string.h>

#include "http/h2_request.h"

void hr_h2req_init(hr_h2req_t *builder, size_t max_header_bytes, size_t max_body_bytes)
{
    *builder = (hr_h2req_t){.max_header_bytes = max_header_bytes, .max_body_bytes = max_body_bytes};
}

void hr_h2req_reset(hr_h2req_t *builder)
{
    hr_request_free(builder->req);
    hr_buf_free(&builder->cookie);
    hr_h2req_init(builder, builder->max_header_bytes, builder->max_body_bytes);
}

/* Appends `bytes` and a NUL to the request's text; the offset of the copy, or -1. */
static long append_text(hr_request_t *req, const char *bytes, size_t len)
{
    if (req->text_len + len + 1 > req->text_cap) {
        size_t cap = req->text_cap ? req->text_cap : 256;
        while (cap < req->text_len + len + 1)
            cap *= 2;
        char *grown = realloc(req->text, cap);
        if (!grown) return -1;
        req->text = grown;
        req->text_cap = cap;
    }
    size_t off = req->text_len;
    memcpy(req->text + off, bytes, len);
    req->text[off + len] = '\0';
    req->text_len += len + 1;
    return (long)off;
}

static int add_header(hr_request_t *req, const char *name, size_t name_len, const char *value,
                      size_t value_len)
{
    if (req->nheaders == HR_MAX_HEADERS) return 431;
    long name_off = append_text(req, name, name_len);
    long value_off = name_off < 0 ? -1 : append_text(req, value, value_len);
    if (value_off < 0) return 503;
    req->headers[req->nheaders++] =
        (hr_header_t){(size_t)name_off, name_len, (size_t)value_off, value_len};
    return 0;
}

static int is(const char *name, size_t len, const char *literal)
{
    return len == strlen(literal) && memcmp(name, literal, len) == 0;
}

/* A pseudo-header kept as text; its offset and length recorded. */
static int keep_pseudo(hr_request_t *req, const char *value, size_t len, size_t *off,
                       size_t *out_len, int *has)
{
    long at = append_text(req, value, len);
    if (at < 0) return 503;
    *off = (size_t)at;
    *out_len = len;
    *has = 1;
    return 0;
}

int hr_h2req_field(hr_h2req_t *builder, const char *name, size_t name_len, const char *value,
                   size_t value_len)
{
    /* RFC 9113 §6.5.2 counts 32 bytes per field beside its name and value. */
    builder->header_bytes += name_len + value_len + 32;
    if (builder->header_bytes > builder->max_header_bytes) return 431;
    if (!builder->req && !(builder->req = calloc(1, sizeof *builder->req))) return 503;
    hr_request_t *req = builder->req;
    if (is(name, name_len, ":method"))
        return keep_pseudo(req, value, value_len, &builder->method_off, &builder->method_len,
                           &builder->has_method);
    if (is(name, name_len, ":path"))
        return keep_pseudo(req, value, value_len, &builder->path_off, &builder->path_len,
                           &builder->has_path);
    if (is(name, name_len, ":authority"))
        return keep_pseudo(req, value, value_len, &builder->authority_off, &builder->authority_len,
                           &builder->has_authority);
    if (name_len && name[0] == ':') return 0; /* :scheme, :protocol: nothing reads them */
    if (is(name, name_len, "cookie")) {
        if (builder->cookie.len) hr_buf_puts(&builder->cookie, "; ");
        hr_buf_append(&builder->cookie, value, value_len);
        return hr_buf_failed(&builder->cookie) ? 503 : 0;
    }
    if (is(name, name_len, "host")) builder->has_host = 1;
    return add_header(req, name, name_len, value, value_len);
}

int hr_h2req_body(hr_h2req_t *builder, const char *bytes, size_t len)
{
    if (!builder->req && !(builder->req = calloc(1, sizeof *builder->req))) return 503;
    hr_request_t *req = builder->req;
    if (len > builder->max_body_bytes - req->body_len) return 413;
    if (req->body_len + len + 1 > req->body_cap) {
        size_t cap = req->body_cap ? req->body_cap : 1024;
        while (cap < req->body_len + len + 1)
            cap *= 2;
        char *grown = realloc(req->body, cap);
        if (!grown) return 503;
        req->body = grown;
        req->body_cap = cap;
    }
    memcpy(req->body + req->body_len, bytes, len);
    req->body_len += len;
    req->body[req->body_len] = '\0';
    return 0;
}

hr_request_t *hr_h2req_finish(hr_h2req_t *builder, int *status)
{
    hr_request_t *req = builder->req;
    *status = 400;
    if (!req || !builder->has_method || !builder->has_path || !builder->path_len ||
        req->text[builder->path_off] != '/') {
        hr_h2req_reset(builder);
        return NULL;
    }
    int rc = 0;
    if (builder->cookie.len)
        rc = add_header(req, "cookie", 6, builder->cookie.data, builder->cookie.len);
    if (!rc && builder->has_authority && !builder->has_host) {
        /* Copied out first: the text it lives in may move as it grows. */
        char *authority = strndup(req->text + builder->authority_off, builder->authority_len);
        rc = authority ? add_header(req, "host", 4, authority, builder->authority_len) : 503;
        free(authority);
    }
    if (rc) {
        *status = rc;
        hr_h2req_reset(builder);
        return NULL;
    }
    req->method = req->text + builder->method_off;
    req->method_len = builder->method_len;
    char *path = req->text + builder->path_off;
    char *query = memchr(path, '?', builder->path_len);
    req->path = path;
    req->path_len = query ? (size_t)(query - path) : builder->path_len;
    if (query) {
        *query = '\0';
        req->query = query + 1;
        req->query_len = builder->path_len - req->path_len - 1;
    }
    req->http_minor = 1;
    req->keep_alive = 1; /* the connection outlives every stream */
    builder->req = NULL;
    hr_h2req_reset(builder);
    *status = 0;
    return req;
}
