/* Socket.IO's packets on both transports, and its long-polling transport (Engine.IO v4
 * "polling"), as its browser client does it:
 * GETs on one connection wait for packets, POSTs on a second connection send them (a GET is
 * held open while a packet must go out). Packets in one body are separated by 0x1e. The
 * handshake: GET -> open packet with the sid; POST "40" (connect); GET -> "40{...}"; POST
 * 42["sub",topic]; GET -> 42["subscribed",...]: open. A ping "2" is answered with POST "3". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hb.h"

static void post_flush(sub_t *sub);

/* POST answers are "ok": only their status lines are counted, to know when the next may go. */
static void on_post_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    sub_t *sub = stream->data;
    if (nread < 0) {
        free(buf->base);
        if (!sub->closed) sub->bench->conn_errors++;
        sub->closed = 1;
        uv_close((uv_handle_t *)stream, NULL);
        return;
    }
    long ok = 0, failed = 0;
    sub->bench->bytes_in += (uint64_t)nread;
    if (hb_count_answers(&sub->post_answers, buf->base, (size_t)nread, &ok, &failed))
        sub->post_in_flight = 0;
    if (failed) fprintf(stderr, "hb: Socket.IO refused a POST\n");
    free(buf->base);
    post_flush(sub);
}

static void on_post_connect(uv_connect_t *req, int status)
{
    sub_t *sub = req->handle->data;
    free(req);
    if (status < 0) {
        sub->bench->conn_errors++;
        return;
    }
    sub->post_ready = 1;
    uv_read_start((uv_stream_t *)&sub->post_tcp, hb_alloc, on_post_read);
    post_flush(sub);
}

/* One POST at a time (Engine.IO refuses overlapping ones); what waits goes in the next. */
static void post_flush(sub_t *sub)
{
    bench_t *bench = sub->bench;
    if (!sub->post_ready || sub->post_in_flight || !sub->post_pending[0]) return;
    char request[512];
    size_t len = strlen(sub->post_pending);
    int n = snprintf(request, sizeof request,
                     "POST /socket.io/?EIO=4&transport=polling&sid=%s HTTP/1.1\r\nHost: b\r\n"
                     "Content-Type: text/plain;charset=UTF-8\r\nContent-Length: %zu\r\n\r\n%s",
                     sub->sid, len, sub->post_pending);
    sub->post_pending[0] = '\0';
    sub->post_in_flight = 1;
    if (bench->t0_ns) bench->requests++;
    hb_write((uv_stream_t *)&sub->post_tcp, request, (size_t)n, &bench->bytes_out);
}

static void post(sub_t *sub, const char *packet)
{
    size_t used = strlen(sub->post_pending);
    if (used + strlen(packet) + 2 > sizeof sub->post_pending) return;
    if (used) sub->post_pending[used++] = '\x1e';
    strcpy(sub->post_pending + used, packet);
    post_flush(sub);
}

void hb_eio_request(sub_t *sub)
{
    char request[256];
    int n = snprintf(request, sizeof request,
                     "GET /socket.io/?EIO=4&transport=polling%s%s HTTP/1.1\r\nHost: b\r\n\r\n",
                     sub->sid[0] ? "&sid=" : "", sub->sid);
    sub->in_flight = 1;
    if (sub->bench->t0_ns) sub->bench->requests++;
    hb_write((uv_stream_t *)&sub->tcp, request, (size_t)n, &sub->bench->bytes_out);
}

static void open_packet(sub_t *sub, const char *packet, size_t len)
{
    const char *sid = memmem(packet, len, "\"sid\":\"", 7);
    if (!sid) return;
    size_t sid_len = strcspn(sid + 7, "\"");
    if (sid_len >= sizeof sub->sid) return;
    memcpy(sub->sid, sid + 7, sid_len);
    sub->sid[sid_len] = '\0';
    uv_tcp_init(sub->bench->loop, &sub->post_tcp);
    sub->post_tcp.data = sub;
    uv_connect_t *req = malloc(sizeof *req);
    uv_tcp_connect(req, &sub->post_tcp, (struct sockaddr *)&sub->bench->server, on_post_connect);
    post(sub, "40");
}

/* A Socket.IO packet after the open packet, on either transport; `send` sends one back. */
void hb_socketio_packet(sub_t *sub, const char *packet, size_t len,
                        void (*send)(sub_t *, const char *))
{
    char topic[128], frame[256];
    if (len >= 2 && packet[0] == '4' && packet[1] == '0') {
        hb_topic_name(sub->bench, sub->topic, topic, sizeof topic);
        snprintf(frame, sizeof frame, "42[\"sub\",\"%s\"]", topic);
        send(sub, frame);
    } else if (len == 1 && packet[0] == '2') {
        send(sub, "3");
    } else if (len > 14 && memcmp(packet, "42[\"subscribed\"", 15) == 0) {
        hb_sub_opened(sub);
    } else {
        hb_scan_payloads(sub, packet, len);
    }
}

static void on_packet(sub_t *sub, const char *packet, size_t len)
{
    if (len >= 1 && packet[0] == '0')
        open_packet(sub, packet, len);
    else
        hb_socketio_packet(sub, packet, len, post);
}

/* A GET's answer: its packets, then the next GET at once. */
void hb_eio_answer(sub_t *sub, const char *body, size_t len)
{
    const char *end = body + len;
    while (body < end) {
        const char *sep = memchr(body, '\x1e', (size_t)(end - body));
        const char *stop = sep ? sep : end;
        on_packet(sub, body, (size_t)(stop - body));
        body = stop + (sep != NULL);
    }
    sub->in_flight = 0;
    hb_eio_request(sub);
}
