/* Long and short polling subscribers: one request out at a time on a keep-alive connection,
 * each resuming where the last answer ended. herald resumes from the answer's "cursor"; nchan
 * from its Last-Modified and Etag headers (sent back as If-Modified-Since and If-None-Match). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hb.h"

void hb_poll_request(sub_t *sub)
{
    bench_t *bench = sub->bench;
    if (sub->in_flight || sub->closed) return;
    if (bench->srv == SRV_SOCKETIO) {
        hb_eio_request(sub);
        return;
    }
    char topic[128], request[1024];
    int n;
    hb_topic_name(bench, sub->topic, topic, sizeof topic);
    if (bench->srv == SRV_HERALD)
        n = snprintf(request, sizeof request,
                     "GET /v1/topics/%s/poll?since=%s&timeout=%d HTTP/1.1\r\nHost: b\r\n\r\n",
                     topic, sub->cursor, bench->transport == TR_SHORT ? 0 : 60);
    else if (sub->modified[0])
        n = snprintf(request, sizeof request,
                     "GET /%s/%s HTTP/1.1\r\nHost: b\r\nIf-Modified-Since: %s\r\n"
                     "If-None-Match: %s\r\n\r\n",
                     bench->transport == TR_SHORT ? "poll" : "sub", topic, sub->modified,
                     sub->etag);
    else
        n = snprintf(request, sizeof request, "GET /%s/%s HTTP/1.1\r\nHost: b\r\n\r\n",
                     bench->transport == TR_SHORT ? "poll" : "sub", topic);
    sub->in_flight = 1;
    if (bench->t0_ns) bench->requests++;
    hb_write((uv_stream_t *)&sub->tcp, request, (size_t)n, &bench->bytes_out);
}

/* Copies the value of header `name` (with its ": ") from a NUL-terminated head. */
static void header_value(const char *head, const char *name, char *out, size_t size)
{
    const char *at = strcasestr(head, name);
    if (!at) return;
    at += strlen(name);
    size_t len = strcspn(at, "\r\n");
    if (len >= size) len = size - 1;
    memcpy(out, at, len);
    out[len] = '\0';
}

/* Reads an answer's head: status, body length, and nchan's resume headers. Returns the head's
 * length, or 0 when it has not all arrived. */
static size_t read_head(sub_t *sub)
{
    char *end = memmem(sub->in, sub->in_len, "\r\n\r\n", 4);
    if (!end) return 0;
    size_t head_len = (size_t)(end + 4 - (char *)sub->in);
    char head[4096], length[32] = "0";
    size_t copy = head_len < sizeof head - 1 ? head_len : sizeof head - 1;
    memcpy(head, sub->in, copy);
    head[copy] = '\0';
    sub->status = atoi(head + 9);
    header_value(head, "\r\nContent-Length: ", length, sizeof length);
    sub->body_len = atol(length);
    if (sub->bench->srv == SRV_NCHAN && sub->status == 200) {
        header_value(head, "\r\nLast-Modified: ", sub->modified, sizeof sub->modified);
        header_value(head, "\r\nEtag: ", sub->etag, sizeof sub->etag);
    }
    if (strcasestr(head, "Transfer-Encoding: chunked"))
        fprintf(stderr, "hb: chunked poll answers are not read by this bench\n");
    return head_len;
}

static void answer_done(sub_t *sub, const char *body, size_t len)
{
    if (sub->bench->srv == SRV_SOCKETIO && sub->status == 200) {
        hb_eio_answer(sub, body, len);
        return;
    }
    if (sub->status == 200) {
        hb_scan_payloads(sub, body, len);
        if (sub->bench->srv == SRV_HERALD) {
            const char *cursor = memmem(body, len, "\"cursor\":", 9);
            if (cursor) {
                size_t digits = strspn(cursor + 9, "0123456789");
                if (digits > 0 && digits < sizeof sub->cursor) {
                    memcpy(sub->cursor, cursor + 9, digits);
                    sub->cursor[digits] = '\0';
                }
            }
        }
    } else if (sub->status != 304) {
        fprintf(stderr, "hb: poll answered %d\n", sub->status);
    }
    sub->in_flight = 0;
    /* nchan's short poll answers one message at a time: drain, then wait the interval */
    int drain = sub->bench->srv == SRV_NCHAN && sub->status == 200;
    if (sub->bench->transport == TR_LONG || drain) hb_poll_request(sub);
}

void hb_poll_consume(sub_t *sub)
{
    size_t at = 0;
    for (;;) {
        if (sub->body_len < 0) {
            /* read_head looks from the start of `in`: drop what earlier answers used */
            memmove(sub->in, sub->in + at, sub->in_len - at);
            sub->in_len -= at;
            at = read_head(sub);
            if (at == 0) return;
        }
        if (sub->in_len - at < (size_t)sub->body_len) break;
        const char *body = (const char *)sub->in + at;
        size_t len = (size_t)sub->body_len;
        sub->body_len = -1;
        at += len;
        answer_done(sub, body, len);
    }
    memmove(sub->in, sub->in + at, sub->in_len - at);
    sub->in_len -= at;
}
