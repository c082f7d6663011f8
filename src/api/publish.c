/* POST /v1/topics/{topic} and POST /v1/publish?topic=a&topic=b. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/handlers.h"
#include "api/publish_body.h"
#include "core/error.h"
#include "core/id.h"
#include "core/log.h"
#include "core/server.h"

static int is_json(const hr_request_t *req)
{
    size_t len;
    const char *type = hr_request_header(req, "Content-Type", &len);
    static const char json_type[] = "application/json";
    if (!type || len < sizeof json_type - 1) return 0;
    if (strncasecmp(type, json_type, sizeof json_type - 1) != 0) return 0;
    char next = type[sizeof json_type - 1];
    return next == '\0' || next == ';' || next == ' ';
}

/* Raw body: the body is the data; ?event= and ?retry= may name and pace it. */
static int parse_raw(hr_exchange_t *ex, hr_pub_body_t *body)
{
    memset(body, 0, sizeof *body);
    body->data = ex->req->body ? ex->req->body : "";
    body->data_len = ex->req->body_len;
    const hr_qparam_t *event = hr_query_get(ex->params, ex->nparams, "event");
    if (event) {
        if (!hr_event_name_valid(event->value, event->value_len)) {
            hr_respond_error(ex, 400, "event must be 1-128 bytes without control characters");
            return -1;
        }
        body->event = event->value;
        body->event_len = event->value_len;
    }
    const hr_qparam_t *retry = hr_query_get(ex->params, ex->nparams, "retry");
    uint64_t retry_ms = 0;
    if (retry && (hr_id_parse(retry->value, retry->value_len, &retry_ms) != 0 || !retry_ms ||
                  retry_ms > 86400000)) {
        hr_respond_error(ex, 400, "retry must be an integer of ms in 1..86400000");
        return -1;
    }
    body->retry_ms = (uint32_t)retry_ms;
    return 0;
}

static json_t *publish_all(hr_exchange_t *ex, const hr_pub_body_t *body, const char **names,
                           const size_t *lens, size_t n)
{
    json_t *published = json_array();
    for (size_t i = 0; i < n; i++) {
        hr_publish_t pub = {names[i],        lens[i],       body->event,
                            body->event_len, body->data,    body->data_len,
                            body->retry_ms,  body->want_id, 0};
        uint64_t id = 0;
        int rc = hr_broker_publish(ex->worker->broker, &pub, &id);
        if (rc == HR_ECONFLICT) {
            json_decref(published);
            hr_respond_error(ex, 409, "id must be greater than every id published so far");
            return NULL;
        }
        if (rc != 0) {
            json_decref(published);
            hr_respond_error(ex, 503, "out of memory");
            return NULL;
        }
        json_array_append_new(
            published, json_pack("{s:s%, s:I}", "topic", names[i], lens[i], "id", (json_int_t)id));
    }
    return published;
}

/* A publish answered once its messages are on disk (--durability sync or batch). */
typedef struct publish_wait_s {
    hr_durable_wait_t wait;
    hr_pending_t *pending;
    uint64_t conn_id; /* for the log line of a failed write */
    char *body;       /* the 200 answer, ready */
} publish_wait_t;

static const char not_stored[] =
    "{\"error\":\"not stored: the write to disk failed (disk full?); the message was delivered "
    "live but may be missing after a restart\",\"status\":507}";

static void publish_stored(hr_durable_wait_t *wait, int stored)
{
    publish_wait_t *pw = hr_container_of(wait, publish_wait_t, wait);
    hr_pending_t *pending = pw->pending;
    if (stored) {
        pending->ops->respond(pending, 200, "application/json", pw->body, strlen(pw->body), 0);
    } else {
        hr_warn("publish.not_stored", "conn=%llu id=%llu status=507",
                (unsigned long long)pw->conn_id, (unsigned long long)wait->id);
        pending->ops->respond(pending, 507, "application/json", not_stored, sizeof not_stored - 1,
                              0);
    }
    free(pw->body);
    free(pw);
}

/* The client left before the disk answered: the write goes on, nobody hears of it. */
static void publish_gone(hr_pending_t *pending)
{
    publish_wait_t *pw = pending->user;
    hr_list_remove(&pw->wait.link);
    free(pw->body);
    free(pw);
}

static void publish_wake(hr_pending_t *pending)
{
    (void)pending; /* the answer needs the disk; it comes when the write does */
}

/* Answers now, or parks the answer until `last_id` is durable. Steals `reply`. */
static void answer_publish(hr_exchange_t *ex, json_t *reply, uint64_t last_id)
{
    hr_store_t *store = ex->worker->server->store;
    if (!hr_store_waits(store)) {
        hr_respond_json(ex, 200, reply);
        return;
    }
    publish_wait_t *pw = calloc(1, sizeof *pw);
    char *body = json_dumps(reply, JSON_COMPACT);
    json_decref(reply);
    if (!pw || !body) {
        free(pw);
        free(body);
        hr_respond_error(ex, 503, "out of memory");
        return;
    }
    pw->body = body;
    pw->conn_id = ex->conn->id;
    pw->pending = hr_respond_later(ex);
    pw->pending->user = pw;
    pw->pending->wake = publish_wake;
    pw->pending->on_close = publish_gone;
    hr_worker_wait_durable(ex->worker, &pw->wait, last_id, publish_stored);
}

void hr_handle_publish(hr_exchange_t *ex)
{
    size_t max = ex->worker->config->max_topics_per_sub;
    const char **names = malloc(max * sizeof *names);
    size_t *lens = malloc(max * sizeof *lens);
    size_t n = 0;
    hr_pub_body_t body = {0};
    if (!names || !lens) {
        hr_respond_error(ex, 503, "out of memory");
        goto done;
    }
    if (hr_api_topics(ex, names, lens, max, &n) != 0) goto done;
    if (is_json(ex->req)) {
        char err[256];
        if (hr_pub_body_parse_json(ex->req->body ? ex->req->body : "", ex->req->body_len, &body,
                                   err, sizeof err) != 0) {
            hr_respond_error(ex, 400, err);
            goto done;
        }
    } else if (parse_raw(ex, &body) != 0) {
        goto done;
    }
    if (body.want_id && n > 1) {
        hr_respond_error(ex, 400, "\"id\" can be set only when publishing to one topic");
        goto done;
    }
    if (hr_store_refusing(ex->worker->server->store)) {
        hr_respond_error(ex, 507,
                         "storage unavailable: a recent write to disk failed; retry later");
        goto done;
    }
    json_t *published = publish_all(ex, &body, names, lens, n);
    if (!published) goto done;
    json_t *last = json_array_get(published, json_array_size(published) - 1);
    uint64_t last_id = (uint64_t)json_integer_value(json_object_get(last, "id"));
    if (ex->route.id == HR_ROUTE_PUBLISH) {
        json_t *first = json_incref(json_array_get(published, 0));
        json_decref(published);
        answer_publish(ex, first, last_id);
    } else {
        answer_publish(ex, json_pack("{s:o}", "messages", published), last_id);
    }
done:
    hr_pub_body_free(&body);
    free(names);
    free(lens);
}
