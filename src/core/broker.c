/* The broker: topics, ids, histories, per-worker inboxes. See broker.h for the threading
 * contract. May touch: msg, history, sub. Never a socket. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/broker_int.h"
#include "core/error.h"
#include "core/hash.h"
#include "core/id.h"

int64_t hr_broker_now_ms(void)
{
    return hr_clock_unix_ms();
}

hr_broker_t *hr_broker_new(const hr_broker_config_t *config)
{
    hr_broker_t *broker = calloc(1, sizeof *broker);
    if (!broker) return NULL;
    broker->config = *config;
    broker->nbuckets = 64;
    broker->buckets = calloc(broker->nbuckets, sizeof *broker->buckets);
    broker->inboxes = calloc(config->workers, sizeof *broker->inboxes);
    if (!broker->buckets || !broker->inboxes) {
        free(broker->buckets);
        free(broker->inboxes);
        free(broker);
        return NULL;
    }
    pthread_mutex_init(&broker->lock, NULL);
    for (unsigned w = 0; w < config->workers; w++)
        pthread_mutex_init(&broker->inboxes[w].lock, NULL);
    /* Ids start at the current time in microseconds, so a restarted in-memory broker hands out
     * ids above any it gave before and a client resuming from an old id is told of the gap
     * instead of waiting for ids it already saw. */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    broker->last_id = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
    atomic_init(&broker->deliveries, 0);
    atomic_init(&broker->encoded_bytes, 0);
    hr_history_budget_init(&broker->budget);
    return broker;
}

static void topic_free(hr_topic_t *topic)
{
    hr_history_clear(&topic->hist);
    free(topic->subs_on);
    free(topic->local);
    free(topic);
}

void hr_broker_free(hr_broker_t *broker)
{
    if (!broker) return;
    for (unsigned w = 0; w < broker->config.workers; w++) {
        inbox_t *inbox = &broker->inboxes[w];
        for (size_t i = 0; i < inbox->count; i++) {
            /* A post left behind belongs to a request whose connection is gone: its run only
             * frees it. */
            if (inbox->items[i].kind == INBOX_POST && inbox->items[i].post)
                inbox->items[i].post->run(inbox->items[i].post);
            if (inbox->items[i].msg) hr_msg_unref(inbox->items[i].msg);
            if (inbox->items[i].topic) hr_topic_release(inbox->items[i].topic);
        }
        free(inbox->items);
        pthread_mutex_destroy(&inbox->lock);
    }
    /* Histories hold topic references through their messages: clear them all first. */
    for (size_t b = 0; b < broker->nbuckets; b++)
        for (hr_topic_t *topic = broker->buckets[b]; topic; topic = topic->hash_next)
            hr_history_clear(&topic->hist);
    for (size_t b = 0; b < broker->nbuckets; b++) {
        hr_topic_t *topic = broker->buckets[b];
        while (topic) {
            hr_topic_t *next = topic->hash_next;
            topic_free(topic);
            topic = next;
        }
    }
    free(broker->buckets);
    free(broker->inboxes);
    pthread_mutex_destroy(&broker->lock);
    free(broker);
}

int hr_topic_name_valid(const char *name, size_t len)
{
    if (len == 0 || len > HR_TOPIC_MAX_LEN || name[0] == '.') return 0;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '-' || c == '_' || c == '.' || c == ':' || c == '@' || c == '~';
        if (!ok) return 0;
    }
    return 1;
}

const char *hr_topic_name(const hr_topic_t *topic)
{
    return topic->name;
}

void hr_topic_charge_encoded(hr_topic_t *topic, long long bytes)
{
    atomic_fetch_add_explicit(&topic->broker->encoded_bytes, bytes, memory_order_relaxed);
}

void hr_topic_release(hr_topic_t *topic)
{
    /* Freed by the sweep once unreferenced, so releasing never needs the broker lock (it is
     * reached from inside locked sections, through history eviction). */
    atomic_fetch_sub_explicit(&topic->refs, 1, memory_order_release);
}

void hr_broker_attach_worker(hr_broker_t *broker, unsigned worker, uv_async_t *wake)
{
    pthread_mutex_lock(&broker->inboxes[worker].lock);
    broker->inboxes[worker].wake = wake;
    pthread_mutex_unlock(&broker->inboxes[worker].lock);
}

static uint64_t hash_name(const char *name, size_t len)
{
    return hr_hash_bytes(name, len);
}

/* Lock held. */
static hr_topic_t *topic_find(hr_broker_t *broker, const char *name, size_t len, uint64_t hash)
{
    hr_topic_t *topic = broker->buckets[hash & (broker->nbuckets - 1)];
    for (; topic; topic = topic->hash_next)
        if (topic->hash == hash && topic->name_len == len && memcmp(topic->name, name, len) == 0)
            return topic;
    return NULL;
}

hr_topic_t *hr_broker_topic_find(hr_broker_t *broker, const char *name, size_t len)
{
    return topic_find(broker, name, len, hash_name(name, len));
}

/* Lock held. Doubling keeps chains short; a failed resize just leaves them longer. */
static void maybe_grow_table(hr_broker_t *broker)
{
    if (broker->ntopics < broker->nbuckets) return;
    size_t nbuckets = broker->nbuckets * 2;
    hr_topic_t **buckets = calloc(nbuckets, sizeof *buckets);
    if (!buckets) return;
    for (size_t b = 0; b < broker->nbuckets; b++) {
        hr_topic_t *topic = broker->buckets[b];
        while (topic) {
            hr_topic_t *next = topic->hash_next;
            hr_topic_t **slot = &buckets[topic->hash & (nbuckets - 1)];
            topic->hash_next = *slot;
            *slot = topic;
            topic = next;
        }
    }
    free(broker->buckets);
    broker->buckets = buckets;
    broker->nbuckets = nbuckets;
}

/* Lock held. Finds or creates the topic. */
hr_topic_t *hr_broker_topic_get(hr_broker_t *broker, const char *name, size_t len)
{
    uint64_t hash = hash_name(name, len);
    hr_topic_t *topic = topic_find(broker, name, len, hash);
    if (topic) return topic;
    broker->topic_error = HR_ELIMIT;
    if (broker->config.max_topics && broker->ntopics >= broker->config.max_topics) return NULL;
    broker->topic_error = HR_ENOMEM;
    unsigned workers = broker->config.workers;
    topic = calloc(1, sizeof *topic + len + 1);
    if (!topic) return NULL;
    topic->subs_on = calloc(workers, sizeof *topic->subs_on);
    topic->local = calloc(workers, sizeof *topic->local);
    if (!topic->subs_on || !topic->local) {
        topic_free(topic);
        return NULL;
    }
    topic->broker = broker;
    topic->hash = hash;
    atomic_init(&topic->refs, 0);
    topic->created_floor = broker->last_id;
    hr_history_init(&topic->hist, broker->config.history_size);
    /* The topic block, its per-worker arrays and a first ring: what holding anything costs. */
    size_t fixed = sizeof *topic + len + 1 +
                   workers * (sizeof *topic->subs_on + sizeof *topic->local) +
                   8 * sizeof(hr_msg_t *);
    hr_history_charge_to(&topic->hist, &broker->budget, broker->config.history_topic_max_bytes,
                         fixed);
    for (unsigned w = 0; w < workers; w++)
        hr_list_init(&topic->local[w]);
    hr_list_init(&topic->awaits);
    topic->name_len = len;
    memcpy(topic->name, name, len);
    maybe_grow_table(broker);
    hr_topic_t **slot = &broker->buckets[hash & (broker->nbuckets - 1)];
    topic->hash_next = *slot;
    *slot = topic;
    broker->ntopics++;
    return topic;
}

void hr_broker_topic_ref(hr_topic_t *topic)
{
    atomic_fetch_add_explicit(&topic->refs, 1, memory_order_relaxed);
}

/* Lock held. Ids before this may have existed in the topic but are no longer held. */
static uint64_t topic_floor(const hr_topic_t *topic)
{
    return topic->hist.floor_id > topic->created_floor ? topic->hist.floor_id
                                                       : topic->created_floor;
}

void hr_broker_trim_history(hr_broker_t *broker)
{
    hr_history_budget_t *budget = &broker->budget;
    size_t max = broker->config.history_max_bytes;
    if (!max) return;
    for (;;) {
        long long encoded = atomic_load_explicit(&broker->encoded_bytes, memory_order_relaxed);
        size_t held = budget->bytes + (encoded > 0 ? (size_t)encoded : 0);
        if (held <= max || budget->order.next == budget->order.prev) return;
        /* The head of the order is the oldest message of its own ring too. */
        hr_msg_t *oldest = hr_container_of(budget->order.next, hr_msg_t, hist_link);
        hr_history_drop_oldest(&oldest->topic->hist);
        budget->evictions++;
    }
}

static void expire(hr_broker_t *broker, hr_topic_t *topic, int64_t now)
{
    if (broker->config.history_ttl_ms > 0)
        hr_history_expire(&topic->hist, now - broker->config.history_ttl_ms);
}

int hr_broker_inbox_push(hr_broker_t *broker, unsigned worker, inbox_item_t item)
{
    inbox_t *inbox = &broker->inboxes[worker];
    pthread_mutex_lock(&inbox->lock);
    if (inbox->count == inbox->capacity) {
        size_t capacity = inbox->capacity ? inbox->capacity * 2 : 64;
        inbox_item_t *items = realloc(inbox->items, capacity * sizeof *items);
        if (!items) {
            pthread_mutex_unlock(&inbox->lock);
            return -1;
        }
        inbox->items = items;
        inbox->capacity = capacity;
    }
    inbox->items[inbox->count++] = item;
    int was_empty = inbox->count == 1;
    pthread_mutex_unlock(&inbox->lock);
    return was_empty;
}

/* Lock held. Queues `item` (taking a fresh msg/topic reference) for every worker with
 * subscribers on `topic`; marks in `wake` the workers to wake. */
void hr_broker_fan_out(hr_broker_t *broker, hr_topic_t *topic, inbox_item_t item,
                       unsigned char *wake)
{
    for (unsigned w = 0; w < broker->config.workers; w++) {
        if (!topic->subs_on[w]) continue;
        if (item.msg) hr_msg_ref(item.msg);
        if (item.topic) hr_broker_topic_ref(item.topic);
        int pushed = hr_broker_inbox_push(broker, w, item);
        if (pushed < 0) {
            /* Out of memory: the worker's subscribers miss this message live but can resume
             * from history, which already holds it. */
            if (item.msg) hr_msg_unref(item.msg);
            if (item.topic) hr_topic_release(item.topic);
            continue;
        }
        wake[w] = (unsigned char)pushed;
    }
}

/* Sends under the inbox lock so a worker detaching (and closing its handle) cannot race us.
 * The publishing worker's own inbox (origin, its id + 1) is only marked: that worker drains it
 * in its check phase, this loop iteration. */
void hr_broker_wake(hr_broker_t *broker, const unsigned char *wake, unsigned origin)
{
    for (unsigned w = 0; w < broker->config.workers; w++) {
        if (!wake[w]) continue;
        if (origin == w + 1) {
            broker->inboxes[w].self_wake = 1;
            continue;
        }
        pthread_mutex_lock(&broker->inboxes[w].lock);
        if (broker->inboxes[w].wake) uv_async_send(broker->inboxes[w].wake);
        pthread_mutex_unlock(&broker->inboxes[w].lock);
    }
}

int hr_broker_publish(hr_broker_t *broker, const hr_publish_t *pub, uint64_t *id_out)
{
    hr_msg_t *msg = hr_msg_new(pub->event, pub->event ? pub->event_len : 0, pub->data,
                               pub->data_len, pub->retry_ms, pub->binary);
    if (msg) msg->delayed_id = pub->delayed_id;
    if (!msg) return HR_ENOMEM;
    unsigned char wake[broker->config.workers];
    memset(wake, 0, sizeof wake);
    int64_t now = hr_broker_now_ms();

    pthread_mutex_lock(&broker->lock);
    int refused = pub->want_id && pub->want_id <= broker->last_id ? HR_ECONFLICT
                  : !pub->want_id && broker->last_id >= HR_ID_MAX ? HR_EIDSPACE
                                                                  : 0;
    if (refused) {
        pthread_mutex_unlock(&broker->lock);
        hr_msg_unref(msg);
        return refused;
    }
    hr_topic_t *topic = hr_broker_topic_get(broker, pub->topic, pub->topic_len);
    if (!topic) {
        int rc = broker->topic_error;
        pthread_mutex_unlock(&broker->lock);
        hr_msg_unref(msg);
        return rc;
    }
    broker->last_id = pub->want_id ? pub->want_id : broker->last_id + 1;
    msg->id = broker->last_id;
    msg->time_ms = now;
    msg->topic = topic;
    msg->topic_name = topic->name;
    hr_broker_topic_ref(topic);
    expire(broker, topic, now);
    if (hr_history_push(&topic->hist, hr_msg_ref(msg)) != 0) hr_msg_unref(msg);
    hr_broker_trim_history(broker);
    /* Under the lock, so the store's queue is in id order like every inbox. */
    if (broker->config.store) broker->config.store->ops->append(broker->config.store, msg);
    hr_broker_fan_out(broker, topic, (inbox_item_t){INBOX_MSG, msg, NULL, NULL}, wake);
    broker->messages_in++;
    topic->published++;
    pthread_mutex_unlock(&broker->lock);

    hr_broker_wake(broker, wake, pub->origin <= broker->config.workers ? pub->origin : 0);
    *id_out = msg->id;
    hr_msg_unref(msg);
    return 0;
}

int hr_broker_restore_topic(hr_broker_t *broker, const char *name, size_t len, uint64_t floor_id)
{
    pthread_mutex_lock(&broker->lock);
    hr_topic_t *topic = hr_broker_topic_get(broker, name, len);
    if (topic) {
        topic->created_floor = floor_id;
        if (floor_id > broker->last_id) broker->last_id = floor_id;
    }
    broker->restoring = topic;
    pthread_mutex_unlock(&broker->lock);
    return topic ? 0 : HR_ENOMEM;
}

int hr_broker_restore_msg(hr_broker_t *broker, hr_msg_t *msg)
{
    pthread_mutex_lock(&broker->lock);
    hr_topic_t *topic = broker->restoring;
    msg->topic = topic;
    msg->topic_name = topic->name;
    hr_broker_topic_ref(topic);
    if (msg->id > broker->last_id) broker->last_id = msg->id;
    int rc = hr_history_push(&topic->hist, msg);
    hr_broker_trim_history(broker);
    pthread_mutex_unlock(&broker->lock);
    if (rc != 0) hr_msg_unref(msg);
    return rc == 0 ? 0 : HR_ENOMEM;
}

typedef struct collect_s {
    hr_replay_t *replay;
    size_t capacity;
    int failed;
} collect_t;

static void collect_msg(hr_msg_t *msg, void *arg)
{
    collect_t *col = arg;
    hr_replay_t *replay = col->replay;
    if (replay->count == col->capacity) {
        size_t capacity = col->capacity ? col->capacity * 2 : 16;
        hr_msg_t **msgs = realloc(replay->msgs, capacity * sizeof *msgs);
        if (!msgs) {
            col->failed = 1;
            return;
        }
        replay->msgs = msgs;
        col->capacity = capacity;
    }
    replay->msgs[replay->count++] = hr_msg_ref(msg);
}

void hr_replay_free(hr_replay_t *replay)
{
    for (size_t i = 0; i < replay->count; i++)
        hr_msg_unref(replay->msgs[i]);
    free(replay->msgs);
    free(replay->gaps);
    memset(replay, 0, sizeof *replay);
}

/* Lock held. A client at `since` has missed something we no longer hold when the topic's
 * floor is above it, or, on a single node, when `since` is newer than anything we handed out
 * (another epoch). In cluster mode ids come from one counter that never goes back, so a
 * `since` above this node's newest means the client comes from a node that is ahead: nothing
 * is missing, and nothing at or below `since` must be delivered again (resume_mark). */
static int has_gap(const hr_broker_t *broker, const hr_topic_t *topic, uint64_t since)
{
    return since < topic_floor(topic) || (!broker->bus.want && since > broker->last_id);
}

/* Lock held. Where a subscriber resuming at `since` (NULL: not resuming) starts hearing live
 * messages: after the broker's newest, or, in cluster mode, after `since` when that is ahead
 * (messages still on their way to this node may be ones the client already has). */
static uint64_t resume_mark(const hr_broker_t *broker, const uint64_t *since)
{
    if (since && broker->bus.want && *since > broker->last_id) return *since;
    return broker->last_id;
}

/* Lock held. Cluster mode: a subscriber may join only a topic whose history is loaded and
 * kept current by the bus (hr_broker_await makes it so). */
static int all_live(hr_broker_t *broker, const char *const *topics, const size_t *lens, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        hr_topic_t *topic = hr_broker_topic_find(broker, topics[i], lens[i]);
        if (!topic || !topic->bus_live) return 0;
    }
    return 1;
}

int hr_broker_live(hr_broker_t *broker, const char *const *topics, const size_t *lens, size_t n)
{
    if (!broker->bus.want) return 1;
    pthread_mutex_lock(&broker->lock);
    int live = all_live(broker, topics, lens, n);
    pthread_mutex_unlock(&broker->lock);
    return live;
}

static int topic_listed(const hr_sub_t *sub, size_t linked, const hr_topic_t *topic)
{
    for (size_t i = 0; i < linked; i++)
        if (sub->nodes[i].topic == topic) return 1;
    return 0;
}

int hr_broker_subscribe(hr_broker_t *broker, hr_sub_t *sub, const char *const *topics,
                        const size_t *lens, size_t n, const uint64_t *since, hr_replay_t *replay)
{
    memset(replay, 0, sizeof *replay);
    sub->nodes = calloc(n ? n : 1, sizeof *sub->nodes);
    replay->gaps = since ? calloc(n ? n : 1, sizeof *replay->gaps) : NULL;
    if (!sub->nodes || (since && !replay->gaps)) {
        free(sub->nodes);
        sub->nodes = NULL;
        free(replay->gaps);
        replay->gaps = NULL;
        return HR_ENOMEM;
    }
    collect_t col = {replay, 0, 0};
    int64_t now = hr_broker_now_ms();
    unsigned w = sub->worker;

    pthread_mutex_lock(&broker->lock);
    if (broker->bus.want && !all_live(broker, topics, lens, n)) {
        pthread_mutex_unlock(&broker->lock);
        free(sub->nodes);
        sub->nodes = NULL;
        free(replay->gaps);
        replay->gaps = NULL;
        return HR_ENOTREADY;
    }
    sub->nnodes = 0;
    for (size_t i = 0; i < n; i++) {
        hr_topic_t *topic = hr_broker_topic_get(broker, topics[i], lens[i]);
        if (!topic) {
            col.failed = broker->topic_error;
            break;
        }
        if (topic_listed(sub, sub->nnodes, topic)) continue;
        hr_subnode_t *node = &sub->nodes[sub->nnodes++];
        node->sub = sub;
        node->topic = topic;
        hr_broker_topic_ref(topic);
        hr_list_push(&topic->local[w], &node->link);
        topic->subs_on[w]++;
        broker->nsubscriptions++;
        if (!since) continue;
        expire(broker, topic, now);
        if (has_gap(broker, topic, *since))
            replay->gaps[replay->ngaps++] = (hr_gap_t){topic->name, topic_floor(topic)};
        hr_history_each_since(&topic->hist, *since, SIZE_MAX, collect_msg, &col);
    }
    /* Everything up to here was replayed from history or reported as a gap; an inbox entry
     * with an older id is a publish from before this subscription. */
    sub->last_id = resume_mark(broker, since);
    replay->last_id = sub->last_id;
    pthread_mutex_unlock(&broker->lock);

    if (col.failed) {
        hr_broker_unsubscribe(broker, sub);
        hr_replay_free(replay);
        return col.failed < 0 ? col.failed : HR_ENOMEM;
    }
    if (replay->count > 1) qsort(replay->msgs, replay->count, sizeof *replay->msgs, hr_msg_cmp_id);
    return 0;
}

void hr_broker_unsubscribe(hr_broker_t *broker, hr_sub_t *sub)
{
    if (!sub->nodes) return;
    pthread_mutex_lock(&broker->lock);
    for (size_t i = 0; i < sub->nnodes; i++) {
        hr_subnode_t *node = &sub->nodes[i];
        hr_list_remove(&node->link);
        node->topic->subs_on[sub->worker]--;
        broker->nsubscriptions--;
        hr_topic_release(node->topic);
    }
    pthread_mutex_unlock(&broker->lock);
    free(sub->nodes);
    sub->nodes = NULL;
    sub->nnodes = 0;
}

int hr_broker_history(hr_broker_t *broker, const char *name, size_t len, uint64_t since,
                      size_t limit, hr_replay_t *out)
{
    memset(out, 0, sizeof *out);
    collect_t col = {out, 0, 0};
    pthread_mutex_lock(&broker->lock);
    out->last_id = broker->last_id;
    hr_topic_t *topic = topic_find(broker, name, len, hash_name(name, len));
    if (broker->bus.want && (!topic || !topic->bus_live)) {
        pthread_mutex_unlock(&broker->lock);
        return HR_ENOTREADY;
    }
    if (topic) {
        expire(broker, topic, hr_broker_now_ms());
        if (has_gap(broker, topic, since)) {
            out->gaps = malloc(sizeof *out->gaps);
            if (out->gaps) {
                /* The name outlives the lock only through the returned messages; copy-free
                 * callers use it before releasing them. */
                out->gaps[0] = (hr_gap_t){topic->name, topic_floor(topic)};
                out->ngaps = 1;
            }
        }
        out->more = hr_history_count_since(&topic->hist, since) > limit;
        hr_history_each_since(&topic->hist, since, limit, collect_msg, &col);
    }
    pthread_mutex_unlock(&broker->lock);
    if (col.failed) {
        hr_replay_free(out);
        return HR_ENOMEM;
    }
    return 0;
}

size_t hr_broker_kick(hr_broker_t *broker, const char *name, size_t len)
{
    unsigned char wake[broker->config.workers];
    memset(wake, 0, sizeof wake);
    size_t told = 0;
    pthread_mutex_lock(&broker->lock);
    hr_topic_t *topic = topic_find(broker, name, len, hash_name(name, len));
    if (topic) {
        for (unsigned w = 0; w < broker->config.workers; w++)
            told += topic->subs_on[w];
        hr_broker_fan_out(broker, topic, (inbox_item_t){INBOX_KICK, NULL, topic, NULL}, wake);
    }
    pthread_mutex_unlock(&broker->lock);
    hr_broker_wake(broker, wake, 0);
    return told;
}

static void deliver_local(hr_broker_t *broker, unsigned w, hr_msg_t *msg)
{
    hr_list_t *head = &msg->topic->local[w];
    uint64_t delivered = 0;
    /* `next` is read before the call: a transport may unlink only its own node. */
    for (hr_list_t *it = head->next, *next; it != head; it = next) {
        next = it->next;
        hr_sub_t *sub = hr_container_of(it, hr_subnode_t, link)->sub;
        if (msg->id <= sub->last_id) continue;
        sub->last_id = msg->id;
        if (sub->vt->deliver(sub, msg) == 0) delivered++;
    }
    atomic_fetch_add_explicit(&broker->deliveries, delivered, memory_order_relaxed);
    if (delivered) hr_histogram_observe(&broker->fanout, hr_clock_mono_ns() - msg->born_ns);
}

const hr_histogram_t *hr_broker_fanout(const hr_broker_t *broker)
{
    return &broker->fanout;
}

static void kick_local(hr_topic_t *topic, unsigned w)
{
    hr_list_t *head = &topic->local[w];
    for (hr_list_t *it = head->next, *next; it != head; it = next) {
        next = it->next;
        hr_sub_t *sub = hr_container_of(it, hr_subnode_t, link)->sub;
        sub->vt->kick(sub);
    }
}

int hr_broker_take_self_wake(hr_broker_t *broker, unsigned worker)
{
    int woken = broker->inboxes[worker].self_wake;
    broker->inboxes[worker].self_wake = 0;
    return woken;
}

void hr_broker_drain(hr_broker_t *broker, unsigned w)
{
    inbox_t *inbox = &broker->inboxes[w];
    pthread_mutex_lock(&inbox->lock);
    inbox_item_t *items = inbox->items;
    size_t count = inbox->count;
    inbox->items = NULL;
    inbox->count = 0;
    inbox->capacity = 0;
    pthread_mutex_unlock(&inbox->lock);

    inbox->draining = items;
    inbox->ndraining = count;
    for (size_t i = 0; i < count; i++) {
        if (items[i].kind == INBOX_POST && !items[i].post) continue; /* taken back */
        if (items[i].kind == INBOX_MSG) {
            deliver_local(broker, w, items[i].msg);
            hr_msg_unref(items[i].msg);
        } else if (items[i].kind == INBOX_POST) {
            items[i].post->run(items[i].post);
        } else {
            kick_local(items[i].topic, w);
            hr_topic_release(items[i].topic);
        }
    }
    inbox->draining = NULL;
    inbox->ndraining = 0;
    free(items);
}

int hr_broker_post(hr_broker_t *broker, unsigned worker, hr_post_t *post)
{
    int pushed = hr_broker_inbox_push(broker, worker, (inbox_item_t){INBOX_POST, NULL, NULL, post});
    if (pushed < 0) return HR_ENOMEM;
    if (pushed) {
        unsigned char wake[broker->config.workers];
        memset(wake, 0, sizeof wake);
        wake[worker] = 1;
        hr_broker_wake(broker, wake, 0);
    }
    return 0;
}

static int take_post(inbox_item_t *items, size_t count, hr_post_t *post)
{
    for (size_t i = 0; i < count; i++) {
        if (items[i].kind == INBOX_POST && items[i].post == post) {
            items[i].post = NULL;
            return 1;
        }
    }
    return 0;
}

int hr_broker_unpost(hr_broker_t *broker, unsigned worker, hr_post_t *post)
{
    inbox_t *inbox = &broker->inboxes[worker];
    if (take_post(inbox->draining, inbox->ndraining, post)) return 1;
    pthread_mutex_lock(&inbox->lock);
    int taken = take_post(inbox->items, inbox->count, post);
    pthread_mutex_unlock(&inbox->lock);
    return taken;
}

void hr_broker_sweep(hr_broker_t *broker)
{
    int64_t now = hr_broker_now_ms();
    pthread_mutex_lock(&broker->lock);
    for (size_t b = 0; b < broker->nbuckets; b++) {
        hr_topic_t **slot = &broker->buckets[b];
        while (*slot) {
            hr_topic_t *topic = *slot;
            expire(broker, topic, now);
            if (broker->bus.want) hr_broker_bus_sweep_topic(broker, topic, now);
            /* Refs are raised only under this lock, so zero stays zero while we hold it. */
            if (atomic_load_explicit(&topic->refs, memory_order_acquire) == 0) {
                *slot = topic->hash_next;
                broker->ntopics--;
                topic_free(topic);
            } else {
                slot = &topic->hash_next;
            }
        }
    }
    pthread_mutex_unlock(&broker->lock);
}

size_t hr_broker_topics(hr_broker_t *broker, const char *prefix, size_t prefix_len,
                        hr_topic_info_t *out, size_t max)
{
    size_t n = 0;
    pthread_mutex_lock(&broker->lock);
    for (size_t b = 0; b < broker->nbuckets; b++) {
        for (hr_topic_t *topic = broker->buckets[b]; topic; topic = topic->hash_next) {
            if (topic->name_len < prefix_len || memcmp(topic->name, prefix, prefix_len) != 0)
                continue;
            hr_topic_info_t info = {.published = topic->published,
                                    .history = topic->hist.count,
                                    .history_bytes = topic->hist.bytes};
            for (unsigned w = 0; w < broker->config.workers; w++)
                info.subscribers += topic->subs_on[w];
            snprintf(info.name, sizeof info.name, "%s", topic->name);
            if (n < max) {
                out[n] = info;
            } else { /* full: keep the busiest (the most subscribers) */
                size_t least = 0;
                for (size_t i = 1; i < max; i++)
                    if (out[i].subscribers < out[least].subscribers) least = i;
                if (max && info.subscribers > out[least].subscribers) out[least] = info;
            }
            n++;
        }
    }
    pthread_mutex_unlock(&broker->lock);
    return n;
}

void hr_broker_stats(hr_broker_t *broker, hr_broker_stats_t *stats)
{
    pthread_mutex_lock(&broker->lock);
    stats->topics = broker->ntopics;
    stats->subscriptions = broker->nsubscriptions;
    stats->messages_in = broker->messages_in;
    stats->last_id = broker->last_id;
    stats->ids_exhausted = broker->last_id >= HR_ID_MAX;
    long long encoded = atomic_load_explicit(&broker->encoded_bytes, memory_order_relaxed);
    stats->history_bytes = broker->budget.bytes + (encoded > 0 ? (size_t)encoded : 0);
    stats->history_messages = broker->budget.messages;
    stats->history_evictions = broker->budget.evictions;
    pthread_mutex_unlock(&broker->lock);
    stats->deliveries = atomic_load_explicit(&broker->deliveries, memory_order_relaxed);
}
