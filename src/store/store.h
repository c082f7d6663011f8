/* The durable log behind the broker's in-memory history. The broker keeps each topic's recent
 * messages in memory (the read path: resumes and history reads never touch the disk); a store
 * makes them survive a restart. Two stores: memory (nothing survives; the default without
 * --data-dir) and SQLite (WAL, one writer thread, group commit).
 *
 * Threading: append is called by the broker under its lock, in id order, and only queues; the
 * store's own thread writes. durable_id and refuse_until_ms are read from any thread. */
#ifndef HR_STORE_H
#define HR_STORE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "core/msg.h"

enum hr_durability {
    HR_DURABLE_OFF,   /* answer a publish at once; a crash may lose the last few ms */
    HR_DURABLE_BATCH, /* answer after the group commit that holds it (fsync'd) */
    HR_DURABLE_SYNC,  /* as batch, but commit at once rather than gathering for batch_ms */
};

typedef struct hr_store_s hr_store_t;

/* Startup: what load hands back, topic by topic, each topic's messages in ascending id. */
typedef struct hr_store_sink_s {
    /* A topic and its floor (the highest id trimmed away: older ids are gone for good). */
    int (*topic)(void *arg, const char *name, size_t len, uint64_t floor_id);
    /* A message of the topic last announced; takes the reference. */
    int (*message)(void *arg, hr_msg_t *msg);
    void *arg;
} hr_store_sink_t;

/* A device token row (src/push/devices.c); body is the device's JSON. */
typedef struct hr_store_device_s {
    const char *token;
    size_t token_len;
    const char *user;
    size_t user_len;
    const char *body;
    size_t body_len;
    int64_t updated_ms;
} hr_store_device_t;

/* A response pool's stored answer (src/pool): its store key ("POOL KEY"), type and bytes. */
typedef struct hr_store_pool_row_s {
    const char *key;
    size_t key_len;
    const char *type;
    const char *body;
    size_t body_len;
    int64_t born_ms;
} hr_store_pool_row_t;

typedef struct hr_store_ops_s {
    const char *name;
    /* Reads every retained topic and up to `per_topic` newest messages of each. */
    int (*load)(hr_store_t *store, size_t per_topic, const hr_store_sink_t *sink);
    /* Reads up to `limit` messages of one topic after `since`, ascending. */
    int (*read_since)(hr_store_t *store, const char *topic, size_t len, uint64_t since,
                      size_t limit, int (*fn)(void *arg, hr_msg_t *msg), void *arg);
    /* After load: start writing (the SQLite store's writer thread). */
    int (*start)(hr_store_t *store);
    /* Queues `msg` (takes a reference); never waits on the disk. */
    void (*append)(hr_store_t *store, hr_msg_t *msg);
    /* Writes what is queued, stops the store's thread, frees everything. */
    void (*close)(hr_store_t *store);
    /* Presence's last-seen times (NULL in a store that keeps none): put queues (the store's
     * thread writes batches; the newest time wins), get reads one (0 and *unix_ms = 0 when the
     * user was never seen; -1 on error). Any thread. */
    void (*seen_put)(hr_store_t *store, const char *user, size_t len, int64_t unix_ms);
    int (*seen_get)(hr_store_t *store, const char *user, size_t len, int64_t *unix_ms);
    /* Push's device tokens (NULL in a store that keeps none): each a short transaction on the
     * store's second connection (WAL, synchronous=NORMAL: it survives kill -9, not a power
     * cut), from any thread. each: every row, least recently updated first (start-up). */
    int (*device_put)(hr_store_t *store, const hr_store_device_t *row);
    int (*device_del)(hr_store_t *store, const char *token, size_t len);
    int (*device_each)(hr_store_t *store, int (*fn)(void *arg, const hr_store_device_t *row),
                       void *arg);
    /* Delayed messages (src/delay), on the same second connection: put returns the row id; a
     * message published with that delayed_id deletes the row in its own write (append). */
    int (*delayed_put)(hr_store_t *store, int64_t due_ms, const char *request, uint64_t *id);
    int (*delayed_del)(hr_store_t *store, uint64_t id);
    int (*delayed_each)(hr_store_t *store,
                        int (*fn)(void *arg, uint64_t id, int64_t due_ms, const char *request),
                        void *arg);
    /* The response pools' answers (a cache: a snapshot, not a log), on the second connection:
     * save replaces every row in one transaction; each reads them, oldest first. */
    int (*pool_save)(hr_store_t *store, const hr_store_pool_row_t *rows, size_t n);
    int (*pool_each)(hr_store_t *store, int (*fn)(void *arg, const hr_store_pool_row_t *row),
                     void *arg);
} hr_store_ops_t;

#define HR_STORE_FAILED_RANGES 16

struct hr_store_s {
    const hr_store_ops_t *ops;
    enum hr_durability durability;
    _Atomic uint64_t durable_id;     /* the newest batch written: ids up to here are on disk,
                                        except those in a failed range */
    _Atomic int64_t refuse_until_ms; /* after a failed write, publishes are refused until then */
    pthread_mutex_t failed_lock;     /* guards failed[] */
    struct {
        uint64_t first, last;
    } failed[HR_STORE_FAILED_RANGES]; /* the latest failed writes, a ring */
    unsigned nfailed;                 /* failed writes so far; failed[nfailed % RANGES] next */
    /* Called from the store's thread after durable_id or failed_id moved. */
    void (*notify)(void *arg);
    void *notify_arg;
};

typedef struct hr_store_config_s {
    const char *data_dir; /* NULL or "": the memory store */
    enum hr_durability durability;
    int64_t batch_ms;       /* longest a batch-mode commit waits to gather more */
    size_t history_size;    /* retention: messages per topic */
    int64_t history_ttl_ms; /* retention: age; 0 = none */
    uint64_t max_bytes;     /* database size limit; 0 = none (SQLITE_FULL above) */
} hr_store_config_t;

/* Opens the store the config names. On failure returns NULL and writes why into `err`. */
hr_store_t *hr_store_open(const hr_store_config_t *config, char *err, size_t err_size);

hr_store_t *hr_store_memory_new(void);
hr_store_t *hr_store_sqlite_open(const hr_store_config_t *config, char *err, size_t err_size);

void hr_store_init(hr_store_t *store, const hr_store_ops_t *ops, enum hr_durability durability);
void hr_store_destroy(hr_store_t *store);
/* A write of ids first..last failed: their publishers are told, new publishes are refused for
 * a moment. From the store's thread. */
void hr_store_mark_failed(hr_store_t *store, uint64_t first, uint64_t last, int64_t refuse_ms);
/* Whether `id` was in a failed write (among the latest HR_STORE_FAILED_RANGES). */
int hr_store_failed(hr_store_t *store, uint64_t id);

/* Whether a publish should be refused now (a recent write failed: disk full, I/O error). */
int hr_store_refusing(const hr_store_t *store);
/* Whether publishers wait for durable_id before their answer. */
static inline int hr_store_waits(const hr_store_t *store)
{
    return store && store->durability != HR_DURABLE_OFF && store->ops->read_since != NULL;
}

#endif
