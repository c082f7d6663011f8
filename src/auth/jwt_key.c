/* --jwt-key values into verifier keys, at start. A PEM key's type fixes its algorithm. */
#include <ctype.h>
#include <openssl/bio.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/jwt.h"

#define MAX_PEM_BYTES   (64 * 1024)
#define MIN_HS256_BYTES 32 /* RFC 7518 3.2: a key at least as long as the hash */

static int fail(char *err, size_t size, const char *message, const char *detail)
{
    snprintf(err, size, "%s%s%s", message, detail ? ": " : "", detail ? detail : "");
    return -1;
}

/* The algorithm a PEM public key verifies: RS256 for RSA, ES256 for P-256; else JWT_ALG_INVAL. */
static jwt_alg_t pem_alg(const unsigned char *pem, size_t len)
{
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    EVP_PKEY *pkey = bio ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;
    jwt_alg_t alg = JWT_ALG_INVAL;
    if (pkey && EVP_PKEY_base_id(pkey) == EVP_PKEY_RSA) alg = JWT_ALG_RS256;
    if (pkey && EVP_PKEY_base_id(pkey) == EVP_PKEY_EC) {
        char curve[64] = "";
        size_t curve_len = 0;
        if (EVP_PKEY_get_utf8_string_param(pkey, "group", curve, sizeof curve, &curve_len) == 1 &&
            strcmp(curve, "prime256v1") == 0)
            alg = JWT_ALG_ES256;
    }
    EVP_PKEY_free(pkey);
    BIO_free(bio);
    return alg;
}

static unsigned char *read_file(const char *path, size_t *len)
{
    FILE *file = fopen(path, "rb");
    if (!file) return NULL;
    unsigned char *bytes = malloc(MAX_PEM_BYTES + 1);
    size_t n = bytes ? fread(bytes, 1, MAX_PEM_BYTES + 1, file) : 0;
    fclose(file);
    if (!bytes || n == 0 || n > MAX_PEM_BYTES) {
        free(bytes);
        return NULL;
    }
    bytes[n] = '\0';
    *len = n;
    return bytes;
}

/* hs256:SECRET or PEM text (from env:NAME), or a path to a PEM file. */
static int load_material(hr_jwt_key_t *key, const char *value, int from_env, char *err,
                         size_t err_size)
{
    if (strncmp(value, "hs256:", 6) == 0) {
        size_t len = strlen(value + 6);
        if (len < MIN_HS256_BYTES)
            return fail(err, err_size, "an hs256 secret must be at least 32 bytes", NULL);
        key->alg = JWT_ALG_HS256;
        key->bytes = (unsigned char *)strdup(value + 6);
        key->len = len;
        return key->bytes ? 0 : fail(err, err_size, "out of memory", NULL);
    }
    if (from_env && strstr(value, "-----BEGIN")) {
        key->len = strlen(value);
        key->bytes = (unsigned char *)strdup(value);
    } else if (!from_env) {
        key->bytes = read_file(value, &key->len);
        if (!key->bytes)
            return fail(err, err_size, "cannot read a PEM key (at most 64 KiB) from", value);
    } else {
        return fail(err, err_size, "the variable must hold hs256:SECRET or a PEM public key", NULL);
    }
    if (!key->bytes) return fail(err, err_size, "out of memory", NULL);
    key->alg = pem_alg(key->bytes, key->len);
    if (key->alg == JWT_ALG_INVAL)
        return fail(err, err_size, "not an RSA or P-256 public key in PEM",
                    from_env ? NULL : value);
    return 0;
}

int hr_jwt_add_key(hr_jwt_verifier_t *verifier, const char *spec, char *err, size_t err_size)
{
    if (verifier->nkeys == HR_JWT_MAX_KEYS) return fail(err, err_size, "too many keys", NULL);
    hr_jwt_key_t key = {.alg = JWT_ALG_INVAL};
    const char *eq = strchr(spec, '=');
    const char *colon = strchr(spec, ':');
    /* KID=... unless the '=' belongs to the value (a secret or a path may hold one). */
    size_t kid_len = eq && (!colon || eq < colon) ? (size_t)(eq - spec) : 0;
    for (size_t i = 0; i < kid_len; i++)
        if (!isalnum((unsigned char)spec[i]) && !strchr("._-", spec[i])) kid_len = 0;
    if (kid_len) {
        if (kid_len >= sizeof key.kid) return fail(err, err_size, "a KID must be 1-63 bytes", NULL);
        memcpy(key.kid, spec, kid_len);
        spec = eq + 1;
    }
    for (size_t i = 0; i < verifier->nkeys; i++)
        if (strcmp(verifier->keys[i].kid, key.kid) == 0)
            return fail(err, err_size, "two keys with the same KID",
                        key.kid[0] ? key.kid : "(none)");
    int rc;
    if (strncmp(spec, "env:", 4) == 0) {
        const char *value = getenv(spec + 4);
        if (!value || !*value) return fail(err, err_size, "environment variable not set", spec + 4);
        rc = load_material(&key, value, 1, err, err_size);
    } else {
        rc = load_material(&key, spec, 0, err, err_size);
    }
    if (rc != 0) {
        free(key.bytes);
        return -1;
    }
    verifier->keys[verifier->nkeys++] = key;
    return 0;
}

void hr_jwt_verifier_free(hr_jwt_verifier_t *verifier)
{
    for (size_t i = 0; i < verifier->nkeys; i++) {
        /* Secrets do not linger in freed memory. */
        OPENSSL_cleanse(verifier->keys[i].bytes, verifier->keys[i].len);
        free(verifier->keys[i].bytes);
    }
    verifier->nkeys = 0;
}
