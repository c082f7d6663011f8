/* An HTTP/2 request's header fields and body gathered into the hr_request_t every handler
 * reads (RFC 9113 §8.3): :method and :path become the method and target, :authority the Host,
 * several cookie fields one Cookie (§8.2.3). Pure: no I/O, no nghttp2; nghttp2 has already
 * checked the fields' syntax and the pseudo-header rules. */
#ifndef HR_H2_REQUEST_H
#define HR_H2_REQUEST_H

#include <stddef.h>

#include "core/buf.h"
#include "http/request.h"

typedef struct hr_h2req_s {
    hr_request_t *req;       /* being built; NULL until the first field */
    size_t max_header_bytes; /* --max-header: names and values together */
    size_t max_body_bytes;   /* --max-body */
    size_t header_bytes;     /* so far */
    size_t method_off, method_len;
    size_t path_off, path_len; /* the whole :path, query included */
    size_t authority_off, authority_len;
    int has_method, has_path, has_authority, has_host;
    hr_buf_t cookie; /* cookie fields joined with "; " */
} hr_h2req_t;

void hr_h2req_init(hr_h2req_t *builder, size_t max_header_bytes, size_t max_body_bytes);
/* Frees what was gathered (a finished request belongs to the caller). */
void hr_h2req_reset(hr_h2req_t *builder);

/* One field. 0, or the status to answer with: 431 (over --max-header or HR_MAX_HEADERS),
 * 503 (out of memory). */
int hr_h2req_field(hr_h2req_t *builder, const char *name, size_t name_len, const char *value,
                   size_t value_len);
/* Body bytes (DATA). 0, or 413 over --max-body, 503 out of memory. */
int hr_h2req_body(hr_h2req_t *builder, const char *bytes, size_t len);

/* The request, the caller's to free with hr_request_free; NULL with *status (400 when
 * :method or a :path starting with '/' is missing, 503). The builder is empty afterwards. */
hr_request_t *hr_h2req_finish(hr_h2req_t *builder, int *status);

#endif
