/* HTTP/2 header fields into hr_request_t (http/h2_request.c): pseudo-headers to method, path
 * and query; :authority as Host even when the text must grow to hold it; cookie fields joined;
 * the header budget (431), the field count (431), the body limit (413), a missing :path (400). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http/h2_request.h"

static int field(hr_h2req_t *builder, const char *name, const char *value)
{
    return hr_h2req_field(builder, name, strlen(name), value, strlen(value));
}

static void builds_the_request(void **state)
{
    (void)state;
    hr_h2req_t builder;
    hr_h2req_init(&builder, 65536, 1024);
    assert_int_equal(field(&builder, ":method", "POST"), 0);
    assert_int_equal(field(&builder, ":scheme", "https"), 0);
    assert_int_equal(field(&builder, ":path", "/v1/topics/news?event=a&x=1"), 0);
    /* Long enough that the text grows again when Host is added at the end. */
    char authority[300];
    memset(authority, 'h', sizeof authority - 1);
    authority[sizeof authority - 1] = '\0';
    assert_int_equal(field(&builder, ":authority", authority), 0);
    assert_int_equal(field(&builder, "cookie", "a=1"), 0);
    assert_int_equal(field(&builder, "content-type", "text/plain"), 0);
    assert_int_equal(field(&builder, "cookie", "herald_token=t"), 0);
    assert_int_equal(hr_h2req_body(&builder, "hello ", 6), 0);
    assert_int_equal(hr_h2req_body(&builder, "world", 5), 0);
    int status = -1;
    hr_request_t *req = hr_h2req_finish(&builder, &status);
    assert_non_null(req);
    assert_int_equal(status, 0);
    assert_string_equal(req->method, "POST");
    assert_int_equal(req->path_len, strlen("/v1/topics/news"));
    assert_memory_equal(req->path, "/v1/topics/news", req->path_len);
    assert_int_equal(req->query_len, strlen("event=a&x=1"));
    assert_memory_equal(req->query, "event=a&x=1", req->query_len);
    size_t len;
    assert_string_equal(hr_request_header(req, "Content-Type", &len), "text/plain");
    assert_string_equal(hr_request_header(req, "Cookie", &len), "a=1; herald_token=t");
    assert_string_equal(hr_request_header(req, "Host", &len), authority);
    assert_int_equal(len, strlen(authority));
    assert_string_equal(req->body, "hello world");
    assert_int_equal(req->keep_alive, 1);
    assert_int_equal(req->upgrade, 0);
    hr_request_free(req);
    hr_h2req_reset(&builder);
}

static void refuses_what_is_over_a_limit(void **state)
{
    (void)state;
    hr_h2req_t builder;
    hr_h2req_init(&builder, 200, 8);
    char value[200];
    memset(value, 'v', sizeof value - 1);
    value[sizeof value - 1] = '\0';
    assert_int_equal(field(&builder, ":path", "/"), 0);
    assert_int_equal(field(&builder, "x-big", value), 431); /* name + value + 32 > 200 */
    hr_h2req_reset(&builder);

    hr_h2req_init(&builder, 1 << 20, 8);
    int rc = 0;
    char name[16];
    for (int i = 0; i <= HR_MAX_HEADERS && rc == 0; i++) {
        snprintf(name, sizeof name, "x-%d", i);
        rc = field(&builder, name, "v");
    }
    assert_int_equal(rc, 431);
    hr_h2req_reset(&builder);

    hr_h2req_init(&builder, 1 << 20, 8);
    assert_int_equal(hr_h2req_body(&builder, "12345678", 8), 0);
    assert_int_equal(hr_h2req_body(&builder, "9", 1), 413);
    hr_h2req_reset(&builder);
}

static void needs_method_and_path(void **state)
{
    (void)state;
    hr_h2req_t builder;
    int status = 0;
    hr_h2req_init(&builder, 4096, 8);
    assert_int_equal(field(&builder, ":method", "GET"), 0);
    assert_null(hr_h2req_finish(&builder, &status));
    assert_int_equal(status, 400);
    assert_int_equal(field(&builder, ":method", "OPTIONS"), 0);
    assert_int_equal(field(&builder, ":path", "*"), 0);
    assert_null(hr_h2req_finish(&builder, &status));
    assert_int_equal(status, 400);
    assert_null(hr_h2req_finish(&builder, &status)); /* nothing at all */
    assert_int_equal(status, 400);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(builds_the_request),
        cmocka_unit_test(refuses_what_is_over_a_limit),
        cmocka_unit_test(needs_method_and_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
