#!/usr/bin/env bash
# Starts and stops the private servers vox runs against: a nats-server with
# JetStream and a PostgreSQL cluster, both under one directory, listening on
# loopback only. Used by `make run` (directory ./var, fixed ports) and by
# `make test` (a temporary directory, free ports).
#
#   servers.sh start DIR [nats|pg]  start both or one (reusing a running one);
#                                   writes DIR/env
#   servers.sh stop DIR [nats|pg]   stop; safe to call twice or after a half start
#
# Ports: VOX_NATS_PORT / VOX_PG_PORT if set, else free ports picked here.
# As root, PostgreSQL runs as the unprivileged `postgres` user.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)

die() { echo "servers: $*" >&2; exit 1; }

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

pick_port() {
  local p i
  for i in $(seq 1 200); do
    p=$((20000 + RANDOM % 40000))
    port_free "$p" && { echo "$p"; return 0; }
  done
  die "no free port found"
}

wait_port() { # port seconds
  local i
  for i in $(seq 1 $(($2 * 10))); do
    port_free "$1" || return 0
    sleep 0.1
  done
  return 1
}

as_pg() { # run a command as the cluster's owner
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start_nats() {
  local dir=$1 port=${VOX_NATS_PORT:-}
  mkdir -p "$dir/nats"
  if [ -f "$dir/nats/pid" ] && kill -0 "$(cat "$dir/nats/pid")" 2>/dev/null \
     && [ -f "$dir/nats/port" ]; then
    port=$(cat "$dir/nats/port")
    echo "servers: nats-server already running on 127.0.0.1:$port"
  else
    [ -n "$port" ] || port=$(pick_port)
    port_free "$port" || die "port $port is in use (set VOX_NATS_PORT)"
    echo "$port" > "$dir/nats/port"
    setsid nats-server -c "$top/deploy/nats/single.conf" -a 127.0.0.1 -p "$port" \
      -sd "$dir/nats/store" -P "$dir/nats/pid" -l "$dir/nats/nats.log" &
    wait_port "$port" 10 || die "nats-server did not start (see $dir/nats/nats.log)"
  fi
  echo "export VOX_NATS_URL=nats://127.0.0.1:$port" >> "$dir/env"
}

start_pg() {
  local dir=$1 port=${VOX_PG_PORT:-} data=$1/pg/data
  [ -n "$pgbin" ] || die "PostgreSQL binaries not found (run scripts/deps.sh)"
  mkdir -p "$dir/pg/run"
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres: "$dir/pg" "$dir/pg/run"
    runuser -u postgres -- test -x "$dir/pg" \
      || die "user postgres cannot reach $dir; put the checkout where other users can read it"
  fi
  if [ ! -f "$data/PG_VERSION" ]; then
    # scram password in a 0600 passfile: the DSN itself carries no secret
    local pw
    pw=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
    (umask 077; echo "$pw" > "$dir/pg/pw.init")
    [ "$(id -u)" -eq 0 ] && chown postgres: "$dir/pg/pw.init"
    as_pg "$pgbin/initdb" -D "$data" -U vox --pwfile="$dir/pg/pw.init" \
      --auth-local=scram-sha-256 --auth-host=scram-sha-256 -E UTF8 \
      --locale=C.UTF-8 >"$dir/pg/initdb.log" 2>&1 \
      || die "initdb failed (see $dir/pg/initdb.log)"
    (umask 077; echo "*:*:*:vox:$pw" > "$dir/pg/pgpass")
    rm -f "$dir/pg/pw.init"
  fi
  if as_pg "$pgbin/pg_ctl" -D "$data" status >/dev/null 2>&1 && [ -f "$dir/pg/port" ]; then
    port=$(cat "$dir/pg/port")
    echo "servers: postgres already running on 127.0.0.1:$port"
  else
    [ -n "$port" ] || port=$(pick_port)
    port_free "$port" || die "port $port is in use (set VOX_PG_PORT)"
    echo "$port" > "$dir/pg/port"
    local opts="-p $port -c listen_addresses=127.0.0.1 -k $dir/pg/run -c max_connections=200"
    opts="$opts -c fsync=${VOX_PG_FSYNC:-on}"
    # the WAL and checkpoint lines of deploy/postgres/vox.conf, scaled to a
    # scratch server: checkpoints by time, not forced by a burst of batches
    # (durability as there: fsync and synchronous_commit on)
    opts="$opts -c wal_compression=lz4 -c max_wal_size=2GB -c min_wal_size=256MB"
    opts="$opts -c checkpoint_timeout=15min -c checkpoint_completion_target=0.9"
    opts="$opts -c shared_buffers=256MB"
    # extensions to preload (e.g. pg_stat_statements for scripts/bench-profile.sh)
    [ -z "${VOX_PG_PRELOAD:-}" ] || opts="$opts -c shared_preload_libraries=$VOX_PG_PRELOAD"
    as_pg setsid -w "$pgbin/pg_ctl" -D "$data" -l "$dir/pg/postgres.log" -w -t 60 \
      -o "$opts" start >/dev/null || die "postgres did not start (see $dir/pg/postgres.log)"
  fi
  local dsn="host=127.0.0.1 port=$port user=vox passfile=$dir/pg/pgpass"
  PGPASSFILE=$dir/pg/pgpass "$pgbin/psql" -qAt "$dsn dbname=postgres" \
    -c "SELECT 1 FROM pg_database WHERE datname = 'vox'" | grep -q 1 \
    || PGPASSFILE=$dir/pg/pgpass "$pgbin/createdb" -h 127.0.0.1 -p "$port" -U vox vox
  query_role "$dir" "$dsn"
  {
    echo "export VOX_PG_DSN='$dsn dbname=vox'"
    echo "export VOX_PG_QUERY_DSN='host=127.0.0.1 port=$port user=vox_query passfile=$dir/pg/pgpass dbname=vox'"
    echo "export VOX_PG_ADMIN_DSN='$dsn dbname=postgres'"
    echo "export VOX_PG_BIN=$pgbin VOX_PG_DATA=$data VOX_PG_PORT=$port VOX_PG_PASSFILE=$dir/pg/pgpass"
  } >> "$dir/env"
}

# vox-query's login role: a member of vox_reader, so subject to row-level
# security and able to read nothing else (see README.md, Queries). Its password
# lives in the same passfile.
query_role() { # dir dsn
  local dir=$1 dsn=$2 qpw
  if ! grep -q '^\*:\*:\*:vox_query:' "$dir/pg/pgpass"; then
    qpw=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
    (umask 077; echo "*:*:*:vox_query:$qpw" >> "$dir/pg/pgpass")
  fi
  qpw=$(grep '^\*:\*:\*:vox_query:' "$dir/pg/pgpass" | head -n 1 | cut -d: -f5)
  PGPASSFILE=$dir/pg/pgpass "$pgbin/psql" -qAt -v ON_ERROR_STOP=1 -v pw="$qpw" \
    "$dsn dbname=postgres" >/dev/null <<'SQL' || die "cannot create the vox_query role"
SELECT 'CREATE ROLE vox_reader NOLOGIN'
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'vox_reader') \gexec
SELECT 'CREATE ROLE vox_query LOGIN NOSUPERUSER NOBYPASSRLS IN ROLE vox_reader'
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'vox_query') \gexec
ALTER ROLE vox_query PASSWORD :'pw';
SQL
}

stop_nats() {
  local dir=$1 pid i
  [ -f "$dir/nats/pid" ] || return 0
  pid=$(cat "$dir/nats/pid")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$dir/nats/pid"
}

stop_pg() {
  local dir=$1
  [ -f "$dir/pg/data/PG_VERSION" ] || return 0
  as_pg "$pgbin/pg_ctl" -D "$dir/pg/data" status >/dev/null 2>&1 || return 0
  as_pg "$pgbin/pg_ctl" -D "$dir/pg/data" -m fast -w -t 30 stop >/dev/null 2>&1 \
    || as_pg "$pgbin/pg_ctl" -D "$dir/pg/data" -m immediate stop >/dev/null 2>&1 || true
}

cmd=${1:-}; dir=${2:-}; which=${3:-all}
[ -n "$dir" ] || die "usage: servers.sh start|stop DIR [nats|pg]"
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
case "$cmd" in
  start)
    # starting one of the two keeps the other's lines of DIR/env
    keep=
    if [ -f "$dir/env" ]; then
      case $which in
        pg) keep=$(grep '^export VOX_NATS_URL=' "$dir/env" || true) ;;
        nats) keep=$(grep -v '^export VOX_NATS_URL=' "$dir/env" || true) ;;
      esac
    fi
    if [ -n "$keep" ]; then printf '%s\n' "$keep" > "$dir/env"; else : > "$dir/env"; fi
    [ "$which" = pg ] || start_nats "$dir"
    [ "$which" = nats ] || start_pg "$dir"
    ;;
  stop)
    [ "$which" = pg ] || stop_nats "$dir"
    [ "$which" = nats ] || stop_pg "$dir"
    ;;
  *) die "usage: servers.sh start|stop DIR" ;;
esac
