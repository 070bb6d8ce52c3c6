#!/usr/bin/env bash
# Integration: the client kits against the real actors. Starts vox-calls,
# vox-billing, vox-leads, vox-vault and vox-query on the test's servers
# (VOX_NATS_URL, VOX_PG_DSN, VOX_PG_QUERY_DSN from scripts/test.sh), then
# builds and runs each kit's tests: clients/typescript (npm ci from its
# lock, tsc, node --test) and clients/go (go vet, go test against
# Debian's packaged sources), then their examples: a signed Stripe-shaped
# webhook stored once (its retry a duplicate, a forged one refused), a
# call bridge, the dashboard showing the result. Every process is
# stopped on every exit path.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
bin=$top/build/bin
tmp=${VOX_TEST_TMP:?VOX_TEST_TMP}
work=$tmp/kits
mkdir -p "$work"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do
    for _ in $(seq 1 200); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
  done
}
trap cleanup EXIT

# a database of its own, migrated as an operator does; vox-query reads
# it as the reader role
db=kits_$$
PGPASSFILE=$VOX_PG_PASSFILE "$VOX_PG_BIN/createdb" -h 127.0.0.1 -p "$VOX_PG_PORT" -U vox "$db"
export VOX_PG_DSN="${VOX_PG_DSN% dbname=*} dbname=$db"
export VOX_PG_QUERY_DSN="${VOX_PG_QUERY_DSN% dbname=*} dbname=$db"
"$bin/voxctl" migrate >/dev/null

# the streams are the operator's; a test before this one may have
# removed them from the shared server (the actors only wait for them)
"$bin/voxctl" streams apply --wait 30 >/dev/null
export VOX_VAULT_KEYS="1 AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
for a in vox-calls vox-billing vox-leads vox-vault vox-query; do
  if [ "$a" = vox-query ]; then
    VOX_PG_DSN=$VOX_PG_QUERY_DSN "$bin/$a" 2>"$work/$a.log" &
  else
    "$bin/$a" 2>"$work/$a.log" &
  fi
  pids+=($!)
done
for a in vox-calls vox-billing vox-leads vox-vault vox-query; do
  for _ in $(seq 1 300); do
    grep -q 'msg="started"' "$work/$a.log" && break
    sleep 0.1
  done
  grep -q 'msg="started"' "$work/$a.log" || { cat "$work/$a.log" >&2; echo "kits: $a did not start" >&2; exit 1; }
done

echo "== TypeScript kit"
ts=$work/typescript
rm -rf "$ts" && mkdir -p "$ts"
(cd "$top/clients/typescript" && tar --exclude=node_modules --exclude=dist -cf - .) | tar -xf - -C "$ts"
(cd "$ts" && timeout 600 npm ci --no-audit --no-fund --loglevel=error &&
  timeout 300 npx tsc -p . &&
  VOX_BIN=$bin VOX_SOURCE_DIR=$top timeout 300 node --test dist/test/)
echo "== Go kit"
# Debian's packaged sources (golang-github-nats-io-go-nats-dev, ...), in
# GOPATH mode: the module proxy is not reachable from these machines
gopath=$work/gopath
mkdir -p "$gopath/src/vox.example"
rm -rf "$gopath/src/vox.example/client"
cp -r "$top/clients/go" "$gopath/src/vox.example/client"
(cd "$gopath/src/vox.example/client" &&
  export GO111MODULE=off GOPATH=$gopath:/usr/share/gocode GOCACHE=$work/gocache GOFLAGS= &&
  timeout 300 go vet ./... &&
  VOX_BIN=$bin VOX_SOURCE_DIR=$top timeout 600 go test -count=1 -v ./... 2>&1 | tail -20 &&
  for e in dashboard callbridge stripebridge alerts; do
    go build -o "$work/go-$e" "./examples/$e" || exit 1
  done)

# the examples of one kit, for an org of their own: a Stripe-shaped
# webhook bridge (signed; Stripe's retry is a duplicate; a forged one is
# refused), a call bridge, the dashboard's questions (500p paid, 70p for
# the minute). examples KIT STRIPE_CMD CALL_CMD DASHBOARD_CMD: the
# commands take their arguments (address, org, ...) after them.
free_port() { for _ in $(seq 1 100); do p=$((20000 + RANDOM % 40000)); ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && { echo $p; return; }; done; exit 1; }
secret=whsec_kit_test
examples() {
  local kit=$1 stripe=$2 call=$3 dash=$4 org port body r out
  org=$(cat /proc/sys/kernel/random/uuid)
  "$bin/voxctl" org create --id "$org" --name "$kit Examples" --email k@example.com >/dev/null
  port=$(free_port)
  STRIPE_WEBHOOK_SECRET=$secret $stripe "127.0.0.1:$port" >"$work/$kit-stripe.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 100); do grep -q listening "$work/$kit-stripe.log" && break; sleep 0.1; done
  body='{"id":"evt_'$kit'_'$org'","type":"payment_intent.succeeded","created":1796400000,"data":{"object":{"id":"pi_'$kit'_'$org'","amount":500,"amount_received":500,"metadata":{"org_id":"'$org'"}}}}'
  post() { # post SIGNATURE_SECRET: the body and the status
    local t sig
    t=$(date +%s)
    sig=$(printf '%s' "$t.$body" | openssl dgst -sha256 -hmac "$1" | awk '{print $NF}')
    curl -s -w ' %{http_code}' -H "Stripe-Signature: t=$t,v1=$sig" --data-binary "$body" \
      "http://127.0.0.1:$port/webhook"
  }
  r=$(post "$secret"); echo "$kit stripe: $r"
  case $r in *"duplicate=false"*" 200") ;; *) echo "kits: $kit: the webhook was not stored: $r" >&2; exit 1 ;; esac
  r=$(post "$secret"); echo "$kit stripe again: $r"
  case $r in *"duplicate=true"*" 200") ;; *) echo "kits: $kit: a retried webhook was not a duplicate: $r" >&2; exit 1 ;; esac
  r=$(post wrong-secret); echo "$kit stripe forged: $r"
  case $r in *"bad signature"*" 400") ;; *) echo "kits: $kit: a forged webhook was taken: $r" >&2; exit 1 ;; esac
  $call "$org" 60 | tee "$work/$kit-call.out"
  grep -q "call.ended stream=EVENTS" "$work/$kit-call.out"
  for _ in $(seq 1 200); do
    out=$($dash "$org" 2>&1 || true)
    case $out in *"balance 430p"*completed*) break ;; esac
    sleep 0.1
  done
  echo "$out"
  case $out in *"balance 430p"*completed*) ;; *) echo "kits: $kit: the dashboard did not show 430p and the call" >&2; exit 1 ;; esac
}
examples ts "node $ts/dist/examples/stripe-bridge.js" "node $ts/dist/examples/call-bridge.js" \
  "node $ts/dist/examples/dashboard.js"
examples go "$work/go-stripebridge" "$work/go-callbridge" "$work/go-dashboard"
echo "kits: ok"
