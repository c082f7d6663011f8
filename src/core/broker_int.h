/* The broker's insides, shared by broker.c (topics, ids, fan-out) and broker_bus.c (cluster
 * mode: topics made live from a bus such as Redis). Nothing else includes this. */
#ifndef HR_BROKER_INT_H
#define HR_BROKER_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "core/broker.h"
#include "core/history.h"
#include "core/list.h"

struct hr_topic_s {
    hr_broker_t *broker;
    hr_topic_t *hash_next;  /* bucket chain */
    uint64_t hash;          /* of the name */
    atomic_uint refs;       /* messages, subscriptions, inbox entries; raised only under lock */
    uint64_t created_floor; /* broker's last id when created: older ids are unknown here */
    hr_history_t hist;      /* recent messages */
    uint64_t published;     /* messages published to it (its rate, GET /v1/topics) */
    unsigned *subs_on;      /* subscribers per worker, under the broker lock */
    hr_list_t *local;       /* per worker list of hr_subnode_t; only that worker's thread */
    /* Cluster mode, under the broker lock. */
    int bus_wanted;      /* the bus was asked to carry it (holds a topic reference) */
    int bus_live;        /* subscribed on the bus and history loaded: subscribers may come */
    int64_t bus_idle_ms; /* when it was first seen unused (no subscriber, no await); 0 = used */
    hr_list_t awaits;    /* hr_await_node_t waiting for bus_live */
    size_t name_len;
    char name[]; /* NUL-terminated */
};

enum inbox_kind { INBOX_MSG, INBOX_KICK, INBOX_POST };

typedef struct inbox_item_s {
    enum inbox_kind kind;
    hr_msg_t *msg;     /* INBOX_MSG: one reference */
    hr_topic_t *topic; /* INBOX_KICK: one reference */
    hr_post_t *post;   /* INBOX_POST: run on the worker */
} inbox_item_t;

typedef struct inbox_s {
    pthread_mutex_t lock;
    inbox_item_t *items; /* pending, in id order */
    size_t count;
    size_t capacity;
    uv_async_t *wake; /* the worker's handle */
    int self_wake;    /* its own worker published into it: drain without a wake-up (worker
                         thread only; hr_broker_take_self_wake) */
    /* The batch hr_broker_drain is running (worker thread only), so hr_broker_unpost can take
     * a post out of it too. */
    inbox_item_t *draining;
    size_t ndraining;
} inbox_t;

struct hr_broker_s {
    pthread_mutex_t lock;
    hr_broker_config_t config;
    uint64_t last_id;     /* newest id handed out (cluster: newest id known to exist) */
    hr_topic_t **buckets; /* topic hash table, chained */
    size_t nbuckets;      /* power of two */
    size_t ntopics;
    size_t nsubscriptions;
    uint64_t messages_in;
    atomic_uint_fast64_t deliveries; /* added to by every worker */
    hr_histogram_t fanout;           /* a message's creation → its hand-off on a worker */
    inbox_t *inboxes;                /* one per worker */
    hr_topic_t *restoring;           /* start-up: topic hr_broker_restore_msg fills */
    hr_bus_hooks_t bus;              /* cluster mode when bus.want is set */
    int topic_error;                 /* why hr_broker_topic_get last returned NULL */
    hr_history_budget_t budget;      /* what every history holds, oldest first */
    atomic_llong encoded_bytes;      /* cached encodings of live messages; any thread */
};

int64_t hr_broker_now_ms(void);
/* Lock held. NULL with broker->topic_error HR_ENOMEM, or HR_ELIMIT past max_topics. */
hr_topic_t *hr_broker_topic_get(hr_broker_t *broker, const char *name, size_t len);
hr_topic_t *hr_broker_topic_find(hr_broker_t *broker, const char *name, size_t len);
void hr_broker_topic_ref(hr_topic_t *topic);
/* Lock held: queues `item` for every worker with subscribers on `topic`; marks who to wake. */
void hr_broker_fan_out(hr_broker_t *broker, hr_topic_t *topic, inbox_item_t item,
                       unsigned char *wake);
/* After the lock: wakes the marked workers. */
void hr_broker_wake(hr_broker_t *broker, const unsigned char *wake, unsigned origin);
/* Returns 1 if the worker needs waking, 0 if not, -1 on allocation failure. */
int hr_broker_inbox_push(hr_broker_t *broker, unsigned worker, inbox_item_t item);
/* Lock held: drops the oldest held messages, across topics, while the histories and the cached
 * encodings together exceed history_max_bytes; never the newest held message. */
void hr_broker_trim_history(hr_broker_t *broker);
/* Cluster-mode part of the sweep; lock held. Returns 1 when the topic was let go of. */
int hr_broker_bus_sweep_topic(hr_broker_t *broker, hr_topic_t *topic, int64_t now);

#endif
