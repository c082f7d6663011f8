/* HTTP/1.1 request reading on top of http_parser (libhttp-parser-dev). Pure: no I/O, no
 * allocation beyond the request being built. Feed it bytes; it stops (pauses) after each
 * complete request so the connection can answer before reading a pipelined next one.
 * Limits: header section (request line + headers) and body size; violations end in an error
 * status (400, 413, 431) for the caller to send before closing. */
#ifndef HR_REQUEST_H
#define HR_REQUEST_H

#include <http_parser.h>
#include <stddef.h>

#define HR_MAX_HEADERS 64

typedef struct hr_header_s {
    size_t name_off, name_len;   /* into request text */
    size_t value_off, value_len; /* into request text */
} hr_header_t;

typedef struct hr_request_s {
    int method;      /* enum http_method */
    char *text;      /* url and header bytes, each NUL-terminated */
    size_t text_len; /* bytes used in text */
    size_t text_cap; /* bytes allocated */
    size_t url_off, url_len;
    const char *path; /* into text, valid once complete */
    size_t path_len;
    const char *query; /* into text; NULL when absent */
    size_t query_len;
    hr_header_t headers[HR_MAX_HEADERS];
    size_t nheaders;
    char *body; /* NUL-terminated; NULL when empty */
    size_t body_len;
    size_t body_cap;
    int keep_alive; /* the client allows another request on this connection */
    int upgrade;    /* Connection: upgrade was requested */
} hr_request_t;

typedef struct hr_reqparser_s {
    http_parser parser;
    hr_request_t *req;       /* request being read; owned until taken */
    size_t max_header_bytes; /* limit for request line + headers */
    size_t max_body_bytes;   /* limit for the body */
    size_t header_bytes;     /* counted so far for `req` */
    int token;               /* what the last text callback added: 0 url, 1 name, 2 value */
    int complete;            /* `req` is complete */
    int error_status;        /* 400, 413, 431 once failed */
    const char *error;       /* reason for error_status */
} hr_reqparser_t;

enum hr_parse_result { HR_PARSE_MORE, HR_PARSE_READY, HR_PARSE_ERROR };

void hr_reqparser_init(hr_reqparser_t *rp, size_t max_header_bytes, size_t max_body_bytes);
/* Frees any request in progress. */
void hr_reqparser_reset(hr_reqparser_t *rp);

/* Consumes up to `len` bytes; *consumed tells how many. READY: take the request with
 * hr_reqparser_take, then feed the rest. ERROR: see error_status and error. */
enum hr_parse_result hr_reqparser_feed(hr_reqparser_t *rp, const char *data, size_t len,
                                       size_t *consumed);

/* Hands over the complete request (caller frees with hr_request_free) and readies the parser
 * for the next one. */
hr_request_t *hr_reqparser_take(hr_reqparser_t *rp);

void hr_request_free(hr_request_t *req);

/* Case-insensitive header lookup; returns the value (NUL-terminated) or NULL. */
const char *hr_request_header(const hr_request_t *req, const char *name, size_t *len);

#endif
