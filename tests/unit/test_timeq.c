/* Timeout queue: FIFO per length, expiry across lengths at the right time, removal, re-adding,
 * and the uv timer firing for real on a loop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/timeq.h"

typedef struct item_s {
    hr_timeq_entry_t entry;
    int name;
} item_t;

static int order[16];
static size_t norder;

static void record(hr_timeq_entry_t *entry)
{
    order[norder++] = hr_container_of(entry, item_t, entry)->name;
}

static void expires_in_deadline_order_across_lengths(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    hr_timeq_t queue;
    hr_timeq_init(&loop, &queue);
    item_t items[4] = {{.name = 1}, {.name = 2}, {.name = 3}, {.name = 4}};
    for (int i = 0; i < 4; i++)
        hr_timeq_entry_init(&items[i].entry);
    uint64_t t0 = uv_now(&loop);
    hr_timeq_add(&queue, &items[0].entry, 5, record); /* t0 + 5 s */
    hr_timeq_add(&queue, &items[1].entry, 2, record); /* t0 + 2 s */
    hr_timeq_add(&queue, &items[2].entry, 5, record); /* t0 + 5 s, after item 1 */
    hr_timeq_add(&queue, &items[3].entry, 1, record); /* t0 + 1 s */
    norder = 0;
    assert_int_equal(hr_timeq_run(&queue, t0 + 999), 0);
    assert_int_equal(hr_timeq_run(&queue, t0 + 2000), 2);
    assert_int_equal(order[0], 4);
    assert_int_equal(order[1], 2);
    hr_timeq_remove(&items[0].entry);
    hr_timeq_remove(&items[0].entry); /* idempotent */
    assert_int_equal(hr_timeq_run(&queue, t0 + 10000), 1);
    assert_int_equal(order[2], 3);
    hr_timeq_close(&queue);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void re_adding_moves_an_entry(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    hr_timeq_t queue;
    hr_timeq_init(&loop, &queue);
    item_t item = {.name = 7};
    hr_timeq_entry_init(&item.entry);
    uint64_t t0 = uv_now(&loop);
    hr_timeq_add(&queue, &item.entry, 1, record);
    hr_timeq_add(&queue, &item.entry, 3, record);
    norder = 0;
    assert_int_equal(hr_timeq_run(&queue, t0 + 1500), 0);
    assert_int_equal(hr_timeq_run(&queue, t0 + 3000), 1);
    assert_int_equal(hr_timeq_run(&queue, t0 + 9000), 0); /* once only */
    hr_timeq_close(&queue);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
}

static void timer_fires_on_the_loop(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    hr_timeq_t queue;
    hr_timeq_init(&loop, &queue);
    item_t first = {.name = 1}, gone = {.name = 2};
    hr_timeq_entry_init(&first.entry);
    hr_timeq_entry_init(&gone.entry);
    hr_timeq_add(&queue, &gone.entry, 1, record);
    hr_timeq_add(&queue, &first.entry, 1, record);
    hr_timeq_remove(&gone.entry);
    norder = 0;
    uint64_t t0 = uv_now(&loop);
    uv_run(&loop, UV_RUN_DEFAULT); /* returns once the timer fired and nothing is left */
    assert_int_equal(norder, 1);
    assert_int_equal(order[0], 1);
    assert_true(uv_now(&loop) - t0 >= 1000);
    hr_timeq_close(&queue);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(expires_in_deadline_order_across_lengths),
        cmocka_unit_test(re_adding_moves_an_entry),
        cmocka_unit_test(timer_fires_on_the_loop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
