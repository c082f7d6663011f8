/* The HTTP/1.1 front end (http/h1.c): what a connection speaks unless http/front.c finds
 * HTTP/2 on it. */
#ifndef HR_H1_H
#define HR_H1_H

#include "core/conn.h"

extern const hr_conn_proto_t hr_h1_proto;

/* "Too many connections", the answer a connection refused at accept gets. */
#define HR_H1_REFUSAL                                                                              \
    "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"                       \
    "Content-Length: 45\r\nConnection: close\r\n\r\n"                                              \
    "{\"error\":\"too many connections\",\"status\":503}"

#endif
