#!/usr/bin/env bash
# Start (or reuse) a throwaway PostgreSQL server for the tests, listening on 127.0.0.1 only,
# with a database "modelport_test". Installs PostgreSQL (Debian package) when it is missing.
# Progress goes to stderr; the last line on stdout is the URL for the tests:
#   eval "$(.ci/postgres.sh | tail -n 1)"
# Stop it with: pg_ctl -D "$MODELPORT_PG_DIR/data" stop  (as the user that owns it)
set -euo pipefail

STATE="${MODELPORT_PG_DIR:-/tmp/modelport-postgres-$(id -u)}"
DATA="$STATE/data"
DATABASE=modelport_test

log() { echo "postgres.sh: $*" >&2; }

pg_bin() { find /usr/lib/postgresql/*/bin -maxdepth 1 -name initdb 2>/dev/null | sort -V | tail -n 1 | xargs -r dirname; }

# Run as the server's owner: postgres refuses to run as root.
as_owner() {
  if [[ $EUID -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

install_postgres() {
  local sudo=()
  [[ $EUID -eq 0 ]] || sudo=(sudo)
  log "installing PostgreSQL with apt-get"
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql >&2
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

running() { [[ -f "$STATE/port" && -f "$STATE/password" ]] && as_owner "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; }

start_new() {
  rm -rf "$STATE"
  mkdir -p "$STATE"
  chmod 700 "$STATE"
  python3 -c 'import secrets; print(secrets.token_hex(16))' >"$STATE/password"
  free_port >"$STATE/port"
  if [[ $EUID -eq 0 ]]; then
    id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
    chown -R postgres "$STATE"
  fi
  log "creating a cluster in $DATA"
  as_owner "$BIN/initdb" -D "$DATA" -U postgres -E UTF8 --no-sync --auth-local=trust --auth-host=scram-sha-256 \
    --pwfile="$STATE/password" >&2
  log "starting it on 127.0.0.1:$(cat "$STATE/port")"
  # A throwaway test server: durability settings off for speed. It must not inherit the lock (fd 9).
  as_owner "$BIN/pg_ctl" -D "$DATA" -l "$STATE/server.log" -w -t 60 start -o \
    "-c listen_addresses=127.0.0.1 -p $(cat "$STATE/port") -c unix_socket_directories=$STATE -c fsync=off \
     -c synchronous_commit=off -c full_page_writes=off" >&2 9>&-
}

BIN="$(pg_bin)"
if [[ -z "$BIN" ]]; then
  install_postgres
  BIN="$(pg_bin)"
  [[ -n "$BIN" ]] || { log "PostgreSQL was installed but no initdb was found under /usr/lib/postgresql"; exit 1; }
fi

mkdir -p "$(dirname "$STATE")"
exec 9>"$STATE.lock"
flock 9  # two callers at once: the second waits and reuses the first one's server

if running; then
  log "reusing the server in $DATA"
else
  start_new
fi

PORT="$(cat "$STATE/port")"
PASSWORD="$(cat "$STATE/password")"
export PGPASSWORD="$PASSWORD"
psql=("$BIN/psql" -h 127.0.0.1 -p "$PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -tAq)
if [[ -z "$("${psql[@]}" -c "SELECT 1 FROM pg_database WHERE datname = '$DATABASE'")" ]]; then
  "${psql[@]}" -c "CREATE DATABASE $DATABASE" >&2
fi
echo "export MODELPORT_TEST_POSTGRES_URL=postgresql://postgres:$PASSWORD@127.0.0.1:$PORT/$DATABASE"
