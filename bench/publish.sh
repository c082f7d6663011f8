#!/usr/bin/env bash
# Publish benchmark: for each run, starts build/herald (release build) on a free port with the
# given store, runs build/herald-publish against it, prints its JSON line; then the medians.
# Usage: bench/publish.sh DURABILITY [CLIENTS] [PUBLISHES] [PAYLOAD] [RUNS]
#   DURABILITY: memory (no --data-dir), off, batch or sync (SQLite in a fresh temp dir)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
durability=${1:?memory, off, batch or sync}
clients=${2:-16}
publishes=${3:-20000}
payload=${4:-100}
runs=${5:-3}
results=$(mktemp)
log=$(mktemp)
dir=
pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; rm -rf "$log" "$results" ${dir:+"$dir"}' EXIT

for run in $(seq "$runs"); do
  store=()
  if [ "$durability" != memory ]; then
    dir=$(mktemp -d "${BENCH_DATA_PARENT:-/tmp}/herald-bench-XXXXXX")
    store=(--data-dir "$dir" --durability "$durability")
  fi
  start_herald "$log" "${store[@]}"
  ./build/herald-publish --port "$port" --clients "$clients" --publishes "$publishes" \
    --payload "$payload" | tee -a "$results"
  stop_herald
  [ -n "$dir" ] && rm -rf "$dir" && dir=
done

node -e '
const runs = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map(JSON.parse);
const med = (f) => { const v = runs.map(f).sort((a, b) => a - b); return v[Math.floor(v.length / 2)]; };
console.log(JSON.stringify({ median_of: runs.length, durability: process.argv[2], clients: runs[0].clients,
  publishes: runs[0].publishes, payload: runs[0].payload, failed: Math.max(...runs.map((r) => r.failed)),
  publishes_per_s: med((r) => r.publishes_per_s),
  latency_ms: { p50: med((r) => r.latency_ms.p50), p90: med((r) => r.latency_ms.p90),
    p99: med((r) => r.latency_ms.p99), max: med((r) => r.latency_ms.max) } }));
' "$results" "$durability"
