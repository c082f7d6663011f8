/* Input parsers: message ids, query strings, HTTP requests (limits, smuggling, pipelining) and
 * publish bodies. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "api/publish_body.h"
#include "core/id.h"
#include "http/query.h"
#include "http/request.h"

static int parse_id(const char *text, uint64_t *out)
{
    return hr_id_parse(text, strlen(text), out);
}

static void ids_parse_strictly(void **state)
{
    (void)state;
    uint64_t id;
    assert_int_equal(parse_id("0", &id), 0);
    assert_int_equal(id, 0);
    assert_int_equal(parse_id("1795580109133496", &id), 0);
    assert_int_equal(id, 1795580109133496ull);
    assert_int_equal(parse_id("9007199254740991", &id), 0); /* 2^53 - 1 */
    assert_int_equal(id, 9007199254740991ull);
    const char *bad[] = {"",
                         "-1",
                         "+1",
                         " 1",
                         "1 ",
                         "01",
                         "1e3",
                         "0x10",
                         "abc",
                         "9007199254740992",
                         "9223372036854775807",
                         "9223372036854775808",
                         "18446744073709551616",
                         "99999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(parse_id(bad[i], &id), -1);
}

static void ids_format_round_trip(void **state)
{
    (void)state;
    char buf[HR_ID_STR_MAX];
    uint64_t values[] = {0, 7, 10, 1795580109133496ull, HR_ID_MAX};
    for (size_t i = 0; i < 5; i++) {
        size_t n = hr_id_format(values[i], buf);
        uint64_t back;
        assert_int_equal(hr_id_parse(buf, n, &back), 0);
        assert_int_equal(back, values[i]);
    }
}

static void query_decodes(void **state)
{
    (void)state;
    const char *q = "topic=a&topic=b%2Fc&event=hello+world&empty=&flag&&x=%41";
    char buf[256];
    hr_qparam_t params[16];
    int n = hr_query_parse(q, strlen(q), buf, params, 16);
    assert_int_equal(n, 6);
    assert_string_equal(params[0].value, "a");
    assert_string_equal(params[1].value, "b/c");
    assert_string_equal(hr_query_get(params, n, "event")->value, "hello world");
    assert_int_equal(hr_query_get(params, n, "empty")->value_len, 0);
    assert_non_null(hr_query_get(params, n, "flag"));
    assert_string_equal(hr_query_get(params, n, "x")->value, "A");
    assert_null(hr_query_get(params, n, "missing"));
}

static void query_rejects_bad_escapes_and_excess(void **state)
{
    (void)state;
    char buf[64];
    hr_qparam_t params[2];
    assert_int_equal(hr_query_parse("a=%4", 4, buf, params, 2), -1);
    assert_int_equal(hr_query_parse("a=%zz", 5, buf, params, 2), -1);
    assert_int_equal(hr_query_parse("a=%", 3, buf, params, 2), -1);
    assert_int_equal(hr_query_parse("a&b&c", 5, buf, params, 2), -2);
}

/* Feeds `text` in chunks of `step` bytes; returns the final parse result. */
static enum hr_parse_result feed(hr_reqparser_t *rp, const char *text, size_t step,
                                 size_t *consumed_total)
{
    size_t len = strlen(text), pos = 0;
    enum hr_parse_result result = HR_PARSE_MORE;
    while (pos < len) {
        size_t chunk = len - pos < step ? len - pos : step, used;
        result = hr_reqparser_feed(rp, text + pos, chunk, &used);
        pos += used;
        if (result != HR_PARSE_MORE) break;
    }
    *consumed_total = pos;
    return result;
}

static void request_parses_in_any_chunking(void **state)
{
    (void)state;
    const char *text = "POST /v1/topics/a?event=x HTTP/1.1\r\nHost: h\r\nContent-Type: "
                       "application/json\r\nX-Empty:\r\nContent-Length: 5\r\n\r\nhello";
    for (size_t step = 1; step <= strlen(text); step += 7) {
        hr_reqparser_t rp;
        hr_reqparser_init(&rp, 16384, 1024);
        size_t used;
        assert_int_equal(feed(&rp, text, step, &used), HR_PARSE_READY);
        hr_request_t *req = hr_reqparser_take(&rp);
        assert_int_equal(req->path_len, 12);
        assert_memory_equal(req->path, "/v1/topics/a", 12);
        assert_string_equal(req->query, "event=x");
        assert_string_equal(hr_request_header(req, "content-type", NULL), "application/json");
        assert_string_equal(hr_request_header(req, "X-Empty", NULL), "");
        assert_int_equal(req->body_len, 5);
        assert_string_equal(req->body, "hello");
        assert_true(req->keep_alive);
        hr_request_free(req);
        hr_reqparser_reset(&rp);
    }
}

static void request_pipelining_stops_after_each(void **state)
{
    (void)state;
    const char *two =
        "GET /healthz HTTP/1.1\r\nHost: h\r\n\r\nGET /v1/stats HTTP/1.1\r\nHost: h\r\n\r\n";
    hr_reqparser_t rp;
    hr_reqparser_init(&rp, 16384, 1024);
    size_t used;
    assert_int_equal(hr_reqparser_feed(&rp, two, strlen(two), &used), HR_PARSE_READY);
    hr_request_t *first = hr_reqparser_take(&rp);
    assert_memory_equal(first->path, "/healthz", 8);
    hr_request_free(first);
    size_t used2;
    assert_int_equal(hr_reqparser_feed(&rp, two + used, strlen(two) - used, &used2),
                     HR_PARSE_READY);
    hr_request_t *second = hr_reqparser_take(&rp);
    assert_memory_equal(second->path, "/v1/stats", 9);
    assert_int_equal(used + used2, strlen(two));
    hr_request_free(second);
    hr_reqparser_reset(&rp);
}

static int error_for(const char *text, size_t max_header, size_t max_body)
{
    hr_reqparser_t rp;
    hr_reqparser_init(&rp, max_header, max_body);
    size_t used;
    enum hr_parse_result result = feed(&rp, text, 3, &used);
    int status = result == HR_PARSE_ERROR ? rp.error_status : 0;
    hr_reqparser_reset(&rp);
    return status;
}

static void request_errors_map_to_status(void **state)
{
    (void)state;
    assert_int_equal(error_for("GARBAGE\r\n\r\n", 16384, 1024), 400);
    assert_int_equal(error_for("GET nopath HTTP/1.1\r\n\r\n", 16384, 1024), 400);
    assert_int_equal(error_for("GET / HTTP/1.1\r\nHost: h\r\nBad Header\r\n\r\n", 16384, 1024),
                     400);
    /* Smuggling: Content-Length with chunked, and two Content-Lengths. */
    assert_int_equal(
        error_for("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: "
                  "chunked\r\n\r\n0\r\n\r\n",
                  16384, 1024),
        400);
    assert_int_equal(
        error_for(
            "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
            16384, 1024),
        400);
    assert_int_equal(
        error_for("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2000\r\n\r\n", 16384, 1024), 413);
    /* A chunk larger than the body limit is refused as soon as its size is read. */
    assert_int_equal(error_for("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                               "800\r\n",
                               16384, 1024),
                     413);
    assert_int_equal(error_for("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                               "400\r\n",
                               16384, 1024),
                     0); /* exactly the limit: the body is not here yet */
    char big[20000];
    strcpy(big, "GET / HTTP/1.1\r\nX-Big: ");
    memset(big + strlen(big), 'a', 17000);
    strcpy(big + 24 + 17000, "\r\n\r\n");
    assert_int_equal(error_for(big, 16384, 1024), 431);
}

static void chunked_body_over_limit_is_413(void **state)
{
    (void)state;
    char text[4096];
    strcpy(text, "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n800\r\n");
    size_t at = strlen(text);
    memset(text + at, 'b', 0x800);
    strcpy(text + at + 0x800, "\r\n0\r\n\r\n");
    assert_int_equal(error_for(text, 16384, 1024), 413);
}

/* Every leniency a proxy might read differently is refused (RFC 9112); fed 3 bytes at a time. */
static void request_refuses_lenient_framing(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int status;
    } cases[] = {
        /* chunk framing */
        {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: "
         "chunked\r\n\r\n2\r\nabXX3\r\ncdeYY0\r\n\r\n",
         400},
        {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\n0\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\nab\r\n0\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n-2\r\nab\r\n0\r\n\r\n",
         400},
        {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0x2\r\nab\r\n0\r\n\r\n",
         400},
        {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2 \r\nab\r\n0\r\n\r\n",
         400},
        {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
         "ffffffffffffffffffff1\r\na\r\n0\r\n\r\n",
         413},
        {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2;\r\nab\r\n0\r\n\r\n",
         400},
        {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2;a b\r\nab\r\n0\r\n\r\n",
         400},
        {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: "
         "chunked\r\n\r\n2;a=\"x\nb\"\r\nab\r\n0\r\n\r\n",
         400},
        {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\nX: "
         "y\n\r\n",
         400},
        {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n "
         "y\r\n\r\n",
         400},
        /* transfer codings */
        {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501},
        {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n", 501},
        {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: "
         "chunked\r\n\r\n",
         400},
        {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: ,\r\n\r\n", 400},
        {"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
        /* lines and fields */
        {"GET / HTTP/1.1\nHost: h\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: h\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: h\r\rX: y\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n  folded\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost : h\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: h\r\nContent-Length : 3\r\n\r\nabc", 400},
        {"GET / HTTP/1.1\r\nHost: h\r\nX: a\x01b\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: h\r\n: empty name\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +3\r\n\r\nabc", 400},
        {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3, 3\r\n\r\nabc", 400},
        {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
        /* request line */
        {"GET  / HTTP/1.1\r\nHost: h\r\n\r\n", 400},
        {"GET / HTTP/1.1 \r\nHost: h\r\n\r\n", 400},
        {"GET /a b HTTP/1.1\r\nHost: h\r\n\r\n", 400},
        {"G\x01T / HTTP/1.1\r\nHost: h\r\n\r\n", 400},
        {"GET / HTTP/1.x\r\nHost: h\r\n\r\n", 400},
        {"GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505},
        {"GET http://h/ HTTP/1.1\r\nHost: h\r\n\r\n", 400},
        {"\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", 400},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int status = error_for(cases[i].text, 16384, 1024);
        if (status != cases[i].status) print_error("case %zu: %s\n", i, cases[i].text);
        assert_int_equal(status, cases[i].status);
    }
}

/* The bounds a client chooses against: a chunk size line (extensions included) of at most 4 KiB,
 * a trailer section within the header limit. */
static void request_bounds_chunk_lines_and_trailers(void **state)
{
    (void)state;
    static char text[16384];
    int n = snprintf(text, sizeof text,
                     "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1;a=");
    memset(text + n, 'x', 5000);
    strcpy(text + n + 5000, "\r\nz\r\n0\r\n\r\n");
    assert_int_equal(error_for(text, 16384, 1024), 400);
    n = snprintf(text, sizeof text,
                 "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: ");
    memset(text + n, 'y', 3000);
    strcpy(text + n + 3000, "\r\n\r\n");
    assert_int_equal(error_for(text, 2048, 1024), 431);
}

/* What the grammar allows is read: chunk extensions, trailers, OWS, obs-text, empty lines
 * before the request line, HTTP/1.0 without Host; Connection decides keep-alive. */
static void request_accepts_what_the_grammar_allows(void **state)
{
    (void)state;
    const char *text = "\r\nPOST /p HTTP/1.1\r\nHost: h\r\nX-Text: \t caf\xc3\xa9 \t\r\n"
                       "Transfer-Encoding: Chunked\r\nConnection: Keep-Alive, close\r\n\r\n"
                       "2;a=b;c=\"q \\\" d\" ; e\r\nab\r\n00000003\r\ncde\r\n0\r\n"
                       "Trailer-A: x\r\nB: \r\n\r\n";
    for (size_t step = 1; step <= 9; step++) {
        hr_reqparser_t rp;
        hr_reqparser_init(&rp, 16384, 1024);
        size_t used;
        assert_int_equal(feed(&rp, text, step, &used), HR_PARSE_READY);
        assert_int_equal(used, strlen(text));
        hr_request_t *req = hr_reqparser_take(&rp);
        assert_string_equal(req->body, "abcde");
        assert_string_equal(hr_request_header(req, "x-text", NULL), "caf\xc3\xa9");
        assert_false(req->keep_alive);
        hr_request_free(req);
        hr_reqparser_reset(&rp);
    }
    hr_reqparser_t rp;
    hr_reqparser_init(&rp, 16384, 1024);
    size_t used;
    const char *old = "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
    assert_int_equal(hr_reqparser_feed(&rp, old, strlen(old), &used), HR_PARSE_READY);
    hr_request_t *req = hr_reqparser_take(&rp);
    assert_true(req->keep_alive);
    assert_int_equal(req->method_len, 3);
    hr_request_free(req);
    hr_reqparser_reset(&rp);
}

static void publish_json_body(void **state)
{
    (void)state;
    hr_pub_body_t body;
    char err[256];
    const char *ok = "{\"event\":\"e\",\"data\":\"d\\u0000x\",\"id\":\"55\",\"retry\":100}";
    assert_int_equal(hr_pub_body_parse_json(ok, strlen(ok), &body, err, sizeof err), 0);
    assert_int_equal(body.event_len, 1);
    assert_int_equal(body.data_len, 3); /* NUL inside the payload is kept */
    assert_int_equal(body.want_id, 55);
    assert_int_equal(body.retry_ms, 100);
    hr_pub_body_free(&body);

    const char *obj = "{\"data\":{\"a\":[1,2]}}";
    assert_int_equal(hr_pub_body_parse_json(obj, strlen(obj), &body, err, sizeof err), 0);
    assert_int_equal(body.data_len, strlen("{\"a\":[1,2]}"));
    assert_memory_equal(body.data, "{\"a\":[1,2]}", body.data_len);
    hr_pub_body_free(&body);

    const char *bad[] = {"{",
                         "[]",
                         "{}",
                         "{\"data\":\"x\",\"event\":\"a\\nb\"}",
                         "{\"data\":\"x\",\"event\":5}",
                         "{\"data\":\"x\",\"id\":-3}",
                         "{\"data\":\"x\",\"id\":\"01\"}",
                         "{\"data\":\"x\",\"retry\":\"5\"}",
                         "{\"data\":\"x\",\"data\":\"y\"}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(hr_pub_body_parse_json(bad[i], strlen(bad[i]), &body, err, sizeof err),
                         -1);
        assert_true(strlen(err) > 0);
        hr_pub_body_free(&body);
    }
}

/* deliver_at, delay and push fields (docs/PUSH.md). */
static void delivery_times_and_push_fields(void **state)
{
    (void)state;
    const int64_t now = 1796208000000; /* 2026-12-02T10:40:00Z */
    int64_t at;
#define AT(text) hr_deliver_at_parse(text, strlen(text), now, &at)
    assert_int_equal(AT("2026-12-02T10:41:00Z"), 0);
    assert_int_equal(at, now + 60000);
    assert_int_equal(AT("2026-12-02T11:41:00.250+01:00"), 0);
    assert_int_equal(at, now + 60250);
    assert_int_equal(AT("2026-12-02T09:41:00-00:59"), 0); /* 10:40Z */
    assert_int_equal(at, now);
    assert_int_equal(AT("1796208060000"), 0);
    assert_int_equal(at, now + 60000);
    assert_int_equal(AT("2020-01-01T00:00:00Z"), 0); /* past: now */
    assert_int_equal(at, now);
    const char *bad[] = {"",
                         "tomorrow",
                         "2026-12-02T10:41:00",
                         "2026-13-02T10:41:00Z",
                         "2026-12-02 10:41:00Z",
                         "2026-12-02T10:41:00+1:00",
                         "2027-02-01T00:00:00Z",
                         "-5",
                         "1796208060000.5",
                         "9999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(AT(bad[i]), -1);
#undef AT
    assert_int_equal(hr_delay_parse("1500", 4, now, &at), 0);
    assert_int_equal(at, now + 1500);
    assert_int_equal(hr_delay_parse("2592000001", 10, now, &at), -1); /* past 30 days */
    assert_int_equal(hr_delay_parse("-1", 2, now, &at), -1);
    char err[160];
    const char *ok = "{\"title\":\"t\",\"body\":\"b\",\"ttl\":60,\"priority\":\"normal\","
                     "\"collapse_key\":\"k\",\"data\":{\"a\":\"b\"}}";
    json_t *push = json_loads(ok, 0, NULL);
    assert_int_equal(hr_push_fields_check(push, err, sizeof err), 0);
    json_decref(push);
    const char *nope[] = {"[]",
                          "{\"sound\":\"x\"}",
                          "{\"ttl\":-1}",
                          "{\"ttl\":2419201}",
                          "{\"priority\":\"max\"}",
                          "{\"data\":{\"n\":1}}",
                          "{\"title\":5}"};
    for (size_t i = 0; i < sizeof nope / sizeof nope[0]; i++) {
        push = json_loads(nope[i], JSON_DECODE_ANY, NULL);
        assert_int_equal(hr_push_fields_check(push, err, sizeof err), -1);
        json_decref(push);
    }
    assert_int_equal(hr_fcm_mode_parse("offline", 7), HR_FCM_OFFLINE);
    assert_int_equal(hr_fcm_mode_parse("Offline", 7), HR_FCM_DEFAULT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ids_parse_strictly),
        cmocka_unit_test(ids_format_round_trip),
        cmocka_unit_test(query_decodes),
        cmocka_unit_test(query_rejects_bad_escapes_and_excess),
        cmocka_unit_test(request_parses_in_any_chunking),
        cmocka_unit_test(request_pipelining_stops_after_each),
        cmocka_unit_test(request_errors_map_to_status),
        cmocka_unit_test(chunked_body_over_limit_is_413),
        cmocka_unit_test(request_refuses_lenient_framing),
        cmocka_unit_test(request_accepts_what_the_grammar_allows),
        cmocka_unit_test(request_bounds_chunk_lines_and_trailers),
        cmocka_unit_test(publish_json_body),
        cmocka_unit_test(delivery_times_and_push_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
