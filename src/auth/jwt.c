/* Token verification and the claims herald reads; see jwt.h. The header is read here first
 * (alg, kid) so the key, not the token, picks the algorithm; libjwt then checks the signature;
 * times, issuer, audience and the herald claim are checked here (libjwt 1.10 checks none). */
#include <errno.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/jwt.h"
#include "auth/pattern.h"

/* base64url (no padding) into `out` (at least len * 3 / 4 + 3 bytes); returns bytes or -1. */
static int b64url_decode(const char *in, size_t len, unsigned char *out)
{
    char *std = malloc(len + 4);
    if (!std) return -1;
    for (size_t i = 0; i < len; i++)
        std[i] = in[i] == '-' ? '+' : in[i] == '_' ? '/' : in[i];
    size_t padded = len;
    while (padded % 4)
        std[padded++] = '=';
    int n = padded ? EVP_DecodeBlock(out, (const unsigned char *)std, (int)padded) : 0;
    free(std);
    if (n < 0 || len % 4 == 1) return -1;
    return n - (int)(padded - len); /* EVP_DecodeBlock counts the padding as zero bytes */
}

/* The key the token's header asks for, with the algorithm checked against it. */
static const hr_jwt_key_t *pick_key(const hr_jwt_verifier_t *verifier, const char *token,
                                    size_t header_len, const char **reason)
{
    unsigned char *raw = malloc(header_len * 3 / 4 + 4);
    int n = raw ? b64url_decode(token, header_len, raw) : -1;
    json_t *header =
        n > 0 ? json_loadb((const char *)raw, (size_t)n, JSON_REJECT_DUPLICATES, NULL) : NULL;
    free(raw);
    const char *alg = json_string_value(json_object_get(header, "alg"));
    const char *kid = json_string_value(json_object_get(header, "kid"));
    const hr_jwt_key_t *key = NULL, *fallback = NULL;
    *reason = "malformed token header";
    if (alg && strcasecmp(alg, "none") == 0) *reason = "alg none is refused";
    if (alg && strcasecmp(alg, "none") != 0) {
        for (size_t i = 0; i < verifier->nkeys; i++) {
            if (kid && strcmp(verifier->keys[i].kid, kid) == 0) key = &verifier->keys[i];
            if (!verifier->keys[i].kid[0]) fallback = &verifier->keys[i];
        }
        if (!key) key = fallback;
        *reason = "no key for this token (kid)";
        if (key && strcmp(alg, jwt_alg_str(key->alg)) != 0) {
            *reason = "algorithm does not match the key";
            key = NULL;
        }
    }
    json_decref(header);
    return key;
}

/* aud is a string or an array of strings. */
static int audience_ok(jwt_t *jwt, const char *want)
{
    if (!want[0]) return 1;
    const char *one = jwt_get_grant(jwt, "aud");
    if (one) return strcmp(one, want) == 0;
    char *text = jwt_get_grants_json(jwt, "aud");
    json_t *list = text ? json_loads(text, 0, NULL) : NULL;
    free(text);
    int ok = 0;
    size_t i;
    json_t *item;
    json_array_foreach(list, i, item) ok |=
        json_is_string(item) && strcmp(json_string_value(item), want) == 0;
    json_decref(list);
    return ok;
}

static const char *check_times(jwt_t *jwt, int64_t now_s, int64_t leeway_s, int64_t *exp_s)
{
    errno = 0;
    long exp = jwt_get_grant_int(jwt, "exp");
    int has_exp = errno != ENOENT;
    errno = 0;
    long nbf = jwt_get_grant_int(jwt, "nbf");
    int has_nbf = errno != ENOENT;
    if (has_exp && (exp <= 0 || now_s > exp + leeway_s)) return "token expired";
    if (has_nbf && now_s + leeway_s < nbf) return "token not yet valid";
    *exp_s = has_exp ? exp : 0;
    return NULL;
}

/* The herald claim's lists, each a JSON array of valid patterns (at most HR_JWT_MAX_PATTERNS). */
static int pattern_list(json_t *list, size_t *count, size_t *bytes)
{
    if (!list) return 0;
    if (!json_is_array(list) || json_array_size(list) > HR_JWT_MAX_PATTERNS) return -1;
    size_t i;
    json_t *item;
    json_array_foreach(list, i, item)
    {
        if (!json_is_string(item) ||
            !hr_pattern_valid(json_string_value(item), json_string_length(item)))
            return -1;
        *bytes += json_string_length(item) + 1;
    }
    *count = json_array_size(list);
    return 0;
}

static void copy_patterns(json_t *list, const char **out, char **at)
{
    size_t i;
    json_t *item;
    json_array_foreach(list, i, item)
    {
        size_t len = json_string_length(item);
        memcpy(*at, json_string_value(item), len + 1);
        out[i] = *at;
        *at += len + 1;
    }
}

/* Builds the hr_token_t from the verified token's claims. */
static hr_token_t *claims(jwt_t *jwt, int64_t exp_s, const char **reason)
{
    const char *sub = jwt_get_grant(jwt, "sub");
    size_t sub_len = sub ? strlen(sub) : 0;
    char *text = jwt_get_grants_json(jwt, "herald");
    json_t *herald = text ? json_loads(text, JSON_REJECT_DUPLICATES, NULL) : NULL;
    free(text);
    json_t *pub = json_object_get(herald, "publish"), *subs = json_object_get(herald, "subscribe");
    json_t *admin = json_object_get(herald, "admin"), *sig = json_object_get(herald, "signal");
    size_t npub = 0, nsub = 0, nsig = 0, bytes = sub_len + 1, ptrs = 0;
    hr_token_t *token = NULL;
    *reason = "bad herald claim";
    if (sub_len > HR_JWT_SUB_MAX)
        *reason = "sub too long";
    else if ((!text || json_is_object(herald)) && (!admin || json_is_boolean(admin)) &&
             pattern_list(pub, &npub, &bytes) == 0 && pattern_list(subs, &nsub, &bytes) == 0 &&
             pattern_list(sig, &nsig, &bytes) == 0) {
        ptrs = (npub + nsub + nsig) * sizeof(char *);
        token = malloc(sizeof *token + ptrs + bytes);
        if (!token) *reason = "out of memory";
    }
    if (token) {
        token->size = sizeof *token + ptrs + bytes;
        token->exp_s = exp_s;
        token->admin = json_is_true(admin);
        token->publish = (const char **)(void *)token->data;
        token->subscribe = token->publish + npub;
        token->signal = token->subscribe + nsub;
        token->npublish = npub;
        token->nsubscribe = nsub;
        token->nsignal = nsig;
        char *at = token->data + (npub + nsub + nsig) * sizeof(char *);
        memcpy(at, sub ? sub : "", sub_len + 1);
        token->sub = at;
        token->sub_len = sub_len;
        at += sub_len + 1;
        copy_patterns(pub, token->publish, &at);
        copy_patterns(subs, token->subscribe, &at);
        copy_patterns(sig, token->signal, &at);
    }
    json_decref(herald);
    return token;
}

hr_token_t *hr_jwt_verify(const hr_jwt_verifier_t *verifier, const char *token, size_t len,
                          int64_t now_s, const char **reason)
{
    *reason = "token too large";
    if (len > HR_JWT_MAX_BYTES) return NULL;
    *reason = "malformed token";
    const char *dot1 = memchr(token, '.', len);
    const char *dot2 = dot1 ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token)) : NULL;
    if (!dot1 || !dot2 || dot1 == token || memchr(token, '\0', len)) return NULL;
    const hr_jwt_key_t *key = pick_key(verifier, token, (size_t)(dot1 - token), reason);
    if (!key) return NULL;
    char *copy = strndup(token, len);
    jwt_t *jwt = NULL;
    int rc = copy ? jwt_decode(&jwt, copy, key->bytes, (int)key->len) : ENOMEM;
    free(copy);
    hr_token_t *out = NULL;
    int64_t exp_s = 0;
    *reason = "bad signature";
    if (rc == 0 && jwt_get_alg(jwt) == key->alg &&
        !(*reason = check_times(jwt, now_s, verifier->leeway_s, &exp_s))) {
        const char *iss = jwt_get_grant(jwt, "iss");
        if (verifier->issuer[0] && (!iss || strcmp(iss, verifier->issuer) != 0))
            *reason = "wrong issuer";
        else if (!audience_ok(jwt, verifier->audience))
            *reason = "wrong audience";
        else
            out = claims(jwt, exp_s, reason);
    }
    jwt_free(jwt);
    return out;
}

hr_token_t *hr_token_dup(const hr_token_t *token)
{
    hr_token_t *copy = malloc(token->size);
    if (!copy) return NULL;
    memcpy(copy, token, token->size);
    /* Every pointer points into the block: move each by the same distance. */
    ptrdiff_t delta = (char *)copy - (const char *)token;
    copy->publish = (const char **)(void *)copy->data;
    copy->subscribe = copy->publish + copy->npublish;
    copy->signal = copy->subscribe + copy->nsubscribe;
    copy->sub += delta;
    for (size_t i = 0; i < copy->npublish + copy->nsubscribe + copy->nsignal; i++)
        copy->publish[i] += delta;
    return copy;
}

static int any_match(const char *const *patterns, size_t n, const hr_token_t *token,
                     const char *topic, size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (hr_pattern_match(patterns[i], strlen(patterns[i]), token->sub, token->sub_len, topic,
                             len))
            return 1;
    return 0;
}

int hr_token_may_publish(const hr_token_t *token, const char *topic, size_t len)
{
    return any_match(token->publish, token->npublish, token, topic, len);
}

int hr_token_may_subscribe(const hr_token_t *token, const char *topic, size_t len)
{
    return any_match(token->subscribe, token->nsubscribe, token, topic, len);
}

int hr_token_may_signal(const hr_token_t *token, const char *user, size_t len)
{
    return any_match(token->signal, token->nsignal, token, user, len);
}
