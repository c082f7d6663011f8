/* Maps (method, path) to a route. Pure: a static table of the API's routes (the transports
 * bring their own, transport/registry.c), segment matching, `{topic}` and `{token}` captures.
 * A path that matches with another method gives 405 and the Allow list. */
#ifndef HR_ROUTER_H
#define HR_ROUTER_H

#include <stddef.h>

enum hr_method {
    HR_GET = 1,
    HR_HEAD = 2,
    HR_POST = 4,
    HR_DELETE = 8,
    HR_OPTIONS = 16,
    HR_PUT = 32
};

enum hr_route_id {
    HR_ROUTE_HEALTH,            /* GET /healthz */
    HR_ROUTE_STATS,             /* GET /v1/stats */
    HR_ROUTE_PUBLISH,           /* POST /v1/topics/{topic} */
    HR_ROUTE_PUBLISH_MANY,      /* POST /v1/publish?topic=a&topic=b */
    HR_ROUTE_TOPIC_MESSAGES,    /* GET /v1/topics/{topic}/messages */
    HR_ROUTE_TOPIC_SUBSCRIBERS, /* DELETE /v1/topics/{topic}/subscribers */
    HR_ROUTE_ASSET,             /* GET /herald.js, /herald.d.ts, /demo */
    HR_ROUTE_USER_MESSAGES,     /* POST /v1/users/{id}/messages (the {topic} capture is the id) */
    HR_ROUTE_USER_PRESENCE,     /* GET /v1/users/{id}/presence */
    HR_ROUTE_USER_SIGNAL,       /* POST /v1/users/{id}/signal */
    HR_ROUTE_PRESENCE_QUERY,    /* POST /v1/presence/query */
    HR_ROUTE_TOPIC_PRESENCE,    /* GET /v1/topics/{topic}/presence */
    HR_ROUTE_DEVICE,            /* PUT, DELETE /v1/users/{id}/devices/{token} */
    HR_ROUTE_DEVICES,           /* GET /v1/users/{id}/devices */
    HR_ROUTE_FCM_DEAD,          /* GET /v1/fcm/dead */
    HR_ROUTE_DELAYED,           /* GET /v1/delayed, DELETE /v1/delayed/{id} */
    HR_ROUTE_POOL,              /* GET, POST, DELETE /v1/pools/{pool}/{key} */
    HR_ROUTE_POOL_MEMBERS,      /* GET /v1/pools/{pool}/{key}/members */
    HR_ROUTE_POOLS,             /* GET /v1/pools */
    HR_ROUTE_METRICS,           /* GET /metrics (Prometheus) */
    HR_ROUTE_TOPICS,            /* GET /v1/topics?prefix=&limit= */
    HR_ROUTE_STATS_STREAM,      /* GET /v1/stats/stream (SSE, once a second) */
    HR_ROUTE_TRANSPORT,         /* a live transport's route: match.owner is its definition */
};

typedef struct hr_route_entry_s {
    const char *pattern; /* segments; "{topic}" and "{token}" capture one */
    unsigned methods;    /* enum hr_method bits */
    enum hr_route_id id;
    const char *allow;
    const void *owner; /* HR_ROUTE_TRANSPORT: the transport's hr_transport_def_t */
} hr_route_entry_t;

typedef struct hr_route_match_s {
    enum hr_route_id id;
    const char *topic; /* into the path; NULL when the route has none */
    size_t topic_len;
    const char *token; /* a second capture, {token}; NULL when none */
    size_t token_len;
    const char *allow; /* for 405 and OPTIONS: e.g. "GET, HEAD, OPTIONS" */
    const void *owner; /* the entry's owner, for HR_ROUTE_TRANSPORT */
} hr_route_match_t;

/* Returns 200 (matched), 404 (no such path) or 405 (path known, method not; `allow` set).
 * OPTIONS on a known path returns 200 with the route matched; the caller answers it. */
int hr_route(enum hr_method method, const char *path, size_t len, hr_route_match_t *match);
/* The same over `n` entries of another table. */
int hr_route_in(const hr_route_entry_t *table, size_t n, enum hr_method method, const char *path,
                size_t len, hr_route_match_t *match);

/* Maps a request's method token (case-sensitive, RFC 9110 9.1); 0 for methods herald does not
 * serve. */
enum hr_method hr_method_parse(const char *name, size_t len);

#endif
