/* The listening address: claimed once per process, then bound by every worker.
 *
 * Workers share the port with SO_REUSEPORT so the kernel spreads connections across them. The
 * kernel lets any process of the same user join such a group, so a second herald started on the
 * same port would silently take half the connections (and hand out ids from its own sequence).
 * hr_listen_claim refuses that before anything else starts: a lock named after the address (an
 * abstract Unix socket, held for the process's life, so two heralds starting at once cannot
 * both pass) and a probe bind without SO_REUSEPORT, which fails while any other socket holds
 * the port. */
#ifndef HR_LISTEN_H
#define HR_LISTEN_H

typedef struct hr_listen_claim_s {
    int lock_fd; /* the abstract socket named after host:port; -1 when none (port 0) */
} hr_listen_claim_t;

/* Claims host:*port for this process; a port of 0 is replaced by a free one. Returns 0, or a
 * negative errno (UV_EADDRINUSE when another process has it). */
int hr_listen_claim(const char *host, int *port, hr_listen_claim_t *claim);
void hr_listen_release(hr_listen_claim_t *claim);

/* One worker's listening socket on the claimed address (SO_REUSEPORT). Returns the fd or a
 * negative errno. */
int hr_listen_bind_shared(const char *host, int port);

#endif
