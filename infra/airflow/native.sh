#!/usr/bin/env bash
# Airflow 3 as native processes next to the local stack, so that it shows the same UIs
# as the docker deployment:
#   native.sh up        install if missing (cached venv), migrate, start the API server/UI
#                       (AIRFLOW_PORT, default 8080), the scheduler and the DAG processor
#   native.sh down      stop them (only the processes this script started)
#   native.sh status    each process, its port and its state
# AIRFLOW_HOME is $PLATFORM_STATE/airflow (default .local/airflow): SQLite metadata,
# LocalExecutor. Connections come from .env as AIRFLOW_CONN_* variables (the same ids as
# docker-compose.yml), the login is AIRFLOW_ADMIN_USER / AIRFLOW_ADMIN_PASSWORD (.env).
# The JWT secret and API secret key are AIRFLOW_JWT_SECRET / AIRFLOW_SECRET_KEY when set,
# else generated on the first start into $AIRFLOW_HOME/secrets (with-secrets.sh). No
# secret is ever on a command line. Reuses the local stack's helpers (infra/local/lib.sh).
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

# Every Airflow process starts through this wrapper: it supplies the JWT secret and the
# API secret key (see the top of this file).
WITH_SECRETS="$ROOT/infra/airflow/with-secrets.sh"

# A JSON string, in bash alone: the value (a password) never becomes an argument of a
# process. Escapes backslash, double quote and control characters.
json_str() {
  local s="$1" out="" c i
  for ((i = 0; i < ${#s}; i++)); do
    c="${s:i:1}"
    case "$c" in
      '"') out+='\"' ;;
      '\') out+='\\' ;;
      $'\n') out+='\n' ;;
      $'\r') out+='\r' ;;
      $'\t') out+='\t' ;;
      [[:cntrl:]]) printf -v c '\\u%04x' "'$c"; out+="$c" ;;
      *) out+="$c" ;;
    esac
  done
  printf '"%s"' "$out"
}

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
  # JWT secret and API secret key: a value from .env wins, else with-secrets.sh keeps
  # generated ones in $AIRFLOW_STATE/secrets (earlier versions kept them in
  # $AIRFLOW_STATE/.jwt_secret and .api_secret_key: moved there, so running processes
  # and new ones still agree).
  export PLATFORM_AIRFLOW_SECRETS_DIR="$AIRFLOW_STATE/secrets"
  local old
  for old in jwt_secret api_secret_key; do
    if [ -s "$AIRFLOW_STATE/.$old" ] && [ ! -e "$PLATFORM_AIRFLOW_SECRETS_DIR/$old" ]; then
      (umask 077 && mkdir -p "$PLATFORM_AIRFLOW_SECRETS_DIR")
      mv "$AIRFLOW_STATE/.$old" "$PLATFORM_AIRFLOW_SECRETS_DIR/$old"
    fi
  done
  export AIRFLOW__API_AUTH__JWT_SECRET="${AIRFLOW_JWT_SECRET:-${AIRFLOW__API_AUTH__JWT_SECRET:-}}"
  export AIRFLOW__API__SECRET_KEY="${AIRFLOW_SECRET_KEY:-${AIRFLOW__API__SECRET_KEY:-}}"
  export AIRFLOW_ADMIN_USER="${AIRFLOW_ADMIN_USER:-admin}"
  # Only the API server gets the admin password (airflow_up).
  [ -n "${AIRFLOW_ADMIN_PASSWORD:-}" ] || die "AIRFLOW_ADMIN_PASSWORD is not set (.env)"
  API_SERVER_ADMIN_SECRET="$AIRFLOW_ADMIN_PASSWORD" # (a name the unset loop below keeps)
  export PLATFORM_JOBS_BIN="${JOBS_BIN:-$ROOT/target/release/jobs}"
  # Spark Connect: SPARK_REMOTE is sc://host:port (a `;token=` parameter is accepted,
  # SPARK_CONNECT_TOKEN wins); the token becomes the connection's password, the
  # provider's field for it, which the DAGs hand to `jobs` as SPARK_CONNECT_TOKEN.
  local remote="${SPARK_REMOTE#sc://}" token="${SPARK_CONNECT_TOKEN:-}" param params
  if [ -z "$token" ] && [[ "$remote" == *";"* ]]; then
    IFS=';' read -ra params <<<"${remote#*;}"
    for param in "${params[@]}"; do
      [[ "$param" == token=* ]] && token="${param#token=}"
    done
  fi
  remote="${remote%%;*}"; remote="${remote%%/*}"
  [ -n "$token" ] || die "SPARK_CONNECT_TOKEN is not set (.env): the Spark Connect server requires it"
  export AIRFLOW_CONN_PLATFORM_POSTGRES="{\"conn_type\": \"postgres\", \"host\": $(json_str "$POSTGRES_HOST"), \"port\": $POSTGRES_PORT, \"schema\": $(json_str "$POSTGRES_DB"), \"login\": $(json_str "$POSTGRES_USER"), \"password\": $(json_str "$POSTGRES_PASSWORD"), \"extra\": {\"search_path\": $(json_str "$POSTGRES_SCHEMA")}}"
  export AIRFLOW_CONN_PLATFORM_MYSQL="{\"conn_type\": \"mysql\", \"host\": $(json_str "$MYSQL_HOST"), \"port\": $MYSQL_PORT, \"schema\": $(json_str "$MYSQL_DB"), \"login\": $(json_str "$MYSQL_USER"), \"password\": $(json_str "$MYSQL_PASSWORD")}"
  export AIRFLOW_CONN_PLATFORM_GENERATOR="{\"conn_type\": \"http\", \"host\": \"127.0.0.1\", \"port\": ${GENERATOR_PORT:-8090}}"
  export AIRFLOW_CONN_PLATFORM_KAFKA="{\"conn_type\": \"kafka\", \"extra\": {\"bootstrap.servers\": $(json_str "$KAFKA_BOOTSTRAP_SERVERS"), \"topic\": $(json_str "$KAFKA_TOPIC")}}"
  export AIRFLOW_CONN_SPARK_CONNECT_DEFAULT="{\"conn_type\": \"spark_connect\", \"host\": $(json_str "${remote%:*}"), \"port\": ${remote##*:}, \"password\": $(json_str "$token")}"
  # The secrets reach Airflow only inside the connections (and the admin password only
  # the API server): none stays in the environment the Airflow processes inherit.
  local name
  for name in $(compgen -v); do
    case "$name" in
      *_PASSWORD | SPARK_CONNECT_TOKEN | SPARK_REMOTE | AIRFLOW_JWT_SECRET | AIRFLOW_SECRET_KEY) unset "$name" ;;
    esac
  done
}

airflow_up() {
  airflow_env
  local name
  if ! running airflow-apiserver "${AIRFLOW_MARKER[airflow-apiserver]}"; then
    port_free_or_die airflow-apiserver "$AIRFLOW_PORT"
  fi
  mkdir -p "$LOGS" "$RUN"
  log "migrating Airflow's metadata database (idempotent)"
  "$WITH_SECRETS" airflow db migrate >>"$LOGS/airflow-migrate.log" 2>&1 ||
    die "airflow db migrate failed; see $LOGS/airflow-migrate.log"
  for name in "${AIRFLOW_PROCS[@]}"; do
    if running "$name" "${AIRFLOW_MARKER[$name]}"; then log "$name already running"; continue; fi
    log "starting $name"
    case "$name" in
      airflow-apiserver)
        AIRFLOW_ADMIN_PASSWORD="$API_SERVER_ADMIN_SECRET" \
          spawn "$name" "$WITH_SECRETS" bash "$ROOT/infra/airflow/start-api-server.sh" --port "$AIRFLOW_PORT" ;;
      airflow-scheduler) spawn "$name" "$WITH_SECRETS" airflow scheduler ;;
      airflow-dag-processor) spawn "$name" "$WITH_SECRETS" airflow dag-processor ;;
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

# (sourced, e.g. by tests/deploy/test_native_airflow.py, it only defines the functions)
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  case "${1:-}" in
    up) airflow_up ;;
    down) airflow_down ;;
    status) airflow_status ;;
    *) sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
  esac
fi
