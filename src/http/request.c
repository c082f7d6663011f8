/* Request reading on http_parser. The parser hands us tokens in pieces; we copy them into one
 * growing text buffer, each token NUL-terminated, and keep offsets (the buffer may move). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http/request.h"

static int on_message_begin(http_parser *parser);
static int on_url(http_parser *parser, const char *at, size_t len);
static int on_header_field(http_parser *parser, const char *at, size_t len);
static int on_header_value(http_parser *parser, const char *at, size_t len);
static int on_headers_complete(http_parser *parser);
static int on_body(http_parser *parser, const char *at, size_t len);
static int on_message_complete(http_parser *parser);

static const http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

enum { TOKEN_URL, TOKEN_NAME, TOKEN_VALUE };

void hr_reqparser_init(hr_reqparser_t *rp, size_t max_header_bytes, size_t max_body_bytes)
{
    memset(rp, 0, sizeof *rp);
    http_parser_init(&rp->parser, HTTP_REQUEST);
    rp->parser.data = rp;
    rp->max_header_bytes = max_header_bytes;
    rp->max_body_bytes = max_body_bytes;
}

void hr_request_free(hr_request_t *req)
{
    if (!req) return;
    free(req->text);
    free(req->body);
    free(req);
}

void hr_reqparser_reset(hr_reqparser_t *rp)
{
    hr_request_free(rp->req);
    rp->req = NULL;
}

static int fail(hr_reqparser_t *rp, int status, const char *why)
{
    rp->error_status = status;
    rp->error = why;
    return -1;
}

static int on_message_begin(http_parser *parser)
{
    hr_reqparser_t *rp = parser->data;
    hr_request_free(rp->req);
    rp->req = calloc(1, sizeof *rp->req);
    if (!rp->req) return fail(rp, 503, "out of memory");
    rp->header_bytes = 0;
    rp->token = TOKEN_URL;
    rp->complete = 0;
    return 0;
}

/* Makes *buf hold at least `need` bytes, doubling from `first`, never above `most`. */
static int reserve(char **buf, size_t *cap, size_t need, size_t first, size_t most)
{
    if (need <= *cap) return 0;
    size_t grown = *cap ? *cap : first;
    while (grown < need)
        grown *= 2;
    if (grown > most) grown = most;
    char *bigger = realloc(*buf, grown);
    if (!bigger) return -1;
    *buf = bigger;
    *cap = grown;
    return 0;
}

/* Appends `len` bytes to the request text, counting them against the header limit. */
static int append_text(hr_reqparser_t *rp, const char *at, size_t len)
{
    hr_request_t *req = rp->req;
    rp->header_bytes += len;
    if (rp->header_bytes > rp->max_header_bytes)
        return fail(rp, 431, "request header section too large");
    if (reserve(&req->text, &req->text_cap, req->text_len + len + 1, 512, SIZE_MAX) != 0)
        return fail(rp, 503, "out of memory");
    memcpy(req->text + req->text_len, at, len);
    req->text_len += len;
    req->text[req->text_len] = '\0';
    return 0;
}

/* Ends the current token with its NUL, which append_text already wrote. */
static int end_token(hr_reqparser_t *rp)
{
    if (append_text(rp, "", 0) != 0) return -1;
    rp->req->text_len++;
    return 0;
}

static int on_url(http_parser *parser, const char *at, size_t len)
{
    hr_reqparser_t *rp = parser->data;
    rp->req->url_len += len;
    return append_text(rp, at, len);
}

/* Closes whatever token is open; a header that got no value callback gets an empty one. */
static int close_token(hr_reqparser_t *rp)
{
    hr_request_t *req = rp->req;
    if (end_token(rp) != 0) return -1;
    if (rp->token == TOKEN_NAME) {
        req->headers[req->nheaders - 1].value_off = req->text_len;
        if (end_token(rp) != 0) return -1;
    }
    return 0;
}

static int on_header_field(http_parser *parser, const char *at, size_t len)
{
    hr_reqparser_t *rp = parser->data;
    hr_request_t *req = rp->req;
    if (rp->token != TOKEN_NAME) {
        if (close_token(rp) != 0) return -1;
        if (req->nheaders == HR_MAX_HEADERS) return fail(rp, 431, "too many headers");
        req->headers[req->nheaders++] = (hr_header_t){req->text_len, 0, 0, 0};
        rp->token = TOKEN_NAME;
        rp->header_bytes += 4; /* ": " and CRLF */
    }
    req->headers[req->nheaders - 1].name_len += len;
    return append_text(rp, at, len);
}

static int on_header_value(http_parser *parser, const char *at, size_t len)
{
    hr_reqparser_t *rp = parser->data;
    hr_request_t *req = rp->req;
    hr_header_t *hdr = &req->headers[req->nheaders - 1];
    if (rp->token == TOKEN_NAME) {
        if (end_token(rp) != 0) return -1;
        hdr->value_off = req->text_len;
        rp->token = TOKEN_VALUE;
    }
    hdr->value_len += len;
    return append_text(rp, at, len);
}

static void split_url(hr_request_t *req)
{
    char *url = req->text + req->url_off;
    char *mark = memchr(url, '?', req->url_len);
    req->path = url;
    req->path_len = mark ? (size_t)(mark - url) : req->url_len;
    req->query = mark ? mark + 1 : NULL;
    req->query_len = mark ? req->url_len - req->path_len - 1 : 0;
}

static int on_headers_complete(http_parser *parser)
{
    hr_reqparser_t *rp = parser->data;
    hr_request_t *req = rp->req;
    if (close_token(rp) != 0) return -1;
    if (req->url_len == 0 || req->text[req->url_off] != '/')
        return fail(rp, 400, "request target must be an absolute path");
    if (parser->http_major != 1 || parser->http_minor > 1)
        return fail(rp, 505, "only HTTP/1.0 and HTTP/1.1 are served");
    split_url(req);
    req->method = parser->method;
    req->keep_alive = http_should_keep_alive(parser);
    req->upgrade = parser->upgrade;
    if ((parser->flags & F_CONTENTLENGTH) && parser->content_length > rp->max_body_bytes)
        return fail(rp, 413, "request body too large");
    return 0;
}

static int on_body(http_parser *parser, const char *at, size_t len)
{
    hr_reqparser_t *rp = parser->data;
    hr_request_t *req = rp->req;
    if (req->body_len + len > rp->max_body_bytes) return fail(rp, 413, "request body too large");
    if (reserve(&req->body, &req->body_cap, req->body_len + len + 1, 1024,
                rp->max_body_bytes + 1) != 0)
        return fail(rp, 503, "out of memory");
    memcpy(req->body + req->body_len, at, len);
    req->body_len += len;
    req->body[req->body_len] = '\0';
    return 0;
}

static int on_message_complete(http_parser *parser)
{
    hr_reqparser_t *rp = parser->data;
    rp->complete = 1;
    http_parser_pause(parser, 1); /* answer this one before reading a pipelined next */
    return 0;
}

enum hr_parse_result hr_reqparser_feed(hr_reqparser_t *rp, const char *data, size_t len,
                                       size_t *consumed)
{
    *consumed = 0;
    if (rp->error_status) return HR_PARSE_ERROR;
    if (rp->complete) return HR_PARSE_READY;
    size_t parsed = http_parser_execute(&rp->parser, &settings, data, len);
    enum http_errno err = HTTP_PARSER_ERRNO(&rp->parser);
    *consumed = parsed;
    if (rp->complete) return HR_PARSE_READY; /* paused right after this request */
    if (rp->error_status) return HR_PARSE_ERROR;
    if (err != HPE_OK) {
        rp->error_status = 400;
        rp->error = http_errno_description(err);
        return HR_PARSE_ERROR;
    }
    return HR_PARSE_MORE;
}

hr_request_t *hr_reqparser_take(hr_reqparser_t *rp)
{
    hr_request_t *req = rp->req;
    rp->req = NULL;
    rp->complete = 0;
    if (HTTP_PARSER_ERRNO(&rp->parser) == HPE_PAUSED) http_parser_pause(&rp->parser, 0);
    return req;
}

const char *hr_request_header(const hr_request_t *req, const char *name, size_t *len)
{
    size_t name_len = strlen(name);
    for (size_t i = 0; i < req->nheaders; i++) {
        const hr_header_t *hdr = &req->headers[i];
        if (hdr->name_len == name_len &&
            strncasecmp(req->text + hdr->name_off, name, name_len) == 0) {
            if (len) *len = hdr->value_len;
            return req->text + hdr->value_off;
        }
    }
    return NULL;
}
