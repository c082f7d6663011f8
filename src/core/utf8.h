/* Incremental UTF-8 validation (RFC 3629: no overlongs, no surrogates, nothing above
 * U+10FFFF). State carries across calls, so a message split into WebSocket fragments (or a
 * code point split across TCP reads) is checked as it arrives and rejected at the first bad
 * byte. Pure. */
#ifndef HR_UTF8_H
#define HR_UTF8_H

#include <stddef.h>
#include <stdint.h>

typedef struct hr_utf8_s {
    uint8_t need; /* continuation bytes still expected */
    uint8_t lo;   /* allowed range of the next continuation byte */
    uint8_t hi;
} hr_utf8_t;

static inline void hr_utf8_init(hr_utf8_t *st)
{
    st->need = 0;
    st->lo = 0x80;
    st->hi = 0xBF;
}

/* Returns 0 while the bytes so far can be the start of valid UTF-8, -1 once they cannot. */
int hr_utf8_feed(hr_utf8_t *st, const uint8_t *bytes, size_t len);

/* True when the input ended on a code point boundary. */
static inline int hr_utf8_complete(const hr_utf8_t *st)
{
    return st->need == 0;
}

/* Whole-buffer check. */
int hr_utf8_valid(const uint8_t *bytes, size_t len);

#endif
