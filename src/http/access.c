/* The access log's lines and the Date header, shared by the HTTP/1.1 and HTTP/2 front ends. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "core/log.h"
#include "core/server.h"
#include "http/access.h"

void hr_access_note(char *line, const hr_request_t *req)
{
    char text[256];
    int n = snprintf(text, sizeof text, "%.*s %.*s", (int)req->method_len, req->method,
                     (int)(req->path_len + (req->query_len ? req->query_len + 1 : 0)), req->path);
    hr_log_quote(line, HR_ACCESS_LINE, text, n > 0 ? (size_t)n : 0);
}

void hr_access_log(const hr_conn_t *conn, int32_t stream_id, const char *line, int status,
                   uint64_t bytes, uint64_t started_ns, int streamed)
{
    if (!conn->worker->config->access_log) return;
    char stream[24] = "";
    if (stream_id) snprintf(stream, sizeof stream, " stream=%d", (int)stream_id);
    hr_info("http.access", "conn=%llu%s peer=%s request=%s status=%d bytes=%llu ms=%.3f%s",
            (unsigned long long)conn->id, stream, conn->peer, line && line[0] ? line : "\"-\"",
            status, (unsigned long long)bytes, (double)(uv_hrtime() - started_ns) / 1e6,
            streamed ? " stream=1" : "");
}

typedef struct date_cache_s {
    char date[40];
    int64_t date_sec;
} date_cache_t;

static void format_date(time_t now, char *out, size_t size)
{
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(out, size, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

const char *hr_http_date(hr_worker_t *worker, char *fallback, size_t size)
{
    date_cache_t *state = worker->front_state;
    time_t now = time(NULL);
    if (!state && !(state = worker->front_state = calloc(1, sizeof *state))) {
        format_date(now, fallback, size);
        return fallback;
    }
    if (now != state->date_sec) {
        format_date(now, state->date, sizeof state->date);
        state->date_sec = now;
    }
    return state->date;
}
