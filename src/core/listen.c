/* Claiming and binding the listening address; see listen.h. */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

#include "core/listen.h"

static int address(const char *host, int port, struct sockaddr_storage *addr, socklen_t *len)
{
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)addr) == 0) {
        *len = sizeof(struct sockaddr_in);
        return 0;
    }
    if (uv_ip6_addr(host, port, (struct sockaddr_in6 *)addr) == 0) {
        *len = sizeof(struct sockaddr_in6);
        return 0;
    }
    return UV_EINVAL;
}

/* A TCP socket bound to host:port with SO_REUSEADDR (so connections of an earlier run in
 * TIME_WAIT do not block a restart) and, when `shared`, SO_REUSEPORT. */
static int bind_tcp(const char *host, int port, int shared)
{
    struct sockaddr_storage addr;
    socklen_t len;
    if (address(host, port, &addr, &len) != 0) return UV_EINVAL;
    int fd = socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        (shared && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) ||
        bind(fd, (struct sockaddr *)&addr, len) != 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    return fd;
}

static int bound_port(int fd)
{
    struct sockaddr_storage addr;
    socklen_t len = sizeof addr;
    if (getsockname(fd, (struct sockaddr *)&addr, &len) != 0) return -errno;
    return ntohs(addr.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&addr)->sin6_port
                                            : ((struct sockaddr_in *)&addr)->sin_port);
}

/* The lock: an abstract Unix socket (no file to clean up; gone with the process) named after
 * the address. A second bind of the same name fails with EADDRINUSE. */
static int take_lock(const char *host, int port)
{
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    int n = snprintf(un.sun_path + 1, sizeof un.sun_path - 1, "herald.listen.%s:%d", host, port);
    if (n < 0 || (size_t)n >= sizeof un.sun_path - 1) return UV_EINVAL;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
    if (bind(fd, (struct sockaddr *)&un, len) != 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    return fd;
}

int hr_listen_claim(const char *host, int *port, hr_listen_claim_t *claim)
{
    claim->lock_fd = -1;
    int lock = *port ? take_lock(host, *port) : 0;
    if (lock < 0) return lock;
    claim->lock_fd = *port ? lock : -1;
    /* Without SO_REUSEPORT, the probe fails while any socket, in any process, holds the port. */
    int probe = bind_tcp(host, *port, 0);
    if (probe < 0) {
        hr_listen_release(claim);
        return probe;
    }
    int chosen = *port ? *port : bound_port(probe);
    close(probe);
    if (chosen < 0) return chosen;
    if (!*port) { /* the kernel's pick: locked too, so the name always means this process */
        lock = take_lock(host, chosen);
        if (lock < 0) return lock;
        claim->lock_fd = lock;
        *port = chosen;
    }
    return 0;
}

void hr_listen_release(hr_listen_claim_t *claim)
{
    if (claim->lock_fd >= 0) close(claim->lock_fd);
    claim->lock_fd = -1;
}

int hr_listen_bind_shared(const char *host, int port)
{
    return bind_tcp(host, port, 1);
}
