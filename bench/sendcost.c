/* What one small send costs on this machine, three ways (issue 21): a bare system call
 * (getppid), write() on each of N loopback TCP sockets, and the same N sends submitted through
 * io_uring with one io_uring_enter. CPU time of this process (user + system), which on
 * loopback includes the receiving side's TCP processing, as herald's own sends do.
 * Usage: build/sendcost [SOCKETS] [ROUNDS]   (default 5000 20) */
#include <arpa/inet.h>
#include <fcntl.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

static double cpu_s(void)
{
    struct rusage use;
    getrusage(RUSAGE_SELF, &use);
    return (double)use.ru_utime.tv_sec + use.ru_utime.tv_usec / 1e6 + (double)use.ru_stime.tv_sec +
           use.ru_stime.tv_usec / 1e6;
}

static void drain(const int *readers, int n)
{
    char buf[65536];
    for (int i = 0; i < n; i++)
        while (read(readers[i], buf, sizeof buf) > 0) {
        }
}

static double by_write(const int *senders, const int *readers, int n, int rounds, const char *msg)
{
    double start = cpu_s();
    for (int r = 0; r < rounds; r++)
        for (int i = 0; i < n; i++)
            if (write(senders[i], msg, 64) != 64) return -1;
    double spent = cpu_s() - start;
    drain(readers, n);
    return spent / ((double)n * rounds) * 1e6;
}

static double by_uring(struct io_uring *ring, const int *senders, const int *readers, int n,
                       int rounds, const char *msg)
{
    double start = cpu_s();
    for (int r = 0; r < rounds; r++) {
        for (int i = 0; i < n; i++)
            io_uring_prep_send(io_uring_get_sqe(ring), senders[i], msg, 64, MSG_DONTWAIT);
        io_uring_submit(ring);
        for (int got = 0; got < n;) {
            struct io_uring_cqe *cqe;
            if (io_uring_wait_cqe(ring, &cqe) != 0) return -1;
            if (cqe->res != 64) return -1;
            io_uring_cqe_seen(ring, cqe);
            got++;
        }
    }
    double spent = cpu_s() - start;
    drain(readers, n);
    return spent / ((double)n * rounds) * 1e6;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 5000, rounds = argc > 2 ? atoi(argv[2]) : 20;
    if (n < 1 || n > 8000 || rounds < 1) return 2;
    int *senders = calloc((size_t)n, sizeof *senders),
        *readers = calloc((size_t)n, sizeof *readers);
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof addr;
    if (bind(listener, (struct sockaddr *)&addr, len) || listen(listener, 4096) ||
        getsockname(listener, (struct sockaddr *)&addr, &len))
        return 1;
    for (int i = 0, one = 1; i < n; i++) {
        readers[i] = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(readers[i], (struct sockaddr *)&addr, len)) return 1;
        senders[i] = accept(listener, NULL, NULL);
        setsockopt(senders[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        fcntl(senders[i], F_SETFL, O_NONBLOCK);
        fcntl(readers[i], F_SETFL, O_NONBLOCK);
    }
    struct io_uring ring;
    if (io_uring_queue_init((unsigned)n, &ring, 0) != 0) return 1;
    char msg[64] = "data: 0123456789012345678901234567890123456789012345678901234\n\n";
    double start = cpu_s();
    for (int i = 0; i < 1000000; i++)
        syscall(SYS_getppid);
    printf("{\"getppid_us\":%.3f", (cpu_s() - start));
    /* Both orders, so neither gains from running second. */
    double w1 = by_write(senders, readers, n, rounds, msg);
    double u1 = by_uring(&ring, senders, readers, n, rounds, msg);
    double u2 = by_uring(&ring, senders, readers, n, rounds, msg);
    double w2 = by_write(senders, readers, n, rounds, msg);
    printf(",\"sockets\":%d,\"write_us\":%.3f,\"io_uring_us\":%.3f}\n", n, (w1 + w2) / 2,
           (u1 + u2) / 2);
    return 0;
}
