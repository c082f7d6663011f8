/* A response stream: what a transport writes through once a response is under way. HTTP/1
 * connections implement it today; an HTTP/2 stream can implement it later and SSE and long
 * polls will ride on it unchanged. */
#ifndef HR_STREAM_H
#define HR_STREAM_H

#include <stddef.h>

#include "core/msg.h"

typedef struct hr_stream_s hr_stream_t;

typedef struct hr_stream_ops_s {
    /* Queues `len` bytes. With `msg` non-NULL the bytes live inside it and a reference keeps
     * them until written; with NULL they are copied. Returns 0, or a negative error when the
     * stream is gone or over its outbound limit (it is then being closed). */
    int (*write)(hr_stream_t *stream, const char *bytes, size_t len, hr_msg_t *msg);
    /* Ends the response after what is queued has been sent. */
    void (*end)(hr_stream_t *stream);
} hr_stream_ops_t;

struct hr_stream_s {
    const hr_stream_ops_t *ops;
    void *carrier; /* the implementer's object, where it is not the stream's container */
    /* Set by the stream's user; called once when the stream is gone for good (client left,
     * end finished, server closing). The user frees its state there. */
    void (*on_close)(hr_stream_t *stream);
    void *user; /* the stream user's object */
};

/* A response answered later: a parked long poll. The request has been read; the connection
 * waits, reading only to notice the client leaving or sending more. */
typedef struct hr_pending_s hr_pending_t;

typedef struct hr_pending_ops_s {
    /* Sends the whole response (with Content-Length), ending the pending state; with `close`
     * the connection closes after it. on_close is not called after this. */
    void (*respond)(hr_pending_t *pending, int status, const char *content_type, const char *body,
                    size_t len, int close);
    /* A request parked by hr_defer: runs its handler again, now. on_close is not called. */
    void (*redispatch)(hr_pending_t *pending);
    /* Answers with a streamed 200 instead (a relayed event stream), ending the pending state:
     * the stream's on_close is called from now on, the pending's never. NULL when the
     * connection cannot stream (it is then closed). */
    hr_stream_t *(*stream)(hr_pending_t *pending, const char *content_type);
} hr_pending_ops_t;

struct hr_pending_s {
    const hr_pending_ops_t *ops;
    /* Set by the user. wake: answer now (the client sent another request, or the server is
     * stopping). on_close: the connection went before the answer; free the user state. */
    void (*wake)(hr_pending_t *pending);
    void (*on_close)(hr_pending_t *pending);
    void *user;
    const char *extra_headers; /* set by the user: sent with the answer ("Name: v\r\n"...) */
};

#endif
