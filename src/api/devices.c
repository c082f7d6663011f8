/* PUT/DELETE /v1/users/{id}/devices/{token}, GET /v1/users/{id}/devices, GET /v1/fcm/dead
 * (docs/PUSH.md). A user's devices are managed by the user (a token whose sub is the id) or an
 * admin; with --auth off, as everything else, by anyone. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/handlers.h"
#include "api/presence.h"
#include "auth/auth.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/log.h"
#include "core/server.h"
#include "push/devices_redis.h"
#include "push/push.h"

/* ---- cluster mode: answers from Redis (push/devices_redis.c) ---------------------------- */

static json_t *put_answered(hr_bus_cmd_t *cmd, int *status)
{
    if (json_integer_value(cmd->reply) != 1) {
        *status = 507;
        return json_pack("{s:s, s:i}", "error", "device limit reached (--fcm-max-devices)",
                         "status", 507);
    }
    *status = 200; /* argv: EVALSHA sha 0 prefix token user body topics updated ... */
    return json_pack("{s:s%, s:I}", "token", cmd->argv[4], cmd->lens[4], "updated_at",
                     (json_int_t)strtoll(cmd->argv[8], NULL, 10));
}

static json_t *remove_answered(hr_bus_cmd_t *cmd, int *status)
{
    *status = json_integer_value(cmd->reply) == 1 ? 204 : 404;
    return *status == 204
               ? json_object()
               : json_pack("{s:s, s:i}", "error", "no such device for this user", "status", 404);
}

static json_t *list_answered(hr_bus_cmd_t *cmd, int *status)
{
    json_t *list = json_array();
    size_t n = json_array_size(cmd->reply);
    for (size_t i = 0; i + 3 <= n; i += 3) {
        json_t *body = json_loads(json_string_value(json_array_get(cmd->reply, i + 1)), 0, NULL);
        if (!body) continue;
        json_object_set(body, "token", json_array_get(cmd->reply, i));
        json_object_set(body, "updated_at", json_array_get(cmd->reply, i + 2));
        json_array_append_new(list, body);
    }
    *status = 200;
    return json_pack("{s:o}", "devices", list);
}

static int may_manage(hr_exchange_t *ex, const char *user, size_t len)
{
    const hr_auth_t *auth = ex->worker->server->auth;
    if (!auth || auth->mode == HR_AUTH_OFF) return 1;
    size_t token_len = 0;
    const char *token = hr_api_request_token(ex, &token_len);
    hr_token_t *claims = NULL;
    int admin_key = 0;
    hr_auth_denial_t denial = {401, 0, "a token is required", 0};
    int known = token && hr_auth_identify(auth, ex->worker->id, token, token_len,
                                          (int64_t)time(NULL), &claims, &admin_key, &denial) == 0;
    int ok = known &&
             (admin_key || (claims && (claims->admin || (claims->sub_len == len &&
                                                         memcmp(claims->sub, user, len) == 0))));
    free(claims);
    if (known && !ok)
        denial = (hr_auth_denial_t){403, 1, "a user's devices are the user's (or an admin's)", 0};
    if (!ok) hr_api_answer_denial(ex, &denial, NULL, NULL);
    return ok;
}

static int user_param(hr_exchange_t *ex)
{
    if (hr_presence_user_valid(ex->route.topic, ex->route.topic_len)) return 0;
    hr_respond_error(ex, 400, "bad user id: 1-120 bytes of A-Z a-z 0-9 - _ . : @ ~");
    return -1;
}

static void put_device(hr_exchange_t *ex, hr_devices_t *devices)
{
    json_error_t jerr;
    json_t *body = json_loadb(ex->req->body ? ex->req->body : "", ex->req->body_len,
                              JSON_REJECT_DUPLICATES, &jerr);
    hr_device_info_t info = {.token = ex->route.token,
                             .user = ex->route.topic,
                             .token_len = ex->route.token_len,
                             .user_len = ex->route.topic_len,
                             .updated_ms = hr_clock_unix_ms()};
    char err[160];
    if (hr_device_body_parse(body, &info, err, sizeof err) != 0) {
        json_decref(body);
        hr_respond_error(ex, 400, err);
        return;
    }
    hr_devices_redis_t *remote = hr_push_devices_redis(ex->worker->server->push);
    if (remote) {
        hr_api_bus_answer(ex, hr_devices_redis_put(remote, &info), put_answered);
        json_decref(body);
        return;
    }
    int rc = hr_devices_put(devices, &info);
    json_decref(body);
    if (rc == HR_ELIMIT)
        hr_respond_error(ex, 507, "device limit reached (--fcm-max-devices)");
    else if (rc != 0)
        hr_respond_error(ex, 503, "out of memory");
    else
        hr_respond_json(ex, 200,
                        json_pack("{s:s%, s:I}", "token", info.token, info.token_len, "updated_at",
                                  (json_int_t)info.updated_ms));
}

void hr_handle_device(hr_exchange_t *ex)
{
    if (user_param(ex) != 0) return;
    if (!hr_device_token_valid(ex->route.token, ex->route.token_len)) {
        hr_respond_error(ex, 400, "bad device token: 1-4096 bytes of A-Z a-z 0-9 - _ : .");
        return;
    }
    if (!may_manage(ex, ex->route.topic, ex->route.topic_len)) return;
    hr_devices_t *devices = hr_push_devices(ex->worker->server->push);
    if (ex->method == HR_PUT) {
        put_device(ex, devices);
        return;
    }
    hr_devices_redis_t *remote = hr_push_devices_redis(ex->worker->server->push);
    if (remote) {
        hr_api_bus_answer(ex,
                          hr_devices_redis_remove(remote, ex->route.topic, ex->route.topic_len,
                                                  ex->route.token, ex->route.token_len),
                          remove_answered);
        return;
    }
    if (!hr_devices_remove(devices, ex->route.topic, ex->route.topic_len, ex->route.token,
                           ex->route.token_len)) {
        hr_respond_error(ex, 404, "no such device for this user");
        return;
    }
    hr_respond(ex, 204, NULL, "", 0, NULL);
}

void hr_handle_devices(hr_exchange_t *ex)
{
    if (user_param(ex) != 0 || !may_manage(ex, ex->route.topic, ex->route.topic_len)) return;
    hr_devices_redis_t *remote = hr_push_devices_redis(ex->worker->server->push);
    if (remote) {
        hr_api_bus_answer(ex, hr_devices_redis_list(remote, ex->route.topic, ex->route.topic_len),
                          list_answered);
        return;
    }
    json_t *list = hr_devices_list(hr_push_devices(ex->worker->server->push), ex->route.topic,
                                   ex->route.topic_len);
    hr_respond_json(ex, 200, json_pack("{s:o}", "devices", list));
}

void hr_handle_fcm_dead(hr_exchange_t *ex)
{
    if (hr_api_authorize(ex, HR_ACCESS_ADMIN, NULL, NULL, 0) != 0) return;
    hr_fcm_t *fcm = hr_push_fcm(ex->worker->server->push);
    hr_respond_json(ex, 200, json_pack("{s:o}", "dead", fcm ? hr_fcm_dead(fcm) : json_array()));
}
