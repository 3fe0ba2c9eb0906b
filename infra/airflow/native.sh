#!/usr/bin/env bash
# Airflow 3 as native processes next to the local stack, so that it shows the same UIs
# as the docker deployment:
#   native.sh up        install if missing (cached venv), migrate, start the API server/UI
#                       (AIRFLOW_PORT, default 8080), the scheduler and the DAG processor
#   native.sh down      stop them (only the processes this script started)
#   native.sh status    each process, its port and its state
# AIRFLOW_HOME is $PLATFORM_STATE/airflow (default .local/airflow): SQLite metadata,
# LocalExecutor. Connections come from .env as AIRFLOW_CONN_* variables (the same ids as
# docker-compose.yml), the login is AIRFLOW_ADMIN_USER / AIRFLOW_ADMIN_PASSWORD
# (default admin / admin). Reuses the local stack's helpers (infra/local/lib.sh).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$ROOT/infra/local"
# shellcheck source=infra/local/lib.sh
source "$HERE/lib.sh"

AIRFLOW_PORT="${AIRFLOW_PORT:-8080}"
AIRFLOW_STATE="$STATE/airflow"
AIRFLOW_PROCS=(airflow-apiserver airflow-scheduler airflow-dag-processor)
declare -A AIRFLOW_MARKER=(
  [airflow-apiserver]="airflow api_server"  # its process title (setproctitle)
  [airflow-scheduler]="airflow scheduler"
  [airflow-dag-processor]="airflow dag-processor"
)

# A random secret kept in AIRFLOW_HOME (shared by the three processes, stable across restarts).
airflow_secret() {
  local f="$AIRFLOW_STATE/.$1"
  if [ ! -s "$f" ]; then (umask 077 && head -c 32 /dev/urandom | base64 | tr -d '\n=' >"$f"); fi
  cat "$f"
}

json_str() { python3 -c 'import json,sys; print(json.dumps(sys.argv[1]))' "$1"; }

airflow_env() {
  local venv
  venv="$("$ROOT/infra/airflow/install-venv.sh")"
  mkdir -p "$AIRFLOW_STATE"
  export PATH="$venv/bin:$PATH"
  export AIRFLOW_HOME="$AIRFLOW_STATE"
  export AIRFLOW__CORE__DAGS_FOLDER="$ROOT/dags"
  export AIRFLOW__CORE__LOAD_EXAMPLES=False
  export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=False
  export AIRFLOW__CORE__EXECUTOR=LocalExecutor
  export AIRFLOW__CORE__EXECUTION_API_SERVER_URL="http://localhost:$AIRFLOW_PORT/execution/"
  export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE="$AIRFLOW_STATE/simple_auth_manager_passwords.json"
  export AIRFLOW__API__WORKERS=1
  export AIRFLOW__API_AUTH__JWT_SECRET; AIRFLOW__API_AUTH__JWT_SECRET="$(airflow_secret jwt_secret)"
  export AIRFLOW__API__SECRET_KEY; AIRFLOW__API__SECRET_KEY="$(airflow_secret api_secret_key)"
  export AIRFLOW_ADMIN_USER="${AIRFLOW_ADMIN_USER:-admin}" AIRFLOW_ADMIN_PASSWORD="${AIRFLOW_ADMIN_PASSWORD:-admin}"
  export PLATFORM_JOBS_BIN="${JOBS_BIN:-$ROOT/target/release/jobs}"
  local remote="${SPARK_REMOTE#sc://}"; remote="${remote%%/*}"
  export AIRFLOW_CONN_PLATFORM_POSTGRES="{\"conn_type\": \"postgres\", \"host\": $(json_str "$POSTGRES_HOST"), \"port\": $POSTGRES_PORT, \"schema\": $(json_str "$POSTGRES_DB"), \"login\": $(json_str "$POSTGRES_USER"), \"password\": $(json_str "$POSTGRES_PASSWORD"), \"extra\": {\"search_path\": $(json_str "$POSTGRES_SCHEMA")}}"
  export AIRFLOW_CONN_PLATFORM_MYSQL="{\"conn_type\": \"mysql\", \"host\": $(json_str "$MYSQL_HOST"), \"port\": $MYSQL_PORT, \"schema\": $(json_str "$MYSQL_DB"), \"login\": $(json_str "$MYSQL_USER"), \"password\": $(json_str "$MYSQL_PASSWORD")}"
  export AIRFLOW_CONN_PLATFORM_KAFKA="{\"conn_type\": \"kafka\", \"extra\": {\"bootstrap.servers\": $(json_str "$KAFKA_BOOTSTRAP_SERVERS"), \"topic\": $(json_str "$KAFKA_TOPIC")}}"
  export AIRFLOW_CONN_SPARK_CONNECT_DEFAULT="{\"conn_type\": \"spark_connect\", \"host\": $(json_str "${remote%:*}"), \"port\": ${remote##*:}}"
  # The passwords reach Airflow only inside the connections.
  unset POSTGRES_PASSWORD MYSQL_PASSWORD MYSQL_ROOT_PASSWORD POSTGRES_ADMIN_PASSWORD
}

airflow_up() {
  airflow_env
  local name
  if ! running airflow-apiserver "${AIRFLOW_MARKER[airflow-apiserver]}"; then
    port_free_or_die airflow-apiserver "$AIRFLOW_PORT"
  fi
  mkdir -p "$LOGS" "$RUN"
  log "migrating Airflow's metadata database (idempotent)"
  airflow db migrate >>"$LOGS/airflow-migrate.log" 2>&1 ||
    die "airflow db migrate failed; see $LOGS/airflow-migrate.log"
  for name in "${AIRFLOW_PROCS[@]}"; do
    if running "$name" "${AIRFLOW_MARKER[$name]}"; then log "$name already running"; continue; fi
    log "starting $name"
    case "$name" in
      airflow-apiserver) spawn "$name" bash "$ROOT/infra/airflow/start-api-server.sh" --port "$AIRFLOW_PORT" ;;
      airflow-scheduler) spawn "$name" airflow scheduler ;;
      airflow-dag-processor) spawn "$name" airflow dag-processor ;;
    esac
  done
  wait_port airflow-apiserver "$AIRFLOW_PORT"
  log "Airflow UI: http://localhost:$AIRFLOW_PORT (login $AIRFLOW_ADMIN_USER)"
}

airflow_down() {
  local name
  for name in "${AIRFLOW_PROCS[@]}"; do stop_pid "$name" "${AIRFLOW_MARKER[$name]}"; done
}

airflow_status() {
  local name
  printf '%-22s %-6s %-8s %s\n' PROCESS PORT PID STATE
  for name in "${AIRFLOW_PROCS[@]}"; do
    local port=-
    [ "$name" = airflow-apiserver ] && port="$AIRFLOW_PORT"
    if running "$name" "${AIRFLOW_MARKER[$name]}"; then
      printf '%-22s %-6s %-8s %s\n' "$name" "$port" "$(pid_of "$name")" up
    else
      printf '%-22s %-6s %-8s %s\n' "$name" "$port" - stopped
    fi
  done
}

case "${1:-}" in
  up) airflow_up ;;
  down) airflow_down ;;
  status) airflow_status ;;
  *) sed -n '2,11p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
