/* POST /v1/topics/{topic} and POST /v1/publish?topic=a&topic=b. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/handlers.h"
#include "api/publish_body.h"
#include "api/pubreq.h"
#include "core/clock.h"
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

/* Raw body: the body is the data; ?event= and ?retry= may name and pace it. An empty body is
 * most often a client that forgot the data, so it needs ?allow_empty=1; a form upload would
 * publish its MIME boundaries, so multipart types are refused by name. */
static int parse_raw(hr_exchange_t *ex, hr_pub_body_t *body)
{
    memset(body, 0, sizeof *body);
    size_t type_len;
    const char *type = hr_request_header(ex->req, "Content-Type", &type_len);
    if (type && type_len >= 10 && strncasecmp(type, "multipart/", 10) == 0) {
        char why[200];
        snprintf(why, sizeof why,
                 "Content-Type %.*s is not accepted: send application/json, or the data itself "
                 "with any other type",
                 (int)(type_len < 64 ? type_len : 64), type);
        hr_respond_error(ex, 415, why);
        return -1;
    }
    const hr_qparam_t *allow_empty = hr_query_get(ex->params, ex->nparams, "allow_empty");
    if (ex->req->body_len == 0 &&
        !(allow_empty && allow_empty->value_len == 1 && allow_empty->value[0] == '1')) {
        hr_respond_error(ex, 400,
                         "empty body: send the message as the body, or add ?allow_empty=1 to "
                         "publish an empty message");
        return -1;
    }
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
    const hr_qparam_t *at = hr_query_get(ex->params, ex->nparams, "deliver_at");
    const hr_qparam_t *delay = hr_query_get(ex->params, ex->nparams, "delay");
    int64_t now = hr_clock_unix_ms();
    if ((at && delay) ||
        (at && hr_deliver_at_parse(at->value, at->value_len, now, &body->deliver_at_ms) != 0) ||
        (delay && hr_delay_parse(delay->value, delay->value_len, now, &body->deliver_at_ms) != 0)) {
        hr_respond_error(ex, 400,
                         "deliver_at is an RFC 3339 time or unix ms, delay whole ms; one of them, "
                         "at most 30 days ahead");
        return -1;
    }
    const hr_qparam_t *fcm = hr_query_get(ex->params, ex->nparams, "fcm");
    if (fcm && !(body->fcm = hr_fcm_mode_parse(fcm->value, fcm->value_len))) {
        hr_respond_error(ex, 400, "fcm must be never, offline or always");
        return -1;
    }
    return 0;
}

/* What a finished publish answers: {"topic","id"} for one topic, {"messages":[...]} for many,
 * or an error. Returns the status; *body is malloc'd. */
static int answer_body(const hr_pubreq_t *req, int many, char **body)
{
    const char *reason, *code;
    int status = hr_pubreq_status(req->result, &reason, &code);
    json_t *json;
    if (status != 200) {
        json = json_pack("{s:s, s:i}", "error", reason, "status", status);
    } else {
        json_t *ids = hr_pubreq_ids(req);
        json = many ? json_pack("{s:o}", "messages", ids) : json_incref(json_array_get(ids, 0));
        if (!many) json_decref(ids);
    }
    *body = json ? json_dumps(json, JSON_COMPACT) : NULL;
    json_decref(json);
    return status;
}

/* A publish answered later: waiting for the disk (--durability sync or batch) or for Redis.
 * Its answer is queued (hr_respond_queued): publishes pipelined behind it run meanwhile, so
 * Redis and the disk get them together, and the answers go out in request order. */
typedef struct publish_wait_s {
    hr_pending_t *pending;
    hr_metrics_t *metrics;
    uint64_t started_ns;
    hr_pubreq_t *req;
    uint64_t conn_id;
    int many;
} publish_wait_t;

static void publish_done(hr_pubreq_t *req)
{
    publish_wait_t *pw = req->user;
    char *body = NULL;
    int status = answer_body(req, pw->many, &body);
    if (status != 200)
        hr_warn("publish.failed", "conn=%llu status=%d topics=%zu", (unsigned long long)pw->conn_id,
                status, req->n);
    if (body)
        pw->pending->ops->respond(pw->pending, status, "application/json", body, strlen(body), 0);
    else
        pw->pending->ops->respond(pw->pending, 503, "application/json", "{}", 2, 1);
    free(body);
    hr_pubreq_free(req);
    hr_histogram_observe(&pw->metrics->publish, uv_hrtime() - pw->started_ns);
    free(pw);
}

/* The client left first: the publish goes on, nobody hears of it. */
static void publish_gone(hr_pending_t *pending)
{
    publish_wait_t *pw = pending->user;
    hr_pubreq_cancel(pw->req);
    free(pw);
}

void hr_api_publish_submit(hr_exchange_t *ex, hr_pubreq_t *req, int many)
{
    publish_wait_t *pw = calloc(1, sizeof *pw);
    if (!pw) {
        hr_pubreq_free(req);
        hr_respond_error(ex, 503, "out of memory");
        return;
    }
    if (hr_pubreq_submit(req) == 0) {
        free(pw);
        const char *reason, *code;
        int status = hr_pubreq_status(req->result, &reason, &code);
        char *body = NULL;
        if (status != 200)
            hr_respond_error(ex, status, reason);
        else if (answer_body(req, many, &body) != 200 || !body)
            hr_respond_error(ex, 503, "out of memory");
        else
            hr_respond(ex, 200, "application/json", body, strlen(body), NULL);
        free(body);
        hr_pubreq_free(req);
        hr_histogram_observe(&ex->worker->server->metrics.publish, uv_hrtime() - ex->started_ns);
        return;
    }
    pw->req = req;
    pw->many = many;
    pw->conn_id = ex->conn->id;
    pw->metrics = &ex->worker->server->metrics;
    pw->started_ns = ex->started_ns;
    req->user = pw;
    req->done = publish_done;
    pw->pending = hr_respond_queued(ex);
    if (!pw->pending) { /* under way, and no way to answer it: the client sees the close */
        hr_pubreq_cancel(req);
        free(pw);
        hr_conn_close(ex->conn);
        return;
    }
    pw->pending->user = pw;
    pw->pending->on_close = publish_gone;
}

/* --publish-rate: 429 with the seconds until the next token. */
static void refuse_rate(hr_exchange_t *ex, int64_t wait_ms)
{
    long long seconds = (wait_ms + 999) / 1000;
    char headers[64], body[160];
    snprintf(headers, sizeof headers, "Retry-After: %lld\r\n", seconds);
    int len = snprintf(body, sizeof body,
                       "{\"error\":\"publish rate limit: retry in %lld ms\",\"status\":429,"
                       "\"retry_after_ms\":%lld}",
                       (long long)wait_ms, (long long)wait_ms);
    hr_log(HR_LOG_INFO, "http.reject", "conn=%llu peer=%s status=429 reason=\"rate limit\"",
           (unsigned long long)ex->conn->id, ex->conn->peer);
    hr_respond(ex, 429, "application/json", body, (size_t)len, headers);
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
            char why[320];
            snprintf(why, sizeof why, "%s (the body was read as JSON: Content-Type %s)", err,
                     "application/json");
            hr_respond_error(ex, 400, why);
            goto done;
        }
    } else if (parse_raw(ex, &body) != 0) {
        goto done;
    }
    if (body.want_id && n > 1) {
        hr_respond_error(ex, 400, "\"id\" can be set only when publishing to one topic");
        goto done;
    }
    if (body.deliver_at_ms) {
        hr_api_publish_later(ex, names, lens, n, &body);
        goto done;
    }
    int64_t wait_ms = hr_pubreq_rate_wait(ex->worker, ex->conn->peer);
    if (wait_ms > 0) {
        refuse_rate(ex, wait_ms);
        goto done;
    }
    hr_pubreq_t *req = hr_pubreq_new(ex->worker, names, lens, n, &body, 0);
    if (!req) {
        hr_respond_error(ex, 503, "out of memory");
        goto done;
    }
    hr_api_publish_submit(ex, req, ex->route.id == HR_ROUTE_PUBLISH_MANY);
done:
    hr_pub_body_free(&body);
    free(names);
    free(lens);
}
