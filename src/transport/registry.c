/* The transports herald serves, in the order their routes are tried. */
#include "transport/registry.h"

static const hr_transport_def_t *const transports[] = {&hr_sse_def, &hr_ws_def, &hr_poll_def};
#define NTRANSPORTS (sizeof transports / sizeof transports[0])

int hr_transport_route(enum hr_method method, const char *path, size_t len, hr_route_match_t *match)
{
    for (size_t i = 0; i < NTRANSPORTS; i++) {
        int status =
            hr_route_in(transports[i]->routes, transports[i]->nroutes, method, path, len, match);
        if (status != 404) return status;
    }
    return 404;
}

const char *hr_conn_kind_name(enum hr_conn_kind kind)
{
    for (size_t i = 0; i < NTRANSPORTS; i++)
        if (transports[i]->kind == kind) return transports[i]->name;
    return "http";
}
