/* Presence (docs/PRESENCE.md): which users are connected, on which transports, in which topics,
 * and when each was last seen. A connection with an identity (a token's sub, or ?user= with
 * --presence-anonymous) registers here; transitions leave through a sink: in one process the
 * sink publishes herald.join/herald.leave on the topic's presence stream and writes last-seen to
 * the store, in cluster mode it hands them to Redis (presence_redis.c), which owns the view
 * across nodes.
 *
 * No flapping: a user (or a user's membership of a topic) whose last connection drops is kept
 * for --presence-grace before it counts as gone, so a reconnect inside that window makes no
 * leave/join pair. Several devices: a user is online while any connection is.
 *
 * Threading: every worker calls in; one mutex guards the registry. Sinks run under it, in
 * transition order, and must only queue or publish (the lock order is presence, then broker).
 * Memory: an entry per online user and per (topic, user) membership, so --max-conns bounds it;
 * last-seen times of users gone offline are cached up to HR_PRESENCE_SEEN_CACHE entries (older
 * ones live only in the store). */
#ifndef HR_PRESENCE_H
#define HR_PRESENCE_H

#include <stddef.h>
#include <stdint.h>

#include "core/list.h"

#define HR_PRESENCE_TOPIC_PREFIX "~presence:" /* a topic's join/leave stream */
#define HR_SIGNAL_TOPIC_PREFIX   "~signal:"   /* a user's WebRTC signals */
#define HR_PRESENCE_USER_MAX     120          /* "~signal:" + id fits a topic name */
#define HR_PRESENCE_TOPIC_MAX    118          /* "~presence:" + name fits a topic name */
#define HR_PRESENCE_SEEN_CACHE   65536
#define HR_PRESENCE_QUERY_MAX    1000 /* ids in one POST /v1/presence/query */

enum hr_presence_via { HR_VIA_SSE, HR_VIA_WS, HR_VIA_POLL, HR_VIA_COUNT };

typedef struct hr_presence_s hr_presence_t;
struct pres_user_s;
struct pres_member_s;

/* Where transitions go. Called under the presence lock, in order; must not call back in. */
typedef struct hr_presence_sink_s {
    /* A user's connections here changed: conns 0 means gone (after the grace). */
    void (*user_state)(void *arg, const char *user, size_t len, unsigned conns, unsigned via_mask);
    /* A user joined (after having none) or left (after the grace) a topic here. */
    void (*member)(void *arg, const char *topic, size_t topic_len, const char *user,
                   size_t user_len, int joined);
    /* Last-seen time to keep: on going offline, and every --last-seen-interval while online. */
    void (*seen)(void *arg, const char *user, size_t len, int64_t unix_ms);
    void *arg;
} hr_presence_sink_t;

/* A connection's presence, embedded in the transport's object; zeroed = not registered. */
typedef struct hr_presence_conn_s {
    struct pres_user_s *user;
    enum hr_presence_via via;
    struct pres_member_s **members; /* topics this connection counts in */
    size_t nmembers, cap;
} hr_presence_conn_t;

typedef struct hr_presence_info_s {
    int online;
    unsigned conns;
    unsigned via_mask;    /* 1 << hr_presence_via */
    int64_t last_seen_ms; /* unix ms; 0 = never seen */
} hr_presence_info_t;

typedef struct hr_presence_config_s {
    int64_t grace_ms;
    int64_t seen_interval_ms;
    /* Last-seen times older than the cache: NULL, or the store's reader. */
    int (*seen_read)(void *arg, const char *user, size_t len, int64_t *unix_ms);
    void *seen_read_arg;
} hr_presence_config_t;

hr_presence_t *hr_presence_new(const hr_presence_config_t *config, const hr_presence_sink_t *sink);
void hr_presence_free(hr_presence_t *presence);

/* Whether `user` can be a presence identity (1..120 bytes of the topic alphabet). */
int hr_presence_user_valid(const char *user, size_t len);
/* Whether a topic name belongs to herald (presence and signal streams): clients may neither
 * publish to it nor name it in a subscription. */
int hr_presence_reserved(const char *name, size_t len);
/* "~presence:" + topic, or "~signal:" + user, into out (129 bytes); 0 when too long. */
size_t hr_presence_topic(const char *topic, size_t len, char *out);
size_t hr_signal_topic(const char *user, size_t len, char *out);

/* A connection of `user` opened (or a long poll parked). Returns 0 or HR_ENOMEM. */
int hr_presence_connect(hr_presence_t *presence, hr_presence_conn_t *conn, const char *user,
                        size_t len, enum hr_presence_via via);
/* The connection counts in `topic` (idempotent). Returns 0 or HR_ENOMEM. */
int hr_presence_join(hr_presence_t *presence, hr_presence_conn_t *conn, const char *topic,
                     size_t len);
void hr_presence_leave(hr_presence_t *presence, hr_presence_conn_t *conn, const char *topic,
                       size_t len);
/* Leaves every topic and drops the connection; idempotent. */
void hr_presence_disconnect(hr_presence_t *presence, hr_presence_conn_t *conn);

/* Once a second, from one thread: ends graces that ran out, refreshes last-seen. */
void hr_presence_sweep(hr_presence_t *presence);

/* This process's view (the whole truth in one process). */
void hr_presence_user(hr_presence_t *presence, const char *user, size_t len,
                      hr_presence_info_t *info);
/* Whether `user` has a connection here (or is in its grace): no last-seen lookup. */
int hr_presence_online(hr_presence_t *presence, const char *user, size_t len);
/* Calls fn for up to `limit` members of `topic` (users, with their connections in it); returns
 * how many members it has in all. */
size_t hr_presence_members(hr_presence_t *presence, const char *topic, size_t len, size_t limit,
                           void (*fn)(void *arg, const char *user, size_t len, unsigned conns),
                           void *arg);

/* Walks every user (online or in its grace) and membership under the lock, then calls done
 * (arg, done_arg) still under it: what done queues goes ahead of any later transition. */
void hr_presence_snapshot(hr_presence_t *presence,
                          void (*user)(void *arg, const char *user, size_t len, unsigned conns,
                                       unsigned via_mask),
                          void (*member)(void *arg, const char *topic, size_t topic_len,
                                         const char *user, size_t user_len),
                          void (*done)(void *arg, void *done_arg), void *arg, void *done_arg);

typedef struct hr_presence_stats_s {
    size_t users;       /* online or in grace */
    size_t memberships; /* (topic, user) pairs */
    size_t topics;
    size_t seen_cached;
} hr_presence_stats_t;

void hr_presence_stats(hr_presence_t *presence, hr_presence_stats_t *stats);

/* Transports' names for via_mask bits, as the API shows them. */
extern const char *const hr_presence_via_names[HR_VIA_COUNT];

#endif
