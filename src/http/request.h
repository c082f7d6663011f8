/* HTTP/1.1 request reading (RFC 9112), strict. Pure: no I/O, no allocation beyond the request
 * being built. Feed it bytes; it stops after each complete request so the connection can answer
 * before reading a pipelined next one.
 *
 * Strict where a lenient reading could disagree with a proxy in front of herald (request
 * smuggling): lines end in CRLF only (a bare LF or CR is 400), no obsolete line folding, no
 * whitespace between a field name and its colon, no control bytes in field values, one
 * Content-Length of digits only, never with Transfer-Encoding; `chunked` is the only transfer
 * coding (anything else is 501), once and last; chunk sizes are hex digits only, chunk data is
 * followed by exactly CRLF, chunk extensions and trailers follow the grammar. Violations end in
 * an error status (400, 413, 431, 501, 505) for the caller to send before closing.
 *
 * Written by hand rather than on http_parser (libhttp-parser-dev, unmaintained since 2022):
 * Debian builds it without HTTP_PARSER_STRICT, so it accepts garbage where the CRLF after chunk
 * data belongs, bare LFs, folded lines and spaces before colons, with no switch to refuse them. */
#ifndef HR_REQUEST_H
#define HR_REQUEST_H

#include <stddef.h>
#include <stdint.h>

#define HR_MAX_HEADERS 64

typedef struct hr_header_s {
    size_t name_off, name_len;   /* into request text */
    size_t value_off, value_len; /* into request text; OWS trimmed */
} hr_header_t;

typedef struct hr_request_s {
    char *text;         /* the head as received, tokens NUL-terminated in place */
    size_t text_len;    /* bytes used in text */
    size_t text_cap;    /* bytes allocated */
    const char *method; /* into text: the method token, NUL-terminated */
    size_t method_len;  /* bytes in method */
    const char *path;   /* into text, valid once complete */
    size_t path_len;
    const char *query; /* into text; NULL when absent */
    size_t query_len;
    int http_minor; /* HTTP/1.x */
    hr_header_t headers[HR_MAX_HEADERS];
    size_t nheaders;
    char *body; /* NUL-terminated; NULL when empty */
    size_t body_len;
    size_t body_cap;
    int keep_alive; /* the client allows another request on this connection */
    int upgrade;    /* Connection: upgrade with an Upgrade header */
} hr_request_t;

typedef struct hr_reqparser_s {
    hr_request_t *req;       /* request being read; owned until taken */
    size_t max_header_bytes; /* limit for the head (request line + fields + CRLFs) */
    size_t max_body_bytes;   /* limit for the body */
    int state;               /* where in the message (request.c) */
    int sub;                 /* chunk extension / trailer sub-state */
    char prev;               /* the byte before the next one (CRLF checks) */
    unsigned leading_crlfs;  /* empty lines before the request line */
    int method_done;         /* the request line's first SP was seen */
    size_t line_start;       /* head: where the current line starts in text */
    uint64_t remaining;      /* body or chunk bytes still to come */
    unsigned size_digits;    /* hex digits in the current chunk size */
    size_t line_bytes;       /* chunk line or trailer section bytes so far */
    int complete;            /* `req` is complete */
    int error_status;        /* 400, 413, 431, 501, 503, 505 once failed */
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

/* Case-insensitive header lookup; returns the first value (NUL-terminated) or NULL. */
const char *hr_request_header(const hr_request_t *req, const char *name, size_t *len);

#endif
