#include <stdlib.h>

#include "bus/uv_redis.h"

typedef struct uv_redis_s {
    redisAsyncContext *ctx; /* NULL once hiredis let go of it */
    uv_poll_t poll;
    int events;
    uint64_t last_read_ms; /* uv_now when the socket was last readable */
} uv_redis_t;

static void on_poll(uv_poll_t *handle, int status, int events)
{
    uv_redis_t *io = handle->data;
    /* On error (POLLERR: a refused connect, a reset) libuv reports no events: hand hiredis
     * every event it waits for, so its read or write meets the socket error and fails. */
    int ready = status < 0 ? io->events : events;
    if (ready & UV_READABLE) io->last_read_ms = uv_now(handle->loop);
    if (io->ctx && (ready & UV_READABLE)) redisAsyncHandleRead(io->ctx);
    if (io->ctx && (ready & UV_WRITABLE)) redisAsyncHandleWrite(io->ctx);
}

static void update(uv_redis_t *io, int events)
{
    io->events = events;
    if (events)
        uv_poll_start(&io->poll, events, on_poll);
    else
        uv_poll_stop(&io->poll);
}

static void add_read(void *arg)
{
    uv_redis_t *io = arg;
    update(io, io->events | UV_READABLE);
}

static void del_read(void *arg)
{
    uv_redis_t *io = arg;
    update(io, io->events & ~UV_READABLE);
}

static void add_write(void *arg)
{
    uv_redis_t *io = arg;
    update(io, io->events | UV_WRITABLE);
}

static void del_write(void *arg)
{
    uv_redis_t *io = arg;
    update(io, io->events & ~UV_WRITABLE);
}

static void on_closed(uv_handle_t *handle)
{
    free(handle->data);
}

static void cleanup(void *arg)
{
    uv_redis_t *io = arg;
    io->ctx = NULL;
    uv_close((uv_handle_t *)&io->poll, on_closed);
}

int hr_uv_redis_attach(redisAsyncContext *ctx, uv_loop_t *loop)
{
    if (ctx->ev.data) return -1;
    uv_redis_t *io = calloc(1, sizeof *io);
    if (!io) return -1;
    if (uv_poll_init(loop, &io->poll, ctx->c.fd) != 0) {
        free(io);
        return -1;
    }
    io->ctx = ctx;
    io->poll.data = io;
    ctx->ev.addRead = add_read;
    ctx->ev.delRead = del_read;
    ctx->ev.addWrite = add_write;
    ctx->ev.delWrite = del_write;
    ctx->ev.cleanup = cleanup;
    ctx->ev.data = io;
    return 0;
}

uint64_t hr_uv_redis_last_read(const redisAsyncContext *ctx)
{
    const uv_redis_t *io = ctx->ev.data;
    return io ? io->last_read_ms : 0;
}
