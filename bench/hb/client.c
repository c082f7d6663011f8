/* Subscriber connections: connect (from one of several loopback source addresses), send the
 * server's subscribe request for the transport, and hand what arrives to the transport's
 * parser. SSE is parsed here; WebSocket in ws.c, polling in poll.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hb.h"

void hb_topic_name(const bench_t *bench, int topic, char *out, size_t size)
{
    if (bench->ntopics > 1)
        snprintf(out, size, "%s-%d", bench->prefix, topic);
    else
        snprintf(out, size, "%s", bench->prefix);
}

static void on_write_free(uv_write_t *req, int status)
{
    (void)status;
    free(req);
}

/* A write request with room for len bytes after it (*data): one allocation, freed when written. */
static uv_write_t *write_req(size_t len, char **data)
{
    uv_write_t *req = malloc(sizeof *req + len);
    *data = req ? (char *)(req + 1) : NULL;
    return req;
}

static void write_submit(uv_stream_t *stream, uv_write_t *req, size_t len, uint64_t *counter)
{
    uv_buf_t buf = uv_buf_init((char *)(req + 1), (unsigned)len);
    if (counter) *counter += len;
    if (uv_write(req, stream, &buf, 1, on_write_free) != 0) free(req);
}

/* Copies data; adds its length to *counter when given. */
void hb_write(uv_stream_t *stream, const char *data, size_t len, uint64_t *counter)
{
    char *copy;
    uv_write_t *req = write_req(len, &copy);
    if (!req) return;
    memcpy(copy, data, len);
    write_submit(stream, req, len, counter);
}

void hb_alloc(uv_handle_t *handle, size_t size, uv_buf_t *buf)
{
    (void)handle;
    *buf = uv_buf_init(malloc(size), (unsigned)size);
}

/* Adds each status line in data to *ok (2xx) or *failed; returns how many it found. */
long hb_count_answers(hb_answers_t *answers, const char *data, size_t len, long *ok, long *failed)
{
    size_t total = answers->tail_len + len;
    char *text = malloc(total);
    long found = 0;
    if (!text) return 0;
    memcpy(text, answers->tail, answers->tail_len);
    memcpy(text + answers->tail_len, data, len);
    const char *at = text;
    while ((at = memmem(at, total - (size_t)(at - text), "HTTP/1.1 ", 9)) != NULL &&
           (size_t)(at - text) + 10 <= total) {
        (*(at[9] == '2' ? ok : failed))++;
        found++;
        at += 10;
    }
    /* 9 bytes hold the start of a cut status line but never a whole (counted) one */
    size_t keep = total < 9 ? total : 9;
    memcpy(answers->tail, text + total - keep, keep);
    answers->tail_len = keep;
    free(text);
    return found;
}

/* A masked text frame; the mask is zero, which is still a masked frame (RFC 6455 5.3). */
void hb_ws_send_text(sub_t *sub, const char *text)
{
    size_t len = strlen(text), header = len < 126 ? 6 : 8;
    char *frame;
    uv_write_t *req = write_req(header + len, &frame);
    if (!req) return;
    frame[0] = (char)0x81;
    if (len < 126) {
        frame[1] = (char)(0x80 | len);
    } else {
        frame[1] = (char)(0x80 | 126);
        frame[2] = (char)(len >> 8);
        frame[3] = (char)len;
    }
    memset(frame + header - 4, 0, 4);
    memcpy(frame + header, text, len);
    write_submit((uv_stream_t *)&sub->tcp, req, header + len, &sub->bench->bytes_out);
}

void hb_sub_opened(sub_t *sub)
{
    if (sub->open) return;
    sub->open = 1;
    sub->bench->opened++;
}

void hb_echo_publish(sub_t *sub, long seq)
{
    bench_t *bench = sub->bench;
    char data[8192], frame[8448];
    hb_payload(data, sizeof data, bench->payload, seq, hb_now_ns());
    snprintf(frame, sizeof frame, "{\"type\":\"publish\",\"topic\":\"%s-e%d\",\"data\":\"%s\"}",
             bench->prefix, (int)(sub - bench->subs), data);
    hb_ws_send_text(sub, frame);
}

/* SSE: the response head, then lines; a payload sits in a data line. nginx's chunk-size lines
 * are lines too and carry no payload. */
static void sse_consume(sub_t *sub)
{
    size_t at = 0;
    if (!sub->head_done) {
        char *end = memmem(sub->in, sub->in_len, "\r\n\r\n", 4);
        if (!end) return;
        sub->head_done = 1;
        if (sub->in_len >= 12 && memcmp(sub->in + 9, "200", 3) == 0)
            hb_sub_opened(sub);
        else
            fprintf(stderr, "hb: SSE subscribe refused: %.12s\n", (char *)sub->in);
        at = (size_t)(end + 4 - (char *)sub->in);
    }
    for (;;) {
        uint8_t *nl = memchr(sub->in + at, '\n', sub->in_len - at);
        if (!nl) break;
        size_t len = (size_t)(nl - (sub->in + at));
        if (len > 5 && memcmp(sub->in + at, "data:", 5) == 0)
            hb_scan_payloads(sub, (const char *)sub->in + at, len);
        at += len + 1;
    }
    memmove(sub->in, sub->in + at, sub->in_len - at);
    sub->in_len -= at;
}

static void on_alloc(uv_handle_t *handle, size_t size, uv_buf_t *buf)
{
    sub_t *sub = handle->data;
    (void)size;
    if (sub->in_cap - sub->in_len < 65536) {
        sub->in_cap = sub->in_len + 65536 * 2;
        sub->in = realloc(sub->in, sub->in_cap);
    }
    *buf = uv_buf_init((char *)sub->in + sub->in_len, 65536);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    sub_t *sub = stream->data;
    (void)buf;
    if (nread < 0) {
        if (!sub->closed) {
            fprintf(stderr, "hb: subscriber %d closed: %s\n", (int)(sub - sub->bench->subs),
                    uv_err_name((int)nread));
            sub->bench->conn_errors++;
            sub->closed = 1;
            uv_close((uv_handle_t *)stream, NULL);
        }
        return;
    }
    sub->in_len += (size_t)nread;
    sub->bench->bytes_in += (uint64_t)nread;
    switch (sub->bench->transport) {
    case TR_SSE:
        sse_consume(sub);
        break;
    case TR_WS:
        hb_ws_consume(sub);
        break;
    default:
        hb_poll_consume(sub);
        break;
    }
}

static void send_subscribe(sub_t *sub)
{
    bench_t *bench = sub->bench;
    char topic[128], request[1024 + 8192], auth[8300] = "";
    hb_topic_name(bench, sub->topic, topic, sizeof topic);
    if (bench->token) snprintf(auth, sizeof auth, "Authorization: Bearer %s\r\n", bench->token);
    const char *upgrade = "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                          "Sec-WebSocket-Version: 13\r\n";
    const char *deflate = bench->deflate ? "Sec-WebSocket-Extensions: permessage-deflate\r\n" : "";
    int n = 0;
    if (bench->transport == TR_SSE && bench->srv == SRV_HERALD)
        n = snprintf(request, sizeof request,
                     "GET /v1/topics/%s/events HTTP/1.1\r\nHost: b\r\n%s\r\n", topic, auth);
    else if (bench->transport == TR_SSE)
        n = snprintf(request, sizeof request,
                     "GET /sub/%s HTTP/1.1\r\nHost: b\r\nAccept: text/event-stream\r\n\r\n", topic);
    else if (bench->transport == TR_WS && bench->srv == SRV_HERALD)
        n = snprintf(
            request, sizeof request,
            "GET /v1/ws HTTP/1.1\r\nHost: b\r\n%sSec-WebSocket-Protocol: herald.v1\r\n%s\r\n",
            upgrade, deflate);
    else if (bench->transport == TR_WS && bench->srv == SRV_SOCKETIO)
        n = snprintf(request, sizeof request,
                     "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: b\r\n%s%s\r\n",
                     upgrade, deflate);
    else if (bench->transport == TR_WS)
        n = snprintf(request, sizeof request, "GET /%s%s HTTP/1.1\r\nHost: b\r\n%s%s\r\n",
                     bench->srv == SRV_NCHAN ? "sub/" : "", topic, upgrade, deflate);
    if (n > 0) hb_write((uv_stream_t *)&sub->tcp, request, (size_t)n, &bench->bytes_out);
}

static void on_short_timer(uv_timer_t *timer)
{
    hb_poll_request(timer->data);
}

static void on_connect(uv_connect_t *req, int status)
{
    sub_t *sub = req->handle->data;
    bench_t *bench = sub->bench;
    free(req);
    if (status < 0) {
        fprintf(stderr, "hb: connect failed: %s\n", uv_err_name(status));
        bench->conn_errors++;
        sub->closed = 1;
        uv_close((uv_handle_t *)&sub->tcp, NULL);
        return;
    }
    uv_read_start((uv_stream_t *)&sub->tcp, on_alloc, on_read);
    if (bench->transport == TR_LONG || bench->transport == TR_SHORT) {
        /* Polls resume from a cursor: nothing published after the first request is missed.
         * (Socket.IO keeps no cursor: its subscriber is open once its room join is confirmed.) */
        if (bench->srv != SRV_SOCKETIO) hb_sub_opened(sub);
        if (bench->transport == TR_SHORT) {
            uv_timer_init(bench->loop, &sub->poll_timer); /* started by hb_short_polls_start */
            sub->poll_timer.data = sub;
        } else {
            hb_poll_request(sub);
        }
        return;
    }
    send_subscribe(sub);
}

/* Short pollers start together at t0, each at its own phase of the interval, spread evenly as
 * unsynchronised clients would be. (Started at connect, a stall in the loop would line them up
 * again: libuv reschedules a late repeating timer from the time it ran.) */
void hb_short_polls_start(bench_t *bench)
{
    for (int i = 0; i < bench->nsubs; i++) {
        sub_t *sub = &bench->subs[i];
        if (sub->closed || !sub->open) continue;
        uint64_t phase = (uint64_t)i * (uint64_t)bench->interval_ms / (uint64_t)bench->nsubs;
        uv_timer_start(&sub->poll_timer, on_short_timer, phase, (uint64_t)bench->interval_ms);
    }
}

void hb_sub_start(bench_t *bench, sub_t *sub, int index)
{
    sub->bench = bench;
    sub->topic = index % bench->ntopics;
    sub->body_len = -1;
    snprintf(sub->cursor, sizeof sub->cursor, "0");
    uv_tcp_init(bench->loop, &sub->tcp);
    sub->tcp.data = sub;
    if (bench->sources > 1) {
        /* one loopback source address per group: more than 64k connections to one port */
        char source[32];
        struct sockaddr_in addr;
        snprintf(source, sizeof source, "127.0.0.%d", 1 + index % bench->sources);
        uv_ip4_addr(source, 0, &addr);
        uv_tcp_bind(&sub->tcp, (struct sockaddr *)&addr, 0);
    }
    uv_connect_t *req = malloc(sizeof *req);
    if (uv_tcp_connect(req, &sub->tcp, (struct sockaddr *)&bench->server, on_connect) != 0) {
        free(req);
        bench->conn_errors++;
        sub->closed = 1;
    }
}
