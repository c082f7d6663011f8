/* Token verification and topic patterns: keys of each kind made here (a secret, an RSA and a
 * P-256 key pair), tokens signed with libjwt; the refusals that matter (alg none, algorithm
 * confusion, bad signature, expiry with leeway, issuer, audience, size, bad claims). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "auth/jwt.h"
#include "auth/pattern.h"
#include "auth/token_cache.h"

#define SECRET "0123456789abcdef0123456789abcdef"
#define NOW    1800000000

static int match(const char *pattern, const char *sub, const char *topic)
{
    return hr_pattern_match(pattern, strlen(pattern), sub, strlen(sub), topic, strlen(topic));
}

static void patterns_follow_the_grammar(void **state)
{
    (void)state;
    const char *good[] = {"*", "news", "chat:*", "user:{sub}:*", "{sub}", "a.b-c_d@e~f:g"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        assert_true(hr_pattern_valid(good[i], strlen(good[i])));
    const char *bad[] = {"", "a*b", "**", "*a", "chat/x", "{user}", "{sub", "a b", "x{sub}}"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_false(hr_pattern_valid(bad[i], strlen(bad[i])));
    assert_true(match("*", "u", "anything"));
    assert_true(match("news", "u", "news"));
    assert_false(match("news", "u", "news2"));
    assert_true(match("chat:*", "u", "chat:"));
    assert_true(match("chat:*", "u", "chat:room-1"));
    assert_false(match("chat:*", "u", "chat"));
    assert_true(match("user:{sub}:*", "alice", "user:alice:inbox"));
    assert_false(match("user:{sub}:*", "alice", "user:bob:inbox"));
    assert_false(match("user:{sub}:*", "alice", "user:alicex:inbox"));
    assert_false(match("user:{sub}", "", "user:")); /* no subject, no {sub} match */
}

static char *sign(jwt_alg_t alg, const unsigned char *key, size_t len, const char *kid,
                  const char *claims_json)
{
    jwt_t *jwt = NULL;
    jwt_new(&jwt);
    if (kid) jwt_add_header(jwt, "kid", kid);
    jwt_add_grants_json(jwt, claims_json);
    jwt_set_alg(jwt, alg, key, (int)len);
    char *token = jwt_encode_str(jwt);
    jwt_free(jwt);
    return token;
}

/* A key pair: the private PEM (to sign) returned, the public PEM written to `path`. */
static char *key_pair(const char *type, const char *path)
{
    EVP_PKEY *pkey = strcmp(type, "RSA") == 0 ? EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048)
                                              : EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    BIO *priv = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey(priv, pkey, NULL, NULL, 0, NULL, NULL);
    char *data;
    long n = BIO_get_mem_data(priv, &data);
    char *pem = strndup(data, (size_t)n);
    FILE *file = fopen(path, "w");
    PEM_write_PUBKEY(file, pkey);
    fclose(file);
    BIO_free(priv);
    EVP_PKEY_free(pkey);
    return pem;
}

static hr_token_t *verify(const hr_jwt_verifier_t *v, const char *token, const char **reason)
{
    return hr_jwt_verify(v, token, strlen(token), NOW, reason);
}

static void verifies_each_algorithm_by_its_key(void **state)
{
    (void)state;
    char err[256];
    hr_jwt_verifier_t v = {0};
    char rsa_path[] = "/tmp/herald-test-rsa-XXXXXX", ec_path[] = "/tmp/herald-test-ec-XXXXXX";
    close(mkstemp(rsa_path));
    close(mkstemp(ec_path));
    char *rsa = key_pair("RSA", rsa_path), *ec = key_pair("EC", ec_path);
    assert_int_equal(hr_jwt_add_key(&v, "hs256:" SECRET, err, sizeof err), 0);
    char spec[128];
    snprintf(spec, sizeof spec, "r1=%s", rsa_path);
    assert_int_equal(hr_jwt_add_key(&v, spec, err, sizeof err), 0);
    snprintf(spec, sizeof spec, "e1=%s", ec_path);
    assert_int_equal(hr_jwt_add_key(&v, spec, err, sizeof err), 0);
    const char *claims = "{\"sub\":\"alice\",\"exp\":1800000060,\"herald\":{\"publish\":"
                         "[\"chat:*\"],\"subscribe\":[\"user:{sub}:*\",\"news\"],\"admin\":true}}";
    const char *reason;
    char *tokens[] = {sign(JWT_ALG_HS256, (const unsigned char *)SECRET, 32, NULL, claims),
                      sign(JWT_ALG_RS256, (const unsigned char *)rsa, strlen(rsa), "r1", claims),
                      sign(JWT_ALG_ES256, (const unsigned char *)ec, strlen(ec), "e1", claims)};
    for (int i = 0; i < 3; i++) {
        hr_token_t *token = verify(&v, tokens[i], &reason);
        assert_non_null(token);
        assert_string_equal(token->sub, "alice");
        assert_int_equal(token->exp_s, 1800000060);
        assert_true(token->admin);
        assert_true(hr_token_may_publish(token, "chat:room", 9));
        assert_false(hr_token_may_publish(token, "news", 4));
        assert_true(hr_token_may_subscribe(token, "user:alice:x", 12));
        assert_false(hr_token_may_subscribe(token, "user:bob:x", 10));
        free(token);
        free(tokens[i]);
    }
    /* The RSA public key used as an HS256 secret (algorithm confusion) is refused. */
    FILE *file = fopen(rsa_path, "r");
    char pub[4096];
    size_t n = fread(pub, 1, sizeof pub - 1, file);
    fclose(file);
    pub[n] = '\0';
    char *confused = sign(JWT_ALG_HS256, (const unsigned char *)pub, n, "r1", claims);
    assert_null(verify(&v, confused, &reason));
    assert_string_equal(reason, "algorithm does not match the key");
    free(confused);
    remove(rsa_path);
    remove(ec_path);
    free(rsa);
    free(ec);
    hr_jwt_verifier_free(&v);
}

static void refuses_what_must_be_refused(void **state)
{
    (void)state;
    char err[256];
    hr_jwt_verifier_t v = {0};
    assert_int_equal(hr_jwt_add_key(&v, "hs256:" SECRET, err, sizeof err), 0);
    strcpy(v.issuer, "https://app.example");
    strcpy(v.audience, "herald");
    v.leeway_s = HR_JWT_LEEWAY_S;
    const unsigned char *key = (const unsigned char *)SECRET;
    const char *reason;
    struct {
        const char *claims;
        const char *reason;
    } cases[] = {
        {"{\"iss\":\"https://app.example\",\"aud\":\"herald\",\"exp\":1799999969}",
         "token expired"},
        {"{\"iss\":\"https://app.example\",\"aud\":\"herald\",\"nbf\":1800000031}",
         "token not yet valid"},
        {"{\"iss\":\"https://evil.example\",\"aud\":\"herald\"}", "wrong issuer"},
        {"{\"iss\":\"https://app.example\",\"aud\":[\"other\"]}", "wrong audience"},
        {"{\"iss\":\"https://app.example\",\"aud\":\"herald\",\"herald\":{\"publish\":[\"a*b\"]}}",
         "bad herald claim"},
        {"{\"iss\":\"https://app.example\",\"aud\":\"herald\",\"herald\":[1]}", "bad herald claim"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *token = sign(JWT_ALG_HS256, key, 32, NULL, cases[i].claims);
        assert_null(verify(&v, token, &reason));
        assert_string_equal(reason, cases[i].reason);
        free(token);
    }
    /* What a token may make herald keep is bounded: 64 patterns a list, a sub of 255 bytes. */
    char claims[8192];
    int n = snprintf(claims, sizeof claims,
                     "{\"iss\":\"https://app.example\",\"aud\":\"herald\",\"herald\":{\"publish\":[");
    for (int i = 0; i < 65; i++)
        n += snprintf(claims + n, sizeof claims - (size_t)n, "%s\"t%d\"", i ? "," : "", i);
    snprintf(claims + n, sizeof claims - (size_t)n, "]}}");
    char *many = sign(JWT_ALG_HS256, key, 32, NULL, claims);
    assert_null(verify(&v, many, &reason));
    assert_string_equal(reason, "bad herald claim");
    free(many);
    n = snprintf(claims, sizeof claims,
                 "{\"iss\":\"https://app.example\",\"aud\":\"herald\",\"sub\":\"");
    memset(claims + n, 's', 256);
    snprintf(claims + n + 256, sizeof claims - (size_t)n - 256, "\"}");
    char *long_sub = sign(JWT_ALG_HS256, key, 32, NULL, claims);
    assert_null(verify(&v, long_sub, &reason));
    assert_string_equal(reason, "sub too long");
    free(long_sub);
    /* Within the 30 s leeway, and an audience listed among others, are fine. */
    char *ok = sign(JWT_ALG_HS256, key, 32, NULL,
                    "{\"iss\":\"https://app.example\",\"aud\":[\"x\",\"herald\"],"
                    "\"exp\":1799999971,\"nbf\":1800000029}");
    hr_token_t *token = verify(&v, ok, &reason);
    assert_non_null(token);
    free(token);
    /* A flipped signature byte, alg none, a truncated token, garbage, and 9 KiB. */
    ok[strlen(ok) - 2] = ok[strlen(ok) - 2] == 'A' ? 'B' : 'A';
    assert_null(verify(&v, ok, &reason));
    assert_string_equal(reason, "bad signature");
    free(ok);
    const char *none = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhIn0.";
    assert_null(verify(&v, none, &reason));
    assert_string_equal(reason, "alg none is refused");
    assert_null(verify(&v, "eyJhbGciOiJIUzI1NiJ9.eyJz", &reason));
    assert_null(verify(&v, "%%%.%%%.%%%", &reason));
    char *big = malloc(9 * 1024 + 1);
    memset(big, 'a', 9 * 1024);
    big[9 * 1024] = '\0';
    assert_null(verify(&v, big, &reason));
    assert_string_equal(reason, "token too large");
    free(big);
    hr_jwt_verifier_free(&v);
}

static void keys_are_checked_at_start(void **state)
{
    (void)state;
    char err[256];
    hr_jwt_verifier_t v = {0};
    assert_int_equal(hr_jwt_add_key(&v, "hs256:short", err, sizeof err), -1);
    assert_non_null(strstr(err, "at least 32 bytes"));
    assert_int_equal(hr_jwt_add_key(&v, "/nonexistent/key.pem", err, sizeof err), -1);
    assert_int_equal(hr_jwt_add_key(&v, "env:HERALD_TEST_NO_SUCH_VARIABLE", err, sizeof err), -1);
    setenv("HERALD_TEST_KEY", "hs256:" SECRET, 1);
    assert_int_equal(hr_jwt_add_key(&v, "k1=env:HERALD_TEST_KEY", err, sizeof err), 0);
    assert_string_equal(v.keys[0].kid, "k1");
    assert_int_equal(hr_jwt_add_key(&v, "k1=hs256:" SECRET, err, sizeof err), -1);
    hr_jwt_verifier_free(&v);
}

/* A copy and a cached token keep every pattern and the subject; a cache slot is reused
 * round robin, and a token is found only under its exact bytes. */
static void tokens_copy_and_cache(void **state)
{
    (void)state;
    char err[256];
    hr_jwt_verifier_t v = {0};
    assert_int_equal(hr_jwt_add_key(&v, "hs256:" SECRET, err, sizeof err), 0);
    char *jwt = sign(JWT_ALG_HS256, (const unsigned char *)SECRET, 32, NULL,
                     "{\"sub\":\"bob\",\"herald\":{\"publish\":[\"a:*\"],\"subscribe\":"
                     "[\"user:{sub}\",\"b\"]}}");
    const char *reason;
    hr_token_t *token = verify(&v, jwt, &reason);
    assert_non_null(token);
    hr_token_cache_t cache = {0};
    hr_token_cache_put(&cache, jwt, strlen(jwt), token);
    free(token);
    assert_null(hr_token_cache_get(&cache, jwt, strlen(jwt) - 1));
    const hr_token_t *seen = hr_token_cache_get(&cache, jwt, strlen(jwt));
    assert_non_null(seen);
    hr_token_t *copy = hr_token_dup(seen);
    assert_string_equal(copy->sub, "bob");
    assert_true(hr_token_may_publish(copy, "a:1", 3));
    assert_true(hr_token_may_subscribe(copy, "user:bob", 8));
    assert_true(hr_token_may_subscribe(copy, "b", 1));
    assert_false(hr_token_may_subscribe(copy, "user:eve", 8));
    free(copy);
    for (int i = 0; i < HR_TOKEN_CACHE_SLOTS; i++) { /* push it out */
        char other[16];
        int n = snprintf(other, sizeof other, "x%d", i);
        hr_token_cache_put(&cache, other, (size_t)n, cache.slots[0].claims);
    }
    assert_null(hr_token_cache_get(&cache, jwt, strlen(jwt)));
    hr_token_cache_clear(&cache);
    free(jwt);
    hr_jwt_verifier_free(&v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(patterns_follow_the_grammar),
        cmocka_unit_test(verifies_each_algorithm_by_its_key),
        cmocka_unit_test(refuses_what_must_be_refused),
        cmocka_unit_test(keys_are_checked_at_start),
        cmocka_unit_test(tokens_copy_and_cache),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
