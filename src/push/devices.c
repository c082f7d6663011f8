/* The device registry; see devices.h. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/broker.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/list.h"
#include "core/log.h"
#include "core/strmap.h"
#include "push/devices.h"

typedef struct dev_user_s {
    hr_strmap_node_t node;
    hr_list_t devices; /* device_t, oldest first */
    size_t count;
    size_t len;
    char name[];
} dev_user_t;

typedef struct dev_topic_s {
    hr_strmap_node_t node;
    hr_list_t links; /* dev_link_t */
    size_t len;
    char name[];
} dev_topic_t;

typedef struct dev_s device_t;
typedef struct dev_link_s {
    hr_list_t link; /* in topic->links */
    dev_topic_t *topic;
    device_t *dev;
} dev_link_t;

struct dev_s {
    hr_strmap_node_t node; /* by token */
    hr_list_t user_link;   /* in user->devices */
    hr_list_t age_link;    /* in devices->by_age, least recently refreshed first */
    dev_user_t *user;
    char platform[16];
    char app_id[HR_DEVICE_APP_ID_MAX + 1];
    char *labels; /* JSON text or NULL */
    dev_link_t *links;
    size_t nlinks;
    int64_t updated_ms;
    size_t bytes; /* what it costs against max_bytes */
    size_t len;
    char token[];
};

struct hr_devices_s {
    pthread_mutex_t lock;
    hr_store_t *store; /* NULL or a store without device ops: memory only */
    size_t max;        /* devices in all */
    size_t max_bytes;  /* and the bytes they hold */
    size_t bytes;
    hr_strmap_t tokens, users, topics;
    hr_list_t by_age;
    uint64_t removed_stale, removed_invalid;
    void (*on_invalid)(void *arg, const char *token, size_t len);
    void *on_invalid_arg;
};

int hr_device_token_valid(const char *token, size_t len)
{
    if (len == 0 || len > HR_DEVICE_TOKEN_MAX) return 0;
    for (size_t i = 0; i < len; i++) {
        char c = token[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == ':' || c == '.'))
            return 0;
    }
    return 1;
}

static int fail(char *err, size_t size, const char *message)
{
    snprintf(err, size, "%s", message);
    return -1;
}

int hr_device_body_parse(json_t *body, hr_device_info_t *info, char *err, size_t err_size)
{
    if (!json_is_object(body)) return fail(err, err_size, "body must be a JSON object");
    const char *platform = json_string_value(json_object_get(body, "platform"));
    if (!platform ||
        (strcmp(platform, "android") && strcmp(platform, "ios") && strcmp(platform, "web")))
        return fail(err, err_size, "\"platform\" must be android, ios or web");
    snprintf(info->platform, sizeof info->platform, "%s", platform);
    json_t *app = json_object_get(body, "app_id");
    if (app && (!json_is_string(app) || json_string_length(app) > HR_DEVICE_APP_ID_MAX))
        return fail(err, err_size, "\"app_id\" must be a string of at most 128 bytes");
    snprintf(info->app_id, sizeof info->app_id, "%s", app ? json_string_value(app) : "");
    json_t *topics = json_object_get(body, "topics");
    if (topics && (!json_is_array(topics) || json_array_size(topics) > HR_DEVICE_TOPICS))
        return fail(err, err_size, "\"topics\" must be an array of at most 32 topic names");
    size_t i;
    json_t *item;
    json_array_foreach(topics, i, item)
    {
        if (!json_is_string(item) ||
            !hr_topic_name_valid(json_string_value(item), json_string_length(item)))
            return fail(err, err_size, "\"topics\" must hold valid topic names");
    }
    info->topics = topics;
    json_t *labels = json_object_get(body, "labels");
    if (labels && !json_is_object(labels))
        return fail(err, err_size, "\"labels\" must be an object");
    char *text = labels ? json_dumps(labels, JSON_COMPACT) : NULL;
    size_t text_len = text ? strlen(text) : 0;
    free(text);
    if (text_len > HR_DEVICE_LABELS_MAX) return fail(err, err_size, "\"labels\" over 1 KiB");
    info->labels = labels;
    return 0;
}

hr_devices_t *hr_devices_new(hr_store_t *store, size_t max_devices, size_t max_bytes)
{
    hr_devices_t *devices = calloc(1, sizeof *devices);
    if (!devices) return NULL;
    pthread_mutex_init(&devices->lock, NULL);
    devices->store = store && store->ops->device_put ? store : NULL;
    devices->max = max_devices;
    devices->max_bytes = max_bytes;
    hr_list_init(&devices->by_age);
    return devices;
}

/* ---- under the lock --------------------------------------------------------------------- */

static void unlink_topics(hr_devices_t *devices, device_t *dev)
{
    for (size_t i = 0; i < dev->nlinks; i++) {
        dev_topic_t *topic = dev->links[i].topic;
        hr_list_remove(&dev->links[i].link);
        if (hr_list_empty(&topic->links)) {
            hr_strmap_remove(&devices->topics, &topic->node);
            free(topic);
        }
    }
    free(dev->links);
    dev->links = NULL;
    dev->nlinks = 0;
}

static void drop(hr_devices_t *devices, device_t *dev)
{
    dev_user_t *user = dev->user;
    unlink_topics(devices, dev);
    hr_strmap_remove(&devices->tokens, &dev->node);
    hr_list_remove(&dev->user_link);
    hr_list_remove(&dev->age_link);
    devices->bytes -= dev->bytes;
    free(dev->labels);
    free(dev);
    if (--user->count == 0) {
        hr_strmap_remove(&devices->users, &user->node);
        free(user);
    }
}

static dev_user_t *user_get(hr_devices_t *devices, const char *name, size_t len)
{
    dev_user_t *user = (dev_user_t *)hr_strmap_get(&devices->users, name, len);
    if (user) return user;
    if (!(user = calloc(1, sizeof *user + len))) return NULL;
    memcpy(user->name, name, len);
    user->len = len;
    user->node.key = user->name;
    user->node.key_len = len;
    hr_list_init(&user->devices);
    if (hr_strmap_put(&devices->users, &user->node) != 0) {
        free(user);
        return NULL;
    }
    return user;
}

static int link_topics(hr_devices_t *devices, device_t *dev, json_t *topics)
{
    size_t n = json_array_size(topics);
    if (!n) return 0;
    if (!(dev->links = calloc(n, sizeof *dev->links))) return HR_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        json_t *item = json_array_get(topics, i);
        const char *name = json_string_value(item);
        size_t len = json_string_length(item);
        dev_topic_t *topic = (dev_topic_t *)hr_strmap_get(&devices->topics, name, len);
        if (!topic) {
            if (!(topic = calloc(1, sizeof *topic + len))) return HR_ENOMEM;
            memcpy(topic->name, name, len);
            topic->len = len;
            topic->node.key = topic->name;
            topic->node.key_len = len;
            hr_list_init(&topic->links);
            if (hr_strmap_put(&devices->topics, &topic->node) != 0) {
                free(topic);
                return HR_ENOMEM;
            }
        }
        int seen = 0; /* a name listed twice links once */
        for (size_t k = 0; k < dev->nlinks; k++)
            seen |= dev->links[k].topic == topic;
        if (seen) continue;
        dev_link_t *link = &dev->links[dev->nlinks++];
        link->topic = topic;
        link->dev = dev;
        hr_list_push(&topic->links, &link->link);
    }
    return 0;
}

static int put_locked(hr_devices_t *devices, const hr_device_info_t *info, char *labels)
{
    device_t *dev = (device_t *)hr_strmap_get(&devices->tokens, info->token, info->token_len);
    size_t cost = sizeof *dev + info->token_len + (labels ? strlen(labels) : 0) +
                  json_array_size(info->topics) * (sizeof(dev_link_t) + HR_TOPIC_MAX_LEN / 4);
    if (dev)
        drop(devices, dev); /* re-registered: replaced whole (its user may change) */
    else if (devices->max && devices->tokens.count >= devices->max)
        return HR_ELIMIT;
    if (devices->max_bytes && devices->bytes + cost > devices->max_bytes) return HR_ELIMIT;
    dev_user_t *user = user_get(devices, info->user, info->user_len);
    if (!user) return HR_ENOMEM;
    if (user->count >= HR_DEVICES_PER_USER) /* the least recently refreshed goes */
        drop(devices, hr_container_of(user->devices.next, device_t, user_link));
    if (!(dev = calloc(1, sizeof *dev + info->token_len + 1))) return HR_ENOMEM;
    memcpy(dev->token, info->token, info->token_len);
    dev->len = info->token_len;
    dev->bytes = cost;
    devices->bytes += cost;
    dev->node.key = dev->token;
    dev->node.key_len = dev->len;
    if (hr_strmap_put(&devices->tokens, &dev->node) != 0) {
        free(dev);
        return HR_ENOMEM;
    }
    dev->user = user;
    user->count++;
    hr_list_push(&user->devices, &dev->user_link);
    hr_list_push(&devices->by_age, &dev->age_link);
    memcpy(dev->platform, info->platform, sizeof dev->platform);
    memcpy(dev->app_id, info->app_id, sizeof dev->app_id);
    dev->labels = labels;
    dev->updated_ms = info->updated_ms;
    if (link_topics(devices, dev, info->topics) != 0) {
        drop(devices, dev);
        return HR_ENOMEM;
    }
    return 0;
}

/* The row the store keeps: the body as JSON text. */
static char *row_body(const hr_device_info_t *info)
{
    json_t *topics = info->topics ? json_incref(info->topics) : json_array();
    json_t *body =
        json_pack("{s:s, s:s, s:o, s:O}", "platform", info->platform, "app_id", info->app_id,
                  "topics", topics, "labels", info->labels ? info->labels : json_null());
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    return text;
}

int hr_devices_put(hr_devices_t *devices, const hr_device_info_t *info)
{
    char *labels = info->labels ? json_dumps(info->labels, JSON_COMPACT) : NULL;
    pthread_mutex_lock(&devices->lock);
    int rc = put_locked(devices, info, labels);
    pthread_mutex_unlock(&devices->lock);
    if (rc != 0) {
        free(labels);
        return rc;
    }
    if (devices->store) {
        char *body = row_body(info);
        hr_store_device_t row = {
            info->token, info->token_len,         info->user,      info->user_len,
            body,        body ? strlen(body) : 0, info->updated_ms};
        if (!body || devices->store->ops->device_put(devices->store, &row) != 0)
            hr_warn("push.device_not_stored", "user=%.*s", (int)info->user_len, info->user);
        free(body);
    }
    return 0;
}

int hr_devices_remove(hr_devices_t *devices, const char *user, size_t user_len, const char *token,
                      size_t token_len)
{
    pthread_mutex_lock(&devices->lock);
    device_t *dev = (device_t *)hr_strmap_get(&devices->tokens, token, token_len);
    int found =
        dev &&
        (!user || (dev->user->len == user_len && memcmp(dev->user->name, user, user_len) == 0));
    if (found) drop(devices, dev);
    pthread_mutex_unlock(&devices->lock);
    if (found && devices->store) devices->store->ops->device_del(devices->store, token, token_len);
    return found;
}

void hr_devices_on_invalid(hr_devices_t *devices,
                           void (*fn)(void *arg, const char *token, size_t len), void *arg)
{
    devices->on_invalid = fn;
    devices->on_invalid_arg = arg;
}

void hr_devices_invalid(hr_devices_t *devices, const char *token, size_t len)
{
    if (devices->on_invalid) devices->on_invalid(devices->on_invalid_arg, token, len);
    if (!hr_devices_remove(devices, NULL, 0, token, len)) return;
    pthread_mutex_lock(&devices->lock);
    devices->removed_invalid++;
    pthread_mutex_unlock(&devices->lock);
}

static json_t *device_json(const device_t *dev)
{
    json_t *topics = json_array();
    for (size_t i = 0; i < dev->nlinks; i++)
        json_array_append_new(topics,
                              json_stringn(dev->links[i].topic->name, dev->links[i].topic->len));
    json_t *labels = dev->labels ? json_loads(dev->labels, 0, NULL) : NULL;
    return json_pack("{s:s%, s:s, s:s, s:o, s:o, s:I}", "token", dev->token, dev->len, "platform",
                     dev->platform, "app_id", dev->app_id, "topics", topics, "labels",
                     labels ? labels : json_null(), "updated_at", (json_int_t)dev->updated_ms);
}

json_t *hr_devices_list(hr_devices_t *devices, const char *name, size_t len)
{
    json_t *list = json_array();
    pthread_mutex_lock(&devices->lock);
    dev_user_t *user = (dev_user_t *)hr_strmap_get(&devices->users, name, len);
    for (hr_list_t *it = user ? user->devices.next : NULL; it && it != &user->devices;
         it = it->next)
        json_array_append_new(list, device_json(hr_container_of(it, device_t, user_link)));
    pthread_mutex_unlock(&devices->lock);
    return list;
}

static int add_target(const device_t *dev, hr_push_target_t **out, size_t *n, size_t *cap)
{
    if (*n == *cap) {
        size_t grown = *cap ? *cap * 2 : 16;
        hr_push_target_t *targets = realloc(*out, grown * sizeof *targets);
        if (!targets) return -1;
        *out = targets;
        *cap = grown;
    }
    hr_push_target_t *target = &(*out)[*n];
    if (!(target->token = strndup(dev->token, dev->len))) return -1;
    snprintf(target->user, sizeof target->user, "%.*s", (int)dev->user->len, dev->user->name);
    memcpy(target->platform, dev->platform, sizeof target->platform);
    (*n)++;
    return 0;
}

size_t hr_devices_of_user(hr_devices_t *devices, const char *name, size_t len,
                          hr_push_target_t **out, size_t *n, size_t *cap, size_t max)
{
    size_t added = 0;
    pthread_mutex_lock(&devices->lock);
    dev_user_t *user = (dev_user_t *)hr_strmap_get(&devices->users, name, len);
    for (hr_list_t *it = user ? user->devices.next : NULL; it && it != &user->devices;
         it = it->next)
        if (*n < max && add_target(hr_container_of(it, device_t, user_link), out, n, cap) == 0)
            added++;
    pthread_mutex_unlock(&devices->lock);
    return added;
}

size_t hr_devices_of_topic(hr_devices_t *devices, const char *name, size_t len,
                           hr_push_target_t **out, size_t *n, size_t *cap, size_t max)
{
    size_t added = 0;
    pthread_mutex_lock(&devices->lock);
    dev_topic_t *topic = (dev_topic_t *)hr_strmap_get(&devices->topics, name, len);
    for (hr_list_t *it = topic ? topic->links.next : NULL; it && it != &topic->links; it = it->next)
        if (*n < max && add_target(hr_container_of(it, dev_link_t, link)->dev, out, n, cap) == 0)
            added++;
    pthread_mutex_unlock(&devices->lock);
    return added;
}

void hr_push_targets_free(hr_push_target_t *targets, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(targets[i].token);
    free(targets);
}

size_t hr_devices_expire(hr_devices_t *devices, int64_t cutoff_ms)
{
    size_t removed = 0;
    char **gone = NULL;
    size_t *lens = NULL;
    pthread_mutex_lock(&devices->lock);
    /* by_age is in refresh order only as far as updated_ms rises with it: stop at the first
     * fresh one (a restart loads in updated order too). */
    while (!hr_list_empty(&devices->by_age)) {
        device_t *dev = hr_container_of(devices->by_age.next, device_t, age_link);
        if (dev->updated_ms >= cutoff_ms) break;
        char **more = realloc(gone, (removed + 1) * sizeof *gone);
        size_t *more_lens = more ? realloc(lens, (removed + 1) * sizeof *lens) : NULL;
        if (more) gone = more;
        if (more_lens) lens = more_lens;
        if (!more || !more_lens || !(gone[removed] = strndup(dev->token, dev->len))) break;
        lens[removed++] = dev->len;
        drop(devices, dev);
    }
    devices->removed_stale += removed;
    pthread_mutex_unlock(&devices->lock);
    for (size_t i = 0; i < removed; i++) {
        if (devices->store) devices->store->ops->device_del(devices->store, gone[i], lens[i]);
        free(gone[i]);
    }
    free(gone);
    free(lens);
    return removed;
}

void hr_devices_stats(hr_devices_t *devices, int64_t stale_before_ms, hr_devices_stats_t *stats)
{
    pthread_mutex_lock(&devices->lock);
    stats->live = devices->tokens.count;
    stats->users = devices->users.count;
    stats->stale = 0;
    for (hr_list_t *it = devices->by_age.next; it != &devices->by_age; it = it->next) {
        if (hr_container_of(it, device_t, age_link)->updated_ms >= stale_before_ms) break;
        stats->stale++;
    }
    stats->removed_stale = devices->removed_stale;
    stats->removed_invalid = devices->removed_invalid;
    pthread_mutex_unlock(&devices->lock);
}

void hr_devices_free(hr_devices_t *devices)
{
    if (!devices) return;
    while (!hr_list_empty(&devices->by_age))
        drop(devices, hr_container_of(devices->by_age.next, device_t, age_link));
    hr_strmap_free(&devices->tokens);
    hr_strmap_free(&devices->users);
    hr_strmap_free(&devices->topics);
    pthread_mutex_destroy(&devices->lock);
    free(devices);
}

typedef struct load_s {
    hr_devices_t *devices;
    size_t loaded, bad;
} load_t;

static int load_row(void *arg, const hr_store_device_t *row)
{
    load_t *load = arg;
    json_t *body = json_loadb(row->body, row->body_len, 0, NULL);
    hr_device_info_t info = {.token = row->token,
                             .user = row->user,
                             .token_len = row->token_len,
                             .user_len = row->user_len};
    char err[128];
    char *labels = NULL;
    if (hr_device_body_parse(body, &info, err, sizeof err) != 0) {
        load->bad++;
    } else {
        info.updated_ms = row->updated_ms;
        labels = info.labels ? json_dumps(info.labels, JSON_COMPACT) : NULL;
        if (put_locked(load->devices, &info, labels) == 0) {
            load->loaded++;
            labels = NULL;
        }
    }
    free(labels);
    json_decref(body);
    return 0;
}

int hr_devices_load(hr_devices_t *devices)
{
    if (!devices->store) return 0;
    load_t load = {devices, 0, 0};
    pthread_mutex_lock(&devices->lock);
    int rc = devices->store->ops->device_each(devices->store, load_row, &load);
    pthread_mutex_unlock(&devices->lock);
    hr_info("push.devices_loaded", "devices=%zu bad=%zu", load.loaded, load.bad);
    return rc;
}
