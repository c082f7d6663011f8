/* The composition root (docs/ARCHITECTURE.md): builds every module, hands the workers their
 * front end, waits for a signal, and unwinds it all on one cleanup path. */
#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "auth/auth.h"
#include "bus/bus.h"
#include "core/ipcount.h"
#include "core/log.h"
#include "core/ratelimit.h"
#include "core/server.h"
#include "core/tls.h"
#include "core/version.h"
#include "http/front.h"
#include "presence/presence_sinks.h"
#include "delay/delayed.h"
#include "delay/delayed_redis.h"
#include "pool/pool.h"
#include "push/push.h"

static void on_signal(uv_signal_t *handle, int signum)
{
    hr_server_t *server = handle->data;
    hr_info("server.stopping", "signal=%s", signum == SIGINT ? "SIGINT" : "SIGTERM");
    for (unsigned w = 0; w < server->nworkers; w++)
        hr_worker_stop(&server->workers[w]);
    uv_stop(handle->loop);
}

static int start_workers(hr_server_t *server)
{
    for (unsigned w = 0; w < server->nworkers; w++) {
        int rc = hr_worker_init(&server->workers[w], server, w, server->config, server->broker);
        server->workers[w].front = &hr_http_front; /* HTTP/1.1 or HTTP/2, by the first bytes */
        if (rc != 0) {
            hr_error("server.worker_failed", "worker=%u err=\"%s\"", w, uv_strerror(rc));
            return rc;
        }
    }
    for (unsigned w = 0; w < server->nworkers; w++)
        hr_worker_start(&server->workers[w]);
    return 0;
}

static void wake_durable_waiters(void *arg)
{
    hr_server_t *server = arg;
    for (unsigned w = 0; w < server->nworkers; w++)
        hr_worker_durable_moved(&server->workers[w]);
}

static int sink_topic(void *arg, const char *name, size_t len, uint64_t floor_id)
{
    return hr_broker_restore_topic(arg, name, len, floor_id);
}

static int sink_message(void *arg, hr_msg_t *msg)
{
    return hr_broker_restore_msg(arg, msg);
}

/* Opens the store --data-dir names and refills the broker's histories from it. */
static int open_store(hr_server_t *server)
{
    const hr_config_t *config = server->config;
    hr_store_config_t store_config = {config->data_dir,       config->durability,
                                      config->batch_ms,       config->history_size,
                                      config->history_ttl_ms, config->data_max_bytes};
    char err[1024] = "";
    server->store = hr_store_open(&store_config, err, sizeof err);
    if (!server->store) {
        hr_error("store.open_failed", "data_dir=\"%s\" reason=\"%s\"", config->data_dir, err);
        return -1;
    }
    return 0;
}

static int load_store(hr_server_t *server)
{
    hr_store_sink_t sink = {sink_topic, sink_message, server->broker};
    if (server->store->ops->load(server->store, server->config->history_size, &sink) != 0 ||
        server->store->ops->start(server->store) != 0) {
        hr_error("store.load_failed", "data_dir=\"%s\"", server->config->data_dir);
        return -1;
    }
    server->store->notify_arg = server;
    server->store->notify = wake_durable_waiters;
    return 0;
}

/* Cluster mode (--redis): the bus, configured; its thread starts (and connects) in start_bus.
 * Until Redis answers, publishes get 503 and /healthz says degraded. */
static int open_bus(hr_server_t *server)
{
    const hr_config_t *config = server->config;
    if (!config->redis_url[0]) return 0;
    hr_bus_config_t bus_config = {config->redis_url,    config->redis_prefix,
                                  config->history_size, config->history_ttl_ms,
                                  config->workers,      config->redis_timeout_ms};
    char err[256] = "";
    server->bus = hr_bus_new(&bus_config, server->broker, err, sizeof err);
    if (!server->bus) {
        hr_error("redis.config_failed", "url=\"%s\" reason=\"%s\"", config->redis_url, err);
        return -1;
    }
    return 0;
}

/* Devices (loaded from the store) and, with --fcm-credentials, the FCM client's thread. */
static int open_push(hr_server_t *server)
{
    char err[512] = "";
    const hr_config_t *config = server->config;
    if (server->bus) { /* the schedule lives in Redis, shared by every node */
        if (!(server->delayed_redis = hr_delayed_redis_new(server->bus, config))) {
            hr_error("delayed.start_failed", "reason=\"out of memory\"");
            return -1;
        }
    } else {
        server->delayed =
            hr_delayed_new(server->store, config->delayed_max, config->delayed_max_bytes);
        if (!server->delayed || hr_delayed_load(server->delayed) != 0) {
            hr_error("delayed.start_failed", "reason=\"cannot load the schedule\"");
            return -1;
        }
    }
    server->push = hr_push_new(config, server->store, server->presence, err, sizeof err);
    if (server->push && server->bus && hr_push_use_redis(server->push, server->bus) != 0) {
        snprintf(err, sizeof err, "out of memory");
        hr_push_free(server->push);
        server->push = NULL;
    }
    if (!server->push || hr_push_start(server->push) != 0) {
        hr_error("push.start_failed", "reason=\"%s\"", err[0] ? err : "thread");
        fprintf(stderr, "herald: %s\n", err[0] ? err : "cannot start the FCM client");
        return -1;
    }
    return 0;
}

/* Response pools: a bad --pool stops the start; their upstream thread when any is set. */
static int open_pools(hr_server_t *server)
{
    char err[512] = "";
    const hr_config_t *config = server->config;
    if ((server->pools = hr_pools_new(config, server->broker, server->bus, err, sizeof err)) &&
        hr_pools_start(server->pools) != 0) {
        snprintf(err, sizeof err, "cannot start the upstream thread");
    } else if (server->pools && hr_pools_persist(server->pools, server->store) != 0) {
        snprintf(err, sizeof err, "cannot load the saved answers");
    }
    if (!err[0]) return 0;
    hr_error("pool.start_failed", "reason=\"%s\"", err);
    fprintf(stderr, "herald: %s\n", err);
    return -1;
}

/* After presence registered its scripts and its hook with the bus. */
static int start_bus(hr_server_t *server)
{
    if (!server->bus || hr_bus_start(server->bus) == 0) return 0;
    hr_error("redis.start_failed", "reason=\"thread\"");
    return -1;
}

/* Claims one address for this process (a port of 0 becomes a free one). */
static int claim_one(hr_server_t *server, const char *address, int tls)
{
    hr_listener_t *listener = &server->listeners[server->nlisteners];
    listener->claim.lock_fd = -1;
    listener->tls = tls;
    hr_config_host_port(address, listener->host, sizeof listener->host, &listener->port);
    int rc = hr_listen_claim(listener->host, &listener->port, &listener->claim);
    if (rc != 0) {
        hr_error("server.listen_failed", "listen=%s err=\"%s\"", address, uv_strerror(rc));
        fprintf(stderr, "herald: cannot listen on %s: %s\n", address, uv_strerror(rc));
        return -1;
    }
    server->nlisteners++;
    return 0;
}

/* The first thing: a second herald on a taken port must not touch the store or Redis. Every
 * --listen, then every --tls-listen (whose certificate is read now too, so a bad file stops
 * herald at start). */
static int claim_addresses(hr_server_t *server)
{
    const hr_config_t *config = server->config;
    for (size_t i = 0; i < config->nlisten; i++)
        if (claim_one(server, config->listen[i], 0) != 0) return -1;
    if (!config->ntls_listen) return 0;
    char err[512];
    const char *alpn = config->http2 ? "\x02h2\x08http/1.1" : "\x08http/1.1";
    if (!(server->tls = hr_tls_new(config->tls_cert, config->tls_key, alpn, err, sizeof err))) {
        hr_error("tls.config_failed", "reason=\"%s\"", err);
        fprintf(stderr, "herald: --tls-cert/--tls-key: %s\n", err);
        return -1;
    }
    for (size_t i = 0; i < config->ntls_listen; i++)
        if (claim_one(server, config->tls_listen[i], 1) != 0) return -1;
    return 0;
}

/* SIGHUP: the certificate and key are read again; open connections keep theirs. */
static void on_sighup(uv_signal_t *handle, int signum)
{
    (void)signum;
    hr_server_t *server = handle->data;
    char err[512];
    if (!server->tls) return;
    if (hr_tls_reload(server->tls, err, sizeof err) == 0)
        hr_info("tls.reloaded", "cert=%s", server->config->tls_cert);
    else
        hr_error("tls.reload_failed", "reason=\"%s\" note=\"the old certificate stays\"", err);
}

/* The access policy: keys read and patterns checked now, so a bad flag stops herald at start. */
static int open_auth(hr_server_t *server)
{
    const hr_config_t *config = server->config;
    char err[512];
    server->auth = hr_auth_new(config, err, sizeof err);
    if (!server->auth) {
        hr_error("auth.config_failed", "reason=\"%s\"", err);
        fprintf(stderr, "herald: %s\n", err);
        return -1;
    }
    for (unsigned i = 0; i < server->nlisteners && config->auth_mode == HR_AUTH_OFF; i++) {
        const char *host = server->listeners[i].host;
        if (strcmp(host, "127.0.0.1") != 0 && strcmp(host, "::1") != 0 &&
            strcmp(host, "localhost") != 0)
            hr_warn("auth.off",
                    "listen=%s reason=\"anyone who can reach this address may publish; "
                    "see --auth\"",
                    host);
    }
    return 0;
}

/* The per-process limiters; NULL where their option is off. */
static int open_limits(hr_server_t *server)
{
    const hr_config_t *config = server->config;
    atomic_init(&server->conns_total, 0);
    if (config->max_conns_per_ip && !(server->conns_by_ip = hr_ipcount_new())) goto oom;
    if (config->publish_rate > 0 &&
        !(server->publish_limit =
              hr_ratelimit_new((double)config->publish_rate, (double)config->publish_burst)))
        goto oom;
    return 0;
oom:
    hr_error("server.start_failed", "reason=\"out of memory\"");
    return -1;
}

/* Presence: in one process its joins and leaves go through this broker and its last-seen to
 * the store; in cluster mode Redis keeps both (presence_redis.c). */
static int open_presence(hr_server_t *server)
{
    const hr_config_t *config = server->config;
    server->signal_limit =
        hr_ratelimit_new((double)config->signal_rate, 2.0 * (double)config->signal_rate);
    if (!server->signal_limit) goto oom;
    if (server->bus) {
        server->presence_redis = hr_presence_redis_new(server->bus, config, &server->presence);
        if (!server->presence_redis) goto oom;
        return 0;
    }
    server->presence_local = calloc(1, sizeof *server->presence_local);
    if (!server->presence_local) goto oom;
    *server->presence_local = (hr_presence_local_t){server->broker, server->store};
    server->presence = hr_presence_local_new(server->presence_local, config);
    if (!server->presence) goto oom;
    return 0;
oom:
    hr_error("server.start_failed", "reason=\"out of memory\" what=presence");
    return -1;
}

/* Starts the workers and waits on the main thread's own loop, which only takes signals, until
 * SIGTERM or SIGINT; then joins the workers. Returns 0, or the error that kept them from
 * starting. */
static int serve(hr_server_t *server)
{
    const hr_config_t *config = server->config;
    uv_loop_t main_loop;
    uv_loop_init(&main_loop);
    uv_signal_t sigterm, sigint, sighup;
    uv_signal_init(&main_loop, &sigterm);
    uv_signal_init(&main_loop, &sigint);
    uv_signal_init(&main_loop, &sighup);
    sigterm.data = sigint.data = sighup.data = server;
    uv_signal_start(&sigterm, on_signal, SIGTERM);
    uv_signal_start(&sigint, on_signal, SIGINT);
    uv_signal_start(&sighup, on_sighup, SIGHUP);

    int rc = start_workers(server);
    if (rc == 0) {
        static const char *const modes[] = {"off", "batch", "sync"};
        hr_info("server.listening",
                "addr=%s:%d workers=%u history_size=%zu history_ttl_ms=%lld history_max_bytes=%zu "
                "store=%s durability=%s version=%s",
                server->listeners[0].host, server->listeners[0].port, config->workers,
                config->history_size, (long long)config->history_ttl_ms, config->history_max_bytes,
                server->bus ? "redis" : server->store->ops->name,
                hr_store_waits(server->store) ? modes[config->durability] : "none", HR_VERSION);
        for (unsigned i = 0; i < server->nlisteners; i++) /* the first plain one is above */
            if (server->listeners[i].tls || i > 0)
                hr_info(server->listeners[i].tls ? "server.tls" : "server.listen", "addr=%s:%d",
                        server->listeners[i].host, server->listeners[i].port);
        uv_run(&main_loop, UV_RUN_DEFAULT);
    } else {
        for (unsigned w = 0; w < server->nworkers; w++)
            if (server->workers[w].thread) hr_worker_stop(&server->workers[w]);
    }
    for (unsigned w = 0; w < server->nworkers; w++)
        if (server->workers[w].thread) hr_worker_join(&server->workers[w]);
    uv_close((uv_handle_t *)&sigterm, NULL);
    uv_close((uv_handle_t *)&sigint, NULL);
    uv_close((uv_handle_t *)&sighup, NULL);
    uv_run(&main_loop, UV_RUN_DEFAULT);
    uv_loop_close(&main_loop);
    return rc;
}

int hr_server_run(const hr_config_t *config)
{
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT); /* once, before any thread: FCM and the pools */
    hr_server_t server = {.config = config, .nworkers = config->workers};
    int rc = -1;
    if (claim_addresses(&server) != 0) goto release;
    if (open_auth(&server) != 0 || open_store(&server) != 0) goto release;
    hr_broker_config_t broker_config = {config->workers,
                                        config->history_size,
                                        config->history_ttl_ms,
                                        server.store,
                                        config->topic_limit,
                                        config->history_max_bytes,
                                        config->history_topic_max_bytes};
    server.started_ms = hr_clock_unix_ms();
    server.broker = hr_broker_new(&broker_config);
    server.workers = calloc(config->workers, sizeof *server.workers);
    if (!server.broker || !server.workers) {
        hr_error("server.start_failed", "reason=\"out of memory\"");
        goto close;
    }
    if (load_store(&server) != 0 || open_limits(&server) != 0 || open_bus(&server) != 0 ||
        open_presence(&server) != 0 || open_push(&server) != 0 || open_pools(&server) != 0 ||
        start_bus(&server) != 0)
        goto close;
    rc = serve(&server);
    hr_presence_redis_stop(server.presence_redis); /* this node's users go offline now */
close:
    hr_bus_free(server.bus);     /* after the workers: they hand it publishes */
    hr_push_free(server.push);   /* pushes in flight are abandoned */
    hr_pools_free(server.pools); /* upstream calls in flight too */
    hr_delayed_free(server.delayed);
    hr_delayed_redis_free(server.delayed_redis);
    server.store->ops->close(server.store); /* writes what is queued; holds message refs */
    for (unsigned w = 0; server.workers && w < server.nworkers; w++)
        if (server.workers[w].id == w && server.workers[w].server)
            hr_worker_free(&server.workers[w]);
    hr_presence_free(server.presence);
    hr_presence_redis_free(server.presence_redis);
    free(server.presence_local);
    hr_broker_free(server.broker);
    hr_ratelimit_free(server.publish_limit);
    hr_ratelimit_free(server.signal_limit);
    hr_ipcount_free(server.conns_by_ip);
    free(server.workers);
release:
    hr_auth_free(server.auth);
    for (unsigned i = 0; i < server.nlisteners; i++)
        hr_listen_release(&server.listeners[i].claim);
    hr_tls_free(server.tls);
    curl_global_cleanup();
    if (rc == 0) hr_info("server.stopped", "workers=%u", config->workers);
    return rc == 0 ? 0 : 1;
}
