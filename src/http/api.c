#include <stdlib.h>
#include <string.h>

#include "api/handlers.h"
#include "core/broker.h"
#include "core/error.h"
#include "core/log.h"
#include "core/server.h"
#include "http/api.h"
#include "presence/presence.h"
#include "transport/registry.h"

typedef void (*handler_fn)(hr_exchange_t *ex);

/* clang-format off */
static const handler_fn handlers[] = {
    [HR_ROUTE_HEALTH] = hr_handle_health,
    [HR_ROUTE_STATS] = hr_handle_stats,
    [HR_ROUTE_PUBLISH] = hr_handle_publish,
    [HR_ROUTE_PUBLISH_MANY] = hr_handle_publish,
    [HR_ROUTE_TOPIC_MESSAGES] = hr_handle_messages,
    [HR_ROUTE_TOPIC_SUBSCRIBERS] = hr_handle_kick,
    [HR_ROUTE_USER_MESSAGES] = hr_handle_publish,
    [HR_ROUTE_ASSET] = hr_handle_asset,
    [HR_ROUTE_USER_PRESENCE] = hr_handle_user_presence,
    [HR_ROUTE_USER_SIGNAL] = hr_handle_signal,
    [HR_ROUTE_PRESENCE_QUERY] = hr_handle_presence_query,
    [HR_ROUTE_TOPIC_PRESENCE] = hr_handle_topic_presence,
    [HR_ROUTE_DEVICE] = hr_handle_device,
    [HR_ROUTE_DEVICES] = hr_handle_devices,
    [HR_ROUTE_FCM_DEAD] = hr_handle_fcm_dead,
    [HR_ROUTE_DELAYED] = hr_handle_delayed,
    [HR_ROUTE_POOL] = hr_handle_pool,
    [HR_ROUTE_POOL_MEMBERS] = hr_handle_pool_members,
    [HR_ROUTE_POOLS] = hr_handle_pools,
    [HR_ROUTE_METRICS] = hr_handle_metrics,
    [HR_ROUTE_TOPICS] = hr_handle_topics,
    [HR_ROUTE_STATS_STREAM] = hr_handle_stats_stream,
};
/* clang-format on */

static void answer_preflight(hr_exchange_t *ex)
{
    char headers[512];
    if (ex->cors_origin) {
        snprintf(headers, sizeof headers,
                 "Allow: %s\r\nAccess-Control-Allow-Methods: %s\r\n"
                 "Access-Control-Allow-Headers: Content-Type, Last-Event-ID, Authorization\r\n"
                 "Access-Control-Max-Age: 600\r\n",
                 ex->route.allow, ex->route.allow);
    } else {
        snprintf(headers, sizeof headers, "Allow: %s\r\n", ex->route.allow);
    }
    hr_respond(ex, 204, NULL, "", 0, headers);
}

void hr_api_dispatch(hr_conn_t *conn, hr_request_t *req, const hr_exchange_ops_t *ops,
                     void *carrier)
{
    hr_exchange_t ex = {.ops = ops,
                        .conn = conn,
                        .carrier = carrier,
                        .worker = conn->worker,
                        .req = req,
                        .started_ns = uv_hrtime()};
    atomic_fetch_add_explicit(&conn->worker->server->metrics.requests, 1, memory_order_relaxed);
    ex.method = hr_method_parse(req->method, req->method_len);
    ex.keep_alive = req->keep_alive && !req->upgrade;
    size_t origin_len;
    const char *origin = hr_request_header(req, "Origin", &origin_len);
    if (origin) ex.cors_origin = hr_config_cors_allow(conn->worker->config, origin, origin_len);

    int status = hr_route(ex.method, req->path, req->path_len, &ex.route);
    if (status == 404) status = hr_transport_route(ex.method, req->path, req->path_len, &ex.route);
    if (status == 404) {
        hr_respond_error(&ex, 404, "no such route");
        return;
    }
    if (status == 405) {
        char allow[128];
        snprintf(allow, sizeof allow, "Allow: %s\r\n", ex.route.allow);
        static const char body[] = "{\"error\":\"method not allowed\",\"status\":405}";
        hr_log(HR_LOG_INFO, "http.reject", "conn=%llu peer=%s status=405 allow=\"%s\"",
               (unsigned long long)conn->id, conn->peer, ex.route.allow);
        hr_respond(&ex, 405, "application/json", body, sizeof body - 1, allow);
        return;
    }
    if (ex.method == HR_OPTIONS) {
        answer_preflight(&ex);
        return;
    }
    if (req->query_len) {
        ex.query_buf = malloc(req->query_len * 2 + 2);
        if (!ex.query_buf) {
            hr_respond_error(&ex, 503, "out of memory");
            return;
        }
        ex.nparams =
            hr_query_parse(req->query, req->query_len, ex.query_buf, ex.params, HR_MAX_PARAMS);
        if (ex.nparams < 0) {
            hr_respond_error(&ex, 400,
                             ex.nparams == -1 ? "malformed query string"
                                              : "too many query parameters");
            free(ex.query_buf);
            return;
        }
    }
    if (ex.route.id == HR_ROUTE_TRANSPORT)
        ((const hr_transport_def_t *)ex.route.owner)->handle(&ex);
    else
        handlers[ex.route.id](&ex);
    if (!ex.responded) hr_respond_error(&ex, 500, "handler gave no answer");
    free(ex.query_buf);
}

int hr_api_topics(hr_exchange_t *ex, const char **names, size_t *lens, size_t max, size_t *n)
{
    *n = 0;
    if (ex->route.topic) {
        names[0] = ex->route.topic;
        lens[0] = ex->route.topic_len;
        *n = 1;
    } else {
        for (int i = 0; i < ex->nparams; i++) {
            if (strcmp(ex->params[i].key, "topic") != 0) continue;
            if (*n == max) {
                hr_respond_error(ex, 400, "too many topics");
                return -1;
            }
            names[*n] = ex->params[i].value;
            lens[*n] = ex->params[i].value_len;
            (*n)++;
        }
    }
    if (*n == 0) {
        hr_respond_error(ex, 400, "no topic given (use ?topic=NAME)");
        return -1;
    }
    if (hr_api_user_topic(ex, names, lens, *n) != 0) return -1;
    for (size_t i = 0; i < *n; i++) {
        if (hr_presence_reserved(names[i], lens[i])) {
            hr_respond_error(ex, 400,
                             "~presence: and ~signal: topics are herald's own (presence=1 and "
                             "signals reach them)");
            return -1;
        }
        if (!hr_topic_name_valid(names[i], lens[i])) {
            hr_respond_error(ex, 400,
                             "bad topic name: 1-128 bytes of A-Z a-z 0-9 - _ . : @ ~, not "
                             "starting with '.'");
            return -1;
        }
    }
    enum hr_route_id id = ex->route.id;
    enum hr_access access = id == HR_ROUTE_USER_MESSAGES ? HR_ACCESS_ADMIN
                            : id == HR_ROUTE_PUBLISH || id == HR_ROUTE_PUBLISH_MANY
                                ? HR_ACCESS_PUBLISH
                                : HR_ACCESS_SUBSCRIBE;
    return hr_api_authorize(ex, access, names, lens, *n);
}

typedef struct defer_s {
    hr_await_t await;
    hr_pending_t *pending;
    hr_broker_t *broker;
} defer_t;

static const char redis_down[] =
    "{\"error\":\"redis unavailable: this node cannot load the topic now; retry\",\"status\":503}";

static void defer_done(hr_await_t *await, int ok)
{
    defer_t *defer = hr_container_of(await, defer_t, await);
    hr_pending_t *pending = defer->pending;
    free(defer);
    if (ok)
        pending->ops->redispatch(pending);
    else
        pending->ops->respond(pending, 503, "application/json", redis_down, sizeof redis_down - 1,
                              0);
}

static void defer_gone(hr_pending_t *pending)
{
    defer_t *defer = pending->user;
    hr_broker_await_cancel(defer->broker, &defer->await);
    free(defer);
}

static void defer_wake(hr_pending_t *pending)
{
    (void)pending; /* a pipelined request waits (stashed) for this one's answer */
}

void hr_api_defer(hr_exchange_t *ex, const char *const *names, const size_t *lens, size_t n)
{
    defer_t *defer = calloc(1, sizeof *defer);
    if (!defer) {
        hr_respond_error(ex, 503, "out of memory");
        return;
    }
    defer->broker = ex->worker->broker;
    defer->await.worker = ex->worker->id;
    defer->await.done = defer_done;
    int rc = hr_broker_await(defer->broker, &defer->await, names, lens, n);
    if (rc != 0) {
        free(defer);
        hr_respond_error(ex, 503,
                         rc == HR_EUNAVAIL ? "redis unavailable: this node cannot load the topic "
                                             "now; retry"
                         : rc == HR_ELIMIT ? HR_TOPIC_LIMIT_TEXT
                                           : "out of memory");
        return;
    }
    defer->pending = hr_defer(ex);
    defer->pending->user = defer;
    defer->pending->wake = defer_wake;
    defer->pending->on_close = defer_gone;
}
