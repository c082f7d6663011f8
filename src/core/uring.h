/* A worker's io_uring for batched sends (--io-uring): the frames a drain gathered for many
 * connections are sent with one io_uring_enter instead of one writev each. Every send is
 * non-blocking (MSG_DONTWAIT): the kernel completes it during the submit, so each result is
 * known before hr_uring_run returns, exactly as uv_try_write's would be. */
#ifndef HR_URING_H
#define HR_URING_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

typedef struct hr_uring_s hr_uring_t;

#define HR_URING_BATCH 256 /* sends per io_uring_enter */
#define HR_URING_IOV   16  /* buffers per send (HR_CORK_MAX) */

/* A ring for HR_URING_BATCH sends, or NULL with *err set (-errno: ENOSYS, EPERM when the
 * kernel or a sandbox refuses io_uring, ENOMEM). */
hr_uring_t *hr_uring_new(int *err);
void hr_uring_free(hr_uring_t *uring);

/* Queues a send of `iov` (copied; the bytes must live until hr_uring_run) on `fd`; `tag` is
 * handed back with its result. HR_ELIMIT when the batch is full: run it first. */
int hr_uring_add(hr_uring_t *uring, int fd, const struct iovec *iov, unsigned n, void *tag);
/* Queued sends waiting for hr_uring_run. */
unsigned hr_uring_pending(const hr_uring_t *uring);

/* Submits the queued sends and calls done(tag, result) for each in the order they were added;
 * result is the bytes taken or a negative errno (-EAGAIN: none). After a failure of the ring
 * itself the sends not made report -EAGAIN and hr_uring_broken() turns true. */
void hr_uring_run(hr_uring_t *uring, void (*done)(void *tag, int result));
int hr_uring_broken(const hr_uring_t *uring);

/* Counters for /metrics: sends made and io_uring_enter calls. */
uint64_t hr_uring_sends(const hr_uring_t *uring);
uint64_t hr_uring_submits(const hr_uring_t *uring);

#endif
