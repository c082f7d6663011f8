/* The bus thread: Redis connections (hiredis async on libuv), reconnect with backoff, the
 * publish script, and the queue workers and the broker talk to it through. */
#include <openssl/rand.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "bus/bus_int.h"
#include "bus/uv_redis.h"
#include "core/error.h"
#include "core/id.h"
#include "core/log.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000

/* KEYS: id counter, the topic's stream, the hash of each topic's newest id.
 * ARGV: topic, maxlen, channel, time, event, data, retry, binary, wanted id ("0": next), ttl,
 * and for a signal the recipient's presence hash and the node leases (presence_redis.c): the
 * publish is refused (OFFLINE) unless a node with a live lease holds the user.
 * Numbers stay strings: Lua's doubles would print big ids as 1.7e+15 (they compare exactly:
 * ids stay below 2^53, HR_ID_MAX, which the script enforces before the counter moves). */
static const char publish_lua[] =
    "local id\n"
    "if ARGV[11] then\n"
    "  local t = redis.call('TIME')\n"
    "  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "  local online = false\n"
    "  for _, node in ipairs(redis.call('HKEYS', ARGV[11])) do\n"
    "    local lease = redis.call('ZSCORE', ARGV[12], node)\n"
    "    if lease and tonumber(lease) >= now then online = true break end\n"
    "  end\n"
    "  if not online then return redis.error_reply('OFFLINE the user has no live connection') end\n"
    "end\n"
    "local cur = redis.call('GET', KEYS[1])\n"
    "if ARGV[9] == '0' and cur and tonumber(cur) >= 9007199254740991 then\n"
    "  return redis.error_reply('IDSPACE the id sequence reached 2^53 - 1')\n"
    "end\n"
    "if ARGV[9] ~= '0' then\n"
    "  if cur and tonumber(ARGV[9]) <= tonumber(cur) then\n"
    "    return redis.error_reply('CONFLICT id must be greater than every id so far')\n"
    "  end\n"
    "  redis.call('SET', KEYS[1], ARGV[9])\n"
    "  id = ARGV[9]\n"
    "else\n"
    "  redis.call('INCR', KEYS[1])\n"
    "  id = redis.call('GET', KEYS[1])\n"
    "end\n"
    "local prev = redis.call('HGET', KEYS[3], ARGV[1]) or '0'\n"
    "local added = redis.pcall('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], id .. '-0', 'p', prev,\n"
    "  't', ARGV[4], 'e', ARGV[5], 'r', ARGV[7], 'b', ARGV[8], 'd', ARGV[6])\n"
    "if type(added) == 'table' and added.err then return added end\n"
    "redis.call('HSET', KEYS[3], ARGV[1], id)\n"
    "if ARGV[10] ~= '0' then redis.call('PEXPIRE', KEYS[2], ARGV[10]) end\n"
    "redis.call('PUBLISH', ARGV[3], id .. ' ' .. ARGV[4] .. ' ' .. ARGV[7] .. ' ' .. ARGV[8]\n"
    "  .. ' ' .. string.len(ARGV[5]) .. '\\n' .. ARGV[5] .. ARGV[6])\n"
    "return id\n";

/* Raises the id counter to ARGV[1] when below it (Redis lost data, or this node saw ids a
 * restarted Redis no longer has); a new counter starts at ARGV[2] (time in µs, like a single
 * node's ids), so ids keep rising across a Redis wipe. */
static const char init_lua[] = "local cur = redis.call('GET', KEYS[1])\n"
                               "if not cur then redis.call('SET', KEYS[1], ARGV[2])\n"
                               "elseif tonumber(cur) < tonumber(ARGV[1]) then\n"
                               "  redis.call('SET', KEYS[1], ARGV[1]) end\n"
                               "return redis.call('GET', KEYS[1])\n";

enum op_kind { OP_WANT, OP_UNWANT, OP_PUBLISH, OP_COMMAND };

typedef struct bus_op_s {
    hr_list_t link;
    enum op_kind kind;
    hr_bus_pub_t *pub;
    hr_bus_cmd_t *cmd;
    size_t len;
    char name[];
} bus_op_t;

static void sha1_hex(const char *text, char out[41])
{
    unsigned char digest[SHA_DIGEST_LENGTH];
    EVP_Digest(text, strlen(text), digest, NULL, EVP_sha1(), NULL);
    for (int i = 0; i < SHA_DIGEST_LENGTH; i++)
        snprintf(out + 2 * i, 3, "%02x", digest[i]);
}

hr_bus_t *hr_bus_new(const hr_bus_config_t *config, hr_broker_t *broker, char *err, size_t err_size)
{
    hr_bus_t *bus = calloc(1, sizeof *bus);
    if (!bus) {
        snprintf(err, err_size, "out of memory");
        return NULL;
    }
    if (hr_redis_url_parse(config->url, &bus->url, err, err_size) != 0) {
        free(bus);
        return NULL;
    }
    if (strlen(config->prefix) >= sizeof bus->prefix) {
        snprintf(err, err_size, "prefix too long");
        free(bus);
        return NULL;
    }
    bus->broker = broker;
    bus->config = *config;
    strcpy(bus->prefix, config->prefix);
    bus->config.prefix = bus->prefix;
    bus->config.url = NULL; /* parsed into bus->url */
    unsigned char node[8];
    RAND_bytes(node, sizeof node);
    snprintf(bus->seq_key, sizeof bus->seq_key, "%s:seq", bus->prefix);
    snprintf(bus->last_key, sizeof bus->last_key, "%s:last", bus->prefix);
    snprintf(bus->barrier, sizeof bus->barrier, "%s:node:%02x%02x%02x%02x%02x%02x%02x%02x",
             bus->prefix, node[0], node[1], node[2], node[3], node[4], node[5], node[6], node[7]);
    snprintf(bus->maxlen, sizeof bus->maxlen, "%zu",
             config->history_size ? config->history_size : 1);
    snprintf(bus->ttl, sizeof bus->ttl, "%lld", (long long)config->history_ttl_ms);
    sha1_hex(publish_lua, bus->publish_sha);
    sha1_hex(init_lua, bus->init_sha);
    pthread_mutex_init(&bus->queue_lock, NULL);
    hr_list_init(&bus->queue);
    hr_list_init(&bus->sync_pending);
    hr_list_init(&bus->batches);
    atomic_init(&bus->up, 0);
    atomic_init(&bus->failing, 0);
    atomic_init(&bus->channels, 0);
    return bus;
}

int hr_bus_up(const hr_bus_t *bus)
{
    return atomic_load_explicit(&bus->up, memory_order_acquire);
}

int hr_bus_failing(const hr_bus_t *bus)
{
    return atomic_load_explicit(&bus->failing, memory_order_relaxed);
}

static int queue_op(hr_bus_t *bus, bus_op_t *op)
{
    pthread_mutex_lock(&bus->queue_lock);
    int stopping = bus->stopping;
    if (!stopping) {
        hr_list_push(&bus->queue, &op->link);
        uv_async_send(&bus->wake);
    }
    pthread_mutex_unlock(&bus->queue_lock);
    return stopping ? -1 : 0;
}

static void queue_topic_op(hr_bus_t *bus, enum op_kind kind, const char *name, size_t len)
{
    bus_op_t *op = malloc(sizeof *op + len + 1);
    if (!op) {
        hr_error("redis.oom", "op=%s topic=%.*s", kind == OP_WANT ? "want" : "unwant", (int)len,
                 name);
        return;
    }
    op->kind = kind;
    op->pub = NULL;
    op->cmd = NULL;
    op->len = len;
    memcpy(op->name, name, len);
    op->name[len] = '\0';
    if (queue_op(bus, op) != 0) free(op);
}

static void hook_want(void *arg, const char *name, size_t len)
{
    queue_topic_op(arg, OP_WANT, name, len);
}

static void hook_unwant(void *arg, const char *name, size_t len)
{
    queue_topic_op(arg, OP_UNWANT, name, len);
}

static int hook_up(void *arg)
{
    return hr_bus_up(arg);
}

int hr_bus_publish(hr_bus_t *bus, hr_bus_pub_t *pub)
{
    if (!hr_bus_up(bus)) return HR_EUNAVAIL;
    bus_op_t *op = malloc(sizeof *op);
    if (!op) return HR_ENOMEM;
    op->kind = OP_PUBLISH;
    op->pub = pub;
    op->cmd = NULL;
    if (queue_op(bus, op) != 0) {
        free(op);
        return HR_EUNAVAIL;
    }
    return 0;
}

/* ---- publish (bus thread) ---- */

static void publish_finished(hr_bus_t *bus, hr_bus_pub_t *pub)
{
    if (pub->status == HR_BUS_OK) atomic_fetch_add(&bus->published, pub->n);
    /* A refused id is the client's mistake, not the node's. */
    if (pub->status != HR_BUS_CONFLICT)
        atomic_store_explicit(&bus->failing, pub->status != HR_BUS_OK, memory_order_relaxed);
    if (hr_broker_post(bus->broker, pub->worker, &pub->post) != 0)
        hr_error("redis.oom", "what=publish_answer");
}

typedef struct pub_call_s {
    hr_bus_t *bus;
    hr_bus_pub_t *pub;
    size_t index;
} pub_call_t;

static void on_publish_reply(redisAsyncContext *ctx, void *reply_ptr, void *arg)
{
    (void)ctx;
    pub_call_t *call = arg;
    hr_bus_pub_t *pub = call->pub;
    redisReply *reply = reply_ptr;
    uint64_t id;
    if (reply && reply->type == REDIS_REPLY_STRING &&
        hr_id_parse(reply->str, reply->len, &id) == 0) {
        pub->items[call->index].id = id;
    } else if (reply && reply->type == REDIS_REPLY_ERROR && strstr(reply->str, "CONFLICT")) {
        pub->status = HR_BUS_CONFLICT;
    } else if (reply && reply->type == REDIS_REPLY_ERROR && strstr(reply->str, "OFFLINE")) {
        pub->status = HR_BUS_OFFLINE;
    } else if (reply && reply->type == REDIS_REPLY_ERROR && strstr(reply->str, "IDSPACE")) {
        hr_error("redis.id_space_exhausted", "topic=%s", pub->items[call->index].topic);
        pub->status = HR_BUS_IDSPACE;
    } else {
        if (reply)
            hr_warn("redis.publish_failed", "topic=%s reply=\"%.*s\"",
                    pub->items[call->index].topic,
                    reply->type == REDIS_REPLY_ERROR ? (int)reply->len : 0,
                    reply->type == REDIS_REPLY_ERROR ? reply->str : "");
        if (pub->status == HR_BUS_OK) pub->status = HR_BUS_UNAVAILABLE;
    }
    if (++pub->answered == pub->n) publish_finished(call->bus, pub);
    free(call);
}

static void publish_one(hr_bus_t *bus, hr_bus_pub_t *pub, size_t i)
{
    hr_bus_item_t *item = &pub->items[i];
    char stream[320], channel[320], time_s[24], retry[16], want[24];
    snprintf(stream, sizeof stream, "%s:s:%s", bus->prefix, item->topic);
    snprintf(channel, sizeof channel, "%s:c:%s", bus->prefix, item->topic);
    snprintf(time_s, sizeof time_s, "%lld", (long long)pub->time_ms);
    snprintf(retry, sizeof retry, "%u", pub->retry_ms);
    snprintf(want, sizeof want, "%llu", (unsigned long long)pub->want_id);
    /* A signal's topic is "~signal:USER": the user's presence hash is "PREFIX:pu:USER". */
    char user_key[320] = "", lease_key[200] = "";
    int signal = pub->require_user && item->topic_len > sizeof "~signal:" - 1;
    if (signal) {
        snprintf(user_key, sizeof user_key, "%s:pu:%s", bus->prefix,
                 item->topic + sizeof "~signal:" - 1);
        snprintf(lease_key, sizeof lease_key, "%s:pn", bus->prefix);
    }
    const char *argv[] = {"EVALSHA",   bus->publish_sha,
                          "3",         bus->seq_key,
                          stream,      bus->last_key,
                          item->topic, bus->maxlen,
                          channel,     time_s,
                          pub->event,  pub->data,
                          retry,       pub->binary ? "1" : "0",
                          want,        bus->ttl,
                          user_key,    lease_key};
    int argc = signal ? 18 : 16;
    size_t lens[18];
    for (int k = 0; k < argc; k++) /* event and data are bytes, not strings */
        lens[k] = k == 10 ? pub->event_len : k == 11 ? pub->data_len : strlen(argv[k]);
    lens[6] = item->topic_len;
    pub_call_t *call = malloc(sizeof *call);
    if (call) *call = (pub_call_t){bus, pub, i};
    if (!call || redisAsyncCommandArgv(bus->cmd, on_publish_reply, call, argc, argv, lens) != 0) {
        free(call);
        pub->status = HR_BUS_UNAVAILABLE;
        if (++pub->answered == pub->n) publish_finished(bus, pub);
    }
}

static void publish_start(hr_bus_t *bus, hr_bus_pub_t *pub)
{
    pub->status = HR_BUS_OK;
    pub->answered = 0;
    if (!bus->cmd_ready || pub->n == 0) {
        pub->status = bus->cmd_ready ? HR_BUS_OK : HR_BUS_UNAVAILABLE;
        publish_finished(bus, pub);
        return;
    }
    for (size_t i = 0; i < pub->n; i++)
        publish_one(bus, pub, i);
}

/* ---- any command (bus thread) ---- */

static json_t *reply_json(const redisReply *reply)
{
    switch (reply->type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
        return json_stringn(reply->str, reply->len);
    case REDIS_REPLY_INTEGER:
        return json_integer(reply->integer);
    case REDIS_REPLY_ARRAY: {
        json_t *list = json_array();
        for (size_t i = 0; list && i < reply->elements; i++)
            json_array_append_new(list, reply_json(reply->element[i]));
        return list;
    }
    default:
        return json_null();
    }
}

static void command_finished(hr_bus_t *bus, hr_bus_cmd_t *cmd)
{
    if (cmd->on_reply) cmd->on_reply(cmd);
    if (!cmd->done) {
        hr_bus_cmd_free(cmd);
        return;
    }
    if (hr_broker_post(bus->broker, cmd->worker, &cmd->post) != 0)
        hr_error("redis.oom", "what=command_answer");
}

static void on_command_reply(redisAsyncContext *ctx, void *reply_ptr, void *arg)
{
    hr_bus_cmd_t *cmd = arg;
    redisReply *reply = reply_ptr;
    hr_bus_t *bus = ctx->data;
    cmd->error = !reply || reply->type == REDIS_REPLY_ERROR;
    if (reply && reply->type == REDIS_REPLY_ERROR)
        hr_warn("redis.command_failed", "cmd=%s reply=\"%.*s\"", cmd->argv[0], (int)reply->len,
                reply->str);
    if (!cmd->error) cmd->reply = reply_json(reply);
    command_finished(bus, cmd);
}

static void command_start(hr_bus_t *bus, hr_bus_cmd_t *cmd)
{
    if (!bus->cmd_ready || redisAsyncCommandArgv(bus->cmd, on_command_reply, cmd, cmd->argc,
                                                 (const char **)cmd->argv, cmd->lens) != 0) {
        cmd->error = 1;
        command_finished(bus, cmd);
    }
}

static void post_command(hr_post_t *post)
{
    hr_bus_cmd_t *cmd = hr_container_of(post, hr_bus_cmd_t, post);
    cmd->done(cmd);
}

hr_bus_cmd_t *hr_bus_cmd_new(int argc, const char *const *argv, const size_t *lens)
{
    hr_bus_cmd_t *cmd = calloc(1, sizeof *cmd);
    if (!cmd) return NULL;
    cmd->post.run = post_command;
    cmd->argv = calloc((size_t)argc, sizeof *cmd->argv);
    cmd->lens = calloc((size_t)argc, sizeof *cmd->lens);
    if (!cmd->argv || !cmd->lens) {
        hr_bus_cmd_free(cmd);
        return NULL;
    }
    for (int i = 0; i < argc; i++, cmd->argc++) {
        size_t len = lens ? lens[i] : strlen(argv[i]);
        if (!(cmd->argv[i] = malloc(len + 1))) {
            hr_bus_cmd_free(cmd);
            return NULL;
        }
        memcpy(cmd->argv[i], argv[i], len);
        cmd->argv[i][len] = '\0';
        cmd->lens[i] = len;
    }
    return cmd;
}

hr_bus_cmd_t *hr_bus_script_cmd(const char *sha, const char *const *head, size_t nhead,
                                const char *const *extra, const size_t *extra_lens, size_t nextra)
{
    size_t argc = 3 + nhead + nextra;
    const char **argv = malloc(argc * sizeof *argv);
    size_t *lens = malloc(argc * sizeof *lens);
    hr_bus_cmd_t *cmd = NULL;
    if (argv && lens) {
        const char *call[] = {"EVALSHA", sha, "0"};
        for (size_t i = 0; i < argc; i++) {
            argv[i] = i < 3 ? call[i] : i < 3 + nhead ? head[i - 3] : extra[i - 3 - nhead];
            lens[i] = i >= 3 + nhead && extra_lens ? extra_lens[i - 3 - nhead] : strlen(argv[i]);
        }
        cmd = hr_bus_cmd_new((int)argc, argv, lens);
    }
    free(argv);
    free(lens);
    return cmd;
}

void hr_bus_cmd_free(hr_bus_cmd_t *cmd)
{
    if (!cmd) return;
    for (int i = 0; i < cmd->argc; i++)
        free(cmd->argv[i]);
    free(cmd->argv);
    free(cmd->lens);
    json_decref(cmd->reply);
    free(cmd);
}

int hr_bus_command(hr_bus_t *bus, hr_bus_cmd_t *cmd)
{
    if (!hr_bus_up(bus)) return HR_EUNAVAIL;
    bus_op_t *op = malloc(sizeof *op);
    if (!op) return HR_ENOMEM;
    op->kind = OP_COMMAND;
    op->pub = NULL;
    op->cmd = cmd;
    if (queue_op(bus, op) != 0) {
        free(op);
        return HR_EUNAVAIL;
    }
    return 0;
}

int hr_bus_on_ready(hr_bus_t *bus, void (*fn)(void *arg), void *arg)
{
    if (bus->non_ready == sizeof bus->on_ready / sizeof bus->on_ready[0]) return -1;
    bus->on_ready[bus->non_ready].fn = fn;
    bus->on_ready[bus->non_ready++].arg = arg;
    return 0;
}

int hr_bus_add_scripts(hr_bus_t *bus, const char *const *lua, size_t n, char (*sha)[41])
{
    if (bus->nscripts + n > sizeof bus->scripts / sizeof bus->scripts[0]) return -1;
    for (size_t i = 0; i < n; i++)
        hr_bus_add_script(bus, lua[i], sha[i]);
    return 0;
}

int hr_bus_add_script(hr_bus_t *bus, const char *lua, char sha[41])
{
    if (bus->nscripts == sizeof bus->scripts / sizeof bus->scripts[0]) return -1;
    bus->scripts[bus->nscripts++] = lua;
    sha1_hex(lua, sha);
    return 0;
}

/* ---- connections ---- */

static void connect_both(hr_bus_t *bus);

static void on_retry_timer(uv_timer_t *timer)
{
    connect_both(timer->data);
}

static void schedule_reconnect(hr_bus_t *bus)
{
    if (bus->cmd || bus->sub || uv_is_active((uv_handle_t *)&bus->retry_timer)) return;
    pthread_mutex_lock(&bus->queue_lock);
    int stopping = bus->stopping;
    pthread_mutex_unlock(&bus->queue_lock);
    if (stopping) return;
    /* Full jitter keeps a fleet of nodes from reconnecting in step after a Redis restart. */
    uint64_t delay =
        (uint64_t)bus->backoff_ms / 2 + (uint64_t)rand() % ((uint64_t)bus->backoff_ms / 2 + 1);
    bus->backoff_ms = bus->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : bus->backoff_ms * 2;
    uv_timer_start(&bus->retry_timer, on_retry_timer, delay, 0);
}

/* Either connection went: both go, everyone waiting hears it, and a reconnect is planned.
 * `force` frees the contexts at once (their waiting callbacks get NULL replies): a graceful
 * disconnect would wait for replies a stalled Redis never sends. */
static void went_down(hr_bus_t *bus, const char *which, const char *why, int force)
{
    int was_up = hr_bus_up(bus);
    atomic_store(&bus->up, 0);
    bus->cmd_ready = bus->sub_ready = 0;
    pthread_mutex_lock(&bus->queue_lock);
    int stopping = bus->stopping;
    pthread_mutex_unlock(&bus->queue_lock);
    if (was_up && stopping) hr_info("redis.closed", "node=%s", bus->barrier);
    if (was_up && !stopping) hr_warn("redis.down", "conn=%s reason=\"%s\"", which, why);
    /* Forgotten first: a context not yet connected is freed without a disconnect callback. */
    redisAsyncContext *cmd = bus->cmd, *sub = bus->sub;
    bus->cmd = bus->sub = NULL;
    bus->waiting_since = 0;
    if (force) { /* before the topics forget: NULL replies find the state they expect */
        if (cmd) redisAsyncFree(cmd);
        if (sub) redisAsyncFree(sub);
        cmd = sub = NULL;
    }
    hr_broker_bus_down(bus->broker);
    hr_bus_topics_disconnected(bus);
    if (cmd) redisAsyncDisconnect(cmd);
    if (sub) redisAsyncDisconnect(sub);
    schedule_reconnect(bus);
}

static void maybe_ready(hr_bus_t *bus)
{
    if (!bus->cmd_ready || !bus->sub_ready) return;
    atomic_store(&bus->up, 1);
    atomic_store(&bus->failing, 0);
    bus->backoff_ms = BACKOFF_MIN_MS;
    bus->ever_up = 1;
    if (bus->url.path[0])
        hr_info("redis.up", "socket=%s node=%s", bus->url.path, bus->barrier);
    else
        hr_info("redis.up", "addr=%s:%d node=%s", bus->url.host, bus->url.port, bus->barrier);
    hr_bus_topics_connected(bus);
    for (size_t i = 0; i < bus->non_ready; i++)
        bus->on_ready[i].fn(bus->on_ready[i].arg);
}

static void on_disconnect(const redisAsyncContext *ctx, int status)
{
    hr_bus_t *bus = ctx->data;
    if (ctx != bus->cmd && ctx != bus->sub) return; /* one went_down let go of already */
    const char *which = ctx == bus->cmd ? "cmd" : "sub";
    if (ctx == bus->cmd) bus->cmd = NULL;
    if (ctx == bus->sub) bus->sub = NULL;
    went_down(bus, which, status == REDIS_OK ? "closed" : (ctx->errstr[0] ? ctx->errstr : "error"),
              0);
}

/* A failed connect: a warning the first time, when Redis was never reached (a wrong --redis
 * is then seen at start, not at the first publish); later ones are debug lines. */
static void unreachable(hr_bus_t *bus, const char *why)
{
    if (bus->ever_up || bus->warned_unreachable) {
        hr_debug("redis.connect_failed", "reason=\"%s\"", why);
        return;
    }
    bus->warned_unreachable = 1;
    hr_warn("redis.unreachable",
            "addr=%s:%d socket=%s reason=\"%s\" note=\"retrying; publishes and new topics get "
            "503 until Redis answers\"",
            bus->url.host, bus->url.port, bus->url.path[0] ? bus->url.path : "-", why);
}

static void on_connect(const redisAsyncContext *ctx, int status)
{
    if (status == REDIS_OK) return;
    hr_bus_t *bus = ctx->data;
    if (ctx != bus->cmd && ctx != bus->sub) return;
    /* hiredis frees a context whose connect failed, without a disconnect callback. */
    const char *which = ctx == bus->cmd ? "cmd" : "sub";
    if (ctx == bus->cmd) bus->cmd = NULL;
    if (ctx == bus->sub) bus->sub = NULL;
    if (!hr_bus_up(bus)) unreachable(bus, ctx->errstr);
    went_down(bus, which, ctx->errstr, 0);
}

static int reply_ok(const redisReply *reply)
{
    return reply && reply->type != REDIS_REPLY_ERROR;
}

static void on_init(redisAsyncContext *ctx, void *reply_ptr, void *arg)
{
    hr_bus_t *bus = arg;
    redisReply *reply = reply_ptr;
    if (!reply) return; /* disconnected: on_disconnect handles it */
    if (!reply_ok(reply)) {
        hr_error("redis.init_failed", "reply=\"%.*s\"", (int)reply->len, reply->str);
        redisAsyncDisconnect(ctx);
        return;
    }
    bus->cmd_ready = 1;
    maybe_ready(bus);
}

static void on_setup_reply(redisAsyncContext *ctx, void *reply_ptr, void *arg)
{
    redisReply *reply = reply_ptr;
    const char *what = arg;
    if (reply && !reply_ok(reply)) {
        hr_error("redis.setup_failed", "step=%s reply=\"%.*s\"", what, (int)reply->len, reply->str);
        redisAsyncDisconnect(ctx);
    }
}

/* AUTH when asked, and a name that says which node and which connection (CLIENT LIST). */
static void send_hello(redisAsyncContext *ctx, hr_bus_t *bus, const char *role)
{
    if (bus->url.password[0]) {
        const char *argv[] = {"AUTH", bus->url.password};
        redisAsyncCommandArgv(ctx, on_setup_reply, "auth", 2, argv, NULL);
    }
    redisAsyncCommand(ctx, on_setup_reply, "setname", "CLIENT SETNAME %s:%s", bus->barrier, role);
}

static void setup_cmd(hr_bus_t *bus)
{
    send_hello(bus->cmd, bus, "cmd");
    if (bus->url.db)
        redisAsyncCommand(bus->cmd, on_setup_reply, "select", "SELECT %d", bus->url.db);
    redisAsyncCommand(bus->cmd, on_setup_reply, "script_load", "SCRIPT LOAD %s", publish_lua);
    redisAsyncCommand(bus->cmd, on_setup_reply, "script_load", "SCRIPT LOAD %s", init_lua);
    for (size_t i = 0; i < bus->nscripts; i++)
        redisAsyncCommand(bus->cmd, on_setup_reply, "script_load", "SCRIPT LOAD %s",
                          bus->scripts[i]);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t now_us = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
    hr_broker_stats_t broker_stats;
    hr_broker_stats(bus->broker, &broker_stats);
    uint64_t seen = broker_stats.last_id;
    char seen_s[24], start_s[24];
    snprintf(seen_s, sizeof seen_s, "%llu", (unsigned long long)seen);
    snprintf(start_s, sizeof start_s, "%llu", (unsigned long long)(seen > now_us ? seen : now_us));
    const char *argv[] = {"EVALSHA", bus->init_sha, "1", bus->seq_key, seen_s, start_s};
    redisAsyncCommandArgv(bus->cmd, on_init, bus, 6, argv, NULL);
}

void hr_bus_barrier_ready(hr_bus_t *bus)
{
    bus->sub_ready = 1;
    maybe_ready(bus);
}

static void setup_sub(hr_bus_t *bus)
{
    send_hello(bus->sub, bus, "sub");
    const char *argv[] = {"SUBSCRIBE", bus->barrier};
    redisAsyncCommandArgv(bus->sub, hr_bus_on_sub_reply, bus, 2, argv, NULL);
}

static redisAsyncContext *open_ctx(hr_bus_t *bus)
{
    redisAsyncContext *ctx = bus->url.path[0] ? redisAsyncConnectUnix(bus->url.path)
                                              : redisAsyncConnect(bus->url.host, bus->url.port);
    if (!ctx) return NULL;
    if (ctx->err) {
        unreachable(bus, ctx->errstr);
        redisAsyncFree(ctx);
        return NULL;
    }
    ctx->data = bus;
    if (hr_uv_redis_attach(ctx, &bus->loop) != 0) {
        redisAsyncFree(ctx);
        return NULL;
    }
    redisAsyncSetConnectCallback(ctx, on_connect);
    redisAsyncSetDisconnectCallback(ctx, on_disconnect);
    return ctx;
}

static void connect_both(hr_bus_t *bus)
{
    if (bus->cmd || bus->sub) return;
    atomic_fetch_add(&bus->reconnects, 1);
    bus->cmd = open_ctx(bus);
    bus->sub = bus->cmd ? open_ctx(bus) : NULL;
    if (!bus->cmd || !bus->sub) {
        if (bus->cmd) redisAsyncFree(bus->cmd);
        bus->cmd = NULL;
        schedule_reconnect(bus);
        return;
    }
    setup_cmd(bus);
    setup_sub(bus);
}

/* --redis-timeout: while the command connection waits for a reply (or for the connection to
 * come up), Redis must send something within the timeout. A stopped or wedged Redis otherwise
 * holds every publish for as long as it is stuck; past the timeout both connections are cut,
 * the waiting publishes get 503, /healthz says down, and the usual reconnect and resync run. */
static void on_watchdog(uv_timer_t *timer)
{
    hr_bus_t *bus = timer->data;
    redisAsyncContext *cmd = bus->cmd;
    uint64_t now = uv_now(&bus->loop);
    if (!cmd || (cmd->replies.head == NULL && hr_bus_up(bus))) {
        bus->waiting_since = 0;
        return;
    }
    if (!bus->waiting_since) bus->waiting_since = now;
    uint64_t last_read = hr_uv_redis_last_read(cmd);
    uint64_t since = last_read > bus->waiting_since ? last_read : bus->waiting_since;
    if (now - since < (uint64_t)bus->config.timeout_ms) return;
    hr_warn("redis.timeout", "silent_ms=%llu timeout_ms=%lld up=%d",
            (unsigned long long)(now - since), (long long)bus->config.timeout_ms, hr_bus_up(bus));
    atomic_store(&bus->failing, 1);
    went_down(bus, "cmd", "timeout", 1);
}

/* ---- thread ---- */

static void drain_queue(uv_async_t *handle)
{
    hr_bus_t *bus = handle->data;
    hr_list_t ops;
    hr_list_init(&ops);
    pthread_mutex_lock(&bus->queue_lock);
    int stopping = bus->stopping;
    while (!hr_list_empty(&bus->queue)) {
        hr_list_t *it = bus->queue.next;
        hr_list_remove(it);
        hr_list_push(&ops, it);
    }
    pthread_mutex_unlock(&bus->queue_lock);
    while (!hr_list_empty(&ops)) {
        bus_op_t *op = hr_container_of(ops.next, bus_op_t, link);
        hr_list_remove(&op->link);
        if (op->kind == OP_PUBLISH)
            publish_start(bus, op->pub);
        else if (op->kind == OP_COMMAND)
            command_start(bus, op->cmd);
        else
            hr_bus_topic_want(bus, op->name, op->len, op->kind == OP_WANT);
        free(op);
    }
    if (!stopping) return;
    uv_timer_stop(&bus->retry_timer);
    if (bus->cmd) redisAsyncDisconnect(bus->cmd);
    if (bus->sub) redisAsyncDisconnect(bus->sub);
    uv_close((uv_handle_t *)&bus->wake, NULL);
    uv_close((uv_handle_t *)&bus->retry_timer, NULL);
    uv_close((uv_handle_t *)&bus->sync_timer, NULL);
    uv_close((uv_handle_t *)&bus->watchdog, NULL);
}

static void bus_thread(void *arg)
{
    hr_bus_t *bus = arg;
    connect_both(bus);
    uv_run(&bus->loop, UV_RUN_DEFAULT);
}

int hr_bus_start(hr_bus_t *bus)
{
    int rc = uv_loop_init(&bus->loop);
    if (rc != 0) return rc;
    uv_async_init(&bus->loop, &bus->wake, drain_queue);
    bus->wake.data = bus;
    uv_timer_init(&bus->loop, &bus->retry_timer);
    bus->retry_timer.data = bus;
    uv_timer_init(&bus->loop, &bus->sync_timer);
    bus->sync_timer.data = bus;
    uv_timer_init(&bus->loop, &bus->watchdog);
    bus->watchdog.data = bus;
    uint64_t tick = (uint64_t)bus->config.timeout_ms / 10;
    uv_timer_start(&bus->watchdog, on_watchdog, tick ? tick : 1, tick ? tick : 1);
    bus->backoff_ms = BACKOFF_MIN_MS;
    bus->loop.data = bus;
    hr_bus_hooks_t hooks = {hook_want, hook_unwant, hook_up, bus};
    hr_broker_set_bus(bus->broker, &hooks);
    return uv_thread_create(&bus->thread, bus_thread, bus);
}

void hr_bus_free(hr_bus_t *bus)
{
    if (!bus) return;
    if (bus->loop.data == bus) { /* started */
        pthread_mutex_lock(&bus->queue_lock);
        bus->stopping = 1;
        uv_async_send(&bus->wake);
        pthread_mutex_unlock(&bus->queue_lock);
        uv_thread_join(&bus->thread);
        uv_run(&bus->loop, UV_RUN_DEFAULT);
        uv_loop_close(&bus->loop);
    }
    hr_bus_topics_free(bus);
    pthread_mutex_destroy(&bus->queue_lock);
    free(bus);
}

void hr_bus_stats(const hr_bus_t *bus, hr_bus_stats_t *stats)
{
    stats->up = hr_bus_up(bus);
    stats->published = atomic_load(&bus->published);
    stats->received = atomic_load(&bus->received);
    stats->reconnects = atomic_load(&bus->reconnects);
    stats->channels = atomic_load_explicit(&bus->channels, memory_order_relaxed);
    stats->node = bus->barrier;
}
