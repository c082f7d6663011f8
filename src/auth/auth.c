/* The access policy; see auth.h. */
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "auth/pattern.h"
#include "core/broker.h"

static hr_auth_t *refuse(hr_auth_t *auth, char *err, size_t size, const char *flag,
                         const char *value, const char *why)
{
    snprintf(err, size, "--%s %s: %s", flag, value, why);
    hr_auth_free(auth);
    return NULL;
}

static int load_admin_key(hr_auth_t *auth, const char *spec)
{
    const char *value = strncmp(spec, "env:", 4) == 0 ? getenv(spec + 4) : spec;
    if (!value || strlen(value) < 16) return -1;
    auth->admin_key = strdup(value);
    auth->admin_key_len = strlen(value);
    return auth->admin_key ? 0 : -1;
}

hr_auth_t *hr_auth_new(const hr_config_t *config, char *err, size_t err_size)
{
    hr_auth_t *auth = calloc(1, sizeof *auth);
    if (!auth) return refuse(NULL, err, err_size, "auth", "", "out of memory");
    auth->mode = config->auth_mode;
    auth->config = config;
    auth->caches = calloc(config->workers ? config->workers : 1, sizeof *auth->caches);
    if (!auth->caches) return refuse(auth, err, err_size, "auth", "", "out of memory");
    auth->ncaches = config->workers;
    snprintf(auth->verifier.issuer, sizeof auth->verifier.issuer, "%s", config->jwt_issuer);
    snprintf(auth->verifier.audience, sizeof auth->verifier.audience, "%s", config->jwt_audience);
    auth->verifier.leeway_s = config->jwt_leeway_s;
    char why[256];
    for (size_t i = 0; i < config->njwt_keys; i++)
        if (hr_jwt_add_key(&auth->verifier, config->jwt_keys[i], why, sizeof why) != 0)
            return refuse(auth, err, err_size, "jwt-key", config->jwt_keys[i], why);
    for (size_t i = 0; i < config->npublic_topics; i++) {
        const char *pattern = config->public_topics[i];
        if (!hr_pattern_valid(pattern, strlen(pattern)) || strstr(pattern, "{sub}"))
            return refuse(auth, err, err_size, "public-topics", pattern,
                          "not a pattern (topic bytes, a trailing *, no {sub})");
    }
    if (config->admin_key[0] && load_admin_key(auth, config->admin_key) != 0)
        return refuse(auth, err, err_size, "admin-key", "(hidden)",
                      "unset, or shorter than 16 bytes");
    if (auth->mode != HR_AUTH_OFF && auth->verifier.nkeys == 0)
        return refuse(auth, err, err_size, "auth",
                      config->auth_mode == HR_AUTH_ALL ? "all" : "publish",
                      "needs at least one --jwt-key");
    return auth;
}

void hr_auth_free(hr_auth_t *auth)
{
    if (!auth) return;
    hr_jwt_verifier_free(&auth->verifier);
    for (unsigned w = 0; auth->caches && w < auth->ncaches; w++)
        hr_token_cache_clear(&auth->caches[w]);
    free(auth->caches);
    if (auth->admin_key) OPENSSL_cleanse(auth->admin_key, auth->admin_key_len);
    free(auth->admin_key);
    free(auth);
}

size_t hr_user_topic(const char *id, size_t len, char *out)
{
    size_t prefix = sizeof HR_USER_TOPIC_PREFIX - 1;
    if (len == 0 || prefix + len > HR_TOPIC_MAX_LEN) return 0;
    memcpy(out, HR_USER_TOPIC_PREFIX, prefix);
    memcpy(out + prefix, id, len);
    out[prefix + len] = '\0';
    return hr_topic_name_valid(out, prefix + len) ? prefix + len : 0;
}

int hr_is_user_topic(const char *name, size_t len)
{
    size_t prefix = sizeof HR_USER_TOPIC_PREFIX - 1;
    return len >= prefix && memcmp(name, HR_USER_TOPIC_PREFIX, prefix) == 0;
}

/* The holder's own user stream. */
static int is_own(const hr_token_t *claims, const char *name, size_t len)
{
    size_t prefix = sizeof HR_USER_TOPIC_PREFIX - 1;
    return claims && claims->sub_len && len == prefix + claims->sub_len &&
           memcmp(name + prefix, claims->sub, claims->sub_len) == 0;
}

static int is_public(const hr_auth_t *auth, const char *name, size_t len)
{
    const hr_config_t *config = auth->config;
    for (size_t i = 0; i < config->npublic_topics; i++) {
        const char *pattern = config->public_topics[i];
        if (hr_pattern_match(pattern, strlen(pattern), "", 0, name, len)) return 1;
    }
    return 0;
}

/* The admin key, compared in constant time (its length is not secret). */
static int is_admin_key(const hr_auth_t *auth, const char *token, size_t len)
{
    return auth->admin_key && token && len == auth->admin_key_len &&
           CRYPTO_memcmp(auth->admin_key, token, len) == 0;
}

static int deny(hr_auth_denial_t *denial, int status, int token_given, const char *reason,
                size_t topic)
{
    *denial = (hr_auth_denial_t){status, token_given, reason, topic};
    return -1;
}

int hr_auth_needed(const hr_auth_t *auth, enum hr_access access, const char *const *names,
                   const size_t *lens, size_t n)
{
    if (access == HR_ACCESS_ADMIN) return auth->mode != HR_AUTH_OFF || auth->admin_key;
    if (access == HR_ACCESS_PUBLISH) return auth->mode != HR_AUTH_OFF;
    if (auth->mode == HR_AUTH_OFF) return 0;
    for (size_t i = 0; i < n; i++)
        if (hr_is_user_topic(names[i], lens[i]) ||
            (auth->mode == HR_AUTH_ALL && !is_public(auth, names[i], lens[i])))
            return 1;
    return 0;
}

int hr_token_expired(const hr_auth_t *auth, const hr_token_t *claims, int64_t now_s)
{
    return claims && claims->exp_s && now_s > claims->exp_s + auth->verifier.leeway_s;
}

int hr_auth_identify(const hr_auth_t *auth, unsigned worker, const char *token, size_t token_len,
                     int64_t now_s, hr_token_t **claims, int *admin_key, hr_auth_denial_t *denial)
{
    *claims = NULL;
    *admin_key = is_admin_key(auth, token, token_len);
    if (*admin_key || !token || !token_len) return 0;
    hr_token_cache_t *cache = worker < auth->ncaches ? &auth->caches[worker] : NULL;
    const hr_token_t *seen = cache ? hr_token_cache_get(cache, token, token_len) : NULL;
    if (seen) {
        if (hr_token_expired(auth, seen, now_s)) return deny(denial, 401, 1, "token expired", 0);
        *claims = hr_token_dup(seen);
        return *claims ? 0 : deny(denial, 401, 1, "out of memory", 0);
    }
    const char *reason;
    *claims = hr_jwt_verify(&auth->verifier, token, token_len, now_s, &reason);
    if (!*claims) return deny(denial, 401, 1, reason, 0);
    if (cache) hr_token_cache_put(cache, token, token_len, *claims);
    return 0;
}

int hr_auth_decide_claims(const hr_auth_t *auth, const hr_token_t *claims, int admin_key,
                          enum hr_access access, const char *const *names, const size_t *lens,
                          size_t n, int64_t now_s, hr_auth_denial_t *denial)
{
    if (admin_key || !hr_auth_needed(auth, access, names, lens, n)) return 0;
    if (!claims) return deny(denial, 401, 0, "a token is required", 0);
    if (hr_token_expired(auth, claims, now_s)) return deny(denial, 401, 1, "token expired", 0);
    if (claims->admin) return 0;
    if (access == HR_ACCESS_ADMIN)
        return deny(denial, 403, 1,
                    "the admin API needs an admin token (claim herald.admin: true) or the "
                    "--admin-key",
                    0);
    for (size_t i = 0; i < n; i++) {
        int ok = hr_is_user_topic(names[i], lens[i])
                     ? access == HR_ACCESS_SUBSCRIBE && is_own(claims, names[i], lens[i])
                 : access == HR_ACCESS_PUBLISH
                     ? hr_token_may_publish(claims, names[i], lens[i])
                     : hr_token_may_subscribe(claims, names[i], lens[i]) ||
                           is_public(auth, names[i], lens[i]);
        if (ok) continue;
        return deny(denial, 403, 1,
                    hr_is_user_topic(names[i], lens[i])
                        ? "a user's stream is its user's: the token's sub must be that user"
                    : access == HR_ACCESS_PUBLISH
                        ? "the token does not allow this topic: add a matching pattern to its "
                          "herald.publish claim"
                        : "the token does not allow this topic: add a matching pattern to its "
                          "herald.subscribe claim, or list the topic in --public-topics",
                    i);
    }
    return 0;
}

int hr_auth_decide(const hr_auth_t *auth, unsigned worker, const char *token, size_t token_len,
                   enum hr_access access, const char *const *names, const size_t *lens, size_t n,
                   int64_t now_s, int64_t *exp_s, hr_auth_denial_t *denial)
{
    *exp_s = 0;
    if (!hr_auth_needed(auth, access, names, lens, n)) return 0;
    hr_token_t *claims;
    int admin_key;
    if (hr_auth_identify(auth, worker, token, token_len, now_s, &claims, &admin_key, denial) != 0)
        return -1;
    int rc = hr_auth_decide_claims(auth, claims, admin_key, access, names, lens, n, now_s, denial);
    if (rc == 0 && claims) *exp_s = claims->exp_s;
    free(claims);
    return rc;
}
