#!/usr/bin/env bash
# Fan-out benchmark: starts build/herald (release build) on a free port, runs herald-fanout
# against it, prints one JSON line per scenario. Usage: bench/fanout.sh [SUBSCRIBERS] [MESSAGES] [RATE]
set -euo pipefail
cd "$(dirname "$0")/.."
subs=${1:-10000}
msgs=${2:-200}
rate=${3:-100}
log=$(mktemp)
./build/herald --listen 127.0.0.1:0 --log-level warn --heartbeat 60000 2>"$log" &
pid=$!
trap 'kill $pid 2>/dev/null; rm -f "$log"' EXIT
for _ in $(seq 50); do
  port=$(ss -ltnp 2>/dev/null | awk -v p="pid=$pid," '$0 ~ p {split($4,a,":"); print a[length(a)]; exit}')
  [ -n "$port" ] && break
  sleep 0.1
done
./build/herald-fanout --port "$port" --subscribers "$subs" --messages "$msgs" --rate "$rate" --pid "$pid"
