/* Lua for scripts that publish from inside Redis (presence's joins and leaves, delayed
 * messages), so the publish and what caused it are one atomic step: the same id counter, stream
 * entry and channel payload as bus.c's publish script (wire.h). The including script defines
 * P (the key prefix), MAXLEN and TTL (strings), now (unix ms) and num() (a number as digits).
 * publish() returns the id, or nil when the id space is spent. */
#ifndef HR_BUS_LUA_H
#define HR_BUS_LUA_H

#define HR_LUA_PUBLISH                                                                             \
    "local function publish(topic, event, data, retry, binary)\n"                                  \
    "  local seq = P .. ':seq'\n"                                                                  \
    "  local cur = redis.call('GET', seq)\n"                                                       \
    "  if cur and tonumber(cur) >= 9007199254740991 then return nil end\n"                         \
    "  redis.call('INCR', seq)\n"                                                                  \
    "  local id = redis.call('GET', seq)\n"                                                        \
    "  local stream = P .. ':s:' .. topic\n"                                                       \
    "  local prev = redis.call('HGET', P .. ':last', topic) or '0'\n"                              \
    "  redis.call('XADD', stream, 'MAXLEN', '~', MAXLEN, id .. '-0', 'p', prev, 't', num(now),\n"  \
    "    'e', event, 'r', retry, 'b', binary, 'd', data)\n"                                        \
    "  redis.call('HSET', P .. ':last', topic, id)\n"                                              \
    "  if TTL ~= '0' then redis.call('PEXPIRE', stream, TTL) end\n"                                \
    "  redis.call('PUBLISH', P .. ':c:' .. topic, id .. ' ' .. num(now) .. ' ' .. retry .. ' ' "   \
    "..\n"                                                                                         \
    "    binary .. ' ' .. string.len(event) .. '\\n' .. event .. data)\n"                          \
    "  return id\n"                                                                                \
    "end\n"

#endif
