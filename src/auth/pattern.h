/* Topic patterns in a token's `herald` claim (docs/AUTH.md): what a token may publish to or
 * subscribe to. Pure.
 *
 *   pattern = "*" / 1*( topic-byte / "{sub}" ) [ "*" ]
 *
 * topic-byte is a byte of the topic-name alphabet (A-Z a-z 0-9 - _ . : @ ~); "{sub}" stands for
 * the token's subject; a trailing "*" matches any rest of the name, empty included; "*" alone
 * matches every topic. Nothing else (no "*" inside, no other braces). */
#ifndef HR_AUTH_PATTERN_H
#define HR_AUTH_PATTERN_H

#include <stddef.h>

#define HR_PATTERN_MAX_LEN 256

/* Whether `pattern` follows the grammar above. */
int hr_pattern_valid(const char *pattern, size_t len);

/* Whether `topic` matches `pattern` (valid) for a token whose subject is `sub` (may be "",
 * which no "{sub}" matches). */
int hr_pattern_match(const char *pattern, size_t len, const char *sub, size_t sub_len,
                     const char *topic, size_t topic_len);

#endif
