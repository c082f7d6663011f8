/* Cluster presence (docs/PRESENCE.md): each node owns the presence of its own connections and
 * mirrors it into Redis; Redis holds the view across nodes.
 *
 *   PREFIX:pn          zset  node -> lease deadline (unix ms); renewed every lease/4
 *   PREFIX:pset:NODE   set   what NODE holds: "u\nUSER" and "t\nTOPIC\nUSER"
 *   PREFIX:pu:USER     hash  node -> "CONNS MASK" (connections and transports on that node)
 *   PREFIX:pt:TOPIC    hash  user -> how many nodes hold the user in the topic
 *   PREFIX:ls          hash  user -> last seen (unix ms)
 *
 * Every change is one Lua script, so the counters and the join/leave events they cause move
 * together: a topic's herald.join is published (on "~presence:TOPIC", through the same id
 * counter, stream and channel as any publish) when its count goes 0 -> 1 across the cluster,
 * herald.leave when it returns to 0. A node's lease runs lease/2 past each renewal; a node
 * whose lease ran out counts as gone for queries at once, and the next renewal by any live
 * node reaps it: its memberships leave (with their events), its users' last-seen is written.
 * Worst case from a kill -9 to the leave: lease/2 + lease/4. A node re-sends its whole state
 * (one script that diffs it against its set) after every reconnect, or when its renewal finds
 * it was reaped (a stall) or Redis forgot it (a restart). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "api/handlers.h"
#include "api/presence.h"
#include "bus/bus.h"
#include "bus/lua.h"
#include "core/log.h"
#include "core/server.h"
#include "presence/presence_sinks.h"

/* Shared by every script. ARGV[1..5]: prefix, stream maxlen, stream ttl (ms), this node, the
 * lease extension (ms). Numbers leave Lua through string.format: tostring would print big
 * ones as 1.7e+15. */
#define LUA_PRELUDE                                                                                \
    "local P, MAXLEN, TTL, NODE, LEASE = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])\n"  \
    "local t = redis.call('TIME')\n"                                                               \
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"                      \
    "local function num(x) return string.format('%.0f', x) end\n" HR_LUA_PUBLISH                   \
    "local function member_event(topic, user, event)\n"                                            \
    "  publish('~presence:' .. topic, event,\n"                                                    \
    "    '{\"topic\":\"' .. topic .. '\",\"user\":\"' .. user .. '\"}', '0', '0')\n"               \
    "end\n"                                                                                        \
    "local function member_up(node, topic, user)\n"                                                \
    "  if redis.call('SADD', P .. ':pset:' .. node, 't\\n' .. topic .. '\\n' .. user) == 1 and\n"  \
    "     redis.call('HINCRBY', P .. ':pt:' .. topic, user, 1) == 1 then\n"                        \
    "    member_event(topic, user, 'herald.join')\n"                                               \
    "  end\n"                                                                                      \
    "end\n"                                                                                        \
    "local function member_down(node, topic, user)\n"                                              \
    "  if redis.call('SREM', P .. ':pset:' .. node, 't\\n' .. topic .. '\\n' .. user) == 0 then\n" \
    "    return end\n"                                                                             \
    "  if redis.call('HINCRBY', P .. ':pt:' .. topic, user, -1) <= 0 then\n"                       \
    "    redis.call('HDEL', P .. ':pt:' .. topic, user)\n"                                         \
    "    member_event(topic, user, 'herald.leave')\n"                                              \
    "  end\n"                                                                                      \
    "end\n"                                                                                        \
    "local function user_up(node, user, state)\n"                                                  \
    "  redis.call('HSET', P .. ':pu:' .. user, node, state)\n"                                     \
    "  redis.call('SADD', P .. ':pset:' .. node, 'u\\n' .. user)\n"                                \
    "end\n"                                                                                        \
    "local function seen(user, at)\n"                                                              \
    "  local old = tonumber(redis.call('HGET', P .. ':ls', user) or '0')\n"                        \
    "  if at > old then redis.call('HSET', P .. ':ls', user, num(at)) end\n"                       \
    "end\n"                                                                                        \
    "local function user_down(node, user, at)\n"                                                   \
    "  if redis.call('SREM', P .. ':pset:' .. node, 'u\\n' .. user) == 0 then return end\n"        \
    "  redis.call('HDEL', P .. ':pu:' .. user, node)\n"                                            \
    "  if at and redis.call('EXISTS', P .. ':pu:' .. user) == 0 then seen(user, at) end\n"         \
    "end\n"                                                                                        \
    "local function item_down(node, item, at)\n"                                                   \
    "  if string.sub(item, 1, 2) == 'u\\n' then user_down(node, string.sub(item, 3), at)\n"        \
    "  else\n"                                                                                     \
    "    local nl = string.find(item, '\\n', 3, true)\n"                                           \
    "    member_down(node, string.sub(item, 3, nl - 1), string.sub(item, nl + 1))\n"               \
    "  end\n"                                                                                      \
    "end\n"

/* ARGV[6..8]: topic, user, "1" joined / "0" left. */
static const char member_lua[] =
    LUA_PRELUDE "if ARGV[8] == '1' then member_up(NODE, ARGV[6], ARGV[7])\n"
                "else member_down(NODE, ARGV[6], ARGV[7]) end\n"
                "return 1\n";

/* ARGV[6..8]: user, connections here, transports mask; 0 connections: gone from this node (its
 * last-seen follows in a seen script, with the time its last connection dropped). */
static const char user_lua[] =
    LUA_PRELUDE "if ARGV[7] ~= '0' then user_up(NODE, ARGV[6], ARGV[7] .. ' ' .. ARGV[8])\n"
                "else user_down(NODE, ARGV[6], nil) end\n"
                "return 1\n";

/* ARGV[6..7]: user, last seen. */
static const char seen_lua[] = LUA_PRELUDE "seen(ARGV[6], tonumber(ARGV[7]))\n"
                                           "return 1\n";

/* Renews this node's lease and reaps nodes whose lease ran out; a reaped node's users were last
 * seen at its last renewal (its deadline less the extension). Returns {fresh, reaped}:
 * fresh = 1 when this node was not registered (first renewal, reaped after a stall, or a
 * Redis that lost its data): its state must be sent again. */
static const char beat_lua[] = LUA_PRELUDE
    "local fresh = redis.call('ZADD', P .. ':pn', num(now + LEASE), NODE)\n"
    "local dead = redis.call('ZRANGEBYSCORE', P .. ':pn', '-inf', num(now - 1), 'LIMIT', 0, 16)\n"
    "for _, node in ipairs(dead) do\n"
    "  local renewed = tonumber(redis.call('ZSCORE', P .. ':pn', node)) - LEASE\n"
    "  for _, item in ipairs(redis.call('SMEMBERS', P .. ':pset:' .. node)) do\n"
    "    item_down(node, item, renewed)\n"
    "  end\n"
    "  redis.call('DEL', P .. ':pset:' .. node)\n"
    "  redis.call('ZREM', P .. ':pn', node)\n"
    "end\n"
    "return {fresh, #dead}\n";

/* This node's whole state, ARGV[6..] as pairs (item, value): items not listed leave, listed
 * ones are (re)applied. Also renews the lease. */
static const char sync_lua[] = LUA_PRELUDE
    "redis.call('ZADD', P .. ':pn', num(now + LEASE), NODE)\n"
    "local want = {}\n"
    "for i = 6, #ARGV, 2 do want[ARGV[i]] = ARGV[i + 1] end\n"
    "for _, item in ipairs(redis.call('SMEMBERS', P .. ':pset:' .. NODE)) do\n"
    "  if not want[item] then item_down(NODE, item, now) end\n"
    "end\n"
    "for item, value in pairs(want) do\n"
    "  if string.sub(item, 1, 2) == 'u\\n' then user_up(NODE, string.sub(item, 3), value)\n"
    "  else\n"
    "    local nl = string.find(item, '\\n', 3, true)\n"
    "    member_up(NODE, string.sub(item, 3, nl - 1), string.sub(item, nl + 1))\n"
    "  end\n"
    "end\n"
    "return 1\n";

/* This node leaves (a clean stop): everything it held goes now, not at the lease's end. */
static const char leave_lua[] =
    LUA_PRELUDE "for _, item in ipairs(redis.call('SMEMBERS', P .. ':pset:' .. NODE)) do\n"
                "  item_down(NODE, item, now)\n"
                "end\n"
                "redis.call('DEL', P .. ':pset:' .. NODE)\n"
                "redis.call('ZREM', P .. ':pn', NODE)\n"
                "return 1\n";

/* ARGV[6..]: users. Returns {conns, mask, last_seen} per user, counting live nodes only. */
static const char query_lua[] = LUA_PRELUDE
    "local out = {}\n"
    "for i = 6, #ARGV do\n"
    "  local conns, mask = 0, 0\n"
    "  local held = redis.call('HGETALL', P .. ':pu:' .. ARGV[i])\n"
    "  for j = 1, #held, 2 do\n"
    "    local lease = redis.call('ZSCORE', P .. ':pn', held[j])\n"
    "    if lease and tonumber(lease) >= now then\n"
    "      local sp = string.find(held[j + 1], ' ', 1, true)\n"
    "      conns = conns + tonumber(string.sub(held[j + 1], 1, sp - 1))\n"
    "      mask = bit.bor(mask, tonumber(string.sub(held[j + 1], sp + 1)))\n"
    "    end\n"
    "  end\n"
    "  local seen = conns > 0 and num(now) or (redis.call('HGET', P .. ':ls', ARGV[i]) or '0')\n"
    "  out[#out + 1] = conns\n"
    "  out[#out + 1] = mask\n"
    "  out[#out + 1] = seen\n"
    "end\n"
    "return out\n";

/* ARGV[6..7]: topic, limit. Returns {count, user, nodes, user, nodes, ...}. */
static const char members_lua[] =
    LUA_PRELUDE "local key = P .. ':pt:' .. ARGV[6]\n"
                "local out = {redis.call('HLEN', key)}\n"
                "local limit = tonumber(ARGV[7])\n"
                "local cursor = '0'\n"
                "repeat\n"
                "  local page = redis.call('HSCAN', key, cursor, 'COUNT', 100)\n"
                "  cursor = page[1]\n"
                "  for j = 1, #page[2], 2 do\n"
                "    if (#out - 1) / 2 < limit then\n"
                "      out[#out + 1] = page[2][j]\n"
                "      out[#out + 1] = tonumber(page[2][j + 1])\n"
                "    end\n"
                "  end\n"
                "until cursor == '0' or (#out - 1) / 2 >= limit\n"
                "return out\n";

enum script { MEMBER, USER, SEEN, BEAT, SYNC, LEAVE, QUERY, MEMBERS, NSCRIPTS };

static const char *const scripts[NSCRIPTS] = {member_lua, user_lua,  seen_lua,  beat_lua,
                                              sync_lua,   leave_lua, query_lua, members_lua};

struct hr_presence_redis_s {
    hr_bus_t *bus;
    hr_presence_t *presence;
    const hr_config_t *config;
    char sha[NSCRIPTS][41];
    char prefix[1024], maxlen[24], ttl[24], node[200], lease[24];
    int64_t beat_every_ms, next_beat_ms;
    _Atomic int need_sync; /* set by the bus thread (a fresh renewal), read by worker 0 */
};

static hr_bus_cmd_t *script_cmd(hr_presence_redis_t *redis, enum script which, size_t nextra,
                                const char *const *extra, const size_t *extra_lens)
{
    const char *head[] = {redis->prefix, redis->maxlen, redis->ttl, redis->node, redis->lease};
    return hr_bus_script_cmd(redis->sha[which], head, 5, extra, extra_lens, nextra);
}

/* Fire and forget: lost when Redis is down, which the resync after the reconnect repairs. */
static void send_script(hr_presence_redis_t *redis, enum script which, size_t nextra,
                        const char *const *extra, const size_t *extra_lens)
{
    hr_bus_cmd_t *cmd = script_cmd(redis, which, nextra, extra, extra_lens);
    if (cmd && hr_bus_command(redis->bus, cmd) == 0) return;
    hr_bus_cmd_free(cmd);
}

/* ---- the sink (under the presence lock: only queues) ---------------------------------- */

static void redis_user_state(void *arg, const char *user, size_t len, unsigned conns,
                             unsigned via_mask)
{
    char conns_s[16], mask_s[16];
    snprintf(conns_s, sizeof conns_s, "%u", conns);
    snprintf(mask_s, sizeof mask_s, "%u", via_mask);
    const char *extra[] = {user, conns_s, mask_s};
    size_t lens[] = {len, strlen(conns_s), strlen(mask_s)};
    send_script(arg, USER, 3, extra, lens);
}

static void redis_member(void *arg, const char *topic, size_t topic_len, const char *user,
                         size_t user_len, int joined)
{
    const char *extra[] = {topic, user, joined ? "1" : "0"};
    size_t lens[] = {topic_len, user_len, 1};
    send_script(arg, MEMBER, 3, extra, lens);
}

static void redis_seen(void *arg, const char *user, size_t len, int64_t unix_ms)
{
    char ms[24];
    snprintf(ms, sizeof ms, "%lld", (long long)unix_ms);
    const char *extra[] = {user, ms};
    size_t lens[] = {len, strlen(ms)};
    send_script(arg, SEEN, 2, extra, lens);
}

/* ---- state, lease ---------------------------------------------------------------------- */

typedef struct sync_args_s {
    const char **argv;
    size_t *lens;
    char **owned; /* strings built here, freed after queuing */
    size_t n, cap, nowned;
    int failed;
} sync_args_t;

static void sync_push(sync_args_t *args, const char *text, size_t len, int owned)
{
    if (args->failed) return;
    if (args->n == args->cap) {
        size_t cap = args->cap ? args->cap * 2 : 64;
        const char **argv = realloc(args->argv, cap * sizeof *argv);
        size_t *lens = argv ? realloc(args->lens, cap * sizeof *lens) : NULL;
        char **own = lens ? realloc(args->owned, cap * sizeof *own) : NULL;
        if (argv) args->argv = argv;
        if (lens) args->lens = lens;
        if (own) args->owned = own;
        if (!own) {
            args->failed = 1;
            return;
        }
        args->cap = cap;
    }
    args->argv[args->n] = text;
    args->lens[args->n++] = len;
    if (owned) args->owned[args->nowned++] = (char *)text;
}

static void sync_user(void *arg, const char *user, size_t len, unsigned conns, unsigned mask)
{
    char *item = malloc(len + 3), *value = malloc(32);
    if (!item || !value) {
        free(item);
        free(value);
        ((sync_args_t *)arg)->failed = 1;
        return;
    }
    memcpy(item, "u\n", 2);
    memcpy(item + 2, user, len);
    /* A user in its grace keeps counting as one connection until the grace ends. */
    int value_len = snprintf(value, 32, "%u %u", conns ? conns : 1, mask);
    sync_push(arg, item, len + 2, 1);
    sync_push(arg, value, (size_t)value_len, 1);
}

static void sync_member(void *arg, const char *topic, size_t topic_len, const char *user,
                        size_t user_len)
{
    char *item = malloc(topic_len + user_len + 3);
    if (!item) {
        ((sync_args_t *)arg)->failed = 1;
        return;
    }
    memcpy(item, "t\n", 2);
    memcpy(item + 2, topic, topic_len);
    item[2 + topic_len] = '\n';
    memcpy(item + 3 + topic_len, user, user_len);
    sync_push(arg, item, topic_len + user_len + 3, 1);
    sync_push(arg, "", 0, 0);
}

/* Runs under the presence lock, after the walk: the sync is queued before any later change. */
static void sync_send(void *arg, void *redis)
{
    sync_args_t *args = arg;
    if (args->failed) {
        hr_error("presence.sync_failed", "reason=\"out of memory\"");
        return;
    }
    send_script(redis, SYNC, args->n, args->argv, args->lens);
}

static void send_sync(hr_presence_redis_t *redis)
{
    sync_args_t args = {0};
    hr_presence_snapshot(redis->presence, sync_user, sync_member, sync_send, &args, redis);
    hr_info("presence.sync", "node=%s items=%zu", redis->node, args.n / 2);
    for (size_t i = 0; i < args.nowned; i++)
        free(args.owned[i]);
    free(args.owned);
    free(args.argv);
    free(args.lens);
}

/* Bus thread: the renewal's answer {fresh, reaped}. */
static void on_beat(hr_bus_cmd_t *cmd)
{
    hr_presence_redis_t *redis = cmd->user;
    json_t *fresh = json_array_get(cmd->reply, 0), *reaped = json_array_get(cmd->reply, 1);
    if (json_integer_value(reaped) > 0)
        hr_info("presence.reaped", "nodes=%lld", (long long)json_integer_value(reaped));
    if (json_integer_value(fresh) == 1) atomic_store(&redis->need_sync, 1);
}

/* Bus thread, Redis (again) ready: whatever changed while it was away is put right at once. */
static void on_bus_ready(void *arg)
{
    send_sync(arg);
}

void hr_presence_redis_tick(hr_presence_redis_t *redis)
{
    if (!hr_bus_up(redis->bus)) return;
    if (atomic_exchange(&redis->need_sync, 0)) send_sync(redis);
    int64_t now = hr_clock_mono_ms();
    if (now < redis->next_beat_ms) return;
    redis->next_beat_ms = now + redis->beat_every_ms;
    hr_bus_cmd_t *cmd = script_cmd(redis, BEAT, 0, NULL, NULL);
    if (!cmd) return;
    cmd->on_reply = on_beat;
    cmd->user = redis;
    if (hr_bus_command(redis->bus, cmd) != 0) hr_bus_cmd_free(cmd);
}

void hr_presence_redis_stop(hr_presence_redis_t *redis)
{
    if (redis && hr_bus_up(redis->bus)) send_script(redis, LEAVE, 0, NULL, NULL);
}

hr_presence_redis_t *hr_presence_redis_new(hr_bus_t *bus, const hr_config_t *config,
                                           hr_presence_t **presence)
{
    hr_presence_redis_t *redis = calloc(1, sizeof *redis);
    if (!redis) return NULL;
    redis->bus = bus;
    redis->config = config;
    if (hr_bus_add_scripts(bus, scripts, NSCRIPTS, redis->sha) != 0) {
        free(redis);
        return NULL;
    }
    hr_bus_stats_t stats;
    hr_bus_stats(bus, &stats);
    snprintf(redis->prefix, sizeof redis->prefix, "%s", config->redis_prefix);
    snprintf(redis->node, sizeof redis->node, "%s", stats.node);
    snprintf(redis->maxlen, sizeof redis->maxlen, "%zu",
             config->history_size ? config->history_size : 1);
    snprintf(redis->ttl, sizeof redis->ttl, "%lld", (long long)config->history_ttl_ms);
    snprintf(redis->lease, sizeof redis->lease, "%lld", (long long)config->presence_lease_ms / 2);
    redis->beat_every_ms = config->presence_lease_ms / 4;
    atomic_init(&redis->need_sync, 0);
    hr_presence_config_t presence_config = {config->presence_grace_ms,
                                            config->last_seen_interval_ms, NULL, NULL};
    hr_presence_sink_t sink = {redis_user_state, redis_member, redis_seen, redis};
    redis->presence = *presence = hr_presence_new(&presence_config, &sink);
    if (!redis->presence) {
        free(redis);
        return NULL;
    }
    hr_bus_on_ready(bus, on_bus_ready, redis);
    return redis;
}

void hr_presence_redis_free(hr_presence_redis_t *redis)
{
    free(redis); /* the registry is the server's (server->presence) */
}

/* ---- queries: answered when Redis replies ---------------------------------------------- */

static json_t *users_json(const hr_bus_cmd_t *cmd)
{
    json_t *list = json_array();
    for (int i = 8; i < cmd->argc; i++) {
        size_t at = 3 * (size_t)(i - 8);
        hr_presence_info_t info = {0};
        info.conns = (unsigned)json_integer_value(json_array_get(cmd->reply, at));
        info.via_mask = (unsigned)json_integer_value(json_array_get(cmd->reply, at + 1));
        info.last_seen_ms = strtoll(json_string_value(json_array_get(cmd->reply, at + 2))
                                        ? json_string_value(json_array_get(cmd->reply, at + 2))
                                        : "0",
                                    NULL, 10);
        info.online = info.conns > 0;
        json_array_append_new(list, hr_presence_info_json(cmd->argv[i], cmd->lens[i], &info));
    }
    return list;
}

static json_t *members_json(const hr_bus_cmd_t *cmd)
{
    json_t *members = json_array();
    size_t n = json_array_size(cmd->reply);
    for (size_t i = 1; i + 1 < n; i += 2)
        json_array_append_new(members,
                              json_pack("{s:s, s:I}", "user",
                                        json_string_value(json_array_get(cmd->reply, i)), "nodes",
                                        json_integer_value(json_array_get(cmd->reply, i + 1))));
    json_int_t count = json_integer_value(json_array_get(cmd->reply, 0));
    return json_pack("{s:s%, s:I, s:o, s:b}", "topic", cmd->argv[8], cmd->lens[8], "count", count,
                     "members", members, "more", (size_t)count > json_array_size(members));
}

static json_t *user_answered(hr_bus_cmd_t *cmd, int *status)
{
    json_t *users = users_json(cmd), *one = json_incref(json_array_get(users, 0));
    json_decref(users);
    *status = 200;
    return one;
}

static json_t *users_answered(hr_bus_cmd_t *cmd, int *status)
{
    *status = 200;
    return json_pack("{s:o}", "users", users_json(cmd));
}

static json_t *members_answered(hr_bus_cmd_t *cmd, int *status)
{
    *status = 200;
    return members_json(cmd);
}

void hr_presence_redis_query(hr_presence_redis_t *redis, hr_exchange_t *ex,
                             const char *const *users, const size_t *lens, size_t n, int many)
{
    hr_api_bus_answer(ex, script_cmd(redis, QUERY, n, users, lens),
                      many ? users_answered : user_answered);
}

void hr_presence_redis_members(hr_presence_redis_t *redis, hr_exchange_t *ex, const char *topic,
                               size_t len, size_t limit)
{
    char limit_s[24];
    snprintf(limit_s, sizeof limit_s, "%zu", limit);
    const char *extra[] = {topic, limit_s};
    size_t lens[] = {len, strlen(limit_s)};
    hr_api_bus_answer(ex, script_cmd(redis, MEMBERS, 2, extra, lens), members_answered);
}
