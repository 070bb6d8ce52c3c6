#!/usr/bin/env bash
# Measured figures against private servers. Builds nothing: run `make build`
# first (`make bench` does). One JSON line per run on stdout; progress on
# stderr.
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
#   bench.sh all [--quick] [--preload]
#       the standard suite on one set of private servers, every pipeline
#       scenario on a fresh database (the migrations applied) and empty
#       streams, so that none is favoured by the order:
#         query       echo baseline, query.wallet at 2000/s and saturation;
#         e2e-calls   N calls (N call.started + N call.ended) over 1000
#                     orgs through vox-calls and vox-billing, to the last
#                     commit; hot-org the same for one org;
#         e2e-latency the latency curve: publish-to-commit p50/p99 at
#                     1000, 2500, 5000 and 7500 events/s offered (8 s of
#                     calls each, 3 s with --quick);
#         limit       vox's own consume loop with a trivial handler, fed
#                     the same calls: concurrent, publish-only and
#                     consume-only (the two sides' ceilings);
#         baseline-seed  the replaced design through JetStream: one event
#                     per transaction, 8 workers;
#       and the peak RSS (VmHWM) of each actor at the end of its runs.
#       N = 20000 calls, --quick: 4000. --preload adds e2e-calls on tables
#       already holding 1M and 10M calls: they are built once, in a
#       PostgreSQL cluster kept under build/bench/preload (the first
#       10M build takes a while; later runs reuse it). Writes
#       build/bench/report.json, report.md and report.png (gnuplot) from
#       the lines of this run (scripts/bench_report.py). A scenario that
#       fails is recorded as {"scenario":...,"error":...} and reported as
#       not measured; the exit status is then 1, after the report.
#
# PostgreSQL runs with fsync on, as in production (VOX_BENCH_FSYNC=off
# measures without it; the report says which).
#
# The servers and the actors are stopped on every exit, failures included.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
bin=$top/build/bin
outdir=$top/build/bench

die() { echo "bench: $*" >&2; exit 1; }
usage() { echo "usage: scripts/bench.sh query|all [--quick] [--preload]" >&2; exit 2; }

mode=${1:-}
case $mode in
  query | all) ;;
  *) usage ;;
esac
shift
quick=0
preload=0
for a in "$@"; do
  case $a in
    --quick) quick=1 ;;
    --preload) [ "$mode" = all ] || usage; preload=1 ;;
    *) usage ;;
  esac
done
need="vox-bench vox-query voxctl"
[ "$mode" = all ] && need="$need vox-calls vox-billing"
for b in $need; do
  [ -x "$bin/$b" ] || die "$bin/$b is missing: run make build first"
done
secs=10
[ "$quick" -eq 1 ] && secs=3
events=20000 # call.ended per pipeline run (and as many call.started)
[ "$quick" -eq 1 ] && events=4000

tmp=$(mktemp -d /tmp/vox-bench.XXXXXX)
chmod 755 "$tmp" # the postgres user must reach it when we are root
lines=$tmp/lines.jsonl # every JSON line of this run, for the report
: >"$lines"
failed=0
qpid=
qpid2=
epid=
cpid=
bpid=

# shellcheck source=proc.sh
. "$top/scripts/proc.sh"

stop_query() { stop_pid "$qpid"; qpid=; }
stop_actors() { stop_pid "$cpid"; cpid=; stop_pid "$bpid"; bpid=; }

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_query
  stop_actors
  for p in "$epid" "$qpid2"; do
    [ -n "$p" ] || continue
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  if [ "$rc" -ne 0 ]; then
    for f in vox-query vox-calls vox-billing; do
      [ -s "$tmp/$f.log" ] || continue
      echo "bench: last lines of $f.log:" >&2
      tail -n 20 "$tmp/$f.log" >&2
    done
  fi
  "$top/scripts/servers.sh" stop "$tmp" >/dev/null 2>&1 || true
  if [ -n "${ppg_started:-}" ]; then
    "$top/scripts/servers.sh" stop "$top/build/bench/preload" pg >/dev/null 2>&1 || true
  fi
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Run a command that prints JSON lines: pass them on and keep them for the
# report.
rec() {
  local rc=0
  "$@" >"$tmp/out.json" || rc=$?
  cat "$tmp/out.json"
  cat "$tmp/out.json" >>"$lines"
  return "$rc"
}

# `all`: a scenario that fails is recorded, the suite goes on.
try() { # scenario command...
  local name=$1 rc=0
  shift
  rec "$@" || rc=$?
  if [ "$rc" -ne 0 ]; then
    echo "bench: $name failed (exit $rc)" >&2
    printf '{"scenario":"%s","error":"exit %d"}\n' "$name" "$rc" | tee -a "$lines"
    failed=1
  fi
}

# Peak RSS (VmHWM) of a running process, as a memory line.
memory() { # pid actor during
  local kb
  kb=$(awk '$1 == "VmHWM:" { print $2 }' "/proc/$1/status" 2>/dev/null) || kb=
  if [ -z "$kb" ]; then
    echo "bench: no VmHWM for $2 (pid $1): it exited" >&2
    printf '{"scenario":"memory","actor":"%s","during":"%s","error":"exited"}\n' \
      "$2" "$3" | tee -a "$lines"
    failed=1
    return 0
  fi
  printf '{"scenario":"memory","actor":"%s","during":"%s","peak_rss_kb":%s}\n' \
    "$2" "$3" "$kb" | tee -a "$lines"
}

echo "bench: starting private servers in $tmp" >&2
# PostgreSQL as in production: fsync on (VOX_BENCH_FSYNC=off to compare).
export VOX_BENCH_FSYNC=${VOX_BENCH_FSYNC:-on}
VOX_PG_FSYNC=$VOX_BENCH_FSYNC scripts/servers.sh start "$tmp" >&2
# shellcheck disable=SC1091
. "$tmp/env"
export VOX_NATS_URL VOX_PG_DSN
[ -n "${VOX_PG_QUERY_DSN:-}" ] || die "servers.sh wrote no VOX_PG_QUERY_DSN"

"$bin/voxctl" migrate >&2
# the streams are the operator's; the actors only check them
"$bin/voxctl" streams apply >&2
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
  rec "$bin/vox-bench" query --org "$org" "$@" --label "conns=$c" --label "workers=$w"
}

# The baseline, in the same run: the same requests answered by a
# responder without a database (vox-bench echo), so the machine's own NATS
# round trip is measured next to vox-query's.
"$bin/vox-bench" echo --seconds 600 2>>"$tmp/echo.log" &
epid=$!
sleep 0.5
echo "bench: vox-bench query --subject-kind echo --rate 2000 (baseline)" >&2
rec "$bin/vox-bench" query --org "$org" --subject-kind echo --rate 2000 \
  --seconds "$secs" --label target=echo
kill -TERM "$epid" 2>/dev/null || true
wait "$epid" 2>/dev/null || true
epid=

if [ "$mode" = query ]; then
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
    rec "$bin/vox-bench" query --org "$org" --rate 0 --seconds "$secs" \
      --label "conns=1" --label "workers=1" --label "instances=2"
    kill -TERM "$qpid2" 2>/dev/null || true
    wait "$qpid2" 2>/dev/null || true
    qpid2=
  fi
  stop_query
  exit 0
fi

# ---- all: the standard suite ------------------------------------------------

# query.wallet with the default pool (2/2), at 2000/s and at saturation;
# vox-query's peak RSS at the end of each run.
start_query 2 2
run 2 2 --rate 2000 --seconds "$secs"
memory "$qpid" vox-query "query 2000/s"
start_query 2 2
run 2 2 --rate 0 --seconds "$secs"
memory "$qpid" vox-query "query saturation"
stop_query

# A fresh database with the migrations, and empty streams: every pipeline
# scenario starts from the same state, whatever ran before it. Sets $dsn.
ndb=0
fresh() { # label
  ndb=$((ndb + 1))
  local db="bench_${1//-/_}_$ndb"
  PGPASSFILE=$VOX_PG_PASSFILE "$VOX_PG_BIN/createdb" -h 127.0.0.1 -p "$VOX_PG_PORT" \
    -U vox "$db" >&2
  dsn="${VOX_PG_DSN% dbname=*} dbname=$db"
  VOX_PG_DSN=$dsn "$bin/voxctl" migrate >/dev/null
  "$bin/vox-bench" reset-streams >&2
}

# vox-calls and vox-billing on $dsn, fresh for each pipeline run, ready
# once both answer $SRV.PING (they checked the streams and made their
# consumers by then).
start_actors() {
  local end a
  stop_actors
  VOX_PG_DSN=$dsn VOX_LOG_LEVEL=warn "$bin/vox-calls" >>"$tmp/vox-calls.log" 2>&1 &
  cpid=$!
  VOX_PG_DSN=$dsn VOX_LOG_LEVEL=warn "$bin/vox-billing" >>"$tmp/vox-billing.log" 2>&1 &
  bpid=$!
  end=$((SECONDS + 20))
  for a in vox-calls vox-billing; do
    while ! "$bin/voxctl" services ping "$a" --wait 300 >/dev/null 2>&1; do
      kill -0 "$cpid" 2>/dev/null || die "vox-calls exited (see its log)"
      kill -0 "$bpid" 2>/dev/null || die "vox-billing exited (see its log)"
      [ "$SECONDS" -lt "$end" ] || die "$a did not answer \$SRV.PING within 20 s"
    done
  done
}

# An e2e run on $dsn (fresh unless the caller set it up).
e2e_run() { # name vox-bench-e2e-args...
  local name=$1
  shift
  start_actors
  echo "bench: vox-bench e2e-calls $* ($name)" >&2
  try "$name" "$bin/vox-bench" e2e-calls --url "$VOX_NATS_URL" --dsn "$dsn" \
    --name "$name" "$@"
  memory "$cpid" vox-calls "$name"
  memory "$bpid" vox-billing "$name"
  stop_actors
}

pipeline() { # name vox-bench-e2e-args...
  fresh "$1"
  e2e_run "$@"
}

pipeline e2e-calls --orgs 1000 --events "$events"
pipeline hot-org --orgs 1 --events "$events"
# the latency curve: events/s offered (half as many calls/s), a fixed time
lat_secs=8
[ "$quick" -eq 1 ] && lat_secs=3
for eps in 1000 2500 5000 7500; do
  cps=$((eps / 2))
  pipeline e2e-latency --orgs 1000 --events $((cps * lat_secs)) --rate "$cps"
done

# Without the actors: vox's own loop with a trivial handler (the fair
# ceiling), then the replaced design, on the same calls.
fresh limit
echo "bench: vox-bench limit --events $events" >&2
try limit "$bin/vox-bench" limit --url "$VOX_NATS_URL" --dsn "$dsn" --events "$events"
fresh baseline-seed
echo "bench: vox-bench baseline-seed --orgs 1000 --events $events --conns 8" >&2
try baseline-seed "$bin/vox-bench" baseline-seed --url "$VOX_NATS_URL" --dsn "$dsn" \
  --orgs 1000 --events "$events" --conns 8

# e2e-calls on tables that already hold 1M and 10M calls: a cluster of its
# own under build/bench/preload, built once and kept (fsync as the rest).
if [ "$preload" -eq 1 ]; then
  pdir=$top/build/bench/preload
  mkdir -p "$pdir"
  chmod 755 "$top/build" "$top/build/bench" "$pdir"
  VOX_PG_FSYNC=$VOX_BENCH_FSYNC VOX_PG_PORT= "$top/scripts/servers.sh" start "$pdir" pg >&2
  ppg_started=1
  # shellcheck disable=SC1091
  pdsn_base=$(. "$pdir/env"; echo "${VOX_PG_DSN% dbname=*}")
  for size in 1000000 10000000; do
    db=preload_$size
    # shellcheck disable=SC1091
    (. "$pdir/env"
     PGPASSFILE=$VOX_PG_PASSFILE "$VOX_PG_BIN/psql" -qAt "$VOX_PG_ADMIN_DSN" \
       -c "SELECT 1 FROM pg_database WHERE datname = '$db'" | grep -q 1 ||
       PGPASSFILE=$VOX_PG_PASSFILE "$VOX_PG_BIN/createdb" -h 127.0.0.1 \
         -p "$VOX_PG_PORT" -U vox "$db" >&2)
    dsn="$pdsn_base dbname=$db"
    VOX_PG_DSN=$dsn "$bin/voxctl" migrate >/dev/null
    echo "bench: vox-bench preload --events $size (built once, kept in $pdir)" >&2
    try "preload-$size" "$bin/vox-bench" preload --dsn "$dsn" --events "$size"
    "$bin/vox-bench" reset-streams >&2
    e2e_run "e2e-preload-$size" --orgs 1000 --events "$events"
  done
fi

mkdir -p "$outdir"
rq=()
[ "$quick" -eq 1 ] && rq=(--quick)
python3 "$top/scripts/bench_report.py" "${rq[@]}" "$lines" "$outdir" >&2
echo "bench: wrote $outdir/report.md, report.json$([ -s "$outdir/report.png" ] && echo ", report.png")" >&2
exit "$failed"
