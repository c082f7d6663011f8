/* The SQLite store: one database file in --data-dir, WAL journal, one writer thread that owns
 * the connection after start-up. Appends go to a queue (a mutex and a condition variable); the
 * writer takes everything queued, writes it in one transaction (group commit), publishes the
 * new durable id and notifies. Once a second it trims each touched topic to the retention
 * limits and records the topic's floor (the highest id trimmed), so a resume from an older id
 * is told of the gap after a restart too.
 *
 * Schema (PRAGMA user_version 2):
 *   messages(id INTEGER PRIMARY KEY, topic TEXT, time_ms, event TEXT, data BLOB, retry_ms, binary)
 *   messages_topic ON messages(topic, id)
 *   topics(name TEXT PRIMARY KEY, floor_id INTEGER)
 *   last_seen(user TEXT PRIMARY KEY, seen_ms INTEGER)   presence (src/presence), version 2
 *   devices(token TEXT PRIMARY KEY, user, body TEXT, updated_ms)   push (src/push), version 3
 *   delayed(id INTEGER PRIMARY KEY, due_ms, request TEXT)   src/delay, version 4: a row goes in
 *     the transaction that stores the message it became (messages carry its delayed_id)
 *   pool_members(key TEXT, type TEXT, body BLOB, born_ms)   src/pool, version 5: a snapshot
 *
 * Devices are written from workers on a second connection (`aux`, synchronous=NORMAL): one
 * short transaction each, never inside the writer's batches, durable against kill -9. */
#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/clock.h"
#include "core/id.h"
#include "core/log.h"
#include "store/store.h"

#define SCHEMA_VERSION 5
#define TRIM_EVERY_MS  1000
#define REFUSE_MS      1000   /* after a failed write, refuse publishes this long */
#define SEEN_QUEUE_MAX 100000 /* last-seen times waiting for the writer; more are dropped */

typedef struct seen_item_s {
    char *user;
    int64_t unix_ms;
} seen_item_t;

typedef struct sqlite_store_s {
    hr_store_t base;
    hr_store_config_t config;
    sqlite3 *db;
    sqlite3 *aux; /* devices, from any thread (see the top) */
    sqlite3_stmt *insert;
    sqlite3_stmt *retire; /* DELETE FROM delayed WHERE id = ? (writer thread) */
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    hr_msg_t **queue; /* appended, not yet written; under lock */
    size_t count, capacity;
    int stopping;
    char **touched; /* topic names written since the last trim; writer thread only */
    size_t ntouched, touched_cap;
    seen_item_t *seen; /* last-seen times queued; under lock */
    size_t nseen, seen_cap;
    uint64_t seen_dropped;
} sqlite_store_t;

static int exec(sqlite_store_t *store, const char *sql, char *err, size_t err_size)
{
    char *message = NULL;
    if (sqlite3_exec(store->db, sql, NULL, NULL, &message) == SQLITE_OK) return 0;
    if (err) snprintf(err, err_size, "%s", message ? message : sqlite3_errmsg(store->db));
    sqlite3_free(message);
    return -1;
}

static const char *const migrations[SCHEMA_VERSION] = {
    /* 0 -> 1 */
    "CREATE TABLE messages (id INTEGER PRIMARY KEY, topic TEXT NOT NULL, time_ms INTEGER NOT NULL,"
    " event TEXT NOT NULL, data BLOB NOT NULL, retry_ms INTEGER NOT NULL,"
    " binary INTEGER NOT NULL);"
    "CREATE INDEX messages_topic ON messages (topic, id);"
    "CREATE TABLE topics (name TEXT PRIMARY KEY, floor_id INTEGER NOT NULL DEFAULT 0);",
    /* 1 -> 2 */
    "CREATE TABLE last_seen (user TEXT PRIMARY KEY, seen_ms INTEGER NOT NULL) WITHOUT ROWID;",
    /* 2 -> 3 */
    "CREATE TABLE devices (token TEXT PRIMARY KEY, user TEXT NOT NULL, body TEXT NOT NULL,"
    " updated_ms INTEGER NOT NULL);"
    "CREATE INDEX devices_updated ON devices (updated_ms);",
    /* 3 -> 4 */
    "CREATE TABLE delayed (id INTEGER PRIMARY KEY AUTOINCREMENT, due_ms INTEGER NOT NULL,"
    " request TEXT NOT NULL);",
    /* 4 -> 5 */
    "CREATE TABLE pool_members (key TEXT NOT NULL, type TEXT NOT NULL, body BLOB NOT NULL,"
    " born_ms INTEGER NOT NULL);",
};

/* Brings the schema to SCHEMA_VERSION, one transaction per step. */
static int migrate(sqlite_store_t *store, char *err, size_t err_size)
{
    sqlite3_stmt *stmt;
    if (sqlite3_prepare_v2(store->db, "PRAGMA user_version", -1, &stmt, NULL) != SQLITE_OK ||
        sqlite3_step(stmt) != SQLITE_ROW) {
        snprintf(err, err_size, "cannot read the schema version: %s", sqlite3_errmsg(store->db));
        sqlite3_finalize(stmt);
        return -1;
    }
    int version = sqlite3_column_int(stmt, 0);
    sqlite3_finalize(stmt);
    if (version > SCHEMA_VERSION) {
        snprintf(err, err_size, "database schema %d is newer than this herald (%d)", version,
                 SCHEMA_VERSION);
        return -1;
    }
    for (; version < SCHEMA_VERSION; version++) {
        char sql[128];
        snprintf(sql, sizeof sql, "PRAGMA user_version = %d", version + 1);
        if (exec(store, "BEGIN", err, err_size) ||
            exec(store, migrations[version], err, err_size) || exec(store, sql, err, err_size) ||
            exec(store, "COMMIT", err, err_size)) {
            exec(store, "ROLLBACK", NULL, 0);
            return -1;
        }
        hr_info("store.migrated", "schema=%d", version + 1);
    }
    return 0;
}

/* Earlier herald accepted any int64 as a chosen id and could wrap the sequence negative; such
 * rows would stall every resuming client and pin the sequence at its end. They are dropped
 * (logged) so the broker starts from the last valid id. */
static int drop_bad_ids(sqlite_store_t *store, char *why, size_t why_size)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "DELETE FROM messages WHERE id <= 0 OR id > %llu;"
             " UPDATE topics SET floor_id = 0 WHERE floor_id < 0 OR floor_id > %llu;",
             (unsigned long long)HR_ID_MAX, (unsigned long long)HR_ID_MAX);
    int before = sqlite3_total_changes(store->db);
    if (exec(store, sql, why, why_size) != 0) return -1;
    int dropped = sqlite3_total_changes(store->db) - before;
    if (dropped)
        hr_warn("store.bad_ids_dropped", "rows=%d max_id=%llu", dropped,
                (unsigned long long)HR_ID_MAX);
    return 0;
}

static int open_db(sqlite_store_t *store, char *err, size_t err_size)
{
    const char *dir = store->config.data_dir;
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        snprintf(err, err_size, "cannot create data dir %s: %s", dir, strerror(errno));
        return -1;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/herald.db", dir);
    if (sqlite3_open_v2(path, &store->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
        SQLITE_OK) {
        snprintf(err, err_size, "cannot open %s: %s", path, sqlite3_errmsg(store->db));
        return -1;
    }
    sqlite3_busy_timeout(store->db, 5000);
    const char *sync = store->config.durability == HR_DURABLE_OFF ? "NORMAL" : "FULL";
    char pragmas[256];
    snprintf(pragmas, sizeof pragmas,
             "PRAGMA journal_mode = WAL; PRAGMA synchronous = %s; PRAGMA foreign_keys = OFF;",
             sync);
    char why[512] = "";
    if (exec(store, pragmas, why, sizeof why) != 0) {
        snprintf(err, err_size, "%s is not a usable database: %s", path, why);
        return -1;
    }
    /* A torn or foreign file is refused here, at start, rather than at the first publish. */
    sqlite3_stmt *check;
    int ok = sqlite3_prepare_v2(store->db, "PRAGMA quick_check", -1, &check, NULL) == SQLITE_OK &&
             sqlite3_step(check) == SQLITE_ROW &&
             strcmp((const char *)sqlite3_column_text(check, 0), "ok") == 0;
    sqlite3_finalize(check);
    if (!ok) {
        snprintf(err, err_size, "%s failed its integrity check: %s", path,
                 sqlite3_errmsg(store->db));
        return -1;
    }
    if (migrate(store, why, sizeof why) != 0 || drop_bad_ids(store, why, sizeof why) != 0) {
        snprintf(err, err_size, "%s: %s", path, why);
        return -1;
    }
    if (store->config.max_bytes) {
        /* 4096: SQLite's default page size, used by every database herald creates. */
        snprintf(pragmas, sizeof pragmas, "PRAGMA max_page_count = %llu",
                 (unsigned long long)(store->config.max_bytes / 4096
                                          ? store->config.max_bytes / 4096
                                          : 1));
        if (exec(store, pragmas, why, sizeof why)) {
            snprintf(err, err_size, "%s: %s", path, why);
            return -1;
        }
    }
    if (sqlite3_prepare_v2(
            store->db,
            "INSERT INTO messages (id, topic, time_ms, event, data, retry_ms, binary)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            -1, &store->insert, NULL) != SQLITE_OK) {
        snprintf(err, err_size, "%s: %s", path, sqlite3_errmsg(store->db));
        return -1;
    }
    if (sqlite3_prepare_v2(store->db, "DELETE FROM delayed WHERE id = ?", -1, &store->retire,
                           NULL) != SQLITE_OK) {
        snprintf(err, err_size, "%s: %s", path, sqlite3_errmsg(store->db));
        return -1;
    }
    if (sqlite3_open_v2(path, &store->aux, SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX, NULL) !=
            SQLITE_OK ||
        sqlite3_exec(store->aux, "PRAGMA synchronous = NORMAL", NULL, NULL, NULL) != SQLITE_OK) {
        snprintf(err, err_size, "%s: second connection: %s", path, sqlite3_errmsg(store->aux));
        return -1;
    }
    sqlite3_busy_timeout(store->aux, 5000);
    return 0;
}

static hr_msg_t *row_to_msg(sqlite3_stmt *stmt)
{
    const char *event = (const char *)sqlite3_column_text(stmt, 2);
    const void *data = sqlite3_column_blob(stmt, 3);
    size_t event_len = (size_t)sqlite3_column_bytes(stmt, 2);
    size_t data_len = (size_t)sqlite3_column_bytes(stmt, 3);
    hr_msg_t *msg =
        hr_msg_new(event ? event : "", event ? event_len : 0, data ? data : "", data ? data_len : 0,
                   (uint32_t)sqlite3_column_int64(stmt, 4), sqlite3_column_int(stmt, 5));
    if (!msg) return NULL;
    msg->id = (uint64_t)sqlite3_column_int64(stmt, 0);
    msg->time_ms = sqlite3_column_int64(stmt, 1);
    return msg;
}

/* Calls fn for each row of a prepared message query (columns as in row_to_msg). */
static int each_msg(sqlite3_stmt *stmt, int (*fn)(void *arg, hr_msg_t *msg), void *arg)
{
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        hr_msg_t *msg = row_to_msg(stmt);
        if (!msg || fn(arg, msg) != 0) return -1;
    }
    return rc == SQLITE_DONE ? 0 : -1;
}

#define MSG_COLUMNS "id, time_ms, event, data, retry_ms, binary"

static int sqlite_read_since(hr_store_t *base, const char *topic, size_t len, uint64_t since,
                             size_t limit, int (*fn)(void *arg, hr_msg_t *msg), void *arg)
{
    sqlite_store_t *store = (sqlite_store_t *)base;
    sqlite3_stmt *stmt;
    if (sqlite3_prepare_v2(store->db,
                           "SELECT " MSG_COLUMNS " FROM messages WHERE topic = ? AND id > ?"
                           " ORDER BY id LIMIT ?",
                           -1, &stmt, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_text(stmt, 1, topic, (int)len, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 2, (sqlite3_int64)since);
    sqlite3_bind_int64(stmt, 3, (sqlite3_int64)limit);
    int rc = each_msg(stmt, fn, arg);
    sqlite3_finalize(stmt);
    return rc;
}

/* One topic: its floor (raised to the newest message beyond `per_topic`), then its messages. */
static int load_topic(sqlite_store_t *store, const char *name, uint64_t floor_id, size_t per_topic,
                      const hr_store_sink_t *sink)
{
    sqlite3_stmt *beyond, *rows;
    int rc = -1;
    if (sqlite3_prepare_v2(store->db,
                           "SELECT id FROM messages WHERE topic = ? ORDER BY id DESC"
                           " LIMIT 1 OFFSET ?",
                           -1, &beyond, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_text(beyond, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(beyond, 2, (sqlite3_int64)per_topic);
    if (sqlite3_step(beyond) == SQLITE_ROW) {
        uint64_t dropped = (uint64_t)sqlite3_column_int64(beyond, 0);
        if (dropped > floor_id) floor_id = dropped;
    }
    sqlite3_finalize(beyond);
    if (sink->topic(sink->arg, name, strlen(name), floor_id) != 0) return -1;
    if (sqlite3_prepare_v2(store->db,
                           "SELECT " MSG_COLUMNS " FROM (SELECT * FROM messages WHERE topic = ?"
                           " ORDER BY id DESC LIMIT ?) ORDER BY id",
                           -1, &rows, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_text(rows, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(rows, 2, (sqlite3_int64)per_topic);
    rc = each_msg(rows, sink->message, sink->arg);
    sqlite3_finalize(rows);
    return rc;
}

static int sqlite_load(hr_store_t *base, size_t per_topic, const hr_store_sink_t *sink)
{
    sqlite_store_t *store = (sqlite_store_t *)base;
    sqlite3_stmt *topics;
    if (sqlite3_prepare_v2(store->db,
                           "SELECT t.name, coalesce((SELECT floor_id FROM topics WHERE name ="
                           " t.name), 0) FROM (SELECT name FROM topics UNION SELECT DISTINCT"
                           " topic FROM messages) AS t",
                           -1, &topics, NULL) != SQLITE_OK)
        return -1;
    int rc = 0, step;
    size_t ntopics = 0;
    while (rc == 0 && (step = sqlite3_step(topics)) == SQLITE_ROW) {
        rc = load_topic(store, (const char *)sqlite3_column_text(topics, 0),
                        (uint64_t)sqlite3_column_int64(topics, 1), per_topic, sink);
        ntopics++;
    }
    sqlite3_finalize(topics);
    if (rc == 0) hr_info("store.loaded", "topics=%zu", ntopics);
    return rc;
}

static void sqlite_append(hr_store_t *base, hr_msg_t *msg)
{
    sqlite_store_t *store = (sqlite_store_t *)base;
    pthread_mutex_lock(&store->lock);
    if (store->count == store->capacity) {
        size_t capacity = store->capacity ? store->capacity * 2 : 1024;
        hr_msg_t **queue = realloc(store->queue, capacity * sizeof *queue);
        if (!queue) {
            /* Not queued means not durable: the publisher's wait ends in an error. */
            pthread_mutex_unlock(&store->lock);
            hr_store_mark_failed(&store->base, msg->id, msg->id, 0);
            if (store->base.notify) store->base.notify(store->base.notify_arg);
            return;
        }
        store->queue = queue;
        store->capacity = capacity;
    }
    store->queue[store->count++] = hr_msg_ref(msg);
    if (store->count == 1) pthread_cond_signal(&store->wake);
    pthread_mutex_unlock(&store->lock);
}

static void remember_topic(sqlite_store_t *store, const char *name)
{
    if (store->ntouched == store->touched_cap) {
        size_t cap = store->touched_cap ? store->touched_cap * 2 : 64;
        char **touched = realloc(store->touched, cap * sizeof *touched);
        if (!touched) return; /* trimmed later, at its next write */
        store->touched = touched;
        store->touched_cap = cap;
    }
    char *copy = strdup(name);
    if (copy) store->touched[store->ntouched++] = copy;
}

/* One transaction for the batch; on failure nothing of it is kept (and its publishers hear). */
static void write_batch(sqlite_store_t *store, hr_msg_t **batch, size_t n)
{
    uint64_t last = batch[n - 1]->id;
    int ok = exec(store, "BEGIN IMMEDIATE", NULL, 0) == 0;
    for (size_t i = 0; ok && i < n; i++) {
        hr_msg_t *msg = batch[i];
        sqlite3_stmt *ins = store->insert;
        sqlite3_bind_int64(ins, 1, (sqlite3_int64)msg->id);
        sqlite3_bind_text(ins, 2, msg->topic_name, -1, SQLITE_STATIC);
        sqlite3_bind_int64(ins, 3, msg->time_ms);
        sqlite3_bind_text(ins, 4, msg->event, -1, SQLITE_STATIC);
        sqlite3_bind_blob(ins, 5, msg->data, (int)msg->data_len, SQLITE_STATIC);
        sqlite3_bind_int64(ins, 6, msg->retry_ms);
        sqlite3_bind_int(ins, 7, msg->binary);
        ok = sqlite3_step(ins) == SQLITE_DONE;
        sqlite3_reset(ins);
        if (ok && msg->delayed_id) { /* delivered: its schedule goes with it, atomically */
            sqlite3_bind_int64(store->retire, 1, (sqlite3_int64)msg->delayed_id);
            ok = sqlite3_step(store->retire) == SQLITE_DONE;
            sqlite3_reset(store->retire);
        }
    }
    if (ok) ok = exec(store, "COMMIT", NULL, 0) == 0;
    if (ok) {
        atomic_store(&store->base.durable_id, last);
        const char *prev = NULL;
        for (size_t i = 0; i < n; i++) {
            if (prev != batch[i]->topic_name) remember_topic(store, batch[i]->topic_name);
            prev = batch[i]->topic_name;
        }
    } else {
        hr_error("store.write_failed", "messages=%zu last_id=%llu err=\"%s\"", n,
                 (unsigned long long)last, sqlite3_errmsg(store->db));
        exec(store, "ROLLBACK", NULL, 0);
        hr_store_mark_failed(&store->base, batch[0]->id, last, REFUSE_MS);
    }
    for (size_t i = 0; i < n; i++)
        hr_msg_unref(batch[i]);
    if (store->base.notify) store->base.notify(store->base.notify_arg);
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Keeps the newest history_size messages of one topic; the floor records what went. */
static int trim_topic(sqlite_store_t *store, const char *name)
{
    sqlite3_stmt *cut;
    if (sqlite3_prepare_v2(store->db,
                           "SELECT id FROM messages WHERE topic = ? ORDER BY id DESC"
                           " LIMIT 1 OFFSET ?",
                           -1, &cut, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_text(cut, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(cut, 2, (sqlite3_int64)store->config.history_size);
    int rc = sqlite3_step(cut);
    sqlite3_int64 cut_id = rc == SQLITE_ROW ? sqlite3_column_int64(cut, 0) : 0;
    sqlite3_finalize(cut);
    if (rc != SQLITE_ROW) return rc == SQLITE_DONE ? 0 : -1;
    sqlite3_stmt *floor, *del;
    int ok = sqlite3_prepare_v2(store->db,
                                "INSERT INTO topics (name, floor_id) VALUES (?1, ?2) ON CONFLICT"
                                " (name) DO UPDATE SET floor_id = max(floor_id, excluded.floor_id)",
                                -1, &floor, NULL) == SQLITE_OK;
    ok = ok && sqlite3_prepare_v2(store->db, "DELETE FROM messages WHERE topic = ? AND id <= ?", -1,
                                  &del, NULL) == SQLITE_OK;
    if (ok) {
        sqlite3_bind_text(floor, 1, name, -1, SQLITE_STATIC);
        sqlite3_bind_int64(floor, 2, cut_id);
        sqlite3_bind_text(del, 1, name, -1, SQLITE_STATIC);
        sqlite3_bind_int64(del, 2, cut_id);
        ok = sqlite3_step(floor) == SQLITE_DONE && sqlite3_step(del) == SQLITE_DONE;
    }
    sqlite3_finalize(floor);
    sqlite3_finalize(del);
    return ok ? 0 : -1;
}

/* Drops messages older than the TTL (ids and times rise together, so the oldest rows by id are
 * the oldest by time), at most 10,000 per pass; floors first. */
static int trim_age(sqlite_store_t *store)
{
    if (!store->config.history_ttl_ms) return 0;
    sqlite3_stmt *stmt;
    if (sqlite3_prepare_v2(store->db,
                           "SELECT max(id) FROM (SELECT id, time_ms FROM messages ORDER BY id"
                           " LIMIT 10000) WHERE time_ms < ?",
                           -1, &stmt, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_int64(stmt, 1, hr_clock_unix_ms() - store->config.history_ttl_ms);
    sqlite3_int64 cut_id = sqlite3_step(stmt) == SQLITE_ROW ? sqlite3_column_int64(stmt, 0) : 0;
    sqlite3_finalize(stmt);
    if (!cut_id) return 0;
    char sql[512];
    snprintf(sql, sizeof sql,
             "INSERT INTO topics (name, floor_id) SELECT topic, max(id) FROM messages WHERE id <="
             " %lld GROUP BY topic ON CONFLICT (name) DO UPDATE SET floor_id ="
             " max(floor_id, excluded.floor_id); DELETE FROM messages WHERE id <= %lld",
             (long long)cut_id, (long long)cut_id);
    return exec(store, sql, NULL, 0);
}

static void trim(sqlite_store_t *store)
{
    if (store->ntouched == 0 && !store->config.history_ttl_ms) return;
    if (store->ntouched) qsort(store->touched, store->ntouched, sizeof *store->touched, cmp_names);
    int ok = exec(store, "BEGIN IMMEDIATE", NULL, 0) == 0;
    for (size_t i = 0; ok && i < store->ntouched; i++)
        if (i == 0 || strcmp(store->touched[i], store->touched[i - 1]) != 0)
            ok = trim_topic(store, store->touched[i]) == 0;
    ok = ok && trim_age(store) == 0 && exec(store, "COMMIT", NULL, 0) == 0;
    if (!ok) {
        hr_warn("store.trim_failed", "err=\"%s\"", sqlite3_errmsg(store->db));
        exec(store, "ROLLBACK", NULL, 0);
        return; /* the names stay: tried again next time */
    }
    for (size_t i = 0; i < store->ntouched; i++)
        free(store->touched[i]);
    store->ntouched = 0;
}

static void wait_until(sqlite_store_t *store, int64_t deadline_mono_ms)
{
    /* The condition variable runs on CLOCK_REALTIME; convert the remaining time. */
    int64_t left = deadline_mono_ms - hr_clock_mono_ms();
    if (left <= 0) return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += left / 1000;
    ts.tv_nsec += (left % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    pthread_cond_timedwait(&store->wake, &store->lock, &ts);
}

/* One transaction for a batch of last-seen times; a failure loses only those (logged). */
static void write_seen(sqlite_store_t *store, seen_item_t *seen, size_t n)
{
    sqlite3_stmt *put = NULL;
    int ok = exec(store, "BEGIN IMMEDIATE", NULL, 0) == 0 &&
             sqlite3_prepare_v2(store->db,
                                "INSERT INTO last_seen (user, seen_ms) VALUES (?, ?) ON CONFLICT"
                                " (user) DO UPDATE SET seen_ms = max(seen_ms, excluded.seen_ms)",
                                -1, &put, NULL) == SQLITE_OK;
    for (size_t i = 0; ok && i < n; i++) {
        sqlite3_bind_text(put, 1, seen[i].user, -1, SQLITE_STATIC);
        sqlite3_bind_int64(put, 2, seen[i].unix_ms);
        ok = sqlite3_step(put) == SQLITE_DONE;
        sqlite3_reset(put);
    }
    sqlite3_finalize(put);
    if (ok) ok = exec(store, "COMMIT", NULL, 0) == 0;
    if (!ok) {
        hr_warn("store.last_seen_failed", "users=%zu err=\"%s\"", n, sqlite3_errmsg(store->db));
        exec(store, "ROLLBACK", NULL, 0);
    }
    for (size_t i = 0; i < n; i++)
        free(seen[i].user);
    free(seen);
}

static void sqlite_seen_put(hr_store_t *base, const char *user, size_t len, int64_t unix_ms)
{
    sqlite_store_t *store = (sqlite_store_t *)base;
    char *copy = strndup(user, len);
    pthread_mutex_lock(&store->lock);
    if (copy && store->nseen == store->seen_cap && store->nseen < SEEN_QUEUE_MAX) {
        size_t cap = store->seen_cap ? store->seen_cap * 2 : 256;
        seen_item_t *seen = realloc(store->seen, cap * sizeof *seen);
        if (seen) {
            store->seen = seen;
            store->seen_cap = cap;
        }
    }
    if (copy && store->nseen < store->seen_cap) {
        store->seen[store->nseen++] = (seen_item_t){copy, unix_ms};
        copy = NULL;
        if (store->nseen == 1 && !store->count) pthread_cond_signal(&store->wake);
    } else if (store->seen_dropped++ % 10000 == 0) {
        hr_warn("store.last_seen_dropped", "queued=%zu", store->nseen);
    }
    pthread_mutex_unlock(&store->lock);
    free(copy);
}

static int sqlite_seen_get(hr_store_t *base, const char *user, size_t len, int64_t *unix_ms)
{
    sqlite_store_t *store = (sqlite_store_t *)base;
    sqlite3_stmt *get;
    *unix_ms = 0;
    if (sqlite3_prepare_v2(store->db, "SELECT seen_ms FROM last_seen WHERE user = ?", -1, &get,
                           NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_text(get, 1, user, (int)len, SQLITE_STATIC);
    int rc = sqlite3_step(get);
    if (rc == SQLITE_ROW) *unix_ms = sqlite3_column_int64(get, 0);
    sqlite3_finalize(get);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

static int sqlite_device_put(hr_store_t *base, const hr_store_device_t *row)
{
    sqlite_store_t *store = (sqlite_store_t *)base;
    sqlite3_stmt *put;
    if (sqlite3_prepare_v2(store->aux,
                           "INSERT INTO devices (token, user, body, updated_ms) VALUES (?, ?, ?, ?)"
                           " ON CONFLICT (token) DO UPDATE SET user = excluded.user,"
                           " body = excluded.body, updated_ms = excluded.updated_ms",
                           -1, &put, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_text(put, 1, row->token, (int)row->token_len, SQLITE_STATIC);
    sqlite3_bind_text(put, 2, row->user, (int)row->user_len, SQLITE_STATIC);
    sqlite3_bind_text(put, 3, row->body, (int)row->body_len, SQLITE_STATIC);
    sqlite3_bind_int64(put, 4, row->updated_ms);
    int rc = sqlite3_step(put) == SQLITE_DONE ? 0 : -1;
    sqlite3_finalize(put);
    return rc;
}

static int sqlite_device_del(hr_store_t *base, const char *token, size_t len)
{
    sqlite_store_t *store = (sqlite_store_t *)base;
    sqlite3_stmt *del;
    if (sqlite3_prepare_v2(store->aux, "DELETE FROM devices WHERE token = ?", -1, &del, NULL) !=
        SQLITE_OK)
        return -1;
    sqlite3_bind_text(del, 1, token, (int)len, SQLITE_STATIC);
    int rc = sqlite3_step(del) == SQLITE_DONE ? 0 : -1;
    sqlite3_finalize(del);
    return rc;
}

static int sqlite_device_each(hr_store_t *base, int (*fn)(void *arg, const hr_store_device_t *row),
                              void *arg)
{
    sqlite_store_t *store = (sqlite_store_t *)base;
    sqlite3_stmt *rows;
    if (sqlite3_prepare_v2(store->aux,
                           "SELECT token, user, body, updated_ms FROM devices ORDER BY updated_ms",
                           -1, &rows, NULL) != SQLITE_OK)
        return -1;
    int step;
    while ((step = sqlite3_step(rows)) == SQLITE_ROW) {
        hr_store_device_t row = {(const char *)sqlite3_column_text(rows, 0),
                                 (size_t)sqlite3_column_bytes(rows, 0),
                                 (const char *)sqlite3_column_text(rows, 1),
                                 (size_t)sqlite3_column_bytes(rows, 1),
                                 (const char *)sqlite3_column_text(rows, 2),
                                 (size_t)sqlite3_column_bytes(rows, 2),
                                 sqlite3_column_int64(rows, 3)};
        if (fn(arg, &row) != 0) break;
    }
    sqlite3_finalize(rows);
    return step == SQLITE_DONE || step == SQLITE_ROW ? 0 : -1;
}

static int sqlite_delayed_put(hr_store_t *base, int64_t due_ms, const char *request, uint64_t *id)
{
    sqlite_store_t *store = (sqlite_store_t *)base;
    sqlite3_stmt *put;
    if (sqlite3_prepare_v2(store->aux, "INSERT INTO delayed (due_ms, request) VALUES (?, ?)", -1,
                           &put, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_int64(put, 1, due_ms);
    sqlite3_bind_text(put, 2, request, -1, SQLITE_STATIC);
    int rc = sqlite3_step(put) == SQLITE_DONE ? 0 : -1;
    if (rc == 0) *id = (uint64_t)sqlite3_last_insert_rowid(store->aux);
    sqlite3_finalize(put);
    return rc;
}

static int sqlite_delayed_del(hr_store_t *base, uint64_t id)
{
    sqlite_store_t *store = (sqlite_store_t *)base;
    sqlite3_stmt *del;
    if (sqlite3_prepare_v2(store->aux, "DELETE FROM delayed WHERE id = ?", -1, &del, NULL) !=
        SQLITE_OK)
        return -1;
    sqlite3_bind_int64(del, 1, (sqlite3_int64)id);
    int rc = sqlite3_step(del) == SQLITE_DONE ? 0 : -1;
    sqlite3_finalize(del);
    return rc;
}

static int sqlite_delayed_each(hr_store_t *base,
                               int (*fn)(void *arg, uint64_t id, int64_t due_ms,
                                         const char *request),
                               void *arg)
{
    sqlite_store_t *store = (sqlite_store_t *)base;
    sqlite3_stmt *rows;
    if (sqlite3_prepare_v2(store->aux, "SELECT id, due_ms, request FROM delayed ORDER BY due_ms",
                           -1, &rows, NULL) != SQLITE_OK)
        return -1;
    int step;
    while ((step = sqlite3_step(rows)) == SQLITE_ROW)
        if (fn(arg, (uint64_t)sqlite3_column_int64(rows, 0), sqlite3_column_int64(rows, 1),
               (const char *)sqlite3_column_text(rows, 2)) != 0)
            break;
    sqlite3_finalize(rows);
    return step == SQLITE_DONE || step == SQLITE_ROW ? 0 : -1;
}

static int sqlite_pool_save(hr_store_t *base, const hr_store_pool_row_t *rows, size_t n)
{
    sqlite_store_t *store = (sqlite_store_t *)base;
    sqlite3_stmt *put = NULL;
    int rc = sqlite3_exec(store->aux, "BEGIN IMMEDIATE; DELETE FROM pool_members", NULL, NULL,
                          NULL) == SQLITE_OK &&
                     sqlite3_prepare_v2(store->aux,
                                        "INSERT INTO pool_members (key, type, body, born_ms) "
                                        "VALUES (?, ?, ?, ?)",
                                        -1, &put, NULL) == SQLITE_OK
                 ? 0
                 : -1;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        sqlite3_bind_text(put, 1, rows[i].key, (int)rows[i].key_len, SQLITE_STATIC);
        sqlite3_bind_text(put, 2, rows[i].type, -1, SQLITE_STATIC);
        sqlite3_bind_blob(put, 3, rows[i].body, (int)rows[i].body_len, SQLITE_STATIC);
        sqlite3_bind_int64(put, 4, rows[i].born_ms);
        if (sqlite3_step(put) != SQLITE_DONE) rc = -1;
        sqlite3_reset(put);
    }
    sqlite3_finalize(put);
    if (sqlite3_exec(store->aux, rc == 0 ? "COMMIT" : "ROLLBACK", NULL, NULL, NULL) != SQLITE_OK)
        rc = -1;
    return rc;
}

static int sqlite_pool_each(hr_store_t *base, int (*fn)(void *arg, const hr_store_pool_row_t *row),
                            void *arg)
{
    sqlite_store_t *store = (sqlite_store_t *)base;
    sqlite3_stmt *rows;
    if (sqlite3_prepare_v2(store->aux,
                           "SELECT key, type, body, born_ms FROM pool_members ORDER BY rowid", -1,
                           &rows, NULL) != SQLITE_OK)
        return -1;
    int step;
    while ((step = sqlite3_step(rows)) == SQLITE_ROW) {
        hr_store_pool_row_t row = {0};
        row.key = (const char *)sqlite3_column_text(rows, 0); /* pointer, then its length */
        row.key_len = (size_t)sqlite3_column_bytes(rows, 0);
        row.type = (const char *)sqlite3_column_text(rows, 1);
        row.body = sqlite3_column_blob(rows, 2);
        row.body_len = (size_t)sqlite3_column_bytes(rows, 2);
        row.born_ms = sqlite3_column_int64(rows, 3);
        if (!row.body) row.body = "";
        if (fn(arg, &row) != 0) break;
    }
    sqlite3_finalize(rows);
    return step == SQLITE_DONE || step == SQLITE_ROW ? 0 : -1;
}

/* The writer: sleep until something is queued (or it is time to trim); in batch mode gather
 * for up to batch_ms; write it all in one transaction; repeat. On stop, write what is left. */
static void *writer_main(void *arg)
{
    sqlite_store_t *store = arg;
    int64_t next_trim = hr_clock_mono_ms() + TRIM_EVERY_MS;
    pthread_mutex_lock(&store->lock);
    for (;;) {
        if (!store->count && !store->nseen && !store->stopping) wait_until(store, next_trim);
        if (store->count && !store->stopping && store->base.durability == HR_DURABLE_BATCH) {
            int64_t deadline = hr_clock_mono_ms() + store->config.batch_ms;
            while (!store->stopping && hr_clock_mono_ms() < deadline)
                wait_until(store, deadline);
        }
        hr_msg_t **batch = store->queue;
        size_t n = store->count;
        store->queue = NULL;
        store->count = store->capacity = 0;
        seen_item_t *seen = store->seen;
        size_t nseen = store->nseen;
        store->seen = NULL;
        store->nseen = store->seen_cap = 0;
        int stopping = store->stopping;
        pthread_mutex_unlock(&store->lock);
        if (n) write_batch(store, batch, n);
        free(batch);
        if (nseen) write_seen(store, seen, nseen);
        if (hr_clock_mono_ms() >= next_trim || stopping) {
            trim(store);
            next_trim = hr_clock_mono_ms() + TRIM_EVERY_MS;
        }
        pthread_mutex_lock(&store->lock);
        if (store->stopping && !store->count && !store->nseen) break;
    }
    pthread_mutex_unlock(&store->lock);
    return NULL;
}

static void sqlite_close(hr_store_t *base)
{
    sqlite_store_t *store = (sqlite_store_t *)base;
    if (store->thread) {
        pthread_mutex_lock(&store->lock);
        store->stopping = 1;
        pthread_cond_signal(&store->wake);
        pthread_mutex_unlock(&store->lock);
        pthread_join(store->thread, NULL);
    }
    for (size_t i = 0; i < store->count; i++)
        hr_msg_unref(store->queue[i]);
    free(store->queue);
    for (size_t i = 0; i < store->nseen; i++)
        free(store->seen[i].user);
    free(store->seen);
    for (size_t i = 0; i < store->ntouched; i++)
        free(store->touched[i]);
    free(store->touched);
    sqlite3_finalize(store->insert);
    sqlite3_finalize(store->retire);
    sqlite3_close(store->db);
    sqlite3_close(store->aux);
    pthread_mutex_destroy(&store->lock);
    pthread_cond_destroy(&store->wake);
    hr_store_destroy(&store->base);
    free(store);
}

/* The writer starts after load, so that start-up reads have the connection to themselves. */
static int sqlite_start(hr_store_t *base)
{
    sqlite_store_t *store = (sqlite_store_t *)base;
    return pthread_create(&store->thread, NULL, writer_main, store) == 0 ? 0 : -1;
}

static const hr_store_ops_t sqlite_ops = {
    "sqlite",           sqlite_load,         sqlite_read_since,  sqlite_start,
    sqlite_append,      sqlite_close,        sqlite_seen_put,    sqlite_seen_get,
    sqlite_device_put,  sqlite_device_del,   sqlite_device_each, sqlite_delayed_put,
    sqlite_delayed_del, sqlite_delayed_each, sqlite_pool_save,   sqlite_pool_each};

hr_store_t *hr_store_sqlite_open(const hr_store_config_t *config, char *err, size_t err_size)
{
    sqlite_store_t *store = calloc(1, sizeof *store);
    if (!store) {
        snprintf(err, err_size, "out of memory");
        return NULL;
    }
    hr_store_init(&store->base, &sqlite_ops, config->durability);
    store->config = *config;
    pthread_mutex_init(&store->lock, NULL);
    pthread_cond_init(&store->wake, NULL);
    if (open_db(store, err, err_size) != 0) {
        sqlite_close(&store->base);
        return NULL;
    }
    return &store->base;
}
