#!/usr/bin/env bash
# Idle connections across nodes: NODES herald nodes sharing one redis-server, TOTAL connections
# split over one herald-bench process per node (this machine caps a process at 20,000 open
# files), even nodes SSE and odd ones WebSocket. Once every process holds its connections, the
# last one publishes 5 messages on its node; all must reach every connection through Redis.
# Appends to RAW one line per process (setup node-I) and one for the whole (the sum, and the
# worst latency of the processes).
# Usage: bench/nodes.sh [NODES] [TOTAL] [RAW]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
nodes=${1:-6}
total=${2:-100000}
raw=${3:-/dev/null}
per=$((total / nodes))
work=$(mktemp -d)
node_pids=()
bench_pids=()
rpid=
cleanup() {
  for p in "${bench_pids[@]}" "${node_pids[@]}" $rpid; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

rport=$(free_port)
redis-server --port "$rport" --bind 127.0.0.1 --dir "$work" --save '' --appendonly no \
  --maxclients 1000 >/dev/null &
rpid=$!
for _ in $(seq 100); do redis-cli -p "$rport" ping >/dev/null 2>&1 && break; sleep 0.05; done

ports=()
for i in $(seq 0 $((nodes - 1))); do
  start_herald "$work/herald$i.log" --workers 1 --heartbeat 60000 --redis "redis://127.0.0.1:$rport"
  node_pids+=("$pid")
  ports+=("$port")
done

topic="nodes$RANDOM"
bench() { # INDEX PUBLISH
  local i=$1 transport=sse subs=$per
  [ $((i % 2)) -eq 1 ] && transport=ws
  [ "$i" -eq $((nodes - 1)) ] && subs=$((total - per * (nodes - 1)))
  ./build/herald-bench --port "${ports[$i]}" --pid "${node_pids[$i]}" --transport "$transport" \
    --subscribers "$subs" --messages 5 --rate 5 --publish "$2" --topic "$topic" --sources 16 \
    --settle 2000 >"$work/bench$i.json" 2>"$work/bench$i.err" &
  bench_pids+=("$!")
}
started=$(date +%s)
for i in $(seq 0 $((nodes - 2))); do bench "$i" 0; done
for i in $(seq 0 $((nodes - 2))); do
  until grep -q '^hb: open' "$work/bench$i.err"; do
    kill -0 "${bench_pids[$i]}" 2>/dev/null || { cat "$work/bench$i.err" >&2; exit 1; }
    sleep 0.2
  done
done
bench $((nodes - 1)) 1
status=0
for p in "${bench_pids[@]}"; do wait "$p" || status=1; done
echo "nodes: $total connections on $nodes nodes, whole run $(( $(date +%s) - started )) s" >&2
for i in $(seq 0 $((nodes - 1))); do
  # a process cannot tell its own TCP segments from the others': that figure is dropped
  sed -e "s/^{/{\"scenario\":\"nodes-$total\",\"setup\":\"node-$i\",\"run\":1,\"exit\":$status,/" \
    -e "s/\"tcp_segments_per_delivery\":[0-9.]*/\"tcp_segments_per_delivery\":null/" \
    "$work/bench$i.json" | tee -a "$raw"
done

node -e '
const fs = require("fs");
const [dir, nodes, total, status] = process.argv.slice(1);
const runs = Array.from({ length: +nodes }, (_, i) => JSON.parse(fs.readFileSync(`${dir}/bench${i}.json`, "utf8")));
const sum = (f) => runs.reduce((a, r) => a + f(r), 0);
const max = (f) => Math.max(...runs.map(f));
const line = { scenario: `nodes-${total}`, setup: `herald-x${nodes}-redis`, run: 1, exit: +status,
  server: "herald", transport: "sse+ws", mode: "idle", subscribers: sum((r) => r.subscribers), topics: 1,
  messages: runs[0].messages, rate: runs[0].rate, payload: 0, interval_ms: 0,
  expected: sum((r) => r.expected), delivered: sum((r) => r.delivered), lost: sum((r) => r.lost),
  duplicates: sum((r) => r.duplicates), conn_errors: sum((r) => r.conn_errors), seconds: max((r) => r.seconds),
  deliveries_per_s: 0, latency_ms: { p50: max((r) => r.latency_ms.p50), p90: max((r) => r.latency_ms.p90),
    p99: max((r) => r.latency_ms.p99), max: max((r) => r.latency_ms.max) },
  requests_per_delivery: 0, tcp_segments_per_delivery: null, bytes_in_per_delivery: sum((r) => r.bytes_in_per_delivery * r.delivered) / Math.max(1, sum((r) => r.delivered)),
  bytes_out_per_delivery: 0, publishes_acked: sum((r) => r.publishes_acked), publishes_failed: 0,
  server_cpu_s: sum((r) => r.server_cpu_s), server_cpu_s_per_million_deliveries: sum((r) => r.server_cpu_s) * 1e6 / Math.max(1, sum((r) => r.delivered)),
  server_rss_kb_per_idle_conn: sum((r) => r.server_rss_kb_per_idle_conn * r.subscribers) / sum((r) => r.subscribers),
  server_rss_idle_mb: sum((r) => r.server_rss_idle_mb) };
console.log(JSON.stringify(line));
' "$work" "$nodes" "$total" "$status" | tee -a "$raw"
exit $status
