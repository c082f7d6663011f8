/* One request and its answer: what a route handler gets. Lives for the handler call only,
 * except that hr_respond_stream turns the connection into a long-lived response stream. */
#ifndef HR_EXCHANGE_H
#define HR_EXCHANGE_H

#include <jansson.h>

#include "core/conn.h"
#include "core/stream.h"
#include "http/query.h"
#include "http/request.h"
#include "http/router.h"

#define HR_MAX_PARAMS 128

typedef struct hr_exchange_s hr_exchange_t;

/* What a protocol front end (HTTP/1.1 today, http/h1.c; HTTP/2 next) does with an exchange:
 * handlers and transports call hr_respond*, which go through this table, and never write a
 * protocol's bytes themselves. */
typedef struct hr_exchange_ops_s {
    void (*respond)(hr_exchange_t *ex, int status, const char *content_type, const char *body,
                    size_t len, const char *extra_headers);
    hr_stream_t *(*stream)(hr_exchange_t *ex, const char *content_type, const char *extra_headers);
    hr_pending_t *(*later)(hr_exchange_t *ex);
    hr_pending_t *(*queued)(hr_exchange_t *ex);
    hr_pending_t *(*defer)(hr_exchange_t *ex);
    /* Answers 101 Switching Protocols to `protocol` with `extra_headers`, then the connection
     * speaks `proto` (WebSocket), which writes through `out` (filled in). -1 when the answer
     * could not be written (the connection is closing and keeps its protocol). */
    int (*upgrade)(hr_exchange_t *ex, const char *protocol, const char *extra_headers,
                   const hr_conn_proto_t *proto, void *state, hr_stream_t *out);
    /* Counts the exchange as a client of a transport (SSE, long poll) in the stats: on
     * HTTP/1.1 the connection, on HTTP/2 the stream. */
    void (*set_kind)(hr_exchange_t *ex, enum hr_conn_kind kind);
} hr_exchange_ops_t;

struct hr_exchange_s {
    const hr_exchange_ops_t *ops; /* the front end that carries it */
    hr_conn_t *conn;
    void *carrier; /* the front end's object for the exchange (HTTP/2: the stream), or NULL */
    hr_worker_t *worker;
    hr_request_t *req; /* borrowed for the call */
    enum hr_method method;
    hr_route_match_t route;
    const char *cors_origin; /* Access-Control-Allow-Origin value, or NULL */
    int keep_alive;          /* answer allows another request */
    hr_qparam_t params[HR_MAX_PARAMS];
    int nparams;
    char *query_buf; /* decoded params live here; freed after the call */
    int responded;
    uint64_t started_ns;  /* monotonic, when the request was dispatched */
    int64_t token_exp_s;  /* expiry of the token that allowed the request; 0 = none (api/auth.c) */
    char user_topic[129]; /* "~user:ID" when the request names a user's stream (api/auth.c) */
};

void hr_respond(hr_exchange_t *ex, int status, const char *content_type, const char *body,
                size_t len, const char *extra_headers);
/* {"error": message, "status": status}; logged as one line. */
void hr_respond_error(hr_exchange_t *ex, int status, const char *message);
/* Steals the reference to `json`. */
void hr_respond_json(hr_exchange_t *ex, int status, json_t *json);
/* Sends a 200 head with a body delimited by connection close, and hands back the stream. */
hr_stream_t *hr_respond_stream(hr_exchange_t *ex, const char *content_type,
                               const char *extra_headers);

/* Ends the handler without an answer: the connection waits for pending->ops->respond. The
 * caller sets wake, on_close and user before returning to the event loop. */
hr_pending_t *hr_respond_later(hr_exchange_t *ex);
/* Ends the handler of a publish whose answer comes later (Redis, the disk), without stopping
 * the connection: later pipelined publishes run meanwhile and answers go out in request order.
 * NULL on allocation failure (nothing changed). The caller sets on_close and user. */
hr_pending_t *hr_respond_queued(hr_exchange_t *ex);
/* As hr_respond_later, but the request is kept so pending->ops->redispatch can run its handler
 * again (cluster mode, once its topics are live here). */
hr_pending_t *hr_defer(hr_exchange_t *ex);
/* Answers 101 and hands the connection to `proto` (WebSocket), which writes through `out`;
 * -1 when it could not. */
int hr_exchange_upgrade(hr_exchange_t *ex, const char *protocol, const char *extra_headers,
                        const hr_conn_proto_t *proto, void *state, hr_stream_t *out);

void hr_exchange_set_kind(hr_exchange_t *ex, enum hr_conn_kind kind);

const char *hr_status_text(int status);

#endif
