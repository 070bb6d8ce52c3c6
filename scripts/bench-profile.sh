#!/usr/bin/env bash
# Where the write path spends the database's time: one e2e-calls run on
# private servers with pg_stat_statements loaded, then the statements by
# total time (with rows, WAL bytes and buffer hits per call) and the WAL
# the run wrote (pg_stat_wal). Builds nothing: run `make build` first.
#
#   scripts/bench-profile.sh [--events N] [--orgs N] [--rate R]
#
# VOX_PROFILE_SQL, when set, is run on the migrated database first: a way
# to measure a schema change (an index, a constraint) before writing its
# migration.
# Progress and the tables on stderr/stdout; the servers are stopped on
# every exit.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
bin=$top/build/bin
events=20000
orgs=1000
rate=0
while [ $# -gt 0 ]; do
  case $1 in
    --events) events=$2; shift 2 ;;
    --orgs) orgs=$2; shift 2 ;;
    --rate) rate=$2; shift 2 ;;
    *) echo "usage: scripts/bench-profile.sh [--events N] [--orgs N] [--rate R]" >&2; exit 2 ;;
  esac
done
tmp=$(mktemp -d /tmp/vox-profile.XXXXXX)
chmod 755 "$tmp"
cpid=
bpid=
# shellcheck source=proc.sh
. "$top/scripts/proc.sh"
cleanup() {
  stop_pid "$cpid"
  stop_pid "$bpid"
  "$top/scripts/servers.sh" stop "$tmp" >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

VOX_PG_FSYNC=${VOX_BENCH_FSYNC:-on} VOX_PG_PRELOAD=pg_stat_statements \
  "$top/scripts/servers.sh" start "$tmp" >&2
# shellcheck disable=SC1091
. "$tmp/env"
export VOX_NATS_URL VOX_PG_DSN
psql() { PGPASSFILE=$VOX_PG_PASSFILE "$VOX_PG_BIN/psql" -X "$VOX_PG_DSN" "$@"; }
"$bin/voxctl" migrate >&2
"$bin/voxctl" streams apply >&2
psql -qc "CREATE EXTENSION IF NOT EXISTS pg_stat_statements"
# an experiment on the schema before the run (never in make bench)
[ -z "${VOX_PROFILE_SQL:-}" ] || psql -q -v ON_ERROR_STOP=1 -c "$VOX_PROFILE_SQL"
VOX_LOG_LEVEL=warn "$bin/vox-calls" 2>>"$tmp/vox-calls.log" &
cpid=$!
VOX_LOG_LEVEL=warn "$bin/vox-billing" 2>>"$tmp/vox-billing.log" &
bpid=$!
for a in vox-calls vox-billing; do
  for _ in $(seq 1 60); do
    "$bin/voxctl" services ping "$a" --wait 300 >/dev/null 2>&1 && break
  done
done
psql -qc "SELECT pg_stat_statements_reset(); SELECT pg_stat_reset_shared('wal')" >/dev/null
"$bin/vox-bench" e2e-calls --orgs "$orgs" --events "$events" --rate "$rate"
echo "== statements by total time"
psql -c "SELECT round(total_exec_time::numeric, 0) AS total_ms, calls,
  round((total_exec_time / calls)::numeric, 3) AS ms_per_call, rows,
  round(wal_bytes::numeric / greatest(rows, 1), 0) AS wal_bytes_per_row,
  shared_blks_hit + shared_blks_read + shared_blks_dirtied AS blocks,
  left(regexp_replace(query, '\s+', ' ', 'g'), 90) AS statement
  FROM pg_stat_statements WHERE query NOT LIKE '%pg_stat%'
  ORDER BY total_exec_time DESC LIMIT 20"
echo "== WAL written during the run"
psql -c "SELECT wal_records, wal_fpi, pg_size_pretty(wal_bytes) AS wal_bytes,
  round(wal_bytes / $events.0) AS bytes_per_call, wal_sync, wal_write
  FROM pg_stat_wal"
