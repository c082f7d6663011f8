/* Configuration: one table of options, each settable by CLI flag (--history-size 500) or
 * environment (HERALD_HISTORY_SIZE=500); the flag wins. `herald --help` prints the table. */
#ifndef HR_CONFIG_H
#define HR_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "core/log.h"
#include "store/store.h"

#define HR_MAX_CORS_ORIGINS 32
#define HR_MAX_JWT_KEYS     16 /* --jwt-key, repeatable */
#define HR_MAX_PUBLIC       64 /* --public-topics, repeatable */
#define HR_MAX_FCM_POLICIES 32 /* --fcm-policy, repeatable */
#define HR_MAX_POOLS        16 /* --pool, repeatable */
#define HR_MAX_LISTENERS    8  /* --listen and --tls-listen, repeatable, each */

enum hr_auth_mode { HR_AUTH_OFF, HR_AUTH_PUBLISH, HR_AUTH_ALL };
enum hr_io_uring { HR_IO_URING_OFF, HR_IO_URING_AUTO, HR_IO_URING_ON };

typedef struct hr_config_s {
    char listen[HR_MAX_LISTENERS][300]; /* every --listen, HOST:PORT (0 picks a free port) */
    size_t nlisten;
    int listen_defaulted;     /* listen[0] is the default, which the first --listen replaces */
    unsigned workers;         /* event-loop threads */
    size_t history_size;      /* messages kept per topic */
    int64_t history_ttl_ms;   /* max age of kept messages; 0 = none */
    size_t history_max_bytes; /* all histories together (auto: min(RAM/4, 512 MiB)); 0 = none */
    size_t history_topic_max_bytes; /* one topic's history; a bigger publish is 413; 0 = none */
    int64_t heartbeat_ms;           /* SSE comment interval */
    uint32_t sse_retry_ms;          /* retry: sent when a stream opens; 0 = none */
    size_t max_body_bytes;          /* request body limit */
    size_t max_header_bytes;        /* request line + headers limit */
    size_t max_outbound_bytes;      /* unsent bytes per connection before it is cut */
    size_t max_topics_per_sub;      /* topics in one subscribe */
    int64_t shutdown_grace_ms;      /* time given to flush on SIGTERM before closing */
    int64_t idle_timeout_ms;     /* a non-streaming connection with no input this long is closed */
    int64_t request_timeout_ms;  /* a started request must be complete within this */
    size_t ws_max_message_bytes; /* WebSocket message limit (after decompression) */
    unsigned ws_deflate;         /* accept permessage-deflate */
    size_t ws_deflate_min_bytes; /* smaller messages are sent uncompressed */
    unsigned poll_timeout_s;     /* long poll wait when ?timeout= is absent */
    unsigned poll_timeout_max_s; /* largest ?timeout= accepted */
    char data_dir[1024];         /* SQLite store directory; "" = memory only */
    enum hr_durability durability;
    int64_t batch_ms;         /* batch mode: longest wait to gather a commit */
    size_t data_max_bytes;    /* database size limit; 0 = none */
    size_t topic_limit;       /* topics held at once; 0 = no limit */
    size_t max_conns;         /* open connections in all; 0 = no limit */
    size_t max_conns_per_ip;  /* per client IP; 0 = no limit */
    unsigned publish_rate;    /* per client IP per second; 0 = no limit */
    unsigned publish_burst;   /* bucket size */
    char redis_url[1024];     /* cluster mode; "" = single node */
    char redis_prefix[1024];  /* Redis key and channel prefix */
    int64_t redis_timeout_ms; /* Redis silent this long while a command waits: 503, reconnect */
    char cors_origins[HR_MAX_CORS_ORIGINS][256]; /* allowed Origins; "*" allows any */
    size_t ncors_origins;
    enum hr_log_level log_level;
    /* Auth (docs/AUTH.md). */
    enum hr_auth_mode auth_mode;          /* who needs a token */
    char jwt_keys[HR_MAX_JWT_KEYS][1024]; /* [KID=]hs256:SECRET | env:NAME | PEM path */
    size_t njwt_keys;
    char jwt_issuer[256];                   /* required iss; "" = any */
    char jwt_audience[256];                 /* required among aud; "" = any */
    char auth_cookie[64];                   /* cookie that may carry the token */
    int64_t jwt_leeway_s;                   /* clock skew allowed on exp and nbf, s */
    unsigned auth_timeout_s;                /* --auth all: a WebSocket's first token within */
    char public_topics[HR_MAX_PUBLIC][257]; /* patterns subscribable without a token */
    size_t npublic_topics;
    char admin_key[1024]; /* a key, or env:NAME; "" = none */
    /* Presence and signaling (docs/PRESENCE.md). */
    unsigned presence_anonymous;   /* ?user= names a connection without a token (dev only) */
    int64_t presence_grace_ms;     /* a user's last connection may come back this long */
    int64_t last_seen_interval_ms; /* an online user's last-seen is written at most this often */
    int64_t presence_lease_ms;     /* cluster: a node silent this long has its users offline */
    unsigned signal_rate;          /* signals a second per sender (token bucket) */
    size_t signal_max_bytes;       /* a signal's payload */
    /* Push through FCM (docs/PUSH.md). */
    char fcm_credentials[1024];                  /* service-account JSON; "" = no FCM */
    char fcm_endpoint[512];                      /* FCM base URL */
    char fcm_default[16];                        /* never, offline, always */
    char fcm_policies[HR_MAX_FCM_POLICIES][272]; /* PATTERN=MODE */
    size_t nfcm_policies;
    unsigned fcm_retries;
    unsigned fcm_concurrency;
    int64_t fcm_backoff_ms;
    int64_t fcm_timeout_ms;
    int64_t fcm_token_ttl_ms;       /* a device not refreshed this long is removed */
    size_t fcm_max_devices;         /* devices in all */
    size_t fcm_max_device_bytes;    /* and their bytes */
    size_t delayed_max;             /* delayed messages held at once */
    size_t delayed_max_bytes;       /* and their bytes */
    char pools[HR_MAX_POOLS][2048]; /* NAME=URL[,option...] (src/pool) */
    size_t npools;
    size_t pool_max_bytes;  /* the embedded pool store's budget */
    size_t pool_max_answer; /* one upstream answer's limit */
    unsigned access_log;    /* a log line per request and per ended stream */
    char config_path[1024]; /* --config FILE, read before the environment and the flags */
    char tls_listen[HR_MAX_LISTENERS][300]; /* every --tls-listen, HOST:PORT */
    size_t ntls_listen;
    char tls_cert[1024];       /* PEM certificate chain */
    char tls_key[1024];        /* PEM private key */
    unsigned http2;            /* ALPN h2 and prior-knowledge h2c (1) or HTTP/1.1 only (0) */
    int64_t write_delay_ms;    /* deliveries wait this long to share writes; 0 = send at once */
    enum hr_io_uring io_uring; /* batched sends: off, if the kernel allows (auto), or required */
    unsigned h2_max_streams;   /* SETTINGS_MAX_CONCURRENT_STREAMS */
} hr_config_t;

/* Splits HOST:PORT (or [v6]:PORT). Returns 0 or -1. */
int hr_config_host_port(const char *text, char *host, size_t host_size, int *port);

/* Returns 0 to run, 1 when --help/--version was printed, -1 on a bad option (message printed). */
int hr_config_load(hr_config_t *config, int argc, char **argv);

/* Returns the Origin to echo in Access-Control-Allow-Origin, or NULL when not allowed. */
const char *hr_config_cors_allow(const hr_config_t *config, const char *origin, size_t len);

#endif
