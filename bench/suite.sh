#!/usr/bin/env bash
# The herald-bench suite: herald side by side with nchan, Socket.IO and the ws server, each case
# on a freshly started server, then bench/report.mjs writes JSON, markdown and SVG charts.
# Usage: [ONLY=REGEX] bench/suite.sh quick|full|smoke [OUTDIR]
#   ONLY reruns the scenarios it matches (e.g. ONLY='^idle-19000$|^nodes'), replacing their
#   lines in OUTDIR/PROFILE.jsonl and keeping the others. MATCH narrows further, to the cases
#   whose "SCENARIO SETUP TRANSPORT" it matches (e.g. MATCH='^many-topics (herald|nchan) sse$');
#   with MATCH, write to a scratch OUTDIR: ONLY's replacing does not know about it.
#   quick (make bench, a few minutes), full (make bench-full, medians of 3, idle up to 19k
#   connections per process and 100k across nodes), smoke (CI: herald only, seconds).
# Servers run one worker each (herald --workers 1, nginx worker_processes 1, Node's one thread)
# so CPU per delivery compares like with like; "herald-2w" is herald with its default 2 workers,
# "nchan-2w" nginx with 2, "herald-2w-wd1" herald-2w with --write-delay 1; "-writev" is the
# same herald with --io-uring off (one writev per connection instead of batches on io_uring).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
profile=${1:-quick}
out=${2:-docs/bench}
runs=1
[ "$profile" = full ] && runs=3
mkdir -p "$out"
raw="$out/$profile.jsonl"
only=${ONLY:-}
if [ -n "$only" ] && [ -f "$raw" ]; then
  node -e 'const fs = require("fs"), [file, only] = process.argv.slice(1), re = new RegExp(only);
    const keep = fs.readFileSync(file, "utf8").split("\n").filter((l) => l && !re.test(JSON.parse(l).scenario));
    fs.writeFileSync(file, keep.map((l) => l + "\n").join(""));' "$raw" "$only"
else
  : >"$raw"
fi
work=$(mktemp -d)
pid=
trap 'stop_server; rm -rf "$work"' EXIT

start() { # SERVER: starts it fresh; sets $port, $pid, $pids
  case $1 in
  herald) start_herald "$work/herald.log" --workers 1 --heartbeat 60000 ;;
  herald-2w) start_herald "$work/herald.log" --workers 2 --heartbeat 60000 ;;
  herald-2w-wd1) start_herald "$work/herald.log" --workers 2 --heartbeat 60000 --write-delay 1 ;;
  herald-writev) start_herald "$work/herald.log" --workers 1 --heartbeat 60000 --io-uring off ;;
  herald-2w-writev) start_herald "$work/herald.log" --workers 2 --heartbeat 60000 --io-uring off ;;
  nchan) start_nchan "$work/nchan" 1 ;;
  nchan-2w) start_nchan "$work/nchan" 2 ;;
  socketio | ws) start_node_peer "$work/peer.log" "$1" ;;
  esac
}

# run SCENARIO SERVER TRANSPORT SUBSCRIBERS TOPICS MESSAGES RATE [INTERVAL_MS] [PUBLISHERS] [SETTLE_MS]
run() {
  [ -z "$only" ] || [[ $1 =~ $only ]] || return 0
  [ -z "${MATCH:-}" ] || [[ "$1 $2 $3" =~ $MATCH ]] || return 0
  local scenario=$1 server=$2 transport=$3 interval=${8:-0} publishers=${9:-1} settle=${10:-500}
  for r in $(seq "$runs"); do
    start "$server"
    local line status=0
    line=$(./build/herald-bench --server "${server%%-*}" --port "$port" --pid "$pids" \
      --transport "$transport" --subscribers "$4" --topics "$5" --messages "$6" --rate "$7" \
      --interval "$interval" --publishers "$publishers" --settle "$settle" \
      --inflight "${INFLIGHT:-0}" \
      --topic "b$RANDOM" 2>"$work/bench.err") || status=$?
    stop_server
    if [ -z "$line" ]; then
      echo "bench: $scenario $server $transport produced nothing:" >&2
      cat "$work/bench.err" >&2
      exit 1
    fi
    line="{\"scenario\":\"$scenario\",\"setup\":\"$server\",\"run\":$r,\"exit\":$status,${line#\{}"
    echo "$line" | tee -a "$raw"
  done
}

peers=(nchan socketio ws)
case $profile in
smoke)
  for t in sse ws ws-deflate long-poll; do run smoke herald "$t" 50 1 20 100; done
  run smoke herald short-poll 50 1 20 100 100
  run smoke herald ws 50 10 100 500 0 2
  ;;
quick | full)
  if [ "$profile" = quick ]; then
    cmp_msgs=5 busy_msgs=200 fan_subs=5000 fan_msgs=50 topics=5000 topic_msgs=10000 pubs=20000
    closed_msgs=500
    idle_sizes=(5000)
  else
    cmp_msgs=30 busy_msgs=1000 fan_subs=10000 fan_msgs=200 topics=10000 topic_msgs=20000 pubs=50000
    closed_msgs=2000
    idle_sizes=(1000 5000 19000)
  fi
  # transport-compare: a feed (1 message a second on one topic, 1,000 subscribers), short
  # polling once a second: what each transport costs per delivered message
  for server in herald nchan; do
    for t in sse ws long-poll; do run compare "$server" "$t" 1000 1 "$cmp_msgs" 1; done
    run compare "$server" short-poll 1000 1 "$cmp_msgs" 1 1000
  done
  run compare herald-writev sse 1000 1 "$cmp_msgs" 1 # io_uring's batches vs one writev each
  for server in socketio ws; do run compare "$server" ws 1000 1 "$cmp_msgs" 1; done
  # long polling on every server that has it, Socket.IO's fallback included (same load)
  for server in herald nchan socketio; do run compare-long-poll "$server" long-poll 1000 1 "$cmp_msgs" 1; done
  # the same at 100 messages a second: now a poll brings back many messages at once
  for server in herald nchan; do
    for t in sse ws long-poll; do run compare-busy "$server" "$t" 1000 1 "$busy_msgs" 100; done
    run compare-busy "$server" short-poll 1000 1 "$busy_msgs" 100 1000
  done
  # fan-out: 200 messages as fast as the publisher can send them, to 10,000 subscribers of one
  # topic (quick: 50 messages to 5,000)
  for server in herald herald-2w nchan; do
    for t in sse ws; do run fanout "$server" "$t" "$fan_subs" 1 "$fan_msgs" 1000000; done
  done
  for server in socketio ws; do run fanout "$server" ws "$fan_subs" 1 "$fan_msgs" 1000000; done
  # closed loop (issue 21): one keep-alive publisher that waits for each answer (--inflight 1),
  # two workers on each side: the fan-out's subscribers and messages, and 1,000 subscribers of
  # one topic x 2,000 messages (quick: 500) as fast as that publisher goes; herald also with
  # --write-delay 1 (deliveries share writes for up to 1 ms)
  for server in herald-2w herald-2w-writev herald-2w-wd1 nchan-2w; do
    INFLIGHT=1 run closed-fanout "$server" sse "$fan_subs" 1 "$fan_msgs" 1
    INFLIGHT=1 run closed-1k "$server" sse 1000 1 "$closed_msgs" 1
  done
  # many topics: 10,000 topics with one subscriber each, 20,000 messages at 5,000/s (quick:
  # 5,000 topics, 10,000 messages)
  for server in herald nchan; do
    for t in sse ws; do run many-topics "$server" "$t" "$topics" "$topics" "$topic_msgs" 5000; done
  done
  run many-topics herald-writev sse "$topics" "$topics" "$topic_msgs" 5000
  for server in socketio ws; do run many-topics "$server" ws "$topics" "$topics" "$topic_msgs" 5000; done
  # publish throughput: 50,000 (quick: 20,000) publishes over 4 connections to 100 topics, 1 subscriber each
  for server in herald nchan "${peers[@]:1}"; do
    t=sse
    [ "$server" = socketio ] || [ "$server" = ws ] && t=ws
    run publish "$server" "$t" 100 100 "$pubs" 1000000 0 4
  done
  # idle connections: server memory per connection, then 2 messages to prove they are alive
  for n in "${idle_sizes[@]}"; do
    for server in herald nchan; do
      for t in sse ws; do run "idle-$n" "$server" "$t" "$n" 1 2 10 0 1 1000; done
    done
    for server in socketio ws; do run "idle-$n" "$server" ws "$n" 1 2 10 0 1 1000; done
  done
  ;;
*)
  echo "usage: bench/suite.sh quick|full|smoke [OUTDIR]" >&2
  exit 2
  ;;
esac
if [ "$profile" = full ] && { [ -z "$only" ] || [[ nodes-100000 =~ $only ]]; }; then
  bench/nodes.sh 6 100000 "$raw"
fi
node bench/report.mjs "$raw" "$out" "$profile"
if grep -q '"exit":[1-9]' "$raw"; then
  echo "bench: some runs lost or duplicated messages, or lost connections (\"exit\" in $raw)" >&2
  exit 1
fi
