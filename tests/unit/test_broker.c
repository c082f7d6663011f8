/* The broker's resume contract, held without a network: a subscriber sees every id after its
 * resume point once, in order. Cluster mode in particular (a bus whose hooks only record): a
 * client resuming on a node that is behind the one it came from gets neither a gap notice nor,
 * as messages still on their way reach this node, any id at or below its resume point again
 * (found by the soak run: two duplicates in 636k deliveries). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/broker.h"

typedef struct seen_s {
    uint64_t ids[64];
    size_t n;
} seen_t;

static int record(hr_sub_t *sub, hr_msg_t *msg)
{
    seen_t *seen = sub->owner;
    seen->ids[seen->n++] = msg->id;
    return 0;
}

static void nothing(hr_sub_t *sub)
{
    (void)sub;
}

static const hr_transport_t recorder = {"recorder", record, nothing, nothing};

static void hook_topic(void *arg, const char *name, size_t len)
{
    (void)arg;
    (void)name;
    (void)len;
}

static int hook_up(void *arg)
{
    (void)arg;
    return 1;
}

static void await_done(hr_await_t *await, int ok)
{
    (void)await;
    assert_true(ok);
}

static hr_msg_t *message(uint64_t id)
{
    hr_msg_t *msg = hr_msg_new("", 0, "x", 1, 0, 0);
    msg->id = id;
    return msg;
}

/* A node of a cluster whose topic "t" is live; *newest is the newest id it has seen. */
static hr_broker_t *cluster_node(uint64_t *newest)
{
    hr_broker_config_t config = {.workers = 1, .history_size = 100};
    hr_broker_t *broker = hr_broker_new(&config);
    hr_bus_hooks_t hooks = {hook_topic, hook_topic, hook_up, NULL};
    hr_broker_set_bus(broker, &hooks);
    const char *name = "t";
    size_t len = 1;
    hr_await_t await = {.worker = 0, .done = await_done};
    assert_int_equal(hr_broker_await(broker, &await, &name, &len, 1), 0);
    hr_broker_stats_t stats;
    hr_broker_stats(broker, &stats);
    *newest = stats.last_id;
    hr_broker_bus_live(broker, "t", 1, 0, NULL, 0, *newest);
    hr_broker_drain(broker, 0); /* runs await_done */
    return broker;
}

static void resume_ahead_of_a_lagging_node_no_gap_no_duplicate(void **state)
{
    (void)state;
    uint64_t newest;
    hr_broker_t *broker = cluster_node(&newest);
    seen_t seen = {0};
    hr_sub_t sub = {.vt = &recorder, .owner = &seen, .worker = 0};
    const char *name = "t";
    size_t len = 1;
    uint64_t since = newest + 100; /* from a node that is 100 ids ahead */
    hr_replay_t replay;
    assert_int_equal(hr_broker_subscribe(broker, &sub, &name, &len, 1, &since, &replay), 0);
    assert_int_equal(replay.ngaps, 0);
    assert_int_equal(replay.count, 0);
    assert_true(replay.last_id >= since);
    hr_replay_free(&replay);
    /* Messages the client already has arrive late, then newer ones. */
    hr_broker_inject(broker, "t", 1, message(newest + 50));
    hr_broker_inject(broker, "t", 1, message(newest + 100));
    hr_broker_inject(broker, "t", 1, message(newest + 101));
    hr_broker_inject(broker, "t", 1, message(newest + 150));
    hr_broker_drain(broker, 0);
    assert_int_equal(seen.n, 2);
    assert_int_equal(seen.ids[0], newest + 101);
    assert_int_equal(seen.ids[1], newest + 150);
    hr_broker_unsubscribe(broker, &sub);
    hr_broker_sweep(broker);
    hr_broker_free(broker);
}

/* On a single node an id above the newest is from another epoch (a restart): the client is told
 * of a gap and gets everything new, since those ids were never its own. */
static void single_node_other_epoch_is_a_gap(void **state)
{
    (void)state;
    hr_broker_config_t config = {.workers = 1, .history_size = 100};
    hr_broker_t *broker = hr_broker_new(&config);
    seen_t seen = {0};
    hr_sub_t sub = {.vt = &recorder, .owner = &seen, .worker = 0};
    const char *name = "t";
    size_t len = 1;
    hr_broker_stats_t stats;
    hr_broker_stats(broker, &stats);
    uint64_t since = stats.last_id + 1000000;
    hr_replay_t replay;
    assert_int_equal(hr_broker_subscribe(broker, &sub, &name, &len, 1, &since, &replay), 0);
    assert_int_equal(replay.ngaps, 1);
    hr_replay_free(&replay);
    hr_publish_t pub = {.topic = "t", .topic_len = 1, .data = "x", .data_len = 1};
    uint64_t id;
    assert_int_equal(hr_broker_publish(broker, &pub, &id), 0);
    hr_broker_drain(broker, 0);
    assert_int_equal(seen.n, 1);
    assert_int_equal(seen.ids[0], id);
    hr_broker_unsubscribe(broker, &sub);
    hr_broker_sweep(broker);
    hr_broker_free(broker);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(resume_ahead_of_a_lagging_node_no_gap_no_duplicate),
        cmocka_unit_test(single_node_other_epoch_is_a_gap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
