/* Cluster mode's pools; see pool_redis.h. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/utf8.h"
#include "pool/pool_redis.h"

/* ARGV: key, need. */
static const char ask_lua[] = "local n = redis.call('SCARD', ARGV[1])\n"
                              "if n >= tonumber(ARGV[2]) then\n"
                              "  return {n, redis.call('SRANDMEMBER', ARGV[1])}\n"
                              "end\n"
                              "return {n}\n";

/* ARGV: key, member, size, ttl ms. The new member stays; others go past the size. */
static const char add_lua[] = "redis.call('SADD', ARGV[1], ARGV[2])\n"
                              "local n = redis.call('SCARD', ARGV[1])\n"
                              "local tries = 0\n"
                              "while n > tonumber(ARGV[3]) and tries < 1000 do\n"
                              "  local other = redis.call('SRANDMEMBER', ARGV[1])\n"
                              "  if other ~= ARGV[2] then\n"
                              "    redis.call('SREM', ARGV[1], other)\n"
                              "    n = n - 1\n"
                              "  end\n"
                              "  tries = tries + 1\n"
                              "end\n"
                              "redis.call('PEXPIRE', ARGV[1], ARGV[4])\n"
                              "return n\n";

/* ARGV: key, id (16 hex digits of the SHA-1 of the member's bytes, as hr_pool_member_id). */
static const char remove_lua[] =
    "for _, m in ipairs(redis.call('SMEMBERS', ARGV[1])) do\n"
    "  local nl = string.find(m, '\\n', 1, true)\n"
    "  if nl and string.sub(redis.sha1hex(string.sub(m, nl + 1)), 1, 16) == ARGV[2] then\n"
    "    return redis.call('SREM', ARGV[1], m)\n"
    "  end\n"
    "end\n"
    "return 0\n";

enum script { ASK, ADD, REMOVE, NSCRIPTS };
static const char *const scripts[NSCRIPTS] = {ask_lua, add_lua, remove_lua};

struct hr_pool_redis_s {
    hr_bus_t *bus;
    char sha[NSCRIPTS][41];
    char prefix[1040]; /* --redis-prefix (under 1024 bytes) and ":pool:" */
    int64_t history_ttl_ms;
};

/* The bus thread, after CONFIG GET maxmemory-policy: a warning when pools and history cannot
 * share this Redis safely. */
static void policy_read(hr_bus_cmd_t *cmd)
{
    hr_pool_redis_t *redis = cmd->user;
    const char *policy = json_string_value(json_array_get(cmd->reply, 1));
    if (!policy) {
        hr_warn("pool.redis_policy", "policy=unknown reason=\"CONFIG GET refused: check that "
                                     "maxmemory-policy is volatile-lfu\"");
    } else if (strncmp(policy, "allkeys-", 8) == 0) {
        hr_warn("pool.redis_policy",
                "policy=%s reason=\"may evict history streams; use volatile-lfu\"", policy);
    } else if (strcmp(policy, "noeviction") == 0) {
        hr_warn("pool.redis_policy",
                "policy=%s reason=\"pool keys are never evicted; at maxmemory writes fail; use "
                "volatile-lfu\"",
                policy);
    } else if (strcmp(policy, "volatile-lfu") != 0) {
        hr_warn("pool.redis_policy", "policy=%s reason=\"not LFU; use volatile-lfu\"", policy);
    } else if (redis->history_ttl_ms > 0) {
        hr_warn("pool.redis_policy",
                "policy=%s reason=\"history streams carry a TTL (--history-ttl) and so may be "
                "evicted too; set --history-ttl 0\"",
                policy);
    } else {
        hr_info("pool.redis_policy", "policy=%s", policy);
    }
}

static void check_policy(void *arg)
{
    hr_pool_redis_t *redis = arg;
    const char *argv[] = {"CONFIG", "GET", "maxmemory-policy"};
    hr_bus_cmd_t *cmd = hr_bus_cmd_new(3, argv, NULL);
    if (!cmd) return;
    cmd->on_reply = policy_read;
    cmd->user = redis;
    if (hr_bus_command(redis->bus, cmd) != 0) hr_bus_cmd_free(cmd);
}

hr_pool_redis_t *hr_pool_redis_new(hr_bus_t *bus, const hr_config_t *config)
{
    hr_pool_redis_t *redis = calloc(1, sizeof *redis);
    if (!redis) return NULL;
    redis->bus = bus;
    redis->history_ttl_ms = config->history_ttl_ms;
    snprintf(redis->prefix, sizeof redis->prefix, "%s:pool:", config->redis_prefix);
    if (hr_bus_add_scripts(bus, scripts, NSCRIPTS, redis->sha) != 0 ||
        hr_bus_on_ready(bus, check_policy, redis) != 0) {
        free(redis);
        return NULL;
    }
    return redis;
}

void hr_pool_redis_free(hr_pool_redis_t *redis)
{
    free(redis);
}

/* PREFIX:pool:NAME KEY (the store key). */
static char *redis_key(hr_pool_redis_t *redis, const char *key, size_t len)
{
    size_t prefix_len = strlen(redis->prefix);
    char *full = malloc(prefix_len + len + 1);
    if (!full) return NULL;
    memcpy(full, redis->prefix, prefix_len);
    memcpy(full + prefix_len, key, len);
    full[prefix_len + len] = '\0';
    return full;
}

static hr_bus_cmd_t *on_key(hr_pool_redis_t *redis, const char *key, size_t len, int argc,
                            const char **argv, size_t *lens, int key_at)
{
    char *full = redis_key(redis, key, len);
    if (!full) return NULL;
    argv[key_at] = full;
    lens[key_at] = strlen(full);
    hr_bus_cmd_t *cmd = hr_bus_cmd_new(argc, argv, lens);
    free(full);
    return cmd;
}

hr_bus_cmd_t *hr_pool_redis_ask(hr_pool_redis_t *redis, const char *key, size_t len, unsigned need)
{
    char need_text[16];
    snprintf(need_text, sizeof need_text, "%u", need);
    const char *argv[] = {"EVALSHA", redis->sha[ASK], "0", NULL, need_text};
    size_t lens[] = {7, 40, 1, 0, strlen(need_text)};
    return on_key(redis, key, len, 5, argv, lens, 3);
}

hr_bus_cmd_t *hr_pool_redis_random(hr_pool_redis_t *redis, const char *key, size_t len)
{
    const char *argv[] = {"SRANDMEMBER", NULL};
    size_t lens[] = {11, 0};
    return on_key(redis, key, len, 2, argv, lens, 1);
}

hr_bus_cmd_t *hr_pool_redis_members(hr_pool_redis_t *redis, const char *key, size_t len)
{
    const char *argv[] = {"SMEMBERS", NULL};
    size_t lens[] = {8, 0};
    return on_key(redis, key, len, 2, argv, lens, 1);
}

hr_bus_cmd_t *hr_pool_redis_remove(hr_pool_redis_t *redis, const char *key, size_t len, uint64_t id)
{
    if (!id) {
        const char *argv[] = {"DEL", NULL};
        size_t lens[] = {3, 0};
        return on_key(redis, key, len, 2, argv, lens, 1);
    }
    char hex[17];
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)id);
    const char *argv[] = {"EVALSHA", redis->sha[REMOVE], "0", NULL, hex};
    size_t lens[] = {7, 40, 1, 0, 16};
    return on_key(redis, key, len, 5, argv, lens, 3);
}

int hr_pool_redis_send(hr_pool_redis_t *redis, hr_bus_cmd_t *cmd)
{
    return hr_bus_command(redis->bus, cmd);
}

void hr_pool_redis_add(hr_pool_redis_t *redis, const char *key, size_t len, const char *type,
                       const char *bytes, size_t bytes_len, unsigned size, int64_t ttl_s)
{
    if (!hr_utf8_valid((const uint8_t *)bytes, bytes_len)) {
        hr_info("pool.not_pooled",
                "key=\"%.*s\" reason=\"binary answers are not pooled in "
                "cluster mode\"",
                (int)len, key);
        return;
    }
    size_t type_len = strlen(type);
    char *member = malloc(type_len + 1 + bytes_len);
    char size_text[16], ttl_text[24];
    snprintf(size_text, sizeof size_text, "%u", size);
    snprintf(ttl_text, sizeof ttl_text, "%lld",
             (long long)(ttl_s > 0 ? ttl_s : HR_POOL_REDIS_TTL_S) * 1000);
    hr_bus_cmd_t *cmd = NULL;
    if (member) {
        memcpy(member, type, type_len);
        member[type_len] = '\n';
        memcpy(member + type_len + 1, bytes, bytes_len);
        const char *argv[] = {"EVALSHA", redis->sha[ADD], "0", NULL, member, size_text, ttl_text};
        size_t lens[] = {
            7, 40, 1, 0, type_len + 1 + bytes_len, strlen(size_text), strlen(ttl_text)};
        cmd = on_key(redis, key, len, 7, argv, lens, 3);
    }
    free(member);
    if (!cmd || hr_bus_command(redis->bus, cmd) != 0) {
        hr_bus_cmd_free(cmd);
        hr_warn("pool.redis_add_failed", "key=\"%.*s\" reason=\"redis unavailable\"", (int)len,
                key);
    }
}

int hr_pool_redis_split(const char *member, size_t len, char *type, size_t type_size,
                        const char **bytes, size_t *bytes_len)
{
    const char *newline = member ? memchr(member, '\n', len) : NULL;
    if (!newline || (size_t)(newline - member) >= type_size) return -1;
    memcpy(type, member, (size_t)(newline - member));
    type[newline - member] = '\0';
    *bytes = newline + 1;
    *bytes_len = len - (size_t)(newline - member) - 1;
    return 0;
}
