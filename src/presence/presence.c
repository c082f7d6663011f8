/* The presence registry; see presence.h. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/broker.h"
#include "core/error.h"
#include "core/log.h"
#include "core/strmap.h"
#include "presence/presence.h"

const char *const hr_presence_via_names[HR_VIA_COUNT] = {"sse", "ws", "poll"};

typedef struct pres_user_s {
    hr_strmap_node_t node; /* in presence->users, keyed by name */
    hr_list_t grace_link;  /* in presence->grace_users while conns == 0 */
    hr_list_t seen_link;   /* in presence->online, oldest last-seen write first */
    unsigned conns;
    unsigned via[HR_VIA_COUNT];
    int64_t grace_until_ms;  /* monotonic; valid while conns == 0 */
    int64_t seen_written_ms; /* monotonic time last-seen was last handed to the sink */
    int64_t left_unix_ms;    /* when its last connection dropped (the last-seen it leaves) */
    size_t len;
    char name[];
} pres_user_t;

typedef struct pres_topic_s {
    hr_strmap_node_t node;
    hr_list_t members; /* pres_member_t */
    size_t nmembers;
    size_t len;
    char name[];
} pres_topic_t;

typedef struct pres_member_s {
    hr_strmap_node_t node; /* key: topic '\n' user */
    hr_list_t topic_link;  /* in topic->members */
    hr_list_t grace_link;  /* in presence->grace_members while count == 0 */
    pres_topic_t *topic;
    unsigned count; /* connections of the user in the topic */
    int64_t grace_until_ms;
    size_t user_len;
    const char *user; /* inside key */
    char key[];
} pres_member_t;

typedef struct pres_seen_s {
    hr_strmap_node_t node;
    hr_list_t link; /* in presence->seen, oldest first */
    int64_t unix_ms;
    size_t len;
    char name[];
} pres_seen_t;

struct hr_presence_s {
    pthread_mutex_t lock;
    hr_presence_config_t config;
    hr_presence_sink_t sink;
    hr_strmap_t users, topics, members, seen_map;
    hr_list_t grace_users, grace_members, online, seen;
};

static int has_prefix(const char *name, size_t len, const char *prefix)
{
    size_t plen = strlen(prefix);
    return len >= plen && memcmp(name, prefix, plen) == 0;
}

int hr_presence_user_valid(const char *user, size_t len)
{
    return len >= 1 && len <= HR_PRESENCE_USER_MAX && hr_topic_name_valid(user, len);
}

int hr_presence_reserved(const char *name, size_t len)
{
    return has_prefix(name, len, HR_PRESENCE_TOPIC_PREFIX) ||
           has_prefix(name, len, HR_SIGNAL_TOPIC_PREFIX);
}

static size_t prefixed(const char *prefix, const char *name, size_t len, size_t max, char *out)
{
    size_t plen = strlen(prefix);
    if (len == 0 || len > max) return 0;
    memcpy(out, prefix, plen);
    memcpy(out + plen, name, len);
    out[plen + len] = '\0';
    return plen + len;
}

size_t hr_presence_topic(const char *topic, size_t len, char *out)
{
    return prefixed(HR_PRESENCE_TOPIC_PREFIX, topic, len, HR_PRESENCE_TOPIC_MAX, out);
}

size_t hr_signal_topic(const char *user, size_t len, char *out)
{
    return prefixed(HR_SIGNAL_TOPIC_PREFIX, user, len, HR_PRESENCE_USER_MAX, out);
}

hr_presence_t *hr_presence_new(const hr_presence_config_t *config, const hr_presence_sink_t *sink)
{
    hr_presence_t *presence = calloc(1, sizeof *presence);
    if (!presence) return NULL;
    pthread_mutex_init(&presence->lock, NULL);
    presence->config = *config;
    presence->sink = *sink;
    hr_list_init(&presence->grace_users);
    hr_list_init(&presence->grace_members);
    hr_list_init(&presence->online);
    hr_list_init(&presence->seen);
    return presence;
}

static void free_map(hr_strmap_t *map)
{
    for (size_t i = 0; i < map->nbuckets; i++) {
        hr_strmap_node_t *node = map->buckets[i], *next;
        for (; node; node = next) {
            next = node->next;
            free(node); /* every entry starts with its node */
        }
    }
    hr_strmap_free(map);
}

void hr_presence_free(hr_presence_t *presence)
{
    if (!presence) return;
    free_map(&presence->members);
    free_map(&presence->topics);
    free_map(&presence->users);
    free_map(&presence->seen_map);
    pthread_mutex_destroy(&presence->lock);
    free(presence);
}

/* ---- last seen -------------------------------------------------------------------------- */

static void seen_forget(hr_presence_t *presence, pres_seen_t *seen)
{
    hr_strmap_remove(&presence->seen_map, &seen->node);
    hr_list_remove(&seen->link);
    free(seen);
}

static void seen_remember(hr_presence_t *presence, const char *user, size_t len, int64_t at)
{
    hr_strmap_node_t *node = hr_strmap_get(&presence->seen_map, user, len);
    if (node) seen_forget(presence, (pres_seen_t *)node);
    if (presence->seen_map.count >= HR_PRESENCE_SEEN_CACHE)
        seen_forget(presence, hr_container_of(presence->seen.next, pres_seen_t, link));
    pres_seen_t *seen = malloc(sizeof *seen + len);
    if (!seen) return; /* the store still has it */
    memcpy(seen->name, user, len);
    seen->len = len;
    seen->unix_ms = at;
    seen->node.key = seen->name;
    seen->node.key_len = len;
    if (hr_strmap_put(&presence->seen_map, &seen->node) != 0) {
        free(seen);
        return;
    }
    hr_list_push(&presence->seen, &seen->link);
}

static void emit_seen(hr_presence_t *presence, pres_user_t *user, int64_t now_mono)
{
    user->seen_written_ms = now_mono;
    hr_list_remove(&user->seen_link);
    hr_list_push(&presence->online, &user->seen_link);
    if (presence->sink.seen)
        presence->sink.seen(presence->sink.arg, user->name, user->len, hr_clock_unix_ms());
}

/* ---- users ------------------------------------------------------------------------------ */

static unsigned via_mask(const pres_user_t *user)
{
    unsigned mask = 0;
    for (int i = 0; i < HR_VIA_COUNT; i++)
        if (user->via[i]) mask |= 1u << i;
    return mask;
}

static void user_changed(hr_presence_t *presence, pres_user_t *user)
{
    if (presence->sink.user_state)
        presence->sink.user_state(presence->sink.arg, user->name, user->len, user->conns,
                                  via_mask(user));
}

static pres_user_t *user_get(hr_presence_t *presence, const char *name, size_t len)
{
    hr_strmap_node_t *node = hr_strmap_get(&presence->users, name, len);
    if (node) return (pres_user_t *)node;
    pres_user_t *user = calloc(1, sizeof *user + len);
    if (!user) return NULL;
    memcpy(user->name, name, len);
    user->len = len;
    user->node.key = user->name;
    user->node.key_len = len;
    hr_list_init(&user->grace_link);
    hr_list_init(&user->seen_link);
    if (hr_strmap_put(&presence->users, &user->node) != 0) {
        free(user);
        return NULL;
    }
    emit_seen(presence, user, hr_clock_mono_ms()); /* came online: now is its last-seen */
    return user;
}

/* The grace ran out (or there is none): the user is gone. */
static void user_gone(hr_presence_t *presence, pres_user_t *user)
{
    int64_t now = user->left_unix_ms ? user->left_unix_ms : hr_clock_unix_ms();
    user_changed(presence, user); /* conns == 0 */
    if (presence->sink.seen) presence->sink.seen(presence->sink.arg, user->name, user->len, now);
    seen_remember(presence, user->name, user->len, now);
    hr_strmap_remove(&presence->users, &user->node);
    hr_list_remove(&user->grace_link);
    hr_list_remove(&user->seen_link);
    free(user);
}

int hr_presence_connect(hr_presence_t *presence, hr_presence_conn_t *conn, const char *name,
                        size_t len, enum hr_presence_via via)
{
    pthread_mutex_lock(&presence->lock);
    pres_user_t *user = user_get(presence, name, len);
    if (user) {
        hr_list_remove(&user->grace_link); /* back within the grace: no leave, no join */
        user->conns++;
        user->via[via]++;
        user_changed(presence, user);
    }
    pthread_mutex_unlock(&presence->lock);
    if (!user) return HR_ENOMEM;
    *conn = (hr_presence_conn_t){.user = user, .via = via};
    return 0;
}

/* ---- memberships ------------------------------------------------------------------------ */

static pres_topic_t *topic_get(hr_presence_t *presence, const char *name, size_t len)
{
    hr_strmap_node_t *node = hr_strmap_get(&presence->topics, name, len);
    if (node) return (pres_topic_t *)node;
    pres_topic_t *topic = calloc(1, sizeof *topic + len);
    if (!topic) return NULL;
    memcpy(topic->name, name, len);
    topic->len = len;
    topic->node.key = topic->name;
    topic->node.key_len = len;
    hr_list_init(&topic->members);
    if (hr_strmap_put(&presence->topics, &topic->node) != 0) {
        free(topic);
        return NULL;
    }
    return topic;
}

static pres_member_t *member_get(hr_presence_t *presence, const char *topic_name, size_t topic_len,
                                 const pres_user_t *user)
{
    char key[HR_TOPIC_MAX_LEN + 1 + HR_PRESENCE_USER_MAX];
    memcpy(key, topic_name, topic_len);
    key[topic_len] = '\n';
    memcpy(key + topic_len + 1, user->name, user->len);
    size_t key_len = topic_len + 1 + user->len;
    hr_strmap_node_t *node = hr_strmap_get(&presence->members, key, key_len);
    if (node) return (pres_member_t *)node;
    pres_topic_t *topic = topic_get(presence, topic_name, topic_len);
    pres_member_t *member = topic ? calloc(1, sizeof *member + key_len) : NULL;
    if (!member) {
        if (topic && !topic->nmembers) {
            hr_strmap_remove(&presence->topics, &topic->node);
            free(topic);
        }
        return NULL;
    }
    memcpy(member->key, key, key_len);
    member->node.key = member->key;
    member->node.key_len = key_len;
    member->user = member->key + topic_len + 1;
    member->user_len = user->len;
    member->topic = topic;
    hr_list_init(&member->grace_link);
    if (hr_strmap_put(&presence->members, &member->node) != 0) {
        free(member);
        return NULL;
    }
    hr_list_push(&topic->members, &member->topic_link);
    topic->nmembers++;
    return member;
}

static void member_gone(hr_presence_t *presence, pres_member_t *member)
{
    pres_topic_t *topic = member->topic;
    if (presence->sink.member)
        presence->sink.member(presence->sink.arg, topic->name, topic->len, member->user,
                              member->user_len, 0);
    hr_strmap_remove(&presence->members, &member->node);
    hr_list_remove(&member->topic_link);
    hr_list_remove(&member->grace_link);
    free(member);
    if (--topic->nmembers == 0) {
        hr_strmap_remove(&presence->topics, &topic->node);
        free(topic);
    }
}

int hr_presence_join(hr_presence_t *presence, hr_presence_conn_t *conn, const char *topic,
                     size_t len)
{
    if (!conn->user) return 0;
    for (size_t i = 0; i < conn->nmembers; i++)
        if (conn->members[i]->topic->len == len &&
            memcmp(conn->members[i]->topic->name, topic, len) == 0)
            return 0;
    if (conn->nmembers == conn->cap) {
        size_t cap = conn->cap ? conn->cap * 2 : 4;
        pres_member_t **members = realloc(conn->members, cap * sizeof *members);
        if (!members) return HR_ENOMEM;
        conn->members = members;
        conn->cap = cap;
    }
    pthread_mutex_lock(&presence->lock);
    pres_member_t *member = member_get(presence, topic, len, conn->user);
    if (member) {
        hr_list_remove(&member->grace_link);
        /* A fresh member, or one whose grace had begun, is new only when fresh. */
        int fresh = member->count == 0 && member->grace_until_ms == 0;
        member->count++;
        member->grace_until_ms = 0;
        if (fresh && presence->sink.member)
            presence->sink.member(presence->sink.arg, topic, len, member->user, member->user_len,
                                  1);
    }
    pthread_mutex_unlock(&presence->lock);
    if (!member) return HR_ENOMEM;
    conn->members[conn->nmembers++] = member;
    return 0;
}

/* Under the lock: one connection fewer in `member`. */
static void member_drop(hr_presence_t *presence, pres_member_t *member, int64_t now)
{
    if (--member->count > 0) return;
    if (presence->config.grace_ms <= 0) {
        member_gone(presence, member);
        return;
    }
    member->grace_until_ms = now + presence->config.grace_ms;
    hr_list_push(&presence->grace_members, &member->grace_link);
}

void hr_presence_leave(hr_presence_t *presence, hr_presence_conn_t *conn, const char *topic,
                       size_t len)
{
    for (size_t i = 0; i < conn->nmembers; i++) {
        pres_member_t *member = conn->members[i];
        if (member->topic->len != len || memcmp(member->topic->name, topic, len) != 0) continue;
        conn->members[i] = conn->members[--conn->nmembers];
        pthread_mutex_lock(&presence->lock);
        member_drop(presence, member, hr_clock_mono_ms());
        pthread_mutex_unlock(&presence->lock);
        return;
    }
}

void hr_presence_disconnect(hr_presence_t *presence, hr_presence_conn_t *conn)
{
    pres_user_t *user = conn->user;
    if (!user) return;
    int64_t now = hr_clock_mono_ms();
    pthread_mutex_lock(&presence->lock);
    for (size_t i = 0; i < conn->nmembers; i++)
        member_drop(presence, conn->members[i], now);
    user->conns--;
    user->via[conn->via]--;
    user->left_unix_ms = hr_clock_unix_ms();
    if (user->conns > 0) {
        user_changed(presence, user);
    } else if (presence->config.grace_ms <= 0) {
        user_gone(presence, user);
    } else {
        user->grace_until_ms = now + presence->config.grace_ms;
        hr_list_push(&presence->grace_users, &user->grace_link);
    }
    pthread_mutex_unlock(&presence->lock);
    free(conn->members);
    *conn = (hr_presence_conn_t){0};
}

void hr_presence_sweep(hr_presence_t *presence)
{
    int64_t now = hr_clock_mono_ms();
    pthread_mutex_lock(&presence->lock);
    /* Members first: a topic's leave comes before the user's last-seen. Both lists are in
     * deadline order (one grace length), so the walk stops at the first one still waiting. */
    while (!hr_list_empty(&presence->grace_members)) {
        pres_member_t *member =
            hr_container_of(presence->grace_members.next, pres_member_t, grace_link);
        if (member->grace_until_ms > now) break;
        member_gone(presence, member);
    }
    while (!hr_list_empty(&presence->grace_users)) {
        pres_user_t *user = hr_container_of(presence->grace_users.next, pres_user_t, grace_link);
        if (user->grace_until_ms > now) break;
        user_gone(presence, user);
    }
    while (!hr_list_empty(&presence->online)) {
        pres_user_t *user = hr_container_of(presence->online.next, pres_user_t, seen_link);
        if (user->seen_written_ms + presence->config.seen_interval_ms > now) break;
        if (user->conns == 0) { /* in its grace: left_unix_ms is its last-seen, kept for later */
            user->seen_written_ms = now;
            hr_list_remove(&user->seen_link);
            hr_list_push(&presence->online, &user->seen_link);
            continue;
        }
        emit_seen(presence, user, now);
    }
    pthread_mutex_unlock(&presence->lock);
}

/* ---- queries ---------------------------------------------------------------------------- */

void hr_presence_user(hr_presence_t *presence, const char *name, size_t len,
                      hr_presence_info_t *info)
{
    *info = (hr_presence_info_t){0};
    pthread_mutex_lock(&presence->lock);
    pres_user_t *user = (pres_user_t *)hr_strmap_get(&presence->users, name, len);
    pres_seen_t *seen = user ? NULL : (pres_seen_t *)hr_strmap_get(&presence->seen_map, name, len);
    if (user) {
        info->online = 1; /* in its grace too: it has not left */
        info->conns = user->conns;
        info->via_mask = via_mask(user);
        info->last_seen_ms = user->conns ? hr_clock_unix_ms() : user->left_unix_ms;
    } else if (seen) {
        info->last_seen_ms = seen->unix_ms;
    }
    pthread_mutex_unlock(&presence->lock);
    if (!user && !seen && presence->config.seen_read)
        presence->config.seen_read(presence->config.seen_read_arg, name, len, &info->last_seen_ms);
}

int hr_presence_online(hr_presence_t *presence, const char *user, size_t len)
{
    pthread_mutex_lock(&presence->lock);
    int online = hr_strmap_get(&presence->users, user, len) != NULL;
    pthread_mutex_unlock(&presence->lock);
    return online;
}

size_t hr_presence_members(hr_presence_t *presence, const char *name, size_t len, size_t limit,
                           void (*fn)(void *arg, const char *user, size_t len, unsigned conns),
                           void *arg)
{
    pthread_mutex_lock(&presence->lock);
    pres_topic_t *topic = (pres_topic_t *)hr_strmap_get(&presence->topics, name, len);
    size_t total = topic ? topic->nmembers : 0, shown = 0;
    for (hr_list_t *it = topic ? topic->members.next : NULL; it && it != &topic->members;
         it = it->next) {
        if (shown++ == limit) break;
        pres_member_t *member = hr_container_of(it, pres_member_t, topic_link);
        fn(arg, member->user, member->user_len, member->count);
    }
    pthread_mutex_unlock(&presence->lock);
    return total;
}

void hr_presence_stats(hr_presence_t *presence, hr_presence_stats_t *stats)
{
    pthread_mutex_lock(&presence->lock);
    stats->users = presence->users.count;
    stats->memberships = presence->members.count;
    stats->topics = presence->topics.count;
    stats->seen_cached = presence->seen_map.count;
    pthread_mutex_unlock(&presence->lock);
}

void hr_presence_snapshot(hr_presence_t *presence,
                          void (*user_fn)(void *arg, const char *user, size_t len, unsigned conns,
                                          unsigned via_mask),
                          void (*member_fn)(void *arg, const char *topic, size_t topic_len,
                                            const char *user, size_t user_len),
                          void (*done)(void *arg, void *done_arg), void *arg, void *done_arg)
{
    pthread_mutex_lock(&presence->lock);
    for (size_t i = 0; i < presence->users.nbuckets; i++)
        for (hr_strmap_node_t *node = presence->users.buckets[i]; node; node = node->next) {
            pres_user_t *user = (pres_user_t *)node;
            user_fn(arg, user->name, user->len, user->conns, via_mask(user));
        }
    for (size_t i = 0; i < presence->members.nbuckets; i++)
        for (hr_strmap_node_t *node = presence->members.buckets[i]; node; node = node->next) {
            pres_member_t *member = (pres_member_t *)node;
            member_fn(arg, member->topic->name, member->topic->len, member->user, member->user_len);
        }
    done(arg, done_arg);
    pthread_mutex_unlock(&presence->lock);
}
