#!/usr/bin/env bash
# Cross-node delivery against single-node, in one run on one machine. For each setup, RUNS
# times: start what it needs, run build/herald-bench (SSE subscribers on one node, the
# publisher on the node named), print its JSON line; then the median of each figure per setup.
#   single     one herald, embedded (memory store)
#   redis-same one herald with --redis; publisher and subscribers on it (the Redis round trip)
#   redis-cross two heralds sharing Redis; subscribers on B, publisher on A
# Usage: bench/cluster.sh [SUBSCRIBERS] [MESSAGES] [RATE_PER_S] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
subs=${1:-2000}
msgs=${2:-200}
rate=${3:-200}
runs=${4:-3}
results=$(mktemp)
log=$(mktemp)
log2=$(mktemp)
rdir=$(mktemp -d)
pid=
pid_b=
rpid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null
  [ -n "$pid_b" ] && kill "$pid_b" 2>/dev/null
  [ -n "$rpid" ] && kill "$rpid" 2>/dev/null
  rm -rf "$log" "$log2" "$results" "$rdir"
}
trap cleanup EXIT

rport=$(free_port)
redis-server --port "$rport" --bind 127.0.0.1 --dir "$rdir" --save '' --appendonly no >/dev/null &
rpid=$!
for _ in $(seq 100); do redis-cli -p "$rport" ping >/dev/null 2>&1 && break; sleep 0.05; done
redis="redis://127.0.0.1:$rport"

fanout() { # SETUP SUB_PORT PUB_PORT PID
  ./build/herald-bench --port "$2" --publish-port "$3" --subscribers "$subs" --messages "$msgs" \
    --rate "$rate" --pid "$4" --topic "bench-$RANDOM" | sed "s/^{/{\"setup\":\"$1\",/" | tee -a "$results"
}

for run in $(seq "$runs"); do
  start_herald "$log" --workers 1 --heartbeat 60000
  fanout single "$port" "$port" "$pid"
  stop_herald

  start_herald "$log" --workers 1 --heartbeat 60000 --redis "$redis"
  sleep 0.3
  fanout redis-same "$port" "$port" "$pid"
  stop_herald

  start_herald "$log" --workers 1 --heartbeat 60000 --redis "$redis"
  port_a=$port pid_a=$pid
  start_herald "$log2" --workers 1 --heartbeat 60000 --redis "$redis"
  pid_b=$pid
  sleep 0.3
  fanout redis-cross "$port" "$port_a" "$pid_b"
  kill "$pid_a" "$pid_b"; wait "$pid_a" "$pid_b" 2>/dev/null || true
  pid= pid_b=
done

node -e '
const runs = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map(JSON.parse);
for (const setup of ["single", "redis-same", "redis-cross"]) {
  const mine = runs.filter((r) => r.setup === setup);
  const med = (f) => { const v = mine.map(f).sort((a, b) => a - b); return v[Math.floor(v.length / 2)]; };
  console.log(JSON.stringify({ setup, median_of: mine.length, subscribers: mine[0].subscribers, messages: mine[0].messages, rate: mine[0].rate,
    lost: Math.max(...mine.map((r) => r.lost)), duplicates: Math.max(...mine.map((r) => r.duplicates)),
    deliveries_per_s: med((r) => r.deliveries_per_s),
    latency_ms: { p50: med((r) => r.latency_ms.p50), p90: med((r) => r.latency_ms.p90), p99: med((r) => r.latency_ms.p99), max: med((r) => r.latency_ms.max) },
    server_cpu_s_per_million_deliveries: med((r) => r.server_cpu_s_per_million_deliveries) }));
}' "$results"
