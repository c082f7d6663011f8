#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#include "transport/ws_deflate.h"

static const char *skip_space(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    return p;
}

/* Reads a token (or quoted string) into `out`; returns the position after it. */
static const char *read_token(const char *p, const char *end, char *out, size_t size)
{
    size_t n = 0;
    int quoted = p < end && *p == '"';
    if (quoted) p++;
    while (p < end && (quoted ? *p != '"'
                              : (*p != ';' && *p != ',' && *p != '=' && *p != ' ' && *p != '\t'))) {
        if (n + 1 < size) out[n++] = *p;
        p++;
    }
    if (quoted && p < end) p++;
    out[n] = '\0';
    return p;
}

static int parse_bits(const char *value, int *bits)
{
    if (strlen(value) < 1 || strlen(value) > 2 || !isdigit((unsigned char)value[0]) ||
        (value[1] && !isdigit((unsigned char)value[1])) || (value[0] == '0'))
        return -1;
    *bits = atoi(value);
    return *bits >= 8 && *bits <= 15 ? 0 : -1;
}

/* Parses one offer's parameters up to ',' or the end. Returns 1 when acceptable. */
static int parse_offer(const char **cursor, const char *end, int *server_bits)
{
    const char *p = *cursor;
    int seen_server_bits = 0, seen_client_bits = 0, seen_snct = 0, seen_cnct = 0, ok = 1;
    *server_bits = 15;
    while (p < end && *p == ';') {
        char name[64], value[64] = "";
        p = read_token(skip_space(p + 1, end), end, name, sizeof name);
        p = skip_space(p, end);
        int has_value = p < end && *p == '=';
        if (has_value)
            p = skip_space(read_token(skip_space(p + 1, end), end, value, sizeof value), end);
        if (strcasecmp(name, "server_no_context_takeover") == 0) {
            ok &= !has_value && !seen_snct++;
        } else if (strcasecmp(name, "client_no_context_takeover") == 0) {
            ok &= !has_value && !seen_cnct++;
        } else if (strcasecmp(name, "server_max_window_bits") == 0) {
            ok &= has_value && !seen_server_bits++ && parse_bits(value, server_bits) == 0;
        } else if (strcasecmp(name, "client_max_window_bits") == 0) {
            int bits;
            ok &= !seen_client_bits++ && (!has_value || parse_bits(value, &bits) == 0);
        } else {
            ok = 0; /* unknown parameter: decline this offer */
        }
    }
    /* zlib cannot produce a raw deflate stream with an 8-bit window. */
    if (*server_bits == 8) ok = 0;
    *cursor = p;
    return ok;
}

int hr_ws_deflate_negotiate(const char *offers, size_t len, hr_ws_deflate_t *params, char *response,
                            size_t size)
{
    const char *p = offers, *end = offers + len;
    params->enabled = 0;
    while (p < end) {
        char name[64];
        p = read_token(skip_space(p, end), end, name, sizeof name);
        p = skip_space(p, end);
        int server_bits;
        int acceptable = parse_offer(&p, end, &server_bits);
        while (p < end && *p != ',')
            p++; /* skip anything malformed up to the next offer */
        if (p < end) p++;
        if (strcasecmp(name, "permessage-deflate") != 0 || !acceptable) continue;
        params->enabled = 1;
        params->server_window = server_bits;
        if (server_bits < 15)
            snprintf(response, size,
                     "permessage-deflate; server_no_context_takeover; "
                     "client_no_context_takeover; server_max_window_bits=%d",
                     server_bits);
        else
            snprintf(response, size,
                     "permessage-deflate; server_no_context_takeover; client_no_context_takeover");
        return 1;
    }
    return 0;
}

int hr_ws_compress(const uint8_t *in, size_t len, int window_bits, size_t reserve, uint8_t **out,
                   size_t *out_len)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -window_bits, 8, Z_DEFAULT_STRATEGY) !=
        Z_OK)
        return -1;
    size_t cap = reserve + deflateBound(&zs, len) + 16;
    uint8_t *buf = malloc(cap);
    if (!buf) {
        deflateEnd(&zs);
        return -1;
    }
    zs.next_in = (Bytef *)in;
    zs.avail_in = (uInt)len;
    zs.next_out = buf + reserve;
    zs.avail_out = (uInt)(cap - reserve);
    int rc = deflate(&zs, Z_SYNC_FLUSH);
    size_t produced = cap - reserve - zs.avail_out;
    deflateEnd(&zs);
    if (rc != Z_OK || zs.avail_in != 0 || produced < 4) {
        free(buf);
        return -1;
    }
    *out = buf;
    *out_len = produced - 4; /* RFC 7692 7.2.1: drop the 00 00 ff ff tail */
    return 0;
}

/* Makes room for more output: doubles up to max + 1 (one byte over tells "too big"). */
static int grow_output(uint8_t **buf, size_t *cap, size_t max)
{
    if (*cap > max) return -2;
    size_t grown = *cap * 2 < max + 1 ? *cap * 2 : max + 1;
    uint8_t *bigger = realloc(*buf, grown);
    if (!bigger) return -1;
    *buf = bigger;
    *cap = grown;
    return 0;
}

int hr_ws_decompress(const uint8_t *in, size_t len, size_t max, uint8_t **out, size_t *out_len)
{
    static const uint8_t tail[4] = {0x00, 0x00, 0xff, 0xff};
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (inflateInit2(&zs, -15) != Z_OK) return -1;
    size_t cap = len * 4 + 64 < max + 1 ? len * 4 + 64 : max + 1, used = 0;
    uint8_t *buf = malloc(cap);
    int result = buf ? 0 : -1, ended = 0;
    for (int part = 0; part < 2 && result == 0 && !ended; part++) {
        zs.next_in = (Bytef *)(part ? tail : in);
        zs.avail_in = (uInt)(part ? sizeof tail : len);
        for (;;) {
            if (used == cap && (result = grow_output(&buf, &cap, max)) != 0) break;
            zs.next_out = buf + used;
            zs.avail_out = (uInt)(cap - used);
            int rc = inflate(&zs, Z_SYNC_FLUSH);
            used = cap - zs.avail_out;
            if (rc == Z_STREAM_END) {
                ended = 1; /* the sender closed the stream with a final block */
                break;
            }
            if (rc != Z_OK && rc != Z_BUF_ERROR) {
                result = -1;
                break;
            }
            if (zs.avail_in == 0 && zs.avail_out > 0) break; /* all input consumed */
        }
    }
    inflateEnd(&zs);
    if (result == 0 && used > max) result = -2;
    if (result != 0) {
        free(buf);
        return result;
    }
    *out = buf;
    *out_len = used;
    return 0;
}
