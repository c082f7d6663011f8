/* TLS on herald's connections (issue 20), with OpenSSL and memory BIOs: the socket carries
 * ciphertext, the connection's protocol sees plaintext, and libuv keeps doing the I/O. TLS 1.2+
 * with forward-secret AEAD suites, the certificate chain and key from PEM files, ALPN (the
 * server names the protocols: h2 and http/1.1), and a reload (SIGHUP) that new connections pick up
 * while the open ones keep theirs. The context is shared by every worker (OpenSSL's SSL_CTX is safe
 * to use from several threads); each connection has its own SSL. */
#ifndef HR_TLS_H
#define HR_TLS_H

#include <stddef.h>

typedef struct hr_tls_s hr_tls_t;
typedef struct hr_tls_conn_s hr_tls_conn_t;

/* `alpn`: the protocols offered, in ALPN's wire format (length-prefixed names), preferred
 * first; the server's preference wins. NULL with why in err (unreadable files, a key that
 * does not match the certificate). */
hr_tls_t *hr_tls_new(const char *cert_file, const char *key_file, const char *alpn, char *err,
                     size_t err_size);
/* Reads the files again; on failure the old certificate stays. Any thread. */
int hr_tls_reload(hr_tls_t *tls, char *err, size_t err_size);
void hr_tls_free(hr_tls_t *tls);

hr_tls_conn_t *hr_tls_conn_new(hr_tls_t *tls);
void hr_tls_conn_free(hr_tls_conn_t *conn);

/* Ciphertext from the peer. Plaintext goes to `plain` chunk by chunk (it returns non-zero to
 * stop: the connection went). Returns 0, or -1 on a TLS error (close the connection). */
int hr_tls_feed(hr_tls_conn_t *conn, const char *bytes, size_t len,
                int (*plain)(void *arg, const char *bytes, size_t len), void *arg);
/* Plaintext to send: encrypted into the connection's outgoing ciphertext. -1 on error. */
int hr_tls_encrypt(hr_tls_conn_t *conn, const char *bytes, size_t len);
/* Queues a close_notify alert. */
void hr_tls_shutdown(hr_tls_conn_t *conn);
/* Ciphertext waiting to go out (handshake, records, alerts): a malloc'd buffer the caller
 * sends and frees, or NULL when there is none. */
char *hr_tls_take_output(hr_tls_conn_t *conn, size_t *len);
/* The protocol ALPN chose ("h2", "http/1.1"), or "" before the handshake or without ALPN. */
const char *hr_tls_alpn(hr_tls_conn_t *conn);

#endif
