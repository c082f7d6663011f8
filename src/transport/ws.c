/* WebSocket transport (RFC 6455, RFC 7692): the upgrade handshake on GET /v1/ws, then the
 * connection protocol: frames in, messages assembled and checked (UTF-8, size), control frames,
 * the close handshake, server pings; and the herald.v1 protocol on top (subscribe, unsubscribe,
 * publish, acks, errors). One hr_sub_t per subscribed topic; delivered frames are built once per
 * message and shared by every WebSocket subscriber (see ws_proto.c for the message forms). */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "api/handlers.h"
#include "core/buf.h"
#include "core/server.h"
#include "core/error.h"
#include "core/log.h"
#include "core/utf8.h"
#include "api/presence.h"
#include "transport/ws.h"
#include "transport/ws_deflate.h"
#include "transport/ws_frame.h"
#include "transport/registry.h"

#define WS_MAX_FRAGMENTS 100000 /* a message in more pieces than this is cut off (1009) */
#define WS_KEEP_BUFFER   4096   /* message buffers above this are freed after each message */

static void ws_on_data(hr_conn_t *conn, const char *data, size_t len);
static void ws_on_close(hr_conn_t *conn);
static void ws_on_overflow(hr_conn_t *conn);

static const hr_conn_proto_t ws_proto = {
    .on_data = ws_on_data, .on_close = ws_on_close, .on_overflow = ws_on_overflow};

/* ---- sending ---------------------------------------------------------------------------- */

int hr_ws_send(hr_ws_t *ws, int opcode, const void *payload, size_t len)
{
    if (ws->close_sent) return HR_ESHUTDOWN;
    uint8_t header[HR_WS_MAX_HEADER];
    size_t header_len = hr_ws_write_header(header, 1, 0, opcode, len);
    hr_buf_t out = {0};
    hr_buf_append(&out, (const char *)header, header_len);
    hr_buf_append(&out, payload, len);
    int rc =
        hr_buf_failed(&out) ? HR_ENOMEM : ws->out.ops->write(&ws->out, out.data, out.len, NULL);
    hr_buf_free(&out);
    return rc;
}

/* Sends a close frame (code 0: none) and finishes the connection once it is out: the server
 * closes the TCP connection after the close handshake (RFC 6455 7.1.1). */
static void send_close(hr_ws_t *ws, unsigned code, const char *reason)
{
    if (ws->close_sent) return;
    uint8_t payload[HR_WS_MAX_CONTROL];
    size_t len = 0;
    if (code) {
        size_t reason_len = strlen(reason);
        if (reason_len > HR_WS_MAX_CONTROL - 2) reason_len = HR_WS_MAX_CONTROL - 2;
        payload[0] = (uint8_t)(code >> 8);
        payload[1] = (uint8_t)code;
        memcpy(payload + 2, reason, reason_len);
        len = 2 + reason_len;
    }
    hr_ws_send(ws, HR_WS_CLOSE, payload, len);
    ws->close_sent = 1;
    ws->out.ops->end(&ws->out);
}

static void fail(hr_ws_t *ws, unsigned code, const char *reason)
{
    hr_info("ws.close", "conn=%llu peer=%s code=%u reason=\"%s\"", (unsigned long long)ws->conn->id,
            ws->conn->peer, code, reason);
    send_close(ws, code, reason);
}

/* A reader this far behind is told why before it goes (RFC 6455 1013: try again later); it
 * resubscribes with `since` and gets the rest from history. */
static void ws_on_overflow(hr_conn_t *conn)
{
    hr_ws_t *ws = conn->proto_state;
    if (ws) fail(ws, HR_WS_TRY_AGAIN, "slow consumer: reconnect and resume with since");
}

/* ---- receiving -------------------------------------------------------------------------- */

static void reset_message(hr_ws_t *ws)
{
    ws->msg_opcode = 0;
    ws->msg_compressed = 0;
    ws->msg_len = 0;
    ws->msg_frames = 0;
    if (ws->msg_cap > WS_KEEP_BUFFER) {
        free(ws->msg);
        ws->msg = NULL;
        ws->msg_cap = 0;
    }
}

static int append_message(hr_ws_t *ws, const uint8_t *payload, size_t len)
{
    if (ws->msg_len + len > ws->msg_cap) {
        size_t cap = ws->msg_cap ? ws->msg_cap : 1024;
        while (cap < ws->msg_len + len)
            cap *= 2;
        uint8_t *bigger = realloc(ws->msg, cap);
        if (!bigger) return -1;
        ws->msg = bigger;
        ws->msg_cap = cap;
    }
    memcpy(ws->msg + ws->msg_len, payload, len);
    ws->msg_len += len;
    return 0;
}

/* A whole message arrived: decompress if needed, check text is UTF-8, hand it to herald.v1. */
static void complete_message(hr_ws_t *ws, const uint8_t *data, size_t len)
{
    uint8_t *inflated = NULL;
    int text = ws->msg_opcode == HR_WS_TEXT;
    if (ws->msg_compressed) {
        int rc =
            hr_ws_decompress(data, len, ws->worker->config->ws_max_message_bytes, &inflated, &len);
        if (rc != 0) {
            fail(ws, rc == -2 ? HR_WS_TOO_BIG : HR_WS_INVALID_DATA,
                 rc == -2 ? "message too big" : "bad compressed data");
            return;
        }
        data = inflated;
        if (text && !hr_utf8_valid(data, len)) {
            free(inflated);
            fail(ws, HR_WS_INVALID_DATA, "text is not UTF-8");
            return;
        }
    } else if (text && !hr_utf8_complete(&ws->utf8)) {
        fail(ws, HR_WS_INVALID_DATA, "text is not UTF-8");
        return;
    }
    if (text)
        hr_ws_proto_text(ws, (const char *)data, len);
    else
        hr_ws_proto_binary(ws, data, len);
    free(inflated);
}

/* Data frame payload: starts, continues or ends a message. */
static void on_data_frame(hr_ws_t *ws, const hr_ws_frame_t *frame, uint8_t *payload)
{
    if (frame->opcode == HR_WS_CONT) {
        if (!ws->msg_opcode) {
            fail(ws, HR_WS_PROTOCOL_ERROR, "continuation without start");
            return;
        }
        if (frame->rsv1) {
            fail(ws, HR_WS_PROTOCOL_ERROR, "RSV1 on a continuation");
            return;
        }
    } else {
        if (ws->msg_opcode) {
            fail(ws, HR_WS_PROTOCOL_ERROR, "message interrupted");
            return;
        }
        if (frame->rsv1 && !ws->deflate.enabled) {
            fail(ws, HR_WS_PROTOCOL_ERROR, "RSV1 without permessage-deflate");
            return;
        }
        ws->msg_opcode = frame->opcode;
        ws->msg_compressed = frame->rsv1;
        hr_utf8_init(&ws->utf8);
    }
    if (++ws->msg_frames > WS_MAX_FRAGMENTS) {
        fail(ws, HR_WS_TOO_BIG, "too many fragments");
        return;
    }
    size_t len = (size_t)frame->len;
    if (ws->msg_opcode == HR_WS_TEXT && !ws->msg_compressed &&
        hr_utf8_feed(&ws->utf8, payload, len) != 0) {
        fail(ws, HR_WS_INVALID_DATA, "text is not UTF-8");
        return;
    }
    if (frame->fin && ws->msg_len == 0) {
        complete_message(ws, payload, len); /* unfragmented: no copy */
        reset_message(ws);
        return;
    }
    if (append_message(ws, payload, len) != 0) {
        fail(ws, HR_WS_INTERNAL, "out of memory");
        return;
    }
    if (frame->fin) {
        complete_message(ws, ws->msg, ws->msg_len);
        reset_message(ws);
    }
}

static void on_close_frame(hr_ws_t *ws, const uint8_t *payload, size_t len)
{
    unsigned code = 0;
    if (len == 1) {
        fail(ws, HR_WS_PROTOCOL_ERROR, "close payload of one byte");
        return;
    }
    if (len >= 2) {
        code = (unsigned)payload[0] << 8 | payload[1];
        if (!hr_ws_close_code_valid(code)) {
            fail(ws, HR_WS_PROTOCOL_ERROR, "bad close code");
            return;
        }
        if (!hr_utf8_valid(payload + 2, len - 2)) {
            fail(ws, HR_WS_INVALID_DATA, "close reason is not UTF-8");
            return;
        }
    }
    hr_debug("ws.peer_close", "conn=%llu code=%u", (unsigned long long)ws->conn->id, code);
    send_close(ws, code, ""); /* echo the code; no-op when we closed first */
    ws->out.ops->end(&ws->out);
}

static void on_frame(hr_ws_t *ws, const hr_ws_frame_t *frame, uint8_t *payload)
{
    size_t len = (size_t)frame->len;
    switch (frame->opcode) {
    case HR_WS_PING:
        if (frame->rsv1) {
            fail(ws, HR_WS_PROTOCOL_ERROR, "RSV1 on a control frame");
            return;
        }
        hr_ws_send(ws, HR_WS_PONG, payload, len);
        return;
    case HR_WS_PONG:
        ws->awaiting_pong = 0; /* unsolicited pongs are fine too */
        return;
    case HR_WS_CLOSE:
        if (frame->rsv1) {
            fail(ws, HR_WS_PROTOCOL_ERROR, "RSV1 on a control frame");
            return;
        }
        on_close_frame(ws, payload, len);
        return;
    default:
        if (!ws->close_sent) on_data_frame(ws, frame, payload); /* data after close: ignored */
    }
}

/* Parses and handles every whole frame in buf; returns the bytes consumed. `buf` is writable
 * (the worker's read buffer or our own), so payloads are unmasked in place. */
static size_t process(hr_ws_t *ws, uint8_t *buf, size_t len)
{
    size_t used = 0;
    size_t max = ws->worker->config->ws_max_message_bytes;
    while (used < len && !ws->conn->closing && !ws->conn->finishing) {
        hr_ws_frame_t frame;
        int header = hr_ws_parse_header(buf + used, len - used, &frame);
        if (header < 0) {
            fail(ws, (unsigned)-header, "bad frame header");
            break;
        }
        if (header == 0) break;
        if (!(frame.opcode & 0x8) && frame.len > max - (ws->msg_len < max ? ws->msg_len : max)) {
            fail(ws, HR_WS_TOO_BIG, "message too big");
            break;
        }
        if (frame.len > len - used - (size_t)header) {
            ws->want = (size_t)header + (size_t)frame.len; /* whole frame before processing */
            break;
        }
        uint8_t *payload = buf + used + header;
        hr_ws_unmask(payload, (size_t)frame.len, frame.mask, 0);
        used += (size_t)header + (size_t)frame.len;
        on_frame(ws, &frame, payload);
    }
    return used;
}

static int stash(hr_ws_t *ws, const uint8_t *data, size_t len)
{
    size_t need = ws->in_len + len;
    if (need > ws->in_cap) {
        size_t cap = ws->in_cap ? ws->in_cap : 1024;
        while (cap < need || cap < ws->want)
            cap *= 2;
        uint8_t *bigger = realloc(ws->in, cap);
        if (!bigger) return -1;
        ws->in = bigger;
        ws->in_cap = cap;
    }
    memcpy(ws->in + ws->in_len, data, len);
    ws->in_len += len;
    return 0;
}

static void ws_on_data(hr_conn_t *conn, const char *data, size_t len)
{
    hr_ws_t *ws = conn->proto_state;
    ws->want = 0;
    if (ws->in_len == 0) {
        /* The common case: whole frames straight from the read buffer, which is the worker's
         * own and rewritten by the next read, so unmasking it in place is safe. */
        size_t used = process(ws, (uint8_t *)data, len);
        if (used < len && !conn->closing && !conn->finishing &&
            stash(ws, (const uint8_t *)data + used, len - used) != 0)
            fail(ws, HR_WS_INTERNAL, "out of memory");
        return;
    }
    if (stash(ws, (const uint8_t *)data, len) != 0) {
        fail(ws, HR_WS_INTERNAL, "out of memory");
        return;
    }
    if (ws->want && ws->in_len < ws->want) return;
    ws->want = 0;
    size_t used = process(ws, ws->in, ws->in_len);
    memmove(ws->in, ws->in + used, ws->in_len - used);
    ws->in_len -= used;
    if (ws->in_len == 0 && ws->in_cap > WS_KEEP_BUFFER) {
        free(ws->in);
        ws->in = NULL;
        ws->in_cap = 0;
    }
}

static void ws_on_close(hr_conn_t *conn)
{
    hr_ws_t *ws = conn->proto_state;
    if (conn->worker->config->access_log)
        hr_info("http.access",
                "conn=%llu peer=%s request=\"GET /v1/ws\" status=101 bytes=%llu ms=%.3f stream=1",
                (unsigned long long)conn->id, conn->peer,
                (unsigned long long)(conn->bytes_written - ws->opened_bytes),
                (double)(uv_hrtime() - ws->opened_ns) / 1e6);
    hr_timeq_remove(&ws->auth_timeout);
    hr_ws_proto_release(ws);
    hr_worker_remove_sub(ws->worker, &ws->ctl);
    free(ws->in);
    free(ws->msg);
    free(ws->token);
    free(ws->user);
    free(ws);
    conn->proto_state = NULL;
}

/* ---- keep-alive and shutdown (the connection's own entry in the worker's list) ----------- */

static int ctl_deliver(hr_sub_t *sub, hr_msg_t *msg)
{
    (void)sub;
    (void)msg;
    return 0; /* never subscribed to a topic */
}

static void ctl_kick(hr_sub_t *sub)
{
    hr_ws_t *ws = sub->owner;
    send_close(ws, HR_WS_GOING_AWAY, "server shutting down");
}

static void ctl_heartbeat(hr_sub_t *sub)
{
    hr_ws_t *ws = sub->owner;
    if (ws->close_sent) return;
    const hr_auth_t *auth = ws->worker->server->auth;
    if (auth && hr_token_expired(auth, ws->token, (int64_t)time(NULL))) {
        /* No fresh {"type":"auth"} came in time (docs/AUTH.md). */
        hr_info("ws.expired", "conn=%llu peer=%s", (unsigned long long)ws->conn->id,
                ws->conn->peer);
        send_close(ws, HR_WS_TOKEN_EXPIRED, "token expired");
        return;
    }
    if (ws->awaiting_pong) {
        /* No pong for a whole interval: the peer or the path is gone. */
        hr_info("ws.ping_timeout", "conn=%llu peer=%s", (unsigned long long)ws->conn->id,
                ws->conn->peer);
        send_close(ws, HR_WS_GOING_AWAY, "ping timeout");
        hr_conn_close(ws->conn);
        return;
    }
    ws->awaiting_pong = 1;
    hr_ws_send(ws, HR_WS_PING, "herald", 6);
}

static const hr_transport_t ws_ctl_transport = {"ws-control", ctl_deliver, ctl_kick, ctl_heartbeat};

/* ---- handshake -------------------------------------------------------------------------- */

/* True when the comma-separated header value lists `token` (case-insensitive). */
static int has_token(const char *value, size_t len, const char *token)
{
    size_t token_len = strlen(token);
    const char *p = value, *end = value + len;
    while (p < end) {
        while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
            p++;
        const char *start = p;
        while (p < end && *p != ',')
            p++;
        const char *stop = p;
        while (stop > start && (stop[-1] == ' ' || stop[-1] == '\t'))
            stop--;
        if ((size_t)(stop - start) == token_len && strncasecmp(start, token, token_len) == 0)
            return 1;
    }
    return 0;
}

static int key_valid(const char *key, size_t len)
{
    if (len != 24 || key[22] != '=' || key[23] != '=') return 0; /* base64 of 16 bytes */
    for (size_t i = 0; i < 22; i++) {
        char c = key[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '+' || c == '/'))
            return 0;
    }
    return 1;
}

/* Browsers send Origin; other clients usually do not. A browser origin must be listed in
 * --cors-origins or be this server's own (same host), so a page elsewhere cannot use a
 * visitor's connection (cross-site WebSocket hijacking). */
static int origin_allowed(hr_exchange_t *ex)
{
    size_t len, host_len;
    const char *origin = hr_request_header(ex->req, "Origin", &len);
    if (!origin) return 1;
    if (hr_config_cors_allow(ex->worker->config, origin, len)) return 1;
    const char *host = hr_request_header(ex->req, "Host", &host_len);
    if (!host) return 0;
    const char *scheme_end = memchr(origin, ':', len);
    if (!scheme_end || (size_t)(origin + len - scheme_end) < 3 || scheme_end[1] != '/' ||
        scheme_end[2] != '/')
        return 0;
    const char *origin_host = scheme_end + 3;
    return (size_t)(origin + len - origin_host) == host_len &&
           strncasecmp(origin_host, host, host_len) == 0;
}

static void refuse(hr_exchange_t *ex, int status, const char *message, const char *headers)
{
    char body[256];
    int n = snprintf(body, sizeof body, "{\"error\":\"%s\",\"status\":%d}", message, status);
    hr_info("ws.refused", "conn=%llu peer=%s status=%d reason=\"%s\"",
            (unsigned long long)ex->conn->id, ex->conn->peer, status, message);
    ex->keep_alive = 0;
    hr_respond(ex, status, "application/json", body, (size_t)n, headers);
}

/* Checks the upgrade request; returns 0 or answers the refusal itself. */
static int check_upgrade(hr_exchange_t *ex, const char **key, size_t *key_len)
{
    size_t len;
    const char *upgrade = hr_request_header(ex->req, "Upgrade", &len);
    const char *connection = hr_request_header(ex->req, "Connection", NULL);
    if (!upgrade || !has_token(upgrade, len, "websocket") || !connection ||
        !has_token(connection, strlen(connection), "upgrade")) {
        refuse(ex, 426, "this endpoint speaks WebSocket only",
               "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n");
        return -1;
    }
    const char *version = hr_request_header(ex->req, "Sec-WebSocket-Version", &len);
    if (!version || len != 2 || memcmp(version, "13", 2) != 0) {
        refuse(ex, 426, "WebSocket version 13 only", "Sec-WebSocket-Version: 13\r\n");
        return -1;
    }
    *key = hr_request_header(ex->req, "Sec-WebSocket-Key", key_len);
    if (!*key || !key_valid(*key, *key_len)) {
        refuse(ex, 400, "missing or malformed Sec-WebSocket-Key", NULL);
        return -1;
    }
    if (!origin_allowed(ex)) {
        refuse(ex, 403, "origin not allowed", NULL);
        return -1;
    }
    return 0;
}

/* --auth all: a connection that neither brought a token nor sent one in time, and holds no
 * subscription (public topics are fine without a token), is closed: an unauthenticated socket
 * should not be kept for free. */
static void on_auth_timeout(hr_timeq_entry_t *entry)
{
    hr_ws_t *ws = hr_container_of(entry, hr_ws_t, auth_timeout);
    if (ws->token || ws->admin_key || ws->nsubs > ws->nreserved || ws->close_sent) return;
    hr_info("ws.auth_timeout", "conn=%llu peer=%s", (unsigned long long)ws->conn->id,
            ws->conn->peer);
    send_close(ws, HR_WS_TOKEN_EXPIRED, "no token in time");
}

/* The identity the connection keeps: a token at the upgrade (header, cookie or query) is
 * verified now; an invalid one refuses the upgrade (401), none leaves the connection
 * anonymous. Returns 0 or answers the refusal itself. */
static int identify(hr_exchange_t *ex, hr_ws_t *ws)
{
    const hr_auth_t *auth = ex->worker->server->auth;
    if (!auth) return 0;
    size_t len = 0;
    const char *token = hr_api_request_token(ex, &len);
    hr_auth_denial_t denial;
    int admin_key = 0;
    int rc = hr_auth_identify(auth, ex->worker->id, token, len, (int64_t)time(NULL), &ws->token,
                              &admin_key, &denial);
    ws->admin_key = admin_key != 0;
    if (rc == 0) return 0;
    ex->keep_alive = 0;
    hr_api_answer_denial(ex, &denial, NULL, NULL);
    return -1;
}

static void handle_ws(hr_exchange_t *ex)
{
    const char *key;
    size_t key_len, len;
    if (check_upgrade(ex, &key, &key_len) != 0) return;
    hr_ws_t *ws = calloc(1, sizeof *ws);
    if (!ws) {
        refuse(ex, 503, "out of memory", NULL);
        return;
    }
    char user[HR_PRESENCE_USER_MAX + 1];
    size_t user_len = 0;
    if (identify(ex, ws) != 0 || hr_api_identity(ex, user, &user_len) != 0) {
        free(ws->token);
        free(ws);
        return;
    }
    char accept[32], extensions[160] = "";
    hr_ws_accept_key(key, key_len, accept);
    const char *protocols = hr_request_header(ex->req, "Sec-WebSocket-Protocol", &len);
    int herald_v1 = protocols && has_token(protocols, len, HR_WS_SUBPROTOCOL);
    const char *offers = hr_request_header(ex->req, "Sec-WebSocket-Extensions", &len);
    if (offers && ex->worker->config->ws_deflate)
        hr_ws_deflate_negotiate(offers, len, &ws->deflate, extensions, sizeof extensions);

    char headers[320];
    snprintf(headers, sizeof headers, "Sec-WebSocket-Accept: %s\r\n%s%s%s%s", accept,
             herald_v1 ? "Sec-WebSocket-Protocol: " HR_WS_SUBPROTOCOL "\r\n" : "",
             ws->deflate.enabled ? "Sec-WebSocket-Extensions: " : "",
             ws->deflate.enabled ? extensions : "", ws->deflate.enabled ? "\r\n" : "");
    ws->opened_ns = uv_hrtime();
    ws->opened_bytes = ex->conn->bytes_written;
    /* The front end answers 101 and hands the connection over; nothing runs on it until this
     * handler returns, so the rest of `ws` is set up below. */
    if (hr_exchange_upgrade(ex, "websocket", headers, &ws_proto, ws, &ws->out) != 0) {
        free(ws->token);
        free(ws);
        return;
    }
    ws->conn = ex->conn;
    ws->worker = ex->worker;
    hr_list_init(&ws->subs);
    hr_list_init(&ws->acks_waiting);
    hr_list_init(&ws->deferred);
    hr_timeq_entry_init(&ws->auth_timeout);
    const hr_auth_t *auth = ex->worker->server->auth;
    if (auth && auth->mode == HR_AUTH_ALL && !ws->token && !ws->admin_key)
        hr_timeq_add(&ex->worker->timeouts, &ws->auth_timeout, ex->worker->config->auth_timeout_s,
                     on_auth_timeout);
    ws->ctl.vt = &ws_ctl_transport;
    ws->ctl.owner = ws;
    ws->ctl.worker = ex->worker->id;
    hr_worker_add_sub(ex->worker, &ws->ctl);
    hr_conn_set_kind(ex->conn, HR_CONN_WS);
    if (user_len) hr_ws_proto_set_user(ws, user, user_len);
    hr_debug("ws.open", "conn=%llu peer=%s deflate=%d subprotocol=%d",
             (unsigned long long)ex->conn->id, ex->conn->peer, ws->deflate.enabled, herald_v1);
}

static const hr_route_entry_t ws_routes[] = {
    {"/v1/ws", HR_GET, HR_ROUTE_TRANSPORT, "GET", &hr_ws_def},
};

const hr_transport_def_t hr_ws_def = {"ws", HR_CONN_WS, handle_ws, ws_routes,
                                      sizeof ws_routes / sizeof ws_routes[0]};
