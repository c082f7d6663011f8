/* Delayed messages on the HTTP side (docs/PUSH.md): a publish with deliver_at or delay is
 * kept and answered 202; GET /v1/delayed lists, DELETE /v1/delayed/{id} cancels (admin);
 * worker 0 publishes what is due, through the same path as any publish (live delivery, the
 * store, FCM per the message's policy). */
#include <stdlib.h>
#include <string.h>

#include "api/handlers.h"
#include "api/pubreq.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/id.h"
#include "core/log.h"
#include "core/server.h"
#include "delay/delayed.h"
#include "delay/delayed_redis.h"
#include "push/push.h"

/* ---- cluster mode: the schedule in Redis ------------------------------------------------ */

static json_t *added(hr_bus_cmd_t *cmd, int *status)
{
    json_int_t id = json_integer_value(cmd->reply);
    *status = id > 0 ? 202 : 507;
    if (id <= 0)
        return json_pack("{s:s, s:i}", "error", "delayed messages at their limit (--delayed-max)",
                         "status", 507);
    /* ARGV: EVALSHA sha 0 prefix maxlen ttl max due ... */
    return json_pack("{s:I, s:I}", "delayed", id, "deliver_at",
                     (json_int_t)strtoll(cmd->argv[7], NULL, 10));
}

static json_t *listed(hr_bus_cmd_t *cmd, int *status)
{
    json_t *list = json_array();
    size_t n = json_array_size(cmd->reply);
    for (size_t i = 1; i < n; i++) {
        json_t *row = json_array_get(cmd->reply, i);
        json_t *topics = json_loads(json_string_value(json_array_get(row, 2)), 0, NULL);
        json_array_append_new(list, json_pack("{s:O, s:O, s:o, s:O}", "id", json_array_get(row, 0),
                                              "deliver_at", json_array_get(row, 1), "topics",
                                              topics ? topics : json_array(), "event",
                                              json_array_get(row, 3)));
    }
    *status = 200;
    return json_pack("{s:o, s:O}", "delayed", list, "count", json_array_get(cmd->reply, 0));
}

static json_t *cancelled(hr_bus_cmd_t *cmd, int *status)
{
    *status = json_integer_value(cmd->reply) == 1 ? 204 : 404;
    return *status == 204
               ? json_object()
               : json_pack("{s:s, s:i}", "error", "no such delayed message", "status", 404);
}

void hr_api_publish_later(hr_exchange_t *ex, const char *const *names, const size_t *lens, size_t n,
                          const hr_pub_body_t *body)
{
    hr_server_t *server = ex->worker->server;
    hr_delayed_t *delayed = server->delayed;
    if (body->want_id) {
        hr_respond_error(ex, 400, "\"id\" cannot be chosen for a delayed message");
        return;
    }
    if (server->delayed_redis) {
        hr_api_bus_answer(
            ex,
            hr_delayed_redis_add(server->delayed_redis, names, lens, n, body, body->deliver_at_ms),
            added);
        return;
    }
    uint64_t id;
    int rc = hr_delayed_add(delayed, names, lens, n, body, 0, body->deliver_at_ms, &id);
    if (rc == HR_ELIMIT) {
        hr_respond_error(ex, 507,
                         "delayed messages at their limit (--delayed-max, "
                         "--delayed-max-bytes)");
        return;
    }
    if (rc != 0) {
        hr_respond_error(ex, 503, rc == HR_ENOMEM ? "out of memory" : "the store refused it");
        return;
    }
    hr_info("delayed.kept", "id=%llu deliver_at=%lld topics=%zu", (unsigned long long)id,
            (long long)body->deliver_at_ms, n);
    hr_respond_json(ex, 202,
                    json_pack("{s:I, s:I}", "delayed", (json_int_t)id, "deliver_at",
                              (json_int_t)body->deliver_at_ms));
}

static void fired(hr_pubreq_t *req)
{
    const char *reason, *code;
    if (hr_pubreq_status(req->result, &reason, &code) != 200)
        hr_warn("delayed.failed", "id=%llu code=%s", (unsigned long long)req->delayed_id, code);
    hr_pubreq_free(req);
}

/* Worker 0 (cluster): what the take script published; its FCM pushes go from here. */
static void taken(hr_bus_cmd_t *cmd)
{
    hr_worker_t *worker = cmd->user;
    worker->delay_taking = 0;
    size_t n = json_array_size(cmd->reply);
    for (size_t i = 0; i + 7 <= n && !cmd->error; i += 7) {
        json_t *topic = json_array_get(cmd->reply, i), *event = json_array_get(cmd->reply, i + 2);
        json_t *data = json_array_get(cmd->reply, i + 3);
        const char *push_text = json_string_value(json_array_get(cmd->reply, i + 6));
        json_t *fields = push_text && *push_text ? json_loads(push_text, 0, NULL) : NULL;
        uint64_t id = 0;
        const char *id_text = json_string_value(json_array_get(cmd->reply, i + 1));
        if (id_text) hr_id_parse(id_text, strlen(id_text), &id);
        hr_push_msg_t msg = {
            json_string_value(topic),
            json_string_length(topic),
            id,
            json_string_value(event),
            json_string_length(event),
            json_string_value(data) ? json_string_value(data) : "",
            json_string_length(data),
            strcmp(json_string_value(json_array_get(cmd->reply, i + 4)) ?: "0", "1") == 0,
            (enum hr_fcm_mode)strtol(json_string_value(json_array_get(cmd->reply, i + 5)) ?: "0",
                                     NULL, 10),
            fields,
            worker->id};
        if (msg.topic) hr_push_published(worker->server->push, &msg);
        hr_debug("delayed.due", "topic=%s id=%llu node=cluster", msg.topic ? msg.topic : "",
                 (unsigned long long)id);
        json_decref(fields);
    }
    hr_bus_cmd_free(cmd);
}

static void take_due_cluster(hr_worker_t *worker)
{
    hr_bus_t *bus = worker->server->bus;
    if (worker->delay_taking || !hr_bus_up(bus)) return;
    hr_bus_cmd_t *cmd = hr_delayed_redis_take(worker->server->delayed_redis);
    if (!cmd) return;
    cmd->done = taken;
    cmd->worker = worker->id;
    cmd->user = worker;
    worker->delay_taking = 1;
    if (hr_bus_command(bus, cmd) != 0) {
        worker->delay_taking = 0;
        hr_bus_cmd_free(cmd);
    }
}

void hr_delayed_fire_due(hr_worker_t *worker)
{
    if (worker->server->delayed_redis) {
        take_due_cluster(worker);
        return;
    }
    hr_delayed_t *delayed = worker->server->delayed;
    int64_t now = hr_clock_unix_ms();
    hr_delayed_entry_t *entry;
    while ((entry = hr_delayed_take_due(delayed, now))) {
        hr_pub_body_t body = {.event = entry->event_len ? entry->event : NULL,
                              .event_len = entry->event_len,
                              .data = entry->data,
                              .data_len = entry->data_len,
                              .retry_ms = entry->retry_ms,
                              .fcm = entry->fcm,
                              .push = entry->push};
        hr_pubreq_t *req = hr_pubreq_new(worker, (const char *const *)entry->topics, entry->lens,
                                         entry->n, &body, entry->binary);
        if (!req) {
            hr_error("delayed.oom", "id=%llu", (unsigned long long)entry->id);
            hr_delayed_done(entry);
            continue;
        }
        req->delayed_id = entry->id;
        req->done = fired;
        hr_debug("delayed.due", "id=%llu late_ms=%lld", (unsigned long long)entry->id,
                 (long long)(now - entry->due_ms));
        if (hr_pubreq_submit(req) == 0) fired(req);
        hr_delayed_done(entry); /* the request copied what it needs */
    }
}

/* GET /v1/delayed?limit=N and DELETE /v1/delayed/{id}: the admin's. */
void hr_handle_delayed(hr_exchange_t *ex)
{
    if (hr_api_authorize(ex, HR_ACCESS_ADMIN, NULL, NULL, 0) != 0) return;
    hr_server_t *server = ex->worker->server;
    hr_delayed_t *delayed = server->delayed;
    if (ex->method != HR_DELETE) {
        const hr_qparam_t *param = hr_query_get(ex->params, ex->nparams, "limit");
        uint64_t limit = 1000;
        if (param && (hr_id_parse(param->value, param->value_len, &limit) != 0 || limit < 1 ||
                      limit > 10000)) {
            hr_respond_error(ex, 400, "limit must be in 1..10000");
            return;
        }
        if (server->delayed_redis)
            hr_api_bus_answer(ex, hr_delayed_redis_list(server->delayed_redis, (size_t)limit),
                              listed);
        else
            hr_respond_json(ex, 200, hr_delayed_list(delayed, (size_t)limit));
        return;
    }
    uint64_t id;
    if (!ex->route.topic || hr_id_parse(ex->route.topic, ex->route.topic_len, &id) != 0) {
        hr_respond_error(ex, 400, "a delayed message's id is a decimal integer");
        return;
    }
    if (server->delayed_redis) {
        hr_api_bus_answer(ex, hr_delayed_redis_cancel(server->delayed_redis, id), cancelled);
        return;
    }
    if (!hr_delayed_cancel(delayed, id)) {
        hr_respond_error(ex, 404, "no such delayed message (delivered, cancelled, or never)");
        return;
    }
    hr_respond(ex, 204, NULL, "", 0, NULL);
}
