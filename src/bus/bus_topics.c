/* The bus's topics: SUBSCRIBE/UNSUBSCRIBE on the subscription connection, history loads and
 * gap fills as one MULTI on the command connection, and the barrier that joins the two.
 *
 * Loading a topic: SUBSCRIBE; once confirmed, MULTI { GET counter; HMGET newest ids; XREVRANGE
 * per topic; PUBLISH <barrier> <seq> } EXEC. Every live message published before the EXEC
 * reaches the subscription connection before the barrier does, so when both the EXEC reply and
 * the barrier are in, the loaded history and the live feed overlap (the broker drops the
 * overlap by id) and nothing falls between them. Bus thread only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus/bus_int.h"
#include "core/hash.h"
#include "core/id.h"
#include "core/log.h"

#define CHANNELS_PER_COMMAND 512
#define TOPICS_PER_BATCH     1024

static uint64_t hash_name(const char *name, size_t len)
{
    return hr_hash_bytes(name, len);
}

bus_topic_t *hr_bus_topic_find(hr_bus_t *bus, const char *name, size_t len)
{
    if (!bus->nbuckets) return NULL;
    bus_topic_t *topic = bus->buckets[hash_name(name, len) & (bus->nbuckets - 1)];
    for (; topic; topic = topic->hash_next)
        if (topic->len == len && memcmp(topic->name, name, len) == 0) return topic;
    return NULL;
}

static void grow(hr_bus_t *bus)
{
    size_t nbuckets = bus->nbuckets ? bus->nbuckets * 2 : 64;
    bus_topic_t **buckets = calloc(nbuckets, sizeof *buckets);
    if (!buckets) return;
    for (size_t b = 0; b < bus->nbuckets; b++) {
        for (bus_topic_t *topic = bus->buckets[b], *next; topic; topic = next) {
            next = topic->hash_next;
            bus_topic_t **slot = &buckets[hash_name(topic->name, topic->len) & (nbuckets - 1)];
            topic->hash_next = *slot;
            *slot = topic;
        }
    }
    free(bus->buckets);
    bus->buckets = buckets;
    bus->nbuckets = nbuckets;
}

static bus_topic_t *topic_add(hr_bus_t *bus, const char *name, size_t len)
{
    if (bus->ntopics >= bus->nbuckets) grow(bus);
    if (!bus->nbuckets) return NULL;
    bus_topic_t *topic = calloc(1, sizeof *topic + len + 1);
    if (!topic) return NULL;
    hr_list_init(&topic->sync_link);
    topic->len = len;
    memcpy(topic->name, name, len);
    bus_topic_t **slot = &bus->buckets[hash_name(name, len) & (bus->nbuckets - 1)];
    topic->hash_next = *slot;
    *slot = topic;
    bus->ntopics++;
    return topic;
}

static void topic_remove(hr_bus_t *bus, bus_topic_t *topic)
{
    bus_topic_t **slot = &bus->buckets[hash_name(topic->name, topic->len) & (bus->nbuckets - 1)];
    while (*slot != topic)
        slot = &(*slot)->hash_next;
    *slot = topic->hash_next;
    hr_list_remove(&topic->sync_link);
    bus->ntopics--;
    free(topic);
}

/* SUBSCRIBE or UNSUBSCRIBE a set of topics' channels, in commands of bounded size. */
static void send_channels(hr_bus_t *bus, const char *verb, bus_topic_t **topics, size_t n)
{
    for (size_t at = 0; at < n; at += CHANNELS_PER_COMMAND) {
        size_t count = n - at < CHANNELS_PER_COMMAND ? n - at : CHANNELS_PER_COMMAND;
        const char *argv[CHANNELS_PER_COMMAND + 1];
        char *names[CHANNELS_PER_COMMAND];
        argv[0] = verb;
        size_t made = 0;
        for (; made < count; made++) {
            bus_topic_t *topic = topics[at + made];
            size_t size = strlen(bus->prefix) + 3 + topic->len + 1;
            names[made] = malloc(size);
            if (!names[made]) break;
            snprintf(names[made], size, "%s:c:%s", bus->prefix, topic->name);
            argv[made + 1] = names[made];
        }
        /* hiredis routes SUBSCRIBE confirmations and messages to this callback per channel;
         * UNSUBSCRIBE has no callback of its own. */
        if (made == count && bus->sub)
            redisAsyncCommandArgv(bus->sub, hr_bus_on_sub_reply, bus, (int)count + 1, argv, NULL);
        for (size_t i = 0; i < made; i++)
            free(names[i]);
    }
}

static void subscribe_one(hr_bus_t *bus, bus_topic_t *topic)
{
    topic->state = SUB_PENDING;
    send_channels(bus, "SUBSCRIBE", &topic, 1);
}

static void queue_sync(hr_bus_t *bus, bus_topic_t *topic)
{
    if (hr_list_empty(&topic->sync_link)) hr_list_push(&bus->sync_pending, &topic->sync_link);
    if (!uv_is_active((uv_handle_t *)&bus->sync_timer))
        uv_timer_start(&bus->sync_timer, hr_bus_on_sync_timer, 0, 0);
}

void hr_bus_topic_want(hr_bus_t *bus, const char *name, size_t len, int want)
{
    bus_topic_t *topic = hr_bus_topic_find(bus, name, len);
    if (!want) {
        if (!topic) return;
        topic->wanted = 0;
        hr_list_remove(&topic->sync_link);
        if (topic->state == SUB_ON || topic->state == SUB_PENDING) {
            topic->state = SUB_LEAVING;
            send_channels(bus, "UNSUBSCRIBE", &topic, 1);
        } else if (topic->state == SUB_NONE) {
            topic_remove(bus, topic);
        }
        return;
    }
    if (!topic) topic = topic_add(bus, name, len);
    if (!topic) {
        hr_error("redis.oom", "what=topic topic=%.*s", (int)len, name);
        return;
    }
    topic->wanted = 1;
    if (!hr_bus_up(bus)) return; /* hr_bus_topics_connected subscribes it */
    if (topic->state == SUB_NONE)
        subscribe_one(bus, topic);
    else if (topic->state == SUB_ON)
        queue_sync(bus, topic);
    /* SUB_PENDING: its confirmation loads it; SUB_LEAVING: it is subscribed again after. */
}

/* ---- history loads ---- */

static void items_free(sync_batch_t *batch)
{
    for (size_t i = 0; i < batch->n; i++) {
        sync_item_t *item = &batch->items[i];
        for (size_t k = 0; k < item->count; k++)
            hr_msg_unref(item->msgs[k]);
        free(item->msgs);
        free(item->name);
    }
    free(batch->items);
}

static void batch_free(sync_batch_t *batch)
{
    hr_list_remove(&batch->link);
    items_free(batch);
    free(batch);
}

static void on_exec(redisAsyncContext *ctx, void *reply, void *arg);

static void send_batch(hr_bus_t *bus, bus_topic_t **topics, size_t n, int resync)
{
    sync_batch_t *batch = calloc(1, sizeof *batch);
    size_t argc = n + 2;
    const char **argv = calloc(argc, sizeof *argv);
    if (!batch || !argv || !(batch->items = calloc(n ? n : 1, sizeof *batch->items))) {
        free(batch);
        free(argv);
        hr_error("redis.oom", "what=sync_batch topics=%zu", n);
        return;
    }
    batch->seq = ++bus->next_seq;
    batch->resync = resync;
    batch->n = n;
    hr_list_push(&bus->batches, &batch->link);
    redisAsyncCommand(bus->cmd, NULL, NULL, "MULTI");
    redisAsyncCommand(bus->cmd, NULL, NULL, "GET %s", bus->seq_key);
    argv[0] = "HMGET";
    argv[1] = bus->last_key;
    for (size_t i = 0; i < n; i++) {
        sync_item_t *item = &batch->items[i];
        item->name = strndup(topics[i]->name, topics[i]->len);
        item->len = topics[i]->len;
        item->from =
            resync ? hr_broker_bus_newest(bus->broker, topics[i]->name, topics[i]->len) : 0;
        argv[i + 2] = topics[i]->name;
    }
    redisAsyncCommandArgv(bus->cmd, NULL, NULL, (int)argc, argv, NULL);
    for (size_t i = 0; i < n; i++) {
        sync_item_t *item = &batch->items[i];
        char stream[320], from[32];
        snprintf(stream, sizeof stream, "%s:s:%s", bus->prefix, topics[i]->name);
        if (item->from)
            snprintf(from, sizeof from, "(%llu-0", (unsigned long long)item->from);
        else
            strcpy(from, "-");
        const char *xargv[] = {"XREVRANGE", stream, "+", from, "COUNT", bus->maxlen};
        redisAsyncCommandArgv(bus->cmd, NULL, NULL, 6, xargv, NULL);
    }
    redisAsyncCommand(bus->cmd, NULL, NULL, "PUBLISH %s %llu", bus->barrier,
                      (unsigned long long)batch->seq);
    redisAsyncCommand(bus->cmd, on_exec, bus, "EXEC");
    free(argv);
}

void hr_bus_on_sync_timer(uv_timer_t *timer)
{
    hr_bus_t *bus = timer->data;
    if (!hr_bus_up(bus)) return;
    bus_topic_t *topics[TOPICS_PER_BATCH];
    size_t n = 0;
    while (!hr_list_empty(&bus->sync_pending) && n < TOPICS_PER_BATCH) {
        bus_topic_t *topic = hr_container_of(bus->sync_pending.next, bus_topic_t, sync_link);
        hr_list_remove(&topic->sync_link);
        topics[n++] = topic;
    }
    if (n) send_batch(bus, topics, n, 0);
    if (!hr_list_empty(&bus->sync_pending))
        uv_timer_start(&bus->sync_timer, hr_bus_on_sync_timer, 0, 0);
}

/* The reconnect resync: every wanted topic is subscribed again; load or fill them together so
 * their messages can be replayed in one id order. */
static void send_resync(hr_bus_t *bus)
{
    size_t cap = bus->ntopics ? bus->ntopics : 1, n = 0;
    bus_topic_t **topics = malloc(cap * sizeof *topics);
    if (!topics) {
        hr_error("redis.oom", "what=resync");
        return;
    }
    for (size_t b = 0; b < bus->nbuckets; b++)
        for (bus_topic_t *topic = bus->buckets[b]; topic; topic = topic->hash_next)
            if (topic->in_resync && topic->wanted && topic->state == SUB_ON) topics[n++] = topic;
    send_batch(bus, topics, n, 1);
    free(topics);
}

static int entry_fields(const redisReply *list, hr_bus_field_t *fields, size_t max, size_t *n)
{
    if (list->type != REDIS_REPLY_ARRAY || list->elements % 2 || list->elements / 2 > max)
        return -1;
    *n = list->elements / 2;
    for (size_t i = 0; i < *n; i++) {
        const redisReply *name = list->element[2 * i], *value = list->element[2 * i + 1];
        if (name->type != REDIS_REPLY_STRING || value->type != REDIS_REPLY_STRING) return -1;
        fields[i] = (hr_bus_field_t){name->str, value->str, name->len, value->len};
    }
    return 0;
}

/* XREVRANGE's answer (newest first) into ascending messages; the oldest's p is the floor. */
static int read_entries(const redisReply *list, sync_item_t *item, uint64_t *oldest_prev)
{
    if (list->type != REDIS_REPLY_ARRAY) return -1;
    item->msgs = calloc(list->elements ? list->elements : 1, sizeof *item->msgs);
    if (!item->msgs) return -1;
    for (size_t k = list->elements; k-- > 0;) {
        const redisReply *entry = list->element[k];
        hr_bus_field_t fields[8];
        size_t nfields;
        uint64_t prev = 0;
        if (entry->type != REDIS_REPLY_ARRAY || entry->elements != 2 ||
            entry->element[0]->type != REDIS_REPLY_STRING ||
            entry_fields(entry->element[1], fields, 8, &nfields) != 0)
            return -1;
        hr_msg_t *msg = hr_bus_entry_decode(entry->element[0]->str, entry->element[0]->len, fields,
                                            nfields, &prev);
        if (!msg) return -1;
        if (item->count == 0) *oldest_prev = prev;
        item->msgs[item->count++] = msg;
    }
    return 0;
}

static int read_item(const redisReply *newest, const redisReply *entries, sync_item_t *item)
{
    uint64_t last = 0, oldest_prev = 0;
    if (newest->type == REDIS_REPLY_STRING) hr_id_parse(newest->str, newest->len, &last);
    if (read_entries(entries, item, &oldest_prev) != 0) return -1;
    /* With entries, the oldest one's predecessor is the floor; with none, every message the
     * topic ever had is gone (expired stream) or there never was one. */
    item->floor_id = item->count ? oldest_prev : last;
    item->truncated = item->from && item->floor_id > item->from;
    return 0;
}

static void try_apply(hr_bus_t *bus);

static void on_exec(redisAsyncContext *ctx, void *reply_ptr, void *arg)
{
    (void)ctx;
    hr_bus_t *bus = arg;
    redisReply *reply = reply_ptr;
    if (!reply) return; /* disconnected: the batches were dropped */
    sync_batch_t *batch = NULL;
    for (hr_list_t *it = bus->batches.next; it != &bus->batches; it = it->next) {
        sync_batch_t *candidate = hr_container_of(it, sync_batch_t, link);
        if (!candidate->replied) {
            batch = candidate;
            break;
        }
    }
    if (!batch) return;
    batch->replied = 1;
    int ok = reply->type == REDIS_REPLY_ARRAY && reply->elements == batch->n + 3 &&
             reply->element[1]->type == REDIS_REPLY_ARRAY &&
             reply->element[1]->elements == batch->n;
    if (ok && reply->element[0]->type == REDIS_REPLY_STRING)
        hr_id_parse(reply->element[0]->str, reply->element[0]->len, &batch->epoch);
    for (size_t i = 0; ok && i < batch->n; i++)
        ok = read_item(reply->element[1]->element[i], reply->element[2 + i], &batch->items[i]) == 0;
    if (!ok) {
        hr_error("redis.load_failed", "topics=%zu reply_type=%d", batch->n, reply->type);
        batch->failed = 1;
    }
    try_apply(bus);
}

typedef struct fill_s {
    hr_msg_t *msg; /* first: hr_msg_cmp_id sorts these */
    const sync_item_t *item;
} fill_t;

static void flush_buffer(hr_bus_t *bus)
{
    for (size_t i = 0; i < bus->nbuffer; i++) {
        buffered_t *held = &bus->buffer[i];
        hr_broker_inject(bus->broker, held->name, held->len, held->msg);
        free(held->name);
    }
    free(bus->buffer);
    bus->buffer = NULL;
    bus->nbuffer = bus->buffer_cap = 0;
}

/* Gap fills of every topic go in one id order: a client on several topics sees them as if it
 * had never been cut off. */
static void apply_fills(hr_bus_t *bus, sync_batch_t *batch)
{
    size_t total = 0;
    for (size_t i = 0; i < batch->n; i++)
        if (batch->items[i].from && !batch->items[i].truncated) total += batch->items[i].count;
    fill_t *fills = calloc(total ? total : 1, sizeof *fills);
    size_t n = 0;
    for (size_t i = 0; fills && i < batch->n; i++) {
        sync_item_t *item = &batch->items[i];
        if (!item->from || item->truncated) continue;
        for (size_t k = 0; k < item->count; k++)
            fills[n++] = (fill_t){item->msgs[k], item};
        item->count = 0;
    }
    qsort(fills, n, sizeof *fills, hr_msg_cmp_id);
    for (size_t k = 0; k < n; k++)
        hr_broker_inject(bus->broker, fills[k].item->name, fills[k].item->len, fills[k].msg);
    free(fills);
}

static void apply(hr_bus_t *bus, sync_batch_t *batch)
{
    apply_fills(bus, batch);
    for (size_t i = 0; i < batch->n; i++) {
        sync_item_t *item = &batch->items[i];
        if (item->from && !item->truncated) continue;
        hr_broker_bus_live(bus->broker, item->name, item->len, item->floor_id, item->msgs,
                           item->count, batch->epoch);
        item->count = 0;
        if (item->truncated) {
            /* More was missed than history holds: subscribers start over from history and
             * are told of the gap. */
            size_t told = hr_broker_kick(bus->broker, item->name, item->len);
            hr_warn("redis.gap", "topic=%s after=%llu floor=%llu kicked=%zu", item->name,
                    (unsigned long long)item->from, (unsigned long long)item->floor_id, told);
        }
    }
    for (size_t i = 0; i < batch->n; i++) {
        bus_topic_t *topic = hr_bus_topic_find(bus, batch->items[i].name, batch->items[i].len);
        if (topic) topic->in_resync = 0;
    }
    if (batch->resync) flush_buffer(bus);
}

static void try_apply(hr_bus_t *bus)
{
    while (!hr_list_empty(&bus->batches)) {
        sync_batch_t *batch = hr_container_of(bus->batches.next, sync_batch_t, link);
        if (!batch->replied || !batch->barrier) return;
        if (!batch->failed) {
            apply(bus, batch);
        } else if (batch->resync) {
            flush_buffer(bus);
        }
        batch_free(batch);
    }
}

static void on_barrier(hr_bus_t *bus, const redisReply *payload)
{
    uint64_t seq;
    if (payload->type != REDIS_REPLY_STRING || hr_id_parse(payload->str, payload->len, &seq) != 0)
        return;
    for (hr_list_t *it = bus->batches.next; it != &bus->batches; it = it->next) {
        sync_batch_t *batch = hr_container_of(it, sync_batch_t, link);
        if (batch->seq == seq) batch->barrier = 1;
    }
    try_apply(bus);
}

/* ---- the subscription connection ---- */

static void hold(hr_bus_t *bus, bus_topic_t *topic, hr_msg_t *msg)
{
    if (bus->nbuffer == bus->buffer_cap) {
        size_t cap = bus->buffer_cap ? bus->buffer_cap * 2 : 256;
        buffered_t *grown = realloc(bus->buffer, cap * sizeof *grown);
        if (!grown) {
            hr_msg_unref(msg); /* the gap fill or a later resume has it */
            return;
        }
        bus->buffer = grown;
        bus->buffer_cap = cap;
    }
    bus->buffer[bus->nbuffer++] = (buffered_t){strndup(topic->name, topic->len), topic->len, msg};
}

static void on_message(hr_bus_t *bus, const char *name, size_t len, const redisReply *payload)
{
    atomic_fetch_add_explicit(&bus->received, 1, memory_order_relaxed);
    hr_msg_t *msg = payload->type == REDIS_REPLY_STRING
                        ? hr_bus_payload_decode(payload->str, payload->len)
                        : NULL;
    if (!msg) {
        hr_warn("redis.bad_message", "topic=%.*s", (int)len, name);
        return;
    }
    bus_topic_t *topic = hr_bus_topic_find(bus, name, len);
    if (topic && topic->in_resync) {
        hold(bus, topic, msg);
        return;
    }
    hr_broker_inject(bus->broker, name, len, msg);
}

static void on_subscribed(hr_bus_t *bus, bus_topic_t *topic)
{
    bus->channels++;
    if (topic->state == SUB_PENDING) topic->state = SUB_ON;
    if (topic->in_resync) {
        if (--bus->resync_waiting == 0) send_resync(bus);
        return;
    }
    if (topic->state == SUB_ON && topic->wanted) queue_sync(bus, topic);
}

static void on_unsubscribed(hr_bus_t *bus, bus_topic_t *topic)
{
    if (bus->channels) bus->channels--;
    topic->state = SUB_NONE;
    if (topic->wanted)
        subscribe_one(bus, topic); /* wanted again while leaving */
    else
        topic_remove(bus, topic);
}

void hr_bus_on_sub_reply(redisAsyncContext *ctx, void *reply_ptr, void *arg)
{
    (void)ctx;
    hr_bus_t *bus = arg;
    redisReply *reply = reply_ptr;
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements < 3) return;
    const redisReply *kind = reply->element[0], *channel = reply->element[1];
    if (kind->type != REDIS_REPLY_STRING || channel->type != REDIS_REPLY_STRING) return;
    if (strcmp(channel->str, bus->barrier) == 0) {
        if (strcmp(kind->str, "subscribe") == 0) hr_bus_barrier_ready(bus);
        if (strcmp(kind->str, "message") == 0) on_barrier(bus, reply->element[2]);
        return;
    }
    size_t plen = strlen(bus->prefix);
    if (channel->len < plen + 3 || memcmp(channel->str, bus->prefix, plen) != 0 ||
        memcmp(channel->str + plen, ":c:", 3) != 0)
        return;
    const char *name = channel->str + plen + 3;
    size_t len = channel->len - plen - 3;
    if (strcmp(kind->str, "message") == 0) {
        on_message(bus, name, len, reply->element[2]);
        return;
    }
    bus_topic_t *topic = hr_bus_topic_find(bus, name, len);
    if (!topic) return;
    if (strcmp(kind->str, "subscribe") == 0) on_subscribed(bus, topic);
    if (strcmp(kind->str, "unsubscribe") == 0) on_unsubscribed(bus, topic);
}

/* ---- connection life ---- */

void hr_bus_topics_connected(hr_bus_t *bus)
{
    size_t cap = bus->ntopics ? bus->ntopics : 1, n = 0;
    bus_topic_t **topics = malloc(cap * sizeof *topics);
    if (!topics) {
        hr_error("redis.oom", "what=resubscribe");
        return;
    }
    for (size_t b = 0; b < bus->nbuckets; b++) {
        for (bus_topic_t *topic = bus->buckets[b], *next; topic; topic = next) {
            next = topic->hash_next;
            if (!topic->wanted) {
                topic_remove(bus, topic);
                continue;
            }
            topic->state = SUB_PENDING;
            topic->in_resync = 1;
            topics[n++] = topic;
        }
    }
    bus->resync_waiting = n;
    if (n) hr_info("redis.resubscribe", "topics=%zu", n);
    send_channels(bus, "SUBSCRIBE", topics, n);
    free(topics);
}

void hr_bus_topics_disconnected(hr_bus_t *bus)
{
    while (!hr_list_empty(&bus->batches))
        batch_free(hr_container_of(bus->batches.next, sync_batch_t, link));
    for (size_t i = 0; i < bus->nbuffer; i++) {
        hr_msg_unref(bus->buffer[i].msg);
        free(bus->buffer[i].name);
    }
    free(bus->buffer);
    bus->buffer = NULL;
    bus->nbuffer = bus->buffer_cap = 0;
    bus->resync_waiting = 0;
    bus->channels = 0;
    for (size_t b = 0; b < bus->nbuckets; b++) {
        for (bus_topic_t *topic = bus->buckets[b], *next; topic; topic = next) {
            next = topic->hash_next;
            topic->state = SUB_NONE;
            topic->in_resync = 0;
            hr_list_remove(&topic->sync_link);
            if (!topic->wanted) topic_remove(bus, topic);
        }
    }
}

void hr_bus_topics_free(hr_bus_t *bus)
{
    hr_bus_topics_disconnected(bus);
    for (size_t b = 0; b < bus->nbuckets; b++) {
        for (bus_topic_t *topic = bus->buckets[b], *next; topic; topic = next) {
            next = topic->hash_next;
            free(topic);
        }
    }
    free(bus->buckets);
    bus->buckets = NULL;
    bus->nbuckets = bus->ntopics = 0;
}
