#!/usr/bin/env bash
# Where a bench phase spends PostgreSQL's time: runs `waybill bench` against a private
# PostgreSQL cluster (initdb in a temporary directory, on a free loopback port, with
# pg_stat_statements loaded), one phase per run with the statistics reset before it, and
# prints the statements by total execution time, with calls, mean time and rows per call.
#
#   cargo build --release -p waybill
#   scripts/pg-profile/run.sh [ORDERS] [SECONDS] [PHASES]
#     ORDERS   orders prepared per run (default 20000)
#     SECONDS  seconds per phase (default 5)
#     PHASES   comma-separated bench phases, each profiled on its own
#              (default http-create,http-status,http-get)
#
# Needs PostgreSQL's server binaries (Debian: postgresql-15) and runs the cluster as the
# `postgres` user when started as root. Loopback only; the cluster is removed at the end.
set -euo pipefail

orders=${1:-20000}
seconds=${2:-5}
phases=${3:-http-create,http-status,http-get}
root=$(cd "$(dirname "$0")/../.." && pwd)
waybill=${WAYBILL_BIN:-$root/target/release/waybill}
pgbin=${PGBIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
[ -x "$waybill" ] || { echo "build first: cargo build --release -p waybill" >&2; exit 1; }
[ -x "$pgbin/initdb" ] || { echo "no PostgreSQL server binaries (set PGBIN)" >&2; exit 1; }

dir=$(mktemp -d /tmp/waybill-pgprofile.XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
as_pg() { if [ "$(id -u)" = 0 ]; then su postgres -s /bin/bash -c "$*"; else bash -c "$*"; fi; }
[ "$(id -u)" = 0 ] && chown postgres "$dir"
cleanup() {
  as_pg "'$pgbin/pg_ctl' -D '$dir/data' -m immediate stop" >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT

as_pg "'$pgbin/initdb' -D '$dir/data' -A trust -U postgres" >/dev/null
cat >> "$dir/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
shared_preload_libraries = 'pg_stat_statements'
pg_stat_statements.track = all
CONF
as_pg "'$pgbin/pg_ctl' -D '$dir/data' -l '$dir/log' -w start" >/dev/null
psql=(psql -X -q -h 127.0.0.1 -p "$port" -U postgres)
"${psql[@]}" -d postgres -c "CREATE DATABASE bench"
"${psql[@]}" -d bench -c "CREATE EXTENSION pg_stat_statements"

for phase in ${phases//,/ }; do
  echo "== $phase ($orders orders, $seconds s)"
  # The statistics are reset when the phase starts: the preparation's statements are left out.
  "$waybill" bench --postgres "postgres://postgres@127.0.0.1:$port/bench" \
      --orders "$orders" --seconds "$seconds" --phases "$phase" 2>&1 \
    | while IFS= read -r line; do
        echo "$line"
        case "$line" in
          "prepared in"*) "${psql[@]}" -d bench -c "SELECT pg_stat_statements_reset()" >/dev/null ;;
        esac
      done | grep -E "^(http|pgbench|raw|prepared)"
  "${psql[@]}" -d bench -P pager=off -c "
    SELECT calls, round(total_exec_time)::int AS total_ms,
           round((mean_exec_time * 1000)::numeric)::int AS mean_us,
           round(rows::numeric / greatest(calls, 1), 1) AS rows_per_call,
           left(regexp_replace(query, '\s+', ' ', 'g'), 110) AS statement
    FROM pg_stat_statements
    WHERE dbid = (SELECT oid FROM pg_database WHERE datname = 'bench')
    ORDER BY total_exec_time DESC LIMIT 12"
done
