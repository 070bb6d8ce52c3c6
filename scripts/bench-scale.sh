#!/usr/bin/env bash
# Throughput of the pipeline with 1 and with 2 instances of each consuming
# actor, on the 3-node NATS cluster of deploy/nats/cluster.conf. Builds
# nothing: run `make build` first.
#
#   scripts/bench-scale.sh [--quick]
#
# Starts three nats-server nodes on free loopback ports (each its own
# store in a temporary directory; accounts.conf's users with random
# passwords), a private PostgreSQL (scripts/servers.sh, fsync off as in
# scripts/bench.sh), applies the migrations and the R3 streams (voxctl
# streams apply as admin), then for n = 1 and n = 2:
# starts n instances of vox-calls and n of vox-billing (R3 streams, their
# own NATS users, all three URLs), runs `vox-bench e2e-calls` (N
# call.started + N call.ended over 1000 orgs, measured until both actors
# committed every call, checked with SQL) and stops the instances. Prints
# one JSON line per run and a last line with the ratio of 2 to 1 instance.
# N = 20000, --quick: 4000. Progress on stderr.
#
# Every process it starts is stopped on every exit, failures included.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
bin=$top/build/bin

die() { echo "bench-scale: $*" >&2; exit 1; }

events=20000
case "${1:-}" in
  "") ;;
  --quick) events=4000 ;;
  *) echo "usage: scripts/bench-scale.sh [--quick]" >&2; exit 2 ;;
esac
for b in vox-bench vox-calls vox-billing voxctl; do
  [ -x "$bin/$b" ] || die "$bin/$b is missing: run make build first"
done

tmp=$(mktemp -d /tmp/vox-bench-scale.XXXXXX)
chmod 755 "$tmp" # the postgres user must reach it when we are root
nodes=3
node_pids=()
actor_pids=()

# shellcheck source=proc.sh
. "$top/scripts/proc.sh"

stop_actors() {
  local p
  for p in "${actor_pids[@]}"; do stop_pid "$p" 30; done
  actor_pids=()
}

cleanup() {
  local rc=$? p
  trap - EXIT INT TERM
  stop_actors
  for p in "${node_pids[@]}"; do stop_pid "$p" 30; done
  if [ "$rc" -ne 0 ]; then
    for f in "$tmp"/*.log "$tmp"/n*/nats.log; do
      [ -s "$f" ] || continue
      echo "bench-scale: last lines of $f:" >&2
      tail -n 10 "$f" >&2
    done
  fi
  "$top/scripts/servers.sh" stop "$tmp" >/dev/null 2>&1 || true
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
pick_port() {
  local p
  for _ in $(seq 1 200); do
    p=$((20000 + RANDOM % 40000))
    if port_free "$p" && [[ " ${ports[*]:-} " != *" $p "* ]]; then
      echo "$p"
      return 0
    fi
  done
  die "no free port found"
}
secret() { head -c 18 /dev/urandom | base64 | tr -d '/+='; }

# ---- the cluster -------------------------------------------------------
ports=()
for i in $(seq 1 $((2 * nodes))); do ports+=("$(pick_port)"); done
for u in ADMIN CALLS BILLING LEADS VAULT QUERY TELEPHONY PAYMENTS SCORER ALERTS INTERNAL ROUTE; do
  export "VOX_NATS_${u}_PASSWORD=$(secret)"
done
urls=
for i in $(seq 0 $((nodes - 1))); do
  urls="$urls${urls:+,}nats://127.0.0.1:${ports[$((2 * i))]}"
done
for i in $(seq 0 $((nodes - 1))); do
  routes=
  for j in $(seq 0 $((nodes - 1))); do
    [ "$j" -eq "$i" ] && continue
    routes="$routes${routes:+, }nats-route://route:$VOX_NATS_ROUTE_PASSWORD@127.0.0.1:${ports[$((2 * j + 1))]}"
  done
  mkdir -p "$tmp/n$((i + 1))"
  VOX_NATS_NODE=vox-n$((i + 1)) VOX_NATS_HOST=127.0.0.1 VOX_NATS_CLUSTER_HOST=127.0.0.1 \
    VOX_NATS_PORT=${ports[$((2 * i))]} VOX_NATS_CLUSTER_PORT=${ports[$((2 * i + 1))]} \
    VOX_NATS_ROUTES="[$routes]" VOX_NATS_STORE="$tmp/n$((i + 1))/store" \
    nats-server -c "$top/deploy/nats/cluster.conf" -l "$tmp/n$((i + 1))/nats.log" &
  node_pids+=($!)
done
echo "bench-scale: 3-node cluster on $urls" >&2

# ---- PostgreSQL ----------------------------------------------------------
VOX_PG_FSYNC=off "$top/scripts/servers.sh" start "$tmp" pg >&2
. "$tmp/env"
export VOX_PG_DSN
"$bin/voxctl" migrate >&2

# The operators' user for voxctl; vox-bench takes its user in the URLs.
export VOX_NATS_URL=$urls VOX_NATS_USER=admin VOX_NATS_PASSWORD=$VOX_NATS_ADMIN_PASSWORD
admin_urls=${urls//nats:\/\//nats://admin:$VOX_NATS_ADMIN_PASSWORD@}
# the operator makes the R3 streams (the cluster may still be electing its
# meta leader: --wait); the actors, started with the same setting, check them
VOX_STREAM_REPLICAS=3 "$bin/voxctl" streams apply --wait 60 >&2

start_actor() { # binary user instance password
  VOX_LOG_LEVEL=warn VOX_STREAM_REPLICAS=3 VOX_NATS_USER=$2 \
    VOX_NATS_PASSWORD=$4 "$bin/$1" >>"$tmp/$1-$3.log" 2>&1 &
  actor_pids+=($!)
}

# n instances of vox-calls and of vox-billing, ready once each answers
# $SRV.PING (n answers per actor).
start_actors() { # n
  local n=$1 end a got
  for k in $(seq 1 "$n"); do
    start_actor vox-calls calls "$k" "$VOX_NATS_CALLS_PASSWORD"
    start_actor vox-billing billing "$k" "$VOX_NATS_BILLING_PASSWORD"
  done
  end=$((SECONDS + 60))
  for a in vox-calls vox-billing; do
    while :; do
      got=$("$bin/voxctl" services ping "$a" --wait 500 2>/dev/null | grep -c '"id"' || true)
      [ "$got" -ge "$n" ] && break
      for p in "${actor_pids[@]}"; do
        kill -0 "$p" 2>/dev/null || die "an actor exited at start (see its log)"
      done
      [ "$SECONDS" -lt "$end" ] || die "$a: $got of $n instances answered \$SRV.PING within 60 s"
    done
  done
}

out=()
for n in 1 2; do
  start_actors "$n"
  echo "bench-scale: vox-bench e2e-calls, $n instance(s) of each actor, $events calls" >&2
  line=$("$bin/vox-bench" e2e-calls --url "$admin_urls" --dsn "$VOX_PG_DSN" \
    --orgs 1000 --events "$events" --name "e2e-calls-x$n")
  line=${line%\}},\"instances\":$n,\"nats_nodes\":$nodes,\"replicas\":3}
  echo "$line"
  out+=("$line")
  stop_actors
done

python3 - "${out[@]}" <<'PY'
import json, sys
one, two = (json.loads(a) for a in sys.argv[1:3])
print(json.dumps({"scenario": "scale-ratio",
                  "events_per_s_1": one["events_per_s"],
                  "events_per_s_2": two["events_per_s"],
                  "ratio_2_to_1": round(two["events_per_s"] / one["events_per_s"], 3)}))
PY
