/* hiredis async on a libuv loop. Debian's hiredis 0.14 ships an adapter that drops poll errors:
 * a refused connect or a reset connection (POLLERR) never reaches hiredis, so the context and
 * every reply it waits for hang forever. This one hands an error to hiredis as the events it
 * waits for, so it meets the socket error and fails cleanly (what later hiredis releases do). */
#ifndef HR_UV_REDIS_H
#define HR_UV_REDIS_H

#include <hiredis/async.h>
#include <uv.h>

/* Returns 0, or -1 (the context is then not attached and must be freed by the caller). */
int hr_uv_redis_attach(redisAsyncContext *ctx, uv_loop_t *loop);

/* When the context's socket was last readable (uv_now ms); 0 if never. For the command
 * timeout: bytes arriving is Redis making progress. */
uint64_t hr_uv_redis_last_read(const redisAsyncContext *ctx);

#endif
