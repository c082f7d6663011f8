/* GET /healthz and GET /v1/stats. */
#include <time.h>

#include "core/clock.h"
#include "api/handlers.h"
#include "bus/bus.h"
#include "core/server.h"
#include "transport/registry.h"
#include "core/version.h"
#include "presence/presence.h"
#include "pool/pool.h"
#include "push/push.h"

void hr_handle_health(hr_exchange_t *ex)
{
    if (ex->worker->stopping) {
        hr_respond_json(ex, 503, json_pack("{s:s}", "status", "stopping"));
        return;
    }
    hr_bus_t *bus = ex->worker->server->bus;
    if (bus && !hr_bus_up(bus)) {
        /* Live streams keep going, but new topics and publishes need Redis: a load balancer
         * should send new clients elsewhere. */
        hr_respond_json(ex, 503, json_pack("{s:s, s:s}", "status", "degraded", "redis", "down"));
        return;
    }
    if (bus && hr_bus_failing(bus)) {
        hr_respond_json(ex, 503,
                        json_pack("{s:s, s:s}", "status", "degraded", "redis", "publish_failing"));
        return;
    }
    hr_broker_stats_t stats;
    hr_broker_stats(ex->worker->server->broker, &stats);
    if (stats.ids_exhausted) {
        hr_respond_json(ex, 503, json_pack("{s:s, s:s}", "status", "degraded", "ids", "exhausted"));
        return;
    }
    hr_respond_json(
        ex, 200,
        bus ? json_pack("{s:s, s:s, s:s}", "status", "ok", "redis", "up", "version", HR_VERSION)
            : json_pack("{s:s, s:s}", "status", "ok", "version", HR_VERSION));
}

static json_t *bus_stats(hr_bus_t *bus)
{
    if (!bus) return json_null();
    hr_bus_stats_t stats;
    hr_bus_stats(bus, &stats);
    return json_pack("{s:s, s:b, s:I, s:I, s:I, s:I}", "node", stats.node, "up", stats.up,
                     "published", (json_int_t)stats.published, "received",
                     (json_int_t)stats.received, "connects", (json_int_t)stats.reconnects,
                     "channels", (json_int_t)stats.channels);
}

json_t *hr_api_stats_json(hr_server_t *server)
{
    json_t *conns = json_object(), *workers = json_array();
    size_t totals[HR_CONN_KINDS] = {0};
    uint64_t bytes_out = 0;
    for (unsigned w = 0; w < server->nworkers; w++) {
        hr_worker_t *worker = &server->workers[w];
        json_t *row = json_pack("{s:i}", "id", (int)w);
        for (int kind = 0; kind < HR_CONN_KINDS; kind++) {
            size_t now = atomic_load(&worker->conns_now[kind]);
            totals[kind] += now;
            json_object_set_new(row, hr_conn_kind_name(kind), json_integer((json_int_t)now));
        }
        bytes_out += atomic_load(&worker->bytes_out);
        json_array_append_new(workers, row);
    }
    for (int kind = 0; kind < HR_CONN_KINDS; kind++)
        json_object_set_new(conns, hr_conn_kind_name(kind), json_integer((json_int_t)totals[kind]));
    hr_broker_stats_t stats;
    hr_broker_stats(server->broker, &stats);
    int64_t uptime_ms = hr_clock_unix_ms() - server->started_ms;
    json_t *body = json_pack(
        "{s:o, s:I, s:I, s:{s:I, s:I}, s:I, s:I, s:I, s:o}", "connections", conns, "topics",
        (json_int_t)stats.topics, "subscriptions", (json_int_t)stats.subscriptions, "messages",
        "in", (json_int_t)stats.messages_in, "out", (json_int_t)stats.deliveries, "last_id",
        (json_int_t)stats.last_id, "bytes_out", (json_int_t)bytes_out, "uptime_ms",
        (json_int_t)uptime_ms, "workers", workers);
    json_object_set_new(body, "redis", bus_stats(server->bus));
    json_object_set_new(body, "history",
                        json_pack("{s:I, s:I, s:I, s:I}", "bytes", (json_int_t)stats.history_bytes,
                                  "max_bytes", (json_int_t)server->config->history_max_bytes,
                                  "messages", (json_int_t)stats.history_messages, "evictions",
                                  (json_int_t)stats.history_evictions));
    hr_presence_stats_t presence;
    hr_presence_stats(server->presence, &presence);
    /* This node's connections; in cluster mode Redis holds the view across nodes. */
    json_object_set_new(body, "presence",
                        json_pack("{s:I, s:I, s:I, s:I}", "users", (json_int_t)presence.users,
                                  "memberships", (json_int_t)presence.memberships, "topics",
                                  (json_int_t)presence.topics, "last_seen_cached",
                                  (json_int_t)presence.seen_cached));
    json_object_set_new(body, "push", server->push ? hr_push_stats(server->push) : json_null());
    json_object_set_new(body, "pools", server->pools ? hr_pools_stats(server->pools) : json_null());
    return body;
}

void hr_handle_stats(hr_exchange_t *ex)
{
    if (hr_api_authorize(ex, HR_ACCESS_ADMIN, NULL, NULL, 0) != 0) return;
    hr_respond_json(ex, 200, hr_api_stats_json(ex->worker->server));
}
