/* Request reading (RFC 9112). The head is gathered as received, its line ends and method
 * checked byte by byte as they come (so garbage is refused at once, not at the size limit),
 * then parsed in place: tokens are NUL-terminated where they end and kept as offsets. The
 * body is read by Content-Length, or decoded from chunked with every CRLF checked. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http/request.h"

enum state {
    ST_HEAD,          /* request line and fields, up to the empty line */
    ST_LENGTH,        /* Content-Length body */
    ST_CHUNK_SIZE,    /* hex digits */
    ST_CHUNK_EXT,     /* ;name=value after the size (sub: ext_state) */
    ST_CHUNK_LF,      /* the LF ending the size line */
    ST_CHUNK_DATA,    /* `remaining` bytes of data */
    ST_CHUNK_DATA_CR, /* the CRLF after chunk data */
    ST_CHUNK_DATA_LF,
    ST_TRAILER, /* trailer fields after the last chunk (sub: trailer_state) */
    ST_DONE,
};

enum ext_state {
    EXT_BWS,
    EXT_NAME_START,
    EXT_NAME,
    EXT_AFTER_NAME,
    EXT_VALUE_START,
    EXT_TOKEN,
    EXT_QUOTED,
    EXT_QUOTED_PAIR,
    EXT_AFTER_VALUE
};

enum trailer_state { TR_LINE_START, TR_NAME, TR_VALUE, TR_LF, TR_END_LF };

#define MAX_LEADING_CRLFS 8    /* empty lines tolerated before a request line (RFC 9112 2.2) */
#define MAX_CHUNK_LINE    4096 /* a chunk size line with its extensions */

/* RFC 9110 5.6.2: the bytes of a token (method, field name, coding, extension name). */
static int is_tchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return 1;
    return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* What a field value may hold: VCHAR, obs-text, SP, HTAB; no other control byte. */
static int is_field_byte(unsigned char c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static int is_ows(unsigned char c)
{
    return c == ' ' || c == '\t';
}

static int hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static void reset_message_state(hr_reqparser_t *rp)
{
    rp->state = ST_HEAD;
    rp->sub = 0;
    rp->prev = 0;
    rp->leading_crlfs = 0;
    rp->method_done = 0;
    rp->line_start = 0;
    rp->remaining = 0;
    rp->size_digits = 0;
    rp->line_bytes = 0;
    rp->complete = 0;
}

void hr_reqparser_init(hr_reqparser_t *rp, size_t max_header_bytes, size_t max_body_bytes)
{
    memset(rp, 0, sizeof *rp);
    rp->max_header_bytes = max_header_bytes;
    rp->max_body_bytes = max_body_bytes;
    reset_message_state(rp);
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

/* ---- the head ---- */

/* Skips the empty lines a client may send before a request line; starts the request at the
 * first other byte. Returns bytes used, or -1. */
static long skip_leading(hr_reqparser_t *rp, const char *data, size_t len)
{
    size_t at = 0;
    for (; at < len && !rp->req; at++) {
        unsigned char c = (unsigned char)data[at];
        if (c == '\r' && rp->prev != '\r') {
            rp->prev = '\r';
        } else if (c == '\n' && rp->prev == '\r') {
            rp->prev = 0;
            if (++rp->leading_crlfs > MAX_LEADING_CRLFS)
                return fail(rp, 400, "too many empty lines before the request line");
        } else if (rp->prev == '\r' || c == '\n') {
            return fail(rp, 400, "bare CR or LF: lines must end in CRLF");
        } else {
            rp->req = calloc(1, sizeof *rp->req);
            if (!rp->req) return fail(rp, 503, "out of memory");
            return (long)at;
        }
    }
    return (long)at;
}

/* Checks head bytes as they come: CRLF line ends only, a token for the method. Returns how
 * many of `data` belong to the head (through its empty line when *ended), or -1. */
static long scan_head(hr_reqparser_t *rp, const char *data, size_t len, int *ended)
{
    size_t base = rp->req->text_len;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)data[i];
        if (rp->prev == '\r' && c != '\n') return fail(rp, 400, "bare CR: lines must end in CRLF");
        if (c == '\n') {
            if (rp->prev != '\r') return fail(rp, 400, "bare LF: lines must end in CRLF");
            rp->prev = (char)c;
            if (base + i - 1 == rp->line_start) {
                *ended = 1;
                return (long)(i + 1);
            }
            rp->line_start = base + i + 1;
            rp->method_done = 1;
            continue;
        }
        if (!rp->method_done && c != '\r') {
            if (c == ' ')
                rp->method_done = 1;
            else if (!is_tchar(c))
                return fail(rp, 400, "invalid request method");
        }
        rp->prev = (char)c;
    }
    return (long)len;
}

/* method SP request-target SP HTTP-version CRLF, in place. Returns the offset of the first
 * field line, or -1. */
static long parse_request_line(hr_reqparser_t *rp, hr_request_t *req)
{
    char *text = req->text;
    char *eol = memchr(text, '\r', req->text_len);
    char *sp1 = memchr(text, ' ', (size_t)(eol - text));
    if (!sp1 || sp1 == text) return fail(rp, 400, "malformed request line");
    for (char *p = text; p < sp1; p++)
        if (!is_tchar((unsigned char)*p)) return fail(rp, 400, "invalid request method");
    char *target = sp1 + 1;
    char *sp2 = memchr(target, ' ', (size_t)(eol - target));
    if (!sp2 || sp2 == target) return fail(rp, 400, "malformed request line");
    if (memchr(sp2 + 1, ' ', (size_t)(eol - sp2 - 1))) /* a space inside the target */
        return fail(rp, 400, "bad request line: escape spaces in the path as %20");
    for (char *p = target; p < sp2; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
            return fail(rp, 400, "invalid byte in request target");
    const char *version = sp2 + 1;
    if (eol - version != 8 || memcmp(version, "HTTP/", 5) != 0 || version[5] < '0' ||
        version[5] > '9' || version[6] != '.' || version[7] < '0' || version[7] > '9')
        return fail(rp, 400, "malformed HTTP version");
    if (version[5] != '1' || version[7] > '1')
        return fail(rp, 505, "only HTTP/1.0 and HTTP/1.1 are served");
    if (*target != '/') return fail(rp, 400, "request target must be an absolute path");
    req->http_minor = version[7] - '0';
    *sp1 = '\0';
    *sp2 = '\0';
    req->method = text;
    req->method_len = (size_t)(sp1 - text);
    size_t target_len = (size_t)(sp2 - target);
    char *mark = memchr(target, '?', target_len);
    req->path = target;
    req->path_len = mark ? (size_t)(mark - target) : target_len;
    req->query = mark ? mark + 1 : NULL;
    req->query_len = mark ? target_len - req->path_len - 1 : 0;
    return eol + 2 - text;
}

/* field-name ":" OWS field-value OWS CRLF, each in place, up to the empty line. */
static int parse_fields(hr_reqparser_t *rp, hr_request_t *req, size_t pos)
{
    char *text = req->text;
    for (;;) {
        char *line = text + pos;
        char *eol = memchr(line, '\r', req->text_len - pos);
        if (eol == line) return 0;
        if (is_ows((unsigned char)*line)) return fail(rp, 400, "obsolete line folding");
        char *colon = line;
        while (colon < eol && is_tchar((unsigned char)*colon))
            colon++;
        if (colon == line || colon == eol || *colon != ':')
            return fail(rp, 400, "invalid header field name (no space before the colon)");
        char *value = colon + 1, *end = eol;
        while (value < end && is_ows((unsigned char)*value))
            value++;
        while (end > value && is_ows((unsigned char)end[-1]))
            end--;
        for (char *p = value; p < end; p++)
            if (!is_field_byte((unsigned char)*p))
                return fail(rp, 400, "invalid byte in header value");
        if (req->nheaders == HR_MAX_HEADERS) return fail(rp, 431, "too many headers");
        *colon = '\0';
        *end = '\0';
        req->headers[req->nheaders++] =
            (hr_header_t){(size_t)(line - text), (size_t)(colon - line), (size_t)(value - text),
                          (size_t)(end - value)};
        pos = (size_t)(eol + 2 - text);
    }
}

static int name_is(const hr_request_t *req, const hr_header_t *hdr, const char *name)
{
    return strcasecmp(req->text + hdr->name_off, name) == 0;
}

/* Calls fn for each element of a comma-separated list value, OWS trimmed, empties skipped. */
static int each_element(const char *value, size_t len, int (*fn)(void *arg, const char *, size_t),
                        void *arg)
{
    size_t at = 0;
    while (at <= len) {
        const char *comma = memchr(value + at, ',', len - at);
        size_t end = comma ? (size_t)(comma - value) : len, start = at;
        while (start < end && is_ows((unsigned char)value[start]))
            start++;
        size_t stop = end;
        while (stop > start && is_ows((unsigned char)value[stop - 1]))
            stop--;
        if (stop > start && fn(arg, value + start, stop - start) != 0) return -1;
        at = end + 1;
    }
    return 0;
}

typedef struct framing_s {
    hr_reqparser_t *rp;
    unsigned hosts, lengths, te_headers;
    uint64_t length;
    int chunked, unsupported, close, keep_alive, upgrade_token, upgrade_header;
} framing_t;

static int element_is(const char *element, size_t len, const char *word)
{
    return len == strlen(word) && strncasecmp(element, word, len) == 0;
}

/* Transfer codings in order: `chunked` must be last and once; others are not implemented. */
static int on_coding(void *arg, const char *coding, size_t len)
{
    framing_t *f = arg;
    if (f->chunked) return fail(f->rp, 400, "chunked must be the last transfer coding, once");
    if (element_is(coding, len, "chunked"))
        f->chunked = 1;
    else
        f->unsupported = 1;
    return 0;
}

static int on_connection(void *arg, const char *option, size_t len)
{
    framing_t *f = arg;
    if (element_is(option, len, "close")) f->close = 1;
    if (element_is(option, len, "keep-alive")) f->keep_alive = 1;
    if (element_is(option, len, "upgrade")) f->upgrade_token = 1;
    return 0;
}

static int parse_length(framing_t *f, const char *value, size_t len)
{
    if (len == 0 || len > 19) return fail(f->rp, 400, "invalid Content-Length");
    uint64_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (value[i] < '0' || value[i] > '9') return fail(f->rp, 400, "invalid Content-Length");
        n = n * 10 + (uint64_t)(value[i] - '0');
    }
    f->length = n;
    return 0;
}

static int read_field(framing_t *f, const hr_request_t *req, const hr_header_t *hdr)
{
    const char *value = req->text + hdr->value_off;
    if (name_is(req, hdr, "Host")) f->hosts++;
    if (name_is(req, hdr, "Upgrade")) f->upgrade_header = 1;
    if (name_is(req, hdr, "Content-Length")) {
        if (f->lengths++) return fail(f->rp, 400, "more than one Content-Length");
        if (parse_length(f, value, hdr->value_len) != 0) return -1;
    }
    if (name_is(req, hdr, "Transfer-Encoding")) {
        f->te_headers++;
        if (each_element(value, hdr->value_len, on_coding, f) != 0) return -1;
    }
    if (name_is(req, hdr, "Connection"))
        return each_element(value, hdr->value_len, on_connection, f);
    return 0;
}

/* How the body is framed, and what the connection allows after it (RFC 9112 6, 9.3). */
static int read_framing(hr_reqparser_t *rp, hr_request_t *req)
{
    framing_t f = {.rp = rp};
    for (size_t i = 0; i < req->nheaders; i++)
        if (read_field(&f, req, &req->headers[i]) != 0) return -1;
    if (f.te_headers && f.lengths) return fail(rp, 400, "Content-Length with Transfer-Encoding");
    if (f.te_headers && req->http_minor == 0)
        return fail(rp, 400, "Transfer-Encoding in an HTTP/1.0 request");
    if (f.unsupported) return fail(rp, 501, "transfer coding not implemented: only chunked");
    if (f.te_headers && !f.chunked) return fail(rp, 400, "empty Transfer-Encoding");
    if (f.hosts > 1 || (req->http_minor == 1 && f.hosts == 0))
        return fail(rp, 400, "an HTTP/1.1 request needs exactly one Host header");
    if (f.lengths && f.length > rp->max_body_bytes) return fail(rp, 413, "request body too large");
    req->keep_alive = !f.close && (req->http_minor == 1 || f.keep_alive);
    req->upgrade = f.upgrade_token && f.upgrade_header;
    rp->remaining = f.length;
    rp->state = f.chunked ? ST_CHUNK_SIZE : f.length ? ST_LENGTH : ST_DONE;
    return 0;
}

static int parse_head(hr_reqparser_t *rp, hr_request_t *req)
{
    long fields = parse_request_line(rp, req);
    if (fields < 0 || parse_fields(rp, req, (size_t)fields) != 0) return -1;
    return read_framing(rp, req);
}

/* Gathers head bytes; parses the head once its empty line is in. Returns bytes used, or -1. */
static long feed_head(hr_reqparser_t *rp, const char *data, size_t len)
{
    hr_request_t *req = rp->req;
    int ended = 0;
    long n = scan_head(rp, data, len, &ended);
    if (n < 0) return -1;
    if (req->text_len + (size_t)n > rp->max_header_bytes)
        return fail(rp, 431, "request header section too large");
    if (reserve(&req->text, &req->text_cap, req->text_len + (size_t)n + 1, 512, SIZE_MAX) != 0)
        return fail(rp, 503, "out of memory");
    memcpy(req->text + req->text_len, data, (size_t)n);
    req->text_len += (size_t)n;
    req->text[req->text_len] = '\0';
    if (ended && parse_head(rp, req) != 0) return -1;
    return n;
}

/* ---- the body ---- */

static int append_body(hr_reqparser_t *rp, const char *data, size_t len)
{
    hr_request_t *req = rp->req;
    if (req->body_len + len > rp->max_body_bytes) return fail(rp, 413, "request body too large");
    if (reserve(&req->body, &req->body_cap, req->body_len + len + 1, 1024,
                rp->max_body_bytes + 1) != 0)
        return fail(rp, 503, "out of memory");
    memcpy(req->body + req->body_len, data, len);
    req->body_len += len;
    req->body[req->body_len] = '\0';
    return 0;
}

/* chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS ( token / quoted-string ) ] ), up to CR. */
static int ext_byte(hr_reqparser_t *rp, unsigned char c)
{
    int ows = is_ows(c), tchar = is_tchar(c);
    switch (rp->sub) {
    case EXT_BWS: /* after the size: only ";" may follow the whitespace */
        if (c == ';') rp->sub = EXT_NAME_START;
        return ows || c == ';' ? 0 : -1;
    case EXT_NAME_START:
        if (tchar) rp->sub = EXT_NAME;
        return ows || tchar ? 0 : -1;
    case EXT_NAME:
    case EXT_AFTER_NAME:
        if (c == '=')
            rp->sub = EXT_VALUE_START;
        else if (c == ';')
            rp->sub = EXT_NAME_START;
        else if (ows)
            rp->sub = EXT_AFTER_NAME;
        else if (!(tchar && rp->sub == EXT_NAME))
            return -1;
        return 0;
    case EXT_VALUE_START:
        if (c == '"')
            rp->sub = EXT_QUOTED;
        else if (tchar)
            rp->sub = EXT_TOKEN;
        return ows || tchar || c == '"' ? 0 : -1;
    case EXT_TOKEN:
    case EXT_AFTER_VALUE:
        if (c == ';')
            rp->sub = EXT_NAME_START;
        else if (ows)
            rp->sub = EXT_AFTER_VALUE;
        else if (!(tchar && rp->sub == EXT_TOKEN))
            return -1;
        return 0;
    case EXT_QUOTED:
        if (c == '"')
            rp->sub = EXT_AFTER_VALUE;
        else if (c == '\\')
            rp->sub = EXT_QUOTED_PAIR;
        return is_field_byte(c) ? 0 : -1;
    case EXT_QUOTED_PAIR:
        rp->sub = EXT_QUOTED;
        return is_field_byte(c) ? 0 : -1;
    }
    return -1;
}

/* The end of a chunk extension may come only where a value or name is complete. */
static int ext_may_end(int sub)
{
    return sub == EXT_NAME || sub == EXT_AFTER_NAME || sub == EXT_TOKEN || sub == EXT_AFTER_VALUE;
}

static int size_byte(hr_reqparser_t *rp, unsigned char c)
{
    int digit = hex_value(c);
    if (digit >= 0) {
        /* Bounded before it is multiplied: no size can wrap around. */
        if (rp->remaining > rp->max_body_bytes / 16 ||
            rp->remaining * 16 + (uint64_t)digit > rp->max_body_bytes - rp->req->body_len)
            return fail(rp, 413, "request body too large");
        rp->remaining = rp->remaining * 16 + (uint64_t)digit;
        rp->size_digits++;
        return 0;
    }
    if (!rp->size_digits) return fail(rp, 400, "invalid chunk size");
    if (c == '\r')
        rp->state = ST_CHUNK_LF;
    else if (c == ';' || is_ows(c)) {
        rp->state = ST_CHUNK_EXT;
        rp->sub = c == ';' ? EXT_NAME_START : EXT_BWS;
    } else
        return fail(rp, 400, "invalid chunk size");
    return 0;
}

/* Trailer fields: checked like header fields, then dropped. */
static int trailer_byte(hr_reqparser_t *rp, unsigned char c)
{
    if (++rp->line_bytes > rp->max_header_bytes) return fail(rp, 431, "trailer section too large");
    switch (rp->sub) {
    case TR_LINE_START:
        if (c == '\r')
            rp->sub = TR_END_LF;
        else if (is_tchar(c))
            rp->sub = TR_NAME;
        else
            return fail(rp, 400, is_ows(c) ? "obsolete line folding" : "invalid trailer field");
        return 0;
    case TR_NAME:
        if (c == ':')
            rp->sub = TR_VALUE;
        else if (!is_tchar(c))
            return fail(rp, 400, "invalid trailer field name");
        return 0;
    case TR_VALUE:
        if (c == '\r')
            rp->sub = TR_LF;
        else if (!is_field_byte(c))
            return fail(rp, 400, "invalid byte in trailer value");
        return 0;
    case TR_LF:
    case TR_END_LF:
        if (c != '\n') return fail(rp, 400, "bare CR in trailer section");
        rp->state = rp->sub == TR_END_LF ? ST_DONE : ST_TRAILER;
        rp->sub = TR_LINE_START;
        return 0;
    }
    return -1;
}

/* One byte of chunk framing (everything but chunk data). */
static int chunk_byte(hr_reqparser_t *rp, unsigned char c)
{
    if ((rp->state == ST_CHUNK_SIZE || rp->state == ST_CHUNK_EXT) &&
        ++rp->line_bytes > MAX_CHUNK_LINE)
        return fail(rp, 400, "chunk size line too long");
    switch (rp->state) {
    case ST_CHUNK_SIZE:
        return size_byte(rp, c);
    case ST_CHUNK_EXT:
        if (c == '\r' && ext_may_end(rp->sub))
            rp->state = ST_CHUNK_LF;
        else if (ext_byte(rp, c) != 0)
            return fail(rp, 400, "invalid chunk extension");
        return 0;
    case ST_CHUNK_LF:
        if (c != '\n') return fail(rp, 400, "chunk size line not ended by CRLF");
        rp->state = rp->remaining ? ST_CHUNK_DATA : ST_TRAILER;
        rp->sub = TR_LINE_START;
        rp->line_bytes = 0;
        return 0;
    case ST_CHUNK_DATA_CR:
        if (c != '\r') return fail(rp, 400, "chunk data not followed by CRLF");
        rp->state = ST_CHUNK_DATA_LF;
        return 0;
    case ST_CHUNK_DATA_LF:
        if (c != '\n') return fail(rp, 400, "chunk data not followed by CRLF");
        rp->state = ST_CHUNK_SIZE;
        rp->size_digits = 0;
        rp->remaining = 0;
        return 0;
    case ST_TRAILER:
        return trailer_byte(rp, c);
    }
    return -1;
}

/* Reads body bytes; returns bytes used, or -1. */
static long feed_body(hr_reqparser_t *rp, const char *data, size_t len)
{
    size_t at = 0;
    while (at < len && rp->state != ST_DONE) {
        if (rp->state == ST_LENGTH || rp->state == ST_CHUNK_DATA) {
            size_t n = len - at < rp->remaining ? len - at : (size_t)rp->remaining;
            if (append_body(rp, data + at, n) != 0) return -1;
            at += n;
            rp->remaining -= n;
            if (!rp->remaining) rp->state = rp->state == ST_LENGTH ? ST_DONE : ST_CHUNK_DATA_CR;
            continue;
        }
        if (chunk_byte(rp, (unsigned char)data[at++]) != 0) return -1;
    }
    return (long)at;
}

enum hr_parse_result hr_reqparser_feed(hr_reqparser_t *rp, const char *data, size_t len,
                                       size_t *consumed)
{
    *consumed = 0;
    if (rp->error_status) return HR_PARSE_ERROR;
    if (rp->complete) return HR_PARSE_READY;
    size_t at = 0;
    while (at < len && rp->state != ST_DONE) {
        long n = !rp->req               ? skip_leading(rp, data + at, len - at)
                 : rp->state == ST_HEAD ? feed_head(rp, data + at, len - at)
                                        : feed_body(rp, data + at, len - at);
        if (n < 0) {
            *consumed = at;
            return HR_PARSE_ERROR;
        }
        at += (size_t)n;
    }
    *consumed = at;
    if (rp->state != ST_DONE) return HR_PARSE_MORE;
    rp->complete = 1;
    return HR_PARSE_READY;
}

hr_request_t *hr_reqparser_take(hr_reqparser_t *rp)
{
    hr_request_t *req = rp->req;
    rp->req = NULL;
    reset_message_state(rp);
    return req;
}

const char *hr_request_header(const hr_request_t *req, const char *name, size_t *len)
{
    for (size_t i = 0; i < req->nheaders; i++) {
        const hr_header_t *hdr = &req->headers[i];
        if (name_is(req, hdr, name)) {
            if (len) *len = hdr->value_len;
            return req->text + hdr->value_off;
        }
    }
    return NULL;
}
