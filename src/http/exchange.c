/* The exchange's calls, whatever front end carries it: hr_respond* go through ex->ops; errors
 * and JSON answers are built here once for every protocol. */
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "http/exchange.h"

void hr_respond(hr_exchange_t *ex, int status, const char *content_type, const char *body,
                size_t len, const char *extra_headers)
{
    ex->ops->respond(ex, status, content_type, body, len, extra_headers);
}

hr_stream_t *hr_respond_stream(hr_exchange_t *ex, const char *content_type,
                               const char *extra_headers)
{
    return ex->ops->stream(ex, content_type, extra_headers);
}

hr_pending_t *hr_respond_later(hr_exchange_t *ex)
{
    return ex->ops->later(ex);
}

hr_pending_t *hr_respond_queued(hr_exchange_t *ex)
{
    return ex->ops->queued(ex);
}

hr_pending_t *hr_defer(hr_exchange_t *ex)
{
    return ex->ops->defer(ex);
}

int hr_exchange_upgrade(hr_exchange_t *ex, const char *protocol, const char *extra_headers,
                        const hr_conn_proto_t *proto, void *state, hr_stream_t *out)
{
    return ex->ops->upgrade(ex, protocol, extra_headers, proto, state, out);
}

void hr_exchange_set_kind(hr_exchange_t *ex, enum hr_conn_kind kind)
{
    ex->ops->set_kind(ex, kind);
}

void hr_respond_error(hr_exchange_t *ex, int status, const char *message)
{
    char quoted[256];
    const char *path = ex->req ? ex->req->path : "";
    size_t path_len = ex->req ? ex->req->path_len : 0;
    hr_log(status >= 500 ? HR_LOG_WARN : HR_LOG_INFO, "http.reject",
           "conn=%llu peer=%s status=%d path=%s reason=%s", (unsigned long long)ex->conn->id,
           ex->conn->peer, status, hr_log_quote(quoted, 128, path, path_len),
           hr_log_quote(quoted + 128, 128, message, strlen(message)));
    json_t *body = json_pack("{s:s, s:i}", "error", message, "status", status);
    hr_respond_json(ex, status, body);
}

void hr_respond_json(hr_exchange_t *ex, int status, json_t *json)
{
    char *text = json ? json_dumps(json, JSON_COMPACT) : NULL;
    json_decref(json);
    if (!text) {
        hr_respond(ex, 500, "application/json", "{\"error\":\"out of memory\"}", 25, NULL);
        return;
    }
    size_t len = strlen(text);
    text[len] = '\0';
    hr_respond(ex, status, "application/json", text, len, NULL);
    free(text);
}
