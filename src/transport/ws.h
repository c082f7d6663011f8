/* WebSocket connection state shared by ws.c (RFC 6455 framing, handshake, keep-alive) and
 * ws_proto.c (the herald.v1 protocol: subscribe, publish, deliveries). */
#ifndef HR_WS_H
#define HR_WS_H

#include <stddef.h>
#include <stdint.h>

#include "core/conn.h"
#include "core/timeq.h"
#include "core/sub.h"
#include "core/utf8.h"
#include "presence/presence.h"
#include "transport/ws_deflate.h"

#define HR_WS_SUBPROTOCOL "herald.v1"

typedef struct hr_ws_s {
    hr_conn_t *conn; /* reads frames (its protocol); logs its id and peer */
    hr_stream_t out; /* frames go out through it: the front end's, from the upgrade */
    hr_worker_t *worker;
    uint64_t opened_ns, opened_bytes; /* --access-log: the session's line when it ends */
    hr_sub_t ctl;                     /* in worker->subs: pings and shutdown for the connection */
    hr_list_t subs;                   /* ws_sub_t, one per subscribed topic */
    size_t nsubs;
    size_t nreserved;        /* of which herald's own streams (presence, signals) */
    hr_ws_deflate_t deflate; /* negotiated permessage-deflate */
    uint8_t *in;             /* bytes of an incomplete frame */
    size_t in_len, in_cap;
    size_t want;  /* bytes the pending frame needs in all */
    uint8_t *msg; /* fragments so far */
    size_t msg_len, msg_cap;
    size_t msg_frames; /* fragments so far */
    hr_utf8_t utf8;    /* validation state across text fragments */
    /* Packed beside utf8: every idle WebSocket carries these (docs/BENCHMARKS.md). */
    unsigned msg_opcode : 4;     /* text or binary while a fragmented message is open, else 0 */
    unsigned msg_compressed : 1; /* the open message has RSV1 */
    unsigned close_sent : 1;     /* our close frame is out; data frames are ignored */
    unsigned awaiting_pong : 1;  /* a ping is unanswered */
    unsigned admin_key : 1;      /* the upgrade carried the --admin-key */
    hr_list_t acks_waiting;      /* publish acks waiting for the disk or Redis (ws_proto.c) */
    hr_list_t deferred;          /* subscribes waiting for their topics to be live (cluster) */
    struct hr_token_s *token;    /* claims of the token given at the upgrade; NULL = none; owned */
    hr_timeq_entry_t auth_timeout; /* --auth all: until a token comes (in worker->timeouts) */
    char *user;      /* presence identity: the token's sub or ?user=; owned, NULL = none (an
                        idle connection does not carry HR_PRESENCE_USER_MAX bytes) */
    size_t user_len; /* 0 = none */
    hr_presence_conn_t presence;
} hr_ws_t;

/* Sends one unfragmented frame (payload copied). */
int hr_ws_send(hr_ws_t *ws, int opcode, const void *payload, size_t len);

/* herald.v1, in ws_proto.c. */
void hr_ws_proto_text(hr_ws_t *ws, const char *text, size_t len);
void hr_ws_proto_binary(hr_ws_t *ws, const uint8_t *data, size_t len);
/* The connection's user is now `user` (len 0: nobody): presence moves, and the user's signal
 * stream is subscribed. */
void hr_ws_proto_set_user(hr_ws_t *ws, const char *user, size_t len);
/* Leaves every topic; called when the connection closes. */
void hr_ws_proto_release(hr_ws_t *ws);

#endif
