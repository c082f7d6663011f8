#include <string.h>

#include "core/utf8.h"

int hr_utf8_feed(hr_utf8_t *st, const uint8_t *bytes, size_t len)
{
    size_t i = 0;
    while (i < len) {
        uint8_t c = bytes[i];
        if (st->need) {
            if (c < st->lo || c > st->hi) return -1;
            st->need--;
            st->lo = 0x80;
            st->hi = 0xBF;
            i++;
            continue;
        }
        if (c < 0x80) {
            /* ASCII runs are the common case: skip 8 bytes at a time. */
            while (i + 8 <= len) {
                uint64_t word;
                memcpy(&word, bytes + i, 8);
                if (word & 0x8080808080808080ull) break;
                i += 8;
            }
            if (i < len && bytes[i] < 0x80) i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF) {
            st->need = 1;
        } else if (c >= 0xE0 && c <= 0xEF) {
            st->need = 2;
            if (c == 0xE0) st->lo = 0xA0; /* no overlongs */
            if (c == 0xED) st->hi = 0x9F; /* no surrogates */
        } else if (c >= 0xF0 && c <= 0xF4) {
            st->need = 3;
            if (c == 0xF0) st->lo = 0x90; /* no overlongs */
            if (c == 0xF4) st->hi = 0x8F; /* nothing above U+10FFFF */
        } else {
            return -1; /* 80..C1 (continuation or overlong lead), F5..FF */
        }
        i++;
    }
    return 0;
}

int hr_utf8_valid(const uint8_t *bytes, size_t len)
{
    hr_utf8_t st;
    hr_utf8_init(&st);
    return hr_utf8_feed(&st, bytes, len) == 0 && hr_utf8_complete(&st);
}
