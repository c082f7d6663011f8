#include <stdio.h>
#include <string.h>

#include "transport/sse_encode.h"

static size_t count_lines(const char *data, size_t len)
{
    size_t lines = 1;
    for (size_t i = 0; i < len; i++) {
        if (data[i] == '\n') {
            lines++;
        } else if (data[i] == '\r') {
            lines++;
            if (i + 1 < len && data[i + 1] == '\n') i++;
        }
    }
    return lines;
}

static size_t digits(uint32_t value)
{
    size_t n = 1;
    while (value >= 10)
        value /= 10, n++;
    return n;
}

size_t hr_sse_frame_size(size_t id_len, size_t event_len, uint32_t retry_ms, const char *data,
                         size_t data_len)
{
    size_t size = 1; /* the blank line */
    if (id_len) size += 4 + id_len + 1;
    if (event_len) size += 7 + event_len + 1;
    if (retry_ms) size += 7 + digits(retry_ms) + 1;
    size_t lines = count_lines(data, data_len);
    /* Each line costs "data: " and "\n"; a CRLF break of 2 bytes becomes 1, which the byte
     * count of `data` over-covers, so the frame can come out a little shorter. */
    return size + lines * 7 + data_len;
}

static char *put(char *out, const char *bytes, size_t len)
{
    memcpy(out, bytes, len);
    return out + len;
}

size_t hr_sse_frame(char *out, const char *id, size_t id_len, const char *event, size_t event_len,
                    uint32_t retry_ms, const char *data, size_t data_len)
{
    char *start = out;
    if (id_len) {
        out = put(out, "id: ", 4);
        out = put(out, id, id_len);
        *out++ = '\n';
    }
    if (event_len) {
        out = put(out, "event: ", 7);
        out = put(out, event, event_len);
        *out++ = '\n';
    }
    if (retry_ms) {
        char num[16];
        int n = snprintf(num, sizeof num, "%u", retry_ms);
        out = put(out, "retry: ", 7);
        out = put(out, num, (size_t)n);
        *out++ = '\n';
    }
    size_t line_start = 0;
    for (size_t i = 0; i <= data_len; i++) {
        int at_end = i == data_len;
        if (!at_end && data[i] != '\n' && data[i] != '\r') continue;
        out = put(out, "data: ", 6);
        out = put(out, data + line_start, i - line_start);
        *out++ = '\n';
        if (!at_end && data[i] == '\r' && i + 1 < data_len && data[i + 1] == '\n') i++;
        line_start = i + 1;
    }
    *out++ = '\n';
    return (size_t)(out - start);
}
