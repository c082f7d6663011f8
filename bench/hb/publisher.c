/* The publisher. Open loop (the default): message i is due at t0 + i/rate, goes to topic
 * i % topics over publisher connection i % publishers, and carries its per-topic sequence
 * number and due time; answers are only counted, so a slow server shows as latency, not as a
 * slower publisher. Closed loop (--inflight K): a message goes out, stamped with the time it
 * is sent, whenever fewer than K are unanswered — K=1 is a backend that publishes, waits for
 * the answer and publishes the next — so the server's pace sets the rate. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hb.h"

static void publish_ready(bench_t *bench);

static void on_pub_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    pub_t *pub = stream->data;
    if (nread < 0) {
        fprintf(stderr, "hb: publisher connection closed: %s\n", uv_err_name((int)nread));
        uv_close((uv_handle_t *)stream, NULL);
    } else {
        hb_count_answers(&pub->answers, buf->base, (size_t)nread, &pub->bench->publish_acked,
                         &pub->bench->publish_failed);
        if (pub->bench->inflight && pub->bench->t0_ns) publish_ready(pub->bench);
    }
    free(buf->base);
}

static void pub_connect(pub_t *pub);

static void on_pub_closed(uv_handle_t *handle)
{
    pub_connect(handle->data);
}

/* A refused publisher connection is retried (a server's accept queue can be full while the
 * subscribers pour in); after 50 refusals the run is pointless. */
static void on_pub_connect(uv_connect_t *req, int status)
{
    pub_t *pub = req->handle->data;
    free(req);
    if (status < 0) {
        fprintf(stderr, "hb: publisher connect failed: %s\n", uv_err_name(status));
        if (++pub->attempts >= 50) exit(1);
        uv_close((uv_handle_t *)&pub->tcp, on_pub_closed);
        return;
    }
    uv_read_start((uv_stream_t *)&pub->tcp, hb_alloc, on_pub_read);
}

static void pub_connect(pub_t *pub)
{
    uv_tcp_init(pub->bench->loop, &pub->tcp);
    pub->tcp.data = pub;
    uv_connect_t *req = malloc(sizeof *req);
    uv_tcp_connect(req, &pub->tcp, (struct sockaddr *)&pub->bench->pub_server, on_pub_connect);
}

void hb_pub_start(bench_t *bench)
{
    bench->pubs = calloc((size_t)bench->npubs, sizeof *bench->pubs);
    for (int i = 0; i < bench->npubs; i++) {
        bench->pubs[i].bench = bench;
        pub_connect(&bench->pubs[i]);
    }
}

static void publish_one(bench_t *bench, int index, uint64_t due)
{
    char topic[128], body[65536], request[66048 + 8300], auth[8300] = "";
    hb_topic_name(bench, index % bench->ntopics, topic, sizeof topic);
    if (bench->token) snprintf(auth, sizeof auth, "Authorization: Bearer %s\r\n", bench->token);
    int len = hb_payload(body, sizeof body, bench->payload, index / bench->ntopics, due);
    int n = snprintf(request, sizeof request,
                     "POST %s%s HTTP/1.1\r\nHost: b\r\nContent-Type: text/plain\r\n%s"
                     "Content-Length: %d\r\n\r\n%s",
                     bench->srv == SRV_HERALD ? "/v1/topics/" : "/pub/", topic, auth, len, body);
    hb_write((uv_stream_t *)&bench->pubs[index % bench->npubs].tcp, request, (size_t)n, NULL);
}

static void publish_ready(bench_t *bench)
{
    while (bench->sent < bench->nmsgs &&
           bench->sent - (bench->publish_acked + bench->publish_failed) < bench->inflight) {
        publish_one(bench, bench->sent, hb_now_ns());
        bench->sent++;
    }
}

static void on_tick(uv_timer_t *timer)
{
    bench_t *bench = timer->data;
    uint64_t now = hb_now_ns();
    while (bench->sent < bench->nmsgs) {
        uint64_t due = bench->t0_ns + (uint64_t)bench->sent * 1000000000ull / (uint64_t)bench->rate;
        if (due > now) break;
        publish_one(bench, bench->sent, due);
        bench->sent++;
    }
    if (bench->sent == bench->nmsgs) uv_timer_stop(timer);
}

void hb_pub_begin(bench_t *bench)
{
    bench->pub_timer.data = bench;
    if (bench->inflight)
        publish_ready(bench);
    else
        uv_timer_start(&bench->pub_timer, on_tick, 0, 1);
}
