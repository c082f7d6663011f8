/* /v1/pools (docs/POOLS.md): POST or GET /v1/pools/{pool}/{key} answers from the pool or the
 * upstream; GET .../members lists a key's answers, DELETE .../{key} (or ?id=) removes them;
 * GET /v1/pools shows each pool's numbers. Asking needs subscribe access to "pool:NAME" (with
 * --auth all); the admin routes need an admin token (unless --auth off). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/handlers.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/server.h"
#include "pool/pool.h"
#include "pool/pool_redis.h"
#include "transport/sse_encode.h"

#define ERROR_EVENT "event: herald.error\ndata: "

/* A request waiting on a flight (MISS or SHARED); freed by whichever ends it: the answer, the
 * client leaving, or (once streaming) the stream closing. */
typedef struct waiter_s {
    hr_flight_watch_t watch;
    hr_pools_t *pools;
    hr_flight_t *flight; /* NULL once unwatched */
    unsigned worker;
    unsigned pool;
    hr_pending_t *pending; /* until answered or streaming */
    hr_stream_t *stream;   /* once streaming */
    int wants_stream;      /* Accept: text/event-stream */
    const char *outcome;   /* "miss" or "shared" */
    size_t members;        /* cluster mode: what Redis counted when asked */
    hr_bus_cmd_t *fetch;   /* cluster mode: a fallback being fetched */
    int status;            /* ... and the failure it stands in for */
    char reason[160];
    char key[HR_POOL_NAME_MAX + HR_POOL_KEY_MAX + 2]; /* the store key */
    size_t key_len;
    char headers[192];
} waiter_t;

/* A Redis command's ticket back to its waiter (cluster mode): the ask, with what it keeps of
 * the request until Redis answers, or a fallback's fetch (no body). */
typedef struct redis_ask_s {
    waiter_t *waiter; /* NULL once the client left */
    hr_pool_ask_t question;
    char type[128], accept[128], key[HR_POOL_KEY_MAX + 1];
    char body[];
} redis_ask_t;

static hr_pools_t *pools_of(hr_exchange_t *ex)
{
    return ex->worker->server->pools;
}

static int wants_stream(hr_exchange_t *ex)
{
    size_t len;
    const char *accept = hr_request_header(ex->req, "Accept", &len);
    return accept && memmem(accept, len, "text/event-stream", 17) != NULL;
}

static void pool_headers(char *out, size_t size, const char *outcome, size_t members)
{
    snprintf(out, size,
             "X-Herald-Pool: %s\r\nX-Herald-Pool-Size: %zu\r\nCache-Control: "
             "no-store\r\nX-Accel-Buffering: no\r\n",
             outcome, members);
}

/* A stored answer, as it was or, asked as an event stream, as one (JSON and text become one
 * event's data). Returns the body to send (`bytes` itself or a new buffer) and its type. */
static char *as_asked(int stream, const char *type, const char *bytes, size_t len,
                      const char **out_type, size_t *out_len)
{
    *out_type = type[0] ? type : "application/octet-stream";
    *out_len = len;
    if (!stream || strncmp(type, "text/event-stream", 17) == 0) return (char *)bytes;
    char *frame = malloc(hr_sse_frame_size(0, 0, 0, bytes, len));
    if (!frame) return (char *)bytes;
    *out_len = hr_sse_frame(frame, "", 0, "", 0, 0, bytes, len);
    *out_type = "text/event-stream";
    return frame;
}

/* ---- waiting on a flight ---------------------------------------------------------------- */

static void unwatch(waiter_t *waiter)
{
    if (!waiter->flight) return;
    hr_flight_unwatch(waiter->flight, waiter->worker, &waiter->watch);
    waiter->flight = NULL;
}

static void client_gone(hr_pending_t *pending)
{
    waiter_t *waiter = pending->user;
    unwatch(waiter);
    if (waiter->fetch) /* its reply finds nobody */
        ((redis_ask_t *)waiter->fetch->user)->waiter = NULL;
    free(waiter);
}

static void stream_gone(hr_stream_t *stream)
{
    waiter_t *waiter = stream->user;
    unwatch(waiter);
    free(waiter);
}

static void wake(hr_pending_t *pending)
{
    (void)pending; /* a pipelined request waits for this answer */
}

static void write_chunks(waiter_t *waiter, const hr_flight_chunk_t *fresh,
                         const hr_flight_chunk_t *tail)
{
    for (const hr_flight_chunk_t *chunk = fresh; chunk; chunk = chunk->next) {
        if (waiter->stream->ops->write(waiter->stream, chunk->bytes, chunk->len, NULL) != 0) return;
        if (chunk == tail) break;
    }
}

/* The whole answer, from the chunks (all there once DONE). */
static char *gather(const hr_flight_t *flight, size_t *len)
{
    char *all = malloc(flight->len + 1);
    size_t at = 0;
    for (const hr_flight_chunk_t *chunk = flight->head; all && chunk; chunk = chunk->next) {
        memcpy(all + at, chunk->bytes, chunk->len);
        at += chunk->len;
    }
    *len = at;
    return all;
}

static void answer(waiter_t *waiter, int status, const char *type, const char *body, size_t len,
                   const char *outcome, size_t members)
{
    hr_pending_t *pending = waiter->pending;
    pool_headers(waiter->headers, sizeof waiter->headers, outcome, members);
    pending->extra_headers = waiter->headers;
    const char *out_type;
    size_t out_len;
    char *out = status == 200 ? as_asked(waiter->wants_stream, type, body, len, &out_type, &out_len)
                              : (char *)body;
    if (status != 200) {
        out_type = type;
        out_len = len;
    }
    pending->ops->respond(pending, status, out_type, out, out_len, 0);
    if (out != body) free(out);
    unwatch(waiter);
    free(waiter);
}

static void answer_error(waiter_t *waiter)
{
    hr_pools_count_one(waiter->pools, waiter->pool, HR_POOL_COUNT_ERROR);
    json_t *json = json_pack("{s:s, s:i}", "error", waiter->reason, "status", waiter->status);
    char *text = json ? json_dumps(json, JSON_COMPACT) : NULL;
    json_decref(json);
    answer(waiter, waiter->status, "application/json", text ? text : "{}", text ? strlen(text) : 2,
           waiter->outcome, 0);
    free(text);
}

static void answer_fallback(waiter_t *waiter, const char *type, const char *bytes, size_t len)
{
    hr_pools_count_one(waiter->pools, waiter->pool, HR_POOL_COUNT_FALLBACK);
    answer(waiter, 200, type, bytes, len, "fallback", 0);
}

/* Cluster mode: a random member of the key, from Redis, or the error. */
static void fallback_fetched(hr_bus_cmd_t *cmd)
{
    redis_ask_t *ticket = cmd->user;
    waiter_t *waiter = ticket->waiter;
    free(ticket);
    if (waiter) {
        waiter->fetch = NULL;
        const char *member = json_string_value(cmd->reply), *bytes;
        size_t len;
        char type[64];
        if (member && hr_pool_redis_split(member, json_string_length(cmd->reply), type, sizeof type,
                                          &bytes, &len) == 0)
            answer_fallback(waiter, type, bytes, len);
        else
            answer_error(waiter);
    }
    hr_bus_cmd_free(cmd);
}

/* Sends `cmd` for `waiter`, its reply to `done` with `ticket`; frees both when it cannot. */
static int send_for(waiter_t *waiter, hr_bus_cmd_t *cmd, void (*done)(hr_bus_cmd_t *cmd),
                    redis_ask_t *ticket)
{
    hr_pool_redis_t *redis = hr_pools_redis(waiter->pools);
    if (cmd) {
        cmd->done = done;
        cmd->worker = waiter->worker;
        cmd->user = ticket;
    }
    if (!cmd || hr_pool_redis_send(redis, cmd) != 0) {
        hr_bus_cmd_free(cmd);
        free(ticket);
        return -1;
    }
    ticket->waiter = waiter;
    waiter->fetch = cmd;
    return 0;
}

static void fetch_fallback(waiter_t *waiter, const char *key, size_t len)
{
    redis_ask_t *ticket = calloc(1, sizeof *ticket);
    hr_bus_cmd_t *cmd =
        ticket ? hr_pool_redis_random(hr_pools_redis(waiter->pools), key, len) : NULL;
    if (send_for(waiter, cmd, fallback_fetched, ticket) != 0) answer_error(waiter);
}

static void failed(waiter_t *waiter, hr_flight_t *flight)
{
    waiter->status = flight->status;
    snprintf(waiter->reason, sizeof waiter->reason, "%s", flight->reason);
    if (flight->fallback) {
        answer_fallback(waiter, flight->fallback_type, flight->fallback, flight->fallback_len);
    } else if (hr_pools_redis(waiter->pools)) {
        unwatch(waiter); /* the flight is over; the reply answers */
        fetch_fallback(waiter, waiter->key, waiter->key_len);
    } else {
        answer_error(waiter);
    }
}

/* A stream cut short: the error as a last event, then the end. */
static void stream_failed(waiter_t *waiter, hr_flight_t *flight)
{
    char event[256];
    int n = snprintf(event, sizeof event, ERROR_EVENT "{\"error\":\"%s\",\"status\":%d}\n\n",
                     flight->reason, flight->status);
    waiter->stream->ops->write(waiter->stream, event, (size_t)n, NULL);
    hr_pools_count_one(waiter->pools, waiter->pool, HR_POOL_COUNT_ERROR);
}

static void progress(hr_flight_watch_t *watch, hr_flight_t *flight, enum hr_flight_phase phase,
                     const hr_flight_chunk_t *fresh, const hr_flight_chunk_t *tail)
{
    waiter_t *waiter = hr_container_of(watch, waiter_t, watch);
    if (!waiter->stream && phase == HR_FLIGHT_STREAMING) {
        hr_pending_t *pending = waiter->pending;
        pool_headers(waiter->headers, sizeof waiter->headers, waiter->outcome, 0);
        pending->extra_headers = waiter->headers;
        waiter->pending = NULL;
        if (!(waiter->stream = pending->ops->stream(pending, flight->content_type))) {
            unwatch(waiter); /* the connection is closing, without calling back */
            free(waiter);
            return;
        }
        waiter->stream->on_close = stream_gone;
        waiter->stream->user = waiter;
    }
    if (waiter->stream) {
        write_chunks(waiter, fresh, tail);
        if (phase == HR_FLIGHT_FAILED) stream_failed(waiter, flight);
        if (phase == HR_FLIGHT_DONE || phase == HR_FLIGHT_FAILED) {
            unwatch(waiter);
            waiter->stream->ops->end(waiter->stream); /* stream_gone frees, later */
        }
        return;
    }
    if (phase == HR_FLIGHT_FAILED) {
        failed(waiter, flight);
    } else if (phase == HR_FLIGHT_DONE) {
        size_t len;
        char *all = gather(flight, &len);
        if (all)
            answer(waiter, 200, flight->content_type, all, len, waiter->outcome, flight->members);
        else
            answer(waiter, 503, "application/json", "{\"error\":\"out of memory\"}", 25,
                   waiter->outcome, 0);
        free(all);
    }
}

/* A waiter for the request, parked (the answer comes later). NULL after answering 503. */
static waiter_t *waiter_new(hr_exchange_t *ex, unsigned pool)
{
    waiter_t *waiter = calloc(1, sizeof *waiter);
    if (!waiter) {
        hr_respond_error(ex, 503, "out of memory");
        return NULL;
    }
    waiter->pools = pools_of(ex);
    waiter->worker = ex->worker->id;
    waiter->pool = pool;
    waiter->wants_stream = wants_stream(ex);
    waiter->watch.progress = progress;
    waiter->key_len = hr_pools_store_key(waiter->pools, pool, ex->route.token, ex->route.token_len,
                                         waiter->key, sizeof waiter->key);
    waiter->pending = hr_respond_later(ex);
    waiter->pending->user = waiter;
    waiter->pending->wake = wake;
    waiter->pending->on_close = client_gone;
    return waiter;
}

static void wait_on(waiter_t *waiter, hr_flight_t *flight, const char *outcome)
{
    waiter->flight = flight;
    waiter->outcome = outcome;
    hr_flight_watch(flight, waiter->worker, &waiter->watch); /* may answer at once */
}

/* ---- asking ----------------------------------------------------------------------------- */

/* 503 with `reason`: nothing was asked of the upstream. */
static void unavailable(waiter_t *waiter, const char *reason)
{
    waiter->status = 503;
    snprintf(waiter->reason, sizeof waiter->reason, "%s", reason);
    waiter->outcome = "miss";
    answer_error(waiter);
}

/* A MISS or SHARED outcome: wait on the flight; BUSY and NOMEM answer 503. */
static void joined(waiter_t *waiter, enum hr_pool_outcome outcome, hr_flight_t *flight)
{
    if (outcome == HR_POOL_MISS || outcome == HR_POOL_SHARED) {
        if (outcome == HR_POOL_SHARED)
            hr_pools_count_one(waiter->pools, waiter->pool, HR_POOL_COUNT_SHARED);
        wait_on(waiter, flight, outcome == HR_POOL_MISS ? "miss" : "shared");
        return;
    }
    unavailable(waiter, outcome == HR_POOL_BUSY
                            ? "pool busy: too many upstream calls waiting; retry"
                            : "out of memory");
}

static void redis_asked(hr_bus_cmd_t *cmd)
{
    redis_ask_t *asking = cmd->user;
    waiter_t *waiter = asking->waiter;
    json_t *reply = cmd->reply;
    if (waiter) waiter->fetch = NULL;
    if (waiter && (cmd->error || !json_is_array(reply))) {
        unavailable(waiter, "redis unavailable: retry");
    } else if (waiter) {
        waiter->members = (size_t)json_integer_value(json_array_get(reply, 0));
        const char *member = json_string_value(json_array_get(reply, 1)), *bytes;
        char type[64];
        size_t len;
        hr_flight_t *flight = NULL;
        if (member && hr_pool_redis_split(member, json_string_length(json_array_get(reply, 1)),
                                          type, sizeof type, &bytes, &len) == 0) {
            hr_pools_count_one(waiter->pools, waiter->pool, HR_POOL_COUNT_HIT);
            answer(waiter, 200, type, bytes, len, "hit", waiter->members);
        } else {
            enum hr_pool_outcome outcome =
                hr_pools_join(waiter->pools, &asking->question, waiter->members, &flight);
            joined(waiter, outcome, flight);
        }
    }
    free(asking);
    hr_bus_cmd_free(cmd);
}

static void ask_redis(hr_exchange_t *ex, const hr_pool_ask_t *question)
{
    hr_pools_t *pools = pools_of(ex);
    redis_ask_t *asking = calloc(1, sizeof *asking + question->body_len + 1);
    if (!asking) {
        hr_respond_error(ex, 503, "out of memory");
        return;
    }
    asking->question = *question;
    memcpy(asking->key, question->key, question->key_len);
    asking->question.key = asking->key;
    if (question->body_len) memcpy(asking->body, question->body, question->body_len);
    asking->question.body = asking->body;
    if (question->content_type)
        asking->question.content_type = strcpy(asking->type, question->content_type);
    if (question->accept) asking->question.accept = strcpy(asking->accept, question->accept);
    waiter_t *waiter = waiter_new(ex, question->pool);
    if (!waiter) {
        free(asking);
        return;
    }
    hr_bus_cmd_t *cmd = hr_pool_redis_ask(hr_pools_redis(pools), waiter->key, waiter->key_len,
                                          hr_pools_spec(pools, question->pool)->size);
    if (send_for(waiter, cmd, redis_asked, asking) != 0) {
        unavailable(waiter, "redis unavailable: retry");
    }
}

static void respond_hit(hr_exchange_t *ex, hr_pool_answer_t *hit, size_t members)
{
    char headers[192];
    pool_headers(headers, sizeof headers, "hit", members);
    const char *type;
    size_t len;
    char *body = as_asked(wants_stream(ex), hit->content_type, hit->bytes, hit->len, &type, &len);
    hr_respond(ex, 200, type, body, len, headers);
    if (body != hit->bytes) free(body);
}

/* A header's value as a string for the upstream call (NULL when absent or too long). */
static const char *header_copy(hr_exchange_t *ex, const char *name, char *out, size_t size)
{
    size_t len;
    const char *value = hr_request_header(ex->req, name, &len);
    if (!value || len >= size) return NULL;
    memcpy(out, value, len);
    out[len] = '\0';
    return out;
}

/* The {pool} and {key} of the path: the pool's number, or -1 after answering 404/400/401/403. */
static int pool_param(hr_exchange_t *ex, enum hr_access access)
{
    hr_pools_t *pools = pools_of(ex);
    int pool = hr_pools_find(pools, ex->route.topic, ex->route.topic_len);
    if (pool < 0) {
        hr_respond_error(ex, 404, "no such pool (see --pool)");
        return -1;
    }
    if (ex->route.token && (ex->route.token_len > HR_POOL_KEY_MAX ||
                            !hr_topic_name_valid(ex->route.token, ex->route.token_len))) {
        hr_respond_error(ex, 400, "bad key: 1-200 bytes of A-Z a-z 0-9 - _ . : @ ~");
        return -1;
    }
    char name[HR_POOL_NAME_MAX + 6];
    snprintf(name, sizeof name, "pool:%s", hr_pools_spec(pools, (unsigned)pool)->name);
    const char *names[1] = {name};
    size_t lens[1] = {strlen(name)};
    return hr_api_authorize(ex, access, names, lens, 1) == 0 ? pool : -1;
}

static void ask(hr_exchange_t *ex, unsigned pool)
{
    hr_pools_t *pools = pools_of(ex);
    char type[128], accept[128];
    hr_pool_ask_t question = {.pool = pool,
                              .key = ex->route.token,
                              .key_len = ex->route.token_len,
                              .post = ex->method == HR_POST,
                              .body = ex->req->body,
                              .body_len = ex->req->body_len,
                              .content_type = header_copy(ex, "Content-Type", type, sizeof type),
                              .accept = header_copy(ex, "Accept", accept, sizeof accept)};
    hr_pool_answer_t *hit = NULL;
    hr_flight_t *flight = NULL;
    size_t members = 0;
    waiter_t *waiter;
    if (hr_pools_redis(pools)) {
        ask_redis(ex, &question);
        return;
    }
    enum hr_pool_outcome outcome = hr_pools_ask(pools, &question, &hit, &flight, &members);
    switch (outcome) {
    case HR_POOL_HIT:
        hr_pools_count_one(pools, pool, HR_POOL_COUNT_HIT);
        respond_hit(ex, hit, members);
        free(hit);
        return;
    case HR_POOL_MISS:
    case HR_POOL_SHARED:
        if (!(waiter = waiter_new(ex, pool))) {
            hr_flight_unref(flight);
            return;
        }
        joined(waiter, outcome, flight);
        return;
    case HR_POOL_BUSY:
        hr_pools_count_one(pools, pool, HR_POOL_COUNT_ERROR);
        hr_respond_error(ex, 503, "pool busy: too many upstream calls waiting; retry");
        return;
    default:
        hr_respond_error(ex, 503, "out of memory");
        return;
    }
}

/* ---- admin ------------------------------------------------------------------------------ */

static void list_one(void *arg, uint64_t id, const char *type, const char *bytes, size_t len)
{
    char hex[17];
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)id);
    json_array_append_new(arg, json_pack("{s:s, s:s, s:I, s:s%}", "id", hex, "content_type", type,
                                         "bytes", (json_int_t)len, "body", bytes, len));
}

/* Cluster mode: SMEMBERS' reply as the list. */
static json_t *members_listed(hr_bus_cmd_t *cmd, int *status)
{
    json_t *members = json_array();
    for (size_t i = 0; i < json_array_size(cmd->reply); i++) {
        json_t *item = json_array_get(cmd->reply, i);
        const char *bytes;
        char type[64];
        size_t len;
        if (hr_pool_redis_split(json_string_value(item), json_string_length(item), type,
                                sizeof type, &bytes, &len) == 0)
            list_one(members, hr_pool_member_id(bytes, len), type, bytes, len);
    }
    *status = 200;
    return json_pack("{s:o}", "members", members);
}

static json_t *removed(hr_bus_cmd_t *cmd, int *status)
{
    *status = json_integer_value(cmd->reply) == 1 ? 204 : 404;
    return *status == 204
               ? json_object()
               : json_pack("{s:s, s:i}", "error", "no such member or key", "status", 404);
}

static void list_members(hr_exchange_t *ex, unsigned pool)
{
    hr_pools_t *pools = pools_of(ex);
    char name[HR_POOL_NAME_MAX + HR_POOL_KEY_MAX + 2];
    size_t len =
        hr_pools_store_key(pools, pool, ex->route.token, ex->route.token_len, name, sizeof name);
    if (hr_pools_redis(pools)) {
        hr_api_bus_answer(ex, hr_pool_redis_members(hr_pools_redis(pools), name, len),
                          members_listed);
        return;
    }
    json_t *members = json_array();
    hr_pool_store_list(hr_pools_store(pools), name, len, list_one, members);
    hr_respond_json(ex, 200,
                    json_pack("{s:s, s:s%, s:o}", "pool", hr_pools_spec(pools, pool)->name, "key",
                              ex->route.token, ex->route.token_len, "members", members));
}

/* DELETE a key, or with ?id= one member (a bad answer must be removable). */
static void remove_members(hr_exchange_t *ex, unsigned pool)
{
    hr_pools_t *pools = pools_of(ex);
    uint64_t id = 0;
    for (int i = 0; i < ex->nparams; i++) {
        if (strcmp(ex->params[i].key, "id") != 0) continue;
        char *end;
        id = strtoull(ex->params[i].value, &end, 16);
        if (*end || ex->params[i].value_len != 16 || id == 0) {
            hr_respond_error(ex, 400, "id is a member's 16 hex digits (see .../members)");
            return;
        }
    }
    char name[HR_POOL_NAME_MAX + HR_POOL_KEY_MAX + 2];
    size_t len =
        hr_pools_store_key(pools, pool, ex->route.token, ex->route.token_len, name, sizeof name);
    hr_info("pool.remove", "pool=%s key=\"%.*s\" id=%016llx", hr_pools_spec(pools, pool)->name,
            (int)ex->route.token_len, ex->route.token, (unsigned long long)id);
    if (hr_pools_redis(pools)) {
        hr_api_bus_answer(ex, hr_pool_redis_remove(hr_pools_redis(pools), name, len, id), removed);
        return;
    }
    if (!hr_pool_store_remove(hr_pools_store(pools), name, len, id)) {
        hr_respond_error(ex, 404, id ? "no such member" : "no such key");
        return;
    }
    hr_respond(ex, 204, NULL, "", 0, NULL);
}

void hr_handle_pool(hr_exchange_t *ex)
{
    int admin = ex->method == HR_DELETE;
    int pool = pool_param(ex, admin ? HR_ACCESS_ADMIN : HR_ACCESS_SUBSCRIBE);
    if (pool < 0) return;
    if (admin)
        remove_members(ex, (unsigned)pool);
    else
        ask(ex, (unsigned)pool);
}

void hr_handle_pool_members(hr_exchange_t *ex)
{
    int pool = pool_param(ex, HR_ACCESS_ADMIN);
    if (pool >= 0) list_members(ex, (unsigned)pool);
}

void hr_handle_pools(hr_exchange_t *ex)
{
    if (hr_api_authorize(ex, HR_ACCESS_ADMIN, NULL, NULL, 0) != 0) return;
    hr_respond_json(ex, 200, json_pack("{s:o}", "pools", hr_pools_stats(pools_of(ex))));
}
