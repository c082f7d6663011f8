/* HTTP/1.1 on a connection: parse, dispatch, answer, keep alive; or turn into a response
 * stream (SSE). Implements hr_conn_proto_t for connections and hr_stream_ops_t for streams. */
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/log.h"
#include "http/api.h"
#include "http/exchange.h"

typedef struct h1_s {
    hr_reqparser_t parser; /* request being read */
    hr_stream_t stream;    /* valid once streaming */
    hr_conn_t *conn;
    int streaming; /* a streamed response is under way; input is ignored */
    int parked;    /* a request waits for hr_pending_t.respond */
    hr_pending_t pending;
    /* What the late answer needs of the parked request. */
    enum hr_method parked_method;
    const char *parked_cors; /* into the config */
    int parked_keep_alive;
    hr_request_t *held_req; /* a deferred request, dispatched again by redispatch */
    char *stash;            /* bytes that came while parked and the answer could not come early */
    size_t stash_len;
} h1_t;

static void h1_on_data(hr_conn_t *conn, const char *data, size_t len);
static void h1_on_close(hr_conn_t *conn);
static void h1_on_shutdown(hr_conn_t *conn);
static void h1_on_timeout(hr_conn_t *conn);

const hr_conn_proto_t hr_h1_proto = {h1_on_data, h1_on_close, h1_on_shutdown, h1_on_timeout, NULL};

const char *hr_status_text(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 413:
        return "Content Too Large";
    case 415:
        return "Unsupported Media Type";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 503:
        return "Service Unavailable";
    case 505:
        return "HTTP Version Not Supported";
    case 507:
        return "Insufficient Storage";
    default:
        return "Unknown";
    }
}

static h1_t *h1_of(hr_conn_t *conn)
{
    if (!conn->proto_state) {
        h1_t *h1 = calloc(1, sizeof *h1);
        if (!h1) return NULL;
        h1->conn = conn;
        hr_reqparser_init(&h1->parser, conn->worker->config->max_header_bytes,
                          conn->worker->config->max_body_bytes);
        conn->proto_state = h1;
    }
    return conn->proto_state;
}

static void write_head(hr_exchange_t *ex, hr_buf_t *out, int status, const char *content_type,
                       long content_length, const char *extra_headers)
{
    hr_buf_printf(out, "HTTP/1.1 %d %s\r\nDate: %s\r\nServer: herald\r\n", status,
                  hr_status_text(status), hr_worker_date(ex->worker));
    if (content_type) hr_buf_printf(out, "Content-Type: %s\r\n", content_type);
    if (content_length >= 0) hr_buf_printf(out, "Content-Length: %ld\r\n", content_length);
    if (!ex->keep_alive) hr_buf_puts(out, "Connection: close\r\n");
    if (ex->cors_origin) {
        hr_buf_printf(out, "Access-Control-Allow-Origin: %s\r\n", ex->cors_origin);
        if (strcmp(ex->cors_origin, "*") != 0) hr_buf_puts(out, "Vary: Origin\r\n");
    }
    if (extra_headers) hr_buf_puts(out, extra_headers);
    hr_buf_puts(out, "\r\n");
}

void hr_respond(hr_exchange_t *ex, int status, const char *content_type, const char *body,
                size_t len, const char *extra_headers)
{
    if (ex->responded) return;
    ex->responded = 1;
    if (ex->worker->stopping) ex->keep_alive = 0;
    hr_buf_t out = {0};
    int no_body = status == 204 || status == 304;
    write_head(ex, &out, status, content_type, no_body ? -1 : (long)len, extra_headers);
    if (ex->method != HR_HEAD && !no_body) hr_buf_append(&out, body, len);
    if (hr_buf_failed(&out)) {
        hr_conn_close(ex->conn);
    } else {
        hr_conn_write(ex->conn, out.data, out.len, NULL);
        if (!ex->keep_alive) hr_conn_finish(ex->conn);
    }
    hr_buf_free(&out);
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

static int h1_stream_write(hr_stream_t *stream, const char *bytes, size_t len, hr_msg_t *msg)
{
    h1_t *h1 = hr_container_of(stream, h1_t, stream);
    return hr_conn_write(h1->conn, bytes, len, msg);
}

static void h1_stream_end(hr_stream_t *stream)
{
    h1_t *h1 = hr_container_of(stream, h1_t, stream);
    hr_conn_finish(h1->conn);
}

static const hr_stream_ops_t h1_stream_ops = {h1_stream_write, h1_stream_end};

hr_stream_t *hr_respond_stream(hr_exchange_t *ex, const char *content_type,
                               const char *extra_headers)
{
    h1_t *h1 = ex->conn->proto_state;
    ex->responded = 1;
    ex->keep_alive = 0; /* the body ends when the connection does */
    hr_buf_t out = {0};
    write_head(ex, &out, 200, content_type, -1, extra_headers);
    int rc = hr_buf_failed(&out) ? -1 : hr_conn_write(ex->conn, out.data, out.len, NULL);
    hr_buf_free(&out);
    if (rc != 0) {
        hr_conn_close(ex->conn);
        return NULL;
    }
    h1->streaming = 1;
    h1->stream.ops = &h1_stream_ops;
    hr_reqparser_reset(&h1->parser);
    return &h1->stream;
}

static void stash(hr_conn_t *conn, h1_t *h1, const char *data, size_t len)
{
    const hr_config_t *config = conn->worker->config;
    size_t max = config->max_header_bytes + config->max_body_bytes;
    char *grown = h1->stash_len + len <= max ? realloc(h1->stash, h1->stash_len + len) : NULL;
    if (!grown) {
        hr_info("http.pipeline_overflow", "conn=%llu peer=%s stashed=%zu",
                (unsigned long long)conn->id, conn->peer, h1->stash_len + len);
        hr_conn_close(conn);
        return;
    }
    memcpy(grown + h1->stash_len, data, len);
    h1->stash = grown;
    h1->stash_len += len;
}

/* Bytes that came while the request was parked: read them now. */
static void read_stash(h1_t *h1)
{
    if (!h1->stash || h1->conn->closing || h1->conn->finishing) return;
    char *bytes = h1->stash;
    size_t n = h1->stash_len;
    h1->stash = NULL;
    h1->stash_len = 0;
    h1_on_data(h1->conn, bytes, n); /* may park again and stash the rest anew */
    free(bytes);
}

static void h1_pending_respond(hr_pending_t *pending, int status, const char *content_type,
                               const char *body, size_t len, int close)
{
    h1_t *h1 = hr_container_of(pending, h1_t, pending);
    if (!h1->parked) return;
    h1->parked = 0;
    hr_conn_set_kind(h1->conn, HR_CONN_HTTP);
    h1->conn->last_read_ms = (int64_t)uv_now(&h1->conn->worker->loop); /* idle from now */
    hr_exchange_t ex = {.conn = h1->conn,
                        .worker = h1->conn->worker,
                        .method = h1->parked_method,
                        .cors_origin = h1->parked_cors,
                        .keep_alive = h1->parked_keep_alive && !close};
    hr_respond(&ex, status, content_type, body, len, NULL);
    read_stash(h1);
}

/* Runs the held request's handler again (cluster mode: its topics are live now). */
static void h1_pending_redispatch(hr_pending_t *pending)
{
    h1_t *h1 = hr_container_of(pending, h1_t, pending);
    hr_request_t *req = h1->held_req;
    if (!h1->parked || !req) return;
    h1->parked = 0;
    h1->held_req = NULL;
    hr_conn_set_kind(h1->conn, HR_CONN_HTTP);
    hr_conn_t *conn = h1->conn;
    hr_api_dispatch(conn, req);
    hr_request_free(req);
    /* The handler may have parked again, streamed, or answered; `h1` is still the protocol
     * state (a deferred request is never an upgrade). */
    if (!h1->parked && !h1->streaming) read_stash(h1);
}

static const hr_pending_ops_t h1_pending_ops = {h1_pending_respond, h1_pending_redispatch};

hr_pending_t *hr_respond_later(hr_exchange_t *ex)
{
    h1_t *h1 = ex->conn->proto_state;
    ex->responded = 1;
    h1->parked = 1;
    h1->parked_method = ex->method;
    h1->parked_cors = ex->cors_origin;
    h1->parked_keep_alive = ex->keep_alive;
    h1->pending = (hr_pending_t){.ops = &h1_pending_ops};
    hr_conn_set_kind(ex->conn, HR_CONN_POLL);
    return &h1->pending;
}

hr_pending_t *hr_defer(hr_exchange_t *ex)
{
    h1_t *h1 = ex->conn->proto_state;
    hr_pending_t *pending = hr_respond_later(ex);
    hr_conn_set_kind(ex->conn, HR_CONN_HTTP);
    h1->held_req = ex->req; /* kept past the handler: h1_on_data does not free it */
    return pending;
}

static void answer_parse_error(hr_conn_t *conn, h1_t *h1)
{
    hr_exchange_t ex = {.conn = conn, .worker = conn->worker, .keep_alive = 0};
    hr_log(HR_LOG_INFO, "http.bad_request", "conn=%llu peer=%s status=%d reason=\"%s\"",
           (unsigned long long)conn->id, conn->peer, h1->parser.error_status, h1->parser.error);
    json_t *body =
        json_pack("{s:s, s:i}", "error", h1->parser.error, "status", h1->parser.error_status);
    hr_respond_json(&ex, h1->parser.error_status, body);
}

static void h1_on_data(hr_conn_t *conn, const char *data, size_t len)
{
    h1_t *h1 = h1_of(conn);
    if (!h1) {
        hr_conn_close(conn);
        return;
    }
    while (len > 0 && !h1->streaming && !conn->closing && !conn->finishing) {
        if (h1->parked) {
            /* A request pipelined behind a parked one: a poll answers now with what it has, so
             * answers keep the order of requests; a publish waiting for the disk cannot, so the
             * bytes wait (bounded) and are read after its answer. */
            h1->pending.wake(&h1->pending);
            if (h1->parked) {
                stash(conn, h1, data, len);
                return;
            }
            continue;
        }
        size_t used = 0;
        enum hr_parse_result result = hr_reqparser_feed(&h1->parser, data, len, &used);
        data += used;
        len -= used;
        if (result == HR_PARSE_ERROR) {
            answer_parse_error(conn, h1);
            return;
        }
        if (result == HR_PARSE_MORE) {
            /* A request begun must be whole within --request-timeout, however slowly its
             * bytes come (slowloris). */
            if (h1->parser.req && !conn->request_deadline_ms)
                conn->request_deadline_ms =
                    (int64_t)uv_now(&conn->worker->loop) + conn->worker->config->request_timeout_ms;
            return;
        }
        conn->request_deadline_ms = 0;
        hr_request_t *req = hr_reqparser_take(&h1->parser);
        int upgrade = req->upgrade;
        hr_api_dispatch(conn, req);
        if (req != h1->held_req) hr_request_free(req);
        if (conn->proto != &hr_h1_proto) {
            /* Upgraded (WebSocket): the new protocol owns the connection and the bytes that
             * followed the request. */
            hr_reqparser_reset(&h1->parser);
            free(h1);
            if (len && !conn->closing) conn->proto->on_data(conn, data, len);
            return;
        }
        if (upgrade) {
            hr_conn_finish(conn); /* refused upgrade: the answer was final */
            return;
        }
    }
}

static void h1_on_close(hr_conn_t *conn)
{
    h1_t *h1 = conn->proto_state;
    if (!h1) return;
    if (h1->streaming && h1->stream.on_close) h1->stream.on_close(&h1->stream);
    if (h1->parked && h1->pending.on_close) h1->pending.on_close(&h1->pending);
    if (h1->held_req) hr_request_free(h1->held_req);
    free(h1->stash);
    hr_reqparser_reset(&h1->parser);
    free(h1);
    conn->proto_state = NULL;
}

static void h1_on_shutdown(hr_conn_t *conn)
{
    h1_t *h1 = conn->proto_state;
    /* Idle keep-alive connections go now; one mid-request gets its answer first (with
     * Connection: close); streams were ended by their transport. */
    if (h1 && h1->parked) h1->pending.wake(&h1->pending); /* answered with Connection: close */
    if (!h1 || (!h1->streaming && !h1->parked && !h1->parser.req)) hr_conn_finish(conn);
}

static void h1_on_timeout(hr_conn_t *conn)
{
    h1_t *h1 = conn->proto_state;
    if (!h1 || h1->parked || h1->streaming || !h1->parser.req) return;
    hr_log(HR_LOG_INFO, "http.timeout", "conn=%llu peer=%s status=408",
           (unsigned long long)conn->id, conn->peer);
    hr_exchange_t ex = {.conn = conn, .worker = conn->worker, .keep_alive = 0};
    hr_respond_json(
        &ex, 408, json_pack("{s:s, s:i}", "error", "request not received in time", "status", 408));
}
