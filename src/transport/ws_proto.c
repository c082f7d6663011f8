/* herald.v1, the JSON protocol spoken in WebSocket text frames (docs/API.md):
 *   client: subscribe / unsubscribe / publish / ping, each with an optional "req" echoed back;
 *   server: message / ack / error / gap / unsubscribed / pong.
 * Binary frames carry binary messages with a small header, both ways. Delivered frames are
 * cached on the message, so a broadcast is framed (and compressed) once for all subscribers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/msg_json.h"
#include "api/presence.h"
#include "delay/delayed.h"
#include "auth/auth.h"
#include "api/publish_body.h"
#include "api/pubreq.h"
#include "core/broker.h"
#include "core/error.h"
#include "core/id.h"
#include "core/log.h"
#include "core/server.h"
#include "transport/ws.h"
#include "transport/ws_frame.h"

#define BINARY_VERSION 1

typedef struct ws_sub_s {
    hr_sub_t sub;   /* broker membership for one topic */
    hr_ws_t *ws;    /* owner */
    hr_list_t link; /* in ws->subs */
} ws_sub_t;

/* ---- frames for delivered messages ------------------------------------------------------- */

/* A signal (docs/PRESENCE.md) arrives as {"type":"signal","from","kind","payload","id"}. */
static char *signal_text(const hr_msg_t *msg, size_t *len)
{
    json_t *json = json_loadb(msg->data, msg->data_len, 0, NULL);
    if (!json_is_object(json) || json_object_set_new(json, "type", json_string("signal")) != 0 ||
        json_object_set_new(json, "id", json_integer((json_int_t)msg->id)) != 0) {
        json_decref(json);
        return NULL;
    }
    char *text = json_dumps(json, JSON_COMPACT);
    json_decref(json);
    if (text) *len = strlen(text);
    return text;
}

static char *message_text(const hr_msg_t *msg, size_t *len)
{
    if (strncmp(msg->topic_name, HR_SIGNAL_TOPIC_PREFIX, sizeof HR_SIGNAL_TOPIC_PREFIX - 1) == 0)
        return signal_text(msg, len);
    json_t *fields = hr_msg_to_json(msg), *json = json_pack("{s:s}", "type", "message");
    if (!fields || !json || json_object_update(json, fields) != 0) {
        json_decref(fields);
        json_decref(json);
        return NULL;
    }
    json_decref(fields);
    char *text = json_dumps(json, JSON_COMPACT);
    json_decref(json);
    if (text) *len = strlen(text);
    return text;
}

static hr_encoded_t *frame_of(const uint8_t *payload, size_t len, int opcode, int rsv1)
{
    uint8_t header[HR_WS_MAX_HEADER];
    size_t header_len = hr_ws_write_header(header, 1, rsv1, opcode, len);
    hr_encoded_t *enc = malloc(sizeof *enc + header_len + len);
    if (!enc) return NULL;
    memcpy(enc->bytes, header, header_len);
    memcpy(enc->bytes + header_len, payload, len);
    enc->len = header_len + len;
    return enc;
}

static hr_encoded_t *encode_text(const hr_msg_t *msg)
{
    size_t len;
    char *text = message_text(msg, &len);
    if (!text) return NULL;
    hr_encoded_t *enc = frame_of((const uint8_t *)text, len, HR_WS_TEXT, 0);
    free(text);
    return enc;
}

static hr_encoded_t *encode_text_deflate(const hr_msg_t *msg)
{
    size_t len, packed_len;
    uint8_t *packed;
    char *text = message_text(msg, &len);
    if (!text) return NULL;
    int rc = hr_ws_compress((const uint8_t *)text, len, 15, 0, &packed, &packed_len);
    free(text);
    if (rc != 0) return NULL;
    hr_encoded_t *enc = frame_of(packed, packed_len, HR_WS_TEXT, 1);
    free(packed);
    return enc;
}

/* [1][topic length][topic][id, 8 bytes big-endian][event length][event][data] */
static hr_encoded_t *encode_binary(const hr_msg_t *msg)
{
    size_t topic_len = strlen(msg->topic_name), event_len = strlen(msg->event);
    size_t len = 1 + 1 + topic_len + 8 + 1 + event_len + msg->data_len;
    uint8_t *payload = malloc(len), *p = payload;
    if (!payload) return NULL;
    *p++ = BINARY_VERSION;
    *p++ = (uint8_t)topic_len;
    memcpy(p, msg->topic_name, topic_len);
    p += topic_len;
    for (int i = 7; i >= 0; i--)
        *p++ = (uint8_t)(msg->id >> (8 * i));
    *p++ = (uint8_t)event_len;
    memcpy(p, msg->event, event_len);
    p += event_len;
    memcpy(p, msg->data, msg->data_len);
    hr_encoded_t *enc = frame_of(payload, len, HR_WS_BINARY, 0);
    free(payload);
    return enc;
}

static int deliver_to(hr_ws_t *ws, hr_msg_t *msg)
{
    if (ws->close_sent) return HR_ESHUTDOWN;
    const hr_encoded_t *enc;
    if (msg->binary) {
        enc = hr_msg_encoding(msg, HR_ENC_WS_BINARY, encode_binary);
    } else {
        enc = hr_msg_encoding(msg, HR_ENC_WS_TEXT, encode_text);
        /* Compressed frames are shared only at the full window; a client that asked for a
         * smaller one gets uncompressed messages (RFC 7692 lets a server send either). */
        if (enc && ws->deflate.enabled && ws->deflate.server_window == 15 &&
            enc->len >= ws->worker->config->ws_deflate_min_bytes) {
            const hr_encoded_t *packed =
                hr_msg_encoding(msg, HR_ENC_WS_TEXT_DEFLATE, encode_text_deflate);
            if (packed && packed->len < enc->len) enc = packed;
        }
    }
    if (!enc) return HR_ENOMEM;
    return ws->out.ops->write(&ws->out, enc->bytes, enc->len, msg);
}

/* ---- replies ----------------------------------------------------------------------------- */

static void send_json(hr_ws_t *ws, json_t *json)
{
    char *text = json ? json_dumps(json, JSON_COMPACT) : NULL;
    json_decref(json);
    if (text) hr_ws_send(ws, HR_WS_TEXT, text, strlen(text));
    free(text);
}

static void send_error(hr_ws_t *ws, json_t *req, const char *code, const char *message)
{
    hr_info("ws.error", "conn=%llu code=%s message=\"%s\"", (unsigned long long)ws->conn->id, code,
            message);
    json_t *json = json_pack("{s:s, s:s, s:s}", "type", "error", "code", code, "message", message);
    if (req) json_object_set(json, "req", req);
    send_json(ws, json);
}

/* The connection's identity against the policy: an error reply (unauthorized, forbidden with
 * the topic) when refused; the connection stays usable for what it may do. */
static int authorized(hr_ws_t *ws, json_t *req, enum hr_access access, const char *const *names,
                      const size_t *lens, size_t n)
{
    const hr_auth_t *auth = ws->worker->server->auth;
    hr_auth_denial_t denial;
    if (!auth || hr_auth_decide_claims(auth, ws->token, ws->admin_key, access, names, lens, n,
                                       (int64_t)time(NULL), &denial) == 0)
        return 1;
    char message[400];
    if (denial.status == 403)
        snprintf(message, sizeof message, "%s: %.*s", denial.reason, (int)lens[denial.topic],
                 names[denial.topic]);
    else
        snprintf(message, sizeof message, "%s", denial.reason);
    send_error(ws, req, denial.status == 403 ? "forbidden" : "unauthorized", message);
    return 0;
}

static json_t *reply(const char *type, json_t *req)
{
    json_t *json = json_pack("{s:s}", "type", type);
    if (req) json_object_set(json, "req", req);
    return json;
}

/* ---- subscriptions ----------------------------------------------------------------------- */

static ws_sub_t *find_sub(hr_ws_t *ws, const char *topic, size_t len)
{
    for (hr_list_t *it = ws->subs.next; it != &ws->subs; it = it->next) {
        ws_sub_t *s = hr_container_of(it, ws_sub_t, link);
        const char *name = hr_topic_name(s->sub.nodes[0].topic);
        if (strlen(name) == len && memcmp(name, topic, len) == 0) return s;
    }
    return NULL;
}

static hr_presence_t *presence_of(hr_ws_t *ws)
{
    return ws->worker->server->presence;
}

static void drop_sub(ws_sub_t *s)
{
    hr_ws_t *ws = s->ws;
    const char *name = hr_topic_name(s->sub.nodes[0].topic);
    if (name[0] != '~' && presence_of(ws))
        hr_presence_leave(presence_of(ws), &ws->presence, name, strlen(name));
    ws->nreserved -= hr_presence_reserved(name, strlen(name)) != 0;
    hr_broker_unsubscribe(ws->worker->broker, &s->sub); /* `name` may go with the topic */
    hr_list_remove(&s->link);
    ws->nsubs--;
    free(s);
}

/* Drops the topic's presence stream too, if the connection asked for it. */
static void drop_with_presence(hr_ws_t *ws, ws_sub_t *s)
{
    const char *name = hr_topic_name(s->sub.nodes[0].topic);
    char stream[HR_TOPIC_MAX_LEN + 1];
    size_t len = hr_presence_topic(name, strlen(name), stream);
    ws_sub_t *companion = len ? find_sub(ws, stream, len) : NULL;
    drop_sub(s);
    if (companion) drop_sub(companion);
}

static int sub_deliver(hr_sub_t *sub, hr_msg_t *msg)
{
    return deliver_to(((ws_sub_t *)sub)->ws, msg);
}

/* The topic's subscribers were ended (DELETE /v1/topics/{topic}/subscribers): this topic only;
 * the connection and its other topics carry on. */
static void sub_kick(hr_sub_t *sub)
{
    ws_sub_t *s = (ws_sub_t *)sub;
    hr_ws_t *ws = s->ws;
    send_json(ws, json_pack("{s:s, s:s, s:s}", "type", "unsubscribed", "topic",
                            hr_topic_name(sub->nodes[0].topic), "reason", "kicked"));
    drop_with_presence(ws, s);
}

static void sub_heartbeat(hr_sub_t *sub)
{
    (void)sub; /* the connection pings, not each topic */
}

static const hr_transport_t ws_transport = {"ws", sub_deliver, sub_kick, sub_heartbeat};

/* A publish whose ack waits for the disk (--durability sync or batch) or for Redis. */
typedef struct ack_wait_s {
    hr_list_t link; /* in ws->acks_waiting */
    hr_ws_t *ws;
    hr_pubreq_t *pub;
    json_t *req; /* the client's "req", echoed */
} ack_wait_t;

/* Sends the ack, or the error, for a finished publish. */
static void answer_publish(hr_ws_t *ws, json_t *req, hr_pubreq_t *pub)
{
    const char *reason, *code;
    if (hr_pubreq_status(pub->result, &reason, &code) != 200) {
        if (pub->result == HR_PUB_NOT_STORED || pub->result == HR_PUB_UNAVAILABLE)
            hr_warn("ws.publish_failed", "conn=%llu code=%s", (unsigned long long)ws->conn->id,
                    code);
        send_error(ws, req, code, reason);
        return;
    }
    json_t *ack = reply("ack", req);
    json_object_set_new(ack, "messages", hr_pubreq_ids(pub));
    send_json(ws, ack);
}

static void ack_wait_free(ack_wait_t *aw)
{
    hr_list_remove(&aw->link);
    json_decref(aw->req);
    free(aw);
}

static void publish_done(hr_pubreq_t *pub)
{
    ack_wait_t *aw = pub->user;
    answer_publish(aw->ws, aw->req, pub);
    hr_pubreq_free(pub);
    ack_wait_free(aw);
}

static void submit_publish(hr_ws_t *ws, json_t *req, const hr_pub_body_t *body, int binary,
                           const char *const *names, const size_t *lens, size_t n,
                           int require_user);

static void publish(hr_ws_t *ws, json_t *req, const hr_pub_body_t *body, int binary,
                    const char *const *names, const size_t *lens, size_t n)
{
    if (!authorized(ws, req, HR_ACCESS_PUBLISH, names, lens, n)) return;
    int64_t wait_ms = hr_pubreq_rate_wait(ws->worker, ws->conn->peer);
    if (wait_ms > 0) {
        char message[96];
        snprintf(message, sizeof message, "publish rate limit: retry in %lld ms",
                 (long long)wait_ms);
        send_error(ws, req, "rate_limited", message);
        return;
    }
    submit_publish(ws, req, body, binary, names, lens, n, 0);
}

/* A publish that passed its checks: acked now, or when Redis or the disk answers. */
static void submit_publish(hr_ws_t *ws, json_t *req, const hr_pub_body_t *body, int binary,
                           const char *const *names, const size_t *lens, size_t n, int require_user)
{
    hr_pubreq_t *pub = hr_pubreq_new(ws->worker, names, lens, n, body, binary);
    ack_wait_t *aw = calloc(1, sizeof *aw);
    if (!pub || !aw) {
        hr_pubreq_free(pub);
        free(aw);
        send_error(ws, req, "internal", "out of memory");
        return;
    }
    pub->bus.require_user = require_user;
    if (hr_pubreq_submit(pub) == 0) {
        answer_publish(ws, req, pub);
        hr_pubreq_free(pub);
        free(aw);
        return;
    }
    aw->ws = ws;
    aw->pub = pub;
    aw->req = json_incref(req);
    pub->user = aw;
    pub->done = publish_done;
    hr_list_push(&ws->acks_waiting, &aw->link);
}

/* A subscribe whose topics are not live on this node yet (cluster mode). */
typedef struct deferred_s {
    hr_await_t await;
    hr_list_t link; /* in ws->deferred */
    hr_ws_t *ws;
    json_t *root; /* the subscribe message, run again once the topics are live */
    int internal; /* root is {"topic"}: the user's own signal stream, subscribed by herald */
} deferred_t;

static void deferred_free(deferred_t *deferred)
{
    hr_list_remove(&deferred->link);
    json_decref(deferred->root);
    free(deferred);
}

void hr_ws_proto_release(hr_ws_t *ws)
{
    if (presence_of(ws)) hr_presence_disconnect(presence_of(ws), &ws->presence);
    while (!hr_list_empty(&ws->subs))
        drop_sub(hr_container_of(ws->subs.next, ws_sub_t, link));
    while (!hr_list_empty(&ws->deferred)) {
        deferred_t *deferred = hr_container_of(ws->deferred.next, deferred_t, link);
        hr_broker_await_cancel(ws->worker->broker, &deferred->await);
        deferred_free(deferred);
    }
    while (!hr_list_empty(&ws->acks_waiting)) {
        ack_wait_t *aw = hr_container_of(ws->acks_waiting.next, ack_wait_t, link);
        hr_pubreq_cancel(aw->pub); /* the publish goes on; nobody is left to tell */
        ack_wait_free(aw);
    }
}

/* Reads "topic" or "topics" into names/lens (borrowed from the JSON); sends the error itself. */
static int read_topics(hr_ws_t *ws, json_t *root, json_t *req, const char **names, size_t *lens,
                       size_t max, size_t *n)
{
    json_t *one = json_object_get(root, "topic"), *many = json_object_get(root, "topics");
    *n = 0;
    if (json_is_string(one)) {
        names[0] = json_string_value(one);
        lens[0] = json_string_length(one);
        *n = 1;
    } else if (json_is_array(many) && json_array_size(many) > 0) {
        if (json_array_size(many) > max) {
            send_error(ws, req, "too_many_topics", "too many topics in one request");
            return -1;
        }
        size_t i;
        json_t *item;
        json_array_foreach(many, i, item)
        {
            if (!json_is_string(item)) break;
            names[*n] = json_string_value(item);
            lens[(*n)++] = json_string_length(item);
        }
        if (*n != json_array_size(many)) *n = 0;
    }
    if (*n == 0) {
        send_error(ws, req, "bad_request", "give \"topic\" (a string) or \"topics\" (strings)");
        return -1;
    }
    for (size_t i = 0; i < *n; i++) {
        if (hr_presence_reserved(names[i], lens[i])) {
            send_error(ws, req, "bad_topic",
                       "~presence: and ~signal: topics are herald's own (\"presence\":true and "
                       "signals reach them)");
            return -1;
        }
        if (!hr_topic_name_valid(names[i], lens[i])) {
            send_error(ws, req, "bad_topic",
                       "topic names are 1-128 bytes of A-Z a-z 0-9 - _ . : @ ~, not starting "
                       "with '.'");
            return -1;
        }
    }
    return 0;
}

static int read_since(json_t *value, uint64_t *since)
{
    if (json_is_integer(value) && json_integer_value(value) >= 0) {
        *since = (uint64_t)json_integer_value(value);
        return 0;
    }
    if (json_is_string(value))
        return hr_id_parse(json_string_value(value), json_string_length(value), since);
    return -1;
}

/* Subscribes one topic; moves its replay into `all` and its gap (if any) into `gaps`. */
static int subscribe_one(hr_ws_t *ws, const char *name, size_t len, const uint64_t *since,
                         hr_replay_t *all, json_t *gaps)
{
    ws_sub_t *s = calloc(1, sizeof *s);
    hr_replay_t replay;
    if (!s) return HR_ENOMEM;
    s->ws = ws;
    s->sub.vt = &ws_transport;
    s->sub.owner = s;
    s->sub.worker = ws->worker->id;
    int rc = hr_broker_subscribe(ws->worker->broker, &s->sub, &name, &len, 1, since, &replay);
    if (rc != 0) {
        free(s);
        return rc;
    }
    hr_list_push(&ws->subs, &s->link);
    ws->nsubs++;
    ws->nreserved += hr_presence_reserved(name, len) != 0;
    for (size_t i = 0; i < replay.ngaps; i++)
        json_array_append_new(gaps,
                              json_pack("{s:s, s:s, s:I, s:I}", "type", "gap", "topic",
                                        replay.gaps[i].topic, "last_event_id", (json_int_t)*since,
                                        "available_after", (json_int_t)replay.gaps[i].floor_id));
    if (replay.count == 0) {
        hr_replay_free(&replay);
        return 0;
    }
    hr_msg_t **msgs = realloc(all->msgs, (all->count + replay.count) * sizeof *msgs);
    if (!msgs) {
        hr_replay_free(&replay);
        return HR_ENOMEM;
    }
    all->msgs = msgs;
    memcpy(all->msgs + all->count, replay.msgs, replay.count * sizeof *msgs);
    all->count += replay.count;
    replay.count = 0; /* references moved */
    hr_replay_free(&replay);
    return 0;
}

static void do_subscribe(hr_ws_t *ws, json_t *root, json_t *req);
static void subscribe_own(hr_ws_t *ws, const char *name, size_t len);

static void deferred_done(hr_await_t *await, int ok)
{
    deferred_t *deferred = hr_container_of(await, deferred_t, await);
    hr_ws_t *ws = deferred->ws;
    json_t *root = json_incref(deferred->root);
    int internal = deferred->internal;
    deferred_free(deferred);
    json_t *topic = json_object_get(root, "topic");
    if (internal && ok)
        subscribe_own(ws, json_string_value(topic), json_string_length(topic));
    else if (internal)
        send_error(ws, NULL, "unavailable",
                   "redis unavailable: signals cannot reach this "
                   "connection; reconnect");
    else if (ok)
        do_subscribe(ws, root, json_object_get(root, "req"));
    else
        send_error(ws, json_object_get(root, "req"), "unavailable",
                   "redis unavailable: this node cannot load the topic now; retry");
    json_decref(root);
}

static int defer_subscribe(hr_ws_t *ws, json_t *root, json_t *req, const char *const *names,
                           const size_t *lens, size_t n, int internal)
{
    if (hr_broker_live(ws->worker->broker, names, lens, n)) return 0;
    deferred_t *deferred = calloc(1, sizeof *deferred);
    if (!deferred) {
        send_error(ws, req, "internal", "out of memory");
        return 1;
    }
    deferred->ws = ws;
    deferred->await.worker = ws->worker->id;
    deferred->await.done = deferred_done;
    int rc = hr_broker_await(ws->worker->broker, &deferred->await, names, lens, n);
    if (rc != 0) {
        free(deferred);
        send_error(ws, req, rc == HR_EUNAVAIL ? "unavailable" : "internal",
                   rc == HR_EUNAVAIL ? "redis unavailable: this node cannot load the topic now; "
                                       "retry"
                                     : "out of memory");
        return 1;
    }
    deferred->root = json_incref(root);
    deferred->internal = internal;
    hr_list_push(&ws->deferred, &deferred->link);
    return 1;
}

/* The user's own signal stream, subscribed by herald (no replay: signals are for now). */
static void subscribe_own(hr_ws_t *ws, const char *name, size_t len)
{
    if (!name || find_sub(ws, name, len)) return;
    json_t *root = json_pack("{s:s%}", "topic", name, len);
    if (!root || defer_subscribe(ws, root, NULL, &name, &len, 1, 1)) {
        json_decref(root);
        return;
    }
    json_decref(root);
    hr_replay_t none = {0};
    if (subscribe_one(ws, name, len, NULL, &none, NULL) != 0)
        send_error(ws, NULL, "internal", "cannot subscribe the user's signals");
    hr_replay_free(&none);
}

void hr_ws_proto_set_user(hr_ws_t *ws, const char *user, size_t len)
{
    hr_presence_t *presence = presence_of(ws);
    if (len == ws->user_len && (!len || memcmp(user, ws->user, len) == 0)) return;
    char name[HR_TOPIC_MAX_LEN + 1];
    if (ws->user_len) { /* another user now: the old one's presence and signals go */
        size_t name_len = hr_signal_topic(ws->user, ws->user_len, name);
        ws_sub_t *own = find_sub(ws, name, name_len);
        if (own) drop_sub(own);
        if (presence) hr_presence_disconnect(presence, &ws->presence);
    }
    char *copy = len ? strndup(user, len) : NULL;
    free(ws->user);
    ws->user = copy;
    ws->user_len = copy ? len : 0;
    if (!ws->user_len || !presence) return;
    if (hr_presence_connect(presence, &ws->presence, user, len, HR_VIA_WS) == 0)
        for (hr_list_t *it = ws->subs.next; it != &ws->subs; it = it->next) {
            const char *topic =
                hr_topic_name(hr_container_of(it, ws_sub_t, link)->sub.nodes[0].topic);
            if (topic[0] != '~') hr_presence_join(presence, &ws->presence, topic, strlen(topic));
        }
    subscribe_own(ws, name, hr_signal_topic(user, len, name));
}

/* "user:me": the connection's own user stream, "~user:SUB" (docs/AUTH.md); `buf` holds it. */
static int resolve_self(hr_ws_t *ws, json_t *req, const char **names, size_t *lens, size_t n,
                        char *buf)
{
    size_t me = sizeof HR_USER_ME - 1, len = 0;
    for (size_t i = 0; i < n; i++) {
        if (lens[i] != me || memcmp(names[i], HR_USER_ME, me) != 0) continue;
        if (!len && ws->token) len = hr_user_topic(ws->token->sub, ws->token->sub_len, buf);
        if (!len) {
            send_error(ws, req, "unauthorized", "user:me needs a token with a sub");
            return -1;
        }
        names[i] = buf;
        lens[i] = len;
    }
    return 0;
}

/* "presence": true adds each topic's presence stream; false or absent, none. */
static int read_presence_flag(hr_ws_t *ws, json_t *root, json_t *req, int *wanted)
{
    json_t *flag = json_object_get(root, "presence");
    *wanted = json_is_true(flag);
    if (!flag || json_is_boolean(flag)) return 0;
    send_error(ws, req, "bad_request", "\"presence\" must be true or false");
    return -1;
}

/* Appends "~presence:T" for names[0..n) into names/lens (room for 2n), stored in `store`. */
static int add_presence_streams(hr_ws_t *ws, json_t *req, const char **names, size_t *lens,
                                size_t *n, char (*store)[HR_TOPIC_MAX_LEN + 1])
{
    size_t own = *n;
    for (size_t i = 0; i < own; i++) {
        size_t len = hr_presence_topic(names[i], lens[i], store[i]);
        if (!len) {
            send_error(ws, req, "bad_topic", "presence needs topic names of at most 118 bytes");
            return -1;
        }
        names[*n] = store[i];
        lens[(*n)++] = len;
    }
    return 0;
}

static void do_subscribe(hr_ws_t *ws, json_t *root, json_t *req)
{
    size_t max = ws->worker->config->max_topics_per_sub, n;
    const char *names[2 * max];
    size_t lens[2 * max];
    char self[HR_TOPIC_MAX_LEN + 1], (*streams)[HR_TOPIC_MAX_LEN + 1] = NULL;
    int wanted;
    if (read_topics(ws, root, req, names, lens, max, &n) != 0) return;
    if (resolve_self(ws, req, names, lens, n, self) != 0) return;
    if (read_presence_flag(ws, root, req, &wanted) != 0) return;
    if (!authorized(ws, req, HR_ACCESS_SUBSCRIBE, names, lens, n)) return;
    uint64_t since = 0;
    json_t *since_json = json_object_get(root, "since");
    if (since_json && !json_is_null(since_json) && read_since(since_json, &since) != 0) {
        send_error(ws, req, "bad_request", "\"since\" must be a message id");
        return;
    }
    size_t own = n, fresh = 0;
    if (wanted && (!(streams = malloc(n * sizeof *streams)) ||
                   add_presence_streams(ws, req, names, lens, &n, streams) != 0)) {
        if (!streams) send_error(ws, req, "internal", "out of memory");
        free(streams);
        return;
    }
    for (size_t i = 0; i < own; i++)
        fresh += find_sub(ws, names[i], lens[i]) == NULL;
    /* Herald's own streams (presence, signals) ride along: at most one per topic, plus one. */
    if (ws->nsubs - ws->nreserved + fresh > max) {
        send_error(ws, req, "too_many_topics", "subscription limit for this connection");
        free(streams);
        return;
    }
    if (defer_subscribe(ws, root, req, names, lens, n, 0)) {
        free(streams);
        return;
    }
    hr_replay_t all = {0};
    json_t *gaps = json_array(), *topics = json_array();
    for (size_t i = 0; i < n; i++) {
        if (i < own) json_array_append_new(topics, json_stringn(names[i], lens[i]));
        if (find_sub(ws, names[i], lens[i])) continue; /* already: idempotent */
        int rc = subscribe_one(ws, names[i], lens[i], since_json ? &since : NULL, &all, gaps);
        if (rc != 0) {
            send_error(ws, req, rc == HR_ELIMIT ? "topic_limit" : "internal",
                       rc == HR_ELIMIT ? HR_TOPIC_LIMIT_TEXT : "out of memory");
            break;
        }
        if (i < own && names[i][0] != '~' && presence_of(ws))
            hr_presence_join(presence_of(ws), &ws->presence, names[i], lens[i]);
    }
    free(streams);
    json_t *ack = reply("ack", req);
    json_object_set_new(ack, "topics", topics);
    send_json(ws, ack);
    size_t i;
    json_t *gap;
    json_array_foreach(gaps, i, gap) send_json(ws, json_incref(gap));
    json_decref(gaps);
    if (all.count > 1) qsort(all.msgs, all.count, sizeof *all.msgs, hr_msg_cmp_id);
    ws->worker->corked = 1;
    for (i = 0; i < all.count; i++)
        deliver_to(ws, all.msgs[i]);
    hr_conn_uncork(ws->worker);
    hr_replay_free(&all);
}

static void do_unsubscribe(hr_ws_t *ws, json_t *root, json_t *req)
{
    size_t max = ws->worker->config->max_topics_per_sub, n;
    const char *names[max];
    size_t lens[max];
    char self[HR_TOPIC_MAX_LEN + 1];
    if (read_topics(ws, root, req, names, lens, max, &n) != 0) return;
    if (resolve_self(ws, req, names, lens, n, self) != 0) return;
    json_t *topics = json_array();
    for (size_t i = 0; i < n; i++) {
        ws_sub_t *s = find_sub(ws, names[i], lens[i]);
        if (s) drop_with_presence(ws, s);
        json_array_append_new(topics, json_stringn(names[i], lens[i]));
    }
    json_t *ack = reply("ack", req);
    json_object_set_new(ack, "topics", topics);
    send_json(ws, ack);
}

/* deliver_at / delay: kept by src/delay, acked with {"delayed": id, "deliver_at"}. */
static void publish_later(hr_ws_t *ws, json_t *req, const hr_pub_body_t *body,
                          const char *const *names, const size_t *lens, size_t n)
{
    hr_delayed_t *delayed = ws->worker->server->delayed;
    uint64_t id;
    if (!authorized(ws, req, HR_ACCESS_PUBLISH, names, lens, n)) return;
    if (!delayed) {
        send_error(ws, req, "unavailable",
                   "in cluster mode delayed messages go over HTTP (POST with deliver_at or delay)");
        return;
    }
    if (body->want_id) {
        send_error(ws, req, "bad_request", "\"id\" cannot be chosen for a delayed message");
        return;
    }
    int rc = hr_delayed_add(delayed, names, lens, n, body, 0, body->deliver_at_ms, &id);
    if (rc != 0) {
        send_error(ws, req, rc == HR_ELIMIT ? "limit" : "internal",
                   rc == HR_ELIMIT ? "delayed messages at their limit" : "cannot keep it");
        return;
    }
    json_t *ack = reply("ack", req);
    json_object_set_new(ack, "delayed", json_integer((json_int_t)id));
    json_object_set_new(ack, "deliver_at", json_integer(body->deliver_at_ms));
    send_json(ws, ack);
}

static void do_publish(hr_ws_t *ws, json_t *root, json_t *req)
{
    size_t max = ws->worker->config->max_topics_per_sub, n;
    const char *names[max];
    size_t lens[max];
    if (read_topics(ws, root, req, names, lens, max, &n) != 0) return;
    hr_pub_body_t body;
    char err[256];
    if (hr_pub_body_from_json(root, &body, err, sizeof err) != 0) {
        hr_pub_body_free(&body);
        {
            send_error(ws, req, "bad_request", err);
            return;
        }
    }
    if (body.want_id && n > 1) {
        hr_pub_body_free(&body);
        {
            send_error(ws, req, "bad_request", "\"id\" can be set only for one topic");
            return;
        }
    }
    if (body.deliver_at_ms)
        publish_later(ws, req, &body, names, lens, n);
    else
        publish(ws, req, &body, 0, names, lens, n);
    hr_pub_body_free(&body);
}

/* {"type":"auth","token":…}: the connection's identity from now on, as a first message (a
 * browser's WebSocket cannot set headers) or to extend a session before its token expires. A
 * refused token leaves the identity it had. */
static void do_auth(hr_ws_t *ws, json_t *root, json_t *req)
{
    const hr_auth_t *auth = ws->worker->server->auth;
    json_t *token = json_object_get(root, "token");
    if (!json_is_string(token)) {
        send_error(ws, req, "bad_request", "\"token\" must be a string");
        return;
    }
    hr_token_t *claims = NULL;
    int admin_key = 0;
    hr_auth_denial_t denial;
    if (auth &&
        hr_auth_identify(auth, ws->worker->id, json_string_value(token), json_string_length(token),
                         (int64_t)time(NULL), &claims, &admin_key, &denial) != 0) {
        send_error(ws, req, "unauthorized", denial.reason);
        return;
    }
    free(ws->token);
    ws->token = claims;
    ws->admin_key = admin_key;
    if (claims || admin_key) hr_timeq_remove(&ws->auth_timeout);
    if (claims && hr_presence_user_valid(claims->sub, claims->sub_len))
        hr_ws_proto_set_user(ws, claims->sub, claims->sub_len);
    json_t *ack = reply("ack", req);
    if (claims) json_object_set_new(ack, "sub", json_stringn(claims->sub, claims->sub_len));
    if (claims && claims->exp_s) json_object_set_new(ack, "exp", json_integer(claims->exp_s));
    send_json(ws, ack);
}

/* {"type":"signal","to","kind","payload"}: to every live connection of `to`, from this
 * connection's user (docs/PRESENCE.md). */
static void do_signal(hr_ws_t *ws, json_t *root, json_t *req)
{
    json_t *to = json_object_get(root, "to");
    char *data = NULL;
    const char *code = "bad_request", *message = "\"to\" must be a user id";
    int status = json_is_string(to)
                     ? hr_signal_build(ws->worker, ws->token, ws->admin_key, ws->user, ws->user_len,
                                       json_string_value(to), json_string_length(to), root, &data,
                                       &code, &message)
                     : 400;
    if (status != 0) {
        send_error(ws, req, code, message);
        return;
    }
    char topic[HR_TOPIC_MAX_LEN + 1];
    const char *name = topic;
    size_t len = hr_signal_topic(json_string_value(to), json_string_length(to), topic);
    hr_pub_body_t body = {
        .event = "herald.signal", .event_len = 13, .data = data, .data_len = strlen(data)};
    submit_publish(ws, req, &body, 0, &name, &len, 1, 1);
    free(data);
}

void hr_ws_proto_text(hr_ws_t *ws, const char *text, size_t len)
{
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
    if (!root || !json_is_object(root)) {
        json_decref(root);
        {
            send_error(ws, NULL, "bad_json", root ? "expected an object" : jerr.text);
            return;
        }
    }
    json_t *req = json_object_get(root, "req");
    const char *type = json_string_value(json_object_get(root, "type"));
    if (!type)
        send_error(ws, req, "bad_request", "\"type\" is required");
    else if (strcmp(type, "subscribe") == 0)
        do_subscribe(ws, root, req);
    else if (strcmp(type, "unsubscribe") == 0)
        do_unsubscribe(ws, root, req);
    else if (strcmp(type, "publish") == 0)
        do_publish(ws, root, req);
    else if (strcmp(type, "ping") == 0)
        send_json(ws, reply("pong", req));
    else if (strcmp(type, "auth") == 0)
        do_auth(ws, root, req);
    else if (strcmp(type, "signal") == 0)
        do_signal(ws, root, req);
    else
        send_error(ws, req, "unknown_type",
                   "type must be subscribe, unsubscribe, publish, signal, auth or ping");
    json_decref(root);
}

/* Binary publish: [1][topic length][topic][event length][event][data]. */
void hr_ws_proto_binary(hr_ws_t *ws, const uint8_t *data, size_t len)
{
    if (len < 3 || data[0] != BINARY_VERSION || len < 3u + data[1] ||
        len < 3u + data[1] + data[2 + data[1]]) {
        send_error(ws, NULL, "bad_request",
                   "binary frames are [1][topic length][topic][event length][event][data]");
        return;
    }
    const char *topic = (const char *)data + 2;
    size_t topic_len = data[1];
    const char *event = topic + topic_len + 1;
    size_t event_len = data[2 + topic_len];
    if (!hr_topic_name_valid(topic, topic_len)) {
        send_error(ws, NULL, "bad_topic", "bad topic name in binary frame");
        return;
    }
    if (event_len && !hr_event_name_valid(event, event_len)) {
        send_error(ws, NULL, "bad_request", "bad event name in binary frame");
        return;
    }
    size_t header = 3 + topic_len + event_len;
    hr_pub_body_t body = {0};
    body.event = event_len ? event : NULL;
    body.event_len = event_len;
    body.data = (const char *)data + header;
    body.data_len = len - header;
    publish(ws, NULL, &body, 1, &topic, &topic_len, 1);
}
