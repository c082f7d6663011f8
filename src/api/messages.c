/* GET /v1/topics/{topic}/messages?since=ID&limit=N and DELETE /v1/topics/{topic}/subscribers. */
#include "api/handlers.h"
#include "core/error.h"
#include "api/msg_json.h"
#include "core/broker.h"
#include "core/id.h"

#define DEFAULT_LIMIT 100
#define MAX_LIMIT     1000

static int number_param(hr_exchange_t *ex, const char *key, uint64_t *out)
{
    const hr_qparam_t *param = hr_query_get(ex->params, ex->nparams, key);
    if (!param) return 0;
    if (hr_id_parse(param->value, param->value_len, out) != 0) {
        char message[96];
        snprintf(message, sizeof message, "%s must be a non-negative decimal integer", key);
        hr_respond_error(ex, 400, message);
        return -1;
    }
    return 1;
}

void hr_handle_messages(hr_exchange_t *ex)
{
    uint64_t since = 0, limit = DEFAULT_LIMIT;
    const char *topic = ex->route.topic;
    size_t topic_len = ex->route.topic_len;
    if (hr_api_user_topic(ex, &topic, &topic_len, 1) != 0) return;
    if (!hr_topic_name_valid(topic, topic_len)) {
        hr_respond_error(ex, 400, "bad topic name");
        return;
    }
    if (hr_api_authorize(ex, HR_ACCESS_SUBSCRIBE, &topic, &topic_len, 1) != 0) return;
    if (number_param(ex, "since", &since) < 0 || number_param(ex, "limit", &limit) < 0) return;
    if (limit == 0 || limit > MAX_LIMIT) {
        hr_respond_error(ex, 400, "limit must be in 1..1000");
        return;
    }
    hr_replay_t replay;
    int rc = hr_broker_history(ex->worker->broker, topic, topic_len, since, (size_t)limit, &replay);
    if (rc == HR_ENOTREADY) {
        hr_api_defer(ex, &topic, &topic_len, 1); /* cluster: back here once the topic is live */
        return;
    }
    if (rc != 0) {
        hr_respond_error(ex, 503, "out of memory");
        return;
    }
    json_t *messages = json_array();
    uint64_t next = since;
    for (size_t i = 0; i < replay.count; i++) {
        json_array_append_new(messages, hr_msg_to_json(replay.msgs[i]));
        next = replay.msgs[i]->id;
    }
    /* With since=0 the caller asked for "everything held", so no gap is reported. */
    int gap = since != 0 && replay.ngaps > 0;
    json_t *body = json_pack("{s:s%, s:o, s:I, s:b, s:b}", "topic", topic, topic_len, "messages",
                             messages, "next", (json_int_t)next, "more", replay.more, "gap", gap);
    hr_replay_free(&replay);
    hr_respond_json(ex, 200, body);
}

void hr_handle_kick(hr_exchange_t *ex)
{
    if (!hr_topic_name_valid(ex->route.topic, ex->route.topic_len)) {
        hr_respond_error(ex, 400, "bad topic name");
        return;
    }
    if (hr_api_authorize(ex, HR_ACCESS_ADMIN, NULL, NULL, 0) != 0) return;
    size_t told = hr_broker_kick(ex->worker->broker, ex->route.topic, ex->route.topic_len);
    hr_respond_json(ex, 200,
                    json_pack("{s:s%, s:I}", "topic", ex->route.topic, ex->route.topic_len,
                              "disconnected", (json_int_t)told));
}
