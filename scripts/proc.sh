# Sourced by the scripts that start processes of their own (bench.sh,
# bench-scale.sh): stopping them the same way everywhere.

# stop_pid PID [SECONDS]: SIGTERM, wait up to SECONDS (10) for it to exit
# (an actor drains its batch first), then SIGKILL; reaps it. An empty PID
# is nothing to stop.
stop_pid() {
  local p=$1 secs=${2:-10}
  [ -n "$p" ] || return 0
  if kill -0 "$p" 2>/dev/null; then
    kill -TERM "$p" 2>/dev/null || true
    for _ in $(seq 1 $((secs * 10))); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
  fi
  wait "$p" 2>/dev/null || true
}
