/* The HTTP/1.1 front end (http/h1.c): the protocol a listener's connections start with. The
 * server hands it to the workers (core knows no protocol). */
#ifndef HR_H1_H
#define HR_H1_H

#include "core/conn.h"

extern const hr_conn_proto_t hr_h1_proto;

#endif
