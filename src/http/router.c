#include <string.h>

#include "http/router.h"

typedef hr_route_entry_t route_t;

static const route_t routes[] = {
    {"/healthz", HR_GET | HR_HEAD, HR_ROUTE_HEALTH, "GET, HEAD, OPTIONS", NULL},
    {"/v1/stats", HR_GET | HR_HEAD, HR_ROUTE_STATS, "GET, HEAD, OPTIONS", NULL},
    {"/metrics", HR_GET | HR_HEAD, HR_ROUTE_METRICS, "GET, HEAD, OPTIONS", NULL},
    {"/v1/stats/stream", HR_GET, HR_ROUTE_STATS_STREAM, "GET, OPTIONS", NULL},
    {"/v1/topics", HR_GET | HR_HEAD, HR_ROUTE_TOPICS, "GET, HEAD, OPTIONS", NULL},
    {"/dashboard", HR_GET | HR_HEAD, HR_ROUTE_ASSET, "GET, HEAD", NULL},
    {"/v1/publish", HR_POST, HR_ROUTE_PUBLISH_MANY, "POST, OPTIONS", NULL},
    {"/herald.js", HR_GET | HR_HEAD, HR_ROUTE_ASSET, "GET, HEAD", NULL},
    {"/herald.d.ts", HR_GET | HR_HEAD, HR_ROUTE_ASSET, "GET, HEAD", NULL},
    {"/demo", HR_GET | HR_HEAD, HR_ROUTE_ASSET, "GET, HEAD", NULL},
    {"/demo/call", HR_GET | HR_HEAD, HR_ROUTE_ASSET, "GET, HEAD", NULL},
    {"/v1/presence/query", HR_POST, HR_ROUTE_PRESENCE_QUERY, "POST, OPTIONS", NULL},
    {"/v1/topics/{topic}", HR_POST, HR_ROUTE_PUBLISH, "POST, OPTIONS", NULL},
    {"/v1/topics/{topic}/messages", HR_GET | HR_HEAD, HR_ROUTE_TOPIC_MESSAGES, "GET, HEAD, OPTIONS",
     NULL},
    {"/v1/topics/{topic}/subscribers", HR_DELETE, HR_ROUTE_TOPIC_SUBSCRIBERS, "DELETE, OPTIONS",
     NULL},
    {"/v1/users/{topic}/messages", HR_POST, HR_ROUTE_USER_MESSAGES, "POST, OPTIONS", NULL},
    {"/v1/users/{topic}/presence", HR_GET | HR_HEAD, HR_ROUTE_USER_PRESENCE, "GET, HEAD, OPTIONS",
     NULL},
    {"/v1/users/{topic}/signal", HR_POST, HR_ROUTE_USER_SIGNAL, "POST, OPTIONS", NULL},
    {"/v1/topics/{topic}/presence", HR_GET | HR_HEAD, HR_ROUTE_TOPIC_PRESENCE, "GET, HEAD, OPTIONS",
     NULL},
    {"/v1/users/{topic}/devices/{token}", HR_PUT | HR_DELETE, HR_ROUTE_DEVICE,
     "PUT, DELETE, OPTIONS", NULL},
    {"/v1/users/{topic}/devices", HR_GET | HR_HEAD, HR_ROUTE_DEVICES, "GET, HEAD, OPTIONS", NULL},
    {"/v1/fcm/dead", HR_GET | HR_HEAD, HR_ROUTE_FCM_DEAD, "GET, HEAD, OPTIONS", NULL},
    {"/v1/delayed", HR_GET | HR_HEAD, HR_ROUTE_DELAYED, "GET, HEAD, OPTIONS", NULL},
    {"/v1/delayed/{topic}", HR_DELETE, HR_ROUTE_DELAYED, "DELETE, OPTIONS", NULL},
    {"/v1/pools", HR_GET | HR_HEAD, HR_ROUTE_POOLS, "GET, HEAD, OPTIONS", NULL},
    {"/v1/pools/{topic}/{token}", HR_GET | HR_POST | HR_DELETE, HR_ROUTE_POOL,
     "GET, POST, DELETE, OPTIONS", NULL},
    {"/v1/pools/{topic}/{token}/members", HR_GET | HR_HEAD, HR_ROUTE_POOL_MEMBERS,
     "GET, HEAD, OPTIONS", NULL},
};

/* Matches `path` against `pattern`; a "{topic}" or "{token}" segment takes one non-empty path
 * segment. */
static int path_matches(const char *pattern, const char *path, size_t len, hr_route_match_t *match)
{
    size_t pos = 0;
    match->topic = match->token = NULL;
    match->topic_len = match->token_len = 0;
    while (*pattern) {
        const char *brace = strchr(pattern, '{');
        size_t literal = brace ? (size_t)(brace - pattern) : strlen(pattern);
        if (len - pos < literal || memcmp(path + pos, pattern, literal) != 0) return 0;
        pos += literal;
        pattern += literal;
        if (!brace) break;
        const char *slash = memchr(path + pos, '/', len - pos);
        size_t seg = slash ? (size_t)(slash - (path + pos)) : len - pos;
        if (seg == 0) return 0;
        int token = strncmp(pattern, "{token}", 7) == 0;
        *(token ? &match->token : &match->topic) = path + pos;
        *(token ? &match->token_len : &match->topic_len) = seg;
        pos += seg;
        pattern = strchr(pattern, '}') + 1;
    }
    return pos == len;
}

int hr_route_in(const hr_route_entry_t *table, size_t n, enum hr_method method, const char *path,
                size_t len, hr_route_match_t *match)
{
    for (size_t i = 0; i < n; i++) {
        const route_t *route = &table[i];
        if (!path_matches(route->pattern, path, len, match)) continue;
        match->id = route->id;
        match->allow = route->allow;
        match->owner = route->owner;
        if (method == HR_OPTIONS || (route->methods & method)) return 200;
        return 405;
    }
    return 404;
}

int hr_route(enum hr_method method, const char *path, size_t len, hr_route_match_t *match)
{
    return hr_route_in(routes, sizeof routes / sizeof routes[0], method, path, len, match);
}

enum hr_method hr_method_parse(const char *name, size_t len)
{
    static const struct {
        const char *name;
        enum hr_method method;
    } methods[] = {{"GET", HR_GET},       {"HEAD", HR_HEAD}, {"POST", HR_POST},
                   {"DELETE", HR_DELETE}, {"PUT", HR_PUT},   {"OPTIONS", HR_OPTIONS}};
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
        if (strlen(methods[i].name) == len && memcmp(methods[i].name, name, len) == 0)
            return methods[i].method;
    return 0;
}
