/* Route handlers. Each answers exactly once through hr_respond* (or opens a stream). */
#ifndef HR_HANDLERS_H
#define HR_HANDLERS_H

#include "auth/auth.h"
#include "bus/bus.h"
#include "core/server.h"
#include "http/exchange.h"

void hr_handle_health(hr_exchange_t *ex);
void hr_handle_stats(hr_exchange_t *ex);
void hr_handle_publish(hr_exchange_t *ex);
void hr_handle_messages(hr_exchange_t *ex);
void hr_handle_kick(hr_exchange_t *ex);
void hr_handle_asset(hr_exchange_t *ex);          /* api/assets.c: herald.js, its types, the demo */
void hr_handle_user_presence(hr_exchange_t *ex);  /* api/presence.c */
void hr_handle_presence_query(hr_exchange_t *ex); /* api/presence.c */
void hr_handle_topic_presence(hr_exchange_t *ex); /* api/presence.c */
void hr_handle_signal(hr_exchange_t *ex);         /* api/signal.c */
void hr_handle_device(hr_exchange_t *ex);         /* api/devices.c */
void hr_handle_devices(hr_exchange_t *ex);        /* api/devices.c */
void hr_handle_fcm_dead(hr_exchange_t *ex);       /* api/devices.c */
void hr_handle_delayed(hr_exchange_t *ex);        /* api/delayed.c: GET list, DELETE one */
void hr_handle_pool(hr_exchange_t *ex);           /* api/pools.c: ask, or DELETE */
void hr_handle_pool_members(hr_exchange_t *ex);   /* api/pools.c */
void hr_handle_pools(hr_exchange_t *ex);
void hr_handle_metrics(hr_exchange_t *ex);
void hr_handle_topics(hr_exchange_t *ex);       /* api/dashboard.c */
void hr_handle_stats_stream(hr_exchange_t *ex); /* api/dashboard.c */
/* The /v1/stats body (api/status.c). */
json_t *hr_api_stats_json(hr_server_t *server);
/* api/metrics.c: Prometheus text */ /* api/pools.c: the pools' numbers */

struct hr_pub_body_s;
/* A publish with deliver_at or delay: kept, answered 202 {"delayed","deliver_at"}. */
void hr_api_publish_later(hr_exchange_t *ex, const char *const *names, const size_t *lens, size_t n,
                          const struct hr_pub_body_s *body);
/* Cluster mode: answers the request from a Redis command's reply (api/buscall.c); `build`
 * returns the body and sets *status (204: no body). */
typedef json_t *(*hr_api_bus_build_fn)(hr_bus_cmd_t *cmd, int *status);
void hr_api_bus_answer(hr_exchange_t *ex, hr_bus_cmd_t *cmd, hr_api_bus_build_fn build);

/* Worker 0: publishes what is due (api/delayed.c). */
void hr_delayed_fire_due(hr_worker_t *worker);

struct hr_pubreq_s;
/* Submits a publish and answers it, now or (Redis, the disk) when it finishes, in request
 * order: {"topic","id"}, or {"messages":[...]} when `many`. Takes `req`. */
void hr_api_publish_submit(hr_exchange_t *ex, struct hr_pubreq_s *req, int many);

/* Collects topic names for a route: the path's {topic} or every ?topic= (at least one, at most
 * max_topics_per_sub, each valid). Answers 400 itself and returns -1 when they are not. */
int hr_api_topics(hr_exchange_t *ex, const char **names, size_t *lens, size_t max, size_t *n);

/* Whether the request's token (api/auth.c) allows `access` to the topics (names ignored for
 * HR_ACCESS_ADMIN). Answers 401/403 itself and returns -1 when not. hr_api_topics calls it for
 * the routes it serves (publish for publishes, subscribe for the others). */
int hr_api_authorize(hr_exchange_t *ex, enum hr_access access, const char *const *names,
                     const size_t *lens, size_t n);

/* Per-user delivery (docs/AUTH.md): names the user's stream "~user:ID" for POST
 * /v1/users/{id}/messages, and replaces "user:me" by the token holder's own. Answers 400/401
 * itself and returns -1 when it cannot. */
int hr_api_user_topic(hr_exchange_t *ex, const char **names, size_t *lens, size_t n);

/* The request's token: Authorization: Bearer, the --auth-cookie cookie, or ?access_token=;
 * NULL when none. */
const char *hr_api_request_token(hr_exchange_t *ex, size_t *len);
/* Answers a refusal: 401 with WWW-Authenticate, or 403 naming names[denial->topic] (names may be
 * NULL). */
void hr_api_answer_denial(hr_exchange_t *ex, const hr_auth_denial_t *denial,
                          const char *const *names, const size_t *lens);

/* Cluster mode, after the broker answered HR_ENOTREADY: parks the request until its topics are
 * live on this node, then runs the handler again; 503 when Redis is down. */
void hr_api_defer(hr_exchange_t *ex, const char *const *names, const size_t *lens, size_t n);

#endif
