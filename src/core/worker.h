/* A worker: one thread, one libuv loop, its own SO_REUSEPORT listener and the connections it
 * accepted. Everything reachable from a worker is touched only by its thread, except the broker
 * (locked) and the atomic counters read by /v1/stats. */
#ifndef HR_WORKER_H
#define HR_WORKER_H

#include <stdatomic.h>
#include <uv.h>

#include "core/broker.h"
#include "core/config.h"
#include "core/list.h"
#include "core/timeq.h"

typedef struct hr_server_s hr_server_t;

enum hr_conn_kind { HR_CONN_HTTP, HR_CONN_SSE, HR_CONN_WS, HR_CONN_POLL, HR_CONN_KINDS };

/* Work to run once the current inbox drain is over (a long poll answering with every message
 * that drain brought, rather than the first). */
typedef struct hr_task_s hr_task_t;
struct hr_task_s {
    hr_list_t link; /* in worker->after_drain; self-linked when not queued */
    void (*run)(hr_task_t *task);
};

/* A publisher waiting for its message to be durable (a store in sync or batch mode). */
typedef struct hr_durable_wait_s hr_durable_wait_t;
struct hr_durable_wait_s {
    hr_list_t link; /* in worker->durable_waits, ascending id */
    uint64_t id;    /* the newest id the publisher needs on disk */
    void (*done)(hr_durable_wait_t *wait, int stored); /* stored: 0 when the write failed */
};

typedef struct hr_worker_s {
    unsigned id;               /* 0..workers-1 */
    hr_server_t *server;       /* owner */
    const hr_config_t *config; /* shared, read-only */
    hr_broker_t *broker;       /* shared */
    const struct hr_conn_proto_s
        *front; /* what accepted connections speak first (set by the server) */
    uv_loop_t loop;
    uv_thread_t thread;
    uv_tcp_t listeners[2 * HR_MAX_LISTENERS]; /* one per server->listeners, same order */
    unsigned nlisteners;                      /* opened (closed at stop) */
    uv_async_t inbox_wake;                    /* broker → deliver */
    uv_check_t self_drain;      /* after this iteration's I/O: deliver what this worker published */
    uv_async_t stop_wake;       /* server → begin shutdown */
    uv_async_t durable_wake;    /* store → publishers waiting for the disk */
    hr_list_t durable_waits;    /* hr_durable_wait_t, ascending id */
    uv_mutex_t durable_lock;    /* the store's thread vs closing durable_wake */
    int durable_open;           /* durable_wake may be sent to */
    uv_timer_t heartbeat_timer; /* SSE comments */
    uv_timer_t housekeeping_timer; /* once a second: lingering closes, history expiry */
    uv_timer_t grace_timer;        /* shutdown deadline */
    uv_timer_t delay_timer;        /* worker 0: delayed messages due (src/delay) */
    uv_timer_t write_delay_timer;  /* --write-delay: sends what the drains corked */
    int delay_taking;              /* cluster: a take script is under way */
    hr_list_t conns;               /* every open hr_conn_t */
    hr_list_t subs;                /* every live hr_sub_t */
    hr_list_t dirty;               /* connections with corked frames */
    hr_list_t after_drain;         /* hr_task_t to run after the inbox drain */
    hr_timeq_t timeouts;           /* parked long polls */
    int corked;                    /* draining the inbox: gather writes */
    int stopping;                  /* shutdown begun */
    int loop_unrun; /* the loop is initialised but its thread never ran it (hr_worker_free) */
    uint64_t grace_deadline_ms;             /* loop time when shutdown stops waiting */
    uint64_t next_conn_id;                  /* for logs */
    atomic_size_t conns_now[HR_CONN_KINDS]; /* open connections by kind */
    atomic_uint_fast64_t bytes_out;         /* written to sockets */
    atomic_uint_fast64_t loop_lag_ns;       /* how late the last housekeeping tick ran */
    uint64_t tick_due_ns;                   /* when the next one should run */
    void
        *front_state; /* the front ends' per-worker state (http/access.c: the Date cache); free() */
    void *cork_free;  /* spare cork slot blocks (core/conn.c), a free list */
    struct hr_uring_s *uring; /* --io-uring: batched sends (core/uring.h), or NULL: writev */
    size_t cork_free_len;     /* blocks in it */
    char read_buf[64 * 1024]; /* shared by all reads: parsed synchronously, then reused */
} hr_worker_t;

/* Binds the port the process claimed (core/listen.h), sharing it with the other workers via
 * SO_REUSEPORT, without starting the thread. */
int hr_worker_init(hr_worker_t *worker, hr_server_t *server, unsigned id, const hr_config_t *config,
                   hr_broker_t *broker);
int hr_worker_start(hr_worker_t *worker);
/* Thread-safe: asks the worker to shut down gracefully. */
void hr_worker_stop(hr_worker_t *worker);
void hr_worker_join(hr_worker_t *worker);
/* After join (or a failed init): what init set up outside the loop. */
void hr_worker_free(hr_worker_t *worker);

void hr_worker_add_sub(hr_worker_t *worker, hr_sub_t *sub);
void hr_worker_remove_sub(hr_worker_t *worker, hr_sub_t *sub);

/* Calls wait->done once `id` is on disk (or its write failed). Ids must rise per worker. */
void hr_worker_wait_durable(hr_worker_t *worker, hr_durable_wait_t *wait, uint64_t id,
                            void (*done)(hr_durable_wait_t *wait, int stored));
/* Thread-safe: the store wrote or failed something; waiting publishers are checked. */
void hr_worker_durable_moved(hr_worker_t *worker);

/* Queues `task` to run after the drain under way (idempotent while queued). */
void hr_worker_after_drain(hr_worker_t *worker, hr_task_t *task);

#endif
