/* permessage-deflate (RFC 7692) with zlib: offer negotiation and per-message codec. Pure.
 *
 * herald always answers with server_no_context_takeover and client_no_context_takeover, which
 * RFC 7692 lets a server add on its own: every message is compressed alone. So a compressed
 * frame for a broadcast is built once and shared by every subscriber, and no connection keeps a
 * zlib context between messages: memory per compressed connection is zero while idle and one
 * inflate context (about 44 KiB) while a compressed message is being read. */
#ifndef HR_WS_DEFLATE_H
#define HR_WS_DEFLATE_H

#include <stddef.h>
#include <stdint.h>

typedef struct hr_ws_deflate_s {
    int enabled;       /* an offer was accepted */
    int server_window; /* window bits herald compresses with (9..15) */
} hr_ws_deflate_t;

/* Picks the first acceptable permessage-deflate offer in a Sec-WebSocket-Extensions value and
 * writes the response value into `response`. Returns 1 when accepted, 0 when none is. */
int hr_ws_deflate_negotiate(const char *offers, size_t len, hr_ws_deflate_t *params, char *response,
                            size_t size);

/* Compresses one message (raw deflate, the trailing 00 00 ff ff removed). Returns 0 and a
 * malloc'd buffer in *out, or -1. `reserve` bytes are left free at the front (for a header). */
int hr_ws_compress(const uint8_t *in, size_t len, int window_bits, size_t reserve, uint8_t **out,
                   size_t *out_len);

/* Decompresses one message of at most `max` bytes. Returns 0, -1 on corrupt data, or -2 when the
 * output would exceed `max` (a decompression bomb is cut off, not buffered). */
int hr_ws_decompress(const uint8_t *in, size_t len, size_t max, uint8_t **out, size_t *out_len);

#endif
