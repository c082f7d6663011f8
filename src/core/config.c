/* Option table, parsing and validation. Every option is a (flag, env, default, help) row so
 * --help, the environment and the README can never disagree. */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"
#include "core/timeq.h"
#include "core/version.h"

enum opt_kind {
    OPT_LISTEN,
    OPT_UINT,
    OPT_SIZE,
    OPT_SIZE_AUTO, /* a size, or "auto" (resolved after loading) */
    OPT_MS,
    OPT_UINT64, /* an int64_t that is not a duration in ms */
    OPT_CORS,
    OPT_LOG,
    OPT_PATH,
    OPT_AUTH,
    OPT_REPEAT, /* repeatable string: each use adds one (jwt-key, public-topics) */
    OPT_DURABILITY,
    OPT_IO_URING,
    OPT_CONFIG /* --config: read first (read_file), then ignored */
};

typedef struct option_row_s {
    const char *flag;
    enum opt_kind kind;
    const char *fallback; /* default, as text */
    const char *help;
    size_t offset;     /* field in hr_config_t */
    uint64_t min, max; /* numeric range */
} option_row_t;

#define FIELD(f)     offsetof(hr_config_t, f)
#define HR_SIZE_AUTO SIZE_MAX

/* The default history budget: a quarter of physical memory, at most 512 MiB, so a default
 * herald on a small machine is not talked into swapping by anonymous publishers. */
static size_t auto_history_budget(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    size_t cap = (size_t)512 << 20;
    if (pages <= 0 || page <= 0) return cap;
    size_t quarter = (size_t)pages / 4 * (size_t)page;
    return quarter < cap ? quarter : cap;
}

static const option_row_t options[] = {
    {"config", OPT_CONFIG, "",
     "FILE of `name = value` lines (the flags' names; # comments); the environment and flags "
     "win over it, repeatable options add up",
     FIELD(config_path), 0, 0},
    {"listen", OPT_LISTEN, "127.0.0.1:8080",
     "HOST:PORT to listen on (PORT 0 picks a free one); repeatable", FIELD(listen), 0, 0},
    {"tls-listen", OPT_LISTEN, "",
     "HOST:PORT for HTTPS (TLS 1.2+, needs --tls-cert and --tls-key); repeatable",
     FIELD(tls_listen), 0, 0},
    {"tls-cert", OPT_PATH, "", "PEM certificate chain for --tls-listen (SIGHUP reloads it)",
     FIELD(tls_cert), 0, 0},
    {"tls-key", OPT_PATH, "", "PEM private key for --tls-cert", FIELD(tls_key), 0, 0},
    {"http2", OPT_UINT, "1",
     "HTTP/2: ALPN h2 on --tls-listen and prior-knowledge h2c on --listen (1), or HTTP/1.1 "
     "only (0)",
     FIELD(http2), 0, 1},
    {"h2-max-streams", OPT_UINT, "128",
     "concurrent streams per HTTP/2 connection (SETTINGS_MAX_CONCURRENT_STREAMS)",
     FIELD(h2_max_streams), 1, 1000},
    {"workers", OPT_UINT, "0", "event-loop threads; 0 = one per core", FIELD(workers), 0, 256},
    {"history-size", OPT_SIZE, "1000", "messages kept per topic for resume", FIELD(history_size), 0,
     10000000},
    {"history-ttl", OPT_MS, "3600000", "max age of kept messages, ms (0 = no limit)",
     FIELD(history_ttl_ms), 0, 365ull * 86400000},
    {"history-max-bytes", OPT_SIZE_AUTO, "auto",
     "bytes all histories may hold; the oldest messages across topics go first "
     "(auto = min(RAM/4, 512 MiB); 0 = no budget)",
     FIELD(history_max_bytes), 0, 1ull << 50},
    {"history-topic-max-bytes", OPT_SIZE, "16777216",
     "bytes one topic's history may hold; a larger publish gets 413 (0 = no cap)",
     FIELD(history_topic_max_bytes), 0, 1ull << 50},
    {"heartbeat", OPT_MS, "15000", "SSE comment heartbeat interval, ms", FIELD(heartbeat_ms), 100,
     3600000},
    {"sse-retry", OPT_UINT, "2000", "SSE retry: hint sent on stream open, ms (0 = none)",
     FIELD(sse_retry_ms), 0, 3600000},
    {"max-body", OPT_SIZE, "1048576", "request body limit, bytes", FIELD(max_body_bytes), 1,
     1ull << 30},
    {"max-header", OPT_SIZE, "16384", "request line + headers limit, bytes",
     FIELD(max_header_bytes), 1024, 1 << 20},
    {"max-outbound", OPT_SIZE, "1048576",
     "unsent bytes a connection may queue before it is cut (slow consumer)",
     FIELD(max_outbound_bytes), 4096, 1ull << 32},
    {"write-delay", OPT_MS, "0",
     "deliveries wait up to this long to share a write with the next messages, ms (0 = send "
     "at once; fewer system calls per delivery for that much latency)",
     FIELD(write_delay_ms), 0, 100},
    {"io-uring", OPT_IO_URING, "auto",
     "send what a loop pass gathered for many connections with one io_uring_enter: auto (if "
     "the kernel allows it), on (required) or off (one writev per connection)",
     FIELD(io_uring), 0, 0},
    {"max-topics", OPT_SIZE, "64", "topics in one subscription", FIELD(max_topics_per_sub), 1,
     100000},
    {"shutdown-grace", OPT_MS, "5000", "time to flush on SIGTERM before closing, ms",
     FIELD(shutdown_grace_ms), 0, 600000},
    {"idle-timeout", OPT_MS, "60000",
     "close a non-streaming connection after this long without input, ms", FIELD(idle_timeout_ms),
     1000, 3600000},
    {"request-timeout", OPT_MS, "10000",
     "a request's head and body must arrive within this, ms (408 after; slowloris)",
     FIELD(request_timeout_ms), 100, 3600000},
    {"ws-max-message", OPT_SIZE, "2097152", "WebSocket message limit, bytes (1009 above)",
     FIELD(ws_max_message_bytes), 125, 1ull << 30},
    {"ws-deflate", OPT_UINT, "1", "accept permessage-deflate (1) or not (0)", FIELD(ws_deflate), 0,
     1},
    {"ws-deflate-min", OPT_SIZE, "256", "send WebSocket messages smaller than this uncompressed",
     FIELD(ws_deflate_min_bytes), 0, 1ull << 30},
    {"poll-timeout", OPT_UINT, "25", "long-poll wait when ?timeout= is absent, s",
     FIELD(poll_timeout_s), 1, HR_TIMEQ_MAX_S},
    {"poll-timeout-max", OPT_UINT, "120", "largest long-poll ?timeout= accepted, s",
     FIELD(poll_timeout_max_s), 1, HR_TIMEQ_MAX_S},
    {"data-dir", OPT_PATH, "", "directory for the SQLite store; empty = memory only",
     FIELD(data_dir), 0, 0},
    {"durability", OPT_DURABILITY, "sync",
     "with --data-dir: sync, batch or off (when a publish is answered)", FIELD(durability), 0, 0},
    {"batch-ms", OPT_MS, "5", "batch durability: longest wait to gather a group commit, ms",
     FIELD(batch_ms), 1, 1000},
    {"data-max-bytes", OPT_SIZE, "0", "database size limit, bytes (0 = none; 507 above)",
     FIELD(data_max_bytes), 0, 1ull << 50},
    {"topic-limit", OPT_SIZE, "0",
     "topics held at once (with history or subscribers); 0 = no limit (503 for new ones)",
     FIELD(topic_limit), 0, 100000000},
    {"max-conns", OPT_SIZE, "0", "open connections in all; 0 = no limit (503 and close above)",
     FIELD(max_conns), 0, 10000000},
    {"max-conns-per-ip", OPT_SIZE, "0",
     "open connections per client IP; 0 = no limit (503 and close above)", FIELD(max_conns_per_ip),
     0, 10000000},
    {"publish-rate", OPT_UINT, "0",
     "publishes a second per client IP (token bucket; 429 above); 0 = no limit",
     FIELD(publish_rate), 0, 1000000},
    {"publish-burst", OPT_UINT, "0", "publishes an IP may make at once; 0 = --publish-rate",
     FIELD(publish_burst), 0, 1000000},
    {"redis", OPT_PATH, "",
     "cluster mode: redis://[:password@]host[:port][/db] or unix:///path (empty = single node)",
     FIELD(redis_url), 0, 0},
    {"redis-prefix", OPT_PATH, "herald", "cluster mode: prefix of every Redis key and channel",
     FIELD(redis_prefix), 0, 0},
    {"redis-timeout", OPT_MS, "2000",
     "cluster mode: Redis silent this long while a command waits: publishes get 503, reconnect, ms",
     FIELD(redis_timeout_ms), 100, 600000},
    {"cors-origins", OPT_CORS, "", "comma-separated allowed Origins, or *", FIELD(cors_origins), 0,
     0},
    {"log-level", OPT_LOG, "info", "debug, info, warn or error", FIELD(log_level), 0, 0},
    {"access-log", OPT_UINT, "0",
     "1: one http.access line per request and per ended stream (method, path, status, bytes, "
     "duration)",
     FIELD(access_log), 0, 1},
    {"auth", OPT_AUTH, "off",
     "off, publish (publishing needs a token) or all (subscribing too); docs/AUTH.md",
     FIELD(auth_mode), 0, 0},
    {"jwt-key", OPT_REPEAT, "",
     "[KID=]hs256:SECRET, env:NAME or a PEM public key file (RS256, ES256); repeatable",
     FIELD(jwt_keys), HR_MAX_JWT_KEYS, sizeof(((hr_config_t *)0)->jwt_keys[0])},
    {"jwt-issuer", OPT_PATH, "", "tokens must carry this iss (empty = any)", FIELD(jwt_issuer), 0,
     sizeof(((hr_config_t *)0)->jwt_issuer)},
    {"jwt-audience", OPT_PATH, "", "tokens must list this aud (empty = any)", FIELD(jwt_audience),
     0, sizeof(((hr_config_t *)0)->jwt_audience)},
    {"jwt-leeway", OPT_UINT64, "30", "clock skew allowed on a token's exp and nbf, s",
     FIELD(jwt_leeway_s), 0, 300},
    {"auth-timeout", OPT_UINT, "5",
     "with --auth all: a WebSocket without a token must send one within this, s (close 4001)",
     FIELD(auth_timeout_s), 1, 300},
    {"auth-cookie", OPT_PATH, "herald_token", "cookie that may carry the token (EventSource)",
     FIELD(auth_cookie), 0, sizeof(((hr_config_t *)0)->auth_cookie)},
    {"public-topics", OPT_REPEAT, "",
     "with --auth all: a topic pattern anyone may subscribe to; repeatable", FIELD(public_topics),
     HR_MAX_PUBLIC, sizeof(((hr_config_t *)0)->public_topics[0])},
    {"admin-key", OPT_PATH, "",
     "key for /v1/stats and kicks (Authorization: Bearer KEY), or env:NAME; empty = none",
     FIELD(admin_key), 0, sizeof(((hr_config_t *)0)->admin_key)},
    {"presence-anonymous", OPT_UINT, "0",
     "1: a connection without a token may name its user with ?user= (development only)",
     FIELD(presence_anonymous), 0, 1},
    {"presence-grace", OPT_MS, "5000",
     "a user whose last connection drops and returns within this makes no leave/join, ms",
     FIELD(presence_grace_ms), 0, 3600000},
    {"last-seen-interval", OPT_MS, "30000",
     "an online user's last-seen is stored at most this often (and on leaving), ms",
     FIELD(last_seen_interval_ms), 1000, 86400000},
    {"presence-lease", OPT_MS, "15000",
     "cluster: a node that stops renewing its lease this long has its users shown offline, ms",
     FIELD(presence_lease_ms), 4000, 3600000},
    {"signal-rate", OPT_UINT, "20", "WebRTC signals a second per sending user (burst 2x; 429)",
     FIELD(signal_rate), 1, 100000},
    {"signal-max", OPT_SIZE, "65536", "a WebRTC signal's payload limit, bytes (413 above)",
     FIELD(signal_max_bytes), 64, 1 << 20},
    {"fcm-credentials", OPT_PATH, "",
     "Google service-account JSON for FCM HTTP v1 pushes (empty = no pushes); docs/PUSH.md",
     FIELD(fcm_credentials), 0, sizeof(((hr_config_t *)0)->fcm_credentials)},
    {"fcm-endpoint", OPT_PATH, "https://fcm.googleapis.com", "FCM base URL (tests: a local fake)",
     FIELD(fcm_endpoint), 0, sizeof(((hr_config_t *)0)->fcm_endpoint)},
    {"fcm-default", OPT_PATH, "offline",
     "push policy of a publish that names none: never, offline (users without a connection) or "
     "always",
     FIELD(fcm_default), 0, sizeof(((hr_config_t *)0)->fcm_default)},
    {"fcm-policy", OPT_REPEAT, "", "PATTERN=never|offline|always for matching topics; repeatable",
     FIELD(fcm_policies), HR_MAX_FCM_POLICIES, sizeof(((hr_config_t *)0)->fcm_policies[0])},
    {"fcm-retries", OPT_UINT, "5", "retries of a push FCM answered 429 or 5xx, then dead-lettered",
     FIELD(fcm_retries), 0, 20},
    {"fcm-concurrency", OPT_UINT, "64", "FCM requests in flight at once", FIELD(fcm_concurrency), 1,
     1000},
    {"fcm-backoff", OPT_MS, "1000", "first retry's delay, ms (doubles; Retry-After wins)",
     FIELD(fcm_backoff_ms), 10, 600000},
    {"fcm-timeout", OPT_MS, "10000", "one FCM request's time limit, ms", FIELD(fcm_timeout_ms), 100,
     600000},
    {"fcm-token-ttl", OPT_MS, "5184000000",
     "a device not refreshed this long is removed, ms (60 days)", FIELD(fcm_token_ttl_ms), 2000,
     365ull * 86400000},
    {"fcm-max-devices", OPT_SIZE, "1000000", "device tokens held in all (507 above)",
     FIELD(fcm_max_devices), 1, 100000000},
    {"fcm-max-device-bytes", OPT_SIZE, "268435456",
     "bytes the device registry may hold (tokens, labels, topics; 507 above)",
     FIELD(fcm_max_device_bytes), 4096, 1ull << 40},
    {"delayed-max", OPT_SIZE, "100000", "delayed messages held at once (507 above)",
     FIELD(delayed_max), 1, 100000000},
    {"delayed-max-bytes", OPT_SIZE, "67108864", "bytes of delayed messages held (507 above)",
     FIELD(delayed_max_bytes), 1024, 1ull << 40},
    {"pool", OPT_REPEAT, "",
     "NAME=URL[,size=N][,timeout=MS][,ttl=S][,concurrency=N][,header=NAME:VALUE]: a response "
     "pool in front of an upstream (docs/POOLS.md); repeatable",
     FIELD(pools), HR_MAX_POOLS, sizeof(((hr_config_t *)0)->pools[0])},
    {"pool-max-bytes", OPT_SIZE, "67108864",
     "bytes the pools' answers may hold (embedded store; the least used keys go first)",
     FIELD(pool_max_bytes), 4096, 1ull << 40},
    {"pool-max-answer", OPT_SIZE, "1048576",
     "one upstream answer's limit, bytes (502 above; a stream is cut)", FIELD(pool_max_answer),
     1024, 1ull << 30},
};

#define NOPTIONS (sizeof options / sizeof options[0])

/* HERALD_ + the flag in upper case with '-' as '_'. */
static void env_name(const char *flag, char *env, size_t size)
{
    size_t n = (size_t)snprintf(env, size, "HERALD_");
    for (; *flag && n < size - 1; flag++)
        env[n++] = *flag == '-' ? '_' : (char)toupper((unsigned char)*flag);
    env[n] = '\0';
}

static void print_help(void)
{
    printf("herald — realtime delivery server (SSE, WebSocket, long polling, history)\n\n"
           "usage: herald [options]\n\n"
           "Each option can also be set in the environment as HERALD_<NAME>\n"
           "(upper case, '-' as '_'), e.g. HERALD_LISTEN=0.0.0.0:8080. Flags win.\n\n");
    for (size_t i = 0; i < NOPTIONS; i++) {
        char env[64];
        env_name(options[i].flag, env, sizeof env);
        printf("  --%-16s %s\n  %-18s env %s, default \"%s\"\n", options[i].flag, options[i].help,
               "", env, options[i].fallback);
    }
    printf("  --%-16s print this help\n  --%-16s print the version\n", "help", "version");
}

static int parse_number(const char *text, uint64_t *out)
{
    if (!*text || !isdigit((unsigned char)*text)) return -1;
    errno = 0;
    char *end;
    unsigned long long value = strtoull(text, &end, 10);
    if (errno || *end) return -1;
    *out = value;
    return 0;
}

int hr_config_host_port(const char *text, char *host, size_t host_size, int *port_out)
{
    const char *colon = strrchr(text, ':');
    if (!colon || colon == text) return -1;
    size_t host_len = (size_t)(colon - text);
    if (text[0] == '[' && host_len >= 2 && text[host_len - 1] == ']') { /* [::1]:8080 */
        text++;
        host_len -= 2;
    }
    uint64_t port;
    if (host_len >= host_size || parse_number(colon + 1, &port) || port > 65535) return -1;
    memcpy(host, text, host_len);
    host[host_len] = '\0';
    *port_out = (int)port;
    return 0;
}

/* --listen and --tls-listen add an address each; the first --listen replaces the default. */
static int add_listen(hr_config_t *config, const option_row_t *opt, const char *text)
{
    int tls = opt->offset == FIELD(tls_listen);
    char(*list)[300] = tls ? config->tls_listen : config->listen;
    size_t *count = tls ? &config->ntls_listen : &config->nlisten;
    if (!tls && config->listen_defaulted) {
        config->nlisten = 0;
        config->listen_defaulted = 0;
    }
    if (!*text) return 0;
    char host[256];
    int port;
    if (*count == HR_MAX_LISTENERS || strlen(text) >= sizeof list[0] ||
        hr_config_host_port(text, host, sizeof host, &port) != 0)
        return -1;
    strcpy(list[(*count)++], text);
    return 0;
}

static int set_cors(hr_config_t *config, const char *text)
{
    config->ncors_origins = 0;
    while (*text) {
        const char *comma = strchr(text, ',');
        size_t len = comma ? (size_t)(comma - text) : strlen(text);
        while (len && isspace((unsigned char)*text))
            text++, len--;
        while (len && isspace((unsigned char)text[len - 1]))
            len--;
        if (len) {
            if (config->ncors_origins == HR_MAX_CORS_ORIGINS || len >= 256) return -1;
            memcpy(config->cors_origins[config->ncors_origins], text, len);
            config->cors_origins[config->ncors_origins++][len] = '\0';
        }
        if (!comma) break;
        text = comma + 1;
    }
    return 0;
}

/* The index of `text` among `words`, or -1. */
static int pick_word(const char *text, const char *const *words, int n)
{
    for (int i = 0; i < n; i++)
        if (strcmp(text, words[i]) == 0) return i;
    return -1;
}

/* Appends to a repeatable option's array: `min` is its capacity, `max` each entry's size. The
 * counter follows the array in hr_config_t. An empty default adds nothing. */
static int add_repeat(hr_config_t *config, const option_row_t *opt, char *field, const char *text)
{
    size_t *count = opt->offset == FIELD(jwt_keys)       ? &config->njwt_keys
                    : opt->offset == FIELD(fcm_policies) ? &config->nfcm_policies
                    : opt->offset == FIELD(pools)        ? &config->npools
                                                         : &config->npublic_topics;
    if (!*text) return 0;
    if (*count == opt->min || strlen(text) >= opt->max) return -1;
    strcpy(field + *count * opt->max, text);
    (*count)++;
    return 0;
}

static int set_option(hr_config_t *config, const option_row_t *opt, const char *text)
{
    char *field = (char *)config + opt->offset;
    uint64_t value = 0;
    switch (opt->kind) {
    case OPT_LISTEN:
        return add_listen(config, opt, text);
    case OPT_CORS:
        return set_cors(config, text);
    case OPT_LOG:
        return hr_log_parse_level(text, (enum hr_log_level *)(void *)field);
    case OPT_PATH: /* max: the field's size, when not the 1024 of the paths */
        if (strlen(text) >= (opt->max ? opt->max : sizeof config->data_dir)) return -1;
        strcpy(field, text);
        return 0;
    case OPT_AUTH: { /* in enum hr_auth_mode's order */
        static const char *const modes[] = {"off", "publish", "all"};
        int mode = pick_word(text, modes, 3);
        if (mode >= 0) config->auth_mode = (enum hr_auth_mode)mode;
        return mode >= 0 ? 0 : -1;
    }
    case OPT_REPEAT:
        return add_repeat(config, opt, field, text);
    case OPT_CONFIG:
        if (strlen(text) >= sizeof config->config_path) return -1;
        strcpy(config->config_path, text);
        return 0;
    case OPT_IO_URING: { /* in enum hr_io_uring's order */
        static const char *const modes[] = {"off", "auto", "on"};
        int mode = pick_word(text, modes, 3);
        if (mode >= 0) config->io_uring = (enum hr_io_uring)mode;
        return mode >= 0 ? 0 : -1;
    }
    case OPT_DURABILITY: { /* in enum hr_durability's order */
        static const char *const modes[] = {"off", "batch", "sync"};
        int mode = pick_word(text, modes, 3);
        if (mode >= 0) config->durability = (enum hr_durability)mode;
        return mode >= 0 ? 0 : -1;
    }
    case OPT_SIZE_AUTO:
        if (strcmp(text, "auto") == 0) {
            *(size_t *)(void *)field = HR_SIZE_AUTO;
            return 0;
        }
        break;
    default:
        break;
    }
    if (parse_number(text, &value) || value < opt->min || value > opt->max) return -1;
    if (opt->kind == OPT_UINT) {
        if (opt->offset == FIELD(sse_retry_ms))
            *(uint32_t *)(void *)field = (uint32_t)value;
        else
            *(unsigned *)(void *)field = (unsigned)value;
    } else if (opt->kind == OPT_SIZE || opt->kind == OPT_SIZE_AUTO) {
        *(size_t *)(void *)field = (size_t)value;
    } else {
        *(int64_t *)(void *)field = (int64_t)value;
    }
    return 0;
}

static int apply(hr_config_t *config, const option_row_t *opt, const char *text, const char *from)
{
    if (set_option(config, opt, text) == 0) return 0;
    fprintf(stderr, "herald: invalid value \"%s\" for %s (%s)\n", text, opt->flag, from);
    return -1;
}

/* Trims spaces (and a pair of double quotes) around [*start, *end). */
static void trim(char **start, char **end)
{
    while (*start < *end && isspace((unsigned char)**start))
        (*start)++;
    while (*end > *start && isspace((unsigned char)(*end)[-1]))
        (*end)--;
    if (*end - *start >= 2 && **start == '"' && (*end)[-1] == '"') {
        (*start)++;
        (*end)--;
    }
}

/* `name = value` lines, the flags' names without the dashes. */
static int read_file(hr_config_t *config, const char *path)
{
    FILE *file = fopen(path, "r");
    if (!file) {
        fprintf(stderr, "herald: --config %s: %s\n", path, strerror(errno));
        return -1;
    }
    char line[4096], from[1100];
    int number = 0, rc = 0;
    while (rc == 0 && fgets(line, sizeof line, file)) {
        number++;
        snprintf(from, sizeof from, "%s:%d", path, number);
        char *start = line, *end = line + strcspn(line, "\r\n");
        trim(&start, &end);
        if (start == end || *start == '#') continue;
        char *eq = memchr(start, '=', (size_t)(end - start));
        if (!eq) {
            fprintf(stderr, "herald: %s: expected name = value\n", from);
            rc = -1;
            break;
        }
        char *name_end = eq, *value = eq + 1;
        trim(&start, &name_end);
        trim(&value, &end);
        *name_end = '\0';
        *end = '\0';
        const option_row_t *opt = NULL;
        for (size_t i = 0; i < NOPTIONS; i++)
            if (strcmp(options[i].flag, start) == 0 && options[i].kind != OPT_CONFIG)
                opt = &options[i];
        if (!opt) {
            fprintf(stderr, "herald: %s: unknown option \"%s\"; see --help\n", from, start);
            rc = -1;
        } else {
            rc = apply(config, opt, value, from);
        }
    }
    fclose(file);
    return rc;
}

/* --config FILE or --config=FILE among the flags, else HERALD_CONFIG. */
static const char *config_file(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) return argv[i + 1];
        if (strncmp(argv[i], "--config=", 9) == 0) return argv[i] + 9;
    }
    return getenv("HERALD_CONFIG");
}

int hr_config_load(hr_config_t *config, int argc, char **argv)
{
    memset(config, 0, sizeof *config);
    for (size_t i = 0; i < NOPTIONS; i++)
        if (apply(config, &options[i], options[i].fallback, "default") != 0) return -1;
    config->listen_defaulted = 1;
    const char *file = config_file(argc, argv);
    if (file && *file &&
        (apply(config, &options[0], file, "flag") != 0 || read_file(config, file) != 0))
        return -1;
    for (size_t i = 0; i < NOPTIONS; i++) {
        if (options[i].kind == OPT_CONFIG) continue; /* read above */
        char env[64];
        env_name(options[i].flag, env, sizeof env);
        const char *value = getenv(env);
        if (value && apply(config, &options[i], value, env) != 0) return -1;
    }
    /* Option ids start past any character getopt returns itself ('?' for an unknown flag,
     * 63, would otherwise be the 64th option). */
    enum { FIRST_ID = 1000 };
    struct option long_opts[NOPTIONS + 3];
    for (size_t i = 0; i < NOPTIONS; i++)
        long_opts[i] = (struct option){options[i].flag, required_argument, NULL, FIRST_ID + (int)i};
    long_opts[NOPTIONS] = (struct option){"help", no_argument, NULL, 'h'};
    long_opts[NOPTIONS + 1] = (struct option){"version", no_argument, NULL, 'V'};
    long_opts[NOPTIONS + 2] = (struct option){NULL, 0, NULL, 0};
    optind = 1;
    int ch;
    while ((ch = getopt_long(argc, argv, "h", long_opts, NULL)) != -1) {
        if (ch == 'h') {
            print_help();
            return 1;
        }
        if (ch == 'V') {
            printf("herald %s\n", HR_VERSION);
            return 1;
        }
        if (ch < FIRST_ID || (size_t)(ch - FIRST_ID) >= NOPTIONS) {
            fprintf(stderr, "herald: see --help\n");
            return -1;
        }
        if (apply(config, &options[ch - FIRST_ID], optarg, "flag") != 0) return -1;
    }
    if (optind < argc) {
        fprintf(stderr, "herald: unexpected argument \"%s\"; see --help\n", argv[optind]);
        return -1;
    }
    if (config->workers == 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        config->workers = cores > 0 ? (unsigned)cores : 1;
    }
    if (!config->publish_burst) config->publish_burst = config->publish_rate;
    if (config->history_max_bytes == HR_SIZE_AUTO)
        config->history_max_bytes = auto_history_budget();
    /* One topic can never hold more than all of them. */
    if (config->history_max_bytes && (!config->history_topic_max_bytes ||
                                      config->history_topic_max_bytes > config->history_max_bytes))
        config->history_topic_max_bytes = config->history_max_bytes;
    if (config->redis_url[0] && config->data_dir[0]) {
        fprintf(stderr, "herald: --redis and --data-dir exclude each other: in cluster mode "
                        "history lives in Redis streams\n");
        return -1;
    }
    if (!config->nlisten && !config->ntls_listen) {
        fprintf(stderr, "herald: nothing to listen on: give --listen or --tls-listen\n");
        return -1;
    }
    if (config->ntls_listen && (!config->tls_cert[0] || !config->tls_key[0])) {
        fprintf(stderr, "herald: --tls-listen needs --tls-cert and --tls-key\n");
        return -1;
    }
    if (!config->redis_prefix[0] || strlen(config->redis_prefix) > 64) {
        fprintf(stderr, "herald: --redis-prefix must be 1-64 bytes\n");
        return -1;
    }
    return 0;
}

const char *hr_config_cors_allow(const hr_config_t *config, const char *origin, size_t len)
{
    for (size_t i = 0; i < config->ncors_origins; i++) {
        const char *allowed = config->cors_origins[i];
        if (strcmp(allowed, "*") == 0) return "*";
        if (strlen(allowed) == len && memcmp(allowed, origin, len) == 0) return allowed;
    }
    return NULL;
}
