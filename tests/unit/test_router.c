/* Router: every route (the API's and the transports'), topic capture, 404 for unknown paths, 405
 * with Allow for wrong methods. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "http/router.h"
#include "transport/registry.h"

/* As the dispatcher looks: the API's routes, then the transports'. */
static int route(enum hr_method method, const char *path, hr_route_match_t *match)
{
    int status = hr_route(method, path, strlen(path), match);
    return status == 404 ? hr_transport_route(method, path, strlen(path), match) : status;
}

static void matches_each_route(void **state)
{
    (void)state;
    hr_route_match_t m;
    assert_int_equal(route(HR_GET, "/healthz", &m), 200);
    assert_int_equal(m.id, HR_ROUTE_HEALTH);
    assert_int_equal(route(HR_GET, "/v1/stats", &m), 200);
    assert_int_equal(m.id, HR_ROUTE_STATS);
    assert_int_equal(route(HR_GET, "/v1/stats/stream", &m), 200);
    assert_int_equal(m.id, HR_ROUTE_STATS_STREAM);
    assert_int_equal(route(HR_GET, "/metrics", &m), 200);
    assert_int_equal(m.id, HR_ROUTE_METRICS);
    assert_int_equal(route(HR_GET, "/v1/topics", &m), 200);
    assert_int_equal(m.id, HR_ROUTE_TOPICS);
    assert_int_equal(route(HR_POST, "/v1/pools/ideas/rainy-day", &m), 200);
    assert_int_equal(m.id, HR_ROUTE_POOL);
    assert_int_equal(m.topic_len, 5);
    assert_memory_equal(m.token, "rainy-day", 9);
    assert_int_equal(route(HR_GET, "/v1/pools/ideas/rainy-day/members", &m), 200);
    assert_int_equal(m.id, HR_ROUTE_POOL_MEMBERS);
    assert_int_equal(route(HR_POST, "/v1/publish", &m), 200);
    assert_int_equal(m.id, HR_ROUTE_PUBLISH_MANY);
    assert_int_equal(route(HR_GET, "/v1/events", &m), 200);
    assert_int_equal(m.id, HR_ROUTE_TRANSPORT);
    assert_null(m.topic);
    assert_int_equal(route(HR_DELETE, "/v1/topics/t/subscribers", &m), 200);
    assert_int_equal(m.id, HR_ROUTE_TOPIC_SUBSCRIBERS);
}

static void captures_topic(void **state)
{
    (void)state;
    hr_route_match_t m;
    assert_int_equal(route(HR_POST, "/v1/topics/news", &m), 200);
    assert_int_equal(m.id, HR_ROUTE_PUBLISH);
    assert_int_equal(m.topic_len, 4);
    assert_memory_equal(m.topic, "news", 4);
    assert_int_equal(route(HR_GET, "/v1/topics/a.b:c/events", &m), 200);
    assert_int_equal(m.id, HR_ROUTE_TRANSPORT);
    assert_int_equal(m.topic_len, 5);
    assert_memory_equal(m.topic, "a.b:c", 5);
    assert_int_equal(route(HR_GET, "/v1/topics/x/messages", &m), 200);
    assert_int_equal(m.id, HR_ROUTE_TOPIC_MESSAGES);
}

static void unknown_paths_are_404(void **state)
{
    (void)state;
    hr_route_match_t m;
    const char *paths[] = {"/",
                           "/v1",
                           "/v1/topic",
                           "/v1/topics/",
                           "/healthz/",
                           "/v1/topics//events",
                           "/v1/topics/a/b/events",
                           "/v1/statsx",
                           "/v1/topics/a/events/x"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++)
        assert_int_equal(route(HR_GET, paths[i], &m), 404);
}

static void wrong_method_is_405_with_allow(void **state)
{
    (void)state;
    hr_route_match_t m;
    assert_int_equal(route(HR_GET, "/v1/topics/news", &m), 405);
    assert_string_equal(m.allow, "POST, OPTIONS");
    assert_int_equal(route(HR_POST, "/v1/topics/news/events", &m), 405);
    assert_string_equal(m.allow, "GET, OPTIONS");
    assert_int_equal(route(0, "/healthz", &m), 405); /* e.g. PUT */
    assert_int_equal(route(HR_OPTIONS, "/v1/topics/news", &m), 200);
}

/* Each transport's routes lead to its own definition; the stats name kinds by it. */
static void transports_bring_their_routes(void **state)
{
    (void)state;
    static const struct {
        const char *path;
        const hr_transport_def_t *def;
    } cases[] = {{"/v1/topics/news/events", &hr_sse_def},
                 {"/v1/events", &hr_sse_def},
                 {"/v1/ws", &hr_ws_def},
                 {"/v1/topics/news/poll", &hr_poll_def},
                 {"/v1/poll", &hr_poll_def}};
    hr_route_match_t m;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(hr_transport_route(HR_GET, cases[i].path, strlen(cases[i].path), &m), 200);
        assert_int_equal(m.id, HR_ROUTE_TRANSPORT);
        assert_ptr_equal(m.owner, cases[i].def);
    }
    assert_int_equal(hr_transport_route(HR_POST, "/v1/ws", 6, &m), 405);
    assert_string_equal(m.allow, "GET");
    assert_int_equal(hr_transport_route(HR_GET, "/v1/nothing", 11, &m), 404);
    assert_string_equal(hr_conn_kind_name(HR_CONN_HTTP), "http");
    assert_string_equal(hr_conn_kind_name(HR_CONN_SSE), "sse");
    assert_string_equal(hr_conn_kind_name(HR_CONN_WS), "ws");
    assert_string_equal(hr_conn_kind_name(HR_CONN_POLL), "poll");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(transports_bring_their_routes),
        cmocka_unit_test(matches_each_route),
        cmocka_unit_test(captures_topic),
        cmocka_unit_test(unknown_paths_are_404),
        cmocka_unit_test(wrong_method_is_405_with_allow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
