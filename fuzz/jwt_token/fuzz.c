/* libFuzzer target: token and claim parsing (auth/jwt.c, auth/pattern.c). The input is read
 * as a token against an HS256 key and two RSA/EC-free rules: it must never verify (the fuzzer
 * does not know the secret, so a success means a check was skipped), and no input may crash
 * the header, claims or pattern readers. The same bytes are also tried as a pattern, and any
 * valid pattern must match itself when it has no wildcard or {sub}. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/jwt.h"
#include "auth/pattern.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static hr_jwt_verifier_t verifier;
    static int ready;
    if (!ready) {
        char err[128];
        if (hr_jwt_add_key(&verifier, "hs256:fuzz-secret-fuzz-secret-fuzz-secret!", err,
                           sizeof err) != 0)
            abort();
        ready = 1;
    }
    const char *reason;
    hr_token_t *token = hr_jwt_verify(&verifier, (const char *)data, size, 1800000000, &reason);
    if (token) abort(); /* forged without the secret */
    const char *text = (const char *)data;
    if (hr_pattern_valid(text, size) && !memchr(text, '*', size) &&
        !memmem(text, size, "{sub}", 5) && !hr_pattern_match(text, size, "u", 1, text, size))
        abort();
    return 0;
}
