/* SSE encoder: field order, line splitting on CR, LF and CRLF, empty data, UTF-8 bytes intact,
 * and that the size function always covers what the encoder writes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "transport/sse_encode.h"

static char *encode(const char *id, const char *event, uint32_t retry, const char *data,
                    size_t data_len)
{
    size_t size = hr_sse_frame_size(strlen(id), strlen(event), retry, data, data_len);
    char *out = malloc(size + 1);
    size_t n = hr_sse_frame(out, id, strlen(id), event, strlen(event), retry, data, data_len);
    assert_true(n <= size);
    out[n] = '\0';
    return out;
}

static void expect_frame(const char *id, const char *event, uint32_t retry, const char *data,
                         const char *want)
{
    char *got = encode(id, event, retry, data, strlen(data));
    assert_string_equal(got, want);
    free(got);
}

static void single_line(void **state)
{
    (void)state;
    expect_frame("7", "", 0, "hello", "id: 7\ndata: hello\n\n");
}

static void all_fields(void **state)
{
    (void)state;
    expect_frame("42", "greet", 1500, "hi", "id: 42\nevent: greet\nretry: 1500\ndata: hi\n\n");
}

static void multi_line_lf(void **state)
{
    (void)state;
    expect_frame("1", "", 0, "a\nb\nc", "id: 1\ndata: a\ndata: b\ndata: c\n\n");
}

static void cr_and_crlf_are_line_breaks(void **state)
{
    (void)state;
    expect_frame("1", "", 0, "a\rb\r\nc", "id: 1\ndata: a\ndata: b\ndata: c\n\n");
    /* CR LF is one break, LF CR is two. */
    expect_frame("1", "", 0, "a\n\rb", "id: 1\ndata: a\ndata: \ndata: b\n\n");
}

static void trailing_newline_keeps_empty_line(void **state)
{
    (void)state;
    /* The client joins lines with LF: "a" + LF + "" gives back "a\n". */
    expect_frame("1", "", 0, "a\n", "id: 1\ndata: a\ndata: \n\n");
}

static void empty_data_still_dispatches(void **state)
{
    (void)state;
    expect_frame("9", "ping", 0, "", "id: 9\nevent: ping\ndata: \n\n");
}

static void utf8_passes_unchanged(void **state)
{
    (void)state;
    expect_frame("3", "", 0, "héllo 世界 🎉", "id: 3\ndata: héllo 世界 🎉\n\n");
}

static void leading_space_and_colon_survive(void **state)
{
    (void)state;
    /* "data: " strips exactly one space, so payload spaces and colons are kept. */
    expect_frame("3", "", 0, " x: y", "id: 3\ndata:  x: y\n\n");
}

static void size_covers_output(void **state)
{
    (void)state;
    const char *cases[] = {"", "\r\n\r\n", "\r\r\r", "\n", "abc\r\ndef\rghi\njkl", "\r\nx"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t len = strlen(cases[i]);
        size_t size = hr_sse_frame_size(2, 1, 5, cases[i], len);
        char *out = malloc(size);
        size_t n = hr_sse_frame(out, "12", 2, "e", 1, 5, cases[i], len);
        assert_true(n <= size);
        free(out);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(single_line),
        cmocka_unit_test(all_fields),
        cmocka_unit_test(multi_line_lf),
        cmocka_unit_test(cr_and_crlf_are_line_breaks),
        cmocka_unit_test(trailing_newline_keeps_empty_line),
        cmocka_unit_test(empty_data_still_dispatches),
        cmocka_unit_test(utf8_passes_unchanged),
        cmocka_unit_test(leading_space_and_colon_survive),
        cmocka_unit_test(size_covers_output),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
