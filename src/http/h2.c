/* HTTP/2 on a connection (RFC 9113) with nghttp2: each stream is an exchange, so every route
 * (SSE, long polls, publish, history, presence...) runs over it unchanged. Implements
 * hr_conn_proto_t for the connection, hr_exchange_ops_t, hr_stream_ops_t and hr_pending_ops_t
 * for its streams.
 *
 * Output: nghttp2 frames what streams queue; a stream's bytes wait in its own chain (message
 * references, not copies) while its flow-control window is shut, against the same
 * --max-outbound bound as a connection, and a stream over it is reset alone. Sending is never
 * done inside a caller's write (a stream closing there would free the caller's state under
 * it): after the input that caused it, or on the next loop turn (a zero timer), which gathers
 * a fan-out's writes into one socket write per connection. */
#include <nghttp2/nghttp2.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/error.h"
#include "core/list.h"
#include "core/log.h"
#include "core/server.h"
#include "http/access.h"
#include "http/api.h"
#include "http/exchange.h"
#include "http/h2.h"
#include "http/h2_request.h"

/* Bytes handed to the socket and not yet taken past which nghttp2 is asked for no more
 * frames until they drain (the rest waits in the streams, under flow control's bounds). */
#define H2_MAX_UNSENT (256 * 1024)
/* Open streams' RST_STREAM frames a client may send: a burst, then a rate per second; over it
 * nghttp2 ends the connection (rapid reset, CVE-2023-44487). */
#define H2_RESET_BURST 1000
#define H2_RESET_RATE  33
/* What all of a connection's streams may hold behind shut windows, in --max-outbound: without
 * it, 128 streams each just under the bound would make one connection hold 128 of them. */
#define H2_CONN_OUTBOUND 4

typedef struct h2_chunk_s {
    struct h2_chunk_s *next;
    hr_msg_t *msg; /* owns `bytes`, or NULL when they are copied after the struct */
    const char *bytes;
    size_t len;
} h2_chunk_t;

typedef struct h2_s h2_t;

typedef struct h2_stream_s {
    hr_list_t link; /* in h2->streams */
    h2_t *h2;
    int32_t id;
    hr_h2req_t request; /* fields and body being read */
    int refused;        /* a status decided while reading (413, 431, 503) */
    int answered;       /* a response is submitted */
    int streaming;      /* hr_stream_t under way */
    int parked;         /* an hr_pending_t waits for its answer */
    int eof;            /* nothing follows what is queued */
    int cut;            /* reset by herald: writes are refused */
    h2_chunk_t *head, *tail;
    size_t head_off; /* bytes of head already framed */
    size_t queued;   /* bytes in the chain */
    hr_stream_t stream;
    hr_pending_t pending;
    hr_request_t *held_req; /* a deferred request, dispatched again by redispatch */
    enum hr_method method;
    const char *cors;
    int kind; /* HR_CONN_* it counts as in the stats, or -1 */
    int status;
    uint64_t started_ns; /* --access-log */
    uint64_t bytes_out;
    char *line;        /* --access-log only: HR_ACCESS_LINE bytes */
    size_t body_bytes; /* this stream's share of h2->body_bytes */
} h2_stream_t;

struct h2_s {
    nghttp2_session *session;
    hr_conn_t *conn;
    hr_list_t streams; /* h2_stream_t */
    size_t nstreams;
    int in_recv;     /* inside nghttp2_session_mem_recv: sending waits until it returns */
    int goaway;      /* the server is stopping: no new streams, finish when none is left */
    uv_timer_t kick; /* sends on the next loop turn; its close callback frees this */
    int kick_armed;
    size_t queued; /* bytes in all the streams' chains */
    /* Request bodies being received on all streams: at most --max-body, as HTTP/1.1's
     * publishes in flight, or 128 streams could make one connection hold 128 bodies. */
    size_t body_bytes;
};

static const hr_exchange_ops_t h2_exchange_ops;
static const hr_stream_ops_t h2_stream_ops;
static const hr_pending_ops_t h2_pending_ops;

/* ---- output ---- */

static void flush(h2_t *h2)
{
    hr_conn_t *conn = h2->conn;
    if (conn->closing || conn->finishing) return;
    size_t limit = conn->worker->config->max_outbound_bytes / 2;
    if (limit > H2_MAX_UNSENT) limit = H2_MAX_UNSENT;
    hr_buf_t out = {0};
    while (conn->tcp.write_queue_size + out.len < limit) {
        const uint8_t *data;
        ssize_t n = nghttp2_session_mem_send(h2->session, &data);
        if (n < 0) {
            hr_warn("h2.send_failed", "conn=%llu peer=%s err=\"%s\"", (unsigned long long)conn->id,
                    conn->peer, nghttp2_strerror((int)n));
            hr_buf_free(&out);
            hr_conn_close(conn);
            return;
        }
        if (n == 0) break;
        hr_buf_append(&out, (const char *)data, (size_t)n);
    }
    if (hr_buf_failed(&out)) {
        hr_buf_free(&out);
        hr_conn_close(conn);
        return;
    }
    if (out.len) hr_conn_write(conn, out.data, out.len, NULL);
    hr_buf_free(&out);
    if (conn->closing || conn->finishing) return;
    int done = !nghttp2_session_want_read(h2->session) && !nghttp2_session_want_write(h2->session);
    if (done || (h2->goaway && !h2->nstreams && !nghttp2_session_want_write(h2->session)))
        hr_conn_finish(conn);
}

static void on_kick(uv_timer_t *timer)
{
    h2_t *h2 = timer->data;
    h2->kick_armed = 0;
    flush(h2);
}

/* Sends soon: after the input being read, else on the next loop turn. */
static void kick(h2_t *h2)
{
    if (h2->in_recv || h2->kick_armed || h2->conn->closing) return;
    h2->kick_armed = 1;
    uv_timer_start(&h2->kick, on_kick, 0, 0);
}

static void chunk_free_all(h2_stream_t *st)
{
    for (h2_chunk_t *chunk = st->head, *next; chunk; chunk = next) {
        next = chunk->next;
        if (chunk->msg) hr_msg_unref(chunk->msg);
        free(chunk);
    }
    st->head = st->tail = NULL;
    st->h2->queued -= st->queued;
    st->queued = st->head_off = 0;
}

/* nghttp2 asks for a DATA frame's payload: copied out of the chain. */
static ssize_t read_body(nghttp2_session *session, int32_t id, uint8_t *buf, size_t length,
                         uint32_t *flags, nghttp2_data_source *source, void *user)
{
    (void)session;
    (void)id;
    (void)user;
    h2_stream_t *st = source->ptr;
    size_t copied = 0;
    while (st->head && copied < length) {
        h2_chunk_t *chunk = st->head;
        size_t n = chunk->len - st->head_off;
        if (n > length - copied) n = length - copied;
        memcpy(buf + copied, chunk->bytes + st->head_off, n);
        copied += n;
        st->head_off += n;
        if (st->head_off == chunk->len) {
            st->head = chunk->next;
            if (!st->head) st->tail = NULL;
            st->head_off = 0;
            if (chunk->msg) hr_msg_unref(chunk->msg);
            free(chunk);
        }
    }
    st->queued -= copied;
    st->h2->queued -= copied;
    st->bytes_out += copied;
    if (!st->head && st->eof) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    } else if (copied == 0) {
        return NGHTTP2_ERR_DEFERRED; /* resumed by the next write or end */
    }
    return (ssize_t)copied;
}

static int queue_bytes(h2_stream_t *st, const char *bytes, size_t len, hr_msg_t *msg)
{
    h2_chunk_t *chunk = malloc(sizeof *chunk + (msg ? 0 : len));
    if (!chunk) return HR_ENOMEM;
    chunk->next = NULL;
    chunk->msg = msg ? hr_msg_ref(msg) : NULL;
    chunk->len = len;
    if (msg) {
        chunk->bytes = bytes;
    } else {
        memcpy(chunk + 1, bytes, len);
        chunk->bytes = (const char *)(chunk + 1);
    }
    if (st->tail)
        st->tail->next = chunk;
    else
        st->head = chunk;
    st->tail = chunk;
    st->queued += len;
    st->h2->queued += len;
    return 0;
}

/* ---- answers ---- */

static void lowercase_into(char *out, size_t size, const char *name, size_t len)
{
    if (len >= size) len = size - 1;
    for (size_t i = 0; i < len; i++)
        out[i] = (char)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] + 32 : name[i]);
    out[len] = '\0';
}

/* HTTP/1.1's connection-specific fields have no place in HTTP/2 (RFC 9113 §8.2.2). */
static int connection_specific(const char *name)
{
    return !strcmp(name, "connection") || !strcmp(name, "keep-alive") ||
           !strcmp(name, "transfer-encoding") || !strcmp(name, "upgrade") ||
           !strcmp(name, "proxy-connection");
}

#define H2_MAX_FIELDS 24

typedef struct h2_head_s {
    nghttp2_nv nv[H2_MAX_FIELDS];
    size_t n;
    char text[2048]; /* lowercased names, values, numbers */
    size_t used;
} h2_head_t;

static const char *keep(h2_head_t *head, const char *bytes, size_t len)
{
    if (head->used + len + 1 > sizeof head->text) return NULL;
    char *at = head->text + head->used;
    memcpy(at, bytes, len);
    at[len] = '\0';
    head->used += len + 1;
    return at;
}

static void add_field(h2_head_t *head, const char *name, const char *value)
{
    if (!name || !value || head->n == H2_MAX_FIELDS) return;
    head->nv[head->n++] = (nghttp2_nv){(uint8_t *)name, (uint8_t *)value, strlen(name),
                                       strlen(value), NGHTTP2_NV_FLAG_NONE};
}

/* "Name: value\r\n" lines, as handlers write them for either protocol. */
static void add_extra(h2_head_t *head, const char *extra)
{
    while (extra && *extra) {
        const char *end = strstr(extra, "\r\n");
        size_t line_len = end ? (size_t)(end - extra) : strlen(extra);
        const char *colon = memchr(extra, ':', line_len);
        if (colon) {
            char name[64];
            lowercase_into(name, sizeof name, extra, (size_t)(colon - extra));
            const char *value = colon + 1;
            while (value < extra + line_len && *value == ' ')
                value++;
            if (!connection_specific(name))
                add_field(head, keep(head, name, strlen(name)),
                          keep(head, value, (size_t)(extra + line_len - value)));
        }
        extra = end ? end + 2 : extra + line_len;
    }
}

static void build_head(h2_head_t *head, const h2_stream_t *st, int status, const char *content_type,
                       long content_length, const char *extra)
{
    char number[24], date[40];
    head->n = head->used = 0;
    snprintf(number, sizeof number, "%d", status);
    add_field(head, ":status", keep(head, number, strlen(number)));
    const char *now = hr_http_date(st->h2->conn->worker, date, sizeof date);
    add_field(head, "date", keep(head, now, strlen(now)));
    add_field(head, "server", "herald");
    if (content_type) add_field(head, "content-type", content_type);
    if (content_length >= 0) {
        snprintf(number, sizeof number, "%ld", content_length);
        add_field(head, "content-length", keep(head, number, strlen(number)));
    }
    if (st->cors) {
        add_field(head, "access-control-allow-origin", st->cors);
        if (strcmp(st->cors, "*") != 0) add_field(head, "vary", "origin");
    }
    add_extra(head, extra);
}

static void access_line(h2_stream_t *st, uint64_t bytes, int streamed)
{
    hr_access_log(st->h2->conn, st->id, st->line, st->status, bytes, st->started_ns, streamed);
}

/* Submits the response head; with `body` (may be empty) as a whole body, with `streaming` as
 * the start of one that writes add to. */
static int submit(h2_stream_t *st, int status, const char *content_type, const char *body,
                  size_t len, const char *extra, int streaming)
{
    h2_t *h2 = st->h2;
    if (status >= 400) hr_metrics_refused(&h2->conn->worker->server->metrics, status);
    st->answered = 1;
    st->status = status;
    int no_body = status == 204 || status == 304 || (!streaming && st->method == HR_HEAD);
    if (!streaming && !no_body && len && queue_bytes(st, body, len, NULL) != 0) return -1;
    st->eof = !streaming;
    h2_head_t head;
    build_head(&head, st, status, content_type,
               streaming || status == 204 || status == 304 ? -1 : (long)len, extra);
    nghttp2_data_provider provider = {.source.ptr = st, .read_callback = read_body};
    int rc =
        nghttp2_submit_response(h2->session, st->id, head.nv, head.n, no_body ? NULL : &provider);
    kick(h2);
    return rc == 0 ? 0 : -1;
}

static void set_kind(h2_stream_t *st, int kind)
{
    hr_worker_t *worker = st->h2->conn->worker;
    if (st->kind == kind) return;
    if (st->kind >= 0) atomic_fetch_sub(&worker->conns_now[st->kind], 1);
    if (kind >= 0) atomic_fetch_add(&worker->conns_now[kind], 1);
    st->kind = kind;
}

static void h2_set_kind(hr_exchange_t *ex, enum hr_conn_kind kind)
{
    /* The connection counts as HTTP; a stream counts only while it is a transport's client. */
    set_kind(ex->carrier, kind == HR_CONN_HTTP ? -1 : (int)kind);
}

static void h2_respond(hr_exchange_t *ex, int status, const char *content_type, const char *body,
                       size_t len, const char *extra_headers)
{
    h2_stream_t *st = ex->carrier;
    if (ex->responded) return;
    ex->responded = 1;
    if (submit(st, status, content_type, body, len, extra_headers, 0) != 0)
        nghttp2_submit_rst_stream(st->h2->session, NGHTTP2_FLAG_NONE, st->id,
                                  NGHTTP2_INTERNAL_ERROR);
    access_line(st, len, 0);
}

static hr_stream_t *start_stream(h2_stream_t *st, const char *content_type, const char *extra)
{
    if (submit(st, 200, content_type, NULL, 0, extra, 1) != 0) {
        nghttp2_submit_rst_stream(st->h2->session, NGHTTP2_FLAG_NONE, st->id,
                                  NGHTTP2_INTERNAL_ERROR);
        return NULL;
    }
    st->streaming = 1;
    st->stream = (hr_stream_t){.ops = &h2_stream_ops};
    return &st->stream;
}

static hr_stream_t *h2_stream(hr_exchange_t *ex, const char *content_type,
                              const char *extra_headers)
{
    ex->responded = 1;
    return start_stream(ex->carrier, content_type, extra_headers);
}

static hr_pending_t *park(hr_exchange_t *ex, int kind)
{
    h2_stream_t *st = ex->carrier;
    ex->responded = 1;
    st->parked = 1;
    st->pending = (hr_pending_t){.ops = &h2_pending_ops};
    set_kind(st, kind);
    return &st->pending;
}

static hr_pending_t *h2_later(hr_exchange_t *ex)
{
    return park(ex, HR_CONN_POLL);
}

/* Streams are independent: a publish answered later holds no other request back. */
static hr_pending_t *h2_queued(hr_exchange_t *ex)
{
    return park(ex, -1);
}

static hr_pending_t *h2_defer(hr_exchange_t *ex)
{
    h2_stream_t *st = ex->carrier;
    hr_pending_t *pending = park(ex, -1);
    st->held_req = ex->req; /* kept past the handler: dispatch does not free it */
    return pending;
}

/* WebSocket needs RFC 8441's extended CONNECT, which herald does not offer (docs/HTTP2.md):
 * browsers open WebSockets over HTTP/1.1 then, so this is reached only by a forged request. */
static int h2_upgrade(hr_exchange_t *ex, const char *protocol, const char *extra_headers,
                      const hr_conn_proto_t *proto, void *state, hr_stream_t *out)
{
    (void)out;
    (void)protocol;
    (void)extra_headers;
    (void)proto;
    (void)state;
    hr_respond_error(ex, 400, "WebSocket over HTTP/2 is not offered; use HTTP/1.1");
    return -1;
}

static const hr_exchange_ops_t h2_exchange_ops = {h2_respond, h2_stream,  h2_later,   h2_queued,
                                                  h2_defer,   h2_upgrade, h2_set_kind};

/* ---- streams as hr_stream_t and hr_pending_t ---- */

static void cut_stream(h2_stream_t *st, const char *why)
{
    hr_conn_t *conn = st->h2->conn;
    st->cut = 1;
    chunk_free_all(st);
    hr_metrics_t *metrics = &conn->worker->server->metrics;
    atomic_fetch_add_explicit(&metrics->slow_consumer_cuts, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&metrics->h2_stream_cuts, 1, memory_order_relaxed);
    hr_warn("conn.slow_consumer", "conn=%llu stream=%d peer=%s reason=\"%s\"",
            (unsigned long long)conn->id, st->id, conn->peer, why);
    nghttp2_submit_rst_stream(st->h2->session, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_CANCEL);
    kick(st->h2);
}

static int h2_stream_write(hr_stream_t *stream, const char *bytes, size_t len, hr_msg_t *msg)
{
    h2_stream_t *st = hr_container_of(stream, h2_stream_t, stream);
    if (st->cut || st->eof || st->h2->conn->closing) return HR_ESHUTDOWN;
    size_t limit = st->h2->conn->worker->config->max_outbound_bytes;
    if (st->queued && st->queued + len > limit) {
        /* Its window stays shut (the client reads nothing): the same bound as a connection,
         * and only this stream pays; it resumes from history when it comes back. */
        cut_stream(st, "stream window shut past --max-outbound");
        return HR_ELIMIT;
    }
    if (st->queued && st->h2->queued + len > H2_CONN_OUTBOUND * limit) {
        /* Many streams each under the bound, all shut: the connection's own budget. */
        cut_stream(st, "streams' windows shut past 4 x --max-outbound");
        return HR_ELIMIT;
    }
    if (queue_bytes(st, bytes, len, msg) != 0) {
        cut_stream(st, "out of memory");
        return HR_ENOMEM;
    }
    nghttp2_session_resume_data(st->h2->session, st->id);
    kick(st->h2);
    return 0;
}

static void h2_stream_end(hr_stream_t *stream)
{
    h2_stream_t *st = hr_container_of(stream, h2_stream_t, stream);
    if (st->eof || st->cut) return;
    st->eof = 1;
    nghttp2_session_resume_data(st->h2->session, st->id);
    kick(st->h2);
}

static const hr_stream_ops_t h2_stream_ops = {h2_stream_write, h2_stream_end};

static hr_exchange_t late_exchange(h2_stream_t *st)
{
    return (hr_exchange_t){.ops = &h2_exchange_ops,
                           .conn = st->h2->conn,
                           .carrier = st,
                           .worker = st->h2->conn->worker,
                           .method = st->method,
                           .cors_origin = st->cors,
                           .keep_alive = 1};
}

static void h2_pending_respond(hr_pending_t *pending, int status, const char *content_type,
                               const char *body, size_t len, int close)
{
    (void)close; /* the connection outlives the stream */
    h2_stream_t *st = hr_container_of(pending, h2_stream_t, pending);
    if (!st->parked) return;
    st->parked = 0;
    set_kind(st, -1);
    hr_exchange_t ex = late_exchange(st);
    hr_respond(&ex, status, content_type, body, len, pending->extra_headers);
}

static hr_stream_t *h2_pending_stream(hr_pending_t *pending, const char *content_type)
{
    h2_stream_t *st = hr_container_of(pending, h2_stream_t, pending);
    if (!st->parked) return NULL;
    st->parked = 0;
    set_kind(st, HR_CONN_SSE);
    return start_stream(st, content_type, pending->extra_headers);
}

static void h2_pending_redispatch(hr_pending_t *pending)
{
    h2_stream_t *st = hr_container_of(pending, h2_stream_t, pending);
    hr_request_t *req = st->held_req;
    if (!st->parked || !req) return;
    st->parked = 0;
    st->held_req = NULL;
    set_kind(st, -1);
    hr_api_dispatch(st->h2->conn, req, &h2_exchange_ops, st);
    if (req != st->held_req) hr_request_free(req); /* not deferred again */
}

static const hr_pending_ops_t h2_pending_ops = {h2_pending_respond, h2_pending_redispatch,
                                                h2_pending_stream};

/* ---- nghttp2's callbacks: input ---- */

static void note_request(h2_stream_t *st, const hr_request_t *req)
{
    st->started_ns = uv_hrtime();
    if (!st->h2->conn->worker->config->access_log) return;
    if (st->line || (st->line = malloc(HR_ACCESS_LINE))) hr_access_note(st->line, req);
}

static const char *refusal_reason(int status)
{
    switch (status) {
    case 413:
        return "request body too large (--max-body)";
    case 431:
        return "request header fields too large (--max-header)";
    case 503:
        return "out of memory";
    default:
        return "malformed request: :method and a :path starting with / are required";
    }
}

/* The request is whole: its handler runs (inside nghttp2's input callback, which allows
 * submitting frames; they go out when the input is read). */
static void release_body(h2_stream_t *st)
{
    st->h2->body_bytes -= st->body_bytes;
    st->body_bytes = 0;
}

static void run_request(h2_stream_t *st)
{
    hr_conn_t *conn = st->h2->conn;
    release_body(st); /* the body leaves the builder: the handler's now */
    int status = st->refused;
    hr_request_t *req = status ? NULL : hr_h2req_finish(&st->request, &status);
    if (!req) {
        hr_exchange_t ex = late_exchange(st);
        hr_respond_error(&ex, status, refusal_reason(status));
        return;
    }
    st->method = hr_method_parse(req->method, req->method_len);
    note_request(st, req);
    atomic_fetch_add_explicit(&conn->worker->server->metrics.h2_streams, 1, memory_order_relaxed);
    hr_api_dispatch(conn, req, &h2_exchange_ops, st);
    if (req != st->held_req) hr_request_free(req);
}

static int on_begin_headers(nghttp2_session *session, const nghttp2_frame *frame, void *user)
{
    h2_t *h2 = user;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
    if (h2->goaway) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* refused: stopping */
    h2_stream_t *st = calloc(1, sizeof *st);
    if (!st) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    const hr_config_t *config = h2->conn->worker->config;
    st->h2 = h2;
    st->id = frame->hd.stream_id;
    st->kind = -1;
    hr_h2req_init(&st->request, config->max_header_bytes, config->max_body_bytes);
    hr_list_push(&h2->streams, &st->link);
    h2->nstreams++;
    nghttp2_session_set_stream_user_data(session, st->id, st);
    return 0;
}

static int on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
                     size_t name_len, const uint8_t *value, size_t value_len, uint8_t flags,
                     void *user)
{
    (void)flags;
    (void)user;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
    h2_stream_t *st = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    if (!st || st->refused) return 0;
    st->refused =
        hr_h2req_field(&st->request, (const char *)name, name_len, (const char *)value, value_len);
    if (st->refused) hr_h2req_reset(&st->request); /* nothing more is kept */
    return 0;
}

static int on_data_chunk(nghttp2_session *session, uint8_t flags, int32_t stream_id,
                         const uint8_t *data, size_t len, void *user)
{
    (void)flags;
    (void)user;
    h2_stream_t *st = nghttp2_session_get_stream_user_data(session, stream_id);
    if (!st || st->refused || st->answered) return 0;
    size_t max = st->h2->conn->worker->config->max_body_bytes;
    /* Over its own limit a stream gets 413 below; within it, over the connection's, 503. */
    if (st->body_bytes + len <= max && st->h2->body_bytes + len > max) {
        st->refused = 503;
        hr_h2req_reset(&st->request);
        release_body(st);
        hr_exchange_t ex = late_exchange(st);
        hr_respond_error(&ex, 503,
                         "request bodies in flight on this connection over --max-body: retry");
        return 0;
    }
    st->h2->body_bytes += len;
    st->body_bytes += len;
    st->refused = hr_h2req_body(&st->request, (const char *)data, len);
    if (st->refused) {
        hr_h2req_reset(&st->request);
        run_request(st); /* 413 now, not after the whole body */
    }
    return 0;
}

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user)
{
    h2_t *h2 = user;
    if (frame->hd.type == NGHTTP2_RST_STREAM)
        atomic_fetch_add_explicit(&h2->conn->worker->server->metrics.h2_client_resets, 1,
                                  memory_order_relaxed);
    if ((frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) ||
        !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
        return 0;
    h2_stream_t *st = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    if (st && !st->answered && !st->parked && !st->streaming) run_request(st);
    return 0;
}

static void stream_gone(h2_stream_t *st)
{
    if (st->streaming) access_line(st, st->bytes_out, 1);
    if (st->streaming && st->stream.on_close) st->stream.on_close(&st->stream);
    if (st->parked && st->pending.on_close) st->pending.on_close(&st->pending);
    set_kind(st, -1);
    hr_request_free(st->held_req);
    release_body(st);
    free(st->line);
    hr_h2req_reset(&st->request);
    chunk_free_all(st);
    hr_list_remove(&st->link);
    st->h2->nstreams--;
    free(st);
}

static int on_stream_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code,
                           void *user)
{
    (void)error_code;
    (void)user;
    h2_stream_t *st = nghttp2_session_get_stream_user_data(session, stream_id);
    if (st) {
        nghttp2_session_set_stream_user_data(session, stream_id, NULL);
        stream_gone(st);
    }
    return 0;
}

static enum hr_h2_error error_kind(uint32_t code)
{
    switch (code) {
    case NGHTTP2_NO_ERROR:
        return HR_H2_NO_ERROR;
    case NGHTTP2_PROTOCOL_ERROR:
        return HR_H2_PROTOCOL_ERROR;
    case NGHTTP2_FLOW_CONTROL_ERROR:
        return HR_H2_FLOW_CONTROL;
    case NGHTTP2_COMPRESSION_ERROR:
        return HR_H2_COMPRESSION;
    case NGHTTP2_INTERNAL_ERROR:
        return HR_H2_INTERNAL;
    case NGHTTP2_ENHANCE_YOUR_CALM:
        return HR_H2_ENHANCE_YOUR_CALM;
    default:
        return HR_H2_OTHER;
    }
}

static int on_frame_send(nghttp2_session *session, const nghttp2_frame *frame, void *user)
{
    (void)session;
    h2_t *h2 = user;
    if (frame->hd.type != NGHTTP2_GOAWAY) return 0;
    uint32_t code = frame->goaway.error_code;
    atomic_fetch_add_explicit(&h2->conn->worker->server->metrics.h2_goaways[error_kind(code)], 1,
                              memory_order_relaxed);
    hr_log(code ? HR_LOG_WARN : HR_LOG_DEBUG, "h2.goaway",
           "conn=%llu peer=%s error=%s last_stream=%d", (unsigned long long)h2->conn->id,
           h2->conn->peer, nghttp2_http2_strerror(code), frame->goaway.last_stream_id);
    return 0;
}

/* ---- the connection ---- */

static nghttp2_session_callbacks *callbacks(void)
{
    nghttp2_session_callbacks *cbs;
    if (nghttp2_session_callbacks_new(&cbs) != 0) return NULL;
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_frame_send);
    return cbs;
}

/* The defences that are nghttp2 options, set explicitly rather than trusted as defaults. */
static nghttp2_option *options(void)
{
    nghttp2_option *opt;
    if (nghttp2_option_new(&opt) != 0) return NULL;
    nghttp2_option_set_no_closed_streams(opt, 1);   /* no state kept for closed streams */
    nghttp2_option_set_max_settings(opt, 32);       /* entries in one SETTINGS frame */
    nghttp2_option_set_max_outbound_ack(opt, 1000); /* queued SETTINGS/PING acks: floods */
    nghttp2_option_set_max_continuations(opt, 8);   /* CVE-2024-28182 */
    nghttp2_option_set_stream_reset_rate_limit(opt, H2_RESET_BURST, H2_RESET_RATE);
    nghttp2_option_set_max_deflate_dynamic_table_size(opt, 4096);
    return opt;
}

static void free_h2(uv_handle_t *handle)
{
    free(handle->data);
}

static h2_t *h2_new(hr_conn_t *conn)
{
    h2_t *h2 = calloc(1, sizeof *h2);
    nghttp2_session_callbacks *cbs = h2 ? callbacks() : NULL;
    nghttp2_option *opt = cbs ? options() : NULL;
    int rc = opt ? nghttp2_session_server_new2(&h2->session, cbs, h2, opt) : -1;
    nghttp2_session_callbacks_del(cbs);
    nghttp2_option_del(opt);
    if (rc != 0) {
        free(h2);
        return NULL;
    }
    const hr_config_t *config = conn->worker->config;
    nghttp2_settings_entry settings[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, config->h2_max_streams},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, (uint32_t)config->max_header_bytes},
        {NGHTTP2_SETTINGS_HEADER_TABLE_SIZE, 4096},
    };
    nghttp2_submit_settings(h2->session, NGHTTP2_FLAG_NONE, settings,
                            sizeof settings / sizeof *settings);
    h2->conn = conn;
    hr_list_init(&h2->streams);
    uv_timer_init(&conn->worker->loop, &h2->kick);
    h2->kick.data = h2;
    atomic_fetch_add_explicit(&conn->worker->server->metrics.h2_conns, 1, memory_order_relaxed);
    return h2;
}

static void h2_on_data(hr_conn_t *conn, const char *data, size_t len)
{
    h2_t *h2 = conn->proto_state;
    if (!h2 && !(h2 = conn->proto_state = h2_new(conn))) {
        hr_conn_close(conn);
        return;
    }
    h2->in_recv = 1;
    ssize_t rc = nghttp2_session_mem_recv(h2->session, (const uint8_t *)data, len);
    h2->in_recv = 0;
    if (rc < 0) {
        /* Floods and CONTINUATION storms end here; nghttp2 queued a GOAWAY where it could. */
        hr_warn("h2.error", "conn=%llu peer=%s err=\"%s\"", (unsigned long long)conn->id,
                conn->peer, nghttp2_strerror((int)rc));
        if (rc == NGHTTP2_ERR_FLOODED || rc == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS)
            nghttp2_session_terminate_session(h2->session, NGHTTP2_ENHANCE_YOUR_CALM);
        flush(h2);
        hr_conn_finish(conn);
        return;
    }
    flush(h2);
}

static void h2_on_close(hr_conn_t *conn)
{
    h2_t *h2 = conn->proto_state;
    if (!h2) return;
    while (!hr_list_empty(&h2->streams))
        stream_gone(hr_container_of(h2->streams.next, h2_stream_t, link));
    nghttp2_session_del(h2->session);
    conn->proto_state = NULL;
    uv_close((uv_handle_t *)&h2->kick, free_h2);
}

/* Stopping: GOAWAY (no new streams); parked answers go now, streams were ended by their
 * transports; the connection finishes once the last stream is done. */
static void h2_on_shutdown(hr_conn_t *conn)
{
    h2_t *h2 = conn->proto_state;
    if (!h2) {
        hr_conn_finish(conn);
        return;
    }
    h2->goaway = 1;
    nghttp2_submit_goaway(h2->session, NGHTTP2_FLAG_NONE,
                          nghttp2_session_get_last_proc_stream_id(h2->session), NGHTTP2_NO_ERROR,
                          NULL, 0);
    hr_list_t *head = &h2->streams;
    for (hr_list_t *it = head->next, *next; it != head; it = next) {
        next = it->next;
        h2_stream_t *st = hr_container_of(it, h2_stream_t, link);
        if (st->parked && st->pending.wake) st->pending.wake(&st->pending);
    }
    kick(h2);
}

static void h2_on_drained(hr_conn_t *conn)
{
    h2_t *h2 = conn->proto_state;
    if (h2 && nghttp2_session_want_write(h2->session)) flush(h2);
}

/* --idle-timeout applies while no stream streams or waits for a late answer: requests still
 * being read do not hold a connection open (a slow client cannot park 128 half-sent ones). */
static int h2_idle_closes(hr_conn_t *conn)
{
    const h2_t *h2 = conn->proto_state;
    if (!h2) return 1;
    const hr_list_t *head = &h2->streams;
    for (const hr_list_t *it = head->next; it != head; it = it->next) {
        const h2_stream_t *st = hr_container_of(it, h2_stream_t, link);
        if (st->streaming || (st->parked && !st->held_req)) return 0;
    }
    return 1;
}

const hr_conn_proto_t hr_h2_proto = {
    .on_data = h2_on_data,
    .on_close = h2_on_close,
    .on_shutdown = h2_on_shutdown,
    .on_drained = h2_on_drained,
    .idle_closes = h2_idle_closes,
};
