#!/usr/bin/env bash
# `make run`: private servers under ./var (reused on the next run), the
# migrations, then every actor as its own process. Ctrl-C stops the actors
# (each drains and exits), then the servers this script started.
# With VOX_NATS_URL / VOX_PG_DSN (and VOX_PG_QUERY_DSN) set, those servers
# are used instead.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
var=$top/var
bin=$top/build/bin
actors=(vox-calls vox-billing vox-leads vox-vault vox-query)
mkdir -p "$var/log"
chmod 755 "$var"

started=()
if [ -z "${VOX_NATS_URL:-}" ]; then
  VOX_NATS_PORT=${VOX_NATS_PORT:-14222} scripts/servers.sh start "$var" nats
  . "$var/env"; started+=(nats)
fi
if [ -z "${VOX_PG_DSN:-}" ]; then
  VOX_PG_PORT=${VOX_PG_PORT:-15432} scripts/servers.sh start "$var" pg
  . "$var/env"; started+=(pg)
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

cat <<INFO

vox is running: ${actors[*]}
  NATS      $VOX_NATS_URL
  Postgres  $VOX_PG_DSN
  logs      $var/log/<actor>.log

Try, in another shell (publishes a call.started/call.ended pair):
  VOX_NATS_URL='$VOX_NATS_URL' $bin/vox-example-bridge <org_id>
An org that is not in the organizations table gets its events dead-lettered.

Or a whole simulated day for a few clinics (calls, payments, leads,
duplicates, malformed events) with a summary of balances, alerts and
dead letters:
  VOX_NATS_URL='$VOX_NATS_URL' VOX_PG_DSN='$VOX_PG_DSN' $bin/voxctl demo

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
