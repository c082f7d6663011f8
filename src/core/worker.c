/* Worker threads: listener, inbox wake-up, timers, graceful stop. */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/conn.h"
#include "core/error.h"
#include "core/listen.h"
#include "core/log.h"
#include "core/ratelimit.h"
#include "core/server.h"
#include "core/tls.h"
#include "core/uring.h"
#include "core/worker.h"
#include "presence/presence_sinks.h"
#include "push/push.h"
#include "api/handlers.h"

static void on_connection(uv_stream_t *listener, int status)
{
    hr_worker_t *worker = listener->data;
    const hr_listener_t *addr =
        &worker->server->listeners[(uv_tcp_t *)listener - worker->listeners];
    if (status < 0) {
        hr_warn("listen.error", "worker=%u addr=%s:%d err=%s", worker->id, addr->host, addr->port,
                uv_err_name(status));
        return;
    }
    if (addr->tls)
        hr_conn_accept_tls(worker, listener, worker->front, worker->server->tls);
    else
        hr_conn_accept(worker, listener, worker->front);
}

/* This worker's socket on each of the server's addresses, shared with the other workers by
 * SO_REUSEPORT: the kernel spreads the connections. */
/* --io-uring: auto falls back to writev where the kernel (or a sandbox) refuses io_uring; on
 * makes that a startup error. */
static int open_uring(hr_worker_t *worker)
{
    if (worker->config->io_uring == HR_IO_URING_OFF) return 0;
    int err;
    worker->uring = hr_uring_new(&err);
    if (worker->uring) return 0;
    int required = worker->config->io_uring == HR_IO_URING_ON;
    if (required || worker->id == 0)
        hr_log(required ? HR_LOG_ERROR : HR_LOG_INFO, "worker.io_uring_unavailable",
               "worker=%u err=%s sends=%s", worker->id, uv_err_name(err),
               required ? "none" : "writev");
    return required ? err : 0;
}

static int open_listeners(hr_worker_t *worker)
{
    hr_server_t *server = worker->server;
    for (unsigned i = 0; i < server->nlisteners; i++) {
        int fd = hr_listen_bind_shared(server->listeners[i].host, server->listeners[i].port);
        if (fd < 0) return fd;
        uv_tcp_t *listener = &worker->listeners[i];
        uv_tcp_init(&worker->loop, listener);
        listener->data = worker;
        worker->nlisteners++;
        int rc = uv_tcp_open(listener, fd);
        if (rc != 0) {
            close(fd);
            return rc;
        }
        if ((rc = uv_listen((uv_stream_t *)listener, 4096, on_connection)) != 0) return rc;
    }
    return 0;
}

static void on_write_delay(uv_timer_t *timer)
{
    hr_conn_uncork(timer->data);
}

static void on_inbox(uv_async_t *handle)
{
    hr_worker_t *worker = handle->data;
    /* Several messages per wake-up are common under load: gather each connection's frames
     * and send them with one writev instead of one write per frame. */
    worker->corked = 1;
    hr_broker_drain(worker->broker, worker->id);
    while (!hr_list_empty(&worker->after_drain)) {
        hr_task_t *task = hr_container_of(worker->after_drain.next, hr_task_t, link);
        hr_list_remove(&task->link);
        task->run(task);
    }
    /* --write-delay: the frames wait (corked) for the messages of the next few drains, so a
     * publisher that sends one message at a time still gets several per write. */
    if (!worker->config->write_delay_ms)
        hr_conn_uncork(worker);
    else if (!uv_is_active((uv_handle_t *)&worker->write_delay_timer))
        uv_timer_start(&worker->write_delay_timer, on_write_delay,
                       (uint64_t)worker->config->write_delay_ms, 0);
}

/* Publishes handled in this iteration's I/O reach this worker's own subscribers now, before the
 * loop polls again, and without the eventfd write and read a wake-up costs. */
static void on_self_drain(uv_check_t *check)
{
    hr_worker_t *worker = check->data;
    if (hr_broker_take_self_wake(worker->broker, worker->id)) on_inbox(&worker->inbox_wake);
}

static hr_store_t *worker_store(hr_worker_t *worker);

/* Answers, in id order, every waiting publisher whose message is on disk or failed to get there. */
static void on_durable(uv_async_t *handle)
{
    hr_worker_t *worker = handle->data;
    hr_store_t *store = worker_store(worker);
    uint64_t durable = atomic_load(&store->durable_id);
    while (!hr_list_empty(&worker->durable_waits)) {
        hr_durable_wait_t *wait =
            hr_container_of(worker->durable_waits.next, hr_durable_wait_t, link);
        int failed = hr_store_failed(store, wait->id);
        if (!failed && wait->id > durable) break;
        hr_list_remove(&wait->link);
        wait->done(wait, !failed);
    }
}

void hr_worker_wait_durable(hr_worker_t *worker, hr_durable_wait_t *wait, uint64_t id,
                            void (*done)(hr_durable_wait_t *wait, int stored))
{
    wait->id = id;
    wait->done = done;
    hr_list_push(&worker->durable_waits, &wait->link);
    /* The write may have finished already; its notification would then be missed. */
    hr_store_t *store = worker_store(worker);
    if (id <= atomic_load(&store->durable_id) || hr_store_failed(store, id))
        uv_async_send(&worker->durable_wake);
}

void hr_worker_durable_moved(hr_worker_t *worker)
{
    uv_mutex_lock(&worker->durable_lock);
    if (worker->durable_open) uv_async_send(&worker->durable_wake);
    uv_mutex_unlock(&worker->durable_lock);
}

static void on_heartbeat(uv_timer_t *timer)
{
    hr_worker_t *worker = timer->data;
    hr_list_t *head = &worker->subs;
    for (hr_list_t *it = head->next, *next; it != head; it = next) {
        next = it->next;
        hr_sub_t *sub = hr_container_of(it, hr_sub_t, worker_link);
        sub->vt->heartbeat(sub);
    }
}

static void on_housekeeping(uv_timer_t *timer)
{
    hr_worker_t *worker = timer->data;
    /* Loop lag: a busy loop runs its once-a-second timer late by about how long it was busy. */
    uint64_t now_ns = uv_hrtime();
    if (worker->tick_due_ns)
        atomic_store_explicit(&worker->loop_lag_ns,
                              now_ns > worker->tick_due_ns ? now_ns - worker->tick_due_ns : 0,
                              memory_order_relaxed);
    worker->tick_due_ns = now_ns + 1000000000u;
    hr_conn_sweep(worker);
    if (worker->id == 0) hr_broker_sweep(worker->broker);
    if (worker->id == 0 && worker->server->presence) hr_presence_sweep(worker->server->presence);
    if (worker->id == 0 && worker->server->presence_redis)
        hr_presence_redis_tick(worker->server->presence_redis);
    if (worker->id == 0 && worker->server->push) hr_push_tick(worker->server->push);
    if (worker->id == 0 && worker->server->signal_limit)
        hr_ratelimit_sweep(worker->server->signal_limit, (int64_t)uv_now(&worker->loop));
    if (worker->id == 0 && worker->server->publish_limit)
        hr_ratelimit_sweep(worker->server->publish_limit, (int64_t)uv_now(&worker->loop));
}

/* Worker 0, every 100 ms: delayed messages that are due are published. */
static void on_delay_timer(uv_timer_t *timer)
{
    hr_worker_t *worker = timer->data;
    if (!worker->stopping) hr_delayed_fire_due(worker);
}

static void close_all(hr_worker_t *worker)
{
    hr_list_t *head = &worker->conns;
    for (hr_list_t *it = head->next; it != head; it = it->next)
        hr_conn_close(hr_container_of(it, hr_conn_t, link));
    uv_mutex_lock(&worker->durable_lock);
    worker->durable_open = 0;
    uv_mutex_unlock(&worker->durable_lock);
    uv_handle_t *handles[] = {
        (uv_handle_t *)&worker->inbox_wake,         (uv_handle_t *)&worker->stop_wake,
        (uv_handle_t *)&worker->durable_wake,       (uv_handle_t *)&worker->heartbeat_timer,
        (uv_handle_t *)&worker->housekeeping_timer, (uv_handle_t *)&worker->grace_timer,
        (uv_handle_t *)&worker->delay_timer,        (uv_handle_t *)&worker->write_delay_timer,
        (uv_handle_t *)&worker->self_drain};
    for (size_t i = 0; i < sizeof handles / sizeof handles[0]; i++)
        if (!uv_is_closing(handles[i])) uv_close(handles[i], NULL);
    hr_timeq_close(&worker->timeouts);
}

static void on_grace_over(uv_timer_t *timer)
{
    hr_worker_t *worker = timer->data;
    size_t left = 0;
    for (hr_list_t *it = worker->conns.next; it != &worker->conns; it = it->next)
        left++;
    if (left) hr_info("worker.grace_over", "worker=%u closing=%zu", worker->id, left);
    close_all(worker);
}

/* Runs until every connection is gone: the grace timer re-checks every 50 ms and forces the
 * rest when shutdown_grace_ms is spent. */
static void on_grace_tick(uv_timer_t *timer)
{
    hr_worker_t *worker = timer->data;
    if (hr_list_empty(&worker->conns) || uv_now(&worker->loop) >= worker->grace_deadline_ms) {
        on_grace_over(timer);
    }
}

static void on_stop(uv_async_t *handle)
{
    hr_worker_t *worker = handle->data;
    if (worker->stopping) return;
    worker->stopping = 1;
    hr_broker_attach_worker(worker->broker, worker->id, NULL);
    for (unsigned i = 0; i < worker->nlisteners; i++)
        uv_close((uv_handle_t *)&worker->listeners[i], NULL);
    /* Subscribers first: ending a stream lets the client reconnect elsewhere and resume. */
    hr_list_t *head = &worker->subs;
    for (hr_list_t *it = head->next, *next; it != head; it = next) {
        next = it->next;
        hr_sub_t *sub = hr_container_of(it, hr_sub_t, worker_link);
        sub->vt->kick(sub);
    }
    head = &worker->conns;
    for (hr_list_t *it = head->next, *next; it != head; it = next) {
        next = it->next;
        hr_conn_t *conn = hr_container_of(it, hr_conn_t, link);
        if (conn->proto->on_shutdown) conn->proto->on_shutdown(conn);
    }
    worker->grace_deadline_ms = uv_now(&worker->loop) + (uint64_t)worker->config->shutdown_grace_ms;
    uv_timer_start(&worker->grace_timer, on_grace_tick, 0, 50);
}

int hr_worker_init(hr_worker_t *worker, hr_server_t *server, unsigned id, const hr_config_t *config,
                   hr_broker_t *broker)
{
    memset(worker, 0, sizeof *worker);
    worker->id = id;
    worker->server = server;
    worker->config = config;
    worker->broker = broker;
    hr_list_init(&worker->conns);
    hr_list_init(&worker->subs);
    hr_list_init(&worker->dirty);
    hr_list_init(&worker->after_drain);
    hr_list_init(&worker->durable_waits);
    uv_mutex_init(&worker->durable_lock);
    int rc = uv_loop_init(&worker->loop);
    if (rc != 0) return rc;
    worker->loop_unrun = 1;
    uv_async_init(&worker->loop, &worker->inbox_wake, on_inbox);
    uv_async_init(&worker->loop, &worker->stop_wake, on_stop);
    uv_async_init(&worker->loop, &worker->durable_wake, on_durable);
    worker->durable_wake.data = worker;
    worker->durable_open = 1;
    uv_timer_init(&worker->loop, &worker->heartbeat_timer);
    uv_timer_init(&worker->loop, &worker->housekeeping_timer);
    uv_timer_init(&worker->loop, &worker->grace_timer);
    uv_timer_init(&worker->loop, &worker->delay_timer);
    uv_timer_init(&worker->loop, &worker->write_delay_timer);
    uv_check_init(&worker->loop, &worker->self_drain);
    worker->self_drain.data = worker;
    uv_check_start(&worker->self_drain, on_self_drain);
    hr_timeq_init(&worker->loop, &worker->timeouts);
    worker->inbox_wake.data = worker;
    worker->stop_wake.data = worker;
    worker->heartbeat_timer.data = worker;
    worker->housekeeping_timer.data = worker;
    worker->grace_timer.data = worker;
    worker->delay_timer.data = worker;
    worker->write_delay_timer.data = worker;
    if ((rc = open_listeners(worker)) != 0 || (rc = open_uring(worker)) != 0) return rc;
    hr_broker_attach_worker(broker, id, &worker->inbox_wake);
    uint64_t beat = (uint64_t)config->heartbeat_ms;
    uv_timer_start(&worker->heartbeat_timer, on_heartbeat, beat, beat);
    uv_timer_start(&worker->housekeeping_timer, on_housekeeping, 1000, 1000);
    if (id == 0 && (server->delayed || server->delayed_redis))
        uv_timer_start(&worker->delay_timer, on_delay_timer, 100, 100);
    return 0;
}

static void run(void *arg)
{
    hr_worker_t *worker = arg;
    worker->loop_unrun = 0;
    uv_run(&worker->loop, UV_RUN_DEFAULT);
    /* Handles closed in the last iteration need one more pass for their callbacks. */
    uv_run(&worker->loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&worker->loop) != 0) hr_warn("worker.loop_busy", "worker=%u", worker->id);
}

int hr_worker_start(hr_worker_t *worker)
{
    return uv_thread_create(&worker->thread, run, worker);
}

void hr_worker_stop(hr_worker_t *worker)
{
    uv_async_send(&worker->stop_wake);
}

void hr_worker_join(hr_worker_t *worker)
{
    uv_thread_join(&worker->thread);
}

static void close_handle(uv_handle_t *handle, void *arg)
{
    (void)arg;
    if (!uv_is_closing(handle)) uv_close(handle, NULL);
}

void hr_worker_free(hr_worker_t *worker)
{
    if (worker->loop_unrun) { /* a failed start: the loop init made was never run or closed */
        uv_walk(&worker->loop, close_handle, NULL);
        uv_run(&worker->loop, UV_RUN_DEFAULT);
        uv_loop_close(&worker->loop);
        worker->loop_unrun = 0;
    }
    uv_mutex_destroy(&worker->durable_lock);
    free(worker->front_state);
    hr_conn_cork_pool_free(worker);
    hr_uring_free(worker->uring);
    worker->uring = NULL;
}

#include "core/server.h"

static hr_store_t *worker_store(hr_worker_t *worker)
{
    return worker->server->store;
}

void hr_worker_add_sub(hr_worker_t *worker, hr_sub_t *sub)
{
    hr_list_push(&worker->subs, &sub->worker_link);
}

void hr_worker_after_drain(hr_worker_t *worker, hr_task_t *task)
{
    if (task->link.next && task->link.next != &task->link) return; /* already queued */
    hr_list_push(&worker->after_drain, &task->link);
}

void hr_worker_remove_sub(hr_worker_t *worker, hr_sub_t *sub)
{
    (void)worker;
    hr_list_remove(&sub->worker_link);
}
