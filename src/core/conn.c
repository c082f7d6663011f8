/* Connection lifecycle and the write path. Memory of a connection is freed only in its close
 * callback; queued writes hold message references and are cancelled (ECANCELED) before it. */
#include <stdlib.h>
#include <string.h>

#include "core/conn.h"
#include "core/server.h"
#include "core/tls.h"
#include "core/ipcount.h"
#include "core/error.h"
#include "core/log.h"
#include "core/uring.h"

typedef struct write_req_s {
    uv_write_t req;
    hr_conn_t *conn;
    char *copy; /* bytes that had no owning message, or NULL */
    size_t nmsgs;
    hr_msg_t *msgs[]; /* references keeping the queued bytes alive */
} write_req_t;

static void alloc_cb(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    hr_conn_t *conn = (hr_conn_t *)handle;
    /* One buffer per worker: each read is consumed before the next can start. */
    *buf = uv_buf_init(conn->worker->read_buf, sizeof conn->worker->read_buf);
}

static int send_raw(hr_conn_t *conn, uv_buf_t *bufs, hr_msg_t **msgs, size_t n);
static int send_rest(hr_conn_t *conn, uv_buf_t *bufs, hr_msg_t **msgs, size_t n, int written);

/* TLS: sends the ciphertext the last step produced (handshake, records, alerts). */
static int tls_flush(hr_conn_t *conn)
{
    size_t len = 0;
    char *out = hr_tls_take_output(conn->tls, &len);
    if (!out) return 0;
    uv_buf_t buf = uv_buf_init(out, (unsigned)len);
    hr_msg_t *owner = NULL;
    int rc = send_raw(conn, &buf, &owner, 1); /* copies what the socket does not take */
    free(out);
    return rc;
}

static int tls_plain(void *arg, const char *bytes, size_t len)
{
    hr_conn_t *conn = arg;
    if (conn->closing || conn->finishing) return 1;
    conn->proto->on_data(conn, bytes, len);
    return conn->closing || conn->paused;
}

static void read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    hr_conn_t *conn = (hr_conn_t *)stream;
    if (nread > 0) {
        conn->last_read_ms = uv_now(&conn->worker->loop);
        /* While finishing, input is drained and dropped (lingering close). */
        if (conn->closing || conn->finishing) return;
        if (!conn->tls) {
            conn->proto->on_data(conn, buf->base, (size_t)nread);
            return;
        }
        int rc = hr_tls_feed(conn->tls, buf->base, (size_t)nread, tls_plain, conn);
        if (!conn->closing && tls_flush(conn) == 0 && rc != 0) hr_conn_close(conn);
        return;
    }
    if (nread < 0) {
        if (nread != UV_EOF)
            hr_debug("conn.read_error", "conn=%llu err=%s", (unsigned long long)conn->id,
                     uv_err_name((int)nread));
        hr_conn_close(conn);
    }
}

void hr_conn_pause(hr_conn_t *conn)
{
    if (conn->paused || conn->closing) return;
    conn->paused = 1;
    uv_read_stop((uv_stream_t *)&conn->tcp);
}

void hr_conn_resume(hr_conn_t *conn)
{
    if (!conn->paused || conn->closing) return;
    conn->paused = 0;
    conn->last_read_ms = (int64_t)uv_now(&conn->worker->loop); /* idle from now, not from then */
    if (uv_read_start((uv_stream_t *)&conn->tcp, alloc_cb, read_cb) != 0) {
        hr_conn_close(conn);
        return;
    }
    /* TLS: plaintext already decrypted and held back while paused goes first. */
    if (conn->tls && hr_tls_feed(conn->tls, NULL, 0, tls_plain, conn) != 0) hr_conn_close(conn);
}

static void release(hr_conn_t *conn)
{
    if (!conn->counted) return;
    hr_server_t *server = conn->worker->server;
    atomic_fetch_sub(&server->conns_total, 1);
    if (server->conns_by_ip)
        hr_ipcount_release(server->conns_by_ip, conn->peer, hr_conn_peer_ip_len(conn->peer));
    conn->counted = 0;
}

/* Cork slots live in blocks a worker lends to the connections it is gathering frames for, and
 * keeps up to CORK_POOL_KEEP of between drains: an idle connection holds a pointer, not 16
 * slots. */
typedef union cork_block_u {
    union cork_block_u *next; /* while spare */
    hr_cork_t slot[HR_CORK_MAX];
} cork_block_t;

#define CORK_POOL_KEEP 1024

static hr_cork_t *cork_take(hr_worker_t *worker)
{
    cork_block_t *block = worker->cork_free;
    if (block) {
        worker->cork_free = block->next;
        worker->cork_free_len--;
        return block->slot;
    }
    block = malloc(sizeof *block);
    return block ? block->slot : NULL;
}

static void cork_give(hr_worker_t *worker, hr_cork_t *slots)
{
    cork_block_t *block = (cork_block_t *)(void *)slots;
    if (!block) return;
    if (worker->cork_free_len >= CORK_POOL_KEEP) {
        free(block);
        return;
    }
    block->next = worker->cork_free;
    worker->cork_free = block;
    worker->cork_free_len++;
}

void hr_conn_cork_pool_free(hr_worker_t *worker)
{
    for (cork_block_t *block = worker->cork_free, *next; block; block = next) {
        next = block->next;
        free(block);
    }
    worker->cork_free = NULL;
    worker->cork_free_len = 0;
}

static void close_cb(uv_handle_t *handle)
{
    hr_conn_t *conn = (hr_conn_t *)handle;
    for (size_t i = 0; i < conn->cork_len; i++)
        hr_msg_unref(conn->cork[i].msg);
    conn->cork_len = 0;
    cork_give(conn->worker, conn->cork);
    conn->cork = NULL;
    hr_list_remove(&conn->dirty_link);
    release(conn);
    if (conn->proto->on_close) conn->proto->on_close(conn);
    atomic_fetch_sub(&conn->worker->conns_now[conn->kind], 1);
    hr_list_remove(&conn->link);
    hr_debug("conn.close", "conn=%llu", (unsigned long long)conn->id);
    hr_tls_conn_free(conn->tls);
    free(conn);
}

void hr_conn_close(hr_conn_t *conn)
{
    if (conn->closing) return;
    conn->closing = 1;
    uv_close((uv_handle_t *)&conn->tcp, close_cb);
}

void hr_conn_set_kind(hr_conn_t *conn, enum hr_conn_kind kind)
{
    atomic_fetch_sub(&conn->worker->conns_now[conn->kind], 1);
    atomic_fetch_add(&conn->worker->conns_now[kind], 1);
    conn->kind = kind;
}

void hr_conn_upgrade(hr_conn_t *conn, const hr_conn_proto_t *proto, void *state)
{
    conn->proto = proto;
    conn->proto_state = state;
}

size_t hr_conn_peer_ip_len(const char *peer)
{
    const char *colon = strrchr(peer, ':');
    return colon ? (size_t)(colon - peer) : strlen(peer);
}

static void format_peer(hr_conn_t *conn)
{
    struct sockaddr_storage addr;
    int len = sizeof addr;
    char ip[48] = "?";
    int port = 0;
    if (uv_tcp_getpeername(&conn->tcp, (struct sockaddr *)&addr, &len) == 0) {
        if (addr.ss_family == AF_INET6) {
            uv_ip6_name((struct sockaddr_in6 *)&addr, ip, sizeof ip);
            port = ntohs(((struct sockaddr_in6 *)&addr)->sin6_port);
        } else {
            uv_ip4_name((struct sockaddr_in *)&addr, ip, sizeof ip);
            port = ntohs(((struct sockaddr_in *)&addr)->sin_port);
        }
    }
    snprintf(conn->peer, sizeof conn->peer, "%s:%d", ip, port);
}

/* --max-conns and --max-conns-per-ip: counts the connection in, or says why not. */
static const char *admit(hr_conn_t *conn)
{
    hr_server_t *server = conn->worker->server;
    const hr_config_t *config = conn->worker->config;
    size_t total = atomic_fetch_add(&server->conns_total, 1) + 1;
    if (config->max_conns && total > config->max_conns) {
        atomic_fetch_sub(&server->conns_total, 1);
        atomic_fetch_add(&server->metrics.conns_refused_max, 1);
        return "max_conns";
    }
    if (server->conns_by_ip &&
        !hr_ipcount_take(server->conns_by_ip, conn->peer, hr_conn_peer_ip_len(conn->peer),
                         config->max_conns_per_ip)) {
        atomic_fetch_sub(&server->conns_total, 1);
        atomic_fetch_add(&server->metrics.conns_refused_ip, 1);
        return "max_conns_per_ip";
    }
    conn->counted = 1;
    return NULL;
}

/* Over a limit: a short 503 if the socket takes it at once, then close. */
static void refuse(hr_conn_t *conn, const char *why)
{
    if (conn->proto->refusal && !conn->tls) { /* plaintext bytes: not on a TLS connection */
        uv_buf_t buf = uv_buf_init((char *)conn->proto->refusal, strlen(conn->proto->refusal));
        uv_try_write((uv_stream_t *)&conn->tcp, &buf, 1);
    }
    hr_info("conn.refused", "peer=%s reason=%s", conn->peer, why);
    hr_conn_close(conn);
}

static int accept_one(hr_worker_t *worker, uv_stream_t *server, const hr_conn_proto_t *proto,
                      hr_tls_t *tls)
{
    hr_conn_t *conn = calloc(1, sizeof *conn);
    if (!conn) return HR_ENOMEM;
    uv_tcp_init(&worker->loop, &conn->tcp);
    conn->worker = worker;
    conn->proto = proto;
    conn->kind = HR_CONN_HTTP;
    conn->id = ++worker->next_conn_id * 1000 + worker->id;
    conn->last_read_ms = (int64_t)uv_now(&worker->loop);
    hr_list_push(&worker->conns, &conn->link);
    hr_list_init(&conn->dirty_link);
    atomic_fetch_add(&worker->conns_now[HR_CONN_HTTP], 1);
    int rc = uv_accept(server, (uv_stream_t *)&conn->tcp);
    if (rc == 0 && tls && !(conn->tls = hr_tls_conn_new(tls))) rc = UV_ENOMEM;
    if (rc == 0) {
        uv_tcp_nodelay(&conn->tcp, 1);
        format_peer(conn);
        const char *over = admit(conn);
        if (over) {
            refuse(conn, over);
            return 0;
        }
        rc = uv_read_start((uv_stream_t *)&conn->tcp, alloc_cb, read_cb);
    }
    if (rc != 0) {
        hr_warn("conn.accept_failed", "worker=%u err=%s", worker->id, uv_err_name(rc));
        hr_conn_close(conn);
        return rc;
    }
    hr_debug("conn.open", "conn=%llu worker=%u peer=%s tls=%d", (unsigned long long)conn->id,
             worker->id, conn->peer, conn->tls != NULL);
    return 0;
}

int hr_conn_accept(hr_worker_t *worker, uv_stream_t *server, const hr_conn_proto_t *proto)
{
    return accept_one(worker, server, proto, NULL);
}

int hr_conn_accept_tls(hr_worker_t *worker, uv_stream_t *server, const hr_conn_proto_t *proto,
                       hr_tls_t *tls)
{
    return accept_one(worker, server, proto, tls);
}

static void write_cb(uv_write_t *req, int status)
{
    write_req_t *wr = (write_req_t *)req;
    hr_conn_t *conn = wr->conn;
    for (size_t i = 0; i < wr->nmsgs; i++)
        hr_msg_unref(wr->msgs[i]);
    free(wr->copy);
    free(wr);
    if (status < 0 && status != UV_ECANCELED) {
        hr_conn_close(conn);
        return;
    }
    if (status == 0 && !conn->closing && conn->tcp.write_queue_size == 0 && conn->proto->on_drained)
        conn->proto->on_drained(conn);
}

/* Writes `bufs` in order; on a TLS connection as one run of records. */
/* TLS: encrypts `bufs` into one run of records, releasing `msgs`. Returns the ciphertext
 * (malloc'd) or NULL: none, or encryption failed (*failed set, the connection closed). */
static char *tls_seal(hr_conn_t *conn, uv_buf_t *bufs, hr_msg_t **msgs, size_t n, size_t *len,
                      int *failed)
{
    *failed = 0;
    for (size_t i = 0; i < n; i++) {
        if (!*failed && hr_tls_encrypt(conn->tls, bufs[i].base, bufs[i].len) != 0) *failed = 1;
        if (msgs[i]) hr_msg_unref(msgs[i]);
        msgs[i] = NULL;
    }
    if (*failed) {
        hr_conn_close(conn);
        return NULL;
    }
    return hr_tls_take_output(conn->tls, len);
}

static int send_bufs(hr_conn_t *conn, uv_buf_t *bufs, hr_msg_t **msgs, size_t n)
{
    if (!conn->tls) return send_raw(conn, bufs, msgs, n);
    int failed;
    size_t len = 0;
    char *out = tls_seal(conn, bufs, msgs, n, &len, &failed);
    if (failed) return HR_ENOMEM;
    if (!out) return 0;
    uv_buf_t buf = uv_buf_init(out, (unsigned)len);
    hr_msg_t *owner = NULL;
    int rc = send_raw(conn, &buf, &owner, 1);
    free(out);
    return rc;
}

/* Writes `bufs` in order: as much as the socket takes now, the rest queued. `msgs[i]` (may be
 * NULL) owns bufs[i]; this call takes over those references. A NULL-owned buffer that is not
 * fully written at once is copied. */
static int send_raw(hr_conn_t *conn, uv_buf_t *bufs, hr_msg_t **msgs, size_t n)
{
    int written = uv_try_write((uv_stream_t *)&conn->tcp, bufs, (unsigned)n);
    return send_rest(conn, bufs, msgs, n, written);
}

/* After a non-blocking send of `bufs` took `written` bytes (or failed with it: UV_EAGAIN is
 * none taken): drops what went out and queues the rest, or cuts a slow consumer, or closes.
 * Shared by uv_try_write's path and io_uring's batches. */
static int send_rest(hr_conn_t *conn, uv_buf_t *bufs, hr_msg_t **msgs, size_t n, int written)
{
    size_t sent, first = 0;
    if (written < 0 && written != UV_EAGAIN) goto fail;
    sent = written > 0 ? (size_t)written : 0;
    atomic_fetch_add_explicit(&conn->worker->bytes_out, sent, memory_order_relaxed);
    conn->bytes_written += sent;
    /* Drop what went out whole; trim the buffer it stopped in. */
    for (size_t left = sent; first < n && left >= bufs[first].len; first++) {
        left -= bufs[first].len;
        sent -= bufs[first].len;
        if (msgs[first]) hr_msg_unref(msgs[first]);
        msgs[first] = NULL;
    }
    if (first == n) return 0;
    bufs[first].base += sent;
    bufs[first].len -= sent;
    size_t rest = 0;
    for (size_t i = first; i < n; i++)
        rest += bufs[i].len;
    if (!conn->overflowed && conn->tcp.write_queue_size > 0 &&
        conn->tcp.write_queue_size + rest > conn->worker->config->max_outbound_bytes) {
        /* A reader this far behind would make us buffer without bound; it resumes from
         * history when it reconnects. (One frame larger than the limit may always be in
         * flight, so a big message does not cut a fast reader.) */
        atomic_fetch_add_explicit(&conn->worker->server->metrics.slow_consumer_cuts, 1,
                                  memory_order_relaxed);
        hr_warn("conn.slow_consumer", "conn=%llu peer=%s queued=%zu", (unsigned long long)conn->id,
                conn->peer, conn->tcp.write_queue_size + rest);
        written = HR_ELIMIT;
        goto fail;
    }
    write_req_t *wr = malloc(sizeof *wr + (n - first) * sizeof *wr->msgs);
    if (!wr) {
        written = HR_ENOMEM;
        goto fail;
    }
    wr->conn = conn;
    wr->copy = NULL;
    wr->nmsgs = 0;
    for (size_t i = first; i < n; i++) {
        if (msgs[i]) {
            wr->msgs[wr->nmsgs++] = msgs[i];
        } else if (!(wr->copy = malloc(bufs[i].len)) && bufs[i].len) { /* one copy at most */
            written = HR_ENOMEM;
        } else {
            memcpy(wr->copy, bufs[i].base, bufs[i].len);
            bufs[i].base = wr->copy;
        }
        msgs[i] = NULL;
    }
    if (written == HR_ENOMEM || uv_write(&wr->req, (uv_stream_t *)&conn->tcp, bufs + first,
                                         (unsigned)(n - first), write_cb) != 0) {
        for (size_t i = 0; i < wr->nmsgs; i++)
            hr_msg_unref(wr->msgs[i]);
        free(wr->copy);
        free(wr);
        hr_conn_close(conn);
        return HR_ENOMEM;
    }
    atomic_fetch_add_explicit(&conn->worker->bytes_out, rest, memory_order_relaxed);
    conn->bytes_written += rest;
    return 0;
fail:
    for (size_t i = first; i < n; i++)
        if (msgs[i]) hr_msg_unref(msgs[i]);
    if (written == HR_ELIMIT && conn->proto->on_overflow && !conn->overflowed) {
        /* The goodbye may never drain either: the sweep closes the connection by then. */
        conn->overflowed = 1;
        conn->linger_until_ms = (int64_t)uv_now(&conn->worker->loop) + HR_LINGER_MS;
        conn->proto->on_overflow(conn);
        return written;
    }
    hr_conn_close(conn);
    return written;
}

static void slots_unpack(const hr_cork_t *slots, size_t n, uv_buf_t *bufs, hr_msg_t **msgs)
{
    for (size_t i = 0; i < n; i++) {
        bufs[i] = slots[i].buf;
        msgs[i] = slots[i].msg;
    }
}

/* Takes a connection's gathered frames off it into bufs/msgs (the references move with them)
 * and lends its slots back to the worker; returns how many. */
static size_t cork_detach(hr_conn_t *conn, uv_buf_t *bufs, hr_msg_t **msgs)
{
    size_t n = conn->cork_len;
    slots_unpack(conn->cork, n, bufs, msgs);
    cork_give(conn->worker, conn->cork);
    conn->cork = NULL;
    conn->cork_len = 0;
    hr_list_remove(&conn->dirty_link);
    return n;
}

/* Sends what a corked connection gathered, in one writev. */
static int flush_corked(hr_conn_t *conn)
{
    uv_buf_t bufs[HR_CORK_MAX];
    hr_msg_t *msgs[HR_CORK_MAX];
    size_t n = cork_detach(conn, bufs, msgs);
    if (!n) return 0;
    if (conn->closing || conn->finishing) {
        for (size_t i = 0; i < n; i++)
            hr_msg_unref(msgs[i]);
        return HR_ESHUTDOWN;
    }
    return send_bufs(conn, bufs, msgs, n);
}

int hr_conn_write(hr_conn_t *conn, const char *bytes, size_t len, hr_msg_t *msg)
{
    if (conn->closing || conn->finishing) return HR_ESHUTDOWN;
    if (conn->worker->corked && msg) {
        /* During an inbox drain, frames are gathered and sent once per connection. */
        if (conn->cork_len == HR_CORK_MAX) {
            int rc = flush_corked(conn);
            if (rc != 0) return rc;
        }
        if (conn->cork_len == 0 && (conn->cork = cork_take(conn->worker)))
            hr_list_push(&conn->worker->dirty, &conn->dirty_link);
        if (conn->cork) {
            conn->cork[conn->cork_len++] =
                (hr_cork_t){uv_buf_init((char *)bytes, (unsigned)len), hr_msg_ref(msg)};
            return 0;
        } /* no slots (out of memory): sent at once below */
    }
    if (conn->cork_len) {
        int rc = flush_corked(conn); /* keep order */
        if (rc != 0) return rc;
    }
    uv_buf_t buf = uv_buf_init((char *)bytes, (unsigned)len);
    hr_msg_t *owner = msg ? hr_msg_ref(msg) : NULL;
    return send_bufs(conn, &buf, &owner, 1);
}

static int conn_stream_write(hr_stream_t *stream, const char *bytes, size_t len, hr_msg_t *msg)
{
    return hr_conn_write(stream->carrier, bytes, len, msg);
}

static void conn_stream_end(hr_stream_t *stream)
{
    hr_conn_finish(stream->carrier);
}

const hr_stream_ops_t hr_conn_stream_ops = {conn_stream_write, conn_stream_end};

_Static_assert(HR_CORK_MAX <= HR_URING_IOV, "a connection's gathered frames fit one send");

/* A connection's gathered frames while its send is in a worker's io_uring batch: detached from
 * the connection (so nothing can send them twice) until the result comes back. On TLS, the
 * frames are already records: `cipher`, malloc'd, instead of slots. */
typedef struct batched_s {
    hr_conn_t *conn;
    hr_cork_t *slots;
    unsigned n;
    char *cipher;
    size_t cipher_len;
} batched_t;

static void batch_done(void *tag, int result)
{
    batched_t *entry = tag;
    hr_conn_t *conn = entry->conn;
    uv_buf_t bufs[HR_CORK_MAX];
    hr_msg_t *msgs[HR_CORK_MAX];
    if (entry->cipher) { /* send_rest copies what the socket did not take */
        bufs[0] = uv_buf_init(entry->cipher, (unsigned)entry->cipher_len);
        msgs[0] = NULL;
        if (!conn->closing) send_rest(conn, bufs, msgs, 1, result);
        free(entry->cipher);
        return;
    }
    slots_unpack(entry->slots, entry->n, bufs, msgs);
    cork_give(conn->worker, entry->slots);
    if (conn->closing) { /* closed meanwhile: what was sent is sent */
        for (unsigned i = 0; i < entry->n; i++)
            hr_msg_unref(msgs[i]);
        return;
    }
    send_rest(conn, bufs, msgs, entry->n, result);
}

/* Only what uv_try_write would write at once: open, nothing queued on libuv. */
static int batchable(hr_conn_t *conn, int *fd)
{
    uv_os_fd_t os_fd;
    if (conn->closing || conn->finishing || conn->tcp.write_queue_size != 0 ||
        conn->cork_len == 0 || uv_fileno((uv_handle_t *)&conn->tcp, &os_fd) != 0)
        return 0;
    *fd = os_fd;
    return 1;
}

/* TLS: the gathered frames become one run of records (as send_bufs makes them), and the batch
 * sends the ciphertext. Called with room in the batch: encrypting cannot be taken back. */
static void batch_tls(hr_uring_t *uring, hr_conn_t *conn, int fd, batched_t *entry)
{
    uv_buf_t bufs[HR_CORK_MAX];
    hr_msg_t *msgs[HR_CORK_MAX];
    size_t n = cork_detach(conn, bufs, msgs), len = 0;
    int failed;
    char *out = tls_seal(conn, bufs, msgs, n, &len, &failed);
    if (!out) return;
    struct iovec iov = {out, len};
    if (hr_uring_add(uring, fd, &iov, 1, entry) == 0) {
        *entry = (batched_t){conn, NULL, 0, out, len};
        return;
    }
    uv_buf_t buf = uv_buf_init(out, (unsigned)len); /* not expected: room was checked */
    hr_msg_t *owner = NULL;
    send_raw(conn, &buf, &owner, 1);
    free(out);
}

/* --io-uring: every dirty connection's frames in sends of up to HR_URING_BATCH per
 * io_uring_enter; the results go through send_rest as uv_try_write's do. */
static void uncork_batched(hr_worker_t *worker, hr_uring_t *uring)
{
    batched_t entries[HR_URING_BATCH];
    while (!hr_list_empty(&worker->dirty) && !hr_uring_broken(uring)) {
        hr_conn_t *conn = hr_container_of(worker->dirty.next, hr_conn_t, dirty_link);
        int fd;
        if (!batchable(conn, &fd)) {
            flush_corked(conn);
            continue;
        }
        if (hr_uring_pending(uring) == HR_URING_BATCH) hr_uring_run(uring, batch_done);
        if (conn->tls) {
            batch_tls(uring, conn, fd, &entries[hr_uring_pending(uring)]);
            continue;
        }
        struct iovec iov[HR_CORK_MAX];
        for (unsigned i = 0; i < conn->cork_len; i++)
            iov[i] = (struct iovec){conn->cork[i].buf.base, conn->cork[i].buf.len};
        batched_t *entry = &entries[hr_uring_pending(uring)];
        if (hr_uring_add(uring, fd, iov, conn->cork_len, entry) != 0) {
            if (hr_uring_pending(uring))
                hr_uring_run(uring, batch_done); /* full: go */
            else
                flush_corked(conn);
            continue;
        }
        *entry = (batched_t){conn, conn->cork, conn->cork_len, NULL, 0};
        conn->cork = NULL;
        conn->cork_len = 0;
        hr_list_remove(&conn->dirty_link);
    }
    if (hr_uring_pending(uring)) hr_uring_run(uring, batch_done);
}

void hr_conn_uncork(hr_worker_t *worker)
{
    worker->corked = 0;
    /* One dirty connection is one system call either way; writev is the cheaper one. */
    hr_list_t *dirty = &worker->dirty;
    if (worker->uring && !hr_list_empty(dirty) && dirty->next->next != dirty)
        uncork_batched(worker, worker->uring);
    while (!hr_list_empty(&worker->dirty))
        flush_corked(hr_container_of(worker->dirty.next, hr_conn_t, dirty_link));
}

/* Our side is sent. Closing now could reset the connection if the client's unread bytes are
 * still queued, and a reset can destroy the response in flight; so we wait for the client's
 * FIN (read_cb closes) or the linger deadline (hr_conn_sweep). */
static void shutdown_cb(uv_shutdown_t *req, int status)
{
    hr_conn_t *conn = req->data;
    free(req);
    if (status < 0) {
        hr_conn_close(conn);
        return;
    }
    conn->linger_until_ms = (int64_t)uv_now(&conn->worker->loop) + HR_LINGER_MS;
}

void hr_conn_sweep(hr_worker_t *worker)
{
    int64_t now = (int64_t)uv_now(&worker->loop);
    int64_t idle_ms = worker->config->idle_timeout_ms;
    hr_list_t *head = &worker->conns;
    for (hr_list_t *it = head->next, *next; it != head; it = next) {
        next = it->next;
        hr_conn_t *conn = hr_container_of(it, hr_conn_t, link);
        if (conn->linger_until_ms && now >= conn->linger_until_ms) {
            hr_conn_close(conn);
        } else if (conn->request_deadline_ms && now >= conn->request_deadline_ms &&
                   !conn->closing && !conn->finishing && conn->proto->on_timeout) {
            conn->request_deadline_ms = 0;
            conn->proto->on_timeout(conn);
        } else if (!conn->finishing && now - conn->last_read_ms >= idle_ms &&
                   conn->proto->idle_closes && conn->proto->idle_closes(conn)) {
            hr_debug("conn.idle_timeout", "conn=%llu peer=%s", (unsigned long long)conn->id,
                     conn->peer);
            hr_conn_close(conn);
        }
    }
}

void hr_conn_finish(hr_conn_t *conn)
{
    if (conn->closing || conn->finishing) return;
    if (conn->cork_len && flush_corked(conn) != 0) return; /* frames gathered go out first */
    conn->finishing = 1;
    hr_conn_resume(conn);              /* the lingering close reads until the client's FIN */
    if (conn->tls && !conn->closing) { /* close_notify, then the TCP FIN */
        hr_tls_shutdown(conn->tls);
        tls_flush(conn);
    }
    if (conn->closing) return;
    uv_shutdown_t *req = malloc(sizeof *req);
    if (!req) {
        hr_conn_close(conn);
        return;
    }
    req->data = conn;
    if (uv_shutdown(req, (uv_stream_t *)&conn->tcp, shutdown_cb) != 0) {
        free(req);
        hr_conn_close(conn);
    }
}
