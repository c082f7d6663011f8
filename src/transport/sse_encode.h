/* Server-Sent Events wire format (WHATWG HTML, "Server-sent events"). Pure functions.
 * A frame is: "id: N\n", "event: NAME\n" (when named), "retry: MS\n" (when set), one
 * "data: LINE\n" per line of the payload (split on CRLF, CR and LF, each a line break), then a
 * blank line. A client joins the data lines with LF, so payloads round-trip except that CR and
 * CRLF come back as LF. Empty data is one empty data line, which still dispatches an event. */
#ifndef HR_SSE_ENCODE_H
#define HR_SSE_ENCODE_H

#include <stddef.h>
#include <stdint.h>

/* An upper bound (exact when data has no line breaks) of what hr_sse_frame writes for these
 * fields; id and event may be empty. */
size_t hr_sse_frame_size(size_t id_len, size_t event_len, uint32_t retry_ms, const char *data,
                         size_t data_len);

/* Writes the frame into `out` (hr_sse_frame_size bytes); returns bytes written. */
size_t hr_sse_frame(char *out, const char *id, size_t id_len, const char *event, size_t event_len,
                    uint32_t retry_ms, const char *data, size_t data_len);

#endif
