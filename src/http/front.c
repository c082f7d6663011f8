/* Protocol choice on a new connection (RFC 9113 §3): over TLS, ALPN's "h2"; in plaintext, the
 * client preface ("prior knowledge": curl --http2-prior-knowledge, h2load, gRPC-style clients).
 * Anything else is HTTP/1.1, whose parser answers what it cannot read. With --http2 0 every
 * connection is HTTP/1.1. HTTP/1.1's Upgrade: h2c is not offered (RFC 9113 deprecates it and
 * no browser sends it). */
#include <string.h>

#include "core/server.h"
#include "core/tls.h"
#include "http/front.h"
#include "http/h1.h"
#include "http/h2.h"

static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

static int speaks_h2(const hr_conn_t *conn, const char *data, size_t len)
{
    if (!conn->worker->config->http2) return 0;
    if (conn->tls) return strcmp(hr_tls_alpn(conn->tls), "h2") == 0;
    /* The preface's first line is enough: no HTTP/1.1 request starts with "PRI * HTTP/2.0". */
    size_t n = len < 14 ? len : 14;
    return len >= 4 && memcmp(data, preface, n) == 0;
}

static void front_on_data(hr_conn_t *conn, const char *data, size_t len)
{
    const hr_conn_proto_t *proto = speaks_h2(conn, data, len) ? &hr_h2_proto : &hr_h1_proto;
    hr_conn_upgrade(conn, proto, NULL);
    proto->on_data(conn, data, len);
}

static void front_on_shutdown(hr_conn_t *conn)
{
    hr_conn_finish(conn); /* nothing asked yet */
}

static int front_idle_closes(hr_conn_t *conn)
{
    (void)conn;
    return 1;
}

const hr_conn_proto_t hr_http_front = {
    .on_data = front_on_data,
    .on_shutdown = front_on_shutdown,
    .idle_closes = front_idle_closes,
    .refusal = HR_H1_REFUSAL, /* written at accept, before a byte is read: HTTP/1.1's words */
};
