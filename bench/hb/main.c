/* herald-bench: options, the run's phases (connect, settle and measure idle memory, publish,
 * wait for the last delivery), and the exit status (1 when a message was lost or duplicated or
 * a connection failed). Usage in bench/README.md. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "hb.h"

#define MAX_CONNECTING 1000 /* connections in their handshake at once */

static void on_connect_tick(uv_timer_t *timer)
{
    bench_t *bench = timer->data;
    while (bench->started < bench->nsubs &&
           bench->started - bench->opened - bench->conn_errors < MAX_CONNECTING) {
        hb_sub_start(bench, &bench->subs[bench->started], bench->started);
        bench->started++;
    }
}

static long expected_deliveries(const bench_t *bench)
{
    if (bench->echo) return (long)bench->nsubs * bench->nmsgs;
    long total = 0;
    for (int topic = 0; topic < bench->ntopics; topic++) {
        long msgs = bench->nmsgs / bench->ntopics + (topic < bench->nmsgs % bench->ntopics);
        long subs = bench->nsubs / bench->ntopics + (topic < bench->nsubs % bench->ntopics);
        total += msgs * subs;
    }
    return total;
}

static void on_done_check(uv_timer_t *timer)
{
    bench_t *bench = timer->data;
    uint64_t now = hb_now_ns();
    uint64_t quiet_ns = 3000000000ull + 3000000ull * (uint64_t)bench->interval_ms;
    if (bench->delivered != bench->last_delivered) {
        bench->last_delivered = bench->delivered;
        bench->quiet_since = now;
    }
    int all = bench->delivered >= (long)bench->lat_cap;
    /* a receiver-only process waits for the first message however long the publisher takes */
    int quiet = now - bench->quiet_since > quiet_ns && (bench->publish || bench->delivered > 0);
    if (bench->sent == bench->nmsgs && (all || quiet)) {
        uv_timer_stop(timer);
        hb_report(bench);
        uv_stop(bench->loop);
    }
}

/* After --settle ms of quiet: the server's idle memory, then the clock starts. */
static void begin(uv_timer_t *settle)
{
    bench_t *bench = settle->data;
    if (bench->npids) {
        bench->rss_idle_kb = hb_proc_rss_kb(bench->pids, bench->npids);
        bench->cpu_before = hb_proc_cpu_s(bench->pids, bench->npids);
    }
    bench->bytes_in = bench->bytes_out = 0; /* handshakes are not per-message costs */
    bench->segments_before = hb_tcp_out_segments();
    bench->t0_ns = bench->quiet_since = hb_now_ns();
    fprintf(stderr, "hb: open %d\n", bench->opened);
    if (bench->transport == TR_SHORT) hb_short_polls_start(bench);
    if (bench->echo) {
        bench->sent = bench->nmsgs; /* the clients publish: nothing to wait for */
        for (int i = 0; i < bench->nsubs; i++)
            hb_echo_publish(&bench->subs[i], 0);
    } else if (bench->publish) {
        hb_pub_begin(bench);
    } else {
        bench->sent = bench->nmsgs; /* another process publishes */
    }
    bench->done_timer.data = bench;
    uv_timer_start(&bench->done_timer, on_done_check, 10, 10);
}

static void on_open_check(uv_timer_t *timer)
{
    bench_t *bench = timer->data;
    if (bench->opened + bench->conn_errors < bench->nsubs) return;
    uv_timer_stop(timer);
    uv_timer_stop(&bench->connect_timer);
    bench->settle_timer.data = bench;
    uv_timer_start(&bench->settle_timer, begin, (uint64_t)bench->settle_ms, 0);
}

static int parse_pids(bench_t *bench, const char *list)
{
    char *copy = strdup(list), *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok && bench->npids < 16;
         tok = strtok_r(NULL, ",", &save))
        bench->pids[bench->npids++] = atoi(tok);
    free(copy);
    return bench->npids;
}

static int pick(const char *value, const char *const *names, int count)
{
    for (int i = 0; i < count; i++)
        if (!strcmp(value, names[i])) return i;
    return -1;
}

static int usage(void)
{
    fprintf(stderr,
            "usage: herald-bench [--server herald|nchan|socketio|ws] "
            "[--transport sse|ws|ws-deflate|long-poll|short-poll] [--interval MS] [--port P] "
            "[--publish-port P] [--subscribers N] [--topics T] [--messages M] [--rate PER_S] "
            "[--inflight K] "
            "[--payload BYTES] [--publishers N] [--publish 0|1] [--pid PID[,PID...]] "
            "[--topic PREFIX] [--mode fanout|echo] [--sources K] [--settle MS]\n");
    return 2;
}

static int parse_options(bench_t *bench, int argc, char **argv, int *port, int *publish_port)
{
    static const char *const servers[] = {"herald", "nchan", "socketio", "ws"};
    static const char *const transports[] = {"sse", "ws", "long-poll", "short-poll", "ws-deflate"};
    for (int i = 1; i < argc; i += 2) {
        const char *opt = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        int transport;
        if (!val) return usage();
        if (!strcmp(opt, "--server")) {
            if ((bench->srv = pick(val, servers, 4)) == (server_t)-1) return usage();
        } else if (!strcmp(opt, "--transport")) {
            if ((transport = pick(val, transports, 5)) < 0) return usage();
            bench->deflate = transport == 4;
            bench->transport = transport == 4 ? TR_WS : (transport_t)transport;
        } else if (!strcmp(opt, "--port"))
            *port = atoi(val);
        else if (!strcmp(opt, "--publish-port"))
            *publish_port = atoi(val);
        else if (!strcmp(opt, "--subscribers"))
            bench->nsubs = atoi(val);
        else if (!strcmp(opt, "--topics"))
            bench->ntopics = atoi(val);
        else if (!strcmp(opt, "--messages"))
            bench->nmsgs = atoi(val);
        else if (!strcmp(opt, "--rate"))
            bench->rate = atoi(val);
        else if (!strcmp(opt, "--inflight"))
            bench->inflight = atoi(val);
        else if (!strcmp(opt, "--payload"))
            bench->payload = atoi(val);
        else if (!strcmp(opt, "--publishers"))
            bench->npubs = atoi(val);
        else if (!strcmp(opt, "--publish"))
            bench->publish = atoi(val);
        else if (!strcmp(opt, "--interval"))
            bench->interval_ms = atoi(val);
        else if (!strcmp(opt, "--sources"))
            bench->sources = atoi(val);
        else if (!strcmp(opt, "--settle"))
            bench->settle_ms = atoi(val);
        else if (!strcmp(opt, "--topic"))
            bench->prefix = val;
        else if (!strcmp(opt, "--token"))
            bench->token = val;
        else if (!strcmp(opt, "--mode"))
            bench->echo = !strcmp(val, "echo");
        else if (!strcmp(opt, "--pid"))
            parse_pids(bench, val);
        else
            return usage();
    }
    return 0;
}

static int check_options(const bench_t *bench)
{
    const char *why = NULL;
    if (bench->nsubs < 1 || bench->ntopics < 1 || bench->nmsgs < 0 ||
        (bench->rate < 1 && !bench->echo) || bench->npubs < 1 || bench->sources < 1 ||
        bench->sources > 250 || bench->payload > 60000 || bench->inflight < 0)
        why = "a count out of range";
    else if (bench->srv == SRV_WS && bench->transport != TR_WS)
        why = "the ws server is measured over WebSocket only";
    else if (bench->srv == SRV_SOCKETIO && bench->transport != TR_WS && bench->transport != TR_LONG)
        why = "Socket.IO is measured over WebSocket and long polling";
    else if (bench->echo && (bench->srv != SRV_HERALD || bench->transport != TR_WS))
        why = "--mode echo needs --server herald and a WebSocket transport";
    else if (bench->transport == TR_SHORT && bench->interval_ms < 1)
        why = "--transport short-poll needs --interval MS";
    if (why) fprintf(stderr, "herald-bench: %s\n", why);
    return why ? 2 : 0;
}

int main(int argc, char **argv)
{
    static bench_t bench = {.srv = SRV_HERALD,
                            .transport = TR_SSE,
                            .prefix = "bench",
                            .nsubs = 1000,
                            .ntopics = 1,
                            .nmsgs = 200,
                            .rate = 100,
                            .npubs = 1,
                            .publish = 1,
                            .sources = 4,
                            .settle_ms = 500,
                            .last_delivered = -1};
    int port = 8080, publish_port = 0;
    if (parse_options(&bench, argc, argv, &port, &publish_port) || check_options(&bench)) return 2;
    struct rlimit lim;
    getrlimit(RLIMIT_NOFILE, &lim);
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);

    bench.loop = uv_default_loop();
    uv_ip4_addr("127.0.0.1", port, &bench.server);
    uv_ip4_addr("127.0.0.1", publish_port ? publish_port : port, &bench.pub_server);
    bench.lat_cap = (size_t)expected_deliveries(&bench);
    bench.lat_us = malloc((bench.lat_cap ? bench.lat_cap : 1) * sizeof *bench.lat_us);
    bench.subs = calloc((size_t)bench.nsubs, sizeof *bench.subs);
    bench.scratch = malloc(HB_SCRATCH);
    if (!bench.lat_us || !bench.subs || !bench.scratch) return 1;
    if (bench.npids) bench.rss_before_kb = hb_proc_rss_kb(bench.pids, bench.npids);
    if (bench.publish && !bench.echo) hb_pub_start(&bench);
    uv_timer_init(bench.loop, &bench.pub_timer);
    uv_timer_init(bench.loop, &bench.done_timer);
    uv_timer_init(bench.loop, &bench.connect_timer);
    uv_timer_init(bench.loop, &bench.settle_timer);
    bench.connect_timer.data = &bench;
    uv_timer_start(&bench.connect_timer, on_connect_tick, 0, 1);
    uv_timer_t open_check;
    uv_timer_init(bench.loop, &open_check);
    open_check.data = &bench;
    uv_timer_start(&open_check, on_open_check, 10, 10);
    uv_run(bench.loop, UV_RUN_DEFAULT);
    int failed = bench.delivered < (long)bench.lat_cap || bench.dups || bench.conn_errors;
    for (int i = 0; i < bench.nsubs; i++)
        free(bench.subs[i].in);
    free(bench.subs);
    free(bench.pubs);
    free(bench.lat_us);
    free(bench.scratch);
    return failed ? 1 : 0;
}
