/* The bus's insides, shared by bus.c (thread, connections, publish) and bus_topics.c
 * (subscriptions, history loads, gap fills). Everything here is touched by the bus thread only,
 * except the queue (queue_lock) and the atomics. */
#ifndef HR_BUS_INT_H
#define HR_BUS_INT_H

#include <hiredis/async.h>
#include <pthread.h>
#include <stdatomic.h>
#include <uv.h>

#include "bus/bus.h"
#include "bus/wire.h"
#include "core/list.h"

enum sub_state {
    SUB_NONE,    /* not subscribed */
    SUB_PENDING, /* SUBSCRIBE sent */
    SUB_ON,      /* confirmed */
    SUB_LEAVING, /* UNSUBSCRIBE sent; hiredis must see its reply before a new SUBSCRIBE */
};

/* A topic the broker wants (or recently wanted) carried. */
typedef struct bus_topic_s bus_topic_t;
struct bus_topic_s {
    bus_topic_t *hash_next;
    hr_list_t sync_link; /* in bus->sync_pending while waiting for a history load */
    enum sub_state state;
    int wanted;    /* the broker's latest wish */
    int in_resync; /* part of the reconnect resync: live messages wait for the gap fill */
    size_t len;
    char name[]; /* NUL-terminated */
};

typedef struct sync_item_s {
    char *name;
    size_t len;
    uint64_t from;   /* gap fill after this id; 0 = load the newest history */
    hr_msg_t **msgs; /* ascending */
    size_t count;
    uint64_t floor_id;
    int truncated; /* the fill did not reach back to `from` */
} sync_item_t;

/* One MULTI of history reads, applied once both its EXEC reply and its barrier are in. */
typedef struct sync_batch_s {
    hr_list_t link; /* in bus->batches, in seq order */
    uint64_t seq;
    int resync;
    sync_item_t *items;
    size_t n;
    uint64_t epoch; /* the id counter when the reads ran */
    int replied, barrier, failed;
} sync_batch_t;

typedef struct buffered_s {
    char *name; /* a copy: the topic may be let go of while this waits */
    size_t len;
    hr_msg_t *msg;
} buffered_t;

struct hr_bus_s {
    hr_broker_t *broker;
    hr_bus_config_t config;
    hr_redis_url_t url;
    char prefix[128];
    char seq_key[160], last_key[160], barrier[200];
    char publish_sha[41], init_sha[41];
    const char *scripts[32]; /* hr_bus_add_script: loaded after publish_lua and init_lua */
    size_t nscripts;
    struct {
        void (*fn)(void *arg);
        void *arg;
    } on_ready[4]; /* hr_bus_on_ready, in order */
    size_t non_ready;
    char maxlen[24], ttl[24];

    uv_loop_t loop;
    uv_thread_t thread;
    uv_async_t wake;        /* queue has work, or stop */
    uv_timer_t retry_timer; /* reconnect backoff */
    uv_timer_t sync_timer;  /* gathers history loads into one MULTI */
    uv_timer_t watchdog;    /* --redis-timeout: Redis silent while a command waits */
    uint64_t waiting_since; /* uv_now when the watchdog first saw a command waiting; 0 = none */
    pthread_mutex_t queue_lock;
    hr_list_t queue; /* bus_op_t */
    int stopping;    /* under queue_lock */

    redisAsyncContext *cmd; /* commands */
    redisAsyncContext *sub; /* SUBSCRIBE mode */
    int cmd_ready, sub_ready;
    atomic_int up;
    int ever_up, warned_unreachable; /* bus thread: the start-up warning, said once */
    atomic_int failing;              /* the last answered publish failed; see hr_bus_failing */
    int64_t backoff_ms;

    bus_topic_t **buckets;
    size_t nbuckets, ntopics;
    atomic_size_t channels; /* SUB_ON; read by /v1/stats from workers */
    hr_list_t sync_pending;
    hr_list_t batches;
    uint64_t next_seq;
    size_t resync_waiting; /* confirmations the reconnect resync still waits for */
    buffered_t *buffer;    /* live messages held during the resync */
    size_t nbuffer, buffer_cap;

    atomic_uint_fast64_t published, received, reconnects;
};

/* bus.c: the barrier channel is subscribed (the subscription connection is ready). */
void hr_bus_barrier_ready(hr_bus_t *bus);

/* bus_topics.c */
bus_topic_t *hr_bus_topic_find(hr_bus_t *bus, const char *name, size_t len);
void hr_bus_topic_want(hr_bus_t *bus, const char *name, size_t len, int want);
void hr_bus_topics_connected(hr_bus_t *bus);    /* both connections ready: resubscribe all */
void hr_bus_topics_disconnected(hr_bus_t *bus); /* forget subscriptions and batches */
void hr_bus_topics_free(hr_bus_t *bus);
void hr_bus_on_sub_reply(redisAsyncContext *ctx, void *reply, void *arg);
void hr_bus_on_sync_timer(uv_timer_t *timer);

#endif
