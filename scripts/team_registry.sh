#!/usr/bin/env bash
# A team registry (issue #16): an MLflow tracking server over PostgreSQL, model files stored and served by
# the server, so several machines register, promote and roll back against one registry.
#
#   scripts/team_registry.sh start [DIR]   # once; prints the MLFLOW_TRACKING_URI to export
#   scripts/team_registry.sh stop  [DIR]
#   scripts/team_registry.sh status [DIR]
#
# DIR (default .team-registry, gitignored) holds the database cluster, the served artifacts and the logs.
# Ports: MLFLOW_PORT (default 5000), PG_PORT (default 5433). On a real team host put DIR on a backed-up disk
# and bind the server to the team's network (MLFLOW_HOST, default 127.0.0.1).
# PostgreSQL comes from Debian's `postgresql` package (installed here when missing and run as root);
# the Python driver (psycopg2-binary) is in the project's dependencies.
set -euo pipefail

cmd=${1:-start}
dir=$(realpath -m "${2:-.team-registry}")
root=$(cd "$(dirname "$0")/.." && pwd)
py=${PYTHON:-$root/.venv/bin/python}
mlflow_host=${MLFLOW_HOST:-127.0.0.1}
mlflow_port=${MLFLOW_PORT:-5000}
pg_port=${PG_PORT:-5433}
url="http://$mlflow_host:$mlflow_port"

die() { echo "error: $1" >&2; echo "Fix: $2" >&2; exit 2; }
pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }
# PostgreSQL refuses to run as root: as root, the cluster belongs to Debian's `postgres` user.
as_db_user() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
healthy() { "$py" -c "import urllib.request,sys; urllib.request.urlopen(sys.argv[1] + '/health', timeout=2)" "$url" 2>/dev/null; }

ensure_postgres() {
  [ -n "$(pg_bin)" ] && return
  [ "$(id -u)" = 0 ] || die "PostgreSQL is not installed." "sudo apt-get install -y postgresql, then rerun."
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  [ -n "$(pg_bin)" ] || die "apt-get did not install PostgreSQL." "install Debian's postgresql package by hand."
}

start() {
  ensure_postgres
  "$py" -c "import psycopg2" 2>/dev/null || die "the PostgreSQL driver is missing from $py." "make install"
  local bin; bin=$(pg_bin)
  mkdir -p "$dir/pg" "$dir/run" "$dir/artifacts"
  if [ "$(id -u)" = 0 ]; then
    chown -R postgres "$dir/pg" "$dir/run"
    runuser -u postgres -- test -w "$dir/pg" \
      || die "the postgres user cannot reach $dir (a parent folder is private)." "pick a DIR under a folder others can enter (chmod o+x)."
  fi
  if [ ! -f "$dir/pg/PG_VERSION" ]; then
    as_db_user "$bin/initdb" -D "$dir/pg" -U mlflow --auth=trust >"$dir/initdb.log" 2>&1 \
      || die "initdb failed (see $dir/initdb.log)." "remove $dir/pg and rerun."
  fi
  if ! as_db_user "$bin/pg_ctl" -D "$dir/pg" status >/dev/null 2>&1; then
    # Local connections only (TCP on 127.0.0.1 and a socket in DIR): the tracking server is the only client.
    as_db_user "$bin/pg_ctl" -D "$dir/pg" -l "$dir/run/postgres.log" -w \
      -o "-p $pg_port -k $dir/run -c listen_addresses=127.0.0.1" start >/dev/null \
      || die "PostgreSQL did not start (see $dir/run/postgres.log)." "read the log; a port in use: set PG_PORT (now $pg_port)."
  fi
  as_db_user "$bin/psql" -h 127.0.0.1 -p "$pg_port" -U mlflow -d postgres -tAc \
    "SELECT 1 FROM pg_database WHERE datname = 'mlflow'" | grep -q 1 \
    || as_db_user "$bin/createdb" -h 127.0.0.1 -p "$pg_port" -U mlflow mlflow
  if healthy; then echo "MLflow already serving at $url"; else
    # One worker: the pipeline's traffic is a few calls per stage (and 2 cores here). Job execution off: it
    # needs a different backend and is not used. Artifacts go through the server (mlflow-artifacts:/),
    # so clients need no shared filesystem.
    MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false setsid nohup "$py" -m mlflow server --host "$mlflow_host" \
      --port "$mlflow_port" --workers 1 \
      --backend-store-uri "postgresql+psycopg2://mlflow@127.0.0.1:$pg_port/mlflow" \
      --artifacts-destination "$dir/artifacts" >"$dir/mlflow.log" 2>&1 &
    echo $! >"$dir/mlflow.pid"
    for _ in $(seq 240); do healthy && break; sleep 0.5; done
    healthy || die "the MLflow server did not answer at $url (see $dir/mlflow.log)." "free port $mlflow_port or set MLFLOW_PORT."
  fi
  echo "Team registry up. On every machine of the team:"
  echo "  export MLFLOW_TRACKING_URI=$url"
}

stop() {
  if [ -f "$dir/mlflow.pid" ]; then
    # The server runs in a session of its own (setsid): its group is its pid, workers included.
    local pid; pid=$(cat "$dir/mlflow.pid")
    kill -- "-$pid" 2>/dev/null || true
    rm -f "$dir/mlflow.pid"
  fi
  local bin; bin=$(pg_bin)
  if [ -n "$bin" ] && [ -f "$dir/pg/PG_VERSION" ]; then as_db_user "$bin/pg_ctl" -D "$dir/pg" -m fast stop >/dev/null 2>&1 || true; fi
  echo "Team registry stopped (data kept in $dir)."
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  status) if healthy; then echo "serving at $url"; else echo "not running at $url"; exit 1; fi ;;
  *) die "unknown command '$cmd'." "use start, stop or status." ;;
esac
