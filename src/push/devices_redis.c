/* Device tokens in Redis; see devices_redis.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "push/devices_redis.h"

/* ARGV[1]: prefix. */
#define PRELUDE                                                                                    \
    "local P = ARGV[1]\n"                                                                          \
    "local t = redis.call('TIME')\n"                                                               \
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"                      \
    "local function unlink(token)\n"                                                               \
    "  local key = P .. ':dev:' .. token\n"                                                        \
    "  local f = redis.call('HMGET', key, 'user', 'topics')\n"                                     \
    "  if not f[1] then return false end\n"                                                        \
    "  redis.call('SREM', P .. ':devu:' .. f[1], token)\n"                                         \
    "  for _, topic in ipairs(cjson.decode(f[2] or '[]')) do\n"                                    \
    "    redis.call('SREM', P .. ':devt:' .. topic, token)\n"                                      \
    "  end\n"                                                                                      \
    "  redis.call('DEL', key)\n"                                                                   \
    "  redis.call('ZREM', P .. ':devage', token)\n"                                                \
    "  return f[1]\n"                                                                              \
    "end\n"

/* ARGV[2..8]: token, user, body, topics, updated, per-user max, total max. */
static const char put_lua[] =
    PRELUDE "local token, user = ARGV[2], ARGV[3]\n"
            "if not unlink(token) and redis.call('ZCARD', P .. ':devage') >= tonumber(ARGV[8])\n"
            "  then return -1 end\n"
            "local mine = redis.call('SMEMBERS', P .. ':devu:' .. user)\n"
            "if #mine >= tonumber(ARGV[7]) then\n" /* the least recently refreshed goes */
            "  local oldest, at = nil, nil\n"
            "  for _, tok in ipairs(mine) do\n"
            "    local s = tonumber(redis.call('ZSCORE', P .. ':devage', tok) or '0')\n"
            "    if not at or s < at then oldest, at = tok, s end\n"
            "  end\n"
            "  unlink(oldest)\n"
            "end\n"
            "redis.call('HSET', P .. ':dev:' .. token, 'user', user, 'body', ARGV[4], 'topics',\n"
            "  ARGV[5], 'updated', ARGV[6])\n"
            "redis.call('SADD', P .. ':devu:' .. user, token)\n"
            "for _, topic in ipairs(cjson.decode(ARGV[5])) do\n"
            "  redis.call('SADD', P .. ':devt:' .. topic, token)\n"
            "end\n"
            "redis.call('ZADD', P .. ':devage', ARGV[6], token)\n"
            "return 1\n";

/* ARGV[2..3]: token, user ("" = any). */
static const char remove_lua[] =
    PRELUDE "local owner = redis.call('HGET', P .. ':dev:' .. ARGV[2], 'user')\n"
            "if not owner or (ARGV[3] ~= '' and owner ~= ARGV[3]) then return 0 end\n"
            "unlink(ARGV[2])\n"
            "return 1\n";

/* ARGV[2]: user. */
static const char list_lua[] =
    PRELUDE "local out = {}\n"
            "for _, tok in ipairs(redis.call('SMEMBERS', P .. ':devu:' .. ARGV[2])) do\n"
            "  local f = redis.call('HMGET', P .. ':dev:' .. tok, 'body', 'updated')\n"
            "  if f[1] then\n"
            "    out[#out + 1] = tok\n"
            "    out[#out + 1] = f[1]\n"
            "    out[#out + 1] = tonumber(f[2])\n"
            "  end\n"
            "end\n"
            "return out\n";

/* ARGV[2..5]: "u" or "t", name, "1" offline only, max. */
static const char targets_lua[] =
    PRELUDE "local set = P .. (ARGV[2] == 'u' and ':devu:' or ':devt:') .. ARGV[3]\n"
            "local out, online = {}, {}\n"
            "local function is_online(user)\n"
            "  if online[user] ~= nil then return online[user] end\n"
            "  local held = redis.call('HKEYS', P .. ':pu:' .. user)\n"
            "  online[user] = false\n"
            "  for _, node in ipairs(held) do\n"
            "    local lease = redis.call('ZSCORE', P .. ':pn', node)\n"
            "    if lease and tonumber(lease) >= now then online[user] = true end\n"
            "  end\n"
            "  return online[user]\n"
            "end\n"
            "for _, tok in ipairs(redis.call('SMEMBERS', set)) do\n"
            "  if #out >= 3 * tonumber(ARGV[5]) then break end\n"
            "  local f = redis.call('HMGET', P .. ':dev:' .. tok, 'user', 'body')\n"
            "  if f[1] and not (ARGV[4] == '1' and is_online(f[1])) then\n"
            "    out[#out + 1] = tok\n"
            "    out[#out + 1] = f[1]\n"
            "    out[#out + 1] = cjson.decode(f[2]).platform\n"
            "  end\n"
            "end\n"
            "return out\n";

/* ARGV[2..4]: node, cutoff, lease ms. */
static const char expire_lua[] =
    PRELUDE "local holder = redis.call('GET', P .. ':devjob')\n"
            "if holder and holder ~= ARGV[2] then return -1 end\n"
            "redis.call('SET', P .. ':devjob', ARGV[2], 'PX', ARGV[4])\n"
            "local gone = redis.call('ZRANGEBYSCORE', P .. ':devage', '-inf', '(' .. ARGV[3],\n"
            "  'LIMIT', 0, 1000)\n"
            "for _, tok in ipairs(gone) do unlink(tok) end\n"
            "return #gone\n";

enum script { PUT, REMOVE, LIST, TARGETS, EXPIRE, NSCRIPTS };
static const char *const scripts[NSCRIPTS] = {put_lua, remove_lua, list_lua, targets_lua,
                                              expire_lua};

struct hr_devices_redis_s {
    hr_bus_t *bus;
    char sha[NSCRIPTS][41];
    char prefix[1024], node[200], per_user[16], total[24];
};

hr_devices_redis_t *hr_devices_redis_new(hr_bus_t *bus, const hr_config_t *config)
{
    hr_devices_redis_t *redis = calloc(1, sizeof *redis);
    if (!redis) return NULL;
    redis->bus = bus;
    if (hr_bus_add_scripts(bus, scripts, NSCRIPTS, redis->sha) != 0) {
        free(redis);
        return NULL;
    }
    hr_bus_stats_t stats;
    hr_bus_stats(bus, &stats);
    snprintf(redis->prefix, sizeof redis->prefix, "%s", config->redis_prefix);
    snprintf(redis->node, sizeof redis->node, "%s", stats.node);
    snprintf(redis->per_user, sizeof redis->per_user, "%d", HR_DEVICES_PER_USER);
    snprintf(redis->total, sizeof redis->total, "%zu", config->fcm_max_devices);
    return redis;
}

void hr_devices_redis_free(hr_devices_redis_t *redis)
{
    free(redis);
}

static hr_bus_cmd_t *script(hr_devices_redis_t *redis, enum script which, size_t nextra,
                            const char *const *extra, const size_t *extra_lens)
{
    const char *head[] = {redis->prefix};
    return hr_bus_script_cmd(redis->sha[which], head, 1, extra, extra_lens, nextra);
}

hr_bus_cmd_t *hr_devices_redis_put(hr_devices_redis_t *redis, const hr_device_info_t *info)
{
    json_t *topics = info->topics ? json_incref(info->topics) : json_array();
    json_t *body =
        json_pack("{s:s, s:s, s:O, s:O}", "platform", info->platform, "app_id", info->app_id,
                  "topics", topics, "labels", info->labels ? info->labels : json_null());
    char *body_text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    char *topics_text = json_dumps(topics, JSON_COMPACT);
    json_decref(body);
    json_decref(topics);
    char updated[24];
    snprintf(updated, sizeof updated, "%lld", (long long)info->updated_ms);
    hr_bus_cmd_t *cmd = NULL;
    if (body_text && topics_text) {
        const char *extra[] = {info->token, info->user,      body_text,   topics_text,
                               updated,     redis->per_user, redis->total};
        size_t lens[] = {info->token_len,     info->user_len,  strlen(body_text),
                         strlen(topics_text), strlen(updated), strlen(redis->per_user),
                         strlen(redis->total)};
        cmd = script(redis, PUT, 7, extra, lens);
    }
    free(body_text);
    free(topics_text);
    return cmd;
}

hr_bus_cmd_t *hr_devices_redis_remove(hr_devices_redis_t *redis, const char *user, size_t user_len,
                                      const char *token, size_t token_len)
{
    const char *extra[] = {token, user ? user : ""};
    size_t lens[] = {token_len, user ? user_len : 0};
    return script(redis, REMOVE, 2, extra, lens);
}

hr_bus_cmd_t *hr_devices_redis_list(hr_devices_redis_t *redis, const char *user, size_t len)
{
    const char *extra[] = {user};
    return script(redis, LIST, 1, extra, &len);
}

hr_bus_cmd_t *hr_devices_redis_targets(hr_devices_redis_t *redis, int of_user, const char *name,
                                       size_t len, int offline_only)
{
    char max[24];
    snprintf(max, sizeof max, "%d", 100000);
    const char *extra[] = {of_user ? "u" : "t", name, offline_only ? "1" : "0", max};
    size_t lens[] = {1, len, 1, strlen(max)};
    return script(redis, TARGETS, 4, extra, lens);
}

void hr_devices_redis_invalid(hr_devices_redis_t *redis, const char *token, size_t len)
{
    hr_bus_cmd_t *cmd = hr_devices_redis_remove(redis, NULL, 0, token, len);
    if (cmd && hr_bus_command(redis->bus, cmd) == 0) return;
    hr_bus_cmd_free(cmd);
}

hr_bus_cmd_t *hr_devices_redis_expire(hr_devices_redis_t *redis, int64_t cutoff_ms,
                                      int64_t lease_ms)
{
    char cutoff[24], lease[24];
    snprintf(cutoff, sizeof cutoff, "%lld", (long long)cutoff_ms);
    snprintf(lease, sizeof lease, "%lld", (long long)lease_ms);
    const char *extra[] = {redis->node, cutoff, lease};
    return script(redis, EXPIRE, 3, extra, NULL);
}
