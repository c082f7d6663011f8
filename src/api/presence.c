/* GET /v1/users/{id}/presence, POST /v1/presence/query, GET /v1/topics/{topic}/presence, and
 * what presence adds to SSE and poll subscriptions. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/handlers.h"
#include "api/presence.h"
#include "auth/auth.h"
#include "core/log.h"
#include "core/server.h"
#include "presence/presence_sinks.h"

int hr_api_identity(hr_exchange_t *ex, char user[HR_PRESENCE_USER_MAX + 1], size_t *len)
{
    *len = 0;
    const hr_auth_t *auth = ex->worker->server->auth;
    size_t token_len = 0;
    const char *token = hr_api_request_token(ex, &token_len);
    if (token && token_len && auth && auth->verifier.nkeys) {
        hr_token_t *claims = NULL;
        int admin_key;
        hr_auth_denial_t denial;
        /* A bad token names nobody; where a token was needed the access check refused it. */
        if (hr_auth_identify(auth, ex->worker->id, token, token_len, (int64_t)time(NULL), &claims,
                             &admin_key, &denial) == 0 &&
            claims && hr_presence_user_valid(claims->sub, claims->sub_len)) {
            memcpy(user, claims->sub, claims->sub_len);
            *len = claims->sub_len;
        }
        free(claims);
        if (*len) return 0;
    }
    const hr_qparam_t *param = hr_query_get(ex->params, ex->nparams, "user");
    if (!param) return 0;
    if (!ex->worker->config->presence_anonymous) {
        hr_respond_error(ex, 400,
                         "?user= names a user only with --presence-anonymous; send a token");
        return -1;
    }
    if (!hr_presence_user_valid(param->value, param->value_len)) {
        hr_respond_error(ex, 400, "bad user id: 1-120 bytes of A-Z a-z 0-9 - _ . : @ ~");
        return -1;
    }
    memcpy(user, param->value, param->value_len);
    *len = param->value_len;
    return 0;
}

static int presence_wanted(hr_exchange_t *ex, int *wanted)
{
    const hr_qparam_t *param = hr_query_get(ex->params, ex->nparams, "presence");
    *wanted = 0;
    if (!param) return 0;
    if (strcmp(param->value, "1") == 0 || strcmp(param->value, "true") == 0)
        *wanted = 1;
    else if (strcmp(param->value, "0") != 0 && strcmp(param->value, "false") != 0) {
        hr_respond_error(ex, 400, "presence must be 1 or 0");
        return -1;
    }
    return 0;
}

int hr_api_presence_prepare(hr_exchange_t *ex, const char **names, size_t *lens, size_t *n,
                            hr_api_presence_t *ap)
{
    memset(ap, 0, sizeof *ap);
    ap->ntopics = *n;
    int wanted;
    if (presence_wanted(ex, &wanted) != 0 || hr_api_identity(ex, ap->user, &ap->user_len) != 0)
        return -1;
    size_t extra = (wanted ? *n : 0) + (ap->user_len ? 1 : 0);
    if (!extra) return 0;
    ap->extra = malloc(extra * (HR_TOPIC_MAX_LEN + 1));
    if (!ap->extra) {
        hr_respond_error(ex, 503, "out of memory");
        return -1;
    }
    char *at = ap->extra;
    for (size_t i = 0; wanted && i < ap->ntopics; i++) {
        size_t len = hr_presence_topic(names[i], lens[i], at);
        if (!len) {
            hr_respond_error(ex, 400, "presence=1 needs topic names of at most 118 bytes");
            return -1;
        }
        names[*n] = at;
        lens[(*n)++] = len;
        at += HR_TOPIC_MAX_LEN + 1;
    }
    if (ap->user_len) {
        names[*n] = at;
        lens[(*n)++] = hr_signal_topic(ap->user, ap->user_len, at);
    }
    return 0;
}

void hr_api_presence_register(hr_exchange_t *ex, const hr_api_presence_t *ap,
                              hr_presence_conn_t *conn, enum hr_presence_via via,
                              const char *const *names, const size_t *lens)
{
    hr_presence_t *presence = ex->worker->server->presence;
    if (!ap->user_len || !presence) return;
    if (hr_presence_connect(presence, conn, ap->user, ap->user_len, via) != 0) {
        hr_warn("presence.oom", "conn=%llu", (unsigned long long)ex->conn->id);
        return;
    }
    for (size_t i = 0; i < ap->ntopics; i++)
        if (names[i][0] != '~') /* user streams are private, not places to be seen in */
            hr_presence_join(presence, conn, names[i], lens[i]);
}

void hr_api_presence_done(hr_api_presence_t *ap)
{
    free(ap->extra);
    ap->extra = NULL;
}

json_t *hr_presence_info_json(const char *user, size_t len, const hr_presence_info_t *info)
{
    json_t *via = json_array();
    for (int i = 0; i < HR_VIA_COUNT; i++)
        if (info->via_mask & (1u << i))
            json_array_append_new(via, json_string(hr_presence_via_names[i]));
    return json_pack("{s:s%, s:b, s:i, s:o, s:o}", "user", user, len, "online", info->online,
                     "connections", (int)info->conns, "transports", via, "last_seen",
                     info->last_seen_ms ? json_integer(info->last_seen_ms) : json_null());
}

/* Presence is as readable as the topics are: with --auth all a token (any) is needed. */
static int may_read_presence(hr_exchange_t *ex)
{
    const hr_auth_t *auth = ex->worker->server->auth;
    if (!auth || auth->mode != HR_AUTH_ALL) return 1;
    size_t token_len = 0;
    const char *token = hr_api_request_token(ex, &token_len);
    hr_token_t *claims = NULL;
    int admin_key = 0;
    hr_auth_denial_t denial = {401, 0, "a token is required", 0};
    int ok = token &&
             hr_auth_identify(auth, ex->worker->id, token, token_len, (int64_t)time(NULL), &claims,
                              &admin_key, &denial) == 0 &&
             (claims || admin_key);
    free(claims);
    if (!ok) hr_api_answer_denial(ex, &denial, NULL, NULL);
    return ok;
}

void hr_handle_user_presence(hr_exchange_t *ex)
{
    if (!may_read_presence(ex)) return;
    const char *user = ex->route.topic;
    size_t len = ex->route.topic_len;
    if (!hr_presence_user_valid(user, len)) {
        hr_respond_error(ex, 400, "bad user id: 1-120 bytes of A-Z a-z 0-9 - _ . : @ ~");
        return;
    }
    hr_server_t *server = ex->worker->server;
    if (server->presence_redis) {
        hr_presence_redis_query(server->presence_redis, ex, &user, &len, 1, 0);
        return;
    }
    hr_presence_info_t info;
    hr_presence_user(server->presence, user, len, &info);
    hr_respond_json(ex, 200, hr_presence_info_json(user, len, &info));
}

/* {"users":["a","b",...]}: up to HR_PRESENCE_QUERY_MAX ids. */
void hr_handle_presence_query(hr_exchange_t *ex)
{
    if (!may_read_presence(ex)) return;
    json_error_t jerr;
    json_t *root = json_loadb(ex->req->body ? ex->req->body : "", ex->req->body_len,
                              JSON_REJECT_DUPLICATES, &jerr);
    json_t *users = json_object_get(root, "users");
    size_t n = json_array_size(users);
    if (!json_is_array(users) || n > HR_PRESENCE_QUERY_MAX) {
        json_decref(root);
        hr_respond_error(ex, 400, "body must be {\"users\":[ids]} with at most 1000 ids");
        return;
    }
    const char **ids = malloc((n ? n : 1) * sizeof *ids);
    size_t *lens = malloc((n ? n : 1) * sizeof *lens);
    for (size_t i = 0; ids && lens && i < n; i++) {
        json_t *item = json_array_get(users, i);
        ids[i] = json_string_value(item);
        lens[i] = json_string_length(item);
        if (!ids[i] || !hr_presence_user_valid(ids[i], lens[i])) {
            hr_respond_error(ex, 400, "bad user id: 1-120 bytes of A-Z a-z 0-9 - _ . : @ ~");
            goto done;
        }
    }
    if (!ids || !lens) {
        hr_respond_error(ex, 503, "out of memory");
        goto done;
    }
    hr_server_t *server = ex->worker->server;
    if (server->presence_redis) {
        hr_presence_redis_query(server->presence_redis, ex, ids, lens, n, 1);
        goto done;
    }
    json_t *list = json_array();
    for (size_t i = 0; i < n; i++) {
        hr_presence_info_t info;
        hr_presence_user(server->presence, ids[i], lens[i], &info);
        json_array_append_new(list, hr_presence_info_json(ids[i], lens[i], &info));
    }
    hr_respond_json(ex, 200, json_pack("{s:o}", "users", list));
done:
    free(ids);
    free(lens);
    json_decref(root);
}

static void add_member(void *arg, const char *user, size_t len, unsigned conns)
{
    json_array_append_new(arg,
                          json_pack("{s:s%, s:i}", "user", user, len, "connections", (int)conns));
}

void hr_handle_topic_presence(hr_exchange_t *ex)
{
    const char *names[1];
    size_t lens[1], n;
    if (hr_api_topics(ex, names, lens, 1, &n) != 0) return;
    const hr_qparam_t *param = hr_query_get(ex->params, ex->nparams, "limit");
    long limit = param ? strtol(param->value, NULL, 10) : 1000;
    if (limit < 1 || limit > 10000) {
        hr_respond_error(ex, 400, "limit must be in 1..10000");
        return;
    }
    hr_server_t *server = ex->worker->server;
    if (server->presence_redis) {
        hr_presence_redis_members(server->presence_redis, ex, names[0], lens[0], (size_t)limit);
        return;
    }
    json_t *members = json_array();
    size_t count = hr_presence_members(server->presence, names[0], lens[0], (size_t)limit,
                                       add_member, members);
    hr_respond_json(ex, 200,
                    json_pack("{s:s%, s:I, s:o, s:b}", "topic", names[0], lens[0], "count",
                              (json_int_t)count, "members", members, "more",
                              count > json_array_size(members)));
}
