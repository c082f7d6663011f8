/* A TCP connection owned by one worker: reading into the worker's buffer, writing with
 * uv_try_write first and a bounded queue after, and closing. Protocol-free: a protocol
 * (HTTP/1 today) plugs in through hr_conn_proto_t. */
#ifndef HR_CONN_H
#define HR_CONN_H

#include <uv.h>

#include "core/msg.h"
#include "core/stream.h"
#include "core/worker.h"

typedef struct hr_conn_s hr_conn_t;

typedef struct hr_conn_proto_s {
    void (*on_data)(hr_conn_t *conn, const char *data, size_t len); /* borrowed bytes */
    void (*on_close)(hr_conn_t *conn);    /* last call; free protocol state */
    void (*on_shutdown)(hr_conn_t *conn); /* server stopping: finish when idle */
    void (*on_timeout)(hr_conn_t *conn);  /* request_deadline_ms passed; may be NULL */
    /* Outbound bytes passed --max-outbound (a slow consumer): say why in one last write (let
     * past the limit) and finish; may be NULL (the connection is closed). */
    void (*on_overflow)(hr_conn_t *conn);
    /* Everything queued was written (the socket took it); may be NULL. For a protocol that
     * stopped reading while its answers piled up. */
    void (*on_drained)(hr_conn_t *conn);
    /* Written, if the socket takes it at once, to a connection refused at accept
     * (--max-conns): the protocol's "too many connections". */
    const char *refusal;
    /* Whether --idle-timeout applies now (nothing under way: no stream, no parked answer);
     * NULL: never (a WebSocket has its own pings). */
    int (*idle_closes)(hr_conn_t *conn);
} hr_conn_proto_t;

#define HR_CORK_MAX 16 /* frames gathered per connection before an early flush */

typedef struct hr_cork_s {
    uv_buf_t buf;  /* bytes inside msg */
    hr_msg_t *msg; /* reference */
} hr_cork_t;

struct hr_conn_s {
    uv_tcp_t tcp;                 /* first: libuv handle */
    hr_worker_t *worker;          /* owner */
    hr_list_t link;               /* in worker->conns */
    const hr_conn_proto_t *proto; /* who reads */
    void *proto_state;            /* the protocol's per-connection object */
    uint64_t id;                  /* for logs */
    int64_t linger_until_ms;      /* loop time to give up waiting for the client's FIN */
    int64_t last_read_ms;         /* loop time of the last bytes read, for the idle timeout */
    int64_t request_deadline_ms;  /* loop time a request being read must be complete by; 0 =
                                     none (slowloris defence) */
    uint64_t bytes_written;       /* taken by the socket or queued for it (access log) */
    struct hr_tls_conn_s *tls;    /* a TLS listener's connection (core/tls.h), else NULL */
    hr_list_t dirty_link;         /* in worker->dirty while cork_len > 0 */
    hr_cork_t *cork; /* HR_CORK_MAX slots from the worker's pool while cork_len > 0, else NULL:
                        an idle connection does not carry them (see hr_conn_uncork) */
    char peer[64];   /* "ip:port", for logs */
    /* Packed: every idle connection carries these (docs/BENCHMARKS.md, idle memory). */
    enum hr_conn_kind kind : 8; /* for stats */
    unsigned cork_len : 8;      /* frames gathered while the worker is corked (≤ HR_CORK_MAX) */
    unsigned closing : 1;       /* close started; writes are refused */
    unsigned finishing : 1;     /* flush then close */
    unsigned overflowed : 1;    /* on_overflow ran: its goodbye may pass the limit */
    unsigned paused : 1;        /* reading stopped by the protocol (backpressure) */
    unsigned counted : 1;       /* in the server's totals (--max-conns, --max-conns-per-ip) */
};

/* Accepts one connection from `server` and starts reading it with `proto`. */
int hr_conn_accept(hr_worker_t *worker, uv_stream_t *server, const hr_conn_proto_t *proto);
struct hr_tls_s;
/* The same for a TLS listener: the protocol sees plaintext. */
int hr_conn_accept_tls(hr_worker_t *worker, uv_stream_t *server, const hr_conn_proto_t *proto,
                       struct hr_tls_s *tls);

/* See hr_stream_ops_t.write. Over max_outbound_bytes queued the connection is closed. */
int hr_conn_write(hr_conn_t *conn, const char *bytes, size_t len, hr_msg_t *msg);

/* While worker->corked is set, message-backed writes are gathered per connection; this sends
 * each connection's gathered frames with one writev and clears the flag. */
void hr_conn_uncork(hr_worker_t *worker);
/* Frees the worker's spare cork slots (after its loop ended). */
void hr_conn_cork_pool_free(hr_worker_t *worker);

/* Backpressure: stops reading the socket (the kernel's buffers, then TCP's window, hold the
 * client back) until hr_conn_resume. Idempotent. */
void hr_conn_pause(hr_conn_t *conn);
void hr_conn_resume(hr_conn_t *conn);

/* A whole connection as a stream (carrier: the hr_conn_t): write is hr_conn_write, end is
 * hr_conn_finish. What a protocol that took the connection over (WebSocket) writes through. */
extern const hr_stream_ops_t hr_conn_stream_ops;

/* Sends what is queued, then closes. */
void hr_conn_finish(hr_conn_t *conn);
/* Closes now, dropping what is queued. Idempotent. */
void hr_conn_close(hr_conn_t *conn);

#define HR_LINGER_MS 2000

/* Closes connections whose linger ran out and plain HTTP connections idle for longer than
 * idle_timeout_ms; called once a second by the worker. */
void hr_conn_sweep(hr_worker_t *worker);

void hr_conn_set_kind(hr_conn_t *conn, enum hr_conn_kind kind);

/* Length of the address part of a peer string ("ip:port", IPv6 without brackets): the key of
 * per-client limits. */
size_t hr_conn_peer_ip_len(const char *peer);

/* Switches the protocol spoken on the connection (after a 101 answer). The old protocol frees
 * its own state; `state` becomes proto_state. */
void hr_conn_upgrade(hr_conn_t *conn, const hr_conn_proto_t *proto, void *state);

#endif
