/* Batched non-blocking sends on io_uring (see uring.h). The ring is used by one worker thread;
 * only the counters are read by others. */
#include <errno.h>
#include <liburing.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "core/error.h"
#include "core/log.h"
#include "core/uring.h"

struct hr_uring_s {
    struct io_uring ring;
    unsigned len;                         /* sends queued */
    unsigned iov_used;                    /* of iov */
    int registered;                       /* the ring fd registration was tried */
    atomic_int broken;                    /* the ring failed: no further submits */
    atomic_uint_fast64_t sends, submits;  /* for /metrics */
    void *tags[HR_URING_BATCH];           /* per send, in order */
    int results[HR_URING_BATCH];          /* per send, filled by hr_uring_run */
    struct msghdr msgs[HR_URING_BATCH];   /* for sends of several buffers */
    struct iovec iov[HR_URING_BATCH * 4]; /* buffers of all queued sends */
};

hr_uring_t *hr_uring_new(int *err)
{
    hr_uring_t *uring = calloc(1, sizeof *uring);
    if (!uring) {
        *err = HR_ENOMEM;
        return NULL;
    }
    /* The completion queue holds a whole batch twice over: results never overflow it. */
    struct io_uring_params params = {.flags = IORING_SETUP_CQSIZE,
                                     .cq_entries = 2 * HR_URING_BATCH};
    int rc = io_uring_queue_init_params(HR_URING_BATCH, &uring->ring, &params);
    if (rc < 0) {
        free(uring);
        *err = rc;
        return NULL;
    }
    *err = 0;
    return uring;
}

void hr_uring_free(hr_uring_t *uring)
{
    if (!uring) return;
    io_uring_queue_exit(&uring->ring);
    free(uring);
}

unsigned hr_uring_pending(const hr_uring_t *uring)
{
    return uring->len;
}

int hr_uring_broken(const hr_uring_t *uring)
{
    return atomic_load(&uring->broken);
}

int hr_uring_add(hr_uring_t *uring, int fd, const struct iovec *iov, unsigned n, void *tag)
{
    size_t iov_cap = sizeof uring->iov / sizeof uring->iov[0];
    if (n == 0 || n > HR_URING_IOV) return HR_EINVAL;
    if (uring->len == HR_URING_BATCH || uring->iov_used + n > iov_cap) return HR_ELIMIT;
    struct io_uring_sqe *sqe = io_uring_get_sqe(&uring->ring);
    if (!sqe) return HR_ELIMIT;
    /* DONTWAIT: a full socket answers -EAGAIN at once instead of the ring waiting for room
     * (the caller queues the rest on libuv, keeping the slow-consumer bound in one place). */
    int flags = MSG_DONTWAIT | MSG_NOSIGNAL;
    if (n == 1) {
        io_uring_prep_send(sqe, fd, iov[0].iov_base, iov[0].iov_len, flags);
    } else {
        struct iovec *copy = uring->iov + uring->iov_used;
        memcpy(copy, iov, n * sizeof *iov);
        uring->iov_used += n;
        struct msghdr *msg = &uring->msgs[uring->len];
        *msg = (struct msghdr){.msg_iov = copy, .msg_iovlen = n};
        io_uring_prep_sendmsg(sqe, fd, msg, (unsigned)flags);
    }
    io_uring_sqe_set_data64(sqe, uring->len);
    uring->tags[uring->len++] = tag;
    return 0;
}

/* Submits until the kernel took every queued send; returns how many it took. */
static unsigned submit_all(hr_uring_t *uring)
{
    unsigned taken = 0;
    while (taken < uring->len) {
        int rc = io_uring_submit(&uring->ring);
        atomic_fetch_add_explicit(&uring->submits, 1, memory_order_relaxed);
        if (rc == -EINTR) continue;
        if (rc <= 0) {
            /* The rest stay in the submission queue: the ring is never entered again, so
             * they cannot go out later, twice or out of order. */
            hr_warn("uring.submit_failed", "err=%s taken=%u of=%u", strerror(rc ? -rc : EIO), taken,
                    uring->len);
            atomic_store(&uring->broken, 1);
            break;
        }
        taken += (unsigned)rc;
    }
    return taken;
}

void hr_uring_run(hr_uring_t *uring, void (*done)(void *tag, int result))
{
    if (!uring->registered) {
        /* A cheaper enter (no fd lookup). Registration is per thread: made here, on the
         * worker's, not where the ring was created; optional. */
        io_uring_register_ring_fd(&uring->ring);
        uring->registered = 1;
    }
    unsigned n = uring->len, taken = hr_uring_broken(uring) ? 0 : submit_all(uring);
    /* Not taken: not sent, the caller queues the bytes on libuv. Taken but never reaped (the
     * ring failed): unknown, so the connection is given up rather than sent twice. */
    for (unsigned i = 0; i < n; i++)
        uring->results[i] = i < taken ? -EIO : -EAGAIN;
    for (unsigned reaped = 0; reaped < taken;) {
        struct io_uring_cqe *cqe;
        /* Inline completions are all posted already; waiting covers a send the kernel
         * finished off the submit path. */
        int rc = io_uring_peek_cqe(&uring->ring, &cqe);
        if (rc == -EAGAIN) rc = io_uring_wait_cqe(&uring->ring, &cqe);
        if (rc == -EINTR) continue;
        if (rc < 0) {
            hr_warn("uring.reap_failed", "err=%s", strerror(-rc));
            atomic_store(&uring->broken, 1);
            break;
        }
        uint64_t index = io_uring_cqe_get_data64(cqe);
        if (index < n) uring->results[index] = cqe->res;
        io_uring_cqe_seen(&uring->ring, cqe);
        reaped++;
    }
    atomic_fetch_add_explicit(&uring->sends, taken, memory_order_relaxed);
    uring->len = 0;
    uring->iov_used = 0;
    for (unsigned i = 0; i < n; i++)
        done(uring->tags[i], uring->results[i]);
}

uint64_t hr_uring_sends(const hr_uring_t *uring)
{
    return atomic_load_explicit(&uring->sends, memory_order_relaxed);
}

uint64_t hr_uring_submits(const hr_uring_t *uring)
{
    return atomic_load_explicit(&uring->submits, memory_order_relaxed);
}
