/* herald-publish: publish throughput and latency. C keep-alive connections each send
 * POST /v1/topics/{topic} one after another (closed loop: the next request leaves when the
 * answer came), M publishes in all; reports publishes/s, answer latency percentiles and status
 * counts. With --durability sync or batch the answer waits for the disk, so this measures what
 * durability costs a publisher. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

typedef struct client_s {
    uv_tcp_t tcp;
    char buf[65536]; /* answer bytes so far */
    size_t len;
    uint64_t sent_ns;
} client_t;

typedef struct bench_s {
    uv_loop_t *loop;
    struct sockaddr_in server;
    const char *topic;
    int nclients, total, payload, started, answered, ok, failed;
    char *request; /* the same POST for every publish */
    size_t request_len;
    uint32_t *lat_us;
    uint64_t t0_ns, t1_ns;
    client_t *clients;
} bench_t;

static bench_t B;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void on_written(uv_write_t *req, int status)
{
    (void)status;
    free(req);
}

static void send_next(client_t *client)
{
    if (B.started == B.total) {
        uv_close((uv_handle_t *)&client->tcp, NULL);
        return;
    }
    B.started++;
    client->sent_ns = now_ns();
    uv_write_t *req = malloc(sizeof *req);
    uv_buf_t buf = uv_buf_init(B.request, (unsigned)B.request_len);
    uv_write(req, (uv_stream_t *)&client->tcp, &buf, 1, on_written);
}

static void on_alloc(uv_handle_t *handle, size_t size, uv_buf_t *buf)
{
    client_t *client = (client_t *)handle;
    (void)size;
    *buf = uv_buf_init(client->buf + client->len, (unsigned)(sizeof client->buf - client->len));
}

/* One answer is complete when the head and Content-Length bytes of body are in. */
static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    client_t *client = (client_t *)stream;
    (void)buf;
    if (nread < 0) {
        fprintf(stderr, "connection closed: %s\n", uv_err_name((int)nread));
        uv_close((uv_handle_t *)stream, NULL);
        return;
    }
    client->len += (size_t)nread;
    char *end = memmem(client->buf, client->len, "\r\n\r\n", 4);
    if (!end) return;
    const char *cl = memmem(client->buf, (size_t)(end - client->buf), "Content-Length: ", 16);
    size_t body = cl ? (size_t)strtoul(cl + 16, NULL, 10) : 0;
    size_t whole = (size_t)(end + 4 - client->buf) + body;
    if (client->len < whole) return;
    if (memcmp(client->buf, "HTTP/1.1 200", 12) == 0)
        B.ok++;
    else
        B.failed++;
    B.lat_us[B.answered++] = (uint32_t)((now_ns() - client->sent_ns) / 1000);
    B.t1_ns = now_ns();
    memmove(client->buf, client->buf + whole, client->len - whole);
    client->len -= whole;
    send_next(client);
}

static void on_connect(uv_connect_t *req, int status)
{
    client_t *client = (client_t *)req->handle;
    free(req);
    if (status < 0) {
        fprintf(stderr, "connect failed: %s\n", uv_err_name(status));
        exit(1);
    }
    uv_read_start((uv_stream_t *)&client->tcp, on_alloc, on_read);
    if (!B.t0_ns) B.t0_ns = now_ns();
    send_next(client);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static void report(void)
{
    qsort(B.lat_us, (size_t)B.answered, sizeof *B.lat_us, cmp_u32);
    double secs = (double)(B.t1_ns - B.t0_ns) / 1e9;
#define PCT(q)                                                                                     \
    (B.answered ? (double)B.lat_us[(size_t)((double)(B.answered - 1) * (q))] / 1000.0 : 0)
    printf("{\"clients\":%d,\"publishes\":%d,\"payload\":%d,\"ok\":%d,\"failed\":%d,"
           "\"seconds\":%.3f,\"publishes_per_s\":%.0f,"
           "\"latency_ms\":{\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,\"max\":%.3f}}\n",
           B.nclients, B.total, B.payload, B.ok, B.failed, secs,
           secs > 0 ? (double)B.answered / secs : 0, PCT(0.50), PCT(0.90), PCT(0.99), PCT(1.0));
}

int main(int argc, char **argv)
{
    int port = 8080;
    B.nclients = 16;
    B.total = 20000;
    B.payload = 100;
    B.topic = "bench-publish";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--port"))
            port = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--clients"))
            B.nclients = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--publishes"))
            B.total = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--payload"))
            B.payload = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--topic"))
            B.topic = argv[i + 1];
        else {
            fprintf(stderr, "usage: herald-publish [--port P] [--clients C] [--publishes M] "
                            "[--payload BYTES] [--topic T]\n");
            return 2;
        }
    }
    if (B.payload < 0 || B.payload > 60000 || B.nclients < 1 || B.total < 1) return 2;
    B.request = malloc((size_t)B.payload + 512);
    int head = snprintf(B.request, 512,
                        "POST /v1/topics/%s HTTP/1.1\r\nHost: bench\r\nContent-Length: %d\r\n\r\n",
                        B.topic, B.payload);
    memset(B.request + head, 'p', (size_t)B.payload);
    B.request_len = (size_t)head + (size_t)B.payload;
    B.lat_us = malloc((size_t)B.total * sizeof *B.lat_us);
    B.clients = calloc((size_t)B.nclients, sizeof *B.clients);
    B.loop = uv_default_loop();
    uv_ip4_addr("127.0.0.1", port, &B.server);
    for (int i = 0; i < B.nclients; i++) {
        uv_tcp_init(B.loop, &B.clients[i].tcp);
        uv_connect_t *req = malloc(sizeof *req);
        uv_tcp_connect(req, &B.clients[i].tcp, (struct sockaddr *)&B.server, on_connect);
    }
    uv_run(B.loop, UV_RUN_DEFAULT);
    report();
    free(B.request);
    free(B.lat_us);
    free(B.clients);
    return B.failed ? 1 : 0;
}
