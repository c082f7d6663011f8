/* The pools' request flow: a hit from the store, or a flight to wait on (started or shared);
 * the upstream's answers landing in the store and on their waiters; the stats. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/error.h"
#include "core/log.h"
#include "core/utf8.h"
#include "pool/pool_int.h"
#include "pool/pool_redis.h"

_Static_assert(sizeof(((hr_upstream_call_t *)0)->key) >= HR_POOL_NAME_MAX + HR_POOL_KEY_MAX + 2,
               "a call names its store key");

/* ---- starting a call -------------------------------------------------------------------- */

static struct curl_slist *add_header(struct curl_slist *list, const char *name, const char *value)
{
    char line[1100];
    snprintf(line, sizeof line, "%s: %s", name, value);
    struct curl_slist *grown = list ? curl_slist_append(list, line) : NULL;
    return grown ? grown : list;
}

/* The upstream URL with "{key}" replaced by the key (its bytes are URL-safe). */
static char *call_url(const hr_pool_spec_t *spec, const char *key, size_t key_len)
{
    const char *hole = strstr(spec->url, "{key}");
    size_t len = strlen(spec->url) + (hole ? key_len : 0);
    char *url = malloc(len + 1);
    if (!url) return NULL;
    if (!hole) return strcpy(url, spec->url);
    snprintf(url, len + 1, "%.*s%.*s%s", (int)(hole - spec->url), spec->url, (int)key_len, key,
             hole + 5);
    return url;
}

static hr_upstream_call_t *call_new(hr_pools_t *pools, const hr_pool_ask_t *ask,
                                    hr_flight_t *flight)
{
    const hr_pool_spec_t *spec = &pools->pools[ask->pool].spec;
    hr_upstream_call_t *call = calloc(1, sizeof *call);
    if (!call) return NULL;
    call->flight = flight;
    call->pool = ask->pool;
    call->post = ask->post;
    call->timeout_ms = spec->timeout_ms;
    call->key_len =
        hr_pools_store_key(pools, ask->pool, ask->key, ask->key_len, call->key, sizeof call->key);
    call->url = call_url(spec, ask->key, ask->key_len);
    if (ask->post && ask->body_len && (call->body = malloc(ask->body_len)))
        memcpy(call->body, ask->body, ask->body_len);
    call->body_len = call->body ? ask->body_len : 0;
    /* Expect: empty, so a large body is not held back waiting for 100 Continue. */
    struct curl_slist *headers = curl_slist_append(NULL, "Expect:");
    char key[HR_POOL_KEY_MAX + 1];
    snprintf(key, sizeof key, "%.*s", (int)ask->key_len, ask->key);
    headers = add_header(headers, "X-Herald-Pool", spec->name);
    headers = add_header(headers, "X-Herald-Key", key);
    if (ask->content_type) headers = add_header(headers, "Content-Type", ask->content_type);
    if (ask->accept) headers = add_header(headers, "Accept", ask->accept);
    for (size_t i = 0; headers && i < spec->nheaders; i++) {
        struct curl_slist *grown = curl_slist_append(headers, spec->headers[i]);
        headers = grown ? grown : headers;
    }
    call->headers = headers;
    if (!call->url || !headers || !call->key_len || (ask->post && ask->body_len && !call->body)) {
        call->flight = NULL; /* the caller still owns it */
        hr_upstream_call_free(call);
        return NULL;
    }
    return call;
}

/* Under pools->lock: joins the least waited-on call for the key when max(1, size - members)
 * are under way, else starts one. */
static enum hr_pool_outcome decide(hr_pools_t *pools, const hr_pool_ask_t *ask, size_t members,
                                   hr_flight_t **out)
{
    const hr_pool_spec_t *spec = &pools->pools[ask->pool].spec;
    char name[sizeof((hr_upstream_call_t *)0)->key];
    size_t len = hr_pools_store_key(pools, ask->pool, ask->key, ask->key_len, name, sizeof name);
    key_flights_t *entry = (key_flights_t *)hr_strmap_get(&pools->flights, name, len);
    size_t allowed = spec->size > members ? spec->size - members : 1;
    if (entry && entry->n >= allowed) {
        size_t best = 0;
        for (size_t i = 1; i < entry->n; i++)
            if (entry->at[i].waiters < entry->at[best].waiters) best = i;
        entry->at[best].waiters++;
        hr_flight_ref(*out = entry->at[best].flight);
        return HR_POOL_SHARED;
    }
    hr_upstream_stats_t up;
    hr_upstream_stats(pools->upstream, ask->pool, &up);
    if (up.waiting >= HR_POOL_WAITING_MAX) return HR_POOL_BUSY;
    if (!entry) {
        if (!(entry = calloc(1, sizeof *entry + len))) return HR_POOL_NOMEM;
        memcpy(entry->name, name, len);
        entry->len = len;
        entry->node.key = entry->name;
        entry->node.key_len = len;
        if (hr_strmap_put(&pools->flights, &entry->node) != 0) {
            free(entry);
            return HR_POOL_NOMEM;
        }
    }
    hr_flight_t *flight = hr_flight_new(pools->broker, pools->config->workers);
    hr_upstream_call_t *call = flight ? call_new(pools, ask, flight) : NULL;
    if (!call) {
        hr_flight_unref(flight);
        if (!entry->n) {
            hr_strmap_remove(&pools->flights, &entry->node);
            free(entry);
        }
        return HR_POOL_NOMEM;
    }
    entry->at[entry->n].flight = flight;
    entry->at[entry->n++].waiters = 1;
    hr_flight_ref(*out = flight);
    atomic_fetch_add(&pools->pools[ask->pool].misses, 1);
    hr_upstream_submit(pools->upstream, call);
    return HR_POOL_MISS;
}

enum hr_pool_outcome hr_pools_ask(hr_pools_t *pools, const hr_pool_ask_t *ask,
                                  hr_pool_answer_t **hit, hr_flight_t **flight, size_t *members)
{
    const hr_pool_spec_t *spec = &pools->pools[ask->pool].spec;
    char name[sizeof((hr_upstream_call_t *)0)->key];
    size_t len = hr_pools_store_key(pools, ask->pool, ask->key, ask->key_len, name, sizeof name);
    int64_t now = hr_clock_unix_ms();
    /* The hot path takes the store's lock only. */
    if ((*hit = hr_pool_store_pick(pools->store, name, len, spec->size, now))) {
        *members = spec->size;
        return HR_POOL_HIT;
    }
    pthread_mutex_lock(&pools->lock);
    *members = hr_pool_store_count(pools->store, name, len);
    enum hr_pool_outcome outcome = HR_POOL_HIT;
    if (*members < spec->size ||
        !(*hit = hr_pool_store_pick(pools->store, name, len, spec->size, now)))
        outcome = decide(pools, ask, *members, flight);
    pthread_mutex_unlock(&pools->lock);
    return outcome;
}

enum hr_pool_outcome hr_pools_join(hr_pools_t *pools, const hr_pool_ask_t *ask, size_t members,
                                   hr_flight_t **flight)
{
    pthread_mutex_lock(&pools->lock);
    enum hr_pool_outcome outcome = decide(pools, ask, members, flight);
    pthread_mutex_unlock(&pools->lock);
    return outcome;
}

/* ---- answers landing -------------------------------------------------------------------- */

/* What may join a pool: a non-empty answer; JSON that parses when it says JSON; text (and
 * event streams) that is UTF-8. 0, or 502 with the reason. */
static int usable(const char *type, const char *bytes, size_t len, char *reason, size_t size)
{
    if (len == 0) {
        snprintf(reason, size, "upstream answer is empty");
        return 502;
    }
    if (strstr(type, "json")) {
        json_t *json = json_loadb(bytes, len, JSON_DECODE_ANY, NULL);
        json_decref(json);
        if (!json) {
            snprintf(reason, size, "upstream answer is not valid JSON");
            return 502;
        }
    } else if (strncmp(type, "text/", 5) == 0 && !hr_utf8_valid((const uint8_t *)bytes, len)) {
        snprintf(reason, size, "upstream answer is not valid UTF-8");
        return 502;
    }
    return 0;
}

static void note_latency(hr_pools_t *pools, unsigned pool, int64_t ms)
{
    pool_t *p = &pools->pools[pool];
    p->latency_ms[p->nlatency++ % LATENCY_KEEP] = ms < 0 ? 0 : (uint32_t)ms;
}

void hr_pools_land(hr_pools_t *pools, const char *key, size_t key_len, hr_flight_t *flight,
                   int status, const char *reason, size_t members, hr_pool_answer_t *fallback)
{
    pthread_mutex_lock(&pools->lock);
    key_flights_t *entry = (key_flights_t *)hr_strmap_get(&pools->flights, key, key_len);
    for (size_t i = 0; entry && i < entry->n; i++) {
        if (entry->at[i].flight != flight) continue;
        entry->at[i] = entry->at[--entry->n];
        break;
    }
    if (entry && !entry->n) {
        hr_strmap_remove(&pools->flights, &entry->node);
        free(entry);
    }
    pthread_mutex_unlock(&pools->lock);
    pthread_mutex_lock(&flight->lock);
    flight->phase = status ? HR_FLIGHT_FAILED : HR_FLIGHT_DONE;
    flight->status = status;
    snprintf(flight->reason, sizeof flight->reason, "%s", reason ? reason : "");
    flight->members = members;
    if (fallback) {
        flight->fallback = malloc(fallback->len + 1);
        if (flight->fallback) {
            memcpy(flight->fallback, fallback->bytes, fallback->len);
            flight->fallback_len = fallback->len;
            memcpy(flight->fallback_type, fallback->content_type, sizeof flight->fallback_type);
        }
    }
    pthread_mutex_unlock(&flight->lock);
    free(fallback);
    hr_flight_notify(flight);
}

void hr_pools_call_done(void *arg, hr_upstream_call_t *call, int status, const char *reason)
{
    hr_pools_t *pools = arg;
    const hr_pool_spec_t *spec = &pools->pools[call->pool].spec;
    char why[160];
    size_t len = 0;
    char *answer = status ? NULL : hr_flight_concat(call->flight, &len);
    if (!status && !answer) {
        status = 503;
        reason = "out of memory";
    }
    if (!status && (status = usable(call->content_type, answer, len, why, sizeof why)))
        reason = why;
    if (status) {
        hr_warn("pool.upstream_failed", "pool=%s key=\"%.*s\" status=%d reason=\"%s\"", spec->name,
                (int)call->key_len, call->key, status, reason);
    } else {
        pthread_mutex_lock(&pools->lock);
        note_latency(pools, call->pool, hr_clock_mono_ms() - call->started_ms);
        pthread_mutex_unlock(&pools->lock);
    }
    if (pools->redis) { /* the waiters fetch a fallback themselves, from Redis */
        if (!status)
            hr_pool_redis_add(pools->redis, call->key, call->key_len, call->content_type, answer,
                              len, spec->size, spec->ttl_s);
        free(answer);
        hr_pools_land(pools, call->key, call->key_len, call->flight, status, reason, 0, NULL);
        return;
    }
    size_t members = 0;
    hr_pool_answer_t *fallback = NULL;
    int64_t now = hr_clock_unix_ms();
    if (!status) {
        int rc = hr_pool_store_add(pools->store, call->pool, call->key, call->key_len, answer, len,
                                   call->content_type, spec->size, spec->ttl_s * 1000, now);
        if (rc != 0)
            hr_warn("pool.store_failed", "pool=%s bytes=%zu reason=\"%s\"", spec->name, len,
                    rc == HR_ELIMIT ? "larger than --pool-max-bytes" : "out of memory");
        members = hr_pool_store_count(pools->store, call->key, call->key_len);
    } else {
        fallback = hr_pool_store_pick(pools->store, call->key, call->key_len, 1, now);
    }
    free(answer);
    hr_pools_land(pools, call->key, call->key_len, call->flight, status, reason, members, fallback);
}

/* ---- stats ------------------------------------------------------------------------------ */

static int by_value(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static json_t *latency(hr_pools_t *pools, unsigned pool)
{
    uint32_t sorted[LATENCY_KEEP];
    pthread_mutex_lock(&pools->lock);
    pool_t *p = &pools->pools[pool];
    size_t n = p->nlatency < LATENCY_KEEP ? p->nlatency : LATENCY_KEEP;
    memcpy(sorted, p->latency_ms, n * sizeof sorted[0]);
    pthread_mutex_unlock(&pools->lock);
    if (!n) return json_pack("{s:n, s:n}", "p50_ms", "p99_ms");
    qsort(sorted, n, sizeof sorted[0], by_value);
    return json_pack("{s:I, s:I}", "p50_ms", (json_int_t)sorted[n / 2], "p99_ms",
                     (json_int_t)sorted[n * 99 / 100]);
}

json_t *hr_pools_stats(hr_pools_t *pools)
{
    json_t *all = json_object();
    for (unsigned i = 0; all && i < pools->npools; i++) {
        pool_t *p = &pools->pools[i];
        hr_upstream_stats_t up = {0};
        hr_upstream_stats(pools->upstream, i, &up);
        json_t *upstream = latency(pools, i);
        json_object_set_new(upstream, "calls", json_integer((json_int_t)up.calls));
        json_object_set_new(upstream, "in_flight", json_integer((json_int_t)up.in_flight));
        json_object_set_new(upstream, "waiting", json_integer((json_int_t)up.waiting));
        json_t *one =
            json_pack("{s:I, s:I, s:I, s:I, s:I, s:i, s:o}", "hits",
                      (json_int_t)atomic_load(&p->counts[HR_POOL_COUNT_HIT]), "misses",
                      (json_int_t)atomic_load(&p->misses), "shared",
                      (json_int_t)atomic_load(&p->counts[HR_POOL_COUNT_SHARED]), "fallbacks",
                      (json_int_t)atomic_load(&p->counts[HR_POOL_COUNT_FALLBACK]), "errors",
                      (json_int_t)atomic_load(&p->counts[HR_POOL_COUNT_ERROR]), "size",
                      (int)p->spec.size, "upstream", upstream);
        if (!pools->store) {
            json_object_set_new(one, "store", json_string("redis"));
        } else {
            hr_pool_store_stats_t stats;
            hr_pool_store_stats(pools->store, i, &stats);
            json_object_set_new(one, "keys", json_integer((json_int_t)stats.keys));
            json_object_set_new(one, "members", json_integer((json_int_t)stats.members));
            json_object_set_new(one, "bytes", json_integer((json_int_t)stats.bytes));
            json_object_set_new(one, "evictions", json_integer((json_int_t)stats.evictions));
        }
        json_object_set_new(all, p->spec.name, one);
    }
    return all;
}
