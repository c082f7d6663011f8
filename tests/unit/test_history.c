/* History ring: growth, count limit, age expiry, reads after an id, floor tracking. Messages
 * here have no topic, so dropping the last reference frees them (ASan checks the counts). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/history.h"

static hr_msg_t *msg_with(uint64_t id, int64_t time_ms)
{
    hr_msg_t *msg = hr_msg_new("", 0, "x", 1, 0, 0);
    msg->id = id;
    msg->time_ms = time_ms;
    return msg;
}

typedef struct seen_s {
    uint64_t ids[64];
    size_t n;
} seen_t;

static void remember(hr_msg_t *msg, void *arg)
{
    seen_t *seen = arg;
    seen->ids[seen->n++] = msg->id;
}

static void keeps_last_n_in_order(void **state)
{
    (void)state;
    hr_history_t hist;
    hr_history_init(&hist, 5);
    for (uint64_t id = 1; id <= 12; id++)
        assert_int_equal(hr_history_push(&hist, msg_with(id, 0)), 0);
    assert_int_equal(hist.count, 5);
    assert_int_equal(hist.floor_id, 7);
    seen_t seen = {0};
    hr_history_each_since(&hist, 0, SIZE_MAX, remember, &seen);
    assert_int_equal(seen.n, 5);
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(seen.ids[i], 8 + i);
    hr_history_clear(&hist);
}

static void reads_after_an_id_with_limit(void **state)
{
    (void)state;
    hr_history_t hist;
    hr_history_init(&hist, 100);
    /* Ids with gaps, as when topics share the broker's id sequence. */
    uint64_t ids[] = {10, 13, 20, 21, 35};
    for (size_t i = 0; i < 5; i++)
        hr_history_push(&hist, msg_with(ids[i], 0));
    assert_int_equal(hr_history_count_since(&hist, 13), 3);
    assert_int_equal(hr_history_count_since(&hist, 14), 3);
    assert_int_equal(hr_history_count_since(&hist, 35), 0);
    assert_int_equal(hr_history_count_since(&hist, 0), 5);
    seen_t seen = {0};
    hr_history_each_since(&hist, 12, 2, remember, &seen);
    assert_int_equal(seen.n, 2);
    assert_int_equal(seen.ids[0], 13);
    assert_int_equal(seen.ids[1], 20);
    assert_int_equal(hist.floor_id, 0);
    hr_history_clear(&hist);
}

static void expires_by_age(void **state)
{
    (void)state;
    hr_history_t hist;
    hr_history_init(&hist, 100);
    for (uint64_t id = 1; id <= 6; id++)
        hr_history_push(&hist, msg_with(id, (int64_t)id * 1000));
    assert_int_equal(hr_history_expire(&hist, 3500), 3);
    assert_int_equal(hist.count, 3);
    assert_int_equal(hist.floor_id, 3);
    assert_int_equal(hr_history_at(&hist, 0)->id, 4);
    hr_history_clear(&hist);
}

static void wraps_around_after_growth(void **state)
{
    (void)state;
    hr_history_t hist;
    hr_history_init(&hist, 20);
    for (uint64_t id = 1; id <= 50; id++)
        hr_history_push(&hist, msg_with(id, 0));
    assert_int_equal(hist.count, 20);
    for (size_t i = 0; i < 20; i++)
        assert_int_equal(hr_history_at(&hist, i)->id, 31 + i);
    assert_int_equal(hr_history_count_since(&hist, 40), 10);
    hr_history_clear(&hist);
}

static void size_zero_keeps_nothing(void **state)
{
    (void)state;
    hr_history_t hist;
    hr_history_init(&hist, 0);
    hr_history_push(&hist, msg_with(4, 0));
    assert_int_equal(hist.count, 0);
    assert_int_equal(hist.floor_id, 4);
    hr_history_clear(&hist);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(keeps_last_n_in_order),   cmocka_unit_test(reads_after_an_id_with_limit),
        cmocka_unit_test(expires_by_age),          cmocka_unit_test(wraps_around_after_growth),
        cmocka_unit_test(size_zero_keeps_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
