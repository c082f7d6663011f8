/* Presence on the HTTP side (docs/PRESENCE.md): who a request is, the streams presence adds to
 * a subscription, and the presence routes. */
#ifndef HR_API_PRESENCE_H
#define HR_API_PRESENCE_H

#include <jansson.h>

#include "auth/jwt.h"
#include "http/exchange.h"
#include "presence/presence.h"

/* Who the request is for presence and signals: its token's sub, or ?user= with
 * --presence-anonymous. *len = 0 for nobody. Returns 0, or -1 after answering 400 (?user=
 * without --presence-anonymous, or not a user id). */
int hr_api_identity(hr_exchange_t *ex, char user[HR_PRESENCE_USER_MAX + 1], size_t *len);

/* What presence adds to one SSE or poll subscription. */
typedef struct hr_api_presence_s {
    char user[HR_PRESENCE_USER_MAX + 1];
    size_t user_len; /* 0: no identity, nothing registered */
    size_t ntopics;  /* the client's own topics: names[0..ntopics) */
    char *extra;     /* storage of the names added */
} hr_api_presence_t;

/* Appends "~presence:T" for each of the client's topics when ?presence=1, and the user's own
 * "~signal:U"; names and lens have room for 2 * *n + 1. Returns 0, or -1 after answering 400. */
int hr_api_presence_prepare(hr_exchange_t *ex, const char **names, size_t *lens, size_t *n,
                            hr_api_presence_t *ap);
/* Registers the connection (and its topics) once the subscription stands. */
void hr_api_presence_register(hr_exchange_t *ex, const hr_api_presence_t *ap,
                              hr_presence_conn_t *conn, enum hr_presence_via via,
                              const char *const *names, const size_t *lens);
void hr_api_presence_done(hr_api_presence_t *ap);

/* {"user","online","connections","transports","last_seen"} */
json_t *hr_presence_info_json(const char *user, size_t len, const hr_presence_info_t *info);

/* The herald.signal data: {"from","kind","payload"} after the checks of docs/PRESENCE.md.
 * Returns 0 with *data (malloc'd), or an HTTP status with *code and *message set. */
int hr_signal_build(hr_worker_t *worker, const hr_token_t *claims, int admin_key, const char *from,
                    size_t from_len, const char *to, size_t to_len, json_t *root, char **data,
                    const char **code, const char **message);

#endif
