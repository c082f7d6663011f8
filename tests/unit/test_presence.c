/* The presence registry: transitions in order through a recording sink, the grace absorbing a
 * reconnect, several connections of one user, leaves after the grace, last-seen, queries and
 * the snapshot a cluster node resyncs from. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "presence/presence.h"

static char events[64]
                  [96]; /* "join room alice", "leave room alice", "user alice 0", "seen alice" */
static size_t nevents;

static void rec_user(void *arg, const char *user, size_t len, unsigned conns, unsigned mask)
{
    (void)arg;
    snprintf(events[nevents++ % 64], 96, "user %.*s %u %u", (int)len, user, conns, mask);
}

static void rec_member(void *arg, const char *topic, size_t tlen, const char *user, size_t ulen,
                       int joined)
{
    (void)arg;
    snprintf(events[nevents++ % 64], 96, "%s %.*s %.*s", joined ? "join" : "leave", (int)tlen,
             topic, (int)ulen, user);
}

static void rec_seen(void *arg, const char *user, size_t len, int64_t unix_ms)
{
    (void)arg;
    (void)unix_ms;
    snprintf(events[nevents++ % 64], 96, "seen %.*s", (int)len, user);
}

static const hr_presence_sink_t sink = {rec_user, rec_member, rec_seen, NULL};

static size_t count(const char *event)
{
    size_t n = 0;
    for (size_t i = 0; i < nevents; i++)
        n += strcmp(events[i], event) == 0;
    return n;
}

static hr_presence_t *registry(int64_t grace_ms)
{
    nevents = 0;
    hr_presence_config_t config = {grace_ms, 30000, NULL, NULL};
    return hr_presence_new(&config, &sink);
}

static void join_once_leave_after_grace(void **state)
{
    (void)state;
    hr_presence_t *presence = registry(100);
    hr_presence_conn_t a = {0}, b = {0};
    assert_int_equal(hr_presence_connect(presence, &a, "alice", 5, HR_VIA_SSE), 0);
    assert_int_equal(hr_presence_join(presence, &a, "room", 4), 0);
    assert_int_equal(hr_presence_join(presence, &a, "room", 4), 0); /* idempotent */
    assert_int_equal(hr_presence_connect(presence, &b, "alice", 5, HR_VIA_WS), 0);
    assert_int_equal(hr_presence_join(presence, &b, "room", 4), 0);
    assert_int_equal(count("join room alice"), 1);
    hr_presence_info_t info;
    hr_presence_user(presence, "alice", 5, &info);
    assert_true(info.online);
    assert_int_equal(info.conns, 2);
    assert_int_equal(info.via_mask, (1u << HR_VIA_SSE) | (1u << HR_VIA_WS));
    hr_presence_disconnect(presence, &a); /* one device left: nothing leaves */
    hr_presence_disconnect(presence, &b); /* the last: the grace begins */
    hr_presence_sweep(presence);
    assert_int_equal(count("leave room alice"), 0);
    hr_presence_user(presence, "alice", 5, &info);
    assert_true(info.online); /* in its grace */
    usleep(150 * 1000);
    hr_presence_sweep(presence);
    assert_int_equal(count("leave room alice"), 1);
    assert_int_equal(count("user alice 0 0"), 1);
    hr_presence_user(presence, "alice", 5, &info);
    assert_false(info.online);
    assert_true(info.last_seen_ms > 0); /* from the cache of users gone offline */
    hr_presence_free(presence);
}

static void reconnect_within_grace_is_silent(void **state)
{
    (void)state;
    hr_presence_t *presence = registry(200);
    hr_presence_conn_t conn = {0};
    hr_presence_connect(presence, &conn, "bob", 3, HR_VIA_POLL);
    hr_presence_join(presence, &conn, "t", 1);
    hr_presence_disconnect(presence, &conn);
    usleep(50 * 1000);
    hr_presence_connect(presence, &conn, "bob", 3, HR_VIA_POLL);
    hr_presence_join(presence, &conn, "t", 1);
    usleep(250 * 1000);
    hr_presence_sweep(presence);
    assert_int_equal(count("join t bob"), 1);
    assert_int_equal(count("leave t bob"), 0);
    assert_int_equal(count("user bob 0 0"), 0);
    hr_presence_disconnect(presence, &conn);
    hr_presence_free(presence);
}

static void leave_one_topic_and_members(void **state)
{
    (void)state;
    hr_presence_t *presence = registry(0); /* no grace: at once */
    hr_presence_conn_t conn = {0};
    hr_presence_connect(presence, &conn, "carol", 5, HR_VIA_WS);
    hr_presence_join(presence, &conn, "a", 1);
    hr_presence_join(presence, &conn, "b", 1);
    hr_presence_leave(presence, &conn, "a", 1);
    assert_int_equal(count("leave a carol"), 1);
    assert_int_equal(count("leave b carol"), 0);
    hr_presence_stats_t stats;
    hr_presence_stats(presence, &stats);
    assert_int_equal(stats.users, 1);
    assert_int_equal(stats.memberships, 1);
    assert_int_equal(stats.topics, 1);
    hr_presence_disconnect(presence, &conn);
    assert_int_equal(count("leave b carol"), 1);
    hr_presence_stats(presence, &stats);
    assert_int_equal(stats.users + stats.memberships + stats.topics, 0);
    hr_presence_free(presence);
}

static size_t nusers, nmembers, ndone;
static void snap_user(void *arg, const char *u, size_t l, unsigned c, unsigned m)
{
    (void)arg, (void)u, (void)l, (void)c, (void)m;
    nusers++;
}
static void snap_member(void *arg, const char *t, size_t tl, const char *u, size_t ul)
{
    (void)arg, (void)t, (void)tl, (void)u, (void)ul;
    nmembers++;
}
static void snap_done(void *arg, void *done_arg)
{
    (void)arg, (void)done_arg;
    ndone++;
}

static void snapshot_walks_everything(void **state)
{
    (void)state;
    hr_presence_t *presence = registry(1000);
    hr_presence_conn_t conns[3] = {{0}};
    const char *users[] = {"u1", "u2", "u3"};
    for (int i = 0; i < 3; i++) {
        hr_presence_connect(presence, &conns[i], users[i], 2, HR_VIA_SSE);
        hr_presence_join(presence, &conns[i], "x", 1);
        hr_presence_join(presence, &conns[i], users[i], 2);
    }
    hr_presence_disconnect(presence, &conns[2]); /* in its grace: still held */
    nusers = nmembers = ndone = 0;
    hr_presence_snapshot(presence, snap_user, snap_member, snap_done, NULL, NULL);
    assert_int_equal(nusers, 3);
    assert_int_equal(nmembers, 6);
    assert_int_equal(ndone, 1);
    hr_presence_disconnect(presence, &conns[0]);
    hr_presence_disconnect(presence, &conns[1]);
    hr_presence_free(presence);
}

static void names(void **state)
{
    (void)state;
    char out[129];
    assert_true(hr_presence_user_valid("alice", 5));
    assert_false(hr_presence_user_valid("a b", 3));
    assert_false(hr_presence_user_valid("", 0));
    char long_id[121];
    memset(long_id, 'x', sizeof long_id);
    assert_false(hr_presence_user_valid(long_id, 121));
    assert_true(hr_presence_user_valid(long_id, 120));
    assert_int_equal(hr_signal_topic(long_id, 120, out), 128);
    assert_int_equal(hr_presence_topic(long_id, 119, out), 0);
    assert_int_equal(hr_presence_topic("room", 4, out), 14);
    assert_string_equal(out, "~presence:room");
    assert_true(hr_presence_reserved("~signal:bob", 11));
    assert_true(hr_presence_reserved("~presence:x", 11));
    assert_false(hr_presence_reserved("~user:bob", 9));
    assert_false(hr_presence_reserved("news", 4));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(join_once_leave_after_grace),
        cmocka_unit_test(reconnect_within_grace_is_silent),
        cmocka_unit_test(leave_one_topic_and_members),
        cmocka_unit_test(snapshot_walks_everything),
        cmocka_unit_test(names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
