/* RFC 6455 framing (section 5). Pure: parses and writes frame headers, masks payloads. The
 * connection logic (fragments, control frames, close handshake) is in ws.c. */
#ifndef HR_WS_FRAME_H
#define HR_WS_FRAME_H

#include <stddef.h>
#include <stdint.h>

enum hr_ws_opcode {
    HR_WS_CONT = 0x0,
    HR_WS_TEXT = 0x1,
    HR_WS_BINARY = 0x2,
    HR_WS_CLOSE = 0x8,
    HR_WS_PING = 0x9,
    HR_WS_PONG = 0xA,
};

enum hr_ws_close_code {
    HR_WS_NORMAL = 1000,
    HR_WS_GOING_AWAY = 1001,
    HR_WS_PROTOCOL_ERROR = 1002,
    HR_WS_UNSUPPORTED = 1003,
    HR_WS_NO_STATUS = 1005, /* never sent: "the close frame had no code" */
    HR_WS_INVALID_DATA = 1007,
    HR_WS_POLICY = 1008,
    HR_WS_TOO_BIG = 1009,
    HR_WS_INTERNAL = 1011,
    HR_WS_TRY_AGAIN = 1013,
    HR_WS_TOKEN_EXPIRED = 4001, /* herald's own (4000-4999): the token expired, none came after */
};

#define HR_WS_MAX_HEADER  14  /* 2 + 8 (64-bit length) + 4 (mask) */
#define HR_WS_MAX_CONTROL 125 /* control frame payload limit */

typedef struct hr_ws_frame_s {
    int fin;    /* last frame of the message */
    int rsv1;   /* "compressed" under permessage-deflate */
    int opcode; /* enum hr_ws_opcode */
    int masked;
    uint8_t mask[4];
    uint64_t len;      /* payload bytes */
    size_t header_len; /* bytes before the payload */
} hr_ws_frame_t;

/* Parses a client frame header. Returns its length (> 0), 0 when more bytes are needed, or
 * -HR_WS_PROTOCOL_ERROR for: RSV2/RSV3 set, a reserved opcode, a fragmented or over-125-byte
 * control frame, an unmasked frame (clients must mask), or a 64-bit length with its top bit set.
 * RSV1 is returned for the caller to judge (valid only with permessage-deflate). */
int hr_ws_parse_header(const uint8_t *buf, size_t len, hr_ws_frame_t *frame);

/* Writes an unmasked (server) frame header; returns its length (2, 4 or 10). */
size_t hr_ws_write_header(uint8_t *out, int fin, int rsv1, int opcode, uint64_t len);

/* XORs `len` bytes with the mask, `offset` bytes into the payload. */
void hr_ws_unmask(uint8_t *data, size_t len, const uint8_t mask[4], size_t offset);

/* Close codes a peer may send (RFC 6455 7.4): 1000-1003, 1007-1011, 3000-4999. */
int hr_ws_close_code_valid(unsigned code);

/* Sec-WebSocket-Accept for a client key: base64(SHA-1(key + GUID)). `out` >= 29 bytes. */
int hr_ws_accept_key(const char *key, size_t key_len, char *out);

#endif
