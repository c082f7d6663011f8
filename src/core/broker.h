/* The pub/sub core: topics (created on first use), per-topic history, and fan-out to the
 * workers that have subscribers. Knows no transport and no protocol.
 *
 * Threading: every worker thread calls in. One broker mutex guards topics, ids and histories;
 * everything done under it is short (no I/O, no encoding). A publish takes the next broker-wide
 * id and, still under the lock, appends the message to each interested worker's inbox and wakes
 * it. So each inbox holds messages in id order, every subscriber sees ids increase, and one id is
 * a resume point for any set of topics. The fan-out itself (framing, writes) runs on the workers,
 * outside the lock, on all cores at once. */
#ifndef HR_BROKER_H
#define HR_BROKER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "core/list.h"
#include "core/metrics.h"
#include "core/msg.h"
#include "core/sub.h"
#include "store/store.h"

#define HR_TOPIC_MAX_LEN 128

typedef struct hr_broker_s hr_broker_t;

/* Work handed to a worker through its inbox, run on its thread in inbox order. */
typedef struct hr_post_s hr_post_t;
struct hr_post_s {
    void (*run)(hr_post_t *post);
};

/* Cluster mode: how the broker asks the bus (Redis) to carry a topic. Both are called with the
 * broker lock held and must only queue. */
typedef struct hr_bus_hooks_s {
    void (*want)(void *arg, const char *name, size_t len);   /* subscribe and load history */
    void (*unwant)(void *arg, const char *name, size_t len); /* nobody here needs it now */
    int (*up)(void *arg);                                    /* whether the bus is connected */
    void *arg;
} hr_bus_hooks_t;

/* A worker waiting for topics to become live (cluster mode). */
typedef struct hr_await_s hr_await_t;
typedef struct hr_await_node_s {
    hr_list_t link; /* in topic->awaits */
    hr_await_t *await;
    hr_topic_t *topic; /* holds a reference while linked */
} hr_await_node_t;

struct hr_await_s {
    hr_post_t post;  /* internal: runs `done` on the worker */
    unsigned worker; /* set by the caller: where `done` runs */
    /* Set by the caller. ok: every topic is live; 0: the bus went down first. */
    void (*done)(hr_await_t *await, int ok);
    hr_await_node_t *nodes; /* internal, under the broker lock */
    size_t nnodes;
    size_t waiting; /* topics not live yet */
    int failed;
    int posted; /* `post` is in the worker's inbox */
};

typedef struct hr_broker_config_s {
    unsigned workers;         /* worker threads that will drain inboxes */
    size_t history_size;      /* messages kept per topic */
    int64_t history_ttl_ms;   /* age after which history drops a message; 0 = no age limit */
    hr_store_t *store;        /* every published message is appended to it; not owned */
    size_t max_topics;        /* topics held at once (with history or subscribers); 0 = none */
    size_t history_max_bytes; /* every topic's history together; 0 = no budget */
    size_t history_topic_max_bytes; /* one topic's history; 0 = no cap */
} hr_broker_config_t;

typedef struct hr_publish_s {
    const char *topic;
    size_t topic_len;
    const char *event; /* may be NULL */
    size_t event_len;
    const char *data;
    size_t data_len;
    uint32_t retry_ms;   /* 0 = none */
    uint64_t want_id;    /* 0 = assign the next id; else must exceed every id so far */
    int binary;          /* sent as binary (e.g. a WebSocket binary frame) */
    uint64_t delayed_id; /* the delayed message this publish delivers (its store row goes in the
                            same transaction as the message: once, even across a crash); 0 */
    unsigned origin;     /* the publishing worker's id + 1 when it runs on that worker's thread: its
                            own inbox is then drained in its check phase, without a wake-up
                            (hr_broker_take_self_wake); 0 = any other thread */
} hr_publish_t;

typedef struct hr_gap_s {
    const char *topic; /* borrowed: valid while the subscription (or replay) holds the topic */
    uint64_t floor_id; /* ids up to here may have existed and are no longer held */
} hr_gap_t;

/* Messages to send before going live, and topics whose history no longer reaches back. */
typedef struct hr_replay_s {
    hr_msg_t **msgs; /* one reference each, ascending id */
    size_t count;
    hr_gap_t *gaps;
    size_t ngaps;
    int more;         /* history read only: more messages than `limit` */
    uint64_t last_id; /* broker's newest id when the snapshot was taken */
} hr_replay_t;

typedef struct hr_broker_stats_s {
    size_t topics;
    size_t subscriptions;
    uint64_t messages_in;
    uint64_t deliveries;
    uint64_t last_id;
    int ids_exhausted;          /* last_id reached HR_ID_MAX: every publish is refused */
    size_t history_bytes;       /* held messages, their topics, and cached encodings */
    size_t history_messages;    /* held in all */
    uint64_t history_evictions; /* dropped, oldest first, to stay within the budget */
} hr_broker_stats_t;

hr_broker_t *hr_broker_new(const hr_broker_config_t *config);
/* Frees every topic and message. All subscribers must have unsubscribed. */
void hr_broker_free(hr_broker_t *broker);

/* Topic names: 1..128 bytes of A-Z a-z 0-9 and - _ . : @ ~, not starting with '.'. */
int hr_topic_name_valid(const char *name, size_t len);
const char *hr_topic_name(const hr_topic_t *topic);

/* The worker's wake-up handle; inbox entries are drained by hr_broker_drain on that worker. */
void hr_broker_attach_worker(hr_broker_t *broker, unsigned worker, uv_async_t *wake);
/* Worker thread only: whether a publish made on this worker filled its own inbox since the last
 * call (then the caller drains it; uv_async_send would cost an eventfd write and read). */
int hr_broker_take_self_wake(hr_broker_t *broker, unsigned worker);

/* Returns 0 and the assigned id, HR_ECONFLICT (want_id too low), HR_EIDSPACE (the sequence
 * reached HR_ID_MAX), HR_ELIMIT (--topic-limit) or HR_ENOMEM. */
int hr_broker_publish(hr_broker_t *broker, const hr_publish_t *pub, uint64_t *id_out);

/* Registers `sub` (vt, owner, worker set) on `n` topics, from the worker's own thread. With
 * `since` non-NULL, `replay` receives the held messages after *since in id order and the
 * topics whose history no longer reaches back to it; live delivery starts right after, with no
 * gap and no duplicate (in cluster mode also when *since is ahead of this node: nothing at or
 * below it is delivered). Duplicate names count once. Returns 0, HR_ENOTREADY (cluster: a
 * topic is not live here yet; hr_broker_await), HR_ELIMIT (--topic-limit) or HR_ENOMEM. */
int hr_broker_subscribe(hr_broker_t *broker, hr_sub_t *sub, const char *const *topics,
                        const size_t *lens, size_t n, const uint64_t *since, hr_replay_t *replay);
/* From the subscriber's worker thread. Idempotent. */
void hr_broker_unsubscribe(hr_broker_t *broker, hr_sub_t *sub);

/* Up to `limit` held messages of one topic after `since`. Unknown topic: empty result. */
int hr_broker_history(hr_broker_t *broker, const char *topic, size_t topic_len, uint64_t since,
                      size_t limit, hr_replay_t *out);
void hr_replay_free(hr_replay_t *replay);

/* Ends every live subscription to `topic` on every worker. Returns how many were told. */
size_t hr_broker_kick(hr_broker_t *broker, const char *topic, size_t topic_len);

/* Delivers this worker's inbox; called by the worker's wake handle. */
void hr_broker_drain(hr_broker_t *broker, unsigned worker);

/* Start-up only, before any worker runs: recreate a topic from the store with its floor (ids at
 * or below it are gone), then hand it its messages in ascending id (takes the reference). The
 * broker's next id is kept above every restored one, so ids keep increasing across restarts. */
int hr_broker_restore_topic(hr_broker_t *broker, const char *name, size_t len, uint64_t floor_id);
int hr_broker_restore_msg(hr_broker_t *broker, hr_msg_t *msg);

/* Cluster mode. Set before any worker runs: ids come from the bus, publishes go through it
 * (hr_broker_inject brings them back), and subscribe, history reads and long polls answer
 * HR_ENOTREADY for a topic that is not live on this node yet. */
void hr_broker_set_bus(hr_broker_t *broker, const hr_bus_hooks_t *hooks);

/* From a worker, after HR_ENOTREADY: registers `await` and asks the bus for the topics that
 * are not live; await->done runs on await->worker (from its inbox, never from this call) once
 * they all are, or with ok = 0 when the bus fails first. Returns 0, HR_EUNAVAIL when the bus
 * is down, or HR_ENOMEM; on error nothing is kept and done never runs. */
int hr_broker_await(hr_broker_t *broker, hr_await_t *await, const char *const *topics,
                    const size_t *lens, size_t n);
/* Whether every topic may be subscribed now (always, outside cluster mode). */
int hr_broker_live(hr_broker_t *broker, const char *const *topics, const size_t *lens, size_t n);
/* From the await's worker, any time before done ran: forget it. */
void hr_broker_await_cancel(hr_broker_t *broker, hr_await_t *await);

/* From the bus thread. A message another node (or this one) published, in bus order. Ids at
 * or below the topic's newest are dropped (already held). Takes the reference. */
void hr_broker_inject(hr_broker_t *broker, const char *topic, size_t len, hr_msg_t *msg);
/* From the bus thread: the topic's newest `count` messages (ascending, references taken), read
 * at bus position `epoch` (every id up to it that this node will see has been injected), and
 * its floor. Held messages newer than the snapshot stay; older ones are replaced. The topic
 * becomes live and its awaits are told. */
void hr_broker_bus_live(hr_broker_t *broker, const char *topic, size_t len, uint64_t floor_id,
                        hr_msg_t **msgs, size_t count, uint64_t epoch);
/* From the bus thread: the id after which a live topic may have missed messages (its newest
 * held), 0 when not live. */
uint64_t hr_broker_bus_newest(hr_broker_t *broker, const char *topic, size_t len);
/* From the bus thread: the bus is down; awaits fail (their clients get 503 and retry). */
void hr_broker_bus_down(hr_broker_t *broker);
/* From any thread: runs `post` on `worker`'s thread. Returns 0, or HR_ENOMEM. */
int hr_broker_post(hr_broker_t *broker, unsigned worker, hr_post_t *post);
/* From `worker`'s thread: takes `post` back if it has not run. Returns 1 if it was queued. */
int hr_broker_unpost(hr_broker_t *broker, unsigned worker, hr_post_t *post);

/* Expires old history and frees topics nobody references. Call periodically from one thread. */
void hr_broker_sweep(hr_broker_t *broker);

void hr_broker_stats(hr_broker_t *broker, hr_broker_stats_t *stats);

/* One topic, for GET /v1/topics (the dashboard). */
typedef struct hr_topic_info_s {
    char name[HR_TOPIC_MAX_LEN + 1];
    size_t subscribers;   /* on this node */
    uint64_t published;   /* since it was created here */
    size_t history;       /* messages held */
    size_t history_bytes; /* and their bytes */
} hr_topic_info_t;
/* Topics whose name starts with `prefix`: up to `max` into `out` (the ones with the most
 * subscribers when there are more); returns how many matched. One pass under the lock. */
size_t hr_broker_topics(hr_broker_t *broker, const char *prefix, size_t prefix_len,
                        hr_topic_info_t *out, size_t max);
/* From a message's creation on this node to its hand-off to a worker's subscribers (one
 * observation per message and worker with subscribers). */
const hr_histogram_t *hr_broker_fanout(const hr_broker_t *broker);

#endif
