/* Topic patterns; see pattern.h. */
#include <string.h>

#include "auth/pattern.h"

static const char SUB[] = "{sub}";
#define SUB_LEN (sizeof SUB - 1)

/* The topic-name alphabet (core/broker.c's hr_topic_name_valid). */
static int topic_byte(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.' || c == ':' || c == '@' || c == '~';
}

static int is_sub_at(const char *pattern, size_t len, size_t at)
{
    return len - at >= SUB_LEN && memcmp(pattern + at, SUB, SUB_LEN) == 0;
}

int hr_pattern_valid(const char *pattern, size_t len)
{
    if (len == 0 || len > HR_PATTERN_MAX_LEN) return 0;
    if (len == 1 && pattern[0] == '*') return 1;
    size_t end = pattern[len - 1] == '*' ? len - 1 : len;
    if (end == 0) return 0;
    for (size_t at = 0; at < end;) {
        if (is_sub_at(pattern, end, at)) {
            at += SUB_LEN;
        } else if (topic_byte(pattern[at])) {
            at++;
        } else {
            return 0;
        }
    }
    return 1;
}

int hr_pattern_match(const char *pattern, size_t len, const char *sub, size_t sub_len,
                     const char *topic, size_t topic_len)
{
    size_t at = 0, pos = 0;
    while (at < len) {
        if (pattern[at] == '*' && at == len - 1) return 1; /* any rest, empty included */
        if (is_sub_at(pattern, len, at)) {
            if (sub_len == 0 || topic_len - pos < sub_len || memcmp(topic + pos, sub, sub_len) != 0)
                return 0;
            pos += sub_len;
            at += SUB_LEN;
            continue;
        }
        if (pos == topic_len || topic[pos] != pattern[at]) return 0;
        pos++;
        at++;
    }
    return pos == topic_len;
}
