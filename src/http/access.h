/* What both front ends (http/h1.c, http/h2.c) write the same way: the --access-log lines and
 * the HTTP Date value. */
#ifndef HR_ACCESS_H
#define HR_ACCESS_H

#include <stdint.h>

#include "core/conn.h"
#include "http/request.h"

#define HR_ACCESS_LINE 176 /* bytes of a noted request: "METHOD path?query", quoted */

/* Notes the request for its access-log line, into `line` (HR_ACCESS_LINE bytes). */
void hr_access_note(char *line, const hr_request_t *req);
/* One http.access line (when --access-log is on): `stream_id` names the HTTP/2 stream (0 on
 * HTTP/1.1), `streamed` marks an event stream's line at its end. */
void hr_access_log(const hr_conn_t *conn, int32_t stream_id, const char *line, int status,
                   uint64_t bytes, uint64_t started_ns, int streamed);

/* The Date header's value, formatted once a second per worker (its front_state); into
 * `fallback` only when that cache cannot be allocated. */
const char *hr_http_date(hr_worker_t *worker, char *fallback, size_t size);

#endif
