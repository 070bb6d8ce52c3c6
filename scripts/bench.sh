#!/usr/bin/env bash
# Measured figures against private servers. Builds nothing: run `make build`
# first. One JSON line per run on stdout; progress on stderr.
#
#   bench.sh query [--quick]
#       vox-query's query.wallet: private nats-server and PostgreSQL in a
#       temporary directory, the migrations, one organization, then
#       vox-bench query at a fixed 2000 requests/s and at saturation, each
#       with conns/workers 1/1, 2/2 and 4/4 (vox-query restarted for
#       each), and at saturation with two instances of 1/1. First, the
#       baseline: 2000 requests/s against vox-bench echo,
#       a responder without a database, on the same servers. 10 s per run;
#       --quick: 3 s and only 2/2.
#
# The servers and vox-query are stopped on every exit, failures included.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
bin=$top/build/bin

die() { echo "bench: $*" >&2; exit 1; }
usage() { echo "usage: scripts/bench.sh query [--quick]" >&2; exit 2; }

[ "${1:-}" = query ] || usage
shift
quick=0
for a in "$@"; do
  case $a in
    --quick) quick=1 ;;
    *) usage ;;
  esac
done
for b in vox-bench vox-query voxctl; do
  [ -x "$bin/$b" ] || die "$bin/$b is missing: run make build first"
done
secs=10
[ "$quick" -eq 1 ] && secs=3

tmp=$(mktemp -d /tmp/vox-bench.XXXXXX)
chmod 755 "$tmp" # the postgres user must reach it when we are root
qpid=
qpid2=
epid=

stop_query() {
  local i
  [ -n "$qpid" ] || return 0
  if kill -0 "$qpid" 2>/dev/null; then
    kill -TERM "$qpid" 2>/dev/null || true
    for i in $(seq 1 100); do kill -0 "$qpid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$qpid" 2>/dev/null || true
  fi
  wait "$qpid" 2>/dev/null || true
  qpid=
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_query
  for p in "$epid" "$qpid2"; do
    [ -n "$p" ] || continue
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  if [ "$rc" -ne 0 ] && [ -s "$tmp/vox-query.log" ]; then
    echo "bench: last lines of vox-query.log:" >&2
    tail -n 20 "$tmp/vox-query.log" >&2
  fi
  "$top/scripts/servers.sh" stop "$tmp" >/dev/null 2>&1 || true
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "bench: starting private servers in $tmp" >&2
VOX_PG_FSYNC=off scripts/servers.sh start "$tmp" >&2
# shellcheck disable=SC1091
. "$tmp/env"
export VOX_NATS_URL VOX_PG_DSN
[ -n "${VOX_PG_QUERY_DSN:-}" ] || die "servers.sh wrote no VOX_PG_QUERY_DSN"

"$bin/voxctl" migrate >&2
org=$(cat /proc/sys/kernel/random/uuid)
"$VOX_PG_BIN/psql" "$VOX_PG_DSN" -qAt -v ON_ERROR_STOP=1 -c \
  "INSERT INTO organizations (id, name, email, wallet_balance_pence)
   VALUES ('$org', 'Bench Dental', 'bench@example.invalid', 123456)" >&2

# Start vox-query with conns/workers $1/$2 and wait (about 10 s at most)
# until it answers query.wallet for the org.
start_query() {
  local end out
  stop_query
  VOX_PG_DSN=$VOX_PG_QUERY_DSN VOX_QUERY_CONNS=$1 VOX_QUERY_WORKERS=$2 \
    "$bin/vox-query" >>"$tmp/vox-query.log" 2>&1 &
  qpid=$!
  end=$((SECONDS + 10))
  while [ "$SECONDS" -lt "$end" ]; do
    kill -0 "$qpid" 2>/dev/null || die "vox-query exited"
    out=$(timeout 4 "$bin/vox-bench" query --org "$org" --rate 100 --seconds 1 \
          2>/dev/null) || out=
    case $out in
      *'"ok":0,'* | '') sleep 0.2 ;;
      *'"ok":'*) return 0 ;;
    esac
  done
  die "vox-query (conns $1, workers $2) did not answer within 10 s"
}

run() { # conns workers vox-bench-args...
  local c=$1 w=$2
  shift 2
  echo "bench: vox-bench query $* (conns $c, workers $w)" >&2
  "$bin/vox-bench" query --org "$org" "$@" --label "conns=$c" --label "workers=$w"
}

# The baseline, in the same run: the same requests answered by a
# responder without a database (vox-bench echo), so the machine's own NATS
# round trip is measured next to vox-query's.
"$bin/vox-bench" echo --seconds 600 2>>"$tmp/echo.log" &
epid=$!
sleep 0.5
echo "bench: vox-bench query --subject-kind echo --rate 2000 (baseline)" >&2
"$bin/vox-bench" query --org "$org" --subject-kind echo --rate 2000 \
  --seconds "$secs" --label target=echo
kill -TERM "$epid" 2>/dev/null || true
wait "$epid" 2>/dev/null || true
epid=

if [ "$quick" -eq 1 ]; then sizes="2"; else sizes="1 2 4"; fi
for n in $sizes; do
  start_query "$n" "$n"
  run "$n" "$n" --rate 2000 --seconds "$secs"
done
for n in $sizes; do
  start_query "$n" "$n"
  run "$n" "$n" --rate 0 --seconds "$secs"
done
# Two instances of one connection each, sharing the queue group: the
# scale-out alternative to a bigger pool.
if [ "$quick" -eq 0 ]; then
  start_query 1 1
  VOX_PG_DSN=$VOX_PG_QUERY_DSN VOX_QUERY_CONNS=1 VOX_QUERY_WORKERS=1 \
    "$bin/vox-query" >>"$tmp/vox-query-2.log" 2>&1 &
  qpid2=$!
  sleep 1
  echo "bench: vox-bench query --rate 0 (two instances, conns 1, workers 1)" >&2
  "$bin/vox-bench" query --org "$org" --rate 0 --seconds "$secs" \
    --label "conns=1" --label "workers=1" --label "instances=2"
  kill -TERM "$qpid2" 2>/dev/null || true
  wait "$qpid2" 2>/dev/null || true
  qpid2=
fi
stop_query
