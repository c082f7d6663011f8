/* GET /metrics: the Prometheus text exposition format (version 0.0.4). Names and units per
 * Prometheus's conventions: herald_ prefix, base units (seconds, bytes), counters end in
 * _total. Admin only when auth is on, like /v1/stats. Checked by `promtool check metrics` in
 * tests/integration/metrics.test.mjs. */
#include <stdio.h>
#include <string.h>

#include "api/handlers.h"
#include "bus/bus.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/server.h"
#include "core/uring.h"
#include "transport/registry.h"
#include "core/version.h"
#include "pool/pool.h"
#include "presence/presence.h"
#include "push/push.h"

static void head(hr_buf_t *out, const char *name, const char *type, const char *help)
{
    hr_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void one(hr_buf_t *out, const char *name, const char *type, const char *help, double value)
{
    head(out, name, type, help);
    hr_buf_printf(out, "%s %.17g\n", name, value);
}

static void histogram(hr_buf_t *out, const char *name, const char *help,
                      const hr_histogram_t *histogram)
{
    head(out, name, "histogram", help);
    uint64_t cumulative = 0;
    for (int i = 0; i < HR_HISTOGRAM_BUCKETS; i++) {
        cumulative += atomic_load_explicit(&histogram->buckets[i], memory_order_relaxed);
        hr_buf_printf(out, "%s_bucket{le=\"%g\"} %llu\n", name, hr_histogram_bounds[i],
                      (unsigned long long)cumulative);
    }
    /* +Inf is the count, read after the buckets: never below the last bucket. */
    uint64_t count = atomic_load_explicit(&histogram->count, memory_order_relaxed);
    if (count < cumulative) count = cumulative;
    hr_buf_printf(out, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.9f\n%s_count %llu\n", name,
                  (unsigned long long)count, name,
                  (double)atomic_load_explicit(&histogram->sum_ns, memory_order_relaxed) / 1e9,
                  name, (unsigned long long)count);
}

/* --io-uring: which workers batch their sends, and how much each enter carried. */
static void io_uring(hr_buf_t *out, hr_server_t *server)
{
    uint64_t sends = 0, submits = 0, rings = 0;
    for (unsigned w = 0; w < server->nworkers; w++) {
        const hr_uring_t *uring = server->workers[w].uring;
        if (!uring) continue;
        rings += !hr_uring_broken(uring);
        sends += hr_uring_sends(uring);
        submits += hr_uring_submits(uring);
    }
    one(out, "herald_io_uring_workers", "gauge",
        "Workers sending batches through io_uring (--io-uring); the others use writev.",
        (double)rings);
    one(out, "herald_io_uring_sends_total", "counter",
        "Sends made through io_uring (one per connection per batch).", (double)sends);
    one(out, "herald_io_uring_submits_total", "counter",
        "io_uring_enter calls that carried those sends.", (double)submits);
}

static void connections(hr_buf_t *out, hr_server_t *server)
{
    head(out, "herald_connections", "gauge", "Open connections by transport.");
    for (int kind = 0; kind < HR_CONN_KINDS; kind++) {
        size_t total = 0;
        for (unsigned w = 0; w < server->nworkers; w++)
            total += atomic_load(&server->workers[w].conns_now[kind]);
        hr_buf_printf(out, "herald_connections{transport=\"%s\"} %zu\n", hr_conn_kind_name(kind),
                      total);
    }
    head(out, "herald_worker_loop_lag_seconds", "gauge",
         "How late each worker's once-a-second timer last ran: time its loop was busy.");
    for (unsigned w = 0; w < server->nworkers; w++)
        hr_buf_printf(out, "herald_worker_loop_lag_seconds{worker=\"%u\"} %.6f\n", w,
                      (double)atomic_load(&server->workers[w].loop_lag_ns) / 1e9);
    uint64_t bytes = 0;
    for (unsigned w = 0; w < server->nworkers; w++)
        bytes += atomic_load(&server->workers[w].bytes_out);
    one(out, "herald_sent_bytes_total", "counter", "Bytes written to client sockets.",
        (double)bytes);
    io_uring(out, server);
}

static void refusals(hr_buf_t *out, hr_metrics_t *metrics)
{
    head(out, "herald_refusals_total", "counter",
         "Requests refused with a 4xx or 5xx answer, by status (limits, bad input, auth).");
    for (int i = 0; i < HR_REF_KINDS; i++) {
        char code[8];
        snprintf(code, sizeof code, "%d", hr_refusal_codes[i]);
        hr_buf_printf(out, "herald_refusals_total{code=\"%s\"} %llu\n",
                      hr_refusal_codes[i] ? code : "other",
                      (unsigned long long)atomic_load(&metrics->refusals[i]));
    }
    head(out, "herald_connections_refused_total", "counter",
         "Connections closed at accept by --max-conns or --max-conns-per-ip.");
    hr_buf_printf(out,
                  "herald_connections_refused_total{reason=\"max_conns\"} %llu\n"
                  "herald_connections_refused_total{reason=\"max_conns_per_ip\"} %llu\n",
                  (unsigned long long)atomic_load(&metrics->conns_refused_max),
                  (unsigned long long)atomic_load(&metrics->conns_refused_ip));
    one(out, "herald_slow_consumer_cuts_total", "counter",
        "Connections cut for queueing more than --max-outbound unsent bytes.",
        (double)atomic_load(&metrics->slow_consumer_cuts));
    one(out, "herald_http_requests_total", "counter", "HTTP requests dispatched.",
        (double)atomic_load(&metrics->requests));
}

static void http2(hr_buf_t *out, hr_metrics_t *metrics)
{
    one(out, "herald_http2_connections_total", "counter", "HTTP/2 connections opened.",
        (double)atomic_load(&metrics->h2_conns));
    one(out, "herald_http2_streams_total", "counter", "Requests received over HTTP/2.",
        (double)atomic_load(&metrics->h2_streams));
    one(out, "herald_http2_client_resets_total", "counter",
        "RST_STREAM frames received (a rapid-reset attack shows here first).",
        (double)atomic_load(&metrics->h2_client_resets));
    one(out, "herald_http2_stream_cuts_total", "counter",
        "Streams reset for holding more than --max-outbound behind a shut window.",
        (double)atomic_load(&metrics->h2_stream_cuts));
    head(out, "herald_http2_goaway_total", "counter",
         "GOAWAY frames sent, by error code (floods, rapid resets, protocol errors, shutdown).");
    for (int i = 0; i < HR_H2_ERRORS; i++)
        hr_buf_printf(out, "herald_http2_goaway_total{error=\"%s\"} %llu\n", hr_h2_error_names[i],
                      (unsigned long long)atomic_load(&metrics->h2_goaways[i]));
}

static void broker(hr_buf_t *out, hr_server_t *server)
{
    hr_broker_stats_t stats;
    hr_broker_stats(server->broker, &stats);
    one(out, "herald_topics", "gauge", "Topics held (with history or subscribers).",
        (double)stats.topics);
    one(out, "herald_subscriptions", "gauge", "Topic subscriptions of live connections.",
        (double)stats.subscriptions);
    one(out, "herald_messages_published_total", "counter", "Messages published (in).",
        (double)stats.messages_in);
    one(out, "herald_deliveries_total", "counter", "Messages handed to subscribers (out).",
        (double)stats.deliveries);
    one(out, "herald_history_bytes", "gauge", "Bytes the topic histories hold.",
        (double)stats.history_bytes);
    one(out, "herald_history_max_bytes", "gauge", "--history-max-bytes (0: no budget).",
        (double)server->config->history_max_bytes);
    one(out, "herald_history_messages", "gauge", "Messages the histories hold.",
        (double)stats.history_messages);
    one(out, "herald_history_evictions_total", "counter",
        "Messages dropped, oldest first, to stay within --history-max-bytes.",
        (double)stats.history_evictions);
    histogram(out, "herald_publish_duration_seconds",
              "A publish request from its dispatch to its answer (the disk or Redis included).",
              &server->metrics.publish);
    histogram(out, "herald_delivery_latency_seconds",
              "A message's creation on this node to its hand-off to a worker's subscribers.",
              hr_broker_fanout(server->broker));
}

static void backends(hr_buf_t *out, hr_server_t *server)
{
    hr_store_t *store = server->store;
    one(out, "herald_store_write_failures_total", "counter", "Failed store writes.",
        (double)store->nfailed);
    one(out, "herald_store_refusing", "gauge",
        "1 while publishes are refused after a failed store write.",
        atomic_load(&store->refuse_until_ms) > hr_clock_unix_ms() ? 1 : 0);
    if (!server->bus) return;
    hr_bus_stats_t bus;
    hr_bus_stats(server->bus, &bus);
    one(out, "herald_redis_up", "gauge", "1 while both Redis connections are up.", bus.up);
    one(out, "herald_redis_connects_total", "counter", "Redis (re)connections.",
        (double)bus.reconnects);
    one(out, "herald_redis_published_total", "counter", "Publishes this node made on Redis.",
        (double)bus.published);
    one(out, "herald_redis_received_total", "counter", "Messages received from Redis.",
        (double)bus.received);
}

/* Numbers the features report as JSON (their /v1/stats parts), named here. */
typedef struct json_metric_s {
    const char *path; /* "key" or "object.key" */
    const char *name;
    const char *type;
    const char *help;
} json_metric_t;

static json_t *json_at(json_t *json, const char *path)
{
    const char *dot = strchr(path, '.');
    if (!dot) return json_object_get(json, path);
    char first[64];
    snprintf(first, sizeof first, "%.*s", (int)(dot - path), path);
    return json_object_get(json_object_get(json, first), dot + 1);
}

/* Each metric of `table` for every (label value, object) of `objects`, or once unlabelled when
 * label is NULL (objects is then the object). Missing numbers are left out. */
static void from_json(hr_buf_t *out, const json_metric_t *table, size_t n, const char *label,
                      json_t *objects)
{
    for (size_t i = 0; i < n; i++) {
        head(out, table[i].name, table[i].type, table[i].help);
        const char *value_label;
        json_t *object;
        if (!label) {
            json_t *number = json_at(objects, table[i].path);
            if (json_is_number(number))
                hr_buf_printf(out, "%s %.17g\n", table[i].name, json_number_value(number));
            continue;
        }
        json_object_foreach(objects, value_label, object)
        {
            json_t *number = json_at(object, table[i].path);
            if (json_is_number(number))
                hr_buf_printf(out, "%s{%s=\"%s\"} %.17g\n", table[i].name, label, value_label,
                              json_number_value(number));
        }
    }
}

static const json_metric_t push_metrics[] = {
    {"devices.live", "herald_push_devices", "gauge", "Device tokens registered."},
    {"devices.removed_stale", "herald_push_devices_removed_stale_total", "counter",
     "Devices removed for not being refreshed within --fcm-token-ttl."},
    {"devices.removed_invalid", "herald_push_devices_removed_invalid_total", "counter",
     "Devices removed because FCM called their token invalid."},
    {"fcm.sent", "herald_fcm_requests_total", "counter", "FCM send requests made."},
    {"fcm.delivered", "herald_fcm_delivered_total", "counter", "Pushes FCM accepted."},
    {"fcm.retried", "herald_fcm_retries_total", "counter", "Pushes retried after 429/5xx."},
    {"fcm.dead", "herald_fcm_dead_letters_total", "counter", "Pushes given up on."},
    {"fcm.queued", "herald_fcm_queued", "gauge", "Pushes waiting or in flight."},
};

static const json_metric_t pool_metrics[] = {
    {"hits", "herald_pool_hits_total", "counter", "Answers served from the pool."},
    {"misses", "herald_pool_misses_total", "counter", "Upstream calls started."},
    {"shared", "herald_pool_shared_total", "counter", "Requests that waited on a call under way."},
    {"fallbacks", "herald_pool_fallbacks_total", "counter",
     "Failed calls answered with a stored answer."},
    {"errors", "herald_pool_errors_total", "counter", "Requests answered with an error."},
    {"upstream.in_flight", "herald_pool_upstream_in_flight", "gauge", "Upstream calls running."},
    {"upstream.waiting", "herald_pool_upstream_waiting", "gauge",
     "Upstream calls waiting for the pool's concurrency."},
    {"members", "herald_pool_answers", "gauge", "Answers stored (embedded store)."},
    {"bytes", "herald_pool_bytes", "gauge", "Bytes stored (embedded store)."},
    {"evictions", "herald_pool_evictions_total", "counter", "Keys evicted by LFU."},
};

static void features(hr_buf_t *out, hr_server_t *server)
{
    hr_presence_stats_t presence;
    hr_presence_stats(server->presence, &presence);
    one(out, "herald_presence_users", "gauge", "Users online on this node.",
        (double)presence.users);
    one(out, "herald_presence_memberships", "gauge", "(topic, user) memberships on this node.",
        (double)presence.memberships);
    if (server->push) {
        json_t *push = hr_push_stats(server->push);
        from_json(out, push_metrics, sizeof push_metrics / sizeof push_metrics[0], NULL, push);
        json_decref(push);
    }
    if (server->pools && hr_pools_count(server->pools)) {
        json_t *pools = hr_pools_stats(server->pools);
        from_json(out, pool_metrics, sizeof pool_metrics / sizeof pool_metrics[0], "pool", pools);
        json_decref(pools);
    }
}

void hr_handle_metrics(hr_exchange_t *ex)
{
    if (hr_api_authorize(ex, HR_ACCESS_ADMIN, NULL, NULL, 0) != 0) return;
    hr_server_t *server = ex->worker->server;
    hr_buf_t out = {0};
    head(&out, "herald_build_info", "gauge", "herald's version.");
    hr_buf_printf(&out, "herald_build_info{version=\"%s\"} 1\n", HR_VERSION);
    head(&out, "herald_start_time_seconds", "gauge", "When this process started, unix time.");
    hr_buf_printf(&out, "herald_start_time_seconds %lld.%03lld\n",
                  (long long)(server->started_ms / 1000), (long long)(server->started_ms % 1000));
    connections(&out, server);
    refusals(&out, &server->metrics);
    http2(&out, &server->metrics);
    broker(&out, server);
    backends(&out, server);
    features(&out, server);
    if (hr_buf_failed(&out))
        hr_respond_error(ex, 503, "out of memory");
    else
        hr_respond(ex, 200, "text/plain; version=0.0.4; charset=utf-8", out.data, out.len, NULL);
    hr_buf_free(&out);
}
