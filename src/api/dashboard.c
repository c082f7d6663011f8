/* What /dashboard reads (docs/OPERATIONS.md): GET /v1/topics?prefix=&limit= (the topics with
 * their subscribers and publish counts) and GET /v1/stats/stream (the /v1/stats numbers as an
 * SSE event once a second, with the process's memory and the delivery-latency histogram).
 * Admin only once auth is on. The page itself is an asset (api/assets.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/handlers.h"
#include "core/log.h"
#include "core/server.h"

#define TOPICS_LIMIT_MAX 1000

static int by_subscribers(const void *a, const void *b)
{
    const hr_topic_info_t *x = a, *y = b;
    if (x->subscribers != y->subscribers) return x->subscribers < y->subscribers ? 1 : -1;
    return strcmp(x->name, y->name);
}

void hr_handle_topics(hr_exchange_t *ex)
{
    if (hr_api_authorize(ex, HR_ACCESS_ADMIN, NULL, NULL, 0) != 0) return;
    const hr_qparam_t *prefix = hr_query_get(ex->params, ex->nparams, "prefix");
    const hr_qparam_t *limit_param = hr_query_get(ex->params, ex->nparams, "limit");
    long limit = 100;
    if (limit_param) {
        char *end;
        limit = strtol(limit_param->value, &end, 10);
        if (*end || limit < 1 || limit > TOPICS_LIMIT_MAX) {
            hr_respond_error(ex, 400, "limit is 1..1000");
            return;
        }
    }
    hr_topic_info_t *infos = calloc((size_t)limit, sizeof *infos);
    if (!infos) {
        hr_respond_error(ex, 503, "out of memory");
        return;
    }
    size_t matched = hr_broker_topics(ex->worker->server->broker, prefix ? prefix->value : "",
                                      prefix ? prefix->value_len : 0, infos, (size_t)limit);
    size_t n = matched < (size_t)limit ? matched : (size_t)limit;
    qsort(infos, n, sizeof *infos, by_subscribers);
    json_t *list = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(list, json_pack("{s:s, s:I, s:I, s:I, s:I}", "name", infos[i].name,
                                              "subscribers", (json_int_t)infos[i].subscribers,
                                              "published", (json_int_t)infos[i].published,
                                              "history", (json_int_t)infos[i].history,
                                              "history_bytes", (json_int_t)infos[i].history_bytes));
    free(infos);
    hr_respond_json(ex, 200,
                    json_pack("{s:o, s:I}", "topics", list, "matched", (json_int_t)matched));
}

/* ---- the stats stream ---------------------------------------------------------------------- */

typedef struct stats_stream_s {
    uv_timer_t timer;
    hr_stream_t *stream; /* NULL once gone */
    hr_server_t *server;
} stats_stream_t;

static long rss_bytes(void)
{
    long pages = 0, resident = 0;
    FILE *statm = fopen("/proc/self/statm", "r");
    if (statm) {
        if (fscanf(statm, "%ld %ld", &pages, &resident) != 2) resident = 0;
        fclose(statm);
    }
    return resident * sysconf(_SC_PAGESIZE);
}

static json_t *latency_buckets(const hr_histogram_t *histogram)
{
    json_t *buckets = json_array();
    for (int i = 0; i < HR_HISTOGRAM_BUCKETS; i++)
        json_array_append_new(buckets, json_pack("[f, I]", hr_histogram_bounds[i],
                                                 (json_int_t)atomic_load(&histogram->buckets[i])));
    return buckets;
}

static void tick(uv_timer_t *timer)
{
    stats_stream_t *stats = timer->data;
    json_t *body = hr_api_stats_json(stats->server);
    json_object_set_new(body, "rss_bytes", json_integer(rss_bytes()));
    json_object_set_new(body, "delivery_latency",
                        latency_buckets(hr_broker_fanout(stats->server->broker)));
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (!text) return;
    size_t len = strlen(text);
    char *frame = malloc(len + 32);
    if (frame) {
        int n = snprintf(frame, len + 32, "event: stats\ndata: %s\n\n", text);
        stats->stream->ops->write(stats->stream, frame, (size_t)n, NULL); /* may close it */
    }
    free(frame);
    free(text);
}

static void timer_closed(uv_handle_t *handle)
{
    free(handle->data);
}

static void stream_gone(hr_stream_t *stream)
{
    stats_stream_t *stats = stream->user;
    uv_timer_stop(&stats->timer);
    uv_close((uv_handle_t *)&stats->timer, timer_closed);
}

void hr_handle_stats_stream(hr_exchange_t *ex)
{
    if (hr_api_authorize(ex, HR_ACCESS_ADMIN, NULL, NULL, 0) != 0) return;
    stats_stream_t *stats = calloc(1, sizeof *stats);
    if (!stats) {
        hr_respond_error(ex, 503, "out of memory");
        return;
    }
    hr_exchange_set_kind(ex, HR_CONN_SSE);
    stats->stream = hr_respond_stream(ex, "text/event-stream",
                                      "Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\n");
    if (!stats->stream) { /* the connection is closing, without calling back */
        free(stats);
        return;
    }
    stats->server = ex->worker->server;
    stats->stream->user = stats;
    stats->stream->on_close = stream_gone;
    uv_timer_init(&ex->worker->loop, &stats->timer);
    stats->timer.data = stats;
    uv_timer_start(&stats->timer, tick, 0, 1000);
}
