/* Delayed messages on the HTTP side (docs/PUSH.md): a publish with deliver_at or delay is
 * kept and answered 202; GET /v1/delayed lists, DELETE /v1/delayed/{id} cancels (admin);
 * worker 0 publishes what is due, through the same path as any publish (live delivery, the
 * store, FCM per the message's policy). */
#include <stdlib.h>
#include <string.h>

#include "api/handlers.h"
#include "api/pubreq.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/id.h"
#include "core/log.h"
#include "core/server.h"
#include "delay/delayed.h"

void hr_api_publish_later(hr_exchange_t *ex, const char *const *names, const size_t *lens, size_t n,
                          const hr_pub_body_t *body)
{
    hr_delayed_t *delayed = ex->worker->server->delayed;
    if (!delayed) {
        hr_respond_error(ex, 501, "delayed messages are not served in cluster mode yet");
        return;
    }
    if (body->want_id) {
        hr_respond_error(ex, 400, "\"id\" cannot be chosen for a delayed message");
        return;
    }
    uint64_t id;
    int rc = hr_delayed_add(delayed, names, lens, n, body, 0, body->deliver_at_ms, &id);
    if (rc == HR_ELIMIT) {
        hr_respond_error(ex, 507,
                         "delayed messages at their limit (--delayed-max, "
                         "--delayed-max-bytes)");
        return;
    }
    if (rc != 0) {
        hr_respond_error(ex, 503, rc == HR_ENOMEM ? "out of memory" : "the store refused it");
        return;
    }
    hr_info("delayed.kept", "id=%llu deliver_at=%lld topics=%zu", (unsigned long long)id,
            (long long)body->deliver_at_ms, n);
    hr_respond_json(ex, 202,
                    json_pack("{s:I, s:I}", "delayed", (json_int_t)id, "deliver_at",
                              (json_int_t)body->deliver_at_ms));
}

static void fired(hr_pubreq_t *req)
{
    const char *reason, *code;
    if (hr_pubreq_status(req->result, &reason, &code) != 200)
        hr_warn("delayed.failed", "id=%llu code=%s", (unsigned long long)req->delayed_id, code);
    hr_pubreq_free(req);
}

void hr_delayed_fire_due(hr_worker_t *worker)
{
    hr_delayed_t *delayed = worker->server->delayed;
    int64_t now = hr_clock_unix_ms();
    hr_delayed_entry_t *entry;
    while ((entry = hr_delayed_take_due(delayed, now))) {
        hr_pub_body_t body = {.event = entry->event_len ? entry->event : NULL,
                              .event_len = entry->event_len,
                              .data = entry->data,
                              .data_len = entry->data_len,
                              .retry_ms = entry->retry_ms,
                              .fcm = entry->fcm,
                              .push = entry->push};
        hr_pubreq_t *req = hr_pubreq_new(worker, (const char *const *)entry->topics, entry->lens,
                                         entry->n, &body, entry->binary);
        if (!req) {
            hr_error("delayed.oom", "id=%llu", (unsigned long long)entry->id);
            hr_delayed_done(entry);
            continue;
        }
        req->delayed_id = entry->id;
        req->done = fired;
        hr_debug("delayed.due", "id=%llu late_ms=%lld", (unsigned long long)entry->id,
                 (long long)(now - entry->due_ms));
        if (hr_pubreq_submit(req) == 0) fired(req);
        hr_delayed_done(entry); /* the request copied what it needs */
    }
}

/* GET /v1/delayed?limit=N and DELETE /v1/delayed/{id}: the admin's. */
void hr_handle_delayed(hr_exchange_t *ex)
{
    if (hr_api_authorize(ex, HR_ACCESS_ADMIN, NULL, NULL, 0) != 0) return;
    hr_delayed_t *delayed = ex->worker->server->delayed;
    if (!delayed) {
        hr_respond_error(ex, 501, "delayed messages are not served in cluster mode yet");
        return;
    }
    if (ex->method != HR_DELETE) {
        const hr_qparam_t *param = hr_query_get(ex->params, ex->nparams, "limit");
        uint64_t limit = 1000;
        if (param && (hr_id_parse(param->value, param->value_len, &limit) != 0 || limit < 1 ||
                      limit > 10000)) {
            hr_respond_error(ex, 400, "limit must be in 1..10000");
            return;
        }
        hr_respond_json(ex, 200, hr_delayed_list(delayed, (size_t)limit));
        return;
    }
    uint64_t id;
    if (!ex->route.topic || hr_id_parse(ex->route.topic, ex->route.topic_len, &id) != 0) {
        hr_respond_error(ex, 400, "a delayed message's id is a decimal integer");
        return;
    }
    if (!hr_delayed_cancel(delayed, id)) {
        hr_respond_error(ex, 404, "no such delayed message (delivered, cancelled, or never)");
        return;
    }
    hr_respond(ex, 204, NULL, "", 0, NULL);
}
