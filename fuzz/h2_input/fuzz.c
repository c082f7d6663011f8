/* libFuzzer target: the HTTP/2 input path (http/h2.c on nghttp2, http/h2_request.c): bytes
 * after the client preface, fed in pieces (the first input byte picks their size), into a real
 * HTTP/2 connection state whose requests run stub handlers chosen by the path's first letter:
 * answer at once, stream (several writes, then end or stay open), park for a late answer
 * (answered on the next piece), or defer and dispatch again. Between pieces the loop runs, so
 * the deferred sending path runs too. The socket is a stub that takes everything, or nothing
 * when the input asks (to pile frames behind a shut socket). ASan and UBSan watch; every
 * allocation must be freed when the connection closes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/conn.h"
#include "core/log.h"
#include "core/server.h"
#include "http/api.h"
#include "http/exchange.h"
#include "http/h2.h"

/* ---- stubs for what http/h2.c calls outside http/ ---- */

int hr_conn_write(hr_conn_t *conn, const char *bytes, size_t len, hr_msg_t *msg)
{
    (void)bytes;
    (void)msg;
    if (conn->closing || conn->finishing) return -1;
    conn->bytes_written += len;
    return 0;
}

void hr_conn_close(hr_conn_t *conn)
{
    conn->closing = 1;
}

void hr_conn_finish(hr_conn_t *conn)
{
    conn->finishing = 1;
}

void hr_msg_unref(hr_msg_t *msg)
{
    (void)msg; /* the stub handlers write no message-backed bytes */
}

void hr_metrics_refused(hr_metrics_t *metrics, int status)
{
    (void)metrics;
    (void)status;
}

/* A parked request waits here until the next piece of input answers it. */
typedef struct parked_s {
    hr_pending_t *pending[64];
    size_t n;
} parked_t;

/* The input being run's parked requests (the stub dispatcher has no other way to reach them;
 * worker->front_state belongs to the front ends' Date cache). */
static parked_t *current_parked;

static void pending_gone(hr_pending_t *pending)
{
    parked_t *parked = pending->user;
    for (size_t i = 0; i < parked->n; i++)
        if (parked->pending[i] == pending) parked->pending[i] = parked->pending[--parked->n];
}

static void stream_gone(hr_stream_t *stream)
{
    (void)stream;
}

void hr_api_dispatch(hr_conn_t *conn, hr_request_t *req, const hr_exchange_ops_t *ops,
                     void *carrier)
{
    hr_exchange_t ex = {.ops = ops,
                        .conn = conn,
                        .carrier = carrier,
                        .worker = conn->worker,
                        .req = req,
                        .keep_alive = 1};
    parked_t *parked = current_parked;
    char kind = req->path_len > 1 ? req->path[1] : 'a';
    if (kind == 's' || kind == 'o') { /* a stream: ended, or left open */
        hr_stream_t *stream = hr_respond_stream(&ex, "text/event-stream", "X-Test: 1\r\n");
        if (!stream) return;
        stream->on_close = stream_gone;
        for (int i = 0; i < 3; i++)
            stream->ops->write(stream, req->body ? req->body : "data: x\n\n", req->body_len + 1,
                               NULL);
        if (kind == 's') stream->ops->end(stream);
    } else if ((kind == 'p' || kind == 'd') && parked->n < 64) {
        hr_pending_t *pending = kind == 'p' ? hr_respond_later(&ex) : hr_defer(&ex);
        pending->user = parked;
        pending->on_close = pending_gone;
        parked->pending[parked->n++] = pending;
    } else {
        hr_respond(&ex, kind == 'e' ? 404 : 200, "text/plain", req->path, req->path_len,
                   "Cache-Control: no-store\r\nConnection: close\r\n");
    }
}

static void answer_parked(parked_t *parked)
{
    while (parked->n) {
        hr_pending_t *pending = parked->pending[--parked->n];
        if (pending->ops->redispatch && pending->extra_headers == NULL && parked->n % 2)
            pending->ops->respond(pending, 200, "text/plain", "late", 4, 0);
        else
            pending->ops->stream(pending, "text/event-stream");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    if (size < 1) return 0;
    size_t piece = (size_t)(data[0] & 63) + 1;
    data++;
    size--;
    hr_log_set_level(HR_LOG_ERROR);
    hr_config_t config = {.max_header_bytes = 4096,
                          .max_body_bytes = 4096,
                          .max_outbound_bytes = 65536,
                          .h2_max_streams = 16};
    hr_server_t *server = calloc(1, sizeof *server);
    hr_worker_t *worker = calloc(1, sizeof *worker);
    hr_conn_t *conn = calloc(1, sizeof *conn);
    parked_t parked = {0};
    uv_loop_init(&worker->loop);
    worker->config = &config;
    worker->server = server;
    current_parked = &parked;
    conn->worker = worker;
    conn->proto = &hr_h2_proto;
    strcpy(conn->peer, "fuzz:1");
    hr_h2_proto.on_data(conn, preface, sizeof preface - 1);
    for (size_t at = 0; at < size && !conn->closing && !conn->finishing; at += piece) {
        size_t n = size - at < piece ? size - at : piece;
        hr_h2_proto.on_data(conn, (const char *)data + at, n);
        answer_parked(&parked);
        uv_run(&worker->loop, UV_RUN_NOWAIT);
    }
    hr_h2_proto.on_close(conn);
    uv_run(&worker->loop, UV_RUN_DEFAULT); /* the send timer's close frees the state */
    free(worker->front_state);
    uv_loop_close(&worker->loop);
    free(conn);
    free(worker);
    free(server);
    return 0;
}
