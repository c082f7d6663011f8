/* The process: config, broker, workers, signals. */
#ifndef HR_SERVER_H
#define HR_SERVER_H

#include <stdatomic.h>

#include "core/broker.h"
#include "core/config.h"
#include "core/listen.h"
#include "core/metrics.h"
#include "core/worker.h"

/* An address herald listens on: claimed once by the process, bound by every worker. */
typedef struct hr_listener_s {
    char host[256];
    int port;                /* bound: a port of 0 is resolved at the claim */
    int tls;                 /* a --tls-listen address */
    hr_listen_claim_t claim; /* this process's hold on it */
} hr_listener_t;

struct hr_server_s {
    const hr_config_t *config;
    hr_broker_t *broker;
    hr_store_t *store;                          /* memory or SQLite; the broker appends to it */
    struct hr_bus_s *bus;                       /* cluster mode (--redis), else NULL */
    struct hr_ratelimit_s *publish_limit;       /* --publish-rate per client IP, else NULL */
    struct hr_ipcount_s *conns_by_ip;           /* --max-conns-per-ip, else NULL */
    struct hr_auth_s *auth;                     /* tokens and the access policy (src/auth) */
    struct hr_presence_s *presence;             /* who is online (src/presence) */
    struct hr_presence_local_s *presence_local; /* its one-process sink, else NULL */
    struct hr_presence_redis_s *presence_redis; /* its cluster sink, else NULL */
    struct hr_ratelimit_s *signal_limit;        /* --signal-rate per sending user */
    struct hr_push_s *push;                     /* devices and FCM (src/push) */
    struct hr_delayed_s *delayed; /* delayed messages (src/delay); NULL in cluster mode */
    struct hr_delayed_redis_s *delayed_redis; /* cluster mode: the schedule in Redis */
    struct hr_pools_s *pools;                 /* response pools (src/pool) */
    atomic_size_t conns_total;                /* open connections, every worker */
    hr_metrics_t metrics;                     /* GET /metrics (api/metrics.c) */
    hr_worker_t *workers;                     /* config->workers of them */
    unsigned nworkers;
    struct hr_tls_s *tls; /* --tls-listen: the certificate and settings, else NULL */
    hr_listener_t listeners[2 * HR_MAX_LISTENERS]; /* every --listen, then every --tls-listen */
    unsigned nlisteners;
    int64_t started_ms; /* unix ms */
};

/* Runs until SIGTERM or SIGINT, then shuts down gracefully. Returns the process exit code. */
int hr_server_run(const hr_config_t *config);

#endif
