/* SSE transport: GET /v1/topics/{topic}/events and GET /v1/events?topic=a&topic=b.
 * Registers with the broker, replays from Last-Event-ID, then streams live messages through a
 * response stream. The frame for a message is built once (cached on the message) and shared
 * by every SSE subscriber on every worker. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/handlers.h"
#include "api/msg_json.h"
#include "api/presence.h"
#include "core/server.h"
#include "core/error.h"
#include "core/id.h"
#include "core/base64.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/sub.h"
#include "transport/sse_encode.h"
#include "transport/registry.h"

typedef struct sse_sub_s {
    hr_sub_t sub;                   /* broker membership */
    hr_stream_t *stream;            /* where frames go */
    hr_worker_t *worker;            /* owner thread */
    uint64_t last_write_ms;         /* loop time of the last frame, to skip needless heartbeats */
    int ended;                      /* end requested */
    enum hr_encoding_kind encoding; /* HR_ENC_SSE, or HR_ENC_SSE_JSON for ?format=json */
    int64_t exp_s;                  /* the token's expiry (unix s); 0 = none (docs/AUTH.md) */
    hr_presence_conn_t presence;    /* the user's presence while the stream is open */
} sse_sub_t;

extern const hr_transport_t hr_sse_transport;

/* SSE carries text only: a binary message's data goes as "b64:" + standard base64. */
static hr_encoded_t *encode_sse(const hr_msg_t *msg)
{
    char id[HR_ID_STR_MAX];
    size_t id_len = hr_id_format(msg->id, id);
    size_t event_len = strlen(msg->event);
    const char *data = msg->data;
    size_t data_len = msg->data_len;
    char *b64 = NULL;
    if (msg->binary) {
        b64 = malloc(4 + HR_BASE64_LEN(msg->data_len) + 1);
        if (!b64) return NULL;
        memcpy(b64, "b64:", 4);
        data_len = 4 + hr_base64_encode((const unsigned char *)msg->data, msg->data_len, b64 + 4);
        data = b64;
    }
    size_t size = hr_sse_frame_size(id_len, event_len, msg->retry_ms, data, data_len);
    hr_encoded_t *enc = malloc(sizeof *enc + size);
    if (enc)
        enc->len = hr_sse_frame(enc->bytes, id, id_len, msg->event, event_len, msg->retry_ms, data,
                                data_len);
    free(b64);
    return enc;
}

/* ?format=json: every event unnamed (so EventSource.onmessage sees all of them, whatever their
 * names) with the whole message as data: {"id","topic","event","data"|"data_b64","time"}. This
 * is how a client learns each message's topic on a multi-topic stream. */
static hr_encoded_t *encode_sse_json(const hr_msg_t *msg)
{
    char id[HR_ID_STR_MAX];
    size_t id_len = hr_id_format(msg->id, id);
    json_t *json = hr_msg_to_json(msg);
    char *text = json ? json_dumps(json, JSON_COMPACT) : NULL;
    json_decref(json);
    if (!text) return NULL;
    size_t text_len = strlen(text);
    size_t size = hr_sse_frame_size(id_len, 0, msg->retry_ms, text, text_len);
    hr_encoded_t *enc = malloc(sizeof *enc + size);
    if (enc) enc->len = hr_sse_frame(enc->bytes, id, id_len, "", 0, msg->retry_ms, text, text_len);
    free(text);
    return enc;
}

static const hr_encoded_t *sse_encoding(sse_sub_t *sse, hr_msg_t *msg)
{
    if (sse->encoding == HR_ENC_SSE_JSON)
        return hr_msg_encoding(msg, HR_ENC_SSE_JSON, encode_sse_json);
    return hr_msg_encoding(msg, HR_ENC_SSE, encode_sse);
}

static int sse_deliver(hr_sub_t *sub, hr_msg_t *msg)
{
    sse_sub_t *sse = (sse_sub_t *)sub;
    if (sse->ended) return HR_ESHUTDOWN;
    const hr_encoded_t *enc = sse_encoding(sse, msg);
    if (!enc) return -1;
    sse->last_write_ms = uv_now(&sse->worker->loop);
    return sse->stream->ops->write(sse->stream, enc->bytes, enc->len, msg);
}

static void sse_kick(hr_sub_t *sub)
{
    sse_sub_t *sse = (sse_sub_t *)sub;
    if (sse->ended) return;
    sse->ended = 1;
    sse->stream->ops->end(sse->stream);
}

/* A stream outlives the token that opened it by at most a heartbeat interval: it gets a last
 * event saying why, and ends. EventSource reconnects by itself, with whatever token (cookie)
 * the application holds by then, and resumes from Last-Event-ID. */
static int expire_if_due(sse_sub_t *sse)
{
    if (!sse->exp_s || (int64_t)time(NULL) <= sse->exp_s + sse->worker->config->jwt_leeway_s)
        return 0;
    static const char frame[] = "event: herald.expired\ndata: {\"reason\":\"token expired\"}\n\n";
    hr_info("sse.expired", "exp=%lld", (long long)sse->exp_s);
    sse->stream->ops->write(sse->stream, frame, sizeof frame - 1, NULL);
    sse_kick(&sse->sub);
    return 1;
}

static void sse_heartbeat(hr_sub_t *sub)
{
    sse_sub_t *sse = (sse_sub_t *)sub;
    uint64_t now = uv_now(&sse->worker->loop);
    if (sse->ended || expire_if_due(sse) ||
        now - sse->last_write_ms < (uint64_t)sse->worker->config->heartbeat_ms / 2)
        return;
    sse->last_write_ms = now;
    sse->stream->ops->write(sse->stream, ":\n\n", 3, NULL);
}

const hr_transport_t hr_sse_transport = {"sse", sse_deliver, sse_kick, sse_heartbeat};

/* The stream is gone: leave the broker and free. */
static void sse_on_close(hr_stream_t *stream)
{
    sse_sub_t *sse = stream->user;
    if (sse->worker->server->presence)
        hr_presence_disconnect(sse->worker->server->presence, &sse->presence);
    hr_broker_unsubscribe(sse->worker->broker, &sse->sub);
    hr_worker_remove_sub(sse->worker, &sse->sub);
    free(sse);
}

/* Last-Event-ID header (what EventSource sends on reconnect) or ?lastEventId= (for the first
 * connection, which cannot set headers). Returns 1 when given, 0 when not, -1 when malformed
 * (answered). */
static int resume_point(hr_exchange_t *ex, uint64_t *since)
{
    size_t len = 0;
    const char *text = hr_request_header(ex->req, "Last-Event-ID", &len);
    if (!text || len == 0) {
        const hr_qparam_t *param = hr_query_get(ex->params, ex->nparams, "lastEventId");
        text = param ? param->value : NULL;
        len = param ? param->value_len : 0;
    }
    if (!text || len == 0) return 0;
    if (hr_id_parse(text, len, since) != 0) {
        hr_respond_error(ex, 400, "Last-Event-ID must be a message id (a decimal integer)");
        return -1;
    }
    return 1;
}

/* Opening lines: a comment (so proxies and clients see bytes at once), the retry hint, and
 * one herald.gap event per topic whose history no longer reaches the resume point. */
static int write_preamble(sse_sub_t *sse, const hr_replay_t *replay, uint64_t since)
{
    hr_buf_t out = {0};
    hr_buf_puts(&out, ": herald\n");
    if (sse->worker->config->sse_retry_ms)
        hr_buf_printf(&out, "retry: %u\n", sse->worker->config->sse_retry_ms);
    hr_buf_puts(&out, "\n");
    for (size_t i = 0; i < replay->ngaps; i++) {
        hr_buf_printf(&out,
                      "event: herald.gap\ndata: {\"topic\":\"%s\",\"last_event_id\":%llu,"
                      "\"available_after\":%llu}\n\n",
                      replay->gaps[i].topic, (unsigned long long)since,
                      (unsigned long long)replay->gaps[i].floor_id);
    }
    int rc =
        hr_buf_failed(&out) ? -1 : sse->stream->ops->write(sse->stream, out.data, out.len, NULL);
    hr_buf_free(&out);
    return rc;
}

static int replay_history(sse_sub_t *sse, const hr_replay_t *replay)
{
    for (size_t i = 0; i < replay->count; i++) {
        const hr_encoded_t *enc = sse_encoding(sse, replay->msgs[i]);
        if (!enc) return -1;
        if (sse->stream->ops->write(sse->stream, enc->bytes, enc->len, replay->msgs[i]) != 0)
            return -1;
    }
    return 0;
}

static const char sse_headers[] = "Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\n";

static void handle_sse(hr_exchange_t *ex)
{
    const hr_config_t *config = ex->worker->config;
    size_t max = config->max_topics_per_sub;
    /* Room for what presence adds: a presence stream per topic and the user's signals. */
    const char **names = malloc((2 * max + 1) * sizeof *names);
    size_t *lens = malloc((2 * max + 1) * sizeof *lens);
    sse_sub_t *sse = calloc(1, sizeof *sse);
    hr_replay_t replay = {0};
    hr_api_presence_t ap = {0};
    size_t n = 0;
    uint64_t since = 0;
    if (!names || !lens || !sse) {
        hr_respond_error(ex, 503, "out of memory");
        goto fail;
    }
    if (hr_api_topics(ex, names, lens, max, &n) != 0 ||
        hr_api_presence_prepare(ex, names, lens, &n, &ap) != 0)
        goto fail;
    int resuming = resume_point(ex, &since);
    if (resuming < 0) goto fail;
    const hr_qparam_t *format = hr_query_get(ex->params, ex->nparams, "format");
    if (format && strcmp(format->value, "json") != 0) {
        hr_respond_error(ex, 400, "format must be json (or absent)");
        goto fail;
    }
    sse->encoding = format ? HR_ENC_SSE_JSON : HR_ENC_SSE;
    sse->exp_s = ex->token_exp_s;
    sse->worker = ex->worker;
    sse->sub.vt = &hr_sse_transport;
    sse->sub.owner = sse;
    sse->sub.worker = ex->worker->id;
    int rc = hr_broker_subscribe(ex->worker->broker, &sse->sub, names, lens, n,
                                 resuming ? &since : NULL, &replay);
    if (rc == HR_ENOTREADY) {
        hr_api_defer(ex, names, lens, n); /* cluster: back here once the topics are live */
        goto fail;
    }
    if (rc != 0) {
        hr_respond_error(ex, 503, rc == HR_ELIMIT ? HR_TOPIC_LIMIT_TEXT : "out of memory");
        goto fail;
    }
    sse->stream = hr_respond_stream(ex, "text/event-stream", sse_headers);
    if (!sse->stream) {
        hr_broker_unsubscribe(ex->worker->broker, &sse->sub);
        goto fail;
    }
    /* From here the connection owns `sse` and frees it in sse_on_close. */
    sse->stream->user = sse;
    sse->stream->on_close = sse_on_close;
    hr_worker_add_sub(ex->worker, &sse->sub);
    hr_exchange_set_kind(ex, HR_CONN_SSE);
    hr_api_presence_register(ex, &ap, &sse->presence, HR_VIA_SSE, names, lens);
    sse->last_write_ms = uv_now(&ex->worker->loop);
    if (write_preamble(sse, &replay, since) == 0) {
        ex->worker->corked = 1; /* the replay goes out in as few writev calls as it can */
        replay_history(sse, &replay);
        hr_conn_uncork(ex->worker);
    }
    hr_debug("sse.open", "conn=%llu topics=%zu resume=%d replayed=%zu gaps=%zu",
             (unsigned long long)ex->conn->id, n, resuming, replay.count, replay.ngaps);
    hr_replay_free(&replay);
    hr_api_presence_done(&ap);
    free(names);
    free(lens);
    return;
fail:
    hr_replay_free(&replay);
    hr_api_presence_done(&ap);
    free(sse);
    free(names);
    free(lens);
}

static const hr_route_entry_t sse_routes[] = {
    {"/v1/topics/{topic}/events", HR_GET, HR_ROUTE_TRANSPORT, "GET, OPTIONS", &hr_sse_def},
    {"/v1/events", HR_GET, HR_ROUTE_TRANSPORT, "GET, OPTIONS", &hr_sse_def},
};

const hr_transport_def_t hr_sse_def = {"sse", HR_CONN_SSE, handle_sse, sse_routes,
                                       sizeof sse_routes / sizeof sse_routes[0]};
