/* The broker in cluster mode: topics whose messages and ids come from a bus (Redis) shared by
 * several nodes. A topic is *live* on a node while the node is subscribed to it on the bus and
 * holds its recent history; only then may local clients subscribe, so the usual subscribe
 * (replay from history, then the inbox, no gap, no duplicate) stays correct. Making a topic live
 * is asynchronous: hr_broker_await asks the bus and tells the worker when it is done.
 *
 * Everything here runs under the broker lock; the bus hooks only queue. */
#include <stdlib.h>
#include <string.h>

#include "core/broker_int.h"
#include "core/error.h"

/* How long a live topic nobody uses stays subscribed: a client reconnecting (every EventSource
 * does, every few seconds on a flaky network) finds it live instead of waiting for Redis. */
#define BUS_LINGER_MS 3000

void hr_broker_set_bus(hr_broker_t *broker, const hr_bus_hooks_t *hooks)
{
    broker->bus = *hooks;
}

static void await_run(hr_post_t *post)
{
    hr_await_t *await = hr_container_of(post, hr_await_t, post);
    free(await->nodes);
    await->nodes = NULL;
    await->posted = 0;
    await->done(await, !await->failed);
}

/* Lock held. */
static void await_unlink(hr_await_t *await)
{
    for (size_t i = 0; i < await->nnodes; i++) {
        hr_await_node_t *node = &await->nodes[i];
        if (!node->topic) continue;
        hr_list_remove(&node->link);
        hr_topic_release(node->topic);
        node->topic = NULL;
    }
    await->waiting = 0;
}

/* Lock held. */
static void await_post(hr_broker_t *broker, hr_await_t *await)
{
    await->posted = 1;
    if (hr_broker_post(broker, await->worker, &await->post) != 0) {
        /* Out of memory: the waiting client hears nothing until it times out or leaves. */
        await->posted = 0;
    }
}

/* Lock held. Asks the bus for the topic once; the wish holds a reference until let go. */
static void want(hr_broker_t *broker, hr_topic_t *topic)
{
    topic->bus_idle_ms = 0;
    if (topic->bus_wanted) return;
    topic->bus_wanted = 1;
    hr_broker_topic_ref(topic);
    broker->bus.want(broker->bus.arg, topic->name, topic->name_len);
}

static int listed(const hr_await_t *await, const hr_topic_t *topic)
{
    for (size_t i = 0; i < await->nnodes; i++)
        if (await->nodes[i].topic == topic) return 1;
    return 0;
}

int hr_broker_await(hr_broker_t *broker, hr_await_t *await, const char *const *topics,
                    const size_t *lens, size_t n)
{
    await->post.run = await_run;
    await->nodes = calloc(n ? n : 1, sizeof *await->nodes);
    await->nnodes = 0;
    await->waiting = 0;
    await->failed = 0;
    await->posted = 0;
    if (!await->nodes) return HR_ENOMEM;
    int rc = 0;
    pthread_mutex_lock(&broker->lock);
    for (size_t i = 0; i < n && rc == 0; i++) {
        hr_topic_t *topic = hr_broker_topic_get(broker, topics[i], lens[i]);
        if (!topic) {
            rc = broker->topic_error;
        } else if (!topic->bus_live && !listed(await, topic)) {
            if (!broker->bus.up(broker->bus.arg)) {
                rc = HR_EUNAVAIL;
                break;
            }
            hr_await_node_t *node = &await->nodes[await->nnodes++];
            node->await = await;
            node->topic = topic;
            hr_broker_topic_ref(topic);
            hr_list_push(&topic->awaits, &node->link);
            await->waiting++;
            want(broker, topic);
        } else {
            topic->bus_idle_ms = 0;
        }
    }
    if (rc != 0) await_unlink(await);
    /* Live already (another request made it so since the caller was told to wait): done runs
     * anyway, from the inbox, so callers have one path. */
    if (rc == 0 && await->waiting == 0) await_post(broker, await);
    pthread_mutex_unlock(&broker->lock);
    if (rc != 0) {
        free(await->nodes);
        await->nodes = NULL;
    }
    return rc;
}

void hr_broker_await_cancel(hr_broker_t *broker, hr_await_t *await)
{
    pthread_mutex_lock(&broker->lock);
    if (await->nodes) await_unlink(await);
    pthread_mutex_unlock(&broker->lock);
    if (await->posted) hr_broker_unpost(broker, await->worker, &await->post);
    await->posted = 0;
    free(await->nodes);
    await->nodes = NULL;
}

/* Lock held. The topic went live: every await on it that waited for nothing else runs. */
static void wake_awaits(hr_broker_t *broker, hr_topic_t *topic)
{
    while (!hr_list_empty(&topic->awaits)) {
        hr_await_node_t *node = hr_container_of(topic->awaits.next, hr_await_node_t, link);
        hr_await_t *await = node->await;
        hr_list_remove(&node->link);
        node->topic = NULL;
        hr_topic_release(topic);
        if (--await->waiting == 0) await_post(broker, await);
    }
}

void hr_broker_inject(hr_broker_t *broker, const char *name, size_t len, hr_msg_t *msg)
{
    unsigned char wake[broker->config.workers];
    memset(wake, 0, sizeof wake);
    pthread_mutex_lock(&broker->lock);
    hr_topic_t *topic = hr_broker_topic_find(broker, name, len);
    /* Not wanted: an UNSUBSCRIBE crossed this message. Not newer: held already (a gap fill
     * and the live feed overlap by design). */
    int keep = topic && topic->bus_wanted;
    if (keep && topic->hist.count > 0) {
        const hr_msg_t *newest = hr_history_at(&topic->hist, topic->hist.count - 1);
        keep = msg->id > newest->id;
    }
    if (!keep) {
        pthread_mutex_unlock(&broker->lock);
        hr_msg_unref(msg);
        return;
    }
    msg->topic = topic;
    msg->topic_name = topic->name;
    hr_broker_topic_ref(topic);
    if (msg->id > broker->last_id) broker->last_id = msg->id;
    if (hr_history_push(&topic->hist, hr_msg_ref(msg)) != 0) hr_msg_unref(msg);
    hr_broker_trim_history(broker);
    if (topic->bus_live)
        hr_broker_fan_out(broker, topic, (inbox_item_t){INBOX_MSG, msg, NULL, NULL}, wake);
    broker->messages_in++;
    topic->published++;
    pthread_mutex_unlock(&broker->lock);
    hr_broker_wake(broker, wake, 0);
    hr_msg_unref(msg);
}

/* Lock held. History becomes `msgs` followed by what it held newer than them. The kept ones
 * leave the old ring before they join the new one: a message is in the budget's order once. */
static void replace_history(hr_topic_t *topic, hr_msg_t **msgs, size_t count)
{
    uint64_t newest = count ? msgs[count - 1]->id : 0;
    hr_history_t old = topic->hist;
    size_t nkept = 0;
    hr_msg_t **kept = old.count ? malloc(old.count * sizeof *kept) : NULL;
    /* Out of memory for `kept`: the newer messages go, and resumers are told of the gap. */
    uint64_t lost = old.count && !kept ? hr_history_at(&old, old.count - 1)->id : 0;
    for (size_t i = 0; kept && i < old.count; i++) {
        hr_msg_t *msg = hr_history_at(&old, i);
        if (msg->id > newest) kept[nkept++] = hr_msg_ref(msg);
    }
    hr_history_clear(&old);
    hr_history_init(&topic->hist, old.max_count);
    hr_history_charge_to(&topic->hist, old.budget, old.max_bytes, old.fixed_bytes);
    for (size_t i = 0; i < count; i++) {
        hr_msg_t *msg = msgs[i];
        msg->topic = topic;
        msg->topic_name = topic->name;
        hr_broker_topic_ref(topic);
        if (hr_history_push(&topic->hist, msg) != 0) hr_msg_unref(msg);
    }
    for (size_t i = 0; i < nkept; i++)
        if (hr_history_push(&topic->hist, kept[i]) != 0) hr_msg_unref(kept[i]);
    free(kept);
    /* The floor is what this rebuild dropped (count or byte cap) or lost. */
    if (lost > topic->hist.floor_id) topic->hist.floor_id = lost;
}

void hr_broker_bus_live(hr_broker_t *broker, const char *name, size_t len, uint64_t floor_id,
                        hr_msg_t **msgs, size_t count, uint64_t epoch)
{
    pthread_mutex_lock(&broker->lock);
    hr_topic_t *topic = hr_broker_topic_find(broker, name, len);
    if (!topic || !topic->bus_wanted) {
        pthread_mutex_unlock(&broker->lock);
        for (size_t i = 0; i < count; i++)
            hr_msg_unref(msgs[i]);
        return;
    }
    replace_history(topic, msgs, count);
    topic->created_floor = floor_id;
    hr_broker_trim_history(broker);
    /* Everything at or below `epoch` that this node subscribes to has reached it, so a client
     * holding any id up to there is not from another epoch. */
    if (epoch > broker->last_id) broker->last_id = epoch;
    if (count && msgs[count - 1]->id > broker->last_id) broker->last_id = msgs[count - 1]->id;
    topic->bus_live = 1;
    wake_awaits(broker, topic);
    pthread_mutex_unlock(&broker->lock);
}

uint64_t hr_broker_bus_newest(hr_broker_t *broker, const char *name, size_t len)
{
    uint64_t newest = 0;
    pthread_mutex_lock(&broker->lock);
    hr_topic_t *topic = hr_broker_topic_find(broker, name, len);
    if (topic && topic->bus_live) {
        /* A live topic has received every message of its up to the newest id this node has
         * seen on any topic: with nothing held, resume from there. */
        newest = topic->hist.count ? hr_history_at(&topic->hist, topic->hist.count - 1)->id
                                   : broker->last_id;
        if (!newest) newest = 1;
    }
    pthread_mutex_unlock(&broker->lock);
    return newest;
}

void hr_broker_bus_down(hr_broker_t *broker)
{
    pthread_mutex_lock(&broker->lock);
    for (size_t b = 0; b < broker->nbuckets; b++) {
        for (hr_topic_t *topic = broker->buckets[b]; topic; topic = topic->hash_next) {
            while (!hr_list_empty(&topic->awaits)) {
                hr_await_node_t *node = hr_container_of(topic->awaits.next, hr_await_node_t, link);
                hr_await_t *await = node->await;
                await->failed = 1;
                await_unlink(await);
                await_post(broker, await);
            }
        }
    }
    pthread_mutex_unlock(&broker->lock);
}

int hr_broker_bus_sweep_topic(hr_broker_t *broker, hr_topic_t *topic, int64_t now)
{
    if (!topic->bus_wanted) return 0;
    unsigned subs = 0;
    for (unsigned w = 0; w < broker->config.workers; w++)
        subs += topic->subs_on[w];
    if (subs || !hr_list_empty(&topic->awaits)) {
        topic->bus_idle_ms = 0;
        return 0;
    }
    if (!topic->bus_idle_ms) {
        topic->bus_idle_ms = now;
        return 0;
    }
    if (now - topic->bus_idle_ms < BUS_LINGER_MS) return 0;
    /* Let go: the history stops being kept current, so it goes too. */
    topic->bus_wanted = 0;
    topic->bus_live = 0;
    topic->bus_idle_ms = 0;
    hr_history_clear(&topic->hist);
    broker->bus.unwant(broker->bus.arg, topic->name, topic->name_len);
    hr_topic_release(topic);
    return 1;
}
