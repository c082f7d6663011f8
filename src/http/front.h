/* What every accepted connection speaks first: a moment's protocol that reads the first bytes
 * (and, over TLS, ALPN's choice) and hands the connection to HTTP/1.1 or HTTP/2. The server
 * gives it to the workers; core knows no protocol. */
#ifndef HR_FRONT_H
#define HR_FRONT_H

#include "core/conn.h"

extern const hr_conn_proto_t hr_http_front;

#endif
