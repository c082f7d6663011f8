/* POST /v1/topics/{topic} and POST /v1/publish?topic=a&topic=b. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/handlers.h"
#include "api/publish_body.h"
#include "core/error.h"
#include "core/id.h"

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
        hr_publish_t pub = {names[i],   lens[i],        body->event,    body->event_len,
                            body->data, body->data_len, body->retry_ms, body->want_id, 0};
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
    json_t *published = publish_all(ex, &body, names, lens, n);
    if (!published) goto done;
    if (ex->route.id == HR_ROUTE_PUBLISH) {
        json_t *first = json_incref(json_array_get(published, 0));
        json_decref(published);
        hr_respond_json(ex, 200, first);
    } else {
        hr_respond_json(ex, 200, json_pack("{s:o}", "messages", published));
    }
done:
    hr_pub_body_free(&body);
    free(names);
    free(lens);
}
