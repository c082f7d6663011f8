/* WebRTC signaling (docs/PRESENCE.md): an offer, answer, ICE candidate or bye from one user to
 * every live connection of another, on any node. A signal is a message on the recipient's
 * reserved stream "~signal:USER", event herald.signal, data {"from","kind","payload"}; every
 * connection with an identity subscribes to its own stream, so delivery is the broker's (or,
 * in cluster mode, Redis's) like any message. The sender comes from the token, never from the
 * message. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/handlers.h"
#include "api/presence.h"
#include "api/pubreq.h"
#include "auth/auth.h"
#include "core/log.h"
#include "core/ratelimit.h"
#include "core/server.h"

static int kind_valid(const char *kind)
{
    static const char *const kinds[] = {"offer", "answer", "candidate", "bye"};
    for (size_t i = 0; kind && i < sizeof kinds / sizeof kinds[0]; i++)
        if (strcmp(kind, kinds[i]) == 0) return 1;
    return 0;
}

static int fail(const char **code, const char **message, const char *c, const char *m, int status)
{
    *code = c;
    *message = m;
    return status;
}

/* Whether the sender's token lets it signal `to`: with auth on, a `signal` pattern must match
 * (admins may signal anyone); with auth off, as with publishing, anyone may. */
static int may_signal(const hr_auth_t *auth, const hr_token_t *claims, int admin_key,
                      const char *to, size_t to_len)
{
    if (!auth || auth->mode == HR_AUTH_OFF || admin_key) return 1;
    return claims && (claims->admin || hr_token_may_signal(claims, to, to_len));
}

int hr_signal_build(hr_worker_t *worker, const hr_token_t *claims, int admin_key, const char *from,
                    size_t from_len, const char *to, size_t to_len, json_t *root, char **data,
                    const char **code, const char **message)
{
    hr_server_t *server = worker->server;
    *data = NULL;
    if (!from_len)
        return fail(code, message, "unauthorized",
                    "signals need a sender: a token with a sub (or ?user= in development)", 401);
    if (!hr_presence_user_valid(to, to_len))
        return fail(code, message, "bad_request", "\"to\" must be a user id", 400);
    const char *kind = json_string_value(json_object_get(root, "kind"));
    if (!kind_valid(kind))
        return fail(code, message, "bad_request",
                    "\"kind\" must be offer, answer, candidate or bye", 400);
    json_t *payload = json_object_get(root, "payload");
    if (payload && !json_is_object(payload) && !json_is_null(payload))
        return fail(code, message, "bad_request", "\"payload\" must be an object", 400);
    if (!may_signal(server->auth, claims, admin_key, to, to_len))
        return fail(code, message, "forbidden",
                    "the token's signal patterns do not allow this user", 403);
    if (hr_ratelimit_take(server->signal_limit, from, from_len, (int64_t)uv_now(&worker->loop)) > 0)
        return fail(code, message, "rate_limited", "signal rate limit (--signal-rate)", 429);
    json_t *out = json_pack("{s:s%, s:s, s:O}", "from", from, from_len, "kind", kind, "payload",
                            payload ? payload : json_null());
    *data = out ? json_dumps(out, JSON_COMPACT) : NULL;
    json_decref(out);
    if (!*data) return fail(code, message, "internal", "out of memory", 503);
    if (strlen(*data) > worker->config->signal_max_bytes) {
        free(*data);
        *data = NULL;
        return fail(code, message, "too_large", "signal payload over --signal-max", 413);
    }
    if (!server->presence_redis) { /* in cluster mode Redis checks, in the publish itself */
        if (!hr_presence_online(server->presence, to, to_len)) {
            free(*data);
            *data = NULL;
            return fail(code, message, "user_offline", "the user has no live connection", 404);
        }
    }
    return 0;
}

static void answer(hr_exchange_t *ex, int status, const char *code, const char *message)
{
    hr_info("signal.refused", "conn=%llu status=%d code=%s", (unsigned long long)ex->conn->id,
            status, code);
    hr_respond_json(ex, status,
                    json_pack("{s:s, s:i, s:s}", "error", message, "status", status, "code", code));
}

/* POST /v1/users/{to}/signal {"kind","payload"}: for clients on SSE, which cannot send. */
void hr_handle_signal(hr_exchange_t *ex)
{
    char from[HR_PRESENCE_USER_MAX + 1];
    size_t from_len;
    if (hr_api_identity(ex, from, &from_len) != 0) return;
    const hr_auth_t *auth = ex->worker->server->auth;
    hr_token_t *claims = NULL;
    int admin_key = 0;
    size_t token_len = 0;
    const char *token = hr_api_request_token(ex, &token_len);
    hr_auth_denial_t denial;
    if (auth && token &&
        hr_auth_identify(auth, ex->worker->id, token, token_len, (int64_t)time(NULL), &claims,
                         &admin_key, &denial) != 0) {
        hr_api_answer_denial(ex, &denial, NULL, NULL);
        return;
    }
    json_error_t jerr;
    json_t *root = json_loadb(ex->req->body ? ex->req->body : "", ex->req->body_len,
                              JSON_REJECT_DUPLICATES, &jerr);
    char *data = NULL;
    const char *code, *message;
    int status =
        json_is_object(root)
            ? hr_signal_build(ex->worker, claims, admin_key, from, from_len, ex->route.topic,
                              ex->route.topic_len, root, &data, &code, &message)
            : fail(&code, &message, "bad_json", "body must be a JSON object", 400);
    free(claims);
    json_decref(root);
    if (status != 0) {
        answer(ex, status, code, message);
        return;
    }
    char topic[HR_TOPIC_MAX_LEN + 1];
    const char *names[1] = {topic};
    size_t lens[1] = {hr_signal_topic(ex->route.topic, ex->route.topic_len, topic)};
    hr_pub_body_t body = {
        .event = "herald.signal", .event_len = 13, .data = data, .data_len = strlen(data)};
    hr_pubreq_t *req = hr_pubreq_new(ex->worker, names, lens, 1, &body, 0);
    if (!req) {
        free(data);
        hr_respond_error(ex, 503, "out of memory");
        return;
    }
    req->bus.require_user = 1; /* cluster mode: refused (user_offline) unless `to` is online */
    hr_api_publish_submit(ex, req, 0);
    free(data); /* submitted: copied where it must outlive this call */
}
