#!/usr/bin/env bash
# Fan-out benchmark: for each run, starts build/herald (release build) on a free port, runs
# build/herald-bench against it, and prints its JSON line; then the median of each figure.
# Usage: bench/fanout.sh [SUBSCRIBERS] [MESSAGES] [RATE_PER_S] [RUNS] [WORKERS] [TRANSPORT] [PAYLOAD] [MODE]
#   TRANSPORT: sse (default), ws, ws-deflate; PAYLOAD: message data bytes (default: ~30)
#   MODE: fanout (default; one topic, RATE applies) or echo (WebSocket: each client publishes
#   MESSAGES to its own topic, one in flight, RATE unused)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
subs=${1:-10000}
msgs=${2:-200}
rate=${3:-100}
runs=${4:-3}
workers=${5:-0}
transport=${6:-sse}
payload=${7:-0}
mode=${8:-fanout}
results=$(mktemp)
log=$(mktemp)
pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; rm -f "$log" "$results"' EXIT

for run in $(seq "$runs"); do
  start_herald "$log" --workers "$workers" --heartbeat 60000
  ./build/herald-bench --port "$port" --subscribers "$subs" --messages "$msgs" --rate "$rate" \
    --pid "$pid" --transport "$transport" --payload "$payload" --mode "$mode" | tee -a "$results"
  stop_herald
done

node -e '
const runs = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map(JSON.parse);
const med = (f) => { const v = runs.map(f).sort((a, b) => a - b); return v[Math.floor(v.length / 2)]; };
console.log(JSON.stringify({ median_of: runs.length, transport: runs[0].transport, mode: runs[0].mode, payload: runs[0].payload, subscribers: runs[0].subscribers, messages: runs[0].messages,
  rate: runs[0].rate, lost: Math.max(...runs.map((r) => r.lost)), duplicates: Math.max(...runs.map((r) => r.duplicates)),
  deliveries_per_s: med((r) => r.deliveries_per_s),
  latency_ms: { p50: med((r) => r.latency_ms.p50), p90: med((r) => r.latency_ms.p90), p99: med((r) => r.latency_ms.p99), max: med((r) => r.latency_ms.max) },
  server_cpu_s_per_million_deliveries: med((r) => r.server_cpu_s_per_million_deliveries),
  server_rss_kb_per_idle_conn: med((r) => r.server_rss_kb_per_idle_conn) }));
' "$results"
