/* herald-fanout: one topic, N SSE subscribers, M published messages; reports delivered
 * messages/s, end-to-end latency percentiles, losses and duplicates, and (with --pid) the
 * server's CPU time per delivery and memory per idle connection.
 *
 * --mode echo (WebSocket only): each client subscribes to a topic of its own and publishes M
 * messages to it over its WebSocket, one in flight at a time; the figure is round trips per second
 * and the round-trip latency (publish frame sent to message frame received).
 *
 * Open loop: message i is due at t0 + i/rate and its latency counts from that due time, so a
 * slow server cannot hide queueing by slowing the publisher. The payload carries the sequence
 * number and the due time (CLOCK_MONOTONIC, same machine). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>
#include <zlib.h>

typedef struct sub_s {
    uv_tcp_t tcp;
    char line[512]; /* partial line carried between reads */
    size_t line_len;
    int open;       /* response head seen */
    long next_seq;  /* next sequence number expected */
    int upgraded;   /* WebSocket: 101 seen */
    uint8_t *frame; /* WebSocket: bytes of an incomplete frame */
    size_t frame_len, frame_cap;
} sub_t;

typedef struct bench_s {
    uv_loop_t *loop;
    struct sockaddr_in server;
    struct sockaddr_in pub_server; /* --publish-port: another node (cluster latency) */
    const char *topic;
    int nsubs, nmsgs, rate, connected, opened, pid;
    int ws, deflate, payload; /* transport WebSocket, offer permessage-deflate, pad data to bytes */
    int echo;                 /* each client publishes to its own topic and awaits the message */
    long delivered, lost, dups;
    uint32_t *lat_us; /* one slot per (sub, msg) */
    size_t nlat;
    uint64_t t0_ns, last_ns;
    sub_t *subs;
    uv_tcp_t pub;
    uv_timer_t pub_timer, done_timer;
    int sent;
    double cpu_before, rss_idle_kb, rss_before_kb;
} bench_t;

static bench_t B;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static double proc_cpu_s(int pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    unsigned long utime = 0, stime = 0;
    /* fields after ')': state(3) ... utime(14) stime(15) */
    if (p) sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime);
    return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

static double proc_rss_kb(int pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    double kb = 0;
    if (!f) return 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %lf", &kb) == 1) break;
    fclose(f);
    return kb;
}

static void on_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf)
{
    static char slab[65536];
    (void)h;
    (void)size;
    *buf = uv_buf_init(slab, sizeof slab);
}

static void echo_publish(sub_t *sub, long seq);

static void handle_line(sub_t *sub, const char *line, size_t len)
{
    if (len < 6 || memcmp(line, "data: ", 6) != 0) return;
    long seq;
    unsigned long long due;
    if (sscanf(line + 6, "%ld %llu", &seq, &due) != 2) return;
    uint64_t now = now_ns();
    if (seq < sub->next_seq) {
        B.dups++;
        return;
    }
    B.lost += seq - sub->next_seq;
    sub->next_seq = seq + 1;
    B.delivered++;
    B.last_ns = now;
    if (B.nlat < (size_t)B.nsubs * (size_t)B.nmsgs)
        B.lat_us[B.nlat++] = (uint32_t)((now - due) / 1000);
    if (B.echo && seq + 1 < B.nmsgs) echo_publish(sub, seq + 1);
}

static void write_str(uv_stream_t *stream, const char *text);
static void ws_send_text(uv_stream_t *stream, const char *text);

/* A WebSocket text payload: an ack opens the subscriber, a message carries "data":"SEQ DUE". */
static void ws_handle_text(sub_t *sub, const char *text, size_t len)
{
    char tmp[256];
    size_t n = len < sizeof tmp - 1 ? len : sizeof tmp - 1;
    memcpy(tmp, text, n);
    tmp[n] = '\0';
    if (!sub->open && strstr(tmp, "\"type\":\"ack\"")) {
        sub->open = 1;
        B.opened++;
        return;
    }
    const char *data = strstr(tmp, "\"data\":\"");
    if (!data) return;
    char line[128];
    snprintf(line, sizeof line, "data: %s", data + 8);
    handle_line(sub, line, strlen(line));
}

static void ws_handle_frames(sub_t *sub)
{
    size_t at = 0;
    while (sub->frame_len - at >= 2) {
        uint8_t *f = sub->frame + at;
        uint64_t len = f[1] & 0x7f;
        size_t header = 2;
        if (len == 126) {
            if (sub->frame_len - at < 4) break;
            len = (uint64_t)f[2] << 8 | f[3];
            header = 4;
        } else if (len == 127) {
            if (sub->frame_len - at < 10) break;
            len = 0;
            for (int i = 2; i < 10; i++)
                len = len << 8 | f[i];
            header = 10;
        }
        if (sub->frame_len - at < header + len) break;
        int opcode = f[0] & 0x0f, compressed = f[0] & 0x40;
        if (opcode == 1 && !compressed) {
            ws_handle_text(sub, (const char *)f + header, (size_t)len);
        } else if (opcode == 1) {
            /* no context takeover: each message inflates alone */
            static uint8_t out[65536];
            uint8_t tail[4] = {0, 0, 0xff, 0xff};
            z_stream zs;
            memset(&zs, 0, sizeof zs);
            inflateInit2(&zs, -15);
            zs.next_out = out;
            zs.avail_out = sizeof out;
            zs.next_in = f + header;
            zs.avail_in = (uInt)len;
            inflate(&zs, Z_SYNC_FLUSH);
            zs.next_in = tail;
            zs.avail_in = 4;
            inflate(&zs, Z_SYNC_FLUSH);
            ws_handle_text(sub, (const char *)out, sizeof out - zs.avail_out);
            inflateEnd(&zs);
        }
        at += header + (size_t)len;
    }
    memmove(sub->frame, sub->frame + at, sub->frame_len - at);
    sub->frame_len -= at;
}

static void ws_on_bytes(sub_t *sub, const char *bytes, size_t n)
{
    if (sub->frame_len + n > sub->frame_cap) {
        sub->frame_cap = (sub->frame_len + n) * 2;
        sub->frame = realloc(sub->frame, sub->frame_cap);
    }
    memcpy(sub->frame + sub->frame_len, bytes, n);
    sub->frame_len += n;
    if (!sub->upgraded) {
        char *end = memmem(sub->frame, sub->frame_len, "\r\n\r\n", 4);
        if (!end) return;
        size_t head = (size_t)(end + 4 - (char *)sub->frame);
        sub->upgraded = 1;
        memmove(sub->frame, sub->frame + head, sub->frame_len - head);
        sub->frame_len -= head;
        char subscribe[256];
        if (B.echo)
            snprintf(subscribe, sizeof subscribe, "{\"type\":\"subscribe\",\"topic\":\"%s-%d\"}",
                     B.topic, (int)(sub - B.subs));
        else
            snprintf(subscribe, sizeof subscribe, "{\"type\":\"subscribe\",\"topic\":\"%s\"}",
                     B.topic);
        ws_send_text((uv_stream_t *)&sub->tcp, subscribe);
    }
    ws_handle_frames(sub);
}

static void on_sub_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    sub_t *sub = (sub_t *)stream;
    if (nread > 0 && B.ws) {
        ws_on_bytes(sub, buf->base, (size_t)nread);
        return;
    }
    if (nread < 0) {
        fprintf(stderr, "subscriber closed: %s\n", uv_err_name((int)nread));
        uv_close((uv_handle_t *)stream, NULL);
        return;
    }
    for (ssize_t i = 0; i < nread; i++) {
        char c = buf->base[i];
        if (c != '\n') {
            if (sub->line_len < sizeof sub->line) sub->line[sub->line_len++] = c;
            continue;
        }
        if (!sub->open && sub->line_len >= 8 && memcmp(sub->line, ": herald", 8) == 0) {
            sub->open = 1;
            B.opened++;
        }
        handle_line(sub, sub->line, sub->line_len);
        sub->line_len = 0;
    }
}

static void on_write_free(uv_write_t *req, int status)
{
    (void)status;
    free(req);
}

static void write_str(uv_stream_t *stream, const char *text)
{
    size_t len = strlen(text);
    uv_write_t *req = malloc(sizeof *req + len);
    char *copy = (char *)(req + 1);
    memcpy(copy, text, len);
    uv_buf_t buf = uv_buf_init(copy, (unsigned)len);
    uv_write(req, stream, &buf, 1, on_write_free);
}

/* A masked text frame (the mask is zero: still a masked frame, and the bytes stay readable). */
static void ws_send_text(uv_stream_t *stream, const char *text)
{
    size_t len = strlen(text), header = len < 126 ? 6 : 8;
    uv_write_t *req = malloc(sizeof *req + header + len);
    uint8_t *frame = (uint8_t *)(req + 1);
    frame[0] = 0x81;
    if (len < 126) {
        frame[1] = (uint8_t)(0x80 | len);
    } else {
        frame[1] = 0x80 | 126;
        frame[2] = (uint8_t)(len >> 8);
        frame[3] = (uint8_t)len;
    }
    memset(frame + header - 4, 0, 4);
    memcpy(frame + header, text, len);
    uv_buf_t b = uv_buf_init((char *)frame, (unsigned)(header + len));
    uv_write(req, stream, &b, 1, on_write_free);
}

/* "SEQ DUE " padded with text to the --payload size: the data every message carries. */
static int message_data(char *data, size_t size, long seq, uint64_t due)
{
    int n = snprintf(data, size, "%ld %llu ", seq, (unsigned long long)due);
    for (int pad = 0; n < B.payload && n < (int)size - 1; pad++)
        data[n++] = "realtime delivery, herald "[pad % 26];
    data[n] = '\0';
    return n;
}

static void echo_publish(sub_t *sub, long seq)
{
    char data[8192], frame[8448];
    message_data(data, sizeof data, seq, now_ns());
    snprintf(frame, sizeof frame, "{\"type\":\"publish\",\"topic\":\"%s-%d\",\"data\":\"%s\"}",
             B.topic, (int)(sub - B.subs), data);
    ws_send_text((uv_stream_t *)&sub->tcp, frame);
}

static void start_publishing(void);

static void on_sub_connect(uv_connect_t *req, int status)
{
    sub_t *sub = (sub_t *)req->handle;
    free(req);
    if (status < 0) {
        fprintf(stderr, "connect failed: %s\n", uv_err_name(status));
        exit(1);
    }
    char request[512];
    if (B.ws)
        snprintf(request, sizeof request,
                 "GET /v1/ws HTTP/1.1\r\nHost: bench\r\nUpgrade: websocket\r\n"
                 "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                 "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: herald.v1\r\n%s\r\n",
                 B.deflate ? "Sec-WebSocket-Extensions: permessage-deflate\r\n" : "");
    else
        snprintf(request, sizeof request,
                 "GET /v1/topics/%s/events HTTP/1.1\r\nHost: bench\r\n\r\n", B.topic);
    uv_read_start((uv_stream_t *)&sub->tcp, on_alloc, on_sub_read);
    write_str((uv_stream_t *)&sub->tcp, request);
    B.connected++;
}

static void on_pub_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    (void)stream;
    (void)buf;
    if (nread < 0) fprintf(stderr, "publisher connection closed\n");
}

static void on_pub_tick(uv_timer_t *timer)
{
    uint64_t now = now_ns();
    while (B.sent < B.nmsgs) {
        uint64_t due = B.t0_ns + (uint64_t)B.sent * 1000000000ull / (uint64_t)B.rate;
        if (due > now) break;
        char body[8192], request[8448];
        int n = message_data(body, sizeof body, B.sent, due);
        snprintf(request, sizeof request,
                 "POST /v1/topics/%s HTTP/1.1\r\nHost: bench\r\nContent-Length: %d\r\n\r\n%s",
                 B.topic, n, body);
        write_str((uv_stream_t *)&B.pub, request);
        B.sent++;
    }
    if (B.sent == B.nmsgs) uv_timer_stop(timer);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static void report(void)
{
    qsort(B.lat_us, B.nlat, sizeof *B.lat_us, cmp_u32);
    double secs = (double)(B.last_ns - B.t0_ns) / 1e9;
    long expected = (long)B.nsubs * B.nmsgs;
#define PCT(q) (B.nlat ? (double)B.lat_us[(size_t)((double)(B.nlat - 1) * (q))] / 1000.0 : 0)
    printf("{\"transport\":\"%s\",\"mode\":\"%s\",\"payload\":%d,\"subscribers\":%d,\"messages\":%"
           "d,\"rate\":%d,"
           "\"expected\":%ld,\"delivered\":%ld,"
           "\"lost\":%ld,\"duplicates\":%ld,\"seconds\":%.3f,\"deliveries_per_s\":%.0f,"
           "\"latency_ms\":{\"p50\":%.2f,\"p90\":%.2f,\"p99\":%.2f,\"max\":%.2f}",
           B.ws ? (B.deflate ? "ws-deflate" : "ws") : "sse", B.echo ? "echo" : "fanout", B.payload,
           B.nsubs, B.nmsgs, B.rate, expected, B.delivered, expected - B.delivered, B.dups, secs,
           secs > 0 ? (double)B.delivered / secs : 0, PCT(0.50), PCT(0.90), PCT(0.99), PCT(1.0));
    if (B.pid) {
        double cpu = proc_cpu_s(B.pid) - B.cpu_before;
        printf(",\"server_cpu_s\":%.3f,\"server_cpu_s_per_million_deliveries\":%.2f,"
               "\"server_rss_kb_per_idle_conn\":%.2f",
               cpu, B.delivered ? cpu * 1e6 / (double)B.delivered : 0,
               (B.rss_idle_kb - B.rss_before_kb) / B.nsubs);
    }
    printf("}\n");
}

static void on_done_check(uv_timer_t *timer)
{
    static uint64_t quiet_since;
    static long last_delivered = -1;
    uint64_t now = now_ns();
    if (B.delivered != last_delivered) {
        last_delivered = B.delivered;
        quiet_since = now;
    }
    int all = B.delivered >= (long)B.nsubs * B.nmsgs;
    if (B.sent == B.nmsgs && (all || now - quiet_since > 3000000000ull)) {
        uv_timer_stop(timer);
        report();
        uv_stop(B.loop);
    }
}

static void on_pub_connect(uv_connect_t *req, int status)
{
    free(req);
    if (status < 0) {
        fprintf(stderr, "publisher connect failed\n");
        exit(1);
    }
    uv_read_start((uv_stream_t *)&B.pub, on_alloc, on_pub_read);
}

static void on_wait_open(uv_timer_t *timer)
{
    if (B.opened < B.nsubs) return;
    uv_timer_stop(timer);
    start_publishing();
}

static void start_publishing(void)
{
    if (B.pid) {
        usleep(500000); /* let the server settle, then measure idle memory */
        B.rss_idle_kb = proc_rss_kb(B.pid);
        B.cpu_before = proc_cpu_s(B.pid);
    }
    B.t0_ns = now_ns();
    if (B.echo) {
        B.sent = B.nmsgs; /* the clients publish; the done check needs nothing more */
        for (int i = 0; i < B.nsubs; i++)
            echo_publish(&B.subs[i], 0);
    } else {
        uv_timer_start(&B.pub_timer, on_pub_tick, 0, 1);
    }
    uv_timer_start(&B.done_timer, on_done_check, 10, 10);
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1";
    int port = 8080, publish_port = 0;
    B.nsubs = 1000;
    B.nmsgs = 200;
    B.rate = 100;
    B.topic = "bench";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--port"))
            port = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--publish-port"))
            publish_port = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--subscribers"))
            B.nsubs = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--messages"))
            B.nmsgs = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--rate"))
            B.rate = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--pid"))
            B.pid = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--topic"))
            B.topic = argv[i + 1];
        else if (!strcmp(argv[i], "--mode"))
            B.echo = !strcmp(argv[i + 1], "echo");
        else if (!strcmp(argv[i], "--payload"))
            B.payload = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--transport")) {
            B.ws = !strcmp(argv[i + 1], "ws") || !strcmp(argv[i + 1], "ws-deflate");
            B.deflate = !strcmp(argv[i + 1], "ws-deflate");
        } else {
            fprintf(stderr,
                    "usage: herald-fanout [--port P] [--publish-port P] [--subscribers N] [--messages M] "
                    "[--rate PER_S] [--pid SERVER_PID] [--topic T] [--transport sse|ws|ws-deflate] "
                    "[--payload BYTES] [--mode fanout|echo]\n");
            return 2;
        }
    }
    if (B.echo && !B.ws) {
        fprintf(stderr, "--mode echo needs --transport ws or ws-deflate\n");
        return 2;
    }
    struct rlimit lim;
    getrlimit(RLIMIT_NOFILE, &lim);
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
    B.loop = uv_default_loop();
    uv_ip4_addr(host, port, &B.server);
    uv_ip4_addr(host, publish_port ? publish_port : port, &B.pub_server);
    B.lat_us = malloc((size_t)B.nsubs * (size_t)B.nmsgs * sizeof *B.lat_us);
    B.subs = calloc((size_t)B.nsubs, sizeof *B.subs);
    if (B.pid) B.rss_before_kb = proc_rss_kb(B.pid);
    for (int i = 0; i < B.nsubs; i++) {
        uv_tcp_init(B.loop, &B.subs[i].tcp);
        uv_connect_t *req = malloc(sizeof *req);
        uv_tcp_connect(req, &B.subs[i].tcp, (struct sockaddr *)&B.server, on_sub_connect);
    }
    uv_tcp_init(B.loop, &B.pub);
    uv_connect_t *req = malloc(sizeof *req);
    uv_tcp_connect(req, &B.pub, (struct sockaddr *)&B.pub_server, on_pub_connect);
    uv_timer_init(B.loop, &B.pub_timer);
    uv_timer_init(B.loop, &B.done_timer);
    uv_timer_t wait_open;
    uv_timer_init(B.loop, &wait_open);
    uv_timer_start(&wait_open, on_wait_open, 10, 10);
    uv_run(B.loop, UV_RUN_DEFAULT);
    return B.lost || B.dups ? 1 : 0;
}
