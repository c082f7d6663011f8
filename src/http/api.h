/* Route dispatch: turns a parsed request into an exchange, answers CORS preflights, 404 and
 * 405, and calls the route's handler. */
#ifndef HR_API_H
#define HR_API_H

#include "core/conn.h"
#include "http/exchange.h"
#include "http/request.h"

/* `ops`: the front end the request came in on (http/h1.c, http/h2.c); `carrier` its object
 * for the exchange (the HTTP/2 stream), handed back in ex->carrier. */
void hr_api_dispatch(hr_conn_t *conn, hr_request_t *req, const hr_exchange_ops_t *ops,
                     void *carrier);

#endif
