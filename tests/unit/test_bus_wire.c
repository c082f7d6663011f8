/* Cluster-mode wire formats: the pub/sub payload, stream entries and ids, the --redis URL. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "bus/wire.h"

static void payload_round_trip(void **state)
{
    (void)state;
    static const char text[] = "1795598364059248 1795598366067 2000 0 4\nnotehéllo\nworld";
    hr_msg_t *msg = hr_bus_payload_decode(text, sizeof text - 1);
    assert_non_null(msg);
    assert_int_equal(msg->id, 1795598364059248ull);
    assert_int_equal(msg->time_ms, 1795598366067ll);
    assert_int_equal(msg->retry_ms, 2000);
    assert_string_equal(msg->event, "note");
    assert_int_equal(msg->data_len, strlen("héllo\nworld"));
    assert_memory_equal(msg->data, "héllo\nworld", msg->data_len);
    assert_false(msg->binary);
    hr_msg_unref(msg);
    /* Binary data with NULs and an empty event. */
    static const char bin[] = "7 1 0 1 0\n\x00\xff\x00";
    msg = hr_bus_payload_decode(bin, sizeof bin - 1);
    assert_non_null(msg);
    assert_true(msg->binary);
    assert_string_equal(msg->event, "");
    assert_int_equal(msg->data_len, 3);
    hr_msg_unref(msg);
}

static void payload_rejects_garbage(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "1 2 3 0",              /* no newline */
        "0 1 0 0 0\n",          /* id 0 */
        "1 1 0 2 0\n",          /* binary flag not 0/1 */
        "1 1 0 0 9\nabc",       /* event longer than the rest */
        "1 1 4294967296 0 0\n", /* retry over 32 bits */
        "-1 1 0 0 0\n",         /* sign */
        "1  1 0 0 0\n",         /* empty field */
        "01 1 0 0 0\n",         /* leading zero */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_null(hr_bus_payload_decode(bad[i], strlen(bad[i])));
}

static hr_bus_field_t field(const char *name, const char *value)
{
    return (hr_bus_field_t){name, value, strlen(name), strlen(value)};
}

static void stream_entries(void **state)
{
    (void)state;
    hr_bus_field_t fields[] = {field("p", "41"), field("t", "1000"), field("e", "ev"),
                               field("r", "0"),  field("b", "0"),    field("d", "data")};
    uint64_t prev = 0;
    hr_msg_t *msg = hr_bus_entry_decode("42-0", 4, fields, 6, &prev);
    assert_non_null(msg);
    assert_int_equal(msg->id, 42);
    assert_int_equal(prev, 41);
    assert_string_equal(msg->event, "ev");
    assert_string_equal(msg->data, "data");
    hr_msg_unref(msg);
    assert_null(hr_bus_entry_decode("42-1", 4, fields, 6, &prev)); /* not one of ours */
    assert_null(hr_bus_entry_decode("42-0", 4, fields, 5, &prev)); /* no data field */
    uint64_t id;
    assert_int_equal(hr_bus_stream_id_parse("9-0", 3, &id), 0);
    assert_int_equal(id, 9);
    assert_int_equal(hr_bus_stream_id_parse("0-0", 3, &id), -1);
    assert_int_equal(hr_bus_stream_id_parse("-0", 2, &id), -1);
}

static void redis_urls(void **state)
{
    (void)state;
    hr_redis_url_t url;
    char err[128];
    assert_int_equal(hr_redis_url_parse("redis://127.0.0.1:6390/2", &url, err, sizeof err), 0);
    assert_string_equal(url.host, "127.0.0.1");
    assert_int_equal(url.port, 6390);
    assert_int_equal(url.db, 2);
    assert_string_equal(url.password, "");
    assert_int_equal(hr_redis_url_parse("redis://:s3cret@cache", &url, err, sizeof err), 0);
    assert_string_equal(url.host, "cache");
    assert_int_equal(url.port, 6379);
    assert_string_equal(url.password, "s3cret");
    assert_int_equal(hr_redis_url_parse("unix:///run/redis.sock", &url, err, sizeof err), 0);
    assert_string_equal(url.path, "/run/redis.sock");
    assert_int_equal(hr_redis_url_parse("unix:/tmp/r.sock", &url, err, sizeof err), 0);
    assert_string_equal(url.path, "/tmp/r.sock");
    static const char *const bad[] = {"http://x", "redis://", "redis://h:0", "redis://h:70000",
                                      "redis://h:1/99", "redis://user@h", "unix:relative"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(hr_redis_url_parse(bad[i], &url, err, sizeof err), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(payload_round_trip),
        cmocka_unit_test(payload_rejects_garbage),
        cmocka_unit_test(stream_entries),
        cmocka_unit_test(redis_urls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
