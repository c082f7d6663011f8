/* WebSocket framing and UTF-8: header parsing at every length form, each protocol error the
 * parser must catch, header writing, masking, close codes, the accept key (RFC 6455's own
 * example), and incremental UTF-8 across arbitrary splits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/utf8.h"
#include "transport/ws_deflate.h"
#include "transport/ws_frame.h"
#include <stdlib.h>

static void parses_lengths(void **state)
{
    (void)state;
    hr_ws_frame_t f;
    uint8_t small[] = {0x81, 0x85, 1, 2, 3, 4};
    assert_int_equal(hr_ws_parse_header(small, sizeof small, &f), 6);
    assert_true(f.fin);
    assert_int_equal(f.opcode, HR_WS_TEXT);
    assert_int_equal(f.len, 5);
    assert_memory_equal(f.mask, "\1\2\3\4", 4);
    uint8_t mid[] = {0x02, 0xFE, 0x01, 0x00, 9, 9, 9, 9};
    assert_int_equal(hr_ws_parse_header(mid, sizeof mid, &f), 8);
    assert_false(f.fin);
    assert_int_equal(f.len, 256);
    uint8_t big[] = {0x82, 0xFF, 0, 0, 0, 1, 0, 0, 0, 0, 1, 1, 1, 1};
    assert_int_equal(hr_ws_parse_header(big, sizeof big, &f), 14);
    assert_int_equal(f.len, 1ull << 32);
    /* Every prefix of a header asks for more bytes. */
    for (size_t n = 0; n < sizeof big; n++)
        assert_int_equal(hr_ws_parse_header(big, n, &f), 0);
}

static void rejects_protocol_errors(void **state)
{
    (void)state;
    hr_ws_frame_t f;
    const uint8_t cases[][10] = {
        {0x81, 0x05},                            /* unmasked */
        {0xA1, 0x80, 0, 0, 0, 0},                /* RSV2 */
        {0x91, 0x80, 0, 0, 0, 0},                /* RSV3 */
        {0x83, 0x80, 0, 0, 0, 0},                /* reserved data opcode 3 */
        {0x8B, 0x80, 0, 0, 0, 0},                /* reserved control opcode B */
        {0x09, 0x80, 0, 0, 0, 0},                /* fragmented ping */
        {0x89, 0xFE, 0, 126, 0, 0},              /* ping over 125 bytes */
        {0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0}, /* 64-bit length, top bit set */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_int_equal(hr_ws_parse_header(cases[i], 10, &f), -HR_WS_PROTOCOL_ERROR);
    uint8_t rsv1[] = {0xC1, 0x80, 0, 0, 0, 0}; /* RSV1 is the caller's call */
    assert_int_equal(hr_ws_parse_header(rsv1, sizeof rsv1, &f), 6);
    assert_true(f.rsv1);
}

static void writes_headers(void **state)
{
    (void)state;
    uint8_t out[HR_WS_MAX_HEADER];
    assert_int_equal(hr_ws_write_header(out, 1, 0, HR_WS_TEXT, 125), 2);
    assert_memory_equal(out, "\x81\x7d", 2);
    assert_int_equal(hr_ws_write_header(out, 1, 1, HR_WS_BINARY, 126), 4);
    assert_memory_equal(out, "\xc2\x7e\x00\x7e", 4);
    assert_int_equal(hr_ws_write_header(out, 0, 0, HR_WS_CONT, 65536), 10);
    assert_memory_equal(out, "\x00\x7f\x00\x00\x00\x00\x00\x01\x00\x00", 10);
}

static void unmasks_at_any_offset(void **state)
{
    (void)state;
    uint8_t mask[4] = {0x37, 0xfa, 0x21, 0x3d};
    uint8_t data[] = {0x7f, 0x9f, 0x4d, 0x51, 0x58}; /* RFC 6455 5.7: masked "Hello" */
    hr_ws_unmask(data, 2, mask, 0);
    hr_ws_unmask(data + 2, 3, mask, 2);
    assert_memory_equal(data, "Hello", 5);
}

static void close_codes(void **state)
{
    (void)state;
    unsigned ok[] = {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 4999};
    unsigned bad[] = {0, 999, 1004, 1005, 1006, 1012, 1015, 1016, 2000, 2999, 5000, 65535};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        assert_true(hr_ws_close_code_valid(ok[i]));
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(hr_ws_close_code_valid(bad[i]));
}

static void accept_key_matches_rfc_example(void **state)
{
    (void)state;
    char out[32];
    const char *key = "dGhlIHNhbXBsZSBub25jZQ==";
    assert_int_equal(hr_ws_accept_key(key, strlen(key), out), 0);
    assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

static int valid_split(const char *bytes, size_t len)
{
    /* Valid only if every split into two pieces agrees with the one-shot answer. */
    int whole = hr_utf8_valid((const uint8_t *)bytes, len);
    for (size_t cut = 0; cut <= len; cut++) {
        hr_utf8_t st;
        hr_utf8_init(&st);
        int ok = hr_utf8_feed(&st, (const uint8_t *)bytes, cut) == 0 &&
                 hr_utf8_feed(&st, (const uint8_t *)bytes + cut, len - cut) == 0 &&
                 hr_utf8_complete(&st);
        assert_int_equal(ok, whole);
    }
    return whole;
}

static void utf8_accepts_and_rejects(void **state)
{
    (void)state;
    assert_true(valid_split("", 0));
    assert_true(valid_split("plain ascii text, long enough for the fast path", 47));
    assert_true(valid_split("κόσμε", strlen("κόσμε")));
    assert_true(valid_split("\xf0\x9f\x8e\x89 \xf4\x8f\xbf\xbf \xef\xbf\xbf", 13));
    assert_false(valid_split("\xc0\xaf", 2));         /* overlong / */
    assert_false(valid_split("\xe0\x80\xaf", 3));     /* overlong */
    assert_false(valid_split("\xed\xa0\x80", 3));     /* surrogate */
    assert_false(valid_split("\xf4\x90\x80\x80", 4)); /* above U+10FFFF */
    assert_false(valid_split("\xf5\x80\x80\x80", 4));
    assert_false(valid_split("\x80", 1));   /* lone continuation */
    assert_false(valid_split("ab\xce", 3)); /* truncated at the end */
    assert_false(valid_split("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80"
                             "edited",
                             20));
}

static int negotiate(const char *offer, char *response)
{
    hr_ws_deflate_t params;
    return hr_ws_deflate_negotiate(offer, strlen(offer), &params, response, 256)
               ? params.server_window
               : 0;
}

static void deflate_negotiation(void **state)
{
    (void)state;
    char resp[256];
    assert_int_equal(negotiate("permessage-deflate", resp), 15);
    assert_string_equal(resp, "permessage-deflate; server_no_context_takeover; "
                              "client_no_context_takeover");
    assert_int_equal(negotiate("permessage-deflate; client_max_window_bits", resp), 15);
    assert_int_equal(negotiate("permessage-deflate; server_max_window_bits=10", resp), 10);
    assert_non_null(strstr(resp, "server_max_window_bits=10"));
    /* Declined offers: unknown or duplicate params, bad values, 8 bits (zlib cannot). */
    assert_int_equal(negotiate("permessage-deflate; foo", resp), 0);
    assert_int_equal(negotiate("permessage-deflate; server_max_window_bits=16", resp), 0);
    assert_int_equal(negotiate("permessage-deflate; server_max_window_bits", resp), 0);
    assert_int_equal(negotiate("permessage-deflate; server_no_context_takeover=1", resp), 0);
    assert_int_equal(negotiate("permessage-deflate; client_no_context_takeover; "
                               "client_no_context_takeover",
                               resp),
                     0);
    assert_int_equal(negotiate("permessage-deflate; server_max_window_bits=8", resp), 0);
    assert_int_equal(negotiate("x-webkit-deflate-frame", resp), 0);
    /* The first acceptable of several offers wins. */
    assert_int_equal(negotiate("permessage-deflate; foo, permessage-deflate; "
                               "server_max_window_bits=12",
                               resp),
                     12);
}

static void deflate_round_trip_and_bomb(void **state)
{
    (void)state;
    static uint8_t text[100000];
    for (size_t i = 0; i < sizeof text; i++)
        text[i] = (uint8_t)("herald "[i % 7]);
    uint8_t *packed, *unpacked;
    size_t packed_len, unpacked_len;
    assert_int_equal(hr_ws_compress(text, sizeof text, 15, 10, &packed, &packed_len), 0);
    assert_true(packed_len < sizeof text / 50);
    assert_int_equal(
        hr_ws_decompress(packed + 10, packed_len, sizeof text, &unpacked, &unpacked_len), 0);
    assert_int_equal(unpacked_len, sizeof text);
    assert_memory_equal(unpacked, text, sizeof text);
    free(unpacked);
    /* One byte less allowed: cut off, not buffered. */
    assert_int_equal(
        hr_ws_decompress(packed + 10, packed_len, sizeof text - 1, &unpacked, &unpacked_len), -2);
    free(packed);
    uint8_t garbage[] = {0xff, 0xff, 0xff, 0xff, 0x00};
    assert_int_equal(hr_ws_decompress(garbage, sizeof garbage, 1000, &unpacked, &unpacked_len), -1);
    /* RFC 7692 7.2.3.1: "Hello" compressed. */
    uint8_t hello[] = {0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00};
    assert_int_equal(hr_ws_decompress(hello, sizeof hello, 100, &unpacked, &unpacked_len), 0);
    assert_int_equal(unpacked_len, 5);
    assert_memory_equal(unpacked, "Hello", 5);
    free(unpacked);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parses_lengths),
        cmocka_unit_test(rejects_protocol_errors),
        cmocka_unit_test(writes_headers),
        cmocka_unit_test(unmasks_at_any_offset),
        cmocka_unit_test(close_codes),
        cmocka_unit_test(accept_key_matches_rfc_example),
        cmocka_unit_test(utf8_accepts_and_rejects),
        cmocka_unit_test(deflate_negotiation),
        cmocka_unit_test(deflate_round_trip_and_bomb),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
