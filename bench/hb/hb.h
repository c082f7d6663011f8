/* herald-bench: a load generator on libuv for herald and the peers it is compared with (nchan,
 * Socket.IO, the ws npm server). See bench/README.md for the options and docs/BENCHMARKS.md for
 * what the figures mean. One process, one loop; state lives in one bench_t. */
#ifndef HB_H
#define HB_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef enum { TR_SSE, TR_WS, TR_LONG, TR_SHORT } transport_t;
typedef enum { SRV_HERALD, SRV_NCHAN, SRV_SOCKETIO, SRV_WS } server_t;

typedef struct bench_s bench_t;

#define HB_SCRATCH (1 << 20)

/* Answers counted by their status lines on a connection whose bodies are not needed; a status
 * line may straddle two reads, hence the tail. */
typedef struct hb_answers_s {
    char tail[16];
    size_t tail_len;
} hb_answers_t;

/* One subscriber connection. Bytes read are appended to `in` and consumed by the transport's
 * parser; what a parser cannot finish stays for the next read. */
typedef struct sub_s {
    uv_tcp_t tcp;
    uv_timer_t poll_timer; /* short polling: the next request */
    bench_t *bench;
    int topic;     /* index into the bench's topics */
    long next_seq; /* next per-topic sequence number expected */
    int open;      /* subscribed: messages published from now on must arrive */
    int head_done; /* response head (or 101) seen */
    int closed;
    int in_flight; /* polling: a request is out */
    uint8_t *in;
    size_t in_len, in_cap;
    /* polling: where the next request resumes */
    char cursor[32];             /* herald: the answer's cursor */
    char etag[64], modified[64]; /* nchan: Etag and Last-Modified of the last answer */
    long body_len;               /* -1 until the head of an answer is read */
    int status;
    /* Socket.IO polling: the session, and the second connection its POSTs go on */
    char sid[64];
    uv_tcp_t post_tcp;
    int post_ready, post_in_flight;
    char post_pending[256];
    hb_answers_t post_answers;
} sub_t;

/* One publisher connection (HTTP/1.1 keep-alive, requests pipelined). */
typedef struct pub_s {
    uv_tcp_t tcp;
    bench_t *bench;
    hb_answers_t answers;
    int attempts; /* refused connects so far */
} pub_t;

struct bench_s {
    uv_loop_t *loop;
    struct sockaddr_in server, pub_server;
    server_t srv;
    transport_t transport;
    int deflate, echo;
    const char *prefix; /* topic name, or prefix of "PREFIX-i" when ntopics > 1 */
    const char *token;  /* --token: sent as Authorization: Bearer (SSE, publish); NULL = none */
    int nsubs, ntopics, nmsgs, rate, payload, npubs, publish, sources, interval_ms, settle_ms;
    int inflight; /* --inflight K: closed loop, at most K publishes unanswered; 0 = open loop */
    int npids, pids[16];
    int opened, conn_errors;
    long delivered, dups, requests, publish_acked, publish_failed;
    uint64_t bytes_in, bytes_out, segments_before;
    uint32_t *lat_us;
    size_t nlat, lat_cap;
    uint64_t t0_ns, last_ns, first_due_ns;
    int sent;
    sub_t *subs;
    pub_t *pubs;
    uv_timer_t pub_timer, done_timer, connect_timer, settle_timer;
    int started;      /* subscriber connections begun */
    uint8_t *scratch; /* HB_SCRATCH bytes: an inflated WebSocket message */
    double cpu_before, rss_before_kb, rss_idle_kb;
    uint64_t quiet_since;
    long last_delivered;
};

/* measure.c */
uint64_t hb_now_ns(void);
double hb_proc_cpu_s(const int *pids, int npids);
double hb_proc_rss_kb(const int *pids, int npids);
uint64_t hb_tcp_out_segments(void);
int hb_payload(char *out, size_t size, int min_len, long seq, uint64_t due);
void hb_scan_payloads(sub_t *sub, const char *text, size_t len);
void hb_report(bench_t *bench);

/* client.c */
void hb_sub_start(bench_t *bench, sub_t *sub, int index);
void hb_topic_name(const bench_t *bench, int topic, char *out, size_t size);
void hb_write(uv_stream_t *stream, const char *data, size_t len, uint64_t *counter);
void hb_alloc(uv_handle_t *handle, size_t size, uv_buf_t *buf);
long hb_count_answers(hb_answers_t *answers, const char *data, size_t len, long *ok, long *failed);
void hb_ws_send_text(sub_t *sub, const char *text);
void hb_sub_opened(sub_t *sub);
void hb_short_polls_start(bench_t *bench);
void hb_echo_publish(sub_t *sub, long seq);

/* ws.c */
void hb_ws_consume(sub_t *sub);

/* poll.c */
void hb_poll_request(sub_t *sub);
void hb_poll_consume(sub_t *sub);

/* eio_poll.c */
void hb_eio_request(sub_t *sub);
void hb_eio_answer(sub_t *sub, const char *body, size_t len);
void hb_socketio_packet(sub_t *sub, const char *packet, size_t len,
                        void (*send)(sub_t *, const char *));

/* publisher.c */
void hb_pub_start(bench_t *bench);
void hb_pub_begin(bench_t *bench);

#endif
