/* libcurl multi on libuv; see curl_uv.h. */
#include <stdlib.h>

#include "core/curl_uv.h"

typedef struct socket_ctx_s {
    uv_poll_t poll;
    curl_socket_t fd;
    hr_curl_uv_t *curl;
} socket_ctx_t;

static void check_done(hr_curl_uv_t *curl)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(curl->multi, &left)))
        if (msg->msg == CURLMSG_DONE) curl->done(curl, msg->easy_handle, msg->data.result);
    if (curl->after) curl->after(curl);
}

static void on_poll(uv_poll_t *poll, int status, int events)
{
    socket_ctx_t *ctx = poll->data;
    int flags = status < 0 ? CURL_CSELECT_ERR
                           : ((events & UV_READABLE) ? CURL_CSELECT_IN : 0) |
                                 ((events & UV_WRITABLE) ? CURL_CSELECT_OUT : 0);
    int running;
    curl_multi_socket_action(ctx->curl->multi, ctx->fd, flags, &running);
    check_done(ctx->curl);
}

static void on_poll_closed(uv_handle_t *handle)
{
    free(handle->data);
}

static int on_socket(CURL *easy, curl_socket_t fd, int what, void *arg, void *socket_arg)
{
    (void)easy;
    hr_curl_uv_t *curl = arg;
    socket_ctx_t *ctx = socket_arg;
    if (what == CURL_POLL_REMOVE) {
        if (ctx) {
            uv_poll_stop(&ctx->poll);
            curl_multi_assign(curl->multi, fd, NULL);
            uv_close((uv_handle_t *)&ctx->poll, on_poll_closed);
        }
        return 0;
    }
    if (!ctx) {
        if (!(ctx = calloc(1, sizeof *ctx))) return -1;
        ctx->fd = fd;
        ctx->curl = curl;
        uv_poll_init_socket(curl->loop, &ctx->poll, fd);
        ctx->poll.data = ctx;
        curl_multi_assign(curl->multi, fd, ctx);
    }
    int events = (what & CURL_POLL_IN ? UV_READABLE : 0) | (what & CURL_POLL_OUT ? UV_WRITABLE : 0);
    uv_poll_start(&ctx->poll, events, on_poll);
    return 0;
}

static void on_timer(uv_timer_t *timer)
{
    hr_curl_uv_t *curl = timer->data;
    int running;
    curl_multi_socket_action(curl->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(curl);
}

static int on_timeout(CURLM *multi, long timeout_ms, void *arg)
{
    (void)multi;
    hr_curl_uv_t *curl = arg;
    if (timeout_ms < 0)
        uv_timer_stop(&curl->timer);
    else
        uv_timer_start(&curl->timer, on_timer, (uint64_t)timeout_ms, 0);
    return 0;
}

int hr_curl_uv_init(hr_curl_uv_t *curl, uv_loop_t *loop)
{
    curl->loop = loop;
    if (!(curl->multi = curl_multi_init())) return -1;
    uv_timer_init(loop, &curl->timer);
    curl->timer.data = curl;
    curl_multi_setopt(curl->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(curl->multi, CURLMOPT_SOCKETDATA, curl);
    curl_multi_setopt(curl->multi, CURLMOPT_TIMERFUNCTION, on_timeout);
    curl_multi_setopt(curl->multi, CURLMOPT_TIMERDATA, curl);
    return 0;
}

void hr_curl_uv_cleanup(hr_curl_uv_t *curl)
{
    if (curl->multi) curl_multi_cleanup(curl->multi);
    curl->multi = NULL;
}

void hr_curl_uv_close_handle(uv_handle_t *handle, void *arg)
{
    (void)arg;
    if (!uv_is_closing(handle)) uv_close(handle, handle->type == UV_POLL ? on_poll_closed : NULL);
}
