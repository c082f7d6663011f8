/* WebSocket subscribers: the 101, then frames. What opens a subscription and where the payload
 * sits differ per server: herald answers a subscribe with an ack; Socket.IO speaks Engine.IO
 * (open packet, namespace connect, events, ping "2" answered "3"); nchan and the ws server
 * subscribe by URL, so the 101 opens. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "hb.h"

static void herald_subscribe(sub_t *sub)
{
    bench_t *bench = sub->bench;
    char topic[128], frame[256];
    if (bench->echo)
        snprintf(topic, sizeof topic, "%s-e%d", bench->prefix, (int)(sub - bench->subs));
    else
        hb_topic_name(bench, sub->topic, topic, sizeof topic);
    snprintf(frame, sizeof frame, "{\"type\":\"subscribe\",\"topic\":\"%s\"}", topic);
    hb_ws_send_text(sub, frame);
}

static void socketio_text(sub_t *sub, const char *text, size_t len)
{
    if (len >= 1 && text[0] == '0')
        hb_ws_send_text(sub, "40"); /* Engine.IO open: connect to the default namespace */
    else
        hb_socketio_packet(sub, text, len, hb_ws_send_text);
}

static void on_text(sub_t *sub, const char *text, size_t len)
{
    switch (sub->bench->srv) {
    case SRV_HERALD:
        if (!sub->open && memmem(text, len, "\"type\":\"ack\"", 12)) {
            hb_sub_opened(sub);
            return;
        }
        hb_scan_payloads(sub, text, len);
        break;
    case SRV_SOCKETIO:
        socketio_text(sub, text, len);
        break;
    default:
        hb_scan_payloads(sub, text, len);
        break;
    }
}

/* permessage-deflate as both servers use it here: each message inflates on its own. */
static void on_compressed(sub_t *sub, const uint8_t *data, size_t len)
{
    static const uint8_t tail[4] = {0, 0, 0xff, 0xff};
    uint8_t *out = sub->bench->scratch;
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (inflateInit2(&zs, -15) != Z_OK) return;
    zs.next_out = out;
    zs.avail_out = HB_SCRATCH;
    zs.next_in = (uint8_t *)data;
    zs.avail_in = (uInt)len;
    inflate(&zs, Z_SYNC_FLUSH);
    zs.next_in = (uint8_t *)tail;
    zs.avail_in = 4;
    inflate(&zs, Z_SYNC_FLUSH);
    on_text(sub, (const char *)out, HB_SCRATCH - zs.avail_out);
    inflateEnd(&zs);
}

static void on_frame(sub_t *sub, int opcode, int compressed, const uint8_t *data, size_t len)
{
    if (opcode == 1 && compressed)
        on_compressed(sub, data, len);
    else if (opcode == 1 || opcode == 2)
        on_text(sub, (const char *)data, len);
    else if (opcode == 9 && len <= 125) { /* ping: a pong with the same data */
        uint8_t pong[6 + 125] = {0x8a, (uint8_t)(0x80 | len), 0, 0, 0, 0};
        memcpy(pong + 6, data, len);
        hb_write((uv_stream_t *)&sub->tcp, (char *)pong, 6 + len, &sub->bench->bytes_out);
    } else if (opcode == 8)
        fprintf(stderr, "hb: WebSocket closed by the server (%zu bytes of reason)\n", len);
    else if (opcode == 0)
        fprintf(stderr, "hb: fragmented message: not expected from these servers\n");
}

static size_t frames(sub_t *sub, size_t at)
{
    while (sub->in_len - at >= 2) {
        uint8_t *f = sub->in + at;
        uint64_t len = f[1] & 0x7f;
        size_t header = 2;
        if (len == 126) {
            if (sub->in_len - at < 4) break;
            len = (uint64_t)f[2] << 8 | f[3];
            header = 4;
        } else if (len == 127) {
            if (sub->in_len - at < 10) break;
            len = 0;
            for (int i = 2; i < 10; i++)
                len = len << 8 | f[i];
            header = 10;
        }
        if (sub->in_len - at < header + len) break;
        on_frame(sub, f[0] & 0x0f, f[0] & 0x40, f + header, (size_t)len);
        at += header + (size_t)len;
    }
    return at;
}

void hb_ws_consume(sub_t *sub)
{
    size_t at = 0;
    if (!sub->head_done) {
        char *end = memmem(sub->in, sub->in_len, "\r\n\r\n", 4);
        if (!end) return;
        sub->head_done = 1;
        at = (size_t)(end + 4 - (char *)sub->in);
        if (sub->in_len < 12 || memcmp(sub->in + 9, "101", 3) != 0) {
            fprintf(stderr, "hb: WebSocket upgrade refused: %.12s\n", (char *)sub->in);
            return;
        }
        if (sub->bench->srv == SRV_HERALD) herald_subscribe(sub);
        if (sub->bench->srv == SRV_NCHAN || sub->bench->srv == SRV_WS) hb_sub_opened(sub);
    }
    at = frames(sub, at);
    memmove(sub->in, sub->in + at, sub->in_len - at);
    sub->in_len -= at;
}
