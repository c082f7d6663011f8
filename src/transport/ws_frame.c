#include <openssl/evp.h>
#include <string.h>

#include "core/base64.h"
#include "transport/ws_frame.h"

int hr_ws_parse_header(const uint8_t *buf, size_t len, hr_ws_frame_t *frame)
{
    if (len < 2) return 0;
    frame->fin = buf[0] >> 7;
    frame->rsv1 = (buf[0] >> 6) & 1;
    frame->opcode = buf[0] & 0x0F;
    frame->masked = buf[1] >> 7;
    if (buf[0] & 0x30) return -HR_WS_PROTOCOL_ERROR; /* RSV2, RSV3: no extension uses them */
    int control = frame->opcode & 0x8;
    if ((frame->opcode > HR_WS_BINARY && !control) || frame->opcode > HR_WS_PONG)
        return -HR_WS_PROTOCOL_ERROR;
    if (!frame->masked) return -HR_WS_PROTOCOL_ERROR;
    uint64_t payload = buf[1] & 0x7F;
    size_t at = 2;
    if (control && (!frame->fin || payload > HR_WS_MAX_CONTROL)) return -HR_WS_PROTOCOL_ERROR;
    if (payload == 126) {
        if (len < 4) return 0;
        payload = (uint64_t)buf[2] << 8 | buf[3];
        at = 4;
    } else if (payload == 127) {
        if (len < 10) return 0;
        if (buf[2] & 0x80) return -HR_WS_PROTOCOL_ERROR;
        payload = 0;
        for (int i = 2; i < 10; i++)
            payload = payload << 8 | buf[i];
        at = 10;
    }
    if (len < at + 4) return 0;
    memcpy(frame->mask, buf + at, 4);
    frame->len = payload;
    frame->header_len = at + 4;
    return (int)frame->header_len;
}

size_t hr_ws_write_header(uint8_t *out, int fin, int rsv1, int opcode, uint64_t len)
{
    out[0] = (uint8_t)((fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | (opcode & 0x0F));
    if (len < 126) {
        out[1] = (uint8_t)len;
        return 2;
    }
    if (len <= 0xFFFF) {
        out[1] = 126;
        out[2] = (uint8_t)(len >> 8);
        out[3] = (uint8_t)len;
        return 4;
    }
    out[1] = 127;
    for (int i = 0; i < 8; i++)
        out[2 + i] = (uint8_t)(len >> (56 - 8 * i));
    return 10;
}

void hr_ws_unmask(uint8_t *data, size_t len, const uint8_t mask[4], size_t offset)
{
    for (size_t i = 0; i < len; i++)
        data[i] ^= mask[(i + offset) & 3];
}

int hr_ws_close_code_valid(unsigned code)
{
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1011) ||
           (code >= 3000 && code <= 4999);
}

int hr_ws_accept_key(const char *key, size_t key_len, char *out)
{
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned digest_len = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) &&
             EVP_DigestUpdate(ctx, key, key_len) && EVP_DigestUpdate(ctx, guid, sizeof guid - 1) &&
             EVP_DigestFinal_ex(ctx, digest, &digest_len);
    EVP_MD_CTX_free(ctx);
    if (!ok || digest_len != 20) return -1;
    hr_base64_encode(digest, 20, out);
    return 0;
}
