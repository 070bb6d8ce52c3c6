#!/usr/bin/env bash
# `make run`: private servers under ./var (reused on the next run), the
# migrations, then every actor as its own process, and a demo organization
# with a balance (created once, reused after). It writes var/shell.env,
# which gives another shell everything it needs (the servers, the PATH,
# the demo org), and prints what to try there. Ctrl-C stops the actors
# (each drains and exits), then the servers this script started.
# With VOX_NATS_URL / VOX_PG_DSN (and VOX_PG_QUERY_DSN) set, those servers
# are used instead. VOX_RUN_DIR moves ./var elsewhere.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
var=${VOX_RUN_DIR:-$top/var}
bin=$top/build/bin
actors=(vox-calls vox-billing vox-leads vox-vault vox-query)
mkdir -p "$var/log"
chmod 755 "$var"

# Which servers are ours is decided before var/env is read: it may hold a
# previous run's addresses too, and what the caller set wins over them.
started=()
[ -z "${VOX_NATS_URL:-}" ] && started+=(nats)
[ -z "${VOX_PG_DSN:-}" ] && started+=(pg)
if [ ${#started[@]} -gt 0 ]; then
  given=$(export -p | grep -E '^declare -x VOX_(NATS_URL|PG_[A-Z_]+)=' || true)
  for s in "${started[@]}"; do
    VOX_NATS_PORT=${VOX_NATS_PORT:-14222} VOX_PG_PORT=${VOX_PG_PORT:-15432} \
      scripts/servers.sh start "$var" "$s"
  done
  . "$var/env"
  eval "$given"
fi
export VOX_NATS_URL VOX_PG_DSN

pids=()
stop_all() {
  trap - INT TERM EXIT
  echo
  echo "run: stopping actors"
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  for s in "${started[@]}"; do scripts/servers.sh stop "$var" "$s"; done
  echo "run: stopped"
}
trap stop_all EXIT
trap 'exit 0' INT TERM

"$bin/voxctl" migrate
# the streams (EVENTS, ALERTS, DLQ) belong to the operator: the actors
# only check them at start, with the same VOX_STREAM_* settings
"$bin/voxctl" streams apply --wait 30

# vox-vault's master keys: a private key file under ./var unless the
# caller brings its own ring.
if [ -z "${VOX_VAULT_KEYS:-}" ] && [ -z "${VOX_VAULT_KEY_FILE:-}" ]; then
  export VOX_VAULT_KEY_FILE=$var/vault.keys
  [ -s "$VOX_VAULT_KEY_FILE" ] || "$bin/voxctl" keys generate
fi

# vox-query reads as its own role, which row-level security binds; it
# refuses to start as an owner or a superuser.
if [ -z "${VOX_PG_QUERY_DSN:-}" ]; then
  echo "run: VOX_PG_QUERY_DSN is not set; vox-query needs a role that is a" \
       "member of vox_reader (see README.md, Queries)" >&2
  exit 1
fi

for a in "${actors[@]}"; do
  if [ "$a" = vox-query ]; then
    VOX_PG_DSN=$VOX_PG_QUERY_DSN setsid "$bin/$a" 2>>"$var/log/$a.log" &
  else
    setsid "$bin/$a" 2>>"$var/log/$a.log" &
  fi
  pids+=($!)
done

# The demo organization: 1,200p of credit and an alert below 1,000p, so
# the first call of the example bridge (187 s at 70p a minute: 219p)
# moves the wallet and raises alert.low_balance. Created once; its id is
# kept in var/demo-org and reused while the org exists.
org=""
if [ -s "$var/demo-org" ]; then
  org=$(cat "$var/demo-org")
  "$bin/voxctl" org show "$org" >/dev/null 2>&1 || org=""
fi
if [ -z "$org" ]; then
  org=$(cat /proc/sys/kernel/random/uuid)
  "$bin/voxctl" org create --id "$org" --name "Demo Clinic" \
    --email demo@example.com --balance 1200 --low-balance 1000 >/dev/null
  echo "$org" > "$var/demo-org"
fi

# Everything another shell needs, quoted for the shell.
{
  echo "# written by make run (scripts/run.sh): . this file in another shell"
  for v in VOX_NATS_URL VOX_PG_DSN VOX_PG_QUERY_DSN VOX_VAULT_KEY_FILE \
           VOX_VAULT_KEYS VOX_NATS_USER VOX_NATS_PASSWORD VOX_NATS_CREDS \
           VOX_NATS_TLS_CA VOX_NATS_TLS_CERT VOX_NATS_TLS_KEY; do
    [ -n "${!v:-}" ] && printf 'export %s=%q\n' "$v" "${!v}"
  done
  printf 'export VOX_DEMO_ORG=%q\n' "$org"
  printf 'export PATH=%q:"$PATH"\n' "$bin"
} > "$var/shell.env"

cat <<INFO

vox is running: ${actors[*]}
  NATS      $VOX_NATS_URL
  Postgres  $VOX_PG_DSN
  logs      $var/log/<actor>.log
  demo org  $org (balance 1200p, alert below 1000p)

In another shell:
  . $var/shell.env
  vox-example-bridge \$VOX_DEMO_ORG     # one call: call.started, call.ended
  voxctl wallet \$VOX_DEMO_ORG          # balance_pence 981: 219p charged
  voxctl tail alert --since-start --count 1   # alert.low_balance for the org

Each run of the bridge is a new call (a new call id). A whole simulated
day for a few clinics (calls, payments, leads, duplicates, malformed
events) with a summary of balances, alerts and dead letters:
  voxctl demo

Ctrl-C stops everything.
INFO

# Wait until interrupted, or until an actor dies on its own.
while :; do
  for p in "${pids[@]}"; do
    if ! kill -0 "$p" 2>/dev/null; then
      echo "run: an actor exited unexpectedly; see $var/log" >&2
      exit 1
    fi
  done
  sleep 1
done
