# Shared by the bench runners (sourced). Each start_* sets $port, $pid (the process to stop)
# and $pids (the processes whose CPU and memory herald-bench measures, comma separated).

# A free loopback port (node is there: the tests and peers need it).
free_port() {
  node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

# wait_port LOG SED WHAT: sets $port from the line of LOG that SED picks out, or exits.
wait_port() {
  port=
  for _ in $(seq 100); do
    port=$(sed -n "$2" "$1")
    [ -n "$port" ] && return 0
    sleep 0.05
  done
  echo "$3 did not start" >&2
  cat "$1" >&2
  exit 1
}

# start_herald LOG ARGS...: build/herald on a free port with ARGS, logging to LOG.
start_herald() {
  local log=$1
  shift
  ./build/herald --listen 127.0.0.1:0 --log-level info "$@" 2>"$log" &
  pid=$!
  pids=$pid
  wait_port "$log" 's/.*event=server\.listening addr=[^ ]*:\([0-9]*\) .*/\1/p' herald
}

# start_nchan DIR WORKERS: nginx with libnginx-mod-nchan (bench/peers/nchan.conf.in) in DIR.
start_nchan() {
  local dir=$1 workers=${2:-1}
  mkdir -p "$dir"
  port=$(free_port)
  sed -e "s|@PORT@|$port|" -e "s|@DIR@|$dir|g" -e "s|@WORKERS@|$workers|" \
    bench/peers/nchan.conf.in >"$dir/nchan.conf"
  nginx -p "$dir" -c "$dir/nchan.conf" -e "$dir/error.log" &
  pid=$!
  for _ in $(seq 100); do
    pids=$(pgrep -d, -P "$pid" || true)
    [ -n "$pids" ] && curl -s -o /dev/null "http://127.0.0.1:$port/pub/ping" -d x && return 0
    sleep 0.05
  done
  echo "nginx (nchan) did not start" >&2
  cat "$dir/error.log" >&2
  exit 1
}

# start_node_peer LOG socketio|ws: a peer server from bench/peers/.
start_node_peer() {
  local log=$1 name=$2
  node "bench/peers/${name}_server.mjs" 0 >"$log" 2>&1 &
  pid=$!
  pids=$pid
  wait_port "$log" 's/^listening \([0-9]*\)$/\1/p' "bench/peers/${name}_server.mjs (npm ci in bench/peers?)"
}

stop_server() {
  [ -n "${pid:-}" ] || return 0
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  pid=
}
stop_herald() { stop_server; }
