/* The pools' upstream calls; see upstream.h. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "core/clock.h"
#include "core/curl_uv.h"
#include "core/log.h"
#include "pool/upstream.h"

typedef struct lane_s { /* one pool's calls */
    hr_list_t waiting;  /* upstream thread: in order */
    size_t running;     /* upstream thread */
    unsigned limit;
    atomic_uint_fast64_t calls;
    atomic_size_t in_flight, queued;
} lane_t;

struct hr_upstream_s {
    size_t max_answer;
    hr_upstream_done_fn done;
    void *arg;
    uv_loop_t loop;
    uv_thread_t thread;
    uv_async_t wake;
    hr_curl_uv_t curl;
    int started;
    pthread_mutex_t lock; /* incoming, stopping */
    hr_list_t incoming;
    int stopping;
    hr_list_t running; /* upstream thread: calls made */
    unsigned nlanes;
    lane_t lanes[HR_POOLS_MAX];
};

void hr_upstream_call_free(hr_upstream_call_t *call)
{
    if (!call) return;
    hr_flight_unref(call->flight);
    curl_slist_free_all(call->headers);
    free(call->url);
    free(call->body);
    free(call);
}

/* ---- answers ---------------------------------------------------------------------------- */

/* The first bytes tell the status and the type: a 2xx event stream is relayed from now on. */
static void first_bytes(hr_upstream_call_t *call)
{
    char *type = NULL;
    curl_easy_getinfo(call->easy, CURLINFO_RESPONSE_CODE, &call->status);
    curl_easy_getinfo(call->easy, CURLINFO_CONTENT_TYPE, &type);
    snprintf(call->content_type, sizeof call->content_type, "%s", type ? type : "");
    call->streaming = call->status >= 200 && call->status <= 299 &&
                      strncmp(call->content_type, "text/event-stream", 17) == 0;
    hr_flight_t *flight = call->flight;
    pthread_mutex_lock(&flight->lock);
    if (call->streaming) flight->phase = HR_FLIGHT_STREAMING;
    memcpy(flight->content_type, call->content_type, sizeof flight->content_type);
    pthread_mutex_unlock(&flight->lock);
}

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    hr_upstream_call_t *call = arg;
    size_t len = size * n;
    if (!call->status) first_bytes(call);
    if (call->status < 200 || call->status > 299) { /* keep the start, for the reason */
        size_t room = sizeof call->error_body - 1 - call->error_len;
        size_t take = len < room ? len : room;
        memcpy(call->error_body + call->error_len, data, take);
        call->error_len += take;
        call->error_body[call->error_len] = '\0';
        return len;
    }
    /* flight->len: written only on this thread */
    if (call->flight->len + len > call->up->max_answer) {
        call->too_big = 1;
        return 0; /* curl stops: CURLE_WRITE_ERROR */
    }
    if (hr_flight_append(call->flight, data, len) != 0) return 0;
    if (call->streaming) hr_flight_notify(call->flight);
    return len;
}

/* Why a call gave no usable answer: the status to answer with, and the reason. 0 when it did. */
static int verdict(hr_upstream_call_t *call, CURLcode result, char *reason, size_t size)
{
    if (result == CURLE_OK && call->status >= 200 && call->status <= 299) return 0;
    if (call->too_big) {
        snprintf(reason, size, "upstream answer over %zu bytes", call->up->max_answer);
    } else if (result == CURLE_OPERATION_TIMEDOUT) {
        snprintf(reason, size, "upstream timed out after %lld ms", (long long)call->timeout_ms);
        return 504;
    } else if (result != CURLE_OK) {
        snprintf(reason, size, "upstream failed: %s", curl_easy_strerror(result));
    } else {
        for (size_t i = 0; i < call->error_len; i++) /* a reason is one printable line */
            if ((unsigned char)call->error_body[i] < 0x20 || call->error_body[i] == '"')
                call->error_body[i] = ' ';
        snprintf(reason, size, "upstream answered %ld: %.100s", call->status, call->error_body);
    }
    return 502;
}

static void finish(hr_upstream_t *up, hr_upstream_call_t *call, int status, const char *reason)
{
    up->done(up->arg, call, status, reason);
    hr_upstream_call_free(call);
}

static void transfer_done(hr_curl_uv_t *curl, CURL *easy, CURLcode result)
{
    hr_upstream_t *up = curl->user;
    hr_upstream_call_t *call;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&call);
    if (!call->status) first_bytes(call); /* an answer without a body */
    curl_multi_remove_handle(curl->multi, easy);
    curl_easy_cleanup(easy);
    call->easy = NULL;
    hr_list_remove(&call->link);
    lane_t *lane = &up->lanes[call->pool];
    lane->running--;
    atomic_store(&lane->in_flight, lane->running);
    char reason[160] = "";
    int status = verdict(call, result, reason, sizeof reason);
    hr_debug("pool.upstream", "pool=%u status=%ld ms=%lld bytes=%zu outcome=%d", call->pool,
             call->status, (long long)(hr_clock_mono_ms() - call->started_ms), call->flight->len,
             status);
    finish(up, call, status, reason);
}

/* ---- calls ------------------------------------------------------------------------------ */

static int make(hr_upstream_t *up, hr_upstream_call_t *call)
{
    CURL *easy = curl_easy_init();
    if (!easy) return -1;
    call->easy = easy;
    call->started_ms = hr_clock_mono_ms();
    curl_easy_setopt(easy, CURLOPT_URL, call->url);
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, call->headers);
    if (call->post) {
        curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE, (long)call->body_len);
        curl_easy_setopt(easy, CURLOPT_POSTFIELDS, call->body ? call->body : "");
    }
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, call);
    curl_easy_setopt(easy, CURLOPT_PRIVATE, call);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, (long)call->timeout_ms);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
    if (curl_multi_add_handle(up->curl.multi, easy) != CURLM_OK) {
        curl_easy_cleanup(easy);
        call->easy = NULL;
        return -1;
    }
    hr_list_push(&up->running, &call->link);
    return 0;
}

/* Makes what each pool's limit allows; a call that waited past its timeout fails unmade. */
static void pump(hr_curl_uv_t *curl)
{
    hr_upstream_t *up = curl->user;
    int64_t now = hr_clock_mono_ms();
    for (unsigned i = 0; i < up->nlanes; i++) {
        lane_t *lane = &up->lanes[i];
        while (!hr_list_empty(&lane->waiting) && lane->running < lane->limit) {
            hr_upstream_call_t *call =
                hr_container_of(lane->waiting.next, hr_upstream_call_t, link);
            hr_list_remove(&call->link);
            atomic_fetch_sub(&lane->queued, 1);
            char reason[160];
            if (now - call->queued_ms > call->timeout_ms) {
                snprintf(reason, sizeof reason, "upstream busy: waited %lld ms for a free call",
                         (long long)(now - call->queued_ms));
                finish(up, call, 504, reason);
            } else if (make(up, call) != 0) {
                finish(up, call, 503, "out of memory");
            } else {
                lane->running++;
                atomic_store(&lane->in_flight, lane->running);
                atomic_fetch_add(&lane->calls, 1);
            }
        }
    }
}

/* ---- thread ----------------------------------------------------------------------------- */

static void free_calls(hr_list_t *list)
{
    while (!hr_list_empty(list)) {
        hr_upstream_call_t *call = hr_container_of(list->next, hr_upstream_call_t, link);
        hr_list_remove(&call->link);
        hr_upstream_call_free(call);
    }
}

static void on_wake(uv_async_t *async)
{
    hr_upstream_t *up = async->data;
    pthread_mutex_lock(&up->lock);
    int stopping = up->stopping;
    while (!hr_list_empty(&up->incoming)) {
        hr_upstream_call_t *call = hr_container_of(up->incoming.next, hr_upstream_call_t, link);
        hr_list_remove(&call->link);
        hr_list_push(&up->lanes[call->pool].waiting, &call->link);
    }
    pthread_mutex_unlock(&up->lock);
    if (!stopping) {
        pump(&up->curl);
        return;
    }
    /* Abandoned: the workers are gone, their waiters with them; the flights' last references
     * go with the calls. */
    while (!hr_list_empty(&up->running)) {
        hr_upstream_call_t *call = hr_container_of(up->running.next, hr_upstream_call_t, link);
        curl_multi_remove_handle(up->curl.multi, call->easy);
        curl_easy_cleanup(call->easy);
        hr_list_remove(&call->link);
        hr_upstream_call_free(call);
    }
    for (unsigned i = 0; i < up->nlanes; i++)
        free_calls(&up->lanes[i].waiting);
    hr_curl_uv_cleanup(&up->curl);
    uv_walk(&up->loop, hr_curl_uv_close_handle, NULL);
}

static void upstream_thread(void *arg)
{
    hr_upstream_t *up = arg;
    uv_run(&up->loop, UV_RUN_DEFAULT);
}

hr_upstream_t *hr_upstream_new(size_t max_answer, const unsigned *concurrency, unsigned npools,
                               hr_upstream_done_fn done, void *arg)
{
    hr_upstream_t *up = calloc(1, sizeof *up);
    if (!up) return NULL;
    up->max_answer = max_answer;
    up->done = done;
    up->arg = arg;
    pthread_mutex_init(&up->lock, NULL);
    hr_list_init(&up->incoming);
    hr_list_init(&up->running);
    up->nlanes = npools < HR_POOLS_MAX ? npools : HR_POOLS_MAX;
    for (unsigned i = 0; i < up->nlanes; i++) {
        hr_list_init(&up->lanes[i].waiting);
        up->lanes[i].limit = concurrency[i];
    }
    return up;
}

int hr_upstream_start(hr_upstream_t *up)
{
    if (uv_loop_init(&up->loop) != 0 || hr_curl_uv_init(&up->curl, &up->loop) != 0) return -1;
    up->curl.done = transfer_done;
    up->curl.after = pump;
    up->curl.user = up;
    uv_async_init(&up->loop, &up->wake, on_wake);
    up->wake.data = up;
    up->started = 1;
    return uv_thread_create(&up->thread, upstream_thread, up) == 0 ? 0 : -1;
}

void hr_upstream_free(hr_upstream_t *up)
{
    if (!up) return;
    if (up->started) {
        pthread_mutex_lock(&up->lock);
        up->stopping = 1;
        pthread_mutex_unlock(&up->lock);
        uv_async_send(&up->wake);
        uv_thread_join(&up->thread);
        uv_loop_close(&up->loop);
    }
    free_calls(&up->incoming);
    pthread_mutex_destroy(&up->lock);
    free(up);
}

void hr_upstream_submit(hr_upstream_t *up, hr_upstream_call_t *call)
{
    call->up = up;
    call->queued_ms = hr_clock_mono_ms();
    atomic_fetch_add(&up->lanes[call->pool].queued, 1);
    pthread_mutex_lock(&up->lock);
    int first = hr_list_empty(&up->incoming);
    hr_list_push(&up->incoming, &call->link);
    pthread_mutex_unlock(&up->lock);
    if (first) uv_async_send(&up->wake);
}

void hr_upstream_stats(hr_upstream_t *up, unsigned pool, hr_upstream_stats_t *stats)
{
    lane_t *lane = &up->lanes[pool];
    stats->calls = atomic_load(&lane->calls);
    stats->in_flight = atomic_load(&lane->in_flight);
    stats->waiting = atomic_load(&lane->queued);
}
