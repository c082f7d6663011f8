/* core/uring.c on a real kernel ring and real sockets: results come back in the order sends
 * were added, several buffers go out as one send, a full socket answers -EAGAIN with the bytes
 * it took (not a wait), a closed peer an error, and a batch past its size says so. Skipped where
 * the kernel refuses io_uring (the fallback is herald's writev path, io_uring.test.mjs). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/error.h"
#include "core/uring.h"

typedef struct seen_s {
    int results[HR_URING_BATCH];
    int order[HR_URING_BATCH];
    int count;
} seen_t;

/* A send's tag: which send, and where its result is recorded. */
typedef struct tag_s {
    int id;
    seen_t *seen;
} tag_t;

static void record(void *arg, int result)
{
    tag_t *tag = arg;
    tag->seen->order[tag->seen->count] = tag->id;
    tag->seen->results[tag->seen->count++] = result;
}

static hr_uring_t *ring_or_skip(void)
{
    int err;
    hr_uring_t *uring = hr_uring_new(&err);
    if (!uring) skip();
    assert_int_equal(err, 0);
    return uring;
}

static void pair(int fds[2])
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
}

static void sends_in_order_with_several_buffers(void **state)
{
    (void)state;
    hr_uring_t *uring = ring_or_skip();
    int a[2], b[2];
    pair(a);
    pair(b);
    struct iovec one = {"hello", 5};
    struct iovec two[3] = {{"ab", 2}, {"cd", 2}, {"ef", 2}};
    seen_t seen = {0};
    tag_t seven = {7, &seen}, nine = {9, &seen};
    assert_int_equal(hr_uring_add(uring, a[0], &one, 1, &seven), 0);
    assert_int_equal(hr_uring_add(uring, b[0], two, 3, &nine), 0);
    assert_int_equal(hr_uring_pending(uring), 2);
    hr_uring_run(uring, record);
    assert_int_equal(seen.count, 2);
    assert_int_equal(seen.order[0], 7);
    assert_int_equal(seen.results[0], 5);
    assert_int_equal(seen.order[1], 9);
    assert_int_equal(seen.results[1], 6);
    char got[16] = {0};
    assert_int_equal(read(b[1], got, sizeof got), 6);
    assert_string_equal(got, "abcdef");
    assert_int_equal(hr_uring_pending(uring), 0);
    assert_true(hr_uring_sends(uring) >= 2 && hr_uring_submits(uring) >= 1);
    close(a[0]), close(a[1]), close(b[0]), close(b[1]);
    hr_uring_free(uring);
}

static void a_full_socket_answers_at_once(void **state)
{
    (void)state;
    hr_uring_t *uring = ring_or_skip();
    int full[2], gone[2];
    pair(full);
    pair(gone);
    close(gone[1]);
    int small = 4096;
    setsockopt(full[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    static char big[1 << 20];
    struct iovec iov = {big, sizeof big};
    seen_t seen = {0};
    tag_t tags[3] = {{1, &seen}, {2, &seen}, {3, &seen}};
    /* The first send takes what fits, the second finds no room: neither waits. */
    assert_int_equal(hr_uring_add(uring, full[0], &iov, 1, &tags[0]), 0);
    hr_uring_run(uring, record);
    assert_int_equal(hr_uring_add(uring, full[0], &iov, 1, &tags[1]), 0);
    struct iovec hi = {"hi", 2};
    assert_int_equal(hr_uring_add(uring, gone[0], &hi, 1, &tags[2]), 0);
    hr_uring_run(uring, record);
    assert_int_equal(seen.count, 3);
    assert_true(seen.results[0] > 0 && seen.results[0] < (int)sizeof big);
    assert_int_equal(seen.results[1], -EAGAIN);
    assert_int_equal(seen.results[2], -EPIPE);
    assert_false(hr_uring_broken(uring));
    close(full[0]), close(full[1]), close(gone[0]);
    hr_uring_free(uring);
}

static void a_full_batch_says_so(void **state)
{
    (void)state;
    hr_uring_t *uring = ring_or_skip();
    int fds[2];
    pair(fds);
    struct iovec iov = {"x", 1};
    seen_t seen = {0};
    tag_t tags[HR_URING_BATCH];
    for (int i = 0; i < HR_URING_BATCH; i++) {
        tags[i] = (tag_t){i, &seen};
        assert_int_equal(hr_uring_add(uring, fds[0], &iov, 1, &tags[i]), 0);
    }
    assert_int_equal(hr_uring_add(uring, fds[0], &iov, 1, &tags[0]), HR_ELIMIT);
    struct iovec many[HR_URING_IOV + 1];
    for (int i = 0; i <= HR_URING_IOV; i++)
        many[i] = iov;
    assert_int_equal(hr_uring_add(uring, fds[0], many, HR_URING_IOV + 1, &tags[0]), HR_EINVAL);
    hr_uring_run(uring, record);
    assert_int_equal(seen.count, HR_URING_BATCH);
    for (int i = 0; i < HR_URING_BATCH; i++) {
        assert_int_equal(seen.order[i], i);
        assert_int_equal(seen.results[i], 1);
    }
    close(fds[0]), close(fds[1]);
    hr_uring_free(uring);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sends_in_order_with_several_buffers),
        cmocka_unit_test(a_full_socket_answers_at_once),
        cmocka_unit_test(a_full_batch_says_so),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
