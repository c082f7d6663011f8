/* TLS with OpenSSL memory BIOs; see tls.h. */
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/tls.h"

struct hr_tls_s {
    pthread_mutex_t lock; /* ctx, swapped by a reload */
    SSL_CTX *ctx;
    char cert_file[1024], key_file[1024];
    unsigned char alpn[64]; /* protocols offered, ALPN wire format, preferred first */
    size_t alpn_len;
};

struct hr_tls_conn_s {
    SSL *ssl;
    BIO *in, *out; /* ciphertext from and to the socket */
    int handshaken;
};

/* TLS 1.2's forward-secret AEAD suites (TLS 1.3's are OpenSSL's defaults). */
#define CIPHERS                                                                                    \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"     \
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

static int select_alpn(SSL *ssl, const unsigned char **out, unsigned char *out_len,
                       const unsigned char *in, unsigned int in_len, void *arg)
{
    (void)ssl;
    const hr_tls_t *tls = arg;
    unsigned char *chosen;
    if (SSL_select_next_proto(&chosen, out_len, tls->alpn, (unsigned)tls->alpn_len, in, in_len) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK; /* no common protocol: go on without ALPN */
    *out = chosen;
    return SSL_TLSEXT_ERR_OK;
}

static void last_error(char *err, size_t err_size, const char *what)
{
    char text[256];
    ERR_error_string_n(ERR_get_error(), text, sizeof text);
    snprintf(err, err_size, "%s: %s", what, text);
    ERR_clear_error();
}

static SSL_CTX *make_ctx(hr_tls_t *tls, char *err, size_t err_size)
{
    const char *cert_file = tls->cert_file, *key_file = tls->key_file;
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        last_error(err, err_size, "TLS context");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS); /* idle connections give buffers back */
    /* Resumption by stateless tickets only: no server-side cache growing with clients. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_num_tickets(ctx, 1);
    SSL_CTX_set_alpn_select_cb(ctx, select_alpn, tls);
    if (SSL_CTX_set_cipher_list(ctx, CIPHERS) != 1) {
        last_error(err, err_size, "cipher list");
    } else if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
        last_error(err, err_size, cert_file);
    } else if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1) {
        last_error(err, err_size, key_file);
    } else if (SSL_CTX_check_private_key(ctx) != 1) {
        last_error(err, err_size, "the key does not match the certificate");
    } else {
        return ctx;
    }
    SSL_CTX_free(ctx);
    return NULL;
}

hr_tls_t *hr_tls_new(const char *cert_file, const char *key_file, const char *alpn, char *err,
                     size_t err_size)
{
    hr_tls_t *tls = calloc(1, sizeof *tls);
    if (!tls || strlen(alpn) > sizeof tls->alpn) {
        snprintf(err, err_size, tls ? "ALPN list too long" : "out of memory");
        free(tls);
        return NULL;
    }
    snprintf(tls->cert_file, sizeof tls->cert_file, "%s", cert_file);
    snprintf(tls->key_file, sizeof tls->key_file, "%s", key_file);
    tls->alpn_len = strlen(alpn);
    memcpy(tls->alpn, alpn, tls->alpn_len);
    pthread_mutex_init(&tls->lock, NULL);
    if (!(tls->ctx = make_ctx(tls, err, err_size))) {
        hr_tls_free(tls);
        return NULL;
    }
    return tls;
}

int hr_tls_reload(hr_tls_t *tls, char *err, size_t err_size)
{
    SSL_CTX *fresh = make_ctx(tls, err, err_size);
    if (!fresh) return -1;
    pthread_mutex_lock(&tls->lock);
    SSL_CTX *old = tls->ctx;
    tls->ctx = fresh;
    pthread_mutex_unlock(&tls->lock);
    SSL_CTX_free(old); /* connections made with it hold their own reference */
    return 0;
}

void hr_tls_free(hr_tls_t *tls)
{
    if (!tls) return;
    SSL_CTX_free(tls->ctx);
    pthread_mutex_destroy(&tls->lock);
    free(tls);
}

hr_tls_conn_t *hr_tls_conn_new(hr_tls_t *tls)
{
    hr_tls_conn_t *conn = calloc(1, sizeof *conn);
    if (!conn) return NULL;
    pthread_mutex_lock(&tls->lock);
    conn->ssl = SSL_new(tls->ctx);
    pthread_mutex_unlock(&tls->lock);
    conn->in = BIO_new(BIO_s_mem());
    conn->out = BIO_new(BIO_s_mem());
    if (!conn->ssl || !conn->in || !conn->out) {
        BIO_free(conn->in);
        BIO_free(conn->out);
        SSL_free(conn->ssl);
        free(conn);
        return NULL;
    }
    BIO_set_mem_eof_return(conn->in, -1);        /* empty: "retry", not end of stream */
    SSL_set_bio(conn->ssl, conn->in, conn->out); /* the SSL owns both from now on */
    SSL_set_accept_state(conn->ssl);
    return conn;
}

void hr_tls_conn_free(hr_tls_conn_t *conn)
{
    if (!conn) return;
    SSL_free(conn->ssl);
    free(conn);
}

/* SSL_ERROR_WANT_READ: it needs more ciphertext; anything else but success is fatal. */
static int fatal(hr_tls_conn_t *conn, int rc)
{
    int why = SSL_get_error(conn->ssl, rc);
    if (why == SSL_ERROR_WANT_READ || why == SSL_ERROR_WANT_WRITE) return 0;
    if (why != SSL_ERROR_ZERO_RETURN) {
        char text[160];
        ERR_error_string_n(ERR_peek_last_error(), text, sizeof text);
        hr_debug("tls.error", "ssl_error=%d reason=\"%s\"", why, text);
    }
    ERR_clear_error();
    return -1;
}

int hr_tls_feed(hr_tls_conn_t *conn, const char *bytes, size_t len,
                int (*plain)(void *arg, const char *bytes, size_t len), void *arg)
{
    if (len && BIO_write(conn->in, bytes, (int)len) != (int)len) return -1;
    if (!conn->handshaken) {
        int rc = SSL_do_handshake(conn->ssl);
        if (rc != 1) return fatal(conn, rc);
        conn->handshaken = 1;
    }
    char chunk[16384];
    for (;;) {
        int n = SSL_read(conn->ssl, chunk, sizeof chunk);
        if (n <= 0) return fatal(conn, n);
        if (plain(arg, chunk, (size_t)n) != 0) return 0;
    }
}

int hr_tls_encrypt(hr_tls_conn_t *conn, const char *bytes, size_t len)
{
    while (len) {
        int n = SSL_write(conn->ssl, bytes, (int)(len > (1u << 30) ? 1u << 30 : len));
        if (n <= 0) {
            fatal(conn, n); /* logs; a memory BIO never asks to retry a write */
            return -1;
        }
        bytes += n;
        len -= (size_t)n;
    }
    return 0;
}

void hr_tls_shutdown(hr_tls_conn_t *conn)
{
    if (conn->handshaken) SSL_shutdown(conn->ssl);
    ERR_clear_error();
}

char *hr_tls_take_output(hr_tls_conn_t *conn, size_t *len)
{
    size_t pending = BIO_ctrl_pending(conn->out);
    if (!pending) return NULL;
    char *out = malloc(pending);
    if (!out) return NULL;
    int n = BIO_read(conn->out, out, (int)pending);
    if (n <= 0) {
        free(out);
        return NULL;
    }
    *len = (size_t)n;
    return out;
}

const char *hr_tls_alpn(hr_tls_conn_t *conn)
{
    const unsigned char *name;
    unsigned int len;
    SSL_get0_alpn_selected(conn->ssl, &name, &len);
    if (len == 2 && memcmp(name, "h2", 2) == 0) return "h2";
    return len == 8 && memcmp(name, "http/1.1", 8) == 0 ? "http/1.1" : "";
}
