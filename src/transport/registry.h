/* The live transports, each described once by its own file: the name it goes by in the stats
 * and /metrics, the connection kind it counts under, its routes and its handler. The
 * dispatcher (http/api.c) and the stats (api/status.c, api/metrics.c) read this table, so a
 * new transport is a file and a line in registry.c. Its wire encodings stay slots of
 * enum hr_msg_encoding (core/msg.h): they size every message's encoding cache. */
#ifndef HR_TRANSPORT_REGISTRY_H
#define HR_TRANSPORT_REGISTRY_H

#include "http/exchange.h"
#include "http/router.h"

typedef struct hr_transport_def_s {
    const char *name;       /* "sse": the stats' and the metrics' label */
    enum hr_conn_kind kind; /* what its clients count as in worker->conns_now */
    void (*handle)(hr_exchange_t *ex);
    const hr_route_entry_t *routes; /* id HR_ROUTE_TRANSPORT, owner this definition */
    size_t nroutes;
} hr_transport_def_t;

extern const hr_transport_def_t hr_sse_def;  /* transport/sse.c */
extern const hr_transport_def_t hr_ws_def;   /* transport/ws.c */
extern const hr_transport_def_t hr_poll_def; /* transport/poll.c */

/* hr_route over every transport's routes: 200, 404 or 405 as hr_route. */
int hr_transport_route(enum hr_method method, const char *path, size_t len,
                       hr_route_match_t *match);

/* "http" for plain requests, else the transport's name. */
const char *hr_conn_kind_name(enum hr_conn_kind kind);

#endif
