#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "api/pubreq.h"
#include "core/conn.h"
#include "core/error.h"
#include "core/history.h"
#include "core/ratelimit.h"
#include "core/server.h"
#include "push/push.h"

hr_pubreq_t *hr_pubreq_new(hr_worker_t *worker, const char *const *names, const size_t *lens,
                           size_t n, const hr_pub_body_t *body, int binary)
{
    hr_pubreq_t *req = calloc(1, sizeof *req);
    if (!req) return NULL;
    req->worker = worker;
    req->n = n;
    req->items = calloc(n ? n : 1, sizeof *req->items);
    if (!req->items) {
        free(req);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        req->items[i].topic = strndup(names[i], lens[i]);
        req->items[i].topic_len = lens[i];
        if (!req->items[i].topic) {
            req->n = i;
            hr_pubreq_free(req);
            return NULL;
        }
    }
    req->bus.event = body->event ? body->event : "";
    req->bus.event_len = body->event ? body->event_len : 0;
    req->bus.data = body->data ? body->data : "";
    req->bus.data_len = body->data_len;
    req->bus.retry_ms = body->retry_ms;
    req->bus.binary = binary;
    req->bus.want_id = body->want_id;
    req->fcm = body->fcm;
    req->push = body->push ? json_incref(body->push) : NULL;
    hr_list_init(&req->wait.link);
    return req;
}

void hr_pubreq_free(hr_pubreq_t *req)
{
    if (!req) return;
    for (size_t i = 0; i < req->n; i++)
        free(req->items[i].topic);
    free(req->items);
    free(req->copy);
    json_decref(req->push);
    free(req);
}

static void on_stored(hr_durable_wait_t *wait, int stored)
{
    hr_pubreq_t *req = hr_container_of(wait, hr_pubreq_t, wait);
    req->waiting_disk = 0;
    req->result = stored ? HR_PUB_OK : HR_PUB_NOT_STORED;
    req->done(req);
}

/* Users who are not connected get it by FCM, per the publish's policy (docs/PUSH.md). */
static void push_offline(hr_pubreq_t *req)
{
    hr_push_t *push = req->worker->server->push;
    for (size_t i = 0; push && i < req->n; i++) {
        hr_push_msg_t msg = {req->items[i].topic, req->items[i].topic_len, req->items[i].id,
                             req->bus.event,      req->bus.event_len,      req->bus.data,
                             req->bus.data_len,   req->bus.binary,         req->fcm,
                             req->push,           req->worker->id};
        hr_push_published(push, &msg);
    }
}

static int submit_local(hr_pubreq_t *req)
{
    hr_store_t *store = req->worker->server->store;
    if (hr_store_refusing(store)) {
        req->result = HR_PUB_REFUSED;
        return 0;
    }
    for (size_t i = 0; i < req->n; i++) {
        hr_publish_t pub = {req->items[i].topic, req->items[i].topic_len, req->bus.event,
                            req->bus.event_len,  req->bus.data,           req->bus.data_len,
                            req->bus.retry_ms,   req->bus.want_id,        req->bus.binary,
                            req->delayed_id,     req->worker->id + 1};
        int rc = hr_broker_publish(req->worker->broker, &pub, &req->items[i].id);
        if (rc != 0) {
            req->result = rc == HR_ECONFLICT  ? HR_PUB_CONFLICT
                          : rc == HR_ELIMIT   ? HR_PUB_TOPIC_LIMIT
                          : rc == HR_EIDSPACE ? HR_PUB_IDSPACE
                                              : HR_PUB_NOMEM;
            return 0;
        }
    }
    req->result = HR_PUB_OK;
    push_offline(req);
    if (!hr_store_waits(store) || req->n == 0) return 0;
    req->waiting_disk = 1;
    hr_worker_wait_durable(req->worker, &req->wait, req->items[req->n - 1].id, on_stored);
    return 1;
}

static void on_bus_answer(hr_post_t *post)
{
    hr_pubreq_t *req = hr_container_of(post, hr_pubreq_t, bus.post);
    if (req->cancelled) {
        hr_pubreq_free(req);
        return;
    }
    req->result = req->bus.status == HR_BUS_OK         ? HR_PUB_OK
                  : req->bus.status == HR_BUS_CONFLICT ? HR_PUB_CONFLICT
                  : req->bus.status == HR_BUS_IDSPACE  ? HR_PUB_IDSPACE
                  : req->bus.status == HR_BUS_OFFLINE  ? HR_PUB_USER_OFFLINE
                                                       : HR_PUB_UNAVAILABLE;
    if (req->result == HR_PUB_OK) push_offline(req);
    req->done(req);
}

static int submit_bus(hr_pubreq_t *req, hr_bus_t *bus)
{
    /* The request's body goes when the handler returns; the bus thread needs its own. */
    req->copy = malloc(req->bus.event_len + req->bus.data_len + 1);
    if (!req->copy) {
        req->result = HR_PUB_NOMEM;
        return 0;
    }
    memcpy(req->copy, req->bus.event, req->bus.event_len);
    memcpy(req->copy + req->bus.event_len, req->bus.data, req->bus.data_len);
    req->bus.event = req->copy;
    req->bus.data = req->copy + req->bus.event_len;
    req->bus.post.run = on_bus_answer;
    req->bus.worker = req->worker->id;
    req->bus.items = req->items;
    req->bus.n = req->n;
    req->bus.time_ms = hr_clock_unix_ms();
    int rc = hr_bus_publish(bus, &req->bus);
    if (rc != 0) {
        req->result = rc == HR_ENOMEM ? HR_PUB_NOMEM : HR_PUB_UNAVAILABLE;
        return 0;
    }
    return 1;
}

int hr_pubreq_submit(hr_pubreq_t *req)
{
    /* Refused before it goes anywhere: kept, it would push out the whole of a topic's history
     * and still not fit. */
    size_t cap = req->worker->config->history_topic_max_bytes;
    if (cap && hr_history_cost(req->bus.event_len, req->bus.data_len) > cap) {
        req->result = HR_PUB_TOO_LARGE;
        return 0;
    }
    hr_bus_t *bus = req->worker->server->bus;
    return bus ? submit_bus(req, bus) : submit_local(req);
}

void hr_pubreq_cancel(hr_pubreq_t *req)
{
    if (req->waiting_disk) {
        /* The write goes on; nobody is left to tell. */
        hr_list_remove(&req->wait.link);
        hr_pubreq_free(req);
        return;
    }
    /* With the bus: free now if the answer is queued here, else when it comes. */
    if (hr_broker_unpost(req->worker->broker, req->worker->id, &req->bus.post))
        hr_pubreq_free(req);
    else
        req->cancelled = 1;
}

json_t *hr_pubreq_ids(const hr_pubreq_t *req)
{
    json_t *ids = json_array();
    for (size_t i = 0; i < req->n; i++)
        json_array_append_new(ids, json_pack("{s:s%, s:I}", "topic", req->items[i].topic,
                                             req->items[i].topic_len, "id",
                                             (json_int_t)req->items[i].id));
    return ids;
}

int hr_pubreq_status(enum hr_pub_result result, const char **reason, const char **code)
{
    switch (result) {
    case HR_PUB_OK:
        *reason = "ok";
        *code = "ok";
        return 200;
    case HR_PUB_CONFLICT:
        *reason = "id must be greater than every id published so far";
        *code = "conflict";
        return 409;
    case HR_PUB_NOMEM:
        *reason = "out of memory";
        *code = "internal";
        return 503;
    case HR_PUB_REFUSED:
        *reason = "storage unavailable: a recent write to disk failed; retry later";
        *code = "storage_unavailable";
        return 507;
    case HR_PUB_NOT_STORED:
        *reason = "not stored: the write to disk failed (disk full?); the message was delivered "
                  "live but may be missing after a restart";
        *code = "not_stored";
        return 507;
    case HR_PUB_TOPIC_LIMIT:
        *reason = HR_TOPIC_LIMIT_TEXT;
        *code = "topic_limit";
        return 503;
    case HR_PUB_IDSPACE:
        *reason = "id space exhausted: the id sequence reached 2^53 - 1; no publish can succeed";
        *code = "id_space_exhausted";
        return 503;
    case HR_PUB_USER_OFFLINE:
        *reason = "the user has no live connection";
        *code = "user_offline";
        return 404;
    case HR_PUB_TOO_LARGE:
        *reason = "message larger than a topic's history may hold (--history-topic-max-bytes)";
        *code = "too_large";
        return 413;
    case HR_PUB_UNAVAILABLE:
        *reason = "redis unavailable: the message was not acknowledged by the cluster; retry";
        *code = "unavailable";
        return 503;
    }
    *reason = "unknown";
    *code = "internal";
    return 500;
}

int64_t hr_pubreq_rate_wait(hr_worker_t *worker, const char *peer)
{
    hr_ratelimit_t *limit = worker->server->publish_limit;
    if (!limit) return 0;
    return hr_ratelimit_take(limit, peer, hr_conn_peer_ip_len(peer),
                             (int64_t)uv_now(&worker->loop));
}
