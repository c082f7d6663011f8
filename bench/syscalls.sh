#!/usr/bin/env bash
# System calls per delivery (issue 21): herald and nchan, two workers each, fresh servers, one
# closed-loop scenario each, perf counting raw_syscalls:sys_enter in the server's processes
# while herald-bench runs. Prints one line per server: deliveries, syscalls, per delivery, and
# herald-bench's CPU per delivery. perf needs root or kernel.perf_event_paranoid <= 0.
# Usage: bench/syscalls.sh [SUBSCRIBERS] [MESSAGES] [INFLIGHT]   (default 1000 2000 1)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
subs=${1:-1000} msgs=${2:-2000} inflight=${3:-1}
work=$(mktemp -d)
pid=
trap 'stop_server; rm -rf "$work"' EXIT
for server in herald nchan; do
  if [ "$server" = herald ]; then
    start_herald "$work/herald.log" --workers 2 --heartbeat 60000 ${HERALD_ARGS:-}
  else
    start_nchan "$work/nchan" 2
  fi
  ./build/herald-bench --server "$server" --port "$port" --pid "$pids" --subscribers "$subs" \
    --messages "$msgs" --inflight "$inflight" --settle 1500 --topic "s$RANDOM" >"$work/line" 2>/dev/null &
  bench=$!
  sleep 1 # the subscribers connect; counting starts in the settle pause, before publishing
  perf stat -e raw_syscalls:sys_enter -p "$pids" -x, -o "$work/perf" &
  perf=$!
  wait "$bench" || true
  kill -INT "$perf"
  wait "$perf" || true
  stop_server
  calls=$(awk -F, '/raw_syscalls/ {print $1}' "$work/perf")
  node -e 'const [line, calls, server] = process.argv.slice(1); const r = JSON.parse(line);
    console.log(JSON.stringify({ server, subscribers: r.subscribers, messages: r.messages, inflight: r.inflight,
      delivered: r.delivered, syscalls: Number(calls), syscalls_per_delivery: +(calls / r.delivered).toFixed(3),
      cpu_us_per_delivery: r.server_cpu_s_per_million_deliveries, deliveries_per_s: r.deliveries_per_s }));' \
    "$(cat "$work/line")" "$calls" "$server"
done
