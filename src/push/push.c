/* The push policy and FCM message building; see push.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "auth/pattern.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/utf8.h"
#include "core/server.h"
#include "push/devices_redis.h"
#include "push/push.h"

typedef struct policy_s {
    const char *pattern;
    enum hr_fcm_mode mode;
} policy_t;

struct hr_push_s {
    const hr_config_t *config;
    hr_presence_t *presence;
    hr_devices_t *devices;
    hr_fcm_t *fcm;
    policy_t policies[HR_MAX_FCM_POLICIES];
    char patterns[HR_MAX_FCM_POLICIES][257];
    size_t npolicies;
    enum hr_fcm_mode fallback;
    int64_t next_sweep_ms;
    hr_bus_t *bus;              /* cluster mode */
    hr_devices_redis_t *remote; /* cluster mode: the devices */
};

static int parse_policies(hr_push_t *push, char *err, size_t err_size)
{
    const hr_config_t *config = push->config;
    push->fallback = hr_fcm_mode_parse(config->fcm_default, strlen(config->fcm_default));
    if (!push->fallback) {
        snprintf(err, err_size, "--fcm-default %s: never, offline or always", config->fcm_default);
        return -1;
    }
    for (size_t i = 0; i < config->nfcm_policies; i++) {
        const char *spec = config->fcm_policies[i], *eq = strrchr(spec, '=');
        enum hr_fcm_mode mode = eq ? hr_fcm_mode_parse(eq + 1, strlen(eq + 1)) : HR_FCM_DEFAULT;
        size_t len = eq ? (size_t)(eq - spec) : 0;
        if (!mode || !hr_pattern_valid(spec, len) || len >= sizeof push->patterns[0]) {
            snprintf(err, err_size, "--fcm-policy %s: PATTERN=never|offline|always", spec);
            return -1;
        }
        memcpy(push->patterns[i], spec, len);
        push->patterns[i][len] = '\0';
        push->policies[push->npolicies++] = (policy_t){push->patterns[i], mode};
    }
    return 0;
}

hr_push_t *hr_push_new(const hr_config_t *config, hr_store_t *store, hr_presence_t *presence,
                       char *err, size_t err_size)
{
    hr_push_t *push = calloc(1, sizeof *push);
    if (!push) {
        snprintf(err, err_size, "out of memory");
        return NULL;
    }
    push->config = config;
    push->presence = presence;
    if (parse_policies(push, err, err_size) != 0 ||
        !(push->devices = hr_devices_new(store, config->fcm_max_devices, config->fcm_max_device_bytes)) ||
        hr_devices_load(push->devices) != 0) {
        if (!err[0]) snprintf(err, err_size, "cannot load the devices");
        hr_push_free(push);
        return NULL;
    }
    if (config->fcm_credentials[0]) {
        hr_fcm_config_t fcm_config = {config->fcm_credentials, config->fcm_endpoint,
                                      config->fcm_retries,     config->fcm_concurrency,
                                      config->fcm_backoff_ms,  config->fcm_timeout_ms};
        if (!(push->fcm = hr_fcm_new(&fcm_config, push->devices, err, err_size))) {
            hr_push_free(push);
            return NULL;
        }
    }
    return push;
}

int hr_push_start(hr_push_t *push)
{
    return push->fcm ? hr_fcm_start(push->fcm) : 0;
}

static void forget_remote(void *arg, const char *token, size_t len)
{
    hr_devices_redis_invalid(arg, token, len);
}

int hr_push_use_redis(hr_push_t *push, hr_bus_t *bus)
{
    push->bus = bus;
    push->remote = hr_devices_redis_new(bus, push->config);
    if (!push->remote) return -1;
    hr_devices_on_invalid(push->devices, forget_remote, push->remote);
    return 0;
}

hr_devices_redis_t *hr_push_devices_redis(hr_push_t *push)
{
    return push ? push->remote : NULL;
}

void hr_push_free(hr_push_t *push)
{
    if (!push) return;
    hr_devices_redis_free(push->remote);
    hr_fcm_free(push->fcm);
    hr_devices_free(push->devices);
    free(push);
}

hr_devices_t *hr_push_devices(hr_push_t *push)
{
    return push->devices;
}

hr_fcm_t *hr_push_fcm(hr_push_t *push)
{
    return push->fcm;
}

static enum hr_fcm_mode policy_for(const hr_push_t *push, const hr_push_msg_t *msg)
{
    if (msg->mode) return msg->mode;
    for (size_t i = 0; i < push->npolicies; i++) {
        const policy_t *policy = &push->policies[i];
        if (hr_pattern_match(policy->pattern, strlen(policy->pattern), "", 0, msg->topic,
                             msg->topic_len))
            return policy->mode;
    }
    return push->fallback;
}

/* ---- the FCM message (HTTP v1 messages:send) ------------------------------------------- */

/* The part every device shares: notification and data. FCM's data values are strings; the
 * message itself rides along when it is text and small (else the app fetches it by id). */
static json_t *common_part(const hr_push_msg_t *msg)
{
    json_t *fields = msg->fields, *message = json_object(), *data = json_object();
    char id[24];
    snprintf(id, sizeof id, "%llu", (unsigned long long)msg->id);
    json_object_set_new(data, "herald_topic", json_stringn(msg->topic, msg->topic_len));
    json_object_set_new(data, "herald_id", json_string(id));
    if (msg->event_len)
        json_object_set_new(data, "herald_event", json_stringn(msg->event, msg->event_len));
    if (!msg->binary && msg->data_len <= 1024 &&
        hr_utf8_valid((const uint8_t *)msg->data, msg->data_len))
        json_object_set_new(data, "herald_data", json_stringn(msg->data, msg->data_len));
    json_object_update(data, json_object_get(fields, "data"));
    json_object_set_new(message, "data", data);
    json_t *title = json_object_get(fields, "title"), *body = json_object_get(fields, "body");
    if (title || body) {
        json_t *notification = json_object();
        if (title) json_object_set(notification, "title", title);
        if (body) json_object_set(notification, "body", body);
        json_object_set_new(message, "notification", notification);
    }
    return message;
}

/* The platform's block: priority, time to live, collapse key, each in its own dialect. */
static void platform_part(json_t *message, const char *platform, json_t *fields)
{
    const char *priority = json_string_value(json_object_get(fields, "priority"));
    const char *collapse = json_string_value(json_object_get(fields, "collapse_key"));
    json_t *ttl_json = json_object_get(fields, "ttl");
    int high = !priority || strcmp(priority, "high") == 0;
    char ttl[24];
    if (strcmp(platform, "android") == 0) {
        json_t *android = json_pack("{s:s}", "priority", high ? "HIGH" : "NORMAL");
        if (ttl_json) {
            snprintf(ttl, sizeof ttl, "%llds", (long long)json_integer_value(ttl_json));
            json_object_set_new(android, "ttl", json_string(ttl));
        }
        if (collapse) json_object_set_new(android, "collapse_key", json_string(collapse));
        json_object_set_new(message, "android", android);
    } else if (strcmp(platform, "ios") == 0) {
        json_t *headers = json_pack("{s:s}", "apns-priority", high ? "10" : "5");
        if (ttl_json) {
            snprintf(ttl, sizeof ttl, "%lld",
                     (long long)(hr_clock_unix_ms() / 1000 + json_integer_value(ttl_json)));
            json_object_set_new(headers, "apns-expiration", json_string(ttl));
        }
        if (collapse) json_object_set_new(headers, "apns-collapse-id", json_string(collapse));
        json_object_set_new(message, "apns", json_pack("{s:o}", "headers", headers));
    } else {
        json_t *headers = json_pack("{s:s}", "Urgency", high ? "high" : "normal");
        if (ttl_json) {
            snprintf(ttl, sizeof ttl, "%lld", (long long)json_integer_value(ttl_json));
            json_object_set_new(headers, "TTL", json_string(ttl));
        }
        if (collapse) json_object_set_new(headers, "Topic", json_string(collapse));
        json_object_set_new(message, "webpush", json_pack("{s:o}", "headers", headers));
    }
}

static char *request_for(json_t *common, const hr_push_target_t *target, json_t *fields)
{
    json_t *message = json_copy(common);
    json_object_set_new(message, "token", json_string(target->token));
    platform_part(message, target->platform, fields);
    json_t *request = json_pack("{s:o}", "message", message);
    char *text = request ? json_dumps(request, JSON_COMPACT) : NULL;
    json_decref(request);
    return text;
}

/* Cluster mode: the recipients came back from Redis (offline ones only, when so asked). */
typedef struct remote_push_s {
    hr_push_t *push;
    json_t *common;
    json_t *fields;
} remote_push_t;

static void recipients_arrived(hr_bus_cmd_t *cmd)
{
    remote_push_t *rp = cmd->user;
    size_t n = json_array_size(cmd->reply), queued = 0;
    for (size_t i = 0; i + 3 <= n && !cmd->error; i += 3) {
        hr_push_target_t target = {0};
        const char *token = json_string_value(json_array_get(cmd->reply, i));
        const char *user = json_string_value(json_array_get(cmd->reply, i + 1));
        const char *platform = json_string_value(json_array_get(cmd->reply, i + 2));
        if (!token || !user || !platform) continue;
        target.token = (char *)token;
        snprintf(target.user, sizeof target.user, "%s", user);
        snprintf(target.platform, sizeof target.platform, "%s", platform);
        char *body = request_for(rp->common, &target, rp->fields);
        if (!body) continue;
        hr_fcm_send(rp->push->fcm, token, user, body);
        queued++;
    }
    if (queued) hr_debug("push.queued", "devices=%zu node=cluster", queued);
    json_decref(rp->common);
    json_decref(rp->fields);
    free(rp);
    hr_bus_cmd_free(cmd);
}

static void push_remote(hr_push_t *push, const hr_push_msg_t *msg, enum hr_fcm_mode mode)
{
    size_t prefix = sizeof HR_USER_TOPIC_PREFIX - 1;
    int of_user = hr_is_user_topic(msg->topic, msg->topic_len);
    hr_bus_cmd_t *cmd = hr_devices_redis_targets(
        push->remote, of_user, of_user ? msg->topic + prefix : msg->topic,
        of_user ? msg->topic_len - prefix : msg->topic_len, mode == HR_FCM_OFFLINE);
    remote_push_t *rp = cmd ? calloc(1, sizeof *rp) : NULL;
    if (!rp) {
        hr_bus_cmd_free(cmd);
        return;
    }
    rp->push = push;
    rp->common = common_part(msg);
    rp->fields = msg->fields ? json_deep_copy(msg->fields) : NULL;
    cmd->done = recipients_arrived;
    cmd->worker = msg->worker;
    cmd->user = rp;
    if (hr_bus_command(push->bus, cmd) != 0) {
        hr_warn("push.lookup_failed", "topic=%.*s reason=\"redis unavailable\"",
                (int)msg->topic_len, msg->topic);
        cmd->reply = NULL;
        cmd->error = 1;
        recipients_arrived(cmd);
    }
}

size_t hr_push_published(hr_push_t *push, const hr_push_msg_t *msg)
{
    enum hr_fcm_mode mode;
    if (!push || !push->fcm || (mode = policy_for(push, msg)) == HR_FCM_NEVER) return 0;
    if (push->remote) {
        push_remote(push, msg, mode);
        return 0;
    }
    hr_push_target_t *targets = NULL;
    size_t n = 0, cap = 0;
    size_t prefix = sizeof HR_USER_TOPIC_PREFIX - 1;
    if (hr_is_user_topic(msg->topic, msg->topic_len))
        hr_devices_of_user(push->devices, msg->topic + prefix, msg->topic_len - prefix, &targets,
                           &n, &cap, HR_PUSH_TARGETS_MAX);
    else
        hr_devices_of_topic(push->devices, msg->topic, msg->topic_len, &targets, &n, &cap,
                            HR_PUSH_TARGETS_MAX);
    size_t queued = 0;
    json_t *common = n ? common_part(msg) : NULL;
    for (size_t i = 0; i < n; i++) {
        if (mode == HR_FCM_OFFLINE && push->presence &&
            hr_presence_online(push->presence, targets[i].user, strlen(targets[i].user)))
            continue; /* a live connection has it already */
        char *body = request_for(common, &targets[i], msg->fields);
        if (!body) continue;
        hr_fcm_send(push->fcm, targets[i].token, targets[i].user, body);
        queued++;
    }
    json_decref(common);
    hr_push_targets_free(targets, n);
    if (queued)
        hr_debug("push.queued", "topic=%.*s id=%llu devices=%zu", (int)msg->topic_len, msg->topic,
                 (unsigned long long)msg->id, queued);
    return queued;
}

static void expired_remote(hr_bus_cmd_t *cmd)
{
    json_int_t removed = json_integer_value(cmd->reply);
    if (removed > 0) hr_info("push.stale_removed", "devices=%lld node=cluster", (long long)removed);
}

void hr_push_tick(hr_push_t *push)
{
    int64_t now = hr_clock_mono_ms();
    if (now < push->next_sweep_ms) return;
    /* Once a minute, or twice a TTL when that is shorter (tests use short ones). */
    int64_t every =
        push->config->fcm_token_ttl_ms / 2 < 60000 ? push->config->fcm_token_ttl_ms / 2 : 60000;
    push->next_sweep_ms = now + every;
    int64_t cutoff = hr_clock_unix_ms() - push->config->fcm_token_ttl_ms;
    if (push->remote) { /* one node at a time: a lease of twice the period */
        hr_bus_cmd_t *cmd = hr_devices_redis_expire(push->remote, cutoff, 2 * every);
        if (cmd) cmd->on_reply = expired_remote;
        if (cmd && hr_bus_command(push->bus, cmd) != 0) hr_bus_cmd_free(cmd);
        return;
    }
    size_t removed = hr_devices_expire(push->devices, cutoff);
    if (removed) hr_info("push.stale_removed", "devices=%zu", removed);
}

static json_t *devices_stats(hr_push_t *push)
{
    if (push->remote) return json_string("in redis");
    hr_devices_stats_t devices;
    /* Stale: past half the TTL without a refresh (the app should re-register them). */
    hr_devices_stats(push->devices, hr_clock_unix_ms() - push->config->fcm_token_ttl_ms / 2,
                     &devices);
    return json_pack("{s:I, s:I, s:I, s:I, s:I}", "live", (json_int_t)devices.live, "users",
                     (json_int_t)devices.users, "stale", (json_int_t)devices.stale, "removed_stale",
                     (json_int_t)devices.removed_stale, "removed_invalid",
                     (json_int_t)devices.removed_invalid);
}

json_t *hr_push_stats(hr_push_t *push)
{
    json_t *out = json_pack("{s:o}", "devices", devices_stats(push));
    if (!push->fcm) {
        json_object_set_new(out, "fcm", json_null());
        return out;
    }
    hr_fcm_stats_t fcm;
    hr_fcm_stats(push->fcm, &fcm);
    json_object_set_new(out, "fcm",
                        json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "sent",
                                  (json_int_t)fcm.sent, "delivered", (json_int_t)fcm.delivered,
                                  "invalid", (json_int_t)fcm.invalid, "retried",
                                  (json_int_t)fcm.retried, "dead", (json_int_t)fcm.dead,
                                  "token_fetches", (json_int_t)fcm.token_fetches, "queued",
                                  (json_int_t)fcm.queued, "in_flight", (json_int_t)fcm.in_flight));
    return out;
}
