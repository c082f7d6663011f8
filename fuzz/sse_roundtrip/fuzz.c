/* libFuzzer target: the SSE round trip. The input is an event name and a payload (split at the
 * first NUL); herald's encoder frames them, and a parser written from the WHATWG "event stream
 * interpretation" steps reads the frame back. The event must dispatch once with the same id,
 * type and data, where the data may differ only in CR and CRLF becoming LF. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "transport/sse_encode.h"

typedef struct parsed_s {
    char *data; /* data buffer */
    size_t data_len;
    char event[256];
    char id[64];
    int dispatched;
} parsed_t;

/* One line of the stream, per the spec's field processing. */
static void field(parsed_t *out, char *data_buf, size_t *data_len, const char *line, size_t len)
{
    if (len == 0) { /* blank line: dispatch */
        if (*data_len == 0) return;
        out->dispatched++;
        out->data = data_buf;
        out->data_len = *data_len - 1; /* drop the trailing LF */
        return;
    }
    if (line[0] == ':') return;
    const char *colon = memchr(line, ':', len);
    size_t name_len = colon ? (size_t)(colon - line) : len;
    const char *value = colon ? colon + 1 : line + len;
    size_t value_len = colon ? len - name_len - 1 : 0;
    if (value_len && value[0] == ' ') value++, value_len--;
    if (name_len == 4 && !memcmp(line, "data", 4)) {
        memcpy(data_buf + *data_len, value, value_len);
        *data_len += value_len;
        data_buf[(*data_len)++] = '\n';
    } else if (name_len == 5 && !memcmp(line, "event", 5) && value_len < sizeof out->event) {
        memcpy(out->event, value, value_len);
        out->event[value_len] = '\0';
    } else if (name_len == 2 && !memcmp(line, "id", 2) && value_len < sizeof out->id) {
        memcpy(out->id, value, value_len);
        out->id[value_len] = '\0';
    }
}

static void parse(const char *stream, size_t len, parsed_t *out, char *data_buf)
{
    size_t data_len = 0, start = 0;
    for (size_t i = 0; i < len; i++) {
        if (stream[i] != '\r' && stream[i] != '\n') continue;
        field(out, data_buf, &data_len, stream + start, i - start);
        if (out->dispatched) data_len = 0;
        if (stream[i] == '\r' && i + 1 < len && stream[i + 1] == '\n') i++;
        start = i + 1;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *input, size_t size)
{
    const char *nul = memchr(input, 0, size);
    size_t event_len = nul ? (size_t)(nul - (const char *)input) : 0;
    const char *event = (const char *)input;
    const char *data = nul ? nul + 1 : (const char *)input;
    size_t data_len = nul ? size - event_len - 1 : size;
    /* herald never sends an event name with CR, LF or NUL (publish rejects them), nor one of
     * 256 bytes or more; such names are outside the contract. */
    if (event_len >= 200 || memchr(event, '\r', event_len) || memchr(event, '\n', event_len))
        return 0;
    size_t frame_size = hr_sse_frame_size(4, event_len, 0, data, data_len);
    char *frame = malloc(frame_size);
    char *data_buf = malloc(frame_size + 1);
    size_t frame_len = hr_sse_frame(frame, "1234", 4, event, event_len, 0, data, data_len);
    if (frame_len > frame_size) abort(); /* the size is an upper bound */
    parsed_t out = {0};
    parse(frame, frame_len, &out, data_buf);
    if (out.dispatched != 1 || strcmp(out.id, "1234") != 0) abort();
    if (strlen(out.event) != event_len || memcmp(out.event, event, event_len) != 0) abort();
    /* expected data: CRLF and CR become LF */
    size_t at = 0;
    for (size_t i = 0; i < data_len; i++) {
        char want = data[i];
        if (want == '\r') {
            want = '\n';
            if (i + 1 < data_len && data[i + 1] == '\n') i++;
        }
        if (at >= out.data_len || out.data[at++] != want) abort();
    }
    if (at != out.data_len) abort();
    free(frame);
    free(data_buf);
    return 0;
}
