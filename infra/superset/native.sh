#!/usr/bin/env bash
# Apache Superset as a native process next to the local stack (the compose service
# `superset` is the same, from the official image):
#   native.sh up        install if missing (cached venv), create its metadata database on
#                       the stack's PostgreSQL (idempotent), migrate, provision the admin
#                       login and the dashboards (provision.py), start gunicorn on
#                       SUPERSET_PORT (default 8088) and wait until it is healthy
#   native.sh down      stop it (only the process this script started)
#   native.sh status    the process, its port and its state
# Everything comes from .env: SUPERSET_SECRET_KEY, SUPERSET_ADMIN_USER/_PASSWORD,
# SUPERSET_DB/_USER/_PASSWORD (its metadata database). No secret is ever on a command
# line; the server itself gets none of the platform's database passwords (provision.py
# hands them to Superset's encrypted store).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$ROOT/infra/local"
# shellcheck source=infra/local/lib.sh
source "$HERE/lib.sh"

SUPERSET_PORT="${SUPERSET_PORT:-8088}"
SUPERSET_STATE="$STATE/superset"
SUPERSET_MARKER="superset.app:create_app()"

superset_env() {
  SUPERSET_VENV="$("$ROOT/infra/superset/install-venv.sh")"
  mkdir -p "$SUPERSET_STATE" "$LOGS" "$RUN"
  export PATH="$SUPERSET_VENV/bin:$PATH"
  export SUPERSET_CONFIG_PATH="$ROOT/infra/superset/superset_config.py"
  export SUPERSET_HOME="$SUPERSET_STATE" FLASK_APP="$SUPERSET_MARKER"
  export SUPERSET_DB_HOST="$POSTGRES_HOST" SUPERSET_DB_PORT="$POSTGRES_PORT"
  export SUPERSET_DB="${SUPERSET_DB:-superset}" SUPERSET_DB_USER="${SUPERSET_DB_USER:-superset}"
  [ -n "${SUPERSET_SECRET_KEY:-}" ] || die "SUPERSET_SECRET_KEY is not set (.env)"
  [ -n "${SUPERSET_DB_PASSWORD:-}" ] || die "SUPERSET_DB_PASSWORD is not set (.env)"
  [ -n "${SUPERSET_ADMIN_PASSWORD:-}" ] || die "SUPERSET_ADMIN_PASSWORD is not set (.env)"
}

# Superset's metadata database and role on the stack's PostgreSQL, as its admin over the
# local socket (the same idempotent SQL as the platform's and Airflow's roles).
superset_metadata_db() {
  (
    export PGHOST="$PG_DIR/run" PGPORT="$POSTGRES_PORT" PGUSER="$POSTGRES_ADMIN_USER" \
      ROLE_PASSWORD="$SUPERSET_DB_PASSWORD" PGOPTIONS="-c client_min_messages=warning"
    psql -X -q -v ON_ERROR_STOP=1 -d postgres -v db="$SUPERSET_DB" -v user="$SUPERSET_DB_USER" \
      -f "$ROOT/infra/db/postgres/roles.sql"
  ) >>"$LOGS/superset-init.log" 2>&1 ||
    die "creating Superset's metadata database failed (is PostgreSQL up? make up); see $LOGS/superset-init.log"
}

# Only what the server needs stays in its environment.
server_env() {
  local name
  for name in $(compgen -v); do
    case "$name" in
      POSTGRES_PASSWORD | POSTGRES_ADMIN_PASSWORD | MYSQL_PASSWORD | MYSQL_ROOT_PASSWORD | \
        SUPERSET_ADMIN_PASSWORD | SPARK_CONNECT_TOKEN | SPARK_REMOTE | AIRFLOW_*PASSWORD | \
        AIRFLOW_*SECRET* | AIRFLOW_JWT_SECRET) unset "$name" ;;
    esac
  done
}

superset_up() {
  superset_env
  if running superset "$SUPERSET_MARKER"; then
    log "superset already running; provisioning again (idempotent)"
  else
    port_free_or_die superset "$SUPERSET_PORT"
  fi
  superset_metadata_db
  log "migrating Superset's metadata database and its roles (idempotent)"
  { superset db upgrade && superset init; } >>"$LOGS/superset-init.log" 2>&1 ||
    die "superset db upgrade / init failed; see $LOGS/superset-init.log"
  log "provisioning the admin login, connections, datasets and dashboards (infra/superset/assets)"
  python "$ROOT/infra/superset/provision.py" >>"$LOGS/superset-init.log" 2>&1 ||
    die "provisioning failed; see $LOGS/superset-init.log"
  if ! running superset "$SUPERSET_MARKER"; then
    log "starting superset on port $SUPERSET_PORT (${SUPERSET_WORKERS:-2} gunicorn workers)"
    (
      server_env
      spawn superset gunicorn --bind "127.0.0.1:$SUPERSET_PORT" --workers "${SUPERSET_WORKERS:-2}" \
        --worker-class gthread --threads 4 --timeout 120 --limit-request-line 0 \
        --limit-request-field_size 0 --access-logfile - "$SUPERSET_MARKER"
    )
  fi
  wait_port superset "$SUPERSET_PORT" "$SUPERSET_MARKER"
  local deadline=$((SECONDS + UP_TIMEOUT))
  until curl -fsS -o /dev/null "http://127.0.0.1:$SUPERSET_PORT/health"; do
    [ "$SECONDS" -ge "$deadline" ] && die "superset is not healthy after ${UP_TIMEOUT}s; see $LOGS/superset.log"
    sleep 0.5
  done
  log "Superset: http://localhost:$SUPERSET_PORT (login ${SUPERSET_ADMIN_USER:-admin})"
}

superset_down() { stop_pid superset "$SUPERSET_MARKER"; }

superset_status() {
  printf '%-22s %-6s %-8s %s\n' PROCESS PORT PID STATE
  if running superset "$SUPERSET_MARKER"; then
    local state=up
    curl -fsS -o /dev/null "http://127.0.0.1:$SUPERSET_PORT/health" 2>/dev/null || state="starting (not healthy)"
    printf '%-22s %-6s %-8s %s\n' superset "$SUPERSET_PORT" "$(pid_of superset)" "$state"
  else
    printf '%-22s %-6s %-8s %s\n' superset "$SUPERSET_PORT" - stopped
  fi
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  case "${1:-}" in
    up) superset_up ;;
    down) superset_down ;;
    status) superset_status ;;
    *) sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
  esac
fi
