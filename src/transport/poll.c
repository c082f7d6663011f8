/* Long and short polling: GET /v1/topics/{topic}/poll and GET /v1/poll?topic=a&topic=b, with
 * ?since=ID&timeout=S&limit=N. A poll subscribes like any transport, with `since` as its resume
 * point: held messages after it are answered at once; with none, the request parks (a pending
 * response) until the first drain that brings a message, the timeout, a kick or shutdown.
 * Every answer carries the cursor for the next poll: nothing published between two polls is
 * lost, nothing is sent twice. timeout=0 is short polling: answer at once, always. */
#include <stdlib.h>
#include <string.h>

#include "api/handlers.h"
#include "api/msg_json.h"
#include "api/presence.h"
#include "core/server.h"
#include "core/id.h"
#include "core/error.h"
#include "core/log.h"
#include "core/sub.h"
#include "transport/registry.h"

#define DEFAULT_LIMIT 100
#define MAX_LIMIT     1000

typedef struct poll_s {
    hr_sub_t sub;                /* broker membership while parked */
    hr_worker_t *worker;         /* owner thread */
    hr_pending_t *pending;       /* the parked response */
    hr_timeq_entry_t timeout;    /* in worker->timeouts */
    hr_task_t ready;             /* in worker->after_drain once a message or a kick came */
    hr_msg_t **msgs;             /* live messages gathered, one reference each, ascending id */
    size_t count, limit;         /* gathered, and the most one answer carries */
    int more;                    /* messages came beyond `limit`: the client should poll again */
    int close_after;             /* kicked: answer with Connection: close */
    uint64_t cursor;             /* resume point to answer when no message came */
    hr_presence_conn_t presence; /* the user counts as connected while the poll is parked */
} poll_t;

extern const hr_transport_t hr_poll_transport;

/* {"messages":[...], "cursor":ID, "more":bool, "gaps":[{"topic","available_after"}]} */
static char *batch_text(hr_msg_t *const *msgs, size_t count, int more, const hr_gap_t *gaps,
                        size_t ngaps, uint64_t cursor)
{
    json_t *list = json_array(), *gap_list = json_array();
    for (size_t i = 0; i < count; i++)
        json_array_append_new(list, hr_msg_to_json(msgs[i]));
    for (size_t i = 0; i < ngaps; i++)
        json_array_append_new(gap_list, json_pack("{s:s, s:I}", "topic", gaps[i].topic,
                                                  "available_after", (json_int_t)gaps[i].floor_id));
    json_t *body = json_pack("{s:o, s:I, s:b, s:o}", "messages", list, "cursor", (json_int_t)cursor,
                             "more", more, "gaps", gap_list);
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    return text;
}

static void poll_free(poll_t *poll)
{
    if (poll->worker->server->presence)
        hr_presence_disconnect(poll->worker->server->presence, &poll->presence);
    hr_broker_unsubscribe(poll->worker->broker, &poll->sub);
    hr_worker_remove_sub(poll->worker, &poll->sub);
    hr_timeq_remove(&poll->timeout);
    hr_list_remove(&poll->ready.link);
    for (size_t i = 0; i < poll->count; i++)
        hr_msg_unref(poll->msgs[i]);
    free(poll->msgs);
    free(poll);
}

/* Answers a parked poll with what it gathered, then frees it. */
static void poll_answer(poll_t *poll)
{
    uint64_t cursor = poll->count ? poll->msgs[poll->count - 1]->id : poll->cursor;
    char *text = batch_text(poll->msgs, poll->count, poll->more, NULL, 0, cursor);
    hr_pending_t *pending = poll->pending;
    if (text)
        pending->ops->respond(pending, 200, "application/json", text, strlen(text),
                              poll->close_after);
    else
        pending->ops->respond(pending, 503, "application/json", "{\"error\":\"out of memory\"}", 25,
                              1);
    free(text);
    poll_free(poll);
}

static void on_ready(hr_task_t *task)
{
    poll_answer(hr_container_of(task, poll_t, ready));
}

static void on_timeout(hr_timeq_entry_t *entry)
{
    poll_answer(hr_container_of(entry, poll_t, timeout));
}

static void on_wake(hr_pending_t *pending)
{
    poll_answer(pending->user);
}

static void on_close(hr_pending_t *pending)
{
    poll_free(pending->user);
}

/* Called during the drain: gather, and answer once the drain is over so that one answer
 * carries every message this wake-up brought. */
static int poll_deliver(hr_sub_t *sub, hr_msg_t *msg)
{
    poll_t *poll = (poll_t *)sub;
    if (poll->count == poll->limit) {
        poll->more = 1;
        return 0;
    }
    poll->msgs[poll->count++] = hr_msg_ref(msg);
    hr_worker_after_drain(poll->worker, &poll->ready);
    return 0;
}

/* Kicks come during a drain or a shutdown; answering then would unlink this subscriber from
 * the list being walked, so the answer waits for the end of the drain (or the shutdown's wake). */
static void poll_kick(hr_sub_t *sub)
{
    poll_t *poll = (poll_t *)sub;
    poll->close_after = 1;
    hr_worker_after_drain(poll->worker, &poll->ready);
}

static void poll_heartbeat(hr_sub_t *sub)
{
    (void)sub; /* a parked poll is answered within its timeout; nothing to keep warm */
}

const hr_transport_t hr_poll_transport = {"poll", poll_deliver, poll_kick, poll_heartbeat};

/* ?KEY= as a decimal number in [min, max]; 0 when absent, 1 when read, -1 when answered 400. */
static int number_param(hr_exchange_t *ex, const char *key, uint64_t min, uint64_t max,
                        uint64_t *out)
{
    const hr_qparam_t *param = hr_query_get(ex->params, ex->nparams, key);
    if (!param) return 0;
    if (hr_id_parse(param->value, param->value_len, out) == 0 && *out >= min && *out <= max)
        return 1;
    char message[128];
    if (max == UINT64_MAX)
        snprintf(message, sizeof message, "%s must be a message id (a decimal integer)", key);
    else
        snprintf(message, sizeof message, "%s must be a decimal integer in %llu..%llu", key,
                 (unsigned long long)min, (unsigned long long)max);
    hr_respond_error(ex, 400, message);
    return -1;
}

typedef struct poll_args_s {
    int resuming; /* ?since= given */
    uint64_t since, timeout_s, limit;
} poll_args_t;

static int read_args(hr_exchange_t *ex, poll_args_t *args)
{
    const hr_config_t *config = ex->worker->config;
    unsigned max_timeout = config->poll_timeout_max_s;
    args->timeout_s = config->poll_timeout_s < max_timeout ? config->poll_timeout_s : max_timeout;
    args->limit = DEFAULT_LIMIT;
    args->resuming = number_param(ex, "since", 0, UINT64_MAX, &args->since);
    if (args->resuming < 0 || number_param(ex, "timeout", 0, max_timeout, &args->timeout_s) < 0 ||
        number_param(ex, "limit", 1, MAX_LIMIT, &args->limit) < 0)
        return -1;
    return 0;
}

/* Held messages (or a gap) answer at once, as does a short poll. */
static void answer_now(hr_exchange_t *ex, const poll_args_t *args, const hr_replay_t *replay)
{
    size_t count = replay->count < args->limit ? replay->count : (size_t)args->limit;
    int more = replay->count > count;
    uint64_t cursor = more ? replay->msgs[count - 1]->id : replay->last_id;
    if (args->resuming && args->since > cursor) cursor = args->since;
    /* since=0 asks for everything held, so nothing counts as missed. */
    size_t ngaps = args->resuming && args->since != 0 ? replay->ngaps : 0;
    char *text = batch_text(replay->msgs, count, more, replay->gaps, ngaps, cursor);
    if (!text) {
        hr_respond_error(ex, 503, "out of memory");
        return;
    }
    hr_respond(ex, 200, "application/json", text, strlen(text), NULL);
    free(text);
}

static poll_t *poll_new(hr_exchange_t *ex, size_t limit)
{
    poll_t *poll = calloc(1, sizeof *poll);
    if (!poll) return NULL;
    poll->msgs = calloc(limit, sizeof *poll->msgs);
    if (!poll->msgs) {
        free(poll);
        return NULL;
    }
    poll->limit = limit;
    poll->worker = ex->worker;
    poll->sub.vt = &hr_poll_transport;
    poll->sub.owner = poll;
    poll->sub.worker = ex->worker->id;
    hr_list_init(&poll->sub.worker_link);
    hr_list_init(&poll->ready.link);
    poll->ready.run = on_ready;
    hr_timeq_entry_init(&poll->timeout);
    return poll;
}

static void park(hr_exchange_t *ex, poll_t *poll, const poll_args_t *args, uint64_t cursor)
{
    poll->cursor = cursor;
    poll->pending = hr_respond_later(ex);
    poll->pending->user = poll;
    poll->pending->wake = on_wake;
    poll->pending->on_close = on_close;
    hr_worker_add_sub(ex->worker, &poll->sub);
    hr_timeq_add(&ex->worker->timeouts, &poll->timeout, (unsigned)args->timeout_s, on_timeout);
}

static void handle_poll(hr_exchange_t *ex)
{
    size_t max = ex->worker->config->max_topics_per_sub, n = 0;
    const char **names = malloc((2 * max + 1) * sizeof *names);
    size_t *lens = malloc((2 * max + 1) * sizeof *lens);
    poll_args_t args;
    poll_t *poll = NULL;
    hr_replay_t replay = {0};
    hr_api_presence_t ap = {0};
    if (!names || !lens) {
        hr_respond_error(ex, 503, "out of memory");
        goto done;
    }
    if (hr_api_topics(ex, names, lens, max, &n) != 0 || read_args(ex, &args) != 0 ||
        hr_api_presence_prepare(ex, names, lens, &n, &ap) != 0)
        goto done;
    poll = poll_new(ex, (size_t)args.limit);
    int rc = poll ? hr_broker_subscribe(ex->worker->broker, &poll->sub, names, lens, n,
                                        args.resuming ? &args.since : NULL, &replay)
                  : HR_ENOMEM;
    if (rc == HR_ENOTREADY) {
        hr_api_defer(ex, names, lens, n); /* cluster: back here once the topics are live */
        goto done;
    }
    if (rc != 0) {
        hr_respond_error(ex, 503, rc == HR_ELIMIT ? HR_TOPIC_LIMIT_TEXT : "out of memory");
        goto done;
    }
    int missed = args.resuming && args.since != 0 && replay.ngaps > 0;
    /* A poll is a visit: even one answered at once counts (the grace keeps the user online
     * between polls). */
    hr_api_presence_register(ex, &ap, &poll->presence, HR_VIA_POLL, names, lens);
    if (replay.count > 0 || missed || args.timeout_s == 0) {
        answer_now(ex, &args, &replay);
        goto done;
    }
    uint64_t cursor = replay.last_id;
    if (args.resuming && args.since > cursor) cursor = args.since;
    park(ex, poll, &args, cursor);
    poll = NULL; /* the pending response owns it now */
done:
    if (poll) poll_free(poll);
    hr_replay_free(&replay);
    hr_api_presence_done(&ap);
    free(names);
    free(lens);
}

static const hr_route_entry_t poll_routes[] = {
    {"/v1/topics/{topic}/poll", HR_GET, HR_ROUTE_TRANSPORT, "GET, OPTIONS", &hr_poll_def},
    {"/v1/poll", HR_GET, HR_ROUTE_TRANSPORT, "GET, OPTIONS", &hr_poll_def},
};

const hr_transport_def_t hr_poll_def = {"poll", HR_CONN_POLL, handle_poll, poll_routes,
                                        sizeof poll_routes / sizeof poll_routes[0]};
