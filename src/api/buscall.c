/* A request answered from a Redis reply (cluster mode): the command goes to the bus, the
 * response waits (hr_respond_later), and `build` turns the reply into the answer on the
 * request's worker. A client that leaves first is forgotten; the reply still frees. */
#include <stdlib.h>
#include <string.h>

#include "api/handlers.h"
#include "core/server.h"

typedef struct bus_answer_s {
    hr_pending_t *pending; /* NULL once the client left */
    hr_api_bus_build_fn build;
} bus_answer_t;

static void answered(hr_bus_cmd_t *cmd)
{
    bus_answer_t *answer = cmd->user;
    if (answer->pending) {
        answer->pending->user = NULL;
        int status = 503;
        json_t *json = cmd->error ? NULL : answer->build(cmd, &status);
        if (!json) {
            status = 503;
            json = json_pack("{s:s, s:i}", "error", "redis unavailable: retry", "status", 503);
        }
        char *text = json ? json_dumps(json, JSON_COMPACT) : NULL;
        json_decref(json);
        if (status == 204)
            answer->pending->ops->respond(answer->pending, 204, NULL, "", 0, 0);
        else
            answer->pending->ops->respond(answer->pending, text ? status : 503, "application/json",
                                          text ? text : "{}", text ? strlen(text) : 2, 0);
        free(text);
    }
    hr_bus_cmd_free(cmd);
    free(answer);
}

static void client_gone(hr_pending_t *pending)
{
    bus_answer_t *answer = pending->user;
    if (answer) answer->pending = NULL;
}

static void wake(hr_pending_t *pending)
{
    (void)pending; /* a pipelined request waits for this answer */
}

void hr_api_bus_answer(hr_exchange_t *ex, hr_bus_cmd_t *cmd, hr_api_bus_build_fn build)
{
    bus_answer_t *answer = calloc(1, sizeof *answer);
    if (!answer || !cmd) {
        free(answer);
        hr_bus_cmd_free(cmd);
        hr_respond_error(ex, 503, "out of memory");
        return;
    }
    answer->build = build;
    cmd->done = answered;
    cmd->worker = ex->worker->id;
    cmd->user = answer;
    if (hr_bus_command(ex->worker->server->bus, cmd) != 0) {
        free(answer);
        hr_bus_cmd_free(cmd);
        hr_respond_error(ex, 503, "redis unavailable: retry");
        return;
    }
    answer->pending = hr_respond_later(ex);
    answer->pending->user = answer;
    answer->pending->wake = wake;
    answer->pending->on_close = client_gone;
}
