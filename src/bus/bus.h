/* Cluster mode: several herald nodes share topics, ids and history through Redis.
 *
 * Ids come from one Redis counter, so they stay one increasing sequence across topics and
 * nodes and a single id still resumes any set of topics. A publish runs one Lua script: take
 * the next id, append the message to the topic's stream (XADD with MAXLEN ~), PUBLISH it on the
 * topic's channel. Because the script is atomic, the order of messages on every node's
 * subscription connection is the order of their ids.
 *
 * A node subscribes on Redis only to topics it has local subscribers for (the broker asks with
 * its want/unwant hooks). Loading a topic's history (XREVRANGE) and subscribing happen on two
 * connections; a barrier message PUBLISHed in the same MULTI as the reads tells the node when
 * every live message older than the reads has arrived, so history and live feed meet with no
 * gap and no duplicate. After Redis comes back, every wanted topic is resubscribed and the gap
 * filled from its stream the same way.
 *
 * Threading: the bus has its own thread and libuv loop (hiredis async on it). Workers hand it
 * publishes and the broker its wants through a locked queue; results go back through the
 * broker's per-worker inbox (hr_broker_post). */
#ifndef HR_BUS_H
#define HR_BUS_H

#include <stddef.h>
#include <stdint.h>

#include "core/broker.h"

typedef struct hr_bus_s hr_bus_t;

typedef struct hr_bus_config_s {
    const char *url;        /* redis://[:password@]host[:port][/db] or unix:///path */
    const char *prefix;     /* key and channel prefix: several deployments share a Redis */
    size_t history_size;    /* stream MAXLEN ~ and the messages loaded per topic */
    int64_t history_ttl_ms; /* a stream idle this long expires (PEXPIRE); 0 = never */
    unsigned workers;
    int64_t timeout_ms; /* Redis silent this long while a command waits: reconnect */
} hr_bus_config_t;

enum hr_bus_status {
    HR_BUS_OK,
    HR_BUS_CONFLICT,    /* the requested id is not above every id so far */
    HR_BUS_UNAVAILABLE, /* Redis is down, or the connection went before the answer */
    HR_BUS_IDSPACE,     /* the shared counter reached 2^53 - 1 */
    HR_BUS_OFFLINE,     /* a signal to a user with no live connection on any node */
};

typedef struct hr_bus_item_s {
    char *topic;
    size_t topic_len;
    uint64_t id; /* assigned */
} hr_bus_item_t;

/* One publish to n topics. Filled by the caller; the bus sets ids and status, then runs
 * `post` on `worker` through the broker. */
typedef struct hr_bus_pub_s {
    hr_post_t post;
    unsigned worker;
    hr_bus_item_t *items;
    size_t n;
    const char *event; /* may be "" */
    size_t event_len;
    const char *data;
    size_t data_len;
    uint32_t retry_ms;
    int binary;
    uint64_t want_id; /* 0 = next id */
    int require_user; /* a signal: refused (HR_BUS_OFFLINE) unless its user is online */
    int64_t time_ms;
    enum hr_bus_status status;
    size_t answered; /* bus thread: replies so far */
} hr_bus_pub_t;

/* Parses the config; on error returns NULL with a reason. Connects only on start. */
hr_bus_t *hr_bus_new(const hr_bus_config_t *config, hr_broker_t *broker, char *err,
                     size_t err_size);
/* Installs the broker hooks and starts the bus thread, which connects (and reconnects). */
int hr_bus_start(hr_bus_t *bus);
/* After the workers have stopped: disconnects, stops the thread, frees. */
void hr_bus_free(hr_bus_t *bus);

/* Whether both Redis connections are up. Any thread. */
int hr_bus_up(const hr_bus_t *bus);
/* Whether the last publish Redis answered failed (a script error, the id space, a timeout):
 * the node is up but cannot publish. Cleared by the next success or a reconnect. Any thread. */
int hr_bus_failing(const hr_bus_t *bus);
/* From a worker: queues the publish, or returns HR_EUNAVAIL at once when Redis is down. */
int hr_bus_publish(hr_bus_t *bus, hr_bus_pub_t *pub);

/* Any Redis command (presence uses its own scripts): argv copied at creation. With `done`,
 * the reply (as JSON: strings, integers, arrays, null; NULL after an error, with `error` set)
 * comes back on `worker` and the caller frees; without, the bus frees it after the reply. */
typedef struct hr_bus_cmd_s hr_bus_cmd_t;
struct hr_bus_cmd_s {
    hr_post_t post;
    unsigned worker;
    void (*done)(hr_bus_cmd_t *cmd);     /* NULL: fire and forget */
    void (*on_reply)(hr_bus_cmd_t *cmd); /* optional: runs on the bus thread first */
    void *user;
    struct json_t *reply;
    int error; /* Redis answered an error, or was down */
    int argc;
    char **argv;
    size_t *lens;
};

hr_bus_cmd_t *hr_bus_cmd_new(int argc, const char *const *argv, const size_t *lens);
/* EVALSHA sha 0, then `head` (strings: the script's fixed arguments), then `extra` (bytes;
 * extra_lens NULL: strings). */
hr_bus_cmd_t *hr_bus_script_cmd(const char *sha, const char *const *head, size_t nhead,
                                const char *const *extra, const size_t *extra_lens, size_t nextra);
void hr_bus_cmd_free(hr_bus_cmd_t *cmd);
/* Queues the command; HR_EUNAVAIL when Redis is down (nothing queued: the caller frees). */
int hr_bus_command(hr_bus_t *bus, hr_bus_cmd_t *cmd);
/* Before hr_bus_start: `fn` runs on the bus thread each time Redis is (again) ready, after
 * the topics were resubscribed (presence sends its whole state then). At most 4 hooks, run
 * in the order added; -1 when full. */
int hr_bus_on_ready(hr_bus_t *bus, void (*fn)(void *arg), void *arg);
/* Before hr_bus_start: a script loaded on every (re)connect; its SHA1 (hex) into sha. */
int hr_bus_add_script(hr_bus_t *bus, const char *lua, char sha[41]);
/* The same for n scripts at once (a module's set); -1 when they do not all fit. */
int hr_bus_add_scripts(hr_bus_t *bus, const char *const *lua, size_t n, char (*sha)[41]);

typedef struct hr_bus_stats_s {
    int up;
    uint64_t published; /* publishes this node made */
    uint64_t received;  /* messages that came in on subscribed channels */
    uint64_t reconnects;
    size_t channels;  /* topics subscribed on Redis */
    const char *node; /* this node's name on Redis (its barrier channel, CLIENT SETNAME) */
} hr_bus_stats_t;

void hr_bus_stats(const hr_bus_t *bus, hr_bus_stats_t *stats);

#endif
