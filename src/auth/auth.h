/* Who may do what (docs/AUTH.md): the policy between a request's token and the broker's
 * topics. Pure: the HTTP layer finds the token (api/auth.c) and answers what this decides.
 *
 *   --auth off      everything open (the default; a warning off loopback)
 *   --auth publish  publishing needs a token whose `herald.publish` patterns cover the topic
 *   --auth all      subscribing too (`herald.subscribe`), except --public-topics patterns
 *
 * A token with `herald.admin: true`, or the --admin-key, may do everything. Stats and kicks
 * need the admin key or an admin token once either auth or an admin key is configured. */
#ifndef HR_AUTH_H
#define HR_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "auth/jwt.h"
#include "auth/token_cache.h"
#include "core/config.h"

enum hr_access { HR_ACCESS_PUBLISH, HR_ACCESS_SUBSCRIBE, HR_ACCESS_ADMIN };

/* Per-user delivery: user X's stream is the reserved topic "~user:X". Its holder subscribes
 * by asking for "user:me"; only the user (a token whose sub is X) or an admin may subscribe to
 * it, whatever the patterns say, and only the admin API publishes to it. */
#define HR_USER_TOPIC_PREFIX "~user:"
#define HR_USER_ME           "user:me"

/* Writes "~user:ID" into `out` (at least 129 bytes); returns its length, or 0 when ID is not
 * 1..122 bytes of the topic alphabet. */
size_t hr_user_topic(const char *id, size_t len, char *out);
int hr_is_user_topic(const char *name, size_t len);

typedef struct hr_auth_s {
    enum hr_auth_mode mode;
    hr_jwt_verifier_t verifier;
    const hr_config_t *config; /* cookie name, public patterns (validated) */
    char *admin_key;           /* NULL = none; owned */
    size_t admin_key_len;
    hr_token_cache_t *caches; /* one per worker, each touched by its worker only */
    unsigned ncaches;
} hr_auth_t;

/* What a refusal says: 401 (no token, or not a valid one) or 403 (valid, not allowed). */
typedef struct hr_auth_denial_s {
    int status;         /* 401 or 403 */
    int token_given;    /* 401: a token was sent (invalid_token) or not */
    const char *reason; /* static text */
    size_t topic;       /* 403 on topics: the index of the first refused one */
} hr_auth_denial_t;

/* Builds the policy from the config: keys loaded and checked, patterns validated. NULL with
 * the offending flag and why in err. */
hr_auth_t *hr_auth_new(const hr_config_t *config, char *err, size_t err_size);
void hr_auth_free(hr_auth_t *auth);

/* Whether this access needs a token at all (so callers can skip looking for one). */
int hr_auth_needed(const hr_auth_t *auth, enum hr_access access, const char *const *names,
                   const size_t *lens, size_t n);

/* `worker` is the calling worker's id: its cache of verified tokens (token_cache.h) spares a
 * signature check for a token it saw lately. */

/* Who holds `token` (NULL or empty: nobody): *claims (freed by the caller; NULL without a
 * token) and whether it is the admin key. Returns 0, or -1 with a 401 denial when the token is
 * not valid. For connections that keep an identity (WebSocket). */
int hr_auth_identify(const hr_auth_t *auth, unsigned worker, const char *token, size_t token_len,
                     int64_t now_s, hr_token_t **claims, int *admin_key, hr_auth_denial_t *denial);

/* As hr_auth_decide, for an identity already established (claims may be NULL); an expired
 * token is refused (401) like a missing one. */
int hr_auth_decide_claims(const hr_auth_t *auth, const hr_token_t *claims, int admin_key,
                          enum hr_access access, const char *const *names, const size_t *lens,
                          size_t n, int64_t now_s, hr_auth_denial_t *denial);

/* Decides access to `n` topics (or to the admin API when access is HR_ACCESS_ADMIN; names are
 * then ignored) for the holder of `token` (NULL when the request carried none) at `now_s`.
 * Returns 0 when allowed, with *exp_s the token's expiry (0: none, or no token was needed),
 * else -1 with *denial filled. */
int hr_auth_decide(const hr_auth_t *auth, unsigned worker, const char *token, size_t token_len,
                   enum hr_access access, const char *const *names, const size_t *lens, size_t n,
                   int64_t now_s, int64_t *exp_s, hr_auth_denial_t *denial);

/* Whether a verified token has expired since (exp plus the leeway). */
int hr_token_expired(const hr_auth_t *auth, const hr_token_t *claims, int64_t now_s);

#endif
