# Shared by the bench runners (sourced). start_herald LOG ARGS...: starts build/herald on a free
# loopback port with ARGS, logging to LOG; sets $pid and $port, or exits when it does not start.
start_herald() {
  local log=$1
  shift
  ./build/herald --listen 127.0.0.1:0 --log-level info "$@" 2>"$log" &
  pid=$!
  port=
  for _ in $(seq 100); do
    port=$(sed -n 's/.*event=server\.listening addr=[^ ]*:\([0-9]*\) .*/\1/p' "$log")
    [ -n "$port" ] && return 0
    sleep 0.05
  done
  echo "herald did not start" >&2
  cat "$log" >&2
  exit 1
}

stop_herald() {
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  pid=
}
