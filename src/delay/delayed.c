/* The delayed-message schedule; see delayed.h. */
#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/base64.h"
#include "core/error.h"
#include "core/list.h"
#include "core/log.h"
#include "delay/delayed.h"

typedef struct item_s {
    hr_list_t link; /* in delayed->items, by due time */
    hr_delayed_entry_t entry;
} item_t;

struct hr_delayed_s {
    pthread_mutex_t lock;
    hr_store_t *store; /* NULL: memory only */
    size_t max_count, max_bytes;
    hr_list_t items;
    size_t count, bytes;
    uint64_t next_id; /* memory only */
};

hr_delayed_t *hr_delayed_new(hr_store_t *store, size_t max_count, size_t max_bytes)
{
    hr_delayed_t *delayed = calloc(1, sizeof *delayed);
    if (!delayed) return NULL;
    pthread_mutex_init(&delayed->lock, NULL);
    delayed->store = store && store->ops->delayed_put ? store : NULL;
    delayed->max_count = max_count;
    delayed->max_bytes = max_bytes;
    hr_list_init(&delayed->items);
    return delayed;
}

void hr_delayed_done(hr_delayed_entry_t *entry)
{
    hr_delayed_entry_free(entry);
    free(entry);
}

void hr_delayed_entry_free(hr_delayed_entry_t *entry)
{
    for (size_t i = 0; i < entry->n; i++)
        free(entry->topics[i]);
    free(entry->topics);
    free(entry->lens);
    free(entry->event);
    free(entry->data);
    json_decref(entry->push);
}

static void item_free(item_t *item)
{
    hr_delayed_entry_free(&item->entry);
    free(item);
}

void hr_delayed_free(hr_delayed_t *delayed)
{
    if (!delayed) return;
    while (!hr_list_empty(&delayed->items)) {
        item_t *item = hr_container_of(delayed->items.next, item_t, link);
        hr_list_remove(&item->link);
        item_free(item);
    }
    pthread_mutex_destroy(&delayed->lock);
    free(delayed);
}

/* The row the store keeps: the publish as JSON, its data in base64 (bytes, not text). */
static char *request_text(const hr_delayed_entry_t *entry)
{
    json_t *topics = json_array();
    for (size_t i = 0; i < entry->n; i++)
        json_array_append_new(topics, json_stringn(entry->topics[i], entry->lens[i]));
    char *b64 = malloc(HR_BASE64_LEN(entry->data_len) + 1);
    if (!b64) {
        json_decref(topics);
        return NULL;
    }
    size_t b64_len = hr_base64_encode((const unsigned char *)entry->data, entry->data_len, b64);
    json_t *request = json_pack("{s:o, s:s%, s:s%, s:i, s:b, s:i, s:O}", "topics", topics, "event",
                                entry->event, entry->event_len, "data_b64", b64, b64_len, "retry",
                                (int)entry->retry_ms, "binary", entry->binary, "fcm",
                                (int)entry->fcm, "push", entry->push ? entry->push : json_null());
    free(b64);
    char *text = request ? json_dumps(request, JSON_COMPACT) : NULL;
    json_decref(request);
    return text;
}

static item_t *item_new(const char *const *topics, const size_t *lens, size_t n)
{
    item_t *item = calloc(1, sizeof *item);
    if (!item) return NULL;
    hr_delayed_entry_t *entry = &item->entry;
    entry->topics = calloc(n ? n : 1, sizeof *entry->topics);
    entry->lens = calloc(n ? n : 1, sizeof *entry->lens);
    if (!entry->topics || !entry->lens) {
        item_free(item);
        return NULL;
    }
    for (size_t i = 0; i < n; i++, entry->n++) {
        if (!(entry->topics[i] = strndup(topics[i], lens[i]))) {
            item_free(item);
            return NULL;
        }
        entry->lens[i] = lens[i];
        entry->bytes += lens[i];
    }
    return item;
}

/* Under the lock: in due order (equal times keep arrival order). */
static void insert(hr_delayed_t *delayed, item_t *item)
{
    hr_list_t *at = delayed->items.prev;
    while (at != &delayed->items &&
           hr_container_of(at, item_t, link)->entry.due_ms > item->entry.due_ms)
        at = at->prev;
    hr_list_push(at->next, &item->link);
    delayed->count++;
    delayed->bytes += item->entry.bytes;
}

int hr_delayed_add(hr_delayed_t *delayed, const char *const *topics, const size_t *lens, size_t n,
                   const hr_pub_body_t *body, int binary, int64_t due_ms, uint64_t *id)
{
    item_t *item = item_new(topics, lens, n);
    if (!item) return HR_ENOMEM;
    hr_delayed_entry_t *entry = &item->entry;
    entry->due_ms = due_ms;
    entry->event = strndup(body->event ? body->event : "", body->event ? body->event_len : 0);
    entry->event_len = body->event ? body->event_len : 0;
    entry->data = malloc(body->data_len + 1);
    if (!entry->event || !entry->data) {
        item_free(item);
        return HR_ENOMEM;
    }
    memcpy(entry->data, body->data, body->data_len);
    entry->data[body->data_len] = '\0';
    entry->data_len = body->data_len;
    entry->retry_ms = body->retry_ms;
    entry->binary = binary;
    entry->fcm = body->fcm;
    entry->push = body->push ? json_deep_copy(body->push) : NULL; /* json_t is not shared */
    entry->bytes += sizeof *item + entry->event_len + entry->data_len;
    pthread_mutex_lock(&delayed->lock);
    int full =
        delayed->count >= delayed->max_count || delayed->bytes + entry->bytes > delayed->max_bytes;
    if (!full && !delayed->store) entry->id = ++delayed->next_id;
    pthread_mutex_unlock(&delayed->lock);
    if (full) {
        item_free(item);
        return HR_ELIMIT;
    }
    if (delayed->store) { /* written before anyone hears 202 */
        char *request = request_text(entry);
        int rc = request
                     ? delayed->store->ops->delayed_put(delayed->store, due_ms, request, &entry->id)
                     : -1;
        free(request);
        if (rc != 0) {
            item_free(item);
            return HR_EINVAL;
        }
    }
    *id = entry->id;
    pthread_mutex_lock(&delayed->lock);
    insert(delayed, item);
    pthread_mutex_unlock(&delayed->lock);
    return 0;
}

/* Standard base64 back to bytes; -1 when malformed. */
static long base64_decode(const char *text, size_t len, unsigned char *out)
{
    if (len % 4) return -1;
    if (len == 0) return 0;
    int n = EVP_DecodeBlock(out, (const unsigned char *)text, (int)len);
    if (n < 0) return -1;
    return n - (text[len - 1] == '=') - (text[len - 2] == '=');
}

static int load_row(void *arg, uint64_t id, int64_t due_ms, const char *request)
{
    hr_delayed_t *delayed = arg;
    json_t *root = json_loads(request, 0, NULL), *topics = json_object_get(root, "topics");
    const char *b64 = json_string_value(json_object_get(root, "data_b64"));
    size_t n = json_array_size(topics);
    const char **names = calloc(n ? n : 1, sizeof *names);
    size_t *lens = calloc(n ? n : 1, sizeof *lens);
    item_t *item = NULL;
    for (size_t i = 0; names && lens && i < n; i++) {
        names[i] = json_string_value(json_array_get(topics, i));
        lens[i] = json_string_length(json_array_get(topics, i));
    }
    if (names && lens && n && b64 && (item = item_new(names, lens, n))) {
        hr_delayed_entry_t *entry = &item->entry;
        size_t b64_len = strlen(b64);
        entry->id = id;
        entry->due_ms = due_ms;
        json_t *event = json_object_get(root, "event");
        entry->event = strndup(json_string_value(event) ? json_string_value(event) : "",
                               json_string_length(event));
        entry->event_len = json_string_length(event);
        entry->data = malloc(b64_len / 4 * 3 + 4);
        long data_len =
            entry->data ? base64_decode(b64, b64_len, (unsigned char *)entry->data) : -1;
        if (!entry->event || data_len < 0) {
            item_free(item);
            item = NULL;
        } else {
            entry->data_len = (size_t)data_len;
            entry->retry_ms = (uint32_t)json_integer_value(json_object_get(root, "retry"));
            entry->binary = json_is_true(json_object_get(root, "binary"));
            entry->fcm = (enum hr_fcm_mode)json_integer_value(json_object_get(root, "fcm"));
            json_t *push = json_object_get(root, "push");
            entry->push = json_is_object(push) ? json_incref(push) : NULL;
            entry->bytes += sizeof *item + entry->event_len + entry->data_len;
            insert(delayed, item);
        }
    }
    if (!item) hr_warn("delayed.bad_row", "id=%llu", (unsigned long long)id);
    free(names);
    free(lens);
    json_decref(root);
    return 0;
}

int hr_delayed_load(hr_delayed_t *delayed)
{
    if (!delayed->store) return 0;
    pthread_mutex_lock(&delayed->lock);
    int rc = delayed->store->ops->delayed_each(delayed->store, load_row, delayed);
    size_t count = delayed->count;
    pthread_mutex_unlock(&delayed->lock);
    hr_info("delayed.loaded", "messages=%zu", count);
    return rc;
}

static item_t *take(hr_delayed_t *delayed, item_t *item)
{
    hr_list_remove(&item->link);
    delayed->count--;
    delayed->bytes -= item->entry.bytes;
    return item;
}

int hr_delayed_cancel(hr_delayed_t *delayed, uint64_t id)
{
    item_t *found = NULL;
    pthread_mutex_lock(&delayed->lock);
    for (hr_list_t *it = delayed->items.next; it != &delayed->items; it = it->next)
        if (hr_container_of(it, item_t, link)->entry.id == id) {
            found = take(delayed, hr_container_of(it, item_t, link));
            break;
        }
    pthread_mutex_unlock(&delayed->lock);
    if (!found) return 0;
    if (delayed->store) delayed->store->ops->delayed_del(delayed->store, id);
    item_free(found);
    return 1;
}

json_t *hr_delayed_list(hr_delayed_t *delayed, size_t limit)
{
    json_t *list = json_array();
    pthread_mutex_lock(&delayed->lock);
    size_t count = delayed->count;
    for (hr_list_t *it = delayed->items.next; it != &delayed->items && limit;
         it = it->next, limit--) {
        const hr_delayed_entry_t *entry = &hr_container_of(it, item_t, link)->entry;
        json_t *topics = json_array();
        for (size_t i = 0; i < entry->n; i++)
            json_array_append_new(topics, json_stringn(entry->topics[i], entry->lens[i]));
        json_array_append_new(
            list, json_pack("{s:I, s:I, s:o, s:s%, s:I}", "id", (json_int_t)entry->id, "deliver_at",
                            (json_int_t)entry->due_ms, "topics", topics, "event", entry->event,
                            entry->event_len, "bytes", (json_int_t)entry->bytes));
    }
    pthread_mutex_unlock(&delayed->lock);
    return json_pack("{s:o, s:I}", "delayed", list, "count", (json_int_t)count);
}

hr_delayed_entry_t *hr_delayed_take_due(hr_delayed_t *delayed, int64_t now_ms)
{
    item_t *item = NULL;
    pthread_mutex_lock(&delayed->lock);
    if (!hr_list_empty(&delayed->items)) {
        item_t *first = hr_container_of(delayed->items.next, item_t, link);
        if (first->entry.due_ms <= now_ms) item = take(delayed, first);
    }
    pthread_mutex_unlock(&delayed->lock);
    if (!item) return NULL;
    hr_delayed_entry_t *entry = malloc(sizeof *entry);
    if (entry)
        *entry = item->entry; /* moved out whole */
    else
        hr_delayed_entry_free(&item->entry);
    free(item);
    return entry;
}
