/* The pool store (issue 18): members per key, random picks over all of them, the member cap,
 * the byte budget with LFU eviction that spares frequently used keys, and Redis's counter. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/error.h"
#include "pool/lfu.h"
#include "pool/spec.h"
#include "pool/store.h"

#define NOW 1796208000000ll

static void counter_is_logarithmic_and_decays(void **state)
{
    (void)state;
    assert_int_equal(hr_lfu_incr(HR_LFU_INIT, 0.99), HR_LFU_INIT + 1); /* p = 1 */
    assert_int_equal(hr_lfu_incr(15, 0.5), 15);                        /* p = 1/101 */
    assert_int_equal(hr_lfu_incr(15, 0.001), 16);
    assert_int_equal(hr_lfu_incr(255, 0.0), 255);
    assert_int_equal(hr_lfu_decay(10, 3), 7);
    assert_int_equal(hr_lfu_decay(3, 10), 0);
    assert_int_equal(hr_lfu_decay(9, 0), 9);
}

static void picks_spread_over_every_member(void **state)
{
    (void)state;
    hr_pool_store_t *store = hr_pool_store_new(1 << 20, 42);
    char answer[32];
    for (int i = 0; i < 5; i++) {
        snprintf(answer, sizeof answer, "answer-%d", i);
        assert_int_equal(hr_pool_store_add(store, 0, "mission", 7, answer, strlen(answer),
                                           "text/plain", 5, 0, NOW),
                         0);
    }
    assert_int_equal(hr_pool_store_count(store, "mission", 7), 5);
    assert_null(hr_pool_store_pick(store, "mission", 7, 6, NOW)); /* not enough yet */
    int seen[5] = {0};
    for (int i = 0; i < 1000; i++) {
        hr_pool_answer_t *got = hr_pool_store_pick(store, "mission", 7, 5, NOW);
        assert_non_null(got);
        assert_string_equal(got->content_type, "text/plain");
        seen[got->bytes[7] - '0']++;
        free(got);
    }
    for (int i = 0; i < 5; i++)
        assert_true(seen[i] > 120 && seen[i] < 280); /* ~200 each */
    /* A sixth answer pushes out the oldest. */
    assert_int_equal(hr_pool_store_add(store, 0, "mission", 7, "answer-5", 8, "", 5, 0, NOW), 0);
    assert_int_equal(hr_pool_store_count(store, "mission", 7), 5);
    assert_int_equal(hr_pool_store_remove(store, "mission", 7, hr_pool_member_id("answer-1", 8)),
                     1);
    assert_int_equal(hr_pool_store_count(store, "mission", 7), 4);
    assert_int_equal(hr_pool_store_remove(store, "mission", 7, hr_pool_member_id("answer-0", 8)),
                     0); /* pushed out by the sixth */
    assert_int_equal(hr_pool_store_remove(store, "mission", 7, 0), 1);
    assert_int_equal(hr_pool_store_count(store, "mission", 7), 0);
    hr_pool_store_stats_t stats;
    hr_pool_store_stats(store, HR_POOL_ALL, &stats);
    assert_int_equal(stats.keys + stats.members + stats.bytes, 0);
    hr_pool_store_free(store);
}

static void budget_evicts_rarely_used_keys_first(void **state)
{
    (void)state;
    char big[1000], name[32];
    memset(big, 'x', sizeof big);
    hr_pool_store_t *store = hr_pool_store_new(24 * 1024, 7); /* room for about 20 keys */
    for (int k = 0; k < 20; k++) {
        snprintf(name, sizeof name, "k%02d", k);
        assert_int_equal(hr_pool_store_add(store, 0, name, 3, big, sizeof big, "", 5, 0, NOW), 0);
    }
    for (int round = 0; round < 100; round++) /* k00..k04 are the popular ones */
        for (int k = 0; k < 5; k++) {
            snprintf(name, sizeof name, "k%02d", k);
            free(hr_pool_store_pick(store, name, 3, 1, NOW));
        }
    for (int k = 20; k < 40; k++) { /* twenty new keys: room must be made */
        snprintf(name, sizeof name, "k%02d", k);
        assert_int_equal(hr_pool_store_add(store, 0, name, 3, big, sizeof big, "", 5, 0, NOW), 0);
    }
    hr_pool_store_stats_t stats;
    hr_pool_store_stats(store, HR_POOL_ALL, &stats);
    assert_true(stats.bytes <= 24 * 1024);
    assert_true(stats.evictions >= 15);
    for (int k = 0; k < 5; k++) {
        snprintf(name, sizeof name, "k%02d", k);
        assert_int_equal(hr_pool_store_count(store, name, 3), 1); /* the popular ones stay */
    }
    /* Larger than the whole budget: refused, nothing evicted for it. */
    char *huge = calloc(1, 64 * 1024);
    assert_int_equal(hr_pool_store_add(store, 0, "h", 1, huge, 64 * 1024, "", 5, 0, NOW),
                     HR_ELIMIT);
    free(huge);
    hr_pool_store_free(store);
}

static void collect(void *arg, uint64_t id, const char *type, const char *bytes, size_t len)
{
    (void)type;
    char *seen = arg;
    assert_int_equal(id, hr_pool_member_id(bytes, len));
    strncat(seen, bytes, len);
}

static void ttl_list_and_numbers_per_pool(void **state)
{
    (void)state;
    hr_pool_store_t *store = hr_pool_store_new(1 << 20, 7);
    assert_int_equal(hr_pool_store_add(store, 1, "a k", 3, "old", 3, "", 5, 1000, NOW), 0);
    assert_int_equal(hr_pool_store_add(store, 1, "a k", 3, "new", 3, "", 5, 1000, NOW + 600), 0);
    assert_int_equal(hr_pool_store_add(store, 2, "b k", 3, "other", 5, "", 5, 0, NOW), 0);
    char seen[64] = "";
    assert_int_equal(hr_pool_store_list(store, "a k", 3, collect, seen), 0); /* the clock: gone */
    hr_pool_store_free(store);
    store = hr_pool_store_new(1 << 20, 7);
    assert_int_equal(hr_pool_store_add(store, 1, "a k", 3, "old", 3, "", 5, 1000, NOW), 0);
    assert_int_equal(hr_pool_store_add(store, 1, "a k", 3, "new", 3, "", 5, 1000, NOW + 600), 0);
    assert_int_equal(hr_pool_store_add(store, 2, "b k", 3, "other", 5, "", 5, 0, NOW), 0);
    hr_pool_answer_t *got = hr_pool_store_pick(store, "a k", 3, 2, NOW + 900);
    assert_non_null(got); /* both alive */
    free(got);
    got = hr_pool_store_pick(store, "a k", 3, 1, NOW + 1100); /* "old" is past its ttl */
    assert_non_null(got);
    assert_memory_equal(got->bytes, "new", 3);
    free(got);
    assert_null(hr_pool_store_pick(store, "a k", 3, 2, NOW + 1100));
    hr_pool_store_stats_t one, two, all;
    hr_pool_store_stats(store, 1, &one);
    hr_pool_store_stats(store, 2, &two);
    hr_pool_store_stats(store, HR_POOL_ALL, &all);
    assert_int_equal(one.keys, 1);
    assert_int_equal(one.members, 1);
    assert_int_equal(two.members, 1);
    assert_int_equal(all.keys, 2);
    assert_int_equal(all.bytes, one.bytes + two.bytes);
    assert_int_equal(hr_pool_store_list(store, "b k", 3, collect, seen), 1);
    assert_string_equal(seen, "other");
    assert_null(hr_pool_store_pick(store, "a k", 3, 1, NOW + 1700)); /* the last went: the key */
    hr_pool_store_stats(store, 1, &one);
    assert_int_equal(one.keys + one.members + one.bytes, 0);
    hr_pool_store_free(store);
}

static void pool_options_parse(void **state)
{
    (void)state;
    hr_pool_spec_t spec;
    char err[128];
    setenv("HERALD_TEST_KEY", "sk-123", 1);
    assert_int_equal(hr_pool_spec_parse("missions=https://ai.example/v1/chat,size=3,timeout=5000,"
                                        "ttl=600,header=Authorization:env:HERALD_TEST_KEY,"
                                        "header=X-Team:blue",
                                        &spec, err, sizeof err),
                     0);
    assert_string_equal(spec.name, "missions");
    assert_string_equal(spec.url, "https://ai.example/v1/chat");
    assert_int_equal(spec.size, 3);
    assert_int_equal(spec.timeout_ms, 5000);
    assert_int_equal(spec.ttl_s, 600);
    assert_int_equal(spec.nheaders, 2);
    assert_string_equal(spec.headers[0], "Authorization: sk-123");
    assert_string_equal(spec.headers[1], "X-Team: blue");
    assert_int_equal(hr_pool_spec_parse("p=http://127.0.0.1:9/x", &spec, err, sizeof err), 0);
    assert_int_equal(spec.size, 5); /* the defaults */
    assert_int_equal(spec.concurrency, 16);
    assert_int_equal(hr_pool_spec_parse("p=http://x,concurrency=2", &spec, err, sizeof err), 0);
    assert_int_equal(spec.concurrency, 2);
    const char *bad[] = {"",
                         "p",
                         "=http://x",
                         "p=ftp://x",
                         "p q=http://x",
                         "p=http://x,size=0",
                         "p=http://x,size=101",
                         "p=http://x,size=-1",
                         "p=http://x,timeout=5",
                         "p=http://x,colour=red",
                         "p=http://x,header=NoColon",
                         "p=http://x,header=Bad Name:v",
                         "p=http://x,header=A:env:HERALD_UNSET_VAR",
                         "p=http://x,size=3x",
                         "p=http://x,concurrency=0",
                         "p=http://x,concurrency=1025"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(hr_pool_spec_parse(bad[i], &spec, err, sizeof err), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(counter_is_logarithmic_and_decays),
        cmocka_unit_test(picks_spread_over_every_member),
        cmocka_unit_test(budget_evicts_rarely_used_keys_first),
        cmocka_unit_test(pool_options_parse),
        cmocka_unit_test(ttl_list_and_numbers_per_pool),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
