/* Clocks, the server's CPU and memory from /proc, the payload every message carries, and the
 * JSON report. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hb.h"

uint64_t hb_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The start of /proc/PID/NAME, NUL-terminated; 0 when the process is gone. */
static size_t read_proc(int pid, const char *name, char *buf, size_t size)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/%s", pid, name);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t n = fread(buf, 1, size - 1, f);
    fclose(f);
    buf[n] = '\0';
    return n;
}

/* utime + stime of each process, in seconds (fields 14 and 15 of /proc/PID/stat). */
double hb_proc_cpu_s(const int *pids, int npids)
{
    double total = 0;
    for (int i = 0; i < npids; i++) {
        char buf[1024];
        if (!read_proc(pids[i], "stat", buf, sizeof buf)) continue;
        char *after_name = strrchr(buf, ')');
        unsigned long utime = 0, stime = 0;
        if (after_name)
            sscanf(after_name + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime,
                   &stime);
        total += (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
    }
    return total;
}

double hb_proc_rss_kb(const int *pids, int npids)
{
    double total = 0;
    for (int i = 0; i < npids; i++) {
        char buf[4096], *rss;
        if (!read_proc(pids[i], "status", buf, sizeof buf)) continue;
        if ((rss = strstr(buf, "\nVmRSS:")) != NULL) total += strtod(rss + 7, NULL);
    }
    return total;
}

/* TCP segments this machine has sent (OutSegs in /proc/net/snmp): on loopback, every segment
 * of every connection, both directions, publisher included. */
uint64_t hb_tcp_out_segments(void)
{
    FILE *f = fopen("/proc/net/snmp", "r");
    char names[512], values[512];
    uint64_t segments = 0;
    if (!f) return 0;
    while (fgets(names, sizeof names, f) && fgets(values, sizeof values, f)) {
        if (strncmp(names, "Tcp:", 4) != 0) continue;
        char *name_save = NULL, *value_save = NULL;
        char *name = strtok_r(names, " \n", &name_save);
        char *value = strtok_r(values, " \n", &value_save);
        while (name && value) {
            if (!strcmp(name, "OutSegs")) segments = strtoull(value, NULL, 10);
            name = strtok_r(NULL, " \n", &name_save);
            value = strtok_r(NULL, " \n", &value_save);
        }
        break;
    }
    fclose(f);
    return segments;
}

/* "hb:SEQ:DUE:" then filler up to min_len bytes. The filler has no ':' so it never reads as a
 * payload, and no character any of the servers would escape. */
int hb_payload(char *out, size_t size, int min_len, long seq, uint64_t due)
{
    static const char filler[] = "realtime delivery by herald ";
    int n = snprintf(out, size, "hb:%ld:%llu:", seq, (unsigned long long)due);
    for (int i = 0; n < min_len && n < (int)size - 1; i++)
        out[n++] = filler[i % (sizeof filler - 1)];
    out[n] = '\0';
    return n;
}

static void delivered(sub_t *sub, long seq, uint64_t due)
{
    bench_t *bench = sub->bench;
    uint64_t now = hb_now_ns();
    if (seq < sub->next_seq) {
        bench->dups++;
        return;
    }
    sub->next_seq = seq + 1;
    bench->delivered++;
    bench->last_ns = now;
    if (!bench->first_due_ns || due < bench->first_due_ns) bench->first_due_ns = due;
    if (bench->nlat < bench->lat_cap)
        bench->lat_us[bench->nlat++] = now > due ? (uint32_t)((now - due) / 1000) : 0;
    if (bench->echo && seq + 1 < bench->nmsgs) hb_echo_publish(sub, seq + 1);
}

/* Every payload in a piece of text: one SSE line, one WebSocket message, or a poll answer
 * holding several messages. */
void hb_scan_payloads(sub_t *sub, const char *text, size_t len)
{
    const char *end = text + len, *at = text;
    while ((at = memmem(at, (size_t)(end - at), "hb:", 3)) != NULL) {
        char num[48];
        size_t n = (size_t)(end - at) < sizeof num - 1 ? (size_t)(end - at) : sizeof num - 1;
        memcpy(num, at, n);
        num[n] = '\0';
        long seq;
        unsigned long long due;
        if (sscanf(num, "hb:%ld:%llu:", &seq, &due) == 2) delivered(sub, seq, due);
        at += 3;
    }
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static const char *const transport_names[] = {"sse", "ws", "long-poll", "short-poll"};
static const char *const server_names[] = {"herald", "nchan", "socketio", "ws"};

void hb_report(bench_t *bench)
{
    qsort(bench->lat_us, bench->nlat, sizeof *bench->lat_us, cmp_u32);
    uint64_t t0 = bench->publish ? bench->t0_ns : bench->first_due_ns;
    double secs = bench->last_ns > t0 ? (double)(bench->last_ns - t0) / 1e9 : 0;
    long expected = (long)bench->lat_cap, got = bench->delivered ? bench->delivered : 1;
#define PCT(q)                                                                                     \
    (bench->nlat ? (double)bench->lat_us[(size_t)((double)(bench->nlat - 1) * (q))] / 1000.0 : 0)
    printf("{\"server\":\"%s\",\"transport\":\"%s%s\",\"mode\":\"%s\",\"subscribers\":%d,"
           "\"topics\":%d,\"messages\":%d,\"rate\":%d,\"inflight\":%d,\"payload\":%d,"
           "\"interval_ms\":%d,"
           "\"expected\":%ld,\"delivered\":%ld,\"lost\":%ld,\"duplicates\":%ld,"
           "\"conn_errors\":%d,\"seconds\":%.3f,\"deliveries_per_s\":%.0f,"
           "\"latency_ms\":{\"p50\":%.2f,\"p90\":%.2f,\"p99\":%.2f,\"max\":%.2f},"
           "\"requests_per_delivery\":%.3f,\"bytes_in_per_delivery\":%.1f,"
           "\"bytes_out_per_delivery\":%.1f,\"tcp_segments_per_delivery\":%.2f,"
           "\"publishes_acked\":%ld,\"publishes_failed\":%ld",
           server_names[bench->srv], transport_names[bench->transport],
           bench->deflate ? "-deflate" : "", bench->echo ? "echo" : "fanout", bench->nsubs,
           bench->ntopics, bench->nmsgs, bench->inflight ? 0 : bench->rate, bench->inflight,
           bench->payload, bench->transport == TR_SHORT ? bench->interval_ms : 0, expected,
           bench->delivered, expected - bench->delivered, bench->dups, bench->conn_errors, secs,
           secs > 0 ? (double)bench->delivered / secs : 0, PCT(0.50), PCT(0.90), PCT(0.99),
           PCT(1.0), (double)bench->requests / (double)got, (double)bench->bytes_in / (double)got,
           (double)bench->bytes_out / (double)got,
           (double)(hb_tcp_out_segments() - bench->segments_before) / (double)got,
           bench->publish_acked, bench->publish_failed);
    if (bench->npids) {
        double cpu = hb_proc_cpu_s(bench->pids, bench->npids) - bench->cpu_before;
        printf(",\"server_cpu_s\":%.3f,\"server_cpu_s_per_million_deliveries\":%.2f,"
               "\"server_rss_kb_per_idle_conn\":%.2f,\"server_rss_idle_mb\":%.1f",
               cpu, bench->delivered ? cpu * 1e6 / (double)bench->delivered : 0,
               (bench->rss_idle_kb - bench->rss_before_kb) / bench->nsubs,
               bench->rss_idle_kb / 1024);
    }
    printf("}\n");
    fflush(stdout);
}
