/* libFuzzer target: HTTP/1.1 request reading (http/request.c), strict framing included. The
 * input (after a first byte that picks a piece size) is read twice: whole, and in pieces of
 * 1..64 bytes. Both readings must agree on every request, its body, and where and why they
 * stop: a parser whose answer depends on how TCP cut the bytes would be a smuggling vector.
 * Then the query string of each complete request is decoded. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/query.h"
#include "http/request.h"

typedef struct reading_s {
    size_t requests;  /* complete ones */
    uint64_t digest;  /* over method, path, query, body of each */
    int error_status; /* 0 when the input ran out without one */
    size_t consumed;  /* bytes used in all (compared only without an error) */
} reading_t;

static uint64_t mix(uint64_t h, const void *bytes, size_t len)
{
    const unsigned char *p = bytes;
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h * 31 + len;
}

static void take_one(hr_reqparser_t *rp, reading_t *out)
{
    hr_request_t *req = hr_reqparser_take(rp);
    out->requests++;
    out->digest = mix(out->digest, req->method, req->method_len);
    out->digest = mix(out->digest, req->path, req->path_len);
    out->digest = mix(out->digest, req->body ? req->body : "", req->body_len);
    out->digest = mix(out->digest, &req->keep_alive, sizeof req->keep_alive);
    if (req->query) {
        char *buf = malloc(req->query_len * 2 + 2);
        hr_qparam_t params[32];
        if (buf) hr_query_parse(req->query, req->query_len, buf, params, 32);
        free(buf);
        out->digest = mix(out->digest, req->query, req->query_len);
    }
    (void)hr_request_header(req, "Content-Type", NULL);
    hr_request_free(req);
}

static reading_t read_all(const char *text, size_t len, size_t step)
{
    reading_t out = {0, 14695981039346656037ull, 0, 0};
    hr_reqparser_t rp;
    hr_reqparser_init(&rp, 4096, 4096);
    size_t at = 0;
    while (at < len) {
        size_t piece = len - at < step ? len - at : step, used;
        enum hr_parse_result result = hr_reqparser_feed(&rp, text + at, piece, &used);
        at += used;
        if (result == HR_PARSE_ERROR) {
            out.error_status = rp.error_status;
            break;
        }
        if (result == HR_PARSE_READY) take_one(&rp, &out);
    }
    out.consumed = at;
    hr_reqparser_reset(&rp);
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    size_t step = (size_t)(data[0] % 64) + 1;
    const char *text = (const char *)data + 1;
    reading_t whole = read_all(text, size - 1, size), pieces = read_all(text, size - 1, step);
    if (whole.requests != pieces.requests || whole.digest != pieces.digest ||
        whole.error_status != pieces.error_status ||
        (!whole.error_status && whole.consumed != pieces.consumed))
        abort();
    return 0;
}
