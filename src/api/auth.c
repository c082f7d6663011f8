/* Where a request's token is (Authorization: Bearer, the --auth-cookie cookie, ?access_token=)
 * and how a refusal is answered: 401 with WWW-Authenticate, or 403 naming the topic. The
 * decision itself is auth/auth.c's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "api/handlers.h"
#include "auth/auth.h"
#include "core/log.h"
#include "core/server.h"

/* `name=value` in a Cookie header (pairs separated by "; "). */
static const char *cookie_value(const char *header, size_t header_len, const char *name,
                                size_t *len)
{
    size_t name_len = strlen(name);
    for (size_t at = 0; at < header_len;) {
        while (at < header_len && (header[at] == ' ' || header[at] == ';'))
            at++;
        const char *pair = header + at;
        const char *end = memchr(pair, ';', header_len - at);
        size_t pair_len = end ? (size_t)(end - pair) : header_len - at;
        if (pair_len > name_len && pair[name_len] == '=' && memcmp(pair, name, name_len) == 0) {
            *len = pair_len - name_len - 1;
            return pair + name_len + 1;
        }
        at += pair_len;
    }
    return NULL;
}

const char *hr_api_request_token(hr_exchange_t *ex, size_t *len)
{
    size_t header_len;
    const char *header = hr_request_header(ex->req, "Authorization", &header_len);
    if (header && header_len > 7 && strncasecmp(header, "Bearer ", 7) == 0) {
        *len = header_len - 7;
        return header + 7;
    }
    header = hr_request_header(ex->req, "Cookie", &header_len);
    const char *token =
        header ? cookie_value(header, header_len, ex->worker->config->auth_cookie, len) : NULL;
    if (token) return token;
    const hr_qparam_t *param = hr_query_get(ex->params, ex->nparams, "access_token");
    if (param) *len = param->value_len;
    return param ? param->value : NULL;
}

void hr_api_answer_denial(hr_exchange_t *ex, const hr_auth_denial_t *denial,
                          const char *const *names, const size_t *lens)
{
    char headers[512] = "", body[512];
    int n;
    if (denial->status == 401) {
        snprintf(headers, sizeof headers,
                 denial->token_given ? "WWW-Authenticate: Bearer realm=\"herald\", "
                                       "error=\"invalid_token\", error_description=\"%s\"\r\n"
                                     : "WWW-Authenticate: Bearer realm=\"herald\"%s\r\n",
                 denial->token_given ? denial->reason : "");
        n = snprintf(body, sizeof body,
                     "{\"error\":\"unauthorized\",\"status\":401,\"reason\":\"%s\"}",
                     denial->reason);
    } else if (names) {
        n = snprintf(
            body, sizeof body,
            "{\"error\":\"forbidden\",\"status\":403,\"reason\":\"%s\",\"topic\":\"%.*s\"}",
            denial->reason, (int)lens[denial->topic], names[denial->topic]);
    } else {
        n = snprintf(body, sizeof body,
                     "{\"error\":\"forbidden\",\"status\":403,\"reason\":\"%s\"}", denial->reason);
    }
    hr_log(HR_LOG_INFO, "http.reject", "conn=%llu peer=%s status=%d reason=\"%s\"",
           (unsigned long long)ex->conn->id, ex->conn->peer, denial->status, denial->reason);
    hr_respond(ex, denial->status, "application/json", body, (size_t)n, headers);
}

int hr_api_user_topic(hr_exchange_t *ex, const char **names, size_t *lens, size_t n)
{
    if (ex->route.id == HR_ROUTE_USER_MESSAGES) {
        lens[0] = hr_user_topic(names[0], lens[0], ex->user_topic);
        names[0] = ex->user_topic;
        if (!lens[0]) hr_respond_error(ex, 400, "bad user id: 1-122 bytes of the topic alphabet");
        return lens[0] ? 0 : -1;
    }
    size_t me = sizeof HR_USER_ME - 1, self_len = 0;
    for (size_t i = 0; i < n; i++) {
        if (lens[i] != me || memcmp(names[i], HR_USER_ME, me) != 0) continue;
        if (!self_len) {
            const hr_auth_t *auth = ex->worker->server->auth;
            size_t token_len = 0;
            const char *token = hr_api_request_token(ex, &token_len);
            hr_token_t *claims = NULL;
            int admin_key;
            hr_auth_denial_t denial = {401, 0, "user:me needs a token with a sub", 0};
            if (auth &&
                hr_auth_identify(auth, ex->worker->id, token, token_len, (int64_t)time(NULL),
                                 &claims, &admin_key, &denial) == 0 &&
                claims)
                self_len = hr_user_topic(claims->sub, claims->sub_len, ex->user_topic);
            free(claims);
            if (!self_len) {
                if (denial.status == 401 && !denial.token_given && token) denial.token_given = 1;
                hr_api_answer_denial(ex, &denial, NULL, NULL);
                return -1;
            }
        }
        names[i] = ex->user_topic;
        lens[i] = self_len;
    }
    return 0;
}

int hr_api_authorize(hr_exchange_t *ex, enum hr_access access, const char *const *names,
                     const size_t *lens, size_t n)
{
    const hr_auth_t *auth = ex->worker->server->auth;
    if (!auth || !hr_auth_needed(auth, access, names, lens, n)) return 0; /* the common case */
    size_t token_len = 0;
    const char *token = hr_api_request_token(ex, &token_len);
    hr_auth_denial_t denial;
    if (hr_auth_decide(auth, ex->worker->id, token, token_len, access, names, lens, n,
                       (int64_t)time(NULL), &ex->token_exp_s, &denial) == 0)
        return 0;
    hr_api_answer_denial(ex, &denial, access == HR_ACCESS_ADMIN ? NULL : names, lens);
    return -1;
}
