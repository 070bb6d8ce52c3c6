#!/usr/bin/env bash
# Integration: the README's quickstart, walked as a new user would. `make
# run`'s script (scripts/run.sh) starts its own servers under a private
# directory on free ports, the actors and the demo org; then, in "another
# shell" that only sources var/shell.env, the three commands it prints:
# the example bridge publishes a call, the wallet shows the charge, and
# `voxctl tail alert` shows the low-balance alert. Ctrl-C stops
# everything, servers included. Every wait is bounded.
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
tmp=${VOX_TEST_TMP:-/tmp}
dir=$(mktemp -d "$tmp/quickstart.XXXXXX")
chmod 755 "$dir"
fail() { echo "quickstart: FAIL: $*" >&2; echo "---- run.out" >&2; cat "$dir/run.out" >&2 || true; exit 1; }

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
pick_port() {
  local p
  for _ in $(seq 1 200); do
    p=$((20000 + RANDOM % 40000))
    port_free "$p" && { echo "$p"; return 0; }
  done
  return 1
}

# a new user's shell: none of the test's servers
unset VOX_NATS_URL VOX_PG_DSN VOX_PG_QUERY_DSN VOX_PG_ADMIN_DSN VOX_PG_BIN \
      VOX_PG_DATA VOX_PG_PORT VOX_PG_PASSFILE VOX_VAULT_KEYS VOX_VAULT_KEY_FILE
nats_port=$(pick_port); pg_port=$(pick_port)

run_pid=
cleanup() {
  if [ -n "$run_pid" ] && kill -0 "$run_pid" 2>/dev/null; then
    kill -INT "$run_pid" 2>/dev/null || true
    for _ in $(seq 1 300); do kill -0 "$run_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$run_pid" 2>/dev/null || true
  fi
  "$top/scripts/servers.sh" stop "$dir" >/dev/null 2>&1 </dev/null || true
}
trap cleanup EXIT

# A background job of a script starts with SIGINT ignored, and bash cannot
# trap a signal ignored on entry: env restores the default, as a terminal
# would have it, so the kill -INT below is the user's Ctrl-C.
start_run() {
  VOX_RUN_DIR=$dir VOX_NATS_PORT=$nats_port VOX_PG_PORT=$pg_port \
    setsid env --default-signal=INT "$top/scripts/run.sh" \
    >"$dir/run.out" 2>&1 </dev/null &
  run_pid=$!
  for _ in $(seq 1 1200); do
    grep -q "Ctrl-C stops everything" "$dir/run.out" && break
    kill -0 "$run_pid" 2>/dev/null || fail "run.sh exited early"
    sleep 0.1
  done
  grep -q "Ctrl-C stops everything" "$dir/run.out" || fail "no banner in 120 s"
  grep -q "demo org" "$dir/run.out" || fail "the banner names no demo org"
}
# Ctrl-C: the actors drain, the servers stop
stop_run() {
  kill -INT "$run_pid"
  for _ in $(seq 1 300); do kill -0 "$run_pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$run_pid" 2>/dev/null && fail "run.sh did not stop on Ctrl-C"
  grep -q "run: stopped" "$dir/run.out" || fail "run.sh did not say it stopped"
  port_free "$nats_port" || fail "nats-server still listens after Ctrl-C"
  port_free "$pg_port" || fail "PostgreSQL still listens after Ctrl-C"
  run_pid=
}

start_run
grep -q ". $dir/shell.env" "$dir/run.out" || fail "the banner does not say to source shell.env"

# "In another shell": only what shell.env gives
out=$(env -i HOME="$HOME" PATH=/usr/bin:/bin bash -c '
  set -euo pipefail
  . "$1/shell.env"
  org=$VOX_DEMO_ORG
  vox-example-bridge "$org"
  # the charge lands once vox-billing has applied the call
  for _ in $(seq 1 200); do
    w=$(voxctl wallet "$org")
    case $w in *"\"balance_pence\": 981"*|*"\"balance_pence\":981"*) break;; esac
    sleep 0.1
  done
  echo "WALLET $w" | tr -d "\n"; echo
  voxctl tail alert --since-start --count 1 --timeout 20
' quickstart "$dir" 2>&1) || fail "the other shell's commands: $out"
echo "$out"

org=$(cat "$dir/demo-org")
echo "$out" | grep -q "call.started stream=EVENTS" || fail "no call.started ack"
echo "$out" | grep -q "call.ended stream=EVENTS" || fail "no call.ended ack"
echo "$out" | grep -E -q '"balance_pence": ?981' || fail "the wallet did not show 981p"
echo "$out" | grep -q "alert.low_balance.$org" || fail "no low-balance alert for $org"
echo "$out" | grep -q '"Vox-Schema": \?"1"' || fail "the alert carries no Vox-Schema 1"

stop_run

# a second make run reuses the servers' data and the demo org
start_run
grep -q "demo org  $org" "$dir/run.out" || fail "the second run made a new demo org"
w=$(env -i HOME="$HOME" PATH=/usr/bin:/bin bash -c '. "$1/shell.env"; voxctl wallet "$VOX_DEMO_ORG"' \
    quickstart "$dir" 2>&1) || fail "voxctl wallet after the restart: $w"
echo "$w" | grep -E -q '"balance_pence": ?981' || fail "the wallet after the restart: $w"
stop_run
rm -rf "$dir"
echo "quickstart: ok (org $org)"
