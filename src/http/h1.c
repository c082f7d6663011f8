/* HTTP/1.1 on a connection: parse, dispatch, answer, keep alive; or turn into a response
 * stream (SSE). Implements hr_conn_proto_t for connections and hr_stream_ops_t for streams. */
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/error.h"
#include "core/log.h"
#include "core/server.h"
#include "http/access.h"
#include "http/api.h"
#include "http/exchange.h"
#include "http/h1.h"

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
    char *stash;            /* bytes read before the connection paused (backpressure) */
    size_t stash_len;
    /* Publishes in flight (waiting for Redis or the disk): later pipelined publishes run too,
     * and every answer waits here, in request order, until those before it are out. */
    hr_list_t slots;        /* h1_slot_t, oldest first */
    size_t nslots;          /* in slots */
    size_t slot_bytes;      /* request bodies of the unanswered ones */
    hr_request_t *next_req; /* read, waiting until the slots let it run */
    /* --access-log: the request being answered ("METHOD path", quoted) and when it began;
     * a streamed answer's start. */
    char *line; /* HR_ACCESS_LINE bytes, allocated only with --access-log: an idle stream is lean */
    uint64_t started_ns;
    uint64_t stream_ns, stream_bytes;
} h1_t;

typedef struct h1_slot_s {
    hr_list_t link; /* in h1->slots */
    h1_t *h1;
    hr_pending_t pending; /* the publish answers through it */
    hr_buf_t out;         /* the answer's bytes, once answered */
    int answered;
    int close;         /* the connection ends after this answer */
    size_t body_bytes; /* the request's body, counted while unanswered */
    enum hr_method method;
    const char *cors;
    int keep_alive;
    char line[HR_ACCESS_LINE]; /* --access-log */
    uint64_t started_ns;
} h1_slot_t;

/* Publishes in flight on one connection; with the bodies' bytes (at most --max-body), what a
 * pipelining client can make herald hold before it stops reading that connection. */
#define H1_MAX_SLOTS 256
/* Answers not yet taken by the socket past which a connection stops reading requests: a client
 * that pipelines without reading its answers is held back by TCP, not cut as a slow consumer. */
#define H1_MAX_UNSENT (64 * 1024)

static void h1_on_data(hr_conn_t *conn, const char *data, size_t len);
static const hr_exchange_ops_t h1_exchange_ops; /* below, once its functions are */
static int run_request(hr_conn_t *conn, h1_t *h1, hr_request_t *req, const char *rest, size_t len);
static int runs_beside_slots(const h1_t *h1, const hr_request_t *req);
static void h1_on_close(hr_conn_t *conn);
static void h1_on_shutdown(hr_conn_t *conn);
static void h1_on_timeout(hr_conn_t *conn);
static void h1_on_drained(hr_conn_t *conn);
static int h1_idle_closes(hr_conn_t *conn);

const hr_conn_proto_t hr_h1_proto = {
    .on_data = h1_on_data,
    .on_close = h1_on_close,
    .on_shutdown = h1_on_shutdown,
    .on_timeout = h1_on_timeout,
    .on_drained = h1_on_drained,
    .idle_closes = h1_idle_closes,
    .refusal = HR_H1_REFUSAL,
};

const char *hr_status_text(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
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
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 505:
        return "HTTP Version Not Supported";
    case 507:
        return "Insufficient Storage";
    default:
        return "Unknown";
    }
}

static void note_request(h1_t *h1, const hr_request_t *req)
{
    if (!h1->conn->worker->config->access_log) return;
    if (!h1->line && !(h1->line = malloc(HR_ACCESS_LINE))) return;
    hr_access_note(h1->line, req);
    h1->started_ns = uv_hrtime();
}

static h1_t *h1_of(hr_conn_t *conn)
{
    if (!conn->proto_state) {
        h1_t *h1 = calloc(1, sizeof *h1);
        if (!h1) return NULL;
        h1->conn = conn;
        hr_list_init(&h1->slots);
        hr_reqparser_init(&h1->parser, conn->worker->config->max_header_bytes,
                          conn->worker->config->max_body_bytes);
        conn->proto_state = h1;
    }
    return conn->proto_state;
}

static void write_head(hr_exchange_t *ex, hr_buf_t *out, int status, const char *content_type,
                       long content_length, const char *extra_headers)
{
    if (status >= 400) hr_metrics_refused(&ex->worker->server->metrics, status);
    char date[40];
    hr_buf_printf(out, "HTTP/1.1 %d %s\r\nDate: %s\r\nServer: herald\r\n", status,
                  hr_status_text(status), hr_http_date(ex->worker, date, sizeof date));
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

static void render(hr_exchange_t *ex, hr_buf_t *out, int status, const char *content_type,
                   const char *body, size_t len, const char *extra_headers)
{
    if (ex->worker->stopping) ex->keep_alive = 0;
    int no_body = status == 204 || status == 304;
    write_head(ex, out, status, content_type, no_body ? -1 : (long)len, extra_headers);
    if (ex->method != HR_HEAD && !no_body) hr_buf_append(out, body, len);
}

static void flush_slots(h1_t *h1);

/* An answer behind publishes still in flight waits its turn in a slot of its own. */
static int queue_answer(h1_t *h1, hr_buf_t *out, int keep_alive)
{
    h1_slot_t *slot = calloc(1, sizeof *slot);
    if (!slot) return -1;
    slot->h1 = h1;
    slot->out = *out;
    *out = (hr_buf_t){0};
    slot->answered = 1;
    slot->close = !keep_alive;
    hr_list_push(&h1->slots, &slot->link);
    h1->nslots++;
    flush_slots(h1);
    return 0;
}

static void h1_respond(hr_exchange_t *ex, int status, const char *content_type, const char *body,
                       size_t len, const char *extra_headers)
{
    if (ex->responded) return;
    ex->responded = 1;
    hr_buf_t out = {0};
    render(ex, &out, status, content_type, body, len, extra_headers);
    h1_t *h1 = ex->conn->proto_state;
    if (hr_buf_failed(&out)) {
        hr_conn_close(ex->conn);
    } else if (h1 && ex->conn->proto == &hr_h1_proto && !hr_list_empty(&h1->slots)) {
        if (queue_answer(h1, &out, ex->keep_alive) != 0) hr_conn_close(ex->conn);
    } else {
        hr_conn_write(ex->conn, out.data, out.len, NULL);
        if (!ex->keep_alive) hr_conn_finish(ex->conn);
    }
    if (h1 && ex->conn->proto == &hr_h1_proto)
        hr_access_log(ex->conn, 0, h1->line, status, out.len, h1->started_ns, 0);
    hr_buf_free(&out);
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

static hr_stream_t *h1_stream(hr_exchange_t *ex, const char *content_type,
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
    h1->stream_ns = uv_hrtime();
    h1->stream_bytes = ex->conn->bytes_written;
    hr_reqparser_reset(&h1->parser);
    return &h1->stream;
}

/* Input that cannot be read yet: kept, and the connection stops reading (backpressure), so
 * what is kept is at most one read (64 KiB) however much the client pipelines. */
static void stash(hr_conn_t *conn, h1_t *h1, const char *data, size_t len)
{
    char *grown = realloc(h1->stash, h1->stash_len + len);
    if (!grown) {
        hr_warn("http.stash_failed", "conn=%llu peer=%s bytes=%zu", (unsigned long long)conn->id,
                conn->peer, h1->stash_len + len);
        hr_conn_close(conn);
        return;
    }
    memcpy(grown + h1->stash_len, data, len);
    h1->stash = grown;
    h1->stash_len += len;
    hr_conn_pause(conn);
}

/* Input held back: the request read ahead, then the stashed bytes; reading resumes once all
 * of it went through. */
static void resume_input(h1_t *h1)
{
    hr_conn_t *conn = h1->conn;
    if (h1->parked || h1->streaming || conn->closing || conn->finishing) return;
    if (h1->next_req) {
        hr_request_t *req = h1->next_req;
        if (!hr_list_empty(&h1->slots) && !runs_beside_slots(h1, req)) return;
        h1->next_req = NULL;
        char *bytes = h1->stash;
        size_t n = h1->stash_len;
        h1->stash = NULL;
        h1->stash_len = 0;
        if (run_request(conn, h1, req, bytes, n) != 0) {
            free(bytes);
            return;
        }
        if (n) h1_on_data(conn, bytes, n); /* may hold back again and stash the rest anew */
        free(bytes);
    } else if (h1->stash) {
        char *bytes = h1->stash;
        size_t n = h1->stash_len;
        h1->stash = NULL;
        h1->stash_len = 0;
        h1_on_data(conn, bytes, n); /* may hold back again and stash the rest anew */
        free(bytes);
    }
    if (conn->proto == &hr_h1_proto && !h1->stash && !h1->next_req) hr_conn_resume(conn);
}

static void h1_pending_respond(hr_pending_t *pending, int status, const char *content_type,
                               const char *body, size_t len, int close)
{
    h1_t *h1 = hr_container_of(pending, h1_t, pending);
    if (!h1->parked) return;
    h1->parked = 0;
    hr_conn_set_kind(h1->conn, HR_CONN_HTTP);
    h1->conn->last_read_ms = (int64_t)uv_now(&h1->conn->worker->loop); /* idle from now */
    hr_exchange_t ex = {.ops = &h1_exchange_ops,
                        .conn = h1->conn,
                        .worker = h1->conn->worker,
                        .method = h1->parked_method,
                        .cors_origin = h1->parked_cors,
                        .keep_alive = h1->parked_keep_alive && !close};
    hr_respond(&ex, status, content_type, body, len, pending->extra_headers);
    resume_input(h1);
}

static hr_stream_t *h1_pending_stream(hr_pending_t *pending, const char *content_type)
{
    h1_t *h1 = hr_container_of(pending, h1_t, pending);
    if (!h1->parked) return NULL;
    h1->parked = 0;
    hr_conn_set_kind(h1->conn, HR_CONN_SSE);
    hr_exchange_t ex = {.ops = &h1_exchange_ops,
                        .conn = h1->conn,
                        .worker = h1->conn->worker,
                        .method = h1->parked_method,
                        .cors_origin = h1->parked_cors};
    return hr_respond_stream(&ex, content_type, pending->extra_headers);
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
    hr_api_dispatch(conn, req, &h1_exchange_ops, NULL);
    if (req != h1->held_req) hr_request_free(req); /* deferred again: kept, as in run_request */
    /* The handler may have parked again, streamed, or answered; `h1` is still the protocol
     * state (a deferred request is never an upgrade). */
    if (!h1->parked && !h1->streaming) resume_input(h1);
}

static const hr_pending_ops_t h1_pending_ops = {h1_pending_respond, h1_pending_redispatch,
                                                h1_pending_stream};

static hr_pending_t *h1_later(hr_exchange_t *ex)
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

static hr_pending_t *h1_defer(hr_exchange_t *ex)
{
    h1_t *h1 = ex->conn->proto_state;
    hr_pending_t *pending = h1_later(ex);
    hr_conn_set_kind(ex->conn, HR_CONN_HTTP);
    h1->held_req = ex->req; /* kept past the handler: h1_on_data does not free it */
    return pending;
}

/* ---- answer slots: publishes in flight, answered in request order ---- */

/* Writes the answers at the head that are ready, in order; then lets held input run. */
static void flush_slots(h1_t *h1)
{
    hr_conn_t *conn = h1->conn;
    while (!hr_list_empty(&h1->slots)) {
        h1_slot_t *slot = hr_container_of(h1->slots.next, h1_slot_t, link);
        if (!slot->answered) break;
        hr_list_remove(&slot->link);
        h1->nslots--;
        int close = slot->close;
        if (!conn->closing && !conn->finishing)
            hr_conn_write(conn, slot->out.data, slot->out.len, NULL);
        hr_buf_free(&slot->out);
        free(slot);
        if (close) hr_conn_finish(conn); /* what follows is dropped with the connection */
    }
    conn->last_read_ms = (int64_t)uv_now(&conn->worker->loop); /* idle from now */
    resume_input(h1);
}

static void slot_respond(hr_pending_t *pending, int status, const char *content_type,
                         const char *body, size_t len, int close)
{
    h1_slot_t *slot = hr_container_of(pending, h1_slot_t, pending);
    if (slot->answered) return;
    h1_t *h1 = slot->h1;
    hr_exchange_t ex = {.ops = &h1_exchange_ops,
                        .conn = h1->conn,
                        .worker = h1->conn->worker,
                        .method = slot->method,
                        .cors_origin = slot->cors,
                        .keep_alive = slot->keep_alive && !close,
                        .responded = 1};
    render(&ex, &slot->out, status, content_type, body, len, pending->extra_headers);
    if (hr_buf_failed(&slot->out)) {
        hr_conn_close(h1->conn);
        return;
    }
    slot->answered = 1;
    slot->close = !ex.keep_alive;
    hr_access_log(h1->conn, 0, slot->line, status, slot->out.len, slot->started_ns, 0);
    h1->slot_bytes -= slot->body_bytes;
    flush_slots(h1);
}

static void slot_redispatch(hr_pending_t *pending)
{
    (void)pending; /* a queued answer is never deferred */
}

static hr_stream_t *slot_stream(hr_pending_t *pending, const char *content_type)
{
    (void)content_type; /* a queued answer (a publish) is never a stream */
    hr_conn_close(hr_container_of(pending, h1_slot_t, pending)->h1->conn);
    return NULL;
}

static const hr_pending_ops_t h1_slot_ops = {slot_respond, slot_redispatch, slot_stream};

static hr_pending_t *h1_queued(hr_exchange_t *ex)
{
    h1_t *h1 = ex->conn->proto_state;
    h1_slot_t *slot = calloc(1, sizeof *slot);
    if (!slot) return NULL;
    ex->responded = 1;
    slot->h1 = h1;
    slot->pending = (hr_pending_t){.ops = &h1_slot_ops};
    slot->body_bytes = ex->req ? ex->req->body_len : 0;
    slot->method = ex->method;
    slot->cors = ex->cors_origin;
    slot->keep_alive = ex->keep_alive;
    if (h1->line) memcpy(slot->line, h1->line, sizeof slot->line);
    slot->started_ns = h1->started_ns;
    hr_list_push(&h1->slots, &slot->link);
    h1->nslots++;
    h1->slot_bytes += slot->body_bytes;
    return &slot->pending;
}

/* Only publishes run beside publishes in flight, within the slot limits: any other request
 * (a stream, a poll, an upgrade) waits until every answer before it is out. */
static int runs_beside_slots(const h1_t *h1, const hr_request_t *req)
{
    if (h1->nslots >= H1_MAX_SLOTS ||
        h1->slot_bytes + req->body_len > h1->conn->worker->config->max_body_bytes)
        return 0;
    hr_route_match_t match;
    enum hr_method method = hr_method_parse(req->method, req->method_len);
    if (method != HR_POST || hr_route(method, req->path, req->path_len, &match) != 200) return 0;
    return match.id == HR_ROUTE_PUBLISH || match.id == HR_ROUTE_PUBLISH_MANY;
}

/* The client left: unanswered publishes hear it (they go on; nobody is told). */
static void drop_slots(h1_t *h1)
{
    while (!hr_list_empty(&h1->slots)) {
        h1_slot_t *slot = hr_container_of(h1->slots.next, h1_slot_t, link);
        hr_list_remove(&slot->link);
        if (!slot->answered && slot->pending.on_close) slot->pending.on_close(&slot->pending);
        hr_buf_free(&slot->out);
        free(slot);
    }
    h1->nslots = 0;
}

static void answer_parse_error(hr_conn_t *conn, h1_t *h1)
{
    hr_exchange_t ex = {
        .ops = &h1_exchange_ops, .conn = conn, .worker = conn->worker, .keep_alive = 0};
    hr_log(HR_LOG_INFO, "http.bad_request", "conn=%llu peer=%s status=%d reason=\"%s\"",
           (unsigned long long)conn->id, conn->peer, h1->parser.error_status, h1->parser.error);
    int status = h1->parser.error_status;
    json_t *body = json_pack("{s:s, s:i}", "error", h1->parser.error, "status", status);
    /* The two limits a client can meet with honest requests: say which flag sets them. */
    if (status == 413 || status == 431) {
        const hr_config_t *config = conn->worker->config;
        size_t limit = status == 413 ? config->max_body_bytes : config->max_header_bytes;
        const char *flag = status == 413 ? "--max-body" : "--max-header";
        char why[160];
        snprintf(why, sizeof why, "%s: the limit is %zu bytes (%s)", h1->parser.error, limit, flag);
        json_object_set_new(body, "error", json_string(why));
        json_object_set_new(body, "limit", json_integer((json_int_t)limit));
        json_object_set_new(body, "flag", json_string(flag));
    }
    hr_respond_json(&ex, status, body);
}

/* Runs one request; `rest` is what the client sent after it. Returns 0 to go on reading
 * HTTP/1 here, -1 once the connection is not ours to read: upgraded (`rest` handed to the new
 * protocol) or ending after a refused upgrade. */
static int run_request(hr_conn_t *conn, h1_t *h1, hr_request_t *req, const char *rest, size_t len)
{
    int upgrade = req->upgrade;
    note_request(h1, req);
    hr_api_dispatch(conn, req, &h1_exchange_ops, NULL);
    if (req != h1->held_req) hr_request_free(req);
    if (conn->proto != &hr_h1_proto) {
        /* Upgraded (WebSocket): the new protocol owns the connection and the bytes that
         * followed the request. */
        hr_reqparser_reset(&h1->parser);
        free(h1->stash);
        free(h1->line);
        free(h1);
        if (len && !conn->closing) conn->proto->on_data(conn, rest, len);
        return -1;
    }
    if (upgrade) {
        hr_conn_finish(conn); /* refused upgrade: the answer was final */
        return -1;
    }
    return 0;
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
             * answers keep the order of requests; a deferred request cannot, so the bytes wait
             * (reading paused) and are read after its answer. */
            h1->pending.wake(&h1->pending);
            if (h1->parked) {
                stash(conn, h1, data, len);
                return;
            }
            continue;
        }
        if (h1->next_req || h1->stash || /* held back already: keep the order */
            conn->tcp.write_queue_size > H1_MAX_UNSENT) {
            stash(conn, h1, data, len);
            return;
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
        if (!hr_list_empty(&h1->slots) && !runs_beside_slots(h1, req)) {
            h1->next_req = req; /* runs when the answers before it are out */
            if (len) stash(conn, h1, data, len);
            hr_conn_pause(conn);
            return;
        }
        if (run_request(conn, h1, req, data, len) != 0) return;
    }
}

static void h1_on_close(hr_conn_t *conn)
{
    h1_t *h1 = conn->proto_state;
    if (!h1) return;
    if (h1->streaming)
        hr_access_log(conn, 0, h1->line, 200, conn->bytes_written - h1->stream_bytes, h1->stream_ns,
                      1);
    if (h1->streaming && h1->stream.on_close) h1->stream.on_close(&h1->stream);
    if (h1->parked && h1->pending.on_close) h1->pending.on_close(&h1->pending);
    if (h1->held_req) hr_request_free(h1->held_req);
    drop_slots(h1);
    hr_request_free(h1->next_req);
    free(h1->stash);
    free(h1->line);
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
    if (!h1 || (!h1->streaming && !h1->parked && !h1->parser.req && hr_list_empty(&h1->slots) &&
                !h1->next_req))
        hr_conn_finish(conn);
}

static void h1_on_drained(hr_conn_t *conn)
{
    h1_t *h1 = conn->proto_state;
    if (h1 && conn->paused) resume_input(h1);
}

static void h1_on_timeout(hr_conn_t *conn)
{
    h1_t *h1 = conn->proto_state;
    if (!h1 || h1->parked || h1->streaming || !h1->parser.req) return;
    hr_log(HR_LOG_INFO, "http.timeout", "conn=%llu peer=%s status=408",
           (unsigned long long)conn->id, conn->peer);
    hr_exchange_t ex = {
        .ops = &h1_exchange_ops, .conn = conn, .worker = conn->worker, .keep_alive = 0};
    hr_respond_json(
        &ex, 408, json_pack("{s:s, s:i}", "error", "request not received in time", "status", 408));
}

static int h1_upgrade(hr_exchange_t *ex, const char *protocol, const char *extra_headers,
                      const hr_conn_proto_t *proto, void *state, hr_stream_t *out)
{
    hr_buf_t head = {0};
    hr_buf_printf(
        &head, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: %s\r\nConnection: Upgrade\r\n%s\r\n",
        protocol, extra_headers ? extra_headers : "");
    ex->responded = 1;
    int rc = hr_buf_failed(&head) ? HR_ENOMEM : hr_conn_write(ex->conn, head.data, head.len, NULL);
    hr_buf_free(&head);
    if (rc != 0) {
        hr_conn_close(ex->conn);
        return -1;
    }
    *out = (hr_stream_t){.ops = &hr_conn_stream_ops, .carrier = ex->conn};
    hr_conn_upgrade(ex->conn, proto, state);
    return 0;
}

static void h1_set_kind(hr_exchange_t *ex, enum hr_conn_kind kind)
{
    hr_conn_set_kind(ex->conn, kind);
}

static const hr_exchange_ops_t h1_exchange_ops = {h1_respond, h1_stream,  h1_later,   h1_queued,
                                                  h1_defer,   h1_upgrade, h1_set_kind};

/* A keep-alive connection between requests, or a request deferred until its topics are live
 * (cluster mode; the idle timeout bounds that wait); not one that streams or waits for a
 * long poll's or an upstream's answer. */
static int h1_idle_closes(hr_conn_t *conn)
{
    const h1_t *h1 = conn->proto_state;
    return !h1 || (!h1->streaming && (!h1->parked || h1->held_req));
}
