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

/* Three rings on one budget: each charges its messages plus its fixed cost while non-empty,
 * the order holds every message oldest first, and clearing gives everything back. */
static void budget_counts_every_ring_in_push_order(void **state)
{
    (void)state;
    hr_history_budget_t budget;
    hr_history_budget_init(&budget);
    hr_history_t rings[3];
    for (int r = 0; r < 3; r++) {
        hr_history_init(&rings[r], 100);
        hr_history_charge_to(&rings[r], &budget, 0, 1000);
    }
    for (uint64_t id = 1; id <= 9; id++)
        hr_history_push(&rings[id % 3], msg_with(id, 0));
    size_t each = hr_history_cost(0, 1);
    assert_int_equal(budget.messages, 9);
    assert_int_equal(budget.bytes, 9 * each + 3 * 1000);
    assert_int_equal(rings[1].bytes, 3 * each + 1000);
    uint64_t expect = 1;
    for (hr_list_t *it = budget.order.next; it != &budget.order; it = it->next)
        assert_int_equal(hr_container_of(it, hr_msg_t, hist_link)->id, expect++);
    /* The head of the order is the head of its ring: dropping it keeps both in step. */
    hr_msg_t *oldest = hr_container_of(budget.order.next, hr_msg_t, hist_link);
    assert_ptr_equal(oldest, hr_history_at(&rings[1], 0));
    hr_history_drop_oldest(&rings[1]);
    assert_int_equal(rings[1].floor_id, 1);
    assert_int_equal(budget.bytes, 8 * each + 3 * 1000);
    for (int r = 0; r < 3; r++)
        hr_history_clear(&rings[r]);
    assert_int_equal(budget.bytes, 0);
    assert_int_equal(budget.messages, 0);
    assert_true(hr_list_empty(&budget.order));
}

/* Past its byte cap a ring drops its oldest (raising the floor) but keeps the newest; a
 * message over the cap alone is not kept at all. */
static void byte_cap_drops_oldest_and_refuses_the_oversized(void **state)
{
    (void)state;
    hr_history_t hist;
    hr_history_init(&hist, 100);
    size_t each = hr_history_cost(0, 1);
    hr_history_charge_to(&hist, NULL, 3 * each + 10, 10);
    for (uint64_t id = 1; id <= 5; id++)
        hr_history_push(&hist, msg_with(id, 0));
    assert_int_equal(hist.count, 3);
    assert_int_equal(hist.floor_id, 2);
    assert_int_equal(hr_history_at(&hist, 2)->id, 5);
    char data[4096] = {0};
    hr_msg_t *big = hr_msg_new("", 0, data, sizeof data, 0, 0);
    big->id = 6;
    hr_history_push(&hist, big);
    assert_int_equal(hist.count, 3);
    assert_int_equal(hist.floor_id, 6);
    assert_int_equal(hist.bytes, 3 * each + 10);
    hr_history_clear(&hist);
    assert_int_equal(hist.bytes, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(keeps_last_n_in_order),
        cmocka_unit_test(reads_after_an_id_with_limit),
        cmocka_unit_test(expires_by_age),
        cmocka_unit_test(wraps_around_after_growth),
        cmocka_unit_test(size_zero_keeps_nothing),
        cmocka_unit_test(budget_counts_every_ring_in_push_order),
        cmocka_unit_test(byte_cap_drops_oldest_and_refuses_the_oversized),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
