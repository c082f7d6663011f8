/* The cluster schedule; see delayed_redis.h.
 *
 *   PREFIX:dz          zset  id -> due (unix ms)
 *   PREFIX:dq:ID       hash  topics (JSON array), event, data, retry, binary, fcm, push
 *   PREFIX:dseq        the ids */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus/lua.h"
#include "delay/delayed_redis.h"

/* ARGV[1..3]: prefix, stream maxlen, stream ttl. */
#define PRELUDE                                                                                    \
    "local P, MAXLEN, TTL = ARGV[1], ARGV[2], ARGV[3]\n"                                           \
    "local t = redis.call('TIME')\n"                                                               \
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"                      \
    "local function num(x) return string.format('%.0f', x) end\n" HR_LUA_PUBLISH

/* ARGV[4..]: max waiting, due, topics, event, data, retry, binary, fcm, push, max bytes. */
static const char add_lua[] =
    PRELUDE "local size = #ARGV[6] + #ARGV[7] + #ARGV[8] + #ARGV[12] + 64\n"
            "if redis.call('ZCARD', P .. ':dz') >= tonumber(ARGV[4]) or\n"
            "   tonumber(redis.call('GET', P .. ':dbytes') or '0') + size > tonumber(ARGV[13])\n"
            "  then return -1 end\n"
            "local id = redis.call('INCR', P .. ':dseq')\n"
            "redis.call('HSET', P .. ':dq:' .. id, 'topics', ARGV[6], 'event', ARGV[7],\n"
            "  'data', ARGV[8], 'retry', ARGV[9], 'binary', ARGV[10], 'fcm', ARGV[11],\n"
            "  'push', ARGV[12], 'size', size)\n"
            "redis.call('INCRBY', P .. ':dbytes', size)\n"
            "redis.call('ZADD', P .. ':dz', ARGV[5], id)\n"
            "return id\n";

/* ARGV[4]: limit. */
static const char list_lua[] =
    PRELUDE "local out = {redis.call('ZCARD', P .. ':dz')}\n"
            "local ids = redis.call('ZRANGE', P .. ':dz', 0, tonumber(ARGV[4]) - 1, 'WITHSCORES')\n"
            "for i = 1, #ids, 2 do\n"
            "  local f = redis.call('HMGET', P .. ':dq:' .. ids[i], 'topics', 'event')\n"
            "  out[#out + 1] = {tonumber(ids[i]), tonumber(ids[i + 1]), f[1] or '[]', f[2] or ''}\n"
            "end\n"
            "return out\n";

/* ARGV[4]: id. */
static const char cancel_lua[] =
    PRELUDE "if redis.call('ZREM', P .. ':dz', ARGV[4]) == 0 then return 0 end\n"
            "local size = redis.call('HGET', P .. ':dq:' .. ARGV[4], 'size') or '0'\n"
            "redis.call('DECRBY', P .. ':dbytes', size)\n"
            "redis.call('DEL', P .. ':dq:' .. ARGV[4])\n"
            "return 1\n";

/* Up to 32 due messages: each taken out of the schedule and published in the same step. */
static const char take_lua[] =
    PRELUDE "local out = {}\n"
            "for _, id in ipairs(redis.call('ZRANGEBYSCORE', P .. ':dz', '-inf', num(now),\n"
            "    'LIMIT', 0, 32)) do\n"
            "  redis.call('ZREM', P .. ':dz', id)\n"
            "  local key = P .. ':dq:' .. id\n"
            "  local f = redis.call('HMGET', key, 'topics', 'event', 'data', 'retry', 'binary',\n"
            "    'fcm', 'push', 'size')\n"
            "  redis.call('DECRBY', P .. ':dbytes', f[8] or '0')\n"
            "  redis.call('DEL', key)\n"
            "  if f[1] then\n"
            "    for _, topic in ipairs(cjson.decode(f[1])) do\n"
            "      local mid = publish(topic, f[2], f[3], f[4], f[5])\n"
            "      if mid then\n"
            "        for _, v in ipairs({topic, mid, f[2], f[3], f[5], f[6], f[7]}) do\n"
            "          out[#out + 1] = v\n"
            "        end\n"
            "      end\n"
            "    end\n"
            "  end\n"
            "end\n"
            "return out\n";

enum script { ADD, LIST, CANCEL, TAKE, NSCRIPTS };
static const char *const scripts[NSCRIPTS] = {add_lua, list_lua, cancel_lua, take_lua};

struct hr_delayed_redis_s {
    hr_bus_t *bus;
    char sha[NSCRIPTS][41];
    char prefix[1024], maxlen[24], ttl[24], max[24], max_bytes[24];
};

hr_delayed_redis_t *hr_delayed_redis_new(hr_bus_t *bus, const hr_config_t *config)
{
    hr_delayed_redis_t *redis = calloc(1, sizeof *redis);
    if (!redis) return NULL;
    redis->bus = bus;
    if (hr_bus_add_scripts(bus, scripts, NSCRIPTS, redis->sha) != 0) {
        free(redis);
        return NULL;
    }
    snprintf(redis->prefix, sizeof redis->prefix, "%s", config->redis_prefix);
    snprintf(redis->maxlen, sizeof redis->maxlen, "%zu",
             config->history_size ? config->history_size : 1);
    snprintf(redis->ttl, sizeof redis->ttl, "%lld", (long long)config->history_ttl_ms);
    snprintf(redis->max, sizeof redis->max, "%zu", config->delayed_max);
    snprintf(redis->max_bytes, sizeof redis->max_bytes, "%zu", config->delayed_max_bytes);
    return redis;
}

void hr_delayed_redis_free(hr_delayed_redis_t *redis)
{
    free(redis);
}

static hr_bus_cmd_t *script(hr_delayed_redis_t *redis, enum script which, size_t nextra,
                            const char *const *extra, const size_t *extra_lens)
{
    const char *head[] = {redis->prefix, redis->maxlen, redis->ttl};
    return hr_bus_script_cmd(redis->sha[which], head, 3, extra, extra_lens, nextra);
}

hr_bus_cmd_t *hr_delayed_redis_add(hr_delayed_redis_t *redis, const char *const *names,
                                   const size_t *lens, size_t n, const hr_pub_body_t *body,
                                   int64_t due_ms)
{
    json_t *list = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(list, json_stringn(names[i], lens[i]));
    char *topics = json_dumps(list, JSON_COMPACT);
    json_decref(list);
    char *push = body->push ? json_dumps(body->push, JSON_COMPACT) : NULL;
    char due[24], retry[16], fcm[8];
    snprintf(due, sizeof due, "%lld", (long long)due_ms);
    snprintf(retry, sizeof retry, "%u", body->retry_ms);
    snprintf(fcm, sizeof fcm, "%d", (int)body->fcm);
    const char *extra[] = {redis->max,
                           due,
                           topics ? topics : "[]",
                           body->event ? body->event : "",
                           body->data,
                           retry,
                           "0",
                           fcm,
                           push ? push : "",
                           redis->max_bytes};
    size_t extra_lens[] = {strlen(redis->max),
                           strlen(due),
                           strlen(extra[2]),
                           body->event ? body->event_len : 0,
                           body->data_len,
                           strlen(retry),
                           1,
                           strlen(fcm),
                           push ? strlen(push) : 0,
                           strlen(redis->max_bytes)};
    hr_bus_cmd_t *cmd = script(redis, ADD, 10, extra, extra_lens);
    free(topics);
    free(push);
    return cmd;
}

hr_bus_cmd_t *hr_delayed_redis_list(hr_delayed_redis_t *redis, size_t limit)
{
    char text[24];
    snprintf(text, sizeof text, "%zu", limit);
    const char *extra[] = {text};
    return script(redis, LIST, 1, extra, NULL);
}

hr_bus_cmd_t *hr_delayed_redis_cancel(hr_delayed_redis_t *redis, uint64_t id)
{
    char text[24];
    snprintf(text, sizeof text, "%llu", (unsigned long long)id);
    const char *extra[] = {text};
    return script(redis, CANCEL, 1, extra, NULL);
}

hr_bus_cmd_t *hr_delayed_redis_take(hr_delayed_redis_t *redis)
{
    return script(redis, TAKE, 0, NULL, NULL);
}
