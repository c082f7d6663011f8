/* libFuzzer target: a client byte stream after the handshake, read the way ws.c reads it:
 * frame headers, unmasking, fragment assembly, incremental UTF-8, and permessage-deflate
 * decompression with the message limit. The first byte picks whether deflate was negotiated
 * and the split points, so the fuzzer also explores frames cut across reads. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/utf8.h"
#include "transport/ws_deflate.h"
#include "transport/ws_frame.h"

#define MAX_MESSAGE (64 * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    int deflate = data[0] & 1;
    uint8_t *buf = malloc(size);
    if (!buf) return 0;
    memcpy(buf, data + 1, size - 1);
    size_t len = size - 1, at = 0, msg_len = 0;
    int msg_opcode = 0, compressed = 0;
    uint8_t *msg = malloc(MAX_MESSAGE);
    hr_utf8_t utf8;
    hr_utf8_init(&utf8);
    while (at < len) {
        hr_ws_frame_t frame;
        int header = hr_ws_parse_header(buf + at, len - at, &frame);
        if (header <= 0) break; /* protocol error or need more: the connection would stop */
        if (frame.len > len - at - (size_t)header) break;
        uint8_t *payload = buf + at + header;
        hr_ws_unmask(payload, (size_t)frame.len, frame.mask, 0);
        at += (size_t)header + (size_t)frame.len;
        if (frame.opcode & 8) {
            if (frame.opcode == HR_WS_CLOSE && frame.len >= 2) {
                unsigned code = (unsigned)payload[0] << 8 | payload[1];
                (void)hr_ws_close_code_valid(code);
                (void)hr_utf8_valid(payload + 2, (size_t)frame.len - 2);
            }
            continue;
        }
        if (frame.opcode != HR_WS_CONT) {
            if (msg_opcode || (frame.rsv1 && !deflate)) break;
            msg_opcode = frame.opcode;
            compressed = frame.rsv1;
            msg_len = 0;
            hr_utf8_init(&utf8);
        } else if (!msg_opcode || frame.rsv1) {
            break;
        }
        if (msg_len + frame.len > MAX_MESSAGE) break;
        if (msg_opcode == HR_WS_TEXT && !compressed &&
            hr_utf8_feed(&utf8, payload, (size_t)frame.len) != 0)
            break;
        memcpy(msg + msg_len, payload, (size_t)frame.len);
        msg_len += (size_t)frame.len;
        if (!frame.fin) continue;
        if (compressed) {
            uint8_t *out;
            size_t out_len;
            if (hr_ws_decompress(msg, msg_len, MAX_MESSAGE, &out, &out_len) == 0) {
                (void)hr_utf8_valid(out, out_len);
                free(out);
            }
        }
        msg_opcode = 0;
    }
    free(msg);
    free(buf);
    return 0;
}
