/* JWT verification for herald's tokens (docs/AUTH.md), on libjwt. Pure apart from reading key
 * files at start: no I/O per token.
 *
 * The key decides the algorithm, never the token: each configured key verifies exactly one of
 * HS256 (a secret), RS256 (an RSA public key) or ES256 (a P-256 public key), so `alg: none` and
 * an RS256 public key taken as an HS256 secret (the classic confusion) are refused before any
 * signature is checked. A token names its key with `kid` (rotation); without one, or with one
 * not configured, the key given without a KID is used if there is one. */
#ifndef HR_AUTH_JWT_H
#define HR_AUTH_JWT_H

#include <jwt.h>
#include <stddef.h>
#include <stdint.h>

#define HR_JWT_MAX_BYTES    8192 /* a longer token is refused unread */
#define HR_JWT_MAX_KEYS     16
#define HR_JWT_MAX_PATTERNS 64 /* per list in the herald claim */
#define HR_JWT_LEEWAY_S     30 /* default clock skew allowed on exp and nbf (--jwt-leeway) */
#define HR_JWT_SUB_MAX      255

typedef struct hr_jwt_key_s {
    char kid[64];         /* "" for the default key */
    jwt_alg_t alg;        /* the one algorithm this key verifies */
    unsigned char *bytes; /* the secret, or the PEM text of the public key; owned */
    size_t len;
} hr_jwt_key_t;

typedef struct hr_jwt_verifier_s {
    hr_jwt_key_t keys[HR_JWT_MAX_KEYS];
    size_t nkeys;
    char issuer[256];   /* required `iss`; "" = not checked */
    char audience[256]; /* required among `aud`; "" = not checked */
    int64_t leeway_s;   /* clock skew allowed on exp and nbf */
} hr_jwt_verifier_t;

/* What herald takes from a verified token: one allocation, freed with free(). */
typedef struct hr_token_s {
    size_t size;     /* bytes in the allocation, for hr_token_dup */
    int64_t exp_s;   /* unix seconds; 0 = no expiry */
    int admin;       /* herald.admin: true */
    const char *sub; /* NUL-terminated, "" when absent */
    size_t sub_len;
    const char **publish; /* patterns, valid (auth/pattern.h) */
    size_t npublish;
    const char **subscribe;
    size_t nsubscribe;
    const char **signal; /* users this token may send WebRTC signals to (docs/PRESENCE.md) */
    size_t nsignal;
    char data[]; /* the strings above */
} hr_token_t;

/* Adds a key from a --jwt-key value: [KID=](hs256:SECRET | env:NAME | PATH to a PEM public
 * key); env:NAME reads the variable, which holds hs256:SECRET or PEM text. Returns 0, or -1
 * with a reason in err. */
int hr_jwt_add_key(hr_jwt_verifier_t *verifier, const char *spec, char *err, size_t err_size);
void hr_jwt_verifier_free(hr_jwt_verifier_t *verifier);

/* Verifies `token` (len bytes, not necessarily NUL-terminated) at `now_s`. Returns the token's
 * claims, or NULL with *reason set to a short static text for the 401 answer. */
hr_token_t *hr_jwt_verify(const hr_jwt_verifier_t *verifier, const char *token, size_t len,
                          int64_t now_s, const char **reason);

/* A copy (its own allocation) of `token`; NULL on allocation failure. */
hr_token_t *hr_token_dup(const hr_token_t *token);

/* Whether the token lets its holder publish to (or subscribe to) `topic`. */
int hr_token_may_publish(const hr_token_t *token, const char *topic, size_t len);
int hr_token_may_subscribe(const hr_token_t *token, const char *topic, size_t len);
/* Whether the token lets its holder signal `user` (patterns matched against the user id). */
int hr_token_may_signal(const hr_token_t *token, const char *user, size_t len);

#endif
