/* The HTTP/2 front end (http/h2.c, on nghttp2): what a connection speaks after ALPN chose h2 or
 * its first bytes were the HTTP/2 preface (http/front.c decides). */
#ifndef HR_H2_H
#define HR_H2_H

#include "core/conn.h"

extern const hr_conn_proto_t hr_h2_proto;

#endif
